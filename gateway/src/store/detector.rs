//! The detector's tables: household snapshots (`detect_households`, with each row's own
//! journal position), the journal position a restart replays from (`detect_cursor`),
//! snapshots that could not be read (`detect_snapshot_quarantine`), household modes
//! (`household_modes`) and per-household overrides (`household_settings`). Snapshots are
//! opaque bytes here; `detect/snapshot.rs` owns their format and version.

use std::sync::Arc;

use sqlx::Row;

use super::{Store, StoreError, Upsert, pieces};

/// Households per snapshot transaction: small enough that ingest's group commit does not
/// wait long for the store's write lock behind a snapshot, large enough that a snapshot of
/// 100,000 households is a few dozen commits, not hundreds (with 256, the fsyncs kept the
/// writer busier than one big transaction did; docs/benchmarks.md).
pub const SNAPSHOT_CHUNK: usize = 4096;

/// Households per snapshot job of the SQLite writer thread: its snapshot transactions do
/// not wait for an fsync, so small ones cost little, and a journal commit waits behind
/// one chunk at most (≈ 10 ms for 4,096 households, measured).
pub const SNAPSHOT_CHUNK_SQLITE: usize = 1024;

/// Household snapshots, each with its own journal position.
pub(super) const SNAPSHOTS: Upsert = Upsert {
    head: "INSERT INTO detect_households (household_id, state, updated_ms, journal_id)",
    cols: 4,
    tail: "ON CONFLICT (household_id) DO UPDATE SET state = excluded.state, \
           updated_ms = excluded.updated_ms, journal_id = excluded.journal_id",
};

/// One stored snapshot: (household, encoded state, the journal position it holds).
pub type SnapshotRow = (String, Vec<u8>, i64);

impl Store {
    /// Writes encoded snapshots `(household, state)` in transactions of
    /// [`SNAPSHOT_CHUNK`] households ([`SNAPSHOT_CHUNK_SQLITE`] on SQLite), each row with `cursor` as its own journal
    /// position, then moves `detect_cursor` to `cursor` once every chunk is in. A crash
    /// in between leaves some households at the new position and the others at their
    /// old one; a replay skips, per household, what its own snapshot already holds.
    ///
    /// On SQLite each chunk is one job of the writer thread, so that the journal's group
    /// commits take turns with the chunks; a chunk is committed without waiting for its
    /// fsync (a snapshot lost to a power cut is re-derived from the journal, and the WAL
    /// keeps the order: the cursor is never durable before the rows it covers).
    pub async fn save_snapshots(
        &self,
        rows: &[(String, Vec<u8>)],
        cursor: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let size = match self.writer {
            Some(_) => SNAPSHOT_CHUNK_SQLITE,
            None => SNAPSHOT_CHUNK,
        };
        for chunk in rows.chunks(size) {
            match &self.writer {
                Some(w) => {
                    w.save_snapshots(Arc::new(chunk.to_vec()), cursor, now)
                        .await?
                }
                None => self.save_snapshot_chunk_sqlx(chunk, cursor, now).await?,
            }
            // Let the group commit take the lock between chunks.
            tokio::task::yield_now().await;
        }
        sqlx::query(
            "INSERT INTO detect_cursor (id, journal_id) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET journal_id = excluded.journal_id",
        )
        .bind(cursor)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn save_snapshot_chunk_sqlx(
        &self,
        chunk: &[(String, Vec<u8>)],
        cursor: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for piece in pieces(chunk) {
            let sql = SNAPSHOTS.sql(self.backend, piece.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, blob) in piece {
                q = q.bind(id).bind(blob).bind(now).bind(cursor);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every stored snapshot.
    pub async fn snapshots(&self) -> Result<Vec<SnapshotRow>, StoreError> {
        let rows = sqlx::query("SELECT household_id, state, journal_id FROM detect_households")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("household_id")?,
                    r.try_get("state")?,
                    r.try_get("journal_id")?,
                ))
            })
            .collect()
    }

    /// The journal position a restart replays from (0: none yet).
    pub async fn detect_cursor(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT journal_id FROM detect_cursor WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<i64, _>("journal_id"))
                .transpose()?
                .unwrap_or(0),
        )
    }

    /// Moves household `household`'s unreadable snapshot (format `version`) out of
    /// `detect_households` into the quarantine, in one transaction.
    pub async fn quarantine_snapshot(
        &self,
        household: &str,
        version: i32,
        state: &[u8],
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO detect_snapshot_quarantine (household_id, version, state, error, quarantined_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (household_id, quarantined_ms) DO NOTHING",
        )
        .bind(household)
        .bind(version)
        .bind(state.to_vec())
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM detect_households WHERE household_id = $1")
            .bind(household)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Snapshots kept in the quarantine for `household`: (version, state, error).
    pub async fn quarantined_snapshots(
        &self,
        household: &str,
    ) -> Result<Vec<(i32, Vec<u8>, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, state, error FROM detect_snapshot_quarantine WHERE household_id = $1 \
             ORDER BY quarantined_ms",
        )
        .bind(household)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("version")?,
                    r.try_get("state")?,
                    r.try_get("error")?,
                ))
            })
            .collect()
    }

    /// Writes a household's mode (`normal`, `away`, …).
    pub async fn save_household_mode(
        &self,
        household: &str,
        mode: &str,
        until_ms: Option<i64>,
        set_by: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO household_modes (household_id, mode, until_ms, set_by, set_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (household_id) DO UPDATE SET mode = excluded.mode, until_ms = excluded.until_ms, \
             set_by = excluded.set_by, set_ms = excluded.set_ms",
        )
        .bind(household)
        .bind(mode)
        .bind(until_ms)
        .bind(set_by)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every household mode that is not `normal`: (household, mode, until).
    pub async fn household_modes(&self) -> Result<Vec<(String, String, Option<i64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT household_id, mode, until_ms FROM household_modes WHERE mode <> 'normal'",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("household_id")?,
                    r.try_get("mode")?,
                    r.try_get("until_ms")?,
                ))
            })
            .collect()
    }

    /// Writes a household's overrides (JSON).
    pub async fn save_household_settings(
        &self,
        household: &str,
        json: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO household_settings (household_id, settings, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (household_id) DO UPDATE SET settings = excluded.settings, updated_ms = excluded.updated_ms",
        )
        .bind(household)
        .bind(json)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every household's overrides: (household, JSON).
    pub async fn household_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT household_id, settings FROM household_settings")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("household_id")?, r.try_get("settings")?)))
            .collect()
    }

    /// Sets the journal position of `household`'s stored snapshot (tests of the replay).
    #[cfg(test)]
    pub(crate) async fn set_snapshot_position(
        &self,
        household: &str,
        journal_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE detect_households SET journal_id = $1 WHERE household_id = $2")
            .bind(journal_id)
            .bind(household)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a snapshot row as it is, bytes and position (tests of upgrades and of
    /// unreadable snapshots).
    #[cfg(test)]
    pub(crate) async fn put_snapshot_row(
        &self,
        household: &str,
        state: &[u8],
        journal_id: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(SNAPSHOTS.sql(self.backend, 1)))
            .bind(household)
            .bind(state.to_vec())
            .bind(now)
            .bind(journal_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
