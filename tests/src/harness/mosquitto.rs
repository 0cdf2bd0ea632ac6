//! A real mosquitto broker for a test: the Debian `mosquitto` binary on a free
//! 127.0.0.1 port, with its config, password file and ACL file in a temporary directory.
//!
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! use anxin_tests::harness::{Mosquitto, MosquittoOpts};
//! let broker = Mosquitto::start(
//!     MosquittoOpts::default()
//!         .user("anxin-gateway", "gw-secret")
//!         .user("door-1", "device-secret")
//!         .anxin_acl("anxin-gateway"),
//! )
//! .await?;
//! // connect to broker.host() : broker.port() … the process is killed when `broker` drops.
//! # Ok(()) }
//! ```
//!
//! Needs `mosquitto` and `mosquitto_passwd` (Debian: `apt-get install mosquitto
//! mosquitto-clients`). Under root, the config says `user root` so that mosquitto keeps
//! the rights to read its files in the (root-only) temporary directory instead of
//! dropping to the `mosquitto` user.
//!
//! Remember: under MQTT 3.1.1 mosquitto acknowledges a PUBLISH its ACL denied; only the
//! absence of the message at the subscriber shows the denial.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use super::ports::free_port;

/// How long to wait for mosquitto to accept connections.
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// What to put in mosquitto's configuration.
#[derive(Debug, Clone)]
pub struct MosquittoOpts {
    /// `(username, password)` pairs for the password file. Empty: no password file and
    /// anonymous clients are allowed.
    pub users: Vec<(String, String)>,
    /// Write Anxin's ACL file (see [`MosquittoOpts::anxin_acl`]).
    pub acl: Option<AnxinAcl>,
    /// `max_inflight_messages` (outgoing QoS 1/2 per client; 0 = unlimited).
    pub max_inflight_messages: u32,
    /// `max_queued_messages` (per client, while it is slow or away).
    pub max_queued_messages: u32,
    /// `persistence true` in the temporary directory, so that [`Mosquitto::restart`]
    /// keeps sessions, queued and retained messages (written at shutdown and every
    /// `autosave_interval` seconds: a `kill -9` loses what was not saved).
    pub persistence: bool,
    /// More configuration lines, appended verbatim.
    pub extra: Vec<String>,
}

impl Default for MosquittoOpts {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            acl: None,
            max_inflight_messages: 1000,
            max_queued_messages: 100_000,
            persistence: false,
            extra: Vec::new(),
        }
    }
}

/// The Anxin topic policy as a mosquitto ACL file.
#[derive(Debug, Clone)]
pub struct AnxinAcl {
    /// Username of the gateway: read and write everything under `anxin/v1/dev/` and
    /// `zigbee2mqtt/`.
    pub gateway_user: String,
    /// Usernames of bridges: read and write under `zigbee2mqtt/`.
    pub bridge_users: Vec<String>,
}

impl AnxinAcl {
    /// The file's text. Devices are matched by username (`%u` = device id).
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# Anxin topic policy (written by anxin-tests).\n\
             # Devices: username = client id = device id.\n\
             pattern write anxin/v1/dev/%u/up/#\n\
             pattern read anxin/v1/dev/%u/down/#\n\n",
        );
        let _ = write!(
            s,
            "user {}\ntopic readwrite anxin/v1/dev/#\ntopic readwrite zigbee2mqtt/#\n",
            self.gateway_user
        );
        for b in &self.bridge_users {
            let _ = write!(s, "\nuser {b}\ntopic readwrite zigbee2mqtt/#\n");
        }
        s
    }
}

impl MosquittoOpts {
    /// Adds a user to the password file.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Applies Anxin's ACL: devices publish only to `anxin/v1/dev/<username>/up/#` and
    /// read only `anxin/v1/dev/<username>/down/#`; `gateway_user` reads and writes all
    /// of `anxin/v1/dev/#`.
    pub fn anxin_acl(mut self, gateway_user: &str) -> Self {
        self.acl = Some(AnxinAcl {
            gateway_user: gateway_user.to_owned(),
            bridge_users: Vec::new(),
        });
        self
    }

    /// Keeps state across [`Mosquitto::restart`].
    pub fn persistent(mut self) -> Self {
        self.persistence = true;
        self
    }

    fn render(&self, port: u16, dir: &Path, as_root: bool) -> String {
        let d = dir.display();
        let mut s = format!(
            "# written by anxin-tests\n\
             listener {port} 127.0.0.1\n\
             allow_anonymous {}\n\
             max_inflight_messages {}\n\
             max_queued_messages {}\n\
             max_queued_bytes 0\n\
             log_dest file {d}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             connection_messages true\n",
            self.users.is_empty(),
            self.max_inflight_messages,
            self.max_queued_messages,
        );
        if !self.users.is_empty() {
            let _ = writeln!(s, "password_file {d}/passwd");
        }
        if self.acl.is_some() {
            let _ = writeln!(s, "acl_file {d}/acl");
        }
        if self.persistence {
            let _ = writeln!(
                s,
                "persistence true\npersistence_location {d}/\nautosave_interval 1"
            );
        } else {
            s.push_str("persistence false\n");
        }
        if as_root {
            s.push_str("user root\n");
        }
        for line in &self.extra {
            s.push_str(line);
            s.push('\n');
        }
        s
    }
}

