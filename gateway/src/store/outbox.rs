//! The notification outbox (`outbox`): rows written in the caller's transaction, then
//! claimed, sent and settled one at a time by the sender lanes. What a row means, and
//! when it is due, is the notifier's business (`notify/outbox.rs`); this file keeps its
//! statements.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Conn, Store, StoreError};

/// A notification to write.
#[derive(Debug, Clone, Copy)]
pub struct NewOutboxEntry<'a> {
    /// Row id.
    pub id: &'a str,
    /// Idempotency key (unique with the channel).
    pub key: &'a str,
    /// Channel name.
    pub channel: &'a str,
    /// Recipient user id.
    pub recipient_id: Option<&'a str>,
    /// Recipient details (JSON).
    pub recipient: Option<&'a str>,
    /// Channel address.
    pub address: &'a str,
    /// The alert it is about.
    pub alert_id: Option<&'a str>,
    /// Why.
    pub purpose: &'a str,
    /// Never held back by quiet hours.
    pub critical: bool,
    /// Title.
    pub title: &'a str,
    /// Text.
    pub text: &'a str,
    /// Structured content (JSON).
    pub payload: &'a str,
    /// Written at.
    pub created_ms: i64,
    /// First attempt not before.
    pub next_attempt_ms: i64,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Row id.
    pub id: String,
    /// Idempotency key.
    pub key: String,
    /// Channel name.
    pub channel: String,
    /// Recipient user id.
    pub recipient_id: Option<String>,
    /// Recipient details (JSON).
    pub recipient: Option<String>,
    /// Address.
    pub address: String,
    /// Alert.
    pub alert_id: Option<String>,
    /// Purpose.
    pub purpose: String,
    /// Critical.
    pub critical: bool,
    /// Title.
    pub title: String,
    /// Text.
    pub text: String,
    /// Structured content (JSON).
    pub payload: String,
    /// `pending`, `sent`, `failed` or `superseded`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Written at.
    pub created_ms: i64,
    /// Next attempt (or lease end).
    pub next_attempt_ms: i64,
    /// Delivered at.
    pub sent_ms: Option<i64>,
    /// Reason of the last failure.
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, idempotency_key, channel, recipient_id, recipient, address, alert_id, \
     purpose, critical, title, body, payload, state, attempts, created_ms, next_attempt_ms, \
     sent_ms, last_error";

fn entry(r: &AnyRow) -> Result<OutboxEntry, StoreError> {
    Ok(OutboxEntry {
        id: r.try_get("id")?,
        key: r.try_get("idempotency_key")?,
        channel: r.try_get("channel")?,
        recipient_id: r.try_get("recipient_id")?,
        recipient: r.try_get("recipient")?,
        address: r.try_get("address")?,
        alert_id: r.try_get("alert_id")?,
        purpose: r.try_get("purpose")?,
        critical: r.try_get::<i32, _>("critical")? != 0,
        title: r.try_get("title")?,
        text: r.try_get("body")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        created_ms: r.try_get("created_ms")?,
        next_attempt_ms: r.try_get("next_attempt_ms")?,
        sent_ms: r.try_get("sent_ms")?,
        last_error: r.try_get("last_error")?,
    })
}

/// Writes `e` as a pending notification through `conn` (the caller's transaction).
/// False when one with the same key and channel exists already (nothing written).
pub async fn insert_outbox(conn: &mut Conn, e: &NewOutboxEntry<'_>) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO outbox (id, idempotency_key, channel, recipient_id, recipient, address, \
         alert_id, purpose, critical, title, body, payload, state, attempts, created_ms, \
         next_attempt_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', 0, $13, $14) \
         ON CONFLICT (idempotency_key, channel) DO NOTHING",
    )
    .bind(e.id)
    .bind(e.key)
    .bind(e.channel)
    .bind(e.recipient_id)
    .bind(e.recipient)
    .bind(e.address)
    .bind(e.alert_id)
    .bind(e.purpose)
    .bind(i32::from(e.critical))
    .bind(e.title)
    .bind(e.text)
    .bind(e.payload)
    .bind(e.created_ms)
    .bind(e.next_attempt_ms)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The pending notifications of `channel` about `alert_id` to `address`, as (id,
/// payload), through `conn`.
pub async fn pending_outbox_payloads(
    conn: &mut Conn,
    channel: &str,
    alert_id: &str,
    address: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, payload FROM outbox \
         WHERE channel = $1 AND alert_id = $2 AND address = $3 AND state = 'pending'",
    )
    .bind(channel)
    .bind(alert_id)
    .bind(address)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("payload")?)))
        .collect()
}

