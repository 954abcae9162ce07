-- The embedded default: a SQLite catalog and local Parquet files under ./lake/.
ATTACH 'ducklake:sqlite:lake/demo.sqlite' AS demo (DATA_PATH 'lake/demo/');
SELECT table_catalog, table_schema, table_name
FROM information_schema.tables
WHERE table_catalog = 'demo' AND table_schema <> 'information_schema'
ORDER BY table_schema, table_name;
