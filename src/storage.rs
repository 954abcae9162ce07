//! Object storage for data paths: local folders now, `s3://` through object_store.
//!
//! A DuckLake data path is an absolute local path (`/lake/data/`) or a URL
//! (`s3://bucket/prefix/`). DataFusion addresses files as an [`ObjectStoreUrl`]
//! (scheme + authority) plus an object path.

use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::path::Path as ObjectPath;

use crate::error::{Error, Result};

/// A resolved file location: which store, and the path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLocation {
    /// `file://` or `s3://bucket`.
    pub store_url: ObjectStoreUrl,
    /// Path within the store.
    pub path: ObjectPath,
}

/// Split a data-file path or URL into store and object path.
pub fn locate(path: &str) -> Result<FileLocation> {
    // `file://` prefixes, however many, in a loop: recursing once per prefix let a
    // path of thousands of them overflow the stack.
    let mut path = path;
    while let Some(rest) = path.strip_prefix("file://") {
        path = rest;
    }
    if let Some((scheme, rest)) = path.split_once("://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let store_url = ObjectStoreUrl::parse(format!("{scheme}://{bucket}"))?;
        let path = ObjectPath::parse(key).map_err(|e| Error::InvalidLocation {
            location: path.to_string(),
            reason: e.to_string(),
        })?;
        return Ok(FileLocation { store_url, path });
    }
    let Some(relative) = path.strip_prefix('/') else {
        return Err(Error::InvalidLocation {
            location: path.to_string(),
            reason: "data paths must be absolute (or s3:// URLs)".into(),
        });
    };
    // A normalised absolute path (no empty, `.` or `..` segment) is what
    // `from_absolute_path` would parse after its round trip through a percent-encoded
    // file URL; skipping that round trip was a fifth of planning a 10,000-file scan.
    if relative
        .split('/')
        .all(|s| !s.is_empty() && s != "." && s != "..")
        && let Ok(path) = ObjectPath::parse(relative)
    {
        return Ok(FileLocation {
            store_url: local_store_url(),
            path,
        });
    }
    let path = ObjectPath::from_absolute_path(path).map_err(|e| Error::InvalidLocation {
        location: path.to_string(),
        reason: e.to_string(),
    })?;
    Ok(FileLocation {
        store_url: local_store_url(),
        path,
    })
}

/// `file://`, parsed once.
fn local_store_url() -> ObjectStoreUrl {
    static LOCAL: std::sync::LazyLock<ObjectStoreUrl> =
        std::sync::LazyLock::new(ObjectStoreUrl::local_filesystem);
    LOCAL.clone()
}

/// Make a user-given data path absolute (relative paths are taken from the
/// current directory) and end it with `/`.
pub fn absolute_data_path(path: &str) -> Result<String> {
    if path.contains("://") {
        return Ok(crate::spec::paths::normalize_dir(path));
    }
    let p = std::path::Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    Ok(crate::spec::paths::normalize_dir(&abs.to_string_lossy()))
}

/// An object store for a path or URL: the local file system, or S3 configured
/// from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`). Stores are cached per bucket.
pub fn object_store_for(url: &str) -> Result<std::sync::Arc<dyn object_store::ObjectStore>> {
    use std::sync::Arc;
    let loc = locate(url)?;
    let key = loc.store_url.as_str().to_string();
    let cache = stores();
    if let Ok(map) = cache.lock()
        && let Some(store) = map.get(&key)
    {
        return Ok(Arc::clone(store));
    }
    let store: Arc<dyn object_store::ObjectStore> = if key
        == ObjectStoreUrl::local_filesystem().as_str()
    {
        Arc::new(ExactReads::new(Arc::new(
            object_store::local::LocalFileSystem::new(),
        )))
    } else if let Some(bucket) = key.strip_prefix("s3://") {
        let bucket = bucket.trim_end_matches('/');
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        // object_store reads AWS_ENDPOINT (older name); accept the standard one too.
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder.with_endpoint(endpoint);
        }
        if std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true" || v == "1") {
            builder = builder.with_allow_http(true);
        }
        Arc::new(ExactReads::new(Arc::new(builder.build().map_err(|e| {
            Error::InvalidLocation {
                location: url.to_string(),
                reason: format!("cannot configure S3 for bucket '{bucket}': {e}"),
            }
        })?)))
    } else {
        return Err(Error::Unsupported(format!(
            "object storage for '{url}': lakeq supports local paths and s3:// URLs"
        )));
    };
    if let Ok(mut map) = cache.lock() {
        map.insert(key, Arc::clone(&store));
    }
    Ok(store)
}

