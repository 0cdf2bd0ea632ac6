//! Recorded accelerometer traces (host only): UMAFall and SisFall readers, conversion
//! to the detector's fixed sample period.
//!
//! - **UMAFall** (Casilari et al., 2017): `;`-separated rows
//!   `TimeStamp;Sample No;X;Y;Z;Sensor Type;Sensor ID` in g, grouped by sensor, `%` header
//!   lines. One position is taken (chest for a pendant), its accelerometer rows sorted by
//!   time. The SensorTags sample at 20 Hz with a jittery clock: each row is one sample
//!   period, and a gap longer than 1.5 periods is filled with missing periods.
//!   SensorTag axes clip at ±8 g: such samples are flagged saturated.
//! - **SisFall** (Sucerquia et al., 2017): rows of nine comma-separated integers ending in
//!   `;`, 200 Hz; the first three are an ADXL345 at ±16 g, 13 bits (256 counts per g).
//!   Blocks of samples are averaged down to the detector's period (10 samples for 50 ms),
//!   as an accelerometer's own low-pass filter does at a lower output rate.
//!
//! Scale repair (UMAFall, on by default, `--no-repair` turns it off): in about 30 of
//! the 201 shared chest traces a SensorTag reports, for part of the recording, values 4×
//! too small (at rest |a| ≈ 0.25 g) or 4× too large (≈ 3.9 g) and then switches to the
//! right scale at one sample: a range-register mix-up in the recording app, which a
//! pendant that configures its own sensor never sees. [`repair_scale`] undoes it with a
//! label-blind rule based on the level of |a| while the sensor is at rest.

use std::fmt;

use crate::driver::Acceleration;
use crate::driver::replay;

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// UMAFall CSV (optionally gzip-compressed).
    UmaFall,
    /// SisFall raw text.
    SisFall,
}

/// UMAFall sensor positions (the `Sensor ID` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Smartphone in the right trouser pocket (≈200 Hz, ±4 g).
    Pocket,
    /// SensorTag on the chest: the pendant.
    Chest,
    /// SensorTag on the waist: a belt clip.
    Waist,
    /// SensorTag on the wrist.
    Wrist,
    /// SensorTag on the ankle.
    Ankle,
}

impl Position {
    /// The `Sensor ID` of this position.
    pub const fn sensor_id(self) -> u8 {
        match self {
            Position::Pocket => 0,
            Position::Chest => 1,
            Position::Waist => 2,
            Position::Wrist => 3,
            Position::Ankle => 4,
        }
    }

    /// Per-axis clipping level of the sensor, in g.
    const fn full_scale_g(self) -> f64 {
        match self {
            Position::Pocket => 4.0,
            _ => 8.0,
        }
    }

    /// Parses `chest`, `waist`, `pocket`, `wrist`, `ankle`.
    pub fn parse(s: &str) -> Option<Position> {
        Some(match s {
            "pocket" => Position::Pocket,
            "chest" => Position::Chest,
            "waist" => Position::Waist,
            "wrist" => Position::Wrist,
            "ankle" => Position::Ankle,
            _ => return None,
        })
    }

    /// The lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Position::Pocket => "pocket",
            Position::Chest => "chest",
            Position::Waist => "waist",
            Position::Wrist => "wrist",
            Position::Ankle => "ankle",
        }
    }
}

/// What a trace shows, from its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Subject identifier (`02`, `SA01`).
    pub subject: String,
    /// Whether the trace is a (simulated) fall.
    pub is_fall: bool,
    /// Activity (`Jogging`, `forwardFall`, `D03`, `F01`).
    pub activity: String,
}

/// UMAFall names: `UMAFall_Subject_02_Fall_forwardFall_1_2016-06-13_20-43-52.csv.gz`.
pub fn umafall_label(name: &str) -> Option<Label> {
    let rest = name.strip_prefix("UMAFall_Subject_")?;
    let mut parts = rest.splitn(4, '_');
    let subject = parts.next()?.to_string();
    let is_fall = match parts.next()? {
        "Fall" => true,
        "ADL" => false,
        _ => return None,
    };
    // activity may itself contain '_' (LyingDown_OnABed): it runs up to `_<trial>_<date>`.
    let tail = parts
        .next()
        .map(|a| format!("{a}_{}", parts.next().unwrap_or("")))?;
    let fields: Vec<&str> = tail.split('_').collect();
    let trial_at = fields
        .iter()
        .position(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))?;
    if trial_at == 0 {
        return None;
    }
    Some(Label {
        subject,
        is_fall,
        activity: fields[..trial_at].join("_"),
    })
}

