//! `anxin device …`: the technician's tools. They work on the store directly (no
//! gateway needed); a running gateway applies every change within its
//! `[provision] poll_interval_ms` (revocations close the device's connection then).
//!
//! ```text
//! anxin device register --kind door --household h0001 --room entrance --serial SN123 \
//!     --blob h0001-door.bin --target cortex-m
//! anxin device list [--household h0001]
//! anxin device show h0001-door
//! anxin device credentials h0001-door
//! anxin device rotate h0001-door --blob h0001-door.bin
//! anxin device revoke h0001-door
//! anxin device blob h0001-door --secret <the secret shown at registration> --out f.bin
//! anxin device flash-command f.bin --target esp32c3 --port /dev/ttyACM0
//! anxin device mosquitto-files --password-file anxin.passwd --acl-file anxin.acl [--conf-file anxin.conf]
//! anxin device test start h0001 --minutes 30 --wait
//! anxin device test status h0001 | anxin device test stop h0001
//! anxin device orders [--all] | anxin device close-order 12 --resolution "new battery"
//! ```
//!
//! Every command takes `--data-dir` and `--config` like the others (anywhere on the line). Secrets are printed
//! once, on standard output, and never logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::provision::{
    BlobOptions, CredentialState, FlashOptions, FlashTarget, InstallTestView, Provisioning,
    Registration, Secret, WorkOrderReason, flash_command,
};
use crate::store::Store;

/// Arguments of `anxin device`.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DeviceCommand,
    /// Configuration file (TOML): `[provision]`, `[mqtt]`, `[store]`.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Who is doing it (recorded with registrations, revocations and work orders).
    #[arg(
        long = "as",
        value_name = "NAME",
        global = true,
        default_value = "technician"
    )]
    pub by: String,
    /// Data directory (the embedded store lives here); overrides `general.data_dir`.
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

/// Where a blob goes and what overrides `[provision]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BlobArgs {
    /// Write the provisioning blob to this file.
    #[arg(long, value_name = "FILE")]
    pub blob: Option<PathBuf>,
    /// Broker host devices connect to (overrides `[provision] broker_host`).
    #[arg(long, value_name = "HOST")]
    pub broker_host: Option<String>,
    /// Broker port (overrides `[provision] broker_port`).
    #[arg(long, value_name = "PORT")]
    pub broker_port: Option<u16>,
    /// The broker's CA certificate, PEM or DER (overrides `[provision] ca_cert_path`):
    /// the device will use TLS and pin it.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Also print the flashing command for this board family (cortex-m, esp32c3).
    #[arg(long, value_name = "TARGET")]
    pub target: Option<FlashTarget>,
}

/// `anxin device` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DeviceCommand {
    /// Register a device (and issue its secret, shown once).
    Register {
        /// door, motion, help, gas, pendant or zigbee_bridge.
        #[arg(long)]
        kind: String,
        /// Household it is installed in (not for a bridge serving several).
        #[arg(long)]
        household: Option<String>,
        /// Room (entrance, bedroom, living, kitchen, bathroom, or as written locally).
        #[arg(long)]
        room: Option<String>,
        /// Serial number or MAC address printed on the device.
        #[arg(long)]
        serial: Option<String>,
        /// Device id (default: derived, e.g. h0001-door).
        #[arg(long)]
        id: Option<String>,
        /// Zigbee2MQTT friendly name or IEEE address (a Zigbee device: no credentials of
        /// its own); for a bridge, its path under the base topic.
        #[arg(long, value_name = "NAME")]
        zigbee: Option<String>,
        #[command(flatten)]
        blob: BlobArgs,
    },
    /// List devices with their credentials, health and open work orders.
    List {
        /// Only this household.
        #[arg(long)]
        household: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// One device's health in detail: battery trend, presses, work orders.
    Show {
        /// Device id.
        id: String,
    },
    /// The state of a device's credentials (never the secret).
    Credentials {
        /// Device id.
        id: String,
    },
    /// Issue a new secret (shown once); the old one stops working at once.
    Rotate {
        /// Device id.
        id: String,
        #[command(flatten)]
        blob: BlobArgs,
    },
    /// Revoke a device's credentials: refused and disconnected.
    Revoke {
        /// Device id.
        id: String,
    },
    /// Write a device's provisioning blob, with the secret shown at registration (or a
    /// fresh one with --rotate).
    Blob {
        /// Device id.
        id: String,
        /// The device's current secret (checked against its stored hash).
        #[arg(long, conflicts_with = "rotate")]
        secret: Option<String>,
        /// Issue a new secret for this blob (the old one stops working).
        #[arg(long)]
        rotate: bool,
        /// Output file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        blob: BlobArgs,
    },
    /// Print the command that flashes a blob at its offset.
    FlashCommand {
        /// The blob file.
        file: PathBuf,
        /// cortex-m (probe-rs, nRF52840) or esp32c3 (espflash).
        #[arg(long)]
        target: FlashTarget,
        /// probe-rs chip name.
        #[arg(long)]
        chip: Option<String>,
        /// Serial port (espflash).
        #[arg(long)]
        port: Option<String>,
        /// Flash offset (default: the target's; hex with 0x).
        #[arg(long, value_parser = parse_offset)]
        offset: Option<u32>,
    },
    /// Write an external mosquitto's password and ACL files.
    MosquittoFiles {
        /// mosquitto `password_file`.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
        /// mosquitto `acl_file`.
        #[arg(long, value_name = "FILE")]
        acl_file: PathBuf,
        /// Also write the settings to include from `mosquitto.conf`: no anonymous
        /// clients, these two files, and `max_packet_size` as the embedded broker has it
        /// (a restart of mosquitto applies it).
        #[arg(long, value_name = "FILE")]
        conf_file: Option<PathBuf>,
    },
    /// Installation tests.
    Test {
        /// What to do.
        #[command(subcommand)]
        command: TestCommand,
    },
    /// Technician work orders.
    Orders {
        /// Closed ones too.
        #[arg(long)]
        all: bool,
        /// Only this household.
        #[arg(long)]
        household: Option<String>,
    },
    /// Open a work order by hand.
    OpenOrder {
        /// Device id.
        id: String,
        /// offline, low_battery, suspicious, bridge_offline, untested.
        #[arg(long)]
        reason: String,
        /// What was seen.
        #[arg(long)]
        detail: String,
    },
    /// Close a work order with what was done.
    CloseOrder {
        /// Work order number.
        id: i64,
        /// What was done.
        #[arg(long)]
        resolution: String,
    },
    /// Review every device now (battery samples, work orders).
    Sweep,
}

