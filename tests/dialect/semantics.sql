-- DuckDB semantics lakeq must match, one query per statement. tests/it/dialect.rs runs
-- each in DuckDB 1.5.5 and in lakeq: both must succeed with the same values (as DuckDB
-- prints them), or both must fail.

-- division
SELECT 1050 / 100, 7 / 2, -7 / 2, 1 / 3, 10 / 4.0;
SELECT 7 // 2, -7 // 2, 7.5 // 2, 1 // 0;
SELECT 7 % 3, -7 % 3, 7 % -3, 5 % 0, 7.5 % 2;
SELECT (7 / 100)::numeric(16,2), (1050 / 100)::DECIMAL(10,2);
SELECT CAST(1.23456 AS numeric) AS a, typeof(2::DECIMAL) AS b, typeof(CAST(1 AS DECIMAL(10))) AS c, typeof(CAST(1 AS NUMERIC)) AS d;
SELECT 1 / 0, 1.0 / 0, -1 / 0;

-- avg is a DOUBLE for integers and decimals (DataFusion: a cut DECIMAL)
SELECT avg(x) AS a, typeof(avg(x)) AS t, avg(i) AS b, mean(i) AS c, avg(DISTINCT i) AS d FROM (VALUES (1.55::DECIMAL(10,2), 1), (2.0, 2), (NULL, 2)) t(x, i);
SELECT avg(x) AS a FROM (SELECT CAST(i AS DECIMAL(15,2)) / 7 AS x FROM range(1000) r(i));
SELECT i, avg(x) OVER (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS w FROM (VALUES (1, 1.10::DECIMAL(5,2)), (2, 2.25), (3, 3.33)) t(i, x) ORDER BY i;
SELECT avg(x) AS a FROM (SELECT 1.5 AS x WHERE false);

-- casts to integers round half away from zero
SELECT CAST(2.5 AS INT), CAST(-2.5 AS INT), CAST(3.5 AS BIGINT), CAST(2.4 AS SMALLINT);
SELECT CAST(2.5::DOUBLE AS INT), CAST(-0.5::DOUBLE AS INT), (2.675)::INTEGER;

-- integer overflow is an error
SELECT 9223372036854775807 + 1;
SELECT -9223372036854775807 - 2;
SELECT 3000000000 * 4000000000;
SELECT 2147483647::INT + 1::INT;

-- decimal literals
SELECT 0.1 + 0.2, 1.5 * 2, round(2.5), round(-2.5), 1.1 * 3;
SELECT 1e20, 1e-5, 2.5e3 + 1;

-- dates, timestamps and intervals
SELECT DATE '2024-01-01' + INTERVAL 1 HOUR, DATE '2024-01-01' + INTERVAL '1 day';
SELECT DATE '2024-01-01' - INTERVAL '1 day', INTERVAL '2 days' + DATE '2024-01-01';
SELECT DATE '2024-03-01' - DATE '2024-02-01', DATE '2024-01-01' + 31;
SELECT TIMESTAMP '2024-01-02 01:00:00' - TIMESTAMP '2024-01-01';
SELECT CAST('2020-01-01 10:00:00.1234567' AS TIMESTAMP) AS a, TIMESTAMP '2020-01-01 10:00:00.1234567' AS b, typeof(TIMESTAMP '2020-01-01 10:00:00') AS c;
SELECT CAST('2020-01-01 10:00:00.1234567+00' AS TIMESTAMPTZ) AS a, CAST(TIMESTAMP_NS '2020-01-01 10:00:00.9999999' AS TIMESTAMP) AS b;
SELECT TIMESTAMP_S '2020-02-03 12:23:34' AS s, TIMESTAMP_MS '2020-02-03 12:23:34.123' AS ms, TIMESTAMP_NS '2020-02-03 12:23:34.123456789' AS ns;
SELECT year(DATE '2024-05-06'), month(TIMESTAMP '2024-05-06 01:02:03'), day(DATE '2024-05-06');
SELECT dayofweek(DATE '2024-05-05'), isodow(DATE '2024-05-05'), dayofyear(DATE '2024-02-01');
SELECT hour(TIMESTAMP '2024-01-01 13:14:15'), minute(TIMESTAMP '2024-01-01 13:14:15'), second(TIMESTAMP '2024-01-01 13:14:15.9');
SELECT epoch(TIMESTAMP '2024-01-01 00:00:01'), quarter(DATE '2024-05-06'), week(DATE '2024-01-08');
SELECT strftime(TIMESTAMP '2024-01-02 03:04:05', '%Y/%m/%d %H:%M');

-- strings and NULLs
SELECT 'a' || NULL, 'a' || 1, concat('a', NULL, 'b'), length('héllo'), strlen('héllo');
SELECT upper('abc'), lower('ABC'), trim('  x  '), replace('abc', 'b', 'x');
SELECT printf('%06d-%s', 42, 'x'), printf('%.3f', 2.5), printf('%5s|%-5s|', 'ab', 'cd');
SELECT regexp_extract('abc123def', '[0-9]+'), regexp_extract('key=val', '(\w+)=(\w+)', 2);
SELECT string_split('a,b,c', ','), list_value(1, 2, 3);
SELECT NULL IS NULL, true AND NULL, false AND NULL, NULL OR true;

-- CAST to VARCHAR prints as DuckDB does
SELECT 1.0::DOUBLE::VARCHAR, [1, 2]::VARCHAR, {'a': 1, 'b': 'x y'}::VARCHAR;
SELECT CAST(TIMESTAMP '2024-01-01 01:02:03.5' AS VARCHAR), CAST(123 AS VARCHAR) || 'x';
SELECT uuid '00000000-0000-4000-8000-000000000001'::VARCHAR, '\x00\x01'::BLOB::VARCHAR;

-- rendering of values
SELECT [0, 1, NULL], {'a': NULL, 'b': NULL}, [['a', 'b c'], []], ['it''s', ''];
SELECT 1.5::DOUBLE, 1e16::DOUBLE, 1e15::DOUBLE, 0.1::FLOAT, 'nan'::DOUBLE, '-inf'::DOUBLE;
SELECT TIMESTAMP '2020-01-01 01:02:03.120', TIMESTAMPTZ '2020-01-01 01:02:03+00', TIME '01:02:03.5';
SELECT INTERVAL '14 months 1 day', INTERVAL '-1 day -3 hours', INTERVAL '1 microsecond';

-- NULL ordering: last in both directions
SELECT list(x ORDER BY x) FROM (VALUES (2), (NULL), (1)) t(x);
SELECT list(x ORDER BY x DESC) FROM (VALUES (2), (NULL), (1)) t(x);

-- DuckDB syntax
FROM (VALUES (1, 'a'), (2, 'b')) t(i, s) WHERE i > 1;
SELECT * EXCLUDE (s) FROM (VALUES (1, 'a')) t(i, s);
SELECT * REPLACE (i + 1 AS i) FROM (VALUES (1, 'a')) t(i, s);
SELECT s, count(*) FROM (VALUES (1, 'a'), (2, 'a'), (3, 'b')) t(i, s) GROUP BY ALL ORDER BY ALL;
SELECT i FROM (VALUES (3), (1), (2)) t(i) ORDER BY ALL;
SELECT i, row_number() OVER (ORDER BY i) AS r FROM (VALUES (3), (1), (2)) t(i) QUALIFY r = 1;
SELECT count(*) FROM range(10);
SELECT sum(range) FROM range(1, 11);
SELECT count(*), max(generate_series) FROM generate_series(1, 10);

-- DuckDB's unsigned type names; mixed signedness widens instead of wrapping
SELECT 42::UINTEGER, 7::UTINYINT, 300::USMALLINT, 18446744073709551615::UBIGINT;
SELECT 9223372036854775807::BIGINT + 1::UBIGINT, 5::UTINYINT - 7::TINYINT;
SELECT 200::UTINYINT + 100::UTINYINT;
SELECT 12345678901234567890::HUGEINT * 2;

-- DATE ± integer days, beyond what a nanosecond interval holds
SELECT DATE '2020-01-01' + 110000, 5 + DATE '2020-01-01', DATE '2020-01-01' - 5;
SELECT max(DATE '2020-01-01' + i::INTEGER) FROM range(110000) t(i);

-- arguments outside a math function's domain are errors (DataFusion alone: -inf / NaN)
SELECT ln(0);
SELECT log10(-1);
SELECT log2(0.0);
SELECT acos(2);
SELECT cot(0);
SELECT ln(2.718281828459045), log10(100), log2(8), acos(0.5), log(2, 8);

-- computed interval quantities
SELECT TIMESTAMP '2020-01-01' + INTERVAL (i) HOURS AS t, INTERVAL (i * 2) DAY AS d, INTERVAL (i) MONTH + INTERVAL (i) DAY AS md FROM range(3) r(i);
SELECT DATE '2020-01-31' + INTERVAL (i) MONTH AS d FROM range(3) r(i);

-- 'infinity' compared with timestamps and dates (Arrow's parser refuses the text)
SELECT TIMESTAMP '2020-01-01' < 'infinity' AS a, DATE '2020-01-01' > '-infinity' AS b, 'infinity' > TIMESTAMP '2020-01-01' AS c, TIMESTAMP '2020-01-01' != 'infinity' AS d, TIMESTAMPTZ '2020-01-01 00:00:00+00' <= '-infinity' AS e;

-- PREPARE / EXECUTE: parameters bound as values, also as table-function arguments
PREPARE lakeq_p1 AS SELECT $1 + 1 AS a, $2 AS b;
EXECUTE lakeq_p1(41, 'x');
PREPARE lakeq_p2 AS SELECT i FROM range(?) t(i) ORDER BY i;
EXECUTE lakeq_p2(3);
DEALLOCATE lakeq_p1;
EXECUTE lakeq_p1(1, 'y');

-- string_split with an empty separator splits into characters (DataFusion alone: the whole string)
SELECT string_split('abc', '') AS a, string_split('', '') AS b, string_split(NULL, '') AS c, str_split('a,b', ',') AS d;

-- DuckDB's stored forms: main.-qualified functions, list_apply with a parenthesised lambda, list_zip tuples by position
SELECT array_to_string(flatten(main.list_apply(list_zip(string_split('ABC', ''), string_split('XYZ', '')), (lambda z: list_value(z[1], z[2])))), '') AS zipped;
SELECT list_apply([1, 2, 3], lambda x: x * 2) AS a, list_zip([1, 2], ['a', 'b'])[2][2] AS b, main.lower('X') AS c;
SELECT {'a': 1}[1];

-- lateral column aliases (a select list without FROM)
SELECT 'woot' AS i, i || '_x' AS j, upper(j), 1 + 1, 2 AS b, b * 3;

-- uuid_extract_version (UINTEGER)
SELECT uuid_extract_version('ffffffff-ffff-4fff-bfff-ffffffffffff'::UUID) AS a, typeof(uuid_extract_version('01a248d0-1ad3-7fee-b6fe-2b61964d23c4'::UUID)) AS b, uuid_extract_version('01a248d0-1ad3-7fee-b6fe-2b61964d23c4') AS c, uuid_extract_version(NULL::UUID) AS d;

-- temporary tables: DuckDB's temp.main, found before the current schema; a CTE hides one; a ROLLBACK drops one
CREATE TEMP TABLE lakeq_tt (a BIGINT);
INSERT INTO lakeq_tt VALUES (1);
CREATE TABLE lakeq_tt (b BIGINT);
SELECT * FROM lakeq_tt;
SELECT * FROM memory.main.lakeq_tt;
SELECT t1.a, t2.a FROM temp.lakeq_tt t1, temp.main.lakeq_tt t2;
WITH lakeq_tt AS (SELECT 3 AS c) SELECT * FROM lakeq_tt;
INSERT INTO lakeq_tt VALUES (5);
SELECT * FROM lakeq_tt ORDER BY a;
BEGIN;
CREATE TEMPORARY TABLE lakeq_tx (z INT);
SELECT * FROM lakeq_tx;
ROLLBACK;
SELECT * FROM lakeq_tx;

-- method chaining on calls and lists, list comprehensions (with IF), as in DuckLake's zip_varchar macro
SELECT substr('abcdef', 1, 3).rpad(5, '-').upper() AS a, [x * 2 FOR x IN [1, 2, 3] IF x > 1] AS b, [1, 2].list_concat([3]) AS c;
SELECT [list_value(z[1], z[2]) FOR z IN list_zip(substr('ABC', 1, 3).rpad(3, ' ').string_split(''), substr('XYZ', 1, 3).rpad(3, ' ').string_split(''))].flatten().array_to_string('') AS zipped;

-- `x = 1` inside a call is a comparison (not a named argument); digits grouped by underscores
SELECT bool_and(x = 1) AS a, bool_or(x = 1) AS b, 100_000 + 1_0 AS c FROM (VALUES (1), (2)) t(x);

-- INSERT ... BY NAME: columns matched by name, the others get their defaults
CREATE TABLE lakeq_bn (a INT, b VARCHAR DEFAULT 'x', c INT);
INSERT INTO lakeq_bn BY NAME SELECT 'y' AS b, 1 AS a;
INSERT INTO lakeq_bn BY NAME SELECT 2 AS a, 3 AS c;
SELECT * FROM lakeq_bn ORDER BY a;
INSERT INTO lakeq_bn BY NAME SELECT 1 AS nope;

-- the ORDER BY of a subquery or view is kept for the query reading it (DataFusion drops it without a LIMIT)
SELECT x FROM (SELECT x FROM (VALUES (2), (1), (3)) t(x) ORDER BY x DESC);
CREATE VIEW lakeq_sorted_v AS SELECT x * 10 AS x, x AS y FROM (VALUES (2), (1), (3)) t(x) ORDER BY ALL;
SELECT * FROM lakeq_sorted_v;
