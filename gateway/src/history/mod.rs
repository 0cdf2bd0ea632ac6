//! Time-series history: the embedded history and the InfluxDB v2 sink. (Filled in by the
//! history issue.)

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::app::Services;
use crate::ingest::Observation;

/// `[history]` configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {}

/// Handle to the running history writers (and the review queries).
#[derive(Clone)]
pub struct HistoryHandle {}

/// Starts history: consumes observations.
pub async fn start(
    services: &Services,
    mut observations: mpsc::Receiver<Observation>,
) -> anyhow::Result<HistoryHandle> {
    let cancel = services.cancel.clone();
    services.tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                o = observations.recv() => if o.is_none() { break },
            }
        }
    });
    Ok(HistoryHandle {})
}
