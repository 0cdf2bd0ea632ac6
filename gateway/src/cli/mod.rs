//! The `anxin` command line: one file per subcommand.

mod demo;
mod device;
mod eval;
mod load;
mod org;
mod replay;
mod report;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Anxin (安心): watching over elders who live alone.
#[derive(Debug, Parser)]
#[command(name = "anxin", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything embedded (broker, store, gateway, dashboard) with simulated homes.
    Demo(demo::DemoArgs),
    /// Run the gateway alone.
    Run(run::RunArgs),
    /// Replay a recorded event log through the detector and print the alerts.
    Replay(replay::ReplayArgs),
    /// Measure detection on the Ordóñez homes (false alerts, detection delay).
    Eval(eval::EvalArgs),
    /// Technicians: register devices, credentials, blobs, installation tests, health.
    Device(device::DeviceArgs),
    /// The organisation: import rosters of committees, caseworkers and households.
    Org(org::OrgArgs),
    /// Export ledgers and figures (contacts, alerts, needs, KPIs, coverage, roster).
    Report(report::ReportArgs),
    /// Load generator for benchmarks: populate, drive a broker, reconnect storms.
    Load(load::LoadArgs),
}

/// Options shared by every command that touches the store.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArg {
    /// Data directory (the embedded store lives here); overrides `general.data_dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs the parsed command line.
pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(a) => demo::run(a).await,
        Command::Run(a) => run::run(a).await,
        Command::Replay(a) => replay::run_replay(a),
        Command::Eval(a) => eval::run_eval(a),
        Command::Device(a) => device::run(a).await,
        Command::Org(a) => org::run(a).await,
        Command::Report(a) => report::run(a).await,
        // Boxed: the load generator's future is large, and would grow every caller's.
        Command::Load(a) => Box::pin(load::run(a)).await,
    }
}

/// Resolves when the process gets SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
