//! Device secrets: 128 random bits, shown once, stored only as hashes.
//!
//! Two hashes of the same secret are kept, one per broker:
//! - [`SecretHash`] (SHA-256, domain-separated) for the embedded broker: the secrets are
//!   random and long, so a slow hash buys nothing and the broker checks every CONNECT
//!   cheaply;
//! - mosquitto's own `$7$` format (PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt,
//!   standard base64), computed here with the `pbkdf2` and `sha2` crates rather than by
//!   calling `mosquitto_passwd`: the gateway host or the technician's laptop need not
//!   have mosquitto's tools, nothing secret passes through a command line or a temporary
//!   plain-text file, and the result is verified by a real mosquitto in
//!   `tests/tests/security_mosquitto.rs`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::Sha512;

pub use crate::broker::SecretHash;

/// Iterations of mosquitto's PBKDF2 (its `mosquitto_passwd` default).
pub const MOSQUITTO_ITERATIONS: u32 = 101;
const MOSQUITTO_SALT_LEN: usize = 12;

/// A device secret (the MQTT password). Shown once to the technician, then only its
/// hashes remain; [`fmt::Debug`] never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// 128 fresh random bits as 32 lowercase hex digits.
    pub fn generate() -> Secret {
        let bytes: [u8; 16] = rand::random();
        Secret(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Wraps a secret the technician typed back (e.g. to write another blob).
    pub fn from_text(s: &str) -> Secret {
        Secret(s.trim().to_string())
    }

    /// The secret itself: print it once, write it into a blob, never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its hash for the embedded broker.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(self.0.as_bytes())
    }

    /// Its entry for a mosquitto password file (`$7$101$salt$hash`).
    pub fn mosquitto_hash(&self) -> String {
        let salt: [u8; MOSQUITTO_SALT_LEN] = rand::random();
        mosquitto_hash_with_salt(self.0.as_bytes(), &salt, MOSQUITTO_ITERATIONS)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// mosquitto's `$7$` password hash of `password` with `salt`.
pub fn mosquitto_hash_with_salt(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    format!(
        "$7${iterations}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(out)
    )
}

/// Whether `password` matches a `$7$` entry (used by tests and `anxin device blob
/// --secret` against an external broker's file).
pub fn mosquitto_verify(entry: &str, password: &[u8]) -> bool {
    let mut parts = entry.split('$');
    let (Some(""), Some("7"), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iter), Ok(salt)) = (iter.parse::<u32>(), STANDARD.decode(salt)) else {
        return false;
    };
    let candidate = mosquitto_hash_with_salt(password, &salt, iter);
    let theirs = format!("$7${iter}${}${hash}", STANDARD.encode(&salt));
    candidate.len() == theirs.len()
        && candidate
            .bytes()
            .zip(theirs.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_128_bits_of_hex_and_never_debug_printed() {
        let s = Secret::generate();
        assert_eq!(s.expose().len(), 32);
        assert!(s.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(s, Secret::generate());
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn the_mosquitto_entry_has_its_format_and_verifies() {
        let s = Secret::from_text("00112233445566778899aabbccddeeff");
        let e = s.mosquitto_hash();
        assert!(e.starts_with("$7$101$"));
        let parts: Vec<&str> = e.split('$').collect();
        assert_eq!(STANDARD.decode(parts[3]).unwrap().len(), 12);
        assert_eq!(STANDARD.decode(parts[4]).unwrap().len(), 64);
        assert!(mosquitto_verify(&e, s.expose().as_bytes()));
        assert!(!mosquitto_verify(&e, b"00112233445566778899aabbccddeefe"));
        assert!(!mosquitto_verify("$6$x$y", b"x"));
    }

    #[test]
    fn pbkdf2_sha512_matches_a_published_test_vector() {
        // RFC 6070-style vector for PBKDF2-HMAC-SHA512 ("password", "salt", 1 iteration).
        let e = mosquitto_hash_with_salt(b"password", b"salt", 1);
        let hash = STANDARD.decode(e.rsplit('$').next().unwrap()).unwrap();
        let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "867f70cf1ade02cf");
    }
}
