//! What provisioning keeps beside the registry (`gateway/migrations/0005_provision.sql`):
//! per-device credentials (`device_provision`), the version a running gateway polls
//! (`provision_version`), technician work orders (`work_orders`), battery samples
//! (`device_samples`), help presses (`device_presses`) and installation tests
//! (`install_tests`, with the journal events a test's report is made from).
//!
//! Functions taking `conn: &mut Conn` run inside their caller's transaction (the caller
//! passes `&mut *tx`), so that a registration, a rotation or a test start commits
//! together with the version bump that tells a running gateway about it.

use sqlx::Row;

use super::{Conn, Store, StoreError};

/// Bumps the version a running gateway polls, in the transaction of the change it
/// announces.
pub async fn bump_provision_version(conn: &mut Conn) -> Result<(), StoreError> {
    sqlx::query("UPDATE provision_version SET version = version + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether device `id` has a provisioning row.
pub async fn is_provisioned(conn: &mut Conn, id: &str) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT device_id FROM device_provision WHERE device_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// Which device holds serial (or MAC) `serial`.
pub async fn serial_holder(conn: &mut Conn, serial: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT device_id FROM device_provision WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Which device holds Zigbee2MQTT name (or bridge path) `name`.
pub async fn zigbee_name_holder(conn: &mut Conn, name: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT device_id FROM device_provision WHERE zigbee_name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// A device's provisioning row as registration writes it.
#[derive(Debug, Clone, Copy)]
pub struct NewProvision<'a> {
    /// Device id.
    pub device_id: &'a str,
    /// Serial or MAC.
    pub serial: Option<&'a str>,
    /// Zigbee2MQTT name, or a bridge's path.
    pub zigbee_name: Option<&'a str>,
    /// Embedded broker hash (hex) of the first secret (None: a Zigbee device).
    pub secret_hash: Option<&'a str>,
    /// mosquitto `$7$` entry of the same secret.
    pub mosquitto_hash: Option<&'a str>,
    /// 1 with a secret, 0 without.
    pub generation: i32,
    /// When the secret was issued.
    pub issued_ms: Option<i64>,
    /// When it was registered.
    pub registered_ms: i64,
    /// By whom.
    pub registered_by: &'a str,
}

/// Inserts a registered device's provisioning row.
pub async fn insert_device_provision(
    conn: &mut Conn,
    p: &NewProvision<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO device_provision (device_id, serial, zigbee_name, secret_hash, mosquitto_hash, \
         generation, issued_ms, registered_ms, registered_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.device_id)
    .bind(p.serial)
    .bind(p.zigbee_name)
    .bind(p.secret_hash)
    .bind(p.mosquitto_hash)
    .bind(p.generation)
    .bind(p.issued_ms)
    .bind(p.registered_ms)
    .bind(p.registered_by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A newly issued secret of a device, as rotation writes it.
#[derive(Debug, Clone, Copy)]
pub struct NewSecret<'a> {
    /// Device id.
    pub device_id: &'a str,
    /// Embedded broker hash (hex).
    pub secret_hash: &'a str,
    /// mosquitto `$7$` entry.
    pub mosquitto_hash: &'a str,
    /// Its generation.
    pub generation: i32,
    /// Issued at (also the registration time of a device that had no row yet).
    pub issued_ms: i64,
    /// By whom (kept only when the row is new).
    pub by: &'a str,
}

/// Stores a new secret (first issue, rotation or re-activation): creates the
/// provisioning row of a device that had none, and clears a revocation.
pub async fn upsert_device_secret(conn: &mut Conn, s: &NewSecret<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO device_provision (device_id, secret_hash, mosquitto_hash, generation, issued_ms, \
         revoked_ms, registered_ms, registered_by) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7) \
         ON CONFLICT (device_id) DO UPDATE SET secret_hash = excluded.secret_hash, \
         mosquitto_hash = excluded.mosquitto_hash, generation = excluded.generation, \
         issued_ms = excluded.issued_ms, revoked_ms = NULL",
    )
    .bind(s.device_id)
    .bind(s.secret_hash)
    .bind(s.mosquitto_hash)
    .bind(s.generation)
    .bind(s.issued_ms)
    .bind(s.issued_ms)
    .bind(s.by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks device `id`'s credentials revoked at `now` (an earlier revocation keeps its
/// time).
pub async fn revoke_device_secret(conn: &mut Conn, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE device_provision SET revoked_ms = COALESCE(revoked_ms, $1) WHERE device_id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether an installation test is running in `household`.
pub async fn install_test_running(conn: &mut Conn, household: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "SELECT started_ms FROM install_tests WHERE household_id = $1 AND ended_ms IS NULL",
    )
    .bind(household)
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Starts an installation test of `household` at `started_ms`, ending by itself at
/// `until_ms`.
pub async fn insert_install_test(
    conn: &mut Conn,
    household: &str,
    started_ms: i64,
    until_ms: i64,
    by: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO install_tests (household_id, started_ms, until_ms, started_by) VALUES ($1, $2, $3, $4)",
    )
    .bind(household)
    .bind(started_ms)
    .bind(until_ms)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    Ok(())
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

/// The columns of [`WorkOrderRow`].
const ORDER_COLS: &str =
    "id, device_id, household_id, reason, detail, opened_ms, closed_ms, closed_by, resolution";

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

/// The version and work orders.
impl Store {
    /// The current provisioning version (0 when the row is missing).
    pub async fn provision_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT version FROM provision_version WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("version")).transpose()?.unwrap_or(0))
    }

    /// Opens a work order unless one is open for (device, reason); returns `Some(id)`
    /// when a new one was opened.
    pub async fn open_work_order(
        &self,
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
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Closes the open work order of (device, reason), if any; returns whether one was.
    pub async fn close_open_work_order(
        &self,
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
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Closes work order `id` if it is open; returns it and whether this call closed it
    /// (None: no such order).
    pub async fn close_work_order(
        &self,
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
        .execute(&self.pool)
        .await?;
        let closed_now = r.rows_affected() > 0;
        Ok(self.work_order(id).await?.map(|o| (o, closed_now)))
    }

    /// Work orders (open ones only, of a device, of a household), newest first.
    pub async fn work_orders(
        &self,
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
            .fetch_all(&self.pool)
            .await?)
    }

    /// One work order.
    pub async fn work_order(&self, id: i64) -> Result<Option<WorkOrderRow>, StoreError> {
        let sql = format!("SELECT {ORDER_COLS} FROM work_orders WHERE id = $1");
        // Only constant column lists are formatted in; the value is bound.
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }
}

/// Battery samples and help presses.
impl Store {
    /// Battery samples of a device since `since_ms`, oldest first: (at, battery %).
    pub async fn battery_samples(
        &self,
        device_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(i64, i32)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, battery_pct FROM device_samples WHERE device_id = $1 AND at_ms >= $2 \
             AND battery_pct IS NOT NULL ORDER BY at_ms",
        )
        .bind(device_id)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("at_ms")?, r.try_get("battery_pct")?)))
            .collect()
    }

    /// Battery samples since `since_ms` of every device (of `household`, or all), by
    /// device then time: (device, at, battery %).
    pub async fn battery_samples_of_all(
        &self,
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
        .fetch_all(&self.pool)
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

    /// The time of each device's latest sample.
    pub async fn last_sample_times(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, MAX(at_ms) AS at FROM device_samples GROUP BY device_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("device_id")?, r.try_get("at")?)))
            .collect()
    }

    /// Records a battery and signal sample (a second one at the same time is ignored).
    pub async fn add_device_sample(
        &self,
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a help press (a redelivered one is ignored).
    pub async fn add_press(
        &self,
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks the latest press of `device_id` at or after `since_ms` as cancelled at
    /// `cancel_ms` (unless it was a test press); returns whether one was.
    pub async fn cancel_press(
        &self,
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
        .fetch_optional(&self.pool)
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
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// Presses of a device since `since_ms`, newest first.
    pub async fn presses(
        &self,
        device_id: &str,
        since_ms: i64,
    ) -> Result<Vec<PressRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, pressed_ms, outcome, cancel_after_ms FROM device_presses \
             WHERE device_id = $1 AND pressed_ms >= $2 ORDER BY pressed_ms DESC",
        )
        .bind(device_id)
        .bind(since_ms)
        .fetch_all(&self.pool)
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
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, COUNT(*) AS n FROM device_presses WHERE pressed_ms >= $1 \
             AND outcome IN ('cancelled', 'unattended') GROUP BY device_id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("device_id")?, r.try_get("n")?)))
            .collect()
    }
}

