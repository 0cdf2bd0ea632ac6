//! The alerts table (`alerts`): the workflow's lifecycle statements (raise, repeat,
//! upgrade, acknowledge, progress, close, follow-up, the escalation plan and its
//! deadlines), most of them compare-and-sets on `version` that run inside the caller's
//! transaction through a [`Conn`]; and the dashboard's reads (the open alerts of the
//! households on a screen, a household's alerts of a day, devices with a technician
//! alert). What the values mean (kinds, states, policies) is the workflow's business;
//! rows come back as stored, names as strings.

use std::collections::HashSet;

use sqlx::Row;

use super::organisation::HouseholdScope;
use super::sql::SqlBuilder;
use super::{Conn, Store, StoreError};

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

/// Every column of an alert, in the order of [`AlertRow`]. A macro so that the
/// statements that read whole alerts are `&'static str` built by `concat!`.
macro_rules! alert_columns {
    () => {
        "id, household_id, device_id, kind, audience, severity, \
         state, reason, repeats, raised_ms, observed_ms, last_signal_ms, notified_ms, \
         acknowledged_ms, acknowledged_by, on_the_way_ms, on_the_way_by, arrived_ms, arrived_by, \
         condition_cleared_ms, closed_ms, closed_by, outcome, outcome_note, follow_up_due_ms, \
         follow_up_done_ms, policy, policy_start_ms, escalation_step, next_escalation_ms, \
         repeat_count, next_repeat_ms, arrival_due_ms, arrival_realarms, version"
    };
}

/// [`alert_columns!`] qualified with the alias `a` (the list joins `households h`).
const ALERT_COLUMNS_A: &str = "a.id, a.household_id, a.device_id, a.kind, a.audience, \
     a.severity, a.state, a.reason, a.repeats, a.raised_ms, a.observed_ms, a.last_signal_ms, \
     a.notified_ms, a.acknowledged_ms, a.acknowledged_by, a.on_the_way_ms, a.on_the_way_by, \
     a.arrived_ms, a.arrived_by, a.condition_cleared_ms, a.closed_ms, a.closed_by, a.outcome, \
     a.outcome_note, a.follow_up_due_ms, a.follow_up_done_ms, a.policy, a.policy_start_ms, \
     a.escalation_step, a.next_escalation_ms, a.repeat_count, a.next_repeat_ms, \
     a.arrival_due_ms, a.arrival_realarms, a.version";

const ALERT_BY_ID: &str = concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1");
const ALERT_BY_OPEN_KEY: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE open_key = $1"
);

/// An alert as stored: kind, audience, severity and state as their names (the workflow
/// parses them into its `Alert`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertRow {
    /// Id.
    pub id: String,
    /// Household (None: the gateway itself).
    pub household_id: Option<String>,
    /// Device that caused it.
    pub device_id: Option<String>,
    /// Kind.
    pub kind: String,
    /// Who acts on it.
    pub audience: String,
    /// Current severity.
    pub severity: String,
    /// State.
    pub state: String,
    /// Detection's reason (latest).
    pub reason: String,
    /// Signals after the first.
    pub repeats: i64,
    /// Raised at.
    pub raised_ms: i64,
    /// When the triggering observation happened.
    pub observed_ms: Option<i64>,
    /// Last signal at.
    pub last_signal_ms: i64,
    /// First notification delivered at.
    pub notified_ms: Option<i64>,
    /// Acknowledged at.
    pub acknowledged_ms: Option<i64>,
    /// By.
    pub acknowledged_by: Option<String>,
    /// On the way at.
    pub on_the_way_ms: Option<i64>,
    /// By.
    pub on_the_way_by: Option<String>,
    /// Arrived at.
    pub arrived_ms: Option<i64>,
    /// By.
    pub arrived_by: Option<String>,
    /// The condition ended by itself at.
    pub condition_cleared_ms: Option<i64>,
    /// Closed at.
    pub closed_ms: Option<i64>,
    /// By.
    pub closed_by: Option<String>,
    /// Outcome category.
    pub outcome: Option<String>,
    /// Outcome note.
    pub outcome_note: Option<String>,
    /// Follow-up due at.
    pub follow_up_due_ms: Option<i64>,
    /// Follow-up done at.
    pub follow_up_done_ms: Option<i64>,
    /// Escalation policy in force.
    pub policy: String,
    /// Start of the policy's clock.
    pub policy_start_ms: i64,
    /// Steps fired so far.
    pub escalation_step: i64,
    /// Next step due at.
    pub next_escalation_ms: Option<i64>,
    /// Repeat notifications so far.
    pub repeat_count: i64,
    /// Next repeat due at.
    pub next_repeat_ms: Option<i64>,
    /// Arrival must be confirmed by.
    pub arrival_due_ms: Option<i64>,
    /// Arrival re-alarms so far.
    pub arrival_realarms: i64,
    /// Version (compare-and-set).
    pub version: i64,
}

