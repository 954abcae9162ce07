//! Round trips and DuckDB's renderings, family by family.

use super::*;
use datafusion::arrow::datatypes::Field;

fn list_of(element: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("element", element, true)))
}

fn struct_of(fields: Vec<(&str, DataType)>) -> DataType {
    DataType::Struct(Fields::from(
        fields
            .into_iter()
            .map(|(name, dt)| Field::new(name, dt, true))
            .collect::<Vec<_>>(),
    ))
}

fn map_of(key: DataType, value: DataType) -> DataType {
    let entries = DataType::Struct(Fields::from(vec![
        Field::new("key", key, false),
        Field::new("value", value, true),
    ]));
    DataType::Map(Arc::new(Field::new("key_value", entries, false)), false)
}

fn ts(unit: TimeUnit) -> DataType {
    DataType::Timestamp(unit, None)
}

fn tstz() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

fn interval() -> DataType {
    DataType::Interval(IntervalUnit::MonthDayNano)
}

fn parse(text: &str, dt: &DataType) -> ScalarValue {
    match parse_duckdb_text(text, dt) {
        Ok(v) => v,
        Err(e) => panic!("parsing '{text}' as {dt}: {e}"),
    }
}

fn format(value: &ScalarValue) -> String {
    format_duckdb_text(value)
        .unwrap_or_else(|e| panic!("formatting {value:?}: {e}"))
        .unwrap_or_else(|| panic!("{value:?} formatted as NULL"))
}

/// `text` is canonical: it parses, formats back to itself, and re-parses equal.
fn canonical(text: &str, dt: &DataType) {
    let value = parse(text, dt);
    assert_eq!(value.data_type(), *dt, "type of '{text}'");
    let formatted = format(&value);
    assert_eq!(formatted, text, "format(parse('{text}')) as {dt}");
    assert_eq!(parse(&formatted, dt), value, "re-parse of '{text}'");
}

/// `text` parses to the value whose canonical text is `expected`.
fn normalises(text: &str, dt: &DataType, expected: &str) {
    let value = parse(text, dt);
    assert_eq!(format(&value), expected, "'{text}' as {dt}");
    assert_eq!(parse(expected, dt), value, "'{expected}' as {dt}");
}

/// `format(value)` is `expected` and parses back to `value`.
fn formats(value: ScalarValue, expected: &str) {
    assert_eq!(format(&value), expected, "{value:?}");
    let back = parse(expected, &value.data_type());
    assert_eq!(back, value, "parse('{expected}')");
}

fn corrupt_message(text: &str, dt: &DataType) -> String {
    match parse_duckdb_text(text, dt) {
        Err(Error::Corrupt(message)) => message,
        other => panic!("'{text}' as {dt}: expected Corrupt, got {other:?}"),
    }
}

fn f64_text(v: f64) -> String {
    format(&ScalarValue::Float64(Some(v)))
}

fn f32_text(v: f32) -> String {
    format(&ScalarValue::Float32(Some(v)))
}

fn micros(text: &str) -> i64 {
    match parse(text, &tstz()) {
        ScalarValue::TimestampMicrosecond(Some(v), _) => v,
        other => panic!("{other:?}"),
    }
}

fn time_micros(text: &str) -> i64 {
    match parse(text, &DataType::Time64(TimeUnit::Microsecond)) {
        ScalarValue::Time64Microsecond(Some(v)) => v,
        other => panic!("{other:?}"),
    }
}

fn mdn(text: &str) -> (i32, i32, i64) {
    match parse(text, &interval()) {
        ScalarValue::IntervalMonthDayNano(Some(v)) => (v.months, v.days, v.nanoseconds),
        other => panic!("{other:?}"),
    }
}

const HOUR_NS: i64 = 3_600_000_000_000;

#[test]
fn booleans() {
    canonical("true", &DataType::Boolean);
    canonical("false", &DataType::Boolean);
    for (text, expected) in [("t", true), ("f", false), ("1", true), ("0", false)] {
        assert_eq!(
            parse(text, &DataType::Boolean),
            ScalarValue::Boolean(Some(expected))
        );
    }
    assert_eq!(
        parse("TRUE", &DataType::Boolean),
        ScalarValue::Boolean(Some(true))
    );
    corrupt_message("maybe", &DataType::Boolean);
}

#[test]
fn integers() {
    canonical("-8", &DataType::Int8);
    canonical("127", &DataType::Int8);
    canonical("-128", &DataType::Int8);
    canonical("32767", &DataType::Int16);
    canonical("-2147483648", &DataType::Int32);
    canonical("9223372036854775807", &DataType::Int64);
    canonical("-9223372036854775808", &DataType::Int64);
    canonical("255", &DataType::UInt8);
    canonical("65535", &DataType::UInt16);
    canonical("4294967295", &DataType::UInt32);
    canonical("18446744073709551615", &DataType::UInt64);
    canonical("0", &DataType::UInt64);
    normalises(" 5 ", &DataType::Int32, "5");
    normalises("+5", &DataType::Int32, "5");
    normalises("1e2", &DataType::Int32, "100");
    normalises("1.5", &DataType::Int32, "2");
    normalises("-1.5", &DataType::Int32, "-2");
    corrupt_message("128", &DataType::Int8);
    corrupt_message("-1", &DataType::UInt64);
    corrupt_message("18446744073709551616", &DataType::UInt64);
    corrupt_message("", &DataType::Int32);
    corrupt_message("1 2", &DataType::Int32);
    corrupt_message("0x10", &DataType::Int32);
    corrupt_message("1e999", &DataType::Int64);
}

