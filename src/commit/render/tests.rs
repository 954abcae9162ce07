//! Each renderer on a real catalog: a lake created on a SQLite file in a
//! temporary directory, a change set rendered with [`render`], the statements
//! run, and the rows read back through the store.

use std::sync::Arc;

use super::{Target, render};
use crate::commit::{
    AddedFile, Alter, ChangeSet, Comment, CommentTarget, MergedFile, NewColumn, NewDeleteFile,
    NewMacro, NewMacroImpl, NewMacroParameter, NewTable, NewView, RenamedView, SortKey, TableRef,
};
use crate::lake::{Lake, LakeOptions};
use crate::spec::changes::{Change, parse_changes};
use crate::spec::types::DuckLakeType;
use crate::spec::{CatalogId, SnapshotId};
use crate::write::{ColumnStats, WrittenFile};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A new lake in a temporary directory (removed on drop).
struct TestLake {
    lake: Arc<Lake>,
    dir: std::path::PathBuf,
}

impl Drop for TestLake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn test_lake() -> crate::error::Result<TestLake> {
    let dir = std::env::temp_dir().join(format!("lakeq-render-{}", uuid::Uuid::new_v4()));
    let options = LakeOptions {
        data_path: Some(format!("{}/data/", dir.display())),
        ..LakeOptions::default()
    };
    let meta = dir.join("meta.sqlite");
    let lake = Lake::open(&format!("ducklake:sqlite:{}", meta.display()), options).await?;
    Ok(TestLake { lake, dir })
}

/// Render `c` on the latest snapshot, run it, and return the statements, the
/// new snapshot and the ids of the new tables.
async fn apply(
    lake: &Lake,
    c: &ChangeSet,
    delete_files: &[WrittenFile],
) -> crate::error::Result<(String, SnapshotId, Vec<CatalogId>)> {
    let store = lake.store();
    let latest = store.latest_snapshot().await?;
    let target = Target {
        s: latest.snapshot_id + 1,
        amend: false,
    };
    let backend = store.backend();
    let rendered = render(lake, backend.as_ref(), c, &latest, target, delete_files).await?;
    backend.execute_batch(&rendered.sql).await?;
    Ok((rendered.sql, target.s, rendered.new_table_ids))
}

/// The change list of snapshot `s`.
async fn changes_of(lake: &Lake, s: SnapshotId) -> crate::error::Result<Vec<Change>> {
    match lake.store().changes_since(s - 1).await?.first() {
        Some(text) => parse_changes(text),
        None => Ok(Vec::new()),
    }
}

fn column(id: i64, name: &str, ty: DuckLakeType, children: Vec<NewColumn>) -> NewColumn {
    NewColumn {
        column_id: id,
        name: name.into(),
        ty,
        nulls_allowed: true,
        default_value: None,
        initial_default: None,
        children,
    }
}

/// `t(a INTEGER, s STRUCT(x VARCHAR))` in `main`.
fn new_table(name: &str) -> NewTable {
    NewTable {
        schema_id: 0,
        schema_name: "main".into(),
        name: name.into(),
        uuid: uuid::Uuid::now_v7().to_string(),
        path: format!("{name}/"),
        columns: vec![
            column(1, "a", DuckLakeType::Int32, Vec::new()),
            column(
                2,
                "s",
                DuckLakeType::Struct,
                vec![column(3, "x", DuckLakeType::Varchar, Vec::new())],
            ),
        ],
    }
}

/// A created table's id.
async fn create_table(lake: &Lake, name: &str) -> crate::error::Result<CatalogId> {
    let mut c = ChangeSet::new(lake.store().latest_snapshot().await?.snapshot_id);
    c.new_tables.push(new_table(name));
    let (_, _, ids) = apply(lake, &c, &[]).await?;
    ids.first()
        .copied()
        .ok_or_else(|| crate::error::Error::Corrupt("no table created".into()))
}

