//! `lakeq generate`: byte-for-byte determinism, batch continuation, the exact
//! landing schemas, row counts and the rules of the data-model contract
//! (`data-model.md` §1), checked on the files as written.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use lakeq::generate::{
    BatchSizes, GenerateOptions, GenerateReport, LandingTable, batch_window_micros, generate,
    generate_table, landing_file_path,
};

use crate::common::{TestResult, scratch_dir};

/// Expected columns of a table: name, type, nullable.
type Columns = Vec<(&'static str, DataType, bool)>;

const TABLES: [&str; 4] = ["users", "events", "invoices", "support_tickets"];

fn options(landing: &Path, batches: u32, seed: u64) -> GenerateOptions {
    GenerateOptions {
        landing: landing.display().to_string(),
        batches,
        seed,
        sizes: BatchSizes::default(),
    }
}

fn read_file(path: &Path) -> TestResult<RecordBatch> {
    let file = std::fs::File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let schema = builder.schema().clone();
    let reader = builder.build()?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(concat_batches(&schema, &batches)?)
}

fn read(landing: &Path, table: &str, batch: u32) -> TestResult<RecordBatch> {
    read_file(&landing.join(format!("{table}/batch-{batch:06}.parquet")))
}

fn strings(b: &RecordBatch, name: &str) -> TestResult<Vec<Option<String>>> {
    let col = b.column_by_name(name).ok_or(format!("no column {name}"))?;
    Ok(col
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

fn required_strings(b: &RecordBatch, name: &str) -> TestResult<Vec<String>> {
    strings(b, name)?
        .into_iter()
        .map(|v| v.ok_or_else(|| format!("null in {name}").into()))
        .collect()
}

fn ints(b: &RecordBatch, name: &str) -> TestResult<Vec<i64>> {
    let col = b.column_by_name(name).ok_or(format!("no column {name}"))?;
    let a = col.as_primitive::<Int64Type>();
    Ok(a.iter().map(|v| v.unwrap_or(i64::MIN)).collect())
}

fn times(b: &RecordBatch, name: &str) -> TestResult<Vec<Option<i64>>> {
    let col = b.column_by_name(name).ok_or(format!("no column {name}"))?;
    Ok(col
        .as_primitive::<TimestampMicrosecondType>()
        .iter()
        .collect())
}

fn required_times(b: &RecordBatch, name: &str) -> TestResult<Vec<i64>> {
    times(b, name)?
        .into_iter()
        .map(|v| v.ok_or_else(|| format!("null in {name}").into()))
        .collect()
}

#[tokio::test]
async fn same_seed_and_batch_give_identical_bytes() -> TestResult {
    // Two batches in one run vs. one batch per run: same files, byte for byte.
    let a = scratch_dir("generate_det_a");
    let b = scratch_dir("generate_det_b");
    let c = scratch_dir("generate_det_c");
    generate(&options(&a, 2, 7)).await?;
    generate(&options(&b, 1, 7)).await?;
    generate(&options(&b, 1, 7)).await?;
    generate(&options(&c, 1, 8)).await?;
    for batch in [1, 2] {
        for table in LandingTable::ALL {
            let rel = landing_file_path(table, batch);
            let (x, y) = (std::fs::read(a.join(&rel))?, std::fs::read(b.join(&rel))?);
            assert!(x == y, "{rel} differs between runs");
        }
    }
    // Another seed gives other data.
    for table in LandingTable::ALL {
        let rel = landing_file_path(table, 1);
        assert_ne!(
            std::fs::read(a.join(&rel))?,
            std::fs::read(c.join(&rel))?,
            "{rel}"
        );
    }
    // The in-memory API produces exactly what was written.
    let in_memory = generate_table(7, 2, &BatchSizes::default(), LandingTable::SupportTickets)?;
    assert_eq!(in_memory, read(&a, "support_tickets", 2)?);
    Ok(())
}

#[tokio::test]
async fn runs_continue_after_the_highest_batch_present() -> TestResult {
    let dir = scratch_dir("generate_continue");
    let small = BatchSizes {
        users: 50,
        events: 500,
        invoices: 40,
        tickets: 20,
    };
    let opts = |batches| GenerateOptions {
        sizes: small,
        ..options(&dir, batches, 1)
    };
    let first = generate(&opts(2)).await?;
    assert_eq!(first.batches, vec![1, 2]);
    assert_eq!(first.files.len(), 8);
    let second = generate(&opts(3)).await?;
    assert_eq!(second.batches, vec![3, 4, 5]);
    for batch in 1..=5 {
        for table in TABLES {
            let file = dir.join(format!("{table}/batch-{batch:06}.parquet"));
            assert!(file.is_file(), "{} is missing", file.display());
        }
    }
    // The highest batch of any table counts; other names are ignored.
    std::fs::write(dir.join("invoices/batch-000009.parquet"), b"not parquet")?;
    std::fs::write(dir.join("events/notes.txt"), b"x")?;
    std::fs::write(dir.join("events/batch-000042.parquet.tmp"), b"x")?;
    let third = generate(&opts(1)).await?;
    assert_eq!(third.batches, vec![10]);
    assert_eq!(
        lakeq::generate::latest_batch(&dir.display().to_string()).await?,
        10
    );
    // Zero batches: nothing written, nothing to report.
    let none = generate(&opts(0)).await?;
    assert!(none.batches.is_empty() && none.files.is_empty());
    Ok(())
}

#[tokio::test]
async fn schemas_are_exactly_the_contract() -> TestResult {
    let dir = scratch_dir("generate_schema");
    generate(&GenerateOptions {
        sizes: BatchSizes {
            users: 200,
            events: 2_000,
            invoices: 200,
            tickets: 100,
        },
        ..options(&dir, 1, 3)
    })
    .await?;
    let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
    let utf8 = DataType::Utf8;
    let expected: [(&str, Columns); 4] = [
        (
            "users",
            vec![
                ("user_id", DataType::Int64, false),
                ("email", utf8.clone(), true),
                ("full_name", utf8.clone(), true),
                ("country", utf8.clone(), true),
                ("plan", utf8.clone(), true),
                ("signup_at", ts.clone(), true),
                ("is_active", DataType::Boolean, true),
                ("updated_at", ts.clone(), true),
            ],
        ),
        (
            "events",
            vec![
                ("event_id", utf8.clone(), false),
                ("user_id", DataType::Int64, false),
                ("event_type", utf8.clone(), true),
                ("event_at", ts.clone(), true),
                ("page", utf8.clone(), true),
                ("feature", utf8.clone(), true),
                ("device", utf8.clone(), true),
            ],
        ),
        (
            "invoices",
            vec![
                ("invoice_id", utf8.clone(), false),
                ("user_id", DataType::Int64, false),
                ("issued_at", ts.clone(), true),
                ("amount", DataType::Decimal128(12, 2), true),
                ("currency", utf8.clone(), true),
                ("plan", utf8.clone(), true),
                ("status", utf8.clone(), true),
            ],
        ),
        (
            "support_tickets",
            vec![
                ("ticket_id", utf8.clone(), false),
                ("user_id", DataType::Int64, false),
                ("created_at", ts.clone(), true),
                ("resolved_at", ts.clone(), true),
                ("priority", utf8.clone(), true),
                ("category", utf8.clone(), true),
                ("status", utf8.clone(), true),
                ("satisfaction_score", DataType::Int32, true),
            ],
        ),
    ];
    for (table, columns) in expected {
        let data = read(&dir, table, 1)?;
        let actual: Vec<(String, DataType, bool)> = data
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect();
        let columns: Vec<(String, DataType, bool)> = columns
            .into_iter()
            .map(|(n, t, null)| (n.to_string(), t, null))
            .collect();
        assert_eq!(actual, columns, "schema of {table}");
    }
    Ok(())
}

#[tokio::test]
async fn row_counts_follow_the_sizes() -> TestResult {
    let dir = scratch_dir("generate_counts");
    let report = generate(&options(&dir, 1, 42)).await?;
    let want = [2_000, 50_000, 5_000, 1_500];
    for (table, n) in TABLES.iter().zip(want) {
        assert_eq!(read(&dir, table, 1)?.num_rows(), n, "{table}");
    }
    assert_eq!(
        (
            report.rows.users,
            report.rows.events,
            report.rows.invoices,
            report.rows.support_tickets
        ),
        (2_000, 50_000, 5_000, 1_500)
    );
    let scaled = scratch_dir("generate_counts_scaled");
    let report = generate(&GenerateOptions {
        sizes: BatchSizes {
            users: 100,
            events: 1_000,
            invoices: 70,
            tickets: 30,
        },
        ..options(&scaled, 2, 42)
    })
    .await?;
    assert_eq!(report.rows.users, 200);
    assert_eq!(report.rows.events, 2_000);
    assert_eq!(report.rows.invoices, 140);
    assert_eq!(report.rows.support_tickets, 60);
    let bytes: u64 = report.files.iter().map(|f| f.bytes).sum();
    assert_eq!(bytes, report.bytes);
    for f in &report.files {
        assert_eq!(std::fs::metadata(scaled.join(&f.path))?.len(), f.bytes);
    }
    Ok(())
}

/// Users of one batch by id: (plan, email, signup_at).
fn users_by_id(users: &RecordBatch) -> TestResult<HashMap<i64, (String, String, i64)>> {
    let ids = ints(users, "user_id")?;
    let plans = required_strings(users, "plan")?;
    let emails = required_strings(users, "email")?;
    let signups = required_times(users, "signup_at")?;
    Ok(ids
        .into_iter()
        .zip(plans)
        .zip(emails)
        .zip(signups)
        .map(|(((id, plan), email), signup)| (id, (plan, email, signup)))
        .collect())
}

#[tokio::test]
async fn rows_follow_the_data_model_rules() -> TestResult {
    let dir = scratch_dir("generate_rules");
    generate(&options(&dir, 3, 42)).await?;
    let mut event_ids = HashSet::new();
    for batch in 1..=3u32 {
        let (start, end) = batch_window_micros(batch);
        let in_window = |t: i64| (start..end).contains(&t);

        // users: ids 1..=2000, as-of time, countries skewed to US, ~5% messy e-mails.
        let users = read(&dir, "users", batch)?;
        let ids = ints(&users, "user_id")?;
        assert_eq!(ids, (1..=2_000).collect::<Vec<i64>>());
        assert!(
            required_times(&users, "updated_at")?
                .iter()
                .all(|&t| t == end)
        );
        assert!(
            required_times(&users, "signup_at")?
                .iter()
                .all(|&t| t < end)
        );
        let emails = required_strings(&users, "email")?;
        let messy = emails
            .iter()
            .filter(|e| e.trim().to_lowercase() != **e)
            .count();
        assert!((60..=140).contains(&messy), "{messy} messy e-mails of 2000");
        assert!(emails.iter().all(|e| e.trim().contains('@')));
        let mut countries: HashMap<String, usize> = HashMap::new();
        for c in required_strings(&users, "country")? {
            assert!(
                c.len() == 2 && c.chars().all(|c| c.is_ascii_uppercase()),
                "{c}"
            );
            *countries.entry(c).or_default() += 1;
        }
        let top = countries
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(c, _)| c.as_str());
        assert_eq!(top, Some("US"));
        let plans = required_strings(&users, "plan")?;
        assert!(
            plans
                .iter()
                .all(|p| ["free", "starter", "pro", "enterprise"].contains(&p.as_str()))
        );
        let by_id = users_by_id(&users)?;

        // events
        let events = read(&dir, "events", batch)?;
        let types = required_strings(&events, "event_type")?;
        let pages = strings(&events, "page")?;
        let features = strings(&events, "feature")?;
        let at = required_times(&events, "event_at")?;
        let users_of_events = ints(&events, "user_id")?;
        for i in 0..events.num_rows() {
            let t = types[i].as_str();
            assert!(
                [
                    "page_view",
                    "login",
                    "feature_used",
                    "signup",
                    "upgrade",
                    "downgrade"
                ]
                .contains(&t),
                "{t}"
            );
            assert_eq!(pages[i].is_some(), t == "page_view", "page on a {t} event");
            assert_eq!(
                features[i].is_some(),
                t == "feature_used",
                "feature on a {t} event"
            );
            assert!(in_window(at[i]), "event_at {} outside batch {batch}", at[i]);
            let signup = by_id.get(&users_of_events[i]).ok_or("unknown user")?.2;
            assert!(at[i] >= signup, "event before the user's sign-up");
        }
        for d in required_strings(&events, "device")? {
            assert!(["desktop", "mobile", "tablet"].contains(&d.as_str()), "{d}");
        }
        for id in required_strings(&events, "event_id")? {
            assert_eq!(id.len(), 36);
            assert!(event_ids.insert(id), "duplicate event_id");
        }
        // Power users: the top 1% of users produce well over 1% of events.
        let mut per_user: HashMap<i64, usize> = HashMap::new();
        for u in &users_of_events {
            *per_user.entry(*u).or_default() += 1;
        }
        let mut counts: Vec<usize> = per_user.into_values().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = counts.iter().take(20).sum();
        assert!(
            top * 100 > events.num_rows() * 8,
            "top 20 users: {top} events"
        );
        // Daily rhythm (local office hours, blurred in UTC by the users' time
        // zones): the busiest UTC hour has at least twice the quietest's events.
        // Weekly rhythm: weekend days are quieter than weekdays.
        let mut hours = [0usize; 24];
        let mut weekdays = [0usize; 7];
        for t in &at {
            let day = t.div_euclid(86_400_000_000);
            hours[(t.rem_euclid(86_400_000_000) / 3_600_000_000) as usize] += 1;
            weekdays[(day + 3).rem_euclid(7) as usize] += 1; // Monday = 0
        }
        let (max, min) = (hours.iter().max(), hours.iter().min());
        assert!(max.zip(min).is_some_and(|(a, b)| *a > 2 * *b), "{hours:?}");
        // (30 days hold 4 or 5 of each weekday; compare per-day averages.)
        let days_of = |wd: i64| {
            (0..30)
                .filter(|d| (start / 86_400_000_000 + d + 3).rem_euclid(7) == wd)
                .count()
        };
        let per_day = |wd: usize| weekdays[wd] as f64 / days_of(wd as i64) as f64;
        let weekday_avg = (0..5).map(per_day).sum::<f64>() / 5.0;
        let weekend_avg = (5..7).map(per_day).sum::<f64>() / 2.0;
        assert!(weekend_avg < 0.8 * weekday_avg, "{weekdays:?}");

        // invoices: paying users only, billed at their plan's price ±10%.
        let invoices = read(&dir, "invoices", batch)?;
        let amount = invoices
            .column_by_name("amount")
            .ok_or("no amount")?
            .as_primitive::<Decimal128Type>()
            .clone();
        let inv_users = ints(&invoices, "user_id")?;
        let inv_plans = required_strings(&invoices, "plan")?;
        let statuses = required_strings(&invoices, "status")?;
        let issued = required_times(&invoices, "issued_at")?;
        assert!(
            required_strings(&invoices, "currency")?
                .iter()
                .all(|c| c == "USD")
        );
        for i in 0..invoices.num_rows() {
            let user_plan = &by_id.get(&inv_users[i]).ok_or("unknown user")?.0;
            assert_ne!(user_plan, "free", "invoice for a free user");
            assert_eq!(user_plan, &inv_plans[i]);
            let price = match inv_plans[i].as_str() {
                "starter" => 2_900,
                "pro" => 9_900,
                "enterprise" => 49_900,
                other => return Err(format!("invoice plan {other}").into()),
            };
            let cents = amount.value(i);
            assert!(
                cents * 10 >= price * 9 && cents * 10 <= price * 11,
                "{cents} for {price}"
            );
            assert!(in_window(issued[i]));
            assert!(["paid", "open", "void", "refunded"].contains(&statuses[i].as_str()));
        }
        let paid = statuses.iter().filter(|s| *s == "paid").count();
        assert!(paid * 2 > statuses.len(), "paid should be most: {paid}");
        assert_eq!(invoices.num_rows(), 5_000);

        // support tickets
        let tickets = read(&dir, "support_tickets", batch)?;
        let created = required_times(&tickets, "created_at")?;
        let resolved = times(&tickets, "resolved_at")?;
        let status = required_strings(&tickets, "status")?;
        let score = tickets
            .column_by_name("satisfaction_score")
            .ok_or("no satisfaction_score")?
            .as_primitive::<Int32Type>()
            .clone();
        let mut scored = 0;
        for i in 0..tickets.num_rows() {
            let open = matches!(status[i].as_str(), "open" | "pending");
            assert!(open || matches!(status[i].as_str(), "resolved" | "closed"));
            assert!(in_window(created[i]));
            assert_eq!(
                resolved[i].is_none(),
                open,
                "resolved_at vs status {}",
                status[i]
            );
            if let Some(r) = resolved[i] {
                assert!(r > created[i], "resolved_at not after created_at");
                assert!(r < end, "resolved after the as-of time");
            }
            if score.is_valid(i) {
                assert!(!open, "satisfaction on an open ticket");
                assert!((1..=5).contains(&score.value(i)));
                scored += 1;
            }
        }
        let closed = status
            .iter()
            .filter(|s| !matches!(s.as_str(), "open" | "pending"))
            .count();
        assert!(scored > 0 && scored < closed, "{scored} of {closed} scored");
        for p in required_strings(&tickets, "priority")? {
            assert!(["low", "medium", "high", "urgent"].contains(&p.as_str()));
        }
        for c in required_strings(&tickets, "category")? {
            assert!(
                ["billing", "bug", "how_to", "account", "feature_request"].contains(&c.as_str())
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn users_are_stable_and_plans_move_up_mostly() -> TestResult {
    let dir = scratch_dir("generate_plans");
    let report: GenerateReport = generate(&GenerateOptions {
        sizes: BatchSizes {
            events: 1_000,
            invoices: 100,
            tickets: 50,
            ..BatchSizes::default()
        },
        ..options(&dir, 4, 42)
    })
    .await?;
    assert_eq!(report.batches, vec![1, 2, 3, 4]);
    let rank = |p: &str| {
        ["free", "starter", "pro", "enterprise"]
            .iter()
            .position(|x| *x == p)
    };
    let first = users_by_id(&read(&dir, "users", 1)?)?;
    let last = users_by_id(&read(&dir, "users", 4)?)?;
    let (mut up, mut down) = (0, 0);
    for (id, (plan, email, signup)) in &first {
        let (later_plan, later_email, later_signup) = last.get(id).ok_or("user vanished")?;
        assert_eq!(email, later_email, "e-mail of user {id} changed");
        assert_eq!(signup, later_signup, "signup_at of user {id} changed");
        match rank(plan).cmp(&rank(later_plan)) {
            std::cmp::Ordering::Less => up += 1,
            std::cmp::Ordering::Greater => down += 1,
            std::cmp::Ordering::Equal => {}
        }
    }
    assert!(
        up > 2 * down && down > 0,
        "{up} upgrades, {down} downgrades"
    );
    // Plan changes show up as upgrade/downgrade events.
    let events = read(&dir, "events", 2)?;
    let types = required_strings(&events, "event_type")?;
    assert!(types.iter().any(|t| t == "upgrade"));
    Ok(())
}

#[tokio::test]
async fn bad_options_are_errors_not_panics() -> TestResult {
    let dir = scratch_dir("generate_bad");
    let no_users = GenerateOptions {
        sizes: BatchSizes {
            users: 0,
            ..BatchSizes::default()
        },
        ..options(&dir, 1, 1)
    };
    let err = generate(&no_users).await.err().ok_or("expected an error")?;
    assert!(err.to_string().contains("--users"), "{err}");
    let empty = GenerateOptions {
        landing: String::new(),
        ..options(&dir, 1, 1)
    };
    assert!(generate(&empty).await.is_err());
    std::fs::create_dir_all(dir.join("users"))?;
    std::fs::write(dir.join("users/batch-999999.parquet"), b"x")?;
    let err = generate(&options(&dir, 1, 1))
        .await
        .err()
        .ok_or("expected an error")?;
    assert!(err.to_string().contains("999999"), "{err}");
    Ok(())
}
