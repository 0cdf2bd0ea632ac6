//! Evaluation of the detector on recorded traces (host only): what `fall-eval` runs.
//!
//! Every figure comes from [`FallDetector`] itself, fed period by period exactly as on the
//! pendant. Parameters are chosen on a grid ([`Grid`]: the impact gate, the tilt and the
//! velocity of a fall to lying) by balanced accuracy (`(sensitivity + specificity) / 2`)
//! over the *training* traces only; ties go to the grid point whose neighbours score best
//! (the middle of a plateau, less sensitive to the exact threshold), then to the first in
//! grid order. Leave-one-subject-out ([`loso`]) repeats the choice once per subject with
//! every trace of that subject (all positions) held out, and reports each trace with the
//! parameters chosen without it.
//!
//! The detector's candidates depend on the gate only, not on the decision thresholds
//! ([`crate::fall::judge`] is a pure function of a candidate's measurements), so the
//! grid runs the detector once per gate value and judges the candidates at every other
//! grid point: the same result as running it at each point, far faster.

use std::collections::BTreeMap;

use serde::Serialize;

use super::trace::Trace;
use super::{ConfigError, FallConfig, FallDetector, Features, judge};

/// What the detector did on one trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOutcome {
    /// Path relative to the evaluated directory.
    pub file: String,
    /// Subject.
    pub subject: String,
    /// Where the sensor was worn.
    pub position: &'static str,
    /// `fall` or `adl`.
    pub kind: &'static str,
    /// Activity.
    pub activity: String,
    /// Length of the recording, ms.
    pub duration_ms: u64,
    /// Whether the detector raised a fall anywhere in the trace.
    pub fall_detected: bool,
    /// The recording's time of the impact of the first detected fall, ms.
    pub at_ms: Option<u64>,
    /// Peak magnitude of that impact, mg.
    pub peak_mg: Option<u16>,
    /// The recording's time at which the detector decided, ms.
    pub decided_ms: Option<u64>,
    /// The measurements behind the first raised fall, or else behind the candidate the
    /// closest to a fall (the largest velocity), if there was any candidate.
    pub features: Option<Features>,
}

/// Every candidate the detector decided on in `trace`: (index of the deciding period,
/// measurements). The decision thresholds of `cfg` do not matter, only its gate and
/// timing.
pub fn candidates(trace: &Trace, cfg: &FallConfig) -> Result<Vec<(usize, Features)>, ConfigError> {
    let mut det = FallDetector::new(cfg)?;
    Ok(trace
        .periods
        .iter()
        .enumerate()
        .filter_map(|(i, p)| det.push(*p).map(|d| (i, d.features)))
        .collect())
}

fn outcome(trace: &Trace, cands: &[(usize, Features)], rule: &FallConfig) -> FileOutcome {
    let first = cands
        .iter()
        .find(|(_, f)| judge(rule, f) == super::Verdict::Fall);
    let closest = cands
        .iter()
        .max_by_key(|(_, f)| f.velocity_mm_s.unwrap_or(i32::MIN));
    let at = |tick: u32| {
        usize::try_from(tick)
            .ok()
            .and_then(|i| trace.times_ms.get(i).copied())
    };
    FileOutcome {
        file: trace.file.clone(),
        subject: trace.label.subject.clone(),
        position: trace.position,
        kind: if trace.label.is_fall { "fall" } else { "adl" },
        activity: trace.label.activity.clone(),
        duration_ms: trace.duration_ms(),
        fall_detected: first.is_some(),
        at_ms: first.and_then(|(_, f)| at(f.impact_tick)),
        peak_mg: first.map(|(_, f)| f.peak_mg),
        decided_ms: first.and_then(|(i, _)| trace.times_ms.get(*i).copied()),
        features: first.or(closest).map(|(_, f)| *f),
    }
}

/// Runs the detector over one trace.
pub fn run(trace: &Trace, cfg: &FallConfig) -> Result<FileOutcome, ConfigError> {
    Ok(outcome(trace, &candidates(trace, cfg)?, cfg))
}

/// Whether the detector raises a fall anywhere in the trace.
pub fn detects(trace: &Trace, cfg: &FallConfig) -> Result<bool, ConfigError> {
    Ok(run(trace, cfg)?.fall_detected)
}

