//! [`DeviceCredentials`]: the [`BrokerAuth`] of the gateway.
//!
//! - **Devices** authenticate with MQTT username = client id = device id and a password
//!   that is the device's 128-bit (or longer) random secret, written to it at
//!   provisioning. Only a [`SecretHash`] (SHA-256, domain-separated) is kept: the secrets
//!   are random and long, so a slow password hash (argon2, for humans) buys nothing.
//! - **The gateway** logs in with its own username and password.
//! - **Bridges** (Zigbee2MQTT) log in with a bridge name and password.
//! - **Multiplexers** (`[[broker.multiplexers]]`, none by default: the load generator,
//!   a trusted hub) log in with a username and password and speak for every device.
//! - **Revocation** ([`DeviceCredentials::revoke`]) refuses the device's next CONNECT at
//!   once and asks the broker, through [`BrokerAuth::kicks`], to close its live
//!   connection.
//!
//! Two modes ([`AuthMode`]):
//! - `production`: every client needs valid credentials.
//! - `open` (demo): a client without a password is accepted and **identified by its client
//!   id**: a valid device id makes it that device, under that device's topic ACL; anything
//!   else is [`Principal::Anonymous`] and may do nothing. The gateway and bridges still
//!   need their passwords, revoked devices are still refused, and a password that is
//!   presented must be right. Anyone on the network can therefore act as any device in
//!   open mode (and take over its session): use it only on a closed demo machine.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use anxin_firmware::wire::DeviceId;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::{AuthDenied, BrokerAuth, DeviceTopicPolicy, Principal};

/// How strict authentication is (`[broker] auth = "open" | "production"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Demo: no password needed; the topic ACL applies by client id.
    Open,
    /// Every client authenticates with a password.
    #[default]
    Production,
}

/// The stored form of a secret: `SHA-256("anxin-broker-secret-v1\0" || secret)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    const DOMAIN: &'static [u8] = b"anxin-broker-secret-v1\0";

    /// Hashes a secret (a device secret or a gateway/bridge password).
    pub fn of(secret: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(Self::DOMAIN);
        h.update(secret);
        SecretHash(h.finalize().into())
    }

    /// Whether `secret` hashes to this value (constant time in the hash comparison).
    pub fn matches(&self, secret: &[u8]) -> bool {
        let other = Self::of(secret);
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// The 64 lowercase hex digits, for storage.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits as written by [`to_hex`](Self::to_hex).
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(SecretHash(out))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", &self.to_hex()[..8])
    }
}

#[derive(Debug, Clone, Copy)]
enum DeviceEntry {
    Active(SecretHash),
    Revoked,
}

/// Credentials of every client of the embedded broker, and the topic policy.
/// Changes (new device, revocation) take effect at the next CONNECT, and revocation also
/// closes live connections.
#[derive(Debug)]
pub struct DeviceCredentials {
    mode: AuthMode,
    policy: DeviceTopicPolicy,
    gateway: Option<(String, SecretHash)>,
    bridges: RwLock<HashMap<String, SecretHash>>,
    multiplexers: HashMap<String, SecretHash>,
    devices: RwLock<HashMap<DeviceId, DeviceEntry>>,
    kicks: broadcast::Sender<String>,
}

impl DeviceCredentials {
    /// No devices, no gateway login, the default topic policy.
    pub fn new(mode: AuthMode) -> Self {
        let (kicks, _) = broadcast::channel(1024);
        Self {
            mode,
            policy: DeviceTopicPolicy::default(),
            gateway: None,
            bridges: RwLock::new(HashMap::new()),
            multiplexers: HashMap::new(),
            devices: RwLock::new(HashMap::new()),
            kicks,
        }
    }

    /// Sets the gateway's login. Its username takes precedence over a device id or bridge
    /// name that happens to be equal.
    pub fn with_gateway(mut self, username: &str, password: &[u8]) -> Self {
        self.gateway = Some((username.to_owned(), SecretHash::of(password)));
        self
    }

    /// Adds a multiplexer login ([`Principal::Multiplexer`]) by its password's hash.
    pub fn with_multiplexer(mut self, username: &str, hash: SecretHash) -> Self {
        self.multiplexers.insert(username.to_owned(), hash);
        self
    }

