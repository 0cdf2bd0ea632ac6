//! Time, injectable: wall-clock time in production, the simulated homes' accelerated
//! clock in the demo and in end-to-end tests, and a manual clock in unit tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC.
pub type UnixMs = i64;

/// A source of "now" for everything that reasons about time.
pub trait Clock: Send + Sync + 'static {
    /// The current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> UnixMs;

    /// How long to wait in real time until this clock reads `deadline` (zero if passed).
    fn real_delay_until(&self, deadline: UnixMs) -> Duration {
        Duration::from_millis(deadline.saturating_sub(self.now_ms()).max(0) as u64)
    }
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> UnixMs {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Wall-clock time run `speed` times faster from fixed origins, so that it reads the same
/// in a process restarted later (`[clock]` in the configuration: rehearsals and
/// process-level tests of deadlines across restarts).
#[derive(Debug, Clone, Copy)]
pub struct WarpedClock {
    real_origin_ms: UnixMs,
    virtual_origin_ms: UnixMs,
    speed: f64,
}

impl WarpedClock {
    /// Reads `virtual_origin_ms` at real time `real_origin_ms`, advancing `speed`× faster.
    pub fn new(real_origin_ms: UnixMs, virtual_origin_ms: UnixMs, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        WarpedClock {
            real_origin_ms,
            virtual_origin_ms,
            speed,
        }
    }
}

impl Clock for WarpedClock {
    fn now_ms(&self) -> UnixMs {
        let real = SystemClock.now_ms() - self.real_origin_ms;
        self.virtual_origin_ms + (real as f64 * self.speed) as i64
    }

    fn real_delay_until(&self, deadline: UnixMs) -> Duration {
        let left = deadline.saturating_sub(self.now_ms()).max(0) as f64;
        Duration::from_secs_f64(left / self.speed / 1000.0)
    }
}

/// The accelerated clock of the simulated homes ("a day in a minute"): the demo and the
/// end-to-end tests run the gateway on the very clock the simulated devices use.
impl Clock for anxin_firmware::sim::SimClock {
    fn now_ms(&self) -> UnixMs {
        anxin_firmware::sim::SimClock::now_ms(self) as i64
    }

    fn real_delay_until(&self, deadline: UnixMs) -> Duration {
        self.real_duration(deadline.saturating_sub(Clock::now_ms(self)).max(0) as u64)
    }
}

/// A clock that moves only when told to (unit tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock reading `now`.
    pub fn new(now: UnixMs) -> Self {
        ManualClock(AtomicI64::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: UnixMs) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> UnixMs {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulation_clock_runs_faster_and_converts_delays_back_to_real_time() {
        let c = anxin_firmware::sim::SimClock::new(1_000_000, 1440.0);
        let d = Clock::real_delay_until(&c, Clock::now_ms(&c) + 1440 * 1000);
        assert!(
            d <= Duration::from_millis(1000) && d > Duration::from_millis(900),
            "{d:?}"
        );
    }

    #[test]
    fn a_warped_clock_reads_the_same_in_a_restarted_process() {
        let now = SystemClock.now_ms();
        let a = WarpedClock::new(now - 1000, 5_000_000, 60.0);
        let b = WarpedClock::new(now - 1000, 5_000_000, 60.0);
        let (x, y) = (a.now_ms(), b.now_ms());
        assert!((x - y).abs() < 5_000 && x >= 5_000_000 + 60_000, "{x} {y}");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(5);
        c.advance(Duration::from_millis(10));
        assert_eq!(c.now_ms(), 15);
    }
}
