//! End-to-end tests of the writer: files written to a scratch directory, read
//! back with parquet-rs, their schema, values and statistics checked.

use std::collections::HashMap;

use datafusion::arrow::array::{
    BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int8Array,
    Int16Array, Int32Array, IntervalMonthDayNanoArray, StringViewArray, Time64MicrosecondArray,
    Time64NanosecondArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use datafusion::arrow::datatypes::IntervalMonthDayNano;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::schema::printer::print_schema;
use object_store::local::LocalFileSystem;

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, Int64Array, ListArray, MapArray, RecordBatch,
    StringArray, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Fields, IntervalUnit, Schema, SchemaRef};
use datafusion::parquet::basic::{ConvertedType, Type as PhysicalType};
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::schema::types::Type as ParquetType;
use object_store::ObjectStore;

use super::*;
use crate::catalog::FIELD_ID_KEY;
use crate::error::Error;
use crate::spec::types::DuckLakeType;
use crate::spec::{
    DELETE_FILE_PATH_FIELD_ID, DELETE_POS_FIELD_ID, SNAPSHOT_ID_COLUMN, SNAPSHOT_ID_FIELD_ID,
};
use crate::write::{ColumnStats, WriteOptions, WrittenFile};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A fresh directory (with trailing `/`) under `target/test-scratch/`; files
/// are left there for inspection (e.g. with DuckDB).
fn scratch(name: &str) -> String {
    let dir = format!(
        "{}/target/test-scratch/write-{name}/",
        env!("CARGO_MANIFEST_DIR")
    );
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn store() -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new())
}

fn with_id(field: Field, id: i64) -> Field {
    field.with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())]))
}

/// A nullable leaf field of a DuckLake type, like the catalog builds it.
fn leaf(name: &str, ty: DuckLakeType, id: i64) -> Field {
    let data_type = ty.to_arrow().expect("leaf type");
    with_id(Field::new(name, data_type, true), id)
}

fn nested(name: &str, ty: DuckLakeType, id: i64, children: Vec<Field>) -> Field {
    let data_type = ty.to_arrow_nested(children).expect("nested type");
    with_id(Field::new(name, data_type, true), id)
}

fn child_field(data_type: &DataType) -> FieldRef {
    match data_type {
        DataType::List(f) | DataType::Map(f, _) => Arc::clone(f),
        other => panic!("no child field in {other}"),
    }
}

fn struct_fields(data_type: &DataType) -> Fields {
    match data_type {
        DataType::Struct(fields) => fields.clone(),
        other => panic!("not a struct: {other}"),
    }
}

fn list(field: &Field, offsets: Vec<i32>, values: ArrayRef, valid: Vec<bool>) -> ArrayRef {
    Arc::new(
        ListArray::try_new(
            child_field(field.data_type()),
            OffsetBuffer::new(offsets.into()),
            values,
            Some(NullBuffer::from(valid)),
        )
        .expect("list"),
    )
}

use datafusion::arrow::datatypes::FieldRef;

