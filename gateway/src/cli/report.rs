//! `anxin report KIND [--from DATE] [--to DATE] [--scope SCOPE] [--group G]
//! [--format csv|xlsx] [--output FILE]`: the ledgers (台账) and figures the committee
//! reports upward — contacts, alerts with outcomes, needs, KPIs, coverage — and the
//! roster in the import's format.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::DataDirArg;
use crate::workflow::export::ExportRequest;
use crate::workflow::time::parse_date;
use crate::workflow::{Actor, ExportFormat, ExportKind, GroupBy, Scope};

/// Arguments of `anxin report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// contacts | alerts | needs | kpis | coverage | roster | users | committees
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// First local day (YYYY-MM-DD; default today).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last local day, inclusive (default: --from).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// all | district:ID | street:ID | committee:ID | caseworker:ID
    #[arg(long, default_value = "all", value_name = "SCOPE")]
    pub scope: String,
    /// Grouping of kpis and coverage: caseworker | committee | street | all
    #[arg(long, default_value = "committee", value_name = "GROUP")]
    pub group: String,
    /// csv | xlsx (default: from --output's extension, else csv).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Output file (default: standard output, CSV only).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The user asking, for the audit trail (default: the system).
    #[arg(long = "as", value_name = "USER_ID")]
    pub actor: Option<String>,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Runs `anxin report`.
pub async fn run(a: ReportArgs) -> anyhow::Result<()> {
    let kind = ExportKind::parse(&a.kind).with_context(|| {
        format!(
            "unknown report {:?} (contacts, alerts, needs, kpis, coverage, roster, users, committees)",
            a.kind
        )
    })?;
    let format = match (&a.format, &a.output) {
        (Some(f), _) => ExportFormat::parse(f).with_context(|| format!("unknown format {f:?}"))?,
        (None, Some(p))
            if p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("xlsx")) =>
        {
            ExportFormat::Xlsx
        }
        _ => ExportFormat::Csv,
    };
    anyhow::ensure!(
        format == ExportFormat::Csv || a.output.is_some(),
        "XLSX needs --output FILE"
    );
    let group = GroupBy::parse(&a.group).with_context(|| format!("unknown group {:?}", a.group))?;
    let scope = Scope::parse(&a.scope)?;
    let (wf, store) = super::org::offline_workflow(a.config.as_deref(), &a.data).await?;
    let today = wf.local_time().date(wf.now_ms());
    let from = a
        .from
        .as_deref()
        .map(parse_date)
        .transpose()?
        .unwrap_or(today);
    let to = a.to.as_deref().map(parse_date).transpose()?.unwrap_or(from);
    let actor = a.actor.map(Actor::user).unwrap_or(Actor::System);
    let bytes = wf
        .export(
            &actor,
            &ExportRequest {
                kind,
                format,
                scope,
                from,
                to,
                group,
            },
        )
        .await;
    store.close().await;
    let bytes = bytes?;
    match &a.output {
        Some(p) => {
            std::fs::write(p, &bytes).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("wrote {} ({} bytes)", p.display(), bytes.len());
        }
        None => {
            // No byte-order mark on a terminal or pipe.
            let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&bytes);
            std::io::stdout().write_all(body)?;
        }
    }
    Ok(())
}
