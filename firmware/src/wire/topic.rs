//! Topic layout, one subtree per device:
//!
//! | topic | direction | what |
//! |---|---|---|
//! | `anxin/v1/dev/{device}/up/event` | device → gateway | [`super::Event`] |
//! | `anxin/v1/dev/{device}/up/hb` | device → gateway | [`super::Heartbeat`] |
//! | `anxin/v1/dev/{device}/up/status` | device → gateway, retained, last will | [`super::Status`] |
//! | `anxin/v1/dev/{device}/down/cmd` | gateway → device | [`super::Command`] |
//! | `anxin/v1/dev/{device}/down/ack` | gateway → device | [`super::Ack`] |
//!
//! A broker ACL confines a device with one pattern per direction: publish only to
//! `anxin/v1/dev/%u/up/#`, subscribe only to `anxin/v1/dev/%u/down/#`.

use core::fmt::Write;

use super::{DeviceId, WireError};

/// Common prefix of every device topic.
pub const PREFIX: &str = "anxin/v1/dev/";

/// What the gateway subscribes to.
pub const GATEWAY_FILTER: &str = "anxin/v1/dev/+/up/#";

/// Longest topic the protocol produces.
pub const TOPIC_MAX: usize = 64;

/// A topic string.
pub type Topic = heapless::String<TOPIC_MAX>;

/// One of the per-device topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `up/event`
    Event,
    /// `up/hb`
    Heartbeat,
    /// `up/status`
    Status,
    /// `down/cmd`
    Command,
    /// `down/ack`
    Ack,
}

impl Channel {
    /// The topic suffix after the device id.
    pub const fn suffix(self) -> &'static str {
        match self {
            Channel::Event => "up/event",
            Channel::Heartbeat => "up/hb",
            Channel::Status => "up/status",
            Channel::Command => "down/cmd",
            Channel::Ack => "down/ack",
        }
    }

    /// Whether the device publishes on this channel.
    pub const fn is_uplink(self) -> bool {
        matches!(self, Channel::Event | Channel::Heartbeat | Channel::Status)
    }

    fn from_suffix(s: &str) -> Option<Self> {
        Some(match s {
            "up/event" => Channel::Event,
            "up/hb" => Channel::Heartbeat,
            "up/status" => Channel::Status,
            "down/cmd" => Channel::Command,
            "down/ack" => Channel::Ack,
            _ => return None,
        })
    }
}

/// The topic of `device` on `channel`.
pub fn topic(device: &DeviceId, channel: Channel) -> Topic {
    let mut t = Topic::new();
    // Cannot fail: prefix (13) + id (<= 32) + "/" + suffix (<= 9) <= 64.
    let _ = write!(t, "{PREFIX}{device}/{}", channel.suffix());
    t
}

/// Splits a topic into its device and channel.
pub fn parse(topic: &str) -> Result<(DeviceId, Channel), WireError> {
    let rest = topic.strip_prefix(PREFIX).ok_or(WireError::BadTopic)?;
    let (id, suffix) = rest.split_once('/').ok_or(WireError::BadTopic)?;
    let channel = Channel::from_suffix(suffix).ok_or(WireError::BadTopic)?;
    let id = DeviceId::new(id).map_err(|_| WireError::BadTopic)?;
    Ok((id, channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_for_every_channel() {
        let id = DeviceId::new("door-0001").unwrap();
        for ch in [
            Channel::Event,
            Channel::Heartbeat,
            Channel::Status,
            Channel::Command,
            Channel::Ack,
        ] {
            let t = topic(&id, ch);
            assert_eq!(parse(&t).unwrap(), (id.clone(), ch));
        }
        assert_eq!(
            topic(&id, Channel::Event).as_str(),
            "anxin/v1/dev/door-0001/up/event"
        );
    }

    #[test]
    fn foreign_and_malformed_topics_are_rejected() {
        for t in [
            "anxin/v2/dev/a/up/event",
            "anxin/v1/dev/a/up/other",
            "anxin/v1/dev//up/event",
            "anxin/v1/dev/a+b/up/event",
            "anxin/v1/dev/a/b/up/event",
            "zigbee2mqtt/kitchen",
            "",
        ] {
            assert_eq!(parse(t), Err(WireError::BadTopic), "{t}");
        }
    }

    #[test]
    fn longest_device_id_fits_the_topic_buffer() {
        let id = DeviceId::new(&"x".repeat(32)).unwrap();
        assert_eq!(parse(&topic(&id, Channel::Status)).unwrap().0, id);
    }
}