const I128_MAX: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// Every lakeq type, nested ones included, with ids in DuckDB's pre-order.
fn all_types() -> (SchemaRef, RecordBatch) {
    use DuckLakeType as T;
    let l = nested("l", T::List, 28, vec![leaf("element", T::Int32, 29)]);
    let st = nested(
        "st",
        T::Struct,
        30,
        vec![leaf("a", T::Int32, 31), leaf("b", T::Varchar, 32)],
    );
    let m = nested(
        "m",
        T::Map,
        33,
        vec![leaf("key", T::Varchar, 34), leaf("value", T::Int32, 35)],
    );
    let ll_inner = nested(
        "element",
        T::List,
        37,
        vec![leaf("element", T::Varchar, 38)],
    );
    let ll = nested("ll", T::List, 36, vec![ll_inner.clone()]);
    let sl_x = nested("x", T::List, 40, vec![leaf("element", T::Int32, 41)]);
    let sl_y = nested("y", T::Struct, 42, vec![leaf("z", T::Float64, 43)]);
    let sl = nested("sl", T::Struct, 39, vec![sl_x.clone(), sl_y.clone()]);
    let gl = nested("gl", T::List, 46, vec![leaf("element", T::Float64, 47)]);
    let fields = vec![
        leaf("b", T::Boolean, 1),
        leaf("i8", T::Int8, 2),
        leaf("i16", T::Int16, 3),
        leaf("i32", T::Int32, 4),
        leaf("i64", T::Int64, 5),
        leaf("h", T::Int128, 6),
        leaf("u8", T::UInt8, 7),
        leaf("u16", T::UInt16, 8),
        leaf("u32", T::UInt32, 9),
        leaf("u64", T::UInt64, 10),
        leaf("f32", T::Float32, 11),
        leaf("f64", T::Float64, 12),
        leaf(
            "dec4",
            T::Decimal {
                precision: 4,
                scale: 1,
            },
            13,
        ),
        leaf(
            "dec18",
            T::Decimal {
                precision: 18,
                scale: 3,
            },
            14,
        ),
        leaf(
            "dec38",
            T::Decimal {
                precision: 38,
                scale: 10,
            },
            15,
        ),
        leaf("tm", T::Time, 16),
        leaf("tmns", T::TimeNs, 17),
        leaf("d", T::Date, 18),
        leaf("ts", T::Timestamp, 19),
        leaf("ts_s", T::TimestampS, 20),
        leaf("ts_ms", T::TimestampMs, 21),
        leaf("ts_ns", T::TimestampNs, 22),
        leaf("tstz", T::TimestampTz, 23),
        leaf("iv", T::Interval, 24),
        leaf("s", T::Varchar, 25),
        leaf("bl", T::Blob, 26),
        leaf("u", T::Uuid, 27),
        l.clone(),
        st.clone(),
        m.clone(),
        ll.clone(),
        sl.clone(),
        leaf("nul", T::Int32, 44),
        leaf("fnan", T::Float64, 45),
        gl.clone(),
    ];
    let schema = Arc::new(Schema::new(fields));

    let day = 86_400i64;
    let micros = 1_000_000i64;
    let ts_2020 = 18_262 * day; // 2020-01-01 in seconds
    let ts_2024 = 19_737 * day + 12 * 3600 + 30 * 60; // 2024-01-15 12:30:00
    let uuid = |s: &str| {
        uuid::Uuid::parse_str(s)
            .expect("uuid")
            .into_bytes()
            .to_vec()
    };

    let st_fields = struct_fields(st.data_type());
    let st_array = StructArray::try_new(
        st_fields,
        vec![
            Arc::new(Int32Array::from(vec![Some(1), None, None, Some(4)])),
            Arc::new(StringArray::from(vec![Some("x"), None, None, Some("y")])),
        ],
        Some(NullBuffer::from(vec![true, false, true, true])),
    )
    .expect("struct");

    let entries_field = child_field(m.data_type());
    let entries = StructArray::try_new(
        struct_fields(entries_field.data_type()),
        vec![
            Arc::new(StringArray::from(vec!["k", "q"])),
            Arc::new(Int32Array::from(vec![Some(1), None])),
        ],
        None,
    )
    .expect("entries");
    let m_array = MapArray::try_new(
        entries_field,
        OffsetBuffer::new(vec![0, 1, 1, 1, 2].into()),
        entries,
        Some(NullBuffer::from(vec![true, false, true, true])),
        false,
    )
    .expect("map");

    let ll_leaf = Arc::new(StringArray::from(vec![Some("s0"), Some("a"), None]));
    let ll_mid = list(
        &ll_inner,
        vec![0, 1, 1, 1, 3],
        ll_leaf,
        vec![true, true, false, true],
    );
    let ll_array = list(
        &ll,
        vec![0, 1, 1, 2, 4],
        ll_mid,
        vec![true, false, true, true],
    );

    let sl_x_array = list(
        &sl_x,
        vec![0, 1, 1, 1, 3],
        Arc::new(Int32Array::from(vec![1, 2, 3])),
        vec![true, false, false, true],
    );
    let sl_y_array = StructArray::try_new(
        struct_fields(sl_y.data_type()),
        vec![Arc::new(Float64Array::from(vec![
            Some(0.5),
            None,
            None,
            Some(f64::NAN),
        ]))],
        Some(NullBuffer::from(vec![true, false, false, true])),
    )
    .expect("y");
    let sl_array = StructArray::try_new(
        struct_fields(sl.data_type()),
        vec![sl_x_array, Arc::new(sl_y_array)],
        Some(NullBuffer::from(vec![true, false, true, true])),
    )
    .expect("sl");

    let columns: Vec<ArrayRef> = vec![
        Arc::new(BooleanArray::from(vec![
            Some(true),
            None,
            Some(false),
            Some(true),
        ])),
        Arc::new(Int8Array::from(vec![
            Some(1),
            None,
            Some(i8::MIN),
            Some(i8::MAX),
        ])),
        Arc::new(Int16Array::from(vec![
            Some(2),
            None,
            Some(i16::MIN),
            Some(i16::MAX),
        ])),
        Arc::new(Int32Array::from(vec![
            Some(3),
            None,
            Some(i32::MIN),
            Some(i32::MAX),
        ])),
        Arc::new(Int64Array::from(vec![
            Some(4),
            None,
            Some(i64::MIN),
            Some(i64::MAX),
        ])),
        Arc::new(
            Decimal128Array::from(vec![Some(5), None, Some(-I128_MAX), Some(I128_MAX)])
                .with_precision_and_scale(38, 0)
                .expect("decimal"),
        ),
        Arc::new(UInt8Array::from(vec![
            Some(6),
            None,
            Some(0),
            Some(u8::MAX),
        ])),
        Arc::new(UInt16Array::from(vec![
            Some(7),
            None,
            Some(0),
            Some(u16::MAX),
        ])),
        Arc::new(UInt32Array::from(vec![
            Some(8),
            None,
            Some(0),
            Some(u32::MAX),
        ])),
        Arc::new(UInt64Array::from(vec![
            Some(9),
            None,
            Some(0),
            Some(u64::MAX),
        ])),
        Arc::new(Float32Array::from(vec![
            Some(1.5),
            None,
            Some(-0.0),
            Some(f32::NAN),
        ])),
        Arc::new(Float64Array::from(vec![
            Some(2.5),
            None,
            Some(f64::NEG_INFINITY),
            Some(f64::INFINITY),
        ])),
        Arc::new(
            Decimal128Array::from(vec![Some(1234), None, Some(-9999), Some(0)])
                .with_precision_and_scale(4, 1)
                .expect("decimal"),
        ),
        Arc::new(
            Decimal128Array::from(vec![Some(12_345_678), None, Some(-1), Some(0)])
                .with_precision_and_scale(18, 3)
                .expect("decimal"),
        ),
        Arc::new(
            Decimal128Array::from(vec![
                Some(15_000_000_000),
                None,
                Some(-999_999_999_999),
                Some(0),
            ])
            .with_precision_and_scale(38, 10)
            .expect("decimal"),
        ),
        Arc::new(Time64MicrosecondArray::from(vec![
            Some((12 * 3600 + 30 * 60) * micros + 500_000),
            None,
            Some(0),
            Some(day * micros - 1),
        ])),
        Arc::new(Time64NanosecondArray::from(vec![
            Some((12 * 3600 + 30 * 60) * 1_000_000_000 + 123_456_789),
            None,
            Some(0),
            Some(1),
        ])),
        Arc::new(Date32Array::from(vec![
            Some(18_262),
            None,
            Some(0),
            Some(19_737),
        ])),
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(ts_2020 * micros),
            None,
            Some(0),
            Some(ts_2024 * micros + 123_456),
        ])),
        Arc::new(TimestampSecondArray::from(vec![
            Some(ts_2020),
            None,
            Some(0),
            Some(ts_2024),
        ])),
        Arc::new(TimestampMillisecondArray::from(vec![
            Some(ts_2020 * 1000),
            None,
            Some(0),
            Some(ts_2024 * 1000 + 5),
        ])),
        Arc::new(TimestampNanosecondArray::from(vec![
            Some(ts_2020 * 1_000_000_000),
            None,
            Some(0),
            Some(ts_2024 * 1_000_000_000 + 123_456_789),
        ])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(ts_2020 * micros),
                None,
                Some(-micros),
                Some(ts_2024 * micros),
            ])
            .with_timezone("UTC"),
        ),
        Arc::new(IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(14, 3, 4 * 3600 * 1_000_000_000)),
            None,
            Some(IntervalMonthDayNano::new(0, 0, 0)),
            Some(IntervalMonthDayNano::new(
                0,
                0,
                25 * 3600 * 1_000_000_000 + 1_500_000,
            )),
        ])),
        Arc::new(StringArray::from(vec![
            Some("row_0"),
            None,
            Some(""),
            Some("zz"),
        ])),
        Arc::new(BinaryArray::from_opt_vec(vec![
            Some(b"b0"),
            None,
            Some(b"\x00\xff"),
            Some(b""),
        ])),
        Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                vec![
                    Some(uuid("550e8400-e29b-41d4-a716-446655440000")),
                    None,
                    Some(uuid("00000000-0000-0000-0000-000000000001")),
                    Some(uuid("ffffffff-ffff-ffff-ffff-ffffffffffff")),
                ]
                .into_iter(),
                16,
            )
            .expect("uuid"),
        ),
        list(
            &l,
            vec![0, 3, 3, 3, 4],
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3), None])),
            vec![true, false, true, true],
        ),
        Arc::new(st_array),
        Arc::new(m_array),
        ll_array,
        Arc::new(sl_array),
        Arc::new(Int32Array::from(vec![None::<i32>; 4])),
        Arc::new(Float64Array::from(vec![
            Some(f64::NAN),
            None,
            Some(f64::NAN),
            None,
        ])),
        // The NULL entry covers a NaN that is not part of the file.
        list(
            &gl,
            vec![0, 1, 2, 2, 3],
            Arc::new(Float64Array::from(vec![1.0, f64::NAN, 2.0])),
            vec![true, false, true, true],
        ),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch");
    (schema, batch)
}

