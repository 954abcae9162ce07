//! dbt projects run unchanged: the projects under `tests/dbt/` built by lakeq
//! (values checked), and the same project built by real dbt-core 1.11 +
//! dbt-duckdb 1.11 on a DuckLake, every table and view compared in DuckDB
//! 1.5.5 (types, row counts, values).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{TestResult, copy_dir, lakeq_cli, lakeq_cli_err, oracle_python, scratch_dir};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Run lakeq; fail with its output unless it succeeds. Returns stdout and stderr.
fn run_ok(dir: &Path, args: &[&str]) -> TestResult<(String, String)> {
    let out = lakeq_cli(dir, args)?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    if !out.status.success() {
        return Err(format!("lakeq {args:?} failed:\n{stdout}\n{stderr}").into());
    }
    Ok((stdout, stderr))
}

/// A fresh copy of `tests/dbt/<name>`, with the vendored packages of
/// `tests/dbt/packages` beside it (projects use them as `local: ../packages/...`).
fn project(name: &str) -> TestResult<PathBuf> {
    let root = scratch_dir(&format!("dbt-{name}"));
    let dir = root.join(name);
    copy_dir(&Path::new(ROOT).join("tests/dbt").join(name), &dir)?;
    copy_dir(
        &Path::new(ROOT).join("tests/dbt/packages"),
        &root.join("packages"),
    )?;
    Ok(dir)
}

/// Rows of `sql` against the project's lakes, as CSV lines (`lakeq sql --format csv`).
fn rows(dir: &Path, sql: &str) -> TestResult<Vec<String>> {
    let (stdout, _) = run_ok(dir, &["sql", "--format", "csv", "-c", sql])?;
    Ok(stdout.lines().skip(1).map(str::to_string).collect())
}

