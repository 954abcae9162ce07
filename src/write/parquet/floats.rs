//! Statistics of float leaves, taken from the Arrow values written: NaN, value
//! count and bounds (float chunks carry no footer statistics, see
//! `WritePlan::writer_properties`). Only values the file holds count, i.e.
//! those under live (non-null, in-range) parents.

use datafusion::arrow::array::{Array, AsArray, BooleanBufferBuilder, RecordBatch};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::scalar::ScalarValue;

use super::plan::WritePlan;
use super::schema::Leaf;
use super::stat_text;
use crate::write::ColumnStats;

impl WritePlan {
    /// Add the values of `batch`'s float leaves to `floats` (one entry per leaf).
    pub(super) fn scan_floats(&self, batch: &RecordBatch, floats: &mut [FloatLeafStats]) {
        if !self.has_float_leaf {
            return;
        }
        let mut next = 0;
        for column in batch.columns() {
            scan_floats(column.as_ref(), None, &self.leaves, &mut next, floats);
        }
    }
}

/// What a file holds of one float leaf, from the values written (the footer has
/// no statistics for float leaves, see [`WritePlan::writer_properties`]).
#[derive(Debug, Clone, Default)]
pub(super) struct FloatLeafStats {
    /// Non-null values in the file (NaN included).
    values: i64,
    /// A NaN was written.
    nan: bool,
    /// Smallest and largest non-NaN value.
    min: Option<f64>,
    max: Option<f64>,
}

impl FloatLeafStats {
    pub(super) fn add(&mut self, v: f64) {
        self.values += 1;
        if v.is_nan() {
            self.nan = true;
            return;
        }
        if self.min.is_none_or(|m| v < m) {
            self.min = Some(v);
        }
        if self.max.is_none_or(|m| v > m) {
            self.max = Some(v);
        }
    }

    /// The leaf's statistics row; `chunk_values` counts its nulls too.
    pub(super) fn finish(self, leaf: &Leaf, chunk_values: i64, size: i64) -> ColumnStats {
        let scalar = |v: f64| match leaf.write_type {
            // Exact: the value came from an f32.
            #[allow(clippy::cast_possible_truncation)]
            DataType::Float32 => ScalarValue::Float32(Some(v as f32)),
            _ => ScalarValue::Float64(Some(v)),
        };
        let (min_value, max_value) = match (self.min, self.max) {
            (Some(min), Some(max)) => (stat_text(&scalar(min)), stat_text(&scalar(max))),
            _ => (None, None),
        };
        ColumnStats {
            column_id: leaf.column_id,
            column_size_bytes: Some(size),
            value_count: self.values,
            null_count: chunk_values - self.values,
            min_value,
            max_value,
            contains_nan: Some(self.nan),
        }
    }
}

/// Walk `array` (of a write type) leaf by leaf, adding float values to `floats`;
/// `live` marks the slots that are in the file (not under a null or out-of-range
/// parent).
fn scan_floats(
    array: &dyn Array,
    live: Option<&BooleanBuffer>,
    leaves: &[Leaf],
    next: &mut usize,
    floats: &mut [FloatLeafStats],
) {
    match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let child_live = child_slots(list.offsets(), list.nulls(), live, list.values().len());
            scan_floats(
                list.values().as_ref(),
                child_live.as_ref(),
                leaves,
                next,
                floats,
            );
        }
        DataType::Map(_, _) => {
            let map = array.as_map();
            let child_live = child_slots(map.offsets(), map.nulls(), live, map.entries().len());
            scan_floats(map.entries(), child_live.as_ref(), leaves, next, floats);
        }
        DataType::Struct(_) => {
            let struct_array = array.as_struct();
            let live = match (live, struct_array.nulls()) {
                (None, None) => None,
                (Some(l), None) => Some(l.clone()),
                (None, Some(n)) => Some(n.inner().clone()),
                (Some(l), Some(n)) => Some(l & n.inner()),
            };
            for column in struct_array.columns() {
                scan_floats(column.as_ref(), live.as_ref(), leaves, next, floats);
            }
        }
        _ => {
            let index = *next;
            *next += 1;
            if !leaves.get(index).is_some_and(|l| l.is_float) {
                return;
            }
            let Some(acc) = floats.get_mut(index) else {
                return;
            };
            match array.data_type() {
                DataType::Float32 => {
                    let values = array.as_primitive::<Float32Type>().values();
                    add_live(array, live, acc, values);
                }
                DataType::Float64 => {
                    let values = array.as_primitive::<Float64Type>().values();
                    add_live(array, live, acc, values);
                }
                _ => {}
            }
        }
    }
}

/// Add the valid, live slots of `array` (whose slot values are `values`) to `acc`.
fn add_live<T: Copy + Into<f64>>(
    array: &dyn Array,
    live: Option<&BooleanBuffer>,
    acc: &mut FloatLeafStats,
    values: &[T],
) {
    if live.is_none() && array.null_count() == 0 {
        values.iter().for_each(|&v| acc.add(v.into()));
        return;
    }
    for (i, &v) in values.iter().enumerate() {
        if array.is_valid(i) && live.is_none_or(|l| l.value(i)) {
            acc.add(v.into());
        }
    }
}

/// Which child slots of a list/map are in the file: those inside the offsets of
/// live, valid entries. `None` = all of them.
fn child_slots(
    offsets: &OffsetBuffer<i32>,
    nulls: Option<&NullBuffer>,
    live: Option<&BooleanBuffer>,
    child_len: usize,
) -> Option<BooleanBuffer> {
    let first = offsets.first().copied().unwrap_or(0);
    let last = offsets.last().copied().unwrap_or(0);
    let covers_all = first == 0 && usize::try_from(last).is_ok_and(|l| l == child_len);
    if live.is_none() && nulls.is_none() && covers_all {
        return None;
    }
    let mut builder = BooleanBufferBuilder::new(child_len);
    let mut position = 0usize;
    for (i, (&start, &end)) in offsets.iter().zip(offsets.iter().skip(1)).enumerate() {
        let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
            continue;
        };
        let keep = nulls.is_none_or(|n| n.is_valid(i)) && live.is_none_or(|l| l.value(i));
        if start > position {
            builder.append_n(start - position, false);
        }
        builder.append_n(end.saturating_sub(start), keep);
        position = end.max(position);
    }
    if child_len > position {
        builder.append_n(child_len - position, false);
    }
    Some(builder.finish())
}
