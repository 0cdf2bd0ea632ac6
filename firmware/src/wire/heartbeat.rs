//! Heartbeat: topic `anxin/v1/dev/{device}/up/hb`, QoS 1, every `interval_s` seconds.
//! Not held in the outbox: a lost heartbeat is replaced by the next one.

#[cfg(feature = "std")]
use serde::Deserialize;
use serde::Serialize;

use super::ids::{BootEpoch, Mac, Seq};
use super::{Clock, MIN_UNIX_MS, PROTOCOL_VERSION, WireError};

/// Shortest and longest heartbeat interval a device may announce, in seconds.
pub const INTERVAL_RANGE_S: core::ops::RangeInclusive<u32> = 5..=86_400;

/// Device health.
///
/// ```json
/// {"v":1,"boot":3,"seq":17,"ts":1732435200123,"clk":"unix","battery_pct":87,"battery_mv":2950,"rssi_dbm":-67,"fw":"1.0.0","uptime_s":86400,"outbox":0,"dropped":0,"interval_s":300,"cmd":42}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "std", derive(Deserialize))]
pub struct Heartbeat {
    /// Protocol version.
    pub v: u8,
    /// Boot epoch.
    pub boot: BootEpoch,
    /// The last event `seq` issued in this boot (0 before the first event). Heartbeats
    /// are not events: they do not take a number of their own, so the event numbering
    /// stays gap-free, and this tells the gateway which events must exist.
    pub seq: Seq,
    /// When the heartbeat was sent.
    pub ts: u64,
    /// What `ts` counts from.
    pub clk: Clock,
    /// Battery charge, 0–100 %; absent on mains-powered devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<u8>,
    /// Battery voltage in millivolts, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_mv: Option<u16>,
    /// Received signal strength of the uplink in dBm (−150…0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi_dbm: Option<i16>,
    /// Firmware version.
    pub fw: heapless::String<16>,
    /// Seconds since boot.
    pub uptime_s: u32,
    /// Events waiting in the outbox (not yet acknowledged).
    pub outbox: u16,
    /// Events the outbox has dropped since boot because it was full.
    pub dropped: u32,
    /// The device's heartbeat interval in seconds: the gateway calls the device offline
    /// after two intervals plus a grace period without a heartbeat.
    pub interval_s: u32,
    /// Ambient temperature in tenths of a degree Celsius, where a sensor reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_dc: Option<i16>,
    /// The id of the last command the device applied (or recognised as applied) in
    /// this boot; 0 before the first. A device acknowledges a command by its next
    /// heartbeat's `cmd`; absent from devices that do not acknowledge commands (the
    /// gateway then delivers commands without waiting for an acknowledgement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<u32>,
    /// Reserved: per-device message authentication code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

impl Heartbeat {
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
        if self.battery_pct.is_some_and(|p| p > 100) {
            return Err(WireError::OutOfRange {
                field: "battery_pct",
            });
        }
        if self.rssi_dbm.is_some_and(|r| !(-150..=0).contains(&r)) {
            return Err(WireError::OutOfRange { field: "rssi_dbm" });
        }
        if self.fw.is_empty() {
            return Err(WireError::OutOfRange { field: "fw" });
        }
        if !INTERVAL_RANGE_S.contains(&self.interval_s) {
            return Err(WireError::OutOfRange {
                field: "interval_s",
            });
        }
        if self.temp_dc.is_some_and(|t| !(-600..=1000).contains(&t)) {
            return Err(WireError::OutOfRange { field: "temp_dc" });
        }
        if let Some(mac) = &self.mac {
            super::codec::check_mac_format(mac)?;
        }
        Ok(())
    }
}
