//! # Anxin firmware core
//!
//! `no_std`, no allocator, on `embedded-hal` 1.0 traits and `heapless` containers. It holds
//! everything a home device does, independent of the MCU and radio:
//!
//! - [`wire`]: wire protocol v1 shared with the gateway (messages, topics, encoding);
//!
//! With the `std` feature the same code runs on the host: the wire types gain
//! `Deserialize`-based decoding with validation, used by the gateway.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

pub mod wire;
