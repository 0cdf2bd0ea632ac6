//! The gateway's integration tests, in one test binary: each module is one file of this
//! folder (the subject is in its name), the support modules are shared. One binary links
//! once instead of once per file, which saves minutes and gigabytes on a two-core machine.

mod api_common;
mod common;
mod provision_support;
mod workflow_common;

mod api_auth;
mod api_authz_matrix;
mod api_devices;
mod api_openapi;
mod api_scoping;
mod broker_embedded;
mod broker_throughput;
mod cli_demo;
mod config_example;
mod detect_check_in;
mod detect_e2e;
mod detect_eval;
mod detect_restart;
mod fault_burst;
mod fault_clock_step;
mod fault_disk_full;
mod fault_history_outage;
mod fault_sigkill;
mod hardening_api;
mod hardening_downlink;
mod hardening_ingest;
mod history_embedded;
mod history_retention;
mod history_victoria;
mod ingest_alarm_lane;
mod ingest_embedded;
mod ingest_robustness;
mod provision_cli;
mod provision_health;
mod provision_install_test;
mod provision_security;
mod provision_tls;
mod workflow_alerts;
mod workflow_daily;
mod workflow_e2e;
mod workflow_excel;
mod zigbee2mqtt;
