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
    if let Some((scheme, rest)) = path.split_once("://") {
        if scheme == "file" {
            return locate(rest);
        }
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let store_url = ObjectStoreUrl::parse(format!("{scheme}://{bucket}"))?;
        let path = ObjectPath::parse(key).map_err(|e| Error::InvalidLocation {
            location: path.to_string(),
            reason: e.to_string(),
        })?;
        return Ok(FileLocation { store_url, path });
    }
    if !path.starts_with('/') {
        return Err(Error::InvalidLocation {
            location: path.to_string(),
            reason: "data paths must be absolute (or s3:// URLs)".into(),
        });
    }
    let path = ObjectPath::from_absolute_path(path).map_err(|e| Error::InvalidLocation {
        location: path.to_string(),
        reason: e.to_string(),
    })?;
    Ok(FileLocation {
        store_url: ObjectStoreUrl::local_filesystem(),
        path,
    })
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

/// An object store for a path or URL. Local paths use the local file system;
/// other schemes are not configured yet.
pub fn object_store_for(url: &str) -> Result<std::sync::Arc<dyn object_store::ObjectStore>> {
    let loc = locate(url)?;
    if loc.store_url.as_str() == ObjectStoreUrl::local_filesystem().as_str() {
        return Ok(std::sync::Arc::new(
            object_store::local::LocalFileSystem::new(),
        ));
    }
    Err(Error::Unsupported(format!(
        "object storage for '{url}' (only local paths for now)"
    )))
}
