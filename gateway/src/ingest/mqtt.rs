//! The gateway's MQTT session: persistent (clean_session = false), QoS 1, manual
//! acknowledgements sent by the committer only after the durable write, a re-subscribe on
//! every successful (re)connect, and exponential backoff between attempts.
//!
//! The event loop is polled here and nowhere else; nothing here awaits a publish
//! (`rumqttc` deadlocks when the polling task waits on its own request queue).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[cfg(doc)]
use anxin_firmware::wire::topic::GATEWAY_FILTER;
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, Publish, QoS,
    SubscribeFilter,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::lane::IngestQueue;
use crate::clock::SharedClock;
use crate::config::MqttConfig;
use crate::telemetry::Metrics;

/// The largest packet MQTT can encode (a remaining length of 268 435 455 bytes plus the
/// fixed header).
const MQTT_MAX_PACKET: usize = 268_435_455 + 5;

/// Where to connect.
#[derive(Debug, Clone)]
pub struct MqttTarget {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// A received publish, stamped with the connection it came on.
#[derive(Debug)]
pub struct Inbound {
    /// The message.
    pub publish: Publish,
    /// Connection generation: an ack is only sent on the connection that delivered it.
    pub generation: u64,
    /// Receive time (gateway clock).
    pub received_ms: i64,
}

/// Handle to the running session.
#[derive(Clone)]
pub struct MqttSession {
    /// The client, for acks and publishes from other tasks.
    pub client: AsyncClient,
    /// Current connection generation (incremented on every CONNACK).
    pub generation: Arc<AtomicU64>,
    /// Whether the session is connected and subscribed (the gateway is blind while not).
    pub connected: watch::Receiver<bool>,
}

impl MqttSession {
    /// Connects (in the background), subscribes to `uplinks` (every device uplink,
    /// [`GATEWAY_FILTER`], or only the status messages when the embedded broker's tap
    /// delivers the rest) and forwards every publish into `tx`. Returns the handle and
    /// the event-loop task.
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        cfg: &MqttConfig,
        target: MqttTarget,
        uplinks: &'static str,
        tx: IngestQueue,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> (MqttSession, tokio::task::JoinHandle<()>) {
        let mut opts = MqttOptions::new(cfg.client_id.clone(), target.host.clone(), target.port);
        opts.set_clean_session(false);
        opts.set_manual_acks(true);
        opts.set_keep_alive(Duration::from_secs(cfg.keep_alive_s.max(5)));
        // Read any packet MQTT can carry: rumqttc drops the connection on a packet above
        // its limit, the broker redelivers it on the persistent session, and ingest would
        // stop for every device. The decoder rejects it by size (`oversized`) and the
        // committer acknowledges it, so that it is not redelivered.
        opts.set_max_packet_size(MQTT_MAX_PACKET, 1 << 16);
        opts.set_inflight(1000);
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            opts.set_credentials(u.clone(), p.clone());
        }
        let (client, eventloop) = AsyncClient::new(opts, 65_536);
        let (conn_tx, conn_rx) = watch::channel(false);
        let generation = Arc::new(AtomicU64::new(0));
        let session = MqttSession {
            client: client.clone(),
            generation: generation.clone(),
            connected: conn_rx,
        };
        let backoff = (
            cfg.reconnect_min_ms.max(10),
            cfg.reconnect_max_ms.max(cfg.reconnect_min_ms.max(10)),
        );
        // The Zigbee2MQTT base topic, when configured (provisioning issue).
        let base = cfg.zigbee2mqtt_base_topic.trim_end_matches('/');
        let zigbee = (!base.is_empty()).then(|| format!("{base}/#"));
        let task = tokio::spawn(poll_loop(
            eventloop, client, tx, clock, metrics, cancel, generation, conn_tx, backoff, uplinks,
            zigbee,
        ));
        (session, task)
    }
}

#[allow(clippy::too_many_arguments)]
async fn poll_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    tx: IngestQueue,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    generation: Arc<AtomicU64>,
    connected: watch::Sender<bool>,
    (min_ms, max_ms): (u64, u64),
    uplinks: &'static str,
    zigbee: Option<String>,
) {
    let mut delay = min_ms;
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                let g = generation.fetch_add(1, Ordering::SeqCst) + 1;
                info!(
                    session_present = ack.session_present,
                    generation = g,
                    "MQTT session connected"
                );
                let filters = std::iter::once(uplinks.to_string())
                    .chain(zigbee.clone())
                    .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(filters) {
                    warn!(error = %e, "could not queue the subscription");
                }
                delay = min_ms;
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                // Connected means "subscribed": only now can the gateway see devices.
                let failed = |c: &rumqttc::SubscribeReasonCode| {
                    matches!(c, rumqttc::SubscribeReasonCode::Failure)
                };
                if ack.return_codes.iter().skip(1).any(failed) {
                    warn!(
                        "broker refused the Zigbee2MQTT subscription; Zigbee devices are not seen"
                    );
                }
                if ack.return_codes.first().is_none_or(failed) {
                    warn!("broker refused the gateway's subscription");
                } else {
                    metrics.mqtt_connected.set(1);
                    let _ = connected.send(true);
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let inbound = Inbound {
                    publish,
                    generation: generation.load(Ordering::SeqCst),
                    received_ms: clock.now_ms(),
                };
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = tx.send(inbound) => if r.is_err() { break },
                }
            }
            Ok(_) => {}
            Err(e) => {
                if *connected.borrow() {
                    metrics.mqtt_reconnects.inc();
                }
                metrics.mqtt_connected.set(0);
                let _ = connected.send(false);
                warn!(error = %e, retry_ms = delay, "MQTT session lost; reconnecting");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                }
                delay = (delay * 2).min(max_ms);
            }
        }
    }
    metrics.mqtt_connected.set(0);
    let _ = connected.send(false);
    let _ = client.try_disconnect();
}
