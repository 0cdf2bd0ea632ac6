//! Wiring: start the store, the broker (embedded or external), the MQTT session, the
//! committer, detection, the workflow, history and the HTTP server; stop them all on one
//! cancellation token.
//!
//! ```text
//! broker ─▶ (tap: events, heartbeats; MqttSession: status) ─▶ Committer ─┬─ Observation ─▶ detect ─ Signal ─▶ workflow ─▶ notify, devices
//!                          (store)    └─ Observation ─▶ history
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::api::ApiState;
use crate::broker::{self, AuthMode, BrokerStats, DeviceCredentials, EmbeddedBroker};
use crate::clock::SharedClock;
use crate::config::{Config, MqttMode};
use crate::detect::{self, DetectHandle};
use crate::history::{self, HistoryHandle};
use crate::http::{self, HttpState};
use crate::ingest::{
    Committer, CommitterConfig, Downlink, IngestTap, MqttSession, MqttTarget, Registry,
    STATUS_FILTER,
};
// Provisioning (issue 7).
use crate::ingest::{AlarmSink, ObservationSinks, SharedAlarmProgress, ZigbeeAdapter, ZigbeeMap};
use crate::provision::{self, Provisioning};
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::workflow::{self, WorkflowHandle};

/// Capacity of the queues between ingest, detection, history and the workflow.
const PIPELINE_QUEUE: usize = 65_536;

/// Options that are not configuration: how this process wants the gateway started.
#[derive(Default)]
pub struct StartOptions {
    /// Authentication of the embedded broker (the demo runs `Open`).
    pub broker_auth: Option<AuthMode>,
}

/// What every long-running part of the gateway shares. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The configuration.
    pub config: Arc<Config>,
    /// The SQL store.
    pub store: Store,
    /// The clock everything runs on.
    pub clock: SharedClock,
    /// Metrics (modules register their own).
    pub metrics: Arc<Metrics>,
    /// Registered devices, as ingest sees them.
    pub registry: Registry,
    /// Publishes to devices (acks, commands).
    pub downlink: Downlink,
    /// Whether the gateway's MQTT session is connected and subscribed.
    pub mqtt_connected: watch::Receiver<bool>,
    /// Cancelled at shutdown.
    pub cancel: CancellationToken,
    /// Every spawned task, so that shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Signals in flight between detection and the workflow.
    pub signals: Arc<crate::signal::SignalLedger>,
}

/// A running gateway.
pub struct Gateway {
    /// Shared services.
    pub services: Services,
    /// The store.
    pub store: Store,
    /// Registered devices, as ingest sees them.
    pub registry: Registry,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The clock everything runs on.
    pub clock: SharedClock,
    /// Where the HTTP server listens.
    pub http_addr: SocketAddr,
    /// Where devices connect (the embedded broker, or the external one).
    pub mqtt_addr: SocketAddr,
    /// Publishes to devices.
    pub downlink: Downlink,
    /// Credentials of the embedded broker's clients (None with an external broker).
    pub credentials: Option<Arc<DeviceCredentials>>,
    /// Broker counters (embedded broker).
    pub broker_stats: Arc<BrokerStats>,
    /// Detection.
    pub detect: DetectHandle,
    /// The workflow service layer.
    pub workflow: WorkflowHandle,
    /// History.
    pub history: HistoryHandle,
    /// Provisioning: devices, credentials, health, work orders, installation tests.
    pub provision: Provisioning,
    session: MqttSession,
    broker: Option<EmbeddedBroker>,
}

