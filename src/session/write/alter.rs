//! `ALTER TABLE` / `ALTER VIEW`: columns added, dropped, renamed, retyped
//! (widening only, like DuckDB), nested fields evolved, defaults, partitioning,
//! renames; with the column-name and type-change rules they enforce.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{ScalarValue, TableReference};

use super::Writer;
use crate::commit::{Alter, ChangeSet, NewColumn, commit};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::types::DuckLakeType;
use crate::spec::values::format_duckdb_text;

impl Writer<'_> {
    /// The Arrow type DataFusion gives a SQL type name.
    pub(super) async fn sql_type(&self, type_sql: &str) -> Result<DataType> {
        // Through the DuckDB dialect, so DuckDB's type names (STRUCT(k INT), ...) work.
        let (plan, _) = crate::dialect::plan::plan_sql(
            &self.ctx.state(),
            &format!("SELECT CAST(NULL AS {type_sql}) AS x"),
            &Default::default(),
        )
        .await
        .map_err(|e| Error::Unsupported(format!("type '{type_sql}': {e}")))?;
        Ok(plan.schema().field(0).data_type().clone())
    }

    /// `ALTER TABLE` operations (parsed by [`crate::dialect::lake_statements::parse_alter`]).
    pub async fn alter(
        &self,
        alter: crate::dialect::lake_statements::AlterStatement,
    ) -> Result<Vec<RecordBatch>> {
        if let crate::dialect::lake_statements::AlterOp::RenameView { to, if_exists } = &alter.op {
            return self.rename_view(&alter.table, to, *if_exists).await;
        }
        let name = TableReference::from(alter.table.as_str());
        let target = self.resolve(&name).ok_or_else(|| {
            Error::Unsupported(format!(
                "ALTER TABLE on '{}', which is not in a DuckLake",
                alter.table
            ))
        })?;
        let table = Arc::clone(target.table()?);
        refuse_relayout_over_inlined_rows(target.lake(), table.id(), &target.qualified()).await?;
        let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
        // The exact name first, then any case (DuckDB's names are case-insensitive).
        let find = |name: &str| {
            let mut columns = table.columns.iter();
            columns
                .clone()
                .find(|c| c.row.column_name == name)
                .or_else(|| columns.find(|c| c.row.column_name.eq_ignore_ascii_case(name)))
                .ok_or_else(|| Error::NotFound {
                    kind: "column",
                    name: format!("{}.{name}", target.qualified()),
                    hint: format!(
                        "; columns: {}",
                        table
                            .columns
                            .iter()
                            .map(|c| c.row.column_name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
        };
        use crate::dialect::lake_statements::AlterOp;
        match alter.op {
            AlterOp::AddColumn {
                name,
                parents,
                type_sql,
                default_sql,
                if_not_exists,
            } if !parents.is_empty() => {
                let parent = nested_column(&table, &parents, &target.qualified())?;
                if !matches!(parent.ty, crate::spec::types::DuckLakeType::Struct) {
                    return Err(Error::Unsupported(format!(
                        "'{}' of '{}' is {}: fields can only be added to structs",
                        parents.join("."),
                        target.qualified(),
                        parent.ty
                    )));
                }
                if field_of(parent, &name).is_some() {
                    if if_not_exists {
                        return Ok(Vec::new());
                    }
                    return Err(Error::AlreadyExists {
                        kind: "field",
                        name: format!("{}.{}.{name}", target.qualified(), parents.join(".")),
                    });
                }
                let data_type = self.sql_type(&type_sql).await?;
                let default = match &default_sql {
                    Some(d) => self.constant(d, &type_sql).await?,
                    None => None,
                };
                if default.as_deref().is_some_and(|d| d != "NULL") {
                    // Rows written before would read the default at that depth, which
                    // lakeq's reader cannot fill in yet: refused here rather than at
                    // every later read.
                    return Err(Error::Unsupported(format!(
                        "adding struct field '{}.{name}' of '{}' with a default value \
                         (lakeq cannot yet read the default into rows written before; add it \
                         without a default)",
                        parents.join("."),
                        target.qualified()
                    )));
                }
                let mut next = crate::commit::next_column_id(target.lake(), table.id()).await?;
                let mut column =
                    NewColumn::from_arrow(&Field::new(&name, data_type, true), &mut next)?;
                column.default_value = default.clone();
                column.initial_default = default;
                changes.alters.push(Alter::AddColumn {
                    table_id: table.id(),
                    parent: Some(parent.row.column_id),
                    column,
                });
            }
            AlterOp::DropColumn {
                name,
                parents,
                if_exists,
            } if !parents.is_empty() => {
                let parent = nested_column(&table, &parents, &target.qualified())?;
                let Some(field) = field_of(parent, &name) else {
                    if if_exists {
                        return Ok(Vec::new());
                    }
                    return Err(Error::not_found(
                        "field",
                        format!("{}.{}.{name}", target.qualified(), parents.join(".")),
                    ));
                };
                if parent.children.len() == 1 {
                    return Err(Error::Unsupported(format!(
                        "dropping '{name}', the only field of '{}'",
                        parents.join(".")
                    )));
                }
                let mut all = Vec::new();
                field.walk(&mut all);
                changes.alters.push(Alter::DropColumn {
                    table_id: table.id(),
                    column_ids: all.iter().map(|c| c.row.column_id).collect(),
                });
            }
            AlterOp::RenameColumn { from, parents, to } if !parents.is_empty() => {
                let parent = nested_column(&table, &parents, &target.qualified())?;
                let field = field_of(parent, &from).ok_or_else(|| {
                    Error::not_found(
                        "field",
                        format!("{}.{}.{from}", target.qualified(), parents.join(".")),
                    )
                })?;
                if field_of(parent, &to).is_some() {
                    return Err(Error::AlreadyExists {
                        kind: "field",
                        name: format!("{}.{}.{to}", target.qualified(), parents.join(".")),
                    });
                }
                let mut row = field.row.clone();
                row.column_name = to;
                changes.alters.push(Alter::ReplaceColumn { row });
            }
            AlterOp::AddColumn {
                name,
                type_sql,
                default_sql,
                if_not_exists,
                ..
            } => {
                check_column_name(target.lake(), &name)?;
                if find(&name).is_ok() {
                    if if_not_exists {
                        return Ok(Vec::new());
                    }
                    return Err(Error::AlreadyExists {
                        kind: "column",
                        name: format!("{}.{name}", target.qualified()),
                    });
                }
                let data_type = self.sql_type(&type_sql).await?;
                let default = match &default_sql {
                    Some(d) => self.constant(d, &type_sql).await?,
                    None => None,
                };
                let mut next = crate::commit::next_column_id(target.lake(), table.id()).await?;
                let mut column =
                    NewColumn::from_arrow(&Field::new(&name, data_type, true), &mut next)?;
                column.default_value = default.clone();
                column.initial_default = default;
                changes.alters.push(Alter::AddColumn {
                    table_id: table.id(),
                    parent: None,
                    column,
                });
            }
            AlterOp::DropColumn {
                name, if_exists, ..
            } => {
                let col = match find(&name) {
                    Ok(c) => c,
                    Err(_) if if_exists => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                if table.columns.len() == 1 {
                    return Err(Error::Unsupported(format!(
                        "dropping '{name}', the only column of '{}'",
                        target.qualified()
                    )));
                }
                let sorted_by = target
                    .lake()
                    .store()
                    .sort_keys(table.id(), target.snapshot.snapshot.snapshot_id)
                    .await?;
                if sorted_by.iter().any(|k| {
                    crate::dialect::lake_statements::sort_key_columns(&k.expression)
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(&col.row.column_name))
                }) {
                    return Err(Error::Unsupported(format!(
                        "cannot drop column '{name}' of '{}': the table is sorted by this column \
                         (ALTER TABLE ... RESET SORTED BY first)",
                        target.qualified()
                    )));
                }
                if table
                    .partition
                    .iter()
                    .any(|p| p.column_id == col.row.column_id)
                {
                    return Err(Error::Unsupported(format!(
                        "dropping '{name}' of '{}': the table is partitioned by this column \
                         (ALTER TABLE ... RESET PARTITIONED BY first)",
                        target.qualified()
                    )));
                }
                let mut all = Vec::new();
                col.walk(&mut all);
                changes.alters.push(Alter::DropColumn {
                    table_id: table.id(),
                    column_ids: all.iter().map(|c| c.row.column_id).collect(),
                });
            }
            AlterOp::RenameColumn { from, to, .. } => {
                check_column_name(target.lake(), &to)?;
                let col = find(&from)?;
                if find(&to).is_ok_and(|c| c.row.column_id != col.row.column_id) {
                    return Err(Error::AlreadyExists {
                        kind: "column",
                        name: format!("{}.{to}", target.qualified()),
                    });
                }
                let mut row = col.row.clone();
                // DuckDB rewrites the table's sort keys to the new name.
                let keys = target
                    .lake()
                    .store()
                    .sort_keys(table.id(), target.snapshot.snapshot.snapshot_id)
                    .await?;
                if let Some(keys) =
                    crate::dialect::lake_statements::renamed_sort_keys(&keys, &from, &to)
                {
                    changes.alters.push(Alter::SetSort {
                        table_id: table.id(),
                        keys,
                    });
                }
                row.column_name = to;
                changes.alters.push(Alter::ReplaceColumn { row });
            }
            AlterOp::SetType { name, type_sql } => {
                let col = find(&name)?;
                if ["hugeint", "int128"].contains(&type_sql.trim().to_ascii_lowercase().as_str()) {
                    return Err(Error::Unsupported(format!(
                        "changing column '{name}' to HUGEINT: lakeq does not write HUGEINT columns yet"
                    )));
                }
                let data_type = self.sql_type(&type_sql).await?;
                if col.ty.is_nested() {
                    let mut next = crate::commit::next_column_id(target.lake(), table.id()).await?;
                    let mut evolution = NestedEvolution {
                        table_id: table.id(),
                        qualified: target.qualified(),
                        next_id: &mut next,
                        alters: &mut changes.alters,
                    };
                    evolution.evolve(col, &data_type, &name)?;
                    if changes.alters.is_empty() {
                        return Ok(Vec::new());
                    }
                } else {
                    let new_type = crate::spec::types::DuckLakeType::from_arrow(&data_type)?;
                    let old = col.ty.to_arrow()?;
                    if !datafusion::arrow::compute::can_cast_types(&old, &data_type)
                        || new_type.is_nested()
                        || (new_type != col.ty && !is_widening(&col.ty, &new_type))
                    {
                        return Err(Error::Unsupported(format!(
                            "changing column '{name}' of '{}' from {} to {new_type}: only widening \
                             type promotions are allowed (files already written keep their type)",
                            target.qualified(),
                            col.ty
                        )));
                    }
                    let mut row = col.row.clone();
                    row.column_type = new_type.to_string();
                    changes.alters.push(Alter::ReplaceColumn { row });
                }
            }
            AlterOp::SetNotNull { name, not_null } => {
                let col = find(&name)?;
                if col.row.nulls_allowed != not_null {
                    // DuckDB refuses a constraint that is already (or not) there.
                    return Err(Error::Unsupported(if not_null {
                        format!(
                            "column '{name}' of '{}' is already NOT NULL",
                            target.qualified()
                        )
                    } else {
                        format!(
                            "column '{name}' of '{}' has no NOT NULL constraint",
                            target.qualified()
                        )
                    }));
                }
                if not_null {
                    // The rows visible now decide, not statistics (deleted NULLs do not count).
                    let count_sql = format!(
                        "SELECT count(*) FROM {} WHERE {} IS NULL",
                        quoted_path(&[target.catalog.name(), &target.schema, &target.name]),
                        quoted_path(&[&name])
                    );
                    let batches = self.ctx.sql(&count_sql).await?.collect().await?;
                    let nulls = batches
                        .first()
                        .filter(|b| b.num_rows() == 1)
                        .and_then(|b| ScalarValue::try_from_array(b.column(0), 0).ok());
                    if !matches!(nulls, Some(ScalarValue::Int64(Some(0)))) {
                        return Err(Error::Constraint(format!(
                            "NOT NULL constraint failed: column '{name}' of '{}' holds NULLs",
                            target.qualified()
                        )));
                    }
                }
                let mut row = col.row.clone();
                row.nulls_allowed = !not_null;
                changes.alters.push(Alter::ReplaceColumn { row });
            }
            AlterOp::SetDefault {
                name,
                value,
                literal,
                expression_text,
            } => {
                let col = find(&name)?;
                let mut row = col.row.clone();
                let (text, kind) = match value {
                    None => ("NULL".to_string(), "literal"),
                    Some(sql) if literal => {
                        // A constant is stored as its value, in the column's type.
                        let dt = col
                            .row
                            .column_type
                            .parse::<DuckLakeType>()
                            .and_then(|t| t.to_arrow())?;
                        let batches = self
                            .ctx
                            .sql(&format!("SELECT {sql}"))
                            .await?
                            .collect()
                            .await?;
                        let value = batches
                            .first()
                            .filter(|b| b.num_rows() == 1 && b.num_columns() == 1)
                            .map(|b| ScalarValue::try_from_array(b.column(0), 0))
                            .transpose()?
                            .ok_or_else(|| {
                                Error::Unsupported(format!("DEFAULT {sql} of column '{name}'"))
                            })?
                            .cast_to(&dt)?;
                        let text = format_duckdb_text(&value)?.unwrap_or_else(|| "NULL".into());
                        (text, "literal")
                    }
                    Some(sql) => {
                        let text = expression_text.ok_or_else(|| {
                            Error::Unsupported(format!(
                                "DEFAULT {sql} of column '{name}': lakeq stores expression \
                                 defaults it can print as DuckDB does (functions, operators, \
                                 casts of constants)"
                            ))
                        })?;
                        (text, "expression")
                    }
                };
                row.default_value = Some(text);
                row.default_value_type = Some(kind.to_string());
                changes.alters.push(Alter::ReplaceColumn { row });
            }
            AlterOp::RenameView { .. } => {
                return Err(Error::Unsupported(
                    "ALTER VIEW is handled before table alters".into(),
                ));
            }
            AlterOp::SetSortedBy { keys } => {
                let unmatched: Vec<String> = keys
                    .iter()
                    .flat_map(|k| crate::dialect::lake_statements::sort_key_columns(&k.expression))
                    // Any case, quoted or not, as in DuckDB.
                    .filter(|c| {
                        !table
                            .columns
                            .iter()
                            .any(|n| n.row.column_name.eq_ignore_ascii_case(c))
                    })
                    .collect();
                if !unmatched.is_empty() {
                    return Err(Error::Unsupported(format!(
                        "Columns in the SET SORTED BY statement were not found in the DuckLake \
                         table '{}'. Unmatched columns were: {}",
                        target.qualified(),
                        unmatched.join(", ")
                    )));
                }
                changes.alters.push(Alter::SetSort {
                    table_id: table.id(),
                    keys,
                });
            }
            AlterOp::SetPartitionedBy { keys } => {
                let mut resolved = Vec::new();
                for (transform, column) in keys {
                    let col = find(&column)?;
                    if let Some(n) = crate::provider::partition::bucket_count(&transform) {
                        crate::provider::partition::check_bucket_type(&col.ty, n)
                            .map_err(Error::Unsupported)?;
                    } else if transform != "identity"
                        && !matches!(
                            col.ty,
                            crate::spec::types::DuckLakeType::Date
                                | crate::spec::types::DuckLakeType::Timestamp
                                | crate::spec::types::DuckLakeType::TimestampTz
                                | crate::spec::types::DuckLakeType::TimestampS
                                | crate::spec::types::DuckLakeType::TimestampMs
                                | crate::spec::types::DuckLakeType::TimestampNs
                        )
                    {
                        return Err(Error::Unsupported(format!(
                            "partition transform {transform}({column}) needs a date or timestamp column, '{column}' is {}",
                            col.ty
                        )));
                    }
                    resolved.push((col.row.column_id, transform));
                }
                // The table's own partitioning again changes nothing: no
                // snapshot, no new schema version (DuckDB's PartitionFieldsMatch).
                let same = resolved.len() == table.partition.len()
                    && resolved.iter().zip(&table.partition).all(|((id, t), p)| {
                        *id == p.column_id && t.eq_ignore_ascii_case(&p.transform)
                    });
                if same {
                    return Ok(Vec::new());
                }
                changes.alters.push(Alter::SetPartition {
                    table_id: table.id(),
                    keys: resolved,
                });
            }
            AlterOp::RenameTable { to } => {
                let schema = target.snapshot.schema(&target.schema)?;
                if schema.tables.contains_key(&to) || schema.views.contains_key(&to) {
                    return Err(Error::AlreadyExists {
                        kind: "table",
                        name: format!("{}.{}.{to}", target.catalog.name(), target.schema),
                    });
                }
                changes.alters.push(Alter::RenameTable {
                    row: table.row.clone(),
                    new_name: to,
                    schema_name: target.schema.clone(),
                });
            }
        }
        commit(target.lake(), &changes).await?;
        Ok(Vec::new())
    }
}

/// Whether changing a column from `from` to `to` widens it, as DuckDB allows
/// (its implicit-cast lattice): integers to wider integers (unsigned to a wider
/// signed one too), integers and FLOAT to DOUBLE, small integers to FLOAT,
/// decimals (and integers) to decimals with room for every value, DATE to
/// TIMESTAMP, TIMESTAMP to TIMESTAMPTZ (read as UTC, lakeq's session time zone).
pub(super) fn is_widening(from: &DuckLakeType, to: &DuckLakeType) -> bool {
    use crate::spec::types::DuckLakeType as T;
    fn signed_bits(t: &DuckLakeType) -> Option<u32> {
        match t {
            T::Int8 => Some(8),
            T::Int16 => Some(16),
            T::Int32 => Some(32),
            T::Int64 => Some(64),
            T::Int128 => Some(128),
            _ => None,
        }
    }
    fn unsigned_bits(t: &DuckLakeType) -> Option<u32> {
        match t {
            T::UInt8 => Some(8),
            T::UInt16 => Some(16),
            T::UInt32 => Some(32),
            T::UInt64 => Some(64),
            T::UInt128 => Some(128),
            _ => None,
        }
    }
    if from == to {
        return false;
    }
    let small_int = |t: &DuckLakeType| {
        signed_bits(t).is_some_and(|b| b <= 16) || unsigned_bits(t).is_some_and(|b| b <= 16)
    };
    match (from, to) {
        (a, b) if signed_bits(a).is_some() && signed_bits(b).is_some() => {
            signed_bits(a) < signed_bits(b)
        }
        (a, b) if unsigned_bits(a).is_some() && unsigned_bits(b).is_some() => {
            unsigned_bits(a) < unsigned_bits(b)
        }
        (a, b) if unsigned_bits(a).is_some() && signed_bits(b).is_some() => {
            unsigned_bits(a) < signed_bits(b)
        }
        (a, T::Float64) if signed_bits(a).is_some() || unsigned_bits(a).is_some() => true,
        (T::Float32, T::Float64) => true,
        (a, T::Float32) => small_int(a),
        (
            T::Decimal {
                precision: p1,
                scale: s1,
            },
            T::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s2 >= s1 && i64::from(*p2) - i64::from(*s2) >= i64::from(*p1) - i64::from(*s1),
        // As many integer digits as the integer type has (BIGINT 19, UBIGINT 20).
        (a, T::Decimal { precision, scale }) => {
            let digits = match a {
                T::Int8 | T::UInt8 => 3,
                T::Int16 | T::UInt16 => 5,
                T::Int32 | T::UInt32 => 10,
                T::Int64 => 19,
                T::UInt64 => 20,
                _ => return false,
            };
            i64::from(*precision) - i64::from(*scale) >= digits
        }
        (T::Date, T::Timestamp) | (T::Timestamp, T::TimestampTz) => true,
        _ => false,
    }
}

/// Column names DuckDB reserves for its inlined-data tables, refused (as DuckDB
/// does) unless the lake was attached with data inlining off, so that DuckDB can
/// still inline rows into the table.
pub(super) const RESERVED_COLUMN_NAMES: [&str; 5] = [
    "row_id",
    "begin_snapshot",
    "end_snapshot",
    "_ducklake_internal_snapshot_id",
    "_ducklake_internal_row_id",
];

/// Refuse a column name DuckLake reserves for internal use.
pub(super) fn check_column_name(lake: &Lake, name: &str) -> Result<()> {
    if lake.data_inlining_row_limit() != Some(0)
        && RESERVED_COLUMN_NAMES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(Error::Unsupported(format!(
            "column name \"{name}\" is reserved by DuckLake for internal use (attach the lake \
             with DATA_INLINING_ROW_LIMIT 0 to use it)"
        )));
    }
    Ok(())
}

/// `ALTER COLUMN c SET DATA TYPE <nested type>` as DuckDB evolves a nested column:
/// fields matched by name (any case) keep their ids (and may widen), fields the new
/// type leaves out are dropped, new fields are added after the kept ones.
struct NestedEvolution<'a> {
    table_id: crate::spec::CatalogId,
    qualified: String,
    next_id: &'a mut crate::spec::ColumnId,
    alters: &'a mut Vec<Alter>,
}

impl NestedEvolution<'_> {
    fn refuse(&self, path: &str, why: &str) -> Error {
        Error::Unsupported(format!(
            "changing the type of '{path}' of '{}': {why}",
            self.qualified
        ))
    }

    /// Evolve `node` (at `path`, for messages) to `to`.
    fn evolve(
        &mut self,
        node: &crate::catalog::ColumnNode,
        to: &DataType,
        path: &str,
    ) -> Result<()> {
        use crate::spec::types::DuckLakeType as T;
        match (&node.ty, to) {
            (T::Struct, DataType::Struct(fields)) => {
                // Kept fields, in the new type's order, must keep their order.
                let mut last_kept: Option<usize> = None;
                let mut kept_any = false;
                for child in &node.children {
                    let name = &child.row.column_name;
                    match fields
                        .iter()
                        .position(|f| f.name().eq_ignore_ascii_case(name))
                    {
                        Some(i) => {
                            if last_kept.is_some_and(|l| i < l) {
                                return Err(self.refuse(path, "the new type reorders fields"));
                            }
                            last_kept = Some(i);
                            kept_any = true;
                            if let Some(f) = fields.get(i) {
                                self.evolve(child, f.data_type(), &format!("{path}.{name}"))?;
                            }
                        }
                        None => {
                            let mut all = Vec::new();
                            child.walk(&mut all);
                            self.alters.push(Alter::DropColumn {
                                table_id: self.table_id,
                                column_ids: all.iter().map(|c| c.row.column_id).collect(),
                            });
                        }
                    }
                }
                for (i, f) in fields.iter().enumerate() {
                    let existing = node
                        .children
                        .iter()
                        .any(|c| c.row.column_name.eq_ignore_ascii_case(f.name()));
                    if existing {
                        continue;
                    }
                    if kept_any && last_kept.is_some_and(|l| i < l) {
                        return Err(
                            self.refuse(path, "new fields go after the fields the struct keeps")
                        );
                    }
                    let column = NewColumn::from_arrow(f, self.next_id)?;
                    self.alters.push(Alter::AddColumn {
                        table_id: self.table_id,
                        parent: Some(node.row.column_id),
                        column,
                    });
                }
                Ok(())
            }
            (T::List, DataType::List(f) | DataType::LargeList(f)) => match node.children.first() {
                Some(element) => self.evolve(element, f.data_type(), &format!("{path}.element")),
                None => Err(self.refuse(path, "the list has no element column")),
            },
            (T::Map, DataType::Map(entries, _)) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(self.refuse(path, "a map without key and value"));
                };
                for (child, f) in node.children.iter().zip(kv.iter()) {
                    let name = &child.row.column_name;
                    self.evolve(child, f.data_type(), &format!("{path}.{name}"))?;
                }
                Ok(())
            }
            (old, _) if old.is_nested() => {
                Err(self.refuse(path, &format!("a {old} column cannot become {to}")))
            }
            (old, _) => {
                let new = crate::spec::types::DuckLakeType::from_arrow(to)?;
                if new == *old {
                    return Ok(());
                }
                if new.is_nested() || !is_widening(old, &new) {
                    return Err(self.refuse(
                        path,
                        &format!("{old} to {new} is not a widening type promotion"),
                    ));
                }
                let mut row = node.row.clone();
                row.column_type = new.to_string();
                self.alters.push(Alter::ReplaceColumn { row });
                Ok(())
            }
        }
    }
}

