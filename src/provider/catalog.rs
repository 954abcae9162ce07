//! [`LakeCatalog`] (one attached lake) and [`LakeSchema`] (one DuckLake schema)
//! as DataFusion providers.
//!
//! Providers answer from an in-memory [`CatalogSnapshot`]; the [`Session`]
//! refreshes it before each statement (one cheap query when nothing changed), so
//! every statement sees the latest committed snapshot and one statement sees one
//! snapshot throughout.
//!
//! [`Session`]: crate::session::Session

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::datasource::TableType;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{LogicalPlanBuilder, col};

use super::table::LakeTable;
use crate::catalog::CatalogSnapshot;
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::rows::ViewRow;

/// What a lake's providers need from the session that attached them to plan a
/// view's stored SQL: a copy of the session's state and DuckDB's dialect. Both
/// live in layers above the providers ([`crate::session`], [`crate::dialect`]),
/// which hand an implementation down.
pub trait ViewPlanner: Send + Sync {
    /// A copy of the session's state; `None` once the session is dropped.
    fn state(&self) -> Option<SessionState>;

    /// Plan `sql` in `state`, its tables read as of snapshot `at` when given.
    fn plan<'a>(
        &'a self,
        state: &'a SessionState,
        sql: &'a str,
        at: Option<crate::spec::SnapshotId>,
    ) -> futures::future::BoxFuture<'a, Result<datafusion::logical_expr::LogicalPlan>>;
}

/// The session's [`ViewPlanner`], shared by a lake's catalog and schemas.
pub type SharedViewPlanner = Arc<dyn ViewPlanner>;

/// Suffix of a schema name that resolves tables as of a time-travel target
/// (`s1@@at`): the schema as of the table's snapshot, which may be gone now.
pub const HISTORIC_SCHEMA: &str = "@@at";

/// Planned views by (snapshot, schema, view name), shared by a lake's schemas.
type ViewCache = RwLock<HashMap<(i64, String, String), Arc<dyn TableProvider>>>;

/// Marker between a table name and a time-travel target in rewritten SQL
/// (`t AT (VERSION => 3)` becomes `"t@@version=3"`).
pub const AT_MARKER: &str = "@@";

/// One attached lake.
pub struct LakeCatalog {
    name: String,
    lake: Arc<Lake>,
    snapshot: RwLock<Arc<CatalogSnapshot>>,
    views: Arc<ViewCache>,
    view_planner: SharedViewPlanner,
    /// Tables return VARCHAR/BLOB columns as `Utf8View`/`BinaryView`
    /// ([`LakeTable::with_string_views`]).
    string_views: bool,
}

impl std::fmt::Debug for LakeCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeCatalog")
            .field("name", &self.name)
            .finish()
    }
}

impl LakeCatalog {
    /// Attach `lake` under `name`, pinned at its current snapshot.
    pub async fn new(name: &str, lake: Arc<Lake>, view_planner: SharedViewPlanner) -> Result<Self> {
        let snapshot = lake.pin(lake.current_snapshot().await?).await?;
        Ok(Self {
            name: name.to_string(),
            lake,
            snapshot: RwLock::new(Arc::new(snapshot)),
            views: Arc::new(RwLock::new(HashMap::new())),
            view_planner,
            string_views: false,
        })
    }

    /// The same catalog whose tables return VARCHAR and BLOB columns as Arrow
    /// `Utf8View`/`BinaryView` when `on` (see [`LakeTable::with_string_views`]).
    pub fn with_string_views(mut self, on: bool) -> Self {
        self.string_views = on;
        self
    }

    /// Whether the tables return VARCHAR and BLOB columns as views.
    pub fn string_views(&self) -> bool {
        self.string_views
    }

    /// The lake.
    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    /// The attached name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The snapshot currently served.
    pub fn current(&self) -> Arc<CatalogSnapshot> {
        match self.snapshot.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Move to the lake's latest snapshot if it changed.
    pub async fn refresh(&self) -> Result<()> {
        let latest = self.lake.current_snapshot().await?;
        // A transaction's fork amends its one snapshot without a new id: reload always.
        let fork = self.lake.transaction_base().is_some();
        if !fork && latest.snapshot_id <= self.current().snapshot.snapshot_id {
            return Ok(());
        }
        let loaded = Arc::new(self.lake.pin(latest).await?);
        let mut guard = match self.snapshot.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if fork {
            match self.views.write() {
                Ok(mut v) => v.clear(),
                Err(p) => p.into_inner().clear(),
            }
            *guard = loaded;
            return Ok(());
        }
        // Concurrent refreshes may finish out of order: only ever move forward
        // (unless pinned back deliberately by time travel, which does not use refresh).
        if loaded.snapshot.snapshot_id > guard.snapshot.snapshot_id {
            *guard = loaded;
        }
        Ok(())
    }
}

impl CatalogProvider for LakeCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.current().schemas.keys().cloned().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let snapshot = self.current();
        // A time-travel name (`s1@@at`): the schema as of the table's snapshot,
        // which its tables resolve; it may be gone now.
        let (name, historic) = match name.strip_suffix(HISTORIC_SCHEMA) {
            Some(base) => (base, true),
            None => (name, false),
        };
        (historic || snapshot.schemas.contains_key(name)).then(|| {
            Arc::new(LakeSchema {
                catalog_name: self.name.clone(),
                schema_name: name.to_string(),
                lake: Arc::clone(&self.lake),
                snapshot,
                views: Arc::clone(&self.views),
                view_planner: Arc::clone(&self.view_planner),
                string_views: self.string_views,
            }) as Arc<dyn SchemaProvider>
        })
    }
}

