-- lakeq quickstart on the embedded default: a SQLite catalog and local Parquet files under ./lake/.
-- Safe to run again: every run replaces the demo table (one new snapshot per statement).
ATTACH 'ducklake:sqlite:lake/demo.sqlite' AS demo (DATA_PATH 'lake/demo/');
CREATE SCHEMA IF NOT EXISTS demo.sales;
CREATE OR REPLACE TABLE demo.sales.orders AS
SELECT CAST(v AS BIGINT) AS order_id,
       CASE WHEN v % 3 = 0 THEN 'eu' WHEN v % 3 = 1 THEN 'us' ELSE 'apac' END AS region,
       CAST(v % 97 AS DECIMAL(10,2)) * 1.25 AS amount
FROM generate_series(1, 100000) AS g(v);
DELETE FROM demo.sales.orders WHERE order_id % 10 = 0;
UPDATE demo.sales.orders SET amount = 0 WHERE order_id = 1;
CREATE OR REPLACE VIEW demo.sales.revenue AS
SELECT region, count(*) AS orders, sum(amount) AS revenue FROM demo.sales.orders GROUP BY region;
SELECT * FROM demo.sales.revenue ORDER BY region;
-- DuckDB opens the same lake: ATTACH 'ducklake:sqlite:lake/demo.sqlite' AS demo;
