//! The embedded MQTT broker that `anxin demo` and `anxin run` start when no external broker
//! is configured.
//!
//! Everything outside this folder sees only this module's API: [`start`] a broker with a
//! [`BrokerConfig`], a [`BrokerAuth`] and [`BrokerStats`] (and, with [`start_with_tap`],
//! an [`UplinkTap`] that takes accepted device uplinks in process), get an
//! [`EmbeddedBroker`] handle, [`EmbeddedBroker::shutdown`] it. The engine behind it (rmqtt today, in
//! `rmqtt.rs`) can be swapped without touching the callers. External
//! brokers (mosquitto, EMQX) need none of this: the gateway connects to them by
//! configuration alone, and their ACL files express the same [`DeviceTopicPolicy`].
//!
//! - [`acl`]: the protocol's topic policy, pure functions;
//! - [`credentials`]: [`DeviceCredentials`], the [`BrokerAuth`] used by the gateway
//!   (per-device secrets, a gateway login, bridges, revocation, `open` demo mode);
//! - [`stats`]: [`BrokerStats`], counters for telemetry, and rate-limited denial logs.
//!
//! What the embedded broker does **not** give: durability. Sessions, queued QoS 1
//! messages and retained messages live in memory and die with the process; the device
//! outbox and the gateway journal are the durable copies.

pub mod acl;
pub mod credentials;
mod front;
mod rmqtt;
pub mod stats;
pub mod throttle;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anxin_firmware::wire::DeviceId;
use serde::Deserialize;

pub use self::acl::DeviceTopicPolicy;
pub use self::credentials::{AuthMode, DeviceCredentials, SecretHash};
pub use self::front::{MAX_HANDSHAKES, MAX_WAITING};
pub use self::rmqtt::{EmbeddedBroker, start, start_with_tap};
pub use self::stats::{BrokerStats, DenyReason, DropReason, HandshakeRefusal};

/// Who a connected client is, decided once at CONNECT by [`BrokerAuth::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// The Anxin gateway: reads all device uplinks, writes all device downlinks.
    Gateway,
    /// A home device; its MQTT client id (and username, if it sends one) is its id.
    Device(DeviceId),
    /// A bridge such as Zigbee2MQTT, named by its username; confined to the bridge prefix.
    Bridge(String),
    /// A trusted multiplexer that speaks for many devices over one connection (the load
    /// generator `anxin load`, or a hub that relays its devices), named by its username
    /// (`[[broker.multiplexers]]`): publishes any device's uplink topics and reads any
    /// device's downlink, nothing else. None is configured by default.
    Multiplexer(String),
    /// A client that is none of the above (demo mode only): may neither publish nor
    /// subscribe.
    Anonymous,
}

impl Principal {
    /// The device id, for logs; `None` for non-device principals.
    pub fn device_id(&self) -> Option<&DeviceId> {
        match self {
            Principal::Device(id) => Some(id),
            _ => None,
        }
    }
}

/// Why a CONNECT was refused. The variant names the cause; [`AuthDenied::reason`] gives
/// the closed label used in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AuthDenied {
    /// No credentials are registered for this client (production mode).
    #[error("unknown client")]
    UnknownClient,
    /// The client id is not a valid device id and the client is not the gateway or a
    /// bridge.
    #[error("client id is not a valid device id")]
    BadClientId,
    /// The password is missing or wrong.
    #[error("bad password")]
    BadPassword,
    /// The device's credentials were revoked.
    #[error("credentials revoked")]
    Revoked,
    /// A device's username differs from its client id.
    #[error("username does not match client id")]
    ClientIdMismatch,
    /// The last will's topic is one the client may not publish to.
    #[error("last will topic not allowed")]
    WillDenied,
}

impl AuthDenied {
    /// Every variant, in a fixed order (for counters).
    pub const ALL: [AuthDenied; 6] = [
        AuthDenied::UnknownClient,
        AuthDenied::BadClientId,
        AuthDenied::BadPassword,
        AuthDenied::Revoked,
        AuthDenied::ClientIdMismatch,
        AuthDenied::WillDenied,
    ];

