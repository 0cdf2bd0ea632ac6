//! Detection state in the store: snapshots of every household (postcard), the journal
//! position they reflect, household modes and overrides; and the journal replay that
//! brings a restored detector up to date.

use sqlx::Row;

use super::HouseholdMode;
use super::household::Household;
use super::params::HouseholdSettings;
use crate::store::{Store, StoreError, pieces, placeholders};

/// One journal event, for replay.
#[derive(Debug, Clone)]
pub struct JournalEvent {
    /// Position.
    pub journal_id: i64,
    /// Device.
    pub device_id: String,
    /// Household at the time.
    pub household_id: Option<String>,
    /// When it happened.
    pub event_ms: i64,
    /// The event body, wire JSON.
    pub body: String,
}

/// Detection's persistence failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// SQL error.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// A snapshot could not be encoded or decoded.
    #[error("snapshot encoding: {0}")]
    Encoding(#[from] postcard::Error),
}

/// Writes household snapshots and the journal position in one transaction.
///
/// The snapshots are encoded before the transaction begins and written with multi-row
/// statements of a few cached sizes (`store::pieces`): under load nearly every household
/// is dirty, and a statement per household held SQLite's single write lock for most of a
/// second, stalling ingest's group commits behind it (docs/benchmarks.md).
pub async fn save(
    store: &Store,
    households: &[&Household],
    cursor: i64,
    now: i64,
) -> Result<(), PersistError> {
    let rows = households
        .iter()
        .map(|h| Ok((h.id.to_string(), postcard::to_stdvec(h)?)))
        .collect::<Result<Vec<(String, Vec<u8>)>, postcard::Error>>()?;
    let mut tx = store.begin().await?;
    for piece in pieces(&rows) {
        let sql = format!(
            "INSERT INTO detect_households (household_id, state, updated_ms) VALUES {} \
             ON CONFLICT (household_id) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
            placeholders(store.backend(), piece.len(), 3)
        );
        // Only placeholders are generated; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, blob) in piece {
            q = q.bind(id).bind(blob).bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    sqlx::query(
        "INSERT INTO detect_cursor (id, journal_id) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET journal_id = excluded.journal_id",
    )
    .bind(cursor)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every snapshot and the journal position they reflect.
pub async fn load(store: &Store) -> Result<(Vec<Household>, i64), PersistError> {
    let rows = sqlx::query("SELECT state FROM detect_households")
        .fetch_all(store.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let blob: Vec<u8> = r.try_get("state")?;
        match postcard::from_bytes::<Household>(&blob) {
            Ok(h) => out.push(h),
            // An older snapshot format: start that household afresh rather than not at all.
            Err(e) => {
                tracing::warn!(error = %e, "detector snapshot unreadable; household starts without history")
            }
        }
    }
    let cursor = sqlx::query("SELECT journal_id FROM detect_cursor WHERE id = 1")
        .fetch_optional(store.pool())
        .await?
        .map(|r| r.try_get::<i64, _>("journal_id"))
        .transpose()?
        .unwrap_or(0);
    Ok((out, cursor))
}

/// Journal events after `cursor`, in order, at most `limit`.
pub async fn journal_after(
    store: &Store,
    cursor: i64,
    limit: i64,
) -> Result<Vec<JournalEvent>, PersistError> {
    let rows = sqlx::query(
        "SELECT journal_id, device_id, household_id, event_ms, body FROM events \
         WHERE journal_id > $1 ORDER BY journal_id LIMIT $2",
    )
    .bind(cursor)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(JournalEvent {
                journal_id: r.try_get("journal_id")?,
                device_id: r.try_get("device_id")?,
                household_id: r.try_get("household_id")?,
                event_ms: r.try_get("event_ms")?,
                body: r.try_get("body")?,
            })
        })
        .collect()
}

/// Writes a household's mode.
pub async fn save_mode(
    store: &Store,
    household: &str,
    mode: HouseholdMode,
    until_ms: Option<i64>,
    set_by: Option<&str>,
    now: i64,
) -> Result<(), PersistError> {
    sqlx::query(
        "INSERT INTO household_modes (household_id, mode, until_ms, set_by, set_ms) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (household_id) DO UPDATE SET mode = excluded.mode, until_ms = excluded.until_ms, \
         set_by = excluded.set_by, set_ms = excluded.set_ms",
    )
    .bind(household)
    .bind(mode.as_str())
    .bind(until_ms)
    .bind(set_by)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Every household mode that is not `normal`.
pub async fn load_modes(
    store: &Store,
) -> Result<Vec<(String, HouseholdMode, Option<i64>)>, PersistError> {
    let rows = sqlx::query(
        "SELECT household_id, mode, until_ms FROM household_modes WHERE mode <> 'normal'",
    )
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let mode: String = r.try_get("mode")?;
        if let Some(m) = HouseholdMode::parse(&mode) {
            out.push((r.try_get("household_id")?, m, r.try_get("until_ms")?));
        }
    }
    Ok(out)
}

/// Writes a household's overrides.
pub async fn save_settings(
    store: &Store,
    household: &str,
    s: &HouseholdSettings,
    now: i64,
) -> Result<(), PersistError> {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "{}".into());
    sqlx::query(
        "INSERT INTO household_settings (household_id, settings, updated_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (household_id) DO UPDATE SET settings = excluded.settings, updated_ms = excluded.updated_ms",
    )
    .bind(household)
    .bind(json)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Every household's overrides.
pub async fn load_settings(
    store: &Store,
) -> Result<Vec<(String, HouseholdSettings)>, PersistError> {
    let rows = sqlx::query("SELECT household_id, settings FROM household_settings")
        .fetch_all(store.pool())
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let json: String = r.try_get("settings")?;
        if let Ok(s) = serde_json::from_str(&json) {
            out.push((r.try_get("household_id")?, s));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use compact_str::CompactString;

    use super::*;

    #[tokio::test]
    async fn snapshots_of_many_households_are_written_in_pieces_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("anxin.db").display());
        let store = Store::open(&url).await.unwrap();
        // 600 crosses several piece sizes (256, 256, 64, 16, 8).
        let mut households: Vec<Household> = (0..600)
            .map(|i| Household::new(CompactString::from(format!("h{i:04}"))))
            .collect();
        for (i, h) in households.iter_mut().enumerate() {
            h.last_activity_ms = i as i64;
        }
        let refs: Vec<&Household> = households.iter().collect();
        save(&store, &refs, 41, 1_000).await.unwrap();
        // Saved again with a later cursor: rows are replaced, not added.
        households[7].last_activity_ms = 7_777;
        let refs: Vec<&Household> = households.iter().collect();
        save(&store, &refs, 42, 2_000).await.unwrap();

        let (mut back, cursor) = load(&store).await.unwrap();
        back.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(cursor, 42);
        assert_eq!(back.len(), 600);
        assert_eq!(back[7].last_activity_ms, 7_777);
        assert_eq!(back[599].id, "h0599");
        assert_eq!(back[599].last_activity_ms, 599);
    }
}
