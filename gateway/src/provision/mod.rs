//! Provisioning and device security: what technicians do with devices.
//!
//! - registration (kind, serial/MAC, household, room, Zigbee2MQTT name) and per-device
//!   credentials: a random 128-bit [`Secret`] shown once, stored only as hashes
//!   ([`secret`]); rotation and revocation, applied to the running broker at once (the
//!   embedded broker's [`DeviceCredentials`] refuse and kick; an external mosquitto gets
//!   new files and a reload, [`mosquitto`]);
//! - the provisioning blob and the command that flashes it ([`blob`]);
//! - device health (last seen, battery trend, signal, firmware, false presses) and
//!   technician work orders ([`orders`]);
//! - installation tests ([`install`]);
//! - keeping a running gateway in step with the store ([`live`]).
//!
//! [`Provisioning`] is the service layer: the CLI (`anxin device …`) uses it on the store
//! alone ([`Provisioning::offline`]); inside the gateway ([`start`]) the same calls also
//! take effect at once. A running gateway polls `provision_version` every
//! `poll_interval_ms`, so a change made by the CLI in another process (a revocation
//! above all) reaches the broker within that time. The HTTP API's routes are meant to be
//! thin wrappers around the methods of [`Provisioning`].

pub mod blob;
pub mod install;
pub mod live;
pub mod mosquitto;
pub mod orders;
pub mod secret;

use std::path::PathBuf;
use std::sync::Arc;

use anxin_firmware::provision::BLOB_LEN;
use anxin_firmware::wire::DeviceId;
use serde::{Deserialize, Serialize};
use tracing::info;

pub use self::blob::{BlobOptions, FlashOptions, FlashTarget, flash_command};
pub use self::install::{CheckOff, InstallTestView, TestEvent, TestedDevice};
pub use self::live::{LiveDeps, load_credentials, start};
pub use self::orders::{DeviceHealth, HealthTrend, SweepReport, WorkOrderReason};
pub use self::secret::Secret;
use crate::broker::SecretHash;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::ingest::zigbee2mqtt::BRIDGE_KIND;
use crate::store::{self, DeviceRow, Store, StoreError};
pub use crate::store::{PressRow, WorkOrderRow};

/// `[provision]`: blob defaults, health thresholds, installation tests, the external
/// broker's files.
///
/// ```toml
/// [provision]
/// broker_host = "192.168.1.10"   # what devices connect to (written into blobs)
/// broker_port = 1883              # 8883 when ca_cert_path is set (TLS)
/// # ca_cert_path = "/etc/anxin/ca.crt"   # its SHA-256 goes into blobs: devices use TLS
/// heartbeat_s = 300
/// help_cancel_s = 10
/// fall_cancel_s = 30
/// poll_interval_ms = 2000         # how often a running gateway looks for CLI changes
/// sweep_interval_s = 60           # work orders and battery samples
/// zigbee_liveness_s = 3600        # a Zigbee device checks in at least this often
/// install_test_minutes = 30
/// never_seen_after_s = 86400      # a registered device never heard from: work order
/// battery_warning_days = 14       # battery trend: work order when empty sooner
/// suspicious_false_presses = 3    # …within suspicious_window_days: work order
/// suspicious_window_days = 7
/// # [provision.mosquitto]         # external broker: keep its files current
/// # password_file = "/etc/mosquitto/anxin.passwd"
/// # acl_file = "/etc/mosquitto/anxin.acl"
/// # reload_command = ["systemctl", "reload", "mosquitto"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisionConfig {
    /// Broker host written into blobs.
    pub broker_host: String,
    /// Broker port written into blobs (0: 1883, or 8883 with a CA).
    pub broker_port: u16,
    /// The broker's CA certificate (PEM or DER): blobs then carry its SHA-256 and
    /// devices use TLS.
    pub ca_cert_path: Option<PathBuf>,
    /// Heartbeat interval written into blobs, s.
    pub heartbeat_s: u32,
    /// Help-button cancel window written into blobs, s.
    pub help_cancel_s: u16,
    /// Fall "I'm OK" window written into blobs, s.
    pub fall_cancel_s: u16,
    /// How often a running gateway checks the store for changes, ms.
    pub poll_interval_ms: u64,
    /// How often work orders are reviewed and battery samples taken, s.
    pub sweep_interval_s: u64,
    /// The longest silence of a healthy Zigbee device (their check-in), s.
    pub zigbee_liveness_s: u32,
    /// Default installation test length, minutes.
    pub install_test_minutes: u32,
    /// A registered device never heard from after this long gets a work order, s.
    pub never_seen_after_s: u64,
    /// A battery that the trend says is empty within this many days gets a work order.
    pub battery_warning_days: u32,
    /// This many false presses within `suspicious_window_days` make a device suspicious.
    pub suspicious_false_presses: u32,
    /// See `suspicious_false_presses`.
    pub suspicious_window_days: u32,
    /// An external mosquitto whose files the gateway keeps current.
    pub mosquitto: Option<MosquittoConfig>,
}

