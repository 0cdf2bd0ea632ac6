//! Evaluation of the detector on recorded traces (host only): what `fall-eval` runs.
//!
//! Every figure comes from [`FallDetector`] itself, fed period by period exactly as on the
//! pendant. Parameters are chosen on a grid ([`Grid`]) by balanced accuracy
//! (`(sensitivity + specificity) / 2`) over the *training* traces only; ties go to the
//! grid point whose neighbours score best (the middle of a plateau, less sensitive to
//! the exact threshold), then to the first in grid order. Leave-one-subject-out
//! ([`loso`]) repeats the choice once per subject with that subject's traces held out,
//! and reports each trace with the parameters chosen without it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::trace::Trace;
use super::{ConfigError, FallConfig, FallDetector};

/// What the detector did on one trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOutcome {
    /// Path relative to the evaluated directory.
    pub file: String,
    /// Subject.
    pub subject: String,
    /// `fall` or `adl`.
    pub kind: &'static str,
    /// Activity.
    pub activity: String,
    /// Whether the detector raised a fall anywhere in the trace.
    pub fall_detected: bool,
    /// The recording's time of the impact of the first detected fall, ms.
    pub at_ms: Option<u64>,
    /// Peak magnitude of that impact, mg.
    pub peak_mg: Option<u16>,
    /// The recording's time at which the detector decided, ms.
    pub decided_ms: Option<u64>,
}

/// Runs the detector over one trace.
pub fn run(trace: &Trace, cfg: &FallConfig) -> Result<FileOutcome, ConfigError> {
    let mut det = FallDetector::new(cfg)?;
    let mut outcome = FileOutcome {
        file: trace.file.clone(),
        subject: trace.label.subject.clone(),
        kind: if trace.label.is_fall { "fall" } else { "adl" },
        activity: trace.label.activity.clone(),
        fall_detected: false,
        at_ms: None,
        peak_mg: None,
        decided_ms: None,
    };
    for (i, p) in trace.periods.iter().enumerate() {
        if let Some(d) = det.push(*p)
            && d.is_fall()
        {
            outcome.fall_detected = true;
            let impact = usize::try_from(d.features.impact_tick).unwrap_or(usize::MAX);
            outcome.at_ms = trace.times_ms.get(impact).copied();
            outcome.peak_mg = Some(d.features.peak_mg);
            outcome.decided_ms = trace.times_ms.get(i).copied();
            break;
        }
    }
    Ok(outcome)
}

/// Whether the detector raises a fall anywhere in the trace (the fast path of [`run`]).
pub fn detects(trace: &Trace, cfg: &FallConfig) -> Result<bool, ConfigError> {
    let mut det = FallDetector::new(cfg)?;
    Ok(trace
        .periods
        .iter()
        .any(|p| det.push(*p).is_some_and(|d| d.is_fall())))
}

/// The parameter grid searched; the other parameters stay at the base configuration's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grid {
    /// Impact thresholds, mg.
    pub impact_mg: Vec<u16>,
    /// Orientation changes, degrees.
    pub min_tilt_deg: Vec<u8>,
    /// Velocities at impact, mm/s.
    pub min_velocity_mm_s: Vec<u16>,
    /// Activity limits, mg.
    pub max_activity_mg: Vec<u16>,
}

impl Grid {
    /// The grid used for the published figures: 7 × 10 × 6 × 6 = 2520 points.
    pub fn standard() -> Grid {
        Grid {
            impact_mg: vec![1600, 1800, 2000, 2200, 2400, 2600, 2800],
            min_tilt_deg: vec![40, 45, 50, 55, 60, 65, 70, 75, 80, 85],
            min_velocity_mm_s: vec![0, 250, 500, 750, 1000, 1250],
            max_activity_mg: vec![400, 600, 800, 1000, 1500, 2000],
        }
    }

