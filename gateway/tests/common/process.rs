//! `anxin run` as a real process for the tests that kill it (SIGKILL on drop), a free
//! loopback port, and waiting until something listens on one.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `anxin run --config …` as a child process, killed (SIGKILL, as a crash) when dropped,
/// also when an assertion fails.
pub struct AnxinProcess(Child);

impl AnxinProcess {
    /// Starts `anxin run` with the configuration file `config`; logs at warn to stderr.
    pub fn run(config: &std::path::Path) -> AnxinProcess {
        Self::run_with_env(config, &[])
    }

    /// The same with more environment variables (e.g. a preloaded fake clock).
    pub fn run_with_env(config: &std::path::Path, env: &[(&str, &str)]) -> AnxinProcess {
        AnxinProcess(
            Command::new(env!("CARGO_BIN_EXE_anxin"))
                .args(["run", "--config"])
                .arg(config)
                .env(
                    "RUST_LOG",
                    std::env::var("ANXIN_TEST_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("anxin run starts"),
        )
    }
}

impl AnxinProcess {
    /// Resident memory of the process now, in KiB (Linux `/proc`).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for AnxinProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (at most 30 s) until something accepts connections on loopback `port`.
pub async fn wait_port(port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing listened on {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What [`write_config`] wrote: the file, the store's URL and the broker's port.
pub struct RunConfig {
    /// The configuration file to pass to [`AnxinProcess::run`].
    pub path: std::path::PathBuf,
    /// The store (SQLite in the directory, or a fresh PostgreSQL database on the test
    /// pass's server), for the test to open too.
    pub store_url: String,
    /// The embedded broker's loopback port.
    pub mqtt_port: u16,
}

/// Writes `anxin.toml` in `dir` for `anxin run`: data directory, store, the embedded
/// broker on a free loopback port in open mode, HTTP on any port, then `extra` (more
/// sections, TOML).
pub fn write_config(dir: &std::path::Path, extra: &str) -> RunConfig {
    let store_url = match super::test_store_url_in(dir) {
        u if u.is_empty() => format!("sqlite://{}", dir.join("anxin.db").display()),
        u => u,
    };
    let mqtt_port = free_port();
    let path = dir.join("anxin.toml");
    std::fs::write(
        &path,
        format!(
            "[general]\ndata_dir = \"{}\"\n[store]\nurl = \"{store_url}\"\n\
             [broker]\nlisten = \"127.0.0.1:{mqtt_port}\"\nauth = \"open\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\n{extra}",
            dir.display()
        ),
    )
    .expect("writing anxin.toml");
    RunConfig {
        path,
        store_url,
        mqtt_port,
    }
}
