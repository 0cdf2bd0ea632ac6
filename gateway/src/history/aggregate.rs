//! Hourly per-household activity (`history_hourly`, measurement `activity`): computed from
//! the raw points once an hour has ended plus a grace period, and computed again whenever
//! a late event lands in a closed hour (the new version goes to the sink again, with the
//! same timestamp, so the server overwrites it). Runs in the writer task, which owns the
//! id sequence.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::Row;

use super::HistoryError;
use super::cursor;
use super::model::{Activity, DAY_MS, HOUR_MS};
use super::writer::Writer;

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
        let pool = self.store.pool();
        let due: Vec<(String, i64)> = sqlx::query_as(
            "SELECT household_id, hour_ms FROM history_dirty_hours WHERE hour_ms <= $1 \
             ORDER BY hour_ms LIMIT $2",
        )
        .bind(last_closed)
        .bind(CHUNK)
        .fetch_all(pool)
        .await?;
        if due.is_empty() {
            return Ok(false);
        }
        let mut results: Vec<(String, i64, Option<Activity>)> = Vec::with_capacity(due.len());
        for (household, hour) in due.iter().cloned() {
            if hour < raw_cutoff {
                // Its raw points are (partly) gone: the aggregate would be wrong.
                results.push((household, hour, None));
                continue;
            }
            let rows = sqlx::query(
                "SELECT measurement, field, value, at_ms FROM history_points \
                 WHERE household_id = $1 AND at_ms >= $2 AND at_ms < $3",
            )
            .bind(&household)
            .bind(hour)
            .bind(hour + HOUR_MS)
            .fetch_all(pool)
            .await?;
            let mut a = Activity::default();
            let mut minutes = HashSet::new();
            for r in rows {
                let m: String = r.try_get("measurement")?;
                let f: String = r.try_get("field")?;
                a.add(
                    &m,
                    &f,
                    r.try_get("value")?,
                    r.try_get("at_ms")?,
                    &mut minutes,
                );
            }
            results.push((household, hour, Some(a)));
        }

        let mut next_id = self.next_id;
        let mut tx = self.store.begin().await?;
        for (household, hour, activity) in &results {
            if let Some(a) = activity {
                let v = a.values();
                sqlx::query(
                    "INSERT INTO history_hourly (household_id, hour_ms, version, events, motion, door_open, \
                     help, fall, gas_alarm, active_minutes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (household_id, hour_ms) DO UPDATE SET version = excluded.version, \
                     events = excluded.events, motion = excluded.motion, door_open = excluded.door_open, \
                     help = excluded.help, fall = excluded.fall, gas_alarm = excluded.gas_alarm, \
                     active_minutes = excluded.active_minutes",
                )
                .bind(household)
                .bind(*hour)
                .bind(next_id)
                .bind(v[0])
                .bind(v[1])
                .bind(v[2])
                .bind(v[3])
                .bind(v[4])
                .bind(v[5])
                .bind(v[6])
                .execute(&mut *tx)
                .await?;
                next_id += 1;
            }
            sqlx::query("DELETE FROM history_dirty_hours WHERE household_id = $1 AND hour_ms = $2")
                .bind(household)
                .bind(*hour)
                .execute(&mut *tx)
                .await?;
        }
        cursor::set(&mut *tx, cursor::NEXT_ID, next_id).await?;
        tx.commit().await?;

        let written = (next_id - self.next_id) as usize;
        self.next_id = next_id;
        for (household, hour, _) in &results {
            let key: (Arc<str>, i64) = (Arc::from(household.as_str()), *hour);
            self.marked.remove(&key);
        }
        self.metrics.written("embedded", written);
        self.shared.high_water.send_replace(self.next_id - 1);
        Ok(due.len() as i64 == CHUNK)
    }
}
