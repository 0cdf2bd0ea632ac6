//! The daily-contact ledger (`contacts`) and visit tasks (`visit_tasks`): contacts
//! recorded and read by the workflow (a household's day, the ledger of a scope), the
//! visit tasks a contact makes or closes, and the reads of the dashboard's tiles.

use std::collections::HashSet;

use sqlx::{FromRow, Row};

use super::organisation::HouseholdScope;
use super::sql::SqlBuilder;
use super::{Conn, Store, StoreError};

/// A contact in the ledger, as stored (method and outcome as their names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// Household.
    pub household_id: String,
    /// When.
    pub at_ms: i64,
    /// Its local day (`YYYY-MM-DD`).
    pub day: String,
    /// Phone, visit…
    pub method: String,
    /// Outcome.
    pub outcome: String,
}

impl Store {
    /// The contacts since `from_ms` of `household`, or of every household, oldest first.
    pub async fn contacts_since(
        &self,
        from_ms: i64,
        household: Option<&str>,
    ) -> Result<Vec<ContactRow>, StoreError> {
        let mut q = SqlBuilder::new(
            "SELECT household_id, at_ms, day, method, outcome FROM contacts WHERE at_ms >= ",
        );
        q.push_bind(from_ms);
        if let Some(h) = household {
            q.push(" AND household_id = ").push_bind(h);
        }
        q.push(" ORDER BY at_ms");
        let rows = q.build()?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ContactRow {
                    household_id: r.try_get("household_id")?,
                    at_ms: r.try_get("at_ms")?,
                    day: r.try_get("day")?,
                    method: r.try_get("method")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }

    /// The households with an open visit task.
    pub async fn households_with_open_visits(&self) -> Result<HashSet<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT household_id FROM visit_tasks WHERE state = 'open'")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("household_id")?))
            .collect()
    }
}

/// A contact to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewContactRow<'a> {
    /// Id.
    pub id: &'a str,
    /// Household.
    pub household_id: &'a str,
    /// Who made it.
    pub user_id: &'a str,
    /// Its local day (`YYYY-MM-DD`).
    pub day: &'a str,
    /// When.
    pub at_ms: i64,
    /// Method name.
    pub method: &'a str,
    /// Outcome name.
    pub outcome: &'a str,
    /// Note.
    pub note: &'a str,
    /// Recorded at.
    pub created_ms: i64,
}

/// A recorded contact, as stored (method and outcome as their names).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ContactRecordRow {
    /// Id.
    pub id: String,
    /// Household.
    pub household_id: String,
    /// Who made it.
    pub user_id: String,
    /// Local day.
    pub day: String,
    /// When.
    pub at_ms: i64,
    /// Method.
    pub method: String,
    /// Outcome.
    pub outcome: String,
    /// Note.
    pub note: String,
}

