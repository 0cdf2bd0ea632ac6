//! `anxin load storm`: many devices, each on its own MQTT connection with its own
//! credentials and last will, connect at once, lose their connections at once, and
//! reconnect at once, replaying every event the gateway has not acknowledged, as the
//! firmware's outbox does. Reports how long until every device is connected and every
//! event is acknowledged, the connect failures and retries, and what was lost.
//!
//! Bounded: every phase gives up after `--phase-timeout-s`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::LoadError;
use super::fleet::{self, Body, Fleet, Layout, PREFIX};
use super::mqtt::{self, Connect, Packet};
use super::observe::{self, CpuUse, GatewayCounters, Procs};
use super::report::{Latency, Reporting, append_json};

/// Arguments of `anxin load storm`.
#[derive(Debug, Clone, clap::Args)]
pub struct StormArgs {
    /// Broker address (loopback only).
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub broker: String,
    /// Households of the population (as populated).
    #[arg(long, default_value_t = 10_000)]
    pub households: usize,
    /// Devices per household (as populated).
    #[arg(long, default_value_t = 5)]
    pub devices_per_household: usize,
    /// Devices in the storm (the first ones; they need credentials:
    /// `anxin load populate --credentialed-devices`).
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Their secret.
    #[arg(long, env = "LOADGEN_DEVICE_SECRET")]
    pub device_secret: String,
    /// Events each device sends after its first connect, and again while it is away
    /// (held in its outbox and replayed at the reconnect).
    #[arg(long, default_value_t = 2)]
    pub events_per_device: u32,
    /// Seconds the devices stay away between the drop and the reconnect.
    #[arg(long, default_value_t = 2)]
    pub away_s: u64,
    /// A phase that has not finished after this long has failed.
    #[arg(long, default_value_t = 120)]
    pub phase_timeout_s: u64,
    /// The gateway's HTTP base, for its counters.
    #[arg(long)]
    pub http: Option<String>,
    /// What the report names, where it goes, and whether progress is shown.
    #[command(flatten)]
    pub report: Reporting,
}

/// One phase of the storm.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// Devices connected (CONNACK and SUBACK).
    pub connected: u64,
    /// Devices whose every event was acknowledged.
    pub acked: u64,
    /// From the start of the phase to the last CONNACK, s.
    pub all_connected_s: f64,
    /// From the start of the phase to the last device fully acknowledged, s.
    pub all_acked_s: f64,
    /// Connect attempts that failed (and were retried).
    pub connect_failures: u64,
    /// Per-device time to connect.
    pub connect: Latency,
    /// Per-device time from connect to every event acknowledged.
    pub ack: Latency,
}

/// The storm's report.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// Label.
    pub label: String,
    /// Devices.
    pub devices: usize,
    /// First connect of every device.
    pub connect: Phase,
    /// Reconnect of every device after all connections dropped at once.
    pub reconnect: Phase,
    /// Events issued.
    pub events_issued: u64,
    /// Events acknowledged at the end.
    pub events_acked: u64,
    /// Gateway counters over the storm (status messages include the last wills).
    pub gateway: GatewayCounters,
    /// CPU of every process over the storm.
    pub cpu: Vec<CpuUse>,
    /// `/proc/loadavg` before and after.
    pub loadavg: (String, String),
}

struct Shared {
    fleet: Fleet,
    addr: String,
    secret: String,
    connected: AtomicU64,
    acked: AtomicU64,
    failures: AtomicU64,
    timeout: Duration,
}