#[test]
fn jaffle_builds_with_seeds_config_and_tests() -> TestResult {
    let dir = project("jaffle")?;
    let (stdout, stderr) = run_ok(&dir, &["build"])?;
    // dbt_project.yml keys lakeq does not act on: one warning each, nothing else changes.
    assert_eq!(
        stderr
            .matches("model config 'docs' is not supported")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stdout.contains(
            "4 seeds loaded, 0 failed; 7 models built, 0 failed; 17 tests passed, 0 failed, 1 warned; 0 skipped"
        ),
        "{stdout}"
    );
    // severity: warn reports the failing rows and does not fail the build.
    assert!(
        stdout.lines().any(|l| l.contains("WARN")
            && l.contains("accepted_values_stg_orders_status__shipped__completed")),
        "{stdout}"
    );
    // Custom generic tests ({% test %} in tests/generic/), named as dbt names them.
    for name in [
        "is_positive_stg_payments_True__amount",
        "is_positive_stg_payments_amount",
        "unique_raw_customers_id",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains("PASS") && l.contains(name)),
            "{name}:\n{stdout}"
        );
    }
    // dbt's names: target schema `main`, `main_finance` for the custom schema, the alias.
    for (relation, kind) in [
        ("jaffle_lake.main.raw_orders", "seed"),
        ("jaffle_lake.main.stg_orders", "view"),
        ("jaffle_lake.main.customers", "table"),
        ("jaffle_lake.main_finance.daily_revenue", "table"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(relation) && l.contains(kind)),
            "{relation} ({kind}) missing:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(
            "accepted_values_stg_orders_status__placed__shipped__completed__return_pending__returned"
        ) && stdout.contains("relationships_orders_customer_id__customer_id__ref_customers_"),
        "dbt's test names:\n{stdout}"
    );
    // Seed types as dbt-duckdb infers them; empty fields are NULL.
    assert_eq!(
        rows(
            &dir,
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_catalog = 'jaffle_lake' AND table_name = 'seed_types' ORDER BY ordinal_position"
        )?,
        [
            "int_col,INTEGER",
            "float_col,DOUBLE",
            "whole_float,INTEGER",
            "date_col,DATE",
            "ts_col,TIMESTAMP",
            "iso_col,TIMESTAMP",
            "bool_col,BOOLEAN",
            "text_col,VARCHAR",
            "null_col,INTEGER",
            "mixed_col,VARCHAR",
        ]
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT int_col, whole_float, text_col, bool_col, iso_col FROM jaffle_lake.main.seed_types ORDER BY int_col NULLS LAST"
        )?,
        [
            "-2,2,\"say \"\"hi\"\"\",false,2024-02-29 00:00:00",
            "1,1,\"hello, world\",true,2024-01-05 10:11:12",
            "30,3,plain,true,1999-12-31 23:59:59.5",
            ",,,,",
        ]
    );
    // column_types: amount is a BIGINT.
    assert_eq!(
        rows(
            &dir,
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'raw_payments' AND column_name = 'amount'"
        )?,
        ["BIGINT"]
    );
    // Values: the var filters order 11 (2017); customer 1 paid 1000 + 2500.
    assert_eq!(
        rows(
            &dir,
            "SELECT customer_id, number_of_orders, customer_lifetime_value FROM jaffle_lake.main.customers WHERE customer_id IN (1, 3) ORDER BY 1"
        )?,
        ["1,2,3500", "3,2,3600"]
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT order_date, orders, revenue FROM jaffle_lake.main_finance.daily_revenue ORDER BY order_date LIMIT 2"
        )?,
        ["2018-01-02,1,2000", "2018-01-04,1,100"]
    );

    // Macros: a dispatched project macro, a macro returning a list, dbt's built-ins.
    assert_eq!(
        rows(
            &dir,
            "SELECT payment_id, amount_dollars FROM jaffle_lake.main.stg_payments WHERE payment_id IN (1, 3) ORDER BY 1"
        )?,
        ["1,10.00", "3,1.00"]
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT order_month, label, revenue FROM jaffle_lake.main_finance.monthly_revenue"
        )?,
        ["2018-01-01 00:00:00,orders: 11,17400"]
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT coupon_amount, gift_card_amount FROM jaffle_lake.main.orders WHERE order_id = 9"
        )?,
        ["0,2300"]
    );

    // Selection as dbt: a folder, several selectors after one -s, nothing selected is not an error.
    let (listed, _) = run_ok(&dir, &["ls", "-s", "staging", "raw_orders"])?;
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for n in ["raw_orders", "stg_customers", "stg_orders", "stg_payments"] {
        assert!(names.contains(&n), "{n} not selected:\n{listed}");
    }
    assert!(!names.contains(&"customers"), "{listed}");
    let (listed, _) = run_ok(&dir, &["ls", "-s", "marts.finance"])?;
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["monthly_revenue", "revenue_by_day"], "{listed}");
    let (stdout, stderr) = run_ok(&dir, &["build", "-s", "no_such_model"])?;
    assert!(stdout.contains("Nothing to do"), "{stdout}");
    assert!(
        stderr.contains("'no_such_model' does not match any enabled nodes"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_malformed_seed_names_file_and_line_and_loads_nothing() -> TestResult {
    let dir = project("jaffle")?;
    run_ok(&dir, &["seed"])?;
    let before = rows(&dir, "SELECT count(*) FROM jaffle_lake.main.raw_customers")?;
    assert_eq!(before, ["8"]);
    let path = dir.join("seeds/raw_customers.csv");
    let text = std::fs::read_to_string(&path)?;
    std::fs::write(&path, format!("{text}9,Ann\n10,Bo,K.\n"))?;
    let err = lakeq_cli_err(&dir, &["seed", "-s", "raw_customers"])?;
    assert!(
        err.contains("seeds/raw_customers.csv, line 10")
            && err.contains("the row has 2 fields, the header 3"),
        "{err}"
    );
    assert_eq!(
        rows(&dir, "SELECT count(*) FROM jaffle_lake.main.raw_customers")?,
        before
    );
    // A value that does not fit column_types: an error naming the seed; the old table stays.
    std::fs::write(&path, text)?;
    let payments = dir.join("seeds/raw_payments.csv");
    let p = std::fs::read_to_string(&payments)?;
    std::fs::write(&payments, format!("{p}14,12,coupon,lots\n"))?;
    let err = lakeq_cli_err(&dir, &["seed"])?;
    assert!(
        err.contains("seed 'raw_payments' (seeds/raw_payments.csv)"),
        "{err}"
    );
    assert_eq!(
        rows(&dir, "SELECT count(*) FROM jaffle_lake.main.raw_payments")?,
        ["13"]
    );
    Ok(())
}

/// The dbt-core + dbt-duckdb venv of `scripts/test-env.sh`; a clear failure when missing.
fn dbt() -> TestResult<(String, String)> {
    let venv = Path::new(ROOT).join(".venv-dbt");
    let dbt =
        std::env::var("LAKEQ_DBT").unwrap_or_else(|_| venv.join("bin/dbt").display().to_string());
    let ext = std::env::var("LAKEQ_DBT_EXT_DIR").unwrap_or_else(|_| {
        venv.join("duckdb_extension_directory")
            .display()
            .to_string()
    });
    if !Path::new(&dbt).exists() || !Path::new(&ext).exists() {
        return Err(format!(
            "dbt-core/dbt-duckdb are missing ({dbt}, {ext}): run scripts/test-env.sh, which installs them"
        )
        .into());
    }
    Ok((dbt, ext))
}

fn run_dbt(dir: &Path, args: &[&str]) -> TestResult<String> {
    let (dbt, ext) = dbt()?;
    let out = Command::new(dbt)
        .current_dir(dir)
        .args(args)
        .args(["--profiles-dir", "."])
        .env("DBT_DUCKDB_EXTENSION_DIRECTORY", ext)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DBT_USE_COLORS", "false")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "dbt {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(stdout)
}

/// Run dbt and expect it to fail (a model error, as lakeq's); returns its output.
fn run_dbt_failing(dir: &Path, args: &[&str]) -> TestResult<String> {
    match run_dbt(dir, args) {
        Ok(stdout) => Err(format!("dbt {args:?} should have failed:\n{stdout}").into()),
        Err(e) => Ok(e.to_string()),
    }
}

/// Build `tests/dbt/<name>` with dbt-duckdb (`dbt seed && dbt build`) and with
/// lakeq (`lakeq build`), then compare every table and view in DuckDB.
fn compare_with_dbt(name: &str, catalog: &str, data: &str, relations: usize) -> TestResult {
    compare_builds_with_dbt(name, catalog, data, relations, &[&[]])
}

/// [`compare_with_dbt`] after several builds, each with its extra arguments
/// (`--vars ...`): dbt runs `seed` then `build <args>` for each, lakeq `build <args>`.
fn compare_builds_with_dbt(
    name: &str,
    catalog: &str,
    data: &str,
    relations: usize,
    builds: &[&[&str]],
) -> TestResult {
    compare_masked_builds_with_dbt(name, catalog, data, relations, builds, "{}")
}

/// [`compare_builds_with_dbt`] where the columns `masks` names (JSON
/// `{"schema.table": {"column": "rank" | "notnull"}}`, see
/// `tests/dbt/compare_lakes.py`) hold values that depend on when the build ran.
fn compare_masked_builds_with_dbt(
    name: &str,
    catalog: &str,
    data: &str,
    relations: usize,
    builds: &[&[&str]],
    masks: &str,
) -> TestResult {
    let with_dbt = project(name)?;
    let with_lakeq = project(name)?;
    let mut dbt_out = String::new();
    if with_dbt.join("packages.yml").is_file() {
        dbt_out.push_str(&run_dbt(&with_dbt, &["deps"])?); // local packages only: no network
    }
    dbt_out.push_str(&run_dbt(&with_dbt, &["seed"])?);
    let mut lakeq_out = String::new();
    for extra in builds {
        let args: Vec<&str> = std::iter::once("build")
            .chain(extra.iter().copied())
            .collect();
        dbt_out.push_str(&run_dbt(&with_dbt, &args)?);
        lakeq_out.push_str(&run_ok(&with_lakeq, &args)?.0);
    }
    assert_same_lakes(
        &with_dbt,
        &with_lakeq,
        catalog,
        data,
        relations,
        masks,
        &format!("dbt:\n{dbt_out}\nlakeq:\n{lakeq_out}"),
    )
}

/// Compare every table and view of the lakes dbt-duckdb (in `with_dbt`) and
/// lakeq (in `with_lakeq`) built, in DuckDB (`tests/dbt/compare_lakes.py`):
/// the same relations (`relations` of them), columns and rows.
fn assert_same_lakes(
    with_dbt: &Path,
    with_lakeq: &Path,
    catalog: &str,
    data: &str,
    relations: usize,
    masks: &str,
    context: &str,
) -> TestResult {
    let (python, ext) = oracle_python()?;
    let out = Command::new(python)
        .arg(Path::new(ROOT).join("tests/dbt/compare_lakes.py"))
        .arg(ext)
        .arg(format!(
            "ducklake:sqlite:{}",
            with_dbt.join(catalog).display()
        ))
        .arg(format!("{}/", with_dbt.join(data).display()))
        .arg(format!(
            "ducklake:sqlite:{}",
            with_lakeq.join(catalog).display()
        ))
        .arg(format!("{}/", with_lakeq.join(data).display()))
        .arg(masks)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "compare_lakes.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        report["a"], report["b"],
        "dbt and lakeq built different relations\n{context}"
    );
    let tables = report["tables"].as_object().ok_or("no tables")?;
    assert_eq!(tables.len(), relations, "{report}");
    let mut problems = Vec::new();
    for (table, t) in tables {
        let (ca, cb) = (&t["columns_a"], &t["columns_b"]);
        let empty = Vec::new();
        let (ca, cb) = (
            ca.as_array().unwrap_or(&empty),
            cb.as_array().unwrap_or(&empty),
        );
        if ca.len() != cb.len() {
            problems.push(format!("{table}: columns {ca:?} (dbt) vs {cb:?} (lakeq)"));
        }
        for (a, b) in ca.iter().zip(cb) {
            // Known difference: DuckDB's sum() of BIGINT is a HUGEINT, lakeq's a BIGINT
            // (same values; a dialect matter, not the model layer's).
            // Likewise DuckDB's sum() of a DECIMAL(p, s) is a DECIMAL(38, s), lakeq's narrower.
            let scale = |t: &serde_json::Value| {
                t.as_str()
                    .and_then(|t| t.strip_prefix("DECIMAL("))
                    .and_then(|t| t.split_once(','))
                    .map(|(_, s)| s.to_string())
            };
            let known = a[0] == b[0]
                && ((a[1] == "HUGEINT" && b[1] == "BIGINT")
                    || (a[1].as_str().is_some_and(|t| t.starts_with("DECIMAL(38,"))
                        && scale(&a[1]).is_some()
                        && scale(&a[1]) == scale(&b[1])));
            if a != b && !known {
                problems.push(format!("{table}: column {a} (dbt) vs {b} (lakeq)"));
            }
        }
        if t["rows_a"] != t["rows_b"] || t["only_a"] != t["only_b"] {
            problems.push(format!(
                "{table}: {} rows (dbt) vs {} (lakeq); only dbt: {}; only lakeq: {}",
                t["rows_a"], t["rows_b"], t["only_a"], t["only_b"]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "dbt-duckdb and lakeq differ:\n{}",
        problems.join("\n")
    );
    Ok(())
}

#[test]
fn jaffle_matches_dbt_duckdb() -> TestResult {
    compare_with_dbt("jaffle", "jaffle.sqlite", "jaffle_data", 11)
}

#[test]
fn features_match_dbt_duckdb() -> TestResult {
    compare_with_dbt("features", "features.sqlite", "features_data", 4)
}

#[test]
fn incremental_schema_changes_and_merge_match_dbt_duckdb() -> TestResult {
    // Built twice; the second build changes the models' columns.
    compare_builds_with_dbt(
        "incremental",
        "incremental.sqlite",
        "incremental_data",
        6,
        &[&[], &["--vars", "{v2: true}"]],
    )
}

#[test]
fn incremental_schema_change_fail_and_one_snapshot() -> TestResult {
    let dir = project("incremental")?;
    run_ok(&dir, &["build"])?;
    let snapshots = |dir: &Path| -> TestResult<Vec<String>> {
        rows(dir, "SELECT count(*) FROM incremental_lake.snapshots()")
    };
    // append_new_columns: the new column and the new rows are one snapshot.
    let before = snapshots(&dir)?;
    run_ok(
        &dir,
        &["build", "-s", "events_appended", "--vars", "{v2: true}"],
    )?;
    let after = snapshots(&dir)?;
    let n = |v: &[String]| v.first().and_then(|s| s.parse::<i64>().ok()).unwrap_or(-1);
    assert_eq!(n(&after), n(&before) + 1, "{before:?} -> {after:?}");
    assert_eq!(
        rows(
            &dir,
            "SELECT id, bumped FROM incremental_lake.analytics.events_appended WHERE id IN (2, 3) ORDER BY id"
        )?,
        ["2,", "3,33"]
    );
    // on_schema_change: fail: a new column is an error naming the model and the columns; nothing changes.
    let model = dir.join("models/events_checked.sql");
    let text = std::fs::read_to_string(&model)?;
    std::fs::write(&model, text.replace("as kind", "as kind, amount"))?;
    let err = lakeq_cli_err(&dir, &["build", "-s", "events_checked"])?;
    assert!(
        err.contains("model 'events_checked' (models/events_checked.sql)")
            && err.contains("on_schema_change 'fail'")
            && err.contains("columns new in the query: amount"),
        "{err}"
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT count(*) FROM incremental_lake.analytics.events_checked"
        )?,
        ["6"]
    );
    // An unknown on_schema_change is an error naming the model file.
    std::fs::write(
        &model,
        text.replace("on_schema_change='fail'", "on_schema_change='sometimes'"),
    )?;
    let err = lakeq_cli_err(&dir, &["ls"])?;
    assert!(
        err.contains("models/events_checked.sql")
            && err.contains("unknown on_schema_change 'sometimes'"),
        "{err}"
    );
    Ok(())
}

#[test]
fn dbt_utils_matches_dbt_duckdb() -> TestResult {
    // 3 seeds, 1 view, 4 tables, the 4 tables the hooks write and the failures of 14 tests.
    compare_with_dbt("utils", "utils.sqlite", "utils_data", 26)
}

#[test]
fn dbt_utils_macros_and_tests_run_on_the_lake() -> TestResult {
    let dir = project("utils")?;
    let (stdout, _) = run_ok(&dir, &["build"])?;
    // dbt_utils' generic tests, named as dbt names them, pass.
    for name in [
        "dbt_utils_expression_is_true_stg_orders_amount_0",
        "dbt_utils_unique_combination_of_columns_stg_orders_id__customer",
        "dbt_utils_accepted_range_stg_orders_amount__False__100__0",
        "dbt_utils_sequential_values_calendar_date_day__day__1",
        "dbt_utils_equal_rowcount_people_ref_people_",
        "dbt_utils_fewer_rows_than_people_ref_calendar_",
        "dbt_utils_recency_stg_orders_day__ordered_on__100000",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains("PASS") && l.contains(name)),
            "{name}:\n{stdout}"
        );
    }
    // star() read the columns of the seed from the lake; pivot() got the values with a query.
    assert_eq!(
        rows(
            &dir,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'status_pivot' ORDER BY ordinal_position"
        )?,
        ["customer", "o'brien", "placed", "returned", "shipped"]
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT o_id, o_customer FROM utils_lake.analytics.orders_prefixed WHERE o_id = 1"
        )?,
        ["1,ann"]
    );
    // union_relations(): the union of the columns, the source relation named as dbt renders it.
    assert_eq!(
        rows(
            &dir,
            "SELECT _dbt_source_relation, customer, city, role FROM utils_lake.analytics.people WHERE customer IN ('cy', 'dee') ORDER BY customer"
        )?,
        [
            "\"\"\"utils_lake\"\".\"\"analytics\"\".\"\"customers\"\"\",cy,,",
            "\"\"\"utils_lake\"\".\"\"analytics\"\".\"\"staff\"\"\",dee,Rome,manager",
        ]
    );
    // date_spine(): the interval count came from a statement() query.
    assert_eq!(
        rows(
            &dir,
            "SELECT count(*), min(date_day), max(date_day) FROM utils_lake.analytics.calendar"
        )?,
        ["10,2024-01-01 00:00:00,2024-01-10 00:00:00"]
    );
    // Hooks: on-run-start/-end, a post-hook from dbt_project.yml and a pre_hook from config().
    assert!(
        stdout.contains("on-run-start: 1 hooks run") && stdout.contains("on-run-end: 1 hooks run"),
        "{stdout}"
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT (SELECT target_name FROM utils_lake.main.run_started), (SELECT done FROM utils_lake.main.run_ended), \
             (SELECT days FROM utils_lake.analytics.calendar_audit), (SELECT model FROM utils_lake.main.people_pre)"
        )?,
        ["dev,1,10,people"]
    );
    // store_failures: each test's failing rows in a table of the audit schema, named as dbt
    // names it (hashed for a name of 64 characters or more).
    assert_eq!(
        rows(
            &dir,
            "SELECT value_field, n_records FROM utils_lake.analytics_dbt_test__audit.accepted_values_stg_orders_fd13e5bf4b025c44faef3487bb78d5af"
        )?,
        ["o'brien,1"]
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'analytics_dbt_test__audit'"
        )?,
        ["14"]
    );
    // A dbt_utils test that finds rows fails, with its count from the test's fail_calc.
    let yml = dir.join("models/schema.yml");
    let text = std::fs::read_to_string(&yml)?;
    std::fs::write(
        &yml,
        text.replace("expression: \"amount > 0\"", "expression: \"amount > 10\"")
            .replace(
                "compare_model: ref('people')",
                "compare_model: ref('calendar')",
            ),
    )?;
    let err = lakeq_cli_err(&dir, &["test"])?;
    assert!(
        err.lines().any(|l| l.contains("FAIL")
            && l.contains("dbt_utils_expression_is_true_stg_orders_amount_10")),
        "{err}"
    );
    // 10 calendar days against 5 people: the difference is the failure count (dbt: FAIL 5).
    assert!(
        err.contains("dbt_utils_equal_rowcount_people_ref_calendar_")
            && err.contains("5 failing rows"),
        "{err}"
    );
    Ok(())
}