/// SisFall names: `D01_SA01_R01.txt`, `F05_SE06_R03.txt`.
pub fn sisfall_label(name: &str) -> Option<Label> {
    let stem = name.split('.').next()?;
    let mut parts = stem.split('_');
    let activity = parts.next()?;
    let subject = parts.next()?;
    parts.next()?;
    let is_fall = match activity.as_bytes().first()? {
        b'F' => true,
        b'D' => false,
        _ => return None,
    };
    Some(Label {
        subject: subject.to_string(),
        is_fall,
        activity: activity.to_string(),
    })
}

/// A trace converted to the detector's sample period.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Path relative to the evaluated directory.
    pub file: String,
    /// What it shows.
    pub label: Label,
    /// Sample period, ms.
    pub period_ms: u16,
    /// One entry per period; `None` is a missing sample.
    pub periods: Vec<Option<Acceleration>>,
    /// The recording's time of each period, ms.
    pub times_ms: Vec<u64>,
    /// Samples whose scale was repaired (see the module documentation).
    pub repaired: usize,
}

impl Trace {
    /// The periods as replay records (`driver::replay`), for a firmware image.
    pub fn to_records(&self) -> Vec<u8> {
        self.periods
            .iter()
            .flat_map(|p| replay::encode(*p))
            .collect()
    }
}

/// Why a trace could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceError {
    /// The file name does not follow the dataset's naming.
    UnknownName,
    /// A data row could not be parsed (1-based line number).
    BadRow {
        /// Line number.
        line: usize,
    },
    /// No accelerometer rows for the chosen position.
    NoSamples,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::UnknownName => f.write_str("file name does not name subject and activity"),
            TraceError::BadRow { line } => write!(f, "unparsable data row at line {line}"),
            TraceError::NoSamples => f.write_str("no accelerometer samples for this position"),
        }
    }
}

impl std::error::Error for TraceError {}

/// Decodes Latin-1 bytes (UMAFall headers) to text.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Reads a UMAFall trace: the accelerometer of `position`, at `period_ms`.
pub fn read_umafall(
    file: &str,
    text: &str,
    position: Position,
    period_ms: u16,
    repair: bool,
) -> Result<Trace, TraceError> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let label = umafall_label(name).ok_or(TraceError::UnknownName)?;
    let mut rows: Vec<(u64, [f64; 3])> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('%') {
            continue;
        }
        let f: Vec<&str> = line
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let bad = TraceError::BadRow { line: i + 1 };
        let [t, _, x, y, z, kind, id, ..] = f.as_slice() else {
            return Err(bad);
        };
        let kind: u8 = kind.parse().map_err(|_| bad.clone())?;
        let id: u8 = id.parse().map_err(|_| bad.clone())?;
        if kind != 0 || id != position.sensor_id() {
            continue;
        }
        let t: f64 = t.parse().map_err(|_| bad.clone())?;
        let v = [x, y, z].map(|s| s.parse::<f64>());
        let [Ok(x), Ok(y), Ok(z)] = v else {
            return Err(bad);
        };
        if !(t.is_finite() && x.is_finite() && y.is_finite() && z.is_finite()) || t < 0.0 {
            return Err(bad);
        }
        rows.push((t as u64, [x, y, z]));
    }
    if rows.is_empty() {
        return Err(TraceError::NoSamples);
    }
    rows.sort_by_key(|r| r.0);
    let full_scale = position.full_scale_g() - 0.01;
    let saturated: Vec<bool> = rows
        .iter()
        .map(|(_, v)| v.iter().any(|a| a.abs() >= full_scale))
        .collect();
    let repaired = if repair { repair_scale(&mut rows) } else { 0 };
    let samples: Vec<(u64, Acceleration)> = rows
        .iter()
        .zip(saturated)
        .map(|((t, [x, y, z]), saturated)| {
            (
                *t,
                Acceleration {
                    x_mg: g_to_mg(*x),
                    y_mg: g_to_mg(*y),
                    z_mg: g_to_mg(*z),
                    saturated,
                },
            )
        })
        .collect();
    let (periods, times_ms) = to_periods(&samples, period_ms);
    Ok(Trace {
        file: file.to_string(),
        label,
        period_ms,
        periods,
        times_ms,
        repaired,
    })
}

