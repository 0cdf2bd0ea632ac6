//! The device's uplink: how it publishes and whether it is connected.

use crate::wire::Channel;

/// Identifies one connection of the link: it changes on every new connection, so the
/// device notices a reconnect even between two polls.
pub type SessionId = u32;

/// Why a publish did not go out. Nothing is lost: events stay in the outbox and are
/// sent again; a heartbeat is replaced by the next one; the online status is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The link is not connected.
    NotConnected,
    /// The link's send queue is full for now.
    Busy,
    /// The payload is larger than the link can carry.
    TooLarge,
}

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            LinkError::NotConnected => "link is not connected",
            LinkError::Busy => "link send queue is full",
            LinkError::TooLarge => "payload too large for the link",
        })
    }
}

impl core::error::Error for LinkError {}

/// An MQTT-like uplink, implemented by the radio stack (or by the simulator over
/// rumqttc).
///
/// The link owns the MQTT session details: client id and username are the device id;
/// it registers the offline [`crate::wire::Status`] as last will (built with
/// [`super::Device::status`]); it subscribes to the device's `down/#` after every
/// connect and hands what arrives to [`super::Device::on_message`]. The device
/// publishes the retained online status itself after each new session.
pub trait Link {
    /// `Some(session)` while connected (a new value for every new connection), `None`
    /// while disconnected.
    fn session(&self) -> Option<SessionId>;

    /// Publishes `payload` on the device's topic for `channel`: QoS 1 for events and
    /// heartbeats, QoS 1 **retained** for status. `Ok` means the link took the message
    /// (not that the gateway has it: only an ack says that).
    fn publish(&mut self, channel: Channel, payload: &[u8]) -> Result<(), LinkError>;

    /// Received signal strength of the uplink in dBm, when known (for heartbeats).
    fn rssi_dbm(&self) -> Option<i16> {
        None
    }
}

impl<T: Link + ?Sized> Link for &mut T {
    fn session(&self) -> Option<SessionId> {
        (**self).session()
    }

    fn publish(&mut self, channel: Channel, payload: &[u8]) -> Result<(), LinkError> {
        (**self).publish(channel, payload)
    }

    fn rssi_dbm(&self) -> Option<i16> {
        (**self).rssi_dbm()
    }
}
