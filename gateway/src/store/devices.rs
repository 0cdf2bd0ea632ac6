//! The registry: households and the devices that belong to them (`devices`, with what
//! provisioning keeps of each in `device_provision`).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Conn, Store, StoreError, placeholders};

/// A household to register.
#[derive(Debug, Clone)]
pub struct NewHousehold {
    /// Stable id, e.g. `h0001`.
    pub id: String,
    /// Display name of the resident(s).
    pub name: String,
    /// Address.
    pub address: String,
}

/// A device to register.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Device id (MQTT username and topic level).
    pub id: String,
    /// Household it is installed in.
    pub household_id: Option<String>,
    /// Kind: `door`, `motion`, `help`, `gas`, `pendant`, …
    pub kind: String,
    /// Room, when known.
    pub room: Option<String>,
}

impl Store {
    /// Inserts or updates households.
    pub async fn upsert_households(
        &self,
        rows: &[NewHousehold],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for h in rows {
            sqlx::query(
                "INSERT INTO households (id, name, address, created_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address",
            )
            .bind(&h.id)
            .bind(&h.name)
            .bind(&h.address)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Inserts or updates devices.
    pub async fn upsert_devices(&self, rows: &[NewDevice], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for d in rows {
            sqlx::query(
                "INSERT INTO devices (id, household_id, kind, room, created_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET household_id = excluded.household_id, \
                 kind = excluded.kind, room = excluded.room",
            )
            .bind(&d.id)
            .bind(&d.household_id)
            .bind(&d.kind)
            .bind(&d.room)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A registered device as provisioning sees it (`devices` joined with
/// `device_provision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// Device id.
    pub device_id: String,
    /// Kind.
    pub kind: String,
    /// Household.
    pub household_id: Option<String>,
    /// Room.
    pub room: Option<String>,
    /// Serial or MAC.
    pub serial: Option<String>,
    /// Zigbee2MQTT name (or a bridge's path).
    pub zigbee_name: Option<String>,
    /// Embedded broker hash (hex).
    pub secret_hash: Option<String>,
    /// mosquitto `$7$` entry.
    pub mosquitto_hash: Option<String>,
    /// Secret generation (0: none issued).
    pub generation: i32,
    /// When the current secret was issued.
    pub issued_ms: Option<i64>,
    /// When the credentials were revoked.
    pub revoked_ms: Option<i64>,
    /// When it was registered through provisioning (None: registered otherwise, e.g.
    /// the demo).
    pub registered_ms: Option<i64>,
}

const DEVICE_COLS: &str = "d.id, d.kind, d.household_id, d.room, p.serial, p.zigbee_name, \
     p.secret_hash, p.mosquitto_hash, p.generation, p.issued_ms, p.revoked_ms, p.registered_ms";

fn device_row(r: &AnyRow) -> Result<DeviceRow, StoreError> {
    Ok(DeviceRow {
        device_id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        household_id: r.try_get("household_id")?,
        room: r.try_get("room")?,
        serial: r.try_get("serial")?,
        zigbee_name: r.try_get("zigbee_name")?,
        secret_hash: r.try_get("secret_hash")?,
        mosquitto_hash: r.try_get("mosquitto_hash")?,
        generation: r.try_get::<Option<i32>, _>("generation")?.unwrap_or(0),
        issued_ms: r.try_get("issued_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
        registered_ms: r.try_get("registered_ms")?,
    })
}

impl Store {
    /// Every device as provisioning sees it (household filter optional), provisioned or
    /// not: the one device table the running gateway loads at start.
    pub async fn device_rows(&self, household: Option<&str>) -> Result<Vec<DeviceRow>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLS} FROM devices d LEFT JOIN device_provision p ON p.device_id = d.id \
         WHERE ($1 IS NULL OR d.household_id = $1) ORDER BY d.household_id, d.id"
        );
        // Only constant column lists are formatted in; the value is bound.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(household)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(device_row).collect()
    }

    /// One device as provisioning sees it.
    pub async fn device_row(&self, id: &str) -> Result<Option<DeviceRow>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLS} FROM devices d LEFT JOIN device_provision p ON p.device_id = d.id \
         WHERE d.id = $1"
        );
        // Only constant column lists are formatted in; the value is bound.
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(device_row).transpose()
    }
}

/// A device registered under a Zigbee2MQTT name (or a bridge under its path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZigbeeNameRow {
    /// Device id.
    pub device_id: String,
    /// Zigbee2MQTT name, or the bridge's path.
    pub zigbee_name: String,
    /// Kind.
    pub kind: String,
}

