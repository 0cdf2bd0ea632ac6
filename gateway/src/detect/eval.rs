//! Measuring detection on real homes: false elder alerts per home-day on the real days,
//! and detection delay for collapses injected at seeded random times, side by side with a
//! fixed 12-hour inactivity timer (the usual telecare default).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::localtime::{DAY_MS, MINUTE_MS};
use super::params::Params;
use super::replay::{
    AlertLine, Injection, ReplayEvent, alert_lines, inject, is_elder_alert, parse_time, run,
};
use crate::signal::{Severity, SignalAction};

/// The fixed timer compared against.
pub const BASELINE_MS: i64 = 12 * 3_600_000;

/// A home to evaluate.
#[derive(Debug, Clone)]
pub struct EvalHome {
    /// Name.
    pub name: String,
    /// Its replayed log.
    pub events: Vec<ReplayEvent>,
    /// Intervals labelled as sleeping (ground truth for "night").
    pub sleeping: Vec<(i64, i64)>,
    /// Intervals labelled as out of the home.
    pub leaving: Vec<(i64, i64)>,
}

/// Reads an Ordóñez `*_ADLs.txt` file's intervals labelled `label`.
pub fn parse_label(text: &str, label: &str) -> Vec<(i64, i64)> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let cols: Vec<&str> = line
                .split('\t')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            match cols[..] {
                [s, e, l] if l == label => Some((parse_time(s)?, parse_time(e)?)),
                _ => None,
            }
        })
        .collect()
}

/// An inactivity pre-alarm (a warning before the alert).
pub fn is_prealarm(s: &crate::signal::Signal) -> bool {
    s.action == SignalAction::Raise
        && s.kind == crate::signal::AlertKind::Inactivity
        && s.severity == Severity::Warning
}

/// One injected collapse.
#[derive(Debug, Clone, Serialize)]
pub struct Collapse {
    /// When (local time of the data).
    pub at: String,
    /// Asleep at that time (per the labels).
    pub asleep: bool,
    /// Out of the home at that time (per the labels): a collapse there is outside what
    /// home sensors can see; only "not back" can catch it.
    pub out: bool,
    /// An alert about the same silence was already open when the collapse happened.
    pub already_alerted: bool,
    /// Minutes until the first elder alert (None: none within the horizon).
    pub delay_min: Option<f64>,
    /// Which alert.
    pub kind: Option<&'static str>,
    /// Minutes until the first pre-alarm or alert (None: none within the horizon).
    pub warning_min: Option<f64>,
    /// Minutes until a fixed 12-hour timer would alarm.
    pub baseline_min: f64,
    /// Days of data before the collapse (the routine learned so far).
    pub day: f64,
}

/// Results of one home.
#[derive(Debug, Clone, Serialize)]
pub struct HomeResult {
    /// Name.
    pub name: String,
    /// Days of data.
    pub days: f64,
    /// Elder alerts on the real days (all false: nobody fell in this data).
    pub false_alerts: Vec<AlertLine>,
    /// Pre-alarm warnings on the real days.
    pub prealarms: usize,
    /// Silences longer than 12 h on the real days (the fixed timer's false alarms).
    pub baseline_false: usize,
    /// Injected collapses.
    pub collapses: Vec<Collapse>,
}

