//! Enclosure tamper switch: debounced open/closed changes become
//! [`EventBody::Tamper`] events.

use embedded_hal::digital::InputPin;

use super::debounce::DebouncedPin;
use crate::wire::EventBody;

/// Tamper switch settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TamperConfig {
    /// How long a new level must hold before it counts, in ms (default 100).
    pub debounce_ms: u32,
    /// Whether the pin reads high when the enclosure is open (default `true`: the lid
    /// holds a switch to ground closed; a pull-up reads high once it is lifted).
    pub open_when_high: bool,
}

impl Default for TamperConfig {
    fn default() -> Self {
        TamperConfig {
            debounce_ms: 100,
            open_when_high: true,
        }
    }
}

/// A debounced tamper switch. The level at start-up is taken silently.
#[derive(Debug)]
pub struct Tamper<P> {
    pin: DebouncedPin<P>,
}

impl<P: InputPin> Tamper<P> {
    /// A tamper switch on `pin`.
    pub const fn new(pin: P, config: TamperConfig) -> Self {
        Tamper {
            pin: DebouncedPin::new(pin, config.open_when_high, config.debounce_ms),
        }
    }

    /// Samples the pin; returns a tamper event when a change is accepted.
    pub fn poll(&mut self, now_ms: u64) -> Option<EventBody> {
        self.pin
            .sample(now_ms)
            .map(|c| EventBody::Tamper { open: c.active })
    }

    /// Whether the enclosure is open, once known.
    pub const fn is_open(&self) -> Option<bool> {
        self.pin.level()
    }

    /// When the next poll could produce an event without a new edge (debounce end).
    pub fn next_deadline(&self) -> Option<u64> {
        self.pin.deadline()
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
