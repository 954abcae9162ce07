//! The catalog pinned at one snapshot: schemas, tables (with column trees and Arrow
//! schemas) and views, loaded with one query per catalog table.
//!
//! A [`CatalogSnapshot`] is immutable; time travel is another snapshot.

pub mod files;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::spec::paths::resolve;
use crate::spec::rows::*;
use crate::spec::types::DuckLakeType;
use crate::spec::{CatalogId, ColumnId};
use crate::store::{LakeMetadata, MetadataStore};

/// Arrow field metadata key carrying the DuckLake column id (= Parquet field id).
pub const FIELD_ID_KEY: &str = "PARQUET:field_id";

/// Arrow field metadata key marking a `geometry` column: lakeq reads its WKB
/// as WKT text (a Utf8 field) and refuses to write it.
pub const GEOMETRY_KEY: &str = "lakeq:geometry";

/// Whether `field` is a DuckLake `geometry` column read as WKT.
pub fn is_geometry(field: &Field) -> bool {
    field.metadata().contains_key(GEOMETRY_KEY)
}

/// A column with its nested children, as of one snapshot.
#[derive(Debug, Clone)]
pub struct ColumnNode {
    /// The `ducklake_column` row.
    pub row: ColumnRow,
    /// Parsed type.
    pub ty: DuckLakeType,
    /// Children in `column_order` (list element, map key/value, struct fields).
    pub children: Vec<ColumnNode>,
}

impl ColumnNode {
    /// The Arrow field of this column, with its column id as field metadata.
    pub fn arrow_field(&self) -> Result<Field> {
        let children = self
            .children
            .iter()
            .map(ColumnNode::arrow_field)
            .collect::<Result<Vec<_>>>()?;
        let mut metadata =
            HashMap::from([(FIELD_ID_KEY.to_string(), self.row.column_id.to_string())]);
        let dt = if self.ty == DuckLakeType::Geometry && self.row.parent_column.is_none() {
            metadata.insert(GEOMETRY_KEY.to_string(), "wkt".to_string());
            DataType::Utf8
        } else {
            self.ty.to_arrow_nested(children)?
        };
        Ok(Field::new(&self.row.column_name, dt, true).with_metadata(metadata))
    }

    /// Visit this column and all descendants (pre-order).
    pub fn walk<'a>(&'a self, out: &mut Vec<&'a ColumnNode>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }
}

/// A schema with the same names and types but no field metadata at any depth
/// (except the geometry marker).
pub fn strip_metadata(fields: &[Field]) -> Schema {
    Schema::new(fields.iter().map(strip_field).collect::<Vec<_>>())
}

fn strip_field(f: &Field) -> Field {
    use datafusion::arrow::datatypes::DataType;
    let dt = match f.data_type() {
        DataType::List(c) => DataType::List(Arc::new(strip_field(c))),
        DataType::LargeList(c) => DataType::LargeList(Arc::new(strip_field(c))),
        DataType::Struct(cs) => DataType::Struct(cs.iter().map(|c| strip_field(c)).collect()),
        DataType::Map(e, sorted) => DataType::Map(Arc::new(strip_field(e)), *sorted),
        other => other.clone(),
    };
    let field = Field::new(f.name(), dt, f.is_nullable());
    if is_geometry(f) {
        // Kept so the dialect can refuse to order or compare WKT as text.
        field.with_metadata(HashMap::from([(
            GEOMETRY_KEY.to_string(),
            "wkt".to_string(),
        )]))
    } else {
        field
    }
}

