//! Debouncing of a digital level sampled at arbitrary times.
//!
//! A new level is accepted once every sample for `debounce_ms` has shown it; a sample of
//! the old level in between restarts the count (contact bounce). The first sample after
//! start-up sets the level without reporting a change.

use embedded_hal::digital::InputPin;

/// A level change accepted by the [`Debouncer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The new level (`true` = the input is active, after polarity is applied).
    pub active: bool,
    /// When the new level was first seen (the physical edge), in monotonic ms.
    pub since_ms: u64,
}

/// Debounces one level.
#[derive(Debug, Clone)]
pub struct Debouncer {
    debounce_ms: u32,
    stable: Option<bool>,
    candidate: Option<(bool, u64)>,
}

impl Debouncer {
    /// A debouncer that accepts a level after `debounce_ms` (0 accepts every sample).
    pub const fn new(debounce_ms: u32) -> Self {
        Debouncer {
            debounce_ms,
            stable: None,
            candidate: None,
        }
    }

    /// The accepted level, or `None` before the first sample.
    pub const fn level(&self) -> Option<bool> {
        self.stable
    }

    /// Feeds one sample taken at `now_ms`; returns the change once it is accepted.
    pub fn sample(&mut self, active: bool, now_ms: u64) -> Option<Change> {
        let Some(stable) = self.stable else {
            self.stable = Some(active);
            return None;
        };
        if active == stable {
            self.candidate = None;
            return None;
        }
        let since_ms = match self.candidate {
            Some((level, since)) if level == active => since,
            _ => {
                self.candidate = Some((active, now_ms));
                now_ms
            }
        };
        if now_ms.saturating_sub(since_ms) >= u64::from(self.debounce_ms) {
            self.stable = Some(active);
            self.candidate = None;
            return Some(Change { active, since_ms });
        }
        None
    }

    /// When a pending change would be accepted if the level holds, if one is pending.
    pub fn deadline(&self) -> Option<u64> {
        self.candidate
            .map(|(_, since)| since.saturating_add(u64::from(self.debounce_ms)))
    }
}

/// A digital input pin with its polarity and a [`Debouncer`]: the building block of
/// the contact-like inputs.
#[derive(Debug)]
pub struct DebouncedPin<P> {
    pin: P,
    active_high: bool,
    debouncer: Debouncer,
    read_errors: u32,
}

impl<P: InputPin> DebouncedPin<P> {
    /// Wraps `pin`; the input is active when the pin reads `active_high`.
    pub const fn new(pin: P, active_high: bool, debounce_ms: u32) -> Self {
        DebouncedPin {
            pin,
            active_high,
            debouncer: Debouncer::new(debounce_ms),
            read_errors: 0,
        }
    }

    /// Reads the pin once and feeds the debouncer. A failed read is counted and skipped.
    pub fn sample(&mut self, now_ms: u64) -> Option<Change> {
        match self.pin.is_high() {
            Ok(high) => self.debouncer.sample(high == self.active_high, now_ms),
            Err(_) => {
                self.read_errors = self.read_errors.saturating_add(1);
                None
            }
        }
    }

    /// The accepted level (`true` = active), or `None` before the first good read.
    pub const fn level(&self) -> Option<bool> {
        self.debouncer.level()
    }

    /// When a pending change would be accepted.
    pub fn deadline(&self) -> Option<u64> {
        self.debouncer.deadline()
    }

    /// How many reads of the pin failed.
    pub const fn read_errors(&self) -> u32 {
        self.read_errors
    }

    /// Gives the pin back.
    pub fn release(self) -> P {
        self.pin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_sets_the_level_without_a_change() {
        let mut d = Debouncer::new(50);
        assert_eq!(d.sample(true, 0), None);
        assert_eq!(d.level(), Some(true));
    }

    #[test]
    fn a_level_is_accepted_after_the_debounce_time_with_its_first_edge() {
        let mut d = Debouncer::new(50);
        d.sample(false, 0);
        assert_eq!(d.sample(true, 100), None);
        assert_eq!(d.deadline(), Some(150));
        assert_eq!(d.sample(true, 149), None);
        assert_eq!(
            d.sample(true, 150),
            Some(Change {
                active: true,
                since_ms: 100
            })
        );
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn bounce_back_restarts_the_count() {
        let mut d = Debouncer::new(50);
        d.sample(false, 0);
        d.sample(true, 100);
        d.sample(false, 120);
        assert_eq!(d.sample(true, 140), None);
        assert_eq!(d.sample(true, 170), None);
        assert_eq!(d.sample(true, 190).map(|c| c.since_ms), Some(140));
    }

    #[test]
    fn zero_debounce_accepts_at_once() {
        let mut d = Debouncer::new(0);
        d.sample(false, 0);
        assert!(d.sample(true, 5).is_some());
    }
}
