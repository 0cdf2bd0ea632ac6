//! The needs list (需求名单库): medicine, food, repairs, an escort to hospital — created
//! from a contact or an alert, assigned, and tracked to fulfilment with dates.

use serde::{Deserialize, Serialize};

use super::org::Scope;
use super::{
    Actor, HouseholdId, NeedCategory, NeedId, NeedStatus, UserId, WorkflowError, WorkflowHandle,
    audit, new_id,
};
use crate::store::{self, Conn, NeedQuery, NeedRow, NewNeedRow};

/// A need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Need {
    /// Id.
    pub id: NeedId,
    /// Household.
    pub household_id: HouseholdId,
    /// Category.
    pub category: NeedCategory,
    /// What exactly.
    pub description: String,
    /// Status.
    pub status: NeedStatus,
    /// The contact it came from.
    pub source_contact_id: Option<String>,
    /// The alert it came from.
    pub source_alert_id: Option<String>,
    /// Recorded at.
    pub created_ms: i64,
    /// By (`user:…`).
    pub created_by: String,
    /// Who takes care of it.
    pub assignee_id: Option<UserId>,
    /// By when.
    pub due_ms: Option<i64>,
    /// Fulfilled (or cancelled) at.
    pub fulfilled_ms: Option<i64>,
    /// By.
    pub fulfilled_by: Option<String>,
    /// What was done.
    pub outcome_note: Option<String>,
    /// Last change.
    pub updated_ms: i64,
}

/// A need to record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewNeed {
    /// Household.
    pub household_id: HouseholdId,
    /// Category.
    pub category: NeedCategory,
    /// What exactly (required).
    pub description: String,
    /// Who takes care of it (None: open).
    pub assignee_id: Option<UserId>,
    /// By when.
    pub due_ms: Option<i64>,
    /// The alert it came from.
    pub source_alert_id: Option<String>,
}

/// Which needs to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NeedFilter {
    /// Households in scope.
    pub scope: Option<Scope>,
    /// Of one household.
    pub household_id: Option<String>,
    /// Only these statuses (empty: all).
    pub statuses: Vec<NeedStatus>,
    /// Assigned to.
    pub assignee_id: Option<UserId>,
    /// Created at or after.
    pub from_ms: Option<i64>,
    /// Created before.
    pub to_ms: Option<i64>,
}

fn need_of(r: NeedRow) -> Need {
    Need {
        id: NeedId(r.id),
        household_id: HouseholdId(r.household_id),
        category: NeedCategory::parse(&r.category).unwrap_or(NeedCategory::Other),
        description: r.description,
        status: NeedStatus::parse(&r.status).unwrap_or(NeedStatus::Open),
        source_contact_id: r.source_contact_id,
        source_alert_id: r.source_alert_id,
        created_ms: r.created_ms,
        created_by: r.created_by,
        assignee_id: r.assignee_id.map(UserId),
        due_ms: r.due_ms,
        fulfilled_ms: r.fulfilled_ms,
        fulfilled_by: r.fulfilled_by,
        outcome_note: r.outcome_note,
        updated_ms: r.updated_ms,
    }
}

/// Inserts a need in the caller's transaction (with its audit entry).
pub(crate) async fn insert_need(
    conn: &mut Conn,
    actor: &Actor,
    n: &NewNeed,
    source_contact_id: Option<&str>,
    now: i64,
) -> Result<NeedId, WorkflowError> {
    let id = NeedId(new_id("nd", now));
    let status = if n.assignee_id.is_some() {
        NeedStatus::Assigned
    } else {
        NeedStatus::Open
    };
    let created_by = actor.audit_name();
    let row = NewNeedRow {
        id: id.as_str(),
        household_id: n.household_id.as_str(),
        category: n.category.as_str(),
        description: n.description.trim(),
        status: status.as_str(),
        source_contact_id,
        source_alert_id: n.source_alert_id.as_deref(),
        created_ms: now,
        created_by: &created_by,
        assignee_id: n.assignee_id.as_ref().map(UserId::as_str),
        due_ms: n.due_ms,
    };
    store::insert_need(conn, &row).await?;
    audit::record(
        conn,
        now,
        actor,
        "need.create",
        "need",
        id.as_str(),
        Some(n.household_id.as_str()),
        serde_json::json!({
            "category": n.category, "description": n.description.trim(),
            "assignee_id": n.assignee_id, "due_ms": n.due_ms,
            "source_contact_id": source_contact_id, "source_alert_id": n.source_alert_id,
        }),
    )
    .await?;
    Ok(id)
}

