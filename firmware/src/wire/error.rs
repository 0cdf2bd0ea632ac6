//! Why a message could not be encoded, decoded or accepted.

use core::fmt;

/// A wire-level failure. Small and `Copy` so that `no_std` code can hand it back cheaply;
/// [`WireError::reason`] gives the stable label the gateway counts rejects under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The payload is larger than [`super::MAX_PAYLOAD`].
    Oversized {
        /// Payload length in bytes.
        len: usize,
    },
    /// The payload is not the JSON shape of this message kind.
    Malformed,
    /// The message carries a protocol version this code does not speak.
    UnsupportedVersion {
        /// The version found in the message.
        found: u8,
    },
    /// A field is outside its allowed range.
    OutOfRange {
        /// The field's name in the JSON.
        field: &'static str,
    },
    /// The topic is not one of the protocol's topics.
    BadTopic,
    /// A device id is empty, too long or holds characters outside `[A-Za-z0-9_-]`.
    BadDeviceId,
    /// The output buffer is too small for the encoded message.
    BufferTooSmall,
}

impl WireError {
    /// A stable, closed set of labels (used as the `reason` of reject counters).
    pub const fn reason(&self) -> &'static str {
        match self {
            WireError::Oversized { .. } => "oversized",
            WireError::Malformed => "malformed",
            WireError::UnsupportedVersion { .. } => "wrong_version",
            WireError::OutOfRange { .. } => "out_of_range",
            WireError::BadTopic => "wrong_topic",
            WireError::BadDeviceId => "wrong_topic",
            WireError::BufferTooSmall => "buffer_too_small",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Oversized { len } => {
                write!(
                    f,
                    "payload of {len} bytes exceeds {} bytes",
                    super::MAX_PAYLOAD
                )
            }
            WireError::Malformed => f.write_str("payload is not valid JSON of the expected shape"),
            WireError::UnsupportedVersion { found } => {
                write!(
                    f,
                    "protocol version {found} is not supported (expected {})",
                    super::PROTOCOL_VERSION
                )
            }
            WireError::OutOfRange { field } => write!(f, "field `{field}` is out of range"),
            WireError::BadTopic => f.write_str("topic is not an Anxin v1 topic"),
            WireError::BadDeviceId => {
                f.write_str("device id is empty, too long or has bad characters")
            }
            WireError::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl core::error::Error for WireError {}
