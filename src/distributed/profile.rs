//! Where a distributed query spends its time, per stage and task, and what
//! that predicts for more machines.
//!
//! [`QueryProfile::of_executed`] reads the metrics datafusion-distributed
//! collects from every task (its `collect_metrics`, on by default) after a
//! plan ran: for each stage (stage 0 is the coordinator's head stage) the
//! compute time of every task — the operators' `elapsed_compute` plus the
//! Parquet decoding time of scans — and the bytes that crossed each stage
//! boundary. [`QueryProfile::modeled`] turns that into an estimate of the
//! query's time on `N` machines; `DISTRIBUTED.md` gives the model's
//! assumptions and the TPC-H figures it gave.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;
use datafusion_distributed::{
    DISTRIBUTED_DATAFUSION_TASK_ID_LABEL, DistributedExec, DistributedMetricsFormat,
    rewrite_distributed_plan_with_metrics,
};

use crate::error::{Error, Result};

/// The measured work of one stage of a distributed plan.
#[derive(Debug, Clone, PartialEq)]
pub struct StageProfile {
    /// Stages in the order the plan is walked from the root; 0 is the head
    /// stage, which runs on the coordinator.
    pub stage: usize,
    /// Compute time of each task of the stage (index = task number).
    pub task_compute: Vec<Duration>,
    /// Bytes this stage received from the stages below it over the network.
    pub bytes_received: u64,
}

impl StageProfile {
    /// Compute time of all the stage's tasks together.
    pub fn total_compute(&self) -> Duration {
        self.task_compute.iter().sum()
    }
}

/// The per-stage work of one executed distributed query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryProfile {
    /// Stage 0 (the coordinator's) first.
    pub stages: Vec<StageProfile>,
}

/// The machines a [`QueryProfile`] is modeled on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterModel {
    /// Worker machines.
    pub machines: usize,
    /// Cores per machine (the coordinator's too).
    pub cores: usize,
    /// Network bytes per second between machines.
    pub bytes_per_second: f64,
}

impl QueryProfile {
    /// The profile of `executed`, a plan that ran to completion (its streams
    /// drained). `None` when the plan is not distributed (it ran in this
    /// process alone) or its metrics were not collected.
    pub async fn of_executed(executed: &Arc<dyn ExecutionPlan>) -> Result<Option<Self>> {
        let Some(distributed) = executed.downcast_ref::<DistributedExec>() else {
            return Ok(None);
        };
        distributed.wait_for_metrics().await;
        let with_metrics = rewrite_distributed_plan_with_metrics(
            Arc::clone(executed),
            DistributedMetricsFormat::PerTask,
        )
        .await
        .map_err(Error::from)?;
        let mut walk = Walk::default();
        walk.stage(with_metrics.as_ref(), 0);
        if walk.compute.is_empty() {
            return Ok(None);
        }
        let stages = (0..walk.next_stage)
            .map(|stage| {
                let tasks = walk.compute.get(&stage).cloned().unwrap_or_default();
                let count = tasks.keys().next_back().map_or(0, |last| last + 1);
                let mut task_compute = vec![Duration::ZERO; count];
                for (task, nanos) in tasks {
                    if let Some(slot) = task_compute.get_mut(task) {
                        *slot = Duration::from_nanos(nanos);
                    }
                }
                StageProfile {
                    stage,
                    task_compute,
                    bytes_received: walk.bytes.get(&stage).copied().unwrap_or(0),
                }
            })
            .collect();
        Ok(Some(Self { stages }))
    }

    /// Compute time of every task of every stage.
    pub fn total_compute(&self) -> Duration {
        self.stages.iter().map(StageProfile::total_compute).sum()
    }

    /// The modeled time of the query on `cluster`:
    ///
    /// - the head stage, and every stage the planner gave one task, runs on
    ///   one machine: its compute over `cores`;
    /// - a stage that ran as several tasks (a scan split by files, a shuffle
    ///   split by hash) is cut into one task per machine, as the planner cuts
    ///   a large enough input for more workers, and keeps the imbalance
    ///   measured between its tasks: `total / (machines × cores) × longest /
    ///   mean`;
    /// - every byte that crossed a stage boundary crosses the network once
    ///   (on one machine, nothing does: the query runs in one process);
    /// - stages add up (no overlap between a stage and the one it feeds).
    ///
    /// With `machines = 1` this is the query's work on one machine of `cores`
    /// cores. The task times are measured on whatever machine ran them, so
    /// the times scale with it; the ratios are the model's point.
    pub fn modeled(&self, cluster: ClusterModel) -> Duration {
        let machines = cluster.machines.max(1);
        let cores = cluster.cores.max(1) as f64;
        let mut seconds = 0.0;
        for stage in &self.stages {
            let total = stage.total_compute().as_secs_f64();
            let tasks = stage.task_compute.len();
            seconds += if stage.stage == 0 || tasks <= 1 || machines == 1 {
                total / cores
            } else {
                let longest = stage
                    .task_compute
                    .iter()
                    .max()
                    .copied()
                    .unwrap_or_default()
                    .as_secs_f64();
                let mean = total / tasks as f64;
                let imbalance = if mean > 0.0 { longest / mean } else { 1.0 };
                total / (machines as f64 * cores) * imbalance
            };
            if machines > 1
                && cluster.bytes_per_second.is_finite()
                && cluster.bytes_per_second > 0.0
            {
                seconds += stage.bytes_received as f64 / cluster.bytes_per_second;
            }
        }
        Duration::from_secs_f64(seconds)
    }

