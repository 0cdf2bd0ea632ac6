//! The provisioning blob: what a technician writes to a device's flash so that the
//! firmware knows, at boot, who it is, where its broker is and how to log in.
//!
//! One fixed-size (256 bytes), versioned, CRC-protected record, encoded and decoded by
//! this `no_std` code without an allocator, so that the gateway's `anxin device blob`
//! and the firmware share one definition. All integers are little-endian; text is ASCII,
//! its length in a length byte, the rest of its field zero-filled.
//!
//! | offset | size | field |
//! |---|---|---|
//! | `0x00` | 4 | magic `"AXPB"` |
//! | `0x04` | 1 | layout version ([`VERSION`], 1) |
//! | `0x05` | 1 | flags: bit 0 = TLS (the CA fingerprint is set); other bits 0 |
//! | `0x06` | 2 | blob length ([`BLOB_LEN`], 256) |
//! | `0x08` | 4 | heartbeat interval, s (5–86 400) |
//! | `0x0C` | 2 | help-button cancel window, s (1–600) |
//! | `0x0E` | 2 | fall "I'm OK" window, s (1–600) |
//! | `0x10` | 2 | broker port (1–65 535) |
//! | `0x12` | 1 | device id length (1–32) |
//! | `0x13` | 1 | broker host length (1–64) |
//! | `0x14` | 1 | secret length (16–64) |
//! | `0x15` | 3 | reserved, 0 |
//! | `0x18` | 32 | device id (`[A-Za-z0-9_-]`): MQTT client id and username |
//! | `0x38` | 64 | broker host name or IP address |
//! | `0x78` | 32 | SHA-256 of the broker CA certificate (DER); zero without TLS |
//! | `0x98` | 64 | device secret: the MQTT password (printable ASCII) |
//! | `0xD8` | 36 | reserved, 0 |
//! | `0xFC` | 4 | CRC-32/ISO-HDLC of bytes `0x00..0xFC` |
//!
//! Where it lives in flash (a page of its own, never touched by application updates):
//! - Cortex-M, nRF52840 (1 MiB): [`FLASH_OFFSET_NRF52840`] = `0x000F_E000`, the
//!   second-to-last 4 KiB page (`PROVISION : ORIGIN = 0x000FE000, LENGTH = 4K` in
//!   `memory.x`; the last page stays free for a bootloader's settings);
//! - ESP32-C3 (4 MiB): [`FLASH_OFFSET_ESP32C3`] = `0x003F_F000`, the last 4 KiB sector,
//!   declared in `partitions.csv` as `anxin_prov, data, 0x40, 0x3FF000, 0x1000`.
//!
//! A blank page (all `0xFF`) decodes as [`ProvisionError::Erased`]: the device is not
//! provisioned and must not start its radio with defaults. Any other damage (a flipped
//! bit, a short read, another layout version, a value out of range) is refused with the
//! reason; nothing half-valid is ever used.

use core::fmt;

use crc::{CRC_32_ISO_HDLC, Crc};

use crate::device::Settings;
use crate::wire::DeviceId;
use crate::wire::heartbeat::INTERVAL_RANGE_S;
use crate::wire::ids::DEVICE_ID_MAX;

/// Magic bytes at offset 0.
pub const MAGIC: [u8; 4] = *b"AXPB";
/// Layout version written and accepted by this code.
pub const VERSION: u8 = 1;
/// Size of the blob in bytes.
pub const BLOB_LEN: usize = 256;
/// Flash address of the blob on an nRF52840 (Cortex-M4F, 1 MiB flash).
pub const FLASH_OFFSET_NRF52840: u32 = 0x000F_E000;
/// Flash offset of the blob on an ESP32-C3 with 4 MiB flash.
pub const FLASH_OFFSET_ESP32C3: u32 = 0x003F_F000;
/// Longest broker host name, in bytes.
pub const HOST_MAX: usize = 64;
/// Shortest device secret, in bytes (128 bits as 32 hex digits is the norm; 16 bytes of
/// printable text is the floor).
pub const SECRET_MIN: usize = 16;
/// Longest device secret, in bytes.
pub const SECRET_MAX: usize = 64;
/// Longest cancel window, in seconds.
pub const CANCEL_MAX_S: u16 = 600;

const FLAG_TLS: u8 = 0b0000_0001;

