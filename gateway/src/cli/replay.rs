//! `anxin replay`: replays a recorded event log through the real detector on an
//! accelerated (instant) clock and prints the alerts as JSON lines.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::Config;
use crate::detect::replay::{Injection, alert_lines, inject, parse_event_log, parse_ordonez, run};

/// Input formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// The project's own event log (JSON lines: time, household, device_kind, room, ev).
    Anxin,
    /// Ordóñez ADL binary-sensor intervals (`*_Sensors.txt`).
    Ordonez,
}

/// Arguments of `anxin replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Input format.
    #[arg(long, value_enum, default_value = "anxin")]
    pub format: Format,
    /// Household name for formats without one (default: the file name).
    #[arg(long)]
    pub household: Option<String>,
    /// Scenario on top of the data: `collapse@2011-11-29T10:21:25` (all activity stops
    /// from then on) or `no-wakeup@2011-11-29` (no activity that day until noon).
    #[arg(long = "inject", value_name = "SCENARIO")]
    pub inject: Vec<Injection>,
    /// Configuration file whose `[detect]` section to use.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also print pre-alarm warnings.
    #[arg(long)]
    pub prealarms: bool,
    /// The log file.
    pub file: PathBuf,
}

/// Runs the replay and prints one JSON line per alert.
pub fn run_replay(args: ReplayArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let params = config.detect.compile()?;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let events = match args.format {
        Format::Ordonez => {
            let name = args.household.clone().unwrap_or_else(|| {
                args.file
                    .file_stem()
                    .map(|s| s.to_string_lossy().replace("_Sensors", ""))
                    .unwrap_or_default()
            });
            parse_ordonez(&text, &name)?
        }
        Format::Anxin => parse_event_log(&text)?,
    };
    let (events, end) = inject(events, &args.inject, 2 * crate::detect::localtime::DAY_MS);
    let signals = run(&params, &events, end);
    for line in alert_lines(&signals) {
        if !args.prealarms
            && line.severity == crate::signal::Severity::Warning
            && line.kind == "inactivity"
        {
            continue;
        }
        println!("{}", serde_json::to_string(&line)?);
    }
    Ok(())
}