#[test]
fn hugeints_as_decimal_38_0() {
    let dt = DataType::Decimal128(38, 0);
    canonical("-12345678901234567890123", &dt);
    canonical("0", &dt);
    canonical("99999999999999999999999999999999999999", &dt);
    assert_eq!(parse("123", &dt), ScalarValue::Decimal128(Some(123), 38, 0));
    // HUGEINT's range is wider than DECIMAL(38,0).
    let message = corrupt_message("-170141183460469231731687303715884105728", &dt);
    assert!(message.contains("does not fit decimal(38,0)"), "{message}");
}

#[test]
fn floats() {
    for text in [
        "3.14",
        "nan",
        "inf",
        "-inf",
        "1e+300",
        "1e-07",
        "0.0",
        "-0.0",
        "-1.5",
        "50.25",
        "1.0",
        "100.0",
        "1000000000000000.0",
        "1e+16",
        "0.0001",
        "1e-05",
        "1.5e-05",
        "123456789.123",
        "2.5e-300",
        "1.7976931348623157e+308",
        "5e-324",
        "124.875",
    ] {
        canonical(text, &DataType::Float64);
    }
    for text in [
        "3.14",
        "0.1",
        "1e-05",
        "16777216.0",
        "3.4e+38",
        "1e+16",
        "249.75",
    ] {
        canonical(text, &DataType::Float32);
    }
    // DuckDB's own renderings, cross-checked with DuckDB 1.5.5.
    assert_eq!(f64_text(1e15), "1000000000000000.0");
    assert_eq!(f64_text(1e16), "1e+16");
    assert_eq!(f64_text(1e20), "1e+20");
    assert_eq!(f64_text(123_456_789_012_345.0), "123456789012345.0");
    assert_eq!(f64_text(1_234_567_890_123_456.0), "1234567890123456.0");
    assert_eq!(f64_text(f64::from(1e30_f32)), "1.0000000150474662e+30");
    assert_eq!(f32_text(1e30), "1e+30");
    assert_eq!(f32_text(123.0), "123.0");
    assert_eq!(f32_text(-0.0), "-0.0");
    // PostgreSQL's float text.
    normalises("NaN", &DataType::Float64, "nan");
    normalises("Infinity", &DataType::Float64, "inf");
    normalises("-Infinity", &DataType::Float32, "-inf");
    normalises("1E+300", &DataType::Float64, "1e+300");
    normalises("1e300", &DataType::Float64, "1e+300");
    assert!(matches!(
        parse("nan", &DataType::Float32),
        ScalarValue::Float32(Some(v)) if v.is_nan()
    ));
    corrupt_message("pi", &DataType::Float64);
    corrupt_message("", &DataType::Float64);
}

#[test]
fn decimals() {
    canonical("12345.678", &DataType::Decimal128(18, 3));
    canonical("-0.001", &DataType::Decimal128(18, 3));
    canonical("1.5000000000", &DataType::Decimal128(38, 10));
    canonical("-99.9999999999", &DataType::Decimal128(38, 10));
    canonical("142.714", &DataType::Decimal128(18, 3));
    canonical("0.00", &DataType::Decimal128(4, 2));
    canonical("-0.5", &DataType::Decimal128(4, 1));
    canonical("-0.01", &DataType::Decimal128(5, 2));
    canonical("99.99", &DataType::Decimal128(4, 2));
    canonical(".123", &DataType::Decimal128(3, 3));
    canonical("-.0644", &DataType::Decimal128(4, 4));
    canonical(".0000", &DataType::Decimal128(4, 4));
    canonical("[.500, -.010]", &list_of(DataType::Decimal128(3, 3)));
    normalises("0.5", &DataType::Decimal128(1, 1), ".5");
    assert_eq!(
        parse("-2.25", &DataType::Decimal128(9, 2)),
        ScalarValue::Decimal128(Some(-225), 9, 2)
    );
    // Fewer or more digits than the scale: rescaled, rounding half away from zero.
    normalises("1.5", &DataType::Decimal128(10, 4), "1.5000");
    normalises("1", &DataType::Decimal128(10, 4), "1.0000");
    normalises("1.235", &DataType::Decimal128(4, 2), "1.24");
    normalises("1.225", &DataType::Decimal128(4, 2), "1.23");
    normalises("-1.235", &DataType::Decimal128(4, 2), "-1.24");
    normalises("1.234", &DataType::Decimal128(4, 2), "1.23");
    normalises(".5", &DataType::Decimal128(4, 2), "0.50");
    normalises("5.", &DataType::Decimal128(4, 2), "5.00");
    normalises("1e2", &DataType::Decimal128(5, 1), "100.0");
    normalises("0.004", &DataType::Decimal128(4, 2), "0.00");
    normalises("0.005", &DataType::Decimal128(4, 2), "0.01");
    normalises("-0.000", &DataType::Decimal128(4, 2), "0.00");
    normalises(
        "333.0000000000",
        &DataType::Decimal128(38, 10),
        "333.0000000000",
    );
    let message = corrupt_message("12345.6", &DataType::Decimal128(4, 1));
    assert!(message.contains("'12345.6'"), "{message}");
    assert!(message.contains("Decimal128(4, 1)"), "{message}");
    corrupt_message("99.995", &DataType::Decimal128(4, 2));
    corrupt_message("NaN", &DataType::Decimal128(4, 2));
    corrupt_message("1.2.3", &DataType::Decimal128(4, 2));
    let largest = 10i128.pow(38) - 1;
    formats(
        ScalarValue::Decimal128(Some(-largest), 38, 0),
        &(-largest).to_string(),
    );
    assert_eq!(
        format(&ScalarValue::Decimal128(Some(i128::MIN), 38, 0)),
        i128::MIN.to_string()
    );
    assert_eq!(format(&ScalarValue::Decimal128(Some(12), 38, -2)), "1200");
    formats(ScalarValue::Decimal128(Some(-5), 38, 10), "-0.0000000005");
}

