//! The names of DuckLake's own functions as the dialect rewrites them: DuckDB's
//! `lake.snapshots()` macros and the named parameters of the `ducklake_*`
//! table functions (implemented in [`crate::session::functions`]).

/// The lake-level functions DuckDB offers as `lake.name(...)` macros, with the
/// `ducklake_*` function each calls and whether it takes the schema too.
pub const LAKE_MACROS: &[(&str, &str, bool)] = &[
    ("snapshots", "ducklake_snapshots", false),
    ("current_snapshot", "ducklake_current_snapshot", false),
    (
        "last_committed_snapshot",
        "ducklake_last_committed_snapshot",
        false,
    ),
    ("table_info", "ducklake_table_info", false),
    ("options", "ducklake_options", false),
    ("settings", "ducklake_settings", false),
    ("table_changes", "ducklake_table_changes", true),
    ("table_insertions", "ducklake_table_insertions", true),
    ("table_deletions", "ducklake_table_deletions", true),
    ("set_option", "ducklake_set_option", false),
    ("set_commit_message", "ducklake_set_commit_message", false),
    ("expire_snapshots", "ducklake_expire_snapshots", false),
    ("cleanup_old_files", "ducklake_cleanup_old_files", false),
    (
        "delete_orphaned_files",
        "ducklake_delete_orphaned_files",
        false,
    ),
    (
        "merge_adjacent_files",
        "ducklake_merge_adjacent_files",
        false,
    ),
    ("flush_inlined_data", "ducklake_flush_inlined_data", false),
    ("rewrite_data_files", "ducklake_rewrite_data_files", false),
];

/// Named parameters of the `ducklake_*` functions, in the positions lakeq's
/// implementations take them (after the positional ones).
pub const NAMED_PARAMETERS: &[(&str, usize, &[&str])] = &[
    (
        "ducklake_list_files",
        2,
        &["schema", "snapshot_version", "snapshot_time"],
    ),
    ("ducklake_set_option", 3, &["schema", "table_name"]),
    ("ducklake_set_commit_message", 3, &["extra_info"]),
    (
        "ducklake_flush_inlined_data",
        1,
        &["schema_name", "table_name"],
    ),
    (
        "ducklake_expire_snapshots",
        1,
        &["older_than", "versions", "dry_run"],
    ),
    (
        "ducklake_cleanup_old_files",
        1,
        &["cleanup_all", "older_than", "dry_run"],
    ),
    (
        "ducklake_delete_orphaned_files",
        1,
        &["cleanup_all", "older_than", "dry_run"],
    ),
    (
        "ducklake_rewrite_data_files",
        2,
        &["schema", "delete_threshold"],
    ),
    (
        "ducklake_merge_adjacent_files",
        2,
        &[
            "schema",
            "max_compacted_files",
            "min_file_size",
            "max_file_size",
        ],
    ),
    (
        "ducklake_add_data_files",
        3,
        &[
            "schema",
            "allow_missing",
            "ignore_extra_columns",
            "hive_partitioning",
        ],
    ),
];
