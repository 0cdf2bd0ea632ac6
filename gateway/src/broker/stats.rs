//! Broker counters for telemetry, and rate-limited logging of denials.
//!
//! Every denial is counted; logs are rate-limited (a misbehaving device retrying in a
//! loop must not flood the log), counting never is. The gateway's telemetry exports:
//! - `anxin_broker_denied_total{reason}` from [`BrokerStats::denied`];
//! - `anxin_broker_dropped_total{reason}` from [`BrokerStats::dropped`] (accepted messages
//!   the broker could not deliver: a subscriber's queue was full, a session ended);
//! - `anxin_broker_connections_total` from [`BrokerStats::connections`];
//! - `anxin_broker_connected` (gauge) from [`BrokerStats::connected`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why the broker refused something: the closed `reason` label of
/// `anxin_broker_denied_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// CONNECT refused: no credentials for this client.
    UnknownClient,
    /// CONNECT refused: the client id is not a device id.
    BadClientId,
    /// CONNECT refused: missing or wrong password.
    BadPassword,
    /// CONNECT refused: revoked credentials.
    Revoked,
    /// CONNECT refused: username differs from client id.
    ClientIdMismatch,
    /// CONNECT refused: last will on a topic the client may not publish to.
    WillDenied,
    /// PUBLISH dropped: topic not allowed.
    PublishDenied,
    /// SUBSCRIBE refused: filter not allowed.
    SubscribeDenied,
    /// CONNECT refused unchecked: too many failed attempts queued for this client id and
    /// address (the login throttle).
    Throttled,
}

impl DenyReason {
    /// Every reason, in label order.
    pub const ALL: [DenyReason; 9] = [
        DenyReason::UnknownClient,
        DenyReason::BadClientId,
        DenyReason::BadPassword,
        DenyReason::Revoked,
        DenyReason::ClientIdMismatch,
        DenyReason::WillDenied,
        DenyReason::PublishDenied,
        DenyReason::SubscribeDenied,
        DenyReason::Throttled,
    ];

    /// The metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyReason::UnknownClient => "unknown_client",
            DenyReason::BadClientId => "bad_client_id",
            DenyReason::BadPassword => "bad_password",
            DenyReason::Revoked => "revoked",
            DenyReason::ClientIdMismatch => "client_id_mismatch",
            DenyReason::WillDenied => "will_denied",
            DenyReason::PublishDenied => "publish_denied",
            DenyReason::SubscribeDenied => "subscribe_denied",
            DenyReason::Throttled => "throttled",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    /// Whether the denial happened at CONNECT.
    pub const fn is_auth(self) -> bool {
        !matches!(
            self,
            DenyReason::PublishDenied | DenyReason::SubscribeDenied
        )
    }
}

/// Why the broker dropped a message it had accepted: the closed `reason` label of
/// `anxin_broker_dropped_total`. (A PUBLISH refused by the ACL is a
/// [`DenyReason::PublishDenied`], not a drop.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The subscriber's session queue (`max_queue`) or in-flight window was full: the
    /// subscriber is slower than its publishers.
    QueueFull,
    /// The message or the session expired, or a clean session ended with messages still
    /// queued for it.
    Expired,
    /// Anything else (a connection closing during delivery…).
    Other,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 3] = [
        DropReason::QueueFull,
        DropReason::Expired,
        DropReason::Other,
    ];

    /// The metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Expired => "expired",
            DropReason::Other => "other",
        }
    }
}

/// Why the broker's front door closed a connection before its CONNECT: the closed
/// `reason` label of `anxin_broker_handshakes_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeRefusal {
    /// No complete CONNECT within `connect_timeout_secs`.
    Timeout,
    /// Too many connections were already waiting for their CONNECT.
    Busy,
    /// The first packet was not a CONNECT, was too large, or the client went away.
    NotConnect,
}

impl HandshakeRefusal {
    /// Every reason, in label order.
    pub const ALL: [HandshakeRefusal; 3] = [
        HandshakeRefusal::Timeout,
        HandshakeRefusal::Busy,
        HandshakeRefusal::NotConnect,
    ];

    /// The metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            HandshakeRefusal::Timeout => "timeout",
            HandshakeRefusal::Busy => "busy",
            HandshakeRefusal::NotConnect => "not_connect",
        }
    }
}

/// Counters kept by the broker; share one `Arc<BrokerStats>` with the telemetry.
#[derive(Debug, Default)]
pub struct BrokerStats {
    denied: [AtomicU64; DenyReason::ALL.len()],
    dropped: [AtomicU64; DropReason::ALL.len()],
    handshakes_refused: [AtomicU64; HandshakeRefusal::ALL.len()],
    connections: AtomicU64,
    connected: AtomicI64,
}