    fn dims(&self) -> [usize; 4] {
        [
            self.impact_mg.len(),
            self.min_tilt_deg.len(),
            self.min_velocity_mm_s.len(),
            self.max_activity_mg.len(),
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

    fn coords(&self, mut idx: usize) -> [usize; 4] {
        let d = self.dims();
        let mut c = [0; 4];
        for k in (0..4).rev() {
            c[k] = idx % d[k];
            idx /= d[k];
        }
        c
    }

    fn index(&self, c: [usize; 4]) -> usize {
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
            max_activity_mg: self.max_activity_mg[c[3]],
            ..*base
        }
    }

    fn neighbours(&self, idx: usize) -> Vec<usize> {
        let c = self.coords(idx);
        let d = self.dims();
        let mut out = Vec::with_capacity(81);
        for off in 0..81usize {
            let mut n = [0usize; 4];
            let mut o = off;
            let mut ok = true;
            for k in 0..4 {
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
    (0..grid.len())
        .map(|idx| {
            let cfg = grid.config(base, idx);
            let row = traces
                .iter()
                .map(|t| detects(t, &cfg))
                .collect::<Result<Vec<bool>, _>>();
            progress();
            row
        })
        .collect()
}

/// Confusion counts.
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
}

impl Counts {
    /// Adds one trace.
    pub fn add(&mut self, is_fall: bool, detected: bool) {
        match (is_fall, detected) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_negatives += 1,
            (false, false) => self.true_negatives += 1,
            (false, true) => self.false_positives += 1,
        }
    }

    /// Detected falls / falls (`None` without falls).
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Quiet ADLs / ADLs (`None` without ADLs).
    pub fn specificity(&self) -> Option<f64> {
        ratio(
            self.true_negatives,
            self.true_negatives + self.false_positives,
        )
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

/// Sensitivity and specificity with their counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// The counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Detected falls / falls.
    pub sensitivity: Option<f64>,
    /// Quiet ADLs / ADLs.
    pub specificity: Option<f64>,
}

impl From<Counts> for Rates {
    fn from(counts: Counts) -> Self {
        Rates {
            counts,
            sensitivity: counts.sensitivity(),
            specificity: counts.specificity(),
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
}

/// Chooses the grid point with the best balanced accuracy on the traces where
/// `train(i)` holds.
pub fn select(
    traces: &[Trace],
    grid: &Grid,
    base: &FallConfig,
    matrix: &[Vec<bool>],
    train: impl Fn(usize) -> bool,
) -> Option<Selection> {
    let counts: Vec<Counts> = matrix
        .iter()
        .map(|row| {
            let mut c = Counts::default();
            for (i, t) in traces.iter().enumerate() {
                if train(i) {
                    c.add(t.label.is_fall, row.get(i).copied().unwrap_or(false));
                }
            }
            c
        })
        .collect();
    let score: Vec<f64> = counts.iter().map(Counts::balanced).collect();
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
        train: counts[index].into(),
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

/// Leave-one-subject-out: per subject, parameters chosen on the others, applied to it.
/// Returns the outcome of every trace (under its fold's parameters) and the folds.
pub fn loso(
    traces: &[Trace],
    grid: &Grid,
    base: &FallConfig,
    matrix: &[Vec<bool>],
) -> Result<(Vec<FileOutcome>, Vec<Fold>), ConfigError> {
    let subjects: Vec<String> = traces
        .iter()
        .map(|t| t.label.subject.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut outcomes: Vec<Option<FileOutcome>> = vec![None; traces.len()];
    let mut folds = Vec::new();
    for s in subjects {
        let Some(chosen) = select(traces, grid, base, matrix, |i| traces[i].label.subject != s)
        else {
            continue;
        };
        let mut test = Counts::default();
        for (i, t) in traces.iter().enumerate() {
            if t.label.subject == s {
                let o = run(t, &chosen.params)?;
                test.add(t.label.is_fall, o.fall_detected);
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

/// Detection rate of one activity (or one subject).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    /// Activity or subject.
    pub name: String,
    /// `fall`, `adl`, or `mixed` for a subject.
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
    group(outcomes, |o| o.activity.clone(), |o| o.kind)
}

/// Groups outcomes by subject, with their figures.
pub fn per_subject(outcomes: &[FileOutcome]) -> Vec<(String, Rates)> {
    let mut m: BTreeMap<String, Counts> = BTreeMap::new();
    for o in outcomes {
        m.entry(o.subject.clone())
            .or_default()
            .add(o.kind == "fall", o.fall_detected);
    }
    m.into_iter().map(|(k, c)| (k, c.into())).collect()
}

fn group(
    outcomes: &[FileOutcome],
    key: impl Fn(&FileOutcome) -> String,
    kind: impl Fn(&FileOutcome) -> &'static str,
) -> Vec<GroupRow> {
    let mut m: BTreeMap<(&'static str, String), (usize, usize)> = BTreeMap::new();
    for o in outcomes {
        let e = m.entry((kind(o), key(o))).or_default();
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

/// Totals over outcomes.
pub fn totals(outcomes: &[FileOutcome]) -> Rates {
    let mut c = Counts::default();
    for o in outcomes {
        c.add(o.kind == "fall", o.fall_detected);
    }
    c.into()
}