fn read_back(url: &str) -> (ParquetMetaData, RecordBatch) {
    let bytes = Bytes::from(std::fs::read(url).expect("read file"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("reader");
    let metadata = builder.metadata().as_ref().clone();
    let batches = builder
        .build()
        .expect("reader")
        .collect::<std::result::Result<Vec<_>, _>>()
        .expect("batches");
    let batch = datafusion::arrow::compute::concat_batches(
        &batches.first().expect("a batch").schema(),
        &batches,
    )
    .expect("concat");
    (metadata, batch)
}

fn stats_by_id(file: &WrittenFile) -> HashMap<i64, &ColumnStats> {
    file.column_stats.iter().map(|s| (s.column_id, s)).collect()
}

/// (min, max, value_count, null_count, contains_nan) of a column.
fn summary<'a>(
    stats: &HashMap<i64, &'a ColumnStats>,
    id: i64,
) -> (Option<&'a str>, Option<&'a str>, i64, i64, Option<bool>) {
    let s = stats
        .get(&id)
        .unwrap_or_else(|| panic!("no stats for {id}"));
    (
        s.min_value.as_deref(),
        s.max_value.as_deref(),
        s.value_count,
        s.null_count,
        s.contains_nan,
    )
}

/// (path, field id) of every node of the Parquet schema, pre-order.
fn field_ids(ty: &ParquetType, prefix: &str, out: &mut Vec<(String, Option<i32>)>) {
    for child in ty.get_fields() {
        let info = child.get_basic_info();
        let path = format!("{prefix}{}", info.name());
        out.push((path.clone(), info.has_id().then(|| info.id())));
        if child.is_group() {
            field_ids(child, &format!("{path}."), out);
        }
    }
}

#[tokio::test]
async fn round_trip_every_type() -> TestResult {
    let dir = scratch("round-trip");
    let (schema, batch) = all_types();
    let mut writer =
        DataFileWriter::new(store(), &dir, Arc::clone(&schema), WriteOptions::default());
    writer.write(&batch).await?;
    let files = writer.finish().await?;
    assert_eq!(files.len(), 1);
    let file = &files[0];
    assert!(file.file_name.starts_with("ducklake-") && file.file_name.ends_with(".parquet"));
    assert!(!file.file_name.ends_with("-delete.parquet"));
    assert_eq!(
        uuid::Uuid::parse_str(&file.file_name[9..45])?.get_version_num(),
        7
    );
    assert_eq!(file.url, format!("{dir}{}", file.file_name));
    assert_eq!(file.record_count, 4);
    // Sidecar for manual checks with DuckDB (registering the file in a lake).
    let stats_json: Vec<_> = file
        .column_stats
        .iter()
        .map(|s| {
            serde_json::json!({
                "column_id": s.column_id, "column_size_bytes": s.column_size_bytes,
                "value_count": s.value_count, "null_count": s.null_count,
                "min_value": s.min_value, "max_value": s.max_value,
                "contains_nan": s.contains_nan,
            })
        })
        .collect();
    let sidecar = serde_json::json!({
        "url": file.url, "file_name": file.file_name, "record_count": file.record_count,
        "file_size_bytes": file.file_size_bytes, "footer_size": file.footer_size,
        "column_stats": stats_json,
    });
    std::fs::write(format!("{dir}written.json"), sidecar.to_string())?;

    // Exact size and footer length.
    let bytes = std::fs::read(&file.url)?;
    assert_eq!(file.file_size_bytes, bytes.len() as i64);
    let tail = &bytes[bytes.len() - 8..];
    assert_eq!(&tail[4..], b"PAR1");
    let footer = i64::from(u32::from_le_bytes(tail[..4].try_into()?));
    assert_eq!(file.footer_size, Some(footer));

    // Footer: field ids everywhere but the repeated groups, no key/value metadata.
    let (metadata, read) = read_back(&file.url);
    assert!(metadata.file_metadata().key_value_metadata().is_none());
    let root = metadata.file_metadata().schema_descr().root_schema_ptr();
    let mut printed = Vec::new();
    print_schema(&mut printed, &root);
    println!("{}", String::from_utf8_lossy(&printed));
    let mut ids = Vec::new();
    field_ids(&root, "", &mut ids);
    for (path, id) in &ids {
        let repeated_group = path.ends_with(".list") || path.ends_with(".key_value");
        assert_eq!(id.is_none(), repeated_group, "field id of {path}: {id:?}");
    }
    let expect = |path: &str| ids.iter().find(|(p, _)| p == path).and_then(|(_, id)| *id);
    assert_eq!(expect("b"), Some(1));
    assert_eq!(expect("l"), Some(28));
    assert_eq!(expect("l.list.element"), Some(29));
    assert_eq!(expect("m.key_value.key"), Some(34));
    assert_eq!(expect("m.key_value.value"), Some(35));
    assert_eq!(expect("ll.list.element.list.element"), Some(38));
    assert_eq!(expect("sl.y.z"), Some(43));
    let printed = String::from_utf8_lossy(&printed).to_string();
    for needle in [
        "OPTIONAL INT32 i8 [2] (INTEGER(8,true))",
        "OPTIONAL INT32 u32 [9] (INTEGER(32,false))",
        "OPTIONAL FIXED_LEN_BYTE_ARRAY (16) h [6] (DECIMAL(38,0))",
        "OPTIONAL INT32 dec4 [13] (DECIMAL(4,1))",
        "OPTIONAL INT64 dec18 [14] (DECIMAL(18,3))",
        "OPTIONAL FIXED_LEN_BYTE_ARRAY (16) u [27] (UUID)",
        "OPTIONAL FIXED_LEN_BYTE_ARRAY (12) iv [24] (INTERVAL)",
        "OPTIONAL BYTE_ARRAY s [25] (STRING)",
        "OPTIONAL INT64 ts_s [20] (TIMESTAMP(MICROS,false))",
        "OPTIONAL INT64 tstz [23] (TIMESTAMP(MICROS,true))",
        "OPTIONAL BYTE_ARRAY tmns [17] (STRING)",
        "REQUIRED BYTE_ARRAY key [34] (STRING)",
        "REPEATED group key_value {",
        "OPTIONAL BYTE_ARRAY bl [26];",
    ] {
        assert!(printed.contains(needle), "missing `{needle}` in\n{printed}");
    }

    // Values round-trip (cast back to the table types where Parquet differs).
    for (i, field) in schema.fields().iter().enumerate() {
        let got = read.column(i);
        let want = batch.column(i);
        if field.name() == "iv" {
            let got = got.as_fixed_size_binary_opt().map(|a| a.value(3).to_vec());
            let got = got.unwrap_or_else(|| {
                // parquet-rs may decode INTERVAL as an Arrow interval.
                let c = datafusion::arrow::compute::cast(
                    read.column(i),
                    &DataType::Interval(IntervalUnit::DayTime),
                )
                .expect("cast");
                let v = c
                    .as_primitive::<datafusion::arrow::datatypes::IntervalDayTimeType>()
                    .value(3);
                let mut b = 0u32.to_le_bytes().to_vec();
                b.extend_from_slice(&v.days.to_le_bytes());
                b.extend_from_slice(&v.milliseconds.to_le_bytes());
                b
            });
            // 25:00:00.0015 → 0 months, 0 days, 90000001 ms.
            let mut want = vec![0u8; 8];
            want.extend_from_slice(&90_000_001u32.to_le_bytes());
            assert_eq!(got, want);
            assert!(read.column(i).is_null(1));
            continue;
        }
        let got = if got.data_type() == field.data_type() {
            Arc::clone(got)
        } else {
            datafusion::arrow::compute::cast(got, field.data_type())?
        };
        assert_eq!(&got, want, "column {}", field.name());
    }

    // Statistics.
    let stats = stats_by_id(file);
    // No rows for containers (28 l, 30 st, 33 m, 36 ll, 37, 39 sl, 40 x, 42 y, 46 gl).
    for container in [28, 30, 33, 36, 37, 39, 40, 42, 46] {
        assert!(
            !stats.contains_key(&container),
            "stats for container {container}"
        );
    }
    assert_eq!(file.column_stats.len(), 38);
    assert_eq!(summary(&stats, 1), (Some("0"), Some("1"), 3, 1, None));
    assert_eq!(summary(&stats, 2), (Some("-128"), Some("127"), 3, 1, None));
    assert_eq!(
        summary(&stats, 4),
        (Some("-2147483648"), Some("2147483647"), 3, 1, None)
    );
    assert_eq!(
        summary(&stats, 5),
        (
            Some("-9223372036854775808"),
            Some("9223372036854775807"),
            3,
            1,
            None
        )
    );
    let i128_max = I128_MAX.to_string();
    let i128_min = format!("-{i128_max}");
    assert_eq!(
        summary(&stats, 6),
        (Some(i128_min.as_str()), Some(i128_max.as_str()), 3, 1, None)
    );
    assert_eq!(summary(&stats, 7), (Some("0"), Some("255"), 3, 1, None));
    assert_eq!(
        summary(&stats, 9),
        (Some("0"), Some("4294967295"), 3, 1, None)
    );
    assert_eq!(
        summary(&stats, 10),
        (Some("0"), Some("18446744073709551615"), 3, 1, None)
    );
    assert_eq!(
        summary(&stats, 11),
        (Some("0.0"), Some("1.5"), 3, 1, Some(true))
    );
    assert_eq!(
        summary(&stats, 12),
        (Some("-inf"), Some("inf"), 3, 1, Some(false))
    );
    assert_eq!(
        summary(&stats, 13),
        (Some("-999.9"), Some("123.4"), 3, 1, None)
    );
    assert_eq!(
        summary(&stats, 14),
        (Some("-0.001"), Some("12345.678"), 3, 1, None)
    );
    assert_eq!(
        summary(&stats, 15),
        (Some("-99.9999999999"), Some("1.5000000000"), 3, 1, None)
    );
    assert_eq!(
        summary(&stats, 16),
        (Some("00:00:00"), Some("23:59:59.999999"), 3, 1, None)
    );
    assert_eq!(
        summary(&stats, 17),
        (Some("00:00:00"), Some("12:30:00.123456789"), 3, 1, None)
    );
    assert_eq!(
        summary(&stats, 18),
        (Some("1970-01-01"), Some("2024-01-15"), 3, 1, None)
    );
    assert_eq!(
        summary(&stats, 19),
        (
            Some("1970-01-01 00:00:00"),
            Some("2024-01-15 12:30:00.123456"),
            3,
            1,
            None
        )
    );
    assert_eq!(
        summary(&stats, 20),
        (
            Some("1970-01-01 00:00:00"),
            Some("2024-01-15 12:30:00"),
            3,
            1,
            None
        )
    );
    assert_eq!(
        summary(&stats, 21),
        (
            Some("1970-01-01 00:00:00"),
            Some("2024-01-15 12:30:00.005"),
            3,
            1,
            None
        )
    );
    assert_eq!(
        summary(&stats, 22),
        (
            Some("1970-01-01 00:00:00"),
            Some("2024-01-15 12:30:00.123456789"),
            3,
            1,
            None
        )
    );
    assert_eq!(
        summary(&stats, 23),
        (
            Some("1969-12-31 23:59:59+00"),
            Some("2024-01-15 12:30:00+00"),
            3,
            1,
            None
        )
    );
    assert_eq!(summary(&stats, 24), (None, None, 3, 1, None), "interval");
    assert_eq!(summary(&stats, 25), (Some(""), Some("zz"), 3, 1, None));
    assert_eq!(summary(&stats, 26), (None, None, 3, 1, None), "blob");
    assert_eq!(
        summary(&stats, 27),
        (
            Some("00000000-0000-0000-0000-000000000001"),
            Some("ffffffff-ffff-ffff-ffff-ffffffffffff"),
            3,
            1,
            None
        )
    );
    // Nested leaves count like DuckDB: [1, NULL, 3], NULL, [], [NULL].
    assert_eq!(summary(&stats, 29), (Some("1"), Some("3"), 2, 4, None));
    assert_eq!(summary(&stats, 31), (Some("1"), Some("4"), 2, 2, None));
    assert_eq!(summary(&stats, 32), (Some("x"), Some("y"), 2, 2, None));
    assert_eq!(summary(&stats, 34), (Some("k"), Some("q"), 2, 2, None));
    assert_eq!(summary(&stats, 35), (Some("1"), Some("1"), 1, 3, None));
    assert_eq!(summary(&stats, 38), (Some("a"), Some("s0"), 2, 4, None));
    assert_eq!(summary(&stats, 41), (Some("1"), Some("3"), 3, 2, None));
    assert_eq!(
        summary(&stats, 43),
        (Some("0.5"), Some("0.5"), 2, 2, Some(true))
    );
    // All NULL, all NaN, NaN only under a NULL list entry.
    assert_eq!(summary(&stats, 44), (None, None, 0, 4, None));
    assert_eq!(summary(&stats, 45), (None, None, 2, 2, Some(true)));
    assert_eq!(
        summary(&stats, 47),
        (Some("1.0"), Some("2.0"), 2, 2, Some(false))
    );
    for s in &file.column_stats {
        assert!(
            s.column_size_bytes.is_some_and(|n| n > 0),
            "size of {}",
            s.column_id
        );
    }
    Ok(())
}

/// DuckDB 1.5.5 trusts a Parquet float maximum that leaves NaN out: float
/// chunks carry no footer statistics, the catalog's come from the values.
#[tokio::test]
async fn float_chunks_have_no_footer_statistics() -> TestResult {
    let dir = scratch("float-stats");
    let table = Arc::new(Schema::new(vec![
        leaf("f", DuckLakeType::Float64, 1),
        leaf("i", DuckLakeType::Int64, 2),
    ]));
    let input = RecordBatch::try_from_iter(vec![
        (
            "f",
            Arc::new(Float64Array::from(vec![Some(f64::NAN), Some(1.0), None])) as ArrayRef,
        ),
        (
            "i",
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
        ),
    ])?;
    let mut writer =
        DataFileWriter::new(store(), &dir, Arc::clone(&table), WriteOptions::default());
    writer.write(&input).await?;
    let files = writer.finish().await?;
    let (metadata, _) = read_back(&files[0].url);
    let row_group = &metadata.row_groups()[0];
    assert!(row_group.column(0).statistics().is_none());
    assert!(row_group.column(1).statistics().is_some());
    let stats: HashMap<i64, &ColumnStats> = files[0]
        .column_stats
        .iter()
        .map(|s| (s.column_id, s))
        .collect();
    assert_eq!(
        summary(&stats, 1),
        (Some("1.0"), Some("1.0"), 2, 1, Some(true))
    );
    assert_eq!(summary(&stats, 2), (Some("1"), Some("2"), 2, 1, None));
    Ok(())
}

#[tokio::test]
async fn input_types_are_cast_to_the_table_schema() -> TestResult {
    let dir = scratch("cast");
    let table = Arc::new(Schema::new(vec![
        leaf("s", DuckLakeType::Varchar, 1),
        leaf("i", DuckLakeType::Int32, 2),
        nested(
            "l",
            DuckLakeType::List,
            3,
            vec![leaf("element", DuckLakeType::Int64, 4)],
        ),
    ]));
    // Different names, Utf8View, Int64 and an `item` list without field ids.
    let input = RecordBatch::try_from_iter(vec![
        (
            "x",
            Arc::new(StringViewArray::from(vec![Some("a"), None])) as ArrayRef,
        ),
        ("y", Arc::new(Int64Array::from(vec![Some(1), Some(2)]))),
        (
            "z",
            Arc::new(ListArray::from_iter_primitive::<
                datafusion::arrow::datatypes::Int64Type,
                _,
                _,
            >(vec![Some(vec![Some(7)]), None])),
        ),
    ])?;
    let mut writer =
        DataFileWriter::new(store(), &dir, Arc::clone(&table), WriteOptions::default());
    writer.write(&input).await?;
    let files = writer.finish().await?;
    let (metadata, read) = read_back(&files[0].url);
    let mut ids = Vec::new();
    field_ids(
        &metadata.file_metadata().schema_descr().root_schema_ptr(),
        "",
        &mut ids,
    );
    assert_eq!(
        ids,
        vec![
            ("s".to_string(), Some(1)),
            ("i".to_string(), Some(2)),
            ("l".to_string(), Some(3)),
            ("l.list".to_string(), None),
            ("l.list.element".to_string(), Some(4)),
        ]
    );
    assert_eq!(read.num_rows(), 2);
    let stats = stats_by_id(&files[0]);
    assert_eq!(summary(&stats, 2), (Some("1"), Some("2"), 2, 0, None));
    assert_eq!(summary(&stats, 4), (Some("7"), Some("7"), 1, 1, None));

    // A value that does not fit is an error naming the table directory.
    let too_big = RecordBatch::try_from_iter(vec![
        ("x", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ("y", Arc::new(Int64Array::from(vec![i64::MAX]))),
        (
            "z",
            Arc::new(ListArray::from_iter_primitive::<
                datafusion::arrow::datatypes::Int64Type,
                _,
                _,
            >(vec![None::<Vec<Option<i64>>>])),
        ),
    ])?;
    let mut writer = DataFileWriter::new(store(), &dir, table, WriteOptions::default());
    let error = writer.write(&too_big).await.expect_err("overflow");
    assert!(
        matches!(&error, Error::DataFile { path, .. } if path == &dir),
        "{error}"
    );
    assert!(error.to_string().contains("column 'i'"), "{error}");
    writer.abort().await?;
    Ok(())
}

/// `field` without metadata at any depth (what DataFusion hands over).
fn strip(field: &Field) -> Field {
    let data_type = match field.data_type() {
        DataType::List(c) => DataType::List(Arc::new(strip(c))),
        DataType::Struct(cs) => DataType::Struct(cs.iter().map(|c| strip(c)).collect()),
        DataType::Map(e, sorted) => DataType::Map(Arc::new(strip(e)), *sorted),
        other => other.clone(),
    };
    Field::new(field.name(), data_type, field.is_nullable())
}

#[tokio::test]
async fn batches_without_field_ids_are_accepted() -> TestResult {
    let dir = scratch("no-field-ids");
    let (schema, batch) = all_types();
    let stripped: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| datafusion::arrow::compute::cast(c, strip(f).data_type()))
        .collect::<std::result::Result<_, _>>()?;
    let stripped_schema = Arc::new(Schema::new(
        schema.fields().iter().map(|f| strip(f)).collect::<Vec<_>>(),
    ));
    let input = RecordBatch::try_new(stripped_schema, stripped)?;
    let mut writer =
        DataFileWriter::new(store(), &dir, Arc::clone(&schema), WriteOptions::default());
    writer.write(&input).await?;
    let files = writer.finish().await?;
    let (_, read) = read_back(&files[0].url);
    for name in ["l", "st", "m", "ll", "sl", "gl"] {
        let i = schema.index_of(name)?;
        assert_eq!(read.column(i), batch.column(i), "column {name}");
    }
    Ok(())
}

#[tokio::test]
async fn long_strings_get_no_bounds() -> TestResult {
    let dir = scratch("long-strings");
    let schema = Arc::new(Schema::new(vec![
        leaf("short", DuckLakeType::Varchar, 1),
        leaf("long", DuckLakeType::Varchar, 2),
        leaf("nul", DuckLakeType::Varchar, 3),
    ]));
    let exactly = "é".repeat(128); // 256 bytes
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec![exactly.as_str(), "a"])),
            Arc::new(StringArray::from(vec!["a".repeat(257), "b".to_string()])),
            Arc::new(StringArray::from(vec!["a\0b", "c"])),
        ],
    )?;
    let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
    writer.write(&batch).await?;
    let files = writer.finish().await?;
    let stats = stats_by_id(&files[0]);
    assert_eq!(
        summary(&stats, 1),
        (Some("a"), Some(exactly.as_str()), 2, 0, None)
    );
    assert_eq!(summary(&stats, 2), (None, None, 2, 0, None));
    assert_eq!(summary(&stats, 3), (None, None, 2, 0, None));
    Ok(())
}