impl Default for ProvisionConfig {
    fn default() -> Self {
        ProvisionConfig {
            broker_host: String::new(),
            broker_port: 0,
            ca_cert_path: None,
            heartbeat_s: 300,
            help_cancel_s: 10,
            fall_cancel_s: 30,
            poll_interval_ms: 2000,
            sweep_interval_s: 60,
            zigbee_liveness_s: 3600,
            install_test_minutes: 30,
            never_seen_after_s: 86_400,
            battery_warning_days: 14,
            suspicious_false_presses: 3,
            suspicious_window_days: 7,
            mosquitto: None,
        }
    }
}

/// `[provision.mosquitto]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MosquittoConfig {
    /// mosquitto's `password_file`.
    pub password_file: PathBuf,
    /// mosquitto's `acl_file`.
    pub acl_file: PathBuf,
    /// Run after writing them (no shell), e.g. `["systemctl", "reload", "mosquitto"]`.
    #[serde(default)]
    pub reload_command: Vec<String>,
}

/// Why a provisioning operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// No such device.
    #[error("unknown device {0}")]
    UnknownDevice(String),
    /// The device id is registered already.
    #[error("device {0} is already registered")]
    AlreadyRegistered(String),
    /// The serial or MAC belongs to another device.
    #[error("serial {serial} already belongs to device {device}")]
    SerialTaken {
        /// The serial.
        serial: String,
        /// Its device.
        device: String,
    },
    /// The Zigbee2MQTT name belongs to another device.
    #[error("Zigbee2MQTT name {name:?} already belongs to device {device}")]
    ZigbeeNameTaken {
        /// The name.
        name: String,
        /// Its device.
        device: String,
    },
    /// No such household.
    #[error("unknown household {0}")]
    UnknownHousehold(String),
    /// Not a valid device id (1–32 of `[A-Za-z0-9_-]`).
    #[error("invalid device id {0:?} (1-32 characters of A-Z a-z 0-9 _ -)")]
    BadDeviceId(String),
    /// Not a known device kind.
    #[error("unknown device kind {0:?} (door, motion, help, gas, pendant, zigbee_bridge)")]
    BadKind(String),
    /// The device logs in through a Zigbee2MQTT bridge and has no credentials.
    #[error("device {0} is a Zigbee device: its bridge logs in, it has no credentials")]
    NoCredentials(String),
    /// The device's credentials are revoked.
    #[error("the credentials of device {0} are revoked")]
    Revoked(String),
    /// The secret given is not the device's current one.
    #[error("that is not the current secret of device {0}")]
    WrongSecret(String),
    /// No installation test is running in the household.
    #[error("no installation test is running in household {0}")]
    NoTest(String),
    /// An installation test is already running in the household.
    #[error("an installation test is already running in household {0}")]
    TestRunning(String),
    /// No such work order.
    #[error("unknown work order {0}")]
    UnknownWorkOrder(i64),
    /// A value is out of range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The blob could not be encoded.
    #[error("provisioning blob: {0}")]
    Blob(#[from] anxin_firmware::provision::ProvisionError),
    /// The CA certificate could not be read.
    #[error("CA certificate {path}: {reason}")]
    CaCert {
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The external broker's reload command failed.
    #[error("reloading the broker: {0}")]
    Reload(String),
    /// Detection refused or stopped.
    #[error("detection: {0}")]
    Detect(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ProvisionError {
    fn from(e: sqlx::Error) -> Self {
        ProvisionError::Store(StoreError::Sql(e))
    }
}

/// The provisioning version in the store: what a running gateway compares with the one
/// it applied.
pub async fn stored_version(store: &Store) -> Result<i64, StoreError> {
    store.provision_version().await
}

/// Device kinds provisioning registers.
pub const KINDS: [&str; 6] = ["door", "motion", "help", "gas", "pendant", BRIDGE_KIND];

/// A device to register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Its id; None: derived from household, kind and room (`h0001-door`).
    pub device_id: Option<String>,
    /// Kind (see [`KINDS`]).
    pub kind: String,
    /// Serial number or MAC address.
    pub serial: Option<String>,
    /// Household (required except for bridges).
    pub household_id: Option<String>,
    /// Room (`entrance`, `bedroom`, `卫生间`…).
    pub room: Option<String>,
    /// Zigbee2MQTT friendly name or IEEE address (a Zigbee device); for a bridge, its
    /// path under the base topic ("" by default).
    pub zigbee_name: Option<String>,
}

/// A registered device, with its secret when it has credentials: **shown once**.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Device id.
    pub device_id: String,
    /// The secret (None for Zigbee devices, which log in through their bridge).
    pub secret: Option<Secret>,
}

/// Newly issued credentials: **shown once**.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Device id.
    pub device_id: String,
    /// The new secret.
    pub secret: Secret,
    /// Its generation (1 for the first).
    pub generation: i32,
}

