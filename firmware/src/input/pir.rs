//! Passive-infrared motion sensor with a hold-off: [`EventBody::Motion`] events.
//!
//! Motion is "seen" while the sensor's output is high (after an optional debounce).
//! An event is emitted when motion is seen and at least the hold-off has passed since
//! the previous motion event; motion seen during the hold-off is absorbed. A line held
//! high across the hold-off (continuous movement, or a retriggering module) yields one
//! event per hold-off. There is no "motion ended" event.

use embedded_hal::digital::InputPin;

use super::debounce::DebouncedPin;
use crate::wire::EventBody;

/// PIR settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PirConfig {
    /// No new motion event for this long after one, in seconds (default 30).
    pub holdoff_s: u32,
    /// Debounce of the output line in ms (default 0: PIR modules drive a clean level).
    pub debounce_ms: u32,
    /// Whether the output is high on motion (default `true`).
    pub motion_when_high: bool,
}

impl Default for PirConfig {
    fn default() -> Self {
        PirConfig {
            holdoff_s: 30,
            debounce_ms: 0,
            motion_when_high: true,
        }
    }
}

/// A PIR motion sensor.
#[derive(Debug)]
pub struct Pir<P> {
    pin: DebouncedPin<P>,
    holdoff_ms: u64,
    last_event_ms: Option<u64>,
}

impl<P: InputPin> Pir<P> {
    /// A PIR sensor on `pin`.
    pub const fn new(pin: P, config: PirConfig) -> Self {
        Pir {
            pin: DebouncedPin::new(pin, config.motion_when_high, config.debounce_ms),
            holdoff_ms: config.holdoff_s as u64 * 1000,
            last_event_ms: None,
        }
    }

    /// Samples the pin; returns a motion event when motion is seen outside the hold-off.
    pub fn poll(&mut self, now_ms: u64) -> Option<EventBody> {
        // A motion line that is high at start-up is motion too.
        let _ = self.pin.sample(now_ms);
        if self.pin.level() != Some(true) || self.in_holdoff(now_ms) {
            return None;
        }
        self.last_event_ms = Some(now_ms);
        Some(EventBody::Motion)
    }

    fn in_holdoff(&self, now_ms: u64) -> bool {
        self.last_event_ms
            .is_some_and(|last| now_ms.saturating_sub(last) < self.holdoff_ms)
    }

    /// When the next poll could produce an event without a new edge: the end of a
    /// pending debounce, or the end of the hold-off while motion is still seen.
    pub fn next_deadline(&self) -> Option<u64> {
        let holdoff_end = match (self.pin.level(), self.last_event_ms) {
            (Some(true), Some(last)) => Some(last.saturating_add(self.holdoff_ms)),
            _ => None,
        };
        match (self.pin.deadline(), holdoff_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the sensor currently sees motion.
    pub fn motion(&self) -> bool {
        self.pin.level() == Some(true)
    }

    /// How many pin reads failed (skipped samples).
    pub const fn read_errors(&self) -> u32 {
        self.pin.read_errors()
    }

    /// Gives the pin back.
    pub fn release(self) -> P {
        self.pin.release()
    }
}
