//! The provisioning blob on the host side: built with the firmware crate's own
//! [`anxin_firmware::provision::Provision`] encoder (one definition for both ends), the
//! CA fingerprint read from a PEM or DER certificate, and the command that writes the
//! blob to a device's flash.

use std::path::Path;
use std::str::FromStr;

use anxin_firmware::provision::{BLOB_LEN, FLASH_OFFSET_ESP32C3, FLASH_OFFSET_NRF52840, Provision};
use anxin_firmware::wire::DeviceId;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::{ProvisionError, Secret};

/// What goes into a blob besides the device id and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobOptions {
    /// Broker host the device connects to.
    pub broker_host: String,
    /// Broker port.
    pub broker_port: u16,
    /// SHA-256 of the broker's CA certificate (DER): the device uses TLS and pins it.
    pub ca_sha256: Option<[u8; 32]>,
    /// Heartbeat interval, s.
    pub heartbeat_s: u32,
    /// Help-button cancel window, s.
    pub help_cancel_s: u16,
    /// Fall "I'm OK" window, s.
    pub fall_cancel_s: u16,
}

/// Encodes the blob of `device_id` with `secret`.
pub fn build(
    device_id: &str,
    secret: &Secret,
    o: &BlobOptions,
) -> Result<[u8; BLOB_LEN], ProvisionError> {
    let invalid = |field: &'static str| ProvisionError::Invalid {
        field,
        reason: "does not fit the provisioning blob".into(),
    };
    let p = Provision {
        device_id: DeviceId::new(device_id)
            .map_err(|_| ProvisionError::BadDeviceId(device_id.into()))?,
        broker_host: o
            .broker_host
            .as_str()
            .try_into()
            .map_err(|_| invalid("broker_host"))?,
        broker_port: o.broker_port,
        ca_sha256: o.ca_sha256,
        secret: secret.expose().try_into().map_err(|_| invalid("secret"))?,
        heartbeat_s: o.heartbeat_s,
        help_cancel_s: o.help_cancel_s,
        fall_cancel_s: o.fall_cancel_s,
    };
    Ok(p.to_bytes()?)
}

/// SHA-256 of a certificate given as PEM (the first `CERTIFICATE` block) or DER.
pub fn ca_fingerprint(bytes: &[u8]) -> Result<[u8; 32], String> {
    let der = if bytes.starts_with(b"-----") || bytes.windows(5).any(|w| w == b"-----") {
        let text = std::str::from_utf8(bytes).map_err(|_| "PEM is not UTF-8".to_string())?;
        let begin = "-----BEGIN CERTIFICATE-----";
        let start = text
            .find(begin)
            .ok_or_else(|| "no CERTIFICATE block".to_string())?
            + begin.len();
        let end = text[start..]
            .find("-----END CERTIFICATE-----")
            .ok_or_else(|| "unterminated CERTIFICATE block".to_string())?;
        let b64: String = text[start..start + end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        STANDARD
            .decode(b64)
            .map_err(|e| format!("bad base64 in PEM: {e}"))?
    } else {
        bytes.to_vec()
    };
    if der.first() != Some(&0x30) {
        return Err("not a DER certificate".into());
    }
    Ok(Sha256::digest(&der).into())
}

/// Reads a CA certificate file and returns its fingerprint.
pub fn ca_fingerprint_file(path: &Path) -> Result<[u8; 32], ProvisionError> {
    let bytes = std::fs::read(path).map_err(|source| ProvisionError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    ca_fingerprint(&bytes).map_err(|reason| ProvisionError::CaCert {
        path: path.to_path_buf(),
        reason,
    })
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which board family, and so which flashing tool and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashTarget {
    /// Cortex-M (nRF52840 by default) through a debug probe: `probe-rs`.
    CortexM,
    /// ESP32-C3 over USB serial: `espflash`.
    Esp32c3,
}

impl FromStr for FlashTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cortex-m" | "nrf52840" => Ok(FlashTarget::CortexM),
            "esp32c3" | "esp32-c3" => Ok(FlashTarget::Esp32c3),
            _ => Err(format!("unknown target {s:?} (cortex-m, esp32c3)")),
        }
    }
}

impl FlashTarget {
    /// The blob's flash offset on this target's reference board.
    pub const fn default_offset(self) -> u32 {
        match self {
            FlashTarget::CortexM => FLASH_OFFSET_NRF52840,
            FlashTarget::Esp32c3 => FLASH_OFFSET_ESP32C3,
        }
    }
}

/// Overrides for [`flash_command`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlashOptions {
    /// probe-rs chip name (default `nRF52840_xxAA`).
    pub chip: Option<String>,
    /// Serial port for espflash (default: espflash asks or finds it).
    pub port: Option<String>,
    /// Flash offset (default: the target's).
    pub offset: Option<u32>,
}

/// The command line that writes `blob` at its offset.
pub fn flash_command(target: FlashTarget, blob: &Path, o: &FlashOptions) -> String {
    let offset = o.offset.unwrap_or(target.default_offset());
    let file = shell_quote(&blob.display().to_string());
    match target {
        FlashTarget::CortexM => format!(
            "probe-rs download --chip {} --binary-format bin --base-address {offset:#010x} {file}",
            shell_quote(o.chip.as_deref().unwrap_or("nRF52840_xxAA"))
        ),
        FlashTarget::Esp32c3 => {
            let port = o
                .port
                .as_deref()
                .map(|p| format!("--port {} ", shell_quote(p)))
                .unwrap_or_default();
            format!("espflash write-bin {port}{offset:#x} {file}")
        }
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_commands_name_the_tool_and_the_offset() {
        let p = Path::new("/tmp/h0001-door.bin");
        assert_eq!(
            flash_command(FlashTarget::CortexM, p, &FlashOptions::default()),
            "probe-rs download --chip nRF52840_xxAA --binary-format bin --base-address 0x000fe000 /tmp/h0001-door.bin"
        );
        assert_eq!(
            flash_command(
                FlashTarget::Esp32c3,
                Path::new("/tmp/my blob.bin"),
                &FlashOptions {
                    port: Some("/dev/ttyACM0".into()),
                    ..FlashOptions::default()
                }
            ),
            "espflash write-bin --port /dev/ttyACM0 0x3ff000 '/tmp/my blob.bin'"
        );
    }

    #[test]
    fn a_fingerprint_is_read_from_pem_and_der_alike() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let der = cert.cert.der().to_vec();
        let from_der = ca_fingerprint(&der).unwrap();
        let from_pem = ca_fingerprint(cert.cert.pem().as_bytes()).unwrap();
        assert_eq!(from_der, from_pem);
        assert_eq!(from_der, <[u8; 32]>::from(Sha256::digest(&der)));
        assert!(ca_fingerprint(b"hello").is_err());
    }
}