/// The parameter grid searched; the other parameters stay at the base configuration's
/// (fixed a priori: `docs/detection.md` says why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grid {
    /// Impact gates, mg.
    pub impact_mg: Vec<u16>,
    /// Orientation changes of a fall to lying, degrees.
    pub min_tilt_deg: Vec<u8>,
    /// Velocities at impact of a fall to lying, mm/s.
    pub min_velocity_mm_s: Vec<u16>,
}

impl Grid {
    /// The grid used for the published figures: 12 × 9 × 7 = 756 points.
    pub fn standard() -> Grid {
        Grid {
            impact_mg: (0..12).map(|k| 1400 + 100 * k).collect(),
            min_tilt_deg: (0..9).map(|k| 40 + 5 * k).collect(),
            min_velocity_mm_s: (0..7).map(|k| 250 * k).collect(),
        }
    }

    fn dims(&self) -> [usize; 3] {
        [
            self.impact_mg.len(),
            self.min_tilt_deg.len(),
            self.min_velocity_mm_s.len(),
        ]
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.dims().iter().product()
    }

    /// Whether the grid has no point.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn coords(&self, mut idx: usize) -> [usize; 3] {
        let d = self.dims();
        let mut c = [0; 3];
        for k in (0..3).rev() {
            c[k] = idx % d[k];
            idx /= d[k];
        }
        c
    }

    fn index(&self, c: [usize; 3]) -> usize {
        let d = self.dims();
        c.iter().zip(d).fold(0, |acc, (&ci, di)| acc * di + ci)
    }

    /// The configuration at grid point `idx`.
    pub fn config(&self, base: &FallConfig, idx: usize) -> FallConfig {
        let c = self.coords(idx);
        FallConfig {
            impact_mg: self.impact_mg[c[0]],
            min_tilt_deg: self.min_tilt_deg[c[1]],
            min_velocity_mm_s: self.min_velocity_mm_s[c[2]],
            ..*base
        }
    }

    fn neighbours(&self, idx: usize) -> Vec<usize> {
        let c = self.coords(idx);
        let d = self.dims();
        let mut out = Vec::with_capacity(27);
        for off in 0..27usize {
            let mut n = [0usize; 3];
            let mut o = off;
            let mut ok = true;
            for k in 0..3 {
                let step = o % 3;
                o /= 3;
                let v = c[k] as isize + step as isize - 1;
                if v < 0 || v as usize >= d[k] {
                    ok = false;
                    break;
                }
                n[k] = v as usize;
            }
            if ok {
                out.push(self.index(n));
            }
        }
        out
    }
}

/// Detection results of every grid point on every trace: `[point][trace]`.
pub fn evaluate_grid(
    traces: &[Trace],
    grid: &Grid,
    base: &FallConfig,
    mut progress: impl FnMut(),
) -> Result<Vec<Vec<bool>>, ConfigError> {
    let per_gate = grid.len() / grid.impact_mg.len().max(1);
    let mut matrix = Vec::with_capacity(grid.len());
    for (g, &gate) in grid.impact_mg.iter().enumerate() {
        let cfg = FallConfig {
            impact_mg: gate,
            ..*base
        };
        let cands = traces
            .iter()
            .map(|t| candidates(t, &cfg))
            .collect::<Result<Vec<_>, _>>()?;
        for k in 0..per_gate {
            let rule = grid.config(base, g * per_gate + k);
            matrix.push(
                cands
                    .iter()
                    .map(|c| {
                        c.iter()
                            .any(|(_, f)| judge(&rule, f) == super::Verdict::Fall)
                    })
                    .collect(),
            );
        }
        progress();
    }
    Ok(matrix)
}

/// Confusion counts, and the recorded time of the activities of daily living.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Falls detected.
    pub true_positives: usize,
    /// Falls missed.
    pub false_negatives: usize,
    /// ADLs without alarm.
    pub true_negatives: usize,
    /// ADLs with an alarm.
    pub false_positives: usize,
    /// Total length of the ADL traces, ms (the wearer-time false alarms are counted in).
    pub adl_ms: u64,
}

