//! Column defaults (`CREATE TABLE t (i INTEGER DEFAULT 42)`): the values an
//! `INSERT` that leaves a column out writes, read from `ducklake_column`
//! (`default_value`, typed by `default_value_type`).
//!
//! A `literal` default is DuckDB's text of a value. An `expression` default is
//! DuckDB SQL; lakeq evaluates `now()` / `current_timestamp` and a cast of a
//! string (`CAST('2020-01-02' AS "DATE")`), and for any other expression an
//! INSERT that leaves the column out fails, naming the column: never a NULL in
//! place of the default.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DFResult, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};

use crate::catalog::TableEntry;
use crate::spec::values::parse_duckdb_text;

/// The default of every top-level column that has one, by column name.
pub fn column_defaults(entry: &TableEntry) -> HashMap<String, Expr> {
    let mut out = HashMap::new();
    for (node, field) in entry.columns.iter().zip(entry.arrow_schema.fields()) {
        let Some(text) = node.row.default_value.as_deref() else {
            continue;
        };
        let dt = field.data_type();
        let expr = if node.row.default_value_type.as_deref() == Some("expression") {
            expression(field.name(), text, dt)
        } else if text == "NULL" {
            // DuckDB stores both `DEFAULT NULL` and `DEFAULT 'NULL'` so, and
            // writes NULL for either.
            None
        } else {
            Some(
                parse_duckdb_text(text, dt)
                    .map(lit)
                    .unwrap_or_else(|_| unsupported(field.name(), text, dt)),
            )
        };
        if let Some(expr) = expr {
            out.insert(field.name().clone(), expr);
        }
    }
    out
}

/// An expression default lakeq evaluates, or one that refuses the INSERT.
fn expression(column: &str, text: &str, dt: &DataType) -> Option<Expr> {
    let lower = text.trim().to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "now()" | "current_timestamp" | "get_current_timestamp()" | "current_timestamp()"
    ) {
        return Some(datafusion::logical_expr::cast(
            datafusion::functions::datetime::expr_fn::now(),
            dt.clone(),
        ));
    }
    if lower == "null" {
        return None;
    }
    // CAST('<text>' AS <type>): a typed literal.
    if let Some(rest) = text.strip_prefix("CAST('")
        && let Some((value, _)) = rest.split_once("' AS ")
        && !value.contains('\'')
        && let Ok(v) = parse_duckdb_text(value, dt)
    {
        return Some(lit(v));
    }
    Some(unsupported(column, text, dt))
}

fn unsupported(column: &str, text: &str, dt: &DataType) -> Expr {
    let udf = UnsupportedDefault {
        message: format!(
            "the DEFAULT of column {column} ({text}) is an expression lakeq cannot evaluate; \
             give the column a value in the INSERT"
        ),
        data_type: dt.clone(),
        signature: Signature::nullary(Volatility::Volatile),
    };
    Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(udf)),
        Vec::new(),
    ))
}

/// A function that fails with a message when evaluated.
#[derive(Debug, PartialEq, Eq, Hash)]
struct UnsupportedDefault {
    message: String,
    data_type: DataType,
    signature: Signature,
}

impl ScalarUDFImpl for UnsupportedDefault {
    fn name(&self) -> &str {
        "lakeq_unsupported_default"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(self.data_type.clone())
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        plan_err!("{}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::ScalarValue;

    #[test]
    fn expression_defaults() {
        assert!(matches!(
            expression("d", "CAST('2020-01-02' AS \"DATE\")", &DataType::Date32),
            Some(Expr::Literal(ScalarValue::Date32(Some(18263)), _))
        ));
        assert!(expression("i", "NULL", &DataType::Int32).is_none());
        assert!(matches!(
            expression("e", "(1 + 2)", &DataType::Int32),
            Some(Expr::ScalarFunction(_))
        ));
    }
}
