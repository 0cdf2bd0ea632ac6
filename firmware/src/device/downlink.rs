//! What the device does with the gateway's messages (`down/ack`, `down/cmd`).

use embedded_hal::digital::{InputPin, OutputPin};

use super::Device;
use super::feedback::Pattern;
use super::link::Link;
use crate::input::GasProbe;
use crate::input::gas::{BadThresholds, GasConfig};
use crate::wire::codec::{decode_ack_no_std, decode_command_no_std};
use crate::wire::{Channel, Command, CommandKind, WireError};

/// Longest installation test a command can ask for, in seconds (one day).
pub const INSTALL_TEST_MAX_S: u32 = 86_400;

/// How long a check-in is asked when the command names no duration, in seconds.
pub const CHECK_IN_DEFAULT_S: u32 = 300;

/// What [`Device::on_message`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// An ack cleared this many events from the outbox.
    Acked {
        /// Events cleared.
        cleared: usize,
    },
    /// A command was applied.
    Applied(CommandKind),
    /// A command id already applied arrived again (QoS 1 redelivery); ignored.
    Repeated {
        /// The command id.
        id: u32,
    },
}

/// Why a downlink message was rejected. Nothing was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// The payload did not decode or validate.
    Wire(WireError),
    /// The channel is not a downlink channel.
    NotDownlink(Channel),
    /// A `config` command would leave the gas clear threshold at or above the alarm
    /// threshold (or the alarm threshold out of range).
    BadConfig(BadThresholds),
}

impl From<WireError> for MessageError {
    fn from(e: WireError) -> Self {
        MessageError::Wire(e)
    }
}

impl core::fmt::Display for MessageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MessageError::Wire(e) => write!(f, "rejected downlink message: {e}"),
            MessageError::NotDownlink(c) => write!(f, "{} is not a downlink channel", c.suffix()),
            MessageError::BadConfig(b) => write!(
                f,
                "gas clear threshold {} ppm is not below alarm threshold {} ppm",
                b.clear_ppm, b.alarm_ppm
            ),
        }
    }
}

impl core::error::Error for MessageError {}

impl<L, I, O, G, const N: usize> Device<L, I, O, G, N>
where
    L: Link,
    I: InputPin,
    O: OutputPin,
    G: GasProbe,
{
    /// Handles a message that arrived on the device's `down/ack` or `down/cmd` topic.
    ///
    /// - `ack`: clears the covered events of the ack's boot epoch (any epoch, also an
    ///   earlier one) from the outbox.
    /// - `cmd`: ignores an id among the last 8 applied; otherwise applies it. Either way
    ///   the next heartbeat is sent at once and carries the id as `cmd` (the device's
    ///   acknowledgement). Applying it:
    ///   `alert_received` / `alert_acknowledged` show their feedback pattern;
    ///   `install_test` switches the test mode on (for `duration_s`, default from the
    ///   settings, at most a day; confirmed by a blink) or off; `config` changes the
    ///   heartbeat interval, cancel windows and gas thresholds, all or nothing;
    ///   `check_in` asks the elder (pattern "check-in" for `duration_s`, default 5 min,
    ///   at most 30 min; the next help press is sent as `help ok`) or stops asking.
    pub fn on_message(
        &mut self,
        channel: Channel,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Handled, MessageError> {
        let result = match channel {
            Channel::Ack => decode_ack_no_std(payload)
                .map_err(MessageError::from)
                .map(|ack| {
                    let acked = &mut self.stats.acked;
                    let cleared = self.outbox.ack_with(&ack, |e| acked.add(&e.ev));
                    Handled::Acked { cleared }
                }),
            Channel::Command => decode_command_no_std(payload)
                .map_err(MessageError::from)
                .and_then(|cmd| self.apply(&cmd, now_ms)),
            other => Err(MessageError::NotDownlink(other)),
        };
        if result.is_err() {
            self.stats.rejected = self.stats.rejected.saturating_add(1);
        }
        result
    }

    fn apply(&mut self, cmd: &Command, now_ms: u64) -> Result<Handled, MessageError> {
        let handled = self.apply_new(cmd, now_ms)?;
        // The next heartbeat, sent at once, carries the id: the gateway keeps resending
        // the command until it sees it (a redelivery is acknowledged again, since the
        // first acknowledgement may be what was lost).
        self.last_command = cmd.id;
        self.heartbeat.send_soon(now_ms, 0);
        Ok(handled)
    }

    fn apply_new(&mut self, cmd: &Command, now_ms: u64) -> Result<Handled, MessageError> {
        if self.recent_commands.iter().any(|&id| id == cmd.id) {
            return Ok(Handled::Repeated { id: cmd.id });
        }
        if self.recent_commands.is_full() {
            self.recent_commands.pop_front();
        }
        let _ = self.recent_commands.push_back(cmd.id);

        match cmd.cmd {
            CommandKind::AlertReceived => self.show(Pattern::Received, now_ms),
            CommandKind::AlertAcknowledged => self.show(Pattern::Acknowledged, now_ms),
            CommandKind::InstallTest => {
                if cmd.on == Some(true) {
                    let secs = cmd
                        .duration_s
                        .unwrap_or(self.settings.install_test_s)
                        .min(INSTALL_TEST_MAX_S);
                    self.install_test_until = Some(now_ms.saturating_add(u64::from(secs) * 1000));
                    self.show(Pattern::Confirm, now_ms);
                } else {
                    self.install_test_until = None;
                }
            }
            CommandKind::CheckIn => {
                if cmd.on == Some(true) {
                    let secs = cmd.duration_s.unwrap_or(CHECK_IN_DEFAULT_S);
                    let ms = (u64::from(secs) * 1000).min(super::feedback::CHECK_IN_MAX_MS);
                    self.check_in_until = Some(now_ms.saturating_add(ms));
                    self.show(Pattern::CheckIn, now_ms);
                    self.stats.check_ins = self.stats.check_ins.saturating_add(1);
                } else {
                    self.end_check_in(now_ms);
                }
            }
            CommandKind::Config => {
                let Some(config) = cmd.config else {
                    return Err(MessageError::Wire(WireError::OutOfRange {
                        field: "config",
                    }));
                };
                let gas = match (config.gas_alarm_ppm, config.gas_clear_ppm) {
                    (None, None) => None,
                    (alarm, clear) => Some(
                        GasConfig::new(
                            alarm.unwrap_or(self.settings.gas.alarm_ppm()),
                            clear.unwrap_or(self.settings.gas.clear_ppm()),
                        )
                        .map_err(MessageError::BadConfig)?,
                    ),
                };
                if let Some(gas) = gas {
                    self.settings.gas = gas;
                    if let Some((_, alarm)) = &mut self.gas {
                        alarm.set_config(gas);
                    }
                }
                if let Some(s) = config.heartbeat_s {
                    self.heartbeat.set_interval(s, now_ms);
                    self.settings.heartbeat_s = self.heartbeat.interval_s();
                }
                if let Some(s) = config.help_cancel_s {
                    self.settings.button.cancel_s = s;
                    if let Some(button) = &mut self.button {
                        button.set_cancel_s(s);
                    }
                }
                if let Some(s) = config.fall_cancel_s {
                    self.settings.fall_cancel_s = s;
                }
            }
        }
        self.stats.commands = self.stats.commands.saturating_add(1);
        Ok(Handled::Applied(cmd.cmd))
    }

    fn show(&mut self, pattern: Pattern, now_ms: u64) {
        if let Some(indicator) = &mut self.indicator {
            indicator.show(pattern, now_ms);
        }
    }
}