#[test]
fn features_schema_macro_disabled_models_and_unsupported_keys() -> TestResult {
    let dir = project("features")?;
    let (stdout, stderr) = run_ok(&dir, &["build"])?;
    // The on-run-start hook runs (it was a warning before lakeq ran hooks).
    assert!(stdout.contains("on-run-start: 1 hooks run"), "{stdout}");
    assert!(!stderr.contains("on-run-start"), "{stderr}");
    // The unit test runs before its model.
    let line = |name: &str| stdout.lines().position(|l| l.contains(name));
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("PASS") && l.contains("unit_test   item_totals::totals_add_up")),
        "{stdout}"
    );
    assert!(
        line("item_totals::totals_add_up") < line("reporting.totals_by_item"),
        "{stdout}"
    );
    // The project's generate_schema_name: `reporting`, not `analytics_reporting`; the alias;
    // the seed's custom schema; the disabled folder is not built.
    assert!(
        stdout.contains("features_lake.reporting.totals_by_item 3 rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("features_lake.raw.items 4 rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("features_lake.analytics.stg_items"),
        "{stdout}"
    );
    assert!(!stdout.contains("old_items"), "{stdout}");
    // A singular test's config(severity='warn').
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("WARN") && l.contains("large_quantities")),
        "{stdout}"
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT item, total_qty, total_revenue, days FROM features_lake.reporting.totals_by_item ORDER BY item"
        )?,
        ["apple,10,4.65,2", "pear,1,1.25,1", "plum,250,25.00,1"]
    );
    // A local package's macro (dispatched, building its list with append) and generic test.
    assert_eq!(
        rows(
            &dir,
            "SELECT item_key = md5('apple-2024-03-01') FROM features_lake.analytics.stg_item_keys WHERE item = 'apple' AND sold_on = DATE '2024-03-01'"
        )?,
        ["true"]
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("PASS") && l.contains("at_least_stg_items_qty__1")),
        "{stdout}"
    );
    // A unit test whose expectation is wrong fails, and its model is not rebuilt.
    let yml = dir.join("models/reporting/schema.yml");
    let text = std::fs::read_to_string(&yml)?;
    std::fs::write(&yml, text.replace("total_qty: 5", "total_qty: 6"))?;
    let err = lakeq_cli_err(&dir, &["build", "-s", "item_totals"])?;
    assert!(
        err.lines()
            .any(|l| l.contains("FAIL") && l.contains("item_totals::totals_add_up"))
            && err.contains("2 rows differ")
            && err.contains("skipped because unit_test.features.item_totals.totals_add_up"),
        "{err}"
    );
    // A given column the input does not have: an error naming it.
    std::fs::write(&yml, text.replace("qty: 3,", "qty: 3, bogus: 1,"))?;
    let err = lakeq_cli_err(&dir, &["test", "-s", "item_totals"])?;
    assert!(
        err.contains("unit test 'totals_add_up' (models/reporting/schema.yml): given input ref:stg_items has no column 'bogus'"),
        "{err}"
    );
    Ok(())
}