#[test]
fn dates() {
    let dt = DataType::Date32;
    canonical("2024-01-15", &dt);
    canonical("1970-01-01", &dt);
    canonical("2020-02-29", &dt);
    canonical("0001-01-01", &dt);
    canonical("0044-03-15 (BC)", &dt);
    canonical("0001-01-01 (BC)", &dt);
    canonical("10000-01-01", &dt);
    canonical("290308-12-22", &dt);
    canonical("infinity", &dt);
    canonical("-infinity", &dt);
    assert_eq!(parse("1970-01-02", &dt), ScalarValue::Date32(Some(1)));
    assert_eq!(parse("1969-12-31", &dt), ScalarValue::Date32(Some(-1)));
    assert_eq!(parse("2024-01-15", &dt), ScalarValue::Date32(Some(19737)));
    assert_eq!(parse("infinity", &dt), ScalarValue::Date32(Some(i32::MAX)));
    assert_eq!(
        parse("-infinity", &dt),
        ScalarValue::Date32(Some(-i32::MAX))
    );
    normalises("-0044-03-15", &dt, "0045-03-15 (BC)");
    normalises("0000-01-01", &dt, "0001-01-01 (BC)");
    normalises(" 2024-1-5 ", &dt, "2024-01-05");
    for bad in [
        "2024-02-30",
        "2023-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024/01/15",
        "x",
    ] {
        corrupt_message(bad, &dt);
    }
    corrupt_message("2024-01-15 12:00:00", &dt);
}

#[test]
fn civil_conversion_is_consistent() {
    for days in (-800_000..800_000).step_by(97) {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
}

#[test]
fn times() {
    let us = DataType::Time64(TimeUnit::Microsecond);
    let ns = DataType::Time64(TimeUnit::Nanosecond);
    for text in [
        "12:30:00",
        "12:30:00.5",
        "12:30:00.123456",
        "00:00:00",
        "23:59:59.999999",
        "24:00:00",
        "00:16:39",
    ] {
        canonical(text, &us);
    }
    for text in [
        "12:30:00.123456789",
        "12:30:00.1",
        "00:00:00.000000001",
        "00:00:00",
    ] {
        canonical(text, &ns);
    }
    assert_eq!(time_micros("12:30:00.5"), 45_000_500_000);
    normalises("12:30", &us, "12:30:00");
    // Sub-microsecond digits are truncated, like DuckDB.
    normalises("12:30:00.1234567", &us, "12:30:00.123456");
    // timetz: normalised to UTC.
    assert_eq!(time_micros("12:30:00+02"), time_micros("10:30:00"));
    assert_eq!(time_micros("12:30:00+05:30"), time_micros("07:00:00"));
    assert_eq!(time_micros("12:30:00.5-05:30"), time_micros("18:00:00.5"));
    assert_eq!(time_micros("01:00:00+05:30"), time_micros("19:30:00"));
    assert_eq!(time_micros("23:00:00-02"), time_micros("01:00:00"));
    assert_eq!(time_micros("12:30:00+00"), time_micros("12:30:00"));
    canonical("12:30:00", &DataType::Time32(TimeUnit::Second));
    canonical("12:30:00.25", &DataType::Time32(TimeUnit::Millisecond));
    for bad in [
        "25:00:00", "24:00:01", "12:60:00", "12:30:60", "12", "noon", "12:3:00",
    ] {
        corrupt_message(bad, &us);
    }
    corrupt_message("12:30:00+2x", &us);
}

#[test]
fn timestamps() {
    let us = ts(TimeUnit::Microsecond);
    for text in [
        "2024-01-15 12:30:00.123456",
        "2024-01-15 12:30:00",
        "1970-01-01 00:00:00",
        "2020-02-11 15:00:00",
        "1969-12-31 23:59:59.999999",
        "0044-03-15 (BC) 12:00:00",
        "infinity",
        "-infinity",
    ] {
        canonical(text, &us);
    }
    assert_eq!(
        parse("infinity", &us),
        ScalarValue::TimestampMicrosecond(Some(i64::MAX), None)
    );
    assert_eq!(
        parse("-infinity", &us),
        ScalarValue::TimestampMicrosecond(Some(-i64::MAX), None)
    );
    assert_eq!(
        parse("1970-01-01 00:00:01.5", &us),
        ScalarValue::TimestampMicrosecond(Some(1_500_000), None)
    );
    normalises("2024-01-15T12:30:00", &us, "2024-01-15 12:30:00");
    normalises("2024-01-15", &us, "2024-01-15 00:00:00");
    normalises("2024-01-15 12:30", &us, "2024-01-15 12:30:00");
    normalises(
        "2024-01-15 12:30:00.1234567",
        &us,
        "2024-01-15 12:30:00.123456",
    );
    normalises(
        "2024-01-15 12:30:00.9999999",
        &us,
        "2024-01-15 12:30:00.999999",
    );
    // A plain TIMESTAMP ignores an offset, as DuckDB does.
    normalises("2024-01-15 12:30:00+02", &us, "2024-01-15 12:30:00");

    let ns = ts(TimeUnit::Nanosecond);
    canonical("2024-01-15 12:30:00.123456789", &ns);
    canonical("2024-01-15 12:30:00.1234567", &ns);
    canonical("2020-01-01 00:03:20", &ns);
    canonical("infinity", &ns);
    canonical("-infinity", &ns);
    corrupt_message("3000-01-01 00:00:00", &ns);

    let ms = ts(TimeUnit::Millisecond);
    canonical("2024-01-15 12:30:00.123", &ms);
    canonical("2024-01-15 12:30:00.5", &ms);
    canonical("-infinity", &ms);
    normalises("2024-01-15 12:30:00.1235", &ms, "2024-01-15 12:30:00.124");
    normalises("2024-01-15 12:30:00.1234", &ms, "2024-01-15 12:30:00.123");

    let s = ts(TimeUnit::Second);
    canonical("2024-01-15 12:30:01", &s);
    canonical("infinity", &s);
    normalises("2024-01-15 12:30:00.5", &s, "2024-01-15 12:30:01");
    normalises("2024-01-15 12:30:00.4", &s, "2024-01-15 12:30:00");

    for bad in [
        "2024-01-15 25:00:00",
        "2024-01-15X12:00:00",
        "yesterday",
        "2024-01-15 12",
    ] {
        corrupt_message(bad, &us);
    }
}

#[test]
fn timestamptz() {
    let dt = tstz();
    for text in [
        "2000-07-01 06:59:59.999999+00",
        "2024-01-15 12:30:00.123456+00",
        "2020-01-01 00:00:00+00",
        "infinity",
        "-infinity",
    ] {
        canonical(text, &dt);
    }
    let base = micros("2024-01-15 12:30:00+00");
    assert_eq!(micros("2024-01-15 12:30:00+02"), base - 2 * 3_600_000_000);
    assert_eq!(micros("2024-01-15 12:30:00-08"), base + 8 * 3_600_000_000);
    assert_eq!(micros("2024-01-15 12:30:00+05:30"), base - 19_800_000_000);
    assert_eq!(micros("2024-01-15 12:30:00+0530"), base - 19_800_000_000);
    assert_eq!(micros("2024-01-15T12:30:00Z"), base);
    assert_eq!(micros("2024-01-15 12:30:00 UTC"), base);
    assert_eq!(micros("2024-01-15 12:30:00"), base);
    normalises("2024-01-15 01:00:00+02", &dt, "2024-01-14 23:00:00+00");
    let other_zone = DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("+02:00")));
    assert_eq!(
        format(&parse("2024-01-15 12:30:00+00", &other_zone)),
        "2024-01-15 12:30:00+00"
    );
    corrupt_message("2024-01-15 12:30:00+2", &dt);
    corrupt_message("2024-01-15 12:30:00 Europe/Berlin", &dt);
}