/// Build column trees from flat rows (any order).
pub fn build_column_tree(rows: &[ColumnRow]) -> Result<Vec<ColumnNode>> {
    // Column ids are Parquet field ids: two columns with one id would read each
    // other's data (and reach DataFusion with mismatched types).
    let mut ids = HashSet::new();
    if let Some(r) = rows.iter().find(|r| !ids.insert(r.column_id)) {
        return Err(Error::Corrupt(format!(
            "table {} has two columns with id {} (one is '{}')",
            r.table_id, r.column_id, r.column_name
        )));
    }
    let mut by_parent: HashMap<Option<ColumnId>, Vec<&ColumnRow>> = HashMap::new();
    for r in rows {
        by_parent.entry(r.parent_column).or_default().push(r);
    }
    for v in by_parent.values_mut() {
        v.sort_by_key(|r| (r.column_order, r.column_id));
    }
    fn build(
        parent: Option<ColumnId>,
        by_parent: &HashMap<Option<ColumnId>, Vec<&ColumnRow>>,
        depth: usize,
    ) -> Result<Vec<ColumnNode>> {
        if depth > 64 {
            return Err(Error::Corrupt(
                "column nesting deeper than 64 levels".into(),
            ));
        }
        let Some(rows) = by_parent.get(&parent) else {
            return Ok(Vec::new());
        };
        rows.iter()
            .map(|r| {
                Ok(ColumnNode {
                    ty: r.column_type.parse()?,
                    children: build(Some(r.column_id), by_parent, depth + 1)?,
                    row: (*r).clone(),
                })
            })
            .collect()
    }
    build(None, &by_parent, 0)
}

/// A table as of one snapshot.
#[derive(Debug, Clone)]
pub struct TableEntry {
    /// The `ducklake_table` row.
    pub row: TableRow,
    /// Name of the owning schema.
    pub schema_name: String,
    /// Resolved table directory (absolute path or URL prefix, ends with `/`).
    pub dir: String,
    /// Top-level columns.
    pub columns: Vec<ColumnNode>,
    /// Arrow schema of the table as DataFusion sees it (no field metadata).
    pub arrow_schema: SchemaRef,
    /// The same schema with the column ids as Parquet field ids in the field
    /// metadata (nested fields too): the schema data files are written with.
    pub file_schema: SchemaRef,
    /// Partition key parts of the current spec (empty = unpartitioned).
    pub partition: Vec<PartitionColumnRow>,
    /// `ducklake_table_stats`, if the table ever had rows.
    pub stats: Option<TableStatsRow>,
}

impl TableEntry {
    /// The table's id.
    pub fn id(&self) -> CatalogId {
        self.row.table_id
    }

    /// `schema.table`, for messages.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema_name, self.row.table_name)
    }

    /// The same table with another column layout (the column rows of an
    /// earlier snapshot: what its older files and inlined tables hold).
    pub fn with_columns(&self, rows: &[ColumnRow]) -> Result<TableEntry> {
        let columns = build_column_tree(rows)?;
        let fields = columns
            .iter()
            .map(ColumnNode::arrow_field)
            .collect::<Result<Vec<_>>>()?;
        Ok(TableEntry {
            arrow_schema: Arc::new(strip_metadata(&fields)),
            file_schema: Arc::new(Schema::new(fields)),
            columns,
            ..self.clone()
        })
    }

    /// All columns, nested included, by id.
    pub fn columns_by_id(&self) -> HashMap<ColumnId, &ColumnNode> {
        let mut all = Vec::new();
        for c in &self.columns {
            c.walk(&mut all);
        }
        all.into_iter().map(|c| (c.row.column_id, c)).collect()
    }
}

/// A schema as of one snapshot.
#[derive(Debug, Clone)]
pub struct SchemaEntry {
    /// The `ducklake_schema` row.
    pub row: SchemaRow,
    /// Resolved schema directory.
    pub dir: String,
    /// Tables by name.
    pub tables: BTreeMap<String, Arc<TableEntry>>,
    /// Views by name.
    pub views: BTreeMap<String, ViewRow>,
    /// DuckDB macros by name.
    pub macros: BTreeMap<String, Arc<MacroRow>>,
}

/// The whole catalog at one snapshot.
#[derive(Debug, Clone)]
pub struct CatalogSnapshot {
    /// The snapshot.
    pub snapshot: SnapshotRow,
    /// Schemas by name.
    pub schemas: BTreeMap<String, SchemaEntry>,
}

