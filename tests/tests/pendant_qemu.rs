//! The pendant firmware image (`firmware/pendant/`, Cortex-M3) boots under QEMU's
//! `lm3s6965evb` board, replays a recorded UMAFall trace through the device loop, and
//! prints what it publishes on the semihosting console:
//! - a recorded fall publishes a fall event, exactly as protocol v1 encodes it;
//! - recorded jogging publishes none;
//! - a fall followed by an "I'm OK" press publishes `detected` then `cancel`.
//!
//! Needs `qemu-system-arm` (Debian package `qemu-system-arm`) and the Rust target
//! `thumbv7m-none-eabi`; `scripts/test-all.sh` installs both. Every QEMU run is killed
//! after a deadline. Set `ANXIN_SKIP_QEMU=1` to skip on a machine without QEMU.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anxin_firmware::wire::{EventBody, FallAction, decode_event};

/// Longest a single QEMU run may take (a run takes well under a second).
const QEMU_DEADLINE: Duration = Duration::from_secs(30);
/// Longest the image build may take (a first build compiles the firmware twice).
const BUILD_DEADLINE: Duration = Duration::from_secs(900);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

fn skip() -> bool {
    std::env::var_os("ANXIN_SKIP_QEMU").is_some_and(|v| v == "1")
}

/// Runs `cmd` to completion or kills it at `deadline`; returns (success, stdout, stderr).
fn run_bounded(mut cmd: Command, deadline: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    match status {
        Some(s) => (s.success(), stdout, stderr),
        None => panic!(
            "{cmd:?} still running after {deadline:?}, killed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        ),
    }
}

/// Builds the image once for all tests of this file; returns the ELF path.
fn image() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        let pendant = repo().join("firmware/pendant");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target"))
            .join("pendant");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&pendant)
            .args(["build", "--release", "--target", "thumbv7m-none-eabi"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        let (ok, _, stderr) = run_bounded(cmd, BUILD_DEADLINE);
        assert!(
            ok,
            "building the pendant image failed (is the target installed? \
             `rustup target add thumbv7m-none-eabi`):\n{stderr}"
        );
        target_dir.join("thumbv7m-none-eabi/release/anxin-pendant")
    })
}

/// Boots the image with `scenario`; returns the semihosting output.
fn boot(scenario: &str) -> String {
    let qemu = std::env::var_os("QEMU_SYSTEM_ARM").unwrap_or_else(|| "qemu-system-arm".into());
    let mut cmd = Command::new(&qemu);
    cmd.args([
        "-cpu",
        "cortex-m3",
        "-machine",
        "lm3s6965evb",
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-icount",
        "shift=0",
        "-semihosting-config",
        &format!("enable=on,target=native,arg=pendant,arg={scenario}"),
        "-kernel",
    ])
    .arg(image());
    if Command::new(&qemu).arg("--version").output().is_err() {
        panic!(
            "{} not found: install the Debian package qemu-system-arm \
             (scripts/test-all.sh does), or set ANXIN_SKIP_QEMU=1",
            qemu.to_string_lossy()
        );
    }
    let (ok, stdout, stderr) = run_bounded(cmd, QEMU_DEADLINE);
    assert!(
        ok,
        "the image exited with failure\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// The fall events published, decoded as the gateway decodes them.
fn fall_events(output: &str) -> Vec<(FallAction, Option<u32>)> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("publish up/event "))
        .map(|json| decode_event(json.as_bytes()).expect("a valid protocol v1 event"))
        .filter_map(|e| match e.ev {
            EventBody::Fall { act, peak_mg } => Some((act, peak_mg)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_recorded_fall_makes_the_pendant_publish_a_fall_event() {
    if skip() {
        return;
    }
    let out = boot("fall");
    assert!(out.contains("scenario fall"), "{out}");
    let falls = fall_events(&out);
    assert_eq!(falls.len(), 1, "{out}");
    let (act, peak) = falls[0];
    assert_eq!(act, FallAction::Detected);
    assert!(peak.is_some_and(|p| p > 3000), "{out}");
    assert!(
        out.contains(r#""ev":{"k":"fall","act":"detected","peak_mg":"#),
        "{out}"
    );
    // the cost line is there and plausible for a Cortex-M at 20 Hz
    let cost: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("cost: detector "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("cost line");
    assert!((1..5_000).contains(&cost), "{out}");
}

#[test]
fn recorded_jogging_makes_the_pendant_publish_no_fall_event() {
    if skip() {
        return;
    }
    let out = boot("adl");
    assert!(out.contains("scenario adl"), "{out}");
    assert!(
        out.contains("publish up/status"),
        "the device loop ran: {out}"
    );
    assert_eq!(fall_events(&out), vec![], "{out}");
    assert!(!out.contains(r#""k":"fall""#), "{out}");
}

#[test]
fn an_im_ok_press_after_the_recorded_fall_publishes_a_cancel() {
    if skip() {
        return;
    }
    let out = boot("fall-ok");
    let acts: Vec<FallAction> = fall_events(&out).into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        acts,
        vec![FallAction::Detected, FallAction::Cancel],
        "{out}"
    );
    assert!(
        !out.contains(r#""k":"help""#),
        "the press was I'm OK, not help: {out}"
    );
}