#[tokio::test]
async fn hidden_columns_get_no_stats() -> TestResult {
    let dir = scratch("hidden");
    let schema = Arc::new(Schema::new(vec![
        leaf("a", DuckLakeType::Int32, 1),
        with_id(
            Field::new(crate::spec::ROW_ID_COLUMN, DataType::Int64, true),
            i64::from(crate::spec::ROW_ID_FIELD_ID),
        ),
        with_id(
            Field::new(SNAPSHOT_ID_COLUMN, DataType::Int64, true),
            i64::from(SNAPSHOT_ID_FIELD_ID),
        ),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int32Array::from(vec![1, 2])),
            Arc::new(Int64Array::from(vec![10, 11])),
            Arc::new(Int64Array::from(vec![3, 4])),
        ],
    )?;
    let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
    writer.write(&batch).await?;
    let files = writer.finish().await?;
    let ids: Vec<i64> = files[0].column_stats.iter().map(|s| s.column_id).collect();
    assert_eq!(ids, vec![1]);
    let (metadata, _) = read_back(&files[0].url);
    let row_id = metadata.file_metadata().schema_descr().column(1);
    assert_eq!(
        row_id.self_type().get_basic_info().id(),
        crate::spec::ROW_ID_FIELD_ID
    );
    Ok(())
}