impl Counts {
    /// Adds one trace.
    pub fn add(&mut self, is_fall: bool, detected: bool, duration_ms: u64) {
        match (is_fall, detected) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_negatives += 1,
            (false, false) => self.true_negatives += 1,
            (false, true) => self.false_positives += 1,
        }
        if !is_fall {
            self.adl_ms += duration_ms;
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, o: &Counts) {
        self.true_positives += o.true_positives;
        self.false_negatives += o.false_negatives;
        self.true_negatives += o.true_negatives;
        self.false_positives += o.false_positives;
        self.adl_ms += o.adl_ms;
    }

    /// Falls.
    pub fn falls(&self) -> usize {
        self.true_positives + self.false_negatives
    }

    /// ADL traces.
    pub fn adls(&self) -> usize {
        self.true_negatives + self.false_positives
    }

    /// Detected falls / falls (`None` without falls).
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(self.true_positives, self.falls())
    }

    /// Quiet ADLs / ADLs (`None` without ADLs).
    pub fn specificity(&self) -> Option<f64> {
        ratio(self.true_negatives, self.adls())
    }

    /// Hours of recorded ADLs.
    pub fn adl_hours(&self) -> f64 {
        self.adl_ms as f64 / 3_600_000.0
    }

    /// False alarms per hour of recorded ADLs (`None` without ADLs).
    pub fn false_alarms_per_hour(&self) -> Option<f64> {
        (self.adl_ms > 0).then(|| self.false_positives as f64 / self.adl_hours())
    }

    fn balanced(&self) -> f64 {
        match (self.sensitivity(), self.specificity()) {
            (Some(a), Some(b)) => (a + b) / 2.0,
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => 0.0,
        }
    }
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The 95 % Wilson score interval of `k` successes in `n` trials.
pub fn wilson(k: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let z = 1.959_963_984_540_054_f64;
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// `P(X ≤ k)` for a Poisson variable of mean `mu`.
fn poisson_cdf(k: usize, mu: f64) -> f64 {
    let mut term = (-mu).exp();
    let mut sum = term;
    for i in 1..=k {
        term *= mu / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

/// The exact (Garwood) 95 % interval of a Poisson mean, given `k` events.
pub fn poisson_interval(k: usize) -> (f64, f64) {
    let solve = |f: &dyn Fn(f64) -> f64| {
        // f is decreasing in mu; find f(mu) = 0.025
        let (mut lo, mut hi) = (0.0f64, 10.0 + 10.0 * k as f64);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if f(mid) > 0.025 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let upper = solve(&|mu| poisson_cdf(k, mu));
    let lower = if k == 0 {
        0.0
    } else {
        // P(X ≥ k; mu) = 0.025  ⇔  P(X ≤ k − 1; mu) = 0.975
        solve(&|mu| poisson_cdf(k - 1, mu) - 0.95)
    };
    (lower, upper)
}

/// Sensitivity, specificity and false alarms per hour, with their counts and 95 %
/// intervals (Wilson for the proportions, exact Poisson for the rate).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// The counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Detected falls / falls.
    pub sensitivity: Option<f64>,
    /// Its 95 % interval.
    pub sensitivity_ci: Option<(f64, f64)>,
    /// Quiet ADLs / ADLs.
    pub specificity: Option<f64>,
    /// Its 95 % interval.
    pub specificity_ci: Option<(f64, f64)>,
    /// Hours of recorded ADLs.
    pub adl_hours: f64,
    /// False alarms per hour of recorded ADLs.
    pub false_alarms_per_hour: Option<f64>,
    /// Its 95 % interval.
    pub false_alarms_per_hour_ci: Option<(f64, f64)>,
}

impl From<Counts> for Rates {
    fn from(counts: Counts) -> Self {
        let h = counts.adl_hours();
        Rates {
            counts,
            sensitivity: counts.sensitivity(),
            sensitivity_ci: wilson(counts.true_positives, counts.falls()),
            specificity: counts.specificity(),
            specificity_ci: wilson(counts.true_negatives, counts.adls()),
            adl_hours: h,
            false_alarms_per_hour: counts.false_alarms_per_hour(),
            false_alarms_per_hour_ci: (counts.adl_ms > 0).then(|| {
                let (lo, hi) = poisson_interval(counts.false_positives);
                (lo / h, hi / h)
            }),
        }
    }
}

/// A chosen grid point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Selection {
    /// Index in the grid.
    #[serde(skip)]
    pub index: usize,
    /// The parameters.
    pub params: FallConfig,
    /// Figures on the traces it was chosen on (optimistic by construction).
    pub train: Rates,
    /// Sensitivity on the synthetic slow falls it was chosen on, if any.
    pub train_slowed: Option<f64>,
}

/// Traces and what every grid point does on them ([`evaluate_grid`]).
#[derive(Debug, Clone, Copy)]
pub struct Pool<'a> {
    /// The traces.
    pub traces: &'a [Trace],
    /// `[point][trace]`: whether the point raises a fall on the trace.
    pub matrix: &'a [Vec<bool>],
}

/// What parameters are chosen on.
#[derive(Debug, Clone, Copy)]
pub struct Training<'a> {
    /// The recorded traces.
    pub real: Pool<'a>,
    /// Synthetic slow falls made from the recorded falls ([`super::stress::slowed`]),
    /// and their weight: the score is the balanced accuracy on the recorded traces plus
    /// `weight ×` the sensitivity on these.
    pub slowed: Option<(Pool<'a>, f64)>,
}

/// Chooses the grid point with the best score (balanced accuracy on the recorded
/// traces, plus the weighted sensitivity on the synthetic slow falls) on the traces
/// where `train` holds; ties go to the point whose neighbours score best, then to the
/// first in grid order.
pub fn select(
    grid: &Grid,
    base: &FallConfig,
    data: &Training<'_>,
    train: impl Fn(&Trace) -> bool,
) -> Option<Selection> {
    let counts = |pool: &Pool<'_>, idx: usize| -> Counts {
        let mut c = Counts::default();
        for (i, t) in pool.traces.iter().enumerate() {
            if train(t) {
                let hit = pool.matrix.get(idx).and_then(|r| r.get(i)).copied();
                c.add(t.label.is_fall, hit.unwrap_or(false), t.duration_ms());
            }
        }
        c
    };
    let real: Vec<Counts> = (0..grid.len()).map(|i| counts(&data.real, i)).collect();
    let slowed: Vec<Option<f64>> = (0..grid.len())
        .map(|i| {
            data.slowed
                .as_ref()
                .and_then(|(pool, _)| counts(pool, i).sensitivity())
        })
        .collect();
    let weight = data.slowed.as_ref().map_or(0.0, |(_, w)| *w);
    let score: Vec<f64> = real
        .iter()
        .zip(&slowed)
        .map(|(c, s)| c.balanced() + weight * s.unwrap_or(0.0))
        .collect();
    let smooth = |idx: usize| -> f64 {
        let n = grid.neighbours(idx);
        n.iter().map(|&j| score[j]).sum::<f64>() / n.len().max(1) as f64
    };
    let mut best: Option<(usize, f64, f64)> = None;
    for (idx, &sc) in score.iter().enumerate() {
        let s = (idx, sc, smooth(idx));
        best = match best {
            Some(b) if (b.1, b.2) >= (s.1, s.2) => Some(b),
            _ => Some(s),
        };
    }
    best.map(|(index, _, _)| Selection {
        index,
        params: grid.config(base, index),
        train: real[index].into(),
        train_slowed: slowed[index],
    })
}

