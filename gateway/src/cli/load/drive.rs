//! `anxin load run`: open-loop load on a broker, help presses with their latencies, and
//! the reconciliation of every event by sequence number.
//!
//! ```text
//! publishers (N connections, a multiplexer login) ── heartbeats + door/motion events ─▶ broker
//! help connection ── help presses (its own connection, as a real button has) ─────────▶ broker
//! ack listener ◀── anxin/v1/dev/+/down/ack (app-level acks: committed durably) ──────── gateway
//! help connection ◀── …/down/cmd alert_received (the alert is committed) ─────────────── gateway
//! SSE client ◀── /api/v1/stream `alert` (the caseworker's screen) ───────────────────── gateway
//! webhook receiver ◀── POST /hook (the do-it-yourself peer's help press) ────────────── Node-RED
//! ```
//!
//! Open loop: each publisher sends what its schedule says is due, whatever happens
//! downstream; when the broker pushes back (TCP) the generator falls behind and says by
//! how much, and latencies count from the scheduled time. Events are counted back from
//! the gateway's acks (or the peer's counters) after a drain, and what is missing is
//! replayed from the "outbox" (every unacknowledged seq), as a device does.

use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

use super::LoadError;
use super::fleet::{self, Body, Fleet, HELP_SLOT, Layout, PREFIX};
use super::mqtt::{self, Connect, Packet};
use super::observe::{self, CpuUse, GatewayCounters, Hooked, PeerCounters, Procs};
use super::report::{Latency, Reporting, append_json};
use super::shape::{Schedule, day_profile};

/// Longest run.
const MAX_SECONDS: u64 = 3600;
/// QoS 1 messages in flight per connection before the generator waits for PUBACKs.
const MAX_INFLIGHT: u64 = 60_000;
/// Most messages written per tick and connection.
const MAX_PER_WRITE: u64 = 4096;
/// Event-ack latency samples kept.
const MAX_SAMPLES: usize = 2_000_000;

/// Where the load goes and who counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// An Anxin gateway: app-level acks, `/metrics`, the alert feedback command and SSE.
    Anxin,
    /// The do-it-yourself peer: mosquitto + Node-RED (`/stats`, webhook).
    Peer,
}

/// How the event rate moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// The same rate all along (a burst).
    Flat,
    /// Events shaped like a day of the simulated homes (heartbeats stay flat).
    Day,
}

/// Arguments of `anxin load run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Broker address (loopback only).
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub broker: String,
    /// Multiplexer username (`[[broker.multiplexers]]`, or the mosquitto ACL's user).
    #[arg(long, default_value = "anxin-load")]
    pub username: String,
    /// Multiplexer password.
    #[arg(long, env = "LOADGEN_SECRET")]
    pub password: String,
    /// Households (as populated).
    #[arg(long, default_value_t = 10_000)]
    pub households: usize,
    /// Devices per household (as populated).
    #[arg(long, default_value_t = 5)]
    pub devices_per_household: usize,
    /// MQTT connections that carry the background load.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Background messages per second (mean, heartbeats and events together).
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Share of events in the background load (the rest are heartbeats).
    #[arg(long, default_value_t = 0.1)]
    pub event_share: f64,
    /// Flat burst, or events shaped like a day.
    #[arg(long, value_enum, default_value_t = Profile::Flat)]
    pub profile: Profile,
    /// `day` profile: seconds of run per simulated day.
    #[arg(long, default_value_t = 120.0)]
    pub day_seconds: f64,
    /// `day` profile: local time the run starts at, in minutes after midnight.
    #[arg(long, default_value_t = 360.0)]
    pub day_start_minute: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Help presses per second (0: none), each on another household.
    #[arg(long, default_value_t = 5.0)]
    pub help_rate: f64,
    /// Households (the first ones) that help presses go to.
    #[arg(long, default_value_t = 1000)]
    pub help_households: usize,
    /// Who counts.
    #[arg(long, value_enum, default_value_t = Target::Anxin)]
    pub target: Target,
    /// The gateway's HTTP base (anxin target), e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    pub http: Option<String>,
    /// Dashboard user whose live stream is followed (SSE); needs `--user-password`.
    #[arg(long)]
    pub user: Option<String>,
    /// Her password.
    #[arg(long, env = "LOADGEN_PASSWORD")]
    pub user_password: Option<String>,
    /// The peer's counters URL (peer target), e.g. `http://127.0.0.1:1880/stats`.
    #[arg(long)]
    pub peer_stats: Option<String>,
    /// Where to receive the peer's help webhooks (loopback), e.g. `127.0.0.1:18080`.
    #[arg(long)]
    pub webhook_listen: Option<std::net::SocketAddr>,
    /// Longest wait, after the load, for everything to be counted.
    #[arg(long, default_value_t = 60)]
    pub drain_s: u64,
    /// Replays of unacknowledged events after the drain (anxin target).
    #[arg(long, default_value_t = 3)]
    pub replay_rounds: u32,
    /// Boot epoch of the virtual devices (default: from the clock, increasing per run).
    #[arg(long)]
    pub boot: Option<u32>,
    /// What the report names, where it goes, and whether progress is shown.
    #[command(flatten)]
    pub report: Reporting,
}

