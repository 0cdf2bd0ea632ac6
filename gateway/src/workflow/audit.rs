//! The append-only audit trail (即接即办, 工作闭环): every action on alerts, contacts,
//! needs, assignments and imports, with who, when and what. Rows are only ever
//! inserted; nothing in the gateway updates or deletes them.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Actor, WorkflowError, WorkflowHandle, new_id};

/// One entry of the trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Entry id (time-ordered).
    pub id: String,
    /// When.
    pub at_ms: i64,
    /// Who: `user:ID`, `device:ID` or `system`.
    pub actor: String,
    /// What, e.g. `alert.acknowledge`.
    pub action: String,
    /// Kind of record: `alert`, `household`, `contact`, `need`, `visit_task`, `org`.
    pub entity: String,
    /// Its id.
    pub entity_id: String,
    /// The household concerned.
    pub household_id: Option<String>,
    /// Details (JSON).
    pub detail: serde_json::Value,
}

/// Appends an entry in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record(
    conn: &mut AnyConnection,
    at_ms: i64,
    actor: &Actor,
    action: &str,
    entity: &str,
    entity_id: &str,
    household_id: Option<&str>,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit (id, at_ms, actor, action, entity, entity_id, household_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_id("au", at_ms))
    .bind(at_ms)
    .bind(actor.audit_name())
    .bind(action)
    .bind(entity)
    .bind(entity_id)
    .bind(household_id)
    .bind(detail.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

fn entry(r: &sqlx::any::AnyRow) -> Result<AuditEntry, sqlx::Error> {
    let detail: String = r.try_get("detail")?;
    Ok(AuditEntry {
        id: r.try_get("id")?,
        at_ms: r.try_get("at_ms")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        entity: r.try_get("entity")?,
        entity_id: r.try_get("entity_id")?,
        household_id: r.try_get("household_id")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    })
}

impl WorkflowHandle {
    /// The trail of one record (`entity` = `alert`, `need`, …), oldest first.
    pub async fn audit_trail(
        &self,
        entity: &str,
        entity_id: &str,
    ) -> Result<Vec<AuditEntry>, WorkflowError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, entity, entity_id, household_id, detail FROM audit \
             WHERE entity = $1 AND entity_id = $2 ORDER BY at_ms, id",
        )
        .bind(entity)
        .bind(entity_id)
        .fetch_all(self.inner.store.pool())
        .await?;
        Ok(rows.iter().map(entry).collect::<Result<_, _>>()?)
    }

    /// Everything that happened around a household, oldest first.
    pub async fn household_trail(
        &self,
        household_id: &str,
    ) -> Result<Vec<AuditEntry>, WorkflowError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, entity, entity_id, household_id, detail FROM audit \
             WHERE household_id = $1 ORDER BY at_ms, id",
        )
        .bind(household_id)
        .fetch_all(self.inner.store.pool())
        .await?;
        Ok(rows.iter().map(entry).collect::<Result<_, _>>()?)
    }

    /// Records that `actor` read a household's data (`what`: e.g. `household.view`);
    /// the API calls this for reads.
    pub async fn record_read(
        &self,
        actor: &Actor,
        household_id: &str,
        what: &str,
    ) -> Result<(), WorkflowError> {
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        record(
            &mut tx,
            now,
            actor,
            what,
            "household",
            household_id,
            Some(household_id),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