/// Marks notification `id` superseded if it is still pending, through `conn`.
pub async fn supersede_outbox_entry(conn: &mut Conn, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE outbox SET state = 'superseded' WHERE id = $1 AND state = 'pending'")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Marks the pending notifications of `alert_id` with purpose `purpose` superseded,
/// through `conn`. Returns how many.
pub async fn supersede_outbox_purpose(
    conn: &mut Conn,
    alert_id: &str,
    purpose: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE outbox SET state = 'superseded' \
         WHERE alert_id = $1 AND state = 'pending' AND purpose = $2",
    )
    .bind(alert_id)
    .bind(purpose)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Marks the pending check-in commands to device `address` on `channel` superseded,
/// through `conn`: a prompt not yet delivered must not start after its answer.
pub async fn supersede_pending_check_ins(
    conn: &mut Conn,
    channel: &str,
    address: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET state = 'superseded' \
         WHERE channel = $1 AND address = $2 AND purpose = 'check_in' \
         AND state = 'pending'",
    )
    .bind(channel)
    .bind(address)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Every stored notification, optionally of one alert, oldest first.
    pub async fn outbox_entries(
        &self,
        alert_id: Option<&str>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        // Only the constant column list is formatted in; values are bound.
        let rows = match alert_id {
            Some(a) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox WHERE alert_id = $1 ORDER BY created_ms, id"
                )))
                .bind(a)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox ORDER BY created_ms, id"
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(entry).collect()
    }

    /// Up to `limit` pending notifications (of `channel`, or of all) due at `now_ms`:
    /// critical ones first, then by due time.
    pub async fn outbox_due(
        &self,
        channel: Option<&str>,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        // Only the constant column list is formatted in; values are bound.
        let rows = match channel {
            Some(c) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox WHERE state = 'pending' AND channel = $1 \
                     AND next_attempt_ms <= $2 ORDER BY critical DESC, next_attempt_ms, id LIMIT $3"
                )))
                .bind(c)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox WHERE state = 'pending' \
                     AND next_attempt_ms <= $1 ORDER BY critical DESC, next_attempt_ms, id LIMIT $2"
                )))
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(entry).collect()
    }

    /// How many notifications are pending.
    pub async fn outbox_pending(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Claims pending notification `id` for a send: counts the attempt and moves its
    /// next attempt to `lease_until_ms`, provided it is still due at `next_attempt_ms`
    /// (nobody claimed it meanwhile). False when someone else did.
    pub async fn claim_outbox_entry(
        &self,
        id: &str,
        next_attempt_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "UPDATE outbox SET next_attempt_ms = $1, attempts = attempts + 1 \
             WHERE id = $2 AND state = 'pending' AND next_attempt_ms = $3",
        )
        .bind(lease_until_ms)
        .bind(id)
        .bind(next_attempt_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed > 0)
    }

    /// Records pending notification `id` as delivered at `at_ms`.
    pub async fn outbox_sent(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'sent', sent_ms = $1, last_error = NULL \
             WHERE id = $2 AND state = 'pending'",
        )
        .bind(at_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records pending notification `id` as failed for good, for `reason`.
    pub async fn outbox_failed(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'failed', last_error = $1 \
             WHERE id = $2 AND state = 'pending'",
        )
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keeps pending notification `id` for another attempt at `next_attempt_ms`, with
    /// the reason the last one failed.
    pub async fn outbox_retry(
        &self,
        id: &str,
        next_attempt_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET next_attempt_ms = $1, last_error = $2 \
             WHERE id = $3 AND state = 'pending'",
        )
        .bind(next_attempt_ms)
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The earliest next attempt of the pending notifications of `channel`.
    pub async fn outbox_next_due(&self, channel: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_ms) AS t FROM outbox WHERE state = 'pending' AND channel = $1",
        )
        .bind(channel)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("t")?)
    }

    /// Makes every pending notification of `channel` due later than `now_ms` due at
    /// `now_ms`. Returns how many.
    pub async fn outbox_due_now(&self, channel: &str, now_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE outbox SET next_attempt_ms = $1 \
             WHERE state = 'pending' AND channel = $2 AND next_attempt_ms > $1",
        )
        .bind(now_ms)
        .bind(channel)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Moves the next attempt of every pending notification by `step_ms`. Returns how
    /// many.
    pub async fn shift_outbox_pending(&self, step_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE outbox SET next_attempt_ms = next_attempt_ms + $1 WHERE state = 'pending'",
        )
        .bind(step_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Sets every notification's next attempt to `at_ms` (tests: a claim or backoff
    /// left by a process that was killed).
    #[cfg(test)]
    pub(crate) async fn set_outbox_next_attempt(&self, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET next_attempt_ms = $1")
            .bind(at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