#[tokio::test]
async fn files_roll_over_at_the_target_size() -> TestResult {
    let dir = scratch("rolling");
    let schema = Arc::new(Schema::new(vec![
        leaf("id", DuckLakeType::Int64, 1),
        leaf("s", DuckLakeType::Varchar, 2),
    ]));
    let options = WriteOptions {
        target_file_size: 200 * 1024,
        row_group_size: 10_000,
        ..WriteOptions::default()
    };
    let mut writer = DataFileWriter::new(store(), &dir, Arc::clone(&schema), options);
    let total = 200_000i64;
    for start in (0..total).step_by(50_000) {
        let ids: Vec<i64> = (start..start + 50_000).collect();
        let strings: Vec<String> = ids
            .iter()
            .map(|i| format!("value-{i:08}-{}", i * 7919 % 1000))
            .collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(strings)),
            ],
        )?;
        writer.write(&batch).await?;
    }
    let files = writer.finish().await?;
    assert!(
        files.len() > 3,
        "expected several files, got {}",
        files.len()
    );
    let mut next_id = 0i64;
    for file in &files {
        let on_disk = std::fs::metadata(&file.url)?.len();
        assert_eq!(file.file_size_bytes, on_disk as i64);
        // Rolled after at most one chunk of 8192 rows past the target.
        assert!(
            file.file_size_bytes < 400 * 1024,
            "{} bytes",
            file.file_size_bytes
        );
        let (metadata, read) = read_back(&file.url);
        assert_eq!(read.num_rows() as i64, file.record_count);
        assert!(
            metadata
                .row_groups()
                .iter()
                .all(|rg| rg.num_rows() <= 10_000)
        );
        let stats = stats_by_id(file);
        let (min, max, values, nulls, _) = summary(&stats, 1);
        assert_eq!(min, Some(next_id.to_string().as_str()));
        next_id += file.record_count;
        assert_eq!(max, Some((next_id - 1).to_string().as_str()));
        assert_eq!((values, nulls), (file.record_count, 0));
    }
    assert_eq!(next_id, total);
    let names: std::collections::HashSet<_> = files.iter().map(|f| &f.file_name).collect();
    assert_eq!(names.len(), files.len());
    Ok(())
}