/// The column at `path` (top-level name, then field names; `element`, `key` and
/// `value` inside lists and maps), matched without regard to case as DuckDB does.
pub(super) fn nested_column<'a>(
    table: &'a crate::catalog::TableEntry,
    path: &[String],
    qualified: &str,
) -> Result<&'a crate::catalog::ColumnNode> {
    let missing = |upto: usize| {
        Error::not_found(
            "column",
            format!("{qualified}.{}", path.get(..upto).unwrap_or(path).join(".")),
        )
    };
    let (first, rest) = path.split_first().ok_or_else(|| missing(0))?;
    let mut node = table
        .columns
        .iter()
        .find(|c| c.row.column_name.eq_ignore_ascii_case(first))
        .ok_or_else(|| missing(1))?;
    for (i, name) in rest.iter().enumerate() {
        node = field_of(node, name).ok_or_else(|| missing(i + 2))?;
    }
    Ok(node)
}

/// The child of `node` named `name` (any case).
pub(super) fn field_of<'a>(
    node: &'a crate::catalog::ColumnNode,
    name: &str,
) -> Option<&'a crate::catalog::ColumnNode> {
    node.children
        .iter()
        .find(|c| c.row.column_name.eq_ignore_ascii_case(name))
}

/// `"a"."b"."c"`, each part quoted.
pub(super) fn quoted_path(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// In a transaction, a table whose columns already changed in it and that then
/// received inlined rows in that new layout cannot change its columns again:
/// the commit would leave those rows in a layout no snapshot has, and both
/// engines would read them wrong (DuckDB rewrites them into the final layout at
/// COMMIT; lakeq does not yet). Refused with an error, never committed wrong.
pub(super) async fn refuse_relayout_over_inlined_rows(
    lake: &Lake,
    table_id: crate::spec::CatalogId,
    qualified: &str,
) -> Result<()> {
    let Some(base) = lake.transaction_base() else {
        return Ok(());
    };
    let store = lake.store();
    let created_here: BTreeSet<i64> = store
        .schema_versions(table_id)
        .await?
        .into_iter()
        .filter(|v| v.begin_snapshot > base)
        .map(|v| v.schema_version)
        .collect();
    for inlined in store.inlined_tables(table_id).await? {
        if !created_here.contains(&inlined.schema_version)
            || !store.backend().table_exists(&inlined.table_name).await?
        {
            continue;
        }
        let rows = store
            .backend()
            .query(&format!(
                "SELECT count(*) FROM {} WHERE begin_snapshot > {base}",
                store.backend().table(&inlined.table_name)
            ))
            .await?;
        let written = rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0);
        if written > 0 {
            return Err(Error::Unsupported(format!(
                "changing the columns of '{qualified}' again in this transaction: its columns already \
                 changed in it and it holds {written} inlined row(s) written since, which lakeq \
                 cannot yet carry into the new layout at COMMIT; COMMIT first, or write the rows \
                 after the last column change"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod widening_tests {
    use super::is_widening;
    use crate::spec::types::DuckLakeType as T;

    #[test]
    fn only_widening_type_changes_are_allowed() {
        assert!(is_widening(&T::Int16, &T::Int32));
        assert!(is_widening(&T::UInt8, &T::Int16));
        assert!(is_widening(&T::Int32, &T::Float64));
        assert!(is_widening(&T::Float32, &T::Float64));
        assert!(is_widening(&T::Date, &T::Timestamp));
        assert!(is_widening(&T::Timestamp, &T::TimestampTz));
        assert!(!is_widening(&T::TimestampTz, &T::Timestamp));
        let dec = |precision, scale| T::Decimal { precision, scale };
        assert!(is_widening(&T::Int32, &dec(10, 0)));
        assert!(!is_widening(&T::Int32, &dec(9, 0)));
        assert!(is_widening(&T::Int32, &dec(12, 2)));
        assert!(!is_widening(&T::Int32, &dec(11, 2)));
        assert!(is_widening(&T::Int64, &dec(38, 0)));
        assert!(!is_widening(&T::Int64, &dec(18, 0)));
        assert!(is_widening(&T::UInt64, &dec(20, 0)));
        assert!(is_widening(
            &T::Decimal {
                precision: 9,
                scale: 2
            },
            &T::Decimal {
                precision: 18,
                scale: 4
            }
        ));
        assert!(!is_widening(&T::Int32, &T::Int16));
        assert!(!is_widening(&T::UInt32, &T::Int32));
        assert!(!is_widening(&T::Int64, &T::Float32));
        assert!(!is_widening(&T::Float64, &T::Float32));
        assert!(!is_widening(
            &T::Decimal {
                precision: 9,
                scale: 2
            },
            &T::Decimal {
                precision: 9,
                scale: 3
            }
        ));
        assert!(!is_widening(&T::Int32, &T::Int32));
    }
}
