//! `anxin demo`: everything embedded — broker, store, gateway, dashboard — with simulated
//! homes living accelerated days, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::sim::{self, Scenario, SimClock, SimConfig};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::app::{Gateway, StartOptions};
use crate::broker::{AuthMode, BrokerConfig};
use crate::config::Config;

/// Arguments of `anxin demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of simulated homes.
    #[arg(long, default_value_t = 50)]
    pub homes: usize,
    /// Address of the dashboard and API.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub http: SocketAddr,
    /// Data directory (default: a fresh temporary directory, removed at exit).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How many times faster than real time the homes live (1440: a day per minute).
    #[arg(long, default_value_t = 1440.0)]
    pub speed: f64,
    /// Seed of the population and its days.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scenario to inject, e.g. `collapse@h0003@+30m`, `help@h0001@2026-11-25T10:30`,
    /// `nowake@h0002@2026-11-26`, `offline@h0004-door@+1h+2h` (repeatable).
    #[arg(long = "inject", value_name = "SCENARIO")]
    pub inject: Vec<Scenario>,
    /// Heartbeat interval of the simulated devices, in virtual seconds.
    #[arg(long, default_value_t = 300)]
    pub heartbeat_s: u32,
}

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.homes > 0, "--homes must be at least 1");
    anyhow::ensure!(
        args.speed.is_finite() && args.speed > 0.0,
        "--speed must be positive"
    );
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("anxin-demo-")
                .tempdir()
                .context("creating a temporary data directory")?,
        ),
    };
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()))
        .unwrap_or_default();

    let mut config = Config::default();
    config.general.data_dir = data_dir.clone();
    config.broker = BrokerConfig::loopback();
    // A port known before the start, so that provisioning blobs written in the demo
    // (dashboard, technician pages) name the broker the simulated devices use.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .context("finding a free loopback port for the demo broker")?;
    config.broker.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    config.provision.broker_host = "127.0.0.1".into();
    config.provision.broker_port = port;
    config.http.listen = args.http;

    let clock = SimClock::starting_now(args.speed);
    let gw = Gateway::start(
        config,
        Arc::new(clock),
        StartOptions {
            broker_auth: Some(AuthMode::Open),
        },
    )
    .await?;

    let population = sim::population(args.homes, args.seed);
    crate::demo::register_population(&gw.store, &population, clock.now_ms() as i64)
        .await
        .context("registering the simulated homes")?;
    gw.registry.reload(&gw.store).await?;
    // Demo users for the dashboard: one fresh password, printed below (demo only).
    let password = format!("anxin-{}", &crate::app::random_token()[..8]);
    let users = crate::demo::register_roster(&gw.workflow, &gw.store, &population, &password)
        .await
        .context("registering the demo roster")?;
    for s in sim::unmatched_scenarios(&population, &args.inject) {
        tracing::warn!(scenario = ?s, "scenario names no simulated home or device");
    }

    let mut sim_cfg = SimConfig::new("127.0.0.1", gw.mqtt_addr.port(), clock);
    sim_cfg.seed = args.seed;
    sim_cfg.heartbeat_s = args.heartbeat_s;
    let sim_stop = CancellationToken::new();
    let devices = population.devices().count();
    let sim_task = tokio::spawn(sim::run(
        sim_cfg,
        population,
        args.inject.clone(),
        sim_stop.clone(),
    ));

    println!(
        "Anxin demo: {} simulated homes ({devices} devices), {}× real time",
        args.homes, args.speed
    );
    println!("  dashboard: http://{}/", gw.http_addr);
    println!("  metrics:   http://{}/metrics", gw.http_addr);
    println!(
        "  MQTT:      {} (embedded broker, demo mode: no passwords)",
        gw.mqtt_addr
    );
    println!(
        "  data:      {}{}",
        data_dir.display(),
        if temp.is_some() { " (temporary)" } else { "" }
    );
    println!("Demo users (fictional; password for all: {password}):");
    for u in &users {
        println!(
            "  {:<12} {:<18} {}  {}",
            u.id, u.role, u.name, u.looks_after
        );
    }
    println!("Press Ctrl-C to stop.");

    super::shutdown_signal().await;
    info!("stopping the demo");
    sim_stop.cancel();
    match tokio::time::timeout(Duration::from_millis(2500), sim_task).await {
        Ok(Ok(report)) => info!(
            events = report.sent.total(),
            heartbeats = report.heartbeats,
            unacked = report.unacked_at_end,
            "simulated homes stopped"
        ),
        _ => info!("simulated homes did not report in time"),
    }
    gw.shutdown().await;
    drop(temp);
    Ok(())
}
