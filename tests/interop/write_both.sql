-- write_both.sql: DuckDB 1.5.5 and lakeq run every statement, each on its own lake (attached AS lake, data
-- inlining off); every statement must give the same rows in both engines, or fail in both
-- (tests/it/interop_lockstep.rs). Queries avoid what differs between two lakes (file names, times).

-- Setting a table's own partitioning again is a no-op: no snapshot, no schema version.
CREATE TABLE lake.p (part_key INTEGER, value VARCHAR);
ALTER TABLE lake.p SET PARTITIONED BY (part_key);
ALTER TABLE lake.p SET PARTITIONED BY (part_key);
SELECT count(*) AS snapshots, max(schema_version) AS schema_version FROM lake.snapshots();
INSERT INTO lake.p VALUES (1, 'before_1'), (1, 'before_2');
ALTER TABLE lake.p SET PARTITIONED BY (part_key);
INSERT INTO lake.p VALUES (1, 'after_1');
SELECT count(*) AS snapshots, max(schema_version) AS schema_version FROM lake.snapshots();
SELECT files_processed, files_created FROM ducklake_merge_adjacent_files('lake', 'p');
SELECT part_key, value FROM lake.p ORDER BY value;

-- bucket(N) partitioning: DuckLake's murmur3_32 decides each row's bucket (folder and partition value).
CREATE TABLE lake.bk (user_id VARCHAR, n INTEGER, big BIGINT, d DATE, ts TIMESTAMP, x DOUBLE, m DECIMAL(9,2), h DECIMAL(20,2), b BOOLEAN, l INTEGER[]);
ALTER TABLE lake.bk SET PARTITIONED BY (bucket(4, user_id), bucket(3, n), bucket(5, d));
INSERT INTO lake.bk SELECT 'user' || CAST(i AS VARCHAR), CAST(i AS INTEGER), i * 1000000000000, DATE '2024-01-01' + CAST(i AS INTEGER), TIMESTAMP '2024-01-01 00:00:00', i / 4, i / 8, i / 3, i % 2 = 0, [CAST(i AS INTEGER)] FROM range(40) t(i);
SELECT regexp_extract(data_file, '(bucket=[0-9]+/bucket_n=[0-9]+/bucket_d=[0-9]+)/', 1) AS dir, count(*) AS files FROM ducklake_list_files('lake', 'bk') GROUP BY dir ORDER BY dir;
SELECT count(*) AS n FROM lake.bk WHERE user_id = 'user7';
SELECT count(*) AS n FROM lake.bk WHERE n = 11;
ALTER TABLE lake.bk SET PARTITIONED BY (bucket(2, big), bucket(3, ts), bucket(4, x), bucket(5, m), bucket(6, h), bucket(2, b), bucket(3, l));
INSERT INTO lake.bk SELECT 'user' || CAST(i AS VARCHAR), CAST(i AS INTEGER), i * 1000000000000, DATE '2024-01-01' + CAST(i AS INTEGER), CAST(DATE '2024-01-01' + CAST(i AS INTEGER) AS TIMESTAMP), i / 4, i / 8, i / 3, i % 2 = 0, [CAST(i AS INTEGER)] FROM range(40) t(i);
SELECT regexp_extract(data_file, '(bucket=[0-9]+/bucket_ts=[0-9]+/bucket_x=[0-9]+/bucket_m=[0-9]+/bucket_h=[0-9]+/bucket_b=[0-9]+/bucket_l=[0-9]+)/', 1) AS dir, count(*) AS files FROM ducklake_list_files('lake', 'bk') WHERE data_file LIKE '%bucket_ts=%' GROUP BY dir ORDER BY dir;
ALTER TABLE lake.bk SET PARTITIONED BY (bucket(0, n));
ALTER TABLE lake.bk SET PARTITIONED BY (bucket(n, user_id));
ALTER TABLE lake.bk SET PARTITIONED BY (bucket(4));

