-- UPDATE ... FROM, DELETE ... USING and UPDATE/DELETE naming rowid on a lake table. tests/it/dialect.rs
-- runs each statement in DuckDB 1.5.5 (on its own lake) and in lakeq (on another): both must give the same
-- rows and counts, or both must fail; then DuckDB reads lakeq's lake. `lake` is the attached lake.

CREATE TABLE lake.t (i INT, j INT);
INSERT INTO lake.t VALUES (1, 10), (2, 20), (3, 30), (4, 40);
CREATE TEMP TABLE s (i INT, v INT);
INSERT INTO s VALUES (1, 100), (1, 100), (2, 200), (9, 900);

-- two source rows with the same values update row 1 once: the count is of table rows
UPDATE lake.t SET j = s.v FROM s WHERE t.i = s.i;
SELECT rowid, i, j FROM lake.t ORDER BY i;
UPDATE lake.t SET j = v + t.j FROM s WHERE t.i = s.i AND v > 150;
SELECT rowid, i, j FROM lake.t ORDER BY i;
-- an alias on the target, a source subquery, FROM before a list of two tables (their cross join)
UPDATE lake.t AS x SET j = x.j + q.n FROM (SELECT i, count(*) AS n FROM s GROUP BY i) q WHERE x.i = q.i;
SELECT rowid, i, j FROM lake.t ORDER BY i;
UPDATE lake.t SET j = a.v + b.v FROM s a, s b WHERE t.i = a.i AND a.i = b.i AND t.i = 2;
SELECT rowid, i, j FROM lake.t ORDER BY i;
-- nothing matches
UPDATE lake.t SET j = 0 FROM s WHERE t.i = s.i AND s.v < 0;

-- rowid in WHERE and SET
UPDATE lake.t SET j = rowid * 1000 WHERE rowid = 2;
UPDATE lake.t SET i = i + 10 WHERE rowid IN (SELECT rowid FROM lake.t WHERE j > 1000);
SELECT rowid, i, j FROM lake.t ORDER BY rowid;
DELETE FROM lake.t WHERE rowid = 3;
SELECT rowid, i, j FROM lake.t ORDER BY rowid;

-- DELETE ... USING: a row several source rows match is deleted once
INSERT INTO s VALUES (12, 7), (12, 8);
DELETE FROM lake.t USING s WHERE t.i = s.i;
SELECT rowid, i, j FROM lake.t ORDER BY rowid;
SELECT count(*) FROM lake.snapshots();
