//! The append-only audit trail (即接即办, 工作闭环): every action on alerts, contacts,
//! needs, assignments and imports, with who, when and what. Rows are only ever
//! inserted; nothing in the gateway updates or deletes them.

use serde::Serialize;

use super::{Actor, WorkflowError, WorkflowHandle, new_id};
use crate::store::{self, AuditRow, Conn, NewAuditEntry, StoreError};

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
    conn: &mut Conn,
    at_ms: i64,
    actor: &Actor,
    action: &str,
    entity: &str,
    entity_id: &str,
    household_id: Option<&str>,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let id = new_id("au", at_ms);
    let actor = actor.audit_name();
    let detail = detail.to_string();
    let entry = NewAuditEntry {
        id: &id,
        at_ms,
        actor: &actor,
        action,
        entity,
        entity_id,
        household_id,
        detail: &detail,
    };
    store::insert_audit(conn, &entry).await
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at_ms: r.at_ms,
            actor: r.actor,
            action: r.action,
            entity: r.entity,
            entity_id: r.entity_id,
            household_id: r.household_id,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
        }
    }
}

impl WorkflowHandle {
    /// The trail of one record (`entity` = `alert`, `need`, …), oldest first.
    pub async fn audit_trail(
        &self,
        entity: &str,
        entity_id: &str,
    ) -> Result<Vec<AuditEntry>, WorkflowError> {
        let rows = self.inner.store.audit_entries(entity, entity_id).await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// Everything that happened around a household, oldest first.
    pub async fn household_trail(
        &self,
        household_id: &str,
    ) -> Result<Vec<AuditEntry>, WorkflowError> {
        let rows = self.inner.store.household_audit(household_id).await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
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
