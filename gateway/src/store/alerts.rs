//! Reads of the alerts table (`alerts`) for the dashboard: the open alerts of the
//! households on a screen, a household's alerts of a day, devices with a technician
//! alert. The workflow's own alert statements are in `workflow/`.

use std::collections::HashSet;

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

/// An alert raised in a window, for a household's day timeline.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RaisedAlertRow {
    /// Raised at.
    pub raised_ms: i64,
    /// Kind.
    pub kind: String,
    /// The device it is about.
    pub device_id: Option<String>,
    /// State.
    pub state: String,
    /// Severity.
    pub severity: String,
    /// How it was closed.
    pub outcome: Option<String>,
}

impl Store {
    /// The alerts of `household` raised in `from_ms..to_ms`.
    pub async fn alerts_raised_between(
        &self,
        household: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RaisedAlertRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT raised_ms, kind, device_id, state, severity, outcome FROM alerts \
             WHERE household_id = $1 AND raised_ms >= $2 AND raised_ms < $3",
        )
        .bind(household)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The devices with an open technician alert.
    pub async fn devices_with_open_technician_alerts(&self) -> Result<HashSet<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT device_id FROM alerts WHERE closed_ms IS NULL AND audience = 'technician' \
             AND device_id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().collect())
    }
}

/// An open alert of a household for its caseworker, briefly (the morning list).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CaseworkerAlertRow {
    /// Alert id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: String,
    /// State.
    pub state: String,
}

/// The open alerts of `household` whose audience is its caseworker, oldest first,
/// through `conn`.
pub async fn open_caseworker_alerts(
    conn: &mut super::Conn,
    household: &str,
) -> Result<Vec<CaseworkerAlertRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, kind, severity, state FROM alerts WHERE household_id = $1 \
         AND closed_ms IS NULL AND audience = 'caseworker' ORDER BY raised_ms",
    )
    .bind(household)
    .fetch_all(&mut *conn)
    .await?)
}