fn written(name: &str, rows: i64, stats: Vec<ColumnStats>) -> WrittenFile {
    WrittenFile {
        url: format!("/lake/t/{name}"),
        file_name: name.into(),
        record_count: rows,
        file_size_bytes: 100,
        footer_size: Some(10),
        column_stats: stats,
    }
}

fn int_stats(column_id: i64, min: i64, max: i64, nulls: i64) -> ColumnStats {
    ColumnStats {
        column_id,
        column_size_bytes: Some(8),
        value_count: 2,
        null_count: nulls,
        min_value: Some(min.to_string()),
        max_value: Some(max.to_string()),
        contains_nan: None,
    }
}

#[tokio::test]
async fn schemas_are_created_and_dropped() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let mut c = ChangeSet::new(0);
    c.new_schemas.push("s1".into());
    let (sql, s, _) = apply(&t.lake, &c, &[]).await?;
    // The snapshot row goes first: it is the serialisation point.
    assert!(
        sql.starts_with("INSERT INTO \"ducklake_snapshot\""),
        "{sql}"
    );
    let schemas = store.schemas(s).await?;
    let s1 = schemas
        .iter()
        .find(|r| r.schema_name == "s1")
        .ok_or("s1 missing")?;
    // `main` is catalog id 0; the snapshot counts the new id.
    assert_eq!(s1.schema_id, 1);
    assert_eq!(store.latest_snapshot().await?.next_catalog_id, 2);
    assert_eq!(store.latest_snapshot().await?.schema_version, 1);
    assert_eq!(
        changes_of(&t.lake, s).await?,
        vec![Change::CreatedSchema("s1".into())]
    );

    let mut c = ChangeSet::new(s);
    c.dropped_schemas.push(s1.schema_id);
    let (_, s2, _) = apply(&t.lake, &c, &[]).await?;
    assert!(
        !store
            .schemas(s2)
            .await?
            .iter()
            .any(|r| r.schema_name == "s1")
    );
    assert!(
        store
            .schemas(s)
            .await?
            .iter()
            .any(|r| r.schema_name == "s1")
    );
    assert_eq!(
        changes_of(&t.lake, s2).await?,
        vec![Change::DroppedSchema(1)]
    );
    Ok(())
}

#[tokio::test]
async fn tables_get_ids_column_trees_and_a_schema_version() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let mut c = ChangeSet::new(0);
    c.new_tables.push(new_table("t"));
    let (_, s, ids) = apply(&t.lake, &c, &[]).await?;
    assert_eq!(ids, vec![1]);
    let tables = store.tables(s).await?;
    assert_eq!(
        tables
            .iter()
            .map(|r| (r.table_id, r.table_name.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "t")]
    );
    let columns = store.table_columns(1, s).await?;
    let shape: Vec<(i64, &str, &str, Option<i64>)> = columns
        .iter()
        .map(|r| {
            (
                r.column_id,
                r.column_name.as_str(),
                r.column_type.as_str(),
                r.parent_column,
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (1, "a", "int32", None),
            (2, "s", "struct", None),
            (3, "x", "varchar", Some(2))
        ]
    );
    let versions = store.schema_versions(1).await?;
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(
        changes_of(&t.lake, s).await?,
        vec![Change::CreatedTable("main".into(), "t".into())]
    );

    let mut c = ChangeSet::new(s);
    c.dropped_tables.push(1);
    let (_, s2, _) = apply(&t.lake, &c, &[]).await?;
    assert!(store.tables(s2).await?.is_empty());
    assert!(store.table_columns(1, s2).await?.is_empty());
    assert_eq!(
        changes_of(&t.lake, s2).await?,
        vec![Change::DroppedTable(1)]
    );
    Ok(())
}

