-- DuckDB's session settings that stand in for lake options, SET SORTED BY in merged files, and ORDER BY ALL in
-- the query of a view or CREATE TABLE AS. tests/it/dialect.rs runs each statement in DuckDB 1.5.5 (on its own
-- lake) and in lakeq (on another): both must give the same rows, or both must fail; then DuckDB reads lakeq's
-- lake. `lake` is the attached lake.

-- no inlining for the session: every insert is a file
SET ducklake_default_data_inlining_row_limit = 0;
CREATE TABLE lake.t (i INT, k INT, s VARCHAR);
INSERT INTO lake.t VALUES (1, 2, 'b'), (2, 1, 'a');
INSERT INTO lake.t VALUES (3, 2, 'a'), (4, 1, 'c');
SELECT count(*) FROM ducklake_list_files('lake', 't');

-- a merged file is written in the order of the sort keys; rows keep their ids
ALTER TABLE lake.t SET SORTED BY (k ASC, s DESC);
SELECT table_name, files_processed, files_created FROM ducklake_merge_adjacent_files('lake', 't');
SELECT rowid, i, k, s FROM lake.t;
SELECT count(*) FROM ducklake_list_files('lake', 't');
SELECT rowid, i FROM lake.t WHERE i > 2 ORDER BY rowid;

-- the default limit again: a small insert is inlined (no new file)
RESET ducklake_default_data_inlining_row_limit;
INSERT INTO lake.t VALUES (5, 0, 'z');
SELECT count(*) FROM ducklake_list_files('lake', 't');

-- the session's target file size over the lake's option at every scope
CALL lake.set_option('target_file_size', '1B');
SET ducklake_default_data_inlining_row_limit = 0;
CREATE TABLE lake.u (i INT);
INSERT INTO lake.u VALUES (1);
INSERT INTO lake.u VALUES (2);
INSERT INTO lake.u VALUES (3);
SELECT table_name, files_processed, files_created FROM ducklake_merge_adjacent_files('lake', 'u');
SET ducklake_target_file_size = '512MB';
SELECT table_name, files_processed, files_created FROM ducklake_merge_adjacent_files('lake', 'u');
RESET ducklake_target_file_size;
INSERT INTO lake.u VALUES (4);
INSERT INTO lake.u VALUES (5);
SELECT table_name, files_processed, files_created FROM ducklake_merge_adjacent_files('lake', 'u');
SELECT count(*), sum(i) FROM lake.u;
-- values DuckDB refuses
SET ducklake_target_file_size = 'not-a-size';
SET ducklake_target_file_size = '0';

-- ORDER BY ALL over expressions in a view and in CREATE TABLE AS
CREATE VIEW lake.v AS SELECT i * 100 AS i, k * 10 AS k FROM lake.t ORDER BY ALL;
SELECT * FROM lake.v;
CREATE VIEW lake.v2 AS SELECT k, i FROM lake.t ORDER BY ALL DESC;
SELECT * FROM lake.v2;
CREATE TABLE lake.w AS SELECT s, i + 1 AS j FROM lake.t ORDER BY ALL;
SELECT * FROM lake.w;

-- renaming a sort-key column renames it in the keys: later writes and merges stay sorted
CREATE TABLE lake.r (i INT, k INT);
ALTER TABLE lake.r SET SORTED BY (k DESC);
ALTER TABLE lake.r RENAME COLUMN k TO "Key K";
INSERT INTO lake.r VALUES (1, 1), (2, 3);
INSERT INTO lake.r VALUES (3, 2), (4, 0);
SELECT rowid, i, "Key K" FROM lake.r;
SET ducklake_target_file_size = '512MB';
SELECT table_name, files_processed, files_created FROM ducklake_merge_adjacent_files('lake', 'r');
SELECT rowid, i, "Key K" FROM lake.r;

-- TIMESTAMP widened to TIMESTAMPTZ: rows written before read in UTC, from a file and inlined
CREATE TABLE lake.ts (c TIMESTAMP);
INSERT INTO lake.ts VALUES ('2025-01-15 12:30:45'::TIMESTAMP);
RESET ducklake_default_data_inlining_row_limit;
INSERT INTO lake.ts VALUES ('2025-01-15 12:30:46'::TIMESTAMP);
ALTER TABLE lake.ts ALTER COLUMN c TYPE TIMESTAMPTZ;
INSERT INTO lake.ts VALUES ('2025-01-15 12:30:47'::TIMESTAMPTZ);
SELECT c FROM lake.ts ORDER BY c;
SELECT c FROM lake.ts WHERE c > '2025-01-15 12:30:45+00' ORDER BY c;
ALTER TABLE lake.ts ALTER COLUMN c TYPE TIMESTAMP;

-- integers widened to decimals with room for every value (a file and inlined rows)
CREATE TABLE lake.d (c INTEGER);
SET ducklake_default_data_inlining_row_limit = 0;
INSERT INTO lake.d VALUES (5), (-2147483648);
RESET ducklake_default_data_inlining_row_limit;
INSERT INTO lake.d VALUES (7);
ALTER TABLE lake.d ALTER COLUMN c TYPE DECIMAL(9,0);
ALTER TABLE lake.d ALTER COLUMN c TYPE DECIMAL(12,2);
INSERT INTO lake.d VALUES (1.25);
SELECT c FROM lake.d ORDER BY c;
SELECT sum(c) FROM lake.d WHERE c > 1;

-- column names in ALTER TABLE match in any case
CREATE TABLE lake.c ("MyCol" INT, other INT);
INSERT INTO lake.c VALUES (1, 2);
ALTER TABLE lake.c RENAME COLUMN mycol TO newname;
ALTER TABLE lake.c RENAME COLUMN newname TO OTHER;
ALTER TABLE lake.c DROP COLUMN OTHER;
SELECT * FROM lake.c;
ALTER TABLE lake.c RENAME COLUMN NEWNAME TO "NewName";
SELECT "NewName" FROM lake.c;
