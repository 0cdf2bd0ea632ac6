//! Ingest: the gateway's MQTT session, decoding and validation, de-duplication, group
//! commit to the store, then MQTT acknowledgements and application-level acks to the
//! devices, and normalised [`Observation`]s for detection.
//!
//! ```text
//! tap.rs (embedded broker, in process: events, heartbeats) ──┐
//! mqtt.rs ──Inbound──▶ lane.rs (alarm | bulk) ──▶ committer.rs ─ decode.rs (topic, payload, registry)
//!                          alarms first, a batch of their own  ─ sequence.rs (duplicates, contiguous mark)
//!                          ├─ store.commit(batch)  (one transaction, one fsync)
//!                          ├─ PUBACK each message, in order (manual acks)
//!                          ├─ downlink.rs: Ack {boot, upto} to each device
//!                          └─ Observation ▶ detection (alarms on its alarm queue), history
//! ```

mod committer;
mod decode;
mod downlink;
mod lane;
mod mqtt;
mod registry;
mod sequence;
mod tap;
pub mod zigbee2mqtt;

use std::sync::Arc;

use anxin_firmware::wire::{EventBody, Heartbeat};
use prometheus_client::encoding::EncodeLabelValue;

pub use committer::{AlarmSink, Committer, CommitterConfig, ObservationSinks};
pub use decode::{Decoded, decode};
pub use downlink::{AppliedCommands, CommandAcks, Downlink};
pub use lane::{
    AlarmProgress, IngestLanes, IngestQueue, Lane, SharedAlarmProgress, ingest_queue, lane_of,
};
pub use mqtt::{Inbound, MqttSession, MqttTarget};
pub use registry::Registry;
pub use sequence::{Classified, SequenceTracker};
pub use tap::{IngestTap, STATUS_FILTER};
pub use zigbee2mqtt::{ZigbeeAdapter, ZigbeeMap};

/// Why a message was rejected: a closed set, used as the `reason` label of
/// `anxin_ingest_rejected_total`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RejectReason {
    /// Larger than the protocol's maximum payload.
    oversized,
    /// Not JSON of the expected shape.
    malformed,
    /// Another protocol version.
    wrong_version,
    /// A value out of its range (including a clock far in the future).
    out_of_range,
    /// Not an uplink topic of the protocol.
    wrong_topic,
    /// A device the registry does not know.
    unknown_device,
}

impl RejectReason {
    /// Maps a wire error to its reason.
    pub fn from_wire(e: anxin_firmware::wire::WireError) -> Self {
        use anxin_firmware::wire::WireError as W;
        match e {
            W::Oversized { .. } => RejectReason::oversized,
            W::Malformed | W::BufferTooSmall => RejectReason::malformed,
            W::UnsupportedVersion { .. } => RejectReason::wrong_version,
            W::OutOfRange { .. } => RejectReason::out_of_range,
            W::BadTopic | W::BadDeviceId => RejectReason::wrong_topic,
        }
    }

    /// The label text.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::oversized => "oversized",
            RejectReason::malformed => "malformed",
            RejectReason::wrong_version => "wrong_version",
            RejectReason::out_of_range => "out_of_range",
            RejectReason::wrong_topic => "wrong_topic",
            RejectReason::unknown_device => "unknown_device",
        }
    }
}

/// What detection learns from ingest, after the durable commit, whatever the source.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Device.
    pub device_id: Arc<str>,
    /// Household the device belongs to, if bound.
    pub household_id: Option<Arc<str>>,
    /// Room, when known.
    pub room: Option<Arc<str>>,
    /// Device kind (`door`, `motion`, `help`, `gas`, `pendant`, …).
    pub device_kind: Arc<str>,
    /// When it happened (ms, UTC).
    pub at_ms: i64,
    /// When the gateway received it.
    pub received_ms: i64,
    /// What was observed.
    pub what: ObservationKind,
}

/// The kinds of observation.
#[derive(Debug, Clone)]
pub enum ObservationKind {
    /// A sensor event (new, never a duplicate).
    Event {
        /// Position in the event journal (the `events` table).
        journal_id: i64,
        /// Boot epoch.
        boot: u32,
        /// Sequence number.
        seq: u32,
        /// What happened.
        body: EventBody,
    },
    /// A heartbeat: the device is alive (not a sign of life of the elder).
    Heartbeat(Box<Heartbeat>),
    /// The device connected or vanished.
    Availability {
        /// Online or not.
        online: bool,
    },
}
