//! Property tests: every parser and decoder that takes outside input — ATTACH
//! strings and options, `AT (...)` clauses, SQL text, connection strings,
//! catalog stats and value text, partition values, paths, `lakeq.toml`, model
//! YAML and Jinja, landing Parquet files — returns `Ok` or `Err` on any input,
//! never panics, and leaves the process (and the session) working.
//!
//! Inputs come from [`fuzz::Gen`], a small deterministic generator (no extra
//! dependency): random strings mixing ASCII, SQL punctuation, quotes,
//! multi-byte UTF-8, control characters and very long runs, plus mutations of
//! valid examples (every prefix, inserted / deleted / replaced characters,
//! duplicated fragments, splices). Each test has a fixed seed, so a failure
//! reproduces; the failure message names the seed, the case and the input.
//! `LAKEQ_PROPERTY_SEED=<n>` runs every test with another seed and
//! `LAKEQ_PROPERTY_SCALE=<k>` multiplies the number of random cases (for a
//! longer hunt; the defaults keep the whole module well under 30 s), and
//! `LAKEQ_PROPERTY_TRACE=1` prints each input before it runs (a stack overflow
//! aborts the process before any message).

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, IntervalUnit, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use futures::FutureExt;

use crate::common::scratch_dir;

/// A tiny deterministic input generator (SplitMix64; `rand` is not a dependency).
pub mod fuzz {
    /// ASCII letters, digits and `_`.
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    /// SQL punctuation and quotes.
    const PUNCT: &[u8] = b"'\"`;(),.=:*[]{}<>@$#%&|\\-+/!?~^";
    /// Whitespace and control characters.
    const CONTROL: &str = "  \t\n\r\0\u{1}\u{8}\u{b}\u{c}\u{1b}\u{7f}\u{85}\u{a0}\u{2028}\u{3000}";
    /// Multi-byte UTF-8, including characters whose case mapping changes length
    /// (`İ`, `ẞ`, `ﬃ`), combining and zero-width characters.
    const WIDE: &str = "éüßİıẞΣﬃÅ🦆中文日本𝄞\u{200b}\u{200d}\u{feff}\u{301}\u{fffd}\u{10ffff}";
    /// Fragments that matter to many of lakeq's parsers.
    const TOKENS: &[&str] = &[
        "NULL",
        "null",
        "true",
        "-",
        "--",
        "/*",
        "*/",
        "''",
        "\"\"",
        "\\x",
        "\\",
        "0",
        "-0",
        "1e308",
        "1e-400",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "170141183460469231731687303715884105727",
        "NaN",
        "inf",
        "-infinity",
        "=>",
        "::",
        "..",
        "../",
        "://",
        "${",
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "\r\n",
        "é",
        "🦆",
    ];

    /// The generator: one seed, one stream.
    #[derive(Debug, Clone)]
    pub struct Gen {
        state: u64,
    }

    impl Gen {
        /// A generator for `seed`.
        pub fn new(seed: u64) -> Self {
            Self { state: seed }
        }

        /// The next 64 random bits (SplitMix64).
        pub fn next_u64(&mut self) -> u64 {
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// A number in `0..n` (0 when `n` is 0).
        pub fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next_u64() % n as u64) as usize
            }
        }

        /// A number in `lo..=hi`.
        pub fn range(&mut self, lo: usize, hi: usize) -> usize {
            lo + self.below(hi - lo + 1)
        }

        /// True `percent` % of the time.
        pub fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        /// One of `items` (which must not be empty).
        pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }

        /// One random character: ASCII, punctuation, control or multi-byte.
        pub fn char(&mut self) -> char {
            match self.below(100) {
                0..45 => char::from(*self.pick(ALNUM)),
                45..72 => char::from(*self.pick(PUNCT)),
                72..82 => self.char_of(CONTROL),
                _ => self.char_of(WIDE),
            }
        }

        /// One of the characters of `set`.
        fn char_of(&mut self, set: &str) -> char {
            let n = self.below(set.chars().count());
            set.chars().nth(n).unwrap_or(' ')
        }

        /// A token: one of the generic `TOKENS` or of `extra`.
        pub fn token(&mut self, extra: &[&str]) -> String {
            if !extra.is_empty() && self.chance(60) {
                self.pick(extra).to_string()
            } else {
                self.pick(TOKENS).to_string()
            }
        }

        /// A short random string (0 to 8 characters and tokens).
        pub fn short(&mut self, extra: &[&str]) -> String {
            let mut s = String::new();
            for _ in 0..self.range(0, 8) {
                if self.chance(20) {
                    s.push_str(&self.token(extra));
                } else {
                    s.push(self.char());
                }
            }
            s
        }

        /// A random string: empty, short, medium, long, or a very long run of one
        /// fragment (up to ~20,000 characters).
        pub fn string(&mut self, extra: &[&str]) -> String {
            let len = match self.below(100) {
                0..3 => 0,
                3..45 => self.range(1, 8),
                45..80 => self.range(8, 64),
                80..94 => self.range(64, 512),
                _ => {
                    let fragment = if self.chance(50) {
                        self.char().to_string()
                    } else {
                        self.short(extra)
                    };
                    let mut s = self.short(extra);
                    s.push_str(&fragment.repeat(self.range(1_000, 20_000)));
                    s.push_str(&self.short(extra));
                    return s;
                }
            };
            let mut s = String::new();
            while s.chars().count() < len {
                if self.chance(15) {
                    s.push_str(&self.token(extra));
                } else {
                    s.push(self.char());
                }
            }
            s
        }

        /// A mutation of `base`: one to three edits among truncation, insertion,
        /// deletion, replacement, duplication of a fragment (sometimes hundreds of
        /// times), token insertion, a splice with another example, a digit or case
        /// change and a swap.
        pub fn mutate(&mut self, base: &str, corpus: &[&str], extra: &[&str]) -> String {
            let mut s: Vec<char> = base.chars().collect();
            for _ in 0..self.range(1, 3) {
                let len = s.len();
                match self.below(10) {
                    0 => s.truncate(self.below(len + 1)),
                    1 | 2 => {
                        let at = self.below(len + 1);
                        let insert: Vec<char> = self.short(extra).chars().collect();
                        s.splice(at..at, insert);
                    }
                    3 if len > 0 => {
                        let from = self.below(len);
                        let to = (from + self.range(1, 8)).min(len);
                        s.drain(from..to);
                    }
                    4 if len > 0 => {
                        let at = self.below(len);
                        s[at] = self.char();
                    }
                    5 if len > 0 => {
                        let from = self.below(len);
                        let to = (from + self.range(1, 16)).min(len);
                        let fragment: Vec<char> = s[from..to].to_vec();
                        let times = if self.chance(10) {
                            self.range(100, 2_000)
                        } else {
                            self.range(1, 3)
                        };
                        let at = self.below(len + 1);
                        let repeated: Vec<char> = fragment
                            .iter()
                            .copied()
                            .cycle()
                            .take(fragment.len() * times)
                            .collect();
                        s.splice(at..at, repeated);
                    }
                    6 => {
                        let at = self.below(len + 1);
                        let token: Vec<char> = self.token(extra).chars().collect();
                        s.splice(at..at, token);
                    }
                    7 if !corpus.is_empty() => {
                        let other: Vec<char> = self.pick(corpus).chars().collect();
                        let cut = self.below(len + 1);
                        let from = self.below(other.len() + 1);
                        s.truncate(cut);
                        s.extend_from_slice(&other[from..]);
                    }
                    8 if len > 0 => {
                        let at = self.below(len);
                        let c = s[at];
                        s[at] = if c.is_ascii_digit() {
                            char::from(b'0' + self.below(10) as u8)
                        } else if c.is_ascii_lowercase() {
                            c.to_ascii_uppercase()
                        } else if c.is_ascii_uppercase() {
                            c.to_ascii_lowercase()
                        } else {
                            self.char()
                        };
                    }
                    _ if len > 1 => {
                        let at = self.below(len - 1);
                        s.swap(at, at + 1);
                    }
                    _ => s.push(self.char()),
                }
            }
            s.truncate(200_000);
            s.into_iter().collect()
        }

        /// The inputs of one property: every example, every prefix of every
        /// example (cut at each character boundary), `mutations` mutated examples
        /// and `randoms` random strings.
        pub fn texts(
            &mut self,
            corpus: &[&str],
            extra: &[&str],
            mutations: usize,
            randoms: usize,
        ) -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for example in corpus {
                out.extend(prefixes(example).map(str::to_string));
            }
            for _ in 0..super::scaled(mutations) {
                let base = if corpus.is_empty() {
                    String::new()
                } else {
                    self.pick(corpus).to_string()
                };
                out.push(self.mutate(&base, corpus, extra));
            }
            for _ in 0..super::scaled(randoms) {
                out.push(self.string(extra));
            }
            out
        }

        /// A mutation of a byte string: truncation, flipped bits, random bytes,
        /// inserted or deleted runs, duplicated fragments.
        pub fn mutate_bytes(&mut self, base: &[u8]) -> Vec<u8> {
            let mut b = base.to_vec();
            for _ in 0..self.range(1, 3) {
                let len = b.len();
                match self.below(7) {
                    0 => b.truncate(self.below(len + 1)),
                    1 if len > 0 => {
                        let at = self.below(len);
                        b[at] ^= 1 << self.below(8);
                    }
                    2 if len > 0 => {
                        let at = self.below(len);
                        b[at] = self.next_u64() as u8;
                    }
                    3 if len > 0 => {
                        let at = self.below(len);
                        let v = *self.pick(&[0x00, 0xff, 0x7f, 0x80]);
                        for x in b.iter_mut().skip(at).take(4) {
                            *x = v;
                        }
                    }
                    4 if len > 0 => {
                        let from = self.below(len);
                        let to = (from + self.range(1, 8)).min(len);
                        b.drain(from..to);
                    }
                    5 if len > 0 => {
                        let from = self.below(len);
                        let to = (from + self.range(1, 32)).min(len);
                        let fragment = b[from..to].to_vec();
                        let at = self.below(len + 1);
                        b.splice(at..at, fragment.repeat(self.range(1, 4)));
                    }
                    _ => {
                        let at = self.below(len + 1);
                        let junk: Vec<u8> = (0..self.range(1, 8))
                            .map(|_| self.next_u64() as u8)
                            .collect();
                        b.splice(at..at, junk);
                    }
                }
            }
            b
        }
    }

    /// Every prefix of `s`, cut at each character boundary (including "" and `s`).
    pub fn prefixes(s: &str) -> impl Iterator<Item = &str> {
        s.char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(s.len()))
            .filter_map(|i| s.get(..i))
    }
}

use fuzz::Gen;

// ---------------------------------------------------------------------------
// The harness: seeds, panic capture, reporting
// ---------------------------------------------------------------------------

/// The seed of a test: `LAKEQ_PROPERTY_SEED` when set, else the test's own.
fn seed(default: u64) -> u64 {
    std::env::var("LAKEQ_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `n` times `LAKEQ_PROPERTY_SCALE` (default 1).
fn scaled(n: usize) -> usize {
    let scale = std::env::var("LAKEQ_PROPERTY_SCALE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1);
    n.saturating_mul(scale)
}

/// Panics seen on the threads of this module's tests: (thread name, message).
/// Tasks spawned by lakeq (ingest, DataFusion) run on a runtime whose threads
/// are named after the test, so a panic a `JoinHandle` turns into an error is
/// still seen here.
static PANICS: Mutex<Vec<RecordedPanic>> = Mutex::new(Vec::new());

struct RecordedPanic {
    thread: String,
    /// Where it panicked: `src/…` is lakeq, an absolute path a dependency.
    file: String,
    message: String,
}

fn record_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            if thread.starts_with("prop-") || thread.starts_with("properties::") {
                let mut panics = PANICS.lock().unwrap_or_else(|p| p.into_inner());
                panics.push(RecordedPanic {
                    thread,
                    file: info
                        .location()
                        .map(|l| l.file().to_string())
                        .unwrap_or_default(),
                    message: info.to_string(),
                });
            }
            previous(info);
        }));
    });
}

fn is_own(key: &str, thread: &str) -> bool {
    thread == format!("prop-{key}") || thread == format!("properties::{key}")
}

/// The panics recorded so far for test `key`.
fn panics_of(key: &str) -> Vec<String> {
    PANICS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|p| is_own(key, &p.thread))
        .map(|p| p.message.clone())
        .collect()
}

/// Remove and return the panics of test `key` after its first `seen` that
/// happened inside a dependency (not in lakeq's `src/` or the tests), for a
/// caller that checked lakeq contained them and reported them as an error.
fn take_dependency_panics(key: &str, seen: usize) -> Vec<String> {
    let mut panics = PANICS.lock().unwrap_or_else(|p| p.into_inner());
    let mut own = 0;
    let mut taken = Vec::new();
    panics.retain(|p| {
        if !is_own(key, &p.thread) {
            return true;
        }
        own += 1;
        let in_dependency = !p.file.starts_with("src/") && !p.file.starts_with("tests/");
        if own > seen && in_dependency {
            taken.push(p.message.clone());
            return false;
        }
        true
    });
    taken
}