const OFF_VERSION: usize = 0x04;
const OFF_FLAGS: usize = 0x05;
const OFF_LEN: usize = 0x06;
const OFF_HEARTBEAT: usize = 0x08;
const OFF_HELP: usize = 0x0C;
const OFF_FALL: usize = 0x0E;
const OFF_PORT: usize = 0x10;
const OFF_ID_LEN: usize = 0x12;
const OFF_HOST_LEN: usize = 0x13;
const OFF_SECRET_LEN: usize = 0x14;
const OFF_RESERVED1: usize = 0x15;
const OFF_ID: usize = 0x18;
const OFF_HOST: usize = 0x38;
const OFF_CA: usize = 0x78;
const OFF_SECRET: usize = 0x98;
const OFF_RESERVED2: usize = 0xD8;
const OFF_CRC: usize = 0xFC;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Why a blob was refused. Small and `Copy`, so the boot code can report it cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionError {
    /// Fewer than [`BLOB_LEN`] bytes.
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// The page is blank (all `0xFF`): never provisioned.
    Erased,
    /// The magic bytes are wrong: this is not a provisioning blob.
    BadMagic,
    /// A layout version this code does not read.
    UnsupportedVersion {
        /// The version found.
        found: u8,
    },
    /// The declared length is not [`BLOB_LEN`].
    BadLength {
        /// The declared length.
        declared: u16,
    },
    /// The CRC does not match: the blob is damaged.
    BadCrc {
        /// CRC stored in the blob.
        stored: u32,
        /// CRC of the content.
        computed: u32,
    },
    /// A field is outside its range (the CRC was right: written by a faulty tool).
    OutOfRange {
        /// The field's name.
        field: &'static str,
    },
}

impl fmt::Display for ProvisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProvisionError::Truncated { len } => {
                write!(f, "provisioning blob truncated: {len} of {BLOB_LEN} bytes")
            }
            ProvisionError::Erased => f.write_str("device is not provisioned (blank flash page)"),
            ProvisionError::BadMagic => f.write_str("not a provisioning blob (bad magic)"),
            ProvisionError::UnsupportedVersion { found } => {
                write!(
                    f,
                    "provisioning blob version {found} is not supported (expected {VERSION})"
                )
            }
            ProvisionError::BadLength { declared } => {
                write!(
                    f,
                    "provisioning blob declares {declared} bytes, expected {BLOB_LEN}"
                )
            }
            ProvisionError::BadCrc { stored, computed } => write!(
                f,
                "provisioning blob damaged: CRC {stored:08x} stored, {computed:08x} computed"
            ),
            ProvisionError::OutOfRange { field } => {
                write!(f, "provisioning blob field `{field}` is out of range")
            }
        }
    }
}

impl core::error::Error for ProvisionError {}

/// What the blob carries. [`fmt::Debug`] never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Provision {
    /// The device's id (MQTT client id and username).
    pub device_id: DeviceId,
    /// Broker host name or IP address.
    pub broker_host: heapless::String<HOST_MAX>,
    /// Broker port (1883 plain, 8883 TLS by convention).
    pub broker_port: u16,
    /// SHA-256 of the broker's CA certificate (DER), when the device must use TLS and pin
    /// that CA.
    pub ca_sha256: Option<[u8; 32]>,
    /// The device secret, sent as the MQTT password.
    pub secret: heapless::String<SECRET_MAX>,
    /// Heartbeat interval in seconds.
    pub heartbeat_s: u32,
    /// Help-button cancel window in seconds.
    pub help_cancel_s: u16,
    /// Fall "I'm OK" window in seconds.
    pub fall_cancel_s: u16,
}

impl fmt::Debug for Provision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provision")
            .field("device_id", &self.device_id)
            .field("broker_host", &self.broker_host)
            .field("broker_port", &self.broker_port)
            .field("tls", &self.ca_sha256.is_some())
            .field("secret", &"<redacted>")
            .field("heartbeat_s", &self.heartbeat_s)
            .field("help_cancel_s", &self.help_cancel_s)
            .field("fall_cancel_s", &self.fall_cancel_s)
            .finish()
    }
}

fn host_ok(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= HOST_MAX
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

fn secret_ok(secret: &str) -> bool {
    (SECRET_MIN..=SECRET_MAX).contains(&secret.len())
        && secret.bytes().all(|b| b.is_ascii_graphic())
}

fn window_ok(s: u16) -> bool {
    (1..=CANCEL_MAX_S).contains(&s)
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The text of a length-prefixed field: `len` bytes at `off` within a field of `cap`
/// bytes whose remainder must be zero.
fn text_at<'a>(
    b: &'a [u8],
    off: usize,
    len: usize,
    cap: usize,
    field: &'static str,
) -> Result<&'a str, ProvisionError> {
    if len > cap || b[off + len..off + cap].iter().any(|&x| x != 0) {
        return Err(ProvisionError::OutOfRange { field });
    }
    core::str::from_utf8(&b[off..off + len]).map_err(|_| ProvisionError::OutOfRange { field })
}

