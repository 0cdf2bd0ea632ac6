//! Measuring detection on real homes: false elder alerts per home-day on the real days,
//! and detection delay for collapses injected at seeded random times, side by side with a
//! fixed 12-hour inactivity timer (the usual telecare default).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::activity::{ActivityKind, Input, RoomClass};
use super::localtime::{DAY_MS, MINUTE_MS};
use super::params::Params;
use super::replay::{
    AlertLine, Injection, ReplayEvent, alert_lines, inject, is_elder_alert, parse_time, run_with,
};
use crate::signal::{AlertKind, Severity, SignalAction};

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
    /// The home has a help button that takes check-ins (nobody answers it in replay).
    pub help_button: bool,
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
    /// Check-ins asked on the real days (homes with a help button).
    pub check_ins: usize,
    /// Of those, answered by the elder's own activity within the check-in window.
    pub check_ins_answered: usize,
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
        let real = run_with(params, &home.events, end, home.help_button);
        let check_in = |a: SignalAction| {
            real.iter()
                .filter(|s| s.kind == AlertKind::CheckIn && s.action == a)
                .count()
        };
        let (check_ins, check_ins_answered) =
            (check_in(SignalAction::Raise), check_in(SignalAction::Clear));
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
            let signals = run_with(params, &events, until, home.help_button);
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
            check_ins,
            check_ins_answered,
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

/// A synthetic robustness variant of a recorded home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Variant {
    /// The home as recorded.
    Recorded,
    /// The motion sensor that fires most often is removed.
    DropMotion,
    /// Only door and cupboard contacts are kept (front door, fridge, cupboards…).
    DoorsOnly,
    /// A sparse home: the front door, one kitchen contact and one bathroom sensor.
    Sparse,
    /// The pressure mats (bed, seat) are removed.
    NoMats,
    /// The whole routine an hour later (labels too): fixed clock windows are tested.
    ShiftHour,
    /// A week away (front door, seven silent days) after the seventh day, without the
    /// caseworker setting "away".
    AwayWeek,
}

impl Variant {
    /// Every variant, the recorded home first.
    pub const ALL: [Variant; 7] = [
        Variant::Recorded,
        Variant::DropMotion,
        Variant::DoorsOnly,
        Variant::Sparse,
        Variant::NoMats,
        Variant::ShiftHour,
        Variant::AwayWeek,
    ];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Recorded => "recorded",
            Variant::DropMotion => "drop-motion",
            Variant::DoorsOnly => "doors-only",
            Variant::Sparse => "sparse",
            Variant::NoMats => "no-mats",
            Variant::ShiftHour => "shift+1h",
            Variant::AwayWeek => "away-week",
        }
    }
}

fn activity_of(e: &ReplayEvent) -> Option<(RoomClass, ActivityKind)> {
    e.inputs.iter().find_map(|i| match *i {
        Input::Activity { room, kind } => Some((room, kind)),
        _ => None,
    })
}

