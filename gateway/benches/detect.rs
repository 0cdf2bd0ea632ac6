//! Detection at a city's scale: memory per household (RSS growth ÷ households, with
//! learned profiles and five devices each), the cost of re-arming a deadline per event,
//! timer firing accuracy in real time, and restart to fully armed (snapshots decoded,
//! households restored, every deadline queued), at 100,000 and 1,000,000 households.
//!
//! `cargo bench -p anxin-gateway --bench detect [-- --quick]` (`--quick`: 10,000 and
//! 100,000). Bounded in count and time. Results: `docs/benchmarks.md`.

use std::time::{Duration, Instant};

use anxin_gateway::clock::{Clock, SystemClock};
use anxin_gateway::detect::DetectConfig;
use anxin_gateway::detect::activity::{ActivityKind, Input, RoomClass};
use anxin_gateway::detect::engine::Engine;
use anxin_gateway::detect::household::Household;
use anxin_gateway::detect::localtime::LocalTime;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;
const ROOMS: [RoomClass; 4] = [
    RoomClass::Living,
    RoomClass::Kitchen,
    RoomClass::Bedroom,
    RoomClass::Bathroom,
];

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

fn motion(room: RoomClass) -> [Input; 1] {
    [Input::Activity {
        room,
        kind: ActivityKind::Motion,
    }]
}

/// An engine with `n` households of five devices, three days of learned routine each.
fn populate(n: usize, start: i64) -> Engine {
    let cfg = DetectConfig::default().compile().expect("defaults compile");
    let mut e = Engine::with_capacity(cfg, LocalTime::new("Asia/Shanghai").expect("tz"), n);
    let mut rng = SmallRng::seed_from_u64(1);
    let b = bar(n as u64, "households populated");
    for h in 0..n {
        let id = format!("h{h:07}");
        for (slot, room) in ROOMS.iter().enumerate() {
            e.add_device(&id, &format!("{id}-{slot}"), true, false, *room);
        }
        e.add_device(&id, &format!("{id}-help"), false, true, RoomClass::Other);
        for day in 0..3 {
            for k in 0..8 {
                let at = start + day * DAY + (7 * 60 + k * 100 + rng.random_range(0..40)) * MIN;
                let room = ROOMS[rng.random_range(0..ROOMS.len())];
                e.observe(&id, None, at, &motion(room));
            }
        }
        if h % 4096 == 0 {
            b.set_position(h as u64);
        }
    }
    b.finish_and_clear();
    e
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[100_000, 1_000_000]
    };
    let started = Instant::now();
    println!(
        "detection at scale ({}), {} cores",
        if quick { "quick" } else { "full" },
        num_cpus()
    );
    println!(
        "| households | bytes/household (RSS) | snapshot bytes/household | re-arm ns/event | restart to armed | timer lateness p50/p99/max |"
    );
    println!("|---|---|---|---|---|---|");
    for &n in sizes {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "bench time bound"
        );
        let start = SystemClock.now_ms() - 4 * DAY;
        let before = rss_bytes();
        let mut e = populate(n, start);
        let after = rss_bytes();
        let per_household = (after.saturating_sub(before)) as f64 / n as f64;

        // Re-arm: one activity on a random household, as ingest delivers it.
        let events = n.min(2_000_000);
        let mut rng = SmallRng::seed_from_u64(2);
        let now = start + 3 * DAY + 8 * 3_600_000;
        let ids: Vec<String> = (0..n).map(|h| format!("h{h:07}")).collect();
        let t = Instant::now();
        for k in 0..events {
            let h = &ids[rng.random_range(0..n)];
            e.observe(h, None, now + k as i64, &motion(RoomClass::Kitchen));
        }
        let rearm_ns = t.elapsed().as_nanos() as f64 / events as f64;

        // Restart to armed: encode every household, then decode, restore and arm.
        let dirty: Vec<Vec<u8>> = e
            .take_dirty()
            .iter()
            .map(|h| postcard::to_stdvec(h).expect("encode"))
            .collect();
        let snapshot_bytes =
            dirty.iter().map(Vec::len).sum::<usize>() as f64 / dirty.len().max(1) as f64;
        drop(e);
        let t = Instant::now();
        let cfg = DetectConfig::default().compile().expect("defaults compile");
        let mut e2 = Engine::with_capacity(
            cfg,
            LocalTime::new("Asia/Shanghai").expect("tz"),
            dirty.len(),
        );
        for blob in &dirty {
            e2.restore(postcard::from_bytes::<Household>(blob).expect("decode"));
        }
        e2.recovered(SystemClock.now_ms());
        let restart = t.elapsed();
        drop(dirty);

        // Timer accuracy: fresh households whose deadlines fall within the next 5 s of
        // real time; fire them as the detector task does and measure how late each is.
        let timers = n.min(100_000);
        let cfg = DetectConfig {
            inactivity_bounds_min: [1, 600],
            threshold_slack_min: 0,
            ..DetectConfig::default()
        };
        let mut cfg = cfg;
        cfg.default_day_inactivity_min = 1;
        cfg.default_night_inactivity_min = 1;
        let mut e3 = Engine::new(
            cfg.compile().expect("compile"),
            LocalTime::new("Asia/Shanghai").expect("tz"),
        );
        let base = SystemClock.now_ms() - MIN + 1000;
        for h in 0..timers {
            let at = base + (h as i64 * 5000) / timers as i64;
            e3.observe(&format!("t{h}"), None, at, &motion(RoomClass::Living));
        }
        let mut late = Vec::with_capacity(timers * 2);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(20);
            while late.len() < timers && Instant::now() < deadline {
                let wait = e3
                    .next_deadline()
                    .map(|d| SystemClock.real_delay_until(d))
                    .unwrap_or(Duration::from_millis(10));
                tokio::time::sleep(wait).await;
                let now = SystemClock.now_ms();
                e3.advance(now);
                for s in e3.take_signals() {
                    if s.severity == anxin_gateway::signal::Severity::Critical {
                        late.push(now - s.at_ms);
                    }
                }
            }
        });
        late.sort_unstable();
        let q = |p: f64| {
            late.get(((late.len().saturating_sub(1)) as f64 * p) as usize)
                .copied()
                .unwrap_or(-1)
        };
        println!(
            "| {n} | {per_household:.0} | {snapshot_bytes:.0} | {rearm_ns:.0} | {:.2} s | {} / {} / {} ms ({} timers) |",
            restart.as_secs_f64(),
            q(0.5),
            q(0.99),
            late.last().copied().unwrap_or(-1),
            late.len()
        );
        drop(e2);
        drop(e3);
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
