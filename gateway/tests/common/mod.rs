//! Shared pieces of the gateway's integration tests: a gateway on loopback with a
//! temporary store, and a scriptable device that speaks the wire protocol directly.
#![allow(dead_code)]

pub mod process;
pub mod victoria;

use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::wire::{self, Ack, Channel, Clock, DeviceId, Event, EventBody};
use anxin_gateway::app::{Gateway, StartOptions};
use anxin_gateway::broker::{AuthMode, BrokerConfig};
use anxin_gateway::clock::SystemClock;
use anxin_gateway::config::{Config, MqttMode};
use anxin_gateway::store::{NewDevice, NewHousehold};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(20);

/// The environment variable that moves the tests' stores to PostgreSQL: a server URL
/// without a database (`postgres://postgres@127.0.0.1:55432`); each store then gets a
/// fresh database of its own. `scripts/test-all.sh` sets it for its PostgreSQL pass.
pub const POSTGRES_ENV: &str = "ANXIN_TEST_POSTGRES";

/// The store URL for a new test gateway: empty (SQLite in the data directory) or a fresh
/// PostgreSQL database when [`POSTGRES_ENV`] names a server.
pub fn test_store_url() -> String {
    match std::env::var(POSTGRES_ENV) {
        Ok(base) if !base.is_empty() => fresh_postgres_database(&base),
        _ => String::new(),
    }
}

/// [`test_store_url`] for a gateway whose data directory is `dir`: a gateway started again
/// on the same directory (a restart) finds the same PostgreSQL database, as it finds the
/// same SQLite file.
pub fn test_store_url_in(dir: &std::path::Path) -> String {
    if !on_postgres() {
        return String::new();
    }
    let marker = dir.join("postgres-test-url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return url;
    }
    let url = test_store_url();
    std::fs::write(&marker, &url).expect("writing the test database's URL");
    url
}

/// Creates an empty database on the server `base` and returns its URL. Runs on a thread
/// of its own so that it can be called from inside a test's runtime.
pub fn fresh_postgres_database(base: &str) -> String {
    let base = base.trim_end_matches('/').to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            use sqlx::Executor;
            sqlx::any::install_default_drivers();
            let name = format!("t_{:016x}", rand::random::<u64>());
            let admin = sqlx::AnyPool::connect(&format!("{base}/postgres"))
                .await
                .expect("PostgreSQL test server reachable");
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("CREATE DATABASE");
            admin.close().await;
            format!("{base}/{name}")
        })
    })
    .join()
    .expect("database creation thread")
}

/// Whether the tests run on PostgreSQL (see [`POSTGRES_ENV`]).
pub fn on_postgres() -> bool {
    std::env::var(POSTGRES_ENV).is_ok_and(|v| !v.is_empty())
}

/// A config for a gateway on loopback ports with its store in `dir` (or in a fresh
/// PostgreSQL database, see [`POSTGRES_ENV`]).
pub fn loopback_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.general.data_dir = dir.to_path_buf();
    c.store.url = test_store_url_in(dir);
    c.broker = BrokerConfig::loopback();
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c.mqtt.reconnect_min_ms = 50;
    c.mqtt.reconnect_max_ms = 500;
    c
}

/// Starts a gateway with the embedded broker in open mode.
pub async fn start_embedded(dir: &std::path::Path) -> Gateway {
    start(loopback_config(dir)).await
}

/// Starts a gateway with `config`.
pub async fn start(config: Config) -> Gateway {
    start_on(config, Arc::new(SystemClock)).await
}

/// Starts a gateway with `config` on `clock` (an accelerated one for tests that need
/// hours of virtual time), its broker in open mode.
pub async fn start_on(config: Config, clock: anxin_gateway::clock::SharedClock) -> Gateway {
    let opts = StartOptions {
        broker_auth: Some(AuthMode::Open),
    };
    let external = config.mqtt.mode == MqttMode::External;
    let gw = Gateway::start(config, clock, opts).await.unwrap();
    assert!(
        gw.wait_connected(WAIT).await,
        "gateway session did not connect (external: {external})"
    );
    gw
}

/// Registers household `hh` with the given (device id, kind) pairs.
pub async fn register(gw: &Gateway, hh: &str, devices: &[(&str, &str)]) {
    let now = 1;
    gw.store
        .upsert_households(
            &[NewHousehold {
                id: hh.into(),
                name: format!("测试户 {hh}"),
                address: String::new(),
            }],
            now,
        )
        .await
        .unwrap();
    let devs: Vec<NewDevice> = devices
        .iter()
        .map(|(id, kind)| NewDevice {
            id: (*id).into(),
            household_id: Some(hh.into()),
            kind: (*kind).into(),
            room: None,
        })
        .collect();
    gw.store.upsert_devices(&devs, now).await.unwrap();
    gw.registry.reload(&gw.store).await.unwrap();
}

/// A device that speaks the wire protocol directly over rumqttc.
pub struct RawDevice {
    pub id: DeviceId,
    pub client: AsyncClient,
    pub acks: mpsc::UnboundedReceiver<Ack>,
    pub commands: mpsc::UnboundedReceiver<wire::Command>,
    task: tokio::task::JoinHandle<()>,
}

impl RawDevice {
    /// Connects as `id` (open mode: no password) and subscribes to its downlink.
    pub async fn connect(id: &str, addr: std::net::SocketAddr) -> RawDevice {
        let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut el) = AsyncClient::new(o, 4096);
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let (cmd_tx, commands) = mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let sub = client.clone();
        let down = format!("anxin/v1/dev/{id}/down/#");
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub.try_subscribe(down.clone(), QoS::AtLeastOnce);
                    }
                    Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        if p.topic.ends_with("/down/ack") {
                            if let Ok(a) = wire::decode_ack(&p.payload) {
                                let _ = ack_tx.send(a);
                            }
                        } else if let Ok(c) = wire::decode_command(&p.payload) {
                            let _ = cmd_tx.send(c);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(WAIT, ready_rx.recv())
            .await
            .expect("device subscribed");
        RawDevice {
            id: DeviceId::new(id).unwrap(),
            client,
            acks,
            commands,
            task,
        }
    }

    /// Publishes raw bytes on one of its channels (or any topic).
    pub async fn publish_raw(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    /// Publishes an event (boot, seq, oldest) with a unix timestamp.
    pub async fn event(&self, boot: u32, seq: u32, oldest: u32, ts: u64, body: EventBody) {
        let e = Event::new(boot, seq, oldest, ts, Clock::Unix, body);
        let t = wire::topic::topic(&self.id, Channel::Event);
        self.publish_raw(&t, wire::codec::encode_vec(&e).unwrap().to_vec())
            .await;
    }

    /// Waits for an ack of `boot` covering `upto`.
    pub async fn wait_ack(&mut self, boot: u32, upto: u32) -> Ack {
        tokio::time::timeout(WAIT, async {
            loop {
                let a = self.acks.recv().await.expect("ack channel open");
                if a.boot == boot && a.upto >= upto {
                    return a;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no ack of boot {boot} up to {upto} for {}", self.id))
    }
}

impl Drop for RawDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads a metric's value from the Prometheus text (sum over label sets matching `labels`).
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && (labels.is_empty() || l.contains(labels)))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Now, in unix ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A plain HTTP/1.0 GET on loopback; returns (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Polls `f` every 20 ms until it is true or `WAIT` passes.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