impl Store {
    /// Every registered device that has a Zigbee2MQTT name.
    pub async fn zigbee_names(&self) -> Result<Vec<ZigbeeNameRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.device_id, p.zigbee_name, d.kind FROM device_provision p \
             JOIN devices d ON d.id = p.device_id WHERE p.zigbee_name IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ZigbeeNameRow {
                    device_id: r.try_get("device_id")?,
                    zigbee_name: r.try_get("zigbee_name")?,
                    kind: r.try_get("kind")?,
                })
            })
            .collect()
    }
}

/// Households as the dashboard names them.
impl Store {
    /// Every household's address, by id.
    pub async fn household_addresses(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, address FROM households")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// The households `caseworker` looks after, as their caseworker or as the backup
    /// (备岗).
    pub async fn households_of_caseworker(
        &self,
        caseworker: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM households WHERE caseworker_id = $1 OR backup_id = $1",
        )
        .bind(caseworker)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The households of `committee`.
    pub async fn households_of_committee(
        &self,
        committee: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM households WHERE committee_id = $1")
                .bind(committee)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The households of every committee of `street`.
    pub async fn households_of_street(&self, street: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT h.id FROM households h JOIN committees c ON c.id = h.committee_id \
             WHERE c.street_id = $1",
        )
        .bind(street)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A household's name and address, if it exists.
    pub async fn household_name_address(
        &self,
        id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT name, address FROM households WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// Whether household `id` exists.
pub async fn household_exists(conn: &mut Conn, id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT id FROM households WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Whether device id `id` is registered.
pub async fn device_exists(conn: &mut Conn, id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT id FROM devices WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// The household and kind device `id` is registered with, if it is.
pub async fn device_binding(
    conn: &mut Conn,
    id: &str,
) -> Result<Option<(Option<String>, String)>, StoreError> {
    let row = sqlx::query("SELECT household_id, kind FROM devices WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| Ok((r.try_get("household_id")?, r.try_get("kind")?)))
        .transpose()
}

/// Registers a device through provisioning: a device already known (same household and
/// kind, checked by the caller) keeps its row and gains the room when one is given.
pub async fn insert_registered_device(
    conn: &mut Conn,
    id: &str,
    household: Option<&str>,
    kind: &str,
    room: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO devices (id, household_id, kind, room, created_ms) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET room = COALESCE(excluded.room, devices.room)",
    )
    .bind(id)
    .bind(household)
    .bind(kind)
    .bind(room)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts households in one multi-row statement, leaving existing ones as they are
/// (the bench population).
pub async fn insert_households_if_absent(
    conn: &mut Conn,
    backend: Backend,
    rows: &[NewHousehold],
    now_ms: i64,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO households (id, name, address, created_ms) VALUES {} ON CONFLICT (id) DO NOTHING",
        placeholders(backend, rows.len(), 4)
    );
    // Only placeholders are generated; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for h in rows {
        q = q.bind(&h.id).bind(&h.name).bind(&h.address).bind(now_ms);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Inserts devices in one multi-row statement, leaving existing ones as they are (the
/// bench population).
pub async fn insert_devices_if_absent(
    conn: &mut Conn,
    backend: Backend,
    rows: &[NewDevice],
    now_ms: i64,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO devices (id, household_id, kind, room, created_ms) VALUES {} ON CONFLICT (id) DO NOTHING",
        placeholders(backend, rows.len(), 5)
    );
    // Only placeholders are generated; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for d in rows {
        q = q
            .bind(&d.id)
            .bind(&d.household_id)
            .bind(&d.kind)
            .bind(&d.room)
            .bind(now_ms);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Gives `devices` the same first-generation secret (its embedded broker hash, hex) in
/// one multi-row statement, leaving devices that have credentials as they are (the
/// bench's reconnect storm).
pub async fn insert_bench_credentials(
    conn: &mut Conn,
    backend: Backend,
    devices: &[String],
    secret_hash: &str,
    now_ms: i64,
    by: &str,
) -> Result<(), StoreError> {
    if devices.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO device_provision (device_id, secret_hash, generation, issued_ms, registered_ms, registered_by) \
         VALUES {} ON CONFLICT (device_id) DO NOTHING",
        placeholders(backend, devices.len(), 6)
    );
    // Only placeholders are generated; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for d in devices {
        q = q
            .bind(d)
            .bind(secret_hash)
            .bind(1_i64)
            .bind(now_ms)
            .bind(now_ms)
            .bind(by);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}
