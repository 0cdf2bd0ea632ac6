//! The stored encoding of one household's detection state, with a version.
//!
//! A snapshot is `b"AXD"`, one version byte, then the household in postcard. Postcard is
//! compact (≈ 360 B per household) but not self-describing: a struct with one more field
//! cannot read the bytes of the one before. So every layout gets a number, the reader of
//! version N also reads every earlier one it can still find in a store, and a snapshot it
//! cannot read is quarantined by the caller (kept, counted, logged), never dropped.
//!
//! | version | layout |
//! |---|---|
//! | 0 | no header: the postcard encoding of [`Household`] as written before versions existed |
//! | 1 | header + the same layout as 0 |
//!
//! When [`Household`] (or anything inside it, such as the learned profile) changes layout:
//! freeze today's types in a module `snapshot/vN.rs`, give them a conversion into the new
//! [`Household`], bump [`VERSION`], add the arm in [`decode`], and keep a fixture of the
//! frozen version under `gateway/tests/fixtures/` that a test decodes.

use super::household::Household;

/// The header that marks a versioned snapshot.
const MAGIC: &[u8; 3] = b"AXD";

/// The version this code writes.
pub const VERSION: u8 = 1;

/// Why a stored snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Written by a newer gateway: kept for it, never overwritten by this one.
    #[error("snapshot version {0} is newer than this gateway reads ({VERSION})")]
    NewerVersion(u8),
    /// The bytes do not decode as the version they claim.
    #[error("snapshot version {version} does not decode: {source}")]
    Corrupt {
        /// The version the header names (0: no header).
        version: u8,
        /// The decoder's complaint.
        source: postcard::Error,
    },
}

/// Encodes `h` in the current version.
pub fn encode(h: &Household) -> Result<Vec<u8>, postcard::Error> {
    let mut out = Vec::with_capacity(400);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    postcard::to_extend(h, out)
}

/// Decodes a snapshot of any version this code knows.
pub fn decode(blob: &[u8]) -> Result<Household, SnapshotError> {
    match blob.strip_prefix(MAGIC.as_slice()) {
        Some([1, body @ ..]) => postcard::from_bytes(body)
            .map_err(|source| SnapshotError::Corrupt { version: 1, source }),
        // A legacy snapshot whose household id happens to start with the header bytes
        // falls through to the legacy arm below.
        Some([v, ..]) if *v > VERSION => Err(SnapshotError::NewerVersion(*v)),
        _ => postcard::from_bytes(blob)
            .map_err(|source| SnapshotError::Corrupt { version: 0, source }),
    }
}

/// The version a stored snapshot claims (0: none).
pub fn version_of(blob: &[u8]) -> u8 {
    match blob.strip_prefix(MAGIC.as_slice()) {
        Some([v, ..]) => *v,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by the gateway before snapshots had versions: a household after 14 days
    /// of a regular routine (the detector tests' `routine`).
    const LEGACY_V0: &[u8] = include_bytes!("../../tests/fixtures/detect-snapshot-v0.bin");

    #[test]
    fn a_snapshot_from_before_versions_keeps_its_learned_routine() {
        let h = decode(LEGACY_V0).expect("version 0 reads");
        assert_eq!(h.id.as_str(), "h1");
        assert_eq!(
            h.profile.days(),
            13,
            "the learned days survive (13 roll-overs in 14 days)"
        );
        assert!(h.last_activity_ms > 0);
        // Re-encoded in the current version, it reads back the same.
        let again = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(again.profile.days(), 13);
        assert_eq!(again.last_activity_ms, h.last_activity_ms);
        assert_eq!(again.devices.len(), h.devices.len());
    }

    #[test]
    fn a_snapshot_carries_its_version() {
        let h = decode(LEGACY_V0).unwrap();
        let blob = encode(&h).unwrap();
        assert_eq!(&blob[..3], b"AXD");
        assert_eq!(version_of(&blob), VERSION);
        assert_eq!(version_of(LEGACY_V0), 0);
    }

    #[test]
    fn a_snapshot_from_a_newer_gateway_is_refused_not_misread() {
        let h = decode(LEGACY_V0).unwrap();
        let mut blob = encode(&h).unwrap();
        blob[3] = VERSION + 1;
        assert!(matches!(
            decode(&blob),
            Err(SnapshotError::NewerVersion(v)) if v == VERSION + 1
        ));
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_not_a_household() {
        let h = decode(LEGACY_V0).unwrap();
        let blob = encode(&h).unwrap();
        assert!(matches!(
            decode(&blob[..blob.len() / 2]),
            Err(SnapshotError::Corrupt { version: 1, .. })
        ));
    }
}
