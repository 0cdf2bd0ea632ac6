//! Latency summaries and the JSON-lines report file.

use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use super::LoadError;

/// The options every load command shares: which processes to watch, the report's label
/// and file, and the progress display.
#[derive(Debug, Clone, clap::Args)]
pub struct Reporting {
    /// Processes whose CPU and memory are reported, `NAME=PID` (repeatable).
    #[arg(long = "pid")]
    pub pids: Vec<String>,
    /// A label for the report.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Appends the report as one JSON line to this file.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// A latency distribution, milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Samples.
    pub n: usize,
    /// Expected but never observed.
    pub missing: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// Summarises `samples` (ms) out of `expected` events.
    pub fn of(mut samples: Vec<f64>, expected: usize) -> Latency {
        samples.retain(|s| s.is_finite());
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let rank = |q: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            samples[i]
        };
        Latency {
            n,
            missing: expected.saturating_sub(n),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: samples.last().copied().unwrap_or(0.0),
        }
    }

    /// `p50 / p99 / max ms (n)`, or `—`.
    pub fn short(&self) -> String {
        if self.n == 0 {
            return "—".into();
        }
        let miss = if self.missing > 0 {
            format!(", {} missing", self.missing)
        } else {
            String::new()
        };
        format!(
            "{:.1} / {:.1} / {:.1} ms (n={}{miss})",
            self.p50_ms, self.p99_ms, self.max_ms, self.n
        )
    }
}

/// Appends `value` as one JSON line to `path`.
pub fn append_json(path: &Path, value: &impl Serialize) -> Result<(), LoadError> {
    let line = serde_json::to_string(value).map_err(|e| LoadError::Task(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{line}")?;
    Ok(())
}

fn f(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64().unwrap_or(f64::NAN)
}

fn lat(v: &serde_json::Value, key: &str) -> String {
    let l = &v[key];
    if l["n"].as_u64().unwrap_or(0) == 0 {
        return "—".into();
    }
    let missing = l["missing"].as_u64().unwrap_or(0);
    format!(
        "{:.1} / {:.1} / {:.1}{}",
        f(l, &["p50_ms"]),
        f(l, &["p99_ms"]),
        f(l, &["max_ms"]),
        if missing > 0 {
            format!(" ({missing} missing)")
        } else {
            String::new()
        }
    )
}

fn cpu(v: &serde_json::Value) -> (String, String) {
    let mut cores = Vec::new();
    let mut per = Vec::new();
    if let Some(list) = v["cpu"].as_array() {
        for c in list {
            cores.push(format!(
                "{} {:.2}",
                c["name"].as_str().unwrap_or("?"),
                f(c, &["cores"])
            ));
        }
    }
    if let Some(list) = v["cpu_us_per_msg"].as_array() {
        for c in list {
            per.push(format!(
                "{} {:.1}",
                c[0].as_str().unwrap_or("?"),
                c[1].as_f64().unwrap_or(f64::NAN)
            ));
        }
    }
    (cores.join(", "), per.join(", "))
}

/// Markdown tables of a results file (one JSON report per line).
pub fn summary(text: &str) -> String {
    let mut runs = String::from(
        "| run | offered msg/s | sent msg/s | counted msg/s | lossless | sustained | drain s | events issued / lost (replayed) | heartbeats sent / counted | help → command p50/p99/max ms | help → SSE | help → webhook | event → ack p50/p99/max ms | CPU cores | CPU µs/msg | loadavg |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut storms = String::from(
        "| storm | devices | connect: all connected / all acked s | reconnect: all connected / all acked s | reconnect failures | events issued / acked | status msgs counted | CPU cores | loadavg |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let (mut n_runs, mut n_storms) = (0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let load = format!(
            "{} → {}",
            v["loadavg"][0].as_str().unwrap_or(""),
            v["loadavg"][1].as_str().unwrap_or("")
        );
        let (cores, per) = cpu(&v);
        if v.get("reconnect").is_some() {
            n_storms += 1;
            storms.push_str(&format!(
                "| {} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {} | {} / {} | {} | {} | {} |\n",
                v["label"].as_str().unwrap_or(""),
                v["devices"],
                f(&v, &["connect", "all_connected_s"]),
                f(&v, &["connect", "all_acked_s"]),
                f(&v, &["reconnect", "all_connected_s"]),
                f(&v, &["reconnect", "all_acked_s"]),
                v["reconnect"]["connect_failures"],
                v["events_issued"],
                v["events_acked"],
                f(&v, &["gateway", "statuses"]),
                cores,
                load
            ));
            continue;
        }
        n_runs += 1;
        let r = &v["reconciled"];
        runs.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} | {:.2} | {} / {} ({}) | {} / {} | {} | {} | {} | {} | {} | {} | {} |\n",
            v["label"].as_str().unwrap_or(""),
            f(&v, &["offered_rate"]),
            f(&v, &["sent_rate"]),
            f(&v, &["counted_rate"]),
            if v["lossless"].as_bool() == Some(true) { "yes" } else { "**no**" },
            if v["sustained"].as_bool() == Some(true) { "yes" } else { "no" },
            f(&v, &["drain_s"]),
            r["events_issued"],
            r["events_lost"],
            r["events_replayed_ok"],
            r["heartbeats_sent"],
            r["heartbeats_counted"],
            lat(&v, "help_to_command"),
            lat(&v, "help_to_sse"),
            lat(&v, "help_to_webhook"),
            lat(&v, "event_to_ack"),
            cores,
            per,
            load
        ));
    }
    let mut out = String::new();
    if n_runs > 0 {
        out.push_str(&runs);
    }
    if n_storms > 0 {
        out.push('\n');
        out.push_str(&storms);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let l = Latency::of((1..=100).map(f64::from).collect(), 101);
        assert_eq!((l.p50_ms, l.p99_ms, l.max_ms), (50.0, 99.0, 100.0));
        assert_eq!((l.n, l.missing), (100, 1));
        assert_eq!(Latency::of(vec![], 0).short(), "—");
    }

    #[test]
    fn a_results_file_becomes_markdown_tables() {
        let run = r#"{"label":"a","offered_rate":100.0,"sent_rate":99.0,"counted_rate":98.0,"lossless":true,"sustained":true,"drain_s":0.1,"reconciled":{"events_issued":10,"events_lost":0,"events_replayed_ok":0,"heartbeats_sent":90,"heartbeats_counted":90},"help_to_command":{"n":1,"missing":0,"p50_ms":1.0,"p99_ms":2.0,"max_ms":3.0},"cpu":[{"name":"gateway","cores":0.5}],"cpu_us_per_msg":[["gateway",5.0]],"loadavg":["1","2"]}"#;
        let md = summary(run);
        assert!(
            md.contains(
                "| a | 100 | 99 | 98 | yes | yes | 0.10 | 10 / 0 (0) | 90 / 90 | 1.0 / 2.0 / 3.0 |"
            ),
            "{md}"
        );
        assert!(md.contains("gateway 0.50"));
    }
}
