//! Door contact (reed switch): debounced open/closed changes become
//! [`EventBody::Door`] events.

use embedded_hal::digital::InputPin;

use super::debounce::DebouncedPin;
use crate::wire::EventBody;

/// Door contact settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorConfig {
    /// How long a new level must hold before it counts, in ms (default 50).
    pub debounce_ms: u32,
    /// Whether the pin reads high when the door is open (default `true`: a normally
    /// closed reed contact to ground with a pull-up opens the circuit when the magnet
    /// moves away).
    pub open_when_high: bool,
}

impl Default for DoorConfig {
    fn default() -> Self {
        DoorConfig {
            debounce_ms: 50,
            open_when_high: true,
        }
    }
}

/// A debounced door contact. The level at start-up is taken silently; every later
/// accepted change is one event.
#[derive(Debug)]
pub struct Door<P> {
    pin: DebouncedPin<P>,
}

impl<P: InputPin> Door<P> {
    /// A door contact on `pin`.
    pub const fn new(pin: P, config: DoorConfig) -> Self {
        Door {
            pin: DebouncedPin::new(pin, config.open_when_high, config.debounce_ms),
        }
    }

    /// Samples the pin; returns a door event when an open/close change is accepted.
    pub fn poll(&mut self, now_ms: u64) -> Option<EventBody> {
        self.pin
            .sample(now_ms)
            .map(|c| EventBody::Door { open: c.active })
    }

    /// Whether the door is open, once known.
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