/// Evaluates every home with `n` collapses each, calling `tick` after each replay.
pub fn evaluate(
    params: &Params,
    homes: &[EvalHome],
    n: usize,
    seed: u64,
    mut tick: impl FnMut(),
) -> Vec<HomeResult> {
    let horizon = 2 * DAY_MS;
    let mut out = Vec::new();
    for (hi, home) in homes.iter().enumerate() {
        let (Some(first), Some(last)) = (home.events.first(), home.events.last()) else {
            continue;
        };
        let (start, end) = (first.at_ms, last.at_ms);
        let real = run(params, &home.events, end);
        tick();
        let false_alerts = alert_lines(
            &real
                .iter()
                .filter(|s| is_elder_alert(s))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let prealarms = real.iter().filter(|s| is_prealarm(s)).count();
        let baseline_false = home
            .events
            .windows(2)
            .filter(|w| w[1].at_ms - w[0].at_ms > BASELINE_MS)
            .count();

        let mut rng =
            SmallRng::seed_from_u64(seed ^ (hi as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let lo = start + DAY_MS / 2;
        let mut collapses = Vec::with_capacity(n);
        for _ in 0..n {
            let c = rng.random_range(lo..end.max(lo + 1));
            let (events, until) = inject(home.events.clone(), &[Injection::Collapse(c)], horizon);
            let last_before = events.last().map_or(start, |e| e.at_ms);
            let signals = run(params, &events, until);
            // An alert raised before the collapse for the silence that contains it (the
            // elder had been still since) is already in front of the caseworker.
            let open = signals
                .iter()
                .find(|s| s.at_ms < c && s.episode_ms >= last_before && is_elder_alert(s));
            let hit = open.or_else(|| signals.iter().find(|s| s.at_ms >= c && is_elder_alert(s)));
            let warned = |s: &&crate::signal::Signal| is_elder_alert(s) || is_prealarm(s);
            let first_warning = signals
                .iter()
                .find(|s| s.at_ms < c && s.episode_ms >= last_before && warned(s))
                .or_else(|| signals.iter().find(|s| s.at_ms >= c && warned(s)));
            collapses.push(Collapse {
                at: super::localtime::LocalTime::utc().format(c),
                asleep: home.sleeping.iter().any(|(s, e)| (*s..*e).contains(&c)),
                out: home.leaving.iter().any(|(s, e)| (*s..*e).contains(&c)),
                already_alerted: open.is_some(),
                delay_min: hit.map(|s| (s.at_ms.max(c) - c) as f64 / MINUTE_MS as f64),
                kind: hit.map(|s| s.kind.as_str()),
                warning_min: first_warning.map(|s| (s.at_ms.max(c) - c) as f64 / MINUTE_MS as f64),
                baseline_min: ((last_before + BASELINE_MS).max(c) - c) as f64 / MINUTE_MS as f64,
                day: (c - start) as f64 / DAY_MS as f64,
            });
            tick();
        }
        out.push(HomeResult {
            name: home.name.clone(),
            days: (end - start) as f64 / DAY_MS as f64,
            false_alerts,
            prealarms,
            baseline_false,
            collapses,
        });
    }
    out
}

/// Summary statistics of delays in minutes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delays {
    /// Collapses.
    pub n: usize,
    /// Not detected within the horizon.
    pub missed: usize,
    /// Median.
    pub median_min: f64,
    /// 90th percentile.
    pub p90_min: f64,
    /// Longest.
    pub max_min: f64,
    /// Fixed 12 h timer: median.
    pub baseline_median_min: f64,
    /// Median minutes to the first pre-alarm or alert.
    pub warning_median_min: f64,
}

/// Summarises collapses selected by `pick`.
pub fn delays<'a>(
    collapses: impl Iterator<Item = &'a Collapse>,
    pick: impl Fn(&Collapse) -> bool,
) -> Delays {
    let sel: Vec<&Collapse> = collapses.filter(|c| pick(c)).collect();
    let mut d: Vec<f64> = sel.iter().filter_map(|c| c.delay_min).collect();
    let mut b: Vec<f64> = sel.iter().map(|c| c.baseline_min).collect();
    let mut w: Vec<f64> = sel.iter().filter_map(|c| c.warning_min).collect();
    w.sort_by(f64::total_cmp);
    d.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let q = |v: &[f64], p: f64| {
        if v.is_empty() {
            f64::NAN
        } else {
            v[((v.len() - 1) as f64 * p).round() as usize]
        }
    };
    Delays {
        n: sel.len(),
        missed: sel.len() - d.len(),
        median_min: q(&d, 0.5),
        p90_min: q(&d, 0.9),
        max_min: d.last().copied().unwrap_or(f64::NAN),
        baseline_median_min: q(&b, 0.5),
        warning_median_min: q(&w, 0.5),
    }
}