#[tokio::test]
async fn column_changes_end_old_versions_and_add_new_ones() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let table = create_table(&t.lake, "t").await?;
    let base = store.latest_snapshot().await?.snapshot_id;
    let mut renamed = store
        .table_columns(table, base)
        .await?
        .into_iter()
        .find(|r| r.column_id == 1)
        .ok_or("column a missing")?;
    renamed.column_name = "b".into();
    let mut c = ChangeSet::new(base);
    c.alters.push(Alter::ReplaceColumn { row: renamed });
    c.alters.push(Alter::DropColumn {
        table_id: table,
        column_ids: vec![2, 3],
    });
    c.alters.push(Alter::AddColumn {
        table_id: table,
        parent: None,
        column: column(4, "d", DuckLakeType::Int64, Vec::new()),
    });
    let (_, s, _) = apply(&t.lake, &c, &[]).await?;
    let names = |rows: Vec<crate::spec::rows::ColumnRow>| {
        let mut v: Vec<(i64, String)> = rows
            .into_iter()
            .map(|r| (r.column_id, r.column_name))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(store.table_columns(table, s).await?),
        vec![(1, "b".to_string()), (4, "d".to_string())]
    );
    // The snapshot before still sees the old layout (time travel).
    assert_eq!(store.table_columns(table, base).await?.len(), 3);
    // Ids are never reused: the next one is above every version's.
    assert_eq!(crate::commit::next_column_id(&t.lake, table).await?, 5);
    assert_eq!(
        changes_of(&t.lake, s).await?,
        vec![Change::AlteredTable(table)]
    );
    assert_eq!(store.schema_versions(table).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn partitioning_sorting_and_renaming_a_table() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let table = create_table(&t.lake, "t").await?;
    let base = store.latest_snapshot().await?.snapshot_id;
    let row = store
        .tables(base)
        .await?
        .into_iter()
        .next()
        .ok_or("table missing")?;
    let mut c = ChangeSet::new(base);
    c.alters.push(Alter::SetPartition {
        table_id: table,
        keys: vec![(1, "identity".into())],
    });
    c.alters.push(Alter::SetSort {
        table_id: table,
        keys: vec![SortKey {
            expression: "a".into(),
            descending: true,
            nulls_first: false,
        }],
    });
    c.alters.push(Alter::RenameTable {
        row,
        new_name: "u".into(),
        schema_name: "main".into(),
    });
    let (_, s, _) = apply(&t.lake, &c, &[]).await?;
    let partition = store.partition_columns(s).await?;
    assert_eq!(partition.len(), 1, "{partition:?}");
    assert_eq!(partition.first().map(|p| p.column_id), Some(1));
    let sort = store.sort_keys(table, s).await?;
    assert_eq!(sort.len(), 1, "{sort:?}");
    assert!(sort.first().is_some_and(|k| k.descending && !k.nulls_first));
    let tables = store.tables(s).await?;
    assert_eq!(
        tables
            .iter()
            .map(|r| (r.table_id, r.table_name.as_str()))
            .collect::<Vec<_>>(),
        vec![(table, "u")]
    );
    // The partition and sort specs took catalog ids 2 and 3.
    assert_eq!(store.latest_snapshot().await?.next_catalog_id, 4);
    assert_eq!(
        changes_of(&t.lake, s).await?,
        vec![
            Change::CreatedTable("main".into(), "u".into()),
            Change::AlteredTable(table)
        ]
    );
    Ok(())
}

#[tokio::test]
async fn views_are_created_renamed_keeping_their_id_and_commented() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let mut c = ChangeSet::new(0);
    c.new_views.push(NewView {
        schema_id: 0,
        schema_name: "main".into(),
        name: "v".into(),
        sql: "SELECT 1 AS x".into(),
        column_aliases: String::new(),
    });
    let (_, s, _) = apply(&t.lake, &c, &[]).await?;
    let views = store.views(s).await?;
    let view_id = views.first().map(|v| v.view_id).ok_or("view missing")?;
    assert_eq!(views.first().map(|v| v.dialect.as_str()), Some("duckdb"));

    let mut c = ChangeSet::new(s);
    c.renamed_views.push(RenamedView {
        view_id,
        schema_name: "main".into(),
        new_name: "w".into(),
    });
    c.comments.push(Comment {
        target: CommentTarget::View(view_id),
        value: Some("a view".into()),
    });
    let (_, s2, _) = apply(&t.lake, &c, &[]).await?;
    let views = store.views(s2).await?;
    assert_eq!(
        views
            .iter()
            .map(|v| (v.view_id, v.view_name.as_str(), v.sql.as_str()))
            .collect::<Vec<_>>(),
        vec![(view_id, "w", "SELECT 1 AS x")]
    );
    assert_eq!(
        store.views(s).await?.first().map(|v| v.view_name.clone()),
        Some("v".into())
    );
    assert_eq!(
        changes_of(&t.lake, s2).await?,
        vec![
            Change::CreatedView("main".into(), "w".into()),
            Change::AlteredView(view_id)
        ]
    );
    Ok(())
}

