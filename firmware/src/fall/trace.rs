//! Recorded accelerometer traces (host only): UMAFall and SisFall readers, conversion
//! to the detector's fixed sample period.
//!
//! - **UMAFall** (Casilari et al., 2017): `;`-separated rows
//!   `TimeStamp;Sample No;X;Y;Z;Sensor Type;Sensor ID` in g, grouped by sensor, `%` header
//!   lines, tolerant of the files as published and re-saved ([`read_umafall`]). One
//!   position is taken (chest or waist for a pendant), its accelerometer rows sorted by
//!   time. The SensorTags sample at 20 Hz with a jittery clock: each row is one sample
//!   period, and a gap longer than 1.5 periods is filled with missing periods.
//!   SensorTag axes clip at ±8 g: such samples are flagged saturated.
//! - **SisFall** (Sucerquia et al., 2017): rows of nine comma-separated integers ending in
//!   `;`, 200 Hz; the first three are an ADXL345 at ±16 g, 13 bits (256 counts per g).
//! - **High-rate sources** (SisFall, the UMAFall phone at ≈200 Hz): an anti-alias
//!   low-pass filter, then resampling to the detector's period ([`resample`]), as an
//!   accelerometer's own output filter does at a lower data rate.
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
    /// Smartphone in the right trouser pocket (≈200 Hz, ±4 g): low-pass filtered and
    /// resampled to the detector's period.
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

    /// Whether the sensor samples far faster than the detector (the phone, ≈200 Hz): its
    /// trace is low-pass filtered and resampled ([`resample`]) instead of being taken one
    /// row per period.
    pub const fn is_high_rate(self) -> bool {
        matches!(self, Position::Pocket)
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
    /// Where the sensor was worn (`chest`, `waist`, …; `sisfall` for SisFall's waist
    /// board).
    pub position: &'static str,
    /// Sample period, ms.
    pub period_ms: u16,
    /// One entry per period; `None` is a missing sample.
    pub periods: Vec<Option<Acceleration>>,
    /// The recording's time of each period, ms.
    pub times_ms: Vec<u64>,
    /// Samples whose scale was repaired (see the module documentation).
    pub repaired: usize,
    /// Data rows the reader could not understand and skipped.
    pub skipped_rows: usize,
}

impl Trace {
    /// How long the recording lasts, ms (one period per entry).
    pub fn duration_ms(&self) -> u64 {
        self.periods.len() as u64 * u64::from(self.period_ms)
    }

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
    /// Data rows could not be parsed (1-based line number of the first one): more than
    /// [`MAX_BAD_ROW_SHARE_PCT`] % of the rows, or every row of the chosen position.
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

/// Largest share of unparsable data rows (percent) a trace may have and still be read:
/// a few damaged rows (a truncated last line, a stray header) are skipped and counted
/// ([`Trace::skipped_rows`]); a file mostly made of rows the reader cannot understand is
/// refused rather than silently emptied.
pub const MAX_BAD_ROW_SHARE_PCT: usize = 10;

/// Decodes a trace file's bytes to text, whatever encoding it was saved in: UTF-16
/// (little or big endian, with or without a byte-order mark: a file re-saved by a
/// Windows editor), UTF-8 (with or without a byte-order mark), or else Latin-1 (the
/// UMAFall headers as published). Never fails: Latin-1 maps every byte.
pub fn decode_text(bytes: &[u8]) -> String {
    let utf16 = |le: bool, body: &[u8]| -> String {
        let units = body.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => return utf16(true, rest),
        [0xFE, 0xFF, rest @ ..] => return utf16(false, rest),
        [0xEF, 0xBB, 0xBF, rest @ ..] => {
            return std::str::from_utf8(rest).map_or_else(|_| latin1(rest), str::to_string);
        }
        _ => {}
    }
    // UTF-16 without a mark: ASCII text with every other byte zero.
    let head = &bytes[..bytes.len().min(512)];
    let zeros = |parity: usize| {
        head.iter()
            .skip(parity)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count()
    };
    if head.len() >= 8 {
        let half = head.len() / 2;
        if zeros(1) * 10 >= half * 9 && zeros(0) * 10 < half {
            return utf16(true, bytes);
        }
        if zeros(0) * 10 >= half * 9 && zeros(1) * 10 < half {
            return utf16(false, bytes);
        }
    }
    latin1(bytes)
}

/// Decodes Latin-1 bytes (UMAFall headers) to text.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Lines of a text file ending in `\n`, `\r\n`, or a lone `\r` (old Mac files, when
/// the text has no `\n` at all), numbered as an editor numbers them.
fn any_lines(text: &str) -> Box<dyn Iterator<Item = &str> + '_> {
    if text.contains('\n') {
        Box::new(text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)))
    } else {
        Box::new(text.split('\r'))
    }
}