/// The object stores in use, by store URL (`file:///`, `s3://bucket`).
type StoreCache = std::sync::Mutex<
    std::collections::HashMap<String, std::sync::Arc<dyn object_store::ObjectStore>>,
>;

fn stores() -> &'static StoreCache {
    static STORES: std::sync::OnceLock<StoreCache> = std::sync::OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// Use `store` for every path in the store of `url` (`s3://bucket/...`): tests
/// put a fault-injecting store in front of a real one.
#[cfg(test)]
pub(crate) fn install_store(
    url: &str,
    store: std::sync::Arc<dyn object_store::ObjectStore>,
) -> Result<()> {
    let key = locate(url)?.store_url.as_str().to_string();
    if let Ok(mut map) = stores().lock() {
        map.insert(key, std::sync::Arc::new(ExactReads::new(store)));
    }
    Ok(())
}

/// Make DataFusion read files under `url` through lakeq's store for it (the S3
/// store of the bucket, or the local file system), so every read is checked by
/// [`ExactReads`].
pub fn register_store(
    ctx: &datafusion::execution::context::SessionContext,
    url: &str,
) -> Result<()> {
    let loc = locate(url)?;
    let store = object_store_for(url)?;
    let as_url: &url::Url = loc.store_url.as_ref();
    ctx.register_object_store(as_url, store);
    Ok(())
}

/// A store whose reads are checked against what was asked for.
///
/// A store that answers a range request with fewer (or more) bytes than the
/// range holds, without an error, would make the Parquet reader panic
/// ("Range length must match buffer length"). object_store's own stores report
/// a body cut short as an error; this wrapper turns any other short answer into
/// an error naming the object and the range, so a broken store or proxy can
/// fail a query but never crash the process.
#[derive(Debug)]
pub struct ExactReads {
    inner: std::sync::Arc<dyn object_store::ObjectStore>,
}

impl ExactReads {
    /// Check the reads of `inner`.
    pub fn new(inner: std::sync::Arc<dyn object_store::ObjectStore>) -> Self {
        Self { inner }
    }
}

impl std::fmt::Display for ExactReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.inner)
    }
}