    /// The modeled speed-up of `cluster` over one machine of the same cores:
    /// `modeled(1 machine) / modeled(cluster)`.
    pub fn speed_up(&self, cluster: ClusterModel) -> f64 {
        let one = self
            .modeled(ClusterModel {
                machines: 1,
                ..cluster
            })
            .as_secs_f64();
        let many = self.modeled(cluster).as_secs_f64();
        if many > 0.0 { one / many } else { 1.0 }
    }
}

/// The walk over a plan rewritten with per-task metrics.
#[derive(Default)]
struct Walk {
    /// stage → task → compute nanoseconds.
    compute: BTreeMap<usize, BTreeMap<usize, u64>>,
    /// stage → bytes received over the network.
    bytes: BTreeMap<usize, u64>,
    next_stage: usize,
}

impl Walk {
    /// Account `node` and its subtree to `stage`; a network boundary's
    /// children open the next stage.
    fn stage(&mut self, node: &dyn ExecutionPlan, stage: usize) {
        self.next_stage = self.next_stage.max(stage + 1);
        if let Some(metrics) = node.metrics() {
            for metric in metrics.iter() {
                let task = metric
                    .labels()
                    .iter()
                    .find(|l| l.name() == DISTRIBUTED_DATAFUSION_TASK_ID_LABEL)
                    .and_then(|l| l.value().parse::<usize>().ok())
                    .unwrap_or(0);
                let nanos = match metric.value() {
                    MetricValue::ElapsedCompute(time) => time.value() as u64,
                    // Parquet's decoding (decompression + decoding into Arrow), outside
                    // elapsed_compute in DataFusion's file scans.
                    MetricValue::Time { name, time } if name == "time_elapsed_processing" => {
                        time.value() as u64
                    }
                    MetricValue::Custom { name, value } if name == "bytes_transferred" => {
                        *self.bytes.entry(stage).or_default() += value.as_usize() as u64;
                        continue;
                    }
                    _ => continue,
                };
                *self
                    .compute
                    .entry(stage)
                    .or_default()
                    .entry(task)
                    .or_default() += nanos;
            }
        }
        let boundary = matches!(
            node.name(),
            "NetworkShuffleExec" | "NetworkCoalesceExec" | "NetworkBroadcastExec"
        );
        for child in node.children() {
            let child_stage = if boundary { self.next_stage } else { stage };
            self.stage(child.as_ref(), child_stage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn profile() -> QueryProfile {
        QueryProfile {
            stages: vec![
                StageProfile {
                    stage: 0,
                    task_compute: vec![ms(100)],
                    bytes_received: 1_000_000,
                },
                StageProfile {
                    stage: 1,
                    task_compute: vec![ms(400), ms(400), ms(400), ms(400)],
                    bytes_received: 0,
                },
            ],
        }
    }

    fn cluster(machines: usize, bytes_per_second: f64) -> ClusterModel {
        ClusterModel {
            machines,
            cores: 2,
            bytes_per_second,
        }
    }

    #[test]
    fn one_machine_is_the_work_over_its_cores() {
        let p = profile();
        assert_eq!(p.total_compute(), ms(1700));
        assert_eq!(p.modeled(cluster(1, f64::INFINITY)), ms(850));
    }

    #[test]
    fn parallel_stages_split_over_machines_the_head_stage_does_not() {
        let p = profile();
        // Head 100 ms / 2 cores + 1600 ms / (4 machines x 2 cores).
        assert_eq!(p.modeled(cluster(4, f64::INFINITY)), ms(250));
        assert!((p.speed_up(cluster(4, f64::INFINITY)) - 3.4).abs() < 1e-9);
        // More machines than measured tasks: the stage is cut further.
        assert_eq!(p.modeled(cluster(16, f64::INFINITY)), ms(100));
    }

    #[test]
    fn the_measured_imbalance_stays() {
        let p = QueryProfile {
            stages: vec![StageProfile {
                stage: 1,
                task_compute: vec![ms(600), ms(200)],
                bytes_received: 0,
            }],
        };
        // 800 ms over 2 machines x 2 cores, the longest task 1.5x the mean.
        assert_eq!(p.modeled(cluster(2, f64::INFINITY)), ms(300));
        assert_eq!(p.modeled(cluster(1, f64::INFINITY)), ms(400));
    }

    #[test]
    fn bytes_cross_the_network_once_and_not_within_one_machine() {
        let p = profile();
        // 1 MB at 10 MB/s adds 100 ms.
        assert_eq!(p.modeled(cluster(4, 10_000_000.0)), ms(350));
        assert_eq!(p.modeled(cluster(1, 10_000_000.0)), ms(850));
    }

    #[test]
    fn a_single_task_stage_stays_on_one_machine() {
        let p = QueryProfile {
            stages: vec![StageProfile {
                stage: 1,
                task_compute: vec![ms(300)],
                bytes_received: 0,
            }],
        };
        assert_eq!(p.modeled(cluster(8, f64::INFINITY)), ms(150));
        assert!((p.speed_up(cluster(8, f64::INFINITY)) - 1.0).abs() < 1e-9);
    }
}