/// One DuckLake schema at one snapshot.
pub struct LakeSchema {
    catalog_name: String,
    schema_name: String,
    lake: Arc<Lake>,
    snapshot: Arc<CatalogSnapshot>,
    views: Arc<ViewCache>,
    view_planner: SharedViewPlanner,
    string_views: bool,
}

impl std::fmt::Debug for LakeSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeSchema")
            .field("catalog", &self.catalog_name)
            .field("schema", &self.schema_name)
            .finish()
    }
}

/// A time-travel target parsed from a rewritten table name.
#[derive(Debug, Clone, PartialEq)]
pub enum AtTarget {
    /// `AT (VERSION => n)`
    Version(i64),
    /// `AT (TIMESTAMP => '...')`
    Timestamp(String),
}

/// Split `t@@version=3` into (`t`, target).
pub fn split_at_target(name: &str) -> Option<(&str, AtTarget)> {
    let (table, options) = table_options(name);
    options.at.map(|at| (table, at))
}

/// What the dialect asked of a table through its rewritten name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableOptions {
    /// Time travel.
    pub at: Option<AtTarget>,
    /// Expose DuckDB's `rowid`.
    pub rowid: bool,
}

/// Split `t@@version=3@@rowid` into `t` and its options.
pub fn table_options(name: &str) -> (&str, TableOptions) {
    let mut parts = name.split(AT_MARKER);
    let table = parts.next().unwrap_or(name);
    let mut options = TableOptions::default();
    for part in parts {
        if part == "rowid" {
            options.rowid = true;
        } else if let Some(v) = part.strip_prefix("version=") {
            if let Ok(v) = v.parse() {
                options.at = Some(AtTarget::Version(v));
            }
        } else if let Some(t) = part.strip_prefix("timestamp=") {
            options.at = Some(AtTarget::Timestamp(t.to_string()));
        }
    }
    (table, options)
}

impl LakeSchema {
    /// The provider a query reads `entry` through at snapshot `s`.
    fn table_provider(
        &self,
        entry: &Arc<crate::catalog::TableEntry>,
        s: crate::spec::SnapshotId,
    ) -> LakeTable {
        let table = LakeTable::new(Arc::clone(&self.lake), Arc::clone(entry), s);
        if self.string_views {
            table.with_string_views()
        } else {
            table
        }
    }

    async fn time_travel(
        &self,
        table: &str,
        target: AtTarget,
        rowid: bool,
    ) -> Result<Arc<dyn TableProvider>> {
        let store = self.lake.store();
        let snapshot = match target {
            AtTarget::Version(v) => store.snapshot(v).await?,
            AtTarget::Timestamp(t) => {
                let ts = crate::store::parse_catalog_timestamp(&t)?;
                store.snapshot_at(ts).await?
            }
        };
        let s = snapshot.snapshot_id;
        let old = self.lake.pin(snapshot).await?;
        // Like DuckDB: the name is resolved as of the snapshot (a renamed table is
        // found under its old name).
        let entry = match old.table(&self.schema_name, table) {
            Ok(entry) => entry,
            Err(_) => {
                // A view: its definition as of the snapshot, its tables read at it.
                let view = old
                    .schemas
                    .get(&self.schema_name)
                    .and_then(|schema| schema.views.get(table));
                if let Some(view) = view {
                    if rowid {
                        return Err(Error::Unsupported(format!(
                            "view '{}.{table}' has no rowid (only tables do)",
                            self.schema_name
                        )));
                    }
                    return self.view(view, Some(s)).await;
                }
                return Err(Error::NotFound {
                    kind: "table",
                    name: format!("{}.{table}", self.schema_name),
                    hint: format!(" at version {s}"),
                });
            }
        };
        let table = self.table_provider(entry, s);
        Ok(Arc::new(if rowid {
            table.with_query_rowid()
        } else {
            table
        }))
    }

