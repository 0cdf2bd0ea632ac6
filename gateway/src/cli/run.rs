//! `anxin run [--config FILE]`: the gateway alone.

use std::path::PathBuf;

use anyhow::Context;
use tracing::info;

use super::DataDirArg;
use crate::app::{Gateway, StartOptions};
use crate::config::Config;

/// Arguments of `anxin run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML); without it, defaults and `ANXIN_*` variables apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    data: DataDirArg,
}

/// Runs until SIGINT/SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref()).context("loading configuration")?;
    if let Some(d) = args.data.data_dir {
        config.general.data_dir = d;
    }
    let clock = config.clock.build();
    let gw = Gateway::start(config, clock, StartOptions::default()).await?;
    println!(
        "Anxin gateway: http://{}/  (MQTT on {})",
        gw.http_addr, gw.mqtt_addr
    );
    super::shutdown_signal().await;
    info!("shutting down");
    gw.shutdown().await;
    Ok(())
}
