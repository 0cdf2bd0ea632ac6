//! The durable spool of the time-series sink. The backlog is not a copy: it is every
//! stored point (`history_points.point_id`) and hourly aggregate (`history_hourly.version`)
//! above the sink's cursor in `history_cursor`, which moves only after the server
//! accepted a batch. So an outage of the server, or a crash of the gateway, loses
//! nothing, and the backlog is sent again in id order when the server is back. A batch
//! whose outcome is unknown (a timeout) is sent again with the same timestamps: the
//! server overwrites by series and time, so nothing is doubled.
//!
//! The backlog is bounded (`spool_max_points`): beyond it the oldest are given up for the
//! server (they stay in the embedded history) and counted. Above `spool_warn_points` the
//! alert flag is raised (metric `anxin_history_spool_alert`, a warning log, and
//! [`super::SinkStatus::alert`] for the technician workflow).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::cursor;
use super::model::ACTIVITY;
use super::sink::{HistorySink, SinkError, SinkPoint};
use super::{
    Activity, DropReason, HistoryError, HistoryMetrics, InfluxConfig, Shared, SinkErrorLabels,
};
use crate::clock::SharedClock;
use crate::store::Store;

/// One stored row waiting for the server.
#[derive(Debug, Clone, PartialEq)]
struct Queued {
    id: i64,
    point: SinkPoint,
}

/// The spool and delivery loop of one sink.
pub(crate) struct Spool<S> {
    store: Store,
    sink: S,
    batch: i64,
    flush: Duration,
    retry_min: Duration,
    retry_max: Duration,
    max: i64,
    warn_at: i64,
    clock: SharedClock,
    metrics: Arc<HistoryMetrics>,
    shared: Arc<Shared>,
    cursor: i64,
    overflowed: bool,
    failures: u64,
}

