//! [`LoginThrottle`]: progressive delay for failed CONNECTs, per (client id, remote
//! address), so that guessing a device's password costs time instead of running at the
//! speed of the network.
//!
//! - Each failure doubles the delay before the next attempt of the same key is answered
//!   (from [`ThrottleConfig::first_delay`] up to [`ThrottleConfig::max_delay`]); attempts
//!   of one key are spaced by that delay even when they arrive in parallel.
//! - An attempt that would have to wait longer than twice the cap is refused at once,
//!   without checking its password: the attacker's connections hold nothing.
//! - A success resets the key; a key idle for [`ThrottleConfig::forget_after`] is
//!   forgotten. So a device whose id someone else is guessing, from another address, is
//!   not slowed at all, and one behind the same address waits at most the cap.
//! - At most [`ThrottleConfig::max_keys`] keys are kept: when full, expired keys go first,
//!   then the table is cleared (an attacker flooding keys regains full speed for one
//!   round, never memory).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tuning of the throttle.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Delay after the first failure.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// How long an idle key is remembered.
    pub forget_after: Duration,
    /// Most keys kept.
    pub max_keys: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(4),
            forget_after: Duration::from_secs(600),
            max_keys: 10_000,
        }
    }
}

/// What to do with a CONNECT before checking its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check it now.
    Now,
    /// Wait this long, then check it.
    After(Duration),
    /// Refuse it without checking (too many attempts queued for this key).
    Refuse,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// The earliest time the next attempt of this key is answered.
    next_at: Instant,
    last_seen: Instant,
}

type Key = (String, Option<IpAddr>);

/// Failure counters with progressive delay, bounded in memory.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    cfg: ThrottleConfig,
    keys: Mutex<HashMap<Key, Entry>>,
}

impl LoginThrottle {
    /// A throttle with `cfg`.
    pub fn new(cfg: ThrottleConfig) -> Self {
        LoginThrottle {
            cfg,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn delay_after(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (failures - 1).min(20);
        self.cfg
            .first_delay
            .saturating_mul(1 << doublings)
            .min(self.cfg.max_delay)
    }

    /// Decides when the attempt of `client_id` from `ip` arriving at `now` is answered,
    /// and reserves that slot.
    pub fn admit(&self, client_id: &str, ip: Option<IpAddr>, now: Instant) -> Admission {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = keys.get_mut(&(client_id.to_owned(), ip)) else {
            return Admission::Now;
        };
        e.last_seen = now;
        if e.failures == 0 || e.next_at <= now {
            e.next_at = now + self.delay_after(e.failures);
            return Admission::Now;
        }
        let wait = e.next_at - now;
        if wait > self.cfg.max_delay * 2 {
            return Admission::Refuse;
        }
        // The next attempt of this key waits behind this one.
        e.next_at += self.delay_after(e.failures);
        Admission::After(wait)
    }

    /// Records the outcome of a checked attempt.
    pub fn record(&self, client_id: &str, ip: Option<IpAddr>, ok: bool, now: Instant) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let key = (client_id.to_owned(), ip);
        if ok {
            keys.remove(&key);
            return;
        }
        if !keys.contains_key(&key) && keys.len() >= self.cfg.max_keys {
            let forget = self.cfg.forget_after;
            keys.retain(|_, e| now.saturating_duration_since(e.last_seen) < forget);
            if keys.len() >= self.cfg.max_keys {
                keys.clear();
            }
        }
        let e = keys.entry(key).or_insert(Entry {
            failures: 0,
            next_at: now,
            last_seen: now,
        });
        if now.saturating_duration_since(e.last_seen) >= self.cfg.forget_after {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_seen = now;
        e.next_at = e.next_at.max(now + self.delay_after(e.failures));
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max_keys: usize) -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            max_keys,
            ..ThrottleConfig::default()
        })
    }

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn each_failure_doubles_the_wait_up_to_the_cap_and_success_resets_it() {
        let t = throttle(100);
        let mut now = Instant::now();
        assert_eq!(t.admit("d", IP, now), Admission::Now);
        let mut waits = Vec::new();
        for _ in 0..8 {
            t.record("d", IP, false, now);
            match t.admit("d", IP, now) {
                Admission::After(w) => waits.push(w.as_millis()),
                other => panic!("{other:?}"),
            }
            now += t.delay_after(u32::MAX);
        }
        assert_eq!(waits, vec![100, 200, 400, 800, 1600, 3200, 4000, 4000]);
        t.record("d", IP, true, now);
        assert_eq!(t.admit("d", IP, now), Admission::Now);
        assert!(t.is_empty());
    }

    #[test]
    fn parallel_attempts_of_one_key_are_spaced_and_the_excess_refused() {
        let t = throttle(100);
        let now = Instant::now();
        for _ in 0..10 {
            t.record("d", IP, false, now);
        }
        let answers: Vec<Admission> = (0..4).map(|_| t.admit("d", IP, now)).collect();
        assert_eq!(
            answers,
            vec![
                Admission::After(Duration::from_secs(4)),
                Admission::After(Duration::from_secs(8)),
                Admission::Refuse,
                Admission::Refuse,
            ]
        );
    }

    #[test]
    fn another_address_or_client_id_is_not_slowed() {
        let t = throttle(100);
        let now = Instant::now();
        for _ in 0..10 {
            t.record("d", IP, false, now);
        }
        assert_eq!(t.admit("d", None, now), Admission::Now);
        assert_eq!(t.admit("e", IP, now), Admission::Now);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let t = throttle(50);
        let now = Instant::now();
        for i in 0..1_000 {
            t.record(&format!("d{i}"), IP, false, now);
            assert!(t.len() <= 50);
        }
    }
}