#[test]
fn intervals() {
    let dt = interval();
    for text in [
        "1 year 2 months 3 days 04:00:00",
        "25:00:00",
        "200 days",
        "-1 day",
        "1 day -01:00:00",
        "00:00:00.5",
        "00:00:00",
        "-1 year -2 months",
        "1 year 1 month",
        "1 month",
        "2 years",
        "-24:57:00",
        "00:00:00.000001",
        "-00:00:00.000001",
        "100000:00:00",
        "1 day 02:00:00",
        "00:00:00.000000001",
    ] {
        canonical(text, &dt);
    }
    assert_eq!(mdn("1 year 2 months 3 days 04:00:00"), (14, 3, 4 * HOUR_NS));
    assert_eq!(mdn("25:00:00"), (0, 0, 25 * HOUR_NS));
    assert_eq!(mdn("1 day -01:00:00"), (0, 1, -HOUR_NS));
    assert_eq!(mdn("00:00:00.5"), (0, 0, 500_000_000));
    // PostgreSQL's interval text.
    normalises(
        "1 year 2 mons 3 days 04:00:00",
        &dt,
        "1 year 2 months 3 days 04:00:00",
    );
    normalises("1 mon", &dt, "1 month");
    normalises("-1 days", &dt, "-1 day");
    normalises("-2 days", &dt, "-2 days");
    normalises("-1 years -2 mons", &dt, "-1 year -2 months");
    normalises("-1 days +02:00:00", &dt, "-1 day 02:00:00");
    normalises("@ 1 day 2 hours ago", &dt, "-1 day -02:00:00");
    // Other spellings DuckDB accepts.
    normalises("13 months", &dt, "1 year 1 month");
    normalises("2 weeks", &dt, "14 days");
    normalises("1.5 days", &dt, "1 day 12:00:00");
    normalises("1.5 years", &dt, "1 year 6 months");
    normalises("1 hour 30 minutes", &dt, "01:30:00");
    normalises("1:30", &dt, "01:30:00");
    normalises("0.5 seconds", &dt, "00:00:00.5");
    normalises("3days", &dt, "3 days");
    normalises(
        "0 months 1 days 7200000000 microseconds",
        &dt,
        "1 day 02:00:00",
    );
    normalises("-25 hours 3 minutes", &dt, "-24:57:00");
    for bad in [
        "",
        "1 fortnight",
        "5",
        "days",
        "1.5 months",
        "1:2:3",
        "99999999999 years",
    ] {
        corrupt_message(bad, &dt);
    }
    formats(
        ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(-13, -2, 0))),
        "-1 year -1 month -2 days",
    );
    assert_eq!(
        format(&ScalarValue::IntervalYearMonth(Some(14))),
        "1 year 2 months"
    );
    assert_eq!(
        format(&ScalarValue::IntervalDayTime(Some(IntervalDayTime::new(
            1, 1500
        )))),
        "1 day 00:00:01.5"
    );
}

