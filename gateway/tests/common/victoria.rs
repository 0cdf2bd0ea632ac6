//! A real VictoriaMetrics for a test: the Debian `victoria-metrics` binary on a free
//! 127.0.0.1 port, with its data in a temporary directory; stopped (SIGTERM, so that it
//! flushes what it acknowledged) and restarted on the same port and data for outage
//! tests; killed by PID when dropped.
//!
//! It accepts the InfluxDB v2 write API (`POST /api/v2/write`, line protocol; org and
//! bucket are ignored) and names series `measurement_field`; read them back with
//! [`Victoria::export`] (`/api/v1/export`, JSON lines). Without `-dedup.minScrapeInterval`
//! it keeps every sample it receives, so a point sent twice shows twice.
//!
//! Needs `victoria-metrics` (Debian: `apt-get install victoria-metrics`). Self-contained
//! (std, tokio, tempfile, serde_json) so that the history bench can include it too.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long to wait for `/health` to answer.
const READY: Duration = Duration::from_secs(20);
/// How long a stopping server may take to exit before it is killed.
const STOP: Duration = Duration::from_secs(15);

/// One exported series.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// `__name__`: `measurement_field`.
    pub name: String,
    /// Every other label (the tags).
    pub labels: BTreeMap<String, String>,
    /// Values, in timestamp order.
    pub values: Vec<f64>,
    /// Timestamps (ms).
    pub timestamps: Vec<i64>,
}

/// A running (or stopped) VictoriaMetrics.
pub struct Victoria {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

fn find_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("victoria-metrics"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "victoria-metrics not found: these tests need a real VictoriaMetrics \
                 (Debian: apt-get install victoria-metrics)"
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Victoria {
    /// Starts VictoriaMetrics on a free port; returns once `/health` answers.
    pub async fn start() -> Victoria {
        Victoria::start_with(&[]).await
    }

    /// Starts it with extra flags (e.g. `-dedup.minScrapeInterval=1ms`).
    pub async fn start_with(extra: &[&str]) -> Victoria {
        let dir = tempfile::Builder::new()
            .prefix("anxin-victoria-")
            .tempdir()
            .expect("temporary directory");
        let mut v = Victoria {
            child: None,
            port: 0,
            bin: find_binary(),
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        let mut last = String::new();
        for _ in 0..3 {
            v.port = free_port();
            match v.spawn().await {
                Ok(()) => return v,
                Err(e) => last = e,
            }
        }
        panic!("VictoriaMetrics did not start: {last}");
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.path().join("victoria.log"))
            .map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.bin)
            .arg(format!(
                "-storageDataPath={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg("-loggerLevel=ERROR")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Err(format!("exited with {status}: {}", self.log_tail()));
            }
            if let Ok((200, _)) = self.get("/health").await {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("no /health after {READY:?}: {}", self.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.dir.path().join("victoria.log")).unwrap_or_default();
        s.lines().rev().take(10).collect::<Vec<_>>().join(" | ")
    }

    /// Base URL for the sink: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Listen address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Whether it is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops it gracefully (SIGTERM: it flushes what it accepted), killing it if it does
    /// not exit within 15 s.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }

    /// Starts it again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut last = String::new();
        // The port was ours a moment ago; retry briefly if the old socket lingers.
        for _ in 0..5 {
            match self.spawn().await {
                Ok(()) => return,
                Err(e) => last = e,
            }
        }
        panic!(
            "VictoriaMetrics did not restart on port {}: {last}",
            self.port
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// An HTTP/1.0 GET; (status, body).
    pub async fn get(&self, path_and_query: &str) -> Result<(u16, String), String> {
        let mut s = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(self.addr()),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
        let req = format!("GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
            .await
            .map_err(|_| "read timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// Makes recently written samples searchable.
    pub async fn force_flush(&self) {
        let _ = self.get("/internal/force_flush").await;
    }

    /// Every series matching `selector` (a PromQL series selector such as
    /// `{household="h1"}`), with its samples.
    pub async fn export(&self, selector: &str) -> Vec<Exported> {
        self.force_flush().await;
        let path = format!("/api/v1/export?match[]={}", percent_encode(selector));
        let (status, body) = self.get(&path).await.expect("export request");
        assert_eq!(status, 200, "export answered {status}: {body}");
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("export JSON line");
                let mut labels: BTreeMap<String, String> = v["metric"]
                    .as_object()
                    .expect("metric labels")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let name = labels.remove("__name__").unwrap_or_default();
                Exported {
                    name,
                    labels,
                    values: v["values"]
                        .as_array()
                        .expect("values")
                        .iter()
                        .map(|x| x.as_f64().unwrap_or(f64::NAN))
                        .collect(),
                    timestamps: v["timestamps"]
                        .as_array()
                        .expect("timestamps")
                        .iter()
                        .map(|x| x.as_i64().unwrap_or(0))
                        .collect(),
                }
            })
            .collect()
    }

    /// Exports `selector` until at least `samples` samples are there (new series take a
    /// moment to become searchable), or `timeout` passes; returns the last export.
    pub async fn export_at_least(
        &self,
        selector: &str,
        samples: usize,
        timeout: Duration,
    ) -> Vec<Exported> {
        let deadline = Instant::now() + timeout;
        loop {
            let e = self.export(selector).await;
            let n: usize = e.iter().map(|s| s.values.len()).sum();
            if n >= samples || Instant::now() > deadline {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        self.kill();
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