-- A merge of partitioned files writes the merged file into the partition's folders.
CREATE TABLE lake.sales (id INTEGER, sale_date DATE);
ALTER TABLE lake.sales SET PARTITIONED BY (sale_date);
INSERT INTO lake.sales VALUES (1, DATE '2023-07-01'), (2, DATE '2023-07-01');
INSERT INTO lake.sales VALUES (3, DATE '2023-07-02'), (4, DATE '2023-07-02');
INSERT INTO lake.sales VALUES (5, DATE '2023-07-02'), (6, DATE '2023-07-02');
SELECT files_processed, files_created FROM ducklake_merge_adjacent_files('lake', 'sales');
SELECT regexp_extract(data_file, '(sale_date=[0-9-]+)/', 1) AS dir FROM ducklake_list_files('lake', 'sales') ORDER BY dir;

-- Small files are about DuckDB's size, so a size-bounded merge picks the same files.
CREATE TABLE lake.small (id INTEGER, data VARCHAR);
CALL ducklake_set_option('lake', 'target_file_size', '1KB');
INSERT INTO lake.small SELECT i, 'small1' FROM range(100) t(i);
INSERT INTO lake.small SELECT i + 100, 'small2' FROM range(100) t(i);
SELECT files_processed, files_created FROM ducklake_merge_adjacent_files('lake', 'small');
INSERT INTO lake.small SELECT i + 200, 'small3' FROM range(100) t(i);
INSERT INTO lake.small SELECT i + 300, 'small4' FROM range(100) t(i);
SELECT files_processed, files_created FROM ducklake_merge_adjacent_files('lake', 'small');
SELECT count(*) AS files FROM ducklake_list_files('lake', 'small');
-- A 10000-row insert is one file whatever the target size (DuckDB cuts files after row groups only).
INSERT INTO lake.small SELECT i, 'big' FROM range(10000) t(i);
SELECT count(*) AS files FROM ducklake_list_files('lake', 'small');

-- Inside a transaction, its own rows show DuckDB's transaction-local rowid and a NULL snapshot_id. (A row
-- inserted and then updated in the same transaction keeps its transaction-local rowid in DuckDB after COMMIT;
-- lakeq gives it its real row id: see DIALECT.md.)
CREATE TABLE lake.r (i INTEGER);
INSERT INTO lake.r VALUES (1), (2);
BEGIN;
INSERT INTO lake.r VALUES (3), (4);
INSERT INTO lake.r VALUES (5);
SELECT rowid, snapshot_id, i FROM lake.r ORDER BY i;
SELECT i FROM lake.r WHERE rowid = 1000000000000000001;
UPDATE lake.r SET i = i + 100 WHERE i = 1;
SELECT rowid, snapshot_id, i FROM lake.r ORDER BY i;
COMMIT;
SELECT rowid, snapshot_id, i FROM lake.r ORDER BY i;

-- DuckDB column types DataFusion's planner lacks: UUID, MAP(K, V), TIMESTAMP_S, TIMESTAMP_MS. (A map of a type with
-- modifiers, MAP(INTEGER, DECIMAL(9,2)), does not parse yet.)
CREATE TABLE lake.ty (u UUID, m MAP(VARCHAR, INTEGER), s TIMESTAMP_S, ms TIMESTAMP_MS);
INSERT INTO lake.ty VALUES ('f79c3e09-677c-4bbd-a479-3f349cb785e7'::UUID, MAP {'a': 1, 'b': NULL}, TIMESTAMP_S '2020-01-01 00:00:01', TIMESTAMP_MS '2020-01-01 00:00:01.5');
INSERT INTO lake.ty VALUES (NULL, NULL, NULL, NULL);
SELECT CAST(u AS VARCHAR) AS u, CAST(m AS VARCHAR) AS m, CAST(s AS VARCHAR) AS s, CAST(ms AS VARCHAR) AS ms FROM lake.ty ORDER BY u NULLS LAST;
SELECT typeof(u) AS tu, typeof(m) AS tm, typeof(s) AS ts, typeof(ms) AS tms FROM lake.ty LIMIT 1;
