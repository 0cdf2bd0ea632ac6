//! `fall-eval`: runs the firmware's fall detector over recorded traces.
//!
//! ```text
//! fall-eval [--format umafall|sisfall] [--position chest,waist|pocket|wrist|ankle|…]
//!           [--loso | --fixed | --select] [--cross-rate] [--stress] [--no-slowed]
//!           [--no-repair] [--table] DIR
//! ```
//!
//! Prints one JSON line per trace (`file` relative to DIR, `position`, `fall_detected`,
//! `at_ms`, the candidate's `features`, …) and then one summary line (sensitivity,
//! specificity and false alarms per hour of recorded daily activity, with 95 %
//! intervals, per position, per subject, per activity, and the folds); with `--table`,
//! the same figures as Markdown tables instead (what `docs/detection.md` shows).
//!
//! - `--loso` (default): leave-one-subject-out; each subject's traces (every position)
//!   are judged with parameters chosen on the other subjects only (the honest figure);
//! - `--fixed`: the shipped parameters (`FallConfig::PENDANT`), as the pendant runs them;
//! - `--select`: chooses parameters on every trace under DIR and prints them (how the
//!   shipped ones were chosen; its figures are optimistic by construction).
//!
//! Parameters are chosen by balanced accuracy on the recorded traces plus a small weight
//! on synthetic slow falls made from the recorded falls of the same training subjects
//! (`--no-slowed`: recorded traces only).
//!
//! `--position` takes a comma-separated list (default `chest,waist`: the two places a
//! pendant is worn); the parameters are chosen on all of them together. `--cross-rate`
//! (UMAFall) also scores the phone's ≈200 Hz traces, low-pass filtered and resampled to
//! 20 Hz and to the pendant's 25 Hz, with the parameters of the same fold (never chosen
//! on them). `--stress` also scores synthetic variants of every real fall — slowed 1.5
//! and 2 times, ending with the trunk 30°, 45° or 60° from upright instead of lying
//! (`fall::stress`) — with the parameters of the fall's fold.
//!
//! UMAFall files are read as shipped (`.csv` or `.csv.gz`), SisFall ones as `.txt` (or
//! `.txt.gz`). Exit status: 0 done, 1 nothing could be evaluated, 2 usage.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anxin_firmware::fall::FallConfig;
use anxin_firmware::fall::eval::{self, Counts, FileOutcome, Fold, Grid, GroupRow, Rates};
use anxin_firmware::fall::stress;
use anxin_firmware::fall::trace::{self, Format, Position, Trace};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

const USAGE: &str = "usage: fall-eval [--format umafall|sisfall] \
[--position chest,waist|pocket|wrist|ankle] [--loso|--fixed|--select] [--cross-rate] \
[--stress] [--no-slowed] [--no-repair] [--table] DIR";

/// The detector's sample period for the evaluation: UMAFall's SensorTags run at 20 Hz.
const PERIOD_MS: u16 = 50;
/// The pendant's own rate (LIS3DH at 25 Hz).
const PENDANT_PERIOD_MS: u16 = 40;
/// How much slower the synthetic slow falls of the training subjects are.
const SLOWED_FACTOR: f64 = 1.5;
/// Their weight in the score parameters are chosen by: balanced accuracy on the
/// recorded traces + this × sensitivity on the slow falls (all of them caught is worth
/// as much as 4 % more specificity).
const SLOWED_WEIGHT: f64 = 0.02;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Loso,
    Fixed,
    Select,
}