#[tokio::test]
async fn macros_store_a_row_per_implementation_and_parameter() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let mut c = ChangeSet::new(0);
    c.new_macros.push(NewMacro {
        schema_id: 0,
        schema_name: "main".into(),
        name: "add".into(),
        table: false,
        impls: vec![NewMacroImpl {
            sql: "a + b".into(),
            parameters: vec![
                NewMacroParameter {
                    name: "a".into(),
                    type_name: "unknown".into(),
                    default: None,
                },
                NewMacroParameter {
                    name: "b".into(),
                    type_name: "int32".into(),
                    default: Some(("1".into(), "int32".into())),
                },
            ],
        }],
    });
    let (_, s, _) = apply(&t.lake, &c, &[]).await?;
    let macros = store.macros(s).await?;
    assert_eq!(macros.len(), 1, "{macros:?}");
    let m = macros.first().ok_or("macro missing")?;
    assert_eq!(m.macro_name, "add");
    assert_eq!(m.impls.len(), 1);
    assert_eq!(m.impls.first().map(|i| i.parameters.len()), Some(2));
    assert_eq!(
        changes_of(&t.lake, s).await?,
        vec![Change::CreatedScalarMacro("main".into(), "add".into())]
    );

    let mut c = ChangeSet::new(s);
    c.dropped_macros.push((m.macro_id, false));
    let (_, s2, _) = apply(&t.lake, &c, &[]).await?;
    assert!(store.macros(s2).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn data_files_count_rows_and_merge_table_statistics() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let table = create_table(&t.lake, "t").await?;
    let base = store.latest_snapshot().await?;
    let mut c = ChangeSet::new(base.snapshot_id);
    for (name, min, max, nulls) in [("f1.parquet", 5, 9, 0), ("f2.parquet", -3, 7, 1)] {
        c.added_files.push(AddedFile {
            table: TableRef::Existing(table),
            file: written(name, 2, vec![int_stats(1, min, max, nulls)]),
            partition: None,
            mapping: None,
        });
    }
    let (_, s, _) = apply(&t.lake, &c, &[]).await?;
    let files = store.data_files(table, s).await?;
    assert_eq!(
        files
            .iter()
            .map(|f| (f.data_file_id, f.path.as_str(), f.record_count))
            .collect::<Vec<_>>(),
        vec![
            (base.next_file_id, "f1.parquet", 2),
            (base.next_file_id + 1, "f2.parquet", 2)
        ]
    );
    let stats = store
        .table_stats()
        .await?
        .into_iter()
        .find(|r| r.table_id == table)
        .ok_or("no table stats")?;
    assert_eq!(
        (stats.record_count, stats.next_row_id, stats.file_size_bytes),
        (4, 4, 200)
    );
    let column = store
        .table_column_stats(table)
        .await?
        .into_iter()
        .find(|r| r.column_id == 1)
        .ok_or("no column stats")?;
    assert_eq!(column.min_value.as_deref(), Some("-3"));
    assert_eq!(column.max_value.as_deref(), Some("9"));
    assert_eq!(column.contains_null, Some(true));
    assert_eq!(
        changes_of(&t.lake, s).await?,
        vec![Change::InsertedIntoTable(table)]
    );
    Ok(())
}

