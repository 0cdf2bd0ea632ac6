//! Feedback to the elder's device: the `alert_received` / `alert_acknowledged` commands
//! of the wire protocol (LED/buzzer patterns "received" and "someone is coming"),
//! delivered through the outbox like every other notification, so that a restart or a
//! lost broker connection delays them but never loses them.
//!
//! The command id is derived from the idempotency key: a resend of the same feedback
//! carries the same id, and the device (which ignores ids it applied recently) shows it
//! once.

use std::sync::Arc;

use anxin_firmware::wire::{self, AlertCause, CommandKind, DeviceId};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{Channel, FailReason, Notification, Notifier, NotifyError};
use crate::ingest::Downlink;

/// Publishes commands to devices.
pub trait DeviceCommands: Send + Sync + 'static {
    /// Queues `cmd` for `device`; a transient error when not connected.
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
        if !*self.connected.borrow() {
            return Err(NotifyError::Transient(
                FailReason::NotConnected,
                "MQTT session not connected".into(),
            ));
        }
        let id = DeviceId::new(device)
            .map_err(|e| NotifyError::Permanent(FailReason::BadAddress, format!("{e:?}")))?;
        if self.downlink.command(&id, cmd) {
            Ok(())
        } else {
            Err(NotifyError::Transient(
                FailReason::NotConnected,
                "command not queued".into(),
            ))
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

    #[test]
    fn the_same_key_gives_the_same_command_id() {
        assert_eq!(command_id("a/b/received-0"), command_id("a/b/received-0"));
        assert_ne!(command_id("a/b/received-0"), command_id("a/b/received-1"));
    }
}
