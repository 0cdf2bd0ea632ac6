//! Encoding (firmware and gateway) and decoding with validation (gateway, `std`).

use serde::Serialize;

use super::{MAX_PAYLOAD, WireError};

/// Encodes `msg` as compact JSON into `buf`, returning the length written. Fails with
/// [`WireError::BufferTooSmall`] when it does not fit, and with [`WireError::Oversized`]
/// when it would exceed [`MAX_PAYLOAD`].
pub fn encode<T: Serialize>(msg: &T, buf: &mut [u8]) -> Result<usize, WireError> {
    let len = serde_json_core::to_slice(msg, buf).map_err(|_| WireError::BufferTooSmall)?;
    if len > MAX_PAYLOAD {
        return Err(WireError::Oversized { len });
    }
    Ok(len)
}

/// Encodes `msg` into a fresh buffer of [`MAX_PAYLOAD`] bytes.
pub fn encode_vec<T: Serialize>(msg: &T) -> Result<heapless::Vec<u8, MAX_PAYLOAD>, WireError> {
    let mut out = heapless::Vec::new();
    out.resize_default(MAX_PAYLOAD)
        .map_err(|_| WireError::BufferTooSmall)?;
    let len = serde_json_core::to_slice(msg, &mut out).map_err(|_| WireError::Oversized {
        len: MAX_PAYLOAD + 1,
    })?;
    out.truncate(len);
    Ok(out)
}

/// Decodes a command on the device, without an allocator.
pub fn decode_command_no_std(payload: &[u8]) -> Result<super::Command, WireError> {
    check_payload(payload)?;
    let (cmd, _): (super::Command, usize) =
        serde_json_core::from_slice(payload).map_err(|_| version_or_malformed(payload))?;
    cmd.validate()?;
    Ok(cmd)
}

/// Decodes an acknowledgement on the device, without an allocator.
pub fn decode_ack_no_std(payload: &[u8]) -> Result<super::Ack, WireError> {
    check_payload(payload)?;
    let (ack, _): (super::Ack, usize) =
        serde_json_core::from_slice(payload).map_err(|_| version_or_malformed(payload))?;
    ack.validate()?;
    Ok(ack)
}

pub(crate) fn check_mac_format(mac: &str) -> Result<(), WireError> {
    if mac.len() == 32 && mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(WireError::OutOfRange { field: "mac" })
    }
}

/// The checks before any parsing: the size, then UTF-8 over the whole payload. JSON is
/// UTF-8 (RFC 8259), but a parser skips the string of an unknown member without looking
/// at its bytes, so invalid UTF-8 there would otherwise pass and be stored.
fn check_payload(payload: &[u8]) -> Result<(), WireError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(WireError::Oversized { len: payload.len() });
    }
    if core::str::from_utf8(payload).is_err() {
        return Err(WireError::Malformed);
    }
    Ok(())
}

/// After a failed decode: was it a message of another protocol version?
fn version_or_malformed(payload: &[u8]) -> WireError {
    #[derive(serde::Deserialize)]
    struct Probe {
        v: u8,
    }
    match serde_json_core::from_slice::<Probe>(payload) {
        Ok((p, _)) if p.v != super::PROTOCOL_VERSION => {
            WireError::UnsupportedVersion { found: p.v }
        }
        _ => WireError::Malformed,
    }
}

#[cfg(feature = "std")]
mod host {
    use serde::de::DeserializeOwned;

    use super::{WireError, check_payload, version_or_malformed};
    use crate::wire::{Ack, Command, Event, Heartbeat, Status};

    fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, WireError> {
        check_payload(payload)?;
        serde_json::from_slice(payload).map_err(|_| version_or_malformed(payload))
    }

    /// Decodes and validates an event.
    pub fn decode_event(payload: &[u8]) -> Result<Event, WireError> {
        let m: Event = decode(payload)?;
        m.validate()?;
        Ok(m)
    }

    /// Decodes and validates a heartbeat.
    pub fn decode_heartbeat(payload: &[u8]) -> Result<Heartbeat, WireError> {
        let m: Heartbeat = decode(payload)?;
        m.validate()?;
        Ok(m)
    }

    /// Decodes and validates a status message.
    pub fn decode_status(payload: &[u8]) -> Result<Status, WireError> {
        let m: Status = decode(payload)?;
        m.validate()?;
        Ok(m)
    }

    /// Decodes and validates a command.
    pub fn decode_command(payload: &[u8]) -> Result<Command, WireError> {
        let m: Command = decode(payload)?;
        m.validate()?;
        Ok(m)
    }

    /// Decodes and validates an acknowledgement.
    pub fn decode_ack(payload: &[u8]) -> Result<Ack, WireError> {
        let m: Ack = decode(payload)?;
        m.validate()?;
        Ok(m)
    }
}

#[cfg(feature = "std")]
pub use host::{decode_ack, decode_command, decode_event, decode_heartbeat, decode_status};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_in_an_unknown_member_is_malformed() {
        let mut p = br#"{"v":1,"boot":3,"upto":17,"x":"ab"}"#.to_vec();
        let at = p.len() - 3;
        p[at] = 0xff;
        assert_eq!(decode_ack_no_std(&p), Err(WireError::Malformed));
        let ok = br#"{"v":1,"boot":3,"upto":17,"x":"ab"}"#;
        assert!(
            decode_ack_no_std(ok).is_ok(),
            "unknown members stay ignored"
        );
    }
}