impl CatalogSnapshot {
    /// Load everything visible at `snapshot`.
    pub async fn load(
        store: &MetadataStore,
        md: &LakeMetadata,
        snapshot: SnapshotRow,
    ) -> Result<Self> {
        let s = snapshot.snapshot_id;
        let (schemas, tables, views, columns, parts, stats, macros) = tokio::try_join!(
            store.schemas(s),
            store.tables(s),
            store.views(s),
            store.columns(s),
            store.partition_columns(s),
            store.table_stats(),
            store.macros(s),
        )?;
        let mut cols_by_table: HashMap<CatalogId, Vec<ColumnRow>> = HashMap::new();
        for c in columns {
            cols_by_table.entry(c.table_id).or_default().push(c);
        }
        let mut parts_by_table: HashMap<CatalogId, Vec<PartitionColumnRow>> = HashMap::new();
        for p in parts {
            parts_by_table.entry(p.table_id).or_default().push(p);
        }
        let stats: HashMap<CatalogId, TableStatsRow> =
            stats.into_iter().map(|r| (r.table_id, r)).collect();

        let mut by_id: BTreeMap<CatalogId, SchemaEntry> = BTreeMap::new();
        for row in schemas {
            let dir = resolve(&md.data_path, row.path.as_deref(), row.path_is_relative);
            by_id.insert(
                row.schema_id,
                SchemaEntry {
                    dir,
                    row,
                    tables: BTreeMap::new(),
                    views: BTreeMap::new(),
                    macros: BTreeMap::new(),
                },
            );
        }
        for row in tables {
            let Some(schema) = by_id.get_mut(&row.schema_id) else {
                continue;
            };
            let columns =
                build_column_tree(cols_by_table.get(&row.table_id).map_or(&[][..], |v| v))?;
            let fields = columns
                .iter()
                .map(ColumnNode::arrow_field)
                .collect::<Result<Vec<_>>>()
                .map_err(|e| {
                    Error::Corrupt(format!(
                        "table '{}.{}': {e}",
                        schema.row.schema_name, row.table_name
                    ))
                })?;
            let mut partition = parts_by_table.remove(&row.table_id).unwrap_or_default();
            // Only the newest visible spec counts.
            if let Some(max) = partition.iter().map(|p| p.partition_id).max() {
                partition.retain(|p| p.partition_id == max);
            }
            let entry = TableEntry {
                dir: resolve(&schema.dir, row.path.as_deref(), row.path_is_relative),
                schema_name: schema.row.schema_name.clone(),
                arrow_schema: Arc::new(strip_metadata(&fields)),
                file_schema: Arc::new(Schema::new(fields)),
                columns,
                partition,
                stats: stats.get(&row.table_id).cloned(),
                row,
            };
            schema
                .tables
                .insert(entry.row.table_name.clone(), Arc::new(entry));
        }
        for v in views {
            if let Some(schema) = by_id.get_mut(&v.schema_id) {
                schema.views.insert(v.view_name.clone(), v);
            }
        }
        for m in macros {
            if let Some(schema) = by_id.get_mut(&m.schema_id) {
                // DuckDB keeps a scalar and a table macro of the same name as two
                // macros (`CREATE MACRO xt(a, b) AS TABLE ...` then `xt(a) AS 1`):
                // the call picks among all their implementations.
                match schema.macros.get_mut(&m.macro_name) {
                    Some(existing) => Arc::make_mut(existing).impls.extend(m.impls),
                    None => {
                        schema.macros.insert(m.macro_name.clone(), Arc::new(m));
                    }
                }
            }
        }
        Ok(Self {
            snapshot,
            schemas: by_id
                .into_values()
                .map(|s| (s.row.schema_name.clone(), s))
                .collect(),
        })
    }

    /// A table by schema and name.
    pub fn table(&self, schema: &str, table: &str) -> Result<&Arc<TableEntry>> {
        let s = self.schema(schema)?;
        s.tables.get(table).ok_or_else(|| Error::NotFound {
            kind: "table",
            name: format!("{schema}.{table}"),
            hint: format!(
                "; tables in schema '{schema}': {}",
                s.tables.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// A schema by name.
    pub fn schema(&self, schema: &str) -> Result<&SchemaEntry> {
        self.schemas.get(schema).ok_or_else(|| Error::NotFound {
            kind: "schema",
            name: schema.to_string(),
            hint: format!(
                "; schemas: {}",
                self.schemas.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }
}