#[test]
fn bad_dbt_input_is_a_clear_error() -> TestResult {
    let dir = project("features")?;
    // A macro that raises: the message, the macro file and its line.
    std::fs::write(
        dir.join("macros/checks.sql"),
        "{% macro must_be_positive(x) %}\n  {% if x <= 0 %}\n    {{ exceptions.raise_compiler_error('must_be_positive: ' ~ x ~ ' is not positive') }}\n  {% endif %}\n  {{ x }}\n{% endmacro %}\n",
    )?;
    std::fs::write(
        dir.join("models/staging/uses_macro.sql"),
        "select {{ must_be_positive(0) }} as n\n",
    )?;
    let err = lakeq_cli_err(&dir, &["build"])?;
    assert!(
        err.contains("macros/checks.sql, line 3")
            && err.contains("must_be_positive: 0 is not positive"),
        "{err}"
    );
    std::fs::remove_file(dir.join("models/staging/uses_macro.sql"))?;
    // A hook that fails: which hook of which file; nothing is built after a failed on-run-start.
    let project_yml = dir.join("dbt_project.yml");
    let yml = std::fs::read_to_string(&project_yml)?;
    std::fs::write(
        &project_yml,
        yml.replace("\"select 1\"", "\"select * from no_such_table\""),
    )?;
    let err = lakeq_cli_err(&dir, &["build"])?;
    assert!(
        err.contains("dbt_project.yml: on-run-start hook 1 of 1") && err.contains("no_such_table"),
        "{err}"
    );
    assert!(!err.contains("OK    table"), "{err}");
    std::fs::write(&project_yml, &yml)?;
    // A failing post_hook fails its model, named with its file.
    std::fs::write(
        dir.join("models/staging/hooked.sql"),
        "{{ config(post_hook='insert into nowhere values (1)') }}\nselect 1 as n\n",
    )?;
    let err = lakeq_cli_err(&dir, &["build", "-s", "hooked"])?;
    assert!(
        err.contains("model 'hooked' (models/staging/hooked.sql)")
            && err.contains("post_hook 1 of 1"),
        "{err}"
    );
    std::fs::remove_file(dir.join("models/staging/hooked.sql"))?;
    // A generic test that is neither built in nor a {% test %} macro of the project.
    std::fs::write(
        dir.join("models/staging/schema.yml"),
        "version: 2\nmodels:\n  - name: stg_items\n    columns:\n      - name: qty\n        data_tests:\n          - is_even\n",
    )?;
    let err = lakeq_cli_err(&dir, &["ls"])?;
    assert!(
        err.contains("models/staging/schema.yml: unknown test 'is_even' on stg_items"),
        "{err}"
    );
    std::fs::remove_file(dir.join("models/staging/schema.yml"))?;
    // A hub package that is not installed: said, nothing downloaded; a local one that is missing: an error.
    std::fs::write(
        dir.join("packages.yml"),
        "packages:\n  - local: local_packages/my_utils\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\"]\n",
    )?;
    let (_, stderr) = run_ok(&dir, &["ls"])?;
    assert!(
        stderr.contains(
            "package 'dbt-labs/dbt_utils' is not installed and lakeq does not download packages"
        ),
        "{stderr}"
    );
    std::fs::write(
        dir.join("packages.yml"),
        "packages:\n  - local: ../nowhere\n",
    )?;
    let err = lakeq_cli_err(&dir, &["ls"])?;
    assert!(
        err.contains("packages.yml") && err.contains("local package '../nowhere'"),
        "{err}"
    );
    std::fs::remove_file(dir.join("packages.yml"))?;
    // A bad profile: the file and what is wrong.
    std::fs::write(
        dir.join("profiles.yml"),
        "features:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n",
    )?;
    let err = lakeq_cli_err(&dir, &["ls"])?;
    assert!(
        err.contains("profiles.yml") && err.contains("type: duckdb"),
        "{err}"
    );
    Ok(())
}

#[test]
fn contracts_match_dbt_duckdb() -> TestResult {
    // Built twice: the incremental model's second run checks its contract again.
    // date_diffs: dbt.datediff for every date part, against dbt-duckdb's date_diff();
    // run_log and run_schemas: on-run-end's `results` and `schemas`.
    compare_builds_with_dbt(
        "contracts",
        "contracts.sqlite",
        "contracts_data",
        7,
        &[&[], &[]],
    )
}