/// A running mosquitto; killed (by PID) when dropped.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    port: u16,
    bin: PathBuf,
    conf: PathBuf,
    opts: MosquittoOpts,
    dir: TempDir,
}

impl Mosquitto {
    /// Writes the files, starts mosquitto on a free port and returns once it accepts TCP
    /// connections (or fails after 10 s, with its log in the error).
    pub async fn start(opts: MosquittoOpts) -> Result<Mosquitto> {
        let bin = find_binary("mosquitto")?;
        let dir = tempfile::Builder::new()
            .prefix("anxin-mosquitto-")
            .tempdir()?;
        if !opts.users.is_empty() {
            write_password_file(&dir.path().join("passwd"), &opts.users)?;
        }
        if let Some(acl) = &opts.acl {
            std::fs::write(dir.path().join("acl"), acl.render())?;
        }
        let as_root = std::fs::metadata("/proc/self")?.uid() == 0;
        let conf = dir.path().join("mosquitto.conf");
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            std::fs::write(&conf, opts.render(port, dir.path(), as_root))?;
            let mut child = spawn(&bin, &conf, dir.path())?;
            match wait_ready(&mut child, port, dir.path()).await {
                Ok(()) => {
                    return Ok(Mosquitto {
                        child,
                        port,
                        bin,
                        conf,
                        opts,
                        dir,
                    });
                }
                Err(e) => {
                    // Most likely the port was taken in between: try another one.
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("mosquitto did not start")))
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The listener's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temporary directory holding the config, password, ACL, log (and persistence)
    /// files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What mosquitto logged so far (connections, denials, errors).
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// Kills the process (`SIGKILL`, as a crash) and starts it again on the same port
    /// with the same files; returns once it accepts connections. With
    /// [`MosquittoOpts::persistent`], what was saved survives.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        let deadline = tokio::time::Instant::now() + READY_DEADLINE;
        loop {
            self.child = spawn(&self.bin, &self.conf, self.dir.path())?;
            match wait_ready(&mut self.child, self.port, self.dir.path()).await {
                Ok(()) => return Ok(()),
                // The old socket may linger for a moment.
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    self.kill();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Kills the process and waits for it; the files stay until drop.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The options it was started with.
    pub fn opts(&self) -> &MosquittoOpts {
        &self.opts
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_log(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default();
    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    format!("{log}{stderr}")
}

/// Polls a TCP connect until it succeeds, the process exits, or the deadline passes.
async fn wait_ready(child: &mut Child, port: u16, dir: &Path) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = tokio::time::Instant::now() + READY_DEADLINE;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "mosquitto exited ({status}) before listening:\n{}",
                read_log(dir)
            );
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "mosquitto did not listen on {addr} within {READY_DEADLINE:?}:\n{}",
                read_log(dir)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spawn(bin: &Path, conf: &Path, dir: &Path) -> Result<Child> {
    let stderr = std::fs::File::create(dir.join("stderr.log"))?;
    Command::new(bin)
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// Writes `user:password` lines and hashes them in place with `mosquitto_passwd -U`.
fn write_password_file(path: &Path, users: &[(String, String)]) -> Result<()> {
    let mut plain = String::new();
    for (user, password) in users {
        if user.contains(':') || user.contains('\n') || password.contains('\n') {
            bail!("invalid mosquitto user {user:?}");
        }
        let _ = writeln!(plain, "{user}:{password}");
    }
    std::fs::write(path, plain)?;
    let status = Command::new(find_binary("mosquitto_passwd")?)
        .arg("-U")
        .arg(path)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("mosquitto_passwd -U failed: {status}");
    }
    Ok(())
}

/// Looks in `PATH`, then in `/usr/sbin` and `/usr/bin` (Debian installs mosquitto in
/// `/usr/sbin`, often not in a normal user's `PATH`).
fn find_binary(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("`{name}` not found: apt-get install -y mosquitto mosquitto-clients")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acl_confines_devices_by_username_and_opens_the_tree_to_the_gateway() {
        let acl = AnxinAcl {
            gateway_user: "gw".into(),
            bridge_users: vec!["z2m".into()],
        }
        .render();
        assert!(acl.contains("pattern write anxin/v1/dev/%u/up/#\n"));
        assert!(acl.contains("pattern read anxin/v1/dev/%u/down/#\n"));
        assert!(acl.contains("user gw\ntopic readwrite anxin/v1/dev/#\n"));
        assert!(acl.contains("user z2m\ntopic readwrite zigbee2mqtt/#\n"));
    }

    #[test]
    fn the_config_names_its_files_and_tuning() {
        let opts = MosquittoOpts::default().user("gw", "pw").anxin_acl("gw");
        let conf = opts.render(1234, Path::new("/tmp/x"), true);
        for line in [
            "listener 1234 127.0.0.1",
            "allow_anonymous false",
            "password_file /tmp/x/passwd",
            "acl_file /tmp/x/acl",
            "max_queued_messages 100000",
            "persistence false",
            "user root",
        ] {
            assert!(conf.lines().any(|l| l == line), "{line}\n{conf}");
        }
        let open = MosquittoOpts::default().render(1, Path::new("/d"), false);
        assert!(open.contains("allow_anonymous true"));
        assert!(!open.contains("user root"));
    }
}
