//! Scale-out: queries on one coordinator and several `lakeq worker` processes,
//! on [datafusion-distributed](https://github.com/datafusion-contrib/datafusion-distributed)
//! (why this engine and not Ballista: `DISTRIBUTED.md`).
//!
//! The coordinator is an ordinary [`crate::Session`] with
//! [`crate::SessionOptions::cluster`] set: it reads the DuckLake catalog and
//! plans the query as on one machine (files, statistics pruning, deleted rows,
//! inlined rows, column mapping all decided there), then datafusion-distributed
//! cuts the physical plan into stages, sends each task's stage to a worker over
//! gRPC (Arrow Flight), and streams the results back. Workers read only object
//! storage (the local data path, or S3 from the standard AWS environment); they
//! never open the catalog.
//!
//! Contract:
//! - writes run on the workers and commit here: `INSERT ... SELECT` and
//!   `CREATE TABLE AS` of a query that reads tables compute their rows and
//!   write their data files on the workers ([`mod@write`]), and the coordinator
//!   commits those files as one snapshot; `COPY` reads on the workers and
//!   writes here;
//! - `UPDATE`, `DELETE` and MERGE find their rows' positions on the workers
//!   (`rowid`, `snapshot_id` and `file_row_number` too: [`scan`]'s wire form of
//!   a positions scan) and write their delete files and commit here;
//! - a statement whose plan the workers cannot carry (the `filename` virtual
//!   column, `geometry` columns) is refused while it is planned and then runs
//!   on the coordinator alone, with a note ([`local_state`], [`ONE_MACHINE_ONLY`]);
//! - a stage runs in several tasks only where that cannot change the answer
//!   (see `one_task_where_partitions_matter`);
//! - the answer is the one-machine answer: every lakeq plan piece the plan
//!   serializer would drop is carried by [`codec::LakeCodec`] (see its table),
//!   and a piece it cannot carry is an error, never a different answer;
//! - a worker that dies mid-statement fails the attempt; the session runs the
//!   statement once more on the workers that still answer ([`WorkerSet`]), or
//!   fails with an error when none does. A failed attempt committed nothing, so
//!   the lake is unchanged and a retried write is still one snapshot.

pub mod codec;
pub mod profile;
pub mod scan;
pub mod write;

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion_distributed::{
    BroadcastExec, DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedExt,
    NetworkBoundaryExt, SessionStateBuilderExt, Worker, WorkerQueryContext, WorkerResolver,
    WorkerSessionBuilder,
};
use url::Url;

pub use codec::LakeCodec;
pub use profile::{ClusterModel, QueryProfile, StageProfile};
pub use scan::{LakeScanExec, WrapLakeScans};

use crate::error::{Error, Result};

/// Where a session's queries run when they are distributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterOptions {
    /// The workers, `host:port` (or `http://host:port`). Empty: one machine.
    pub workers: Vec<String>,
    /// Bytes of Parquet a scan task reads before another task is planned
    /// (datafusion-distributed's `file_scan_config_bytes_per_partition`).
    /// `None`: its default. A small value spreads small lakes over all workers.
    pub bytes_per_task: Option<usize>,
}

impl ClusterOptions {
    /// Whether queries are distributed.
    pub fn is_distributed(&self) -> bool {
        !self.workers.is_empty()
    }
}

/// The URLs of `workers` (`host:port` or `http://host:port`).
pub fn worker_urls(workers: &[String]) -> Result<Vec<Url>> {
    workers
        .iter()
        .map(|w| {
            let w = w.trim();
            let text = if w.contains("://") {
                w.to_string()
            } else {
                format!("http://{w}")
            };
            Url::parse(&text).map_err(|e| Error::InvalidLocation {
                location: w.to_string(),
                reason: format!("not a worker address (host:port): {e}"),
            })
        })
        .collect()
}

/// A session's workers (`host:port`) and which of them answered when last
/// probed: queries are planned for the live ones only.
///
/// A statement that fails on workers is run once more when a probe
/// ([`WorkerSet::probe`]) finds that a worker it may have used stopped
/// answering and others still answer: nothing of a failed statement was
/// committed, so running it again is safe. A worker found dead is left out
/// until the next probe finds it answering again.
#[derive(Debug)]
pub struct WorkerSet {
    all: Vec<String>,
    live: std::sync::RwLock<Vec<String>>,
}

