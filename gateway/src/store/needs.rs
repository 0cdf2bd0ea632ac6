//! The needs list (`needs`): a need recorded from a contact, an alert or on its own,
//! assigned, fulfilled or cancelled, and listed by filter. What the statuses mean is the
//! workflow's business (`workflow/needs.rs`); this file keeps the statements.

use sqlx::FromRow;

use super::organisation::HouseholdScope;
use super::sql::SqlBuilder;
use super::{Conn, Store, StoreError};

/// The columns of a need (`n`: needs).
macro_rules! need_columns {
    () => {
        "n.id, n.household_id, n.category, n.description, n.status, \
         n.source_contact_id, n.source_alert_id, n.created_ms, n.created_by, n.assignee_id, \
         n.due_ms, n.fulfilled_ms, n.fulfilled_by, n.outcome_note, n.updated_ms"
    };
}

/// A need, as stored (category and status as their names).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NeedRow {
    /// Id.
    pub id: String,
    /// Household.
    pub household_id: String,
    /// Category.
    pub category: String,
    /// What exactly.
    pub description: String,
    /// Status.
    pub status: String,
    /// The contact it came from.
    pub source_contact_id: Option<String>,
    /// The alert it came from.
    pub source_alert_id: Option<String>,
    /// Recorded at.
    pub created_ms: i64,
    /// By (`user:…`).
    pub created_by: String,
    /// Who takes care of it.
    pub assignee_id: Option<String>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewNeedRow<'a> {
    /// Id.
    pub id: &'a str,
    /// Household.
    pub household_id: &'a str,
    /// Category name.
    pub category: &'a str,
    /// What exactly.
    pub description: &'a str,
    /// Status name.
    pub status: &'a str,
    /// The contact it came from.
    pub source_contact_id: Option<&'a str>,
    /// The alert it came from.
    pub source_alert_id: Option<&'a str>,
    /// Recorded (and last changed) at.
    pub created_ms: i64,
    /// By (`user:…`).
    pub created_by: &'a str,
    /// Who takes care of it.
    pub assignee_id: Option<&'a str>,
    /// By when.
    pub due_ms: Option<i64>,
}

/// Which needs to list (every field narrows the list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeedQuery<'a> {
    /// Households in scope.
    pub scope: Option<HouseholdScope<'a>>,
    /// Of one household.
    pub household_id: Option<&'a str>,
    /// Assigned to.
    pub assignee_id: Option<&'a str>,
    /// Created at or after.
    pub from_ms: Option<i64>,
    /// Created before.
    pub to_ms: Option<i64>,
    /// Only these status names (empty: all).
    pub statuses: &'a [&'a str],
}

/// Records a need, through `conn` (the caller's transaction).
pub async fn insert_need(conn: &mut Conn, n: &NewNeedRow<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO needs (id, household_id, category, description, status, source_contact_id, \
         source_alert_id, created_ms, created_by, assignee_id, due_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $8)",
    )
    .bind(n.id)
    .bind(n.household_id)
    .bind(n.category)
    .bind(n.description)
    .bind(n.status)
    .bind(n.source_contact_id)
    .bind(n.source_alert_id)
    .bind(n.created_ms)
    .bind(n.created_by)
    .bind(n.assignee_id)
    .bind(n.due_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Assigns need `id` to `assignee` (due by `due_ms` when given), through `conn` (the
/// caller's transaction).
pub async fn assign_need(
    conn: &mut Conn,
    id: &str,
    assignee: &str,
    due_ms: Option<i64>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE needs SET assignee_id = $1, due_ms = COALESCE($2, due_ms), status = 'assigned', \
         updated_ms = $3 WHERE id = $4",
    )
    .bind(assignee)
    .bind(due_ms)
    .bind(now_ms)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Closes need `id` with status `status` (fulfilled or cancelled) at `now_ms` by `by`
/// with `note`, through `conn` (the caller's transaction).
pub async fn finish_need(
    conn: &mut Conn,
    id: &str,
    status: &str,
    by: &str,
    note: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE needs SET status = $1, fulfilled_ms = $2, fulfilled_by = $3, outcome_note = $4, \
         updated_ms = $2 WHERE id = $5",
    )
    .bind(status)
    .bind(now_ms)
    .bind(by)
    .bind(note)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// One need.
    pub async fn need(&self, id: &str) -> Result<Option<NeedRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            need_columns!(),
            " FROM needs n WHERE n.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The needs `f` selects, oldest first.
    pub async fn needs(&self, f: &NeedQuery<'_>) -> Result<Vec<NeedRow>, StoreError> {
        let mut q = SqlBuilder::new(concat!(
            "SELECT ",
            need_columns!(),
            " FROM needs n JOIN households h ON h.id = n.household_id WHERE 1 = 1"
        ));
        if let Some(s) = f.scope {
            q.push(" AND ");
            s.push_condition(&mut q);
        }
        if let Some(h) = f.household_id {
            q.push(" AND n.household_id = ").push_bind(h.to_string());
        }
        if let Some(a) = f.assignee_id {
            q.push(" AND n.assignee_id = ").push_bind(a.to_string());
        }
        if let Some(t) = f.from_ms {
            q.push(" AND n.created_ms >= ").push_bind(t);
        }
        if let Some(t) = f.to_ms {
            q.push(" AND n.created_ms < ").push_bind(t);
        }
        if let Some((first, rest)) = f.statuses.split_first() {
            q.push(" AND n.status IN (").push_bind(first.to_string());
            for s in rest {
                q.push(", ").push_bind(s.to_string());
            }
            q.push(")");
        }
        q.push(" ORDER BY n.created_ms, n.id");
        let rows = q.build()?.fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(NeedRow::from_row(r)?)).collect()
    }
}