/// The state of a device's credentials (never the secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CredentialState {
    /// None issued (or a Zigbee device behind its bridge).
    None,
    /// Valid.
    Active {
        /// Generation.
        generation: i32,
        /// Issued at.
        issued_ms: i64,
    },
    /// Revoked.
    Revoked {
        /// Generation revoked.
        generation: i32,
        /// When.
        revoked_ms: i64,
    },
}

/// A device as listed for technicians.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    /// Device id.
    pub device_id: String,
    /// Kind.
    pub kind: String,
    /// Household.
    pub household_id: Option<String>,
    /// Room.
    pub room: Option<String>,
    /// Serial or MAC.
    pub serial: Option<String>,
    /// Zigbee2MQTT name.
    pub zigbee_name: Option<String>,
    /// Credentials.
    pub credentials: CredentialState,
    /// Health.
    pub health: orders::HealthSummary,
    /// Open work orders.
    pub open_orders: Vec<WorkOrderRow>,
}

/// The service (see the module documentation). Cheap to clone.
#[derive(Clone)]
pub struct Provisioning {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    pub(crate) config: ProvisionConfig,
    /// `[mqtt] zigbee2mqtt_base_topic`.
    pub(crate) base_topic: String,
    /// The gateway's own login on an external broker (`[mqtt] username/password`).
    pub(crate) gateway_login: Option<(String, String)>,
    /// Detection thresholds reused for work orders.
    pub(crate) low_battery_pct: u8,
    pub(crate) battery_ok_pct: u8,
    pub(crate) offline_grace_ms: i64,
    pub(crate) default_heartbeat_s: u32,
    /// Set inside a running gateway.
    pub(crate) live: Option<live::Live>,
}

