//! Path resolution: `data_path` → schema path → table path → file path, each
//! honouring its `path_is_relative` flag (SPEC §7).

/// Join a directory and a possibly-relative child path.
pub fn resolve(parent: &str, path: Option<&str>, is_relative: bool) -> String {
    match path {
        None => parent.to_string(),
        Some(p) if is_relative => {
            if parent.is_empty() || parent.ends_with('/') {
                format!("{parent}{p}")
            } else {
                format!("{parent}/{p}")
            }
        }
        Some(p) => p.to_string(),
    }
}

/// Ensure a directory path ends with exactly one `/`.
pub fn normalize_dir(path: &str) -> String {
    let trimmed = path.trim_end_matches(['/', '\\']);
    format!("{}/", trimmed.replace('\\', "/"))
}

/// The directory name DuckDB gives a new schema or table: the name itself when it
/// is made of ASCII alphanumerics, `_` and `-`, else the object's UUID.
pub fn default_dir_name(name: &str, uuid: &str) -> String {
    let simple = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if simple {
        format!("{name}/")
    } else {
        format!("{uuid}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_and_absolute() {
        let data = "/lake/data/";
        let schema = resolve(data, Some("s1/"), true);
        let table = resolve(&schema, Some("t/"), true);
        assert_eq!(
            resolve(&table, Some("f.parquet"), true),
            "/lake/data/s1/t/f.parquet"
        );
        assert_eq!(resolve(&table, Some("/x/f.parquet"), false), "/x/f.parquet");
        assert_eq!(resolve(data, None, true), data);
        assert_eq!(normalize_dir("/a/b//"), "/a/b/");
        assert_eq!(default_dir_name("My Schema!", "u-1"), "u-1/");
        assert_eq!(default_dir_name("s_1", "u-1"), "s_1/");
    }
}
