//! The provisioning tables (`gateway/migrations/0005_provision.sql`): portable SQL with
//! `$N` placeholders, every value bound.

use sqlx::{Any, Row, Transaction};

use crate::store::{Store, StoreError};

pub use crate::store::DeviceRow;

/// Every device (household filter optional), provisioned or not.
pub async fn devices(store: &Store, household: Option<&str>) -> Result<Vec<DeviceRow>, StoreError> {
    store.device_rows(household).await
}

/// One device.
pub async fn device(store: &Store, id: &str) -> Result<Option<DeviceRow>, StoreError> {
    store.device_row(id).await
}

/// Whether household `id` exists.
pub async fn household_exists(tx: &mut Transaction<'_, Any>, id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT id FROM households WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}

/// Which device holds `column` = `value` in `device_provision` (serial, zigbee_name).
pub async fn holder_of(
    tx: &mut Transaction<'_, Any>,
    column: &'static str,
    value: &str,
) -> Result<Option<String>, StoreError> {
    let sql = match column {
        "serial" => "SELECT device_id FROM device_provision WHERE serial = $1",
        _ => "SELECT device_id FROM device_provision WHERE zigbee_name = $1",
    };
    Ok(sqlx::query(sql)
        .bind(value)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get("device_id"))
        .transpose()?)
}

/// Bumps the version a running gateway polls.
pub async fn bump_version(tx: &mut Transaction<'_, Any>) -> Result<(), StoreError> {
    sqlx::query("UPDATE provision_version SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The current version.
pub async fn version(store: &Store) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT version FROM provision_version WHERE id = 1")
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|r| r.try_get("version")).transpose()?.unwrap_or(0))
}

/// A technician work order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct WorkOrderRow {
    /// Number.
    pub id: i64,
    /// Device.
    pub device_id: String,
    /// Household.
    pub household_id: Option<String>,
    /// Why (`offline`, `low_battery`, `suspicious`, `bridge_offline`, `untested`).
    pub reason: String,
    /// What was seen.
    pub detail: String,
    /// Opened.
    pub opened_ms: i64,
    /// Closed.
    pub closed_ms: Option<i64>,
    /// By whom.
    pub closed_by: Option<String>,
    /// What was done.
    pub resolution: Option<String>,
}

const ORDER_COLS: &str =
    "id, device_id, household_id, reason, detail, opened_ms, closed_ms, closed_by, resolution";

/// Opens a work order unless one is open for (device, reason); returns `Some(id)` when
/// a new one was opened.
pub async fn open_order(
    store: &Store,
    device_id: &str,
    household_id: Option<&str>,
    reason: &str,
    detail: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    // `WHERE true`: SQLite needs it to tell the SELECT from the upsert clause.
    let row = sqlx::query(
        "INSERT INTO work_orders (id, device_id, household_id, reason, detail, opened_ms) \
         SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5 FROM work_orders WHERE true \
         ON CONFLICT (device_id, reason) WHERE closed_ms IS NULL DO NOTHING RETURNING id",
    )
    .bind(device_id)
    .bind(household_id)
    .bind(reason)
    .bind(detail)
    .bind(now)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

/// Closes the open work order of (device, reason), if any; returns whether one was.
pub async fn close_open_order(
    store: &Store,
    device_id: &str,
    reason: &str,
    by: &str,
    resolution: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE work_orders SET closed_ms = $1, closed_by = $2, resolution = $3 \
         WHERE device_id = $4 AND reason = $5 AND closed_ms IS NULL",
    )
    .bind(now)
    .bind(by)
    .bind(resolution)
    .bind(device_id)
    .bind(reason)
    .execute(store.pool())
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Closes work order `id` if it is open; returns it (None: no such order).
pub async fn close_order(
    store: &Store,
    id: i64,
    by: &str,
    resolution: &str,
    now: i64,
) -> Result<Option<(WorkOrderRow, bool)>, StoreError> {
    let r = sqlx::query(
        "UPDATE work_orders SET closed_ms = $1, closed_by = $2, resolution = $3 \
         WHERE id = $4 AND closed_ms IS NULL",
    )
    .bind(now)
    .bind(by)
    .bind(resolution)
    .bind(id)
    .execute(store.pool())
    .await?;
    let closed_now = r.rows_affected() > 0;
    Ok(order(store, id).await?.map(|o| (o, closed_now)))
}

/// Work orders, newest first.
pub async fn orders(
    store: &Store,
    open_only: bool,
    device: Option<&str>,
    household: Option<&str>,
) -> Result<Vec<WorkOrderRow>, StoreError> {
    let sql = format!(
        "SELECT {ORDER_COLS} FROM work_orders WHERE ($1 = 0 OR closed_ms IS NULL) \
         AND ($2 IS NULL OR device_id = $2) AND ($3 IS NULL OR household_id = $3) \
         ORDER BY opened_ms DESC, id DESC"
    );
    // Only constant column lists are formatted in; the values are bound.
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(i64::from(open_only))
        .bind(device)
        .bind(household)
        .fetch_all(store.pool())
        .await?)
}

