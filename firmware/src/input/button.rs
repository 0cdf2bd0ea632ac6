//! Help button gestures: [`EventBody::Help`] events.
//!
//! | gesture | event | when |
//! |---|---|---|
//! | press | `help press` | at once, as soon as the press is debounced |
//! | second press within the cancel window | `help cancel` | at that press; the window closes |
//! | held for the long-press time | `help long` | while still held, once per hold |
//!
//! The cancel window (default 10 s, config `help_cancel_s`) runs from the physical
//! press that raised `help press` to the physical start of the second press: a second
//! press strictly inside the window cancels, one at or after its end is a new
//! `help press`. A press is always reported at once, so a long press gives `press`
//! followed by `long`; a long press closes the cancel window, and a long hold of the
//! cancelling press still reports `long` (holding the button is a call for help).
//! A button already held at start-up is taken silently (a stuck button cannot call).

use embedded_hal::digital::InputPin;

use super::debounce::DebouncedPin;
use crate::wire::{EventBody, HelpAction};

/// Help button settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonConfig {
    /// Debounce in ms (default 50).
    pub debounce_ms: u32,
    /// Cancel window in seconds (default 10; config `help_cancel_s`).
    pub cancel_s: u16,
    /// Hold time for a long press, in ms (default 3000).
    pub long_press_ms: u32,
    /// Whether the pin reads low while pressed (default `true`: a button to ground with
    /// a pull-up).
    pub pressed_when_low: bool,
}

impl Default for ButtonConfig {
    fn default() -> Self {
        ButtonConfig {
            debounce_ms: 50,
            cancel_s: 10,
            long_press_ms: 3000,
            pressed_when_low: true,
        }
    }
}

/// Events from one poll of the button (at most a press or cancel and a long press).
pub type Gestures = heapless::Vec<EventBody, 2>;

/// A help button.
#[derive(Debug)]
pub struct HelpButton<P> {
    pin: DebouncedPin<P>,
    cancel_ms: u64,
    long_ms: u64,
    /// Physical start of the current hold, and whether `long` was sent for it.
    held: Option<(u64, bool)>,
    /// Physical start of the press that opened the cancel window.
    window_from: Option<u64>,
}

impl<P: InputPin> HelpButton<P> {
    /// A help button on `pin`.
    pub const fn new(pin: P, config: ButtonConfig) -> Self {
        HelpButton {
            pin: DebouncedPin::new(pin, !config.pressed_when_low, config.debounce_ms),
            cancel_ms: config.cancel_s as u64 * 1000,
            long_ms: config.long_press_ms as u64,
            held: None,
            window_from: None,
        }
    }

    /// Changes the cancel window (config `help_cancel_s`).
    pub fn set_cancel_s(&mut self, cancel_s: u16) {
        self.cancel_ms = u64::from(cancel_s) * 1000;
    }

    /// The cancel window in seconds.
    pub fn cancel_s(&self) -> u16 {
        u16::try_from(self.cancel_ms / 1000).unwrap_or(u16::MAX)
    }

    /// Samples the pin once and returns the gestures recognised.
    pub fn poll(&mut self, now_ms: u64) -> Gestures {
        let mut out = Gestures::new();
        match self.pin.sample(now_ms) {
            Some(change) if change.active => {
                let since = change.since_ms;
                self.held = Some((since, false));
                let cancels = self
                    .window_from
                    .is_some_and(|from| since.saturating_sub(from) < self.cancel_ms);
                let act = if cancels {
                    self.window_from = None;
                    HelpAction::Cancel
                } else {
                    self.window_from = Some(since);
                    HelpAction::Press
                };
                let _ = out.push(EventBody::Help { act });
            }
            Some(_) => self.held = None,
            None => {}
        }
        if let Some((since, false)) = self.held
            && now_ms.saturating_sub(since) >= self.long_ms
        {
            self.held = Some((since, true));
            self.window_from = None;
            let _ = out.push(EventBody::Help {
                act: HelpAction::Long,
            });
        }
        out
    }

    /// Whether the button is held now (debounced).
    pub fn is_pressed(&self) -> bool {
        self.pin.level() == Some(true)
    }

    /// When the next poll could produce a gesture without a new edge: the end of a
    /// pending debounce, or the long-press time of the current hold.
    pub fn next_deadline(&self) -> Option<u64> {
        let long = match self.held {
            Some((since, false)) => Some(since.saturating_add(self.long_ms)),
            _ => None,
        };
        match (self.pin.deadline(), long) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