/// Where the fields of a UMAFall data row are (0-based columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    time: usize,
    x: usize,
    y: usize,
    z: usize,
    kind: usize,
    id: usize,
}

impl Columns {
    /// `TimeStamp;Sample No;X-Axis;Y-Axis;Z-Axis;Sensor Type;Sensor ID` as published.
    const PUBLISHED: Columns = Columns {
        time: 0,
        x: 2,
        y: 3,
        z: 4,
        kind: 5,
        id: 6,
    };

    /// Columns named by a header row (`TimeStamp; Sample No; X-Axis; …`), if it names
    /// all six.
    fn from_header(fields: &[&str]) -> Option<Columns> {
        let norm = |s: &str| -> String {
            s.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let names: Vec<String> = fields.iter().map(|f| norm(f)).collect();
        let find = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
        Some(Columns {
            time: find(&["timestamp", "time", "timestampms"])?,
            x: find(&["xaxis", "x"])?,
            y: find(&["yaxis", "y"])?,
            z: find(&["zaxis", "z"])?,
            kind: find(&["sensortype", "type"])?,
            id: find(&["sensorid", "id"])?,
        })
    }
}

/// Splits a row: `;` if the row has one, else a tab, else `,`. With `;` or tab as the
/// separator, a `,` inside a field is a decimal comma (a recording app in a Spanish
/// locale writes `0,9868`). Trailing empty fields (a row ending in `;`) are dropped,
/// inner empty fields are kept so that the columns stay in place.
fn split_row(line: &str) -> Vec<String> {
    let sep = if line.contains(';') {
        ';'
    } else if line.contains('\t') {
        '\t'
    } else {
        ','
    };
    let mut f: Vec<String> = line
        .split(sep)
        .map(|s| {
            let s = s.trim().trim_matches('"').trim();
            if sep == ',' {
                s.to_string()
            } else {
                s.replace(',', ".")
            }
        })
        .collect();
    while f.last().is_some_and(String::is_empty) {
        f.pop();
    }
    f
}

/// A number as written in a trace: `1.5`, `-0.25`, `1.2E-4`, with a leading `+`.
fn number(s: &str) -> Option<f64> {
    let v: f64 = s.strip_prefix('+').unwrap_or(s).parse().ok()?;
    v.is_finite().then_some(v)
}

/// The `Sensor_ID` a UMAFall header gives each position, from its sensor table
/// (`%C4:BE:84:70:64:8A; 1; CHEST; SensorTag`).
fn header_sensor(line: &str) -> Option<(Position, u8)> {
    let body = line.trim_start_matches('%');
    let f: Vec<&str> = body.split(';').map(str::trim).collect();
    if f.len() < 3 || !f[0].contains(':') {
        return None;
    }
    let id: u8 = f[1].parse().ok()?;
    let pos = f[2].to_ascii_uppercase();
    let position = match pos.as_str() {
        "CHEST" => Position::Chest,
        "WAIST" => Position::Waist,
        "WRIST" => Position::Wrist,
        "ANKLE" => Position::Ankle,
        p if p.contains("POCKET") => Position::Pocket,
        _ => return None,
    };
    Some((position, id))
}

/// Reads a UMAFall trace: the accelerometer of `position`, at `period_ms`.
///
/// Tolerant of the files as published and as they are found re-saved: `%` metadata
/// lines (also indented, after a byte-order mark), blank lines, a column-name header
/// with or without `%` (its order is then used), `\n`, `\r\n` or `\r` line ends, `;`,
/// tab or `,` separators, decimal commas, a trailing `;`, extra columns, empty inner
/// fields, quoted fields. The sensor table of the header, when present, says which
/// `Sensor ID` the position has (otherwise the published numbering: 0 pocket, 1 chest,
/// 2 waist, 3 wrist, 4 ankle). Rows that still cannot be understood are skipped and
/// counted in [`Trace::skipped_rows`], up to [`MAX_BAD_ROW_SHARE_PCT`] % of the rows.
pub fn read_umafall(
    file: &str,
    text: &str,
    position: Position,
    period_ms: u16,
    repair: bool,
) -> Result<Trace, TraceError> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let label = umafall_label(name).ok_or(TraceError::UnknownName)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.strip_prefix("\u{ef}\u{bb}\u{bf}").unwrap_or(text);
    let mut cols = Columns::PUBLISHED;
    let mut sensor_id = position.sensor_id();
    let mut rows: Vec<(u64, [f64; 3])> = Vec::new();
    let mut data_rows = 0usize;
    let mut bad_rows = 0usize;
    let mut first_bad: Option<usize> = None;
    let mut bad_of_position = false;
    for (i, line) in any_lines(text).enumerate() {
        let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if line.is_empty() {
            continue;
        }
        if line.starts_with('%') || line.starts_with('#') {
            let body = line.trim_start_matches(['%', '#']).trim();
            if let Some((p, id)) = header_sensor(body)
                && p == position
            {
                sensor_id = id;
            }
            let f = split_row(body);
            let refs: Vec<&str> = f.iter().map(String::as_str).collect();
            if let Some(c) = Columns::from_header(&refs) {
                cols = c;
            }
            continue;
        }
        let f = split_row(line);
        if f.iter().all(String::is_empty) {
            continue;
        }
        // A header row without `%`: column names, or free text (no digit first).
        if !f[0].starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
            let refs: Vec<&str> = f.iter().map(String::as_str).collect();
            if let Some(c) = Columns::from_header(&refs) {
                cols = c;
                continue;
            }
            if data_rows == 0 {
                // free text before the first data row: a header the publisher did not
                // mark with `%`
                continue;
            }
        }
        data_rows += 1;
        let get = |k: usize| f.get(k).and_then(|s| number(s));
        let kind = get(cols.kind);
        let id = get(cols.id);
        let parsed = (|| {
            let t = get(cols.time).filter(|t| *t >= 0.0)?;
            Some((t, [get(cols.x)?, get(cols.y)?, get(cols.z)?]))
        })();
        match (kind, id, parsed) {
            (Some(kind), Some(id), Some((t, v))) => {
                if kind == 0.0 && id == f64::from(sensor_id) {
                    rows.push((t as u64, v));
                }
            }
            _ => {
                bad_rows += 1;
                first_bad.get_or_insert(i + 1);
                // a bad row that is (or may be) of this position's accelerometer
                bad_of_position |=
                    kind.is_none_or(|k| k == 0.0) && id.is_none_or(|id| id == f64::from(sensor_id));
            }
        }
    }
    if let Some(line) = first_bad
        && (rows.is_empty() && bad_of_position
            || 100 * bad_rows > MAX_BAD_ROW_SHARE_PCT * data_rows)
    {
        return Err(TraceError::BadRow { line });
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
    if position.is_high_rate() {
        let (periods, times_ms) = resample(&rows, &saturated, period_ms);
        return Ok(Trace {
            file: file.to_string(),
            label,
            position: position.name(),
            period_ms,
            periods,
            times_ms,
            repaired: 0,
            skipped_rows: bad_rows,
        });
    }
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
        position: position.name(),
        period_ms,
        periods,
        times_ms,
        repaired,
        skipped_rows: bad_rows,
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

/// Grid of the high-rate source, ms (the phone's ≈200 Hz).
pub const RESAMPLE_SOURCE_MS: u64 = 5;

/// Resamples a high-rate trace (rows sorted by time, in g) to `period_ms` the way an
/// accelerometer with a proper output filter would deliver it:
///
/// 1. rows sharing a time stamp (the phone writes bursts) are averaged, then the trace is
///    interpolated linearly onto a uniform [`RESAMPLE_SOURCE_MS`] grid; a grid point in
///    a gap longer than 25 ms is missing;
/// 2. anti-alias low-pass: a windowed-sinc FIR (Hamming window, unit gain at DC so that
///    gravity stays 1 g), cut-off at 0.4 × the output rate (8 Hz for 20 Hz, 10 Hz for
///    25 Hz), `16 × period / 5 ms + 1` taps (161 at 50 ms, ±0.4 s), centred (zero
///    phase: this runs offline); missing inputs are left out of the sum (the taps
///    renormalised), an output is missing when its own grid point is or when the taps
///    left hold under 90 % of the weight;
/// 3. decimation to one sample per `period_ms` (a multiple of 5 ms; otherwise the
///    nearest grid point). A sample is saturated when a source row within half a period
///    of it was.
pub fn resample(
    rows: &[(u64, [f64; 3])],
    saturated: &[bool],
    period_ms: u16,
) -> (Vec<Option<Acceleration>>, Vec<u64>) {
    const SRC: u64 = RESAMPLE_SOURCE_MS;
    const MAX_GAP_MS: u64 = 25;
    // 1. collapse equal time stamps
    let mut pts: Vec<(u64, [f64; 3], bool)> = Vec::with_capacity(rows.len());
    let mut k = 0;
    while k < rows.len() {
        let t = rows[k].0;
        let mut sum = [0.0f64; 3];
        let mut sat = false;
        let mut n = 0.0;
        while k < rows.len() && rows[k].0 == t {
            for (acc, v) in sum.iter_mut().zip(rows[k].1) {
                *acc += v;
            }
            sat |= saturated.get(k).copied().unwrap_or(false);
            n += 1.0;
            k += 1;
        }
        pts.push((t, sum.map(|v| v / n), sat));
    }
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        return (Vec::new(), Vec::new());
    };
    let start = first.0.div_ceil(SRC) * SRC;
    let end = last.0;
    let mut grid: Vec<Option<[f64; 3]>> = Vec::new();
    let mut grid_sat: Vec<bool> = Vec::new();
    let mut j = 0;
    let mut g = start;
    while g <= end {
        while j + 1 < pts.len() && pts[j + 1].0 <= g {
            j += 1;
        }
        let (ta, va, sa) = pts[j];
        let v = if ta == g {
            Some(va)
        } else {
            pts.get(j + 1).and_then(|&(tb, vb, _)| {
                (tb - ta <= MAX_GAP_MS).then(|| {
                    let w = (g - ta) as f64 / (tb - ta) as f64;
                    [0, 1, 2].map(|a| va[a] + w * (vb[a] - va[a]))
                })
            })
        };
        grid.push(v);
        grid_sat.push(sa || pts.get(j + 1).is_some_and(|p| p.2 && p.0 - g < SRC));
        g += SRC;
    }
    // 2. windowed-sinc low-pass
    let step = (u64::from(period_ms.max(1)) as f64 / SRC as f64)
        .round()
        .max(1.0) as usize;
    // taps each side: 8 periods' worth of grid points (80 at 50 ms: 161 taps, ±0.4 s),
    // a transition band of ≈ 4 Hz: down by > 40 dB from the output's Nyquist frequency
    let m = (step * 8).max(2);
    let fc = 0.4 / step as f64; // cut-off as a fraction of the source rate
    let mut taps: Vec<f64> = (0..=2 * m)
        .map(|i| {
            let x = i as f64 - m as f64;
            let sinc = if x == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * x).sin() / (std::f64::consts::PI * x)
            };
            let hamming =
                0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / (2 * m) as f64).cos();
            sinc * hamming
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    // 3. decimate
    let mut periods = Vec::with_capacity(grid.len() / step + 1);
    let mut times = Vec::with_capacity(grid.len() / step + 1);
    let mut c = 0;
    while c < grid.len() {
        let mut acc = [0.0f64; 3];
        let mut weight = 0.0;
        for (i, tap) in taps.iter().enumerate() {
            // edges: the first and last sample repeated
            let idx = (c + i).saturating_sub(m).min(grid.len() - 1);
            if let Some(v) = grid[idx] {
                (0..3).for_each(|a| acc[a] += tap * v[a]);
                weight += tap;
            }
        }
        let ok = grid[c].is_some() && weight >= 0.9;
        let acc = acc.map(|v| v / weight);
        let lo = c.saturating_sub(step / 2);
        let hi = (c + step.div_ceil(2)).min(grid.len());
        let sat = grid_sat[lo..hi].iter().any(|&s| s);
        periods.push(ok.then(|| Acceleration {
            x_mg: g_to_mg(acc[0]),
            y_mg: g_to_mg(acc[1]),
            z_mg: g_to_mg(acc[2]),
            saturated: sat,
        }));
        times.push(start + c as u64 * SRC);
        c += step;
    }
    (periods, times)
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

