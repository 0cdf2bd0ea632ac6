//! Reads of the daily-contact ledger (`contacts`) and of visit tasks (`visit_tasks`)
//! for the dashboard's tiles. The workflow's own statements on them are in `workflow/`.

use std::collections::HashSet;

use sqlx::Row;

use super::sql::SqlBuilder;
use super::{Store, StoreError};

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
