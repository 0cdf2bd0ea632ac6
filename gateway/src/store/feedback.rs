//! The devices that device feedback and check-ins are addressed to: a household's
//! devices (`devices`), read inside the caller's transaction through a [`Conn`], so that
//! the commands queued for them commit with the change that caused them. Provisioning's
//! own reads of the device table are in `devices.rs`.

use super::{Conn, StoreError};

/// The devices of `household` of `kind` (`help`, `pendant`, `gas`…), by id, through
/// `conn`.
pub async fn household_device_ids_of_kind(
    conn: &mut Conn,
    household: &str,
    kind: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM devices WHERE household_id = $1 AND kind = $2 ORDER BY id",
    )
    .bind(household)
    .bind(kind)
    .fetch_all(&mut *conn)
    .await?)
}

/// Every device of `household` as (id, kind), by id, through `conn`.
pub async fn household_device_kinds(
    conn: &mut Conn,
    household: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, kind FROM devices WHERE household_id = $1 ORDER BY id")
            .bind(household)
            .fetch_all(&mut *conn)
            .await?,
    )
}
