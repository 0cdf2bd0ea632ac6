//! # Anxin firmware core
//!
//! `no_std`, no allocator, on `embedded-hal` 1.0 traits and `heapless` containers. It holds
//! everything a home device does, independent of the MCU and radio:
//!
//! - [`wire`]: wire protocol v1 shared with the gateway (messages, topics, encoding);
//! - [`input`]: debounced door contact, PIR with hold-off, help-button gestures, gas
//!   threshold with hysteresis and a local siren;
//! - [`heartbeat`]: heartbeat scheduling;
//! - [`outbox`]: bounded store-and-forward queue, kept until the gateway acknowledges;
//! - [`device`]: the device loop that ties inputs, outbox and link together;
//! - [`driver`]: sensor drivers over `embedded-hal` I2C;
//! - [`fall`]: the pendant's fall detector;
//! - [`provision`]: the provisioning blob read from flash at boot.
//!
//! With the `std` feature the same code runs on the host: the wire types gain
//! `Deserialize`-based decoding with validation (used by the gateway). With `sim`,
//! [`sim`] runs simulated devices and homes that publish over MQTT.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod device;
pub mod driver;
pub mod fall;
pub mod heartbeat;
pub mod input;
pub mod outbox;
pub mod provision;
#[cfg(feature = "sim")]
pub mod sim;
pub mod wire;