#[tokio::test]
async fn delete_files_replace_their_predecessor_and_ended_files_end() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let table = create_table(&t.lake, "t").await?;
    let mut c = ChangeSet::new(store.latest_snapshot().await?.snapshot_id);
    for name in ["f1.parquet", "f2.parquet"] {
        c.added_files.push(AddedFile {
            table: TableRef::Existing(table),
            file: written(name, 2, Vec::new()),
            partition: None,
            mapping: None,
        });
    }
    let (_, s, _) = apply(&t.lake, &c, &[]).await?;
    let files = store.data_files(table, s).await?;
    let (Some(f1), Some(f2)) = (files.first(), files.get(1)) else {
        return Err("two files expected".into());
    };
    let mut c = ChangeSet::new(s);
    c.delete_files.push(NewDeleteFile {
        table_id: table,
        data_file_id: f1.data_file_id,
        data_file_url: "/lake/t/f1.parquet".into(),
        table_dir: "/lake/t/".into(),
        new_positions: vec![0],
        previous: Vec::new(),
        replaces: None,
        flushed: false,
    });
    c.ended_files.push((table, f2.data_file_id));
    let (_, s2, _) = apply(&t.lake, &c, &[written("d1.parquet", 1, Vec::new())]).await?;
    let live = store.data_files(table, s2).await?;
    assert_eq!(
        live.iter().map(|f| f.data_file_id).collect::<Vec<_>>(),
        vec![f1.data_file_id]
    );
    let deletes = store.delete_file_history(table).await?;
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(
        changes_of(&t.lake, s2).await?,
        vec![Change::DeletedFromTable(table)]
    );
    Ok(())
}

#[tokio::test]
async fn inlined_deletions_of_parquet_rows_get_a_table_of_their_own() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let table = create_table(&t.lake, "t").await?;
    let mut c = ChangeSet::new(store.latest_snapshot().await?.snapshot_id);
    c.added_files.push(AddedFile {
        table: TableRef::Existing(table),
        file: written("f1.parquet", 3, Vec::new()),
        partition: None,
        mapping: None,
    });
    let (_, s, _) = apply(&t.lake, &c, &[]).await?;
    let file = store
        .data_files(table, s)
        .await?
        .first()
        .map(|f| f.data_file_id)
        .ok_or("file missing")?;
    let mut c = ChangeSet::new(s);
    c.inlined_file_deletes.push((table, file, vec![0, 2]));
    let (_, s2, _) = apply(&t.lake, &c, &[]).await?;
    let mut deleted = store.inlined_deletions(table, s2).await?;
    deleted.sort_unstable();
    assert_eq!(deleted, vec![(file, 0), (file, 2)]);
    assert!(store.inlined_deletions(table, s).await?.is_empty());
    assert_eq!(
        changes_of(&t.lake, s2).await?,
        vec![Change::InlinedDelete(table)]
    );
    Ok(())
}

#[tokio::test]
async fn comments_end_the_previous_one() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let table = create_table(&t.lake, "t").await?;
    for text in ["first", "second"] {
        let mut c = ChangeSet::new(store.latest_snapshot().await?.snapshot_id);
        c.comments.push(Comment {
            target: CommentTarget::Column(table, 1),
            value: Some(text.into()),
        });
        let (_, s, _) = apply(&t.lake, &c, &[]).await?;
        assert_eq!(
            changes_of(&t.lake, s).await?,
            vec![Change::AlteredTable(table)]
        );
    }
    let backend = store.backend();
    let rows = backend
        .query(&format!(
            "SELECT value FROM {} WHERE table_id = {table} AND column_id = 1 \
             AND key = 'comment' AND end_snapshot IS NULL",
            backend.table("ducklake_column_tag")
        ))
        .await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows.first().map(|r| r.opt_text(0)).transpose()?.flatten(),
        Some("second".to_string())
    );
    Ok(())
}

