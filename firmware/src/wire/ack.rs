//! Application-level acknowledgement: topic `anxin/v1/dev/{device}/down/ack`, QoS 0.
//!
//! A broker's PUBACK only means that the broker has a message; the gateway sends this
//! once the events are durably committed in its store. It is cumulative, so a lost ack is
//! repaired by the next one, and the gateway repeats it whenever it sees a duplicate.

use serde::{Deserialize, Serialize};

use super::ids::{BootEpoch, Seq};
use super::{PROTOCOL_VERSION, WireError};

/// "Every event of boot `boot` with `seq <= upto` is durably committed."
///
/// ```json
/// {"v":1,"boot":3,"upto":17}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Protocol version.
    pub v: u8,
    /// Boot epoch the acknowledgement is about.
    pub boot: BootEpoch,
    /// Highest contiguous event sequence number committed in that boot epoch.
    pub upto: Seq,
}

impl Ack {
    /// Builds a v1 acknowledgement.
    pub fn new(boot: BootEpoch, upto: Seq) -> Self {
        Ack {
            v: PROTOCOL_VERSION,
            boot,
            upto,
        }
    }

    /// Checks version and ranges.
    pub fn validate(&self) -> Result<(), WireError> {
        if self.v != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion { found: self.v });
        }
        if self.boot == 0 {
            return Err(WireError::OutOfRange { field: "boot" });
        }
        Ok(())
    }
}
