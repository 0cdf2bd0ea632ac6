//! Identifiers carried on the wire.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use super::WireError;

/// Longest device id, in bytes.
pub const DEVICE_ID_MAX: usize = 32;

/// A device's identity: the MQTT username and client id, and one level of its topics.
/// 1–32 characters from `[A-Za-z0-9_-]`, so it can never inject MQTT wildcards or levels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "heapless::String<DEVICE_ID_MAX>")]
pub struct DeviceId(heapless::String<DEVICE_ID_MAX>);

impl DeviceId {
    /// Validates and wraps `s`.
    pub fn new(s: &str) -> Result<Self, WireError> {
        if s.is_empty()
            || s.len() > DEVICE_ID_MAX
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(WireError::BadDeviceId);
        }
        let mut out = heapless::String::new();
        out.push_str(s).map_err(|_| WireError::BadDeviceId)?;
        Ok(DeviceId(out))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<heapless::String<DEVICE_ID_MAX>> for DeviceId {
    type Error = WireError;
    fn try_from(s: heapless::String<DEVICE_ID_MAX>) -> Result<Self, WireError> {
        DeviceId::new(s.as_str())
    }
}

impl FromStr for DeviceId {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self, WireError> {
        DeviceId::new(s)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Boot epoch: incremented and stored in non-volatile memory at every boot, so that the
/// pair (boot, seq) is never reused by a device. Starts at 1.
pub type BootEpoch = u32;

/// Event sequence number within a boot epoch: starts at 1, +1 per event, never skipped
/// when issued.
pub type Seq = u32;

/// Room reserved in v1 for a per-device message authentication code: 32 lowercase hex
/// characters (the first 16 bytes of an HMAC-SHA256). See `docs/protocol.md`.
pub type Mac = heapless::String<32>;