    /// Replaces the topic policy (e.g. another bridge prefix).
    pub fn with_policy(mut self, policy: DeviceTopicPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The mode.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Registers (or replaces, un-revoking) a device's secret hash.
    pub fn set_device(&self, id: DeviceId, hash: SecretHash) {
        write(&self.devices).insert(id, DeviceEntry::Active(hash));
    }

    /// Registers a device with its secret, hashing it.
    pub fn set_device_secret(&self, id: DeviceId, secret: &[u8]) {
        self.set_device(id, SecretHash::of(secret));
    }

    /// Revokes a device: its next CONNECT is refused (in both modes) and its live
    /// connection, if any, is closed by the broker. Returns whether the device was known
    /// and active.
    pub fn revoke(&self, id: &DeviceId) -> bool {
        let was_active = matches!(
            write(&self.devices).insert(id.clone(), DeviceEntry::Revoked),
            Some(DeviceEntry::Active(_))
        );
        // No receiver (no broker running) is fine: there is nothing to close.
        let _ = self.kicks.send(id.as_str().to_owned());
        was_active
    }

    /// Whether the device is registered and not revoked.
    pub fn is_active(&self, id: &DeviceId) -> bool {
        matches!(read(&self.devices).get(id), Some(DeviceEntry::Active(_)))
    }

    /// Registers (or replaces) a bridge login.
    pub fn set_bridge(&self, name: &str, password: &[u8]) {
        self.set_bridge_hash(name, SecretHash::of(password));
    }

    /// Registers (or replaces) a bridge login by its stored hash (provisioning).
    pub fn set_bridge_hash(&self, name: &str, hash: SecretHash) {
        write(&self.bridges).insert(name.to_owned(), hash);
    }

    /// Removes a bridge login and closes the live connection whose client id is the
    /// bridge's name. Returns whether the bridge was known.
    pub fn remove_bridge(&self, name: &str) -> bool {
        let known = write(&self.bridges).remove(name).is_some();
        let _ = self.kicks.send(name.to_owned());
        known
    }

    fn authenticate_device(
        &self,
        client_id: &str,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<Principal, AuthDenied> {
        let id = match DeviceId::new(client_id) {
            Ok(id) => id,
            Err(_) if self.mode == AuthMode::Open && password.is_none() => {
                return Ok(Principal::Anonymous);
            }
            Err(_) => return Err(AuthDenied::BadClientId),
        };
        if username.is_some_and(|u| u != client_id) {
            return Err(AuthDenied::ClientIdMismatch);
        }
        let entry = read(&self.devices).get(&id).copied();
        match (entry, password, self.mode) {
            (Some(DeviceEntry::Revoked), _, _) => Err(AuthDenied::Revoked),
            (Some(DeviceEntry::Active(hash)), Some(pw), _) => {
                if hash.matches(pw) {
                    Ok(Principal::Device(id))
                } else {
                    Err(AuthDenied::BadPassword)
                }
            }
            (Some(DeviceEntry::Active(_)), None, AuthMode::Production) => {
                Err(AuthDenied::BadPassword)
            }
            (None, _, AuthMode::Production) => Err(AuthDenied::UnknownClient),
            (_, _, AuthMode::Open) => Ok(Principal::Device(id)),
        }
    }
}

impl BrokerAuth for DeviceCredentials {
    fn authenticate(
        &self,
        client_id: &str,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<Principal, AuthDenied> {
        if let (Some((gw_user, gw_hash)), Some(user)) = (&self.gateway, username)
            && user == gw_user
        {
            return match password {
                Some(pw) if gw_hash.matches(pw) => Ok(Principal::Gateway),
                _ => Err(AuthDenied::BadPassword),
            };
        }
        if let Some(user) = username
            && let Some(hash) = self.multiplexers.get(user)
        {
            return match password {
                Some(pw) if hash.matches(pw) => Ok(Principal::Multiplexer(user.to_owned())),
                _ => Err(AuthDenied::BadPassword),
            };
        }
        if let Some(user) = username {
            let bridge = read(&self.bridges).get(user).copied();
            if let Some(hash) = bridge {
                return match password {
                    Some(pw) if hash.matches(pw) => Ok(Principal::Bridge(user.to_owned())),
                    _ => Err(AuthDenied::BadPassword),
                };
            }
        }
        self.authenticate_device(client_id, username, password)
    }

    fn may_publish(&self, who: &Principal, topic: &str) -> bool {
        self.policy.may_publish(who, topic)
    }

    fn may_subscribe(&self, who: &Principal, filter: &str) -> bool {
        self.policy.may_subscribe(who, filter)
    }

    fn kicks(&self) -> Option<broadcast::Receiver<String>> {
        Some(self.kicks.subscribe())
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DeviceId {
        DeviceId::new(s).unwrap()
    }

    fn production() -> DeviceCredentials {
        let c = DeviceCredentials::new(AuthMode::Production).with_gateway("gw", b"gw-pass");
        c.set_device_secret(id("door-1"), b"0123456789abcdef");
        c.set_bridge("z2m", b"bridge-pass");
        c
    }

    #[test]
    fn a_multiplexer_needs_its_password_and_is_nobody_else() {
        let c = production().with_multiplexer("load", SecretHash::of(b"load-pass"));
        assert_eq!(
            c.authenticate("load-1", Some("load"), Some(b"load-pass")),
            Ok(Principal::Multiplexer("load".into()))
        );
        assert_eq!(
            c.authenticate("load-1", Some("load"), Some(b"wrong")),
            Err(AuthDenied::BadPassword)
        );
        assert_eq!(
            c.authenticate("load-1", Some("load"), None),
            Err(AuthDenied::BadPassword)
        );
        assert_eq!(
            production().authenticate("load-1", Some("load"), Some(b"load-pass")),
            Err(AuthDenied::ClientIdMismatch),
            "without the configuration there is no multiplexer"
        );
    }

    #[test]
    fn a_device_with_its_secret_is_that_device() {
        let c = production();
        assert_eq!(
            c.authenticate("door-1", Some("door-1"), Some(b"0123456789abcdef")),
            Ok(Principal::Device(id("door-1")))
        );
        assert_eq!(
            c.authenticate("door-1", None, Some(b"0123456789abcdef")),
            Ok(Principal::Device(id("door-1")))
        );
    }

    #[test]
    fn production_mode_refuses_every_wrong_credential_with_its_reason() {
        let c = production();
        let secret: &[u8] = b"0123456789abcdef";
        assert_eq!(
            c.authenticate("door-1", Some("door-1"), Some(b"nope")),
            Err(AuthDenied::BadPassword)
        );
        assert_eq!(
            c.authenticate("door-1", Some("door-1"), None),
            Err(AuthDenied::BadPassword)
        );
        assert_eq!(
            c.authenticate("door-2", Some("door-2"), Some(secret)),
            Err(AuthDenied::UnknownClient)
        );
        assert_eq!(
            c.authenticate("door-1", Some("door-2"), Some(secret)),
            Err(AuthDenied::ClientIdMismatch)
        );
        assert_eq!(
            c.authenticate("not a device", None, None),
            Err(AuthDenied::BadClientId)
        );
        assert_eq!(
            c.authenticate("x", Some("gw"), Some(b"wrong")),
            Err(AuthDenied::BadPassword)
        );
        assert_eq!(
            c.authenticate("x", Some("z2m"), None),
            Err(AuthDenied::BadPassword)
        );
    }

    #[test]
    fn the_gateway_and_bridges_log_in_by_username() {
        let c = production();
        assert_eq!(
            c.authenticate("anxin-gateway-7", Some("gw"), Some(b"gw-pass")),
            Ok(Principal::Gateway)
        );
        assert_eq!(
            c.authenticate("z2m-client", Some("z2m"), Some(b"bridge-pass")),
            Ok(Principal::Bridge("z2m".into()))
        );
    }

    #[test]
    fn a_revoked_device_is_refused_and_kicked_in_both_modes() {
        for mode in [AuthMode::Production, AuthMode::Open] {
            let c = DeviceCredentials::new(mode);
            c.set_device_secret(id("door-1"), b"s");
            let mut kicks = c.kicks().unwrap();
            assert!(c.revoke(&id("door-1")));
            assert_eq!(kicks.try_recv().unwrap(), "door-1");
            assert_eq!(
                c.authenticate("door-1", Some("door-1"), Some(b"s")),
                Err(AuthDenied::Revoked)
            );
            assert_eq!(
                c.authenticate("door-1", None, None),
                Err(AuthDenied::Revoked)
            );
            assert!(!c.is_active(&id("door-1")));
            c.set_device_secret(id("door-1"), b"t");
            assert!(c.is_active(&id("door-1")));
        }
    }

    #[test]
    fn open_mode_identifies_clients_without_password_by_client_id() {
        let c = DeviceCredentials::new(AuthMode::Open).with_gateway("gw", b"gw-pass");
        c.set_device_secret(id("door-1"), b"s");
        assert_eq!(
            c.authenticate("door-1", None, None),
            Ok(Principal::Device(id("door-1")))
        );
        assert_eq!(
            c.authenticate("new-device", Some("new-device"), None),
            Ok(Principal::Device(id("new-device")))
        );
        assert_eq!(
            c.authenticate("mosquitto_sub/123", None, None),
            Ok(Principal::Anonymous)
        );
        assert_eq!(
            c.authenticate("door-1", None, Some(b"wrong")),
            Err(AuthDenied::BadPassword)
        );
        assert_eq!(
            c.authenticate("x", Some("gw"), None),
            Err(AuthDenied::BadPassword)
        );
        assert_eq!(
            c.authenticate("door-1", Some("door-2"), None),
            Err(AuthDenied::ClientIdMismatch)
        );
    }

    #[test]
    fn a_secret_hash_round_trips_through_hex_and_rejects_other_secrets() {
        let h = SecretHash::of(b"secret");
        assert_eq!(SecretHash::from_hex(&h.to_hex()), Some(h));
        assert!(h.matches(b"secret"));
        assert!(!h.matches(b"secreT"));
        assert!(SecretHash::from_hex("zz").is_none());
        assert!(SecretHash::from_hex(&"g".repeat(64)).is_none());
        assert!(!format!("{h:?}").contains(&h.to_hex()));
    }
}
