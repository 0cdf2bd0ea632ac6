//! `anxin load populate`: registers the virtual population in the store of a gateway
//! that is not running (households, devices, and for the help-press households a
//! committee, a caseworker who looks after them and her password; optionally per-device
//! credentials for the reconnect storm).

use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::super::DataDirArg;
use super::super::org::offline_workflow;
use super::fleet::{HELP_SLOT, Layout, SLOTS};
use crate::broker::SecretHash;
use crate::clock::{Clock, SystemClock};
use crate::store::{self, NewDevice, NewHousehold, Store};
use crate::workflow::{Actor, UserId};

/// Rows per multi-row INSERT.
const CHUNK: usize = 500;

/// Arguments of `anxin load populate`.
#[derive(Debug, clap::Args)]
pub struct PopulateArgs {
    /// Households to register (`b0000000` …).
    #[arg(long, default_value_t = 10_000)]
    pub households: usize,
    /// Devices per household, 1–5: door, motion, help, motion, gas.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub devices_per_household: u8,
    /// Households (the first ones) that get a caseworker: help presses go to them.
    #[arg(long, default_value_t = 1000)]
    pub help_households: usize,
    /// The caseworker who looks after the help-press households (dashboard login).
    #[arg(long, default_value = "bench-cw")]
    pub user: String,
    /// Her password.
    #[arg(long, env = "LOADGEN_PASSWORD")]
    pub password: String,
    /// Devices (the first ones) that get per-device credentials, for `anxin load storm`.
    #[arg(long, default_value_t = 0)]
    pub credentialed_devices: usize,
    /// The secret every credentialed device gets (a bench, not a deployment).
    #[arg(long, env = "LOADGEN_DEVICE_SECRET", default_value = "")]
    pub device_secret: String,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub data: DataDirArg,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(what.to_string());
    pb
}

/// One chunk of the population, as the store inserts it.
enum Chunk {
    /// Households.
    Households(Vec<NewHousehold>),
    /// Devices.
    Devices(Vec<NewDevice>),
    /// Device ids that get the bench secret (its hash, hex).
    Credentials(Vec<String>, String),
}

/// Inserts `n` rows, `CHUNK` to a statement and 20 statements to a transaction;
/// `chunk` gives the rows of a range.
async fn insert_rows(
    store: &Store,
    n: usize,
    what: &str,
    now: i64,
    chunk: impl Fn(std::ops::Range<usize>) -> Chunk,
) -> anyhow::Result<()> {
    let pb = bar(n as u64, what);
    let backend = store.backend();
    let mut at = 0;
    while at < n {
        let end = (at + CHUNK).min(n);
        let mut tx = store.begin().await?;
        // Several chunks per transaction: one fsync per 20 chunks.
        for _ in 0..20 {
            if at >= end {
                break;
            }
            match chunk(at..end) {
                Chunk::Households(rows) => {
                    store::insert_households_if_absent(&mut tx, backend, &rows, now).await?;
                }
                Chunk::Devices(rows) => {
                    store::insert_devices_if_absent(&mut tx, backend, &rows, now).await?;
                }
                Chunk::Credentials(ids, hash) => {
                    store::insert_bench_credentials(
                        &mut tx,
                        backend,
                        &ids,
                        &hash,
                        now,
                        "anxin load",
                    )
                    .await?;
                }
            }
            at = end;
            pb.set_position(at as u64);
        }
        tx.commit().await?;
    }
    pb.finish();
    Ok(())
}

/// Registers the population.
pub async fn run(a: PopulateArgs) -> anyhow::Result<()> {
    let layout = Layout {
        households: a.households,
        per_household: usize::from(a.devices_per_household),
    };
    let (wf, store) = offline_workflow(a.config.as_deref(), &a.data).await?;
    let now = SystemClock.now_ms();
    let started = Instant::now();
    insert_rows(&store, layout.households, "households", now, |r| {
        Chunk::Households(
            r.map(|h| NewHousehold {
                id: Layout::household_id(h),
                name: format!("bench home {h}"),
                address: String::new(),
            })
            .collect(),
        )
    })
    .await?;
    insert_rows(&store, layout.devices(), "devices", now, |r| {
        Chunk::Devices(
            r.map(|d| {
                let (_, kind, room) = SLOTS[d % layout.per_household];
                NewDevice {
                    id: layout.device_id(d),
                    household_id: Some(Layout::household_id(d / layout.per_household)),
                    kind: kind.into(),
                    room: Some(room.into()),
                }
            })
            .collect(),
        )
    })
    .await?;
    if a.credentialed_devices > 0 {
        anyhow::ensure!(
            a.device_secret.len() >= 16,
            "--device-secret needs at least 16 characters"
        );
        let hash = SecretHash::of(a.device_secret.as_bytes()).to_hex();
        insert_rows(
            &store,
            a.credentialed_devices.min(layout.devices()),
            "credentials",
            now,
            |r| Chunk::Credentials(r.map(|d| layout.device_id(d)).collect(), hash.clone()),
        )
        .await?;
    }

    // The help-press households: one committee, one caseworker who looks after them.
    let help = a.help_households.min(layout.households);
    if help > 0 && layout.per_household > HELP_SLOT {
        let committees = "committee_id,committee_name,street_id,street_name,district_id,district_name\n\
            bench-c1,压测居委会,bench-s1,压测街道,bench-d1,压测区\n";
        let users = format!(
            "user_id,name,role,committee_id,street_id,on_duty\n{},压测社工,caseworker,bench-c1,,yes\n",
            a.user
        );
        let mut homes = String::from(
            "household_id,name,address,committee_id,caseworker_id,backup_id,risk_tags\n",
        );
        for h in 0..help {
            homes.push_str(&format!(
                "{},bench home {h},,bench-c1,{},,\n",
                Layout::household_id(h),
                a.user
            ));
        }
        wf.import_org(
            &Actor::System,
            &[
                ("committees.csv".into(), committees.as_bytes().to_vec()),
                ("users.csv".into(), users.into_bytes()),
                ("households.csv".into(), homes.into_bytes()),
            ],
            false,
        )
        .await
        .context("importing the bench organisation")?;
        crate::api::auth::store_password(&store, now, &UserId::new(&a.user), &a.password)
            .await
            .map_err(|e| anyhow::anyhow!("setting the password: {}", e.message))?;
    }
    store.close().await;
    println!(
        "registered {} households, {} devices ({} with help presses looked after by {}) in {:.1} s",
        layout.households,
        layout.devices(),
        help,
        a.user,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
