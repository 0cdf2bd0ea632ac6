//! The simulation's accelerated clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Virtual wall-clock time running `speed` times faster than real time from a virtual
/// origin. Copy it to the gateway (or anything else) that must see the same virtual
/// time. Built on `tokio::time::Instant`, so a paused tokio clock pauses it too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimClock {
    virtual_origin_ms: u64,
    real_origin: Instant,
    speed: f64,
}

impl SimClock {
    /// A clock that reads `virtual_origin_ms` (Unix ms) now and runs `speed` times
    /// faster than real time (`1440.0`: a day per minute). A speed that is not a
    /// positive finite number is taken as 1.
    pub fn new(virtual_origin_ms: u64, speed: f64) -> Self {
        SimClock {
            virtual_origin_ms,
            real_origin: Instant::now(),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    /// A clock that starts at the real wall-clock time.
    pub fn starting_now(speed: f64) -> Self {
        SimClock::new(real_unix_ms(), speed)
    }

    /// The virtual time now, in Unix ms.
    pub fn now_ms(&self) -> u64 {
        let elapsed = self.real_origin.elapsed().as_secs_f64();
        self.virtual_origin_ms
            .saturating_add((elapsed * 1000.0 * self.speed) as u64)
    }

    /// The real instant at which the clock reads `virtual_ms` (the origin's instant for
    /// earlier times).
    pub fn instant_at(&self, virtual_ms: u64) -> Instant {
        self.real_origin + self.real_duration(virtual_ms.saturating_sub(self.virtual_origin_ms))
    }

    /// How long `virtual_ms` of virtual time takes in real time.
    pub fn real_duration(&self, virtual_ms: u64) -> Duration {
        Duration::from_secs_f64(virtual_ms as f64 / 1000.0 / self.speed)
            .min(Duration::from_secs(86_400 * 365))
    }

    /// How much virtual time passes in `real` real time, in ms.
    pub fn virtual_ms(&self, real: Duration) -> u64 {
        (real.as_secs_f64() * 1000.0 * self.speed) as u64
    }

    /// The speed factor.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The virtual time at the origin, in Unix ms.
    pub fn virtual_origin_ms(&self) -> u64 {
        self.virtual_origin_ms
    }
}

/// The real wall-clock time in Unix ms.
pub fn real_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_time_runs_speed_times_faster() {
        let clock = SimClock::new(1_000_000, 1440.0);
        assert_eq!(clock.real_duration(86_400_000), Duration::from_secs(60));
        assert_eq!(clock.virtual_ms(Duration::from_secs(1)), 1_440_000);
        let at = clock.instant_at(1_000_000 + 1_440_000);
        assert_eq!(at - clock.real_origin, Duration::from_secs(1));
        assert!(clock.now_ms() >= 1_000_000);
    }

    #[test]
    fn bad_speed_is_taken_as_real_time() {
        assert_eq!(SimClock::new(0, 0.0).speed(), 1.0);
        assert_eq!(SimClock::new(0, f64::NAN).speed(), 1.0);
    }
}