/// The home `h` turned into variant `v` (deterministic).
pub fn variant(h: &EvalHome, v: Variant) -> EvalHome {
    let mut out = h.clone();
    out.name = if v == Variant::Recorded {
        h.name.clone()
    } else {
        format!("{}/{}", h.name, v.name())
    };
    match v {
        Variant::Recorded => {}
        Variant::DropMotion => {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for e in &h.events {
                if matches!(activity_of(e), Some((_, ActivityKind::Motion))) {
                    *counts.entry(e.sensor.as_str()).or_default() += 1;
                }
            }
            if let Some((busiest, _)) = counts.iter().max_by_key(|(_, n)| **n) {
                let busiest = busiest.to_string();
                out.events.retain(|e| e.sensor != busiest);
            }
        }
        Variant::DoorsOnly => out.events.retain(|e| {
            matches!(
                activity_of(e),
                Some((_, ActivityKind::FrontDoor | ActivityKind::Contact))
            )
        }),
        Variant::Sparse => {
            // The front door, the busiest kitchen contact, the busiest bathroom sensor.
            let busiest = |room: RoomClass| {
                let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
                for e in &h.events {
                    if let Some((r, k)) = activity_of(e)
                        && r == room
                        && k != ActivityKind::FrontDoor
                    {
                        *counts.entry(e.sensor.as_str()).or_default() += 1;
                    }
                }
                counts
                    .into_iter()
                    .max_by_key(|(_, n)| *n)
                    .map(|(s, _)| s.to_string())
            };
            let keep = [busiest(RoomClass::Kitchen), busiest(RoomClass::Bathroom)];
            out.events.retain(|e| {
                matches!(activity_of(e), Some((_, ActivityKind::FrontDoor)))
                    || keep.iter().flatten().any(|s| *s == e.sensor)
            });
        }
        Variant::NoMats => out.events.retain(|e| {
            !matches!(
                activity_of(e),
                Some((_, ActivityKind::PresenceOn | ActivityKind::PresenceOff))
            )
        }),
        Variant::ShiftHour => {
            let hr = 60 * MINUTE_MS;
            for e in &mut out.events {
                e.at_ms += hr;
            }
            for (s, e) in out.sleeping.iter_mut().chain(out.leaving.iter_mut()) {
                *s += hr;
                *e += hr;
            }
        }
        Variant::AwayWeek => {
            let Some(first) = h.events.first() else {
                return out;
            };
            let cut = first.at_ms + 7 * DAY_MS;
            // Leave at the first front-door use after the seventh day; back a week later.
            let Some(leave) = h.events.iter().find(|e| {
                e.at_ms >= cut && matches!(activity_of(e), Some((_, ActivityKind::FrontDoor)))
            }) else {
                return out;
            };
            let (t, away) = (leave.at_ms, 7 * DAY_MS);
            let door = leave.clone();
            for e in &mut out.events {
                if e.at_ms > t {
                    e.at_ms += away;
                }
            }
            // The return: the front door again, then life goes on as recorded.
            let mut back = door;
            back.at_ms = t + away;
            out.events.push(back);
            out.events.sort_by_key(|e| e.at_ms);
            for (s, e) in out.sleeping.iter_mut().chain(out.leaving.iter_mut()) {
                if *s > t {
                    *s += away;
                    *e += away;
                }
            }
            out.leaving.push((t, t + away));
        }
    }
    out
}

