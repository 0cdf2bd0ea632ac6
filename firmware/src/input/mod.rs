//! Inputs: each turns samples of one sensor into [`crate::wire::EventBody`] values.
//!
//! Every input has the same shape: `new(pin, config)`, `poll(now_ms)` that samples once
//! and returns what happened, `next_deadline()` (when a poll could produce something
//! without a new edge, so a sleepy main loop knows when to wake), `read_errors()` and
//! `release()`. A failed pin read is counted and skipped, never unwrapped.
//!
//! - [`debounce`]: the debouncer under every contact-like input;
//! - [`door`]: door contact → door open/closed;
//! - [`tamper`]: enclosure switch → tamper open/closed;
//! - [`pir`]: PIR with hold-off → motion;
//! - [`button`]: help button → press / cancel / long;
//! - [`gas`]: gas reading with hysteresis → alarm / clear, driving the local siren.

pub mod button;
pub mod debounce;
pub mod door;
pub mod gas;
pub mod pir;
pub mod tamper;

pub use button::{ButtonConfig, HelpButton};
pub use door::{Door, DoorConfig};
pub use gas::{GasAlarm, GasConfig, GasProbe};
pub use pir::{Pir, PirConfig};
pub use tamper::{Tamper, TamperConfig};