impl Gateway {
    /// Starts everything. Returns once every listener is bound.
    pub async fn start(
        config: Config,
        clock: SharedClock,
        opts: StartOptions,
    ) -> anyhow::Result<Gateway> {
        std::fs::create_dir_all(&config.general.data_dir).with_context(|| {
            format!(
                "creating data directory {}",
                config.general.data_dir.display()
            )
        })?;
        let store = Store::open(&config.store_url())
            .await
            .context("opening the store")?;
        let metrics = Metrics::new();
        store.register_metrics(&metrics);
        // The device table, read once: the registry, the broker's credentials, detection
        // and provisioning start from it. The provisioning version is read before it, so
        // that a change made while the gateway starts is applied by the first poll.
        let provision_version = provision::stored_version(&store)
            .await
            .context("reading the provisioning version")?;
        let devices = Arc::new(
            store
                .device_rows(None)
                .await
                .context("loading the device table")?,
        );
        let registry = Registry::from_rows(&devices);
        check_open_files(devices.len());
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let broker_stats = Arc::new(BrokerStats::new());
        metrics.register_collector(Box::new(crate::broker::stats::BrokerCollector(
            broker_stats.clone(),
        )));
        let (inbound_tx, inbound_rx) =
            crate::ingest::ingest_queue(config.ingest.queue_capacity, &metrics);

        let (broker, credentials, target, mqtt_cfg) = match config.mqtt.mode {
            MqttMode::Embedded => {
                let password = random_token();
                let mode = opts.broker_auth.unwrap_or(config.broker.auth);
                let mut creds = DeviceCredentials::new(mode)
                    .with_gateway(&config.mqtt.client_id, password.as_bytes());
                for m in &config.broker.multiplexers {
                    let hash = broker::SecretHash::from_hex(&m.secret_hash).with_context(|| {
                        format!(
                            "broker.multiplexers: secret_hash of {:?} is not 64 hex digits",
                            m.username
                        )
                    })?;
                    creds = creds.with_multiplexer(&m.username, hash);
                    warn!(username = %m.username, "broker: a multiplexer may publish for every device");
                }
                // Provisioning: bridges confined to the configured Zigbee2MQTT
                // base topic; stored device and bridge credentials loaded before listening.
                let base = config.mqtt.zigbee2mqtt_base_topic.trim_end_matches('/');
                if !base.is_empty() {
                    creds = creds.with_policy(broker::DeviceTopicPolicy::new(base));
                }
                let creds = Arc::new(creds);
                let logins = provision::load_credentials(&creds, &devices);
                info!(logins, "device credentials loaded into the embedded broker");
                // Device events and heartbeats reach the committer in process; the
                // session subscribes to status messages (and last wills) only.
                let tap = IngestTap::new(inbound_tx.clone(), clock.clone());
                let b = broker::start_with_tap(
                    config.broker.clone(),
                    creds.clone(),
                    broker_stats.clone(),
                    Some(tap),
                )
                .await
                .context("starting the embedded MQTT broker")?;
                let addr = b.local_addr();
                let mut mqtt_cfg = config.mqtt.clone();
                mqtt_cfg.username = Some(config.mqtt.client_id.clone());
                mqtt_cfg.password = Some(password);
                let host = if addr.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    addr.ip().to_string()
                };
                (
                    Some(b),
                    Some(creds),
                    MqttTarget {
                        host,
                        port: addr.port(),
                    },
                    mqtt_cfg,
                )
            }
            MqttMode::External => (
                None,
                None,
                MqttTarget {
                    host: config.mqtt.host.clone(),
                    port: config.mqtt.port,
                },
                config.mqtt.clone(),
            ),
        };
        let mqtt_addr = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], target.port)));

        let uplinks = match config.mqtt.mode {
            MqttMode::Embedded => STATUS_FILTER,
            MqttMode::External => anxin_firmware::wire::topic::GATEWAY_FILTER,
        };
        let (session, poll_task) = MqttSession::spawn(
            &mqtt_cfg,
            target,
            uplinks,
            inbound_tx,
            clock.clone(),
            metrics.clone(),
            cancel.clone(),
        );
        tasks.spawn(async move {
            let _ = poll_task.await;
        });
        let downlink = Downlink::new(session.client.clone());
        let config = Arc::new(config);
        let services = Services {
            config: config.clone(),
            store: store.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            registry: registry.clone(),
            downlink: downlink.clone(),
            mqtt_connected: session.connected.clone(),
            cancel: cancel.clone(),
            tasks: tasks.clone(),
            signals: Arc::default(),
        };

        let (detect_tx, detect_rx) = mpsc::channel(PIPELINE_QUEUE);
        let (detect_alarm_tx, detect_alarm_rx) = mpsc::channel(PIPELINE_QUEUE);
        let alarm_progress = SharedAlarmProgress::default();
        let (history_tx, history_rx) = mpsc::channel(PIPELINE_QUEUE);
        let (signal_tx, signal_rx) = mpsc::channel(PIPELINE_QUEUE);
        let detect = detect::start(
            &services,
            detect_rx,
            detect::AlarmQueue {
                rx: detect_alarm_rx,
                progress: alarm_progress.clone(),
            },
            signal_tx,
        )
        .await
        .context("starting detection")?;
        let workflow = workflow::start(&services, signal_rx, detect.clone())
            .await
            .context("starting the workflow")?;
        let history = history::start(&services, history_rx)
            .await
            .context("starting history")?;

        // Provisioning: Zigbee2MQTT through ingest, and a tap of observations.
        let zigbee_map = ZigbeeMap::load(&store)
            .await
            .context("loading the Zigbee2MQTT mapping")?;
        let (observation_tap, provision_observations) = broadcast::channel(4096);
        let committer = Committer::restore(
            CommitterConfig {
                batch_max: config.ingest.batch_max.max(1),
                max_skew_ms: (config.ingest.max_clock_skew_s as i64).saturating_mul(1000),
            },
            store.clone(),
            registry.clone(),
            metrics.clone(),
            clock.clone(),
            session.clone(),
            ObservationSinks {
                detect: detect_tx,
                detect_alarms: Some(AlarmSink {
                    tx: detect_alarm_tx,
                    progress: alarm_progress,
                    ledger: services.signals.clone(),
                    feedback: Some(workflow.outbox().device_progress()),
                }),
                others: vec![history_tx],
            },
        )
        .await
        .context("restoring ingest state")?
        .with_zigbee(ZigbeeAdapter::new(
            &config.mqtt.zigbee2mqtt_base_topic,
            config.provision.zigbee_liveness_s,
            zigbee_map.clone(),
            &metrics,
        ))
        .with_tap(observation_tap)
        .with_downlink(downlink.clone());
        tasks.spawn(committer.run(inbound_rx, cancel.clone()));
        let provision = provision::start(
            &services,
            provision::LiveDeps {
                credentials: credentials.clone(),
                detect: detect.clone(),
                zigbee: zigbee_map,
                observations: provision_observations,
                devices,
                version: provision_version,
            },
        )
        .await
        .context("starting provisioning")?;

        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding HTTP on {}", config.http.listen))?;
        let http_addr = listener.local_addr()?;
        let api = ApiState::new(
            &services,
            detect.clone(),
            workflow.clone(),
            history.clone(),
            provision.clone(),
        );
        let app = http::router(HttpState {
            metrics: metrics.clone(),
            store: store.clone(),
            mqtt_connected: session.connected.clone(),
            api: Some(api),
        });
        let http_cancel = cancel.clone();
        tasks.spawn(async move {
            // Connect info: the API limits failed logins per client address.
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { http_cancel.cancelled().await });
            if let Err(e) = serve.await {
                warn!(error = %e, "HTTP server stopped");
            }
        });
        info!(%http_addr, %mqtt_addr, "gateway started");

        Ok(Gateway {
            services,
            store,
            registry,
            metrics,
            clock,
            http_addr,
            mqtt_addr,
            downlink,
            credentials,
            broker_stats,
            detect,
            workflow,
            history,
            provision,
            session,
            broker,
        })
    }

    /// A token that stops the gateway when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.services.cancel.clone()
    }

    /// Waits until the gateway's MQTT session is connected and subscribed (or `timeout`).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.session.connected.clone();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops everything, waiting at most about four seconds for tasks to finish.
    pub async fn shutdown(mut self) {
        self.services.cancel.cancel();
        self.services.tasks.close();
        if tokio::time::timeout(Duration::from_secs(4), self.services.tasks.wait())
            .await
            .is_err()
        {
            warn!(
                left = self.services.tasks.len(),
                "tasks did not stop in time"
            );
        }
        if let Some(b) = self.broker.take() {
            b.shutdown().await;
        }
        self.store.close().await;
    }
}

/// 128 random bits as hex.
pub fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Descriptors the embedded broker holds per device connection: the device's socket, and
/// the front door's splice to rmqtt (both ends on loopback).
const FILES_PER_CONNECTION: u64 = 3;

/// Raises the soft open-file limit to the hard one (the usual soft default of 1,024 would
/// refuse connections after a few hundred devices) and warns when even that cannot hold a
/// connection for every registered device: a reconnect storm after a restart then refuses
/// devices with "too many open files" until some give up and retry.
fn check_open_files(devices: usize) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "could not raise the open-file limit");
            return;
        }
    };
    let needed = (devices as u64).saturating_mul(FILES_PER_CONNECTION) + 1024;
    if limit < needed {
        warn!(
            open_files = limit,
            devices,
            needed,
            "the open-file limit cannot hold a connection for every registered device; raise it (systemd LimitNOFILE, ulimit -n)"
        );
    } else {
        info!(open_files = limit, devices, "open-file limit");
    }
}
