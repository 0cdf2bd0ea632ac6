//! The append-only audit trail (`audit`): entries are inserted in the transaction of the
//! change they record and never updated or deleted; the trail of a record or of a
//! household reads them back in order.

use super::{Conn, Store, StoreError};

/// An entry to append.
#[derive(Debug, Clone, Copy)]
pub struct NewAuditEntry<'a> {
    /// Entry id (time-ordered).
    pub id: &'a str,
    /// When.
    pub at_ms: i64,
    /// Who (`user:ID`, `device:ID` or `system`).
    pub actor: &'a str,
    /// What, e.g. `alert.acknowledge`.
    pub action: &'a str,
    /// Kind of record.
    pub entity: &'a str,
    /// Its id.
    pub entity_id: &'a str,
    /// The household concerned.
    pub household_id: Option<&'a str>,
    /// Details (JSON).
    pub detail: &'a str,
}

/// An entry of the trail, as stored (details as JSON text).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    /// Entry id.
    pub id: String,
    /// When.
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Kind of record.
    pub entity: String,
    /// Its id.
    pub entity_id: String,
    /// The household concerned.
    pub household_id: Option<String>,
    /// Details (JSON).
    pub detail: String,
}

/// Appends `e` to the trail through `conn` (the caller's transaction).
pub async fn insert_audit(conn: &mut Conn, e: &NewAuditEntry<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (id, at_ms, actor, action, entity, entity_id, household_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(e.id)
    .bind(e.at_ms)
    .bind(e.actor)
    .bind(e.action)
    .bind(e.entity)
    .bind(e.entity_id)
    .bind(e.household_id)
    .bind(e.detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// The trail of one record (`entity` = `alert`, `need`, …), oldest first.
    pub async fn audit_entries(
        &self,
        entity: &str,
        entity_id: &str,
    ) -> Result<Vec<AuditRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, at_ms, actor, action, entity, entity_id, household_id, detail FROM audit \
             WHERE entity = $1 AND entity_id = $2 ORDER BY at_ms, id",
        )
        .bind(entity)
        .bind(entity_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every entry about `household_id`, oldest first.
    pub async fn household_audit(&self, household_id: &str) -> Result<Vec<AuditRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, at_ms, actor, action, entity, entity_id, household_id, detail FROM audit \
             WHERE household_id = $1 ORDER BY at_ms, id",
        )
        .bind(household_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
