//! Heartbeat scheduling: when the device sends its next [`crate::wire::Heartbeat`].
//!
//! Deterministic and jitter-free: the first heartbeat goes `first_after_ms` after
//! start-up (soon, so the gateway sees a fresh device quickly), then one every interval
//! on a fixed grid (`first + k × interval`), so late polls do not make the schedule
//! drift. Heartbeats missed while the device could not send are not made up in a burst:
//! the grid skips ahead. Spread many devices apart by giving them different
//! `first_after_ms`. The device loop builds the message itself (it knows battery, link
//! quality and outbox depth).

use crate::wire::heartbeat::INTERVAL_RANGE_S;

/// Default heartbeat interval, in seconds.
pub const DEFAULT_INTERVAL_S: u32 = 300;

/// Default delay of the first heartbeat after start-up, in ms.
pub const DEFAULT_FIRST_AFTER_MS: u32 = 5_000;

/// When heartbeats are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatSchedule {
    interval_ms: u64,
    next_ms: u64,
}

impl HeartbeatSchedule {
    /// A schedule with `interval_s` (clamped to the protocol's range), the first
    /// heartbeat `first_after_ms` after `now_ms`.
    pub fn new(interval_s: u32, first_after_ms: u32, now_ms: u64) -> Self {
        HeartbeatSchedule {
            interval_ms: clamp_interval_ms(interval_s),
            next_ms: now_ms.saturating_add(u64::from(first_after_ms)),
        }
    }

    /// Whether a heartbeat is due at `now_ms`.
    pub const fn is_due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_ms
    }

    /// If a heartbeat is due, moves the schedule to the next slot and returns `true`.
    /// Call it whether or not the heartbeat could be sent: a lost heartbeat is replaced
    /// by the next one.
    pub fn take(&mut self, now_ms: u64) -> bool {
        if !self.is_due(now_ms) {
            return false;
        }
        self.next_ms = self.next_ms.saturating_add(self.interval_ms);
        if self.next_ms <= now_ms {
            // Missed slots: keep the grid's phase, skip to the next slot after now.
            let behind = now_ms - self.next_ms;
            let slots = behind / self.interval_ms + 1;
            self.next_ms = self
                .next_ms
                .saturating_add(slots.saturating_mul(self.interval_ms));
        }
        true
    }

    /// Brings the next heartbeat forward to at most `within_ms` from now (after a
    /// reconnect, so the gateway sees fresh health at once).
    pub fn send_soon(&mut self, now_ms: u64, within_ms: u32) {
        self.next_ms = self
            .next_ms
            .min(now_ms.saturating_add(u64::from(within_ms)));
    }

    /// Changes the interval (clamped). A shorter interval takes effect at once (the next
    /// heartbeat comes at most one new interval from now); a longer one after the next
    /// heartbeat.
    pub fn set_interval(&mut self, interval_s: u32, now_ms: u64) {
        self.interval_ms = clamp_interval_ms(interval_s);
        self.next_ms = self.next_ms.min(now_ms.saturating_add(self.interval_ms));
    }

    /// The interval in seconds.
    pub const fn interval_s(&self) -> u32 {
        (self.interval_ms / 1000) as u32
    }

    /// When the next heartbeat is due, in monotonic ms.
    pub const fn next_ms(&self) -> u64 {
        self.next_ms
    }
}

fn clamp_interval_ms(interval_s: u32) -> u64 {
    u64::from(interval_s.clamp(*INTERVAL_RANGE_S.start(), *INTERVAL_RANGE_S.end())) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_heartbeat_comes_soon_after_boot_then_every_interval() {
        let mut s = HeartbeatSchedule::new(300, 5_000, 1_000);
        assert!(!s.take(5_999));
        assert!(s.take(6_000));
        assert_eq!(s.next_ms(), 306_000);
        assert!(!s.take(305_999));
        assert!(s.take(306_500));
        assert_eq!(s.next_ms(), 606_000, "a late poll does not shift the grid");
    }

    #[test]
    fn missed_heartbeats_are_not_sent_in_a_burst() {
        let mut s = HeartbeatSchedule::new(60, 0, 0);
        assert!(s.take(0));
        assert!(s.take(10 * 60_000 + 5));
        assert_eq!(s.next_ms(), 11 * 60_000);
        assert!(!s.take(10 * 60_000 + 6));
    }

    #[test]
    fn a_shorter_interval_applies_at_once() {
        let mut s = HeartbeatSchedule::new(3_600, 0, 0);
        assert!(s.take(0));
        s.set_interval(60, 1_000);
        assert_eq!(s.next_ms(), 61_000);
        assert_eq!(s.interval_s(), 60);
    }

    #[test]
    fn intervals_are_clamped_to_the_protocol_range() {
        assert_eq!(HeartbeatSchedule::new(1, 0, 0).interval_s(), 5);
        assert_eq!(HeartbeatSchedule::new(1_000_000, 0, 0).interval_s(), 86_400);
    }

    #[test]
    fn send_soon_only_brings_the_heartbeat_forward() {
        let mut s = HeartbeatSchedule::new(300, 0, 0);
        s.take(0);
        s.send_soon(10_000, 1_000);
        assert_eq!(s.next_ms(), 11_000);
        s.send_soon(10_000, 500_000);
        assert_eq!(s.next_ms(), 11_000);
    }
}
