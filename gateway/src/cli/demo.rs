//! `anxin demo`: everything embedded, with simulated homes.

/// Arguments of `anxin demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

/// Runs the demo until SIGINT.
pub async fn run(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("the demo arrives with the simulated homes")
}
