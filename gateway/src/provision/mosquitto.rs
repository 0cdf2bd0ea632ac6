//! Files for an external mosquitto: its `password_file` and an `acl_file` that express
//! the same policy as the embedded broker ([`crate::broker::DeviceTopicPolicy`]).
//!
//! ```text
//! # mosquitto.conf (conf_file)
//! allow_anonymous false
//! password_file /etc/mosquitto/anxin.passwd   # written by `anxin device mosquitto-files`
//! acl_file /etc/mosquitto/anxin.acl
//! max_packet_size 4096                        # as the embedded broker
//! ```
//!
//! `max_packet_size` bounds what one client can make mosquitto buffer and forward: the
//! protocol's largest payload is 512 bytes, and without a cap a device could publish
//! messages of up to 256 MiB on its own topics to every subscriber, the gateway first.
//!
//! - Devices: username = client id = device id; each publishes only to its three uplink
//!   topics and reads only its downlink subtree, with one `pattern` per rule (`%u` is
//!   the username). A revoked device is absent from the password file; mosquitto re-checks
//!   every connected client when it reloads (`SIGHUP`), so a revoked device is
//!   disconnected at the reload.
//! - The gateway (its `[mqtt] username`): reads and writes all of `anxin/v1/dev/#` and
//!   the Zigbee2MQTT base topic.
//! - Zigbee2MQTT bridges: read and write under their own path of the base topic.
//!
//! Files are written to a temporary file beside the target and renamed over it, so
//! mosquitto never reads a half-written file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::ProvisionError;

/// One login in the password file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Username (device id, gateway or bridge name).
    pub username: String,
    /// The `$7$…` entry.
    pub hash: String,
}

/// A bridge's ACL: its username and path under the base topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeAcl {
    /// Username (the bridge's device id).
    pub username: String,
    /// Its path under the base topic ("" = the whole base topic).
    pub path: String,
}

/// The password file's text, one `user:hash` line per login, sorted.
pub fn password_file(logins: &[Login]) -> String {
    let mut sorted: Vec<&Login> = logins.iter().collect();
    sorted.sort_by(|a, b| a.username.cmp(&b.username));
    let mut s = String::new();
    for l in sorted {
        let _ = writeln!(s, "{}:{}", l.username, l.hash);
    }
    s
}

/// The ACL file's text.
pub fn acl_file(gateway_user: Option<&str>, base_topic: &str, bridges: &[BridgeAcl]) -> String {
    let base = base_topic.trim_end_matches('/');
    let mut s = String::from(
        "# Anxin topic policy for mosquitto, written by `anxin device mosquitto-files`.\n\
         # Devices: username = client id = device id (see docs/provisioning.md).\n\
         pattern write anxin/v1/dev/%u/up/event\n\
         pattern write anxin/v1/dev/%u/up/hb\n\
         pattern write anxin/v1/dev/%u/up/status\n\
         pattern read anxin/v1/dev/%u/down/#\n",
    );
    if let Some(gw) = gateway_user {
        let _ = write!(
            s,
            "\n# The gateway.\nuser {gw}\ntopic readwrite anxin/v1/dev/#\n"
        );
        if !base.is_empty() {
            let _ = writeln!(s, "topic readwrite {base}/#");
        }
    }
    if !base.is_empty() {
        for b in bridges {
            let tree = if b.path.is_empty() {
                format!("{base}/#")
            } else {
                format!("{base}/{}/#", b.path.trim_matches('/'))
            };
            let _ = write!(
                s,
                "\n# Zigbee2MQTT bridge.\nuser {}\ntopic readwrite {tree}\n",
                b.username
            );
        }
    }
    s
}

/// The largest MQTT packet mosquitto accepts from a client, the embedded broker's
/// default `max_packet_bytes`: room for the 512-byte payload, a topic and MQTT 5
/// properties. A larger packet disconnects its sender.
pub const MAX_PACKET_SIZE: u32 = 4096;

/// The `mosquitto.conf` lines for Anxin: no anonymous clients, the password and ACL files,
/// and the packet size cap.
pub fn conf_file(password_file: &Path, acl_file: &Path) -> String {
    format!(
        "# Anxin settings for mosquitto (include it from mosquitto.conf).\n\
         allow_anonymous false\n\
         password_file {}\n\
         acl_file {}\n\
         max_packet_size {MAX_PACKET_SIZE}\n",
        password_file.display(),
        acl_file.display()
    )
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), ProvisionError> {
    let io = |source| ProvisionError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Runs the configured reload command (e.g. `["systemctl", "reload", "mosquitto"]` or
/// `["kill", "-HUP", "<pid>"]`), without a shell.
pub async fn reload(command: &[String]) -> Result<(), ProvisionError> {
    let Some((program, args)) = command.split_first() else {
        return Ok(());
    };
    let (prog, argv) = (program.clone(), args.to_vec());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(prog)
            .args(argv)
            .stdin(std::process::Stdio::null())
            .output()
    })
    .await
    .map_err(|e| ProvisionError::Reload(format!("{program}: {e}")))?
    .map_err(|e| ProvisionError::Reload(format!("{program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ProvisionError::Reload(format!(
            "{program} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acl_confines_devices_by_pattern_and_bridges_to_their_path() {
        let acl = acl_file(
            Some("anxin-gateway"),
            "zigbee2mqtt",
            &[
                BridgeAcl {
                    username: "z2m-a".into(),
                    path: String::new(),
                },
                BridgeAcl {
                    username: "z2m-b".into(),
                    path: "h0002".into(),
                },
            ],
        );
        for line in [
            "pattern write anxin/v1/dev/%u/up/event",
            "pattern write anxin/v1/dev/%u/up/hb",
            "pattern write anxin/v1/dev/%u/up/status",
            "pattern read anxin/v1/dev/%u/down/#",
            "user anxin-gateway",
            "topic readwrite anxin/v1/dev/#",
            "topic readwrite zigbee2mqtt/#",
            "user z2m-b",
            "topic readwrite zigbee2mqtt/h0002/#",
        ] {
            assert!(acl.lines().any(|l| l == line), "{line}\n{acl}");
        }
        assert!(!acl.contains("up/#"));
    }

    #[test]
    fn the_conf_caps_the_packet_size_as_the_embedded_broker_does() {
        let conf = conf_file(Path::new("/etc/m/p"), Path::new("/etc/m/a"));
        for line in [
            "allow_anonymous false",
            "password_file /etc/m/p",
            "acl_file /etc/m/a",
            "max_packet_size 4096",
        ] {
            assert!(conf.lines().any(|l| l == line), "{line}\n{conf}");
        }
        assert_eq!(
            MAX_PACKET_SIZE,
            crate::broker::BrokerConfig::default().max_packet_bytes
        );
    }

    #[test]
    fn the_password_file_is_sorted_user_colon_hash() {
        let text = password_file(&[
            Login {
                username: "b".into(),
                hash: "$7$1$x$y".into(),
            },
            Login {
                username: "a".into(),
                hash: "$7$1$z$w".into(),
            },
        ]);
        assert_eq!(text, "a:$7$1$z$w\nb:$7$1$x$y\n");
    }
}
