//! Detection state in the store: snapshots of every household (versioned, see
//! [`snapshot`](super::snapshot)), the journal position they reflect, household modes and
//! overrides; and the journal replay that brings a restored detector up to date.

use super::HouseholdMode;
use super::household::Household;
use super::params::HouseholdSettings;
use super::snapshot;
use crate::store::{Store, StoreError};

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
    /// A snapshot could not be encoded or decoded.
    #[error("snapshot encoding: {0}")]
    Encoding(#[from] postcard::Error),
}

pub use crate::store::SNAPSHOT_CHUNK;

/// Encodes household snapshots (before any transaction: encoding is pure CPU).
pub fn encode_all(households: &[&Household]) -> Result<Vec<(String, Vec<u8>)>, PersistError> {
    Ok(households
        .iter()
        .map(|h| Ok((h.id.to_string(), snapshot::encode(h)?)))
        .collect::<Result<Vec<(String, Vec<u8>)>, postcard::Error>>()?)
}

/// Writes household snapshots and the journal position they reflect.
pub async fn save(
    store: &Store,
    households: &[&Household],
    cursor: i64,
    now: i64,
) -> Result<(), PersistError> {
    save_rows(store, &encode_all(households)?, cursor, now).await
}

/// Writes encoded snapshots in transactions of [`SNAPSHOT_CHUNK`] households, each row
/// with `cursor` as its own journal position, then moves `detect_cursor` (from where a
/// restart replays) to `cursor` once every chunk is in. A crash in between leaves some
/// households at the new position and the others at their old one; the replay skips,
/// per household, what its own snapshot already holds.
///
/// (`Store::save_snapshots`).
pub async fn save_rows(
    store: &Store,
    rows: &[(String, Vec<u8>)],
    cursor: i64,
    now: i64,
) -> Result<(), PersistError> {
    Ok(store.save_snapshots(rows, cursor, now).await?)
}

/// What [`load`] found in the store.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every snapshot that could be read.
    pub households: Vec<Household>,
    /// The journal position they reflect.
    pub cursor: i64,
    /// Households whose snapshot could not be read and was moved to
    /// `detect_snapshot_quarantine` (they start afresh; the old bytes are kept).
    pub quarantined: Vec<String>,
    /// Each restored household's own journal position, where it is ahead of `cursor`
    /// (its snapshot already holds the journal up to it).
    pub positions: std::collections::HashMap<String, i64>,
}

/// Every snapshot and the journal position they reflect. A snapshot that cannot be read
/// (a newer version, damaged bytes) is moved to the quarantine table in the same step, so
/// that the household's next snapshot does not overwrite what it had learned.
pub async fn load(store: &Store, now: i64) -> Result<Loaded, PersistError> {
    let rows = store.snapshots().await?;
    let mut out = Loaded {
        households: Vec::with_capacity(rows.len()),
        ..Loaded::default()
    };
    for (id, blob, position) in rows {
        match snapshot::decode(&blob) {
            Ok(h) => {
                out.positions.insert(id, position);
                out.households.push(h);
            }
            Err(e) => {
                tracing::error!(
                    household_id = %id,
                    version = snapshot::version_of(&blob),
                    error = %e,
                    "detector snapshot unreadable; kept in quarantine, household starts afresh"
                );
                quarantine(store, &id, &blob, &e, now).await?;
                out.quarantined.push(id);
            }
        }
    }
    out.cursor = store.detect_cursor().await?;
    let cursor = out.cursor;
    out.positions.retain(|_, p| *p > cursor);
    Ok(out)
}

/// Moves one unreadable snapshot out of `detect_households`.
async fn quarantine(
    store: &Store,
    household: &str,
    blob: &[u8],
    error: &snapshot::SnapshotError,
    now: i64,
) -> Result<(), PersistError> {
    store
        .quarantine_snapshot(
            household,
            i32::from(snapshot::version_of(blob)),
            blob,
            &error.to_string(),
            now,
        )
        .await?;
    Ok(())
}

/// Journal events after `cursor`, in order, at most `limit`.
pub async fn journal_after(
    store: &Store,
    cursor: i64,
    limit: i64,
) -> Result<Vec<JournalEvent>, PersistError> {
    let rows = store
        .journal_after(cursor, usize::try_from(limit).unwrap_or(0))
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(journal_id, device_id, household_id, event_ms, body)| JournalEvent {
                journal_id,
                device_id,
                household_id,
                event_ms,
                body,
            },
        )
        .collect())
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
    store
        .save_household_mode(household, mode.as_str(), until_ms, set_by, now)
        .await?;
    Ok(())
}

