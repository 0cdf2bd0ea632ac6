//! Feedback to the elder's device: the `alert_received` / `alert_acknowledged` commands
//! of the wire protocol (LED/buzzer patterns "received" and "someone is coming"),
//! delivered through the outbox like every other notification, so that a restart or a
//! lost broker connection delays them but never loses them.
//!
//! The command id is derived from the idempotency key: a resend of the same feedback
//! carries the same id, and the device (which ignores ids it applied recently) shows it
//! once.
//!
//! Handing a command to the broker is not delivering it (the in-process broker keeps no
//! durable session; a crash loses what it held). A device that acknowledges commands (its
//! heartbeats carry `cmd`) is therefore sent the command on every attempt until one of its
//! heartbeats carries the id: until then the attempt ends in
//! [`FailReason::AwaitingAck`], which keeps the outbox row pending and retried. Devices
//! whose heartbeats carry no `cmd` (older firmware) get the command once, as before.

use std::sync::Arc;

use anxin_firmware::wire::{self, AlertCause, CommandKind, DeviceId};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{Channel, FailReason, Notification, Notifier, NotifyError};
use crate::ingest::{CommandAcks, Downlink};

/// Publishes commands to devices.
pub trait DeviceCommands: Send + Sync + 'static {
    /// Delivers `cmd` to `device`: Ok once it is delivered (acknowledged by a device that
    /// acknowledges commands, queued for one that does not); a transient error while not
    /// connected or while the device's acknowledgement is awaited.
    fn send(&self, device: &str, cmd: &wire::Command) -> Result<(), NotifyError>;
}

/// The gateway's MQTT downlink.
pub struct DownlinkCommands {
    downlink: Downlink,
    connected: watch::Receiver<bool>,
}

impl DownlinkCommands {
    /// Over `downlink`, sending only while `connected`.
    pub fn new(downlink: Downlink, connected: watch::Receiver<bool>) -> Self {
        DownlinkCommands {
            downlink,
            connected,
        }
    }
}

impl DeviceCommands for DownlinkCommands {
    fn send(&self, device: &str, cmd: &wire::Command) -> Result<(), NotifyError> {
        let acks = self.downlink.command_acks(device, cmd.id);
        if acks == (CommandAcks::Reported { acked: true }) {
            return Ok(());
        }
        if !*self.connected.borrow() {
            return Err(NotifyError::Transient(
                FailReason::NotConnected,
                "MQTT session not connected".into(),
            ));
        }
        let id = DeviceId::new(device)
            .map_err(|e| NotifyError::Permanent(FailReason::BadAddress, format!("{e:?}")))?;
        if !self.downlink.command(&id, cmd) {
            return Err(NotifyError::Transient(
                FailReason::NotConnected,
                "command not queued".into(),
            ));
        }
        match acks {
            CommandAcks::NotReported => Ok(()),
            // Unknown: not heard from since start-up; it may acknowledge commands, so
            // the command is kept until its first heartbeat tells.
            CommandAcks::Unknown | CommandAcks::Reported { .. } => Err(NotifyError::Transient(
                FailReason::AwaitingAck,
                format!(
                    "command {} sent; awaiting the device's acknowledgement",
                    cmd.id
                ),
            )),
        }
    }
}

/// A command id from an idempotency key (never 0).
pub fn command_id(key: &str) -> u32 {
    let h = Sha256::digest(key.as_bytes());
    u32::from_be_bytes([h[0], h[1], h[2], h[3]]).max(1)
}

/// The payload of a device feedback notification.
pub fn feedback_payload(kind: CommandKind, cause: AlertCause) -> serde_json::Value {
    serde_json::json!({ "cmd": kind, "cause": cause })
}

/// Sends device feedback notifications.
pub struct DeviceNotifier {
    devices: Arc<dyn DeviceCommands>,
}

impl DeviceNotifier {
    /// Over `devices`.
    pub fn new(devices: Arc<dyn DeviceCommands>) -> Self {
        DeviceNotifier { devices }
    }

