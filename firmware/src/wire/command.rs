//! Gateway → device commands: topic `anxin/v1/dev/{device}/down/cmd`, QoS 1.
//!
//! A flat object (kind in `"cmd"`, optional members per kind) so that the device can
//! decode it with `serde-json-core`, without an allocator.

use serde::{Deserialize, Serialize};

use super::{PROTOCOL_VERSION, WireError};

/// What the gateway asks of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// The alert raised by this device's event reached the gateway (LED/buzzer pattern
    /// "received").
    AlertReceived,
    /// A person acknowledged the alert: someone is coming (pattern "acknowledged").
    AlertAcknowledged,
    /// Installation-test mode on or off (`on`, `duration_s`): events are still sent, the
    /// gateway raises no caseworker alert, and the device confirms each input locally.
    InstallTest,
    /// New configuration values (`config`).
    Config,
    /// A check-in (`on`, `duration_s`): the gateway noticed an unusual silence and asks
    /// the elder whether all is well. The help button shows the "check-in" pattern for
    /// `duration_s` (default 5 min); a short press during it is sent as `help ok`
    /// instead of a call for help. `on: false` ends the prompt (answered another way).
    CheckIn,
}

/// Which alert a feedback command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertCause {
    /// Help button.
    Help,
    /// Fall detector.
    Fall,
    /// Gas alarm.
    Gas,
}

/// Configuration a device accepts at run time. Absent members keep their value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    /// Heartbeat interval in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_s: Option<u32>,
    /// Help-button cancel window in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_cancel_s: Option<u16>,
    /// Fall "I'm OK" window in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fall_cancel_s: Option<u16>,
    /// Gas alarm threshold in ppm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_alarm_ppm: Option<u32>,
    /// Gas clear threshold in ppm (below the alarm threshold: hysteresis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_clear_ppm: Option<u32>,
}

/// A command.
///
/// ```json
/// {"v":1,"id":42,"cmd":"alert_received","cause":"help"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Protocol version.
    pub v: u8,
    /// Command id, increasing per device: a device ignores an id it has already applied
    /// (QoS 1 may deliver twice).
    pub id: u32,
    /// The kind of command.
    pub cmd: CommandKind,
    /// For alert feedback: which alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<AlertCause>,
    /// For `install_test` and `check_in`: on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<bool>,
    /// For `install_test` and `check_in`: how long the mode lasts unless switched off,
    /// in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u32>,
    /// For `config`: the new values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<DeviceConfig>,
}

impl Command {
    /// A command of `cmd` kind with no optional members.
    pub fn new(id: u32, cmd: CommandKind) -> Self {
        Command {
            v: PROTOCOL_VERSION,
            id,
            cmd,
            cause: None,
            on: None,
            duration_s: None,
            config: None,
        }
    }

    /// Checks version and that each kind carries the members it needs.
    pub fn validate(&self) -> Result<(), WireError> {
        if self.v != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion { found: self.v });
        }
        match self.cmd {
            CommandKind::AlertReceived | CommandKind::AlertAcknowledged if self.cause.is_none() => {
                Err(WireError::OutOfRange { field: "cause" })
            }
            CommandKind::InstallTest | CommandKind::CheckIn if self.on.is_none() => {
                Err(WireError::OutOfRange { field: "on" })
            }
            CommandKind::Config => {
                let Some(c) = self.config else {
                    return Err(WireError::OutOfRange { field: "config" });
                };
                if c.heartbeat_s
                    .is_some_and(|s| !super::heartbeat::INTERVAL_RANGE_S.contains(&s))
                {
                    return Err(WireError::OutOfRange {
                        field: "heartbeat_s",
                    });
                }
                if let (Some(alarm), Some(clear)) = (c.gas_alarm_ppm, c.gas_clear_ppm)
                    && clear >= alarm
                {
                    return Err(WireError::OutOfRange {
                        field: "gas_clear_ppm",
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