impl Provision {
    /// Checks every field's range (what [`Provision::encode`] refuses to write).
    pub fn validate(&self) -> Result<(), ProvisionError> {
        if !host_ok(&self.broker_host) {
            return Err(ProvisionError::OutOfRange {
                field: "broker_host",
            });
        }
        if self.broker_port == 0 {
            return Err(ProvisionError::OutOfRange {
                field: "broker_port",
            });
        }
        if !secret_ok(&self.secret) {
            return Err(ProvisionError::OutOfRange { field: "secret" });
        }
        if !INTERVAL_RANGE_S.contains(&self.heartbeat_s) {
            return Err(ProvisionError::OutOfRange {
                field: "heartbeat_s",
            });
        }
        if !window_ok(self.help_cancel_s) {
            return Err(ProvisionError::OutOfRange {
                field: "help_cancel_s",
            });
        }
        if !window_ok(self.fall_cancel_s) {
            return Err(ProvisionError::OutOfRange {
                field: "fall_cancel_s",
            });
        }
        if self.ca_sha256.is_some_and(|f| f.iter().all(|&b| b == 0)) {
            return Err(ProvisionError::OutOfRange { field: "ca_sha256" });
        }
        Ok(())
    }

    /// Writes the blob into `out` (validating first; `out` is untouched on error).
    pub fn encode(&self, out: &mut [u8; BLOB_LEN]) -> Result<(), ProvisionError> {
        self.validate()?;
        let mut b = [0u8; BLOB_LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[OFF_VERSION] = VERSION;
        b[OFF_FLAGS] = if self.ca_sha256.is_some() {
            FLAG_TLS
        } else {
            0
        };
        b[OFF_LEN..OFF_LEN + 2].copy_from_slice(&(BLOB_LEN as u16).to_le_bytes());
        b[OFF_HEARTBEAT..OFF_HEARTBEAT + 4].copy_from_slice(&self.heartbeat_s.to_le_bytes());
        b[OFF_HELP..OFF_HELP + 2].copy_from_slice(&self.help_cancel_s.to_le_bytes());
        b[OFF_FALL..OFF_FALL + 2].copy_from_slice(&self.fall_cancel_s.to_le_bytes());
        b[OFF_PORT..OFF_PORT + 2].copy_from_slice(&self.broker_port.to_le_bytes());
        let id = self.device_id.as_str().as_bytes();
        let host = self.broker_host.as_bytes();
        let secret = self.secret.as_bytes();
        // Lengths are bounded by the field types and `validate`: each fits a byte.
        b[OFF_ID_LEN] = id.len() as u8;
        b[OFF_HOST_LEN] = host.len() as u8;
        b[OFF_SECRET_LEN] = secret.len() as u8;
        b[OFF_ID..OFF_ID + id.len()].copy_from_slice(id);
        b[OFF_HOST..OFF_HOST + host.len()].copy_from_slice(host);
        if let Some(fp) = &self.ca_sha256 {
            b[OFF_CA..OFF_CA + 32].copy_from_slice(fp);
        }
        b[OFF_SECRET..OFF_SECRET + secret.len()].copy_from_slice(secret);
        let crc = CRC32.checksum(&b[..OFF_CRC]);
        b[OFF_CRC..].copy_from_slice(&crc.to_le_bytes());
        *out = b;
        Ok(())
    }

    /// The blob as a fresh array.
    pub fn to_bytes(&self) -> Result<[u8; BLOB_LEN], ProvisionError> {
        let mut out = [0u8; BLOB_LEN];
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Reads a blob (the first [`BLOB_LEN`] bytes of `bytes`; a flash page may hold
    /// more). Checks, in order: length, blank page, magic, version, declared length, CRC,
    /// then every field.
    pub fn decode(bytes: &[u8]) -> Result<Provision, ProvisionError> {
        if bytes.len() < BLOB_LEN {
            return Err(ProvisionError::Truncated { len: bytes.len() });
        }
        let b = &bytes[..BLOB_LEN];
        if b.iter().all(|&x| x == 0xFF) {
            return Err(ProvisionError::Erased);
        }
        if b[..4] != MAGIC {
            return Err(ProvisionError::BadMagic);
        }
        if b[OFF_VERSION] != VERSION {
            return Err(ProvisionError::UnsupportedVersion {
                found: b[OFF_VERSION],
            });
        }
        let declared = u16_at(b, OFF_LEN);
        if usize::from(declared) != BLOB_LEN {
            return Err(ProvisionError::BadLength { declared });
        }
        let stored = u32_at(b, OFF_CRC);
        let computed = CRC32.checksum(&b[..OFF_CRC]);
        if stored != computed {
            return Err(ProvisionError::BadCrc { stored, computed });
        }
        let flags = b[OFF_FLAGS];
        if flags & !FLAG_TLS != 0 {
            return Err(ProvisionError::OutOfRange { field: "flags" });
        }
        if b[OFF_RESERVED1..OFF_ID].iter().any(|&x| x != 0)
            || b[OFF_RESERVED2..OFF_CRC].iter().any(|&x| x != 0)
        {
            return Err(ProvisionError::OutOfRange { field: "reserved" });
        }
        let id = text_at(
            b,
            OFF_ID,
            usize::from(b[OFF_ID_LEN]),
            DEVICE_ID_MAX,
            "device_id",
        )?;
        let device_id =
            DeviceId::new(id).map_err(|_| ProvisionError::OutOfRange { field: "device_id" })?;
        let host = text_at(
            b,
            OFF_HOST,
            usize::from(b[OFF_HOST_LEN]),
            HOST_MAX,
            "broker_host",
        )?;
        let secret = text_at(
            b,
            OFF_SECRET,
            usize::from(b[OFF_SECRET_LEN]),
            SECRET_MAX,
            "secret",
        )?;
        let mut ca = [0u8; 32];
        ca.copy_from_slice(&b[OFF_CA..OFF_CA + 32]);
        let ca_sha256 = if flags & FLAG_TLS != 0 {
            Some(ca)
        } else if ca.iter().any(|&x| x != 0) {
            return Err(ProvisionError::OutOfRange { field: "ca_sha256" });
        } else {
            None
        };
        let mut broker_host = heapless::String::new();
        broker_host
            .push_str(host)
            .map_err(|_| ProvisionError::OutOfRange {
                field: "broker_host",
            })?;
        let mut secret_s = heapless::String::new();
        secret_s
            .push_str(secret)
            .map_err(|_| ProvisionError::OutOfRange { field: "secret" })?;
        let p = Provision {
            device_id,
            broker_host,
            broker_port: u16_at(b, OFF_PORT),
            ca_sha256,
            secret: secret_s,
            heartbeat_s: u32_at(b, OFF_HEARTBEAT),
            help_cancel_s: u16_at(b, OFF_HELP),
            fall_cancel_s: u16_at(b, OFF_FALL),
        };
        p.validate()?;
        Ok(p)
    }

    /// The device settings for boot epoch `boot`: defaults, with this blob's id,
    /// heartbeat interval and cancel windows.
    pub fn settings(&self, boot: crate::wire::BootEpoch) -> Settings {
        let mut s = Settings::new(self.device_id.clone(), boot);
        self.apply(&mut s);
        s
    }

    /// Applies the blob's id, heartbeat interval and cancel windows to `settings`.
    pub fn apply(&self, settings: &mut Settings) {
        settings.id = self.device_id.clone();
        settings.heartbeat_s = self.heartbeat_s;
        settings.button.cancel_s = self.help_cancel_s;
        settings.fall_cancel_s = self.fall_cancel_s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Provision {
        Provision {
            device_id: DeviceId::new("h0001-door").unwrap(),
            broker_host: heapless::String::try_from("gw.example.invalid").unwrap(),
            broker_port: 8883,
            ca_sha256: Some([7; 32]),
            secret: heapless::String::try_from("00112233445566778899aabbccddeeff").unwrap(),
            heartbeat_s: 300,
            help_cancel_s: 10,
            fall_cancel_s: 30,
        }
    }

    #[test]
    fn the_layout_puts_each_field_at_its_documented_offset() {
        let b = sample().to_bytes().unwrap();
        assert_eq!(&b[..4], b"AXPB");
        assert_eq!(b[OFF_VERSION], 1);
        assert_eq!(u16_at(&b, OFF_LEN), 256);
        assert_eq!(u16_at(&b, OFF_PORT), 8883);
        assert_eq!(&b[OFF_ID..OFF_ID + 10], b"h0001-door");
        assert_eq!(OFF_CRC + 4, BLOB_LEN);
    }
}
