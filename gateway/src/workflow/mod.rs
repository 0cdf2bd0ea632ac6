//! The alert workflow: the committee's own practice as a service layer.
//!
//! | practice | file |
//! |---|---|
//! | 包保: districts → streets → committees, users, households, caseworker and backup | [`org`] |
//! | alert lifecycle: raised → notified → acknowledged → on the way → arrived → resolved | [`alerts`] |
//! | asking the elder first (check-in on the help button) before a silence alert | `check_in` |
//! | 分层分级: escalation policies, repeats, arrival re-alarm; one deadline queue | [`escalation`], [`timers`] |
//! | 即接即办: the append-only audit trail | [`audit`] |
//! | 一日三问: daily-contact ledger, morning list, visit tasks, coverage | [`contacts`], [`daily`], [`activity`] |
//! | 需求名单库: needs | [`needs`] |
//! | 台账: KPIs, CSV/XLSX export and import | [`kpi`], [`export`], [`import`], [`table`] |
//! | notifications (outbox, channels) | [`crate::notify`] |
//!
//! [`WorkflowHandle`] is the service layer that the HTTP API and the CLI call; every
//! method takes the acting [`Actor`] so that the audit trail knows who. Authorisation by
//! role and household is the API's job.

pub mod activity;
pub mod alerts;
pub mod audit;
mod check_in;
pub mod config;
pub mod contacts;
pub mod daily;
mod db;
pub mod escalation;
pub mod export;
pub mod import;
pub mod kpi;
pub mod needs;
pub mod org;
pub mod table;
mod text;
pub mod time;
pub mod timers;
pub mod types;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

pub use activity::ActivitySummary;
pub use alerts::{Alert, AlertFilter, SignalOutcome};
pub use config::{EscalationConfig, Policy, Step, Target, WorkflowConfig};
pub use contacts::{ContactRecorded, CoverageRow, NewContact, VisitTask};
pub use daily::{AlertBrief, MorningItem};
pub use export::{ExportFormat, ExportKind};
pub use import::{ImportReport, RowIssue};
pub use kpi::{GroupBy, KpiRow};
pub use needs::{Need, NeedFilter, NewNeed};
pub use org::{EmergencyContact, Household, NewUser, Scope, User};
pub use time::LocalTime;
pub use types::*;

use crate::app::Services;
use crate::clock::SharedClock;
use crate::detect::{DetectHandle, HouseholdMode};
use crate::notify::{DownlinkCommands, Notifiers, Outbox};
use crate::signal::Signal;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// How many alert changes [`WorkflowHandle::alert_changes`] keeps for a slow receiver.
pub const ALERT_CHANGES_CAPACITY: usize = 1024;

/// What can go wrong in the workflow.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// No such alert.
    #[error("unknown alert {0}")]
    UnknownAlert(String),
    /// No such household.
    #[error("unknown household {0}")]
    UnknownHousehold(String),
    /// No such (active) user.
    #[error("unknown user {0}")]
    UnknownUser(String),
    /// No such need.
    #[error("unknown need {0}")]
    UnknownNeed(String),
    /// No such visit task.
    #[error("unknown visit task {0}")]
    UnknownTask(String),
    /// An alert is closed only with an outcome: a category and a note.
    #[error("an outcome (category and a note) is required to resolve an alert")]
    OutcomeRequired,
    /// The actor may not do this (e.g. a device acknowledging an alert).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// The alert is not in a state that allows this.
    #[error("alert {id} is {state}: cannot {action}")]
    InvalidTransition {
        /// The alert.
        id: String,
        /// Its state.
        state: AlertState,
        /// What was asked.
        action: &'static str,
    },
    /// Someone else acknowledged it first.
    #[error("alert already acknowledged by {by}")]
    AlreadyAcknowledged {
        /// Who did.
        by: String,
    },
    /// A field is missing or malformed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An import file had bad rows; nothing was imported.
    #[error("import rejected: {} bad row(s); nothing was imported", .0.errors.len())]
    ImportRejected(Box<ImportReport>),
    /// A file could not be read or written.
    #[error("file: {0}")]
    File(String),
    /// The configuration is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// Detection refused a household mode.
    #[error("household mode: {0}")]
    Mode(String),
    /// Another writer changed the same record; the change was not made.
    #[error("concurrent update of {0}; try again")]
    Conflict(String),
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for WorkflowError {
    fn from(e: sqlx::Error) -> Self {
        WorkflowError::Store(StoreError::Sql(e))
    }
}

/// Sets household modes (detection owns them); a trait so that the workflow runs
/// without detection in tests.
#[async_trait]
pub trait HouseholdModes: Send + Sync + 'static {
    /// Sets `household`'s mode until `until_ms`; `set_by` names who (`user:…`).
    async fn set_mode(
        &self,
        household: &str,
        mode: HouseholdMode,
        until_ms: Option<i64>,
        set_by: &str,
    ) -> Result<(), String>;
}