/// Every household mode that is not `normal`.
pub async fn load_modes(
    store: &Store,
) -> Result<Vec<(String, HouseholdMode, Option<i64>)>, PersistError> {
    Ok(store
        .household_modes()
        .await?
        .into_iter()
        .filter_map(|(h, mode, until)| Some((h, HouseholdMode::parse(&mode)?, until)))
        .collect())
}

/// Writes a household's overrides.
pub async fn save_settings(
    store: &Store,
    household: &str,
    s: &HouseholdSettings,
    now: i64,
) -> Result<(), PersistError> {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "{}".into());
    store.save_household_settings(household, &json, now).await?;
    Ok(())
}

/// Every household's overrides.
pub async fn load_settings(
    store: &Store,
) -> Result<Vec<(String, HouseholdSettings)>, PersistError> {
    Ok(store
        .household_settings()
        .await?
        .into_iter()
        .filter_map(|(h, json)| Some((h, serde_json::from_str(&json).ok()?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use compact_str::CompactString;

    use super::*;

    #[tokio::test]
    async fn snapshots_of_many_households_are_written_in_pieces_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
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

        let Loaded {
            households: mut back,
            cursor,
            quarantined,
            positions,
        } = load(&store, 3_000).await.unwrap();
        assert!(positions.is_empty(), "every household at the cursor");
        assert!(quarantined.is_empty());
        back.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(cursor, 42);
        assert_eq!(back.len(), 600);
        assert_eq!(back[7].last_activity_ms, 7_777);
        assert_eq!(back[599].id, "h0599");
        assert_eq!(back[599].last_activity_ms, 599);

        // A crash between two chunks of a later save: one household is ahead.
        store.set_snapshot_position("h0007", 60).await.unwrap();
        let loaded = load(&store, 3_000).await.unwrap();
        assert_eq!(loaded.cursor, 42);
        assert_eq!(
            loaded.positions,
            std::collections::HashMap::from([("h0007".to_string(), 60)])
        );
    }

    /// A store written before snapshots had versions: one household with fourteen days
    /// of learned routine (the fixture), one with bytes no version decodes, one written by
    /// a newer gateway.
    async fn store_with_old_and_unreadable_snapshots(store: &Store) {
        let legacy = include_bytes!("../../tests/fixtures/detect-snapshot-v0.bin").to_vec();
        let mut newer = b"AXD".to_vec();
        newer.push(snapshot::VERSION + 1);
        newer.extend_from_slice(&[1, 2, 3]);
        for (id, blob) in [
            ("h1", legacy),
            ("h-damaged", vec![0xff, 0xff, 0xff]),
            ("h-newer", newer),
        ] {
            store.put_snapshot_row(id, &blob, 0, 1).await.unwrap();
        }
    }

    #[tokio::test]
    async fn an_upgrade_reads_the_previous_snapshot_format_with_its_learned_routine() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        store_with_old_and_unreadable_snapshots(&store).await;
        let loaded = load(&store, 5_000).await.unwrap();
        let h1 = loaded
            .households
            .iter()
            .find(|h| h.id == "h1")
            .expect("the old snapshot is read");
        assert_eq!(h1.profile.days(), 13, "its learned days are kept");
        // Written back, it carries the current version.
        save(&store, &[h1], 9, 6_000).await.unwrap();
        let blob = store
            .snapshots()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.0 == "h1")
            .expect("h1 stored")
            .1;
        assert_eq!(snapshot::version_of(&blob), snapshot::VERSION);
    }

    #[tokio::test]
    async fn an_unreadable_snapshot_is_kept_in_quarantine_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        store_with_old_and_unreadable_snapshots(&store).await;
        let mut loaded = load(&store, 5_000).await.unwrap();
        loaded.quarantined.sort();
        assert_eq!(loaded.quarantined, vec!["h-damaged", "h-newer"]);
        // The households start afresh and their next snapshot is written …
        let fresh = Household::new(CompactString::from("h-newer"));
        save(&store, &[&fresh], 10, 6_000).await.unwrap();
        // … while the bytes they had are still there, with their version and the reason.
        assert_eq!(
            store
                .quarantined_snapshots("h-damaged")
                .await
                .unwrap()
                .len(),
            1
        );
        let newer = store.quarantined_snapshots("h-newer").await.unwrap();
        assert_eq!(newer.len(), 1);
        let (version, state, error) = &newer[0];
        assert_eq!(*version, i32::from(snapshot::VERSION + 1));
        assert_eq!(state.len(), 7);
        assert!(error.contains("newer"));
        // A second start finds nothing new to quarantine and reads the fresh snapshot.
        let again = load(&store, 7_000).await.unwrap();
        assert!(again.quarantined.is_empty(), "{:?}", again.quarantined);
        let mut ids: Vec<&str> = again.households.iter().map(|h| h.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, vec!["h-newer", "h1"]);
    }
}
