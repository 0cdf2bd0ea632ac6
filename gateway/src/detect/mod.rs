//! Detection: per-household state fed by ingest's observations, deadline timers, and
//! [`Signal`](crate::signal::Signal)s to the workflow. (Filled in by the detection issue.)

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::app::Services;
use crate::ingest::Observation;
use crate::signal::Signal;

/// `[detect]` configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {}

/// Handle to the running detector.
#[derive(Clone)]
pub struct DetectHandle {}

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