#[test]
fn a_broken_contract_fails_its_model_as_in_dbt_and_writes_nothing() -> TestResult {
    let (with_dbt, with_lakeq) = (project("contracts")?, project("contracts")?);
    run_dbt(&with_dbt, &["build"])?;
    run_ok(&with_lakeq, &["build"])?;
    let facts = "SELECT id, customer, amount FROM contracts_lake.analytics.order_facts ORDER BY id";
    let before = rows(&with_lakeq, facts)?;
    assert_eq!(before.len(), 4, "{before:?}");
    let yml_of = |dir: &Path| dir.join("models/schema.yml");
    let yml = std::fs::read_to_string(yml_of(&with_lakeq))?;
    let sql_of = |dir: &Path| dir.join("models/order_facts.sql");
    let sql = std::fs::read_to_string(sql_of(&with_lakeq))?;

    // A declared type the query does not return: dbt fails the model, so does lakeq, naming
    // the model, the column, the declared and the actual type; the table is unchanged.
    let wrong_type = yml.replace("data_type: decimal(10,2)", "data_type: integer");
    for dir in [&with_dbt, &with_lakeq] {
        std::fs::write(yml_of(dir), &wrong_type)?;
    }
    let out = run_dbt_failing(&with_dbt, &["build", "-s", "order_facts"])?;
    assert!(out.contains("contract"), "{out}");
    let err = lakeq_cli_err(&with_lakeq, &["build", "-s", "order_facts"])?;
    assert!(
        err.contains("model 'order_facts' (models/order_facts.sql)")
            && err.contains("enforced contract does not match its query")
            && err.contains(
                "column 'amount' is declared 'integer' (INTEGER) but the query returns DECIMAL(10,2)"
            ),
        "{err}"
    );
    assert_eq!(rows(&with_lakeq, facts)?, before);
    // A column the query returns but the contract lacks, and one it lacks.
    std::fs::write(
        yml_of(&with_lakeq),
        yml.replace("- name: is_large", "- name: is_big"),
    )?;
    let err = lakeq_cli_err(&with_lakeq, &["build", "-s", "order_facts"])?;
    assert!(
        err.contains(
            "column 'is_large' (BOOLEAN) is returned by the query but missing from the contract"
        ) && err.contains(
            "column 'is_big' ('boolean') is in the contract but not returned by the query"
        ),
        "{err}"
    );

    // A NULL in a not_null column: the insert fails in both; the previous table stays.
    for dir in [&with_dbt, &with_lakeq] {
        std::fs::write(yml_of(dir), &yml)?;
        std::fs::write(
            sql_of(dir),
            sql.replace("coalesce(customer, 'unknown')", "customer"),
        )?;
    }
    let out = run_dbt_failing(&with_dbt, &["build", "-s", "order_facts"])?;
    assert!(out.contains("NOT NULL"), "{out}");
    let err = lakeq_cli_err(&with_lakeq, &["build", "-s", "order_facts"])?;
    assert!(
        err.contains("model 'order_facts' (models/order_facts.sql)")
            && err.contains("NOT NULL constraint failed"),
        "{err}"
    );
    assert_eq!(rows(&with_lakeq, facts)?, before);
    std::fs::write(sql_of(&with_lakeq), &sql)?;

    // Constraints DuckLake tables cannot hold: an error before anything is written.
    std::fs::write(
        yml_of(&with_lakeq),
        yml.replace(
            "data_type: date\n",
            "data_type: date\n        constraints:\n          - type: check\n            expression: \"ordered_on > '2000-01-01'\"\n",
        ),
    )?;
    let err = lakeq_cli_err(&with_lakeq, &["build", "-s", "order_facts"])?;
    assert!(
        err.contains(
            "constraints 'check' on column 'ordered_on' are not supported on DuckLake tables"
        ),
        "{err}"
    );
    assert_eq!(rows(&with_lakeq, facts)?, before);

    // What dbt refuses when it parses the project: a column without data_type, an
    // incremental model that ignores schema changes.
    std::fs::write(
        yml_of(&with_lakeq),
        yml.replace("        data_type: boolean\n", ""),
    )?;
    let err = lakeq_cli_err(&with_lakeq, &["ls"])?;
    assert!(
        err.contains("models/order_facts.sql")
            && err
                .contains("every column of its YAML needs a data_type; these have none: is_large"),
        "{err}"
    );
    std::fs::write(yml_of(&with_lakeq), &yml)?;
    let log = with_lakeq.join("models/order_log.sql");
    let text = std::fs::read_to_string(&log)?;
    std::fs::write(
        &log,
        text.replace(", on_schema_change='append_new_columns'", ""),
    )?;
    let err = lakeq_cli_err(&with_lakeq, &["ls"])?;
    assert!(
        err.contains("models/order_log.sql")
            && err.contains("must set on_schema_change to 'append_new_columns' or 'fail'"),
        "{err}"
    );
    Ok(())
}

/// The models and seeds `lakeq ls` lists, sorted.
fn listed(dir: &Path, args: &[&str]) -> TestResult<(Vec<String>, String)> {
    let (stdout, stderr) = run_ok(dir, args)?;
    let mut names: Vec<String> = stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) != Some("test"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    Ok((names, stderr))
}

#[test]
fn selectors_yml_selects_what_dbt_selects() -> TestResult {
    let dir = project("jaffle")?;
    for selector in [
        "staging_and_children",
        "marts_without_finance",
        "models_upstream_of_orders",
        "seeds_and_finance",
        "all_but_staging_and_tables",
    ] {
        let out = run_dbt(
            &dir,
            &[
                "ls",
                "--selector",
                selector,
                "--resource-type",
                "model",
                "--resource-type",
                "seed",
                "--output",
                "name",
                "--quiet",
            ],
        )?;
        let mut by_dbt: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
        by_dbt.retain(|l| !l.is_empty());
        by_dbt.sort();
        let (by_lakeq, _) = listed(&dir, &["ls", "--selector", selector])?;
        assert!(!by_lakeq.is_empty(), "{selector}");
        assert_eq!(by_lakeq, by_dbt, "selector {selector}: lakeq vs dbt");
    }
    Ok(())
}

#[test]
fn selectors_default_override_and_bad_definitions() -> TestResult {
    let dir = project("jaffle")?;
    let yml = dir.join("selectors.yml");
    let text = std::fs::read_to_string(&yml)?;
    // --selector wins over --select, with a warning.
    let (names, stderr) = listed(
        &dir,
        &[
            "ls",
            "--selector",
            "marts_without_finance",
            "-s",
            "stg_orders",
        ],
    )?;
    assert_eq!(names, ["customers", "orders"]);
    assert!(
        stderr.contains(
            "--selector marts_without_finance is used; --select and --exclude are ignored"
        ),
        "{stderr}"
    );
    // A `default: true` selector applies when nothing is selected, and -s replaces it.
    std::fs::write(
        &yml,
        text.replace(
            "  - name: marts_without_finance\n",
            "  - name: marts_without_finance\n    default: true\n",
        ),
    )?;
    let (names, stderr) = listed(&dir, &["ls"])?;
    assert_eq!(names, ["customers", "orders"]);
    assert!(
        stderr.contains("using the default selector 'marts_without_finance'"),
        "{stderr}"
    );
    let (names, _) = listed(&dir, &["ls", "-s", "stg_orders"])?;
    assert_eq!(names, ["stg_orders"]);
    // A run loads only the selector's nodes: three seeds, not seed_types.
    let (stdout, _) = run_ok(&dir, &["seed", "--selector", "seeds_and_finance"])?;
    assert!(stdout.contains("3 seeds loaded, 0 failed"), "{stdout}");
    assert!(!stdout.contains("seed_types"), "{stdout}");
    // Errors name selectors.yml, the selector and what is wrong.
    let err = lakeq_cli_err(&dir, &["ls", "--selector", "marts_without_financ"])?;
    assert!(
        err.contains("selectors.yml has no selector 'marts_without_financ'")
            && err.contains("did you mean"),
        "{err}"
    );
    std::fs::write(
        &yml,
        format!(
            "{text}  - name: by_owner\n    definition:\n      method: owner\n      value: ann\n"
        ),
    )?;
    let err = lakeq_cli_err(&dir, &["ls", "--selector", "by_owner"])?;
    assert!(
        err.contains(
            "selectors.yml: selector 'by_owner': method 'owner' is not supported by lakeq"
        ),
        "{err}"
    );
    // An entry of a union with `exclude:` is the union's exclusion in dbt (its method and
    // value select nothing; dbt ls lists nothing for this selector): the same, with a warning.
    std::fs::write(
        &yml,
        format!(
            "{text}  - name: nested\n    definition:\n      union:\n        - method: resource_type\n          value: seed\n          exclude:\n            - seed_types\n"
        ),
    )?;
    let (names, stderr) = listed(&dir, &["ls", "--selector", "nested"])?;
    assert!(names.is_empty(), "{names:?}");
    assert!(
        stderr.contains("selector 'nested': an entry of a union or intersection with `exclude:` is that list's exclusion")
            && stderr.contains("(method, value) select nothing"),
        "{stderr}"
    );
    std::fs::remove_file(&yml)?;
    let err = lakeq_cli_err(&dir, &["ls", "--selector", "nested"])?;
    assert!(
        err.contains("--selector nested: there is no selectors.yml"),
        "{err}"
    );
    Ok(())
}

