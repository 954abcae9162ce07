//! Catalog statistics (`ducklake_file_column_stats` rows) of a written file,
//! from the column chunk statistics of its footer, merged over row groups and
//! encoded as DuckDB encodes them (see the parent module's `# Statistics`).

use std::cmp::Ordering;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use datafusion::parquet::file::statistics::Statistics;
use datafusion::scalar::ScalarValue;

use super::floats::FloatLeafStats;
use super::plan::WritePlan;
use super::schema::Leaf;
use super::stat_text;
use crate::spec::SNAPSHOT_ID_FIELD_ID;
use crate::write::ColumnStats;

/// Field ids from here up belong to DuckLake's hidden columns
/// (`_ducklake_internal_snapshot_id`, `_ducklake_internal_row_id`, delete file
/// columns), which get no statistics rows.
const FIRST_HIDDEN_FIELD_ID: i64 = SNAPSHOT_ID_FIELD_ID as i64;

impl WritePlan {
    /// The statistics rows of a written file, from its footer.
    pub(super) fn column_stats(
        &self,
        metadata: &ParquetMetaData,
        floats: &[FloatLeafStats],
    ) -> Result<Vec<ColumnStats>, String> {
        let columns = metadata.file_metadata().schema_descr().num_columns();
        if columns != self.leaves.len() {
            return Err(format!(
                "the footer has {columns} leaf columns, expected {}",
                self.leaves.len()
            ));
        }
        let mut out = Vec::with_capacity(self.leaves.len());
        for (i, leaf) in self.leaves.iter().enumerate() {
            if leaf.column_id >= FIRST_HIDDEN_FIELD_ID {
                continue;
            }
            if leaf.is_float {
                let chunk_values: i64 = metadata
                    .row_groups()
                    .iter()
                    .map(|rg| rg.column(i).num_values())
                    .sum();
                let size: i64 = metadata
                    .row_groups()
                    .iter()
                    .map(|rg| rg.column(i).compressed_size())
                    .sum();
                let float = floats.get(i).cloned().unwrap_or_default();
                out.push(float.finish(leaf, chunk_values, size));
                continue;
            }
            let mut acc = LeafStats::default();
            for row_group in metadata.row_groups() {
                acc.add(row_group.column(i), leaf)?;
            }
            out.push(acc.finish(leaf));
        }
        Ok(out)
    }
}

/// Statistics of one leaf, accumulated over row groups.
struct LeafStats {
    size: i64,
    values: i64,
    nulls: i64,
    min: Option<ScalarValue>,
    max: Option<ScalarValue>,
    /// False once a row group with values has no usable bound.
    bounds_known: bool,
}

impl Default for LeafStats {
    fn default() -> Self {
        Self {
            size: 0,
            values: 0,
            nulls: 0,
            min: None,
            max: None,
            bounds_known: true,
        }
    }
}

impl LeafStats {
    fn add(&mut self, chunk: &ColumnChunkMetaData, leaf: &Leaf) -> Result<(), String> {
        let stats = chunk
            .statistics()
            .ok_or_else(|| format!("column {} has no statistics in the footer", leaf.column_id))?;
        let nulls = stats
            .null_count_opt()
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| format!("column {} has no null count", leaf.column_id))?;
        let values = chunk.num_values() - nulls;
        self.size += chunk.compressed_size();
        self.nulls += nulls;
        self.values += values;
        if values == 0 || !self.bounds_known {
            return Ok(());
        }
        match (
            bound(stats, &leaf.write_type, false),
            bound(stats, &leaf.write_type, true),
        ) {
            (Some(min), Some(max)) => {
                self.min = Some(merge(
                    self.min.take(),
                    min,
                    Ordering::Less,
                    &mut self.bounds_known,
                ));
                self.max = Some(merge(
                    self.max.take(),
                    max,
                    Ordering::Greater,
                    &mut self.bounds_known,
                ));
            }
            _ => self.bounds_known = false,
        }
        Ok(())
    }

    fn finish(self, leaf: &Leaf) -> ColumnStats {
        let (min_value, max_value) = match (self.bounds_known, &self.min, &self.max) {
            (true, Some(min), Some(max)) => match (stat_text(min), stat_text(max)) {
                (Some(min), Some(max)) => (Some(min), Some(max)),
                _ => (None, None),
            },
            _ => (None, None),
        };
        ColumnStats {
            column_id: leaf.column_id,
            column_size_bytes: Some(self.size),
            value_count: self.values,
            null_count: self.nulls,
            min_value,
            max_value,
            contains_nan: None,
        }
    }
}