/// A help press and when each observer saw it.
#[derive(Debug, Clone)]
struct Press {
    at: Instant,
    cmd: Option<Duration>,
    sse: Option<Duration>,
    hook: Option<Duration>,
}

/// State shared by the tasks of a run.
struct Ctx {
    fleet: Fleet,
    start: Instant,
    presses: Mutex<HashMap<usize, Press>>,
}

impl Ctx {
    fn now_us(&self) -> u32 {
        self.start
            .elapsed()
            .as_micros()
            .min(u128::from(u32::MAX - 1)) as u32
            + 1
    }

    fn seen(&self, household: usize, at: Instant, which: fn(&mut Press) -> &mut Option<Duration>) {
        if let Ok(mut p) = self.presses.lock()
            && let Some(press) = p.get_mut(&household)
        {
            let pressed = press.at;
            let slot = which(press);
            if slot.is_none() {
                *slot = Some(at.saturating_duration_since(pressed));
            }
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Counters of one publisher connection.
#[derive(Debug, Default, Clone, Copy)]
struct PubStats {
    events: u64,
    heartbeats: u64,
    /// Largest lag behind the schedule, messages.
    max_behind: u64,
    /// Time spent waiting for PUBACKs (in-flight window full).
    stalled: Duration,
}

struct Publisher {
    write: OwnedWriteHalf,
    pubacks: Arc<AtomicU64>,
    sent_q1: u64,
    pid: u16,
}

impl Publisher {
    fn next_pid(&mut self) -> u16 {
        self.pid = self.pid.wrapping_add(1).max(1);
        self.sent_q1 += 1;
        self.pid
    }
}

/// Reads a publisher connection: counts PUBACKs; sets `closed` when it ends.
async fn count_pubacks(
    mut read: OwnedReadHalf,
    mut buf: Vec<u8>,
    pubacks: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
) {
    loop {
        loop {
            match mqtt::parse(&buf) {
                Ok(Some((p, n))) => {
                    if let Packet::PubAck(_) = p {
                        pubacks.fetch_add(1, Ordering::Relaxed);
                    }
                    buf.drain(..n);
                }
                Ok(None) => break,
                Err(_) => {
                    closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
        if mqtt::fill(&mut read, &mut buf).await.is_err() {
            closed.store(true, Ordering::Relaxed);
            return;
        }
    }
}

pub(super) fn check_loopback(addr: &str) -> Result<(), LoadError> {
    let host_port = addr
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(addr);
    let resolved: Vec<_> = host_port
        .to_socket_addrs()
        .map_err(|e| LoadError::Usage(format!("{addr}: {e}")))?
        .collect();
    if resolved.is_empty() || !resolved.iter().all(|a| a.ip().is_loopback()) {
        return Err(LoadError::Usage(format!(
            "{addr} is not a loopback address: the load generator only drives this machine"
        )));
    }
    Ok(())
}

/// The households a publisher connection owns (`h % connections == conn`).
fn owned(households: usize, connections: usize, conn: usize) -> usize {
    if conn >= households {
        0
    } else {
        (households - conn).div_ceil(connections)
    }
}

async fn open_publisher(
    a: &RunArgs,
    client_id: &str,
    filters: &[&str],
    qos: u8,
) -> Result<(OwnedReadHalf, OwnedWriteHalf, Vec<u8>), LoadError> {
    mqtt::open(
        &a.broker,
        &Connect {
            client_id,
            login: Some((&a.username, a.password.as_bytes())),
            will: None,
            keep_alive_s: 60,
            clean: true,
        },
        filters,
        qos,
        Duration::from_secs(10),
    )
    .await
}

/// One background publisher: sends its share of the event and heartbeat schedules
/// until both are sent.
async fn publish_load(
    ctx: Arc<Ctx>,
    mut p: Publisher,
    conn: usize,
    connections: usize,
    (ev_plan, hb_plan): (Schedule, Schedule),
    event_slots: Vec<usize>,
    closed: Arc<AtomicBool>,
) -> Result<(Publisher, PubStats), LoadError> {
    let layout = ctx.fleet.layout;
    let dph = layout.per_household;
    let mine = owned(layout.households, connections, conn);
    let mut st = PubStats::default();
    if mine == 0 {
        return Ok((p, st));
    }
    let ev_plan = if event_slots.is_empty() {
        Schedule::flat(0.0, ev_plan.seconds())
    } else {
        ev_plan
    };
    let boot = ctx.fleet.boot;
    let (ev_total, hb_total) = (ev_plan.total(), hb_plan.total());
    let mut hb_cur = 0usize;
    let mut ev_cur = 0usize;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut payload: Vec<u8> = Vec::with_capacity(512);
    let mut id: Vec<u8> = Vec::with_capacity(32);
    let mut ticker = tokio::time::interval(Duration::from_millis(2));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ping = Instant::now();
    while st.events < ev_total || st.heartbeats < hb_total {
        ticker.tick().await;
        if closed.load(Ordering::Relaxed) {
            return Err(LoadError::Closed);
        }
        let t = ctx.start.elapsed().as_secs_f64();
        let (ev_due, hb_due) = (ev_plan.due(t), hb_plan.due(t));
        let ev_todo = ev_due.saturating_sub(st.events);
        let hb_todo = hb_due.saturating_sub(st.heartbeats);
        st.max_behind = st.max_behind.max(ev_todo + hb_todo);
        let todo = (ev_todo + hb_todo).min(MAX_PER_WRITE);
        // Interleave events among heartbeats in the proportion that is due.
        let share = ev_todo as f64 / (ev_todo + hb_todo).max(1) as f64;
        let mut acc = 0.0f64;
        let (mut ev_left, mut hb_left) = (ev_todo, hb_todo);
        let ts = unix_ms();
        let now_us = ctx.now_us();
        for _ in 0..todo {
            if p.sent_q1 - p.pubacks.load(Ordering::Relaxed) >= MAX_INFLIGHT {
                st.stalled += Duration::from_millis(2);
                break;
            }
            acc += share;
            payload.clear();
            id.clear();
            let event = ev_left > 0 && (acc >= 1.0 || hb_left == 0);
            let (idx, channel): (usize, &[u8]) = if event {
                acc -= 1.0;
                ev_left -= 1;
                let k = ev_cur % mine;
                let slot = event_slots[(ev_cur / mine) % event_slots.len()];
                ev_cur += 1;
                let idx = (conn + k * connections) * dph + slot;
                let seq = ctx.fleet.issue(idx, now_us);
                let oldest = (ctx.fleet.acked(idx) + 1).min(seq);
                let body = if slot == 0 {
                    Body::Door(seq % 2 == 1)
                } else {
                    Body::Motion
                };
                fleet::event(&mut payload, boot, seq, oldest, ts, body);
                st.events += 1;
                (idx, b"/up/event")
            } else {
                hb_left = hb_left.saturating_sub(1);
                let k = hb_cur / dph;
                let slot = hb_cur % dph;
                hb_cur = (hb_cur + 1) % (mine * dph);
                let idx = (conn + k * connections) * dph + slot;
                let issued = ctx.fleet.issued(idx);
                let outbox = issued
                    .saturating_sub(ctx.fleet.acked(idx))
                    .min(u32::from(u16::MAX));
                let uptime = ctx.start.elapsed().as_secs() as u32 + 3600;
                fleet::heartbeat(&mut payload, boot, issued, ts, uptime, outbox as u16);
                st.heartbeats += 1;
                (idx, b"/up/hb")
            };
            layout.device_id_into(idx, &mut id);
            let pid = p.next_pid();
            mqtt::publish(
                &mut buf,
                &[PREFIX, &id, channel],
                Some(pid),
                false,
                &payload,
            );
        }
        if last_ping.elapsed() > Duration::from_secs(20) {
            mqtt::pingreq(&mut buf);
            last_ping = Instant::now();
        }
        if !buf.is_empty() {
            p.write.write_all(&buf).await?;
            buf.clear();
        }
    }
    Ok((p, st))
}

/// The help connection: presses on schedule; reads the `alert_received` commands.
async fn help_presses(
    ctx: Arc<Ctx>,
    write: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    rate: f64,
    seconds: f64,
    households: usize,
) -> Result<u64, LoadError> {
    if rate <= 0.0 || households == 0 {
        return Ok(0);
    }
    let layout = ctx.fleet.layout;
    let every = Duration::from_secs_f64(1.0 / rate);
    let n = ((seconds * rate) as usize).min(households);
    let mut pid = 0u16;
    let mut buf = Vec::with_capacity(512);
    let mut payload = Vec::with_capacity(256);
    let mut id = Vec::with_capacity(32);
    for i in 0..n {
        let at = ctx.start + every * i as u32 + every / 2;
        tokio::time::sleep_until(at.into()).await;
        let h = i;
        let idx = h * layout.per_household + HELP_SLOT;
        let seq = ctx.fleet.issue(idx, ctx.now_us());
        let oldest = (ctx.fleet.acked(idx) + 1).min(seq);
        payload.clear();
        id.clear();
        buf.clear();
        fleet::event(
            &mut payload,
            ctx.fleet.boot,
            seq,
            oldest,
            unix_ms(),
            Body::HelpPress,
        );
        layout.device_id_into(idx, &mut id);
        pid = pid.wrapping_add(1).max(1);
        mqtt::publish(
            &mut buf,
            &[PREFIX, &id, b"/up/event"],
            Some(pid),
            false,
            &payload,
        );
        if let Ok(mut p) = ctx.presses.lock() {
            p.insert(
                h,
                Press {
                    at,
                    cmd: None,
                    sse: None,
                    hook: None,
                },
            );
        }
        write.lock().await.write_all(&buf).await?;
    }
    Ok(n as u64)
}

/// Reads the help connection: `alert_received` commands (PUBACKed, QoS 1).
async fn read_commands(
    ctx: Arc<Ctx>,
    mut read: OwnedReadHalf,
    mut buf: Vec<u8>,
    write: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
) {
    let layout = ctx.fleet.layout;
    let mut out = Vec::new();
    loop {
        loop {
            let (found, n) = match mqtt::parse(&buf) {
                Ok(Some((
                    Packet::Publish {
                        pid,
                        topic,
                        payload,
                    },
                    n,
                ))) => {
                    let at = Instant::now();
                    if let Some(p) = pid {
                        mqtt::puback(&mut out, p);
                    }
                    let received = payload.windows(16).any(|w| w == b"\"alert_received\"");
                    (
                        layout
                            .index_of_topic(topic)
                            .filter(|_| received)
                            .map(|idx| (idx / layout.per_household, at)),
                        n,
                    )
                }
                Ok(Some((_, n))) => (None, n),
                Ok(None) | Err(_) => break,
            };
            buf.drain(..n);
            if let Some((h, at)) = found {
                ctx.seen(h, at, |p| &mut p.cmd);
            }
        }
        if !out.is_empty() {
            if write.lock().await.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if mqtt::fill(&mut read, &mut buf).await.is_err() {
            return;
        }
    }
}

/// Reads the ack listener: app-level acks. Returns event-commit latency samples (µs).
async fn read_acks(
    ctx: Arc<Ctx>,
    mut read: OwnedReadHalf,
    mut buf: Vec<u8>,
    cancel: CancellationToken,
) -> Vec<u32> {
    let layout = ctx.fleet.layout;
    let mut samples = Vec::new();
    loop {
        let now_us = ctx.now_us();
        while let Ok(Some((p, n))) = mqtt::parse(&buf) {
            if let Packet::Publish { topic, payload, .. } = p
                && let Some(idx) = layout.index_of_topic(topic)
                && let Some((boot, upto)) = fleet::parse_ack(payload)
                && boot == ctx.fleet.boot
                && let Some(l) = ctx.fleet.ack(idx, upto, now_us)
                && samples.len() < MAX_SAMPLES
            {
                samples.push(l);
            }
            buf.drain(..n);
        }
        tokio::select! {
            _ = cancel.cancelled() => return samples,
            r = mqtt::fill(&mut read, &mut buf) => if r.is_err() { return samples },
        }
    }
}

/// Pings a connection whose writer is otherwise idle.
fn keep_alive(write: Arc<tokio::sync::Mutex<OwnedWriteHalf>>, cancel: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(20)) => {}
            }
            let mut b = Vec::new();
            mqtt::pingreq(&mut b);
            if write.lock().await.write_all(&b).await.is_err() {
                return;
            }
        }
    });
}

/// What the reconciliation found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciled {
    /// Events issued (background and help).
    pub events_issued: u64,
    /// Acknowledged (or counted by the peer) after the first drain.
    pub events_first_pass: u64,
    /// Recovered by replaying the unacknowledged ones.
    pub events_replayed_ok: u64,
    /// Still missing after every replay.
    pub events_lost: u64,
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// Heartbeats the gateway (or the peer) counted.
    pub heartbeats_counted: u64,
    /// Rejects counted by the gateway during the run.
    pub rejected: u64,
    /// Duplicates counted by the gateway (or the peer).
    pub duplicates: u64,
    /// PUBACKs the broker sent for QoS 1 publishes.
    pub pubacks: u64,
    /// QoS 1 publishes sent.
    pub published: u64,
}

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Label.
    pub label: String,
    /// Target.
    pub target: Target,
    /// Broker.
    pub broker: String,
    /// Profile.
    pub profile: Profile,
    /// Households and devices.
    pub households: usize,
    /// Devices.
    pub devices: usize,
    /// MQTT connections of the background load.
    pub connections: usize,
    /// Offered background rate, messages/s.
    pub offered_rate: f64,
    /// Seconds of load.
    pub duration_s: u64,
    /// Background messages actually sent per second over the load window.
    pub sent_rate: f64,
    /// How far the generator fell behind its schedule (ms of traffic, worst connection).
    pub generator_behind_ms: f64,
    /// Time the generator waited for PUBACKs (in-flight window full), summed.
    pub generator_stalled_s: f64,
    /// After the load, how long until everything was counted (or the wait gave up).
    pub drain_s: f64,
    /// Everything counted before the wait gave up.
    pub drained: bool,
    /// Messages counted by the gateway (or peer) per second, from the first publish to
    /// the end of the drain.
    pub counted_rate: f64,
    /// Lossless: nothing missing after the first drain and nothing rejected.
    pub lossless: bool,
    /// Sustained: lossless, drained within 2 s of the end of the load, and the load went
    /// out on time: at least 98 % of the offered rate sent within the window, and no
    /// connection more than 1 s behind its schedule. (The embedded broker pushes back on
    /// a publisher when ingest is full, so an overloaded gateway shows as a generator that
    /// cannot send, not as loss.)
    pub sustained: bool,
    /// The reconciliation.
    pub reconciled: Reconciled,
    /// Help press → `alert_received` command at the device (alert committed).
    pub help_to_command: Latency,
    /// Help press → `alert` on the caseworker's live stream (SSE).
    pub help_to_sse: Latency,
    /// Help press → the peer's webhook.
    pub help_to_webhook: Latency,
    /// Event publish → app-level ack (committed durably), latest event per device.
    pub event_to_ack: Latency,
    /// CPU of every process over the load and the drain.
    pub cpu: Vec<CpuUse>,
    /// CPU microseconds per message, per process.
    pub cpu_us_per_msg: Vec<(String, f64)>,
    /// `/proc/loadavg` before and after.
    pub loadavg: (String, String),
    /// Boot epoch used.
    pub boot: u32,
}