impl<S: HistorySink> Spool<S> {
    /// Loads the sink cursor; a sink enabled for the first time starts at `high_water`
    /// (what is already stored is not sent).
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        store: Store,
        sink: S,
        cfg: &InfluxConfig,
        clock: SharedClock,
        metrics: Arc<HistoryMetrics>,
        shared: Arc<Shared>,
        high_water: i64,
    ) -> Result<Spool<S>, HistoryError> {
        let cursor = match store.history_cursor(cursor::SINK).await? {
            Some(c) => c,
            None => {
                store.set_history_cursor(cursor::SINK, high_water).await?;
                high_water
            }
        };
        if let Some(s) = &shared.sink {
            s.cursor.store(cursor, Ordering::SeqCst);
        }
        shared.sink_cursor.send_replace(cursor);
        Ok(Spool {
            store,
            sink,
            batch: i64::from(cfg.batch_size.max(1)),
            flush: Duration::from_millis(cfg.flush_interval_ms),
            retry_min: Duration::from_millis(cfg.retry_min_ms.max(1)),
            retry_max: Duration::from_millis(cfg.retry_max_ms.max(cfg.retry_min_ms).max(1)),
            max: cfg.spool_max_points.min(i64::MAX as u64) as i64,
            warn_at: cfg.spool_warn_points.min(i64::MAX as u64) as i64,
            clock,
            metrics,
            shared,
            cursor,
            overflowed: false,
            failures: 0,
        })
    }

    /// Delivers until `cancel`.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut hw = self.shared.high_water.subscribe();
        let mut backoff = self.retry_min;
        let mut last_send: Option<Instant> = None;
        loop {
            let high = *hw.borrow_and_update();
            if let Err(e) = self.bound(high).await {
                error!(error = %e, "history spool: cannot record the given-up backlog");
            }
            let backlog = high - self.cursor;
            self.report(backlog);
            if backlog <= 0 {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = hw.changed() => if r.is_err() { cancel.cancelled().await; return },
                }
                continue;
            }
            if backlog < self.batch
                && let Some(t) = last_send
                && t.elapsed() < self.flush
            {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until((t + self.flush).into()) => {}
                    r = hw.changed() => if r.is_err() { cancel.cancelled().await; return },
                }
                continue;
            }
            match self.deliver(high).await {
                Ok(()) => {
                    if self.failures > 0 {
                        info!(
                            failures = self.failures,
                            backlog = high - self.cursor,
                            "time-series server accepts points again; sending the backlog"
                        );
                    }
                    self.failures = 0;
                    backoff = self.retry_min;
                    last_send = Some(Instant::now());
                }
                Err(e) => {
                    self.failed(&e, backlog);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.retry_max);
                }
            }
        }
    }

    fn failed(&mut self, e: &HistoryError, backlog: i64) {
        self.failures += 1;
        if let HistoryError::Sink(se) = e {
            let reason = se.reason();
            self.metrics
                .sink_errors
                .get_or_create(&SinkErrorLabels { reason })
                .inc();
            if let Some(s) = &self.shared.sink
                && let Ok(mut l) = s.last_error.lock()
            {
                *l = Some((reason, self.clock.now_ms()));
            }
            if self.failures <= 3 || self.failures.is_power_of_two() {
                warn!(error = %se, reason = reason.as_str(), backlog, failures = self.failures,
                    "time-series write failed; points stay in the spool");
            }
        } else if self.failures <= 3 || self.failures.is_power_of_two() {
            error!(error = %e, backlog, "history spool: store failed; retrying");
        }
    }

    fn report(&mut self, backlog: i64) {
        self.metrics.spool_points.set(backlog.max(0));
        if backlog <= 0 {
            self.overflowed = false;
        }
        let alert = backlog > self.warn_at || self.overflowed;
        let Some(s) = &self.shared.sink else { return };
        let was = s.alert.swap(alert, Ordering::SeqCst);
        self.metrics.spool_alert.set(i64::from(alert));
        if alert && !was {
            warn!(
                backlog,
                warn_at = self.warn_at,
                max = self.max,
                "history spool is growing: the time-series server is not taking points (technician alert)"
            );
        } else if !alert && was {
            info!(backlog, "history spool back below its warning level");
        }
    }

    async fn bound(&mut self, high: i64) -> Result<(), HistoryError> {
        let backlog = high - self.cursor;
        if backlog <= self.max {
            return Ok(());
        }
        let to = high - self.max;
        let n = (to - self.cursor) as u64;
        self.advance(to).await?;
        self.overflowed = true;
        self.metrics.dropped(DropReason::spool_full, n);
        if let Some(s) = &self.shared.sink {
            s.dropped.fetch_add(n, Ordering::SeqCst);
        }
        error!(
            given_up = n,
            max = self.max,
            "history spool full: the oldest points are given up for the time-series server (they stay in the embedded history)"
        );
        Ok(())
    }

    async fn advance(&mut self, to: i64) -> Result<(), HistoryError> {
        self.store.set_history_cursor(cursor::SINK, to).await?;
        self.cursor = to;
        if let Some(s) = &self.shared.sink {
            s.cursor.store(to, Ordering::SeqCst);
        }
        let high = *self.shared.high_water.borrow();
        self.report(high - to);
        self.shared.sink_cursor.send_replace(to);
        Ok(())
    }

    /// Sends the next batch (ids above the cursor, at most `high`) and moves the cursor.
    async fn deliver(&mut self, high: i64) -> Result<(), HistoryError> {
        let (rows, cut) = self.read(high).await?;
        if !rows.is_empty() {
            let samples: usize = rows.iter().map(|r| r.point.fields.len()).sum();
            let points: Vec<SinkPoint> = group(rows);
            let started = Instant::now();
            self.send(&points).await?;
            self.metrics
                .sink_write_seconds
                .observe(started.elapsed().as_secs_f64());
            self.metrics.written(self.sink.name(), samples);
            if let Some(s) = &self.shared.sink {
                s.last_ok_ms.store(self.clock.now_ms(), Ordering::SeqCst);
            }
        }
        self.advance(cut).await
    }

    /// Writes `points`; a batch the server refuses is split until the refused points are
    /// alone, and those are given up (counted), so that one bad point never blocks the
    /// rest. Order is kept.
    async fn send(&self, points: &[SinkPoint]) -> Result<(), SinkError> {
        let mut stack: Vec<&[SinkPoint]> = vec![points];
        while let Some(chunk) = stack.pop() {
            match self.sink.write(chunk).await {
                Ok(()) => {}
                Err(SinkError::Rejected { .. }) if chunk.len() > 1 => {
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    stack.push(b);
                    stack.push(a);
                }
                Err(e @ SinkError::Rejected { .. }) => {
                    let n = chunk.iter().map(|p| p.fields.len() as u64).sum();
                    self.metrics.dropped(DropReason::rejected, n);
                    if let Some(s) = &self.shared.sink {
                        s.dropped.fetch_add(n, Ordering::SeqCst);
                    }
                    for p in chunk {
                        warn!(error = %e, measurement = %p.measurement, at_ms = p.at_ms,
                            household_id = tag(p, "household"), device_id = tag(p, "device"),
                            "time-series server refused a point; given up for the server");
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next rows above the cursor, in id order, and the cursor after them.
    async fn read(&self, high: i64) -> Result<(Vec<Queued>, i64), HistoryError> {
        let raw = self
            .store
            .spool_points(self.cursor, high, self.batch)
            .await?;
        let hourly = self
            .store
            .spool_hourly(self.cursor, high, self.batch)
            .await?;
        let mut cut = high;
        let mut rows = Vec::with_capacity(raw.len() + hourly.len());
        for r in &raw {
            let mut tags: Vec<(&'static str, String)> = Vec::with_capacity(4);
            tags.push(("device", r.device_id.clone()));
            if let Some(h) = r.household_id.clone().filter(|s| !s.is_empty()) {
                tags.push(("household", h));
            }
            if !r.kind.is_empty() {
                tags.push(("kind", r.kind.clone()));
            }
            if let Some(room) = r.room.clone().filter(|s| !s.is_empty()) {
                tags.push(("room", room));
            }
            rows.push(Queued {
                id: r.point_id,
                point: SinkPoint {
                    measurement: r.measurement.clone(),
                    tags,
                    fields: vec![(r.field.clone(), r.value)],
                    at_ms: r.at_ms,
                },
            });
        }
        if raw.len() as i64 == self.batch
            && let Some(last) = rows.last()
        {
            cut = cut.min(last.id);
        }
        let raw_len = rows.len();
        for r in &hourly {
            let a = Activity::from_values(r.counts);
            let fields = Activity::FIELDS
                .iter()
                .zip(a.values())
                .map(|(k, v)| ((*k).to_string(), v as f64))
                .collect();
            rows.push(Queued {
                id: r.version,
                point: SinkPoint {
                    measurement: ACTIVITY.into(),
                    tags: vec![("household", r.household_id.clone())],
                    fields,
                    at_ms: r.hour_ms,
                },
            });
        }
        if hourly.len() as i64 == self.batch
            && let Some(last) = rows[raw_len..].last()
        {
            cut = cut.min(last.id);
        }
        rows.retain(|r| r.id <= cut);
        rows.sort_by_key(|r| r.id);
        if rows.len() as i64 > self.batch {
            rows.truncate(self.batch as usize);
            if let Some(last) = rows.last() {
                cut = last.id;
            }
        }
        Ok((rows, cut))
    }
}

fn tag<'a>(p: &'a SinkPoint, k: &str) -> &'a str {
    p.tags
        .iter()
        .find(|(t, _)| *t == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Joins consecutive rows of the same series and time into one line with several fields.
fn group(rows: Vec<Queued>) -> Vec<SinkPoint> {
    let mut out: Vec<SinkPoint> = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(last) = out.last_mut()
            && last.measurement == r.point.measurement
            && last.at_ms == r.point.at_ms
            && last.tags == r.point.tags
            && !last
                .fields
                .iter()
                .any(|(k, _)| r.point.fields.iter().any(|(f, _)| f == k))
        {
            last.fields.extend(r.point.fields);
        } else {
            out.push(r.point);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, m: &str, field: &str, at: i64) -> Queued {
        Queued {
            id,
            point: SinkPoint {
                measurement: m.into(),
                tags: vec![("device", "d1".into())],
                fields: vec![(field.into(), 1.0)],
                at_ms: at,
            },
        }
    }

    #[test]
    fn fields_of_one_series_and_time_travel_as_one_line() {
        let g = group(vec![
            row(1, "gas", "alarm", 5),
            row(2, "gas", "ppm", 5),
            row(3, "gas", "alarm", 6),
            row(4, "door", "open", 6),
        ]);
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].fields.len(), 2);
    }
}
