//! Shared pieces of the provisioning tests: a gateway whose embedded broker runs in
//! production mode, a small MQTT client with a login, the Zigbee2MQTT fixtures, and
//! waits on events (never bare sleeps as synchronisation).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anxin_gateway::app::{Gateway, StartOptions};
use anxin_gateway::broker::{AuthMode, BrokerConfig};
use anxin_gateway::clock::SystemClock;
use anxin_gateway::config::Config;
use anxin_gateway::signal::Signal;
use anxin_gateway::store::NewHousehold;
use anyhow::{Context, Result, bail};
use rumqttc::{
    AsyncClient, ConnectionError, Event, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeReasonCode, TlsConfiguration, Transport,
};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// How long one wait may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A config on loopback ports with its store in `dir`.
pub fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.general.data_dir = dir.to_path_buf();
    c.broker = BrokerConfig::loopback();
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c.mqtt.reconnect_min_ms = 50;
    c.mqtt.reconnect_max_ms = 500;
    c.provision.poll_interval_ms = 200;
    c.provision.broker_host = "127.0.0.1".into();
    c
}

/// Starts a gateway whose embedded broker requires credentials; `configure` adjusts
/// the config first.
pub async fn start_production(
    dir: &std::path::Path,
    configure: impl FnOnce(&mut Config),
) -> Gateway {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut c = config(dir);
    configure(&mut c);
    let gw = Gateway::start(
        c,
        Arc::new(SystemClock),
        StartOptions {
            broker_auth: Some(AuthMode::Production),
        },
    )
    .await
    .unwrap();
    assert!(
        gw.wait_connected(WAIT).await,
        "gateway session did not connect"
    );
    gw
}

/// Creates household `id`.
pub async fn household(gw: &Gateway, id: &str) {
    gw.store
        .upsert_households(
            &[NewHousehold {
                id: id.into(),
                name: format!("测试户 {id}"),
                address: "虚构路 1 号".into(),
            }],
            1,
        )
        .await
        .unwrap();
}

/// Polls the async predicate every 20 ms until it holds or [`WAIT`] passes.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next signal for which `want` holds.
pub async fn next_signal(
    rx: &mut broadcast::Receiver<Signal>,
    want: impl Fn(&Signal) -> bool,
) -> Signal {
    tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(s) if want(&s) => return s,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("detection stopped"),
            }
        }
    })
    .await
    .expect("no such signal")
}

/// A metric's value from the Prometheus text (sum over matching label sets).
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && (labels.is_empty() || l.contains(labels)))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What the client task reports.
#[derive(Debug)]
enum Ev {
    Packet(Packet),
    Closed(String),
}

/// An MQTT 3.1.1 client whose event loop runs in its own task.
pub struct Client {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Ev>,
    backlog: VecDeque<Packet>,
    task: JoinHandle<()>,
}

impl Client {
    /// Connects with `login`; `Err` if refused or unreachable.
    pub async fn connect(
        addr: SocketAddr,
        client_id: &str,
        login: Option<(&str, &str)>,
    ) -> Result<Client> {
        Self::connect_with(addr, "127.0.0.1", client_id, login, None).await
    }

    /// Connects to `host` (for TLS: the certificate's name), optionally over TLS
    /// trusting `ca_pem`.
    pub async fn connect_with(
        addr: SocketAddr,
        host: &str,
        client_id: &str,
        login: Option<(&str, &str)>,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<Client> {
        let mut o = MqttOptions::new(client_id, host, addr.port());
        o.set_keep_alive(Duration::from_secs(30));
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
        if let Some(ca) = ca_pem {
            o.set_transport(Transport::Tls(TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth: None,
            }));
        }
        let (client, mut el) = AsyncClient::new(o, 1000);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let ev = match el.poll().await {
                    Ok(Event::Incoming(p)) => Ev::Packet(p),
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => Ev::Closed("disconnected".into()),
                    Ok(Event::Outgoing(_)) => continue,
                    Err(ConnectionError::ConnectionRefused(code)) => {
                        Ev::Closed(format!("refused: {code:?}"))
                    }
                    Err(e) => Ev::Closed(e.to_string()),
                };
                let last = !matches!(ev, Ev::Packet(_));
                if tx.send(ev).is_err() || last {
                    return;
                }
            }
        });
        let mut c = Client {
            client,
            rx,
            backlog: VecDeque::new(),
            task,
        };
        match tokio::time::timeout(WAIT, c.rx.recv())
            .await
            .context("no CONNACK")?
        {
            Some(Ev::Packet(Packet::ConnAck(_))) => Ok(c),
            other => bail!("not connected: {other:?}"),
        }
    }

    async fn next_where(&mut self, want: impl Fn(&Packet) -> bool) -> Result<Packet> {
        if let Some(i) = self.backlog.iter().position(&want) {
            return self.backlog.remove(i).context("backlog");
        }
        loop {
            match tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .context("timed out")?
            {
                Some(Ev::Packet(p)) if want(&p) => return Ok(p),
                Some(Ev::Packet(p)) => self.backlog.push_back(p),
                other => bail!("connection ended: {other:?}"),
            }
        }
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    pub async fn publish(&mut self, topic: &str, payload: &[u8], retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .await
            .unwrap();
        self.next_where(|p| matches!(p, Packet::PubAck(_)))
            .await
            .unwrap();
    }

    /// Subscribes; returns the SUBACK code.
    pub async fn subscribe(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        match self
            .next_where(|p| matches!(p, Packet::SubAck(_)))
            .await
            .unwrap()
        {
            Packet::SubAck(a) => a.return_codes[0],
            _ => unreachable!(),
        }
    }

    /// The next PUBLISH received.
    pub async fn next_publish(&mut self) -> Result<Publish> {
        match self.next_where(|p| matches!(p, Packet::Publish(_))).await? {
            Packet::Publish(p) => Ok(p),
            other => bail!("not a publish: {other:?}"),
        }
    }

    /// The next PUBLISH on `topic` (others are kept).
    pub async fn next_on(&mut self, topic: &str) -> Result<Publish> {
        let t = topic.to_string();
        match self
            .next_where(move |p| matches!(p, Packet::Publish(x) if x.topic == t))
            .await?
        {
            Packet::Publish(p) => Ok(p),
            other => bail!("not a publish: {other:?}"),
        }
    }

    /// Waits until the broker closes the connection; returns why.
    pub async fn closed(&mut self) -> Result<String> {
        loop {
            match tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .context("still connected")?
            {
                Some(Ev::Packet(p)) => self.backlog.push_back(p),
                Some(Ev::Closed(why)) => return Ok(why),
                None => return Ok("event loop ended".into()),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One line of `payloads.jsonl`.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub id: String,
    pub kind: String,
    pub topic: Option<String>,
    pub payload: Value,
    pub note: String,
    pub source: String,
}

/// `shared/` beside the repository (`ANXIN_SHARED_DIR` overrides).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("ANXIN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// Every Zigbee2MQTT fixture, read from the shared data set.
pub fn fixtures() -> Vec<Fixture> {
    let path = shared_dir().join("data/zigbee2mqtt-payloads/payloads.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e} (set ANXIN_SHARED_DIR)", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            Fixture {
                id: s("id"),
                kind: s("kind"),
                topic: v["topic"].as_str().map(str::to_string),
                payload: v["payload"].clone(),
                note: s("note"),
                source: s("source"),
            }
        })
        .collect()
}

/// The fixture `id`.
pub fn fixture(id: &str) -> Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no fixture {id}"))
}