impl WorkflowHandle {
    /// One need.
    pub async fn need(&self, id: &NeedId) -> Result<Need, WorkflowError> {
        let row = self
            .inner
            .store
            .need(id.as_str())
            .await?
            .ok_or_else(|| WorkflowError::UnknownNeed(id.0.clone()))?;
        Ok(need_of(row))
    }

    /// Records a need (from an alert, or on its own; needs from a contact come with
    /// [`WorkflowHandle::record_contact`]).
    pub async fn create_need(&self, actor: &Actor, n: &NewNeed) -> Result<Need, WorkflowError> {
        self.check_actor(actor).await?;
        if n.description.trim().is_empty() {
            return Err(WorkflowError::Invalid {
                field: "description",
                reason: "say what is needed".into(),
            });
        }
        self.household(&n.household_id).await?;
        if let Some(a) = &n.assignee_id {
            self.user(a).await?;
        }
        if let Some(a) = &n.source_alert_id {
            // Another household's alert is no source of this household's need.
            let alert = self.alert(&super::AlertId(a.clone())).await?;
            if alert.household_id.as_deref() != Some(n.household_id.as_str()) {
                return Err(WorkflowError::UnknownAlert(a.clone()));
            }
        }
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        let id = insert_need(&mut tx, actor, n, None, now).await?;
        tx.commit().await?;
        self.need(&id).await
    }

    /// Makes `assignee` responsible for the need, due by `due_ms`.
    pub async fn assign_need(
        &self,
        actor: &Actor,
        id: &NeedId,
        assignee: &UserId,
        due_ms: Option<i64>,
    ) -> Result<Need, WorkflowError> {
        self.check_actor(actor).await?;
        self.user(assignee).await?;
        let need = self.need(id).await?;
        if matches!(need.status, NeedStatus::Fulfilled | NeedStatus::Cancelled) {
            return Err(WorkflowError::Invalid {
                field: "status",
                reason: format!("need {id} is {}", need.status),
            });
        }
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        store::assign_need(&mut tx, id.as_str(), assignee.as_str(), due_ms, now).await?;
        audit::record(
            &mut tx,
            now,
            actor,
            "need.assign",
            "need",
            id.as_str(),
            Some(need.household_id.as_str()),
            serde_json::json!({ "assignee_id": assignee, "due_ms": due_ms }),
        )
        .await?;
        tx.commit().await?;
        self.need(id).await
    }

    /// Closes the need as fulfilled (a note says what was done).
    pub async fn fulfil_need(
        &self,
        actor: &Actor,
        id: &NeedId,
        note: &str,
    ) -> Result<Need, WorkflowError> {
        self.finish_need(actor, id, note, NeedStatus::Fulfilled)
            .await
    }

    /// Closes the need as no longer needed (a note says why).
    pub async fn cancel_need(
        &self,
        actor: &Actor,
        id: &NeedId,
        note: &str,
    ) -> Result<Need, WorkflowError> {
        self.finish_need(actor, id, note, NeedStatus::Cancelled)
            .await
    }

    async fn finish_need(
        &self,
        actor: &Actor,
        id: &NeedId,
        note: &str,
        status: NeedStatus,
    ) -> Result<Need, WorkflowError> {
        self.check_actor(actor).await?;
        if note.trim().is_empty() {
            return Err(WorkflowError::Invalid {
                field: "note",
                reason: "say what was done".into(),
            });
        }
        let need = self.need(id).await?;
        if matches!(need.status, NeedStatus::Fulfilled | NeedStatus::Cancelled) {
            return Err(WorkflowError::Invalid {
                field: "status",
                reason: format!("need {id} is already {}", need.status),
            });
        }
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        store::finish_need(
            &mut tx,
            id.as_str(),
            status.as_str(),
            &actor.audit_name(),
            note.trim(),
            now,
        )
        .await?;
        audit::record(
            &mut tx,
            now,
            actor,
            if status == NeedStatus::Fulfilled {
                "need.fulfil"
            } else {
                "need.cancel"
            },
            "need",
            id.as_str(),
            Some(need.household_id.as_str()),
            serde_json::json!({ "note": note.trim() }),
        )
        .await?;
        tx.commit().await?;
        self.need(id).await
    }

    /// Needs matching `f`, oldest first.
    pub async fn needs(&self, f: &NeedFilter) -> Result<Vec<Need>, WorkflowError> {
        let statuses: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
        let query = NeedQuery {
            scope: f.scope.as_ref().map(Scope::households),
            household_id: f.household_id.as_deref(),
            assignee_id: f.assignee_id.as_ref().map(UserId::as_str),
            from_ms: f.from_ms,
            to_ms: f.to_ms,
            statuses: &statuses,
        };
        let rows = self.inner.store.needs(&query).await?;
        Ok(rows.into_iter().map(need_of).collect())
    }
}