/// Whether to print every input before running it (`LAKEQ_PROPERTY_TRACE=1`):
/// a stack overflow aborts the process before any failure message.
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("LAKEQ_PROPERTY_TRACE").is_some())
}

/// An input for a failure message: `Debug` form, at most 2,000 characters.
fn show(input: &impl std::fmt::Debug) -> String {
    let text = format!("{input:?}");
    let n = text.chars().count();
    if n <= 2_000 {
        text
    } else {
        let head: String = text.chars().take(2_000).collect();
        format!("{head}… ({n} characters in all)")
    }
}

fn fail(key: &str, seed: u64, case: usize, input: &str, panics: &[String]) -> ! {
    panic!(
        "property '{key}' (seed {seed}): case {case} panicked\n  input: {input}\n  panic: {}",
        panics.join("\n         ")
    );
}

/// Run `f` on every input; a panic fails the test naming the seed, the case and
/// the input. Returns the number of cases.
fn check<I: std::fmt::Debug>(
    key: &str,
    seed: u64,
    inputs: impl IntoIterator<Item = I>,
    mut f: impl FnMut(I),
) -> usize {
    record_panics();
    let mut cases = 0;
    for (case, input) in inputs.into_iter().enumerate() {
        let shown = show(&input);
        if trace() {
            eprintln!("property {key}: case {case}: {shown}");
        }
        let before = panics_of(key).len();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| f(input)));
        let panics = panics_of(key);
        if outcome.is_err() || panics.len() > before {
            fail(key, seed, case, &shown, panics.get(before..).unwrap_or(&[]));
        }
        cases += 1;
    }
    cases
}

/// [`check`] for async properties (run inside [`runtime`]).
async fn check_async<I: std::fmt::Debug, Fut: Future<Output = ()>>(
    key: &str,
    seed: u64,
    inputs: impl IntoIterator<Item = I>,
    mut f: impl FnMut(I) -> Fut,
) -> usize {
    record_panics();
    let mut cases = 0;
    for (case, input) in inputs.into_iter().enumerate() {
        let shown = show(&input);
        if trace() {
            eprintln!("property {key}: case {case}: {shown}");
        }
        let before = panics_of(key).len();
        let case_started = Instant::now();
        let outcome = AssertUnwindSafe(f(input)).catch_unwind().await;
        if trace() {
            eprintln!(
                "property {key}: case {case} took {:?}",
                case_started.elapsed()
            );
        }
        let panics = panics_of(key);
        if outcome.is_err() || panics.len() > before {
            fail(key, seed, case, &shown, panics.get(before..).unwrap_or(&[]));
        }
        cases += 1;
    }
    cases
}

