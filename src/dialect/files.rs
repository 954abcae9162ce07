//! Files read in place, as DuckDB reads them: `FROM 'data.parquet'`,
//! `FROM read_parquet('dir/*.parquet')`, `read_csv('x.csv')`, `read_json(...)`.
//!
//! Before a statement is planned, every such reference (one path or glob; a
//! call with options is left alone and fails by name) becomes a DataFusion
//! listing table (format from the extension, Hive partitions of a directory
//! inferred, schema from the files), registered in the schema
//! `memory.__lakeq_files` under its path; the statement then names that table.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::catalog::{MemorySchemaProvider, TableProvider};
use datafusion::datasource::listing::{
    ListingTable, ListingTableConfig, ListingTableConfigExt, ListingTableUrl,
};
use datafusion::execution::context::SessionState;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Ident, ObjectName, ObjectNamePart, Statement, TableFactor,
    TableFunctionArgs, Value, Visit, Visitor,
};

use crate::error::{Error, Result};

/// The schema (of the `memory` catalog) that holds the file tables.
pub const FILES_SCHEMA: &str = "__lakeq_files";

/// A file reference: the path (or glob) and the CSV options given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// Path, directory or glob.
    pub path: String,
    /// `delim` / `sep` of `read_csv`.
    pub delimiter: Option<u8>,
    /// `header` of `read_csv`.
    pub header: Option<bool>,
    /// `hive_partitioning = false`: Hive folders (`k=v`) give no columns.
    pub no_hive: bool,
}

impl FileRef {
    /// The table name it is registered under (options included).
    pub fn key(&self) -> String {
        let mut key = self.path.clone();
        if let Some(d) = self.delimiter {
            key.push_str(&format!("#delim={}", char::from(d)));
        }
        if let Some(h) = self.header {
            key.push_str(&format!("#header={h}"));
        }
        if self.no_hive {
            key.push_str("#hive_partitioning=false");
        }
        key
    }
}

/// The file a table factor reads, if it is a file reference.
pub fn file_reference(factor: &TableFactor) -> Option<FileRef> {
    let TableFactor::Table { name, args, .. } = factor else {
        return None;
    };
    let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
        return None;
    };
    let plain = |path: &str| FileRef {
        path: path.to_string(),
        delimiter: None,
        header: None,
        no_hive: false,
    };
    let Some(TableFunctionArgs {
        args,
        settings: None,
    }) = args
    else {
        // `FROM 'data.parquet'`
        return (args.is_none() && ident.quote_style == Some('\'')).then(|| plain(&ident.value));
    };
    let function = ident.value.to_ascii_lowercase();
    let csv = matches!(function.as_str(), "read_csv" | "read_csv_auto");
    if ident.quote_style.is_some()
        || !(csv
            || matches!(
                function.as_str(),
                "read_parquet" | "parquet_scan" | "read_json" | "read_json_auto"
            ))
    {
        return None;
    }
    let (first, rest) = args.split_first()?;
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) = first else {
        return None;
    };
    let Value::SingleQuotedString(path) = &v.value else {
        return None;
    };
    let mut file = plain(path);
    for arg in rest {
        let (FunctionArg::Named { name, arg, .. }
        | FunctionArg::ExprNamed {
            name: Expr::Identifier(name),
            arg,
            ..
        }) = arg
        else {
            return None;
        };
        let FunctionArgExpr::Expr(Expr::Value(v)) = arg else {
            return None;
        };
        match (csv, name.value.to_ascii_lowercase().as_str(), &v.value) {
            (true, "delim" | "sep" | "delimiter", Value::SingleQuotedString(d)) if d.len() == 1 => {
                file.delimiter = d.bytes().next();
            }
            (true, "header", Value::Boolean(h)) => file.header = Some(*h),
            (_, "hive_partitioning", Value::Boolean(false)) => file.no_hive = true,
            _ => return None,
        }
    }
    Some(file)
}

/// The name a file reference is planned as (`memory.__lakeq_files."<path>"`).
pub fn file_table_name(file: &FileRef) -> ObjectName {
    ObjectName::from(vec![
        Ident::new("memory"),
        Ident::new(FILES_SCHEMA),
        Ident::with_quote('"', file.key()),
    ])
}

