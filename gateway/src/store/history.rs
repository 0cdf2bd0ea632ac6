//! The history tables: raw points (`history_points`), the hours whose aggregate must be
//! redone (`history_dirty_hours`), the hourly aggregates (`history_hourly`), what history
//! last wrote per device (`history_device_state`) and its named positions
//! (`history_cursor`). The history writer turns journal events into one [`HistoryWrite`]
//! at a time; on SQLite it goes through the hot-path writer thread like the journal's
//! commits. Aggregation of closed hours, retention and the time-series sink's reads of
//! its backlog are here too; the dashboard's review queries are in `history_query.rs`.

use std::sync::Arc;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Store, StoreError, Upsert, pieces};

/// Cursor: the last `events.journal_id` turned into points.
pub const CURSOR_JOURNAL: &str = "journal";
/// Cursor: the next point id / hourly version.
pub const CURSOR_NEXT_ID: &str = "next_id";
/// Cursor: the last point id the time-series server accepted.
pub const CURSOR_SINK: &str = "sink";

/// One raw point: a numeric value of one field of one series at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    /// Measurement (`door`, `motion`, …, `device`).
    pub measurement: &'static str,
    /// Field name.
    pub field: &'static str,
    /// Value (every field is numeric).
    pub value: f64,
    /// Time (ms, UTC).
    pub at_ms: i64,
    /// Tag `household` (absent for a device bound to no household).
    pub household_id: Option<Arc<str>>,
    /// Tag `device`.
    pub device_id: Arc<str>,
    /// Tag `room`, when known.
    pub room: Option<Arc<str>>,
    /// Tag `kind`: the device's kind (`door`, `motion`, `help`, `gas`, `pendant`, …).
    pub kind: Arc<str>,
}

/// What history last wrote for a device (`history_device_state`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceStateRow {
    /// Device.
    pub device_id: Arc<str>,
    /// Last availability written (1 online, 0 offline).
    pub online: Option<i32>,
    /// When that availability began.
    pub online_ms: Option<i64>,
    /// Battery % of the last health points.
    pub battery_pct: Option<i32>,
    /// Battery mV.
    pub battery_mv: Option<i32>,
    /// RSSI dBm.
    pub rssi_dbm: Option<i32>,
    /// Temperature, tenths of °C.
    pub temp_dc: Option<i32>,
    /// When the last health points were written.
    pub health_ms: Option<i64>,
}

/// Everything one step of the history writer stores, in one transaction.
#[derive(Debug, Default)]
pub struct HistoryWrite {
    /// Id of the first point; the others follow in order.
    pub first_id: i64,
    /// New points.
    pub points: Vec<HistoryPoint>,
    /// (household, hour start) whose aggregate must be redone.
    pub dirty_hours: Vec<(Arc<str>, i64)>,
    /// Devices whose written state changed.
    pub states: Vec<DeviceStateRow>,
    /// The journal position these points cover (cursor `journal`).
    pub journal: i64,
    /// The next free point id after them (cursor `next_id`).
    pub next_id: i64,
}

/// Raw points.
pub(super) const POINTS: Upsert = Upsert {
    head: "INSERT INTO history_points (point_id, at_ms, household_id, device_id, room, kind, \
           measurement, field, value)",
    cols: 9,
    tail: "",
};

/// Hours whose aggregate must be redone.
pub(super) const DIRTY_HOURS: Upsert = Upsert {
    head: "INSERT INTO history_dirty_hours (household_id, hour_ms)",
    cols: 2,
    tail: "ON CONFLICT (household_id, hour_ms) DO NOTHING",
};

/// What history last wrote per device.
pub(super) const DEVICE_STATE: Upsert = Upsert {
    head: "INSERT INTO history_device_state (device_id, online, online_ms, battery_pct, \
           battery_mv, rssi_dbm, temp_dc, health_ms)",
    cols: 8,
    tail: "ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, \
           online_ms = excluded.online_ms, battery_pct = excluded.battery_pct, \
           battery_mv = excluded.battery_mv, rssi_dbm = excluded.rssi_dbm, \
           temp_dc = excluded.temp_dc, health_ms = excluded.health_ms",
};

/// A named position.
pub(super) const CURSOR: Upsert = Upsert {
    head: "INSERT INTO history_cursor (name, value)",
    cols: 2,
    tail: "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
};

impl Store {
    /// Stores `w` in one transaction, cursors included.
    pub async fn write_history(&self, w: Arc<HistoryWrite>) -> Result<(), StoreError> {
        match &self.writer {
            Some(writer) => writer.write_history(w).await,
            None => self.write_history_sqlx(&w).await,
        }
    }

