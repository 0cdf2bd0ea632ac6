//! # Anxin gateway
//!
//! The service between the home devices and the people who look after the elders:
//! MQTT ingest with validation and de-duplication, durable storage, and the HTTP server.
//! `docs/architecture.md` maps each step of the flow to its module.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod app;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod detect;
pub mod history;
pub mod http;
pub mod ingest;
pub mod notify;
pub mod provision;
pub mod signal;
pub mod store;
pub mod telemetry;
pub mod workflow;
