//! What the load generator watches besides MQTT: the CPU and memory of every process
//! (`/proc/<pid>/stat`, its own included), the gateway's `/metrics`, the dashboard's
//! live stream (SSE) as a logged-in caseworker, a webhook receiver for the
//! do-it-yourself peer's help presses, and the peer's counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::LoadError;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on every Linux build).
const TICKS: f64 = 100.0;

/// CPU seconds (user + system) and resident memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// CPU seconds so far.
    pub cpu_s: f64,
    /// Resident set, bytes.
    pub rss: u64,
}

/// Reads `/proc/<pid>/stat` (`self` for this process).
pub fn sample(pid: &str) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14, 15 (utime, stime) and 24 (rss pages) of proc(5), from field 3 here.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let rss_pages: u64 = f.get(21)?.parse().ok()?;
    Some(ProcSample {
        cpu_s: (utime + stime) / TICKS,
        rss: rss_pages * 4096,
    })
}

/// The processes watched: name → pid.
#[derive(Debug, Clone)]
pub struct Procs(pub Vec<(String, String)>);

impl Procs {
    /// From `name=pid` arguments, plus this process as `load`.
    pub fn parse(args: &[String]) -> Result<Procs, LoadError> {
        let mut v = vec![("load".to_string(), "self".to_string())];
        for a in args {
            let (n, p) = a
                .split_once('=')
                .ok_or_else(|| LoadError::Usage(format!("--pid wants NAME=PID, got {a:?}")))?;
            v.push((n.to_string(), p.to_string()));
        }
        Ok(Procs(v))
    }

    /// Samples every process.
    pub fn sample(&self) -> HashMap<String, ProcSample> {
        self.0
            .iter()
            .filter_map(|(n, p)| sample(p).map(|s| (n.clone(), s)))
            .collect()
    }
}

/// CPU use of one process over a window.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    /// Process name.
    pub name: String,
    /// CPU seconds in the window.
    pub cpu_s: f64,
    /// Cores used on average.
    pub cores: f64,
    /// Resident memory at the end, MiB.
    pub rss_mib: f64,
}

/// CPU use between two samples `secs` apart.
pub fn cpu_between(
    a: &HashMap<String, ProcSample>,
    b: &HashMap<String, ProcSample>,
    secs: f64,
) -> Vec<CpuUse> {
    let mut out: Vec<CpuUse> = b
        .iter()
        .filter_map(|(n, end)| {
            let start = a.get(n)?;
            let cpu = (end.cpu_s - start.cpu_s).max(0.0);
            Some(CpuUse {
                name: n.clone(),
                cpu_s: cpu,
                cores: cpu / secs.max(1e-9),
                rss_mib: end.rss as f64 / 1_048_576.0,
            })
        })
        .collect();
    out.sort_by(|x, y| x.name.cmp(&y.name));
    out
}

/// The machine's load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Sums the samples of a Prometheus text metric whose name is `name` and whose labels
/// contain `label` (e.g. `channel="Event"`, or "" for any).
pub fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let (n, labels) = match key.split_once('{') {
                Some((n, l)) => (n, l),
                None => (key, ""),
            };
            (n == name
                && labels
                    .to_ascii_lowercase()
                    .contains(&label.to_ascii_lowercase()))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

/// The gateway's counters that the reconciliation needs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GatewayCounters {
    /// Events committed.
    pub events: f64,
    /// Heartbeats committed.
    pub heartbeats: f64,
    /// Status messages committed.
    pub statuses: f64,
    /// Rejected messages (any reason).
    pub rejected: f64,
    /// Duplicates.
    pub duplicates: f64,
    /// Acks sent.
    pub acks: f64,
}

impl GatewayCounters {
    /// The difference `self - earlier`.
    pub fn since(&self, earlier: &GatewayCounters) -> GatewayCounters {
        GatewayCounters {
            events: self.events - earlier.events,
            heartbeats: self.heartbeats - earlier.heartbeats,
            statuses: self.statuses - earlier.statuses,
            rejected: self.rejected - earlier.rejected,
            duplicates: self.duplicates - earlier.duplicates,
            acks: self.acks - earlier.acks,
        }
    }
}

/// Reads the gateway's `/metrics`.
pub async fn gateway_counters(
    http: &reqwest::Client,
    base: &str,
) -> Result<GatewayCounters, LoadError> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let acc = "anxin_ingest_accepted_total";
    Ok(GatewayCounters {
        events: metric(&text, acc, "channel=\"event\""),
        heartbeats: metric(&text, acc, "channel=\"heartbeat\""),
        statuses: metric(&text, acc, "channel=\"status\""),
        rejected: metric(&text, "anxin_ingest_rejected_total", ""),
        duplicates: metric(&text, "anxin_ingest_duplicates_total", ""),
        acks: metric(&text, "anxin_ingest_acks_sent_total", ""),
    })
}