#[tokio::test]
async fn abort_removes_every_file() -> TestResult {
    let dir = scratch("abort");
    let schema = Arc::new(Schema::new(vec![leaf("id", DuckLakeType::Int64, 1)]));
    // Files are cut after row groups (here of 10000 rows) once at the target.
    let options = WriteOptions {
        target_file_size: 16 * 1024,
        row_group_size: 10_000,
        ..WriteOptions::default()
    };
    let mut writer = DataFileWriter::new(store(), &dir, Arc::clone(&schema), options);
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Int64Array::from(
            (0..50_000).collect::<Vec<i64>>(),
        ))],
    )?;
    writer.write(&batch).await?;
    assert!(std::fs::read_dir(&dir)?.count() > 1, "finished files exist");
    writer.abort().await?;
    assert_eq!(std::fs::read_dir(&dir)?.count(), 0, "directory left empty");

    // delete_files removes finished files; removing them twice is fine.
    let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
    writer.write(&batch).await?;
    let files = writer.finish().await?;
    delete_files(&store(), &files).await;
    delete_files(&store(), &files).await;
    assert_eq!(std::fs::read_dir(&dir)?.count(), 0);
    Ok(())
}

/// DuckDB's file cuts and dictionary rule: an insert smaller than one of
/// DuckDB's row groups is one file whatever the target size; a column more
/// than a fifth distinct is written PLAIN, a repetitive one with a dictionary.
#[tokio::test]
async fn files_are_cut_and_encoded_as_duckdb_does() -> TestResult {
    let dir = scratch("duckdb_cuts");
    let schema = Arc::new(Schema::new(vec![
        leaf("id", DuckLakeType::Int64, 1),
        leaf("k", DuckLakeType::Int64, 2),
    ]));
    let options = WriteOptions {
        target_file_size: 1024,
        ..WriteOptions::default()
    };
    let mut writer = DataFileWriter::new(store(), &dir, Arc::clone(&schema), options);
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from((0..50_000).collect::<Vec<i64>>())),
            Arc::new(Int64Array::from(
                (0..50_000).map(|i| i % 7).collect::<Vec<i64>>(),
            )),
        ],
    )?;
    writer.write(&batch).await?;
    let files = writer.finish().await?;
    assert_eq!(
        files.len(),
        1,
        "50000 rows are less than a DuckDB row group"
    );
    let bytes = std::fs::read(&files[0].url)?;
    let reader =
        datafusion::parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes))?;
    use datafusion::parquet::file::reader::FileReader;
    let row_group = reader.metadata().row_group(0);
    let dictionary = |i: usize| row_group.column(i).dictionary_page_offset().is_some();
    assert!(!dictionary(0), "distinct ids are PLAIN");
    assert!(dictionary(1), "seven values get a dictionary");
    Ok(())
}

