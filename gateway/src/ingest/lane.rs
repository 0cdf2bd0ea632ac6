//! Two lanes into the committer: alarms (help, fall, gas events) and everything else.
//!
//! A help press must never wait behind heartbeats and motion. The embedded broker's tap
//! and the external session both put each message on its lane; the committer commits
//! every waiting alarm in a batch of its own before it looks at the next bulk batch,
//! hands the alarm's observations to detection's own alarm queue, and holds bulk work
//! back (briefly, bounded) until detection has applied them and the workflow has stored
//! what they raised. Bulk traffic is what waits: its queue is bounded, so the broker
//! pushes back and the devices' outboxes hold it.
//!
//! The lane is chosen from the raw bytes, before decoding: an event whose body is tagged
//! `help`, `fall` or `gas`. A false positive (those bytes elsewhere in a message) only
//! costs a batch of one; decoding and validation are the committer's, as for every
//! message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anxin_firmware::wire::topic::{self, Channel};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{Notify, mpsc};

use super::mqtt::Inbound;
use crate::telemetry::Metrics;

/// Capacity of the alarm lane (alarms are rare; a full lane still only waits).
const ALARM_CAPACITY: usize = 1024;

/// Which lane a message takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Help, fall and gas events.
    Alarm,
    /// Everything else.
    Bulk,
}