/// Keep the smaller (`Less`) or larger (`Greater`) of `current` and `new`.
fn merge(
    current: Option<ScalarValue>,
    new: ScalarValue,
    keep_if: Ordering,
    known: &mut bool,
) -> ScalarValue {
    match current {
        None => new,
        Some(current) => match new.partial_cmp(&current) {
            Some(ordering) if ordering == keep_if => new,
            Some(_) => current,
            None => {
                *known = false;
                current
            }
        },
    }
}

/// The exact min (`max == false`) or max of a chunk as a value of `write_type`.
fn bound(stats: &Statistics, write_type: &DataType, max: bool) -> Option<ScalarValue> {
    let exact = if max {
        stats.max_is_exact()
    } else {
        stats.min_is_exact()
    };
    if !exact {
        return None;
    }
    macro_rules! pick {
        ($s:expr) => {
            if max { $s.max_opt() } else { $s.min_opt() }
        };
    }
    match stats {
        Statistics::Boolean(s) => pick!(s).map(|v| ScalarValue::Boolean(Some(*v))),
        Statistics::Int32(s) => pick!(s).and_then(|v| int32_value(*v, write_type)),
        Statistics::Int64(s) => pick!(s).and_then(|v| int64_value(*v, write_type)),
        Statistics::Float(s) => pick!(s).map(|v| ScalarValue::Float32(Some(*v))),
        Statistics::Double(s) => pick!(s).map(|v| ScalarValue::Float64(Some(*v))),
        Statistics::ByteArray(s) => pick!(s).and_then(|v| match write_type {
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Dictionary(_, _) => std::str::from_utf8(v.data())
                .ok()
                .map(|s| ScalarValue::Utf8(Some(s.to_string()))),
            _ => None,
        }),
        Statistics::FixedLenByteArray(s) => pick!(s).and_then(|v| {
            let bytes = v.data();
            match write_type {
                DataType::Decimal128(precision, scale) => decimal_from_be(bytes)
                    .map(|d| ScalarValue::Decimal128(Some(d), *precision, *scale)),
                DataType::FixedSizeBinary(16) => {
                    Some(ScalarValue::FixedSizeBinary(16, Some(bytes.to_vec())))
                }
                _ => None,
            }
        }),
        Statistics::Int96(_) => None,
    }
}

fn int32_value(v: i32, write_type: &DataType) -> Option<ScalarValue> {
    Some(match write_type {
        DataType::Int8 => ScalarValue::Int8(Some(i8::try_from(v).ok()?)),
        DataType::Int16 => ScalarValue::Int16(Some(i16::try_from(v).ok()?)),
        DataType::Int32 => ScalarValue::Int32(Some(v)),
        DataType::UInt8 => ScalarValue::UInt8(Some(u8::try_from(v).ok()?)),
        DataType::UInt16 => ScalarValue::UInt16(Some(u16::try_from(v).ok()?)),
        // Stored as the same 32 bits, compared unsigned by parquet-rs.
        DataType::UInt32 => ScalarValue::UInt32(Some(u32::from_ne_bytes(v.to_ne_bytes()))),
        DataType::Date32 => ScalarValue::Date32(Some(v)),
        DataType::Decimal128(precision, scale) => {
            ScalarValue::Decimal128(Some(i128::from(v)), *precision, *scale)
        }
        _ => return None,
    })
}

fn int64_value(v: i64, write_type: &DataType) -> Option<ScalarValue> {
    Some(match write_type {
        DataType::Int64 => ScalarValue::Int64(Some(v)),
        DataType::UInt64 => ScalarValue::UInt64(Some(u64::from_ne_bytes(v.to_ne_bytes()))),
        DataType::Time64(TimeUnit::Microsecond) => ScalarValue::Time64Microsecond(Some(v)),
        DataType::Time64(TimeUnit::Nanosecond) => ScalarValue::Time64Nanosecond(Some(v)),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            ScalarValue::TimestampMillisecond(Some(v), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            ScalarValue::TimestampMicrosecond(Some(v), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            ScalarValue::TimestampNanosecond(Some(v), tz.clone())
        }
        DataType::Decimal128(precision, scale) => {
            ScalarValue::Decimal128(Some(i128::from(v)), *precision, *scale)
        }
        _ => return None,
    })
}

/// A big-endian two's complement integer of at most 16 bytes.
fn decimal_from_be(bytes: &[u8]) -> Option<i128> {
    let (&high, _) = bytes.split_first()?;
    let fill = if high & 0x80 != 0 { 0xFF } else { 0 };
    let mut buffer = [fill; 16];
    buffer
        .get_mut(16usize.checked_sub(bytes.len())?..)?
        .copy_from_slice(bytes);
    Some(i128::from_be_bytes(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_decimals() {
        assert_eq!(decimal_from_be(&[0xff, 0xfe]), Some(-2));
        assert_eq!(decimal_from_be(&[0x01, 0x00]), Some(256));
    }
}