/// `anxin device test …`.
#[derive(Debug, clap::Subcommand)]
pub enum TestCommand {
    /// Start a test: no caseworker alert for the household until it ends.
    Start {
        /// Household.
        household: String,
        /// Length in minutes (default `[provision] install_test_minutes`).
        #[arg(long)]
        minutes: Option<u32>,
        /// Follow the check-offs until the test ends, then print the report.
        #[arg(long)]
        wait: bool,
    },
    /// Which devices are checked off.
    Status {
        /// Household.
        household: String,
        /// Follow until the test ends.
        #[arg(long)]
        wait: bool,
    },
    /// End the test now and print the report.
    Stop {
        /// Household.
        household: String,
    },
}

fn parse_offset(s: &str) -> Result<u32, String> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => t.parse(),
    }
    .map_err(|e| format!("{s:?}: {e}"))
}

async fn open(args: &DeviceArgs) -> anyhow::Result<Provisioning> {
    let mut config = Config::load(args.config.as_deref()).context("loading configuration")?;
    if let Some(d) = &args.data_dir {
        config.general.data_dir = d.clone();
    }
    std::fs::create_dir_all(&config.general.data_dir).with_context(|| {
        format!(
            "creating data directory {}",
            config.general.data_dir.display()
        )
    })?;
    let store = Store::open(&config.store_url())
        .await
        .context("opening the store")?;
    Ok(Provisioning::offline(store, Arc::new(SystemClock), &config))
}

fn blob_options(p: &Provisioning, a: &BlobArgs) -> anyhow::Result<BlobOptions> {
    let mut cfg = p.config().clone();
    if let Some(h) = &a.broker_host {
        cfg.broker_host = h.clone();
    }
    if let Some(port) = a.broker_port {
        cfg.broker_port = port;
    }
    if let Some(ca) = &a.ca_cert {
        cfg.ca_cert_path = Some(ca.clone());
    }
    let probe = Provisioning::offline(
        p.store().clone(),
        Arc::new(SystemClock),
        &Config {
            provision: cfg,
            ..Config::default()
        },
    );
    Ok(probe.blob_options()?)
}

/// Writes the blob of `id` with `secret` when asked; prints where and how to flash it.
async fn write_blob(
    p: &Provisioning,
    id: &str,
    secret: &Secret,
    a: &BlobArgs,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let Some(path) = out.or(a.blob.as_deref()) else {
        return Ok(());
    };
    let options = blob_options(p, a)?;
    let bytes = p.blob(id, secret, &options).await?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "Provisioning blob for {id} written to {} ({} bytes; broker {}:{}{}).",
        path.display(),
        bytes.len(),
        options.broker_host,
        options.broker_port,
        if options.ca_sha256.is_some() {
            ", TLS with the CA pinned"
        } else {
            ", no TLS"
        }
    );
    if let Some(t) = a.target {
        println!(
            "Flash it with:\n  {}",
            flash_command(t, path, &FlashOptions::default())
        );
    }
    Ok(())
}

