//! Counters a device keeps about its events and messages.

use serde::Serialize;

use crate::wire::EventBody;

/// A count per event kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// Door events.
    pub door: u64,
    /// Motion events.
    pub motion: u64,
    /// Help events.
    pub help: u64,
    /// Gas events.
    pub gas: u64,
    /// Fall events.
    pub fall: u64,
    /// Tamper events.
    pub tamper: u64,
}

impl KindCounts {
    /// Counts one event of `body`'s kind.
    pub fn add(&mut self, body: &EventBody) {
        let slot = match body {
            EventBody::Door { .. } => &mut self.door,
            EventBody::Motion => &mut self.motion,
            EventBody::Help { .. } => &mut self.help,
            EventBody::Gas { .. } => &mut self.gas,
            EventBody::Fall { .. } => &mut self.fall,
            EventBody::Tamper { .. } => &mut self.tamper,
        };
        *slot = slot.saturating_add(1);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &KindCounts) {
        self.door = self.door.saturating_add(other.door);
        self.motion = self.motion.saturating_add(other.motion);
        self.help = self.help.saturating_add(other.help);
        self.gas = self.gas.saturating_add(other.gas);
        self.fall = self.fall.saturating_add(other.fall);
        self.tamper = self.tamper.saturating_add(other.tamper);
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.door
            .saturating_add(self.motion)
            .saturating_add(self.help)
            .saturating_add(self.gas)
            .saturating_add(self.fall)
            .saturating_add(self.tamper)
    }
}

/// What a device did since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeviceStats {
    /// Events issued (each took a seq).
    pub generated: KindCounts,
    /// Events published for the first time.
    pub sent: KindCounts,
    /// Events published again (retry or replay after a reconnect).
    pub resent: KindCounts,
    /// Events cleared by the gateway's acks.
    pub acked: KindCounts,
    /// Events dropped by the full outbox.
    pub dropped: KindCounts,
    /// Heartbeats published.
    pub heartbeats: u64,
    /// Online statuses published (one per session).
    pub online: u64,
    /// Commands applied (repeats excluded).
    pub commands: u64,
    /// Downlink messages rejected (malformed, wrong version, bad config).
    pub rejected: u64,
    /// Check-ins asked by the gateway.
    pub check_ins: u64,
    /// Check-ins answered with a press ("I'm OK").
    pub check_ins_answered: u64,
}