/// Exact (Garwood) 95 % interval of a Poisson rate: `k` events in `exposure` units.
pub fn poisson_ci(k: usize, exposure: f64) -> (f64, f64) {
    let cdf = |k: usize, lambda: f64| -> f64 {
        // P(X <= k) for X ~ Poisson(lambda).
        let mut term = (-lambda).exp();
        let mut sum = term;
        for i in 1..=k {
            term *= lambda / i as f64;
            sum += term;
        }
        sum.min(1.0)
    };
    let solve = |f: &dyn Fn(f64) -> f64| {
        // f is increasing in lambda; find f(lambda) = 0.
        let (mut lo, mut hi) = (0.0_f64, 10.0 + 10.0 * k as f64);
        for _ in 0..100 {
            let mid = (lo + hi) / 2.0;
            if f(mid) < 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (lo + hi) / 2.0
    };
    let lower = if k == 0 {
        0.0
    } else {
        // P(X >= k) = 0.025.
        solve(&|l| (1.0 - cdf(k - 1, l)) - 0.025)
    };
    // P(X <= k) = 0.025 (decreasing in lambda: negate).
    let upper = solve(&|l| 0.025 - cdf(k, l));
    (lower / exposure, upper / exposure)
}

/// The `p` quantile of `sorted` (nearest rank) and its distribution-free 95 % interval
/// from the order statistics (binomial). Infinite values (missed) count as the longest;
/// an interval end beyond the data is infinite.
pub fn quantile_ci(sorted: &[f64], p: f64) -> (f64, f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let point = sorted[((n - 1) as f64 * p).round() as usize];
    // Binomial(n, p) CDF.
    let ln_choose = |k: usize| -> f64 {
        (1..=k)
            .map(|i| ((n - k + i) as f64 / i as f64).ln())
            .sum::<f64>()
    };
    let pmf = |k: usize| (ln_choose(k) + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp();
    let mut cdf = Vec::with_capacity(n + 1);
    let mut acc = 0.0;
    for k in 0..=n {
        acc += pmf(k);
        cdf.push(acc);
    }
    // Lower: the largest rank l (1-based) with P(B <= l-1) <= 0.025.
    let lo = (1..=n).rev().find(|&l| cdf[l - 1] <= 0.025);
    // Upper: the smallest rank u with P(B >= u) <= 0.025, i.e. 1 - cdf[u-1] <= 0.025.
    let hi = (1..=n).find(|&u| 1.0 - cdf[u - 1] <= 0.025);
    (
        point,
        lo.map_or(f64::NEG_INFINITY, |l| sorted[l - 1]),
        hi.map_or(f64::INFINITY, |u| sorted[u - 1]),
    )
}

/// A figure with its 95 % interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ci {
    /// Point estimate.
    pub value: f64,
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

/// The figures of one home (or a pool of homes) under one set of parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    /// Home (or pool) and variant.
    pub name: String,
    /// Home-days.
    pub days: f64,
    /// False elder alerts on the real days.
    pub false_alerts: usize,
    /// Per home-day, Poisson interval.
    pub false_per_day: Ci,
    /// The fixed 12 h timer's false alarms, per home-day.
    pub timer_false_per_day: Ci,
    /// Waking-hour collapses at home.
    pub waking_n: usize,
    /// Missed within the horizon.
    pub waking_missed: usize,
    /// Median delay (minutes, missed = infinite), order-statistic interval.
    pub waking_median: Ci,
    /// 90th percentile.
    pub waking_p90: Ci,
    /// The fixed 12 h timer's median delay on the same collapses.
    pub timer_median: Ci,
    /// Median delay of collapses while asleep.
    pub asleep_median: f64,
    /// Collapses while asleep / missed.
    pub asleep_n: usize,
    /// See `asleep_n`.
    pub asleep_missed: usize,
    /// False elder alerts on the synthetic variants of the same homes (filled in where
    /// the variants were replayed: the leave-one-home-out training).
    pub variant_false_alerts: usize,
}

/// Scores `results` (pooled if several) under `name`.
pub fn score(name: &str, results: &[&HomeResult]) -> Scored {
    let days: f64 = results.iter().map(|r| r.days).sum();
    let k: usize = results.iter().map(|r| r.false_alerts.len()).sum();
    let kt: usize = results.iter().map(|r| r.baseline_false).sum();
    let all: Vec<&Collapse> = results.iter().flat_map(|r| r.collapses.iter()).collect();
    let sorted = |pick: &dyn Fn(&Collapse) -> bool, f: &dyn Fn(&Collapse) -> f64| {
        let mut v: Vec<f64> = all.iter().filter(|c| pick(c)).map(|c| f(c)).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let waking = |c: &Collapse| !c.asleep && !c.out;
    let asleep = |c: &Collapse| c.asleep && !c.out;
    let delay = |c: &Collapse| c.delay_min.unwrap_or(f64::INFINITY);
    let w = sorted(&waking, &delay);
    let wt = sorted(&waking, &|c| c.baseline_min);
    let a = sorted(&asleep, &delay);
    let ci = |(value, lo, hi): (f64, f64, f64)| Ci { value, lo, hi };
    let rate = |k: usize| {
        let (lo, hi) = poisson_ci(k, days);
        Ci {
            value: k as f64 / days,
            lo,
            hi,
        }
    };
    Scored {
        name: name.to_string(),
        days,
        false_alerts: k,
        false_per_day: rate(k),
        timer_false_per_day: rate(kt),
        waking_n: w.len(),
        waking_missed: w.iter().filter(|d| d.is_infinite()).count(),
        waking_median: ci(quantile_ci(&w, 0.5)),
        waking_p90: ci(quantile_ci(&w, 0.9)),
        timer_median: ci(quantile_ci(&wt, 0.5)),
        asleep_median: quantile_ci(&a, 0.5).0,
        asleep_n: a.len(),
        asleep_missed: a.iter().filter(|d| d.is_infinite()).count(),
        variant_false_alerts: 0,
    }
}

/// A candidate set of parameters for the leave-one-home-out choice.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// What it sets, for the report.
    pub label: String,
    /// The compiled parameters.
    pub params: Params,
}

/// The rule that chooses among candidates on the training homes: meet the false-alert
/// target (≤ 0.05 per home-day) on the homes as recorded and miss no waking collapse,
/// then the fewest false alerts on the same homes' synthetic variants (robust to homes
/// with fewer sensors), then the shortest median delay; if none meets the target, the
/// fewest false alerts, then the shortest delay.
pub fn choose(scored: &[(usize, Scored)]) -> Option<&(usize, Scored)> {
    let key = |s: &Scored| {
        let ok = s.false_per_day.value <= 0.05 && s.waking_missed == 0;
        (
            !ok,
            if ok {
                s.variant_false_alerts
            } else {
                s.false_alerts
            },
            s.waking_median.value,
            s.waking_p90.value,
        )
    };
    scored.iter().min_by(|a, b| {
        let (ka, kb) = (key(&a.1), key(&b.1));
        ka.0.cmp(&kb.0)
            .then(ka.1.cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
            .then(ka.3.total_cmp(&kb.3))
    })
}

/// One held-out home: the candidate chosen on the others and its scores on the held-out
/// home's variants.
#[derive(Debug, Clone, Serialize)]
pub struct Fold {
    /// The held-out home.
    pub held_out: String,
    /// The chosen candidate's label.
    pub chosen: String,
    /// Its score on the training homes (recorded only).
    pub training: Scored,
    /// Held-out results per variant (the recorded home first).
    pub results: Vec<HomeResult>,
}

/// Leave-one-home-out: for each home, every candidate is scored on the other homes (as
/// recorded, and their variants), the rule [`choose`] picks one, and it is scored on the held-out home and
/// each of its variants. `tick` is called after each replay.
pub fn leave_one_home_out(
    candidates: &[Candidate],
    homes: &[EvalHome],
    variants: &[Variant],
    n: usize,
    seed: u64,
    mut tick: impl FnMut(&str),
) -> Vec<Fold> {
    let mut folds = Vec::new();
    for (hi, held) in homes.iter().enumerate() {
        let training: Vec<EvalHome> = homes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != hi)
            .map(|(_, h)| h.clone())
            .collect();
        if training.is_empty() {
            continue;
        }
        let training_variants: Vec<EvalHome> = training
            .iter()
            .flat_map(|h| {
                variants
                    .iter()
                    .filter(|v| **v != Variant::Recorded)
                    .map(|v| variant(h, *v))
            })
            .collect();
        let mut scored = Vec::new();
        for (ci, c) in candidates.iter().enumerate() {
            let r = evaluate_seeded(&c.params, &training, n, seed, &mut tick);
            let refs: Vec<&HomeResult> = r.iter().collect();
            let mut s = score("training", &refs);
            let rv = evaluate_seeded(&c.params, &training_variants, n, seed, &mut tick);
            s.variant_false_alerts = rv.iter().map(|r| r.false_alerts.len()).sum();
            scored.push((ci, s));
        }
        let Some((ci, training_score)) = choose(&scored).cloned() else {
            continue;
        };
        let chosen = &candidates[ci];
        let mut results = Vec::new();
        for v in variants {
            let home = variant(held, *v);
            results.extend(evaluate_seeded(
                &chosen.params,
                std::slice::from_ref(&home),
                n,
                seed,
                &mut tick,
            ));
        }
        folds.push(Fold {
            held_out: held.name.clone(),
            chosen: chosen.label.clone(),
            training: training_score,
            results,
        });
    }
    folds
}

/// [`evaluate`] with each home's collapse seed taken from its name (so a home gets the
/// same collapse times whichever homes it is evaluated with).
pub fn evaluate_seeded(
    params: &Params,
    homes: &[EvalHome],
    n: usize,
    seed: u64,
    tick: &mut impl FnMut(&str),
) -> Vec<HomeResult> {
    homes
        .iter()
        .flat_map(|h| {
            let base = h.name.split('/').next().unwrap_or("");
            let s = base
                .bytes()
                .fold(seed, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
            let label = h.name.clone();
            evaluate(params, std::slice::from_ref(h), n, s, || tick(&label))
        })
        .collect()
}

/// The grid the leave-one-home-out choice picks from: the configured `[detect]` section
/// with the model's calibration parameters varied.
pub fn candidates(
    base: &super::params::DetectConfig,
) -> Result<Vec<Candidate>, super::params::BadTime> {
    let mut out = Vec::new();
    for factor in [1.0_f32, 1.2, 1.5] {
        for slack in [0_u32, 20, 45] {
            for floor in [30_u32, 50, 70] {
                let c = super::params::DetectConfig {
                    threshold_factor: factor,
                    threshold_slack_min: slack,
                    home_floor_pct: floor,
                    ..base.clone()
                };
                out.push(Candidate {
                    label: format!(
                        "threshold_factor = {factor}, threshold_slack_min = {slack}, \
                         home_floor_pct = {floor}"
                    ),
                    params: c.compile()?,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_interval_matches_the_tables() {
        // Garwood: k = 0 → (0, 3.689); k = 1 → (0.0253, 5.572); k = 5 → (1.624, 11.668).
        let (lo, hi) = poisson_ci(0, 1.0);
        assert_eq!(lo, 0.0);
        assert!((hi - 3.689).abs() < 0.01, "{hi}");
        let (lo, hi) = poisson_ci(1, 1.0);
        assert!(
            (lo - 0.0253).abs() < 0.001 && (hi - 5.572).abs() < 0.01,
            "{lo} {hi}"
        );
        let (lo, hi) = poisson_ci(5, 10.0);
        assert!((lo - 0.1624).abs() < 0.001 && (hi - 1.1668).abs() < 0.001);
    }

    #[test]
    fn order_statistic_interval_of_a_median() {
        let v: Vec<f64> = (1..=60).map(f64::from).collect();
        let (m, lo, hi) = quantile_ci(&v, 0.5);
        assert_eq!(m, 31.0, "nearest rank of 60");
        // For n = 60 the 95 % interval of the median spans ranks 23..38.
        assert!(
            (22.0..=24.0).contains(&lo) && (37.0..=39.0).contains(&hi),
            "{lo} {hi}"
        );
        // Too few values for a bounded p90 interval upwards.
        let (_, _, hi) = quantile_ci(&v[..10], 0.9);
        assert!(hi.is_infinite());
    }

    fn home() -> EvalHome {
        let ev = |h: i64, sensor: &str, room, kind| ReplayEvent {
            at_ms: h * 3_600_000,
            household: "X".into(),
            inputs: vec![Input::Activity { room, kind }],
            sensor: sensor.into(),
        };
        let mut events = Vec::new();
        for d in 0..10 {
            let b = d * 24;
            events.push(ev(b + 8, "PirK", RoomClass::Kitchen, ActivityKind::Motion));
            events.push(ev(b + 9, "PirK", RoomClass::Kitchen, ActivityKind::Motion));
            events.push(ev(b + 9, "PirL", RoomClass::Living, ActivityKind::Motion));
            events.push(ev(
                b + 10,
                "Fridge",
                RoomClass::Kitchen,
                ActivityKind::Contact,
            ));
            events.push(ev(
                b + 11,
                "Door",
                RoomClass::Entrance,
                ActivityKind::FrontDoor,
            ));
            events.push(ev(b + 12, "Flush", RoomClass::Bathroom, ActivityKind::Use));
            events.push(ev(
                b + 13,
                "Seat",
                RoomClass::Living,
                ActivityKind::PresenceOn,
            ));
        }
        EvalHome {
            name: "X".into(),
            events,
            sleeping: vec![],
            leaving: vec![],
            help_button: false,
        }
    }

    #[test]
    fn variants_drop_what_they_say() {
        let h = home();
        let count = |v: Variant, s: &str| {
            variant(&h, v)
                .events
                .iter()
                .filter(|e| e.sensor == s)
                .count()
        };
        assert_eq!(
            count(Variant::DropMotion, "PirK"),
            0,
            "the busiest motion sensor"
        );
        assert_eq!(count(Variant::DropMotion, "PirL"), 10);
        assert_eq!(count(Variant::DoorsOnly, "PirL"), 0);
        assert_eq!(count(Variant::DoorsOnly, "Fridge"), 10);
        assert_eq!(count(Variant::NoMats, "Seat"), 0);
        let sparse = variant(&h, Variant::Sparse);
        let mut kept: Vec<&str> = sparse.events.iter().map(|e| e.sensor.as_str()).collect();
        kept.sort();
        kept.dedup();
        assert_eq!(kept, vec!["Door", "Flush", "PirK"]);
        let shifted = variant(&h, Variant::ShiftHour);
        assert_eq!(shifted.events[0].at_ms, h.events[0].at_ms + 3_600_000);
        let away = variant(&h, Variant::AwayWeek);
        assert_eq!(away.events.len(), h.events.len() + 1);
        let span = |e: &EvalHome| e.events.last().unwrap().at_ms - e.events[0].at_ms;
        assert_eq!(span(&away), span(&h) + 7 * DAY_MS);
        assert_eq!(away.leaving.len(), 1);
    }
}