#[test]
fn datediff_of_a_part_lakeq_lacks_names_the_model() -> TestResult {
    let dir = project("contracts")?;
    let model = dir.join("models/date_diffs.sql");
    let text = std::fs::read_to_string(&model)?;
    std::fs::write(&model, text.replace("'months'", "'decade'"))?;
    let err = lakeq_cli_err(&dir, &["compile", "-s", "date_diffs"])?;
    assert!(
        err.contains("models/date_diffs.sql")
            && err.contains("dbt.datediff: date part 'decade' is not supported by lakeq"),
        "{err}"
    );
    Ok(())
}

/// The three builds of `tests/dbt/snapshots`: the source rows change between them.
const SNAPSHOT_STAGES: &[&[&str]] = &[&[], &["--vars", "{stage: 2}"], &["--vars", "{stage: 3}"]];

#[test]
fn snapshots_match_dbt_duckdb() -> TestResult {
    // Times of the check strategy and of hard deletes are the time of the run (compared by rank:
    // the first run's time is 1 in both lakes), and hashes of them only as present; everything
    // else value by value, the timestamp strategy's dbt_scd_id and times included.
    let masks = serde_json::json!({
        "analytics.customers_check": {
            "dbt_scd_id": "notnull", "dbt_updated_at": "rank",
            "dbt_valid_from": "rank", "dbt_valid_to": "rank",
        },
        "analytics_history.customers_history": {
            "dbt_scd_id": "notnull", "dbt_updated_at": "rank",
            "dbt_valid_from": "rank", "dbt_valid_to": "rank",
        },
    });
    compare_masked_builds_with_dbt(
        "snapshots",
        "snapshots.sqlite",
        "snapshots_data",
        6,
        SNAPSHOT_STAGES,
        &masks.to_string(),
    )
}

#[test]
fn snapshots_record_versions_in_one_lake_snapshot_each() -> TestResult {
    let dir = project("snapshots")?;
    let (stdout, _) = run_ok(&dir, &["build"])?;
    assert!(
        stdout.contains("1 seeds loaded, 0 failed; 3 snapshots taken, 0 failed; 2 models built"),
        "{stdout}"
    );
    // `lakeq transform` (dbt's `run`) leaves snapshots alone; `lakeq snapshot` takes only them.
    let lake_snapshots = |dir: &Path| -> TestResult<i64> {
        let n = rows(dir, "SELECT count(*) FROM snapshots_lake.snapshots()")?;
        Ok(n.first().and_then(|s| s.parse().ok()).unwrap_or(-1))
    };
    let (stdout, _) = run_ok(&dir, &["transform", "--vars", "{stage: 2}"])?;
    assert!(
        !stdout.contains("customers_ts") && stdout.contains("2 models built"),
        "{stdout}"
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT count(*) FROM snapshots_lake.analytics.customers_ts"
        )?,
        ["4"]
    );
    let before = lake_snapshots(&dir)?;
    let (stdout, _) = run_ok(&dir, &["snapshot", "--vars", "{stage: 2}"])?;
    assert!(
        stdout.contains("3 snapshots taken, 0 failed; 0 models built"),
        "{stdout}"
    );
    // Each snapshot's staging, closing and inserting is one snapshot of the lake.
    assert_eq!(lake_snapshots(&dir)?, before + 3);
    // Bob's new version closes the old one at its updated_at; Eve is new; Cid's deletion is ignored.
    assert_eq!(
        rows(
            &dir,
            "SELECT id, status, dbt_valid_from, dbt_valid_to FROM snapshots_lake.analytics.customers_ts \
             ORDER BY id, dbt_valid_from"
        )?,
        [
            "1,bronze,2024-01-01 10:00:00,",
            "2,silver,2024-01-02 11:30:00,2024-02-02 11:30:00",
            "2,gold,2024-02-02 11:30:00,",
            "3,bronze,2024-01-03 09:15:00,",
            "4,,2024-01-04 08:00:00,",
            "5,silver,2024-02-05 12:00:00,",
        ]
    );
    // invalidate_hard_deletes closes Cid's row at the snapshot time, which opens Bob's new version.
    assert_eq!(
        rows(
            &dir,
            "SELECT id, status, dbt_valid_to IS NULL, dbt_valid_to = (SELECT max(dbt_valid_from) \
             FROM snapshots_lake.analytics.customers_check) FROM snapshots_lake.analytics.customers_check \
             ORDER BY id, dbt_valid_from"
        )?,
        [
            "1,bronze,true,",
            "2,silver,false,true",
            "2,gold,true,",
            "3,bronze,false,true",
            "4,,true,",
            "5,silver,true,",
        ]
    );
    // Taken again without changes, nothing changes.
    let (stdout, _) = run_ok(
        &dir,
        &["snapshot", "--vars", "{stage: 2}", "-s", "customers_ts"],
    )?;
    assert!(stdout.contains("customers_ts 0 rows"), "{stdout}");
    // ref() to a snapshot: the model reads its current rows.
    run_ok(&dir, &["transform", "-s", "current_customers"])?;
    assert_eq!(
        rows(
            &dir,
            "SELECT id, status FROM snapshots_lake.analytics.current_customers ORDER BY id"
        )?,
        ["1,bronze", "2,gold", "3,bronze", "4,", "5,silver"]
    );
    // Selection and listing know them as snapshots.
    let (listed, _) = run_ok(&dir, &["ls", "-s", "resource_type:snapshot"])?;
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            "customers_check",
            "customers_history",
            "customers_ts",
            "not_null_customers_history_dbt_scd_id",
            "not_null_customers_check_id"
        ],
        "{listed}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("target/manifest.json"))?)?;
    assert_eq!(
        manifest["nodes"]["model.snapshots.current_customers"]["depends_on"]["nodes"][0],
        "snapshot.snapshots.customers_ts"
    );
    Ok(())
}