    /// The wire command of `n`.
    pub fn command(n: &Notification) -> Result<wire::Command, NotifyError> {
        let kind: CommandKind = serde_json::from_value(n.payload["cmd"].clone())
            .map_err(|e| NotifyError::Permanent(FailReason::Encode, e.to_string()))?;
        let cause: Option<AlertCause> = serde_json::from_value(n.payload["cause"].clone()).ok();
        let mut cmd = wire::Command::new(command_id(&n.key), kind);
        cmd.cause = cause;
        cmd.on = n.payload["on"].as_bool();
        cmd.duration_s = n.payload["duration_s"]
            .as_u64()
            .and_then(|s| u32::try_from(s).ok());
        cmd.validate()
            .map_err(|e| NotifyError::Permanent(FailReason::Encode, format!("{e:?}")))?;
        Ok(cmd)
    }
}

#[async_trait]
impl Notifier for DeviceNotifier {
    fn channel(&self) -> Channel {
        Channel::Device
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let cmd = Self::command(n)?;
        self.devices.send(&n.address, &cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anxin_firmware::wire::CommandKind;
    use rumqttc::{AsyncClient, MqttOptions};

    /// Commands over a real downlink whose session is never polled (publishes queue up
    /// while the event loop, returned to be kept alive, exists).
    fn commands(connected: bool) -> (DownlinkCommands, Downlink, rumqttc::EventLoop) {
        let (client, eventloop) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 64);
        let downlink = Downlink::new(client);
        let (_tx, rx) = watch::channel(connected);
        (
            DownlinkCommands::new(downlink.clone(), rx),
            downlink,
            eventloop,
        )
    }

    fn reason(r: Result<(), NotifyError>) -> Option<FailReason> {
        r.err().map(|e| e.reason())
    }

    #[test]
    fn a_command_to_a_device_that_acknowledges_is_pending_until_its_heartbeat_carries_the_id() {
        let (c, downlink, _session) = commands(true);
        let cmd = wire::Command::new(7, CommandKind::AlertReceived);
        downlink.record_applied("h1-help", Some(0));
        assert_eq!(
            reason(c.send("h1-help", &cmd)),
            Some(FailReason::AwaitingAck)
        );
        assert_eq!(
            reason(c.send("h1-help", &cmd)),
            Some(FailReason::AwaitingAck)
        );
        downlink.record_applied("h1-help", Some(7));
        assert!(c.send("h1-help", &cmd).is_ok());
    }

    #[test]
    fn an_acknowledged_command_is_delivered_even_while_not_connected() {
        let (c, downlink, _session) = commands(false);
        let cmd = wire::Command::new(7, CommandKind::AlertReceived);
        assert_eq!(
            reason(c.send("h1-help", &cmd)),
            Some(FailReason::NotConnected)
        );
        downlink.record_applied("h1-help", Some(7));
        assert!(c.send("h1-help", &cmd).is_ok());
    }

    #[test]
    fn a_device_without_cmd_in_its_heartbeats_gets_the_command_once_as_before() {
        let (c, downlink, _session) = commands(true);
        let cmd = wire::Command::new(7, CommandKind::AlertReceived);
        downlink.record_applied("h1-help", None);
        assert!(c.send("h1-help", &cmd).is_ok());
    }

    #[test]
    fn a_device_not_heard_since_start_up_is_awaited_like_one_that_acknowledges() {
        let (c, _downlink, _session) = commands(true);
        let cmd = wire::Command::new(7, CommandKind::AlertReceived);
        assert_eq!(
            reason(c.send("h1-help", &cmd)),
            Some(FailReason::AwaitingAck)
        );
    }

    #[test]
    fn the_same_key_gives_the_same_command_id() {
        assert_eq!(command_id("a/b/received-0"), command_id("a/b/received-0"));
        assert_ne!(command_id("a/b/received-0"), command_id("a/b/received-1"));
    }
}
