//! Reads of the alerts table (`alerts`) for the dashboard: the open alerts of the
//! households on a screen. The workflow's own alert statements are in `workflow/`.

use sqlx::Row;

use super::{Store, StoreError};

/// An open alert, as stored (kind, severity, state and audience as their names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlertRow {
    /// Alert id.
    pub id: String,
    /// Household.
    pub household_id: String,
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: String,
    /// State.
    pub state: String,
    /// Raised at.
    pub raised_ms: i64,
    /// Who it is for.
    pub audience: String,
}

impl Store {
    /// The open alerts of `household`, or of every household, oldest first.
    pub async fn open_alerts(
        &self,
        household: Option<&str>,
    ) -> Result<Vec<OpenAlertRow>, StoreError> {
        let rows = match household {
            Some(h) => sqlx::query(
                "SELECT id, household_id, kind, severity, state, raised_ms, audience FROM alerts \
                     WHERE closed_ms IS NULL AND household_id = $1 ORDER BY raised_ms",
            )
            .bind(h)
            .fetch_all(&self.pool)
            .await?,
            None => sqlx::query(
                "SELECT id, household_id, kind, severity, state, raised_ms, audience FROM alerts \
                     WHERE closed_ms IS NULL AND household_id IS NOT NULL ORDER BY raised_ms",
            )
            .fetch_all(&self.pool)
            .await?,
        };
        rows.iter()
            .map(|r| {
                Ok(OpenAlertRow {
                    id: r.try_get("id")?,
                    household_id: r.try_get("household_id")?,
                    kind: r.try_get("kind")?,
                    severity: r.try_get("severity")?,
                    state: r.try_get("state")?,
                    raised_ms: r.try_get("raised_ms")?,
                    audience: r.try_get("audience")?,
                })
            })
            .collect()
    }
}
