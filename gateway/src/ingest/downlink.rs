//! Gateway → device messages: application-level acks and commands, and the commands
//! devices have acknowledged (the `cmd` member of their heartbeats).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use anxin_firmware::wire::{self, Ack, Channel, Command, DeviceId};
use rumqttc::{AsyncClient, QoS};
use tracing::warn;

/// Acknowledged command ids kept per device: enough for the few commands that can be in
/// flight to one device at a time (received, acknowledged, a test, a config).
pub const APPLIED_PER_DEVICE: usize = 8;

/// What the gateway knows about a device's command acknowledgements since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandAcks {
    /// No heartbeat from the device yet: it may acknowledge commands or not.
    Unknown,
    /// Its heartbeats carry no `cmd` (older firmware): commands are sent once.
    NotReported,
    /// Its heartbeats carry `cmd`; `acked` says whether it acknowledged the id asked about.
    Reported {
        /// The device applied the command.
        acked: bool,
    },
}

#[derive(Debug, Default)]
struct DeviceAcks {
    reports: bool,
    applied: VecDeque<u32>,
}

/// The command ids each device reported as applied: the last [`APPLIED_PER_DEVICE`] per
/// device, and whether the device reports them at all. In memory: after a restart a
/// device is [`CommandAcks::Unknown`] until its next heartbeat.
#[derive(Debug, Default)]
pub struct AppliedCommands {
    devices: HashMap<String, DeviceAcks>,
}

impl AppliedCommands {
    /// Records a heartbeat of `device` carrying `cmd` (None: the member was absent; 0:
    /// no command applied yet).
    pub fn record(&mut self, device: &str, cmd: Option<u32>) {
        let d = self.devices.entry(device.to_string()).or_default();
        let Some(id) = cmd else {
            d.reports = false;
            return;
        };
        d.reports = true;
        if id == 0 || d.applied.contains(&id) {
            return;
        }
        if d.applied.len() >= APPLIED_PER_DEVICE {
            d.applied.pop_front();
        }
        d.applied.push_back(id);
    }

    /// Whether `device` acknowledged command `id`, or reports acknowledgements at all.
    pub fn status(&self, device: &str, id: u32) -> CommandAcks {
        match self.devices.get(device) {
            None => CommandAcks::Unknown,
            Some(d) if !d.reports => CommandAcks::NotReported,
            Some(d) => CommandAcks::Reported {
                acked: d.applied.contains(&id),
            },
        }
    }
}

/// Publishes to devices over the gateway's session without ever blocking the caller.
#[derive(Clone)]
pub struct Downlink {
    client: AsyncClient,
    applied: Arc<Mutex<AppliedCommands>>,
}

impl Downlink {
    /// Wraps the session's client.
    pub fn new(client: AsyncClient) -> Self {
        Downlink {
            client,
            applied: Arc::default(),
        }
    }

    /// Records the `cmd` member of a heartbeat of `device` (see [`AppliedCommands`]).
    pub fn record_applied(&self, device: &str, cmd: Option<u32>) {
        self.applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(device, cmd);
    }

    /// What `device` acknowledged of command `id`.
    pub fn command_acks(&self, device: &str, id: u32) -> CommandAcks {
        self.applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .status(device, id)
    }

    /// Sends `Ack { boot, upto }` to `device` (QoS 0: acks are cumulative and repeated).
    pub fn ack(&self, device: &DeviceId, boot: u32, upto: u32) -> bool {
        let mut buf = [0u8; 64];
        let Ok(n) = wire::encode(&Ack::new(boot, upto), &mut buf) else {
            return false;
        };
        let topic = wire::topic::topic(device, Channel::Ack);
        match self
            .client
            .try_publish(topic.as_str(), QoS::AtMostOnce, false, buf[..n].to_vec())
        {
            Ok(()) => true,
            Err(e) => {
                warn!(device_id = %device, error = %e, "ack not queued");
                false
            }
        }
    }

    /// Sends a command to `device` (QoS 1).
    pub fn command(&self, device: &DeviceId, cmd: &Command) -> bool {
        let mut buf = [0u8; wire::MAX_PAYLOAD];
        let Ok(n) = wire::encode(cmd, &mut buf) else {
            return false;
        };
        let topic = wire::topic::topic(device, Channel::Command);
        match self
            .client
            .try_publish(topic.as_str(), QoS::AtLeastOnce, false, buf[..n].to_vec())
        {
            Ok(()) => true,
            Err(e) => {
                warn!(device_id = %device, error = %e, "command not queued");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_never_heard_is_unknown_and_one_without_cmd_does_not_report() {
        let mut a = AppliedCommands::default();
        assert_eq!(a.status("d1", 5), CommandAcks::Unknown);
        a.record("d1", None);
        assert_eq!(a.status("d1", 5), CommandAcks::NotReported);
    }

    #[test]
    fn a_reported_id_is_acknowledged_and_others_are_not() {
        let mut a = AppliedCommands::default();
        a.record("d1", Some(0));
        assert_eq!(a.status("d1", 5), CommandAcks::Reported { acked: false });
        a.record("d1", Some(5));
        a.record("d1", Some(5));
        assert_eq!(a.status("d1", 5), CommandAcks::Reported { acked: true });
        assert_eq!(a.status("d2", 5), CommandAcks::Unknown, "per device");
    }

    #[test]
    fn only_the_last_ids_of_a_device_are_kept() {
        let mut a = AppliedCommands::default();
        for id in 1..=(APPLIED_PER_DEVICE as u32 + 2) {
            a.record("d1", Some(id));
        }
        assert_eq!(a.status("d1", 1), CommandAcks::Reported { acked: false });
        assert_eq!(a.status("d1", 2), CommandAcks::Reported { acked: false });
        assert_eq!(a.status("d1", 3), CommandAcks::Reported { acked: true });
        assert_eq!(a.devices["d1"].applied.len(), APPLIED_PER_DEVICE);
    }
}
