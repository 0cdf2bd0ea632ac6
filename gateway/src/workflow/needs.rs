//! The needs list (需求名单库): medicine, food, repairs, an escort to hospital — created
//! from a contact or an alert, assigned, and tracked to fulfilment with dates.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use super::org::Scope;
use super::{
    Actor, HouseholdId, NeedCategory, NeedId, NeedStatus, UserId, WorkflowError, WorkflowHandle,
    audit, new_id,
};

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

const COLUMNS: &str = "n.id, n.household_id, n.category, n.description, n.status, \
     n.source_contact_id, n.source_alert_id, n.created_ms, n.created_by, n.assignee_id, \
     n.due_ms, n.fulfilled_ms, n.fulfilled_by, n.outcome_note, n.updated_ms";

fn need_row(r: &sqlx::any::AnyRow) -> Result<Need, sqlx::Error> {
    let category: String = r.try_get("category")?;
    let status: String = r.try_get("status")?;
    Ok(Need {
        id: NeedId(r.try_get("id")?),
        household_id: HouseholdId(r.try_get("household_id")?),
        category: NeedCategory::parse(&category).unwrap_or(NeedCategory::Other),
        description: r.try_get("description")?,
        status: NeedStatus::parse(&status).unwrap_or(NeedStatus::Open),
        source_contact_id: r.try_get("source_contact_id")?,
        source_alert_id: r.try_get("source_alert_id")?,
        created_ms: r.try_get("created_ms")?,
        created_by: r.try_get("created_by")?,
        assignee_id: r.try_get::<Option<String>, _>("assignee_id")?.map(UserId),
        due_ms: r.try_get("due_ms")?,
        fulfilled_ms: r.try_get("fulfilled_ms")?,
        fulfilled_by: r.try_get("fulfilled_by")?,
        outcome_note: r.try_get("outcome_note")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

/// Inserts a need in the caller's transaction (with its audit entry).
pub(crate) async fn insert_need(
    conn: &mut AnyConnection,
    actor: &Actor,
    n: &NewNeed,
    source_contact_id: Option<&str>,
    now: i64,
) -> Result<NeedId, sqlx::Error> {
    let id = NeedId(new_id("nd", now));
    let status = if n.assignee_id.is_some() {
        NeedStatus::Assigned
    } else {
        NeedStatus::Open
    };
    sqlx::query(
        "INSERT INTO needs (id, household_id, category, description, status, source_contact_id, \
         source_alert_id, created_ms, created_by, assignee_id, due_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $8)",
    )
    .bind(id.as_str())
    .bind(n.household_id.as_str())
    .bind(n.category.as_str())
    .bind(n.description.trim())
    .bind(status.as_str())
    .bind(source_contact_id)
    .bind(&n.source_alert_id)
    .bind(now)
    .bind(actor.audit_name())
    .bind(n.assignee_id.as_ref().map(|u| u.0.clone()))
    .bind(n.due_ms)
    .execute(&mut *conn)
    .await?;
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
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM needs n WHERE n.id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(self.inner.store.pool())
        .await?
        .ok_or_else(|| WorkflowError::UnknownNeed(id.0.clone()))?;
        Ok(need_row(&row)?)
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
        sqlx::query(
            "UPDATE needs SET assignee_id = $1, due_ms = COALESCE($2, due_ms), status = 'assigned', \
             updated_ms = $3 WHERE id = $4",
        )
        .bind(assignee.as_str())
        .bind(due_ms)
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
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
        sqlx::query(
            "UPDATE needs SET status = $1, fulfilled_ms = $2, fulfilled_by = $3, outcome_note = $4, \
             updated_ms = $2 WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(actor.audit_name())
        .bind(note.trim())
        .bind(id.as_str())
        .execute(&mut *tx)
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
        let mut conds = vec!["1 = 1".to_string()];
        let mut texts: Vec<(usize, String)> = vec![];
        let mut ints: Vec<(usize, i64)> = vec![];
        let mut n = 1;
        if let Some(s) = &f.scope {
            let (c, b) = s.household_condition(n);
            conds.push(c);
            if let Some(b) = b {
                texts.push((n, b));
                n += 1;
            }
        }
        if let Some(h) = &f.household_id {
            conds.push(format!("n.household_id = ${n}"));
            texts.push((n, h.clone()));
            n += 1;
        }
        if let Some(a) = &f.assignee_id {
            conds.push(format!("n.assignee_id = ${n}"));
            texts.push((n, a.0.clone()));
            n += 1;
        }
        if let Some(t) = f.from_ms {
            conds.push(format!("n.created_ms >= ${n}"));
            ints.push((n, t));
            n += 1;
        }
        if let Some(t) = f.to_ms {
            conds.push(format!("n.created_ms < ${n}"));
            ints.push((n, t));
            n += 1;
        }
        if !f.statuses.is_empty() {
            // Closed list: the names are constants, not user text.
            let list = f
                .statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            conds.push(format!("n.status IN ({list})"));
        }
        let _ = n;
        let sql = format!(
            "SELECT {COLUMNS} FROM needs n JOIN households h ON h.id = n.household_id \
             WHERE {} ORDER BY n.created_ms, n.id",
            conds.join(" AND ")
        );
        // Bind in placeholder order.
        let mut all: Vec<(usize, Result<String, i64>)> = texts
            .into_iter()
            .map(|(i, s)| (i, Ok(s)))
            .chain(ints.into_iter().map(|(i, v)| (i, Err(v))))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (_, v) in all {
            q = match v {
                Ok(s) => q.bind(s),
                Err(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(self.inner.store.pool()).await?;
        Ok(rows.iter().map(need_row).collect::<Result<_, _>>()?)
    }
}