#[async_trait]
impl HouseholdModes for DetectHandle {
    async fn set_mode(
        &self,
        household: &str,
        mode: HouseholdMode,
        until_ms: Option<i64>,
        set_by: &str,
    ) -> Result<(), String> {
        DetectHandle::set_mode_by(self, household, mode, until_ms, Some(set_by))
            .await
            .map_err(|e| e.to_string())
    }
}

/// Household modes that are only recorded (tests, offline use).
#[derive(Default)]
pub struct RecordedModes(pub Mutex<Vec<(String, HouseholdMode, Option<i64>)>>);

#[async_trait]
impl HouseholdModes for RecordedModes {
    async fn set_mode(
        &self,
        household: &str,
        mode: HouseholdMode,
        until_ms: Option<i64>,
        _set_by: &str,
    ) -> Result<(), String> {
        if let Ok(mut v) = self.0.lock() {
            v.push((household.to_string(), mode, until_ms));
        }
        Ok(())
    }
}

/// Everything the workflow needs (what [`start`] takes from [`Services`]).
pub struct WorkflowDeps {
    /// The store.
    pub store: Store,
    /// The clock.
    pub clock: SharedClock,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// `[workflow]`.
    pub config: WorkflowConfig,
    /// `general.timezone`.
    pub timezone: String,
    /// Notifiers by channel (including the device channel).
    pub notifiers: Notifiers,
    /// Household modes (detection).
    pub modes: Arc<dyn HouseholdModes>,
    /// How long a check-in is asked on the help button, in seconds (`[detect]
    /// check_in_s`).
    pub check_in_s: u32,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

pub(crate) struct WorkflowMetrics {
    raised: Family<KindLabels, Counter>,
    closed: Family<ReasonLabels, Counter>,
    escalations: Family<TargetLabels, Counter>,
    signals_ignored: Family<ReasonLabels, Counter>,
    signals_failed: Counter,
    unroutable: Family<TargetLabels, Counter>,
    ack_seconds: Histogram,
    check_ins: Family<OutcomeLabels, Counter>,
}

impl WorkflowMetrics {
    fn new(m: &Metrics) -> Self {
        let w = WorkflowMetrics {
            raised: Family::default(),
            closed: Family::default(),
            escalations: Family::default(),
            signals_ignored: Family::default(),
            signals_failed: Counter::default(),
            unroutable: Family::default(),
            ack_seconds: Histogram::new(exponential_buckets(5.0, 2.0, 12)),
            check_ins: Family::default(),
        };
        m.register(
            "anxin_alerts_raised",
            "Alerts opened, by kind",
            w.raised.clone(),
        );
        m.register(
            "anxin_alerts_closed",
            "Alerts closed, by how (resolved, cancelled, cleared)",
            w.closed.clone(),
        );
        m.register(
            "anxin_alert_escalations",
            "Escalation steps fired, by target",
            w.escalations.clone(),
        );
        m.register(
            "anxin_workflow_signals_ignored",
            "Signals that changed nothing, by reason",
            w.signals_ignored.clone(),
        );
        m.register(
            "anxin_workflow_signals_failed",
            "Signals that could not be stored after retries",
            w.signals_failed.clone(),
        );
        m.register(
            "anxin_alert_unroutable",
            "Escalation steps that found nobody to notify, by target",
            w.unroutable.clone(),
        );
        m.register(
            "anxin_check_ins",
            "Check-ins of the elder on the help button, by outcome (asked, answered, unanswered)",
            w.check_ins.clone(),
        );
        m.register(
            "anxin_alert_ack_seconds",
            "Seconds from raise to acknowledgement",
            w.ack_seconds.clone(),
        );
        w
    }
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    pub(crate) cfg: WorkflowConfig,
    pub(crate) local: LocalTime,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) modes: Arc<dyn HouseholdModes>,
    pub(crate) metrics: WorkflowMetrics,
    pub(crate) check_in_s: u32,
    pub(crate) timers: Mutex<Option<mpsc::UnboundedSender<timers::TimerCmd>>>,
    /// Every committed change of an alert (for the API's live stream).
    pub(crate) alert_changes: tokio::sync::broadcast::Sender<Alert>,
}

/// The workflow's service layer (cheap to clone).
#[derive(Clone)]
pub struct WorkflowHandle {
    pub(crate) inner: Arc<Inner>,
}

impl WorkflowHandle {
    /// Opens the workflow over `deps` without starting any task (the CLI, tests); see
    /// [`WorkflowHandle::spawn`].
    pub fn open(deps: WorkflowDeps) -> Result<WorkflowHandle, WorkflowError> {
        deps.config.validate()?;
        let local = LocalTime::new(&deps.timezone)?;
        let hook = Arc::new(alerts::NotifiedHook {
            store: deps.store.clone(),
        });
        let outbox = Outbox::new(
            deps.store.clone(),
            deps.clock.clone(),
            deps.config.notify.clone(),
            deps.notifiers,
            &deps.metrics,
        )
        .with_hook(hook);
        Ok(WorkflowHandle {
            inner: Arc::new(Inner {
                store: deps.store,
                clock: deps.clock,
                cfg: deps.config,
                local,
                outbox: Arc::new(outbox),
                modes: deps.modes,
                metrics: WorkflowMetrics::new(&deps.metrics),
                check_in_s: deps.check_in_s,
                timers: Mutex::new(None),
                alert_changes: tokio::sync::broadcast::channel(ALERT_CHANGES_CAPACITY).0,
            }),
        })
    }