fn g_to_mg(g: f64) -> i16 {
    (g * 1000.0)
        .round()
        .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

/// Undoes the 4× scale mix-up (module documentation). Returns the samples changed.
///
/// 1. *Still windows*: 10 consecutive samples whose spread of |a| is under 8 % of their
///    median (scale-free, so it finds rest in either wrong scale). Their median tells the
///    scale: below 0.45 g a quarter (gain 4), 0.6–1.6 g right (gain 1), above 2.4 g four
///    times (gain ¼); other levels are ignored.
/// 2. If no still window has a wrong scale, nothing changes.
/// 3. Between two still windows of different scale, the switch is the sample-to-sample
///    step whose ratio is closest to the ratio of their gains.
/// 4. Before the first and after the last still window, a wrong scale extends to the
///    trace's end unless a step of the expected ratio (within 30 %) leads into ten
///    samples whose median is a plausible 0.5–2.8 g: that step is the switch.
pub fn repair_scale(rows: &mut [(u64, [f64; 3])]) -> usize {
    const W: usize = 10;
    let m: Vec<f64> = rows
        .iter()
        .map(|(_, v)| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt())
        .collect();
    let n = m.len();
    let median = |s: &[f64]| -> f64 {
        let mut w = s.to_vec();
        w.sort_by(f64::total_cmp);
        w.get(w.len() / 2).copied().unwrap_or(0.0)
    };
    let class = |level: f64| -> Option<f64> {
        if level < 0.45 {
            Some(4.0)
        } else if (0.6..=1.6).contains(&level) {
            Some(1.0)
        } else if level > 2.4 {
            Some(0.25)
        } else {
            None
        }
    };
    // log-distance of the step into sample k from the ratio `r`
    let step_off = |k: usize, r: f64| -> f64 {
        if m[k] > 0.0 && m[k - 1] > 0.0 {
            ((m[k] / m[k - 1]).ln() - r.ln()).abs()
        } else {
            f64::INFINITY
        }
    };
    let plausible = |s: &[f64]| -> bool { s.len() == W && (0.5..=2.8).contains(&median(s)) };

    let mut still: Vec<(usize, usize, f64)> = Vec::new();
    let mut i = 0;
    while i + W <= n {
        let w = &m[i..i + W];
        let med = median(w);
        let spread =
            w.iter().copied().fold(f64::MIN, f64::max) - w.iter().copied().fold(f64::MAX, f64::min);
        if let Some(g) = class(med).filter(|_| med > 0.0 && spread < 0.08 * med) {
            still.push((i, i + W, g));
            i += W;
        } else {
            i += 1;
        }
    }
    if still.iter().all(|s| s.2 == 1.0) {
        return 0;
    }
    let mut gain = vec![1.0f64; n];
    for &(a, b, g) in &still {
        gain[a..b].fill(g);
    }
    for pair in still.windows(2) {
        let [(_, b0, g0), (a1, _, g1)] = [pair[0], pair[1]];
        let k = if g0 == g1 {
            a1
        } else {
            (b0.max(1)..=a1)
                .min_by(|&x, &y| step_off(x, g0 / g1).total_cmp(&step_off(y, g0 / g1)))
                .unwrap_or(a1)
        };
        gain[b0..k].fill(g0);
        gain[k..a1].fill(g1);
    }
    if let (Some(&(a, _, g)), Some(&(_, b, h))) = (still.first(), still.last()) {
        if g != 1.0 {
            let switch = (W..a)
                .rev()
                .find(|&k| step_off(k, 1.0 / g) < 0.3 && plausible(&m[k - W..k]));
            gain[switch.unwrap_or(0)..a].fill(g);
        }
        if h != 1.0 {
            let switch = (b.max(1)..n.saturating_sub(W))
                .find(|&k| step_off(k, h) < 0.3 && plausible(&m[k..k + W]));
            gain[b..switch.unwrap_or(n)].fill(h);
        }
    }
    let mut changed = 0;
    for (row, g) in rows.iter_mut().zip(gain) {
        if g != 1.0 {
            row.1 = row.1.map(|a| a * g);
            changed += 1;
        }
    }
    changed
}

/// Turns time-stamped samples (sorted) into one entry per period: each sample is one
/// period; a gap longer than 1.5 periods adds `round(gap / period) − 1` missing periods
/// (at most 10 s of them).
pub fn to_periods(
    samples: &[(u64, Acceleration)],
    period_ms: u16,
) -> (Vec<Option<Acceleration>>, Vec<u64>) {
    let p = u64::from(period_ms.max(1));
    let max_missing = 10_000 / p;
    let mut periods = Vec::with_capacity(samples.len());
    let mut times = Vec::with_capacity(samples.len());
    let mut prev: Option<u64> = None;
    for &(t, a) in samples {
        if let Some(prev) = prev {
            let gap = t.saturating_sub(prev);
            if 2 * gap > 3 * p {
                let missing = ((gap + p / 2) / p).saturating_sub(1).min(max_missing);
                for k in 1..=missing {
                    periods.push(None);
                    times.push(prev + k * p);
                }
            }
        }
        periods.push(Some(a));
        times.push(t);
        prev = Some(t);
    }
    (periods, times)
}

/// Reads a SisFall trace (ADXL345 columns), averaged down to `period_ms` (a multiple of
/// the 5 ms sample period).
pub fn read_sisfall(file: &str, text: &str, period_ms: u16) -> Result<Trace, TraceError> {
    const SAMPLE_MS: u64 = 5;
    const COUNTS_PER_G: i64 = 256;
    const FULL_SCALE: i64 = 4095;
    let name = file.rsplit('/').next().unwrap_or(file);
    let label = sisfall_label(name).ok_or(TraceError::UnknownName)?;
    let block = (u64::from(period_ms) / SAMPLE_MS).max(1) as usize;
    let mut raw: Vec<[i64; 3]> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim().trim_end_matches(';').trim();
        if line.is_empty() {
            continue;
        }
        let bad = TraceError::BadRow { line: i + 1 };
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 9 {
            return Err(bad);
        }
        let v = [f[0], f[1], f[2]].map(|s| s.parse::<i64>());
        let [Ok(x), Ok(y), Ok(z)] = v else {
            return Err(bad);
        };
        raw.push([x, y, z]);
    }
    if raw.len() < block {
        return Err(TraceError::NoSamples);
    }
    let mut samples = Vec::with_capacity(raw.len() / block);
    for (k, chunk) in raw.chunks_exact(block).enumerate() {
        let mut sum = [0i64; 3];
        let mut saturated = false;
        for s in chunk {
            for axis in 0..3 {
                sum[axis] += s[axis];
                saturated |= s[axis] >= FULL_SCALE || s[axis] < -FULL_SCALE;
            }
        }
        let n = chunk.len() as i64;
        let mg = sum.map(|s| {
            let v = div_round(s * 1000, n * COUNTS_PER_G);
            v.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
        });
        samples.push((
            k as u64 * block as u64 * SAMPLE_MS,
            Acceleration {
                x_mg: mg[0],
                y_mg: mg[1],
                z_mg: mg[2],
                saturated,
            },
        ));
    }
    let (periods, times_ms) = to_periods(&samples, period_ms);
    Ok(Trace {
        file: file.to_string(),
        label,
        period_ms,
        periods,
        times_ms,
        repaired: 0,
    })
}