    /// The matching [`DenyReason`].
    pub fn reason(self) -> DenyReason {
        match self {
            AuthDenied::UnknownClient => DenyReason::UnknownClient,
            AuthDenied::BadClientId => DenyReason::BadClientId,
            AuthDenied::BadPassword => DenyReason::BadPassword,
            AuthDenied::Revoked => DenyReason::Revoked,
            AuthDenied::ClientIdMismatch => DenyReason::ClientIdMismatch,
            AuthDenied::WillDenied => DenyReason::WillDenied,
        }
    }
}

/// Authentication and authorisation of broker clients. The broker calls it at CONNECT
/// ([`authenticate`](Self::authenticate)), on every PUBLISH and last will
/// ([`may_publish`](Self::may_publish)) and on every SUBSCRIBE
/// ([`may_subscribe`](Self::may_subscribe)); the last two run on the broker's hot path and
/// must not block.
pub trait BrokerAuth: Send + Sync + 'static {
    /// Decides who the client is, or refuses it.
    fn authenticate(
        &self,
        client_id: &str,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<Principal, AuthDenied>;

    /// Whether `who` may publish to the topic name `topic`.
    fn may_publish(&self, who: &Principal, topic: &str) -> bool;

    /// Whether `who` may subscribe to the topic filter `filter`.
    fn may_subscribe(&self, who: &Principal, filter: &str) -> bool;

    /// A stream of client ids whose live connections must be closed now (revoked
    /// credentials). The broker subscribes once, at [`start`]. `None`: never.
    fn kicks(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }
}

/// Receives, in process, the device uplinks that the embedded broker accepted (after the
/// ACL): the gateway's ingest, without a round trip through its own MQTT session.
///
/// [`deliver`](Self::deliver) may wait (a full ingest queue): the publishing connection
/// waits with it, so an overloaded gateway slows its devices down (TCP back-pressure)
/// instead of the broker dropping messages from a full session queue. Topics the tap
/// does not [`want`](Self::wants) are routed to subscribers as usual; last wills never
/// pass the ACL and are routed to subscribers only.
#[async_trait::async_trait]
pub trait UplinkTap: Send + Sync + 'static {
    /// Whether messages on `topic` go to the tap.
    fn wants(&self, topic: &str) -> bool;

    /// Takes one accepted message.
    async fn deliver(&self, topic: &str, payload: bytes::Bytes);
}