/// Battery samples of a device since `since_ms`, oldest first: (at, battery %).
pub async fn samples(
    store: &Store,
    device_id: &str,
    since_ms: i64,
) -> Result<Vec<(i64, i32)>, StoreError> {
    let rows = sqlx::query(
        "SELECT at_ms, battery_pct FROM device_samples WHERE device_id = $1 AND at_ms >= $2 \
         AND battery_pct IS NOT NULL ORDER BY at_ms",
    )
    .bind(device_id)
    .bind(since_ms)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("at_ms")?, r.try_get("battery_pct")?)))
        .collect()
}

/// Battery samples since `since_ms` of every device (of `household`, or all), by
/// device then time: (device, at, battery %).
pub async fn samples_of_all(
    store: &Store,
    household: Option<&str>,
    since_ms: i64,
) -> Result<Vec<(String, i64, i32)>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.device_id, s.at_ms, s.battery_pct FROM device_samples s \
         JOIN devices d ON d.id = s.device_id WHERE ($1 IS NULL OR d.household_id = $1) \
         AND s.at_ms >= $2 AND s.battery_pct IS NOT NULL ORDER BY s.device_id, s.at_ms",
    )
    .bind(household)
    .bind(since_ms)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("device_id")?,
                r.try_get("at_ms")?,
                r.try_get("battery_pct")?,
            ))
        })
        .collect()
}

/// One work order.
pub async fn order(store: &Store, id: i64) -> Result<Option<WorkOrderRow>, StoreError> {
    let sql = format!("SELECT {ORDER_COLS} FROM work_orders WHERE id = $1");
    // Only constant column lists are formatted in; the value is bound.
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(store.pool())
        .await?)
}

/// The time of each device's latest sample.
pub async fn last_samples(store: &Store) -> Result<Vec<(String, i64)>, StoreError> {
    let rows =
        sqlx::query("SELECT device_id, MAX(at_ms) AS at FROM device_samples GROUP BY device_id")
            .fetch_all(store.pool())
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("device_id")?, r.try_get("at")?)))
        .collect()
}

/// Records a sample.
pub async fn add_sample(
    store: &Store,
    device_id: &str,
    at_ms: i64,
    battery_pct: Option<i32>,
    rssi_dbm: Option<i32>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO device_samples (device_id, at_ms, battery_pct, rssi_dbm) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (device_id, at_ms) DO NOTHING",
    )
    .bind(device_id)
    .bind(at_ms)
    .bind(battery_pct)
    .bind(rssi_dbm)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// A help press and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PressRow {
    /// Device.
    pub device_id: String,
    /// When.
    pub pressed_ms: i64,
    /// `pressed`, `cancelled`, `unattended` or `test`.
    pub outcome: String,
    /// For `cancelled`: how soon.
    pub cancel_after_ms: Option<i64>,
}

/// Records a press.
pub async fn add_press(
    store: &Store,
    device_id: &str,
    household_id: Option<&str>,
    pressed_ms: i64,
    outcome: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO device_presses (device_id, pressed_ms, household_id, outcome) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (device_id, pressed_ms) DO NOTHING",
    )
    .bind(device_id)
    .bind(pressed_ms)
    .bind(household_id)
    .bind(outcome)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Marks the latest press of `device_id` at or after `since_ms` as cancelled at
/// `cancel_ms` (unless it was a test press); returns whether one was.
pub async fn cancel_press(
    store: &Store,
    device_id: &str,
    since_ms: i64,
    cancel_ms: i64,
) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT pressed_ms FROM device_presses WHERE device_id = $1 AND pressed_ms >= $2 \
         AND pressed_ms <= $3 AND outcome <> 'test' ORDER BY pressed_ms DESC LIMIT 1",
    )
    .bind(device_id)
    .bind(since_ms)
    .bind(cancel_ms)
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(false) };
    let pressed: i64 = row.try_get("pressed_ms")?;
    sqlx::query(
        "UPDATE device_presses SET outcome = 'cancelled', cancel_after_ms = $1 \
         WHERE device_id = $2 AND pressed_ms = $3",
    )
    .bind(cancel_ms - pressed)
    .bind(device_id)
    .bind(pressed)
    .execute(store.pool())
    .await?;
    Ok(true)
}

