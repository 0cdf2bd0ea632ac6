//! Time, injectable: wall-clock time in production, the simulated homes' accelerated
//! clock in the demo and in end-to-end tests, and a manual clock in unit tests.
//!
//! The production clock ([`HostClock`]) also notices when the host's clock is *stepped*
//! (set by hand, or corrected by NTP after booting with a wrong time): a step is a jump
//! of the wall clock that the monotonic clock did not make. Everything that keeps
//! absolute deadlines (detection, escalations, the outbox, the uptime-clock offsets of
//! ingest) asks [`Clock::now_and_steps`] and moves its deadlines by each new step, so a
//! silence keeps its real length: a step forward raises no alert storm, a step back
//! delays no alert.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::warn;

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

    /// The current time and the sum of every step of this clock seen so far (ms; 0 for
    /// clocks that never step). A holder of absolute deadlines remembers the sum it last
    /// applied and moves its deadlines by the difference before using the time.
    fn now_and_steps(&self) -> (UnixMs, i64) {
        (self.now_ms(), 0)
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

/// Tells steps of a wall clock from its normal running by comparing it with a monotonic
/// clock between two readings. NTP slews a clock by at most 500 ppm, so a difference
/// above 2 s plus 0.1 % of the time between the readings is a step.
#[derive(Debug, Clone, Copy)]
pub struct StepDetector {
    last: Option<(UnixMs, Duration)>,
}

impl StepDetector {
    /// Smallest difference between wall and monotonic time counted as a step.
    pub const THRESHOLD_MS: i64 = 2_000;

    /// A detector with no reading yet.
    pub const fn new() -> Self {
        StepDetector { last: None }
    }

    /// Takes a reading (`wall` time, `mono` the monotonic time since any fixed origin)
    /// and returns the step since the previous reading, if there was one.
    pub fn observe(&mut self, wall: UnixMs, mono: Duration) -> Option<i64> {
        let prev = self.last.replace((wall, mono));
        let (w0, m0) = prev?;
        let mono_ms = mono.saturating_sub(m0).as_millis() as i64;
        let diff = wall.saturating_sub(w0).saturating_sub(mono_ms);
        (diff.abs() > Self::THRESHOLD_MS + mono_ms / 1000).then_some(diff)
    }
}

impl Default for StepDetector {
    fn default() -> Self {
        Self::new()
    }
}

/// The host's wall clock, watched for steps (the production clock).
#[derive(Debug)]
pub struct HostClock {
    origin: Instant,
    state: Mutex<(StepDetector, i64)>,
}

impl HostClock {
    /// The host clock, watched from now.
    pub fn new() -> Self {
        let c = HostClock {
            origin: Instant::now(),
            state: Mutex::new((StepDetector::new(), 0)),
        };
        let _ = c.now_and_steps();
        c
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now_ms(&self) -> UnixMs {
        SystemClock.now_ms()
    }

    fn now_and_steps(&self) -> (UnixMs, i64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Both readings under the lock, so that readings reach the detector in order.
        let wall = SystemClock.now_ms();
        let mono = self.origin.elapsed();
        if let Some(step) = s.0.observe(wall, mono) {
            s.1 = s.1.saturating_add(step);
            warn!(
                step_ms = step,
                "the host clock was stepped; deadlines keep their real length"
            );
        }
        (wall, s.1)
    }
}

/// What a holder of absolute deadlines has applied of a clock's steps.
#[derive(Debug, Clone, Copy)]
pub struct StepFollower {
    applied: i64,
}

impl StepFollower {
    /// Follows `clock` from now on (earlier steps are already in the holder's times).
    pub fn new(clock: &dyn Clock) -> Self {
        StepFollower {
            applied: clock.now_and_steps().1,
        }
    }

    /// The time, and the step the holder must still apply to its deadlines (0: none).
    pub fn now(&mut self, clock: &dyn Clock) -> (UnixMs, i64) {
        let (now, steps) = clock.now_and_steps();
        let step = steps - self.applied;
        self.applied = steps;
        (now, step)
    }

    /// The holder could not apply `step`: the next [`StepFollower::now`] returns it again.
    pub fn not_applied(&mut self, step: i64) {
        self.applied -= step;
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
    fn a_step_is_a_jump_the_monotonic_clock_did_not_make() {
        let mut d = StepDetector::new();
        let s = Duration::from_secs;
        assert_eq!(d.observe(1_000_000, s(10)), None, "the first reading");
        assert_eq!(
            d.observe(1_060_000, s(70)),
            None,
            "a minute of normal running"
        );
        assert_eq!(
            d.observe(1_060_000 + 3_600_000 + 1_000, s(71)),
            Some(3_600_000)
        );
        assert_eq!(
            d.observe(1_061_000 + 3_600_000, s(72)),
            None,
            "after the step"
        );
        assert_eq!(d.observe(1_062_000, s(73)), Some(-3_600_000));
        // NTP's slew over an hour (≤ 500 ppm) is no step; a 5 s jump is.
        assert_eq!(d.observe(1_062_000 + 3_601_800, s(3673)), None);
        assert_eq!(
            d.observe(1_062_000 + 3_601_800 + 6_000, s(3674)),
            Some(5_000)
        );
    }

    #[test]
    fn the_host_clock_reads_the_system_time_and_has_not_stepped() {
        let c = HostClock::new();
        let (now, steps) = c.now_and_steps();
        assert!((now - SystemClock.now_ms()).abs() < 1_000);
        assert_eq!(steps, 0);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(5);
        c.advance(Duration::from_millis(10));
        assert_eq!(c.now_ms(), 15);
    }
}