/// One device's session: connect (retrying with backoff), publish online, replay what is
/// not acknowledged, a heartbeat, then wait for the acks; stay connected until `drop`.
/// Returns (time to connect, time from connect to acked).
async fn session(
    s: Arc<Shared>,
    idx: usize,
    start: Instant,
    drop: CancellationToken,
) -> Result<(Duration, Duration), LoadError> {
    let layout = s.fleet.layout;
    let id = layout.device_id(idx);
    let status_topic = format!("anxin/v1/dev/{id}/up/status");
    let filter = format!("anxin/v1/dev/{id}/down/#");
    let boot = s.fleet.boot;
    let mut will = Vec::new();
    fleet::status(&mut will, boot, s.fleet.issued(idx), unix_ms(), false);
    let mut delay = Duration::from_millis(100);
    let (mut read, mut write, mut buf) = loop {
        if start.elapsed() > s.timeout {
            return Err(LoadError::Timeout("device connect"));
        }
        let r = mqtt::open(
            &s.addr,
            &Connect {
                client_id: &id,
                login: Some((&id, s.secret.as_bytes())),
                will: Some((&status_topic, &will, true)),
                keep_alive_s: 60,
                clean: false,
            },
            &[&filter],
            1,
            Duration::from_secs(30),
        )
        .await;
        match r {
            Ok(c) => break c,
            Err(LoadError::Refused(code)) => return Err(LoadError::Refused(code)),
            Err(_) => {
                s.failures.fetch_add(1, Ordering::Relaxed);
                // Backoff with jitter, as the firmware does.
                let jitter = rand::rng().random_range(0..=delay.as_millis() as u64 / 2);
                tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    let connected_after = start.elapsed();
    s.connected.fetch_add(1, Ordering::Relaxed);
    let t_conn = Instant::now();
    // Online, the outbox (everything above the ack), a heartbeat.
    let ts = unix_ms();
    let (acked, issued) = (s.fleet.acked(idx), s.fleet.issued(idx));
    let mut out = Vec::with_capacity(2048);
    let mut payload = Vec::with_capacity(256);
    let mut pid = 0u16;
    let mut next = || {
        pid = pid.wrapping_add(1).max(1);
        Some(pid)
    };
    fleet::status(&mut payload, boot, issued, ts, true);
    mqtt::publish(&mut out, &[status_topic.as_bytes()], next(), true, &payload);
    for seq in acked + 1..=issued {
        payload.clear();
        fleet::event(
            &mut payload,
            boot,
            seq,
            acked + 1,
            ts,
            Body::Door(seq % 2 == 1),
        );
        mqtt::publish(
            &mut out,
            &[PREFIX, id.as_bytes(), b"/up/event"],
            next(),
            false,
            &payload,
        );
    }
    payload.clear();
    fleet::heartbeat(&mut payload, boot, issued, ts, 60, (issued - acked) as u16);
    mqtt::publish(
        &mut out,
        &[PREFIX, id.as_bytes(), b"/up/hb"],
        next(),
        false,
        &payload,
    );
    write.write_all(&out).await?;
    let mut acked_after = None;
    if s.fleet.acked(idx) >= issued {
        acked_after = Some(t_conn.elapsed());
        s.acked.fetch_add(1, Ordering::Relaxed);
    }
    loop {
        out.clear();
        while let Some((p, n)) = mqtt::parse(&buf)? {
            if let Packet::Publish {
                pid,
                topic,
                payload,
            } = p
            {
                if let Some(p) = pid {
                    mqtt::puback(&mut out, p);
                }
                if topic.ends_with(b"/down/ack")
                    && let Some((b, upto)) = fleet::parse_ack(payload)
                    && b == boot
                {
                    s.fleet.ack(idx, upto, 0);
                    if acked_after.is_none() && upto >= issued {
                        acked_after = Some(t_conn.elapsed());
                        s.acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            buf.drain(..n);
        }
        if !out.is_empty() {
            write.write_all(&out).await?;
        }
        tokio::select! {
            _ = drop.cancelled() => break,
            r = mqtt::fill(&mut read, &mut buf) => r?,
        }
    }
    // Dropped without DISCONNECT: the broker publishes the last will.
    Ok((connected_after, acked_after.unwrap_or(Duration::MAX)))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn phase(s: &Arc<Shared>, n: usize, what: &str, quiet: bool) -> Result<Phase, LoadError> {
    s.connected.store(0, Ordering::Relaxed);
    s.acked.store(0, Ordering::Relaxed);
    s.failures.store(0, Ordering::Relaxed);
    let drop = CancellationToken::new();
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|idx| tokio::spawn(session(s.clone(), idx, start, drop.clone())))
        .collect();
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(n as u64);
        pb.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} acked  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_prefix(what.to_string());
        pb
    };
    let mut all_connected = None;
    let mut all_acked = None;
    while start.elapsed() < s.timeout {
        let c = s.connected.load(Ordering::Relaxed);
        let a = s.acked.load(Ordering::Relaxed);
        pb.set_position(a);
        pb.set_message(format!("{c} connected"));
        if all_connected.is_none() && c as usize >= n {
            all_connected = Some(start.elapsed());
        }
        if a as usize >= n {
            all_acked = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pb.finish_and_clear();
    // Every connection drops at once.
    drop.cancel();
    let mut connect = Vec::new();
    let mut ack = Vec::new();
    for t in tasks {
        if let Ok(Ok((c, a))) = t.await {
            connect.push(c.as_secs_f64() * 1e3);
            if a != Duration::MAX {
                ack.push(a.as_secs_f64() * 1e3);
            }
        }
    }
    Ok(Phase {
        connected: s.connected.load(Ordering::Relaxed),
        acked: s.acked.load(Ordering::Relaxed),
        all_connected_s: all_connected.map_or(f64::NAN, |d| d.as_secs_f64()),
        all_acked_s: all_acked.map_or(f64::NAN, |d| d.as_secs_f64()),
        connect_failures: s.failures.load(Ordering::Relaxed),
        connect: Latency::of(connect, n),
        ack: Latency::of(ack, n),
    })
}

/// Runs the storm.
pub async fn run(a: StormArgs) -> Result<StormReport, LoadError> {
    super::drive::check_loopback(&a.broker)?;
    if let Some(h) = &a.http {
        super::drive::check_loopback(h)?;
    }
    let layout = Layout {
        households: a.households,
        per_household: a.devices_per_household.clamp(1, 5),
    };
    let n = a.devices.min(layout.devices()).min(100_000);
    let boot = ((unix_ms() / 2000).saturating_sub(880_000_000)).max(1) as u32;
    let s = Arc::new(Shared {
        fleet: Fleet::new(layout, boot),
        addr: a.broker.clone(),
        secret: a.device_secret.clone(),
        connected: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        timeout: Duration::from_secs(a.phase_timeout_s.clamp(1, 3600)),
    });
    let procs = Procs::parse(&a.report.pids)?;
    let http = reqwest::Client::new();
    let base = match &a.http {
        Some(h) => observe::gateway_counters(&http, h).await?,
        None => GatewayCounters::default(),
    };
    let cpu0 = procs.sample();
    let load0 = observe::loadavg();
    let t0 = Instant::now();
    let issue = |s: &Shared| {
        for idx in 0..n {
            for _ in 0..a.events_per_device {
                s.fleet.issue(idx, 1);
            }
        }
    };
    issue(&s);
    let connect = phase(&s, n, "connect", a.report.quiet).await?;
    // Away: the devices keep events in their outboxes.
    issue(&s);
    tokio::time::sleep(Duration::from_secs(a.away_s.min(600))).await;
    let reconnect = phase(&s, n, "reconnect", a.report.quiet).await?;
    let busy = t0.elapsed().as_secs_f64();
    // The last wills of the final drop, and the gateway's counters settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu1 = procs.sample();
    let gateway = match &a.http {
        Some(h) => observe::gateway_counters(&http, h).await?.since(&base),
        None => GatewayCounters::default(),
    };
    let (issued, acked) = s.fleet.totals();
    let report = StormReport {
        label: a.report.label.clone(),
        devices: n,
        connect,
        reconnect,
        events_issued: issued,
        events_acked: acked,
        gateway,
        cpu: observe::cpu_between(&cpu0, &cpu1, busy),
        loadavg: (load0, observe::loadavg()),
    };
    if let Some(out) = &a.report.out {
        append_json(out, &report)?;
    }
    Ok(report)
}
