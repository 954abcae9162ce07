//! parquet-rs writer properties: DuckDB's format version, row group sizes and
//! statistics, per-file dictionary choices, and no footer statistics for float
//! leaves.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use datafusion::parquet::schema::types::ColumnPath;

use super::plan::WritePlan;
use super::{MAX_STAT_STRING_BYTES, WRITE_CHUNK_ROWS};
use crate::write::WriteOptions;

/// Row groups are cut at this many bytes of encoded data whatever their row
/// count, which bounds the writer's memory for wide rows.
const MAX_ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;

impl WritePlan {
    /// Writer properties for this schema: float leaves get no Parquet statistics.
    ///
    /// parquet-rs leaves NaN out of a chunk's min/max, as the Parquet spec says,
    /// but DuckDB 1.5.5 trusts a float maximum and skips a row group holding NaN
    /// (`f = 'NaN'`, `f > 1` miss rows). DuckDB itself writes no bounds for such
    /// chunks; without knowing the data ahead, lakeq writes none for any float
    /// chunk and takes a float leaf's catalog statistics from its Arrow values.
    pub(super) fn writer_properties(&self, options: &WriteOptions) -> WriterProperties {
        let mut builder = writer_properties(options).into_builder();
        for (i, leaf) in self.leaves.iter().enumerate() {
            if leaf.is_float {
                let path = self.parquet_schema.column(i).path().clone();
                builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
            }
        }
        builder.build()
    }
}

/// The writer properties of one file, whose first rows are `first`, so that
/// files come out near the size DuckDB gives them (size-bounded merges compare
/// file sizes, DuckDB's tests count the files they pick):
///
/// * dictionary encoding is off for the top-level primitive columns of `first`
///   whose values are more than one fifth distinct: DuckDB's rule (its writer
///   falls back to PLAIN when a row group's dictionary would hold more than a
///   fifth of its non-null values; lakeq looks at the file's first chunk,
///   DuckDB decides per row group);
/// * a file begun with less than a write chunk (a small insert, a flush, a
///   merge of small files) gets chunk statistics only and no page index, as
///   DuckDB writes none: with one page per column it would only repeat them.
pub(super) fn file_properties(
    properties: &WriterProperties,
    first: &RecordBatch,
) -> WriterProperties {
    use datafusion::arrow::row::{RowConverter, SortField};
    let mut builder: Option<datafusion::parquet::file::properties::WriterPropertiesBuilder> = None;
    if first.num_rows() < WRITE_CHUNK_ROWS {
        builder = Some(
            properties
                .clone()
                .into_builder()
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .set_offset_index_disabled(true),
        );
    }
    for (field, column) in first.schema().fields().iter().zip(first.columns()) {
        let path = ColumnPath::from(vec![field.name().clone()]);
        if field.data_type().is_nested()
            || matches!(field.data_type(), DataType::Boolean | DataType::Null)
            || !properties.dictionary_enabled(&path)
        {
            continue;
        }
        let values = column.len() - column.null_count();
        if values == 0 {
            continue;
        }
        let Ok(converter) = RowConverter::new(vec![SortField::new(field.data_type().clone())])
        else {
            continue;
        };
        let Ok(rows) = converter.convert_columns(std::slice::from_ref(column)) else {
            continue;
        };
        let mut distinct = std::collections::HashSet::new();
        for (i, row) in rows.iter().enumerate() {
            if column.is_valid(i) {
                distinct.insert(row);
            }
        }
        if distinct.len() * 5 > values {
            builder = Some(
                builder
                    .unwrap_or_else(|| properties.clone().into_builder())
                    .set_column_dictionary_enabled(path, false),
            );
        }
    }
    builder.map_or_else(|| properties.clone(), |b| b.build())
}

pub(super) fn writer_properties(options: &WriteOptions) -> WriterProperties {
    WriterProperties::builder()
        // Format version 1 data pages, like DuckDB.
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(options.compression)
        .set_max_row_group_row_count(Some(options.row_group_size.max(1)))
        .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
        .set_statistics_enabled(EnabledStatistics::Page)
        // Chunk statistics become the catalog's min/max: longer values are
        // truncated (marked inexact), and inexact bounds are not recorded.
        .set_statistics_truncate_length(Some(MAX_STAT_STRING_BYTES))
        .build()
}
