//! Where history goes besides the embedded store: a time-series server behind the
//! [`HistorySink`] trait. `influxdb.rs` writes through the influxdb2 crate (InfluxDB v2
//! write API, line protocol, millisecond precision); `mock.rs` is the test double. The
//! spool (`../spool.rs`) owns batching, retries, ordering and the durable backlog; a sink
//! only writes one batch and says how it went.

mod influxdb;
mod mock;

use std::future::Future;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelValue;

pub use influxdb::InfluxSink;
pub use mock::MockSink;

/// One line of line protocol: a measurement with its tags, one or more numeric fields,
/// and a millisecond timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkPoint {
    /// Measurement.
    pub measurement: String,
    /// Tags, sorted by key, none empty.
    pub tags: Vec<(&'static str, String)>,
    /// Fields (numeric only).
    pub fields: Vec<(String, f64)>,
    /// Time (ms, UTC).
    pub at_ms: i64,
}

impl SinkPoint {
    /// The series of `field` as VictoriaMetrics names it: `measurement_field{k="v",…}`
    /// (tags sorted). Used by tests and diagnostics.
    pub fn series(&self, field: &str) -> String {
        let tags: Vec<String> = self
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}_{}{{{}}}", self.measurement, field, tags.join(","))
    }
}

/// Why a write failed: a closed set, the `reason` label of
/// `anxin_history_sink_errors_total`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum SinkErrorReason {
    /// Could not connect, or the connection broke.
    unreachable,
    /// No answer in time.
    timeout,
    /// The server refused the data itself (HTTP 400, 413, 422): retrying the same batch
    /// cannot help.
    rejected,
    /// Token refused (HTTP 401, 403).
    unauthorized,
    /// Organisation or bucket unknown (HTTP 404).
    not_found,
    /// The server failed or asked to slow down (HTTP 5xx, 429).
    server_error,
    /// Anything else (unexpected status, a client-side failure).
    other,
}

impl SinkErrorReason {
    /// The label text.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkErrorReason::unreachable => "unreachable",
            SinkErrorReason::timeout => "timeout",
            SinkErrorReason::rejected => "rejected",
            SinkErrorReason::unauthorized => "unauthorized",
            SinkErrorReason::not_found => "not_found",
            SinkErrorReason::server_error => "server_error",
            SinkErrorReason::other => "other",
        }
    }
}

/// A failed write.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Could not connect, or the connection broke.
    #[error("time-series server unreachable: {0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("write timed out after {0:?}")]
    Timeout(Duration),
    /// The server refused the data (it will refuse it again).
    #[error("server rejected the points (HTTP {status}): {text}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's explanation.
        text: String,
    },
    /// The token was refused.
    #[error("token refused (HTTP {status})")]
    Unauthorized {
        /// HTTP status.
        status: u16,
    },
    /// Organisation or bucket unknown.
    #[error("organisation or bucket not found: {0}")]
    NotFound(String),
    /// The server failed.
    #[error("server error (HTTP {status}): {text}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's explanation.
        text: String,
    },
    /// The sink's configuration is unusable (checked at start).
    #[error("sink configuration: {0}")]
    Config(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl SinkError {
    /// The metric label.
    pub fn reason(&self) -> SinkErrorReason {
        match self {
            SinkError::Unreachable(_) => SinkErrorReason::unreachable,
            SinkError::Timeout(_) => SinkErrorReason::timeout,
            SinkError::Rejected { .. } => SinkErrorReason::rejected,
            SinkError::Unauthorized { .. } => SinkErrorReason::unauthorized,
            SinkError::NotFound(_) => SinkErrorReason::not_found,
            SinkError::Server { .. } => SinkErrorReason::server_error,
            SinkError::Config(_) | SinkError::Other(_) => SinkErrorReason::other,
        }
    }

    /// Maps an HTTP status and body to an error.
    pub fn from_status(status: u16, text: String) -> SinkError {
        match status {
            400 | 413 | 422 => SinkError::Rejected { status, text },
            401 | 403 => SinkError::Unauthorized { status },
            404 => SinkError::NotFound(text),
            429 | 500..=599 => SinkError::Server { status, text },
            _ => SinkError::Other(format!("unexpected HTTP {status}: {text}")),
        }
    }
}

/// A time-series server that accepts batches of points. Writes must be idempotent by
/// series and timestamp (InfluxDB overwrites a point with the same series and time), so
/// the spool may send a batch again after a failure whose outcome it cannot know.
pub trait HistorySink: Send + Sync + 'static {
    /// Label of the sink in metrics (`sink="influxdb"`).
    fn name(&self) -> &'static str;

    /// Writes one batch, in order. `Ok` only once the server has accepted all of it.
    fn write(&self, points: &[SinkPoint]) -> impl Future<Output = Result<(), SinkError>> + Send;
}