    async fn write_history_sqlx(&self, w: &HistoryWrite) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let mut id = w.first_id;
        for chunk in pieces(&w.points) {
            let sql = POINTS.sql(self.backend, chunk.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in chunk {
                q = q
                    .bind(id)
                    .bind(p.at_ms)
                    .bind(p.household_id.as_deref())
                    .bind(&*p.device_id)
                    .bind(p.room.as_deref())
                    .bind(&*p.kind)
                    .bind(p.measurement)
                    .bind(p.field)
                    .bind(p.value);
                id += 1;
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in pieces(&w.dirty_hours) {
            let sql = DIRTY_HOURS.sql(self.backend, chunk.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (h, hour) in chunk {
                q = q.bind(&**h).bind(*hour);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in pieces(&w.states) {
            let sql = DEVICE_STATE.sql(self.backend, chunk.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for s in chunk {
                q = q
                    .bind(&*s.device_id)
                    .bind(s.online)
                    .bind(s.online_ms)
                    .bind(s.battery_pct)
                    .bind(s.battery_mv)
                    .bind(s.rssi_dbm)
                    .bind(s.temp_dc)
                    .bind(s.health_ms);
            }
            q.execute(&mut *tx).await?;
        }
        set_cursor(&mut *tx, CURSOR_JOURNAL, w.journal).await?;
        set_cursor(&mut *tx, CURSOR_NEXT_ID, w.next_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every device's last written history state.
    pub async fn history_device_states(&self) -> Result<Vec<DeviceStateRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, online, online_ms, battery_pct, battery_mv, rssi_dbm, temp_dc, health_ms \
             FROM history_device_state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceStateRow {
                    device_id: Arc::from(r.try_get::<String, _>("device_id")?),
                    online: r.try_get("online")?,
                    online_ms: r.try_get("online_ms")?,
                    battery_pct: r.try_get("battery_pct")?,
                    battery_mv: r.try_get("battery_mv")?,
                    rssi_dbm: r.try_get("rssi_dbm")?,
                    temp_dc: r.try_get("temp_dc")?,
                    health_ms: r.try_get("health_ms")?,
                })
            })
            .collect()
    }

    /// The value of history cursor `name`, if set.
    pub async fn history_cursor(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(get_cursor(&self.pool, name).await?)
    }

    /// Sets history cursor `name` on its own.
    pub async fn set_history_cursor(&self, name: &str, value: i64) -> Result<(), StoreError> {
        Ok(set_cursor(&self.pool, name, value).await?)
    }
}

/// The value of cursor `name` through `db` (a pool or an open transaction).
async fn get_cursor<'e, E>(db: E, name: &str) -> Result<Option<i64>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row: Option<(i64,)> = sqlx::query_as("SELECT value FROM history_cursor WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Sets cursor `name` through `db` (a pool or an open transaction).
async fn set_cursor<'e, E>(db: E, name: &str, value: i64) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    // Numbered placeholders: sqlx takes them on both engines.
    sqlx::query(sqlx::AssertSqlSafe(CURSOR.sql(Backend::Postgres, 1)))
        .bind(name)
        .bind(value)
        .execute(db)
        .await?;
    Ok(())
}

/// The counts of one hourly aggregate, in the order of the `history_hourly` columns
/// `events, motion, door_open, help, fall, gas_alarm, active_minutes`.
pub type ActivityCounts = [i64; 7];

/// Reads the seven count columns of a `history_hourly` row.
pub(super) fn activity_counts(r: &AnyRow) -> Result<ActivityCounts, sqlx::Error> {
    Ok([
        r.try_get("events")?,
        r.try_get("motion")?,
        r.try_get("door_open")?,
        r.try_get("help")?,
        r.try_get("fall")?,
        r.try_get("gas_alarm")?,
        r.try_get("active_minutes")?,
    ])
}

/// One raw point of an hour, as aggregation reads it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HourPointRow {
    /// Measurement.
    pub measurement: String,
    /// Field.
    pub field: String,
    /// Value.
    pub value: f64,
    /// Time (ms, UTC).
    pub at_ms: i64,
}

/// A dirty household hour that aggregation has dealt with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedHour {
    /// Household.
    pub household_id: String,
    /// Start of the hour (ms, UTC).
    pub hour_ms: i64,
    /// The new aggregate and its version, or None when none is written (its raw points
    /// are past retention): the hour's dirty mark is cleared either way.
    pub aggregate: Option<(i64, ActivityCounts)>,
}

/// One stored point as the time-series sink reads it back.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SpoolPointRow {
    /// Point id.
    pub point_id: i64,
    /// Time (ms, UTC).
    pub at_ms: i64,
    /// Tag `household`.
    pub household_id: Option<String>,
    /// Tag `device`.
    pub device_id: String,
    /// Tag `room`.
    pub room: Option<String>,
    /// Tag `kind`.
    pub kind: String,
    /// Measurement.
    pub measurement: String,
    /// Field.
    pub field: String,
    /// Value.
    pub value: f64,
}

