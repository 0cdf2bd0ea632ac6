//! `anxin load …`: the load generator. It drives a real broker on this machine with the
//! project's own wire protocol and counts everything back:
//!
//! - `populate`: registers a population (up to 1,000,000 households) in a gateway's store;
//! - `run`: open-loop heartbeats and events from many virtual devices multiplexed over a
//!   few MQTT connections, help presses on their own connection, latencies to the alert
//!   feedback command, the caseworker's live stream (SSE) or the peer's webhook, and the
//!   reconciliation of every event by (device, boot, seq);
//! - `storm`: thousands of devices, each on its own connection, reconnecting at once;
//! - `summary`: Markdown tables of the JSON reports;
//! - `secret-hash`: the hash a `[[broker.multiplexers]]` entry holds.
//!
//! Multiplexing needs a broker login that may publish for many devices: the embedded
//! broker's `[[broker.multiplexers]]` (none by default), or a mosquitto ACL user with
//! `topic write anxin/v1/dev/+/up/#` and `topic read anxin/v1/dev/+/down/#`. The
//! runner is `bench/run.sh`; the results are in `docs/benchmarks.md`.

mod drive;
mod fleet;
mod mqtt;
mod observe;
mod populate;
mod report;
mod shape;
mod storm;

use crate::broker::SecretHash;

/// Load generator failures.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
    /// Socket or file I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The broker closed a connection.
    #[error("the broker closed the connection")]
    Closed,
    /// The broker refused a CONNECT (return code).
    #[error("the broker refused the connection (code {0})")]
    Refused(u8),
    /// Something did not answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The broker sent something that is not MQTT 3.1.1.
    #[error("MQTT: {0}")]
    Protocol(&'static str),
    /// An HTTP request to the gateway or the peer failed.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A task failed.
    #[error("task: {0}")]
    Task(String),
}

/// Arguments of `anxin load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LoadCommand,
}

/// `anxin load` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LoadCommand {
    /// Register households, devices and a caseworker in the store of a stopped gateway.
    Populate(populate::PopulateArgs),
    /// Open-loop load, help-press latencies and reconciliation by sequence number.
    Run(Box<drive::RunArgs>),
    /// Devices on their own connections connecting, dropping and reconnecting at once.
    Storm(storm::StormArgs),
    /// Markdown tables of a results file written by `run --out` and `storm --out`.
    Summary {
        /// The JSON-lines file.
        file: std::path::PathBuf,
    },
    /// Print the hash of a multiplexer password for `[[broker.multiplexers]]`.
    SecretHash {
        /// The password (at least 16 characters).
        #[arg(env = "LOADGEN_SECRET")]
        secret: String,
    },
}

/// Runs `anxin load …`.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    match args.command {
        LoadCommand::Populate(a) => populate::run(a).await,
        LoadCommand::Run(a) => {
            let quiet = a.report.quiet;
            let r = drive::run(*a).await?;
            if !quiet {
                print_run(&r);
            }
            anyhow::ensure!(
                r.reconciled.events_lost == 0 || r.target == drive::Target::Peer,
                "{} events lost for good (after replays)",
                r.reconciled.events_lost
            );
            Ok(())
        }
        LoadCommand::Storm(a) => {
            let quiet = a.report.quiet;
            let r = storm::run(a).await?;
            if !quiet {
                println!("{}", serde_json::to_string_pretty(&r)?);
            }
            anyhow::ensure!(
                r.events_acked == r.events_issued,
                "{} events not acknowledged after the storm",
                r.events_issued - r.events_acked
            );
            Ok(())
        }
        LoadCommand::Summary { file } => {
            let text = std::fs::read_to_string(&file)?;
            print!("{}", report::summary(&text));
            Ok(())
        }
        LoadCommand::SecretHash { secret } => {
            anyhow::ensure!(secret.len() >= 16, "use at least 16 characters");
            println!("{}", SecretHash::of(secret.as_bytes()).to_hex());
            Ok(())
        }
    }
}

fn print_run(r: &drive::Report) {
    let c = &r.reconciled;
    println!(
        "{} ({:?}, {} households, {} devices over {} connections)",
        if r.label.is_empty() { "run" } else { &r.label },
        r.target,
        r.households,
        r.devices,
        r.connections
    );
    println!(
        "  offered {:.0}/s for {} s, sent {:.0}/s (generator behind ≤ {:.0} ms, stalled {:.1} s)",
        r.offered_rate, r.duration_s, r.sent_rate, r.generator_behind_ms, r.generator_stalled_s
    );
    println!(
        "  counted {:.0} msgs/s; drain {:.2} s{}; lossless: {}, sustained: {}",
        r.counted_rate,
        r.drain_s,
        if r.drained { "" } else { " (gave up)" },
        r.lossless,
        r.sustained
    );
    println!(
        "  events issued {}, first pass {}, replayed ok {}, lost {}; heartbeats {} sent, {} counted; rejected {}, duplicates {}",
        c.events_issued,
        c.events_first_pass,
        c.events_replayed_ok,
        c.events_lost,
        c.heartbeats_sent,
        c.heartbeats_counted,
        c.rejected,
        c.duplicates
    );
    println!(
        "  help → command  p50/p99/max {}",
        r.help_to_command.short()
    );
    println!("  help → SSE      p50/p99/max {}", r.help_to_sse.short());
    println!(
        "  help → webhook  p50/p99/max {}",
        r.help_to_webhook.short()
    );
    println!("  event → ack     p50/p99/max {}", r.event_to_ack.short());
    for (cpu, (_, per)) in r.cpu.iter().zip(r.cpu_us_per_msg.iter()) {
        println!(
            "  cpu {:>10}: {:.2} cores, {:.2} µs/msg, rss {:.0} MiB",
            cpu.name, cpu.cores, per, cpu.rss_mib
        );
    }
    println!("  loadavg {} → {}", r.loadavg.0, r.loadavg.1);
}