/// Runs the load and reports.
pub async fn run(a: RunArgs) -> Result<Report, LoadError> {
    check_loopback(&a.broker)?;
    for u in [&a.http, &a.peer_stats].into_iter().flatten() {
        check_loopback(u)?;
    }
    if let Some(w) = a.webhook_listen
        && !w.ip().is_loopback()
    {
        return Err(LoadError::Usage("--webhook-listen must be loopback".into()));
    }
    if a.households == 0 || a.households > 1_000_000 {
        return Err(LoadError::Usage("--households: 1 to 1,000,000".into()));
    }
    if !(1..=5).contains(&a.devices_per_household) {
        return Err(LoadError::Usage("--devices-per-household: 1 to 5".into()));
    }
    if a.duration == 0 || a.duration > MAX_SECONDS || a.drain_s > MAX_SECONDS {
        return Err(LoadError::Usage(format!(
            "--duration and --drain-s: at most {MAX_SECONDS} s"
        )));
    }
    if !((0.0..=1.0).contains(&a.event_share) && (0.0..=5_000_000.0).contains(&a.rate)) {
        return Err(LoadError::Usage(
            "--event-share within 0–1, --rate within 0–5,000,000".into(),
        ));
    }
    let connections = a.connections.clamp(1, 256);
    let layout = Layout {
        households: a.households,
        per_household: a.devices_per_household,
    };
    let boot = a.boot.unwrap_or_else(|| {
        // Increases with every run (every 2 s), so a run never collides with the
        // previous one's sequence numbers; stays far below u32::MAX for decades.
        ((unix_ms() / 2000) - 880_000_000).max(1) as u32
    });
    let http = reqwest::Client::new();
    let help_households =
        a.help_households
            .min(layout.households)
            .min(if layout.per_household > HELP_SLOT {
                usize::MAX
            } else {
                0
            });
    let cancel = CancellationToken::new();

    // Observers first, so that nothing is missed.
    let ctx_fleet = Fleet::new(layout, boot);
    let procs = Procs::parse(&a.report.pids)?;
    let hooked: Hooked = Arc::default();
    if let Some(listen) = a.webhook_listen {
        observe::webhook_receiver(listen, hooked.clone(), cancel.clone()).await?;
    }
    let ctx = Arc::new(Ctx {
        fleet: ctx_fleet,
        start: Instant::now() + Duration::from_millis(500),
        presses: Mutex::new(HashMap::new()),
    });
    let mut sse_task = None;
    if let (Some(base), Some(user), Some(pw), Target::Anxin) =
        (&a.http, &a.user, &a.user_password, a.target)
    {
        let cookie = observe::login(&http, base, user, pw).await?;
        let c = ctx.clone();
        sse_task = Some(
            observe::follow_stream(base, &cookie, cancel.clone(), move |h, at| {
                if let Some(n) = h.strip_prefix('b').and_then(|n| n.parse::<usize>().ok()) {
                    c.seen(n, at, |p| &mut p.sse);
                }
            })
            .await?,
        );
    }
    let mut ack_task = None;
    if a.target == Target::Anxin {
        let (read, write, buf) =
            open_publisher(&a, "anxin-load-acks", &["anxin/v1/dev/+/down/ack"], 0).await?;
        keep_alive(Arc::new(tokio::sync::Mutex::new(write)), cancel.clone());
        ack_task = Some(tokio::spawn(read_acks(
            ctx.clone(),
            read,
            buf,
            cancel.clone(),
        )));
    }
    let help_filters: &[&str] = if a.target == Target::Anxin {
        &["anxin/v1/dev/+/down/cmd"]
    } else {
        &[]
    };
    let (help_read, help_write, help_buf) =
        open_publisher(&a, "anxin-load-help", help_filters, 1).await?;
    let help_write = Arc::new(tokio::sync::Mutex::new(help_write));
    keep_alive(help_write.clone(), cancel.clone());
    tokio::spawn(read_commands(
        ctx.clone(),
        help_read,
        help_buf,
        help_write.clone(),
    ));

    let mut publishers = Vec::new();
    for c in 0..connections {
        let (read, write, buf) = open_publisher(&a, &format!("anxin-load-{c}"), &[], 0).await?;
        let pubacks = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(count_pubacks(read, buf, pubacks.clone(), closed.clone()));
        publishers.push((
            Publisher {
                write,
                pubacks,
                sent_q1: 0,
                pid: 0,
            },
            closed,
        ));
    }

    let base_counters = match (&a.http, a.target) {
        (Some(base), Target::Anxin) => observe::gateway_counters(&http, base).await?,
        _ => GatewayCounters::default(),
    };
    let base_peer = match (&a.peer_stats, a.target) {
        (Some(url), Target::Peer) => observe::peer_counters(&http, url).await?,
        _ => PeerCounters::default(),
    };

    // The load: heartbeats flat, events flat or shaped like a day.
    let profile = (a.profile == Profile::Day).then(|| day_profile(500));
    let per_conn = a.rate / connections as f64;
    let event_slots = layout.event_slots();
    tokio::time::sleep_until(ctx.start.into()).await;
    let cpu0 = procs.sample();
    let load0 = observe::loadavg();
    let mut tasks = Vec::new();
    for (c, (p, closed)) in publishers.into_iter().enumerate() {
        let ev_rate = per_conn * a.event_share;
        let ev = match &profile {
            None => Schedule::flat(ev_rate, a.duration),
            Some(pr) => Schedule::day(ev_rate, a.duration, a.day_seconds, a.day_start_minute, pr),
        };
        let hb = Schedule::flat(per_conn * (1.0 - a.event_share), a.duration);
        tasks.push(tokio::spawn(publish_load(
            ctx.clone(),
            p,
            c,
            connections,
            (ev, hb),
            event_slots.clone(),
            closed,
        )));
    }
    let help = tokio::spawn(help_presses(
        ctx.clone(),
        help_write.clone(),
        a.help_rate,
        a.duration as f64,
        help_households,
    ));
    let total_planned = Schedule::flat(a.rate, a.duration).total();
    let pb = if a.report.quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(a.duration);
        pb.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} s  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_prefix("load");
        pb
    };
    let progress = {
        let pb = pb.clone();
        let ctx = ctx.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                let (issued, acked) = ctx.fleet.totals();
                pb.set_position(ctx.start.elapsed().as_secs());
                pb.set_message(format!(
                    "≈{} msgs planned, events issued {issued}, acked {acked}",
                    total_planned
                ));
            }
        })
    };
    let mut stats = Vec::new();
    let mut writers = Vec::new();
    for t in tasks {
        let (p, st) = t.await.map_err(|e| LoadError::Task(e.to_string()))??;
        stats.push(st);
        writers.push(p);
    }
    let help_sent = help.await.map_err(|e| LoadError::Task(e.to_string()))??;
    let window = ctx.start.elapsed().as_secs_f64();
    let hb_sent: u64 = stats.iter().map(|s| s.heartbeats).sum();
    let ev_sent: u64 = stats.iter().map(|s| s.events).sum();
    let bg_sent = hb_sent + ev_sent;
    pb.set_prefix("drain");

    // The drain: until everything is counted, nothing moves for 10 s, or the limit.
    let drain_start = Instant::now();
    let mut last_progress = (Instant::now(), 0.0f64);
    let mut drained = false;
    let (mut gw_now, mut peer_now) = (base_counters, base_peer);
    while drain_start.elapsed() < Duration::from_secs(a.drain_s) {
        let (issued, acked) = ctx.fleet.totals();
        let done = match a.target {
            Target::Anxin => {
                if let Some(base) = &a.http {
                    gw_now = observe::gateway_counters(&http, base).await?;
                }
                let hb = gw_now.since(&base_counters).heartbeats;
                let counted = acked as f64 + hb;
                if counted > last_progress.1 {
                    last_progress = (Instant::now(), counted);
                }
                acked == issued && (a.http.is_none() || hb >= hb_sent as f64)
            }
            Target::Peer => {
                if let Some(url) = &a.peer_stats {
                    peer_now = observe::peer_counters(&http, url).await?;
                }
                let d = peer_now.msgs - base_peer.msgs;
                if d > last_progress.1 {
                    last_progress = (Instant::now(), d);
                }
                d >= (bg_sent + help_sent) as f64
            }
        };
        if done {
            drained = true;
            break;
        }
        if last_progress.0.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain_s = drain_start.elapsed().as_secs_f64();
    let cpu1 = procs.sample();
    let load1 = observe::loadavg();
    let busy = window + drain_s;
    pb.finish_and_clear();

    // The reconciliation.
    let (issued, first) = ctx.fleet.totals();
    let mut r = Reconciled {
        events_issued: issued,
        events_first_pass: first,
        heartbeats_sent: hb_sent,
        published: writers.iter().map(|p| p.sent_q1).sum::<u64>() + help_sent,
        pubacks: writers
            .iter()
            .map(|p| p.pubacks.load(Ordering::Relaxed))
            .sum(),
        ..Reconciled::default()
    };
    match a.target {
        Target::Anxin => {
            let d = gw_now.since(&base_counters);
            r.heartbeats_counted = d.heartbeats.max(0.0) as u64;
            r.rejected = d.rejected.max(0.0) as u64;
            r.duplicates = d.duplicates.max(0.0) as u64;
            // Replays of what is not acknowledged, as a device's outbox does.
            for round in 0..a.replay_rounds {
                let missing = ctx.fleet.unacked();
                if missing.is_empty() {
                    break;
                }
                if !a.report.quiet {
                    eprintln!(
                        "replay round {}: {} devices with unacknowledged events",
                        round + 1,
                        missing.len()
                    );
                }
                if let Some(p) = writers.first_mut() {
                    replay(&ctx, p, &missing).await?;
                }
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(30) && !ctx.fleet.unacked().is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let (_, last) = ctx.fleet.totals();
            r.events_replayed_ok = last - first;
            r.events_lost = issued - last;
        }
        Target::Peer => {
            let d = PeerCounters {
                msgs: peer_now.msgs - base_peer.msgs,
                events: peer_now.events - base_peer.events,
                dups: peer_now.dups - base_peer.dups,
                hb: peer_now.hb - base_peer.hb,
                help: peer_now.help - base_peer.help,
                inactivity: peer_now.inactivity - base_peer.inactivity,
            };
            r.events_first_pass = d.events.max(0.0) as u64;
            r.events_lost = issued.saturating_sub(r.events_first_pass);
            r.heartbeats_counted = d.hb.max(0.0) as u64;
            r.duplicates = d.dups.max(0.0) as u64;
        }
    }
    cancel.cancel();
    progress.abort();
    let ack_samples = match ack_task {
        Some(t) => t.await.unwrap_or_default(),
        None => Vec::new(),
    };
    if let Some(t) = sse_task {
        t.abort();
    }

    let presses: Vec<Press> = ctx
        .presses
        .lock()
        .map(|p| p.values().cloned().collect())
        .unwrap_or_default();
    if let Ok(h) = hooked.lock() {
        // The peer posts the device id: map it back to the press.
        let mut by_household: HashMap<usize, Instant> = HashMap::new();
        for (d, at) in h.iter() {
            if let Some(idx) = layout.index_of(d.as_bytes()) {
                by_household
                    .entry(idx / layout.per_household)
                    .or_insert(*at);
            }
        }
        for (hh, at) in by_household {
            ctx.seen(hh, at, |p| &mut p.hook);
        }
    }
    let presses: Vec<Press> = if a.webhook_listen.is_some() {
        ctx.presses
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or(presses)
    } else {
        presses
    };
    let lat = |f: fn(&Press) -> Option<Duration>| {
        Latency::of(
            presses
                .iter()
                .filter_map(f)
                .map(|d| d.as_secs_f64() * 1e3)
                .collect(),
            presses.len(),
        )
    };
    let cpu = observe::cpu_between(&cpu0, &cpu1, busy);
    let msgs = (bg_sent + help_sent).max(1) as f64;
    let per_msg = cpu
        .iter()
        .map(|c| (c.name.clone(), c.cpu_s * 1e6 / msgs))
        .collect();
    let counted = match a.target {
        Target::Anxin => (r.events_first_pass + r.heartbeats_counted) as f64,
        Target::Peer => (peer_now.msgs - base_peer.msgs).max(0.0),
    };
    let behind = stats.iter().map(|s| s.max_behind).max().unwrap_or(0) as f64;
    let sent_rate = bg_sent as f64 / window;
    let behind_ms = behind / per_conn.max(1.0) * 1e3;
    let on_time = sent_rate >= 0.98 * a.rate && behind_ms <= 1000.0;
    let lossless = r.events_first_pass == r.events_issued
        && r.heartbeats_counted >= r.heartbeats_sent
        && r.rejected == 0;
    let report = Report {
        label: a.report.label.clone(),
        target: a.target,
        broker: a.broker.clone(),
        profile: a.profile,
        households: layout.households,
        devices: layout.devices(),
        connections,
        offered_rate: a.rate,
        duration_s: a.duration,
        sent_rate,
        generator_behind_ms: behind_ms,
        generator_stalled_s: stats.iter().map(|s| s.stalled.as_secs_f64()).sum(),
        drain_s,
        drained,
        counted_rate: counted / busy,
        lossless,
        sustained: lossless && drained && drain_s <= 2.0 && on_time,
        reconciled: r,
        help_to_command: lat(|p| p.cmd),
        help_to_sse: lat(|p| p.sse),
        help_to_webhook: lat(|p| p.hook),
        event_to_ack: Latency::of(
            ack_samples.iter().map(|us| f64::from(*us) / 1e3).collect(),
            ack_samples.len(),
        ),
        cpu,
        cpu_us_per_msg: per_msg,
        loadavg: (load0, load1),
        boot,
    };
    if let Some(out) = &a.report.out {
        append_json(out, &report)?;
    }
    Ok(report)
}

/// Replays every unacknowledged event of `devices` (as motion events) on `p`.
async fn replay(ctx: &Ctx, p: &mut Publisher, devices: &[usize]) -> Result<(), LoadError> {
    let layout = ctx.fleet.layout;
    let ts = unix_ms();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut payload = Vec::with_capacity(256);
    let mut id = Vec::with_capacity(32);
    for &idx in devices {
        let (acked, issued) = (ctx.fleet.acked(idx), ctx.fleet.issued(idx));
        for seq in acked + 1..=issued {
            while p.sent_q1 - p.pubacks.load(Ordering::Relaxed) >= MAX_INFLIGHT {
                p.write.write_all(&buf).await?;
                buf.clear();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            payload.clear();
            id.clear();
            let body = if idx % layout.per_household == HELP_SLOT {
                Body::HelpPress
            } else {
                Body::Motion
            };
            fleet::event(&mut payload, ctx.fleet.boot, seq, acked + 1, ts, body);
            layout.device_id_into(idx, &mut id);
            let pid = p.next_pid();
            mqtt::publish(
                &mut buf,
                &[PREFIX, &id, b"/up/event"],
                Some(pid),
                false,
                &payload,
            );
            if buf.len() > 1 << 20 {
                p.write.write_all(&buf).await?;
                buf.clear();
            }
        }
    }
    p.write.write_all(&buf).await?;
    Ok(())
}