/// The error for a read that returned `got` bytes for `range` of `location`.
fn wrong_length(
    location: &ObjectPath,
    range: &std::ops::Range<u64>,
    got: u64,
) -> object_store::Error {
    object_store::Error::Generic {
        store: "lakeq",
        source: format!(
            "reading '{location}': asked for bytes {}..{} ({} bytes), the store returned {got} \
             without an error (a broken store or proxy)",
            range.start,
            range.end,
            range.end.saturating_sub(range.start)
        )
        .into(),
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for ExactReads {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        use futures::{StreamExt, TryStreamExt};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if head {
            return Ok(result);
        }
        let object_store::GetResultPayload::Stream(body) = result.payload else {
            // A local file: object_store reads it with an exact-length read.
            return Ok(result);
        };
        let range = result.range.clone();
        let seen = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&seen);
        let body = body.inspect_ok(move |chunk| {
            counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        });
        let location = location.clone();
        let check_range = range.clone();
        let tail = futures::stream::once(async move {
            let got = seen.load(Ordering::Relaxed);
            (got != check_range.end.saturating_sub(check_range.start))
                .then(|| Err(wrong_length(&location, &check_range, got)))
        })
        .filter_map(futures::future::ready);
        Ok(object_store::GetResult {
            payload: object_store::GetResultPayload::Stream(Box::pin(body.chain(tail))),
            meta: result.meta,
            range,
            attributes: result.attributes,
        })
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        let parts = self.inner.get_ranges(location, ranges).await?;
        if parts.len() != ranges.len() {
            return Err(object_store::Error::Generic {
                store: "lakeq",
                source: format!(
                    "reading '{location}': asked for {} ranges, the store returned {}",
                    ranges.len(),
                    parts.len()
                )
                .into(),
            });
        }
        for (range, part) in ranges.iter().zip(&parts) {
            let got = part.len() as u64;
            if got != range.end.saturating_sub(range.start) {
                return Err(wrong_length(location, range, got));
            }
        }
        Ok(parts)
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: object_store::RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// Match `name` against a glob `pattern` (`*`, `?`; `**` matches across `/`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        // The suffixes of `n` after skipping 0..=`max` characters.
        let suffixes = |max: usize| (0..=max).filter_map(move |i| n.get(i..));
        match p {
            [] => n.is_empty(),
            ['*', '*', rest @ ..] => {
                let rest = rest.strip_prefix(&['/']).unwrap_or(rest);
                suffixes(n.len()).any(|s| go(rest, s))
            }
            ['*', rest @ ..] => {
                // `*` stays within one path segment: it may not skip a `/`.
                let segment = n.iter().position(|&c| c == '/').unwrap_or(n.len());
                suffixes(segment).any(|s| go(rest, s))
            }
            ['?', rest @ ..] => match n.split_first() {
                Some((c, n_rest)) => *c != '/' && go(rest, n_rest),
                None => false,
            },
            [c, rest @ ..] => match n.split_first() {
                Some((d, n_rest)) => c == d && go(rest, n_rest),
                None => false,
            },
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// The local files matching `pattern` (`file://` optional), sorted.
pub fn glob_files(pattern: &str) -> Vec<String> {
    let pattern = pattern.strip_prefix("file://").unwrap_or(pattern);
    // The fixed directory part before the first wildcard.
    let wild = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    let base = match pattern.get(..wild).and_then(|p| p.rfind('/')) {
        Some(i) => pattern.get(..=i).unwrap_or("/").to_string(),
        None => "./".to_string(),
    };
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(&base)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let text = path.to_string_lossy().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if glob_match(pattern, &text) {
                out.push(text);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut for normalised paths gives what object_store's own conversion gives.
    #[test]
    fn local_paths_locate_like_object_store() {
        for path in [
            "/lake/data/main/t/ducklake-01a2.parquet",
            "/lake/data/main/t/region=eu/year=2024/f.parquet",
            "/lake/da ta/a%41b/ü#x?y&z+1.parquet",
            "/lake/data/../data/./main//t.parquet",
            "/lake/data/./main//t.parquet",
            "/lake/data/region=__HIVE_DEFAULT_PARTITION__/f.parquet",
        ] {
            let expected = ObjectPath::from_absolute_path(path).ok();
            let got = locate(path).ok();
            assert_eq!(got.as_ref().map(|l| &l.path), expected.as_ref(), "{path}");
            if let Some(got) = got {
                assert_eq!(got.store_url, ObjectStoreUrl::local_filesystem(), "{path}");
            }
        }
    }
}

/// S3 error responses on writes and reads, injected by a store wrapper in front
/// of an in-memory store (object_store's own `ThrottledStore` pattern): each
/// failed write fails its statement with an error naming the data file and
/// commits nothing; failed and short reads are errors, never an answer.
#[cfg(test)]
mod faults {
    use std::fmt;
    use std::ops::Range;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;
    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
    };

    /// Which call fails next (0 = none).
    const NONE: usize = 0;
    const PUT: usize = 1;
    const PART: usize = 2;
    const COMPLETE: usize = 3;
    const GET: usize = 4;
    const SHORT_READ: usize = 5;
    /// A range answered with fewer bytes than asked, without an error.
    const SILENT_SHORT: usize = 6;

    /// S3's answer to a throttled or failing request, as object_store reports it.
    fn s3_error(what: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: format!("{what}: HTTP status server error (503 Service Unavailable): SlowDown")
                .into(),
        }
    }

    /// A body cut short, as object_store's HTTP client reports it.
    fn cut() -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: "error decoding response body: connection closed before message completed"
                .into(),
        }
    }

    #[derive(Debug, Default)]
    struct Faulty {
        inner: InMemory,
        fault: Arc<AtomicUsize>,
        injected: Arc<AtomicUsize>,
    }

    impl fmt::Display for Faulty {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Faulty({})", self.inner)
        }
    }

    impl Faulty {
        fn fails(&self, fault: usize) -> bool {
            let hit = self.fault.load(Ordering::SeqCst) == fault;
            if hit {
                self.injected.fetch_add(1, Ordering::SeqCst);
            }
            hit
        }
    }

    #[derive(Debug)]
    struct FaultyUpload {
        inner: Box<dyn MultipartUpload>,
        fault: Arc<AtomicUsize>,
        injected: Arc<AtomicUsize>,
    }

    impl FaultyUpload {
        fn fails(&self, fault: usize) -> bool {
            let hit = self.fault.load(Ordering::SeqCst) == fault;
            if hit {
                self.injected.fetch_add(1, Ordering::SeqCst);
            }
            hit
        }
    }

    #[async_trait]
    impl MultipartUpload for FaultyUpload {
        fn put_part(&mut self, data: PutPayload) -> UploadPart {
            if self.fails(PART) {
                return Box::pin(async { Err(s3_error("UploadPart")) });
            }
            self.inner.put_part(data)
        }

        async fn complete(&mut self) -> object_store::Result<PutResult> {
            if self.fails(COMPLETE) {
                return Err(s3_error("CompleteMultipartUpload"));
            }
            self.inner.complete().await
        }

        async fn abort(&mut self) -> object_store::Result<()> {
            self.inner.abort().await
        }
    }

    #[async_trait]
    impl ObjectStore for Faulty {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            if self.fails(PUT) {
                return Err(s3_error("PutObject"));
            }
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            if self.fails(PUT) {
                return Err(s3_error("CreateMultipartUpload"));
            }
            Ok(Box::new(FaultyUpload {
                inner: self.inner.put_multipart_opts(location, opts).await?,
                fault: Arc::clone(&self.fault),
                injected: Arc::clone(&self.injected),
            }))
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            if self.fails(GET) {
                return Err(s3_error("GetObject"));
            }
            if self.fails(SHORT_READ) {
                // The connection is cut in the middle of the body: half of it
                // arrives, then the HTTP client's error.
                let result = self.inner.get_opts(location, options).await?;
                let meta = result.meta.clone();
                let range = result.range.clone();
                let attributes = result.attributes.clone();
                let mut bytes = result.bytes().await?;
                bytes.truncate(bytes.len() / 2);
                let stream = futures::stream::iter([Ok(bytes), Err(cut())]);
                return Ok(GetResult {
                    payload: object_store::GetResultPayload::Stream(Box::pin(stream)),
                    meta,
                    range,
                    attributes,
                });
            }
            if !options.head && self.fails(SILENT_SHORT) {
                let result = self.inner.get_opts(location, options).await?;
                let (meta, range, attributes) = (
                    result.meta.clone(),
                    result.range.clone(),
                    result.attributes.clone(),
                );
                let mut bytes = result.bytes().await?;
                bytes.truncate(bytes.len() / 2);
                return Ok(GetResult {
                    payload: object_store::GetResultPayload::Stream(Box::pin(
                        futures::stream::iter([Ok(bytes)]),
                    )),
                    meta,
                    range,
                    attributes,
                });
            }
            self.inner.get_opts(location, options).await
        }

        async fn get_ranges(
            &self,
            location: &Path,
            ranges: &[Range<u64>],
        ) -> object_store::Result<Vec<Bytes>> {
            if self.fails(GET) {
                return Err(s3_error("GetObject"));
            }
            if self.fails(SHORT_READ) {
                return Err(cut());
            }
            let mut parts = self.inner.get_ranges(location, ranges).await?;
            if self.fails(SILENT_SHORT) {
                for part in &mut parts {
                    part.truncate(part.len() / 2);
                }
            }
            Ok(parts)
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }

        async fn rename_opts(
            &self,
            from: &Path,
            to: &Path,
            options: RenameOptions,
        ) -> object_store::Result<()> {
            self.inner.rename_opts(from, to, options).await
        }
    }

    async fn scalar(session: &crate::Session, sql: &str) -> crate::error::Result<String> {
        let batches = session.sql(sql).await?;
        Ok(batches
            .first()
            .and_then(|b| crate::dialect::render::value_text(b.column(0).as_ref(), 0))
            .unwrap_or_default())
    }

    #[tokio::test]
    async fn s3_error_responses_fail_cleanly_and_commit_nothing() -> crate::error::Result<()> {
        let bucket = format!("lakeq-faulty-{}", uuid::Uuid::new_v4().simple());
        let store = Arc::new(Faulty::default());
        super::install_store(&format!("s3://{bucket}/data/"), store.clone())?;
        let dir = std::env::temp_dir().join(format!("lakeq-s3-faults-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let session = crate::Session::new();
        session
            .sql(&format!(
                "ATTACH 'ducklake:sqlite:{}/meta.sqlite' AS l (DATA_PATH 's3://{bucket}/data/', \
                 DATA_INLINING_ROW_LIMIT 0)",
                dir.display()
            ))
            .await?;
        session
            .sql("CREATE TABLE l.t (i BIGINT, s VARCHAR)")
            .await?;
        session
            .sql("INSERT INTO l.t SELECT range, 'x' FROM range(1000)")
            .await?;
        let snapshots = "SELECT count(*) FROM l.snapshots()";
        let before = (
            scalar(&session, snapshots).await?,
            scalar(&session, "SELECT sum(i) FROM l.t").await?,
        );
        let objects = || async {
            use futures::TryStreamExt;
            store
                .inner
                .list(None)
                .try_collect::<Vec<_>>()
                .await
                .map(|v| v.len())
        };
        let objects_before = objects().await?;
        // A small write (one PUT) and a large one (a multipart upload), each
        // meeting an error response at every step of its upload.
        let small = "INSERT INTO l.t SELECT range, 'y' FROM range(1000)";
        let large = "INSERT INTO l.t SELECT range, md5(range::VARCHAR) || md5((range + 1)::VARCHAR) \
                     FROM range(600000)";
        let mut failed = 0;
        for (fault, write) in [(PUT, small), (PUT, large), (PART, large), (COMPLETE, large)] {
            {
                store.fault.store(fault, Ordering::SeqCst);
                let injected = store.injected.load(Ordering::SeqCst);
                let result = session.sql(write).await;
                store.fault.store(NONE, Ordering::SeqCst);
                assert!(
                    store.injected.load(Ordering::SeqCst) > injected,
                    "fault {fault}: {write} never made the failing call"
                );
                let Err(e) = result else {
                    panic!("fault {fault}: {write} succeeded");
                };
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("s3://{bucket}/data/")) && msg.contains(".parquet"),
                    "fault {fault}: the error names the data file: {msg}"
                );
                assert!(msg.contains("503"), "fault {fault}: S3's answer: {msg}");
                failed += 1;
                let after = (
                    scalar(&session, snapshots).await?,
                    scalar(&session, "SELECT sum(i) FROM l.t").await?,
                );
                assert_eq!(after, before, "fault {fault}: {write} committed something");
            }
        }
        assert_eq!(failed, 4);
        assert_eq!(
            objects().await?,
            objects_before,
            "no object left by a failed write"
        );

        // Reads: an error response or a body cut short is an error, never an
        // answer; a store that silently returns fewer bytes than asked is an
        // error naming the object (parquet-rs would panic on it).
        for fault in [GET, SHORT_READ, SILENT_SHORT] {
            store.fault.store(fault, Ordering::SeqCst);
            let injected = store.injected.load(Ordering::SeqCst);
            let result = scalar(&session, "SELECT sum(i), max(s) FROM l.t").await;
            store.fault.store(NONE, Ordering::SeqCst);
            assert!(
                store.injected.load(Ordering::SeqCst) > injected,
                "fault {fault}: not hit"
            );
            let Err(e) = result else {
                panic!("fault {fault}: a read answered {result:?}");
            };
            if fault == SILENT_SHORT {
                let msg = e.to_string();
                assert!(
                    msg.contains(".parquet") && msg.contains("the store returned"),
                    "the error names the file and the short read: {msg}"
                );
            }
        }
        // The store is healthy again: writes and reads work.
        session
            .sql("INSERT INTO l.t SELECT range, 'z' FROM range(1000)")
            .await?;
        assert_eq!(scalar(&session, "SELECT count(*) FROM l.t").await?, "2000");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
