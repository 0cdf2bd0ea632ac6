//! `fall-eval`: runs the firmware's fall detector over recorded traces (issue 8).
//!
//! ```text
//! fall-eval [--format umafall|sisfall] [--position chest|waist|pocket|wrist|ankle]
//!           [--loso | --fixed | --select] [--no-repair] DIR
//! ```
//!
//! Prints one JSON line per trace (`file` relative to DIR, `fall_detected`, `at_ms`, …)
//! and then one summary line (sensitivity, specificity, per activity, per subject).
//!
//! - `--loso` (default): leave-one-subject-out; each subject's traces are judged with
//!   parameters chosen on the other subjects only (the honest figure);
//! - `--fixed`: the shipped parameters (`FallConfig::PENDANT`), as the pendant runs them;
//! - `--select`: chooses parameters on every trace under DIR and prints them (how the
//!   shipped ones were chosen; its figures are optimistic by construction).
//!
//! UMAFall files are read as shipped (`.csv` or `.csv.gz`), SisFall ones as `.txt` (or
//! `.txt.gz`). Exit status: 0 done, 1 nothing could be evaluated, 2 usage.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anxin_firmware::fall::FallConfig;
use anxin_firmware::fall::eval::{self, FileOutcome, Fold, Grid, GroupRow, Rates};
use anxin_firmware::fall::trace::{self, Format, Position, Trace};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

const USAGE: &str = "usage: fall-eval [--format umafall|sisfall] \
[--position chest|waist|pocket|wrist|ankle] [--loso|--fixed|--select] [--no-repair] DIR";

/// The detector's sample period for both datasets: UMAFall's SensorTags run at 20 Hz.
const PERIOD_MS: u16 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Loso,
    Fixed,
    Select,
}

#[derive(Debug)]
struct Args {
    format: Format,
    position: Position,
    mode: Mode,
    repair: bool,
    dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut format = Format::UmaFall;
    let mut position = Position::Chest;
    let mut mode = Mode::Loso;
    let mut repair = true;
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
                position = Position::parse(&p).ok_or(format!("unknown position {p:?}"))?;
            }
            "--loso" => mode = Mode::Loso,
            "--fixed" => mode = Mode::Fixed,
            "--select" => mode = Mode::Select,
            "--no-repair" => repair = false,
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
    Ok(Args {
        format,
        position,
        mode,
        repair,
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

fn load(args: &Args, path: &Path) -> Result<Trace, String> {
    let rel = path
        .strip_prefix(&args.dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned();
    let text = read_text(path)?;
    match args.format {
        Format::UmaFall => trace::read_umafall(&rel, &text, args.position, PERIOD_MS, args.repair),
        Format::SisFall => trace::read_sisfall(&rel, &text, PERIOD_MS),
    }
    .map_err(|e| e.to_string())
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
    error: String,
}

#[derive(Serialize)]
struct Summary {
    summary: bool,
    mode: &'static str,
    format: &'static str,
    position: Option<&'static str>,
    period_ms: u16,
    traces: usize,
    skipped: usize,
    repaired_traces: usize,
    #[serde(flatten)]
    totals: Rates,
    per_activity: Vec<GroupRow>,
    per_subject: Vec<SubjectRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<FallConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    train: Option<Rates>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    folds: Vec<Fold>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grid: Option<Grid>,
}

#[derive(Serialize)]
struct SubjectRow {
    subject: String,
    #[serde(flatten)]
    rates: Rates,
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

    let pb = bar(files.len(), "reading");
    let mut traces = Vec::new();
    let mut skipped = Vec::new();
    for p in &files {
        match load(args, p) {
            Ok(t) => traces.push(t),
            Err(error) => skipped.push(Skipped {
                file: p.strip_prefix(&args.dir).unwrap_or(p).display().to_string(),
                error,
            }),
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if traces.is_empty() {
        return Err(format!("no readable trace under {}", args.dir.display()));
    }

    let base = FallConfig::PENDANT.with_period_ms(PERIOD_MS);
    let grid = Grid::standard();
    let matrix = if args.mode == Mode::Fixed {
        Vec::new()
    } else {
        let pb = bar(grid.len(), "grid");
        let m = eval::evaluate_grid(&traces, &grid, &base, || pb.inc(1))
            .map_err(|e| format!("grid: {e:?}"))?;
        pb.finish_and_clear();
        m
    };

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
            let sel = eval::select(&traces, &grid, &base, &matrix, |_| true).ok_or("empty grid")?;
            let o = traces
                .iter()
                .map(|t| eval::run(t, &sel.params))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{e:?}"))?;
            (o, Vec::new(), Some(sel.params), Some(sel.train))
        }
        Mode::Loso => {
            let (o, f) =
                eval::loso(&traces, &grid, &base, &matrix).map_err(|e| format!("{e:?}"))?;
            (o, f, None, None)
        }
    };

    for o in &outcomes {
        emit(&mut out, o)?;
    }
    for s in &skipped {
        emit(&mut out, s)?;
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
        position: (args.format == Format::UmaFall).then(|| args.position.name()),
        period_ms: PERIOD_MS,
        traces: outcomes.len(),
        skipped: skipped.len(),
        repaired_traces: traces.iter().filter(|t| t.repaired > 0).count(),
        totals: eval::totals(&outcomes),
        per_activity: eval::per_activity(&outcomes),
        per_subject: eval::per_subject(&outcomes)
            .into_iter()
            .map(|(subject, rates)| SubjectRow { subject, rates })
            .collect(),
        params,
        train,
        folds,
        grid: (args.mode != Mode::Fixed).then_some(grid),
    };
    emit(&mut out, &summary)?;
    out.flush().map_err(|e| e.to_string())
}