/// A multi-threaded runtime whose threads are named `prop-<key>`, so panics in
/// tasks it runs are attributed to the test.
fn runtime(key: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(format!("prop-{key}"))
        .thread_stack_size(BIG_STACK)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Stack of the threads SQL is planned on in these tests. Planning recurses
/// once per level of expression nesting (DataFusion is built without its
/// `recursive_protection`), and debug frames are large: `SELECT 0-1-1-…` with
/// 100 terms overflows a 2 MiB test thread. See `deep_expressions_fail_cleanly`.
const BIG_STACK: usize = 64 << 20;

/// Run `f` on a thread named like the test (so its panics are attributed to
/// it) with a [`BIG_STACK`].
fn on_big_stack<T: Send>(key: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(format!("properties::{key}"))
            .stack_size(BIG_STACK)
            .spawn_scoped(scope, f)
            .expect("spawn a test thread");
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Whether `sql` has at most 200 tokens. Longer statements can nest
/// expressions deep enough (`1+1+1+…`) to exhaust any stack, and DataFusion
/// plans them in more than quadratic time: that is a known limit, shown by
/// `deep_expressions_fail_cleanly`, not something to hit at random here.
fn shallow(sql: &str) -> bool {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    match Tokenizer::new(&GenericDialect {}, sql).tokenize() {
        Ok(tokens) => {
            tokens
                .iter()
                .filter(|t| !matches!(t, Token::Whitespace(_)))
                .count()
                <= 200
        }
        Err(_) => true,
    }
}

/// `text` as the body of a SQL string literal.
fn sql_quote(text: &str) -> String {
    text.replace('\'', "''")
}

fn report(key: &str, started: Instant, counts: &[(&str, usize)]) {
    let parts: Vec<String> = counts
        .iter()
        .map(|(what, n)| format!("{what}: {n}"))
        .collect();
    eprintln!(
        "property {key}: {} ({:.1} s)",
        parts.join(", "),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// ATTACH strings, connection strings, ATTACH options
// ---------------------------------------------------------------------------

/// `CatalogLocation::parse` (ATTACH strings), `redact`, PostgreSQL
/// `connect_options` (libpq strings and URLs) and the ATTACH options
/// (`lake_options`, `parse_bytes`).
#[test]
fn attach_strings_connection_strings_and_options() {
    const KEY: &str = "attach_strings_connection_strings_and_options";
    let started = Instant::now();
    let seed = seed(0x1a77_ac40);
    let mut g = Gen::new(seed);
    let corpus = [
        "ducklake:sqlite:/tmp/meta.sqlite",
        "ducklake:sqlite:lake/raw.sqlite",
        "ducklake:sqlite:/tmp/dé 🦆/m.sqlite",
        "ducklake:postgres:dbname=lake host=127.0.0.1 user=postgres",
        "ducklake:postgres:dbname=lake host=127.0.0.1 port=5432 user=u password=secret sslmode=disable",
        "ducklake:postgres:host='my host' dbname='a b' application_name=lakeq connect_timeout=5",
        "ducklake:postgresql:postgres://user:pw@localhost:5432/lake?sslmode=disable",
        "ducklake:postgres:postgresql://u@[::1]:5432/db?options=-c%20search_path%3Draw",
        "ducklake:/x.ducklake",
        "sqlite:/x.db",
        "postgres://u:p@h/db",
    ];
    let extra = [
        "ducklake:",
        "sqlite:",
        "postgres:",
        "postgresql:",
        "postgres://",
        "password=",
        "host=",
        "hostaddr=",
        "port=",
        "port=99999",
        "port=-1",
        "dbname=",
        "user=",
        "@",
        ":",
        "=",
        "'",
        " ",
        "%",
        "%zz",
        "?sslmode=",
        "[",
        "]",
        "application_name=",
        "options=-c",
    ];
    let texts = g.texts(&corpus, &extra, 4_000, 1_500);
    let schemas = [None, Some("main"), Some("raw"), Some("é 🦆"), Some("")];
    let locations = check(KEY, seed, texts, |text| {
        let schema = schemas[text.len() % schemas.len()];
        if let Ok(location) = lakeq::store::CatalogLocation::parse(&text, schema) {
            let _ = location.display();
        }
        let _ = lakeq::store::location::redact(&text);
        let conninfo = text
            .strip_prefix("ducklake:postgres:")
            .or_else(|| text.strip_prefix("ducklake:postgresql:"))
            .unwrap_or(&text);
        let _ = lakeq::store::postgres::connect_options(conninfo);
    });

    // ATTACH (OPTION value, ...): known and unknown keys with random values.
    let keys = [
        "DATA_PATH",
        "METADATA_SCHEMA",
        "OVERRIDE_DATA_PATH",
        "CREATE_IF_NOT_EXISTS",
        "READ_ONLY",
        "READONLY",
        "READ_WRITE",
        "SNAPSHOT_VERSION",
        "SNAPSHOT_TIME",
        "DATA_INLINING_ROW_LIMIT",
        "TYPE",
        "METADATA_CATALOG",
        "ENCRYPTED",
        "WRITE_DELETION_VECTORS",
        "BUSY_TIMEOUT",
        "COLOUR",
    ];
    let values = [
        "true",
        "false",
        "1",
        "0",
        "on",
        "no",
        "ducklake",
        "3",
        "-1",
        "9223372036854775808",
        "2026-01-01 00:00:00+00",
        "2024-02-30 25:61:61+99:99",
        "1970-01-01T00:00:00Z",
        "/tmp/data/",
        "s3://bucket/prefix/",
        "1GiB",
        "512MiB",
        "99999999999999999999GB",
    ];
    let option_sets: Vec<BTreeMap<String, String>> = (0..scaled(3_000))
        .map(|_| {
            (0..g.range(0, 4))
                .map(|_| {
                    let key = if g.chance(85) {
                        g.pick(&keys).to_string()
                    } else {
                        g.string(&[])
                    };
                    let value = if g.chance(50) {
                        g.pick(&values).to_string()
                    } else if g.chance(50) {
                        let base = g.pick(&values).to_string();
                        g.mutate(&base, &values, &[])
                    } else {
                        g.string(&["GiB", "MB", "T", ":", "+00", "-"])
                    };
                    (key, value)
                })
                .collect()
        })
        .collect();
    let options = check(KEY, seed, option_sets, |options| {
        let _ = lakeq::session::lake_options(&options);
        for value in options.values() {
            let _ = lakeq::session::parse_bytes(value);
            let _ = lakeq::store::parse_catalog_timestamp(value);
        }
    });
    report(
        KEY,
        started,
        &[("locations", locations), ("option sets", options)],
    );
}

// ---------------------------------------------------------------------------
// SQL text: statements, AT clauses, ATTACH / SET VARIABLE / ALTER forms
// ---------------------------------------------------------------------------

/// Statements covering lakeq's dialect: DuckDB syntax, time travel, the
/// statements lakeq handles itself and the maintenance calls.
const SQL_CORPUS: &[&str] = &[
    "SELECT * FROM l.t AT (VERSION => 2)",
    "SELECT count(*) FROM l.t AT (TIMESTAMP => now() - INTERVAL '1 hour') AS x",
    "SELECT * FROM l.main.t AT (TIMESTAMP => '2024-01-15 12:30:00+00') WHERE i > 1",
    "SELECT * FROM l.t AT (VERSION => 1 + 1) JOIN l.t AT (VERSION => 3) USING (i)",
    "FROM l.t WHERE i > 1 ORDER BY ALL",
    "FROM l.t SELECT i, s",
    "SELECT * EXCLUDE (s) FROM l.t ORDER BY ALL",
    "SELECT i, count(*) FROM l.t GROUP BY ALL HAVING count(*) > 0",
    "SELECT * FROM (FROM l.t WHERE i = 1) UNION ALL FROM l.t ORDER BY 1",
    "SELECT {'a': 1, 'b': [1, 2, NULL]} AS st, [1, 2][1] AS x, 7 // 2 AS d",
    "SELECT CAST('2024-01-15' AS DATE) + 1, TIMESTAMP '2024-01-01 00:00:00', INTERVAL '1 day 2 hours'",
    "SELECT s, li[1], d::VARCHAR, ts FROM l.t WHERE s LIKE 'a%' AND d BETWEEN 1 AND 99.5",
    "SELECT rowid, * FROM l.t LIMIT 2 OFFSET 1",
    "SELECT * FROM l.snapshots()",
    "SELECT * FROM l.table_changes('t', 1, 3)",
    "SELECT * FROM ducklake_list_files('l', 't')",
    "SELECT * FROM l.v",
    "DESCRIBE l.t",
    "SHOW TABLES",
    "USE l",
    "USE l.main",
    "SET VARIABLE x = 42",
    "SELECT getvariable('x') + 1",
    "RESET VARIABLE x",
    "ATTACH IF NOT EXISTS 'ducklake:sqlite:/nonexistent/m.sqlite' AS z (DATA_PATH '/d/', READ_ONLY)",
    "DETACH IF EXISTS z",
    "CHECKPOINT l",
    "INSERT INTO l.w VALUES (1, 'a'), (2, NULL)",
    "INSERT INTO l.w FROM range(3) SELECT range, 'r'",
    "INSERT INTO l.w (a) SELECT i FROM l.t",
    "UPDATE l.w SET b = 'x' WHERE a = 1",
    "DELETE FROM l.w WHERE a > 1",
    "CREATE TABLE IF NOT EXISTS l.w2 AS SELECT i, s FROM l.t",
    "CREATE OR REPLACE VIEW l.v2 AS FROM l.t WHERE i > 1",
    "ALTER TABLE l.w ADD COLUMN c INT DEFAULT 42",
    "ALTER TABLE l.w RENAME COLUMN c TO c2",
    "ALTER TABLE l.w ALTER COLUMN a TYPE BIGINT",
    "ALTER TABLE l.w SET PARTITIONED BY (year(ts), a)",
    "ALTER TABLE l.w RESET PARTITIONED BY",
    "CALL l.set_option('target_file_size', '5.4MB')",
    "CALL ducklake_set_option('l', 'parquet_compression', 'ZSTD', table_name => 'w')",
    "CALL ducklake_expire_snapshots('l', older_than => now() - INTERVAL '1 week', dry_run => true)",
    "CALL ducklake_cleanup_old_files('l', older_than => '2020-01-01', dry_run => true)",
    "CALL ducklake_merge_adjacent_files('l', 'w', max_compacted_files => 2)",
    "SELECT * FROM l.options()",
    "WITH x AS (SELECT 1 AS a) SELECT a FROM x; SELECT 2;",
    "-- comment\nSELECT 'it''s', \"quoted \"\"id\"\"\" FROM l.t /* block */",
];

/// Fragments of SQL for random statements and mutations.
const SQL_TOKENS: &[&str] = &[
    "SELECT ",
    " FROM ",
    "l.t",
    " AT (",
    "VERSION",
    "TIMESTAMP",
    " => ",
    ")",
    "(",
    "'",
    "\"",
    ";",
    ",",
    " AS ",
    "ATTACH ",
    "DETACH ",
    "USE ",
    "SET VARIABLE ",
    "ALTER TABLE ",
    " PARTITIONED BY ",
    "year(",
    "CAST(",
    "::",
    "[",
    "]",
    "{",
    "}",
    "*",
    " WHERE ",
    " ORDER BY ALL",
    "@@",
    "@@version=",
    "@@timestamp=",
    "@@rowid",
    "--",
    "/*",
    "*/",
    "$$",
    "E'\\x",
    "\\",
];

/// The SQL front end as pure functions: `parse_statements` (sqlparser + the
/// FROM-first rewrite), `split_statements`, `parse_lake_statement` (ATTACH,
/// DETACH, USE, SET VARIABLE, CHECKPOINT), `parse_alter`, and the table-name
/// options (`t@@version=3@@rowid`) and view column aliases.
#[test]
fn sql_text_front_end() {
    const KEY: &str = "sql_text_front_end";
    let started = Instant::now();
    let seed = seed(0x5e1ec7);
    let mut g = Gen::new(seed);
    let texts = g.texts(SQL_CORPUS, SQL_TOKENS, 4_000, 1_000);
    let n = check(KEY, seed, texts, |sql| {
        let _ = lakeq::dialect::parser::insert_select_star(&sql);
        let _ = lakeq::dialect::parser::parse_statements(&sql);
        let _ = lakeq::dialect::lake_statements::split_statements(&sql);
        let _ = lakeq::dialect::lake_statements::parse_lake_statement(&sql);
        let _ = lakeq::dialect::lake_statements::parse_alter(&sql);
        let _ = lakeq::provider::catalog::table_options(&sql);
        let _ = lakeq::provider::catalog::parse_column_aliases(&sql);
    });
    report(KEY, started, &[("statements", n)]);
}

// ---------------------------------------------------------------------------
// Catalog value text, statistics, partition values, type names, change lists
// ---------------------------------------------------------------------------

fn list_of(dt: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("element", dt, true)))
}

fn struct_of(fields: Vec<(&str, DataType)>) -> DataType {
    DataType::Struct(Fields::from(
        fields
            .into_iter()
            .map(|(n, dt)| Field::new(n, dt, true))
            .collect::<Vec<_>>(),
    ))
}

fn map_of(key: DataType, value: DataType) -> DataType {
    let entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", key, false),
            Field::new("value", value, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The Arrow types a catalog value, statistic or partition value is read as,
/// including odd decimals a catalog may declare (`decimal(5,10)`, negative scales).
fn value_types() -> Vec<DataType> {
    let utc = Some(Arc::from("UTC"));
    vec![
        DataType::Boolean,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float32,
        DataType::Float64,
        DataType::Decimal128(9, 2),
        DataType::Decimal128(18, 3),
        DataType::Decimal128(38, 0),
        DataType::Decimal128(38, 10),
        DataType::Decimal128(38, 38),
        DataType::Decimal128(1, 0),
        DataType::Decimal128(5, 10),
        DataType::Decimal128(5, -3),
        DataType::Decimal128(38, 127),
        DataType::Decimal128(38, -128),
        DataType::Utf8,
        DataType::LargeUtf8,
        DataType::Binary,
        DataType::FixedSizeBinary(16),
        DataType::FixedSizeBinary(3),
        DataType::Date32,
        DataType::Time32(TimeUnit::Second),
        DataType::Time32(TimeUnit::Millisecond),
        DataType::Time64(TimeUnit::Microsecond),
        DataType::Time64(TimeUnit::Nanosecond),
        DataType::Timestamp(TimeUnit::Second, None),
        DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(TimeUnit::Nanosecond, None),
        DataType::Timestamp(TimeUnit::Microsecond, utc.clone()),
        DataType::Timestamp(TimeUnit::Nanosecond, utc.clone()),
        DataType::Interval(IntervalUnit::MonthDayNano),
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        list_of(DataType::Int32),
        list_of(DataType::Utf8),
        list_of(list_of(DataType::Date32)),
        struct_of(vec![("a", DataType::Int32), ("b", DataType::Utf8)]),
        struct_of(vec![
            ("t", DataType::Timestamp(TimeUnit::Microsecond, utc)),
            ("l", list_of(DataType::Float64)),
            ("m", map_of(DataType::Utf8, DataType::Int64)),
        ]),
        struct_of(vec![]),
        map_of(DataType::Utf8, DataType::Int64),
        map_of(DataType::Int32, list_of(DataType::Utf8)),
        list_of(struct_of(vec![
            ("x", DataType::Decimal128(9, 2)),
            ("y", DataType::Binary),
        ])),
        // No DuckDB text form: an error, not a panic.
        DataType::Duration(TimeUnit::Second),
        DataType::Float16,
        DataType::Null,
    ]
}

/// Value texts as DuckDB (and PostgreSQL's `::text`) writes them, plus edge values.
const VALUE_CORPUS: &[&str] = &[
    "42",
    "-128",
    "255",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "170141183460469231731687303715884105727",
    "170141183460469231731687303715884105727.5",
    "8e-9223372036854775808",
    "1e9223372036854775807",
    "-170141183460469231731687303715884105727.5",
    "99999999999999999999999999999999999999.5",
    "1e38",
    "1.5e-7",
    "-0.0",
    "1.5e300",
    "NaN",
    "-Infinity",
    "inf",
    "123.456",
    "-1234567.89",
    "0.000000000000000000000000000000000000001",
    "true",
    "f",
    "2024-01-15",
    "-infinity",
    "5877642-06-25 (BC)",
    "0001-01-01",
    "2024-02-29",
    "2023-02-29",
    "2024-01-15 12:30:00.5",
    "2024-01-15 12:30:00.123456789+05:30",
    "2024-01-15T12:30:00Z",
    "294247-01-10 04:00:54.775807",
    "infinity",
    "12:30:00",
    "24:00:00",
    "23:59:59.999999999",
    "1 year 2 months 3 days 04:00:00",
    "-1 days",
    "2 mons",
    "178000000 years",
    "00:00:00.000001",
    "-2147483648 months -2147483648 days -9223372036854775808 microseconds",
    "\\x00\\xFFab",
    "6230",
    "\\xZZ",
    "550e8400-e29b-41d4-a716-446655440000",
    "{550e8400-e29b-41d4-a716-446655440000}",
    "hello 'world'",
    "[1, 2, NULL]",
    "[a, 'b,c', NULL, \"d\\\"e\"]",
    "[[2024-01-15, NULL], []]",
    "{'a': 10, 'b': x}",
    "{'a': 10, 'b': 'it''s'}",
    "{'t': CAST('2024-01-15 12:30:00' AS TIMESTAMP), 'l': [1.5, 2], 'm': {k1=1, k2=2}}",
    "(1, 'x')",
    "{}",
    "{k1=1, k2=2}",
    "{1=[a, b], 2=NULL}",
    "[{'x': 1.25, 'y': \\x01}, NULL]",
];

/// `parse_duckdb_text` (inlined values, defaults), `parse_stat` (min/max
/// statistics and partition values), `format_duckdb_text` of what parsed, and
/// `DuckLakeType` names as a catalog declares them.
#[test]
fn catalog_values_stats_and_partition_values() {
    const KEY: &str = "catalog_values_stats_and_partition_values";
    let started = Instant::now();
    let seed = seed(0x7a1_0e5);
    let mut g = Gen::new(seed);
    let types = value_types();
    let extra = [
        "-", ":", ".", " ", ",", "'", "\"", "[", "]", "{", "}", "(", ")", "=", "\\x", "NULL", "e",
        "+05:30", " (BC)", " years", " days", "CAST(", " AS ", "T", "Z",
    ];
    let texts = g.texts(VALUE_CORPUS, &extra, 6_000, 2_000);
    let mut inputs = Vec::new();
    for text in texts {
        // Every type for short texts; a few types for long ones (same coverage, less time).
        if text.len() <= 64 {
            for dt in &types {
                inputs.push((text.clone(), dt.clone()));
            }
        } else {
            for _ in 0..3 {
                inputs.push((text.clone(), g.pick(&types).clone()));
            }
        }
    }
    let values = check(KEY, seed, inputs, |(text, dt)| {
        if let Ok(value) = lakeq::spec::values::parse_duckdb_text(&text, &dt) {
            let _ = lakeq::spec::values::format_duckdb_text(&value);
        }
        if let Some(value) = lakeq::spec::values::parse_stat(&text, &dt) {
            let _ = lakeq::spec::values::format_duckdb_text(&value);
        }
    });

    // Column type names (`ducklake_column.column_type`) and their Arrow form.
    let type_corpus = [
        "int32",
        "BIGINT",
        "decimal(18,3)",
        "decimal(38, 38)",
        "numeric(5,-3)",
        "decimal(0,0)",
        "decimal(39,1)",
        "decimal(255,127)",
        "timestamp_ns",
        "timestamptz",
        "varchar",
        "uuid",
        "list",
        "struct",
        "map",
        "geometry",
        "variant",
    ];
    let names = g.texts(
        &type_corpus,
        &["decimal(", ",", ")", "-", "38"],
        3_000,
        1_000,
    );
    let type_names = check(KEY, seed, names, |name| {
        if let Ok(t) = name.parse::<lakeq::spec::types::DuckLakeType>() {
            let _ = t.to_string();
            if let Ok(dt) = t.to_arrow() {
                let _ = lakeq::spec::values::parse_duckdb_text("1", &dt);
                let _ = lakeq::spec::values::parse_stat("1", &dt);
            }
            let _ = t.to_arrow_nested(vec![Field::new("element", DataType::Int32, true)]);
            let _ = t.to_arrow_nested(vec![]);
        }
    });
    report(
        KEY,
        started,
        &[("(text, type) pairs", values), ("type names", type_names)],
    );
}

/// Other catalog text: `changes_made` lists, snapshot timestamps, view column
/// aliases, and WKB geometry values from Parquet files.
#[test]
fn catalog_changes_timestamps_and_geometry() {
    const KEY: &str = "catalog_changes_timestamps_and_geometry";
    let started = Instant::now();
    let seed = seed(0x0c4a_99e5);
    let mut g = Gen::new(seed);
    let changes_corpus = [
        r#"created_table:"My Schema!"."Tbl ""q""",inserted_into_table:2"#,
        r#"created_schema:"main""#,
        "dropped_table:7,altered_table:3,inlined_insert:1,flushed_inlined:4,compacted_table:9",
        r#"created_view:"s"."v",created_scalar_macro:"s"."m",dropped_view:12"#,
        "merge_adjacent:1,rewrite_delete:2,deleted_from_table:3,inlined_delete:4",
    ];
    let texts = g.texts(
        &changes_corpus,
        &[":", ",", "\"", ".", "\"\""],
        4_000,
        1_000,
    );
    let changes = check(KEY, seed, texts, |text| {
        if let Ok(parsed) = lakeq::spec::changes::parse_changes(&text) {
            let _ = lakeq::spec::changes::format_changes(&parsed);
        }
        let _ = lakeq::provider::catalog::parse_column_aliases(&text);
    });

    let timestamp_corpus = [
        "2024-01-15 12:30:00+00",
        "2024-01-15 12:30:00.123456+00",
        "2024-01-15 12:30:00-05:30",
        "2024-01-15T12:30:00Z",
        "2024-01-15 12:30:00",
        "+262143-12-31 23:59:59+00",
        "1970-01-01 00:00:00+14:00",
    ];
    let texts = g.texts(
        &timestamp_corpus,
        &["+00", "-00", ":", "Z", "T", "é"],
        4_000,
        1_000,
    );
    let timestamps = check(KEY, seed, texts, |text| {
        let _ = lakeq::store::parse_catalog_timestamp(&text);
    });

    // WKB: points, lines, polygons, collections, ISO Z/M codes, EWKB with an SRID.
    let point = |x: f64, y: f64| -> Vec<u8> {
        let mut b = vec![1, 1, 0, 0, 0];
        b.extend(x.to_le_bytes());
        b.extend(y.to_le_bytes());
        b
    };
    let mut line = vec![1, 2, 0, 0, 0, 3, 0, 0, 0];
    for v in [0.0f64, 0.0, 1.0, 1.0, 2.5, -3.0] {
        line.extend(v.to_le_bytes());
    }
    let mut polygon = vec![1, 3, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0];
    for v in [0.0f64, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0] {
        polygon.extend(v.to_le_bytes());
    }
    let mut collection = vec![1, 7, 0, 0, 0, 2, 0, 0, 0];
    collection.extend(point(1.0, 2.0));
    collection.extend(&line);
    let mut point_z = vec![1, 0xe9, 0x03, 0, 0];
    for v in [1.0f64, 2.0, 3.0] {
        point_z.extend(v.to_le_bytes());
    }
    let mut ewkb = vec![1, 1, 0, 0, 0x20, 0xe6, 0x10, 0, 0];
    ewkb.extend(1.5f64.to_le_bytes());
    ewkb.extend(f64::NAN.to_le_bytes());
    let mut big_endian = vec![0, 0, 0, 0, 1];
    big_endian.extend(1.0f64.to_be_bytes());
    big_endian.extend(f64::INFINITY.to_be_bytes());
    let mut multi = vec![1, 4, 0, 0, 0, 2, 0, 0, 0];
    multi.extend(point(3.0, 4.0));
    multi.extend(point(-1e300, 5e-324));
    let wkb_corpus = [
        point(1.0, 2.0),
        line,
        polygon,
        collection,
        point_z,
        ewkb,
        big_endian,
        multi,
    ];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for w in &wkb_corpus {
        inputs.extend((0..=w.len()).map(|n| w[..n].to_vec()));
    }
    for _ in 0..scaled(5_000) {
        let base = g.pick(&wkb_corpus).clone();
        inputs.push(g.mutate_bytes(&base));
    }
    for _ in 0..scaled(1_000) {
        inputs.push((0..g.range(0, 64)).map(|_| g.next_u64() as u8).collect());
    }
    // Deep nesting: collections of collections.
    inputs.push([1u8, 7, 0, 0, 0, 1, 0, 0, 0].repeat(10_000));
    let geometries = check(KEY, seed, inputs, |wkb| {
        let _ = lakeq::spec::geometry::wkb_to_wkt(&wkb);
    });
    report(
        KEY,
        started,
        &[
            ("changes_made", changes),
            ("timestamps", timestamps),
            ("WKB values", geometries),
        ],
    );
}

// ---------------------------------------------------------------------------
// Paths, option values, intervals
// ---------------------------------------------------------------------------

/// Path handling (`resolve`, `normalize_dir`, `default_dir_name`, `locate`,
/// `absolute_data_path`, landing file names), option values
/// (`options::normalize`, `parse_bytes`) and intervals (`parse_interval`,
/// `before_now`).
#[test]
fn paths_option_values_and_intervals() {
    const KEY: &str = "paths_option_values_and_intervals";
    let started = Instant::now();
    let seed = seed(0x9a7e5);
    let mut g = Gen::new(seed);
    let path_corpus = [
        "/lake/data/",
        "/lake/data/main/t/ducklake-01a2.parquet",
        "/lake/da ta/a%41b/ü#x?y&z+1.parquet",
        "/lake/data/../data/./main//t.parquet",
        "s3://bucket/prefix/",
        "s3://bucket",
        "file:///tmp/x/",
        "file://file://x",
        "relative/dir",
        "C:\\lake\\data\\",
        "region=__HIVE_DEFAULT_PARTITION__/year=2024/",
        "batch-000003.parquet",
        "batch-99999999999.parquet",
    ];
    let mut texts = g.texts(
        &path_corpus,
        &["/", "//", "..", ".", "://", "%", "\\", "="],
        4_000,
        1_000,
    );
    // `locate` recursed once per `file://` prefix.
    texts.push(format!("{}/lake/x.parquet", "file://".repeat(50_000)));
    let paths = check(KEY, seed, texts, |path| {
        let _ = lakeq::spec::paths::normalize_dir(&path);
        let _ = lakeq::spec::paths::default_dir_name(&path, "0190a3b4-uuid");
        let _ = lakeq::spec::paths::resolve(&path, Some(&path), true);
        let _ = lakeq::spec::paths::resolve("/lake/", Some(&path), false);
        let _ = lakeq::storage::locate(&path);
        // Relative paths are taken from the current directory: only absolute ones here.
        if path.starts_with('/') || path.contains("://") {
            let _ = lakeq::storage::absolute_data_path(&path);
        }
        let _ = lakeq::generate::parse_batch_file_name(&path);
    });

    let keys = [
        "auto_compact",
        "data_inlining_row_limit",
        "delete_older_than",
        "expire_older_than",
        "parquet_compression",
        "parquet_compression_level",
        "parquet_row_group_size",
        "parquet_row_group_size_bytes",
        "parquet_version",
        "per_thread_output",
        "require_commit_message",
        "rewrite_delete_threshold",
        "sort_on_insert",
        "target_file_size",
        "no_such_option",
    ];
    let value_corpus = [
        "5.4MB",
        "512MiB",
        "1e400GB",
        "-1KB",
        ".",
        "1.2.3GB",
        "18446744073709551616",
        "ZSTD",
        "v2",
        "0.5",
        "NaN",
        "true",
        "2 days",
        "1 day 12 hours",
        "90 minutes",
        "1e300 years",
        "-1e300 years",
        "nan days",
        "inf weeks",
        "9223372036854775807 microseconds",
    ];
    let texts = g.texts(
        &value_corpus,
        &[" ", "e", ".", "-", "GiB", "days", "s"],
        4_000,
        1_000,
    );
    let options = check(KEY, seed, texts, |value| {
        for key in keys {
            let _ = lakeq::ops::options::normalize(key, &value);
        }
        let _ = lakeq::ops::options::parse_bytes(&value);
        let _ = lakeq::ops::cleanup::parse_interval(&value);
        let _ = lakeq::ops::cleanup::before_now(&value);
    });
    report(
        KEY,
        started,
        &[("paths", paths), ("option values", options)],
    );
}

// ---------------------------------------------------------------------------
// lakeq.toml, model YAML, Jinja templates
// ---------------------------------------------------------------------------

/// Write `path` as a new file: unlinking first avoids the flush ext4 does when a
/// file is truncated and rewritten (milliseconds per case).
fn replace_file(path: &Path, contents: impl AsRef<[u8]>) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, contents).expect("write a test file");
}

/// Write the bundled sample project (`models/`, `tests/*.sql`) under `dir`.
fn write_bundled_project(dir: &Path) {
    for (path, text) in lakeq::models::project::BUNDLED {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}

/// Load the project under `dir` and compile everything it has: models (full
/// and incremental), data tests, selectors; the compiled SQL then goes through
/// the SQL parser. Errors are fine, panics are not.
fn load_and_compile(dir: &Path, config: &lakeq::config::Config, selectors: &[String]) {
    let vars = BTreeMap::from([("limit".to_string(), serde_json::json!(3))]);
    let Ok(project) = lakeq::models::Project::load(dir, config, None, vars) else {
        return;
    };
    let names: Vec<String> = project.models.keys().cloned().collect();
    for name in &names {
        for incremental in [false, true] {
            if let Ok(sql) = project.compile(name, incremental) {
                let _ = lakeq::dialect::parser::parse_statements(&sql);
            }
        }
    }
    for test in &project.tests {
        if let Ok(sql) = project.compile_test(test) {
            let _ = lakeq::dialect::parser::parse_statements(&sql);
        }
    }
    let _ = lakeq::models::artifacts::manifest(&project);
    for selector in selectors {
        let _ = lakeq::models::graph::select_models(&project, std::slice::from_ref(selector), &[]);
        let _ = lakeq::models::graph::select_models(&project, &[], std::slice::from_ref(selector));
    }
    if let Ok(models) = lakeq::models::graph::select_models(&project, &[], &[]) {
        let _ =
            lakeq::models::run::RunPlan::new(&project, &models, lakeq::models::run::RunKind::Build);
    }
}

/// A folder name that stays inside the project (a mutated `models = "/"` must
/// not make the test walk the whole file system).
fn stays_inside(folder: &str) -> bool {
    !folder.is_empty()
        && folder
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
}

const TOML_CORPUS: &[&str] = &[
    "landing = \"s3://my-bucket/landing\"\n\n[lakes.raw]\ncatalog = \"ducklake:postgres:dbname=lake host=127.0.0.1\"\nmetadata_schema = \"raw\"\ndata_path = \"s3://my-bucket/lake/raw/\"\n",
    "landing = \"lake/landing\"\n[project]\nname = \"shop\"\nmodels = \"models\"\ntests = \"tests\"\ntarget = \"prod\"\n[targets.prod]\nlake = \"analytics\"\n[models.staging]\nmaterialized = \"view\"\nschema = \"staging\"\ntags = [\"a\", \"b\"]\nenabled = true\n[models.\"/\"]\nmaterialized = \"table\"\n[vars]\nstart_date = \"2024-01-01\"\nlimit = 10\nnested = { a = [1, 2.5, true], b = \"x\" }\n[maintenance]\nmerge = false\nexpire_older_than = \"7 days\"\nkeep_snapshots = 3\ncleanup = true\n",
    "landing = \"${LAKEQ_PROP_LANDING}\"\n# catalog = \"${LAKEQ_SURELY_UNSET}\"\n[lakes.x]\ncatalog = \"ducklake:sqlite:${LAKEQ_PROP_DIR}/x.sqlite\"\ndata_path = \"${LAKEQ_PROP_DIR}/x/\"\n",
    "[lakes.\"é 🦆\"]\ncatalog = 'ducklake:sqlite:/tmp/a''b.sqlite'\ndata_path = '''/tmp/multi\nline/'''\n[models.\"staging/deep\"]\ntags = []\n",
];

/// `lakeq.toml` with `${VAR}` interpolation and a `.env` file
/// (`Config::load`), then what the CLI derives from it: lake locations, data
/// paths, the maintenance interval and, for a project folder inside the
/// project, the models.
#[test]
fn lakeq_toml_and_dotenv() {
    const KEY: &str = "lakeq_toml_and_dotenv";
    let started = Instant::now();
    let seed = seed(0x70_41);
    let mut g = Gen::new(seed);
    let dir = scratch_dir("prop_toml");
    write_bundled_project(&dir);
    let extra = [
        "[",
        "]",
        "[[",
        "]]",
        "\"",
        "'",
        "'''",
        "=",
        "\n",
        "${",
        "}",
        "#",
        "{",
        "}",
        ".",
        ",",
        "[lakes.",
        "[project]",
        "[vars]",
        "[maintenance]",
        "[models.",
        "true",
        "1979-05-27T07:32:00Z",
    ];
    let tomls = g.texts(TOML_CORPUS, &extra, 2_500, 500);
    let env_corpus = [
        "LAKEQ_PROP_LANDING=/tmp/landing\nexport LAKEQ_PROP_DIR='/tmp/d'\n# comment\n",
        "LAKEQ_PROP_DIR=\"/tmp/é 🦆\"\nEMPTY=\n=novalue\n",
    ];
    let inputs: Vec<(String, Option<String>)> = tomls
        .into_iter()
        .map(|toml| {
            let env = match g.below(4) {
                0 => None,
                1 => Some(g.pick(&env_corpus).to_string()),
                2 => {
                    let base = g.pick(&env_corpus).to_string();
                    Some(g.mutate(&base, &env_corpus, &["=", "\n", "export ", "\"", "'"]))
                }
                _ => Some(g.string(&["=", "\n", "export "])),
            };
            (toml, env)
        })
        .collect();
    let (mut case, mut compiled) = (0usize, 0usize);
    let n = check(KEY, seed, inputs, |(toml, env)| {
        replace_file(&dir.join("lakeq.toml"), &toml);
        match &env {
            Some(env) => replace_file(&dir.join(".env"), env),
            None => {
                let _ = std::fs::remove_file(dir.join(".env"));
            }
        }
        let Ok(config) = lakeq::config::Config::load(&dir) else {
            return;
        };
        let _ = config.target_lake(&config.project.target);
        for (name, lake) in &config.lakes {
            let _ = config.lake(name, &dir).options();
            let _ = lakeq::store::CatalogLocation::parse(
                &lake.catalog,
                lake.metadata_schema.as_deref(),
            );
            if lake.data_path.starts_with('/') || lake.data_path.contains("://") {
                let _ = lakeq::storage::absolute_data_path(&lake.data_path);
            }
        }
        let _ = config.lake("raw", &dir);
        if let Some(interval) = &config.maintenance.expire_older_than {
            let _ = lakeq::ops::cleanup::before_now(interval);
        }
        // Loading the models is the slow part: every 4th configuration.
        case += 1;
        if case.is_multiple_of(4)
            && stays_inside(&config.project.models)
            && stays_inside(&config.project.tests)
        {
            compiled += 1;
            load_and_compile(&dir, &config, &[]);
        }
    });
    report(
        KEY,
        started,
        &[("lakeq.toml + .env", n), ("projects compiled", compiled)],
    );
}

/// Extra YAML exercising every test form and `config:`.
const EXTRA_YAML: &str = "version: 2\nmodels:\n  - name: fct_revenue\n    config:\n      materialized: table\n      tags: [daily, \"finance\"]\n    columns:\n      - name: status\n        data_tests:\n          - accepted_values:\n              values: ['paid', 'open', 3, true]\n              quote: false\n          - relationships:\n              to: ref('dim_users')\n              field: user_id\n";

/// Jinja fragments for mutations and random templates.
const JINJA_TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "ref('stg_users')",
    "ref('nope')",
    "ref('a', 'dim_users')",
    "source('saas', 'users')",
    "config(materialized='incremental', tags=['x'])",
    "var('limit')",
    "var('x', 1)",
    "env_var('HOME')",
    "env_var('LAKEQ_SURELY_UNSET')",
    "is_incremental()",
    "this",
    "target.name",
    "{% if is_incremental() %}",
    "{% endif %}",
    "{% for x in [1, 2] %}",
    "{% endfor %}",
    "{% set v = 1 %}",
    "{% macro m() %}",
    "{% endmacro %}",
    "{{ m() }}",
    "|",
    "~",
    "'",
    "\"",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
];

/// Model YAML (`schema.yml`, `_sources.yml`), model and test SQL templates
/// (Jinja), read from a project folder by `Project::load` and compiled; plus
/// `jinja::render` and model selectors on their own.
#[test]
fn model_yaml_and_jinja() {
    const KEY: &str = "model_yaml_and_jinja";
    let started = Instant::now();
    let seed = seed(0x004a_114a);
    let mut g = Gen::new(seed);
    let dir = scratch_dir("prop_models");
    write_bundled_project(&dir);
    std::fs::write(dir.join("models/marts/extra.yml"), EXTRA_YAML).expect("write extra.yml");
    std::fs::write(
        dir.join("lakeq.toml"),
        "[vars]\nstart = \"2024-01-01\"\n[models.staging]\nmaterialized = \"view\"\n",
    )
    .expect("write lakeq.toml");
    let config = lakeq::config::Config::load(&dir).expect("load lakeq.toml");
    let project = lakeq::models::Project::load(&dir, &config, None, BTreeMap::new());
    let project = project.expect("the unmutated project loads");
    assert!(project.tests.len() > 5, "the extra YAML declares tests");

    let mut files: Vec<(String, String)> = lakeq::models::project::BUNDLED
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    files.push(("models/marts/extra.yml".into(), EXTRA_YAML.into()));
    let yaml: Vec<&str> = files
        .iter()
        .filter(|(p, _)| p.ends_with(".yml"))
        .map(|(_, t)| t.as_str())
        .collect();
    let sql: Vec<&str> = files
        .iter()
        .filter(|(p, _)| p.ends_with(".sql"))
        .map(|(_, t)| t.as_str())
        .collect();
    let yaml_tokens = [
        ":",
        "- ",
        "\n",
        "  ",
        "[",
        "]",
        "{",
        "}",
        "'",
        "\"",
        "&a",
        "*a",
        "!!binary",
        "|",
        ">",
        "name: ",
        "tests: ",
        "columns: ",
        "config: ",
        "accepted_values",
        "relationships",
        "null",
        "~",
        "---",
    ];
    let selector_corpus = [
        "stg_users",
        "+fct_revenue",
        "dim_users+",
        "+int_revenue_by_user+",
        "tag:daily",
        "path:models/staging",
        "path:models/marts/",
        "+",
        "++",
    ];
    let mut inputs: Vec<(usize, String, Vec<String>)> = Vec::new();
    for _ in 0..scaled(400) {
        let (index, tokens, corpus): (usize, &[&str], &Vec<&str>) = if g.chance(50) {
            let candidates: Vec<usize> = (0..files.len())
                .filter(|i| files[*i].0.ends_with(".yml"))
                .collect();
            (*g.pick(&candidates), &yaml_tokens, &yaml)
        } else {
            let candidates: Vec<usize> = (0..files.len())
                .filter(|i| files[*i].0.ends_with(".sql"))
                .collect();
            (*g.pick(&candidates), JINJA_TOKENS, &sql)
        };
        let text = if g.chance(90) {
            let base = files[index].1.clone();
            g.mutate(&base, corpus, tokens)
        } else {
            g.string(tokens)
        };
        let selectors = (0..2)
            .map(|_| {
                let base = g.pick(&selector_corpus).to_string();
                g.mutate(&base, &selector_corpus, &["+", ":", "/", "tag:", "path:"])
            })
            .collect();
        inputs.push((index, text, selectors));
    }
    let projects = check(KEY, seed, inputs, |(index, text, selectors)| {
        let (path, original) = &files[index];
        let path = dir.join(path);
        replace_file(&path, &text);
        load_and_compile(&dir, &config, &selectors);
        replace_file(&path, original);
    });

    // Templates rendered directly, in the parse pass and the compile pass.
    let resolver = Arc::new(lakeq::models::jinja::Resolver {
        relations: BTreeMap::from([
            ("stg_users".to_string(), "dev.main.stg_users".to_string()),
            ("dim_users".to_string(), "dev.main.dim_users".to_string()),
        ]),
        known_models: vec!["stg_users".into(), "dim_users".into(), "disabled".into()],
        sources: BTreeMap::from([(
            ("saas".to_string(), "users".to_string()),
            "raw.saas.users".to_string(),
        )]),
        vars: BTreeMap::from([("limit".to_string(), serde_json::json!(10))]),
        target: "dev".into(),
        target_lake: "dev_analytics".into(),
        target_schema: "main".into(),
        ..Default::default()
    });
    let mut templates = g.texts(&sql, JINJA_TOKENS, 2_000, 600);
    // A syntax error past column 65,535 overflowed minijinja's 16-bit column.
    templates.push(format!("select 1 -- {}{{{{ )", "x".repeat(70_000)));
    templates.push(format!("{}\r\n{{%", "y".repeat(65_534)));
    // The parse pass for every template, the compile pass for every other one.
    let mut case = 0usize;
    let rendered = check(KEY, seed, templates, |template| {
        case += 1;
        let passes: &[bool] = if case.is_multiple_of(2) {
            &[true, false]
        } else {
            &[true]
        };
        for &parse in passes {
            let _ = lakeq::models::jinja::render(
                &resolver,
                &lakeq::models::jinja::RenderInput {
                    name: "m",
                    path: "models/m.sql",
                    source: &template,
                    this: "dev.main.m".into(),
                    is_incremental: !parse,
                    parse,
                    ..Default::default()
                },
            );
        }
        let _ = lakeq::models::jinja::did_you_mean(&template, &resolver.known_models);
    });
    report(
        KEY,
        started,
        &[
            ("projects loaded and compiled", projects),
            ("templates", rendered),
        ],
    );
}

// ---------------------------------------------------------------------------
// SQL through a session on a real lake
// ---------------------------------------------------------------------------

/// A SQLite lake under `dir` attached as `l` to a new session: table `t`
/// (three snapshots of rows), table `w` for writes, view `v`.
async fn small_lake(dir: &Path) -> (lakeq::Session, String, String) {
    let location = format!("ducklake:sqlite:{}/meta.sqlite", dir.display());
    let data = format!("{}/data/", dir.display());
    let session = lakeq::Session::new();
    for sql in [
        format!("ATTACH '{location}' AS l (DATA_PATH '{data}')"),
        "CREATE TABLE l.t (i INT, s VARCHAR, ts TIMESTAMP, d DECIMAL(9,2), li INT[])".into(),
        "INSERT INTO l.t VALUES (1, 'a', TIMESTAMP '2024-01-15 12:30:00', 1.5, [1, 2]), (2, NULL, NULL, NULL, NULL)".into(),
        "INSERT INTO l.t VALUES (3, 'ç 🦆', TIMESTAMP '1970-01-01 00:00:00', -99.99, [])".into(),
        "CREATE TABLE l.w (a INT, b VARCHAR, ts TIMESTAMP)".into(),
        "CREATE VIEW l.v AS SELECT i, s FROM l.t WHERE i > 1".into(),
    ] {
        session.sql(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    (session, location, data)
}

/// Whether running `sql` could create or open a catalog outside the test's
/// folder (an ATTACH of a location other than `ours`).
fn attaches_elsewhere(sql: &str, ours: &str) -> bool {
    match lakeq::dialect::lake_statements::parse_lake_statement(sql) {
        Ok(Some(lakeq::dialect::lake_statements::LakeStatement::Attach { location, .. })) => {
            location != ours && lakeq::store::CatalogLocation::parse(&location, None).is_ok()
        }
        _ => false,
    }
}

/// SQL text end to end through `Session::sql` against a small lake: time travel
/// clauses (`AT (TIMESTAMP => '<random>')`, `AT (VERSION => <random>)`,
/// `AT (<random>)`), ATTACH with random options, random catalog locations and
/// catalog file names, and mutations of statements covering the dialect,
/// writes and maintenance calls. Every statement gives a result or an error;
/// afterwards the session and the lake still answer.
#[test]
fn sql_through_a_session() {
    const KEY: &str = "sql_through_a_session";
    let started = Instant::now();
    let seed = seed(0x5e55_1011);
    let mut g = Gen::new(seed);
    let dir = scratch_dir("prop_sql");
    on_big_stack(KEY, || {
        runtime(KEY).block_on(async {
            let (session, location, data) = small_lake(&dir).await;
            let attach_l = format!("ATTACH IF NOT EXISTS '{location}' AS l (DATA_PATH '{data}')");
            let snapshot_times: Vec<String> = {
                let batches = session
                    .sql("SELECT CAST(snapshot_time AS VARCHAR) FROM l.snapshots()")
                    .await
                    .expect("snapshots");
                let (_, rows) = crate::common::canonical::render_batches(&batches).expect("render");
                rows.into_iter().flatten().collect()
            };
            let mut timestamps: Vec<&str> = snapshot_times.iter().map(String::as_str).collect();
            timestamps.extend([
                "2024-01-15 12:30:00+00",
                "2024-01-15T12:30:00Z",
                "2024-01-15",
                "now",
                "epoch",
                "infinity",
                "-infinity",
                "294247-01-10 04:00:54.775807",
                "2024-02-30 25:00:00",
                "1970-01-01 00:00:00-14:00",
            ]);
            let ts_tokens = ["-", ":", " ", "T", "Z", "+00", ".", "0", "9", "+05:30"];
            let expressions = [
                "now() - INTERVAL '1 hour'",
                "TIMESTAMP '2024-01-01 00:00:00'",
                "CAST('2024-01-01' AS TIMESTAMPTZ)",
                "current_timestamp",
                "to_timestamp(1e18)",
                "NULL",
                "[1, 2]",
                "{'a': 1}",
                "(SELECT max(ts) FROM l.t)",
            ];
            let versions = [
                "2",
                "1 + 1",
                "-1",
                "0",
                "9223372036854775807",
                "9223372036854775808",
                "'3'",
                "NULL",
                "1.5",
                "1e400",
                "1/0",
                "(SELECT 2)",
                "getvariable('x')",
            ];
            let option_keys = [
                "DATA_PATH",
                "METADATA_SCHEMA",
                "OVERRIDE_DATA_PATH",
                "CREATE_IF_NOT_EXISTS",
                "READ_ONLY",
                "SNAPSHOT_VERSION",
                "SNAPSHOT_TIME",
                "DATA_INLINING_ROW_LIMIT",
                "TYPE",
                "ENCRYPTED",
                "COLOUR",
            ];
            let option_values = [
                "true",
                "false",
                "1",
                "3",
                "-1",
                "'2024-01-15 12:30:00+00'",
                "'ducklake'",
                "'/tmp/x/'",
                "99999999999999999999",
            ];

            let mut inputs: Vec<Vec<String>> = Vec::new();
            for _ in 0..scaled(250) {
                let text = if g.chance(80) {
                    let base = g.pick(&timestamps).to_string();
                    g.mutate(&base, &timestamps, &ts_tokens)
                } else {
                    g.string(&ts_tokens)
                };
                inputs.push(vec![format!(
                    "SELECT count(*) FROM l.t AT (TIMESTAMP => '{}')",
                    sql_quote(&text)
                )]);
            }
            for _ in 0..scaled(80) {
                let base = g.pick(&expressions).to_string();
                let e = g.mutate(&base, &expressions, SQL_TOKENS);
                inputs.push(vec![format!("SELECT * FROM l.t AT (TIMESTAMP => {e})")]);
            }
            for _ in 0..scaled(120) {
                let base = g.pick(&versions).to_string();
                let v = if g.chance(85) {
                    g.mutate(&base, &versions, &["-", "9", "0", "(", ")", "'"])
                } else {
                    base
                };
                inputs.push(vec![format!(
                    "SELECT i, s FROM l.t AT (VERSION => {v}) ORDER BY i"
                )]);
            }
            for _ in 0..scaled(60) {
                let body = g.string(&["VERSION", "TIMESTAMP", " => ", "'", "(", ")", ","]);
                inputs.push(vec![format!("SELECT * FROM l.main.t AT ({body})")]);
            }
            // ATTACH of this lake with random options and aliases, then DETACH.
            for _ in 0..scaled(80) {
                let options: Vec<String> = (0..g.range(0, 3))
                    .map(|_| {
                        let key = if g.chance(85) {
                            g.pick(&option_keys).to_string()
                        } else {
                            g.short(&[])
                        };
                        let value = if g.chance(60) {
                            g.pick(&option_values).to_string()
                        } else {
                            format!("'{}'", sql_quote(&g.string(&[])))
                        };
                        format!("{key} {value}")
                    })
                    .collect();
                let alias = if g.chance(70) {
                    "a".to_string()
                } else {
                    format!("\"{}\"", g.short(&[]).replace('"', "\"\""))
                };
                let options = if options.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", options.join(", "))
                };
                inputs.push(vec![
                    format!("ATTACH '{location}' AS {alias}{options}"),
                    format!("SELECT count(*) FROM {alias}.t"),
                    format!("DETACH {alias}"),
                ]);
            }
            // Locations that are not a DuckLake catalog lakeq can open: an error.
            let location_corpus = [
                "ducklake:sqlite:",
                "ducklake:/x.ducklake",
                "sqlite:/x.db",
                "ducklake:duckdb:/x.db",
                "ducklake:postgres:port=notanumber",
                "ducklake:postgres:bogus_key=1",
            ];
            for _ in 0..scaled(80) {
                let base = g.pick(&location_corpus).to_string();
                let text = g.mutate(&base, &location_corpus, &["ducklake:", ":", "/", "="]);
                if lakeq::store::CatalogLocation::parse(&text, None).is_ok() {
                    continue;
                }
                inputs.push(vec![format!("ATTACH '{}' AS bad", sql_quote(&text))]);
            }
            // New catalogs whose file names are random (inside the test folder).
            for k in 0..scaled(6) {
                let name: String = g
                    .string(&[])
                    .chars()
                    .filter(|c| !matches!(c, '/' | '\\' | '?' | '#' | '%' | '.' | '\0'))
                    .take(60)
                    .collect();
                let file = dir.join(format!("att{k}-{name}.sqlite"));
                inputs.push(vec![
                    format!(
                        "ATTACH '{}' AS n{k} (DATA_PATH '{}')",
                        sql_quote(&format!("ducklake:sqlite:{}", file.display())),
                        sql_quote(&format!("{}/att{k}/", dir.display()))
                    ),
                    format!("CREATE TABLE n{k}.x AS SELECT 1 AS one"),
                    format!("DETACH n{k}"),
                ]);
            }
            // Random values in statements that parse: casts (lakeq's DuckDB casts and
            // DataFusion's), comparisons, inserted values, expressions.
            let types = [
                "INT",
                "TINYINT",
                "BIGINT",
                "HUGEINT",
                "UBIGINT",
                "DOUBLE",
                "REAL",
                "DECIMAL(9,2)",
                "DECIMAL(38,10)",
                "DATE",
                "TIME",
                "TIMESTAMP",
                "TIMESTAMPTZ",
                "TIMESTAMP_NS",
                "INTERVAL",
                "UUID",
                "BLOB",
                "BOOLEAN",
                "VARCHAR",
                "INT[]",
                "VARCHAR[]",
                "JSON",
            ];
            let mut values: Vec<&str> = VALUE_CORPUS.to_vec();
            values.extend(timestamps.iter().copied());
            let value_templates = [
                "SELECT CAST('{}' AS {T})",
                "SELECT TRY_CAST('{}' AS {T})",
                "SELECT '{}'::{T} AS x",
                "SELECT * FROM l.t WHERE s = '{}' OR ts > '{}'",
                "SELECT count(*) FROM l.t WHERE d < '{}' AND li = '{}'",
                "INSERT INTO l.w VALUES (1, '{}', CAST('{}' AS TIMESTAMP))",
                "UPDATE l.w SET b = '{}' WHERE b = '{}'",
                "SET VARIABLE x = '{}'",
                "SELECT * FROM l.t AT (TIMESTAMP => CAST('{}' AS TIMESTAMPTZ))",
                "CALL l.set_option('{}', '{}')",
                "CALL ducklake_set_option('l', 'target_file_size', '{}', table_name => 'w')",
                "CALL ducklake_expire_snapshots('l', older_than => '{}', dry_run => true)",
                "CALL ducklake_cleanup_old_files('l', older_than => '{}', dry_run => true)",
            ];
            for _ in 0..scaled(500) {
                let template = g.pick(&value_templates).to_string();
                let data_type: &&str = g.pick(&types);
                let template = template.replace("{T}", data_type);
                // Each `{}` once (a value may itself hold `{}`).
                let mut holes = template.split("{}");
                let mut sql = holes.next().unwrap_or_default().to_string();
                for after in holes {
                    let value = if g.chance(70) {
                        let base = g.pick(&values).to_string();
                        g.mutate(
                            &base,
                            &values,
                            &["-", ":", " ", ".", "e", "[", "]", "{", "}"],
                        )
                    } else {
                        g.string(&[])
                    };
                    sql.push_str(&sql_quote(&value));
                    sql.push_str(after);
                }
                inputs.push(vec![sql]);
            }
            let expressions = [
                "1 + 2 * 3",
                "[1, 2, 3][2]",
                "{'a': 1, 'b': 'x'}.a",
                "7 // 2",
                "2 ** 10",
                "-9223372036854775808 // -1",
                "9223372036854775807 + 1",
                "CAST(1e308 AS DECIMAL(38,0))",
                "'abc' || 'd'",
                "substr('hello', 2, 3)",
                "strftime(TIMESTAMP '2024-01-01', '%Y')",
                "date_trunc('month', DATE '2024-02-03')",
                "list_sum([1, 2])",
                "md5('x')",
                "DATE '2024-01-31' + INTERVAL '1 month'",
                "round(2.5, 0)",
                "sum(i) OVER (ORDER BY i) FROM l.t",
                "max(li) FROM l.t GROUP BY ALL",
            ];
            for _ in 0..scaled(200) {
                let base = g.pick(&expressions).to_string();
                let e = g.mutate(
                    &base,
                    &expressions,
                    &["(", ")", "'", "[", "]", "-", "9", "0"],
                );
                inputs.push(vec![format!("SELECT {e}")]);
            }
            // Mutations of the dialect corpus, and random statements.
            for _ in 0..scaled(500) {
                let base = g.pick(SQL_CORPUS).to_string();
                let sql = g.mutate(&base, SQL_CORPUS, SQL_TOKENS);
                if !attaches_elsewhere(&sql, &location) {
                    inputs.push(vec![sql]);
                }
            }
            for _ in 0..scaled(60) {
                let sql = g.string(SQL_TOKENS);
                if !attaches_elsewhere(&sql, &location) {
                    inputs.push(vec![sql]);
                }
            }

            let generated = inputs.len();
            inputs.retain(|statements| statements.iter().all(|sql| shallow(sql)));
            let deep = generated - inputs.len();

            let session = &session;
            let attach_l = &attach_l;
            let n = check_async(KEY, seed, inputs, |statements| async move {
                let mut touched_catalogs = false;
                for sql in &statements {
                    let _ = session.sql(sql).await;
                    let upper = sql.to_ascii_uppercase();
                    touched_catalogs |= upper.contains("DETACH") || upper.contains("USE");
                }
                if touched_catalogs {
                    let _ = session.sql("DETACH IF EXISTS a").await;
                    let _ = session.sql(attach_l).await;
                    let _ = session.sql("USE l.main").await;
                }
            })
            .await;

            // The session and the lake still work.
            let batches = session
                .sql("SELECT 42 AS answer")
                .await
                .expect("the session works");
            assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
            let fresh = lakeq::Session::new();
            fresh
                .sql(&format!("ATTACH '{location}' AS l (DATA_PATH '{data}')"))
                .await
                .expect("the lake attaches again");
            fresh
                .sql("SELECT count(*) FROM l.t")
                .await
                .expect("the lake still answers");
            report(
                KEY,
                started,
                &[("statement lists", n), ("left out as too long", deep)],
            );
        })
    });
}

// ---------------------------------------------------------------------------
// Corrupted catalog text and numbers, read end to end
// ---------------------------------------------------------------------------

/// Run `sql` on the SQLite catalog file `path` (outside lakeq, as another
/// writer or a damaged file would).
/// Each statement's text, when given, is bound to `?1` (text with NUL
/// characters or quotes, exactly as given). One transaction, no fsync.
async fn catalog_sql(
    path: &Path,
    statements: &[(String, Option<String>)],
) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
    sqlx::raw_sql("PRAGMA synchronous = OFF")
        .execute(&mut c)
        .await?;
    let mut tx = c.begin().await?;
    for (sql, text) in statements {
        match text {
            Some(text) => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(text.clone())
                .execute(&mut *tx)
                .await
                .map(|_| ())?,
            None => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut *tx)
                .await
                .map(|_| ())?,
        }
    }
    tx.commit().await?;
    c.close().await
}

/// One value of a catalog query, as text.
async fn catalog_value(path: &Path, sql: &str) -> String {
    use sqlx::{Connection, Row};
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the catalog");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut c)
        .await
        .expect("catalog query");
    let value: i64 = row.try_get(0).expect("an integer");
    value.to_string()
}

/// A corruption of one catalog field: `{v}` is replaced by a SQL literal.
struct Corruption {
    sql: &'static str,
    /// What the literal is made from.
    kind: CorruptValue,
    /// Changes a path: the case runs no writes (they would go where the path says).
    moves_data: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum CorruptValue {
    /// DuckDB value text (statistics, defaults, partition and inlined values).
    Value,
    /// A type name.
    Type,
    /// A `changes_made` list.
    Changes,
    /// SQL text (a view).
    Sql,
    /// A timestamp.
    Timestamp,
    /// A path.
    Path,
    /// A number, or something else in a number column.
    Number,
}

const CORRUPTIONS: &[Corruption] = &[
    Corruption {
        sql: "UPDATE ducklake_file_column_stats SET min_value = {v} WHERE column_id = {k}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_file_column_stats SET max_value = {v} WHERE column_id = {k}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_table_column_stats SET min_value = {v}, max_value = {v} WHERE column_id = {k}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_file_partition_value SET partition_value = {v} WHERE partition_key_index = {k} % 2",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_column SET initial_default = {v} WHERE column_name = 'c'",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_column SET default_value = {v} WHERE column_id = {k}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_column SET column_type = {v} WHERE column_id = {k}",
        kind: CorruptValue::Type,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE inlined SET i = {v}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE inlined SET s = {v}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE inlined SET d = {v}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE inlined SET ts = {v}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE inlined SET dec = {v}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE inlined SET li = {v}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE inlined SET b = {v}",
        kind: CorruptValue::Value,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE inlined SET row_id = {v}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_snapshot_changes SET changes_made = {v} WHERE snapshot_id = {k}",
        kind: CorruptValue::Changes,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_view SET sql = {v}",
        kind: CorruptValue::Sql,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_view SET column_aliases = {v}",
        kind: CorruptValue::Changes,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_snapshot SET snapshot_time = {v} WHERE snapshot_id = {k}",
        kind: CorruptValue::Timestamp,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_partition_column SET transform = {v}",
        kind: CorruptValue::Type,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_table SET table_name = {v} WHERE table_id = {k}",
        kind: CorruptValue::Sql,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_metadata SET value = {v} WHERE key = 'version'",
        kind: CorruptValue::Type,
        moves_data: true,
    },
    Corruption {
        sql: "UPDATE ducklake_data_file SET path = {v} WHERE data_file_id % 3 = {k} % 3",
        kind: CorruptValue::Path,
        moves_data: true,
    },
    Corruption {
        sql: "UPDATE ducklake_delete_file SET path = {v}",
        kind: CorruptValue::Path,
        moves_data: true,
    },
    Corruption {
        sql: "UPDATE ducklake_table SET path = {v}, path_is_relative = {k} % 2",
        kind: CorruptValue::Path,
        moves_data: true,
    },
    Corruption {
        sql: "UPDATE ducklake_data_file SET record_count = {v} WHERE data_file_id % 3 = {k} % 3",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_data_file SET file_size_bytes = {v} WHERE data_file_id % 3 = {k} % 3",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_data_file SET footer_size = {v}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_data_file SET row_id_start = {v} WHERE data_file_id % 3 = {k} % 3",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_data_file SET partition_id = {v}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_data_file SET begin_snapshot = {v} WHERE data_file_id % 3 = {k} % 3",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_delete_file SET delete_count = {v}, file_size_bytes = {v}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_delete_file SET data_file_id = {v}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_file_column_stats SET null_count = {v}, value_count = {v} WHERE column_id = {k}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_file_column_stats SET contains_nan = {v}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_table_stats SET record_count = {v}, next_row_id = {v}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_column SET column_order = {v} WHERE column_id = {k}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_column SET parent_column = {v} WHERE column_id = {k}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_column SET column_id = {v} WHERE column_id = {k}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_snapshot SET schema_version = {v} WHERE snapshot_id = {k}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_snapshot SET next_file_id = {v}, next_catalog_id = {v}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_inlined_data_tables SET schema_version = {v}",
        kind: CorruptValue::Number,
        moves_data: false,
    },
    Corruption {
        sql: "UPDATE ducklake_partition_column SET partition_key_index = {v} WHERE partition_key_index = {k} % 2",
        kind: CorruptValue::Number,
        moves_data: false,
    },
];

/// The corruptions of one case (statement, text to bind to `?1`), and whether
/// to write afterwards.
type CorruptionCase = (Vec<(String, Option<String>)>, bool);

/// Statements read (and, unless a path was changed, written) after a corruption.
const CORRUPTED_READS: &[&str] = &[
    "SELECT count(*) FROM l.t",
    "SELECT * FROM l.t WHERE i > 2 AND s < 'row9' ORDER BY i",
    "SELECT i, c FROM l.t WHERE d >= DATE '2024-01-03' OR ts < TIMESTAMP '2024-01-01' OR dec > 1 OR b = '\\x01'::BLOB",
    "SELECT * FROM l.p WHERE k = 'a' AND y = 2024",
    "SELECT * FROM l.v",
    "SELECT * FROM l.snapshots()",
    "SELECT * FROM l.table_info()",
    "SELECT * FROM l.t AT (VERSION => 3)",
    "SELECT * FROM l.table_changes('t', 1, 20)",
    "DESCRIBE l.t",
];
const CORRUPTED_WRITES: &[&str] = &[
    "INSERT INTO l.t (i, s, d) VALUES (100, 'new', DATE '2024-06-01')",
    "DELETE FROM l.t WHERE i = 3",
    "INSERT INTO l.p VALUES ('a', 2024, 9)",
];

/// Catalog text and numbers as another writer, an old version or a damaged
/// file may leave them: statistics, partition values, defaults, inlined
/// values, type names, `changes_made`, view SQL, snapshot times, paths,
/// counts and ids. A fresh session attaches the damaged catalog and runs reads
/// and writes; each gives a result or an error, never a panic.
#[test]
fn corrupted_catalog_end_to_end() {
    const KEY: &str = "corrupted_catalog_end_to_end";
    let started = Instant::now();
    let seed = seed(0xc0_77_a9);
    let mut g = Gen::new(seed);
    let dir = scratch_dir("prop_catalog");
    let pristine = dir.join("pristine.sqlite");
    let work = dir.join("meta.sqlite");
    let data = format!("{}/data/", dir.display());
    let location = format!("ducklake:sqlite:{}", work.display());
    on_big_stack(KEY, || {
        runtime(KEY).block_on(async {
        let session = lakeq::Session::new();
        for sql in [
            format!("ATTACH '{location}' AS l (DATA_PATH '{data}')"),
            "CREATE TABLE l.t (i INT, s VARCHAR, d DATE, ts TIMESTAMP, dec DECIMAL(9,2), li INT[], b BYTEA)".into(),
            "INSERT INTO l.t VALUES (1, 'row1', DATE '2024-01-01', TIMESTAMP '2024-01-01 10:00:00', 1.25, [1], '\\x01'::BLOB), (2, 'row2', DATE '2024-01-02', NULL, -3.5, [], NULL)".into(),
            "INSERT INTO l.t VALUES (3, 'row3', DATE '2024-01-03', TIMESTAMP '2023-12-31 23:59:59.999999', 99.99, [3, NULL], '\\xff'::BLOB), (4, NULL, NULL, NULL, NULL, NULL, NULL)".into(),
            "ALTER TABLE l.t ADD COLUMN c INT DEFAULT 42".into(),
            "DELETE FROM l.t WHERE i = 2".into(),
            "CREATE TABLE l.p (k VARCHAR, y INT, v INT)".into(),
            "ALTER TABLE l.p SET PARTITIONED BY (k, y)".into(),
            "INSERT INTO l.p VALUES ('a', 2024, 1), ('b', 2025, 2), (NULL, 2024, 3)".into(),
            "CREATE VIEW l.v AS SELECT i, s FROM l.t WHERE i > 1".into(),
        ] {
            session.sql(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        session.detach("l").expect("detach");
        drop(session);
        // Inlined rows, as DuckDB writes them, in the table's current layout.
        let table_id =
            catalog_value(&work, "SELECT table_id FROM ducklake_table WHERE table_name = 't'").await;
        let (snapshot, version) = (
            catalog_value(&work, "SELECT max(snapshot_id) FROM ducklake_snapshot").await,
            catalog_value(&work, "SELECT max(schema_version) FROM ducklake_snapshot").await,
        );
        let inlined = format!("ducklake_inlined_data_{table_id}_{version}");
        let setup = format!(
                "CREATE TABLE {inlined} (row_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, i, s, d, ts, dec, li, b, c);
                 INSERT INTO {inlined} VALUES (1000, {snapshot}, NULL, '7', 'inl', '2024-05-05', '2024-05-05 10:00:00', '3.25', '[1, 2]', '\\x01', '5'),
                                              (1001, {snapshot}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
                 INSERT INTO ducklake_inlined_data_tables VALUES ({table_id}, '{inlined}', {version});"
            );
        catalog_sql(&work, &[(setup, None)])
            .await
            .expect("add inlined rows");
        {
            let check = lakeq::Session::new();
            check
                .sql(&format!("ATTACH '{location}' AS l (DATA_PATH '{data}')"))
                .await
                .expect("attach");
            let batches = check.sql("SELECT count(*) FROM l.t").await.expect("baseline read");
            let (_, rows) = crate::common::canonical::render_batches(&batches).expect("render");
            assert_eq!(rows, vec![vec!["5".to_string()]], "3 Parquet rows + 2 inlined rows");
        }
        std::fs::copy(&work, &pristine).expect("keep the pristine catalog");

        let type_names = [
            "int32", "varchar", "decimal(9,2)", "decimal(38,40)", "timestamp_ns", "list", "struct",
            "map", "geometry", "identity", "year", "hour", "1.0", "0.3",
        ];
        let changes = [
            r#"created_table:"main"."t",inserted_into_table:1"#,
            "altered_table:1,inlined_insert:1",
            r#""i","s""#,
        ];
        let paths = [
            "ducklake-x.parquet",
            "main/t/f.parquet",
            "/nonexistent/x.parquet",
            "../../x",
            "s3://nope/x",
            "",
        ];
        let numbers = [
            "-1",
            "0",
            "1",
            "2",
            "9223372036854775807",
            "-9223372036854775808",
            "'abc'",
            "1e300",
            "NULL",
            "X'00'",
            "''",
            "2.5",
        ];
        // A SQL literal (numbers, NULL), or text to bind.
        let literal = |g: &mut Gen, kind: CorruptValue| -> (String, Option<String>) {
            if kind == CorruptValue::Number {
                return (g.pick(&numbers).to_string(), None);
            }
            if g.chance(5) {
                return ("NULL".into(), None);
            }
            let (corpus, tokens): (&[&str], &[&str]) = match kind {
                CorruptValue::Value => (VALUE_CORPUS, &["-", ":", "[", "]", "{", "}", "'", ","]),
                CorruptValue::Type => (&type_names, &["(", ")", ","]),
                CorruptValue::Changes => (&changes, &[":", ",", "\""]),
                CorruptValue::Sql => (SQL_CORPUS, SQL_TOKENS),
                CorruptValue::Timestamp => (
                    &[
                        "2024-01-15 12:30:00+00",
                        "2024-01-15 12:30:00.123456-05:30",
                        "not a time",
                    ],
                    &["-", ":", "+00"],
                ),
                CorruptValue::Path => (&paths, &["/", "..", "%"]),
                CorruptValue::Number => (&numbers, &[]),
            };
            let mut text = String::new();
            for _ in 0..8 {
                text = if g.chance(85) {
                    let base = g.pick(corpus).to_string();
                    g.mutate(&base, corpus, tokens)
                } else {
                    g.string(tokens)
                };
                // View SQL is planned: no statement deep enough to hit the
                // known stack limit (see `shallow`).
                if kind != CorruptValue::Sql || shallow(&text) {
                    break;
                }
            }
            ("?1".into(), Some(text))
        };
        let mut inputs: Vec<CorruptionCase> = Vec::new();
        for n in 0..scaled(150) {
            let mut case = Vec::new();
            // Writes are slow (a commit syncs the catalog): every third case.
            let mut writes = n % 3 == 0;
            for _ in 0..g.range(1, 2) {
                let c = g.pick(CORRUPTIONS);
                let (v, text) = literal(&mut g, c.kind);
                let k = g.range(0, 9);
                let sql = c
                    .sql
                    .replace("{v}", &v)
                    .replace("{k}", &k.to_string())
                    .replace("UPDATE inlined ", &format!("UPDATE {inlined} "));
                case.push((sql, text));
                writes &= !c.moves_data;
            }
            inputs.push((case, writes));
        }

        let (work, pristine, location, data) = (&work, &pristine, &location, &data);
        let n = check_async(KEY, seed, inputs, |(corruptions, writes)| async move {
            replace_file(work, std::fs::read(pristine).expect("read the pristine catalog"));
            // The catalog's own constraints may refuse a corruption (NOT NULL).
            if catalog_sql(work, &corruptions).await.is_err() {
                return;
            }
            let session = lakeq::Session::new();
            let attach = format!("ATTACH '{location}' AS l (DATA_PATH '{data}')");
            if session.sql(&attach).await.is_err() {
                return;
            }
            for sql in CORRUPTED_READS {
                let _ = session.sql(sql).await;
            }
            if writes {
                for sql in CORRUPTED_WRITES {
                    let _ = session.sql(sql).await;
                }
            }
        })
        .await;
        report(KEY, started, &[("corrupted catalogs", n)]);
    })
    });
}

// ---------------------------------------------------------------------------
// Landing Parquet files
// ---------------------------------------------------------------------------

/// A Parquet file (in memory) of `columns`, in row groups of 64 rows.
fn parquet_bytes(columns: Vec<(&str, ArrayRef)>) -> Vec<u8> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(64))
        .set_data_page_row_count_limit(16)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    out
}

/// A valid `users` landing file with `n` rows, starting at user `first`.
fn users_file(first: i64, n: usize) -> Vec<u8> {
    let ids: Vec<i64> = (first..).take(n).collect();
    parquet_bytes(vec![
        ("user_id", Arc::new(Int64Array::from(ids.clone()))),
        (
            "email",
            Arc::new(StringArray::from_iter(
                ids.iter()
                    .map(|i| (i % 7 != 0).then(|| format!("user{i}@example.com"))),
            )),
        ),
        (
            "signup_at",
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                ids.iter().map(|i| 1_700_000_000_000_000 + i * 1_000_000),
            )),
        ),
        (
            "score",
            Arc::new(Float64Array::from_iter_values(
                ids.iter().map(|i| *i as f64 / 3.0),
            )),
        ),
        (
            "active",
            Arc::new(BooleanArray::from_iter(
                ids.iter().map(|i| Some(i % 2 == 0)),
            )),
        ),
        (
            "birthday",
            Arc::new(Date32Array::from_iter_values(
                ids.iter().map(|i| 7_000 + *i as i32),
            )),
        ),
        (
            "visits",
            Arc::new(Int32Array::from_iter(
                ids.iter().map(|i| (i % 3 != 0).then_some(*i as i32)),
            )),
        ),
    ])
}

/// Landing files that are not what the raw table expects: corrupt bytes
/// (truncated at many offsets, flipped bits in the data and the footer, wrong
/// magic, wrong footer lengths, empty), wrong and unsupported types, reserved
/// and missing columns, no rows, and a 10 MB string.
fn bad_landing_files(g: &mut Gen) -> Vec<(String, Vec<u8>)> {
    let valid = users_file(1_000, 200);
    let len = valid.len();
    let footer_len =
        u32::from_le_bytes(valid[len - 8..len - 4].try_into().expect("4 bytes")) as usize;
    let footer_start = len - 8 - footer_len;
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("magic only".into(), b"PAR1".to_vec()),
        ("two magics".into(), b"PAR1PAR1".to_vec()),
        ("not parquet".into(), b"this is not parquet at all".to_vec()),
    ];
    let mut edit = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = valid.clone();
        f(&mut b);
        out.push((name.to_string(), b));
    };
    edit("wrong leading magic", &|b| b[..4].copy_from_slice(b"PARX"));
    edit("wrong trailing magic", &|b| {
        let n = b.len();
        b[n - 4..].copy_from_slice(b"PAR2")
    });
    edit("footer length 0", &|b| {
        let n = b.len();
        b[n - 8..n - 4].copy_from_slice(&0u32.to_le_bytes())
    });
    edit("footer length u32::MAX", &|b| {
        let n = b.len();
        b[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes())
    });
    edit("footer length = file length", &|b| {
        let n = b.len();
        b[n - 8..n - 4].copy_from_slice(&(n as u32).to_le_bytes())
    });
    edit("footer filled with 0xff", &|b| {
        let n = b.len();
        b[footer_start..n - 8].fill(0xff)
    });
    edit("footer zeroed", &|b| {
        let n = b.len();
        b[footer_start..n - 8].fill(0)
    });
    edit("data zeroed", &|b| b[4..footer_start].fill(0));
    let mut cuts: Vec<usize> = vec![1, 2, 3, 4, 5, 8, 16, 64, len / 4, len / 2, 3 * len / 4];
    cuts.extend((1..=16).map(|k| len - k));
    cuts.extend([
        footer_start - 1,
        footer_start,
        footer_start + 1,
        footer_start + footer_len / 2,
    ]);
    for _ in 0..12 {
        cuts.push(g.range(1, len - 1));
    }
    for cut in cuts {
        out.push((
            format!("truncated at {cut} of {len}"),
            valid[..cut].to_vec(),
        ));
    }
    // Flipped bits: mostly in the footer (Thrift metadata: lengths, counts,
    // offsets, types), some in the pages.
    for k in 0..scaled(70) {
        let mut b = valid.clone();
        let in_footer = k % 4 != 0;
        for _ in 0..g.range(1, 3) {
            let at = if in_footer {
                g.range(footer_start, len - 9)
            } else {
                g.range(4, footer_start - 1)
            };
            if g.chance(50) {
                b[at] ^= 1 << g.below(8);
            } else {
                b[at] = g.next_u64() as u8;
            }
        }
        let place = if in_footer { "footer" } else { "data" };
        out.push((format!("flipped bytes in the {place} #{k}"), b));
    }
    for k in 0..scaled(15) {
        out.push((format!("mutated #{k}"), g.mutate_bytes(&valid)));
    }
    // Readable files with the wrong shape.
    let ids = || -> ArrayRef { Arc::new(Int64Array::from(vec![1, 2, 3])) };
    let shapes: Vec<(&str, Vec<(&str, ArrayRef)>)> = vec![
        (
            "user_id as text",
            vec![("user_id", Arc::new(StringArray::from(vec!["a", "b", "c"])))],
        ),
        (
            "user_id as double",
            vec![("user_id", Arc::new(Float64Array::from(vec![1.5, 2.0, 3.0])))],
        ),
        (
            "user_id as int32 (a widening)",
            vec![("user_id", Arc::new(Int32Array::from(vec![7, 8, 9])))],
        ),
        (
            "email as int64",
            vec![
                ("user_id", ids()),
                ("email", Arc::new(Int64Array::from(vec![1, 2, 3]))),
            ],
        ),
        (
            "email as boolean",
            vec![
                ("user_id", ids()),
                (
                    "email",
                    Arc::new(BooleanArray::from(vec![true, false, true])),
                ),
            ],
        ),
        (
            "a NULL key",
            vec![(
                "user_id",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            )],
        ),
        (
            "no key column",
            vec![("email", Arc::new(StringArray::from(vec!["x", "y", "z"])))],
        ),
        (
            "a reserved column",
            vec![
                ("user_id", ids()),
                (
                    "_lakeq_id",
                    Arc::new(StringArray::from(vec!["x", "y", "z"])),
                ),
            ],
        ),
        (
            "no rows",
            vec![("user_id", Arc::new(Int64Array::from(Vec::<i64>::new())))],
        ),
        (
            "a duration column",
            vec![
                ("user_id", ids()),
                (
                    "waited",
                    Arc::new(datafusion::arrow::array::DurationSecondArray::from(vec![
                        1, 2, 3,
                    ])),
                ),
            ],
        ),
        (
            "a uint64 column",
            vec![
                ("user_id", ids()),
                (
                    "big",
                    Arc::new(datafusion::arrow::array::UInt64Array::from(vec![
                        u64::MAX,
                        0,
                        1,
                    ])),
                ),
            ],
        ),
        (
            "a large string column",
            vec![
                ("user_id", ids()),
                (
                    "notes",
                    Arc::new(datafusion::arrow::array::LargeStringArray::from(vec![
                        "a", "b", "c",
                    ])),
                ),
            ],
        ),
        (
            "a binary column",
            vec![
                ("user_id", ids()),
                (
                    "raw",
                    Arc::new(datafusion::arrow::array::BinaryArray::from(vec![
                        &b"\x00"[..],
                        b"\xff",
                        b"",
                    ])),
                ),
            ],
        ),
        (
            "a float16 column",
            vec![("user_id", ids()), ("half", half_floats())],
        ),
        (
            "a list column",
            vec![
                ("user_id", ids()),
                (
                    "tags",
                    Arc::new(datafusion::arrow::array::ListArray::from_iter_primitive::<
                        datafusion::arrow::datatypes::Int32Type,
                        _,
                        _,
                    >(vec![
                        Some(vec![Some(1)]),
                        None,
                        Some(vec![]),
                    ])),
                ),
            ],
        ),
        (
            "a dictionary column",
            vec![
                ("user_id", ids()),
                (
                    "plan",
                    Arc::new(datafusion::arrow::array::DictionaryArray::<
                        datafusion::arrow::datatypes::Int32Type,
                    >::from_iter(["a", "b", "a"])),
                ),
            ],
        ),
        (
            "a decimal column",
            vec![
                ("user_id", ids()),
                (
                    "amount",
                    Arc::new(
                        datafusion::arrow::array::Decimal128Array::from(vec![1, 2, i128::MAX])
                            .with_precision_and_scale(38, 38)
                            .expect("decimal"),
                    ),
                ),
            ],
        ),
        (
            "a timestamp with a zone",
            vec![
                ("user_id", ids()),
                (
                    "seen",
                    Arc::new(
                        TimestampMicrosecondArray::from(vec![i64::MIN, 0, i64::MAX])
                            .with_timezone("+05:30"),
                    ),
                ),
            ],
        ),
    ];
    for (name, columns) in shapes {
        out.push((name.to_string(), parquet_bytes(columns)));
    }
    let huge = "🦆x".repeat(2 * 1024 * 1024);
    out.push((
        "a 10 MB string".into(),
        parquet_bytes(vec![
            ("user_id", Arc::new(Int64Array::from(vec![5_000, 5_001]))),
            (
                "email",
                Arc::new(StringArray::from(vec![Some(huge.as_str()), None])),
            ),
        ]),
    ));
    out.push((
        "a 100 kB column name".into(),
        parquet_bytes(vec![
            ("user_id", Arc::new(Int64Array::from(vec![5_002]))),
            (
                huge.get(..100_000).unwrap_or("x"),
                Arc::new(Int64Array::from(vec![1])),
            ),
        ]),
    ));
    out
}