/// Register a listing table for every file reference of `statement`.
pub async fn register_files(state: &SessionState, statement: &Statement) -> Result<()> {
    struct Collect(Vec<FileRef>);
    impl Visitor for Collect {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let Some(file) = file_reference(factor)
                && !self.0.contains(&file)
            {
                self.0.push(file);
            }
            ControlFlow::Continue(())
        }
    }
    let mut found = Collect(Vec::new());
    let _ = statement.visit(&mut found);
    if found.0.is_empty() {
        return Ok(());
    }
    let catalog = state
        .catalog_list()
        .catalog("memory")
        .ok_or_else(|| Error::Unsupported("reading files needs the memory catalog".into()))?;
    let schema = match catalog.schema(FILES_SCHEMA) {
        Some(s) => s,
        None => {
            let s = Arc::new(MemorySchemaProvider::new());
            catalog.register_schema(FILES_SCHEMA, Arc::clone(&s) as _)?;
            s
        }
    };
    for file in found.0 {
        let table = listing_table(state, &file).await?;
        // Files change between statements: infer afresh every time.
        schema.deregister_table(&file.key())?;
        schema.register_table(file.key(), table)?;
    }
    Ok(())
}

async fn listing_table(state: &SessionState, file: &FileRef) -> Result<Arc<dyn TableProvider>> {
    let path = file.path.as_str();
    let failed = |e: datafusion::error::DataFusionError| {
        // DataFusion reports an empty listing as an internal error.
        if matches!(&e, datafusion::error::DataFusionError::Internal(m) if m.contains("No files")) {
            return Error::NotFound {
                kind: "file",
                name: path.to_string(),
                hint: String::new(),
            };
        }
        Error::DataFile {
            path: path.to_string(),
            source: Box::new(e),
        }
    };
    // A local glob over plain folders (`dir/**/*.parquet`, `dir/*/*.csv`): DataFusion
    // matches a glob against the file name only (or across `/` when told to look
    // into subfolders), so the files are listed as DuckDB matches them (`*` within
    // a folder, `**` any depth) and read as a list. Hive folders (`k=v`) keep
    // DataFusion's listing, which reads their partition columns.
    let local = !path.contains("://") || path.starts_with("file://");
    let wild = path.find(['*', '?', '[']);
    let listed = match wild {
        Some(w) if local => {
            let pattern = path.to_string();
            let files = tokio::task::spawn_blocking(move || crate::storage::glob_files(&pattern))
                .await
                .map_err(|e| Error::Unsupported(format!("listing {path}: {e}")))?;
            let prefix = path.get(..w).unwrap_or_default();
            let hive = files.iter().any(|f| {
                f.get(prefix.len()..)
                    .is_some_and(|rest| rest.split('/').any(|seg| seg.contains('=')))
            });
            if files.is_empty() {
                return Err(Error::NotFound {
                    kind: "file",
                    name: path.to_string(),
                    hint: String::new(),
                });
            }
            (!hive || file.no_hive).then_some(files)
        }
        _ => None,
    };
    let mut config = match &listed {
        Some(files) => {
            let urls = files
                .iter()
                .map(ListingTableUrl::parse)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(failed)?;
            ListingTableConfig::new_with_multi_paths(urls)
        }
        None => ListingTableConfig::new(ListingTableUrl::parse(path).map_err(failed)?),
    }
    .infer_options(state)
    .await
    .map_err(failed)?;
    if (file.delimiter.is_some() || file.header.is_some())
        && let Some(mut options) = config.options.take()
    {
        let mut csv = datafusion::datasource::file_format::csv::CsvFormat::default();
        if let Some(d) = file.delimiter {
            csv = csv.with_delimiter(d);
        }
        if let Some(h) = file.header {
            csv = csv.with_has_header(h);
        }
        options.format = Arc::new(csv);
        config.options = Some(options);
    }
    if listed.is_none() && !file.no_hive {
        config = config
            .infer_partitions_from_path(state)
            .await
            .map_err(failed)?;
    }
    let config = config.infer_schema(state).await.map_err(failed)?;
    let partitions: Vec<String> = config
        .options
        .as_ref()
        .map(|o| {
            o.table_partition_cols
                .iter()
                .map(|(n, _)| n.clone())
                .collect()
        })
        .unwrap_or_default();
    let partition_types = if partitions.is_empty() {
        Vec::new()
    } else {
        hive_partition_types(state, &config, &partitions)
            .await
            .map_err(failed)?
    };
    let table: Arc<dyn TableProvider> = Arc::new(ListingTable::try_new(config).map_err(failed)?);
    if partitions.is_empty() {
        return Ok(table);
    }
    // A NULL partition value is the directory `c=__HIVE_DEFAULT_PARTITION__`
    // (DuckDB's and Hive's spelling): read it as NULL, as DuckDB does.
    use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
    let schema = table.schema();
    let columns = schema.fields().iter().map(|f| {
        let c = col(datafusion::common::Column::from_name(f.name()));
        if let Some(i) = partitions.iter().position(|p| p == f.name()) {
            let value =
                datafusion::functions::expr_fn::nullif(c, lit("__HIVE_DEFAULT_PARTITION__"));
            let data_type = partition_types
                .get(i)
                .cloned()
                .unwrap_or(datafusion::arrow::datatypes::DataType::Utf8);
            datafusion::logical_expr::cast(value, data_type).alias(f.name())
        } else {
            c
        }
    });
    let plan = LogicalPlanBuilder::scan(
        "lakeq_files",
        datafusion::datasource::provider_as_source(table),
        None,
    )
    .and_then(|b| b.project(columns))
    .and_then(|b| b.build())
    .map_err(failed)?;
    Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
        plan, None,
    )))
}