#[derive(Debug)]
struct Args {
    format: Format,
    positions: Vec<Position>,
    mode: Mode,
    repair: bool,
    cross_rate: bool,
    stress: bool,
    augment: bool,
    table: bool,
    dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut format = Format::UmaFall;
    let mut positions = vec![Position::Chest, Position::Waist];
    let mut mode = Mode::Loso;
    let mut repair = true;
    let mut cross_rate = false;
    let mut stress = false;
    let mut augment = true;
    let mut table = false;
    let mut dir = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--format" => {
                format = match it.next().as_deref() {
                    Some("umafall") => Format::UmaFall,
                    Some("sisfall") => Format::SisFall,
                    other => return Err(format!("unknown format {other:?}")),
                }
            }
            "--position" => {
                let p = it.next().unwrap_or_default();
                positions = p
                    .split(',')
                    .map(|s| Position::parse(s.trim()).ok_or(format!("unknown position {s:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--loso" => mode = Mode::Loso,
            "--fixed" => mode = Mode::Fixed,
            "--select" => mode = Mode::Select,
            "--no-repair" => repair = false,
            "--cross-rate" => cross_rate = true,
            "--stress" => stress = true,
            "--no-slowed" => augment = false,
            "--table" => table = true,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => {
                if dir.replace(PathBuf::from(s)).is_some() {
                    return Err("more than one DIR".into());
                }
            }
        }
    }
    let dir = dir.ok_or("missing DIR")?;
    if cross_rate && format != Format::UmaFall {
        return Err("--cross-rate needs the UMAFall phone traces".into());
    }
    Ok(Args {
        format,
        positions,
        mode,
        repair,
        cross_rate,
        stress,
        augment,
        table,
        dir,
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn is_trace(format: Format, name: &str) -> bool {
    match format {
        Format::UmaFall => {
            trace::umafall_label(name).is_some()
                && (name.ends_with(".csv") || name.ends_with(".csv.gz"))
        }
        Format::SisFall => {
            trace::sisfall_label(name).is_some()
                && (name.ends_with(".txt") || name.ends_with(".txt.gz"))
        }
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("gzip: {e}"))?;
        out
    } else {
        bytes
    };
    Ok(trace::decode_text(&bytes))
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {eta}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

#[derive(Serialize)]
struct Skipped {
    file: String,
    position: &'static str,
    error: String,
}

#[derive(Serialize)]
struct Row {
    name: String,
    #[serde(flatten)]
    rates: Rates,
}

#[derive(Serialize)]
struct CrossRate {
    /// `pocket@20Hz`, `pocket@25Hz`.
    name: String,
    period_ms: u16,
    #[serde(flatten)]
    rates: Rates,
    per_subject: Vec<Row>,
    per_activity: Vec<GroupRow>,
}

#[derive(Serialize)]
struct Stress {
    /// `slowed x1.5`, `ending at 45°`, …
    name: String,
    per_position: Vec<Row>,
    #[serde(flatten)]
    rates: Rates,
}

#[derive(Serialize)]
struct Summary {
    summary: bool,
    mode: &'static str,
    format: &'static str,
    positions: Vec<&'static str>,
    period_ms: u16,
    traces: usize,
    skipped: usize,
    repaired_traces: usize,
    #[serde(flatten)]
    totals: Rates,
    per_position: Vec<Row>,
    per_subject: Vec<Row>,
    per_subject_position: Vec<Row>,
    per_activity: Vec<GroupRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<FallConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    train: Option<Rates>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    folds: Vec<Fold>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cross_rate: Vec<CrossRate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stress: Vec<Stress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grid: Option<Grid>,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fall-eval: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fall-eval: {e}");
            ExitCode::FAILURE
        }
    }
}

fn emit(out: &mut impl Write, line: &impl Serialize) -> Result<(), String> {
    let s = serde_json::to_string(line).map_err(|e| e.to_string())?;
    writeln!(out, "{s}").map_err(|e| e.to_string())
}

/// Reads every trace under DIR for `positions` at `period_ms`.
fn load_all(
    args: &Args,
    files: &[PathBuf],
    positions: &[Position],
    period_ms: u16,
) -> (Vec<Trace>, Vec<Skipped>) {
    let pb = bar(files.len(), "reading");
    let mut traces = Vec::new();
    let mut skipped = Vec::new();
    for p in files {
        let rel = p
            .strip_prefix(&args.dir)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned();
        match read_text(p) {
            Err(error) => skipped.push(Skipped {
                file: rel.clone(),
                position: "",
                error,
            }),
            Ok(text) => match args.format {
                Format::UmaFall => {
                    for &pos in positions {
                        match trace::read_umafall(&rel, &text, pos, period_ms, args.repair) {
                            Ok(t) => traces.push(t),
                            Err(e) => skipped.push(Skipped {
                                file: rel.clone(),
                                position: pos.name(),
                                error: e.to_string(),
                            }),
                        }
                    }
                }
                Format::SisFall => match trace::read_sisfall(&rel, &text, period_ms) {
                    Ok(t) => traces.push(t),
                    Err(e) => skipped.push(Skipped {
                        file: rel.clone(),
                        position: "sisfall",
                        error: e.to_string(),
                    }),
                },
            },
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    (traces, skipped)
}

fn rows(m: BTreeMap<String, Counts>) -> Vec<Row> {
    m.into_iter()
        .map(|(name, c)| Row {
            name,
            rates: c.into(),
        })
        .collect()
}

fn run(args: &Args) -> Result<(), String> {
    let mut files = Vec::new();
    walk(&args.dir, &mut files).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    files.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| is_trace(args.format, n))
    });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();

    let (traces, skipped) = load_all(args, &files, &args.positions, PERIOD_MS);
    if traces.is_empty() {
        return Err(format!("no readable trace under {}", args.dir.display()));
    }

    let base = FallConfig::PENDANT.with_period_ms(PERIOD_MS);
    let grid = Grid::standard();
    // synthetic slow falls of every recorded fall: part of the score parameters are
    // chosen on (never of the subject being scored)
    let slowed: Vec<Trace> = if args.augment {
        traces
            .iter()
            .filter(|t| t.label.is_fall)
            .filter_map(|t| stress::slowed(t, SLOWED_FACTOR))
            .collect()
    } else {
        Vec::new()
    };
    let (matrix, slowed_matrix) = if args.mode == Mode::Fixed {
        (Vec::new(), Vec::new())
    } else {
        let pb = bar(2 * grid.impact_mg.len(), "grid");
        let m = eval::evaluate_grid(&traces, &grid, &base, || pb.inc(1))
            .map_err(|e| format!("grid: {e:?}"))?;
        let ms = eval::evaluate_grid(&slowed, &grid, &base, || pb.inc(1))
            .map_err(|e| format!("grid: {e:?}"))?;
        pb.finish_and_clear();
        (m, ms)
    };
    let data = eval::Training {
        real: eval::Pool {
            traces: &traces,
            matrix: &matrix,
        },
        slowed: args.augment.then_some((
            eval::Pool {
                traces: &slowed,
                matrix: &slowed_matrix,
            },
            SLOWED_WEIGHT,
        )),
    };

    // the parameters each subject is judged with
    let mut per_subject_params: BTreeMap<String, FallConfig> = BTreeMap::new();
    let (outcomes, folds, params, train): (Vec<FileOutcome>, Vec<Fold>, _, _) = match args.mode {
        Mode::Fixed => {
            let o = traces
                .iter()
                .map(|t| eval::run(t, &base))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{e:?}"))?;
            (o, Vec::new(), Some(base), None)
        }
        Mode::Select => {
            let sel = eval::select(&grid, &base, &data, |_| true).ok_or("empty grid")?;
            let o = traces
                .iter()
                .map(|t| eval::run(t, &sel.params))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{e:?}"))?;
            (o, Vec::new(), Some(sel.params), Some(sel.train))
        }
        Mode::Loso => {
            let (o, f) = eval::loso(&grid, &base, &data).map_err(|e| format!("{e:?}"))?;
            for fold in &f {
                per_subject_params.insert(fold.held_out.clone(), fold.chosen.params);
            }
            (o, f, None, None)
        }
    };
    let params_for = |subject: &str| -> FallConfig {
        params.unwrap_or_else(|| per_subject_params.get(subject).copied().unwrap_or(base))
    };

    let mut cross_rate = Vec::new();
    let mut cross_skipped = Vec::new();
    let mut cross_outcomes = Vec::new();
    if args.cross_rate {
        for period in [PERIOD_MS, PENDANT_PERIOD_MS] {
            let (phone, sk) = load_all(args, &files, &[Position::Pocket], period);
            cross_skipped.extend(sk);
            let o = phone
                .iter()
                .map(|t| eval::run(t, &params_for(&t.label.subject).with_period_ms(period)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{e:?}"))?;
            cross_rate.push(CrossRate {
                name: format!("pocket@{}Hz", 1000 / period),
                period_ms: period,
                rates: eval::totals(&o),
                per_subject: rows(eval::counts_by(&o, |o| o.subject.clone())),
                per_activity: eval::per_activity(&o),
            });
            cross_outcomes.push((period, o));
        }
    }

    let mut stress = Vec::new();
    if args.stress {
        let variants: [(&str, f64, bool); 5] = [
            ("slowed x1.5", 1.5, true),
            ("slowed x2", 2.0, true),
            ("ending at 30°", 30.0, false),
            ("ending at 45°", 45.0, false),
            ("ending at 60°", 60.0, false),
        ];
        for (name, x, slow) in variants {
            let mut o = Vec::new();
            for t in traces.iter().filter(|t| t.label.is_fall) {
                let v = if slow {
                    stress::slowed(t, x)
                } else {
                    stress::seated(t, x)
                };
                if let Some(v) = v {
                    o.push(
                        eval::run(&v, &params_for(&v.label.subject))
                            .map_err(|e| format!("{e:?}"))?,
                    );
                }
            }
            stress.push(Stress {
                name: name.to_string(),
                per_position: rows(eval::counts_by(&o, |o| o.position.to_string())),
                rates: eval::totals(&o),
            });
        }
    }

    let summary = Summary {
        summary: true,
        mode: match args.mode {
            Mode::Loso => "leave-one-subject-out",
            Mode::Fixed => "fixed",
            Mode::Select => "select",
        },
        format: match args.format {
            Format::UmaFall => "umafall",
            Format::SisFall => "sisfall",
        },
        positions: match args.format {
            Format::UmaFall => args.positions.iter().map(|p| p.name()).collect(),
            Format::SisFall => vec!["sisfall"],
        },
        period_ms: PERIOD_MS,
        traces: outcomes.len(),
        skipped: skipped.len(),
        repaired_traces: traces.iter().filter(|t| t.repaired > 0).count(),
        totals: eval::totals(&outcomes),
        per_position: rows(eval::counts_by(&outcomes, |o| o.position.to_string())),
        per_subject: rows(eval::counts_by(&outcomes, |o| o.subject.clone())),
        per_subject_position: rows(eval::counts_by(&outcomes, |o| {
            format!("{} {}", o.subject, o.position)
        })),
        per_activity: eval::per_activity(&outcomes),
        params,
        train,
        folds,
        cross_rate,
        stress,
        grid: (args.mode != Mode::Fixed).then_some(grid),
    };
    if args.table {
        table(&mut out, &summary, &outcomes).map_err(|e| e.to_string())?;
    } else {
        for o in &outcomes {
            emit(&mut out, o)?;
        }
        for (period, os) in &cross_outcomes {
            for o in os {
                emit(
                    &mut out,
                    &serde_json::json!({"cross_rate_period_ms": period, "outcome": o}),
                )?;
            }
        }
        for s in skipped.iter().chain(&cross_skipped) {
            emit(&mut out, s)?;
        }
        emit(&mut out, &summary)?;
    }
    out.flush().map_err(|e| e.to_string())
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{:.1} %", 100.0 * x))
}

fn ci_pct(x: Option<(f64, f64)>) -> String {
    x.map_or("–".into(), |(a, b)| {
        format!("{:.1}–{:.1} %", 100.0 * a, 100.0 * b)
    })
}

fn per_hour(r: &Rates) -> String {
    match (r.false_alarms_per_hour, r.false_alarms_per_hour_ci) {
        (Some(x), Some((a, b))) => format!("{x:.2} ({a:.2}–{b:.2})"),
        _ => "–".into(),
    }
}

fn line(out: &mut impl Write, name: &str, r: &Rates) -> std::io::Result<()> {
    let c = &r.counts;
    writeln!(
        out,
        "| {name} | {}/{} | {} | {} | {}/{} | {:.2} | {} |",
        c.true_positives,
        c.falls(),
        pct(r.sensitivity),
        ci_pct(r.sensitivity_ci),
        c.false_positives,
        c.adls(),
        r.adl_hours,
        per_hour(r),
    )
}

const HEADER: &str = "| | falls detected | sensitivity | 95 % CI (Wilson) | false alarms / ADL traces | ADL hours | false alarms per wearer-hour (95 % CI) |\n|---|---|---|---|---|---|---|";

fn table(out: &mut impl Write, s: &Summary, outcomes: &[FileOutcome]) -> std::io::Result<()> {
    writeln!(
        out,
        "### {} — {} — positions {} — {} traces ({} skipped), {} Hz\n",
        s.mode,
        s.format,
        s.positions.join("+"),
        s.traces,
        s.skipped,
        1000 / s.period_ms
    )?;
    writeln!(out, "{HEADER}")?;
    for r in &s.per_subject_position {
        line(out, &format!("subject {}", r.name), &r.rates)?;
    }
    for r in &s.per_subject {
        line(out, &format!("**subject {}**", r.name), &r.rates)?;
    }
    for r in &s.per_position {
        line(out, &format!("**{} pooled**", r.name), &r.rates)?;
    }
    line(out, "**all pooled**", &s.totals)?;
    if !s.cross_rate.is_empty() {
        writeln!(
            out,
            "\nCross-rate (phone, right pocket, anti-aliased and resampled; parameters of the same fold):\n"
        )?;
        writeln!(out, "{HEADER}")?;
        for c in &s.cross_rate {
            for r in &c.per_subject {
                line(out, &format!("{} subject {}", c.name, r.name), &r.rates)?;
            }
            line(out, &format!("**{} pooled**", c.name), &c.rates)?;
        }
    }
    if !s.stress.is_empty() {
        writeln!(
            out,
            "\nSynthetic variants of every real fall (parameters of the fall's fold; never used to choose them):\n"
        )?;
        writeln!(out, "{HEADER}")?;
        for v in &s.stress {
            for r in &v.per_position {
                line(out, &format!("{} {}", v.name, r.name), &r.rates)?;
            }
        }
    }
    if !s.folds.is_empty() {
        writeln!(
            out,
            "\nParameters per fold (chosen without the held-out subject):\n"
        )?;
        writeln!(
            out,
            "| held out | impact gate mg | min tilt ° | min velocity mm/s | training sensitivity | training specificity |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for f in &s.folds {
            let p = &f.chosen.params;
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                f.held_out,
                p.impact_mg,
                p.min_tilt_deg,
                p.min_velocity_mm_s,
                pct(f.chosen.train.sensitivity),
                pct(f.chosen.train.specificity)
            )?;
        }
    }
    if let Some(p) = &s.params {
        writeln!(
            out,
            "\nParameters: impact gate {} mg, tilt ≥ {}°, velocity ≥ {} mm/s, motion ≤ {} mg; seated path: velocity ≥ {} mm/s, peak ≥ {} mg, tilt ≥ {}°, ≤ {} impacts.",
            p.impact_mg,
            p.min_tilt_deg,
            p.min_velocity_mm_s,
            p.max_motion_mg,
            p.seated_velocity_mm_s,
            p.seated_impact_mg,
            p.seated_min_tilt_deg,
            p.seated_max_impacts
        )?;
    }
    writeln!(out, "\nPer activity (every position):\n")?;
    writeln!(out, "| activity | kind | traces | fall raised | rate |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for a in &s.per_activity {
        writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} % |",
            a.name,
            a.kind,
            a.traces,
            a.detected,
            100.0 * a.rate
        )?;
    }
    writeln!(out, "\nErrors (missed falls, false alarms):\n")?;
    writeln!(
        out,
        "| trace | position | kind | peak mg | velocity mm/s | tilt ° | motion mg | impacts |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    for o in outcomes {
        if o.fall_detected == (o.kind == "fall") {
            continue;
        }
        let f = o.features;
        let show = |v: Option<i64>| v.map_or("–".to_string(), |v| v.to_string());
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            o.file,
            o.position,
            o.kind,
            show(f.map(|f| i64::from(f.peak_mg))),
            show(f.and_then(|f| f.velocity_mm_s).map(i64::from)),
            show(f.and_then(|f| f.tilt_deg).map(i64::from)),
            show(f.and_then(|f| f.motion_mg).map(i64::from)),
            show(f.map(|f| i64::from(f.impacts))),
        )?;
    }
    Ok(())
}