#[test]
fn strings() {
    for text in [
        "hello",
        "",
        "NULL",
        "quote's \"dq\" ,comma",
        "{\"k\": [1,2]}",
        " x ",
        "é",
    ] {
        canonical(text, &DataType::Utf8);
    }
    canonical("row_0", &DataType::Utf8View);
    canonical("row_0", &DataType::LargeUtf8);
}

#[test]
fn blobs() {
    let dt = DataType::Binary;
    canonical("\\x00\\xFFab", &dt);
    canonical("", &dt);
    canonical("b0", &dt);
    canonical("\\x00\\x01a\\x27b\\x22\\x5C~\\x7F\\x80\\xFF", &dt);
    assert_eq!(
        parse("\\x00\\xFFab", &dt),
        ScalarValue::Binary(Some(vec![0, 255, b'a', b'b']))
    );
    assert_eq!(
        parse("\\xff'\"", &dt),
        ScalarValue::Binary(Some(vec![255, b'\'', b'"']))
    );
    formats(
        ScalarValue::Binary(Some(vec![0, 1, b'a', b'\'', b'b', b'"', b'\\', b' ', 0x7F])),
        "\\x00\\x01a\\x27b\\x22\\x5C \\x7F",
    );
    canonical("\\x00ab", &DataType::LargeBinary);
    canonical("\\x00ab", &DataType::BinaryView);
    for bad in ["\\x4", "\\X41", "\\", "a\\b", "é", "\\xZZ", "\\x+4"] {
        corrupt_message(bad, &dt);
    }
}

#[test]
fn uuids() {
    let dt = DataType::FixedSizeBinary(16);
    canonical("550e8400-e29b-41d4-a716-446655440000", &dt);
    canonical("00000000-0000-0000-0000-000000000001", &dt);
    normalises(
        "550E8400-E29B-41D4-A716-446655440000",
        &dt,
        "550e8400-e29b-41d4-a716-446655440000",
    );
    normalises(
        "{550e8400-e29b-41d4-a716-446655440000}",
        &dt,
        "550e8400-e29b-41d4-a716-446655440000",
    );
    let value = parse("00000000-0000-0000-0000-000000000001", &dt);
    let mut bytes = vec![0; 16];
    bytes[15] = 1;
    assert_eq!(value, ScalarValue::FixedSizeBinary(16, Some(bytes)));
    corrupt_message("550e8400-e29b-41d4-a716", &dt);
    corrupt_message("not-a-uuid", &dt);
    canonical("ab\\x00", &DataType::FixedSizeBinary(3));
    corrupt_message("ab", &DataType::FixedSizeBinary(3));
}

