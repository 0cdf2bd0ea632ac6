//! The alert workflow: 包保 assignment, acknowledgement and escalation, the closed loop,
//! the daily-contact ledger, needs, notifications and reports. (Filled in by the workflow
//! issue.)

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::app::Services;
use crate::detect::DetectHandle;
use crate::signal::Signal;

/// `[workflow]` configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {}

/// Handle to the running workflow (the service layer the API and CLI call).
#[derive(Clone)]
pub struct WorkflowHandle {}

/// Starts the workflow: consumes detection's signals.
pub async fn start(
    services: &Services,
    mut signals: mpsc::Receiver<Signal>,
    _detect: DetectHandle,
) -> anyhow::Result<WorkflowHandle> {
    let cancel = services.cancel.clone();
    services.tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                s = signals.recv() => if s.is_none() { break },
            }
        }
    });
    Ok(WorkflowHandle {})
}