/// Errors of [`start`].
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A listener could not bind its address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// What the engine said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("cannot load TLS certificate {cert} / key {key}: {source}")]
    Tls {
        /// Certificate chain path (PEM).
        cert: PathBuf,
        /// Private key path (PEM).
        key: PathBuf,
        /// What the engine said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A configuration value is out of range.
    #[error("invalid broker configuration: {0}")]
    Config(&'static str),
}

/// Configuration of the embedded broker: the `[broker]` section of the config file.
///
/// ```toml
/// [broker]
/// listen = "0.0.0.0:1883"        # port 0: any free port (see EmbeddedBroker::local_addr)
/// max_packet_bytes = 4096        # the protocol's largest payload is 512 bytes
/// max_inflight = 1024            # unacknowledged QoS 1 messages per client
/// max_queue = 100000             # messages queued per session (client slow or away)
/// session_expiry_secs = 86400    # a clean_session=false session outlives its client this long
/// message_expiry_secs = 0        # 0: queued and retained messages never expire
/// connect_timeout_secs = 10      # a client that has not sent its CONNECT by then is closed
/// # [[broker.multiplexers]]          # none by default
/// # username = "anxin-load"
/// # secret_hash = "…"                # `anxin load secret-hash SECRET` prints it
/// # [broker.tls]
/// # listen = "0.0.0.0:8883"
/// # cert_path = "/etc/anxin/broker.crt"   # PEM chain, server certificate first
/// # key_path = "/etc/anxin/broker.key"    # PEM private key
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Plain MQTT listener.
    pub listen: SocketAddr,
    /// Largest MQTT packet accepted, in bytes; larger packets close the connection.
    pub max_packet_bytes: u32,
    /// Unacknowledged outgoing QoS 1/2 messages per client (1..=65535). High, so that the
    /// gateway's subscription is never throttled by the broker.
    pub max_inflight: u16,
    /// Messages queued per session while its client is slow or disconnected; beyond it,
    /// messages for that session are dropped.
    pub max_queue: usize,
    /// How long a `clean_session=false` session (its subscriptions and queue) is kept
    /// after its client disconnects, in seconds.
    #[serde(rename = "session_expiry_secs", with = "secs")]
    pub session_expiry: Duration,
    /// How long a queued or retained message lives, in seconds; 0 = forever.
    #[serde(rename = "message_expiry_secs", with = "secs")]
    pub message_expiry: Duration,
    /// How long a new connection may take to send its whole CONNECT before it is closed
    /// (also rmqtt's handshake timeout), in seconds.
    #[serde(rename = "connect_timeout_secs", with = "secs")]
    pub connect_timeout: Duration,
    /// Optional MQTT over TLS listener.
    pub tls: Option<TlsConfig>,
    /// `production` (default): every client needs valid credentials. `open`: a client
    /// without a password is identified by its client id (demo and closed test
    /// networks only; see [`AuthMode`]).
    pub auth: AuthMode,
    /// Logins that may publish for every device and read every device's downlink
    /// ([`Principal::Multiplexer`]): the load generator, a trusted concentrator. Empty by
    /// default; give one to nothing that is not fully trusted.
    pub multiplexers: Vec<MultiplexerLogin>,
}

/// A `[[broker.multiplexers]]` entry: a username and the [`SecretHash`] of its password
/// (the password itself is never written in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiplexerLogin {
    /// MQTT username (and client id prefix) of the multiplexer.
    pub username: String,
    /// `SecretHash` of the password, 64 hex digits (`anxin load secret-hash SECRET`).
    pub secret_hash: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 1883)),
            max_packet_bytes: 4096,
            max_inflight: 1024,
            max_queue: 100_000,
            session_expiry: Duration::from_secs(24 * 60 * 60),
            message_expiry: Duration::ZERO,
            connect_timeout: Duration::from_secs(10),
            tls: None,
            auth: AuthMode::Production,
            multiplexers: Vec::new(),
        }
    }
}

impl BrokerConfig {
    /// The defaults, listening on `127.0.0.1` on a free port (tests, demo).
    pub fn loopback() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        }
    }
}

/// The TLS listener: `[broker.tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the TLS listener (port 0: any free port).
    pub listen: SocketAddr,
    /// Certificate chain, PEM, server certificate first.
    pub cert_path: PathBuf,
    /// Private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_broker_section_gives_the_defaults() {
        let cfg: BrokerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, BrokerConfig::default());
        assert_eq!(cfg.max_packet_bytes, 4096);
        assert!(cfg.tls.is_none());
        assert!(
            cfg.multiplexers.is_empty(),
            "no multiplexer unless configured"
        );
    }

    #[test]
    fn a_broker_section_with_tls_is_read_with_seconds() {
        let cfg: BrokerConfig = serde_json::from_str(
            r#"{"listen":"127.0.0.1:0","session_expiry_secs":60,
                "tls":{"listen":"127.0.0.1:0","cert_path":"c.pem","key_path":"k.pem"}}"#,
        )
        .unwrap();
        assert_eq!(cfg.session_expiry, Duration::from_secs(60));
        assert_eq!(cfg.tls.unwrap().cert_path, PathBuf::from("c.pem"));
        assert!(serde_json::from_str::<BrokerConfig>(r#"{"lisen":"1.2.3.4:1"}"#).is_err());
    }
}
