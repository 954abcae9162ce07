//! Decoding of catalog rows: one [`FromSqlRow`] implementation per row type of
//! [`crate::spec::rows`], reading a query's columns in the order the query
//! selects them (each implementation names that order). Both backends hand back
//! [`SqlRow`]s of values normalised across SQLite and PostgreSQL, so one decoder
//! serves both, and every query of a row type shares it.

use super::SqlRow;
use crate::error::Result;
use crate::spec::rows::*;

/// A value decoded from one row of a catalog query.
pub(crate) trait FromSqlRow: Sized {
    /// Decode `row` (owned, so that long texts are moved out rather than copied).
    fn from_row(row: SqlRow) -> Result<Self>;
}

/// The columns of `ducklake_delete_file` that [`DeleteFileRow`]'s decoder reads, in order.
pub(crate) const DELETE_FILE_COLUMNS: [&str; 9] = [
    "data_file_id",
    "delete_file_id",
    "path",
    "path_is_relative",
    "format",
    "delete_count",
    "file_size_bytes",
    "encryption_key",
    "begin_snapshot",
];

/// Columns: `snapshot_id, snapshot_time, schema_version, next_catalog_id, next_file_id`.
impl FromSqlRow for SnapshotRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            snapshot_id: r.i64(0)?,
            snapshot_time: r.timestamp(1)?,
            schema_version: r.i64(2)?,
            next_catalog_id: r.i64(3)?,
            next_file_id: r.i64(4)?,
        })
    }
}

/// Columns: `schema_id, schema_name, path, path_is_relative`.
impl FromSqlRow for SchemaRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            schema_id: r.i64(0)?,
            schema_name: r.text(1)?,
            path: r.opt_text(2)?,
            path_is_relative: r.bool_or(3, true)?,
        })
    }
}

/// Columns: `table_id, table_uuid, begin_snapshot, schema_id, table_name, path, path_is_relative`.
impl FromSqlRow for TableRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            table_id: r.i64(0)?,
            table_uuid: r.opt_text(1)?.unwrap_or_default(),
            begin_snapshot: r.i64(2)?,
            schema_id: r.i64(3)?,
            table_name: r.text(4)?,
            path: r.opt_text(5)?,
            path_is_relative: r.bool_or(6, true)?,
        })
    }
}

/// Columns: `view_id, schema_id, view_name, dialect, sql, column_aliases`.
impl FromSqlRow for ViewRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            view_id: r.i64(0)?,
            schema_id: r.i64(1)?,
            view_name: r.text(2)?,
            dialect: r.opt_text(3)?.unwrap_or_default(),
            sql: r.text(4)?,
            column_aliases: r.opt_text(5)?.unwrap_or_default(),
        })
    }
}

/// Columns: `MetadataStore::COLUMN_COLS`.
impl FromSqlRow for ColumnRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            column_id: r.i64(0)?,
            begin_snapshot: r.i64(1)?,
            end_snapshot: r.opt_i64(2)?,
            table_id: r.i64(3)?,
            column_order: r.i64(4)?,
            column_name: r.text(5)?,
            column_type: r.text(6)?,
            initial_default: r.opt_text(7)?,
            default_value: r.opt_text(8)?,
            nulls_allowed: r.bool_or(9, true)?,
            parent_column: r.opt_i64(10)?,
            default_value_type: r.opt_text(11)?,
        })
    }
}

/// Columns: `partition_id, table_id, partition_key_index, column_id, transform`.
impl FromSqlRow for PartitionColumnRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            partition_id: r.i64(0)?,
            table_id: r.i64(1)?,
            partition_key_index: r.i64(2)?,
            column_id: r.i64(3)?,
            transform: r.text(4)?,
        })
    }
}

/// Columns: `table_id, table_name, schema_version`.
impl FromSqlRow for InlinedTableRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            table_id: r.i64(0)?,
            table_name: r.text(1)?,
            schema_version: r.i64(2)?,
        })
    }
}

/// Columns: `expression, sort_direction, null_order` of `ducklake_sort_expression`.
impl FromSqlRow for SortKey {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            expression: r.text(0)?,
            descending: r.text(1)?.eq_ignore_ascii_case("DESC"),
            nulls_first: r.text(2)?.eq_ignore_ascii_case("NULLS_FIRST"),
        })
    }
}

/// Columns: `begin_snapshot, schema_version, table_id`.
impl FromSqlRow for SchemaVersionRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            begin_snapshot: r.i64(0)?,
            schema_version: r.i64(1)?,
            table_id: r.i64(2)?,
        })
    }
}

/// Columns: `table_id, record_count, next_row_id, file_size_bytes`.
impl FromSqlRow for TableStatsRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            table_id: r.i64(0)?,
            record_count: r.opt_i64(1)?.unwrap_or(0),
            next_row_id: r.opt_i64(2)?.unwrap_or(0),
            file_size_bytes: r.opt_i64(3)?.unwrap_or(0),
        })
    }
}

/// Columns: [`DELETE_FILE_COLUMNS`].
impl FromSqlRow for DeleteFileRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            delete_file_id: r.i64(1)?,
            data_file_id: r.i64(0)?,
            path: r.text(2)?,
            path_is_relative: r.bool_or(3, true)?,
            format: r.opt_text(4)?.unwrap_or_else(|| "parquet".into()),
            delete_count: r.opt_i64(5)?.unwrap_or(0),
            file_size_bytes: r.opt_i64(6)?.unwrap_or(0),
            encryption_key: r.opt_text(7)?,
            begin_snapshot: r.i64(8)?,
        })
    }
}