#[tokio::test]
async fn a_merge_replaces_its_sources_and_schedules_them_for_deletion() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let table = create_table(&t.lake, "t").await?;
    let mut c = ChangeSet::new(store.latest_snapshot().await?.snapshot_id);
    for name in ["f1.parquet", "f2.parquet"] {
        c.added_files.push(AddedFile {
            table: TableRef::Existing(table),
            file: written(name, 2, vec![int_stats(1, 1, 2, 0)]),
            partition: None,
            mapping: None,
        });
    }
    let (_, s, _) = apply(&t.lake, &c, &[]).await?;
    let files = store.data_files(table, s).await?;
    let mut c = ChangeSet::new(s);
    c.merges.push(MergedFile {
        table_id: table,
        sources: files
            .iter()
            .map(|f| (f.data_file_id, f.path.clone(), true))
            .collect(),
        file: written("m.parquet", 4, vec![int_stats(1, 1, 2, 0)]),
        begin_snapshot: s,
        row_id_start: 0,
        partial_max: s,
        partition: None,
        rewrite: false,
        dropped_rows: 0,
    });
    let (_, s2, _) = apply(&t.lake, &c, &[]).await?;
    let live = store.data_files(table, s2).await?;
    assert_eq!(
        live.iter()
            .map(|f| (f.path.as_str(), f.begin_snapshot, f.record_count))
            .collect::<Vec<_>>(),
        vec![("m.parquet", s, 4)]
    );
    let backend = store.backend();
    let scheduled = backend
        .query(&format!(
            "SELECT data_file_id FROM {}",
            backend.table("ducklake_files_scheduled_for_deletion")
        ))
        .await?;
    assert_eq!(scheduled.len(), 2);
    assert_eq!(
        changes_of(&t.lake, s2).await?,
        vec![Change::MergeAdjacent(table)]
    );
    Ok(())
}

#[tokio::test]
async fn inlined_inserts_go_to_the_tables_inlined_table() -> TestResult {
    let t = test_lake().await?;
    let store = t.lake.store();
    let mut c = ChangeSet::new(0);
    let mut table = new_table("n");
    table.columns.truncate(1);
    c.new_tables.push(table);
    let (_, s, ids) = apply(&t.lake, &c, &[]).await?;
    let table = ids.first().copied().ok_or("no table created")?;
    // A new table gets an inlined table for its layout, as DuckDB creates one.
    let inlined = store.inlined_tables(table).await?;
    let name = inlined
        .first()
        .map(|r| r.table_name.clone())
        .ok_or("no inlined table")?;

    let before = store.latest_snapshot().await?;
    let mut c = ChangeSet::new(s);
    c.inlined_inserts
        .push(crate::commit::inline::InlinedInsert {
            table: TableRef::Existing(table),
            column_ids: vec![1],
            rows: vec!["7".into(), "8".into()],
            row_ids: None,
            column_stats: vec![int_stats(1, 7, 8, 0)],
        });
    let (_, s2, _) = apply(&t.lake, &c, &[]).await?;
    let backend = store.backend();
    let rows = backend
        .query(&format!(
            "SELECT row_id, begin_snapshot FROM {} ORDER BY row_id",
            backend.table(&name)
        ))
        .await?;
    let rows: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| Ok((r.i64(0)?, r.i64(1)?)))
        .collect::<crate::error::Result<_>>()?;
    assert_eq!(rows, vec![(0, s2), (1, s2)]);
    let stats = store
        .table_stats()
        .await?
        .into_iter()
        .find(|r| r.table_id == table)
        .ok_or("no table stats")?;
    assert_eq!((stats.record_count, stats.next_row_id), (2, 2));
    // DuckDB takes a file id when a commit inlines rows without writing a file.
    assert_eq!(
        store.latest_snapshot().await?.next_file_id,
        before.next_file_id + 1
    );
    assert_eq!(
        changes_of(&t.lake, s2).await?,
        vec![Change::InlinedInsert(table)]
    );
    Ok(())
}
