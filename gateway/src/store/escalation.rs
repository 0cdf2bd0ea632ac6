//! Who has been called on for an alert (`alert_recipients`) and which raises have been
//! applied (`alert_episodes`): the escalation's own state beside the alert's row, written
//! and read inside the caller's transaction through a [`Conn`].

use super::{Conn, StoreError};

/// Whether the raise of episode `episode_key` (open key | episode start | severity) has
/// been applied already, through `conn`: detection may send it again after re-deriving
/// its state at a restart.
pub async fn episode_applied(conn: &mut Conn, episode_key: &str) -> Result<bool, StoreError> {
    let seen: Option<String> =
        sqlx::query_scalar("SELECT alert_id FROM alert_episodes WHERE episode_key = $1")
            .bind(episode_key)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(seen.is_some())
}

/// Records that the raise of episode `episode_key` was applied to `alert_id` at `at_ms`,
/// through `conn` (nothing happens when it is recorded already).
pub async fn record_episode(
    conn: &mut Conn,
    episode_key: &str,
    alert_id: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alert_episodes (episode_key, alert_id, at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (episode_key) DO NOTHING",
    )
    .bind(episode_key)
    .bind(alert_id)
    .bind(at_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that `user_id` was called on for `alert_id` at `step` (of `target`) at
/// `at_ms`, through `conn`; someone called before keeps their first step.
pub async fn add_alert_recipient(
    conn: &mut Conn,
    alert_id: &str,
    user_id: &str,
    step: i64,
    target: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alert_recipients (alert_id, user_id, step, target, notified_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (alert_id, user_id) DO NOTHING",
    )
    .bind(alert_id)
    .bind(user_id)
    .bind(step)
    .bind(target)
    .bind(at_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The users called on for `alert_id` so far, by step, through `conn`.
pub async fn alert_recipient_ids(
    conn: &mut Conn,
    alert_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT user_id FROM alert_recipients WHERE alert_id = $1 ORDER BY step, user_id",
    )
    .bind(alert_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// How many users have been called on for `alert_id`, through `conn`.
pub async fn count_alert_recipients(conn: &mut Conn, alert_id: &str) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) AS n FROM alert_recipients WHERE alert_id = $1")
            .bind(alert_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}