#[test]
fn lists() {
    let ints = list_of(DataType::Int32);
    for text in ["[1, 2, 3]", "[]", "[NULL, 5]", "[NULL]", "[200, 201]"] {
        canonical(text, &ints);
    }
    let value = parse("[NULL, 5]", &ints);
    let ScalarValue::List(array) = &value else {
        panic!("{value:?}");
    };
    assert_eq!(array.value_length(0), 2);
    assert!(array.value(0).is_null(0));
    normalises("[1,2,3]", &ints, "[1, 2, 3]");
    normalises(" [ 1 , 2 ] ", &ints, "[1, 2]");
    normalises("[ ]", &ints, "[]");
    normalises("[null, Null]", &ints, "[NULL, NULL]");
    normalises("['1', \"2\"]", &ints, "[1, 2]");

    let nested = list_of(list_of(DataType::Utf8));
    canonical("[[a, b], [c]]", &nested);
    canonical("[[NULL]]", &nested);
    canonical("[[s200]]", &nested);
    canonical("[[], NULL, [x]]", &nested);

    let strings = list_of(DataType::Utf8);
    let text = r#"['a,b', 'c]d', 'q\'uote', 'dq"x', ' lead', 'NULL', NULL, '']"#;
    canonical(text, &strings);
    let expected: Vec<Option<&str>> = vec![
        Some("a,b"),
        Some("c]d"),
        Some("q'uote"),
        Some("dq\"x"),
        Some(" lead"),
        Some("NULL"),
        None,
        Some(""),
    ];
    let expected = ScalarValue::List(Arc::new(
        ListArray::try_new(
            Arc::new(Field::new("element", DataType::Utf8, true)),
            OffsetBuffer::from_lengths([expected.len()]),
            Arc::new(datafusion::arrow::array::StringArray::from(expected)),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}")),
    ));
    assert_eq!(parse(text, &strings), expected);
    // DuckDB's quoting rules, cross-checked with DuckDB 1.5.5.
    canonical(
        r"[x, 'it\'s', a\b, 'null', 'NULL', ' x', 'x ', a b, 'x(', é, '', 'a=b', 'a:b', '{', '\\\'']",
        &strings,
    );
    normalises("[a[b]c, a(b,c)]", &strings, "['a[b]c', 'a(b,c)']");
    normalises("[ab'c'd]", &strings, "[abcd]");
    normalises(r#"["hello", "wo,rld"]"#, &strings, "[hello, 'wo,rld']");
    normalises(r"['a\b']", &strings, r"[a\b]");
    normalises(r"['a\\b']", &strings, r"[a\b]");
    normalises("[a\tb, '\tx']", &strings, "[a\tb, '\tx']");

    canonical(
        "['2024-01-01 00:00:00.5']",
        &list_of(ts(TimeUnit::Microsecond)),
    );
    canonical("['2024-01-01 00:00:00+00']", &list_of(tstz()));
    canonical(
        "['12:30:00']",
        &list_of(DataType::Time64(TimeUnit::Microsecond)),
    );
    canonical("[2024-01-15, infinity]", &list_of(DataType::Date32));
    canonical("[1.50, -2.25]", &list_of(DataType::Decimal128(5, 2)));
    canonical("[\\x00\\x01]", &list_of(DataType::Binary));
    canonical("[\\x00\\x01, 'a,b', \\x27]", &list_of(DataType::Binary));
    canonical("[nan, 1e-07, 0.0, -inf]", &list_of(DataType::Float64));
    canonical("[true, false, NULL]", &list_of(DataType::Boolean));
    canonical("[1 day, '01:00:00']", &list_of(interval()));
    canonical(
        "[550e8400-e29b-41d4-a716-446655440000]",
        &list_of(DataType::FixedSizeBinary(16)),
    );
    canonical("['{\"a\": 1}']", &strings);

    for bad in [
        "[1, 2", "[1] x", "1, 2", "[1,]", "[a]", "[1 2]", "NULL", "", "['x]",
    ] {
        corrupt_message(bad, &ints);
    }
    let message = corrupt_message("[1, x]", &ints);
    assert!(
        message.contains("'[1, x]'") && message.contains("'x'"),
        "{message}"
    );
}

#[test]
fn structs() {
    let st = struct_of(vec![("a", DataType::Int32), ("b", DataType::Utf8)]);
    canonical("{'a': 10, 'b': x}", &st);
    canonical("{'a': NULL, 'b': NULL}", &st);
    canonical("{'a': 1, 'b': 'it\\'s'}", &st);
    canonical("{'a': 1, 'b': 'null'}", &st);
    canonical("{'a': 1, 'b': ''}", &st);
    // DuckLake 1.5.5 writes top-level struct children as SQL literals.
    normalises("{'a': 10, 'b': 'x'}", &st, "{'a': 10, 'b': x}");
    normalises("{'a': 200, 'b': 'v200'}", &st, "{'a': 200, 'b': v200}");
    normalises("{'a': 1, 'b': 'it''s'}", &st, "{'a': 1, 'b': 'it\\'s'}");
    normalises("{'a': 1, 'b': 'a\\b'}", &st, "{'a': 1, 'b': a\\b}");
    normalises("{a: 1, \"b\": x}", &st, "{'a': 1, 'b': x}");
    normalises("{'b': x}", &st, "{'a': NULL, 'b': x}");
    normalises("{'B': x, 'A': 2}", &st, "{'a': 2, 'b': x}");
    normalises("(1, x)", &st, "{'a': 1, 'b': x}");
    normalises("{}", &st, "{'a': NULL, 'b': NULL}");

    let odd = struct_of(vec![
        ("a b", DataType::Utf8),
        ("c", list_of(DataType::Int32)),
    ]);
    canonical("{'a b': 'x, y', 'c': [1, NULL]}", &odd);
    canonical("{'a b': NULL, 'c': []}", &odd);

    let quoted_keys = struct_of(vec![("it's", DataType::Int32), ("a\"b", DataType::Int32)]);
    canonical("{'it\\'s': 1, 'a\"b': 2}", &quoted_keys);
    normalises(
        "{'it''s': 1, 'a\"b': 2}",
        &quoted_keys,
        "{'it\\'s': 1, 'a\"b': 2}",
    );

    let deep = struct_of(vec![
        ("x", list_of(DataType::Int32)),
        ("y", struct_of(vec![("z", DataType::Float64)])),
    ]);
    canonical("{'x': [1, 2], 'y': {'z': 2.5}}", &deep);
    canonical("{'x': NULL, 'y': NULL}", &deep);
    canonical("{'x': [200], 'y': {'z': 100.0}}", &deep);

    let typed = struct_of(vec![
        ("ts", ts(TimeUnit::Microsecond)),
        ("d", DataType::Date32),
        ("bl", DataType::Binary),
        ("f", DataType::Float64),
        ("r", DataType::Float32),
        ("dec", DataType::Decimal128(5, 2)),
        ("u", DataType::FixedSizeBinary(16)),
        ("iv", interval()),
        ("b", DataType::Boolean),
    ]);
    // What DuckLake 1.5.5 stores for such a struct (DuckDB cannot read it back).
    normalises(
        "{'ts': CAST('2024-01-01 00:00:00.5' AS TIMESTAMP), 'd': CAST('2024-01-02' AS DATE), \
             'bl': CAST('\\x00\\x01a\\x27b' AS BLOB), 'f': CAST('nan' AS VARCHAR), 'r': 3.14, \
             'dec': 1.50, 'u': CAST('550e8400-e29b-41d4-a716-446655440000' AS UUID), \
             'iv': CAST('0 months 1 days 7200000000 microseconds' AS INTERVAL), 'b': true}",
        &typed,
        "{'ts': '2024-01-01 00:00:00.5', 'd': 2024-01-02, 'bl': \\x00\\x01a\\x27b, \
             'f': nan, 'r': 3.14, 'dec': 1.50, 'u': 550e8400-e29b-41d4-a716-446655440000, \
             'iv': '1 day 02:00:00', 'b': true}",
    );

    let empty = DataType::Struct(Fields::empty());
    canonical("{}", &empty);

    for bad in [
        "{'c': 1}",
        "{'a': 1, 'a': 2}",
        "{'a' 1}",
        "{'a': 1",
        "[1]",
        "(1, x, 3)",
    ] {
        corrupt_message(bad, &st);
    }
}

#[test]
fn maps() {
    let m = map_of(DataType::Utf8, DataType::Int32);
    for text in ["{k1=1, k2=2}", "{}", "{z=NULL}", "{k=200}"] {
        canonical(text, &m);
    }
    let strings = map_of(DataType::Utf8, DataType::Utf8);
    canonical("{'k,1'='v\\'1', k2=NULL}", &strings);
    canonical("{'it\\'s'='x=y', a\\b='null', k=NULL}", &strings);
    normalises("{k=v, 'x'=\"y\"}", &strings, "{k=v, x=y}");
    normalises("{ k = v }", &strings, "{k=v}");

    let nested = map_of(DataType::Int32, struct_of(vec![("x", DataType::Utf8)]));
    canonical("{1={'x': a}, 2=NULL}", &nested);
    let list_values = map_of(DataType::Utf8, list_of(DataType::Int32));
    canonical("{a=[1, 2], b=[], c=NULL}", &list_values);

    let value = parse("{k1=1, k2=2}", &m);
    let ScalarValue::Map(array) = &value else {
        panic!("{value:?}");
    };
    assert_eq!(array.value_length(0), 2);
    assert_eq!(value.data_type(), m);

    for bad in [
        "{NULL=1}",
        "{k1}",
        "{k1=1",
        "{k1=x}",
        "[k1=1]",
        "{k1=1 k2=2}",
    ] {
        corrupt_message(bad, &m);
    }
}

#[test]
fn nested_text_dump_rows() {
    // dumps/extras/nested_text.out.txt, row 1 and row 2.
    let row: [(&str, DataType); 7] = [
        (
            r#"['a,b', 'c]d', 'q\'uote', 'dq"x', ' lead', 'NULL', NULL, '']"#,
            list_of(DataType::Utf8),
        ),
        (
            "{'a b': 'x, y', 'c': [1, NULL]}",
            struct_of(vec![
                ("a b", DataType::Utf8),
                ("c", list_of(DataType::Int32)),
            ]),
        ),
        (
            "{'k,1'='v\\'1', k2=NULL}",
            map_of(DataType::Utf8, DataType::Utf8),
        ),
        (
            "['2024-01-01 00:00:00.5']",
            list_of(ts(TimeUnit::Microsecond)),
        ),
        ("[1.50, -2.25]", list_of(DataType::Decimal128(5, 2))),
        ("[\\x00\\x01]", list_of(DataType::Binary)),
        ("[nan, 1e-07, 0.0]", list_of(DataType::Float64)),
    ];
    for (text, dt) in &row {
        canonical(text, dt);
        let empty = match dt {
            DataType::Struct(_) => "{'a b': NULL, 'c': []}",
            DataType::Map(_, _) => "{}",
            _ => "[]",
        };
        canonical(empty, dt);
    }
}

#[test]
fn update_few_rows_dump_values() {
    // dumps/sqlite/09_update_few_rows.txt, ducklake_inlined_data_2_2.
    let samples: Vec<(&str, DataType)> = vec![
        ("-8", DataType::Int8),
        ("-16", DataType::Int16),
        ("-64", DataType::Int64),
        ("8", DataType::UInt8),
        ("32", DataType::UInt32),
        ("18446744073709551615", DataType::UInt64),
        ("-12345678901234567890123", DataType::Decimal128(38, 0)),
        ("12345.678", DataType::Decimal128(18, 3)),
        ("1.5000000000", DataType::Decimal128(38, 10)),
        ("hello", DataType::Utf8),
        ("2024-01-15", DataType::Date32),
        ("2024-01-15 12:30:00.123456", ts(TimeUnit::Microsecond)),
        ("2024-01-15 12:30:00.123456+00", tstz()),
        ("2024-01-15 12:30:00.123456789", ts(TimeUnit::Nanosecond)),
        ("12:30:00.5", DataType::Time64(TimeUnit::Microsecond)),
        ("3.14", DataType::Float32),
        ("nan", DataType::Float64),
        (
            "550e8400-e29b-41d4-a716-446655440000",
            DataType::FixedSizeBinary(16),
        ),
        ("1 year 2 months 3 days 04:00:00", interval()),
        ("{\"k\": [1,2]}", DataType::Utf8),
        ("[1, 2, 3]", list_of(DataType::Int32)),
        ("infinity", DataType::Date32),
        ("-infinity", ts(TimeUnit::Microsecond)),
        ("inf", DataType::Float32),
        ("0.0", DataType::Float64),
        ("-0.001", DataType::Decimal128(18, 3)),
        ("-99.9999999999", DataType::Decimal128(38, 10)),
        ("quote's \"dq\" ,comma", DataType::Utf8),
        ("2000-07-01 06:59:59.999999+00", tstz()),
        ("00:00:00", DataType::Time64(TimeUnit::Microsecond)),
        ("1e+300", DataType::Float64),
        ("25:00:00", interval()),
        ("null", DataType::Utf8),
        ("200 days", interval()),
        ("50.25", DataType::Float32),
        ("25.125", DataType::Float64),
    ];
    for (text, dt) in &samples {
        canonical(text, dt);
    }
    assert_eq!(
        parse("1", &DataType::Boolean),
        ScalarValue::Boolean(Some(true))
    );
}

#[test]
fn nulls_and_unsupported_types() {
    assert_eq!(
        format_duckdb_text(&ScalarValue::Int32(None)).ok(),
        Some(None)
    );
    assert_eq!(format_duckdb_text(&ScalarValue::Null).ok(), Some(None));
    let null_list =
        ScalarValue::try_new_null(&list_of(DataType::Int32)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(format_duckdb_text(&null_list).ok(), Some(None));
    assert!(matches!(
        format_duckdb_text(&ScalarValue::DurationSecond(Some(1))),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        parse_duckdb_text("1", &DataType::Duration(TimeUnit::Second)),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        parse_duckdb_text("[1]", &list_of(DataType::Float16)),
        Err(Error::Unsupported(_))
    ));
    assert_eq!(parse_stat("1", &DataType::Duration(TimeUnit::Second)), None);
    // The string NULL is a value, not a null.
    assert_eq!(
        parse("NULL", &DataType::Utf8),
        ScalarValue::Utf8(Some("NULL".to_string()))
    );
}

#[test]
fn other_list_encodings_format() {
    let value = parse("[[1, 2], NULL]", &list_of(list_of(DataType::Int64)));
    let ScalarValue::List(array) = &value else {
        panic!("{value:?}");
    };
    let large = datafusion::arrow::compute::cast(
        array.as_ref(),
        &DataType::LargeList(Arc::new(Field::new(
            "element",
            list_of(DataType::Int64),
            true,
        ))),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let large = ScalarValue::try_from_array(&large, 0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(format(&large), "[[1, 2], NULL]");
    let dict = ScalarValue::Dictionary(
        Box::new(DataType::Int32),
        Box::new(ScalarValue::Utf8(Some("x".to_string()))),
    );
    assert_eq!(format(&dict), "x");
}

#[test]
fn error_messages_quote_text_and_type() {
    let message = corrupt_message("abc", &DataType::Int32);
    assert!(message.contains("'abc'"), "{message}");
    assert!(message.contains("Int32"), "{message}");
    let long = "x".repeat(1000);
    let message = corrupt_message(&long, &DataType::Int32);
    assert!(message.len() < 400, "{message}");
}

#[test]
fn stats() {
    let b = DataType::Boolean;
    assert_eq!(parse_stat("0", &b), Some(ScalarValue::Boolean(Some(false))));
    assert_eq!(parse_stat("1", &b), Some(ScalarValue::Boolean(Some(true))));
    assert_eq!(
        parse_stat("true", &b),
        Some(ScalarValue::Boolean(Some(true)))
    );
    assert_eq!(
        parse_stat("false", &b),
        Some(ScalarValue::Boolean(Some(false)))
    );

    let bin = DataType::Binary;
    assert_eq!(parse_stat("6230", &bin), None);
    assert_eq!(parse_stat("62393939", &bin), None);
    assert_eq!(
        parse_stat("\\x00\\xFFab", &bin),
        Some(ScalarValue::Binary(Some(vec![0, 255, b'a', b'b'])))
    );
    assert_eq!(
        parse_stat("row", &bin),
        Some(ScalarValue::Binary(Some(b"row".to_vec())))
    );
    assert_eq!(
        parse_stat("", &bin),
        Some(ScalarValue::Binary(Some(vec![])))
    );
    assert_eq!(parse_stat("\\x", &bin), None);

    assert_eq!(parse_stat("nan", &DataType::Float64), None);
    assert_eq!(parse_stat("nan", &DataType::Float32), None);
    assert_eq!(
        parse_stat("inf", &DataType::Float64),
        Some(ScalarValue::Float64(Some(f64::INFINITY)))
    );
    assert_eq!(
        parse_stat("249.75", &DataType::Float32),
        Some(ScalarValue::Float32(Some(249.75)))
    );
    assert_eq!(
        parse_stat("142.714", &DataType::Decimal128(18, 3)),
        Some(ScalarValue::Decimal128(Some(142_714), 18, 3))
    );
    assert_eq!(
        parse_stat("18446744073709551615", &DataType::UInt64),
        Some(ScalarValue::UInt64(Some(u64::MAX)))
    );
    assert_eq!(
        parse_stat("2020-01-01 00:00:00+00", &tstz()),
        Some(ScalarValue::TimestampMicrosecond(
            Some(1_577_836_800_000_000),
            Some(Arc::from("UTC"))
        ))
    );
    assert_eq!(
        parse_stat("infinity", &DataType::Date32),
        Some(ScalarValue::Date32(Some(i32::MAX)))
    );
    assert_eq!(
        parse_stat("{\"i\":0}", &DataType::Utf8),
        Some(ScalarValue::Utf8(Some("{\"i\":0}".to_string())))
    );
    assert!(parse_stat("1 year 2 months 3 days 04:00:00", &interval()).is_some());
    assert_eq!(parse_stat("[1, 2]", &list_of(DataType::Int32)), None);
    assert_eq!(
        parse_stat("{k=1}", &map_of(DataType::Utf8, DataType::Int32)),
        None
    );
    assert_eq!(parse_stat("garbage", &DataType::Int64), None);
    assert_eq!(parse_stat("garbage", &DataType::Date32), None);
}
