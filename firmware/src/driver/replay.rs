//! An [`Accelerometer`] that plays back a recorded trace, one sample per read.
//!
//! The trace is a byte string of 8-byte records, one per sample period: `x`, `y`, `z` in
//! milli-g (little-endian `i16`) and a flags word (bit 0: a sample is present, bit 1: it
//! is saturated). A record without the present bit stands for a missing sample. The
//! pendant image compiles such a trace in with `include_bytes!`; `fall::trace` writes
//! them from recorded files.

use core::convert::Infallible;

use super::{Acceleration, Accelerometer, Batch};

/// Bytes per record.
pub const RECORD_LEN: usize = 8;
const PRESENT: u16 = 1;
const SATURATED: u16 = 2;

/// Encodes one sample period.
pub fn encode(sample: Option<Acceleration>) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    if let Some(a) = sample {
        out[0..2].copy_from_slice(&a.x_mg.to_le_bytes());
        out[2..4].copy_from_slice(&a.y_mg.to_le_bytes());
        out[4..6].copy_from_slice(&a.z_mg.to_le_bytes());
        let flags = PRESENT | if a.saturated { SATURATED } else { 0 };
        out[6..8].copy_from_slice(&flags.to_le_bytes());
    }
    out
}

/// Decodes one record (`None` for a missing sample or a short record).
pub fn decode(record: &[u8]) -> Option<Acceleration> {
    let [x0, x1, y0, y1, z0, z1, f0, f1] = *record else {
        return None;
    };
    let flags = u16::from_le_bytes([f0, f1]);
    (flags & PRESENT != 0).then(|| Acceleration {
        x_mg: i16::from_le_bytes([x0, x1]),
        y_mg: i16::from_le_bytes([y0, y1]),
        z_mg: i16::from_le_bytes([z0, z1]),
        saturated: flags & SATURATED != 0,
    })
}

/// Plays back a trace of records.
#[derive(Debug, Clone)]
pub struct Replay<'a> {
    records: core::slice::ChunksExact<'a, u8>,
}

impl<'a> Replay<'a> {
    /// Plays `data` (a trailing partial record is ignored).
    pub fn new(data: &'a [u8]) -> Self {
        Replay {
            records: data.chunks_exact(RECORD_LEN),
        }
    }

    /// Sample periods left.
    pub fn remaining(&self) -> usize {
        self.records.len()
    }

    /// The next sample period: `None` at the end, `Some(None)` for a missing sample.
    pub fn next_period(&mut self) -> Option<Option<Acceleration>> {
        self.records.next().map(decode)
    }
}

impl Accelerometer for Replay<'_> {
    type Error = Infallible;

    /// One sample per call; a missing sample reads as an empty batch with `overrun`.
    fn read_ready(&mut self, out: &mut [Acceleration]) -> Result<Batch, Infallible> {
        match (self.next_period(), out.first_mut()) {
            (Some(Some(a)), Some(slot)) => {
                *slot = a;
                Ok(Batch {
                    len: 1,
                    overrun: false,
                })
            }
            (Some(_), _) => Ok(Batch {
                len: 0,
                overrun: true,
            }),
            (None, _) => Ok(Batch::default()),
        }
    }
}