impl Lane {
    fn as_str(self) -> &'static str {
        match self {
            Lane::Alarm => "alarm",
            Lane::Bulk => "bulk",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    lane: &'static str,
}

/// The lane of a message on `topic` with `payload`.
pub fn lane_of(topic: &str, payload: &[u8]) -> Lane {
    let is_event = topic
        .strip_prefix(topic::PREFIX)
        .is_some_and(|rest| rest.ends_with(Channel::Event.suffix()));
    if is_event
        && [&b"\"k\":\"help\""[..], b"\"k\":\"fall\"", b"\"k\":\"gas\""]
            .iter()
            .any(|tag| contains(payload, tag))
    {
        Lane::Alarm
    } else {
        Lane::Bulk
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The sending side, shared by the broker's tap and the MQTT session.
#[derive(Clone)]
pub struct IngestQueue {
    alarm: mpsc::Sender<Inbound>,
    bulk: mpsc::Sender<Inbound>,
    queued: Queued,
}

/// Messages on each lane (sent, not yet taken by the committer).
#[derive(Clone)]
struct Queued {
    alarm: Gauge,
    bulk: Gauge,
}

impl Queued {
    fn of(&self, lane: Lane) -> &Gauge {
        match lane {
            Lane::Alarm => &self.alarm,
            Lane::Bulk => &self.bulk,
        }
    }
}

/// The committer's side.
pub struct IngestLanes {
    /// Alarms.
    pub alarm: mpsc::Receiver<Inbound>,
    /// Everything else.
    pub bulk: mpsc::Receiver<Inbound>,
    queued: Queued,
}

/// The committer's queue has closed (shutdown).
#[derive(Debug)]
pub struct Closed;

impl IngestQueue {
    /// Puts `inbound` on its lane, waiting while that lane is full.
    pub async fn send(&self, inbound: Inbound) -> Result<(), Closed> {
        let lane = lane_of(inbound.publish.topic.as_str(), &inbound.publish.payload);
        let tx = match lane {
            Lane::Alarm => &self.alarm,
            Lane::Bulk => &self.bulk,
        };
        let gauge = self.queued.of(lane);
        gauge.inc();
        tx.send(inbound).await.map_err(|_| {
            gauge.dec();
            Closed
        })
    }
}

impl IngestLanes {
    /// Counts `n` messages of `lane` as taken off the queue.
    pub fn taken(&self, lane: Lane, n: usize) {
        self.queued.of(lane).dec_by(n as i64);
    }
}

/// The two lanes, bulk with room for `capacity` messages; registers the queue gauges.
pub fn ingest_queue(capacity: usize, metrics: &Metrics) -> (IngestQueue, IngestLanes) {
    let (alarm_tx, alarm_rx) = mpsc::channel(ALARM_CAPACITY);
    let (bulk_tx, bulk_rx) = mpsc::channel(capacity.max(16));
    let family: Family<LaneLabels, Gauge> = Family::default();
    // One statement each: the guard `get_or_create` returns must be gone before the
    // next call takes the family's lock.
    let alarm = family
        .get_or_create(&LaneLabels {
            lane: Lane::Alarm.as_str(),
        })
        .clone();
    let bulk = family
        .get_or_create(&LaneLabels {
            lane: Lane::Bulk.as_str(),
        })
        .clone();
    let queued = Queued { alarm, bulk };
    metrics.register(
        "anxin_ingest_queued",
        "Messages waiting for the committer, by lane",
        family,
    );
    (
        IngestQueue {
            alarm: alarm_tx,
            bulk: bulk_tx,
            queued: queued.clone(),
        },
        IngestLanes {
            alarm: alarm_rx,
            bulk: bulk_rx,
            queued,
        },
    )
}

/// How far the alarm lane's observations have got: handed over by ingest, applied by
/// detection (which has then sent its signals to the workflow).
#[derive(Debug, Default)]
pub struct AlarmProgress {
    handed: AtomicU64,
    applied: AtomicU64,
    notify: Notify,
}

impl AlarmProgress {
    /// Ingest handed `n` alarm observations to detection.
    pub fn handed(&self, n: u64) {
        self.handed.fetch_add(n, Ordering::SeqCst);
    }

    /// Detection applied `n` of them.
    pub fn applied(&self, n: u64) {
        self.applied.fetch_add(n, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn caught_up(&self) -> bool {
        self.applied.load(Ordering::SeqCst) >= self.handed.load(Ordering::SeqCst)
    }

    /// Waits until detection has applied every alarm handed to it and `settled()` says
    /// the workflow has stored what they raised, at most `limit`. Returns whether it did.
    pub async fn wait(&self, settled: impl Fn() -> bool, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.notify.notified();
                tokio::pin!(notified);
                // Registered before the check, so that an `applied` in between wakes it.
                notified.as_mut().enable();
                if self.caught_up() {
                    break;
                }
                notified.await;
            }
            // The workflow's side: stored within a transaction or two.
            while !settled() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

/// Shared handle.
pub type SharedAlarmProgress = Arc<AlarmProgress>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_fall_and_gas_events_take_the_alarm_lane() {
        let ev = "anxin/v1/dev/h1-help/up/event";
        for p in [
            r#"{"v":1,"boot":3,"seq":20,"oldest":15,"ts":1732435200123,"clk":"unix","ev":{"k":"help","act":"press"}}"#,
            r#"{"v":1,"boot":3,"seq":25,"oldest":15,"ts":1732435200123,"clk":"unix","ev":{"k":"fall","act":"detected","peak_mg":3400}}"#,
            r#"{"v":1,"boot":3,"seq":23,"oldest":15,"ts":1732435200123,"clk":"unix","ev":{"k":"gas","alarm":true,"ppm":1200}}"#,
        ] {
            assert_eq!(lane_of(ev, p.as_bytes()), Lane::Alarm, "{p}");
        }
        let motion = r#"{"v":1,"boot":3,"seq":19,"oldest":15,"ts":1732435200123,"clk":"unix","ev":{"k":"motion"}}"#;
        assert_eq!(lane_of(ev, motion.as_bytes()), Lane::Bulk);
        // A heartbeat is bulk whatever it carries.
        let hb = "anxin/v1/dev/h1-help/up/hb";
        assert_eq!(lane_of(hb, br#"{"k":"help"}"#), Lane::Bulk);
    }

    #[tokio::test]
    async fn the_wait_ends_when_detection_caught_up_or_at_the_limit() {
        let p = Arc::new(AlarmProgress::default());
        p.handed(1);
        assert!(!p.wait(|| true, Duration::from_millis(20)).await);
        let q = p.clone();
        let applied = tokio::spawn(async move { q.applied(1) });
        assert!(p.wait(|| true, Duration::from_secs(10)).await);
        applied.await.unwrap();
        assert!(!p.wait(|| false, Duration::from_millis(20)).await);
    }
}
