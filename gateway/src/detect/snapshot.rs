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
//! | 2 | header + the survival model of silences in the profile (`profile.rs`); versions 0 and 1 are read with their profile ([`v1::ProfileV1`]) and converted by [`Profile::from_v1`]: each remembered longest silence becomes one counted silence, the outings, exits, getting-up times and learned days are kept |
//!
//! When [`Household`] (or anything inside it, such as the learned profile) changes layout:
//! freeze today's types in a module `snapshot/vN.rs`, give them a conversion into the new
//! [`Household`], bump [`VERSION`], add the arm in [`decode`], and keep a fixture of the
//! frozen version under `gateway/tests/fixtures/` that a test decodes.

use super::household::Household;
use super::params::DetectConfig;
use super::profile::Profile;

/// The header that marks a versioned snapshot.
const MAGIC: &[u8; 3] = b"AXD";

/// The version this code writes.
pub const VERSION: u8 = 2;

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
        Some([2, body @ ..]) => postcard::from_bytes(body)
            .map_err(|source| SnapshotError::Corrupt { version: 2, source }),
        Some([1, body @ ..]) => v1::decode(body, 1),
        // A legacy snapshot whose household id happens to start with the header bytes
        // falls through to the legacy arm below.
        Some([v, ..]) if *v > VERSION => Err(SnapshotError::NewerVersion(*v)),
        _ => v1::decode(blob, 0),
    }
}

/// The layout of versions 0 and 1, frozen: the profile of the model before the survival
/// model (longest silence per room and hour).
pub mod v1 {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::detect::profile::V1Parts;

    /// The learned routine as versions 0 and 1 stored it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ProfileV1 {
        /// Longest recent silence per room and hour, 5-minute units.
        pub gap: [[u8; 24]; 6],
        /// Longest recent sitting per room.
        pub sitting: [u8; 6],
        /// Longest recent outing per hour.
        pub out: [u8; 24],
        /// Exit days per hour.
        pub exits: [u16; 24],
        /// Getting-up times.
        pub wake: [u8; 14],
        /// Ring position.
        pub wake_next: u8,
        /// Learned days.
        pub days: u16,
        /// Last roll-over day.
        pub day: i32,
        /// Activity today.
        pub active_today: bool,
    }

    /// Reads a version 0 or 1 household and converts its routine.
    pub fn decode(body: &[u8], version: u8) -> Result<Household, SnapshotError> {
        let old: Household<ProfileV1> = postcard::from_bytes(body)
            .map_err(|source| SnapshotError::Corrupt { version, source })?;
        Ok(upgrade(old))
    }

    /// The household with its routine carried into the current model.
    pub fn upgrade(old: Household<ProfileV1>) -> Household {
        // The day window of the defaults decides which remembered hours were night.
        let p = DetectConfig::default()
            .compile()
            .expect("the default configuration compiles");
        old.map_profile(|v| {
            Profile::from_v1(
                V1Parts {
                    gap: v.gap,
                    sitting: v.sitting,
                    out: v.out,
                    exits: v.exits,
                    wake: v.wake,
                    wake_next: v.wake_next,
                    days: v.days,
                    day: v.day,
                    active_today: v.active_today,
                },
                &p,
            )
        })
    }

    /// Encodes in version 1 (tests: a snapshot as the previous gateway wrote it).
    pub fn encode(h: &Household<ProfileV1>) -> Result<Vec<u8>, postcard::Error> {
        let mut out = Vec::with_capacity(400);
        out.extend_from_slice(MAGIC);
        out.push(1);
        postcard::to_extend(h, out)
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
            Err(SnapshotError::Corrupt { version: 2, .. })
        ));
    }

    #[test]
    fn a_version_1_snapshot_keeps_its_learned_routine_in_the_new_model() {
        // Version 1 = the version 0 layout behind a header: re-wrap the fixture's bytes.
        let mut blob = b"AXD\x01".to_vec();
        blob.extend_from_slice(LEGACY_V0);
        assert_eq!(version_of(&blob), 1);
        let h = decode(&blob).expect("version 1 reads");
        assert_eq!(h.profile.days(), 13);
        let old: Household<v1::ProfileV1> = postcard::from_bytes(LEGACY_V0).unwrap();
        // The fixture's routine: up at 07:00, active every 20 min, a quiet hour after lunch.
        assert!(old.profile.gap.iter().flatten().any(|g| *g > 0));
        let p = DetectConfig::default().compile().unwrap();
        // What was learned is not discarded: the converted model knows the silences the
        // old one remembered (a new household's 14:00 limit is the generic tail's).
        let c = crate::detect::profile::Context {
            minute: 13 * 60 + 20,
            room: crate::detect::activity::RoomClass::Living,
            seated: false,
        };
        let fresh = Profile::default();
        assert_ne!(h.profile, fresh);
        assert!(
            h.profile.usual(c, &p).limit_min < fresh.usual(c, &p).limit_min,
            "{:?} vs {:?}",
            h.profile.usual(c, &p),
            fresh.usual(c, &p)
        );
        assert_eq!(
            h.profile.wake_deadline_min(&p),
            Some(3 * 60 + 45),
            "07:00 + 45 min after 04:00"
        );
        // Written again, it is version 2 and reads back the same.
        let again = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(again, h);
        // And a version 1 written by the frozen encoder reads too.
        let blob = v1::encode(&old).unwrap();
        assert_eq!(decode(&blob).unwrap(), h);
    }
}