impl BrokerStats {
    /// Fresh zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a connection closed before its CONNECT.
    pub fn count_handshake_refused(&self, reason: HandshakeRefusal) {
        self.handshakes_refused[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed before their CONNECT so far, for `reason`.
    pub fn handshakes_refused_for(&self, reason: HandshakeRefusal) -> u64 {
        self.handshakes_refused[reason as usize].load(Ordering::Relaxed)
    }

    /// Counts one denial.
    pub fn count_denied(&self, reason: DenyReason) {
        self.denied[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Denials so far, for `reason`.
    pub fn denied_for(&self, reason: DenyReason) -> u64 {
        self.denied[reason.index()].load(Ordering::Relaxed)
    }

    /// Every reason with its count (zeros included, so every series exists).
    pub fn denied(&self) -> impl Iterator<Item = (DenyReason, u64)> + '_ {
        DenyReason::ALL.into_iter().map(|r| (r, self.denied_for(r)))
    }

    /// Counts one dropped message.
    pub fn count_dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Drops so far, for `reason`.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    /// Every drop reason with its count (zeros included).
    pub fn dropped(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .into_iter()
            .map(|r| (r, self.dropped_for(r)))
    }

    /// CONNECTs refused, all reasons.
    pub fn auth_denied(&self) -> u64 {
        self.denied()
            .filter(|(r, _)| r.is_auth())
            .map(|(_, n)| n)
            .sum()
    }

    /// PUBLISHes dropped by the ACL.
    pub fn publish_denied(&self) -> u64 {
        self.denied_for(DenyReason::PublishDenied)
    }

    /// SUBSCRIBEs refused by the ACL.
    pub fn subscribe_denied(&self) -> u64 {
        self.denied_for(DenyReason::SubscribeDenied)
    }

    /// Connections accepted (CONNACK success) since start.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Clients connected now.
    pub fn connected(&self) -> i64 {
        self.connected.load(Ordering::Relaxed)
    }

    pub(crate) fn client_connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn client_disconnected(&self) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lets through at most `burst` log lines per `window`; reports how many it held back.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    burst: u32,
    window: Duration,
    state: Mutex<LimiterState>,
}

#[derive(Debug)]
struct LimiterState {
    window_start: Instant,
    logged: u32,
    suppressed: u64,
}

impl LogLimiter {
    pub(crate) fn new(burst: u32, window: Duration) -> Self {
        Self {
            burst,
            window,
            state: Mutex::new(LimiterState {
                window_start: Instant::now(),
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)`: log now, mentioning the `n` lines suppressed since the last one logged;
    /// `None`: stay quiet.
    pub(crate) fn admit(&self) -> Option<u64> {
        let mut s = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        if now.duration_since(s.window_start) >= self.window {
            s.window_start = now;
            s.logged = 0;
        }
        if s.logged < self.burst {
            s.logged += 1;
            Some(std::mem::take(&mut s.suppressed))
        } else {
            s.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter_and_label() {
        let stats = BrokerStats::new();
        stats.count_denied(DenyReason::BadPassword);
        stats.count_denied(DenyReason::BadPassword);
        stats.count_denied(DenyReason::PublishDenied);
        assert_eq!(stats.denied_for(DenyReason::BadPassword), 2);
        assert_eq!(stats.auth_denied(), 2);
        assert_eq!(stats.publish_denied(), 1);
        assert_eq!(stats.subscribe_denied(), 0);
        assert_eq!(stats.denied().count(), DenyReason::ALL.len());
        let labels: std::collections::HashSet<_> =
            DenyReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), DenyReason::ALL.len());
        stats.count_dropped(DropReason::QueueFull);
        assert_eq!(stats.dropped_for(DropReason::QueueFull), 1);
        assert_eq!(stats.dropped().map(|(_, n)| n).sum::<u64>(), 1);
    }

    #[test]
    fn the_log_limiter_holds_back_lines_beyond_the_burst_and_reports_them() {
        let limiter = LogLimiter::new(2, Duration::from_secs(3600));
        assert_eq!(limiter.admit(), Some(0));
        assert_eq!(limiter.admit(), Some(0));
        assert_eq!(limiter.admit(), None);
        assert_eq!(limiter.admit(), None);
        let zero = LogLimiter::new(1, Duration::ZERO);
        assert_eq!(zero.admit(), Some(0));
        assert_eq!(zero.admit(), Some(0));
    }
}

/// Exports [`BrokerStats`] on `/metrics` (registered once by the gateway's wiring).
#[derive(Debug)]
pub struct BrokerCollector(pub std::sync::Arc<BrokerStats>);

impl prometheus_client::collector::Collector for BrokerCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::MetricType;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;

        let s = &self.0;
        let mut family = |name: &str,
                          help: &str,
                          rows: &mut dyn Iterator<Item = (&'static str, u64)>|
         -> Result<(), std::fmt::Error> {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (reason, n) in rows {
                let labels = [("reason", reason)];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
            Ok(())
        };
        family(
            "anxin_broker_denied",
            "CONNECTs, publishes and subscriptions the broker refused, by reason",
            &mut DenyReason::ALL
                .iter()
                .map(|r| (r.as_str(), s.denied_for(*r))),
        )?;
        family(
            "anxin_broker_dropped",
            "Accepted messages the broker could not deliver, by reason",
            &mut DropReason::ALL
                .iter()
                .map(|r| (r.as_str(), s.dropped_for(*r))),
        )?;
        family(
            "anxin_broker_handshakes_refused",
            "Connections closed before a complete CONNECT, by reason",
            &mut HandshakeRefusal::ALL
                .iter()
                .map(|r| (r.as_str(), s.handshakes_refused_for(*r))),
        )?;
        let c = ConstCounter::new(s.connections());
        c.encode(encoder.encode_descriptor(
            "anxin_broker_connections",
            "Client connections accepted",
            None,
            c.metric_type(),
        )?)?;
        let g = ConstGauge::new(s.connected());
        g.encode(encoder.encode_descriptor(
            "anxin_broker_connected",
            "Clients connected now",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}