/// Columns: `data_file_id, column_id, value_count, null_count, min_value, max_value, contains_nan, column_size_bytes`.
impl FromSqlRow for FileColumnStatsRow {
    fn from_row(mut r: SqlRow) -> Result<Self> {
        Ok(Self {
            data_file_id: r.i64(0)?,
            column_id: r.i64(1)?,
            value_count: r.opt_i64(2)?,
            null_count: r.opt_i64(3)?,
            min_value: r.take_opt_text(4)?,
            max_value: r.take_opt_text(5)?,
            contains_nan: r.opt_i64(6)?.map(|v| v != 0),
            column_size_bytes: r.opt_i64(7)?,
        })
    }
}

/// Columns: `data_file_id, partition_key_index, partition_value`.
impl FromSqlRow for FilePartitionValueRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            data_file_id: r.i64(0)?,
            partition_key_index: r.i64(1)?,
            partition_value: r.opt_text(2)?,
        })
    }
}

/// Columns: `mapping_id, column_id, source_name, target_field_id, parent_column, is_partition`.
impl FromSqlRow for NameMappingRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            mapping_id: r.i64(0)?,
            column_id: r.i64(1)?,
            source_name: r.text(2)?,
            target_field_id: r.i64(3)?,
            parent_column: r.opt_i64(4)?,
            is_partition: r.bool_or(5, false)?,
        })
    }
}

/// Columns: `schema_id, macro_id, macro_name` (implementations are added by the caller).
impl FromSqlRow for MacroRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            schema_id: r.i64(0)?,
            macro_id: r.i64(1)?,
            macro_name: r.text(2)?,
            impls: Vec::new(),
        })
    }
}

/// Columns: `snapshot_id, changes_made, author, commit_message, commit_extra_info`.
impl FromSqlRow for SnapshotChangesRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        Ok(Self {
            snapshot_id: r.i64(0)?,
            changes_made: r.opt_text(1)?,
            author: r.opt_text(2)?,
            commit_message: r.opt_text(3)?,
            commit_extra_info: r.opt_text(4)?,
        })
    }
}

/// Columns: `table_id, column_id, contains_null, contains_nan, min_value, max_value`.
impl FromSqlRow for TableColumnStatsRow {
    fn from_row(r: SqlRow) -> Result<Self> {
        let opt_bool = |i: usize| -> Result<Option<bool>> { Ok(r.opt_i64(i)?.map(|v| v != 0)) };
        Ok(Self {
            table_id: r.i64(0)?,
            column_id: r.i64(1)?,
            contains_null: opt_bool(2)?,
            contains_nan: opt_bool(3)?,
            min_value: r.opt_text(4)?,
            max_value: r.opt_text(5)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::store::SqlValue;

    #[test]
    fn delete_file_rows_decode_in_column_order_with_defaults() -> Result<()> {
        let row = SqlRow(vec![
            SqlValue::Int(7),
            SqlValue::Int(9),
            SqlValue::Text("ducklake-x-delete.parquet".into()),
            SqlValue::Null,
            SqlValue::Null,
            SqlValue::Null,
            SqlValue::Int(1234),
            SqlValue::Null,
            SqlValue::Int(3),
        ]);
        assert_eq!(row.0.len(), DELETE_FILE_COLUMNS.len());
        let delete = DeleteFileRow::from_row(row)?;
        assert_eq!(
            (
                delete.data_file_id,
                delete.delete_file_id,
                delete.begin_snapshot
            ),
            (7, 9, 3)
        );
        assert_eq!(delete.path, "ducklake-x-delete.parquet");
        assert!(delete.path_is_relative);
        assert_eq!(delete.format, "parquet");
        assert_eq!((delete.delete_count, delete.file_size_bytes), (0, 1234));
        assert_eq!(delete.encryption_key, None);
        Ok(())
    }

    #[test]
    fn booleans_decode_from_both_backends() -> Result<()> {
        // SQLite hands booleans back as integers, PostgreSQL as booleans.
        for (contains_null, contains_nan) in [
            (SqlValue::Int(1), SqlValue::Int(0)),
            (SqlValue::Bool(true), SqlValue::Bool(false)),
        ] {
            let row = SqlRow(vec![
                SqlValue::Int(1),
                SqlValue::Int(2),
                contains_null,
                contains_nan,
                SqlValue::Text("a".into()),
                SqlValue::Null,
            ]);
            let stats = TableColumnStatsRow::from_row(row)?;
            assert_eq!(
                (stats.contains_null, stats.contains_nan),
                (Some(true), Some(false))
            );
            assert_eq!(stats.min_value.as_deref(), Some("a"));
            assert_eq!(stats.max_value, None);
        }
        Ok(())
    }

    #[test]
    fn a_short_row_is_a_corrupt_catalog_not_a_panic() {
        let row = SqlRow(vec![SqlValue::Int(1), SqlValue::Text("t".into())]);
        assert!(matches!(
            InlinedTableRow::from_row(row),
            Err(Error::Corrupt(_))
        ));
    }
}