fn valid_zigbee_name(name: &str, bridge: bool) -> bool {
    (bridge || !name.is_empty())
        && name.len() <= 128
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains(['+', '#', '\0'])
        && !name
            .split('/')
            .any(|l| l == "bridge" || l.is_empty() && !name.is_empty())
}

fn valid_text(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

impl Provisioning {
    /// The service on the store alone (the CLI): changes are picked up by a running
    /// gateway at its next poll.
    pub fn offline(store: Store, clock: SharedClock, config: &Config) -> Provisioning {
        Provisioning {
            inner: Arc::new(Inner::new(store, clock, config, None)),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &ProvisionConfig {
        &self.inner.config
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Registers a device and, unless it is a Zigbee device behind a bridge, issues its
    /// first secret (returned once).
    pub async fn register(
        &self,
        reg: Registration,
        by: &str,
    ) -> Result<Registered, ProvisionError> {
        let kind = reg.kind.trim().to_ascii_lowercase();
        if !KINDS.contains(&kind.as_str()) {
            return Err(ProvisionError::BadKind(reg.kind));
        }
        let bridge = kind == BRIDGE_KIND;
        let household = reg
            .household_id
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty());
        if household.is_none() && !bridge {
            return Err(ProvisionError::Invalid {
                field: "household",
                reason: "a device must belong to a household".into(),
            });
        }
        let room = reg.room.as_deref().map(str::trim).filter(|r| !r.is_empty());
        if room.is_some_and(|r| !valid_text(r, 64)) {
            return Err(ProvisionError::Invalid {
                field: "room",
                reason: "1-64 printable characters".into(),
            });
        }
        let serial = reg
            .serial
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if serial.is_some_and(|s| !valid_text(s, 64)) {
            return Err(ProvisionError::Invalid {
                field: "serial",
                reason: "1-64 printable characters".into(),
            });
        }
        let zigbee = match (reg.zigbee_name.as_deref().map(str::trim), bridge) {
            (Some(n), _) if !valid_zigbee_name(n, bridge) => {
                return Err(ProvisionError::Invalid {
                    field: "zigbee_name",
                    reason: "a topic suffix without +, #, empty levels or a `bridge` level".into(),
                });
            }
            (Some(n), _) => Some(n.to_string()),
            (None, true) => Some(String::new()),
            (None, false) => None,
        };
        let zigbee_device = zigbee.is_some() && !bridge;

        let now = self.now();
        let mut tx = self.inner.store.begin().await?;
        if let Some(h) = household
            && !store::household_exists(&mut tx, h).await?
        {
            return Err(ProvisionError::UnknownHousehold(h.into()));
        }
        let device_id = match reg.device_id.as_deref().map(str::trim) {
            Some(id) => {
                DeviceId::new(id).map_err(|_| ProvisionError::BadDeviceId(id.into()))?;
                id.to_string()
            }
            None => derive_id(&mut tx, household.unwrap_or("gw"), &kind, room).await?,
        };
        if store::is_provisioned(&mut tx, &device_id).await? {
            return Err(ProvisionError::AlreadyRegistered(device_id));
        }
        // A device known to ingest but never provisioned (the demo, an import) may be
        // provisioned in place: same household, same kind. Registration never moves a
        // device to another household; that would hand its events and a fresh secret to
        // whoever names its id.
        if let Some((held_by, held_kind)) = store::device_binding(&mut tx, &device_id).await?
            && (held_by.as_deref() != household || held_kind != kind)
        {
            return Err(ProvisionError::AlreadyRegistered(device_id));
        }
        if let Some(s) = serial
            && let Some(holder) = store::serial_holder(&mut tx, s).await?
        {
            return Err(ProvisionError::SerialTaken {
                serial: s.into(),
                device: holder,
            });
        }
        if let Some(z) = &zigbee
            && let Some(holder) = store::zigbee_name_holder(&mut tx, z).await?
        {
            return Err(ProvisionError::ZigbeeNameTaken {
                name: z.clone(),
                device: holder,
            });
        }
        store::insert_registered_device(&mut tx, &device_id, household, &kind, room, now).await?;
        let secret = (!zigbee_device).then(Secret::generate);
        let secret_hash = secret.as_ref().map(|s| s.hash().to_hex());
        let mosquitto_hash = secret.as_ref().map(Secret::mosquitto_hash);
        store::insert_device_provision(
            &mut tx,
            &store::NewProvision {
                device_id: &device_id,
                serial,
                zigbee_name: zigbee.as_deref(),
                secret_hash: secret_hash.as_deref(),
                mosquitto_hash: mosquitto_hash.as_deref(),
                generation: i32::from(secret.is_some()),
                issued_ms: secret.as_ref().map(|_| now),
                registered_ms: now,
                registered_by: by,
            },
        )
        .await?;
        store::bump_provision_version(&mut tx).await?;
        tx.commit().await?;
        info!(device_id = %device_id, household_id = household.unwrap_or(""), kind = %kind, by, "device registered");
        self.after_change().await?;
        Ok(Registered { device_id, secret })
    }

    /// Every device of `household` (or all), with credentials, health and open work
    /// orders.
    pub async fn list(&self, household: Option<&str>) -> Result<Vec<DeviceView>, ProvisionError> {
        let rows = self.inner.store.device_rows(household).await?;
        let health = orders::health_rows(&self.inner.store).await?;
        let open = self.inner.store.work_orders(true, None, household).await?;
        let now = self.now();
        Ok(rows
            .into_iter()
            .map(|r| {
                let h = health.get(&r.device_id);
                let orders = open
                    .iter()
                    .filter(|o| o.device_id == r.device_id)
                    .cloned()
                    .collect();
                self.view(r, h, orders, now)
            })
            .collect())
    }

    /// One device.
    pub async fn device(&self, id: &str) -> Result<DeviceView, ProvisionError> {
        let r = self
            .inner
            .store
            .device_row(id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownDevice(id.into()))?;
        let health = orders::health_rows(&self.inner.store).await?;
        let open = self.inner.store.work_orders(true, Some(id), None).await?;
        Ok(self.view(r, health.get(id), open, self.now()))
    }

    fn view(
        &self,
        r: DeviceRow,
        h: Option<&crate::store::HealthRow>,
        open_orders: Vec<WorkOrderRow>,
        now: i64,
    ) -> DeviceView {
        let credentials = credential_state(&r);
        let health = orders::HealthSummary::of(self, &r, h, now);
        DeviceView {
            device_id: r.device_id,
            kind: r.kind,
            household_id: r.household_id,
            room: r.room,
            serial: r.serial,
            zigbee_name: r.zigbee_name,
            credentials,
            health,
            open_orders,
        }
    }

    /// The state of a device's credentials.
    pub async fn credentials(&self, id: &str) -> Result<CredentialState, ProvisionError> {
        let r = self
            .inner
            .store
            .device_row(id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownDevice(id.into()))?;
        Ok(credential_state(&r))
    }

    /// Issues a new secret (first issue, rotation, or re-activation after a
    /// revocation). The previous secret stops working at once: a live connection made
    /// with it is closed.
    pub async fn rotate(&self, id: &str, by: &str) -> Result<Issued, ProvisionError> {
        let r = self
            .inner
            .store
            .device_row(id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownDevice(id.into()))?;
        if r.zigbee_name.is_some() && r.kind != BRIDGE_KIND {
            return Err(ProvisionError::NoCredentials(id.into()));
        }
        let secret = Secret::generate();
        let now = self.now();
        let generation = r.generation + 1;
        let mut tx = self.inner.store.begin().await?;
        store::upsert_device_secret(
            &mut tx,
            &store::NewSecret {
                device_id: id,
                secret_hash: &secret.hash().to_hex(),
                mosquitto_hash: &secret.mosquitto_hash(),
                generation,
                issued_ms: now,
                by,
            },
        )
        .await?;
        store::bump_provision_version(&mut tx).await?;
        tx.commit().await?;
        info!(device_id = %id, generation, by, "device credentials issued");
        self.after_change().await?;
        Ok(Issued {
            device_id: id.into(),
            secret,
            generation,
        })
    }

    /// Revokes a device's credentials: refused at its next CONNECT and disconnected now
    /// (embedded broker; an external mosquitto at its reload).
    pub async fn revoke(&self, id: &str, by: &str) -> Result<CredentialState, ProvisionError> {
        let r = self
            .inner
            .store
            .device_row(id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownDevice(id.into()))?;
        if r.secret_hash.is_none() {
            return Err(ProvisionError::NoCredentials(id.into()));
        }
        let now = self.now();
        let mut tx = self.inner.store.begin().await?;
        store::revoke_device_secret(&mut tx, id, now).await?;
        store::bump_provision_version(&mut tx).await?;
        tx.commit().await?;
        info!(device_id = %id, by, "device credentials revoked");
        self.after_change().await?;
        self.credentials(id).await
    }

    /// Checks that `secret` is the device's current, unrevoked secret.
    pub async fn verify_secret(&self, id: &str, secret: &Secret) -> Result<(), ProvisionError> {
        let r = self
            .inner
            .store
            .device_row(id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownDevice(id.into()))?;
        if r.revoked_ms.is_some() {
            return Err(ProvisionError::Revoked(id.into()));
        }
        let hash = r
            .secret_hash
            .as_deref()
            .and_then(SecretHash::from_hex)
            .ok_or_else(|| ProvisionError::NoCredentials(id.into()))?;
        if hash.matches(secret.expose().as_bytes()) {
            Ok(())
        } else {
            Err(ProvisionError::WrongSecret(id.into()))
        }
    }

    /// The blob options from the configuration (`[provision]`).
    pub fn blob_options(&self) -> Result<BlobOptions, ProvisionError> {
        let c = &self.inner.config;
        let ca = c
            .ca_cert_path
            .as_deref()
            .map(blob::ca_fingerprint_file)
            .transpose()?;
        if c.broker_host.trim().is_empty() {
            return Err(ProvisionError::Invalid {
                field: "broker_host",
                reason:
                    "set [provision] broker_host (or --broker-host): the address devices connect to"
                        .into(),
            });
        }
        Ok(BlobOptions {
            broker_host: c.broker_host.trim().to_string(),
            broker_port: match (c.broker_port, ca.is_some()) {
                (0, true) => 8883,
                (0, false) => 1883,
                (p, _) => p,
            },
            ca_sha256: ca,
            heartbeat_s: c.heartbeat_s,
            help_cancel_s: c.help_cancel_s,
            fall_cancel_s: c.fall_cancel_s,
        })
    }

    /// The provisioning blob of device `id` with its current `secret` (checked against
    /// the stored hash, so a blob never carries a wrong password).
    pub async fn blob(
        &self,
        id: &str,
        secret: &Secret,
        options: &BlobOptions,
    ) -> Result<[u8; BLOB_LEN], ProvisionError> {
        self.verify_secret(id, secret).await?;
        blob::build(id, secret, options)
    }

    /// Writes mosquitto's password and ACL files for every active credential; returns
    /// how many logins were written.
    pub async fn write_mosquitto_files(
        &self,
        password_file: &std::path::Path,
        acl_file: &std::path::Path,
    ) -> Result<usize, ProvisionError> {
        let rows = self.inner.store.device_rows(None).await?;
        let mut logins = Vec::new();
        let mut bridges = Vec::new();
        for r in &rows {
            let (Some(hash), None) = (&r.mosquitto_hash, r.revoked_ms) else {
                continue;
            };
            logins.push(mosquitto::Login {
                username: r.device_id.clone(),
                hash: hash.clone(),
            });
            if r.kind == BRIDGE_KIND {
                bridges.push(mosquitto::BridgeAcl {
                    username: r.device_id.clone(),
                    path: r.zigbee_name.clone().unwrap_or_default(),
                });
            }
        }
        let gateway_user = self.inner.gateway_login.as_ref().map(|(u, p)| {
            logins.push(mosquitto::Login {
                username: u.clone(),
                hash: Secret::from_text(p).mosquitto_hash(),
            });
            u.as_str()
        });
        let n = logins.len();
        mosquitto::write_atomic(password_file, &mosquitto::password_file(&logins))?;
        mosquitto::write_atomic(
            acl_file,
            &mosquitto::acl_file(gateway_user, &self.inner.base_topic, &bridges),
        )?;
        Ok(n)
    }

    /// After a change in this process: apply it now when running inside the gateway.
    async fn after_change(&self) -> Result<(), ProvisionError> {
        if self.inner.live.is_some() {
            self.sync().await?;
        }
        Ok(())
    }
}

impl Inner {
    pub(crate) fn new(
        store: Store,
        clock: SharedClock,
        config: &Config,
        live: Option<live::Live>,
    ) -> Inner {
        let gateway_login = match (&config.mqtt.username, &config.mqtt.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => None,
        };
        Inner {
            store,
            clock,
            config: config.provision.clone(),
            base_topic: config.mqtt.zigbee2mqtt_base_topic.clone(),
            gateway_login,
            low_battery_pct: config.detect.low_battery_pct,
            battery_ok_pct: config.detect.battery_ok_pct,
            offline_grace_ms: i64::from(config.detect.offline_grace_s) * 1000,
            default_heartbeat_s: config.detect.default_heartbeat_s,
            live,
        }
    }
}

fn credential_state(r: &DeviceRow) -> CredentialState {
    match (r.secret_hash.is_some(), r.revoked_ms, r.issued_ms) {
        (true, Some(revoked_ms), _) => CredentialState::Revoked {
            generation: r.generation,
            revoked_ms,
        },
        (true, None, Some(issued_ms)) => CredentialState::Active {
            generation: r.generation,
            issued_ms,
        },
        _ => CredentialState::None,
    }
}

/// `h0001-door`, `h0001-motion-bedroom`, then `-2`, `-3`… until free.
async fn derive_id(
    tx: &mut store::Conn,
    household: &str,
    kind: &str,
    room: Option<&str>,
) -> Result<String, ProvisionError> {
    let room = room
        .map(|r| r.to_ascii_lowercase().replace(' ', "-"))
        .filter(|r| r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let mut base = match (kind, room) {
        ("door" | "help" | "gas" | "pendant", _) | (_, None) => format!("{household}-{kind}"),
        (_, Some(r)) => format!("{household}-{kind}-{r}"),
    };
    base.truncate(28);
    for n in 1..1000 {
        let id = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        if DeviceId::new(&id).is_err() {
            return Err(ProvisionError::BadDeviceId(id));
        }
        if !store::device_exists(tx, &id).await? {
            return Ok(id);
        }
    }
    Err(ProvisionError::BadDeviceId(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigbee_names_cannot_carry_wildcards_or_reach_the_bridge_topics() {
        assert!(valid_zigbee_name("0x00158d0007ef997c", false));
        assert!(valid_zigbee_name("KeukenMotionSensorMS4", false));
        assert!(valid_zigbee_name("h0001/kitchen", false));
        assert!(valid_zigbee_name("", true));
        for bad in [
            "",
            "a/#",
            "+",
            "/a",
            "a/",
            "bridge/state",
            "a//b",
            "x/bridge",
        ] {
            assert!(!valid_zigbee_name(bad, false), "{bad}");
        }
    }
}
