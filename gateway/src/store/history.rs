//! The history tables: raw points (`history_points`), the hours whose aggregate must be
//! redone (`history_dirty_hours`), what history last wrote per device
//! (`history_device_state`) and its named positions (`history_cursor`). The history
//! writer turns journal events into one [`HistoryWrite`] at a time; on SQLite it goes
//! through the hot-path writer thread like the journal's commits.

use std::sync::Arc;

use sqlx::Row;

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
pub(crate) async fn get_cursor<'e, E>(db: E, name: &str) -> Result<Option<i64>, sqlx::Error>
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
pub(crate) async fn set_cursor<'e, E>(db: E, name: &str, value: i64) -> Result<(), sqlx::Error>
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
