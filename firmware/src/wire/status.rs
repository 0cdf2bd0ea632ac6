//! Availability: topic `anxin/v1/dev/{device}/up/status`, QoS 1, **retained**.
//! The device publishes `online` after every connect; the `offline` form is registered as
//! the MQTT last will at connect time, so the broker publishes it when the device
//! vanishes. A clean shutdown publishes `offline` itself.

use serde::{Deserialize, Serialize};

use super::ids::{BootEpoch, Mac, Seq};
use super::{Clock, MIN_UNIX_MS, PROTOCOL_VERSION, WireError};

/// Whether the device is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Connected.
    Online,
    /// Gone (last will) or shutting down.
    Offline,
}

/// Availability message.
///
/// ```json
/// {"v":1,"boot":3,"seq":17,"ts":1732435200123,"clk":"unix","state":"online","fw":"1.0.0"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "std", derive(Deserialize))]
pub struct Status {
    /// Protocol version.
    pub v: u8,
    /// Boot epoch.
    pub boot: BootEpoch,
    /// The last event `seq` issued when the message was built (for a last will: at
    /// connect time).
    pub seq: Seq,
    /// When the message was built (for a last will: the connect time).
    pub ts: u64,
    /// What `ts` counts from.
    pub clk: Clock,
    /// Online or offline.
    pub state: Availability,
    /// Firmware version (present when online).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fw: Option<heapless::String<16>>,
    /// Reserved: per-device message authentication code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

impl Status {
    /// Checks version and ranges.
    pub fn validate(&self) -> Result<(), WireError> {
        if self.v != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion { found: self.v });
        }
        if self.boot == 0 {
            return Err(WireError::OutOfRange { field: "boot" });
        }
        if self.clk == Clock::Unix && self.ts < MIN_UNIX_MS {
            return Err(WireError::OutOfRange { field: "ts" });
        }
        if let Some(mac) = &self.mac {
            super::codec::check_mac_format(mac)?;
        }
        Ok(())
    }
}
