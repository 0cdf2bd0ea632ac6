//! The registry: households and the devices that belong to them.

use sqlx::Row;

use super::{Store, StoreError};

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

/// A registered device as ingest needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// Household, if bound.
    pub household_id: Option<String>,
    /// Kind.
    pub kind: String,
    /// Room.
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

    /// Every registered device.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
        let rows = sqlx::query("SELECT id, household_id, kind, room FROM devices ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceInfo {
                    id: r.try_get("id")?,
                    household_id: r.try_get("household_id")?,
                    kind: r.try_get("kind")?,
                    room: r.try_get("room")?,
                })
            })
            .collect()
    }
}
