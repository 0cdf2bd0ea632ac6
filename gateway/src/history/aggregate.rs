//! Hourly per-household activity (`history_hourly`, measurement `activity`): computed from
//! the raw points once an hour has ended plus a grace period, and computed again whenever
//! a late event lands in a closed hour (the new version goes to the sink again, with the
//! same timestamp, so the server overwrites it). Runs in the writer task, which owns the
//! id sequence.

use std::collections::HashSet;
use std::sync::Arc;

use super::HistoryError;
use super::model::{Activity, DAY_MS, HOUR_MS};
use super::writer::Writer;
use crate::store::ClosedHour;

/// Household hours per aggregation transaction.
const CHUNK: i64 = 200;

impl Writer {
    /// Aggregates closed dirty hours (one chunk). True when more are waiting.
    pub(crate) async fn close_hours(&mut self) -> Result<bool, HistoryError> {
        let now = self.clock.now_ms();
        let grace = (self.cfg.aggregate_grace_s as i64).saturating_mul(1000);
        // Hour H is closed once H + 1 h + grace has passed.
        let last_closed = now - grace - HOUR_MS;
        let raw_cutoff = now - i64::from(self.cfg.raw_retention_days) * DAY_MS;
        let due = self.store.dirty_hours_due(last_closed, CHUNK).await?;
        if due.is_empty() {
            return Ok(false);
        }
        let mut next_id = self.next_id;
        let mut results: Vec<ClosedHour> = Vec::with_capacity(due.len());
        for (household, hour) in due.iter().cloned() {
            if hour < raw_cutoff {
                // Its raw points are (partly) gone: the aggregate would be wrong.
                results.push(ClosedHour {
                    household_id: household,
                    hour_ms: hour,
                    aggregate: None,
                });
                continue;
            }
            let rows = self
                .store
                .household_points(&household, hour, hour + HOUR_MS)
                .await?;
            let mut a = Activity::default();
            let mut minutes = HashSet::new();
            for r in rows {
                a.add(&r.measurement, &r.field, r.value, r.at_ms, &mut minutes);
            }
            // Each new aggregate takes the next id as its version.
            results.push(ClosedHour {
                household_id: household,
                hour_ms: hour,
                aggregate: Some((next_id, a.values())),
            });
            next_id += 1;
        }
        self.store.close_hours(&results, next_id).await?;

        let written = (next_id - self.next_id) as usize;
        self.next_id = next_id;
        for h in &results {
            let key: (Arc<str>, i64) = (Arc::from(h.household_id.as_str()), h.hour_ms);
            self.marked.remove(&key);
        }
        self.metrics.written("embedded", written);
        self.shared.high_water.send_replace(self.next_id - 1);
        Ok(due.len() as i64 == CHUNK)
    }
}