#[test]
fn bad_snapshots_are_clear_errors() -> TestResult {
    let dir = project("snapshots")?;
    let file = dir.join("snapshots/customers_ts.sql");
    let text = std::fs::read_to_string(&file)?;
    for (broken, want) in [
        (
            text.replace("{% endsnapshot %}", ""),
            "snapshots/customers_ts.sql, line 1: {% snapshot customers_ts %} is not closed by {% endsnapshot %}",
        ),
        (
            text.replace("updated_at='updated_at'", "updated_at=none"),
            "model 'customers_ts' (snapshots/customers_ts.sql): the timestamp strategy needs config updated_at",
        ),
        (
            text.replace("strategy='timestamp'", "strategy='sometimes'"),
            "unknown snapshot strategy 'sometimes' (timestamp, check)",
        ),
        (
            text.replace(
                "strategy='timestamp',",
                "strategy='timestamp', hard_deletes='new_record', invalidate_hard_deletes=true,",
            ),
            "cannot set both the invalidate_hard_deletes and hard_deletes",
        ),
    ] {
        std::fs::write(&file, broken)?;
        let err = lakeq_cli_err(&dir, &["ls"])?;
        assert!(err.contains(want), "{want}:\n{err}");
    }
    std::fs::write(&file, text)?;
    // An unknown name in a snapshot's query fails that snapshot, naming it; nothing is written.
    run_ok(&dir, &["build"])?;
    let check = dir.join("snapshots/customers_check.sql");
    let text = std::fs::read_to_string(&check)?;
    std::fs::write(
        &check,
        text.replace(
            "select id, name, status",
            "select id, name, status, no_such_column",
        ),
    )?;
    let err = lakeq_cli_err(&dir, &["snapshot", "--vars", "{stage: 2}"])?;
    assert!(
        err.contains("customers_check") && err.contains("no_such_column"),
        "{err}"
    );
    assert_eq!(
        rows(
            &dir,
            "SELECT count(*) FROM snapshots_lake.analytics.customers_check"
        )?,
        ["4"]
    );
    Ok(())
}

#[test]
fn jinja_context_seed_hooks_and_view_failures_match_dbt_duckdb() -> TestResult {
    // The seed, the table its hooks write (their order shows in the rows), the model printing
    // model/graph/modules.datetime/adapter/api values, and the test failures stored as a view.
    compare_with_dbt("context", "context.sqlite", "context_data", 4)
}

#[test]
fn unknown_names_in_the_jinja_context_name_the_model() -> TestResult {
    let dir = project("context")?;
    let model = dir.join("models/context_info.sql");
    let text = std::fs::read_to_string(&model)?;
    for (broken, want) in [
        ("{{ no_such_macro() }}", "models/context_info.sql, line 1"),
        (
            "{{ modules.datetime.datetime.now().timestamp() }}",
            "lakeq does not support timestamp()",
        ),
        (
            "{{ graph.nodes['model.ctx.nope'].name }}",
            "models/context_info.sql, line 1",
        ),
    ] {
        std::fs::write(&model, format!("{broken}\n{text}"))?;
        let err = lakeq_cli_err(&dir, &["build"])?;
        assert!(err.contains(want), "{broken}: {err}");
    }
    // The stored failures are a view DuckDB reads (compared in the test above); lakeq lists it.
    std::fs::write(&model, text)?;
    run_ok(&dir, &["build"])?;
    assert_eq!(
        rows(
            &dir,
            "SELECT table_type FROM information_schema.tables WHERE table_catalog = 'context_lake' \
             AND table_name = 'accepted_values_items_item__apple__pear'"
        )?,
        ["VIEW"]
    );
    Ok(())
}

#[test]
fn state_modified_selects_what_dbt_selects() -> TestResult {
    let dir = project("jaffle")?;
    // Each tool's manifest of the unchanged project is its state.
    run_dbt(&dir, &["ls", "--quiet"])?;
    copy_dir(&dir.join("target"), &dir.join("state_dbt"))?;
    run_ok(&dir, &["build"])?;
    copy_dir(&dir.join("target"), &dir.join("state_lakeq"))?;
    // A changed body, a changed config, a new model and a changed seed.
    let edit = |file: &str, f: &dyn Fn(String) -> String| -> TestResult {
        let path = dir.join(file);
        std::fs::write(&path, f(std::fs::read_to_string(&path)?))?;
        Ok(())
    };
    edit("models/staging/stg_orders.sql", &|t| {
        format!("{t}\n-- changed\n")
    })?;
    edit("models/marts/customers.sql", &|t| {
        format!("{{{{ config(tags=['changed']) }}}}\n{t}")
    })?;
    std::fs::write(dir.join("models/marts/brand_new.sql"), "select 1 as x\n")?;
    edit("dbt_project.yml", &|t| {
        t.replace(
            "+schema: finance",
            "+schema: finance\n        +materialized: view",
        )
        // tags are left out of the comparison, as in dbt.
        .replace("+tags: ['staging']", "+tags: ['staging', 'more']")
    })?;
    edit("seeds/raw_customers.csv", &|t| {
        format!("{}\n101,Zed,Z\n", t.trim_end())
    })?;
    for method in [
        "state:modified",
        "state:new",
        "state:modified.body",
        "state:modified.configs",
    ] {
        let out = run_dbt(
            &dir,
            &[
                "ls",
                "-s",
                method,
                "--state",
                "state_dbt",
                "--resource-type",
                "model",
                "--resource-type",
                "seed",
                "--output",
                "name",
                "--quiet",
            ],
        )?;
        let mut by_dbt: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
        by_dbt.retain(|l| !l.is_empty());
        by_dbt.sort();
        let (by_lakeq, _) = listed(&dir, &["ls", "-s", method, "--state", "state_lakeq"])?;
        assert_eq!(by_lakeq, by_dbt, "{method}");
        assert!(!by_lakeq.is_empty(), "{method}");
    }
    // Without --state a state selector is an error, as in dbt.
    let err = lakeq_cli_err(&dir, &["ls", "-s", "state:modified"])?;
    assert!(err.contains("give --state"), "{err}");
    Ok(())
}