/// Which alerts to list (every field optional but the limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertQuery<'a> {
    /// Only open ones.
    pub open_only: bool,
    /// Of one household.
    pub household_id: Option<&'a str>,
    /// Of the households in a scope.
    pub scope: Option<HouseholdScope<'a>>,
    /// For one audience (its name).
    pub audience: Option<&'a str>,
    /// Raised at or after.
    pub from_ms: Option<i64>,
    /// Raised before.
    pub to_ms: Option<i64>,
    /// At most.
    pub limit: i64,
}

/// A new alert, raised now: its state `raised`, every counter at zero.
#[derive(Debug, Clone, Copy)]
pub struct NewAlert<'a> {
    /// Id.
    pub id: &'a str,
    /// Household.
    pub household_id: Option<&'a str>,
    /// Device.
    pub device_id: Option<&'a str>,
    /// Kind (its name).
    pub kind: &'a str,
    /// Audience (its name).
    pub audience: &'a str,
    /// Severity (its name).
    pub severity: &'a str,
    /// The key that keeps one open alert per household and kind (per device for
    /// technicians' alerts).
    pub open_key: &'a str,
    /// Detection's reason.
    pub reason: &'a str,
    /// Raised at (also the last signal and the start of the policy's clock).
    pub raised_ms: i64,
    /// When the triggering observation happened.
    pub observed_ms: Option<i64>,
    /// Escalation policy.
    pub policy: &'a str,
}

/// How an alert is closed.
#[derive(Debug, Clone, Copy)]
pub struct AlertClose<'a> {
    /// Id.
    pub id: &'a str,
    /// The version read (compare-and-set).
    pub version: i64,
    /// The closed state's name (`cancelled`, `cleared`, `resolved`).
    pub state: &'a str,
    /// Closed at.
    pub closed_ms: i64,
    /// By (audit name).
    pub closed_by: &'a str,
    /// Outcome category.
    pub outcome: &'a str,
    /// Outcome note.
    pub note: &'a str,
}

/// The escalation state of an alert after a pass over its deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertDeadlines {
    /// Steps fired so far.
    pub escalation_step: i64,
    /// Next step due at.
    pub next_escalation_ms: Option<i64>,
    /// Repeat notifications so far.
    pub repeat_count: i64,
    /// Next repeat due at.
    pub next_repeat_ms: Option<i64>,
    /// Arrival re-alarms so far.
    pub arrival_realarms: i64,
    /// Arrival must be confirmed by.
    pub arrival_due_ms: Option<i64>,
}

/// The deadlines of an open alert (what the deadline queue loads at start).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenDeadlineRow {
    /// Alert id.
    pub id: String,
    /// Next escalation step due at.
    pub next_escalation_ms: Option<i64>,
    /// Next repeat due at.
    pub next_repeat_ms: Option<i64>,
    /// Arrival must be confirmed by.
    pub arrival_due_ms: Option<i64>,
}