/// One hourly aggregate as the time-series sink reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolHourlyRow {
    /// Household.
    pub household_id: String,
    /// Start of the hour (ms, UTC).
    pub hour_ms: i64,
    /// Version (an id of the point sequence).
    pub version: i64,
    /// The counts.
    pub counts: ActivityCounts,
}

/// Aggregation of closed hours (`history_dirty_hours` → `history_hourly`).
impl Store {
    /// Dirty household hours that started at or before `last_closed_ms`, oldest first,
    /// at most `limit`.
    pub async fn dirty_hours_due(
        &self,
        last_closed_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT household_id, hour_ms FROM history_dirty_hours WHERE hour_ms <= $1 \
             ORDER BY hour_ms LIMIT $2",
        )
        .bind(last_closed_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The raw points of `household` in `from_ms..to_ms`.
    pub async fn household_points(
        &self,
        household: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<HourPointRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT measurement, field, value, at_ms FROM history_points \
             WHERE household_id = $1 AND at_ms >= $2 AND at_ms < $3",
        )
        .bind(household)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// In one transaction: writes (or overwrites) the aggregate of each hour of `done`
    /// that has one, clears the dirty mark of every hour of `done`, and sets cursor
    /// `next_id` to `next_id`.
    pub async fn close_hours(&self, done: &[ClosedHour], next_id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for h in done {
            if let Some((version, v)) = &h.aggregate {
                sqlx::query(
                    "INSERT INTO history_hourly (household_id, hour_ms, version, events, motion, door_open, \
                     help, fall, gas_alarm, active_minutes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (household_id, hour_ms) DO UPDATE SET version = excluded.version, \
                     events = excluded.events, motion = excluded.motion, door_open = excluded.door_open, \
                     help = excluded.help, fall = excluded.fall, gas_alarm = excluded.gas_alarm, \
                     active_minutes = excluded.active_minutes",
                )
                .bind(&h.household_id)
                .bind(h.hour_ms)
                .bind(*version)
                .bind(v[0])
                .bind(v[1])
                .bind(v[2])
                .bind(v[3])
                .bind(v[4])
                .bind(v[5])
                .bind(v[6])
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM history_dirty_hours WHERE household_id = $1 AND hour_ms = $2")
                .bind(&h.household_id)
                .bind(h.hour_ms)
                .execute(&mut *tx)
                .await?;
        }
        set_cursor(&mut *tx, CURSOR_NEXT_ID, next_id).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Retention: deleting points and aggregates past their age, in small batches.
impl Store {
    /// Deletes up to `limit` raw points of `measurement` older than `before_ms` whose id
    /// is at most `protect_above` (the sink has them). Returns how many.
    pub async fn prune_points(
        &self,
        measurement: &str,
        before_ms: i64,
        protect_above: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM history_points WHERE point_id IN (SELECT point_id FROM history_points \
             WHERE measurement = $1 AND at_ms < $2 AND point_id <= $3 LIMIT $4)",
        )
        .bind(measurement)
        .bind(before_ms)
        .bind(protect_above)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Up to `limit` (household, hour) keys of aggregates older than `before_ms` whose
    /// version is at most `protect_above`, oldest first.
    pub async fn hourly_past(
        &self,
        before_ms: i64,
        protect_above: i64,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT household_id, hour_ms FROM history_hourly WHERE hour_ms < $1 AND version <= $2 \
             ORDER BY hour_ms LIMIT $3",
        )
        .bind(before_ms)
        .bind(protect_above)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes the aggregates of `keys` (household, hour) in one transaction.
    pub async fn delete_hourly(&self, keys: &[(String, i64)]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for (h, hour) in keys {
            sqlx::query("DELETE FROM history_hourly WHERE household_id = $1 AND hour_ms = $2")
                .bind(h)
                .bind(*hour)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// What the time-series sink reads back: everything above its cursor, in id order.
impl Store {
    /// Up to `limit` raw points with `after < point_id <= upto`, in id order.
    pub async fn spool_points(
        &self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<SpoolPointRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT point_id, at_ms, household_id, device_id, room, kind, measurement, field, value \
             FROM history_points WHERE point_id > $1 AND point_id <= $2 ORDER BY point_id LIMIT $3",
        )
        .bind(after)
        .bind(upto)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Up to `limit` hourly aggregates with `after < version <= upto`, in version order.
    pub async fn spool_hourly(
        &self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<SpoolHourlyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT household_id, hour_ms, version, events, motion, door_open, help, fall, gas_alarm, \
             active_minutes FROM history_hourly WHERE version > $1 AND version <= $2 \
             ORDER BY version LIMIT $3",
        )
        .bind(after)
        .bind(upto)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SpoolHourlyRow {
                    household_id: r.try_get("household_id")?,
                    hour_ms: r.try_get("hour_ms")?,
                    version: r.try_get("version")?,
                    counts: activity_counts(r)?,
                })
            })
            .collect()
    }
}
