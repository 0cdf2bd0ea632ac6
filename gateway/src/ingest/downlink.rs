//! Gateway → device messages: application-level acks and commands.

use anxin_firmware::wire::{self, Ack, Channel, Command, DeviceId};
use rumqttc::{AsyncClient, QoS};
use tracing::warn;

/// Publishes to devices over the gateway's session without ever blocking the caller.
#[derive(Clone)]
pub struct Downlink {
    client: AsyncClient,
}

impl Downlink {
    /// Wraps the session's client.
    pub fn new(client: AsyncClient) -> Self {
        Downlink { client }
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