    /// Alerts as they change: each one is sent after its change was committed (raise,
    /// repeat, upgrade, acknowledgement, progress, close). A receiver that falls more
    /// than [`ALERT_CHANGES_CAPACITY`] behind is told it lagged and should re-read.
    pub fn alert_changes(&self) -> tokio::sync::broadcast::Receiver<Alert> {
        self.inner.alert_changes.subscribe()
    }

    /// The configuration.
    pub fn config(&self) -> &WorkflowConfig {
        &self.inner.cfg
    }

    /// Local time (the configured time zone).
    pub fn local_time(&self) -> &LocalTime {
        &self.inner.local
    }

    /// The notification outbox.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.inner.outbox
    }

    /// Now, on the workflow's clock.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Starts the background tasks: the deadline queue (escalations, repeats, arrival
    /// checks, the daily lists), the outbox's sender lanes, and the consumer of
    /// detection's signals.
    pub fn spawn(
        &self,
        tasks: &TaskTracker,
        cancel: CancellationToken,
        signals: Option<(mpsc::Receiver<Signal>, Arc<crate::signal::SignalLedger>)>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut t) = self.inner.timers.lock() {
            *t = Some(tx);
        }
        tasks.spawn(timers::run(self.clone(), rx, cancel.clone()));
        self.inner.outbox.spawn(tasks, cancel.clone());
        if let Some((signals, ledger)) = signals {
            tasks.spawn(consume_signals(self.clone(), signals, ledger, cancel));
        }
    }

    /// Sets a household's mode (away with family, in hospital, installation test) until
    /// `until_ms`; detection silences elder alerts meanwhile.
    pub async fn set_household_mode(
        &self,
        actor: &Actor,
        household_id: &HouseholdId,
        mode: HouseholdMode,
        until_ms: Option<i64>,
    ) -> Result<(), WorkflowError> {
        self.household(household_id).await?;
        self.inner
            .modes
            .set_mode(household_id.as_str(), mode, until_ms, &actor.audit_name())
            .await
            .map_err(WorkflowError::Mode)?;
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        audit::record(
            &mut tx,
            now,
            actor,
            "household.mode",
            "household",
            household_id.as_str(),
            Some(household_id.as_str()),
            serde_json::json!({ "mode": mode, "until_ms": until_ms }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Applies detection's signals in order; a failing store is retried with backoff so
/// that a short outage delays an alert but does not lose it.
async fn consume_signals(
    wf: WorkflowHandle,
    mut signals: mpsc::Receiver<Signal>,
    ledger: Arc<crate::signal::SignalLedger>,
    cancel: CancellationToken,
) {
    loop {
        let s = tokio::select! {
            _ = cancel.cancelled() => break,
            s = signals.recv() => match s { Some(s) => s, None => break },
        };
        let mut delay = std::time::Duration::from_millis(50);
        let mut attempt = 0u32;
        loop {
            match wf.apply_signal(&s).await {
                Ok(_) => break,
                // The store failing is not the signal's fault: retry until it works
                // (ingest waits for the same store).
                Err(WorkflowError::Store(e)) => {
                    attempt += 1;
                    warn!(error = %e, attempt, kind = s.kind.as_str(), household_id = ?s.household_id, "signal not stored; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
                Err(e) => {
                    wf.inner.metrics.signals_failed.inc();
                    error!(error = %e, kind = s.kind.as_str(), household_id = ?s.household_id, "signal lost");
                    break;
                }
            }
        }
        ledger.done();
    }
}

/// Starts the workflow: consumes detection's signals, runs the deadline queue and the
/// notification lanes.
pub async fn start(
    services: &Services,
    signals: mpsc::Receiver<Signal>,
    detect: DetectHandle,
) -> anyhow::Result<WorkflowHandle> {
    let devices = Arc::new(DownlinkCommands::new(
        services.downlink.clone(),
        services.mqtt_connected.clone(),
    ));
    let cfg = services.config.workflow.clone();
    let notifiers = cfg.notify.notifiers(devices);
    let wf = WorkflowHandle::open(WorkflowDeps {
        store: services.store.clone(),
        clock: services.clock.clone(),
        metrics: services.metrics.clone(),
        config: cfg,
        timezone: services.config.general.timezone.clone(),
        notifiers,
        modes: Arc::new(detect),
        check_in_s: services.config.detect.check_in_s,
    })?;
    wf.spawn(
        &services.tasks,
        services.cancel.clone(),
        Some((signals, services.signals.clone())),
    );
    Ok(wf)
}
