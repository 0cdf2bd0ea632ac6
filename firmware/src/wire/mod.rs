//! Wire protocol v1, shared by the firmware (which encodes uplink messages and decodes
//! commands) and the gateway (which decodes uplink messages and encodes commands).
//!
//! The normative description, with an example of every message, is `docs/protocol.md`;
//! the golden files under `firmware/tests/golden/` pin the exact JSON.
//!
//! One file per message kind:
//! - [`event`]: sensor events (door, motion, help, gas, fall, tamper), QoS 1, kept in the
//!   device outbox until the gateway's application-level [`ack`] covers them;
//! - [`heartbeat`]: periodic device health;
//! - [`status`]: availability (retained; the offline form is the MQTT last will);
//! - [`command`]: gateway → device commands (alert feedback, installation test, config);
//! - [`ack`]: gateway → device application-level acknowledgement;
//! - [`topic`]: the topic layout; [`ids`]: identifiers; [`codec`]: encode and decode.

pub mod ack;
pub mod codec;
pub mod command;
pub mod error;
pub mod event;
pub mod heartbeat;
pub mod ids;
pub mod status;
pub mod topic;

pub use ack::Ack;
pub use codec::encode;
#[cfg(feature = "std")]
pub use codec::{decode_ack, decode_command, decode_event, decode_heartbeat, decode_status};
pub use command::{AlertCause, Command, CommandKind, DeviceConfig};
pub use error::WireError;
pub use event::{Event, EventBody, FallAction, HelpAction, Priority};
pub use heartbeat::Heartbeat;
pub use ids::{BootEpoch, DeviceId, Mac, Seq};
pub use status::{Availability, Status};
pub use topic::Channel;

/// The protocol version carried in every message as `"v"`.
pub const PROTOCOL_VERSION: u8 = 1;

/// The largest payload, in bytes, that either side may publish. Larger payloads are
/// rejected unread by the gateway and never produced by the firmware.
pub const MAX_PAYLOAD: usize = 512;

/// Earliest accepted `ts` for messages whose clock is [`Clock::Unix`]
/// (2020-01-01T00:00:00Z, in milliseconds): anything older is a device without a set
/// clock that wrongly claims one.
pub const MIN_UNIX_MS: u64 = 1_577_836_800_000;

/// What a message's `ts` (milliseconds) counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Milliseconds since the Unix epoch (UTC), from a real-time clock or network time.
    Unix,
    /// Milliseconds since this boot (the device has no wall clock): the gateway places
    /// the message in time from the receive time of the device's messages.
    Up,
}