/// One fold of leave-one-subject-out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fold {
    /// The held-out subject.
    pub held_out: String,
    /// Parameters chosen on the other subjects, with their (training) figures.
    pub chosen: Selection,
    /// Figures on the held-out subject.
    pub test: Rates,
}

/// The subjects of `traces`, sorted.
pub fn subjects(traces: &[Trace]) -> Vec<String> {
    traces
        .iter()
        .map(|t| t.label.subject.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Leave-one-subject-out: per subject, parameters chosen on the others (recorded and
/// synthetic traces of the others only), applied to its recorded traces. Returns the
/// outcome of every recorded trace (under its fold's parameters) and the folds.
pub fn loso(
    grid: &Grid,
    base: &FallConfig,
    data: &Training<'_>,
) -> Result<(Vec<FileOutcome>, Vec<Fold>), ConfigError> {
    let traces = data.real.traces;
    let mut outcomes: Vec<Option<FileOutcome>> = vec![None; traces.len()];
    let mut folds = Vec::new();
    for s in subjects(traces) {
        let Some(chosen) = select(grid, base, data, |t| t.label.subject != s) else {
            continue;
        };
        let mut test = Counts::default();
        for (i, t) in traces.iter().enumerate() {
            if t.label.subject == s {
                let o = run(t, &chosen.params.with_period_ms(t.period_ms))?;
                test.add(t.label.is_fall, o.fall_detected, t.duration_ms());
                outcomes[i] = Some(o);
            }
        }
        folds.push(Fold {
            held_out: s,
            chosen,
            test: test.into(),
        });
    }
    Ok((outcomes.into_iter().flatten().collect(), folds))
}

/// Detection rate of one activity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    /// Activity.
    pub name: String,
    /// `fall` or `adl`.
    pub kind: &'static str,
    /// Traces.
    pub traces: usize,
    /// Traces where a fall was raised.
    pub detected: usize,
    /// `detected / traces`: sensitivity for falls, false-alarm rate for ADLs.
    pub rate: f64,
}

/// Groups outcomes by activity.
pub fn per_activity(outcomes: &[FileOutcome]) -> Vec<GroupRow> {
    let mut m: BTreeMap<(&'static str, String), (usize, usize)> = BTreeMap::new();
    for o in outcomes {
        let e = m.entry((o.kind, o.activity.clone())).or_default();
        e.0 += 1;
        e.1 += usize::from(o.fall_detected);
    }
    m.into_iter()
        .map(|((kind, name), (traces, detected))| GroupRow {
            name,
            kind,
            traces,
            detected,
            rate: detected as f64 / traces as f64,
        })
        .collect()
}

/// Counts of outcomes grouped by `key`.
pub fn counts_by(
    outcomes: &[FileOutcome],
    key: impl Fn(&FileOutcome) -> String,
) -> BTreeMap<String, Counts> {
    let mut m: BTreeMap<String, Counts> = BTreeMap::new();
    for o in outcomes {
        m.entry(key(o))
            .or_default()
            .add(o.kind == "fall", o.fall_detected, o.duration_ms);
    }
    m
}

/// Groups outcomes by subject, with their figures.
pub fn per_subject(outcomes: &[FileOutcome]) -> Vec<(String, Rates)> {
    counts_by(outcomes, |o| o.subject.clone())
        .into_iter()
        .map(|(k, c)| (k, c.into()))
        .collect()
}

/// Totals over outcomes.
pub fn totals(outcomes: &[FileOutcome]) -> Rates {
    let mut c = Counts::default();
    for o in outcomes {
        c.add(o.kind == "fall", o.fall_detected, o.duration_ms);
    }
    c.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_published_values() {
        // 52/54: 87.5–99.0 % (as in the earlier report); 0/10: 0–27.8 %
        let (lo, hi) = wilson(52, 54).expect("n > 0");
        assert!(
            (lo - 0.875).abs() < 0.001 && (hi - 0.990).abs() < 0.001,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 10).expect("n > 0");
        assert!(lo == 0.0 && (hi - 0.2775).abs() < 0.001, "{hi}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn poisson_interval_matches_chi_square_tables() {
        // exact 95 % limits: 0 → (0, 3.689), 1 → (0.0253, 5.572), 5 → (1.623, 11.668)
        let (lo, hi) = poisson_interval(0);
        assert!(lo == 0.0 && (hi - 3.689).abs() < 0.01, "{hi}");
        let (lo, hi) = poisson_interval(1);
        assert!(
            (lo - 0.0253).abs() < 0.001 && (hi - 5.572).abs() < 0.01,
            "{lo} {hi}"
        );
        let (lo, hi) = poisson_interval(5);
        assert!(
            (lo - 1.623).abs() < 0.01 && (hi - 11.668).abs() < 0.01,
            "{lo} {hi}"
        );
    }
}