    /// The name of a table or view of this schema matching `name` exactly, else
    /// the only one matching it case-insensitively (DuckDB's names are
    /// case-insensitive; DataFusion lower-cases unquoted names).
    fn resolve_name<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let schema = self.snapshot.schemas.get(&self.schema_name)?;
        if schema.tables.contains_key(name) || schema.views.contains_key(name) {
            return Some(name);
        }
        let mut matches = schema
            .tables
            .keys()
            .chain(schema.views.keys())
            .filter(|k| k.eq_ignore_ascii_case(name));
        match (matches.next(), matches.next()) {
            (Some(one), None) => Some(one.as_str()),
            _ => None,
        }
    }

    /// Plan a view; `at`: as of that snapshot, its tables read at it (time travel).
    async fn view(
        &self,
        row: &ViewRow,
        at: Option<crate::spec::SnapshotId>,
    ) -> Result<Arc<dyn TableProvider>> {
        let key = (
            self.snapshot.snapshot.snapshot_id,
            self.schema_name.clone(),
            row.view_name.clone(),
        );
        if at.is_none()
            && let Some(v) = self.views.read().ok().and_then(|m| m.get(&key).cloned())
        {
            return Ok(v);
        }
        let mut state = self.view_planner.state().ok_or_else(|| {
            Error::Unsupported("planning a view after its session was dropped".into())
        })?;
        {
            let opts = state.config_mut().options_mut();
            opts.catalog.default_catalog = self.catalog_name.clone();
            opts.catalog.default_schema = self.schema_name.clone();
        }
        let view_name = format!(
            "{}.{}.{}",
            self.catalog_name, self.schema_name, row.view_name
        );
        // DuckDB stores the catalog name as a placeholder in view SQL.
        let sql = row.sql.replace(
            "{DUCKLAKE_CATALOG}",
            &crate::store::quote_ident(&self.catalog_name),
        );
        let plan = self
            .view_planner
            .plan(&state, &sql, at)
            .await
            .map_err(|e| {
                Error::Unsupported(format!(
                    "view '{view_name}' ({} dialect) cannot be planned by lakeq: {e}; its SQL: {}",
                    row.dialect, row.sql
                ))
            })?;
        let aliases = parse_column_aliases(&row.column_aliases);
        let plan = if aliases.is_empty() {
            plan
        } else {
            let exprs = plan
                .schema()
                .columns()
                .into_iter()
                .enumerate()
                .map(|(i, c)| match aliases.get(i) {
                    Some(a) => col(c).alias(a),
                    None => col(c),
                })
                .collect::<Vec<_>>();
            LogicalPlanBuilder::from(plan).project(exprs)?.build()?
        };
        let view: Arc<dyn TableProvider> = Arc::new(ViewTable::new(plan, Some(row.sql.clone())));
        if at.is_some() {
            return Ok(view);
        }
        if let Ok(mut m) = self.views.write() {
            m.retain(|k, _| k.0 == key.0);
            m.insert(key, Arc::clone(&view));
        }
        Ok(view)
    }
}

/// Parse `"x","y"` into `["x", "y"]` (empty string: no aliases).
pub fn parse_column_aliases(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut name = String::new();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    name.push('"');
                    chars.next();
                } else {
                    break;
                }
            } else {
                name.push(c);
            }
        }
        out.push(name);
    }
    out
}

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        self.snapshot
            .schemas
            .get(&self.schema_name)
            .map(|s| s.tables.keys().chain(s.views.keys()).cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        let (base, options) = table_options(name);
        if let Some(target) = options.at {
            return self
                .time_travel(base, target, options.rowid)
                .await
                .map(Some)
                .map_err(DataFusionError::from);
        }
        let Some(schema) = self.snapshot.schemas.get(&self.schema_name) else {
            return Ok(None);
        };
        let Some(base) = self.resolve_name(base) else {
            return Ok(None);
        };
        if let Some(entry) = schema.tables.get(base) {
            let table = self.table_provider(entry, self.snapshot.snapshot.snapshot_id);
            return Ok(Some(Arc::new(if options.rowid {
                table.with_query_rowid()
            } else {
                table
            })));
        }
        if let Some(view) = schema.views.get(base) {
            if options.rowid {
                return Err(DataFusionError::Plan(format!(
                    "view '{}.{base}' has no rowid (only tables do)",
                    self.schema_name
                )));
            }
            return self
                .view(view, None)
                .await
                .map(Some)
                .map_err(DataFusionError::from);
        }
        Ok(None)
    }

    async fn table_type(&self, name: &str) -> DFResult<Option<TableType>> {
        let Some(schema) = self.snapshot.schemas.get(&self.schema_name) else {
            return Ok(None);
        };
        let Some(name) = self.resolve_name(table_options(name).0) else {
            return Ok(None);
        };
        Ok(if schema.tables.contains_key(name) {
            Some(TableType::Base)
        } else if schema.views.contains_key(name) {
            Some(TableType::View)
        } else {
            None
        })
    }

    fn table_exist(&self, name: &str) -> bool {
        self.resolve_name(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aliases_and_targets() {
        assert_eq!(parse_column_aliases(r#""x","y""z""#), vec!["x", "y\"z"]);
        assert!(parse_column_aliases("").is_empty());
        assert_eq!(
            split_at_target("t@@version=3"),
            Some(("t", AtTarget::Version(3)))
        );
        assert_eq!(split_at_target("t"), None);
    }
}
