//! Retention: raw points older than `raw_retention_days` and hourly aggregates older than
//! `hourly_retention_days` are deleted in small transactions (`prune_batch` rows), with a
//! short pause between them so that SQLite's single writer slot goes to ingest in
//! between. Nothing the time-series sink has not yet received is deleted (its spool is
//! the stored points above its cursor; `spool_max_points` bounds how long that holds).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::model::{DAY_MS, RAW_MEASUREMENTS};
use super::{HistoryConfig, HistoryError, HistoryMetrics, Shared, TableLabels};
use crate::clock::SharedClock;
use crate::store::Store;

/// Pause between two pruning transactions: a throttle that leaves the store's write slot
/// to ingest, not a synchronisation.
const PAUSE: Duration = Duration::from_millis(5);

/// What a pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Raw points deleted.
    pub raw_deleted: u64,
    /// Hourly aggregates deleted.
    pub hourly_deleted: u64,
    /// Transactions used.
    pub batches: u32,
    /// Raw points older than `raw_before_ms` are past retention.
    pub raw_before_ms: i64,
    /// Hourly aggregates older than `hourly_before_ms` are past retention.
    pub hourly_before_ms: i64,
}

/// Request for a pass now, with where to send the outcome.
pub(crate) type PruneRequest = oneshot::Sender<Result<PruneReport, HistoryError>>;

/// The pruning task.
pub(crate) struct Pruner {
    store: Store,
    cfg: Arc<HistoryConfig>,
    clock: SharedClock,
    metrics: Arc<HistoryMetrics>,
    shared: Arc<Shared>,
}

impl Pruner {
    pub fn new(
        store: Store,
        cfg: Arc<HistoryConfig>,
        clock: SharedClock,
        metrics: Arc<HistoryMetrics>,
        shared: Arc<Shared>,
    ) -> Self {
        Pruner {
            store,
            cfg,
            clock,
            metrics,
            shared,
        }
    }

    /// Runs a pass every `prune_interval_s`, and whenever asked.
    pub async fn run(self, mut requests: mpsc::Receiver<PruneRequest>, cancel: CancellationToken) {
        let interval = Duration::from_secs(self.cfg.prune_interval_s.max(1));
        let mut next = tokio::time::Instant::now() + interval;
        loop {
            let reply = tokio::select! {
                _ = cancel.cancelled() => break,
                r = requests.recv() => match r { Some(r) => Some(r), None => break },
                _ = tokio::time::sleep_until(next) => None,
            };
            let outcome = self.pass(&cancel).await;
            match &outcome {
                Ok(r) if r.raw_deleted + r.hourly_deleted > 0 => info!(
                    raw = r.raw_deleted,
                    hourly = r.hourly_deleted,
                    batches = r.batches,
                    "history pruned past retention"
                ),
                Ok(_) => {}
                Err(e) => error!(error = %e, "history pruning failed; next pass will retry"),
            }
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            } else {
                next = tokio::time::Instant::now() + interval;
            }
        }
    }

    /// One full pass, in batches.
    pub async fn pass(&self, cancel: &CancellationToken) -> Result<PruneReport, HistoryError> {
        let now = self.clock.now_ms();
        let batch = i64::from(self.cfg.prune_batch.max(1));
        let mut report = PruneReport {
            raw_before_ms: now - i64::from(self.cfg.raw_retention_days) * DAY_MS,
            hourly_before_ms: now - i64::from(self.cfg.hourly_retention_days) * DAY_MS,
            ..PruneReport::default()
        };
        for m in RAW_MEASUREMENTS {
            loop {
                if cancel.is_cancelled() {
                    return Ok(report);
                }
                let protect = self.shared.prune_protect();
                let n = self
                    .store
                    .prune_points(m, report.raw_before_ms, protect, batch)
                    .await?;
                report.raw_deleted += n;
                report.batches += 1;
                self.metrics
                    .rows_pruned
                    .get_or_create(&TableLabels {
                        table: "raw".into(),
                    })
                    .inc_by(n);
                if (n as i64) < batch {
                    break;
                }
                tokio::time::sleep(PAUSE).await;
            }
        }
        loop {
            if cancel.is_cancelled() {
                return Ok(report);
            }
            let keys = self
                .store
                .hourly_past(report.hourly_before_ms, self.shared.prune_protect(), batch)
                .await?;
            if keys.is_empty() {
                break;
            }
            self.store.delete_hourly(&keys).await?;
            report.hourly_deleted += keys.len() as u64;
            report.batches += 1;
            self.metrics
                .rows_pruned
                .get_or_create(&TableLabels {
                    table: "hourly".into(),
                })
                .inc_by(keys.len() as u64);
            if (keys.len() as i64) < batch {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
        Ok(report)
    }
}
