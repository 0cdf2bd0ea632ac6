//! `anxin eval`: measures detection on the Ordóñez homes — false elder alerts per
//! home-day on the real days, detection delay for injected collapses — side by side with
//! a fixed 12-hour inactivity timer.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::config::Config;
use crate::detect::eval::{
    Delays, EvalHome, HomeResult, Scored, Variant, candidates, delays, evaluate, evaluate_seeded,
    leave_one_home_out, parse_label, score, variant,
};
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
    /// Only the in-sample table of the configured parameters (no leave-one-home-out, no
    /// variants).
    #[arg(long)]
    pub quick: bool,
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
            help_button: false,
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
    print_check_ins(&params, &homes, &results, &args, config.detect.check_in_s);
    if args.quick {
        if let Some(out) = &args.out {
            let json = serde_json::json!({ "summary": summaries, "homes": results });
            std::fs::write(out, serde_json::to_string_pretty(&json)?)
                .with_context(|| format!("writing {}", out.display()))?;
        }
        return Ok(());
    }

    // Every variant with the configured parameters (in-sample on the recorded homes: the
    // defaults were chosen on them).
    let cands = candidates(&config.detect)?;
    let bar = ProgressBar::new(
        // In-sample: every home × variant; per fold: every candidate on the training
        // homes and their variants, then the chosen one on the held-out home's variants.
        ((homes.len() * Variant::ALL.len()
            + homes.len()
                * (cands.len() * (homes.len() - 1) * Variant::ALL.len() + Variant::ALL.len()))
            * (1 + args.collapses)) as u64,
    );
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} replays {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut tick = |what: &str| {
        bar.set_message(what.to_string());
        bar.inc(1);
    };
    let mut in_sample: Vec<(Variant, Vec<HomeResult>)> = Vec::new();
    for v in Variant::ALL {
        let hs: Vec<EvalHome> = homes.iter().map(|h| variant(h, v)).collect();
        in_sample.push((
            v,
            evaluate_seeded(&params, &hs, args.collapses, args.seed, &mut tick),
        ));
    }
    let folds = leave_one_home_out(
        &cands,
        &homes,
        &Variant::ALL,
        args.collapses,
        args.seed,
        &mut tick,
    );
    bar.finish_and_clear();

    println!();
    println!(
        "## The configured parameters on every home and variant (in-sample: the defaults were chosen on these homes)"
    );
    print_header();
    let mut in_sample_scores = Vec::new();
    for (v, rs) in &in_sample {
        for r in rs {
            let s = score(&r.name, &[r]);
            print_scored(&s);
            in_sample_scores.push(s);
        }
        let s = score(
            &format!("pooled/{}", v.name()),
            &rs.iter().collect::<Vec<_>>(),
        );
        print_scored(&s);
        in_sample_scores.push(s);
    }

    println!();
    println!(
        "## Leave-one-home-out (held out: parameters chosen on the other home and its variants only)"
    );
    for f in &folds {
        println!(
            "held out {}: chosen on the others: {} (training: {:.3} false/home-day, waking median {:.0} min, {} false on its variants)",
            f.held_out,
            f.chosen,
            f.training.false_per_day.value,
            f.training.waking_median.value,
            f.training.variant_false_alerts
        );
    }
    print_header();
    let mut held_out_scores = Vec::new();
    for (vi, v) in Variant::ALL.iter().enumerate() {
        let rs: Vec<&HomeResult> = folds.iter().filter_map(|f| f.results.get(vi)).collect();
        for r in &rs {
            let s = score(&r.name, &[*r]);
            print_scored(&s);
            held_out_scores.push(s);
        }
        let s = score(&format!("pooled/{}", v.name()), &rs);
        print_scored(&s);
        held_out_scores.push(s);
    }
    for f in &folds {
        for r in &f.results {
            for a in &r.false_alerts {
                println!(
                    "held-out false alert  {}  {}  {}  {:?}  {}",
                    r.name, a.time, a.kind, a.severity, a.reason
                );
            }
        }
    }

    if let Some(out) = &args.out {
        let json = serde_json::json!({
            "summary": summaries,
            "homes": results,
            "in_sample": in_sample_scores,
            "held_out": held_out_scores,
            "folds": folds,
        });
        std::fs::write(out, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// The same homes with a help button that takes check-ins. A recorded home cannot press
/// it, so this shows what asking costs (the warning and some alerts come one check-in
/// later) and how many false alerts a press would have stopped: every silence alert
/// here follows a check-in that went unanswered.
fn print_check_ins(
    params: &crate::detect::params::Params,
    homes: &[EvalHome],
    without: &[HomeResult],
    args: &EvalArgs,
    check_in_s: u32,
) {
    if check_in_s == 0 {
        println!("check-ins are off ([detect] check_in_s = 0)");
        return;
    }
    let with_button: Vec<EvalHome> = homes
        .iter()
        .map(|h| EvalHome {
            help_button: true,
            ..h.clone()
        })
        .collect();
    let asked = evaluate(params, &with_button, args.collapses, args.seed, || {});
    println!();
    println!(
        "## With a check-in on the help button ({check_in_s} s) before each silence warning or alert (replay: nobody presses)"
    );
    println!(
        "home  check-ins/day  answered-by-activity  false  after-check-in  false/day-if-all-answered | waking median min: with / without"
    );
    for (w, wo) in asked.iter().zip(without) {
        let after = w
            .false_alerts
            .iter()
            .filter(|a| matches!(a.kind, "inactivity" | "missed_wakeup"))
            .count();
        let with_d = delays(w.collapses.iter(), |c| !c.asleep && !c.out);
        let without_d = delays(wo.collapses.iter(), |c| !c.asleep && !c.out);
        println!(
            "{:<4}  {:>13.2}  {:>20}  {:>5}  {:>14}  {:>24.3} | {:.0} / {:.0}",
            w.name,
            w.check_ins as f64 / w.days,
            w.check_ins_answered,
            w.false_alerts.len(),
            after,
            (w.false_alerts.len() - after) as f64 / w.days,
            with_d.median_min,
            without_d.median_min,
        );
    }
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

fn print_header() {
    println!(
        "{:<22} {:>5} {:>5} {:>22} {:>13} | {:>3} {:>4} {:>20} {:>20} {:>7} | {:>3} {:>6} {:>4}",
        "home/variant",
        "days",
        "false",
        "per home-day [95% CI]",
        "12h-timer/day",
        "n",
        "miss",
        "median min [95% CI]",
        "p90 min [95% CI]",
        "12h-med",
        "asleep n",
        "median",
        "miss"
    );
}

fn print_scored(s: &Scored) {
    let m = |x: f64| {
        if x.is_infinite() && x > 0.0 {
            "inf".to_string()
        } else if x.is_infinite() {
            "-".to_string()
        } else {
            format!("{x:.0}")
        }
    };
    println!(
        "{:<22} {:>5.1} {:>5} {:>22} {:>13.3} | {:>3} {:>4} {:>20} {:>20} {:>7} | {:>3} {:>6} {:>4}",
        s.name,
        s.days,
        s.false_alerts,
        format!(
            "{:.3} [{:.3}-{:.3}]",
            s.false_per_day.value, s.false_per_day.lo, s.false_per_day.hi
        ),
        s.timer_false_per_day.value,
        s.waking_n,
        s.waking_missed,
        format!(
            "{} [{}-{}]",
            m(s.waking_median.value),
            m(s.waking_median.lo),
            m(s.waking_median.hi)
        ),
        format!(
            "{} [{}-{}]",
            m(s.waking_p90.value),
            m(s.waking_p90.lo),
            m(s.waking_p90.hi)
        ),
        m(s.timer_median.value),
        s.asleep_n,
        m(s.asleep_median),
        s.asleep_missed
    );
}