fn half_floats() -> ArrayRef {
    let floats = datafusion::arrow::array::Float32Array::from(vec![1.0, f32::NAN, 65_504.0]);
    datafusion::arrow::compute::cast(&floats, &DataType::Float16).expect("float16")
}

/// The raw lake's snapshot count.
async fn snapshot_count(raw: &lakeq::config::LakeConfig) -> usize {
    let lake = lakeq::Lake::open(&raw.catalog, raw.options())
        .await
        .expect("open the raw lake");
    lake.store().snapshots().await.expect("snapshots").len()
}

/// `lakeq ingest` of bad landing files: each file alone (the load stops with an
/// error and the lake's snapshot count is unchanged, or it loads), then all of
/// them in one load with `--skip-bad-files` (rejected and recorded). Panics in
/// the ingest's own tasks count too. Afterwards the raw lake still answers.
#[test]
fn landing_parquet_files() {
    const KEY: &str = "landing_parquet_files";
    let started = Instant::now();
    let seed = seed(0x1a_4d_1e);
    let mut g = Gen::new(seed);
    let dir = scratch_dir("prop_ingest");
    let landing = dir.join("landing");
    let users = landing.join("users");
    std::fs::create_dir_all(&users).expect("landing folder");
    let raw = lakeq::config::LakeConfig {
        catalog: format!("ducklake:sqlite:{}/raw.sqlite", dir.display()),
        data_path: format!("{}/raw/", dir.display()),
        metadata_schema: None,
    };
    let mut options = lakeq::ingest::IngestOptions {
        landing: landing.display().to_string(),
        raw: raw.clone(),
        schema_change: lakeq::ingest::SchemaChange::Evolve,
        skip_bad_files: false,
        concurrency: 2,
        session: lakeq::SessionOptions::default(),
    };
    let bad = bad_landing_files(&mut g);
    runtime(KEY).block_on(async {
        replace_file(&users.join("batch-000001.parquet"), users_file(1, 200));
        let first = lakeq::ingest::ingest(&options)
            .await
            .expect("a valid file loads");
        assert_eq!(first.rows.get("users"), Some(&200));

        let (loaded, refused) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
        let contained = std::cell::Cell::new(0usize);
        let contained_ref = &contained;
        let inputs: Vec<(usize, &(String, Vec<u8>))> = bad.iter().enumerate().collect();
        let (options_ref, users_ref, raw_ref) = (&options, &users, &raw);
        let (loaded_ref, refused_ref) = (&loaded, &refused);
        let alone = check_async(KEY, seed, inputs, |(k, (name, bytes))| async move {
            let relative = format!("users/bad-{k:03}.parquet");
            let path = users_ref.join(format!("bad-{k:03}.parquet"));
            replace_file(&path, bytes);
            let before = snapshot_count(raw_ref).await;
            let seen = panics_of(KEY).len();
            let outcome = lakeq::ingest::ingest(options_ref).await;
            // parquet-rs panics on some corrupt pages. lakeq cannot prevent that;
            // it must contain it and report the file as unreadable, by name.
            let dependency_panics = take_dependency_panics(KEY, seen);
            if !dependency_panics.is_empty() {
                let reported = matches!(
                    &outcome,
                    Err(lakeq::Error::DataFile { path, .. }) if *path == relative
                );
                assert!(
                    reported,
                    "{name}: a panic in a dependency was not reported as an error naming \
                     {relative}: {outcome:?}\n{}",
                    dependency_panics.join("\n")
                );
                contained_ref.set(contained_ref.get() + 1);
            }
            match outcome {
                Ok(_) => loaded_ref.set(loaded_ref.get() + 1),
                Err(e) => {
                    refused_ref.set(refused_ref.get() + 1);
                    let after = snapshot_count(raw_ref).await;
                    assert_eq!(before, after, "{name}: a failed ingest committed ({e})");
                }
            }
            std::fs::remove_file(&path).expect("remove the landing file");
        })
        .await;

        // All of them at once, skipping the bad ones.
        for (k, (_, bytes)) in bad.iter().enumerate() {
            replace_file(&users.join(format!("all-{k:03}.parquet")), bytes);
        }
        options.skip_bad_files = true;
        let options_ref = &options;
        let rejected = std::cell::Cell::new(0usize);
        let rejected_ref = &rejected;
        let together = check_async(KEY, seed, [bad.len()], |_| async move {
            let before = snapshot_count(raw_ref).await;
            let seen = panics_of(KEY).len();
            let outcome = lakeq::ingest::ingest(options_ref).await;
            let dependency_panics = take_dependency_panics(KEY, seen);
            assert!(
                dependency_panics.is_empty() || outcome.is_ok(),
                "a panic in a dependency stopped the load instead of rejecting its file: \
                 {outcome:?}\n{}",
                dependency_panics.join("\n")
            );
            contained_ref.set(contained_ref.get() + dependency_panics.len());
            match outcome {
                Err(e) => {
                    assert_eq!(
                        before,
                        snapshot_count(raw_ref).await,
                        "a failed ingest committed ({e})"
                    );
                }
                // A rejection names its landing file (it is recorded, and not retried).
                Ok(report) => {
                    for (path, reason) in &report.rejected {
                        assert!(
                            path.starts_with("users/all-") && path.ends_with(".parquet"),
                            "rejected '{path}', which is not a landing file: {reason}"
                        );
                    }
                    rejected_ref.set(report.rejected.len());
                }
            }
        })
        .await;

        // The raw lake still answers, and a good file still loads.
        replace_file(&users.join("batch-000002.parquet"), users_file(10_000, 10));
        let last = lakeq::ingest::ingest(&options)
            .await
            .expect("a valid file loads");
        assert_eq!(last.rows.get("users"), Some(&10));
        let session = lakeq::Session::new();
        session
            .attach("raw", &raw.catalog, raw.options())
            .await
            .expect("attach raw");
        session
            .sql("SELECT count(*), max(length(email)) FROM raw.saas.users")
            .await
            .expect("raw.saas.users answers");
        report(
            KEY,
            started,
            &[
                ("bad files, one per load", alone),
                ("loaded anyway", loaded.get()),
                ("refused", refused.get()),
                ("loads of all at once", together),
                ("rejected in it", rejected.get()),
                ("parquet-rs panics contained", contained.get()),
            ],
        );
    });
}