/// `a / b` rounded half away from zero, for `b > 0`.
fn div_round(a: i64, b: i64) -> i64 {
    if a >= 0 {
        (2 * a + b) / (2 * b)
    } else {
        -((-2 * a + b) / (2 * b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umafall_names_give_subject_kind_and_activity() {
        let l =
            umafall_label("UMAFall_Subject_06_ADL_LyingDown_OnABed_2_2016-06-13_21-25-5.csv.gz");
        assert_eq!(
            l,
            Some(Label {
                subject: "06".into(),
                is_fall: false,
                activity: "LyingDown_OnABed".into()
            })
        );
        let l = umafall_label("UMAFall_Subject_02_Fall_forwardFall_1_2016-06-13_20-43-52.csv.gz");
        assert_eq!(
            l.map(|l| (l.is_fall, l.activity)),
            Some((true, "forwardFall".into()))
        );
        assert_eq!(umafall_label("notes.txt"), None);
    }

    #[test]
    fn sisfall_names_give_subject_kind_and_activity() {
        let l = sisfall_label("F05_SE06_R03.txt");
        assert_eq!(
            l,
            Some(Label {
                subject: "SE06".into(),
                is_fall: true,
                activity: "F05".into()
            })
        );
        assert_eq!(sisfall_label("readme.txt"), None);
    }

    #[test]
    fn gaps_longer_than_one_and_a_half_periods_become_missing_periods() {
        let a = Acceleration::new(0, 0, 1000);
        let (p, t) = to_periods(&[(0, a), (50, a), (210, a), (240, a)], 50);
        assert_eq!(p, vec![Some(a), Some(a), None, None, Some(a), Some(a)]);
        assert_eq!(t, vec![0, 50, 100, 150, 210, 240]);
    }

    #[test]
    fn a_quarter_scale_stretch_is_repaired_and_a_normal_one_is_not() {
        let mut rows: Vec<(u64, [f64; 3])> = (0..60)
            .map(|i| {
                (
                    i * 50,
                    if i < 30 {
                        [0.0, 0.0, 0.25]
                    } else {
                        [0.0, 0.0, 1.0]
                    },
                )
            })
            .collect();
        assert_eq!(repair_scale(&mut rows), 30);
        assert!(rows.iter().all(|(_, v)| (v[2] - 1.0).abs() < 1e-9));
    }
}
