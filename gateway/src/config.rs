//! Configuration: defaults that need no file at all, then an optional TOML file, then
//! environment variables `ANXIN_<SECTION>__<KEY>` (for example `ANXIN_HTTP__LISTEN`).
//! One section per module; `anxin.example.toml` at the repository root documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

use crate::broker::BrokerConfig;
use crate::detect::DetectConfig;
use crate::history::HistoryConfig;
use crate::workflow::WorkflowConfig;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Paths and locale.
    pub general: GeneralConfig,
    /// The SQL store.
    pub store: StoreConfig,
    /// How the gateway reaches MQTT: the embedded broker or an external one.
    pub mqtt: MqttConfig,
    /// The embedded broker (used when `mqtt.mode = "embedded"`).
    pub broker: BrokerConfig,
    /// The ingest pipeline.
    pub ingest: IngestConfig,
    /// The HTTP server (API, dashboard, health, metrics).
    pub http: HttpConfig,
    /// Detection: routines, thresholds, deadlines.
    pub detect: DetectConfig,
    /// The alert workflow, notifications and reports.
    pub workflow: WorkflowConfig,
    /// Time-series history.
    pub history: HistoryConfig,
    /// The clock (rehearsals and tests only: real time unless `speed` is set).
    pub clock: ClockConfig,
    /// Provisioning, device health and work orders, installation tests.
    pub provision: crate::provision::ProvisionConfig,
}

/// `[clock]`: run the gateway's time faster than real time, from fixed origins so that a
/// restarted process reads the same time. Leave it out in production.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    /// How many times faster than real time (unset: the system clock).
    pub speed: Option<f64>,
    /// The real time (Unix ms) at which the warped time reads `virtual_origin_ms`.
    pub real_origin_ms: Option<i64>,
    /// See `real_origin_ms` (default: the same instant).
    pub virtual_origin_ms: Option<i64>,
}

impl ClockConfig {
    /// The clock this configuration asks for.
    pub fn build(&self) -> crate::clock::SharedClock {
        use crate::clock::{Clock, HostClock, SystemClock, WarpedClock};
        match self.speed {
            None => std::sync::Arc::new(HostClock::new()),
            Some(speed) => {
                let real = self.real_origin_ms.unwrap_or_else(|| SystemClock.now_ms());
                let virt = self.virtual_origin_ms.unwrap_or(real);
                std::sync::Arc::new(WarpedClock::new(real, virt, speed))
            }
        }
    }
}

/// `[general]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneralConfig {
    /// Where the embedded store and other local state live.
    pub data_dir: PathBuf,
    /// IANA time zone of the homes, for "today", wake-up times and reports.
    pub timezone: String,
}

impl Default for GeneralConfig {
    fn default() -> Self {
        GeneralConfig {
            data_dir: PathBuf::from("anxin-data"),
            timezone: "Asia/Shanghai".into(),
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Database URL: `sqlite://PATH` or `postgres://…`. Empty: a SQLite file
    /// `anxin.db` in `general.data_dir`.
    pub url: String,
}

/// Which broker the gateway uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MqttMode {
    /// Start the embedded broker and connect to it over loopback.
    #[default]
    Embedded,
    /// Connect to an external broker (mosquitto, EMQX…) at `host:port`.
    External,
}

/// `[mqtt]`: the gateway's own MQTT session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Embedded or external broker.
    pub mode: MqttMode,
    /// External broker host.
    pub host: String,
    /// External broker port.
    pub port: u16,
    /// Client id of the gateway's persistent session.
    pub client_id: String,
    /// Username (external brokers with authentication).
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Keep-alive in seconds.
    pub keep_alive_s: u64,
    /// First reconnect delay in milliseconds (doubles up to `reconnect_max_ms`).
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay in milliseconds.
    pub reconnect_max_ms: u64,
    /// Zigbee2MQTT base topic the gateway also subscribes to ("" = none); the embedded
    /// broker confines bridges to it.
    pub zigbee2mqtt_base_topic: String,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            mode: MqttMode::Embedded,
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "anxin-gateway".into(),
            username: None,
            password: None,
            keep_alive_s: 15,
            reconnect_min_ms: 200,
            reconnect_max_ms: 10_000,
            zigbee2mqtt_base_topic: "zigbee2mqtt".into(),
        }
    }
}

/// `[ingest]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Most messages committed in one transaction (group commit).
    pub batch_max: usize,
    /// Capacity of the queue between the MQTT session and the committer.
    pub queue_capacity: usize,
    /// Events whose `unix` time lies further than this in the future are rejected.
    pub max_clock_skew_s: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            batch_max: 2048,
            queue_capacity: 65_536,
            max_clock_skew_s: 86_400,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address of the HTTP server.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// Configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

impl Config {
    /// Defaults, then `file` when given, then `ANXIN_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        // Every section is `#[serde(default)]`: an empty figment extracts the defaults.
        let mut fig = Figment::new();
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        // Only `ANXIN_<SECTION>__<KEY>` names a setting; other `ANXIN_*` variables (the
        // test suite's `ANXIN_TEST_POSTGRES`, a shell's own) are not configuration.
        fig.merge(
            Env::prefixed("ANXIN_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        )
        .extract()
        .map_err(|e| ConfigError(Box::new(e)))
    }

    /// The store URL, with the default filled in.
    pub fn store_url(&self) -> String {
        if self.store.url.is_empty() {
            format!(
                "sqlite://{}",
                self.general.data_dir.join("anxin.db").display()
            )
        } else {
            self.store.url.clone()
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its own large error
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.mqtt.mode, MqttMode::Embedded);
        assert_eq!(c.general.timezone, "Asia/Shanghai");
        assert!(c.store_url().starts_with("sqlite://"));
    }

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "a.toml",
                "[mqtt]\nmode = \"external\"\nport = 11883\n[http]\nlisten = \"127.0.0.1:9000\"\n",
            )?;
            jail.set_env("ANXIN_MQTT__PORT", "21883");
            // Not a setting: no section.
            jail.set_env("ANXIN_TEST_POSTGRES", "postgres://127.0.0.1:1");
            let c = Config::load(Some(Path::new("a.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.mqtt.mode, MqttMode::External);
            assert_eq!(c.mqtt.port, 21883);
            assert_eq!(c.http.listen.port(), 9000);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_an_error_not_silence() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("b.toml", "[mqtt]\nprot = 1\n")?;
            assert!(Config::load(Some(Path::new("b.toml"))).is_err());
            Ok(())
        });
    }
}
