//! Local feedback for the elder: an LED (or buzzer) pattern on one output pin.
//!
//! | pattern | shown | looks like | ends |
//! |---|---|---|---|
//! | [`Pattern::Pressed`] | a help press or a fall was raised | fast blink, 100 ms on / 100 ms off | on `received`, `acknowledged`, a cancel, or after 2 min |
//! | [`Pattern::Received`] | command `alert_received` | slow blink, 500 ms / 500 ms | on `acknowledged`, or after 30 min |
//! | [`Pattern::Acknowledged`] | command `alert_acknowledged`: someone is coming | steady on | after 30 s |
//! | [`Pattern::Cancelled`] | the help press or fall was cancelled | three short blinks | after 600 ms |
//! | [`Pattern::Confirm`] | installation test: an input fired, or the mode started; a check-in was answered | on for 1 s | after 1 s |
//! | [`Pattern::CheckIn`] | command `check_in`: "are you all right? press once" | a short pulse every 2 s (200 ms on) | on a press, on `check_in` off, or at the end of its `duration_s` (at most 30 min) |
//!
//! A late `alert_received` does not replace `acknowledged`.

use embedded_hal::digital::OutputPin;

/// The longest a check-in prompt is shown (the device ends it earlier when the
/// command's `duration_s` runs out).
pub const CHECK_IN_MAX_MS: u64 = 1_800_000;

/// What the indicator shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Nothing (off).
    Off,
    /// Help pressed (or fall detected), waiting for the gateway.
    Pressed,
    /// The gateway has the alert.
    Received,
    /// A person acknowledged the alert.
    Acknowledged,
    /// The press was cancelled.
    Cancelled,
    /// Installation-test confirmation; check-in answered.
    Confirm,
    /// The gateway asks the elder to press once if all is well.
    CheckIn,
}

impl Pattern {
    /// (on ms, off ms, total ms) of the pattern.
    const fn shape(self) -> (u64, u64, u64) {
        match self {
            Pattern::Off => (0, 1, 0),
            Pattern::Pressed => (100, 100, 120_000),
            Pattern::Received => (500, 500, 1_800_000),
            Pattern::Acknowledged => (30_000, 0, 30_000),
            Pattern::Cancelled => (100, 100, 600),
            Pattern::Confirm => (1_000, 0, 1_000),
            Pattern::CheckIn => (200, 1_800, CHECK_IN_MAX_MS),
        }
    }

    /// The level `elapsed_ms` into the pattern, or `None` once it has ended.
    pub const fn level_at(self, elapsed_ms: u64) -> Option<bool> {
        let (on, off, total) = self.shape();
        if elapsed_ms >= total {
            return None;
        }
        Some(elapsed_ms % (on + off) < on)
    }

    /// When, `elapsed_ms` into the pattern, the level next changes or the pattern ends.
    const fn next_change(self, elapsed_ms: u64) -> Option<u64> {
        let (on, off, total) = self.shape();
        if elapsed_ms >= total {
            return None;
        }
        let cycle = on + off;
        let start = elapsed_ms - elapsed_ms % cycle;
        let next = if elapsed_ms % cycle < on && off > 0 {
            start + on
        } else {
            start + cycle
        };
        Some(if next < total { next } else { total })
    }
}

/// Drives one output with the current [`Pattern`]. The pin is written only when the
/// level changes (or the last write failed).
#[derive(Debug)]
pub struct Indicator<O> {
    pin: O,
    pattern: Pattern,
    since_ms: u64,
    polled_ms: u64,
    written: Option<bool>,
    write_errors: u32,
}

impl<O: OutputPin> Indicator<O> {
    /// An indicator on `pin`, off.
    pub const fn new(pin: O) -> Self {
        Indicator {
            pin,
            pattern: Pattern::Off,
            since_ms: 0,
            polled_ms: 0,
            written: None,
            write_errors: 0,
        }
    }

    /// Starts showing `pattern` at `now_ms` and drives the pin at once.
    pub fn show(&mut self, pattern: Pattern, now_ms: u64) {
        if pattern == Pattern::Received && self.pattern == Pattern::Acknowledged {
            return;
        }
        self.pattern = pattern;
        self.since_ms = now_ms;
        self.poll(now_ms);
    }

    /// Ends finished patterns and drives the pin.
    pub fn poll(&mut self, now_ms: u64) {
        self.polled_ms = now_ms;
        let elapsed = now_ms.saturating_sub(self.since_ms);
        let level = match self.pattern.level_at(elapsed) {
            Some(level) => level,
            None => {
                self.pattern = Pattern::Off;
                false
            }
        };
        if self.written == Some(level) {
            return;
        }
        let result = if level {
            self.pin.set_high()
        } else {
            self.pin.set_low()
        };
        match result {
            Ok(()) => self.written = Some(level),
            Err(_) => {
                self.written = None;
                self.write_errors = self.write_errors.saturating_add(1);
            }
        }
    }

    /// The pattern shown.
    pub const fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// When the level next changes or the pattern ends (`None` when off).
    pub fn next_deadline(&self) -> Option<u64> {
        if self.written.is_none() {
            return Some(self.polled_ms);
        }
        let elapsed = self.polled_ms.saturating_sub(self.since_ms);
        self.pattern
            .next_change(elapsed)
            .map(|at| self.since_ms.saturating_add(at))
    }

    /// How many pin writes failed.
    pub const fn write_errors(&self) -> u32 {
        self.write_errors
    }

    /// Gives the pin back.
    pub fn release(self) -> O {
        self.pin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressed_blinks_fast_and_ends_after_two_minutes() {
        assert_eq!(Pattern::Pressed.level_at(0), Some(true));
        assert_eq!(Pattern::Pressed.level_at(150), Some(false));
        assert_eq!(Pattern::Pressed.level_at(200), Some(true));
        assert_eq!(Pattern::Pressed.level_at(120_000), None);
    }

    #[test]
    fn acknowledged_is_steady_then_ends() {
        assert_eq!(Pattern::Acknowledged.level_at(29_999), Some(true));
        assert_eq!(Pattern::Acknowledged.level_at(30_000), None);
        assert_eq!(Pattern::Acknowledged.next_change(10), Some(30_000));
    }

    #[test]
    fn blink_changes_are_found() {
        assert_eq!(Pattern::Cancelled.next_change(0), Some(100));
        assert_eq!(Pattern::Cancelled.next_change(150), Some(200));
        assert_eq!(Pattern::Cancelled.next_change(550), Some(600));
        assert_eq!(Pattern::Off.next_change(0), None);
    }
}