/// Reads a SisFall trace (ADXL345 columns), low-pass filtered and resampled to
/// `period_ms` ([`resample`]). Tolerant of blank lines, CRLF or CR line ends, a byte-order
/// mark and extra columns; a few damaged rows (up to [`MAX_BAD_ROW_SHARE_PCT`] %) are
/// skipped and counted.
pub fn read_sisfall(file: &str, text: &str, period_ms: u16) -> Result<Trace, TraceError> {
    const SAMPLE_MS: u64 = 5;
    const COUNTS_PER_G: i64 = 256;
    const FULL_SCALE: i64 = 4095;
    let name = file.rsplit('/').next().unwrap_or(file);
    let label = sisfall_label(name).ok_or(TraceError::UnknownName)?;
    let block = (u64::from(period_ms) / SAMPLE_MS).max(1) as usize;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut raw: Vec<[i64; 3]> = Vec::new();
    let mut bad_rows = 0usize;
    let mut first_bad: Option<usize> = None;
    for (i, line) in any_lines(text).enumerate() {
        let line = line.trim().trim_end_matches(';').trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let v = [0, 1, 2].map(|k| f.get(k).and_then(|s| s.parse::<i64>().ok()));
        match v {
            [Some(x), Some(y), Some(z)] if f.len() >= 9 => raw.push([x, y, z]),
            _ => {
                bad_rows += 1;
                first_bad.get_or_insert(i + 1);
            }
        }
    }
    if let Some(line) = first_bad
        && (raw.is_empty() || 100 * bad_rows > MAX_BAD_ROW_SHARE_PCT * (raw.len() + bad_rows))
    {
        return Err(TraceError::BadRow { line });
    }
    let skipped_rows = bad_rows;
    if raw.len() < block {
        return Err(TraceError::NoSamples);
    }
    let saturated: Vec<bool> = raw
        .iter()
        .map(|s| s.iter().any(|&a| !(-FULL_SCALE..FULL_SCALE).contains(&a)))
        .collect();
    let rows: Vec<(u64, [f64; 3])> = raw
        .iter()
        .enumerate()
        .map(|(k, s)| {
            (
                k as u64 * SAMPLE_MS,
                s.map(|a| a as f64 / COUNTS_PER_G as f64),
            )
        })
        .collect();
    let (periods, times_ms) = resample(&rows, &saturated, period_ms);
    Ok(Trace {
        file: file.to_string(),
        label,
        position: "sisfall",
        period_ms,
        periods,
        times_ms,
        repaired: 0,
        skipped_rows,
    })
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
