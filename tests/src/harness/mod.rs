//! Helpers for end-to-end tests: servers on free loopback ports, started and stopped by
//! the test.
//!
//! - [`ports`]: [`free_port`], [`free_addr`];
//! - [`mosquitto`]: [`Mosquitto`], the Debian `mosquitto` broker with Anxin's password
//!   and ACL files (`apt-get install mosquitto mosquitto-clients`);
//! - [`mqtt`]: [`TestClient`], a rumqttc client polled by its own task, for asserting
//!   what a broker delivers (and, by ordering, what it does not).

pub mod mosquitto;
pub mod mqtt;
pub mod ports;

pub use self::mosquitto::{Mosquitto, MosquittoOpts};
pub use self::mqtt::{ClientOpts, TestClient};
pub use self::ports::{free_addr, free_port};
