//! The object store upload of one file (one `put`, or a multipart upload that
//! only becomes visible when completed), and the removal of written files.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::parquet::arrow::async_writer::AsyncFileWriter;
use datafusion::parquet::errors::ParquetError;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::storage::locate;
use crate::write::WrittenFile;

/// The object store upload of one file, counting its bytes and keeping the last
/// eight (footer length + `PAR1`).
pub(super) struct Upload {
    pub(super) writer: BufWriter,
    pub(super) size: u64,
    pub(super) tail: Vec<u8>,
    /// Set once completion started: the upload can then no longer be aborted.
    pub(super) completing: bool,
}

impl Upload {
    pub(super) fn new(store: Arc<dyn ObjectStore>, path: ObjectPath) -> Self {
        Self {
            writer: BufWriter::new(store, path),
            size: 0,
            tail: Vec::with_capacity(16),
            completing: false,
        }
    }

    pub(super) fn track(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if let Some(last) = bytes.last_chunk::<8>() {
            self.tail.clear();
            self.tail.extend_from_slice(last);
        } else {
            self.tail.extend_from_slice(bytes);
            let excess = self.tail.len().saturating_sub(8);
            self.tail.drain(..excess);
        }
    }

    /// The footer length before the trailing `PAR1`.
    pub(super) fn footer_size(&self) -> Option<i64> {
        match self.tail.as_slice() {
            [a, b, c, d, b'P', b'A', b'R', b'1'] => {
                Some(i64::from(u32::from_le_bytes([*a, *b, *c, *d])))
            }
            _ => None,
        }
    }

    /// Abort a multipart upload in progress (nothing is visible yet).
    pub(super) async fn abort(&mut self) {
        if !self.completing {
            self.completing = true;
            let _ = self.writer.abort().await;
        }
    }
}

impl AsyncFileWriter for Upload {
    fn write(&mut self, bytes: Bytes) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        self.track(&bytes);
        Box::pin(async move {
            self.writer
                .put(bytes)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }

    fn complete(&mut self) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        self.completing = true;
        Box::pin(async move {
            self.writer
                .shutdown()
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }
}

/// Remove written files (used when a commit fails). Best effort: errors, missing
/// files included, are ignored.
pub async fn delete_files(store: &Arc<dyn ObjectStore>, files: &[WrittenFile]) {
    let urls: Vec<String> = files.iter().map(|f| f.url.clone()).collect();
    let _ = remove_all(store, &urls).await;
}

/// Delete `urls`, attempting all; the first error other than "not found" is returned.
pub(super) async fn remove_all(store: &Arc<dyn ObjectStore>, urls: &[String]) -> Result<()> {
    let mut first_error = None;
    let mut paths = Vec::with_capacity(urls.len());
    for url in urls {
        match locate(url) {
            Ok(location) => paths.push(Ok(location.path)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if !paths.is_empty() {
        let mut results = store.delete_stream(futures::stream::iter(paths).boxed());
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    first_error.get_or_insert(Error::ObjectStore(e));
                }
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_tail_tracking() {
        let mut upload = Upload::new(
            Arc::new(object_store::memory::InMemory::new()),
            ObjectPath::from("x"),
        );
        upload.track(b"PAR1 lots of bytes");
        upload.track(&[0x2a, 0x01]);
        upload.track(&[0, 0]);
        upload.track(b"PAR1");
        assert_eq!(upload.size, 26);
        assert_eq!(upload.footer_size(), Some(0x012a));
        upload.track(b"x");
        assert_eq!(upload.footer_size(), None);
    }
}