impl WorkerSet {
    /// All of `workers` taken as live.
    pub fn new(workers: &[String]) -> Self {
        Self {
            all: workers.to_vec(),
            live: std::sync::RwLock::new(workers.to_vec()),
        }
    }

    /// The workers queries are planned for.
    pub fn live(&self) -> Vec<String> {
        match self.live.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Ask every worker whether it answers (at most `timeout` each, see
    /// [`answers_http2`]) and keep those that do as the live set. Returns the
    /// workers that were live before and do not answer now.
    pub fn probe(&self, timeout: std::time::Duration) -> Vec<String> {
        let answers = |worker: &String| -> bool {
            let text = worker.trim();
            let text = text.split_once("://").map_or(text, |(_, rest)| rest);
            let text = text.trim_end_matches('/');
            let Ok(addresses) = std::net::ToSocketAddrs::to_socket_addrs(text) else {
                return false;
            };
            addresses.into_iter().any(|a| answers_http2(&a, timeout))
        };
        let now: Vec<String> = self.all.iter().filter(|w| answers(w)).cloned().collect();
        let before = self.live();
        let lost = before
            .iter()
            .filter(|w| !now.contains(w))
            .cloned()
            .collect();
        match self.live.write() {
            Ok(mut l) => *l = now,
            Err(p) => *p.into_inner() = now,
        }
        lost
    }
}

/// Whether an HTTP/2 server (a worker's gRPC endpoint) answers at `address`
/// within `timeout`: it accepts a connection, takes the client preface and an
/// empty SETTINGS frame, and sends its own SETTINGS frame, as every HTTP/2
/// server must first. A bare connect is not enough: the kernel still completes
/// connections to a process that is being killed.
pub fn answers_http2(address: &SocketAddr, timeout: std::time::Duration) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(address, timeout) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err()
        || stream.set_write_timeout(Some(timeout)).is_err()
    {
        return false;
    }
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    if stream.write_all(&hello).is_err() {
        return false;
    }
    let mut frame_header = [0u8; 9];
    stream.read_exact(&mut frame_header).is_ok() && frame_header[3] == 4
}

/// The live workers of a [`WorkerSet`], parsed when a query asks for them.
#[derive(Debug, Clone)]
struct LiveWorkers(Arc<WorkerSet>);

impl WorkerResolver for LiveWorkers {
    fn get_urls(&self) -> std::result::Result<Vec<Url>, DataFusionError> {
        let live = self.0.live();
        if live.is_empty() {
            return Err(DataFusionError::Execution(format!(
                "lakeq --workers: none of the workers {} answers",
                self.0.all.join(",")
            )));
        }
        worker_urls(&live).map_err(|e| DataFusionError::External(Box::new(e)))
    }
}

/// `state` as a coordinator of `workers` (with `cluster`'s options): physical
/// plans are distributed over the live workers, lakeq's nodes are encoded with
/// [`LakeCodec`], and `INSERT`/`CREATE TABLE AS` write their files on the
/// workers ([`mod@write`]). (Worker addresses are checked when a query is planned;
/// [`worker_urls`] checks them before.)
pub fn coordinator_state(
    state: SessionState,
    cluster: &ClusterOptions,
    workers: &Arc<WorkerSet>,
) -> SessionState {
    let mut builder = SessionStateBuilder::new_from_existing(state)
        .with_query_planner(Arc::new(write::LakeQueryPlanner))
        .with_physical_optimizer_rule(Arc::new(WrapLakeScans))
        .with_distributed_desired_task_count_handler(one_task_where_partitions_matter)
        .with_distributed_worker_resolver(LiveWorkers(Arc::clone(workers)))
        .with_distributed_user_codec(LakeCodec::default())
        .with_distributed_planner();
    if let Some(bytes) = cluster.bytes_per_task {
        // Refuses only 0, which `max(1)` rules out.
        let _ = builder.set_distributed_file_scan_config_bytes_per_partition(bytes.max(1));
    }
    builder.build()
}

/// What the error of a plan the workers cannot carry says (a `geometry`
/// column, a function holding the coordinator's state such as `filename`): such a
/// statement is refused while it is planned, before anything runs, and the
/// session runs it on the coordinator alone instead ([`local_state`]).
pub const ONE_MACHINE_ONLY: &str = "runs on one machine only";

/// Whether `e` is the refusal of a plan the workers cannot carry.
pub fn needs_one_machine(e: &Error) -> bool {
    e.to_string().contains(ONE_MACHINE_ONLY)
}

/// A coordinator's `state` planning for this process alone: the same
/// catalogs, functions, settings and runtime, DataFusion's planner (with
/// lakeq's write node) instead of the distributed one, no scan wrapping.
pub fn local_state(state: SessionState) -> SessionState {
    use datafusion::physical_optimizer::PhysicalOptimizerRule;
    let wrap = WrapLakeScans.name().to_string();
    let rules = state
        .physical_optimizers()
        .iter()
        .filter(|r| r.name() != wrap)
        .cloned()
        .collect();
    SessionStateBuilder::new_from_existing(state)
        .with_query_planner(Arc::new(write::LakeQueryPlanner))
        .with_physical_optimizer_rules(rules)
        .build()
}

/// A stage of a distributed plan runs as several tasks, each on a share of the
/// stage's input files. That is right only for operators that work partition by
/// partition. An operator that needs its whole input in one partition, or all
/// rows of a key together (a window's `PARTITION BY`, a global sort or limit, a
/// single-mode aggregate, a collect-left join's build side), gets that from a
/// repartition or merge below it (which becomes a network boundary) or, in a
/// plan over few small files, simply because its input is one partition. In
/// the second case datafusion-distributed still splits the files among tasks,
/// and each task's operator sees a share: `row_number() OVER (PARTITION BY k)`
/// numbered each file's rows from 1 and a deduplicating view returned every row
/// twice. Such an operator caps its stage at one task (this handler answers
/// before the engine's own).
///
/// A child already hash-partitioned satisfies a hash requirement without being
/// an exchange itself: lakeq's scans never declare hash partitioning, so it
/// comes from a hash exchange further down (a join over a join over shuffles
/// keeps the shuffles' partitioning). Capping those joins sent every large
/// join of TPC-H q17, q18 and q21 to the coordinator's head stage.
///
/// A small scan read in insertion order (files marked `InsertionOrder`), as
/// DuckDB returns rows without ORDER BY, asks for one task.
fn one_task_where_partitions_matter(
    ev: DesiredTaskCountEvent<'_>,
) -> Option<datafusion::common::Result<DesiredTaskCountEventResponse>> {
    use datafusion::physical_plan::{Distribution, ExecutionPlanProperties, Partitioning};
    let plan = ev.plan;
    if reads_in_insertion_order(plan) {
        // A small scan read in insertion order, as DuckDB returns its rows: in
        // several tasks, each would return a share, in any order. One task is
        // desired, not a maximum: a stage that also reads a large input (a
        // union, a join) keeps that input's tasks (and has no order to keep).
        // (Inlined rows are a leaf the engine runs in one task anyway.)
        return Some(Ok(DesiredTaskCountEventResponse::desired(1)));
    }
    let requirements = plan.input_distribution_requirements();
    let needs_one = plan.children().iter().enumerate().any(|(i, child)| {
        match requirements.child_distribution(i) {
            None | Some(Distribution::UnspecifiedDistribution) => false,
            Some(Distribution::SinglePartition) => !is_exchange(child),
            // Key (hash) partitioning.
            Some(_) => {
                !is_exchange(child)
                    && !matches!(child.output_partitioning(), Partitioning::Hash(..))
            }
        }
    });
    needs_one.then(|| Ok(DesiredTaskCountEventResponse::maximum(1)))
}

/// Whether `plan` is a lakeq scan read in insertion order (its files marked
/// [`crate::provider::table::InsertionOrder`]).
fn reads_in_insertion_order(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> bool {
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    plan.downcast_ref::<DataSourceExec>()
        .and_then(|d| d.data_source().downcast_ref::<FileScanConfig>())
        .is_some_and(|config| {
            config.file_groups.iter().flat_map(|g| g.iter()).any(|f| {
                f.extensions
                    .get_arc::<crate::provider::table::InsertionOrder>()
                    .is_some()
            })
        })
}

/// Whether `plan` gathers or redistributes its input across partitions, so
/// that the distributed planner puts a network boundary there: a hash
/// repartition (a shuffle), a merge into one partition (a coalesce), a
/// broadcast, or a boundary already.
fn is_exchange(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> bool {
    use datafusion::physical_plan::Partitioning;
    use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
    use datafusion::physical_plan::repartition::RepartitionExec;
    use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
    if let Some(repartition) = plan.downcast_ref::<RepartitionExec>() {
        return matches!(repartition.partitioning(), Partitioning::Hash(..));
    }
    plan.is::<CoalescePartitionsExec>()
        || plan.is::<SortPreservingMergeExec>()
        || plan.is::<BroadcastExec>()
        || plan.as_ref().is_network_boundary()
}

/// Object stores of a worker: those registered, else lakeq's store for the URL
/// (the local file system, or S3 from the standard AWS environment).
#[derive(Debug, Default)]
struct WorkerStores {
    inner: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for WorkerStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn object_store::ObjectStore>,
    ) -> Option<Arc<dyn object_store::ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(
        &self,
        url: &Url,
    ) -> datafusion::common::Result<Arc<dyn object_store::ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(
        &self,
        url: &Url,
    ) -> datafusion::common::Result<Arc<dyn object_store::ObjectStore>> {
        if let Ok(store) = self.inner.get_store(url) {
            return Ok(store);
        }
        let store = crate::storage::object_store_for(url.as_str())?;
        self.inner.register_store(url, Arc::clone(&store));
        Ok(store)
    }
}

/// The session of each task a worker runs: lakeq's functions and codec.
#[derive(Debug, Clone)]
struct LakeWorkerSession {
    codec: LakeCodec,
}

#[async_trait]
impl WorkerSessionBuilder for LakeWorkerSession {
    async fn build_session_state(
        &self,
        ctx: WorkerQueryContext,
    ) -> std::result::Result<SessionState, DataFusionError> {
        // lakeq's DuckDB functions, as a lakeq session has them, plus the ones its
        // planner makes without registering.
        let lakeq = crate::Session::new();
        let reference = lakeq.context().state();
        let mut scalars: Vec<_> = reference.scalar_functions().values().cloned().collect();
        scalars.extend(
            crate::dialect::semantics::checked_arithmetic_functions()
                .into_iter()
                .chain([crate::provider::table::file_row_number_function()])
                .map(Arc::new),
        );
        let mut builder = ctx.builder;
        // As a lakeq session: UTC (the coordinator's options do not travel).
        if let Some(config) = builder.config() {
            config.options_mut().execution.time_zone = Some("UTC".into());
        }
        Ok(builder
            .with_scalar_functions(scalars)
            .with_aggregate_functions(reference.aggregate_functions().values().cloned().collect())
            .with_window_functions(reference.window_functions().values().cloned().collect())
            .with_distributed_user_codec(self.codec.clone())
            .build())
    }
}

/// Run a worker on `listen` until `shutdown` completes: it executes the plan
/// stages coordinators send it, reading data files from object storage.
/// `log`: print a line to stderr for each scan it is given.
pub async fn serve_worker(
    listen: SocketAddr,
    log: bool,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(WorkerStores::default()))
        .build_arc()?;
    let codec = if log {
        LakeCodec::logging(format!("lakeq worker {listen}"))
    } else {
        LakeCodec::default()
    };
    let worker =
        Worker::from_session_builder(LakeWorkerSession { codec }).with_runtime_env(runtime);
    tonic::transport::Server::builder()
        .add_service(worker.into_worker_server())
        .serve_with_shutdown(listen, shutdown)
        .await
        .map_err(|e| {
            Error::Io(std::io::Error::other(format!(
                "lakeq worker on {listen}: {e}"
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A port that accepts connections but does not speak HTTP/2 (a process
    /// being killed, or another service) does not answer; a closed one neither.
    #[test]
    fn a_worker_answers_only_when_it_speaks_http2() -> std::io::Result<()> {
        let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = silent.local_addr()?;
        assert!(!answers_http2(&address, Duration::from_millis(200)));
        drop(silent);
        assert!(!answers_http2(&address, Duration::from_millis(200)));
        let set = WorkerSet::new(&[address.to_string()]);
        assert_eq!(
            set.probe(Duration::from_millis(200)),
            vec![address.to_string()]
        );
        assert!(set.live().is_empty());
        Ok(())
    }

    /// The physical plan of `sql` over three 4-partition tables `a`, `b`, `c`
    /// (columns `k`, `v`), hash joins partitioned, and the nodes of `name`.
    async fn nodes_named(
        sql: &str,
        name: &str,
    ) -> datafusion::common::Result<(
        Vec<Arc<dyn datafusion::physical_plan::ExecutionPlan>>,
        datafusion::prelude::SessionConfig,
    )> {
        use datafusion::arrow::array::Int64Array;
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::arrow::record_batch::RecordBatch;
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        use datafusion::datasource::MemTable;
        use datafusion::prelude::{SessionConfig, SessionContext};
        let config = SessionConfig::new()
            .with_target_partitions(4)
            .set_usize(
                "datafusion.optimizer.hash_join_single_partition_threshold",
                0,
            )
            .set_usize(
                "datafusion.optimizer.hash_join_single_partition_threshold_rows",
                0,
            );
        let ctx = SessionContext::new_with_config(config.clone());
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let partition = |i: i64| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(vec![i, i + 4])),
                    Arc::new(Int64Array::from(vec![1, 2])),
                ],
            )
            .map(|b| vec![b])
        };
        let partitions = (0..4).map(partition).collect::<Result<Vec<_>, _>>()?;
        for table in ["a", "b", "c"] {
            let mem = MemTable::try_new(Arc::clone(&schema), partitions.clone())?;
            ctx.register_table(table, Arc::new(mem))?;
        }
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        let mut found = Vec::new();
        plan.apply(|node| {
            if node.name() == name {
                found.push(Arc::clone(node));
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok((found, config))
    }

    fn capped(
        plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        session_config: &datafusion::prelude::SessionConfig,
    ) -> bool {
        one_task_where_partitions_matter(DesiredTaskCountEvent {
            plan,
            session_config,
        })
        .is_some()
    }

    /// A join over a join over hash repartitions needs no single task: its input
    /// is hash-partitioned by the exchanges below (TPC-H q17, q18, q21 ran their
    /// big joins on the coordinator while it did).
    #[tokio::test]
    async fn a_join_over_hash_partitioned_joins_runs_in_several_tasks()
    -> datafusion::common::Result<()> {
        let (joins, config) = nodes_named(
            "SELECT a.v, b.v, c.v FROM a JOIN b ON a.k = b.k JOIN c ON b.k = c.k",
            "HashJoinExec",
        )
        .await?;
        assert_eq!(joins.len(), 2);
        for join in &joins {
            assert!(!capped(join, &config), "capped: {join:?}");
        }
        Ok(())
    }

    /// A window over one partition that no exchange made (a scan of few small
    /// files) keeps its stage at one task.
    #[tokio::test]
    async fn a_window_over_an_unpartitioned_input_stays_one_task() -> datafusion::common::Result<()>
    {
        let (windows, config) = nodes_named(
            "SELECT k, row_number() OVER (PARTITION BY v ORDER BY k) FROM \
             (SELECT * FROM a LIMIT 100)",
            "BoundedWindowAggExec",
        )
        .await?;
        assert_eq!(windows.len(), 1);
        assert!(capped(&windows[0], &config));
        Ok(())
    }

    /// A small scan read in insertion order asks for one task; a scan of the
    /// same files not marked so is left to the engine.
    #[test]
    fn an_in_order_scan_asks_for_one_task() -> datafusion::common::Result<()> {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::datasource::listing::PartitionedFile;
        use datafusion::datasource::physical_plan::{
            FileGroup, FileScanConfigBuilder, ParquetSource,
        };
        use datafusion::datasource::source::DataSourceExec;
        use datafusion::execution::object_store::ObjectStoreUrl;
        let scan = |in_order: bool| {
            let files: Vec<PartitionedFile> = (0..3)
                .map(|i| {
                    let mut file = PartitionedFile::new(format!("t/{i}.parquet"), 100);
                    if in_order {
                        file.extensions
                            .insert_arc(Arc::new(crate::provider::table::InsertionOrder));
                    }
                    file
                })
                .collect();
            let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
            let config = FileScanConfigBuilder::new(
                ObjectStoreUrl::local_filesystem(),
                Arc::new(ParquetSource::new(schema)),
            )
            .with_file_groups(vec![FileGroup::new(files)])
            .build();
            DataSourceExec::from_data_source(config)
                as Arc<dyn datafusion::physical_plan::ExecutionPlan>
        };
        let config = datafusion::prelude::SessionConfig::new();
        assert!(capped(&scan(true), &config));
        assert!(!capped(&scan(false), &config));
        Ok(())
    }
}
