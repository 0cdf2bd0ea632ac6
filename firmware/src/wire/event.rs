//! Sensor events: topic `anxin/v1/dev/{device}/up/event`, QoS 1, held in the device's
//! outbox until an [`super::Ack`] covers them.

use serde::{Deserialize, Serialize};

use super::ids::{BootEpoch, Mac, Seq};
use super::{Clock, MIN_UNIX_MS, PROTOCOL_VERSION, WireError};

/// Largest gas reading accepted, in ppm.
pub const GAS_PPM_MAX: u32 = 1_000_000;

/// One sensor event with its envelope.
///
/// ```json
/// {"v":1,"boot":3,"seq":17,"oldest":15,"ts":1732435200123,"clk":"unix","ev":{"k":"door","open":true}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "std", derive(Deserialize))]
pub struct Event {
    /// Protocol version, always [`PROTOCOL_VERSION`].
    pub v: u8,
    /// Boot epoch of the device when the event happened.
    pub boot: BootEpoch,
    /// Event sequence number within `boot` (1, 2, 3, … without gaps at issue).
    pub seq: Seq,
    /// The lowest `seq` of this boot that the device still holds in its outbox when it
    /// sends this message: every lower `seq` is either acknowledged or was dropped by a
    /// full outbox, so the gateway need not wait for it.
    pub oldest: Seq,
    /// When the event happened, in milliseconds counted as `clk` says.
    pub ts: u64,
    /// What `ts` counts from.
    pub clk: Clock,
    /// What happened.
    pub ev: EventBody,
    /// Reserved: per-device message authentication code (see `docs/protocol.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

/// What happened, tagged by `"k"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "std", derive(Deserialize))]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum EventBody {
    /// Door contact changed: `open` true when the door opened.
    Door {
        /// Whether the door is now open.
        open: bool,
    },
    /// A passive-infrared sensor saw movement (after its hold-off; there is no "off").
    Motion,
    /// Help button gesture.
    Help {
        /// Which gesture.
        act: HelpAction,
    },
    /// Gas sensor crossed its alarm threshold (`alarm` true) or fell back below the
    /// clear threshold (`alarm` false), with the reading at that moment.
    Gas {
        /// Whether the alarm is now on.
        alarm: bool,
        /// Reading in ppm.
        ppm: u32,
    },
    /// Fall detector on the pendant.
    Fall {
        /// Detected, or cancelled by the wearer ("I'm OK").
        act: FallAction,
        /// Peak acceleration of the impact in milli-g, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peak_mg: Option<u32>,
    },
    /// Enclosure tamper switch changed.
    Tamper {
        /// Whether the enclosure is now open.
        open: bool,
    },
}

/// Help button gestures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelpAction {
    /// A press: the elder asks for help.
    Press,
    /// A second press within the cancel window: the first press was a mistake.
    Cancel,
    /// A long press (held past the long-press time).
    Long,
    /// A short press answering the gateway's check-in: "I'm OK". A sign of life, not a
    /// call for help.
    Ok,
}

/// Fall detector outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallAction {
    /// A fall was detected.
    Detected,
    /// The wearer pressed "I'm OK" within the cancel window.
    Cancel,
}

/// How important an event is when a full outbox must drop one. Higher is kept longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Motion: frequent and redundant.
    Low = 0,
    /// Door and tamper changes.
    Normal = 1,
    /// Help, fall and gas: never dropped while a lower-priority event can go instead.
    Critical = 2,
}

impl EventBody {
    /// The event's drop priority.
    pub const fn priority(&self) -> Priority {
        match self {
            EventBody::Motion => Priority::Low,
            EventBody::Door { .. } | EventBody::Tamper { .. } => Priority::Normal,
            EventBody::Help { .. } | EventBody::Gas { .. } | EventBody::Fall { .. } => {
                Priority::Critical
            }
        }
    }

    /// A stable lower-case name of the event kind (`"door"`, `"motion"`, …).
    pub const fn kind(&self) -> &'static str {
        match self {
            EventBody::Door { .. } => "door",
            EventBody::Motion => "motion",
            EventBody::Help { .. } => "help",
            EventBody::Gas { .. } => "gas",
            EventBody::Fall { .. } => "fall",
            EventBody::Tamper { .. } => "tamper",
        }
    }
}

impl Event {
    /// Builds a v1 event.
    pub fn new(boot: BootEpoch, seq: Seq, oldest: Seq, ts: u64, clk: Clock, ev: EventBody) -> Self {
        Event {
            v: PROTOCOL_VERSION,
            boot,
            seq,
            oldest,
            ts,
            clk,
            ev,
            mac: None,
        }
    }

    /// Checks version and ranges (the checks that need no wall clock).
    pub fn validate(&self) -> Result<(), WireError> {
        if self.v != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion { found: self.v });
        }
        if self.boot == 0 {
            return Err(WireError::OutOfRange { field: "boot" });
        }
        if self.seq == 0 {
            return Err(WireError::OutOfRange { field: "seq" });
        }
        if self.oldest == 0 || self.oldest > self.seq {
            return Err(WireError::OutOfRange { field: "oldest" });
        }
        if self.clk == Clock::Unix && self.ts < MIN_UNIX_MS {
            return Err(WireError::OutOfRange { field: "ts" });
        }
        if let EventBody::Gas { ppm, .. } = self.ev
            && ppm > GAS_PPM_MAX
        {
            return Err(WireError::OutOfRange { field: "ppm" });
        }
        if let Some(mac) = &self.mac {
            super::codec::check_mac_format(mac)?;
        }
        Ok(())
    }
}