#[tokio::test]
async fn bad_schemas_and_values_are_errors() -> TestResult {
    let dir = scratch("errors");
    // Missing field id on a nested child.
    let schema = Arc::new(Schema::new(vec![with_id(
        Field::new(
            "l",
            DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
            true,
        ),
        1,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(ListArray::new_null(
            child_field(schema.field(0).data_type()),
            1,
        ))],
    )?;
    let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
    let error = writer.write(&batch).await.expect_err("no field id");
    assert!(
        error
            .to_string()
            .contains("column 'element' has no field id"),
        "{error}"
    );
    let error = writer.finish().await.expect_err("no field id");
    assert!(matches!(error, Error::DataFile { .. }));

    // Negative intervals cannot be written (like DuckDB).
    let schema = Arc::new(Schema::new(vec![leaf("iv", DuckLakeType::Interval, 1)]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(0, -1, 0),
        ]))],
    )?;
    let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
    let error = writer.write(&batch).await.expect_err("negative interval");
    assert!(error.to_string().contains("negative intervals"), "{error}");
    writer.abort().await?;

    // Out-of-precision decimals are rejected, not truncated.
    let schema = Arc::new(Schema::new(vec![leaf(
        "d",
        DuckLakeType::Decimal {
            precision: 4,
            scale: 1,
        },
        1,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(
            Decimal128Array::from(vec![123_456]).with_precision_and_scale(4, 1)?,
        )],
    )?;
    let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
    assert!(writer.write(&batch).await.is_err());
    writer.abort().await?;
    assert!(std::fs::read_dir(&dir).map_or(0, |d| d.count()) == 0);
    Ok(())
}

#[tokio::test]
async fn delete_files_have_duckdbs_shape() -> TestResult {
    let dir = scratch("delete");
    let data_file = format!("{dir}ducklake-0190a000-0000-7000-8000-000000000000.parquet");
    let file = write_delete_file(&store(), &dir, &data_file, &[3, 1], None).await?;
    assert!(file.file_name.starts_with("ducklake-"));
    assert!(file.file_name.ends_with("-delete.parquet"));
    assert_eq!(file.record_count, 2);
    // Sidecar for manual checks with DuckDB.
    let sidecar = serde_json::json!({
        "url": file.url, "file_name": file.file_name, "record_count": file.record_count,
        "file_size_bytes": file.file_size_bytes, "footer_size": file.footer_size,
        "data_file": data_file,
    });
    std::fs::write(format!("{dir}written.json"), sidecar.to_string())?;
    assert!(file.column_stats.is_empty());
    assert_eq!(
        file.file_size_bytes,
        std::fs::metadata(&file.url)?.len() as i64
    );
    assert!(file.footer_size.is_some());
    let (metadata, read) = read_back(&file.url);
    assert!(metadata.file_metadata().key_value_metadata().is_none());
    let schema = metadata.file_metadata().schema_descr();
    let columns: Vec<_> = schema
        .columns()
        .iter()
        .map(|c| {
            let info = c.self_type().get_basic_info();
            (
                c.name().to_string(),
                c.physical_type(),
                info.converted_type(),
                info.id(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        vec![
            (
                "file_path".to_string(),
                PhysicalType::BYTE_ARRAY,
                ConvertedType::UTF8,
                DELETE_FILE_PATH_FIELD_ID
            ),
            (
                "pos".to_string(),
                PhysicalType::INT64,
                ConvertedType::INT_64,
                DELETE_POS_FIELD_ID
            ),
        ]
    );
    let paths = datafusion::arrow::compute::cast(read.column(0), &DataType::Utf8)?;
    assert!(
        paths
            .as_string::<i32>()
            .iter()
            .all(|p| p == Some(data_file.as_str()))
    );
    assert_eq!(
        read.column(1)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .values(),
        &[1, 3]
    );

    // With snapshot ids: sorted, duplicates keep the earliest snapshot.
    let file = write_delete_file(
        &store(),
        &dir,
        &data_file,
        &[100, 7, 50, 7],
        Some(&[9, 9, 7, 8]),
    )
    .await?;
    assert_eq!(file.record_count, 3);
    let (metadata, read) = read_back(&file.url);
    let last = metadata.file_metadata().schema_descr().column(2);
    assert_eq!(last.name(), SNAPSHOT_ID_COLUMN);
    assert_eq!(last.self_type().get_basic_info().id(), SNAPSHOT_ID_FIELD_ID);
    let int64 = |i: usize| {
        read.column(i)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .values()
            .to_vec()
    };
    assert_eq!(int64(1), vec![7, 50, 100]);
    assert_eq!(int64(2), vec![8, 7, 9]);

    // Bad input.
    assert!(
        write_delete_file(&store(), &dir, &data_file, &[], None)
            .await
            .is_err()
    );
    assert!(
        write_delete_file(&store(), &dir, &data_file, &[-1], None)
            .await
            .is_err()
    );
    assert!(
        write_delete_file(&store(), &dir, &data_file, &[1, 2], Some(&[1]))
            .await
            .is_err()
    );
    Ok(())
}
