//! Device identity and configuration.

use crate::heartbeat::{DEFAULT_FIRST_AFTER_MS, DEFAULT_INTERVAL_S};
use crate::input::{ButtonConfig, DoorConfig, GasConfig, PirConfig, TamperConfig};
use crate::outbox::RetryPolicy;
use crate::wire::{BootEpoch, DeviceId};

/// Firmware version text as carried on the wire (at most 16 bytes).
pub type FwVersion = heapless::String<16>;

/// This crate's version as a [`FwVersion`].
pub fn crate_version() -> FwVersion {
    let mut fw = FwVersion::new();
    let _ = fw.push_str(env!("CARGO_PKG_VERSION"));
    fw
}

/// Who the device is and how it behaves. `config` commands change the heartbeat
/// interval, the cancel windows and the gas thresholds at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Device id (MQTT client id and username).
    pub id: DeviceId,
    /// Boot epoch: read from non-volatile memory, incremented and written back at every
    /// boot, so that (boot, seq) is never reused. At least 1.
    pub boot: BootEpoch,
    /// Firmware version.
    pub fw: FwVersion,
    /// Heartbeat interval in seconds (default 300; config `heartbeat_s`).
    pub heartbeat_s: u32,
    /// Delay of the first heartbeat after start-up in ms (default 5000).
    pub first_heartbeat_ms: u32,
    /// Door contact.
    pub door: DoorConfig,
    /// Tamper switch.
    pub tamper: TamperConfig,
    /// PIR.
    pub pir: PirConfig,
    /// Help button (config `help_cancel_s` changes `button.cancel_s`).
    pub button: ButtonConfig,
    /// Gas thresholds (config `gas_alarm_ppm`, `gas_clear_ppm`).
    pub gas: GasConfig,
    /// Fall "I'm OK" window in seconds (default 30; config `fall_cancel_s`), for the
    /// pendant's fall detector.
    pub fall_cancel_s: u16,
    /// Resending of unacknowledged events.
    pub retry: RetryPolicy,
    /// Installation-test duration when the command gives none, in seconds (default 600).
    pub install_test_s: u32,
    /// Most events published per poll (default 16), so one poll stays short.
    pub send_budget: usize,
}

impl Settings {
    /// Defaults for device `id` in boot epoch `boot`.
    pub fn new(id: DeviceId, boot: BootEpoch) -> Self {
        Settings {
            id,
            boot: boot.max(1),
            fw: crate_version(),
            heartbeat_s: DEFAULT_INTERVAL_S,
            first_heartbeat_ms: DEFAULT_FIRST_AFTER_MS,
            door: DoorConfig::default(),
            tamper: TamperConfig::default(),
            pir: PirConfig::default(),
            button: ButtonConfig::default(),
            gas: GasConfig::default(),
            fall_cancel_s: 30,
            retry: RetryPolicy::default(),
            install_test_s: 600,
            send_budget: 16,
        }
    }
}