/// The columns of a catalog.json node: (name, DuckDB type, position), in order.
fn catalog_columns(node: &serde_json::Value) -> Vec<(String, String, u64)> {
    let mut columns: Vec<(String, String, u64)> = node["columns"]
        .as_object()
        .map(|c| {
            c.values()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default().to_string(),
                        c["type"].as_str().unwrap_or_default().to_string(),
                        c["index"].as_u64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    columns.sort_by_key(|c| c.2);
    columns
}

/// `lakeq docs generate` writes dbt's `catalog.json`: the same nodes, relation
/// types, lakes, schemas, names and columns (positions and DuckDB types) as
/// `dbt docs generate` with dbt-duckdb on the same project. The one known
/// difference: DuckDB's sum() of integers is a HUGEINT, lakeq's a BIGINT.
#[test]
fn docs_generate_catalog_matches_dbt_duckdb() -> TestResult {
    let with_dbt = project("jaffle")?;
    let with_lakeq = project("jaffle")?;
    run_dbt(&with_dbt, &["seed"])?;
    run_dbt(&with_dbt, &["build"])?;
    run_dbt(&with_dbt, &["docs", "generate"])?;
    run_ok(&with_lakeq, &["build"])?;
    let (stdout, _) = run_ok(&with_lakeq, &["docs", "generate"])?;
    assert!(stdout.contains("11 relations"), "{stdout}");
    let read = |dir: &Path| -> TestResult<serde_json::Value> {
        Ok(serde_json::from_slice(&std::fs::read(
            dir.join("target/catalog.json"),
        )?)?)
    };
    let (dbt, lakeq) = (read(&with_dbt)?, read(&with_lakeq)?);
    let ids = |c: &serde_json::Value| -> Vec<String> {
        c["nodes"]
            .as_object()
            .map(|n| n.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(ids(&dbt), ids(&lakeq));
    assert_eq!(ids(&dbt).len(), 11, "{dbt}");
    let mut problems = Vec::new();
    for id in ids(&dbt) {
        let (a, b) = (&dbt["nodes"][&id], &lakeq["nodes"][&id]);
        if a["metadata"] != b["metadata"] {
            problems.push(format!(
                "{id}: {} (dbt) vs {} (lakeq)",
                a["metadata"], b["metadata"]
            ));
        }
        let (ca, cb) = (catalog_columns(a), catalog_columns(b));
        let same = ca.len() == cb.len()
            && ca.iter().zip(&cb).all(|(x, y)| {
                x == y || (x.0 == y.0 && x.2 == y.2 && x.1 == "HUGEINT" && y.1 == "BIGINT")
            });
        if !same || ca.is_empty() {
            problems.push(format!("{id}: columns {ca:?} (dbt) vs {cb:?} (lakeq)"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// The page `lakeq docs generate` writes, served by `lakeq docs serve` and
/// rendered by a real browser (Debian's headless Chromium, which
/// scripts/test-env.sh installs): the DAG has a box per model and seed, the
/// navigation lists every model, a model's page shows its columns with their
/// types and tests; both views are screenshotted (PNG files in the scratch
/// folder, for a look by hand).
#[test]
fn docs_page_renders_in_chromium() -> TestResult {
    use std::io::BufRead;
    let chromium = std::env::var("LAKEQ_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let dir = project("jaffle")?;
    run_ok(&dir, &["build"])?;
    run_ok(&dir, &["docs", "generate"])?;
    let mut server = Command::new(env!("CARGO_BIN_EXE_lakeq"))
        .current_dir(&dir)
        .args(["docs", "serve", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let result = (|| -> TestResult {
        let stdout = server.stdout.take().ok_or("no stdout")?;
        let mut first = String::new();
        std::io::BufReader::new(stdout).read_line(&mut first)?;
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| format!("no address in {first:?}"))?
            .to_string();
        let browse = |args: &[&str], page: &str| -> TestResult<String> {
            let out = Command::new(&chromium)
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"])
                .arg("--virtual-time-budget=5000")
                .args(args)
                .arg(page)
                .output()
                .map_err(|e| {
                    format!("cannot run {chromium} ({e}): scripts/test-env.sh installs Debian's chromium")
                })?;
            if !out.status.success() {
                return Err(format!(
                    "{chromium} {args:?} {page} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
                .into());
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let dag = browse(&["--dump-dom"], &url)?;
        assert!(
            dag.contains("data-ready=\"1\""),
            "the page's script did not finish:\n{dag}"
        );
        assert_eq!(dag.matches("class=\"dag-node model\"").count(), 7, "{dag}");
        assert_eq!(dag.matches("class=\"dag-node seed\"").count(), 4, "{dag}");
        assert!(dag.matches("class=\"dag-edge\"").count() >= 8, "{dag}");
        for model in ["customers", "orders", "stg_payments", "revenue_by_day"] {
            assert!(
                dag.contains(&format!("data-id=\"model.jaffle.{model}\"")),
                "{model} missing:\n{dag}"
            );
        }
        let page = format!("{url}#model.jaffle.customers");
        let customers = browse(&["--dump-dom"], &page)?;
        assert_eq!(
            customers.matches("<tr class=\"column\">").count(),
            7,
            "{customers}"
        );
        assert!(
            customers.contains("<td>customer_lifetime_value</td><td>BIGINT</td>"),
            "{customers}"
        );
        assert!(
            customers.contains("jaffle_lake.main.customers"),
            "{customers}"
        );
        for (name, page) in [("dag", url.as_str()), ("customers", page.as_str())] {
            let shot = dir.join(format!("docs-{name}.png"));
            browse(&[&format!("--screenshot={}", shot.display())], page)?;
            let png = std::fs::read(&shot)?;
            assert!(
                png.starts_with(b"\x89PNG") && png.len() > 10_000,
                "{}",
                shot.display()
            );
        }
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// `tests/dbt/jaffle` with a second target, `prod` (schema `prod` of the same lake).
fn jaffle_with_prod_target() -> TestResult<PathBuf> {
    let dir = project("jaffle")?;
    let profiles = dir.join("profiles.yml");
    let text = std::fs::read_to_string(&profiles)?;
    let dev = text
        .find("    dev:\n")
        .and_then(|i| text.get(i..))
        .ok_or("no dev output in jaffle's profiles.yml")?;
    let prod = dev.replacen("    dev:\n", "    prod:\n", 1).replacen(
        "      schema: main\n",
        "      schema: prod\n",
        1,
    );
    std::fs::write(&profiles, format!("{}\n{prod}", text.trim_end()))?;
    Ok(dir)
}

/// dbt's `--defer --state`: with everything built in `prod` and nothing in
/// `dev`, `build -s customers --defer --state prod_state` builds `customers` in
/// dev from prod's staging views (and runs its tests, the relationships test
/// reading prod's `orders`), as dbt-duckdb does: the lakes compare equal.
/// A second run, with `customers` built in dev, still defers the others; with
/// `--favor-state` a dev relation is ignored too, and without `--defer` the
/// unbuilt dev staging views are an error naming them.
#[test]
fn defer_reads_unselected_models_from_the_state_manifest_as_dbt() -> TestResult {
    let with_dbt = jaffle_with_prod_target()?;
    let with_lakeq = jaffle_with_prod_target()?;
    run_dbt(&with_dbt, &["seed", "--target", "prod"])?;
    run_dbt(&with_dbt, &["build", "--target", "prod"])?;
    run_ok(&with_lakeq, &["build", "--target", "prod"])?;
    for dir in [&with_dbt, &with_lakeq] {
        std::fs::create_dir_all(dir.join("prod_state"))?;
        std::fs::copy(
            dir.join("target/manifest.json"),
            dir.join("prod_state/manifest.json"),
        )?;
    }
    let defer = [
        "build",
        "-s",
        "customers",
        "--defer",
        "--state",
        "prod_state",
    ];
    let dbt_out = run_dbt(&with_dbt, &defer)?;
    let (lakeq_out, _) = run_ok(&with_lakeq, &defer)?;
    for expected in [
        "stg_customers (jaffle_lake.prod.stg_customers)",
        "orders (jaffle_lake.prod.orders)",
        "jaffle_lake.main.customers 8 rows",
        "relationships_orders_customer_id",
        "1 models built, 0 failed; 3 tests passed",
    ] {
        assert!(lakeq_out.contains(expected), "{expected}:\n{lakeq_out}");
    }
    // prod's 4 seeds, 3 views and 4 tables, and dev's customers.
    assert_same_lakes(
        &with_dbt,
        &with_lakeq,
        "jaffle.sqlite",
        "jaffle_data",
        12,
        "{}",
        &format!("dbt:\n{dbt_out}\nlakeq:\n{lakeq_out}"),
    )?;
    let (again, _) = run_ok(&with_lakeq, &defer)?;
    assert!(
        again.contains("stg_orders (jaffle_lake.prod.stg_orders)"),
        "{again}"
    );
    let (favored, _) = run_ok(
        &with_lakeq,
        &[
            "compile",
            "-s",
            "customers",
            "--defer",
            "--favor-state",
            "--state",
            "prod_state",
        ],
    )?;
    assert!(
        favored.contains("from jaffle_lake.prod.stg_customers"),
        "{favored}"
    );
    let err = lakeq_cli_err(&with_lakeq, &["build", "-s", "customers"])?;
    assert!(err.contains("jaffle_lake.main.stg_"), "{err}");
    Ok(())
}
