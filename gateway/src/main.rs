//! The `anxin` binary: parses the command line and hands over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    anxin_gateway::telemetry::init_logging();
    anxin_gateway::cli::main(anxin_gateway::cli::Cli::parse()).await
}
