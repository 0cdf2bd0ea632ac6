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
        AnxinProcess(
            Command::new(env!("CARGO_BIN_EXE_anxin"))
                .args(["run", "--config"])
                .arg(config)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("anxin run starts"),
        )
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