/// Records a contact, through `conn` (the caller's transaction).
pub async fn insert_contact(conn: &mut Conn, c: &NewContactRow<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO contacts (id, household_id, user_id, day, at_ms, method, outcome, note, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(c.id)
    .bind(c.household_id)
    .bind(c.user_id)
    .bind(c.day)
    .bind(c.at_ms)
    .bind(c.method)
    .bind(c.outcome)
    .bind(c.note)
    .bind(c.created_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// How many contacts `household` had on local day `day`, through `conn`.
pub async fn contacts_on_day(
    conn: &mut Conn,
    household: &str,
    day: &str,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM contacts WHERE household_id = $1 AND day = $2")
            .bind(household)
            .bind(day)
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?,
    )
}

impl Store {
    /// One contact (an error when there is none: the caller has just recorded it).
    pub async fn contact(&self, id: &str) -> Result<ContactRecordRow, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, household_id, user_id, day, at_ms, method, outcome, note FROM contacts WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The contacts of households in `scope` on local days `from..=to` (`YYYY-MM-DD`),
    /// in time order.
    pub async fn contacts_between(
        &self,
        scope: HouseholdScope<'_>,
        from: &str,
        to: &str,
    ) -> Result<Vec<ContactRecordRow>, StoreError> {
        let mut q = SqlBuilder::new(
            "SELECT ct.id, ct.household_id, ct.user_id, ct.day, ct.at_ms, ct.method, ct.outcome, ct.note \
             FROM contacts ct JOIN households h ON h.id = ct.household_id \
             WHERE ct.day >= ",
        );
        q.push_bind(from.to_string())
            .push(" AND ct.day <= ")
            .push_bind(to.to_string())
            .push(" AND ");
        scope.push_condition(&mut q);
        q.push(" ORDER BY ct.at_ms, ct.id");
        let rows = q.build()?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(ContactRecordRow::from_row(r)?))
            .collect()
    }
}

/// The columns of a visit task.
macro_rules! task_columns {
    () => {
        "id, household_id, assignee_id, day, reason, contact_id, state, created_ms, done_ms, done_by, note"
    };
}

/// A visit task, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VisitTaskRow {
    /// Id.
    pub id: String,
    /// Household.
    pub household_id: String,
    /// Who goes.
    pub assignee_id: Option<String>,
    /// Local day it was made.
    pub day: String,
    /// Why.
    pub reason: String,
    /// The contact that made it.
    pub contact_id: Option<String>,
    /// `open`, `done`, `cancelled`.
    pub state: String,
    /// Made at.
    pub created_ms: i64,
    /// Done at.
    pub done_ms: Option<i64>,
    /// By.
    pub done_by: Option<String>,
    /// Note.
    pub note: Option<String>,
}

/// A visit task to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewVisitTask<'a> {
    /// Id.
    pub id: &'a str,
    /// Household.
    pub household_id: &'a str,
    /// Who goes.
    pub assignee_id: &'a str,
    /// Local day.
    pub day: &'a str,
    /// Why.
    pub reason: &'a str,
    /// The contact that made it.
    pub contact_id: &'a str,
    /// Made at.
    pub created_ms: i64,
}

/// The ids of `household`'s open visit tasks, through `conn` (the caller's
/// transaction).
pub async fn open_visit_task_ids(
    conn: &mut Conn,
    household: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM visit_tasks WHERE household_id = $1 AND state = 'open'")
            .bind(household)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// How many open visit tasks `household` has, through `conn`.
pub async fn open_visit_task_count(conn: &mut Conn, household: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM visit_tasks WHERE household_id = $1 AND state = 'open'",
    )
    .bind(household)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?)
}

/// Marks visit task `id` done at `at_ms` by `by` with `note`, through `conn` (the
/// caller's transaction).
pub async fn finish_visit_task(
    conn: &mut Conn,
    id: &str,
    at_ms: i64,
    by: &str,
    note: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE visit_tasks SET state = 'done', done_ms = $1, done_by = $2, note = $3 \
         WHERE id = $4",
    )
    .bind(at_ms)
    .bind(by)
    .bind(note)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Opens a visit task, through `conn` (the caller's transaction).
pub async fn insert_visit_task(conn: &mut Conn, t: &NewVisitTask<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO visit_tasks (id, household_id, assignee_id, day, reason, contact_id, \
         state, created_ms) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7)",
    )
    .bind(t.id)
    .bind(t.household_id)
    .bind(t.assignee_id)
    .bind(t.day)
    .bind(t.reason)
    .bind(t.contact_id)
    .bind(t.created_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// One visit task.
    pub async fn visit_task(&self, id: &str) -> Result<Option<VisitTaskRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            task_columns!(),
            " FROM visit_tasks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The open visit tasks of `assignee`, or of everyone, oldest first.
    pub async fn open_visit_tasks(
        &self,
        assignee: Option<&str>,
    ) -> Result<Vec<VisitTaskRow>, StoreError> {
        Ok(match assignee {
            Some(a) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    task_columns!(),
                    " FROM visit_tasks WHERE state = 'open' AND assignee_id = $1 \
                     ORDER BY created_ms"
                ))
                .bind(a)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    task_columns!(),
                    " FROM visit_tasks WHERE state = 'open' ORDER BY created_ms"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        })
    }
}