/// Alert `id`, read through `conn` (inside the caller's transaction).
pub async fn alert_by_id(conn: &mut Conn, id: &str) -> Result<Option<AlertRow>, StoreError> {
    Ok(sqlx::query_as(ALERT_BY_ID)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The open alert with `open_key`, read through `conn`.
pub async fn alert_by_open_key(
    conn: &mut Conn,
    open_key: &str,
) -> Result<Option<AlertRow>, StoreError> {
    Ok(sqlx::query_as(ALERT_BY_OPEN_KEY)
        .bind(open_key)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Writes `a` as a raised alert through `conn`. False when an alert with the same open
/// key is open already (nothing written).
pub async fn insert_alert(conn: &mut Conn, a: &NewAlert<'_>) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO alerts (id, household_id, device_id, kind, audience, severity, state, \
         open_key, reason, repeats, raised_ms, observed_ms, last_signal_ms, policy, \
         policy_start_ms, escalation_step, repeat_count, arrival_realarms, version) \
         VALUES ($1, $2, $3, $4, $5, $6, 'raised', $7, $8, 0, $9, $10, $9, $11, $9, 0, 0, 0, 0) \
         ON CONFLICT (open_key) DO NOTHING",
    )
    .bind(a.id)
    .bind(a.household_id)
    .bind(a.device_id)
    .bind(a.kind)
    .bind(a.audience)
    .bind(a.severity)
    .bind(a.open_key)
    .bind(a.reason)
    .bind(a.raised_ms)
    .bind(a.observed_ms)
    .bind(a.policy)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Records a delivered notification of alert `id` at `at_ms`, through `conn`: the first
/// delivery's time, and `raised` becomes `notified`.
pub async fn mark_alert_notified(conn: &mut Conn, id: &str, at_ms: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alerts SET notified_ms = COALESCE(notified_ms, $1), \
         state = CASE WHEN state = 'raised' THEN 'notified' ELSE state END \
         WHERE id = $2",
    )
    .bind(at_ms)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the escalation plan of alert `id` (the steps fired, the next step's and the next
/// reminder's deadlines), through `conn`.
pub async fn set_alert_plan(
    conn: &mut Conn,
    id: &str,
    escalation_step: i64,
    next_escalation_ms: Option<i64>,
    next_repeat_ms: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alerts SET escalation_step = $1, next_escalation_ms = $2, next_repeat_ms = $3 \
         WHERE id = $4",
    )
    .bind(escalation_step)
    .bind(next_escalation_ms)
    .bind(next_repeat_ms)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Counts a repeat signal of open alert `id` at `at_ms` (latest reason, the severity it
/// now has; a cleared condition is back), if it is still at `version`, through `conn`.
/// False when someone changed it meanwhile.
pub async fn count_alert_repeat(
    conn: &mut Conn,
    id: &str,
    version: i64,
    at_ms: i64,
    reason: &str,
    severity: &str,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE alerts SET repeats = repeats + 1, last_signal_ms = $1, reason = $2, \
         severity = $3, condition_cleared_ms = NULL, version = version + 1 \
         WHERE id = $4 AND version = $5",
    )
    .bind(at_ms)
    .bind(reason)
    .bind(severity)
    .bind(id)
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Moves acknowledged alert `id` to `policy` (an upgrade): the arrival clock starts at
/// `arrival_due_ms` unless it runs already, through `conn`.
pub async fn upgrade_acknowledged_alert(
    conn: &mut Conn,
    id: &str,
    policy: &str,
    arrival_due_ms: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alerts SET policy = $1, arrival_due_ms = COALESCE(arrival_due_ms, $2) \
         WHERE id = $3",
    )
    .bind(policy)
    .bind(arrival_due_ms)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Restarts alert `id` on `policy` from its first step, its clock at `start_ms` (an
/// upgrade before anybody acknowledged), through `conn`.
pub async fn restart_alert_policy(
    conn: &mut Conn,
    id: &str,
    policy: &str,
    start_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alerts SET policy = $1, policy_start_ms = $2, escalation_step = 0 \
         WHERE id = $3",
    )
    .bind(policy)
    .bind(start_ms)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that the condition of open alert `id` ended by itself at `at_ms`, if it is
/// still at `version`, through `conn`. False when someone changed it meanwhile.
pub async fn mark_condition_cleared(
    conn: &mut Conn,
    id: &str,
    version: i64,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE alerts SET condition_cleared_ms = $1, version = version + 1 \
         WHERE id = $2 AND version = $3",
    )
    .bind(at_ms)
    .bind(id)
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Closes alert `c.id` if it is still at `c.version`, through `conn`: its open key is
/// freed (a new alert of the kind may open) and every deadline is dropped. False when
/// someone changed it meanwhile.
pub async fn close_alert(conn: &mut Conn, c: &AlertClose<'_>) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE alerts SET state = $1, open_key = NULL, closed_ms = $2, closed_by = $3, \
         outcome = $4, outcome_note = $5, next_escalation_ms = NULL, next_repeat_ms = NULL, \
         arrival_due_ms = NULL, version = version + 1 WHERE id = $6 AND version = $7",
    )
    .bind(c.state)
    .bind(c.closed_ms)
    .bind(c.closed_by)
    .bind(c.outcome)
    .bind(c.note)
    .bind(c.id)
    .bind(c.version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Records that `by` took alert `id` at `at_ms`, if it is still at `version`, through
/// `conn`: escalation and reminders stop, the arrival clock is set to `arrival_due_ms`.
/// False when someone changed it meanwhile.
pub async fn acknowledge_alert(
    conn: &mut Conn,
    id: &str,
    version: i64,
    at_ms: i64,
    by: &str,
    arrival_due_ms: Option<i64>,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_ms = $1, acknowledged_by = $2, \
         next_escalation_ms = NULL, next_repeat_ms = NULL, arrival_due_ms = $3, \
         version = version + 1 WHERE id = $4 AND version = $5",
    )
    .bind(at_ms)
    .bind(by)
    .bind(arrival_due_ms)
    .bind(id)
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Records that `by` is on the way to alert `id`'s home at `at_ms`, if the alert is
/// still at `version`, through `conn`. False when someone changed it meanwhile.
pub async fn alert_on_the_way(
    conn: &mut Conn,
    id: &str,
    version: i64,
    at_ms: i64,
    by: &str,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE alerts SET state = 'on_the_way', on_the_way_ms = $1, on_the_way_by = $2, \
         version = version + 1 WHERE id = $3 AND version = $4",
    )
    .bind(at_ms)
    .bind(by)
    .bind(id)
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Records that `by` arrived at alert `id`'s home at `at_ms` (the arrival clock stops),
/// if the alert is still at `version`, through `conn`. False when someone changed it
/// meanwhile.
pub async fn alert_arrived(
    conn: &mut Conn,
    id: &str,
    version: i64,
    at_ms: i64,
    by: &str,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE alerts SET state = 'arrived', arrived_ms = $1, arrived_by = $2, \
         arrival_due_ms = NULL, version = version + 1 WHERE id = $3 AND version = $4",
    )
    .bind(at_ms)
    .bind(by)
    .bind(id)
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Records that `by` did the follow-up of alert `id` at `at_ms`, with `note`, through
/// `conn`.
pub async fn complete_alert_follow_up(
    conn: &mut Conn,
    id: &str,
    at_ms: i64,
    by: &str,
    note: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alerts SET follow_up_done_ms = $1, follow_up_by = $2, follow_up_note = $3, \
         version = version + 1 WHERE id = $4",
    )
    .bind(at_ms)
    .bind(by)
    .bind(note)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Claims alert `id` for a pass over its deadlines: bumps its version if it is still
/// `version`, through `conn`. False when someone changed it meanwhile.
pub async fn bump_alert_version(
    conn: &mut Conn,
    id: &str,
    version: i64,
) -> Result<bool, StoreError> {
    let changed =
        sqlx::query("UPDATE alerts SET version = version + 1 WHERE id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    Ok(changed > 0)
}

/// Stores the escalation state of alert `id` after a pass over its deadlines, through
/// `conn`.
pub async fn set_alert_deadlines(
    conn: &mut Conn,
    id: &str,
    d: &AlertDeadlines,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE alerts SET escalation_step = $1, next_escalation_ms = $2, repeat_count = $3, \
         next_repeat_ms = $4, arrival_realarms = $5, arrival_due_ms = $6 WHERE id = $7",
    )
    .bind(d.escalation_step)
    .bind(d.next_escalation_ms)
    .bind(d.repeat_count)
    .bind(d.next_repeat_ms)
    .bind(d.arrival_realarms)
    .bind(d.arrival_due_ms)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Alert `id`.
    pub async fn alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        Ok(sqlx::query_as(ALERT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The open alert with `open_key`.
    pub async fn alert_by_open_key(&self, open_key: &str) -> Result<Option<AlertRow>, StoreError> {
        Ok(sqlx::query_as(ALERT_BY_OPEN_KEY)
            .bind(open_key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The alerts matching `f`, newest first.
    pub async fn alerts(&self, f: &AlertQuery<'_>) -> Result<Vec<AlertRow>, StoreError> {
        let mut q = SqlBuilder::new("SELECT ");
        q.push(ALERT_COLUMNS_A)
            .push(" FROM alerts a LEFT JOIN households h ON h.id = a.household_id WHERE 1 = 1");
        if f.open_only {
            q.push(" AND a.closed_ms IS NULL");
        }
        if let Some(h) = f.household_id {
            q.push(" AND a.household_id = ").push_bind(h);
        }
        if let Some(s) = &f.scope {
            q.push(" AND ");
            s.push_condition(&mut q);
        }
        if let Some(a) = f.audience {
            q.push(" AND a.audience = ").push_bind(a);
        }
        if let Some(t) = f.from_ms {
            q.push(" AND a.raised_ms >= ").push_bind(t);
        }
        if let Some(t) = f.to_ms {
            q.push(" AND a.raised_ms < ").push_bind(t);
        }
        q.push(" ORDER BY a.raised_ms DESC, a.id DESC LIMIT ")
            .push_bind(f.limit);
        let rows = q.build()?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(<AlertRow as sqlx::FromRow<_>>::from_row(r)?))
            .collect()
    }

    /// Sets the follow-up due date of alert `id`.
    pub async fn set_follow_up_due(&self, id: &str, due_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET follow_up_due_ms = $1 WHERE id = $2")
            .bind(due_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Resolved alerts whose follow-up is due by `until_ms` and not done, soonest first.
    pub async fn follow_ups_due(&self, until_ms: i64) -> Result<Vec<AlertRow>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE follow_up_due_ms IS NOT NULL \
             AND follow_up_due_ms <= $1 AND follow_up_done_ms IS NULL ORDER BY follow_up_due_ms"
        ))
        .bind(until_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Moves the deadlines of every open alert by `by_ms` (a step of the host clock): the
    /// start of its policy, the next step, the next reminder and the arrival check; each
    /// one's version moves too. Returns how many alerts moved.
    pub async fn shift_open_alert_deadlines(&self, by_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE alerts SET policy_start_ms = policy_start_ms + $1, \
             next_escalation_ms = next_escalation_ms + $1, next_repeat_ms = next_repeat_ms + $1, \
             arrival_due_ms = arrival_due_ms + $1, version = version + 1 WHERE closed_ms IS NULL",
        )
        .bind(by_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The deadlines of every open alert.
    pub async fn open_alert_deadlines(&self) -> Result<Vec<OpenDeadlineRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, next_escalation_ms, next_repeat_ms, arrival_due_ms FROM alerts \
             WHERE closed_ms IS NULL",
        )
        .fetch_all(&self.pool)
        .await?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_joined_column_list_is_the_alert_columns_qualified() {
        let qualified: Vec<String> = alert_columns!()
            .split(", ")
            .map(|c| format!("a.{}", c.trim()))
            .collect();
        assert_eq!(ALERT_COLUMNS_A, qualified.join(", "));
    }

    #[test]
    fn a_scoped_list_binds_the_scope_after_the_household() {
        let mut q = SqlBuilder::new("SELECT 1 WHERE 1 = 1");
        q.push(" AND a.household_id = ").push_bind("h1");
        q.push(" AND ");
        HouseholdScope::Street("s1").push_condition(&mut q);
        assert_eq!(
            q.sql(),
            "SELECT 1 WHERE 1 = 1 AND a.household_id = $1 AND h.committee_id IN \
             (SELECT c2.id FROM committees c2 WHERE c2.street_id = $2)"
        );
    }
}