/// Presses of a device since `since_ms`, newest first.
pub async fn presses(
    store: &Store,
    device_id: &str,
    since_ms: i64,
) -> Result<Vec<PressRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT device_id, pressed_ms, outcome, cancel_after_ms FROM device_presses \
         WHERE device_id = $1 AND pressed_ms >= $2 ORDER BY pressed_ms DESC",
    )
    .bind(device_id)
    .bind(since_ms)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PressRow {
                device_id: r.try_get("device_id")?,
                pressed_ms: r.try_get("pressed_ms")?,
                outcome: r.try_get("outcome")?,
                cancel_after_ms: r.try_get("cancel_after_ms")?,
            })
        })
        .collect()
}

/// False presses (cancelled or unattended) per device since `since_ms`.
pub async fn false_press_counts(
    store: &Store,
    since_ms: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT device_id, COUNT(*) AS n FROM device_presses WHERE pressed_ms >= $1 \
         AND outcome IN ('cancelled', 'unattended') GROUP BY device_id",
    )
    .bind(since_ms)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("device_id")?, r.try_get("n")?)))
        .collect()
}

/// An installation test row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TestRow {
    /// Household.
    pub household_id: String,
    /// Started.
    pub started_ms: i64,
    /// Ends by itself at.
    pub until_ms: i64,
    /// Ended (None: running).
    pub ended_ms: Option<i64>,
    /// Technician.
    pub started_by: Option<String>,
    /// The final report (JSON), once ended.
    pub report: Option<String>,
}

/// The columns of [`TestRow`].
const TEST_COLS: &str = "household_id, started_ms, until_ms, ended_ms, started_by, report";

/// Running tests (every household).
pub async fn running_tests(store: &Store) -> Result<Vec<TestRow>, StoreError> {
    let sql =
        format!("SELECT {TEST_COLS} FROM install_tests WHERE ended_ms IS NULL ORDER BY started_ms");
    // Only constant column lists are formatted in.
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?)
}

/// The latest test of a household.
pub async fn latest_test(store: &Store, household: &str) -> Result<Option<TestRow>, StoreError> {
    let sql = format!(
        "SELECT {TEST_COLS} FROM install_tests WHERE household_id = $1 \
         ORDER BY started_ms DESC LIMIT 1"
    );
    // Only constant column lists are formatted in; the value is bound.
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(household)
        .fetch_optional(store.pool())
        .await?)
}

/// A test of a household started at `started_ms`.
pub async fn test(
    store: &Store,
    household: &str,
    started_ms: i64,
) -> Result<Option<TestRow>, StoreError> {
    let sql = format!(
        "SELECT {TEST_COLS} FROM install_tests WHERE household_id = $1 AND started_ms = $2"
    );
    // Only constant column lists are formatted in; the values are bound.
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(household)
        .bind(started_ms)
        .fetch_optional(store.pool())
        .await?)
}

/// Ends a running test with its report; false when it had already ended.
pub async fn end_test(
    store: &Store,
    household: &str,
    started_ms: i64,
    ended_ms: i64,
    report: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let r = sqlx::query(
        "UPDATE install_tests SET ended_ms = $1, report = $2 \
         WHERE household_id = $3 AND started_ms = $4 AND ended_ms IS NULL",
    )
    .bind(ended_ms)
    .bind(report)
    .bind(household)
    .bind(started_ms)
    .execute(&mut *tx)
    .await?;
    bump_version(&mut tx).await?;
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

/// Journal events of a household received in `[from, to]`, as (device, body JSON,
/// received ms), in journal order.
pub async fn events_between(
    store: &Store,
    household: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT device_id, body, received_ms FROM events WHERE household_id = $1 \
         AND received_ms >= $2 AND received_ms <= $3 AND event_ms >= $4 ORDER BY journal_id",
    )
    .bind(household)
    .bind(from_ms)
    .bind(to_ms)
    // Replayed outbox events from before the test do not count.
    .bind(from_ms - 60_000)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("device_id")?,
                r.try_get("body")?,
                r.try_get("received_ms")?,
            ))
        })
        .collect()
}