/// Logs `user` in and returns the session cookie (`anxin_session=…`).
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> Result<String, LoadError> {
    let resp = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "user_id": user, "password": password }))
        .send()
        .await?
        .error_for_status()?;
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .filter(|kv| kv.starts_with("anxin_session="))
                .map(str::to_string)
        })
        .ok_or(LoadError::Usage("login gave no session cookie".into()))
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` line.
    pub name: String,
    /// `data:` lines joined.
    pub data: String,
}

/// Splits complete events off the front of `buf`.
pub fn sse_events(buf: &mut String) -> Vec<SseEvent> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        let mut ev = SseEvent {
            name: "message".into(),
            data: String::new(),
        };
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                ev.name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !ev.data.is_empty() {
                    ev.data.push('\n');
                }
                ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if !ev.data.is_empty() {
            out.push(ev);
        }
    }
    out
}

/// Follows `/api/v1/stream` with `cookie` and calls `on_alert(household_id, at)` for
/// every `alert` event, until `cancel`. Returns once the stream said hello.
pub async fn follow_stream(
    base: &str,
    cookie: &str,
    cancel: CancellationToken,
    on_alert: impl Fn(&str, Instant) + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, LoadError> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut resp = http
        .get(format!("{base}/api/v1/stream"))
        .header(reqwest::header::COOKIE, cookie)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await?
        .error_for_status()?;
    let mut buf = String::new();
    // Wait for the hello, so that no alert is raised before the stream listens.
    let hello = async {
        loop {
            let Some(chunk) = resp.chunk().await? else {
                return Err(LoadError::Closed);
            };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            if sse_events(&mut buf).iter().any(|e| e.name == "hello") {
                return Ok(());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), hello)
        .await
        .map_err(|_| LoadError::Timeout("SSE hello"))??;
    Ok(tokio::spawn(async move {
        loop {
            let chunk = tokio::select! {
                _ = cancel.cancelled() => break,
                c = resp.chunk() => c,
            };
            let at = Instant::now();
            let Ok(Some(chunk)) = chunk else { break };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            for e in sse_events(&mut buf) {
                if e.name != "alert" {
                    continue;
                }
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.data)
                    && let Some(h) = v.get("household_id").and_then(|h| h.as_str())
                {
                    on_alert(h, at);
                }
            }
        }
    }))
}

/// What the webhook receiver got: (device id, arrival) of every help post.
pub type Hooked = Arc<Mutex<Vec<(String, Instant)>>>;

/// Starts a loopback webhook receiver for the peer's help presses (JSON with a
/// `device` member). Returns its address.
pub async fn webhook_receiver(
    listen: SocketAddr,
    hooked: Hooked,
    cancel: CancellationToken,
) -> Result<SocketAddr, LoadError> {
    async fn hook(State(h): State<Hooked>, body: Bytes) -> &'static str {
        let at = Instant::now();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
            && let Some(d) = v.get("device").and_then(|d| d.as_str())
            && let Ok(mut g) = h.lock()
        {
            g.push((d.to_string(), at));
        }
        "ok"
    }
    let app = Router::new().route("/hook", post(hook)).with_state(hooked);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
    });
    Ok(addr)
}

/// The do-it-yourself peer's counters (`GET /stats` of the Node-RED flow).
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct PeerCounters {
    /// Messages the flow handled.
    pub msgs: f64,
    /// Distinct events (device, boot, seq).
    pub events: f64,
    /// Repeated events.
    pub dups: f64,
    /// Heartbeats.
    pub hb: f64,
    /// Help presses posted to the webhook.
    pub help: f64,
    /// Inactivity alerts raised.
    pub inactivity: f64,
}

/// Reads the peer's counters.
pub async fn peer_counters(http: &reqwest::Client, url: &str) -> Result<PeerCounters, LoadError> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_by_name_and_label() {
        let text = "# HELP x\nanxin_ingest_accepted_total{channel=\"Event\"} 12\n\
                    anxin_ingest_accepted_total{channel=\"Heartbeat\"} 30\n\
                    anxin_ingest_rejected_total{reason=\"malformed\"} 2\n\
                    anxin_ingest_rejected_total{reason=\"oversized\"} 1\n";
        assert_eq!(
            metric(text, "anxin_ingest_accepted_total", "channel=\"event\""),
            12.0
        );
        assert_eq!(metric(text, "anxin_ingest_rejected_total", ""), 3.0);
    }

    #[test]
    fn server_sent_events_are_split_at_blank_lines() {
        let mut buf =
            String::from("event: hello\ndata: {}\n\nevent: alert\ndata: {\"a\":1}\n\nevent: al");
        let evs = sse_events(&mut buf);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[1].name, "alert");
        assert_eq!(evs[1].data, "{\"a\":1}");
        assert_eq!(buf, "event: al");
    }

    #[test]
    fn this_process_has_a_cpu_and_memory_sample() {
        let s = sample("self").expect("/proc/self/stat");
        assert!(s.rss > 0);
    }
}