fn print_secret(id: &str, secret: &Secret) {
    println!(
        "Secret of {id} (shown once; it is stored only as a hash):\n  {}",
        secret.expose()
    );
}

fn fmt_ms(ms: Option<i64>) -> String {
    ms.and_then(|t| jiff::Timestamp::from_millisecond(t).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

fn print_test(v: &InstallTestView) {
    let state = match v.ended_ms {
        Some(t) => format!("ended {}", fmt_ms(Some(t))),
        None => format!("running until {}", fmt_ms(Some(v.until_ms))),
    };
    println!("Installation test of {} ({state})", v.household_id);
    for d in &v.devices {
        match (&d.tested_ms, &d.by) {
            (Some(t), Some(by)) => println!(
                "  [x] {:<28} {:<8} {} at {}",
                d.device_id,
                d.kind,
                by,
                fmt_ms(Some(*t))
            ),
            _ => println!("  [ ] {:<28} {:<8} to do: {}", d.device_id, d.kind, d.needs),
        }
    }
    let untested = v.untested();
    if v.ended_ms.is_some() {
        if untested.is_empty() {
            println!("Every device was checked off.");
        } else {
            println!(
                "NOT TESTED: {} (a work order was opened for each)",
                untested
                    .iter()
                    .map(|d| d.device_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}

/// Prints check-offs as they appear in the journal until the test ends.
async fn follow(p: &Provisioning, household: &str) -> anyhow::Result<InstallTestView> {
    let mut shown = std::collections::HashSet::new();
    loop {
        let v = p.test_status(household).await?;
        for d in &v.devices {
            if let (Some(t), Some(by)) = (d.tested_ms, &d.by)
                && shown.insert(d.device_id.clone())
            {
                println!("  [x] {} ({by}) at {}", d.device_id, fmt_ms(Some(t)));
            }
        }
        let now = SystemClock.now_ms();
        if v.ended_ms.is_some() {
            return Ok(v);
        }
        if now >= v.until_ms {
            // The gateway normally writes the report; do it if it is not running.
            tokio::time::sleep(Duration::from_secs(3)).await;
            return match p.stop_test(household, "anxin").await {
                Ok(v) => Ok(v),
                // Already ended by the gateway meanwhile.
                Err(_) => Ok(p.test_status(household).await?),
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `anxin device …`.
pub async fn run(args: DeviceArgs) -> anyhow::Result<()> {
    let p = open(&args).await?;
    let by = args.by.as_str();
    match &args.command {
        DeviceCommand::Register {
            kind,
            household,
            room,
            serial,
            id,
            zigbee,
            blob,
        } => {
            let r = p
                .register(
                    Registration {
                        device_id: id.clone(),
                        kind: kind.clone(),
                        serial: serial.clone(),
                        household_id: household.clone(),
                        room: room.clone(),
                        zigbee_name: zigbee.clone(),
                    },
                    by,
                )
                .await?;
            println!("Registered {}.", r.device_id);
            match &r.secret {
                Some(s) => {
                    print_secret(&r.device_id, s);
                    write_blob(&p, &r.device_id, s, blob, None).await?;
                }
                None => println!(
                    "A Zigbee2MQTT device: no credentials of its own (its bridge logs in)."
                ),
            }
        }
        DeviceCommand::List { household, json } => {
            let list = p.list(household.as_deref()).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<28} {:<14} {:<9} {:<10} {:<8} {:<20} {:>5} {:>5} {:<8} orders",
                    "device",
                    "kind",
                    "household",
                    "room",
                    "online",
                    "last seen",
                    "batt",
                    "rssi",
                    "creds"
                );
                for d in list {
                    let creds = match d.credentials {
                        CredentialState::None => "-".to_string(),
                        CredentialState::Active { generation, .. } => format!("gen {generation}"),
                        CredentialState::Revoked { .. } => "REVOKED".into(),
                    };
                    println!(
                        "{:<28} {:<14} {:<9} {:<10} {:<8} {:<20} {:>5} {:>5} {:<8} {}",
                        d.device_id,
                        d.kind,
                        d.household_id.as_deref().unwrap_or("-"),
                        d.room.as_deref().unwrap_or("-"),
                        if d.health.online { "yes" } else { "NO" },
                        fmt_ms(d.health.last_seen_ms),
                        d.health
                            .battery_pct
                            .map(|b| format!("{b}%"))
                            .unwrap_or("-".into()),
                        d.health
                            .rssi_dbm
                            .map(|r| r.to_string())
                            .unwrap_or("-".into()),
                        creds,
                        d.open_orders
                            .iter()
                            .map(|o| format!("#{} {}", o.id, o.reason))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
        }
        DeviceCommand::Show { id } => {
            let d = p.device(id).await?;
            let h = p.health(id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "device": d,
                    "battery_pct_per_day": h.battery_pct_per_day,
                    "battery_days_left": h.battery_days_left,
                    "false_presses": h.false_presses,
                    "presses": h.presses,
                    "work_orders": h.work_orders,
                }))?
            );
        }
        DeviceCommand::Credentials { id } => {
            println!("{}", serde_json::to_string(&p.credentials(id).await?)?);
        }
        DeviceCommand::Rotate { id, blob } => {
            let issued = p.rotate(id, by).await?;
            println!(
                "New secret issued for {id} (generation {}); the previous one no longer works.",
                issued.generation
            );
            print_secret(id, &issued.secret);
            write_blob(&p, id, &issued.secret, blob, None).await?;
        }
        DeviceCommand::Revoke { id } => {
            p.revoke(id, by).await?;
            println!(
                "Credentials of {id} revoked: a running gateway refuses and disconnects it within {} ms.",
                p.config().poll_interval_ms
            );
        }
        DeviceCommand::Blob {
            id,
            secret,
            rotate,
            out,
            blob,
        } => {
            let secret = match (secret, rotate) {
                (Some(s), false) => Secret::from_text(s),
                (None, true) => {
                    let issued = p.rotate(id, by).await?;
                    print_secret(id, &issued.secret);
                    issued.secret
                }
                _ => bail!("give the device's --secret, or --rotate to issue a new one"),
            };
            write_blob(&p, id, &secret, blob, Some(out)).await?;
        }
        DeviceCommand::FlashCommand {
            file,
            target,
            chip,
            port,
            offset,
        } => {
            println!(
                "{}",
                flash_command(
                    *target,
                    file,
                    &FlashOptions {
                        chip: chip.clone(),
                        port: port.clone(),
                        offset: *offset,
                    }
                )
            );
        }
        DeviceCommand::MosquittoFiles {
            password_file,
            acl_file,
            conf_file,
        } => {
            let n = p.write_mosquitto_files(password_file, acl_file).await?;
            if let Some(conf) = conf_file {
                crate::provision::mosquitto::write_atomic(
                    conf,
                    &crate::provision::mosquitto::conf_file(password_file, acl_file),
                )?;
                println!("mosquitto settings written to {}", conf.display());
            }
            println!(
                "{n} logins written to {}; ACL to {}. Reload mosquitto (SIGHUP) to apply.",
                password_file.display(),
                acl_file.display()
            );
        }
        DeviceCommand::Test { command } => match command {
            TestCommand::Start {
                household,
                minutes,
                wait,
            } => {
                let v = p.start_test(household, *minutes, by).await?;
                print_test(&v);
                if *wait {
                    let v = follow(&p, household).await?;
                    print_test(&v);
                }
            }
            TestCommand::Status { household, wait } => {
                let v = if *wait {
                    follow(&p, household).await?
                } else {
                    p.test_status(household).await?
                };
                print_test(&v);
            }
            TestCommand::Stop { household } => {
                let v = p.stop_test(household, by).await?;
                print_test(&v);
            }
        },
        DeviceCommand::Orders { all, household } => {
            for o in p.work_orders(!all, household.as_deref()).await? {
                println!(
                    "#{:<5} {:<28} {:<15} {:<20} {}{}",
                    o.id,
                    o.device_id,
                    o.reason,
                    fmt_ms(Some(o.opened_ms)),
                    o.detail,
                    match (&o.closed_ms, &o.resolution) {
                        (Some(t), r) => format!(
                            "  [closed {} by {}: {}]",
                            fmt_ms(Some(*t)),
                            o.closed_by.as_deref().unwrap_or("-"),
                            r.as_deref().unwrap_or("-")
                        ),
                        _ => String::new(),
                    }
                );
            }
        }
        DeviceCommand::OpenOrder { id, reason, detail } => {
            let reason = WorkOrderReason::parse(reason)
                .with_context(|| format!("unknown reason {reason:?}"))?;
            let n = p.open_work_order(id, reason, detail).await?;
            println!("Work order #{n} open for {id}.");
        }
        DeviceCommand::CloseOrder { id, resolution } => {
            let o = p.close_work_order(*id, by, resolution).await?;
            println!(
                "Work order #{} ({} {}) closed.",
                o.id, o.device_id, o.reason
            );
        }
        DeviceCommand::Sweep => {
            let r = p.sweep().await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
    }
    p.store().close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_read_in_hex_or_decimal() {
        assert_eq!(parse_offset("0x3FF000"), Ok(0x3F_F000));
        assert_eq!(parse_offset("4096"), Ok(4096));
        assert!(parse_offset("0xZZ").is_err());
    }
}
