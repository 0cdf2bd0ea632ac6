//! Logs and metrics.
//!
//! Metric names follow `anxin_<noun>_<verb>_total{reason=…}` with `reason` from a closed
//! enum, never a raw error string. Every reject and drop is counted.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ingest::RejectReason;

/// Installs the `tracing` subscriber on stderr (`RUST_LOG` filters; default `info`);
/// stdout is left to what a command prints for its user.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmqtt=warn,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Which uplink channel a message came on.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(missing_docs)]
pub enum ChannelLabel {
    Event,
    Heartbeat,
    Status,
}

/// Label set `{channel=…}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// The channel.
    pub channel: ChannelLabel,
}

/// Label set `{reason=…}` for rejects.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// Why the message was rejected.
    pub reason: RejectReason,
}

/// The gateway's metrics: ingest's own below; other modules register theirs with
/// [`Metrics::register`].
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Messages accepted and committed, by channel.
    pub ingest_accepted: Family<ChannelLabels, Counter>,
    /// Messages rejected, by reason.
    pub ingest_rejected: Family<RejectLabels, Counter>,
    /// Events received again (QoS 1 redelivery or device replay) and stored only once.
    pub ingest_duplicates: Counter,
    /// Event sequence numbers that a device dropped from a full outbox (seen as gaps that
    /// its `oldest` closed).
    pub ingest_device_dropped: Counter,
    /// Households that have sent at least one accepted message since start.
    pub ingest_households_active: Gauge,
    /// Messages per commit.
    pub ingest_batch_size: Histogram,
    /// Seconds per commit.
    pub ingest_commit_seconds: Histogram,
    /// 1 while the gateway's MQTT session is connected.
    pub mqtt_connected: Gauge,
    /// Reconnects of the gateway's MQTT session.
    pub mqtt_reconnects: Counter,
    /// Application-level acks sent to devices.
    pub ingest_acks_sent: Counter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let m = Metrics {
            ingest_accepted: Family::default(),
            ingest_rejected: Family::default(),
            ingest_duplicates: Counter::default(),
            ingest_device_dropped: Counter::default(),
            ingest_households_active: Gauge::default(),
            ingest_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            ingest_commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            mqtt_connected: Gauge::default(),
            mqtt_reconnects: Counter::default(),
            ingest_acks_sent: Counter::default(),
            registry: Mutex::new(Registry::default()),
        };
        registry.register(
            "anxin_ingest_accepted",
            "Messages accepted and committed",
            m.ingest_accepted.clone(),
        );
        registry.register(
            "anxin_ingest_rejected",
            "Messages rejected, by reason",
            m.ingest_rejected.clone(),
        );
        registry.register(
            "anxin_ingest_duplicates",
            "Duplicate events stored once",
            m.ingest_duplicates.clone(),
        );
        registry.register(
            "anxin_ingest_device_dropped",
            "Events dropped by full device outboxes",
            m.ingest_device_dropped.clone(),
        );
        registry.register(
            "anxin_ingest_households_active",
            "Households with an accepted message since start",
            m.ingest_households_active.clone(),
        );
        registry.register(
            "anxin_ingest_batch_size",
            "Messages per commit",
            m.ingest_batch_size.clone(),
        );
        registry.register(
            "anxin_ingest_commit_seconds",
            "Commit duration",
            m.ingest_commit_seconds.clone(),
        );
        registry.register(
            "anxin_mqtt_connected",
            "Gateway MQTT session connected",
            m.mqtt_connected.clone(),
        );
        registry.register(
            "anxin_mqtt_reconnects",
            "Gateway MQTT reconnects",
            m.mqtt_reconnects.clone(),
        );
        registry.register(
            "anxin_ingest_acks_sent",
            "Application-level acks sent",
            m.ingest_acks_sent.clone(),
        );
        Arc::new(Metrics {
            registry: Mutex::new(registry),
            ..m
        })
    }

    /// Registers a metric of another module (`name` without the `_total` suffix that
    /// counters get on exposition).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, metric);
        }
    }

    /// Registers a collector (metrics computed at scrape time, e.g. from atomics).
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        if let Ok(mut r) = self.registry.lock() {
            r.register_collector(collector);
        }
    }

    /// Counts a reject.
    pub fn reject(&self, reason: RejectReason) {
        self.ingest_rejected
            .get_or_create(&RejectLabels { reason })
            .inc();
    }

    /// Counts an accepted message.
    pub fn accept(&self, channel: ChannelLabel) {
        self.ingest_accepted
            .get_or_create(&ChannelLabels { channel })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        if let Ok(r) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }
}