/// Installation tests.
impl Store {
    /// Running tests (every household).
    pub async fn running_install_tests(&self) -> Result<Vec<TestRow>, StoreError> {
        let sql = format!(
            "SELECT {TEST_COLS} FROM install_tests WHERE ended_ms IS NULL ORDER BY started_ms"
        );
        // Only constant column lists are formatted in.
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The latest test of a household.
    pub async fn latest_install_test(
        &self,
        household: &str,
    ) -> Result<Option<TestRow>, StoreError> {
        let sql = format!(
            "SELECT {TEST_COLS} FROM install_tests WHERE household_id = $1 \
             ORDER BY started_ms DESC LIMIT 1"
        );
        // Only constant column lists are formatted in; the value is bound.
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(household)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The test of a household started at `started_ms`.
    pub async fn install_test(
        &self,
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
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Ends a running test with its report, and bumps the provisioning version in the
    /// same transaction; false when it had already ended.
    pub async fn end_install_test(
        &self,
        household: &str,
        started_ms: i64,
        ended_ms: i64,
        report: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
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
        bump_provision_version(&mut tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Journal events of a household received in `[from, to]`, as (device, body JSON,
    /// received ms), in journal order: what an installation test's report is made of.
    pub async fn household_events_between(
        &self,
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
        .fetch_all(&self.pool)
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
}
