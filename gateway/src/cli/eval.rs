//! `anxin eval`: measures detection on the Ordóñez homes — false elder alerts per
//! home-day on the real days, detection delay for injected collapses — side by side with
//! a fixed 12-hour inactivity timer.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::config::Config;
use crate::detect::eval::{Delays, EvalHome, HomeResult, delays, evaluate, parse_label};
use crate::detect::replay::parse_ordonez;

/// Arguments of `anxin eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Folder with `Ordonez{A,B}_Sensors.txt` and `_ADLs.txt`.
    #[arg(long, default_value = "../shared/data/ordonez-adl", value_name = "DIR")]
    pub data: PathBuf,
    /// Collapses injected per home.
    #[arg(long, default_value_t = 60)]
    pub collapses: usize,
    /// Seed of the collapse times.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Configuration file whose `[detect]` section to use.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the full results (every alert and collapse) as JSON here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Summary {
    home: String,
    days: f64,
    false_alerts: usize,
    false_per_home_day: f64,
    prealarms: usize,
    baseline_false: usize,
    waking: Delays,
    asleep: Delays,
    out: Delays,
}

/// Runs the evaluation and prints a summary.
pub fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let params = config.detect.compile()?;
    let mut homes = Vec::new();
    for name in ["A", "B"] {
        let read = |suffix: &str| -> anyhow::Result<String> {
            let p = args.data.join(format!("Ordonez{name}_{suffix}.txt"));
            let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        homes.push(EvalHome {
            name: name.to_string(),
            events: parse_ordonez(&read("Sensors")?, name)?,
            sleeping: parse_label(&read("ADLs")?, "Sleeping"),
            leaving: parse_label(&read("ADLs")?, "Leaving"),
        });
    }
    let bar = ProgressBar::new((homes.len() * (1 + args.collapses)) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} replays {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let results = evaluate(&params, &homes, args.collapses, args.seed, || bar.inc(1));
    bar.finish_and_clear();

    let mut summaries = Vec::new();
    for r in &results {
        summaries.push(summary(r));
    }
    let all: Vec<_> = results.iter().flat_map(|r| r.collapses.iter()).collect();
    let days: f64 = results.iter().map(|r| r.days).sum();
    let false_total: usize = results.iter().map(|r| r.false_alerts.len()).sum();
    println!(
        "home  days  false  per-day  pre-alarms  12h-timer-false | awake at home: n median p90 max missed pre-alarm 12h-timer | asleep: (same) | out: (same)"
    );
    for s in &summaries {
        print_row(s);
    }
    print_row(&Summary {
        home: "A+B".into(),
        days,
        false_alerts: false_total,
        false_per_home_day: false_total as f64 / days,
        prealarms: results.iter().map(|r| r.prealarms).sum(),
        baseline_false: results.iter().map(|r| r.baseline_false).sum(),
        waking: delays(all.iter().copied(), |c| !c.asleep && !c.out),
        asleep: delays(all.iter().copied(), |c| c.asleep && !c.out),
        out: delays(all.iter().copied(), |c| c.out),
    });
    let learned = f64::from(config.detect.learning_days);
    println!("after the first {learned} days (routine learned):");
    print_row(&Summary {
        home: "A+B".into(),
        days,
        false_alerts: false_total,
        false_per_home_day: false_total as f64 / days,
        prealarms: 0,
        baseline_false: 0,
        waking: delays(all.iter().copied(), |c| {
            !c.asleep && !c.out && c.day >= learned
        }),
        asleep: delays(all.iter().copied(), |c| {
            c.asleep && !c.out && c.day >= learned
        }),
        out: delays(all.iter().copied(), |c| c.out && c.day >= learned),
    });
    for r in &results {
        for a in &r.false_alerts {
            println!(
                "false alert  {}  {}  {:?}  {}",
                a.time, a.kind, a.severity, a.reason
            );
        }
    }
    if let Some(out) = &args.out {
        let json = serde_json::json!({ "summary": summaries, "homes": results });
        std::fs::write(out, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

fn summary(r: &HomeResult) -> Summary {
    Summary {
        home: r.name.clone(),
        days: r.days,
        false_alerts: r.false_alerts.len(),
        false_per_home_day: r.false_alerts.len() as f64 / r.days,
        prealarms: r.prealarms,
        baseline_false: r.baseline_false,
        waking: delays(r.collapses.iter(), |c| !c.asleep && !c.out),
        asleep: delays(r.collapses.iter(), |c| c.asleep && !c.out),
        out: delays(r.collapses.iter(), |c| c.out),
    }
}

fn print_row(s: &Summary) {
    let d = |x: &Delays| {
        format!(
            "{:>3} {:>6.0} {:>5.0} {:>5.0} {:>3} {:>6.0} {:>6.0}",
            x.n,
            x.median_min,
            x.p90_min,
            x.max_min,
            x.missed,
            x.warning_median_min,
            x.baseline_median_min
        )
    };
    println!(
        "{:<4} {:>5.1} {:>5} {:>8.3} {:>10} {:>8}       | {} | {} | {}",
        s.home,
        s.days,
        s.false_alerts,
        s.false_per_home_day,
        s.prealarms,
        s.baseline_false,
        d(&s.waking),
        d(&s.asleep),
        d(&s.out)
    );
}
