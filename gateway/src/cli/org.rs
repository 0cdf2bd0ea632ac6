//! `anxin org import [--data-dir DIR] [--config FILE] [--dry-run] FILE...`: imports
//! rosters of committees, users and households with their 包保 assignment from CSV or
//! XLSX. Every bad row is reported with its row number; if any row is bad nothing is
//! imported and the command fails.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::DataDirArg;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::workflow::{Actor, RecordedModes, WorkflowDeps, WorkflowError, WorkflowHandle};

/// Arguments of `anxin org`.
#[derive(Debug, clap::Args)]
pub struct OrgArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OrgCommand,
}

/// `anxin org` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum OrgCommand {
    /// Import committees, users (caseworkers…) and households with their caseworker and
    /// backup from CSV or XLSX files (one transaction; nothing is imported if any row is
    /// bad).
    Import(ImportArgs),
}

/// Arguments of `anxin org import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Roster files (.csv or .xlsx), imported together.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Check only; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The user doing the import, for the audit trail (default: the system).
    #[arg(long = "as", value_name = "USER_ID")]
    pub actor: Option<String>,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Opens the store and the workflow's service layer without starting the gateway.
pub(super) async fn offline_workflow(
    config: Option<&std::path::Path>,
    data: &DataDirArg,
) -> anyhow::Result<(WorkflowHandle, Store)> {
    let mut config = Config::load(config).context("loading configuration")?;
    if let Some(d) = &data.data_dir {
        config.general.data_dir = d.clone();
    }
    std::fs::create_dir_all(&config.general.data_dir).with_context(|| {
        format!(
            "creating data directory {}",
            config.general.data_dir.display()
        )
    })?;
    let store = Store::open(&config.store_url())
        .await
        .context("opening the store")?;
    let wf = WorkflowHandle::open(WorkflowDeps {
        store: store.clone(),
        clock: Arc::new(SystemClock),
        metrics: Metrics::new(),
        config: config.workflow.clone(),
        timezone: config.general.timezone.clone(),
        notifiers: HashMap::new(),
        modes: Arc::new(RecordedModes::default()),
        check_in_s: config.detect.check_in_s,
    })?;
    Ok((wf, store))
}

/// Runs `anxin org`.
pub async fn run(args: OrgArgs) -> anyhow::Result<()> {
    match args.command {
        OrgCommand::Import(a) => import(a).await,
    }
}

async fn import(a: ImportArgs) -> anyhow::Result<()> {
    let (wf, store) = offline_workflow(a.config.as_deref(), &a.data).await?;
    let actor = a.actor.map(Actor::user).unwrap_or(Actor::System);
    let mut files = vec![];
    for f in &a.files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        files.push((f.display().to_string(), bytes));
    }
    let result = wf.import_org(&actor, &files, a.dry_run).await;
    store.close().await;
    match result {
        Ok(r) => {
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{} {} committees ({} streets, {} districts), {} users, {} households, {} assignments, {} emergency contacts",
                if r.dry_run { "Checked:" } else { "Imported:" },
                r.committees,
                r.streets,
                r.districts,
                r.users,
                r.households,
                r.assignments,
                r.emergency_contacts
            );
            Ok(())
        }
        Err(WorkflowError::ImportRejected(r)) => {
            for e in &r.errors {
                eprintln!("error: {e}");
            }
            anyhow::bail!("{} bad row(s); nothing was imported", r.errors.len())
        }
        Err(e) => Err(e.into()),
    }
}
