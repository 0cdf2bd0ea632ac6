//! Detection: per-household state fed by ingest's observations, deadline timers, and
//! [`Signal`](crate::signal::Signal)s to the workflow. (Being filled in by the detection
//! issue; the API below is the contract the workflow and the HTTP API use.)

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::app::Services;
use crate::ingest::Observation;
use crate::signal::Signal;

/// `[detect]` configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {}

/// A household's mode, set by a caseworker or a technician; it ends by itself at its
/// end time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HouseholdMode {
    /// Watched as usual.
    Normal,
    /// Away (with family, travelling): elder alerts silenced.
    Away,
    /// In hospital: elder alerts silenced.
    Hospital,
    /// A technician's installation test: no caseworker alert, each device checked off.
    InstallTest,
}

/// Handle to the running detector.
#[derive(Clone)]
pub struct DetectHandle {}

impl DetectHandle {
    /// Sets `household`'s mode until `until_ms` (None: until changed). Persisted.
    pub async fn set_mode(
        &self,
        _household: &str,
        _mode: HouseholdMode,
        _until_ms: Option<i64>,
    ) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Starts detection.
pub async fn start(
    services: &Services,
    mut observations: mpsc::Receiver<Observation>,
    _signals: mpsc::Sender<Signal>,
) -> anyhow::Result<DetectHandle> {
    let cancel = services.cancel.clone();
    services.tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                o = observations.recv() => if o.is_none() { break },
            }
        }
    });
    Ok(DetectHandle {})
}