/// The types of Hive partition columns, as DuckDB's `hive_types_autocast`
/// gives them: `BIGINT` when every value (but the NULL folder) is an integer
/// written as DuckDB writes one (`7`, not `007`), else `DATE` when every value
/// is a `YYYY-MM-DD` date, else `VARCHAR`. (DataFusion reads them all as
/// dictionary-encoded text: `ORDER BY month` would sort `10` before `9`, and
/// a table created from the files would get no DuckLake type.) Timestamps stay
/// `VARCHAR`, where DuckDB makes an unencoded `2024-01-02 03:04:05` folder a
/// `TIMESTAMP` (DuckDB's own writer percent-encodes it, which it reads as text).
async fn hive_partition_types(
    state: &SessionState,
    config: &ListingTableConfig,
    partitions: &[String],
) -> datafusion::error::Result<Vec<datafusion::arrow::datatypes::DataType>> {
    use datafusion::arrow::datatypes::DataType;
    use futures::TryStreamExt;
    let extension = config
        .options
        .as_ref()
        .map(|o| o.file_extension.clone())
        .unwrap_or_default();
    let mut values: Vec<Vec<String>> = vec![Vec::new(); partitions.len()];
    for url in &config.table_paths {
        let store = state.runtime_env().object_store(url.object_store())?;
        let files: Vec<object_store::ObjectMeta> = url
            .list_all_files(state, store.as_ref(), &extension)
            .await?
            .try_collect()
            .await?;
        for file in files {
            for segment in file.location.as_ref().split('/') {
                let Some((key, value)) = segment.split_once('=') else {
                    continue;
                };
                if let Some(i) = partitions.iter().position(|p| p == key)
                    && value != "__HIVE_DEFAULT_PARTITION__"
                    && let Some(list) = values.get_mut(i)
                {
                    list.push(value.to_string());
                }
            }
        }
    }
    Ok(values
        .iter()
        .map(|list| {
            let integer = |v: &String| v.parse::<i64>().is_ok_and(|n| n.to_string() == *v);
            let date = |v: &String| {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .is_ok_and(|d| d.format("%Y-%m-%d").to_string() == *v)
            };
            if list.is_empty() {
                DataType::Utf8
            } else if list.iter().all(integer) {
                DataType::Int64
            } else if list.iter().all(date) {
                DataType::Date32
            } else {
                DataType::Utf8
            }
        })
        .collect())
}