/// Deeply nested expressions are an error, not a crash: `lakeq sql` with a
/// 2,000-term `0-1-1-…` (and a 100,000-term one) fails with DuckDB's
/// `max_expression_depth` limit of 1,000 levels, within seconds. Before the
/// limit the planner recursed once per level and named every sub-expression
/// (more than quadratic time): in a debug build 400 terms took ~20 s and 1,000
/// overflowed the 8 MiB main thread (SIGABRT). The binary runs in a child
/// process, so an abort cannot take the test process down.
#[test]
fn deep_expressions_fail_cleanly() {
    let dir = scratch_dir("prop_deep");
    for terms in [2_000, 100_000] {
        let file = dir.join(format!("deep_{terms}.sql"));
        std::fs::write(&file, format!("SELECT 0{} AS x", "-1".repeat(terms)))
            .expect("write the SQL file");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lakeq"))
            .current_dir(&dir)
            .arg("sql")
            .arg("-f")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run lakeq");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for lakeq") {
                break status;
            }
            if started.elapsed().as_secs() > 60 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("lakeq sql still planning a {terms}-term expression after 60 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            use std::io::Read;
            let _ = pipe.read_to_string(&mut stderr);
        }
        assert_eq!(
            status.code(),
            Some(1),
            "{terms} terms: lakeq must exit with an error, not be killed by a signal \
             ({status}): {stderr}"
        );
        assert!(
            stderr.contains("max_expression_depth") && stderr.contains("1000"),
            "{terms} terms: {stderr}"
        );
    }
}
