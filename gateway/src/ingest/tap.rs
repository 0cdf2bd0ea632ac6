//! The in-process path from the embedded broker to the committer: device events and
//! heartbeats that the broker accepted go straight into the committer's queue, without
//! the MQTT round trip through the gateway's own session (broker → TCP → rumqttc → queue,
//! and a PUBACK back). The queue is bounded: when it is full, the publishing connection
//! waits (back-pressure), where a subscriber would have lost messages from a full
//! session queue. Status messages (and the last wills among them) still arrive through
//! the session's subscription.
//!
//! An external broker has no tap: there the session subscribes to every uplink.

use std::sync::Arc;

use super::lane::IngestQueue;
use super::mqtt::Inbound;
use crate::broker::UplinkTap;
use crate::clock::SharedClock;
use anxin_firmware::wire::topic::{self, Channel};
use async_trait::async_trait;
use rumqttc::{Publish, QoS};

/// The subscription the gateway's session keeps beside the tap: status messages only.
pub const STATUS_FILTER: &str = "anxin/v1/dev/+/up/status";

/// Hands accepted events and heartbeats to the committer.
pub struct IngestTap {
    tx: IngestQueue,
    clock: SharedClock,
}

impl IngestTap {
    /// Into the committer's lanes `tx`, stamped with `clock`.
    pub fn new(tx: IngestQueue, clock: SharedClock) -> Arc<Self> {
        Arc::new(IngestTap { tx, clock })
    }
}

/// Whether `topic` is an event or heartbeat uplink (the tap's share of the traffic).
pub fn tapped(topic: &str) -> bool {
    topic.strip_prefix(topic::PREFIX).is_some_and(|rest| {
        rest.ends_with(Channel::Event.suffix()) || rest.ends_with(Channel::Heartbeat.suffix())
    })
}

#[async_trait]
impl UplinkTap for IngestTap {
    fn wants(&self, topic: &str) -> bool {
        tapped(topic)
    }

    async fn deliver(&self, topic: &str, payload: bytes::Bytes) {
        let inbound = Inbound {
            // QoS 0: nothing to acknowledge to the broker for an in-process message.
            publish: Publish::from_bytes(topic, QoS::AtMostOnce, payload),
            generation: 0,
            received_ms: self.clock.now_ms(),
        };
        // Closed only at shutdown, when nothing is committed any more anyway.
        let _ = self.tx.send(inbound).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tap_takes_events_and_heartbeats_but_not_status() {
        assert!(tapped("anxin/v1/dev/h1-door/up/event"));
        assert!(tapped("anxin/v1/dev/h1-door/up/hb"));
        assert!(!tapped("anxin/v1/dev/h1-door/up/status"));
        assert!(!tapped("anxin/v1/dev/h1-door/down/ack"));
        assert!(!tapped("zigbee2mqtt/kitchen"));
    }
}
