//! DuckDB column types DataFusion's SQL planner does not know, for
//! `CREATE TABLE` and `ALTER TABLE ... ADD COLUMN` on a lake: `UUID`,
//! `MAP(K, V)` (of the scalar types below, nested maps and lists too; a map
//! of a type with modifiers, `MAP(INT, DECIMAL(9,2))`, does not parse yet),
//! `TIMESTAMP_S` and `TIMESTAMP_MS`. Each becomes the Arrow type lakeq reads
//! that DuckLake type as, so the column gets DuckDB's type in the catalog.
//! Types not listed keep DataFusion's own planning (or its error).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit};
use datafusion::common::Result;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, DataType as SqlType, ExactNumberInfo};

/// The [`TypePlanner`] lakeq registers on its sessions.
#[derive(Debug, Default)]
pub struct DuckDbTypes;

impl TypePlanner for DuckDbTypes {
    fn plan_type_field(&self, sql_type: &SqlType) -> Result<Option<FieldRef>> {
        let planned = match sql_type {
            SqlType::Uuid | SqlType::Map(..) => arrow_type(sql_type),
            SqlType::Custom(..) => custom(sql_type),
            _ => None,
        };
        Ok(planned.map(|t| Arc::new(Field::new("", t, true))))
    }
}

/// DuckDB's `TIMESTAMP_S` / `TIMESTAMP_MS`, and `MAP(K, V)` as the DuckDB
/// dialect parses it (a custom type whose modifiers are the two type names).
fn custom(sql_type: &SqlType) -> Option<DataType> {
    let SqlType::Custom(name, modifiers) = sql_type else {
        return None;
    };
    let name = name.to_string().to_ascii_uppercase();
    match (name.as_str(), modifiers.as_slice()) {
        ("TIMESTAMP_S", []) => Some(DataType::Timestamp(TimeUnit::Second, None)),
        ("TIMESTAMP_MS", []) => Some(DataType::Timestamp(TimeUnit::Millisecond, None)),
        ("MAP", [key, value]) => {
            let parse = |text: &str| {
                datafusion::sql::sqlparser::parser::Parser::new(
                    &datafusion::sql::sqlparser::dialect::DuckDbDialect {},
                )
                .try_with_sql(text)
                .and_then(|mut p| p.parse_data_type())
                .ok()
            };
            arrow_type(&SqlType::Map(
                Box::new(parse(key)?),
                Box::new(parse(value)?),
            ))
        }
        _ => None,
    }
}

/// The Arrow type of a map key or value, or of a type above (`None`: a type
/// this planner leaves to DataFusion, which makes the whole type an error).
fn arrow_type(sql_type: &SqlType) -> Option<DataType> {
    Some(match sql_type {
        SqlType::Boolean | SqlType::Bool => DataType::Boolean,
        SqlType::TinyInt(_) => DataType::Int8,
        SqlType::SmallInt(_) | SqlType::Int2(_) => DataType::Int16,
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int4(_) => DataType::Int32,
        SqlType::BigInt(_) | SqlType::Int8(_) => DataType::Int64,
        SqlType::Real | SqlType::Float4 | SqlType::Float(_) => DataType::Float32,
        SqlType::Double(ExactNumberInfo::None) | SqlType::DoublePrecision | SqlType::Float8 => {
            DataType::Float64
        }
        SqlType::Varchar(_) | SqlType::Text | SqlType::String(_) => DataType::Utf8,
        SqlType::Date => DataType::Date32,
        SqlType::Timestamp(None, _) => DataType::Timestamp(TimeUnit::Microsecond, None),
        SqlType::Decimal(ExactNumberInfo::PrecisionAndScale(p, s))
        | SqlType::Numeric(ExactNumberInfo::PrecisionAndScale(p, s)) => {
            let p = u8::try_from(*p).ok().filter(|p| (1..=38).contains(p))?;
            let s = i8::try_from(*s)
                .ok()
                .filter(|s| *s >= 0 && s.unsigned_abs() <= p)?;
            DataType::Decimal128(p, s)
        }
        SqlType::Uuid => DataType::FixedSizeBinary(16),
        SqlType::Array(
            ArrayElemTypeDef::AngleBracket(inner) | ArrayElemTypeDef::SquareBracket(inner, None),
        ) => DataType::List(Arc::new(Field::new("item", arrow_type(inner)?, true))),
        SqlType::Map(key, value) => {
            let entries = Fields::from(vec![
                Field::new("key", arrow_type(key)?, false),
                Field::new("value", arrow_type(value)?, true),
            ]);
            DataType::Map(
                Arc::new(Field::new("entries", DataType::Struct(entries), false)),
                false,
            )
        }
        SqlType::Custom(..) => custom(sql_type)?,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::DuckDbDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn planned(type_sql: &str) -> Option<DataType> {
        let sql = format!("CREATE TABLE t (c {type_sql})");
        let statements = Parser::parse_sql(&DuckDbDialect {}, &sql).expect("parse");
        let Some(datafusion::sql::sqlparser::ast::Statement::CreateTable(create)) =
            statements.first()
        else {
            return None;
        };
        let column = create.columns.first()?;
        DuckDbTypes
            .plan_type_field(&column.data_type)
            .expect("plan")
            .map(|f| f.data_type().clone())
    }

    #[test]
    fn duckdb_types_plan_to_lakes_arrow_types() {
        assert_eq!(planned("UUID"), Some(DataType::FixedSizeBinary(16)));
        assert_eq!(
            planned("TIMESTAMP_S"),
            Some(DataType::Timestamp(TimeUnit::Second, None))
        );
        assert_eq!(
            planned("TIMESTAMP_MS"),
            Some(DataType::Timestamp(TimeUnit::Millisecond, None))
        );
        let Some(DataType::Map(entries, false)) = planned("MAP(VARCHAR, INTEGER)") else {
            panic!("not a map");
        };
        assert_eq!(
            entries.data_type(),
            &DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Int32, true),
            ]))
        );
        // Left to DataFusion (and its error): types lakeq cannot create as DuckDB does.
        assert_eq!(planned("HUGEINT"), None);
        assert_eq!(planned("JSON"), None);
        assert_eq!(planned("MAP(VARCHAR, JSON)"), None);
        assert_eq!(
            arrow_type(&SqlType::Map(
                Box::new(SqlType::Uuid),
                Box::new(SqlType::Date)
            )),
            Some(DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", DataType::FixedSizeBinary(16), false),
                        Field::new("value", DataType::Date32, true),
                    ])),
                    false
                )),
                false
            ))
        );
        assert_eq!(planned("INTEGER"), None);
    }
}
