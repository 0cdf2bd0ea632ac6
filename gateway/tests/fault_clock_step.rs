//! Fault suite: the host clock stepped an hour forward and then two hours back while
//! `anxin run` watches homes (the gateway runs under libfaketime, which moves only its
//! wall clock; its monotonic clock and the devices' clocks keep real time, as when an
//! administrator or NTP sets the host's clock).
//!
//! Inactivity thresholds are one minute here, so that a deadline comes within the test:
//! - homes active before the forward step get their inactivity alert a real minute after
//!   their last activity, not at the step (no storm), whether their devices have a
//!   real-time clock or only an uptime clock, and also when their activity came after
//!   the step;
//! - homes active before the backward step are not an hour late either;
//! - an open help alert escalates at its real time after the press.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anxin_firmware::wire::{
    self, Channel, Clock, Event, EventBody, Heartbeat, HelpAction, codec::encode_vec,
};
use anxin_gateway::store::{NewDevice, Store};
use common::RawDevice;
use common::process::{AnxinProcess, wait_port};
use sqlx::Row;

const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
const HOUR_S: i64 = 3600;
/// The critical policy's second step, in seconds after the raise.
const ESCALATE_AFTER_S: u64 = 40;

/// How one home's devices speak, and when it was last active (seconds into the test).
struct Home {
    id: &'static str,
    uptime_clock: bool,
    active_at_s: u64,
}

const HOMES: [Home; 5] = [
    // Active before the forward step, real-time and uptime clocks.
    Home {
        id: "ca1",
        uptime_clock: false,
        active_at_s: 1,
    },
    Home {
        id: "cu1",
        uptime_clock: true,
        active_at_s: 1,
    },
    // Active after the forward step.
    Home {
        id: "ca2",
        uptime_clock: false,
        active_at_s: 10,
    },
    Home {
        id: "cu2",
        uptime_clock: true,
        active_at_s: 10,
    },
    // Active before the backward step.
    Home {
        id: "cb1",
        uptime_clock: false,
        active_at_s: 22,
    },
];
const STEP_FORWARD_AT_S: u64 = 5;
const STEP_BACK_AT_S: u64 = 25;

fn heartbeat(boot_ms: u64, uptime_clock: bool) -> Vec<u8> {
    let now = common::now_ms();
    let (ts, clk) = if uptime_clock {
        (now - boot_ms, Clock::Up)
    } else {
        (now, Clock::Unix)
    };
    let mut fw = anxin_firmware::device::FwVersion::new();
    fw.push_str("1.0.0").unwrap();
    let hb = Heartbeat {
        v: 1,
        boot: 1,
        seq: 1,
        ts,
        clk,
        battery_pct: Some(90),
        battery_mv: None,
        rssi_dbm: None,
        fw,
        uptime_s: ((now - boot_ms) / 1000) as u32,
        outbox: 0,
        dropped: 0,
        interval_s: 300,
        temp_dc: None,
        cmd: None,
        mac: None,
    };
    encode_vec(&hb).unwrap().to_vec()
}

fn motion(boot_ms: u64, uptime_clock: bool) -> Vec<u8> {
    let now = common::now_ms();
    let (ts, clk) = if uptime_clock {
        (now - boot_ms, Clock::Up)
    } else {
        (now, Clock::Unix)
    };
    encode_vec(&Event::new(1, 1, 1, ts, clk, EventBody::Motion))
        .unwrap()
        .to_vec()
}

fn set_fake_offset(file: &std::path::Path, seconds: i64) {
    std::fs::write(file, format!("{seconds:+}\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_clock_step_raises_no_storm_and_delays_no_deadline() {
    assert!(
        std::path::Path::new(FAKETIME_LIB).exists(),
        "libfaketime is installed by scripts/test-all.sh (Debian package libfaketime)"
    );
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("faketime");
    set_fake_offset(&fake, 0);
    let run = common::process::write_config(
        dir.path(),
        &format!(
            "[detect]\ndefault_day_inactivity_min = 1\ndefault_night_inactivity_min = 1\n\
             inactivity_bounds_min = [1, 840]\nthreshold_slack_min = 0\nprealarm_fraction = 1.0\nrecovery_grace_s = 2\noffline_grace_s = 3600\n\
             [workflow.escalation.critical]\n\
             steps = [{{ to = \"caseworker\", after_s = 0 }}, {{ to = \"committee_head\", after_s = {ESCALATE_AFTER_S} }}]\n\
             repeat_s = 0\narrival_s = 0\n"
        ),
    );
    // A committee with a caseworker for every home and a head, so that the help alert's
    // first step finds someone and its second step waits for its time.
    let mut households = String::from(
        "household_id,name,address,phone,committee_id,caseworker_id,backup_id,risk_tags,emergency_contacts\n",
    );
    for id in HOMES.iter().map(|h| h.id).chain(["chelp"]) {
        households.push_str(&format!("{id},测试户 {id},示例路 1 号,,c1,cw1,,,\n"));
    }
    let files = [
        (
            "committees.csv",
            "committee_id,committee_name,street_id,street_name,district_id,district_name\n\
             c1,示例居委会,s1,示例街道,d1,示例区\n"
                .to_string(),
        ),
        (
            "users.csv",
            "user_id,name,role,committee_id,street_id,phone,email,channels,on_duty\n\
             cw1,测试社工,caseworker,c1,,13900000001,,,no\n\
             head1,测试主任,committee_head,c1,,13900000004,,,no\n"
                .to_string(),
        ),
        ("households.csv", households),
    ];
    let mut import = std::process::Command::new(env!("CARGO_BIN_EXE_anxin"));
    import.args(["org", "import", "--config"]).arg(&run.path);
    for (name, text) in &files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        import.arg(path);
    }
    let out = import.output().expect("anxin org import runs");
    assert!(
        out.status.success(),
        "org import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        let store = Store::open(&run.store_url).await.unwrap();
        let mut devs: Vec<NewDevice> = HOMES
            .iter()
            .map(|h| NewDevice {
                id: format!("{}-pir", h.id),
                household_id: Some(h.id.into()),
                kind: "motion".into(),
                room: Some("living".into()),
            })
            .collect();
        devs.push(NewDevice {
            id: "chelp-help".into(),
            household_id: Some("chelp".into()),
            kind: "help".into(),
            room: None,
        });
        store.upsert_devices(&devs, 1).await.unwrap();
        store.close().await;
    }
    let fake_env = fake.display().to_string();
    let gw = AnxinProcess::run_with_env(
        &run.path,
        &[
            ("LD_PRELOAD", FAKETIME_LIB),
            ("FAKETIME_TIMESTAMP_FILE", &fake_env),
            ("FAKETIME_NO_CACHE", "1"),
            ("DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    wait_port(run.mqtt_port).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", run.mqtt_port).parse().unwrap();
    // The uptime-clock devices booted ten minutes ago.
    let boot_ms = common::now_ms() - 600_000;
    let mut devices = Vec::new();
    for h in &HOMES {
        let d = RawDevice::connect(&format!("{}-pir", h.id), addr).await;
        let t = wire::topic::topic(&d.id, Channel::Heartbeat);
        d.publish_raw(&t, heartbeat(boot_ms, h.uptime_clock)).await;
        devices.push(d);
    }
    let mut help = RawDevice::connect("chelp-help", addr).await;
    help.event(
        1,
        1,
        1,
        common::now_ms(),
        EventBody::Help {
            act: HelpAction::Press,
        },
    )
    .await;
    let pressed = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), help.commands.recv())
        .await
        .expect("alert_received for the help press")
        .expect("command channel open");

    let store = Store::open(&run.store_url).await.unwrap();
    let start = pressed;
    let mut active: HashMap<&str, Instant> = HashMap::new();
    let mut alerted: HashMap<String, Instant> = HashMap::new();
    let mut escalated: Option<Instant> = None;
    let mut stepped_forward = false;
    let mut stepped_back = false;
    let mut next_heartbeat = start;
    let deadline = start + Duration::from_secs(150);
    while HOMES.iter().any(|h| !alerted.contains_key(h.id)) || escalated.is_none() {
        let now = Instant::now();
        assert!(
            now < deadline,
            "deadlines missed: alerts {alerted:?}, escalation {escalated:?}"
        );
        let at = now.duration_since(start).as_secs();
        if !stepped_forward && at >= STEP_FORWARD_AT_S {
            set_fake_offset(&fake, HOUR_S);
            stepped_forward = true;
        }
        if !stepped_back && at >= STEP_BACK_AT_S {
            set_fake_offset(&fake, -HOUR_S);
            stepped_back = true;
        }
        for (h, d) in HOMES.iter().zip(&devices) {
            if at >= h.active_at_s && !active.contains_key(h.id) {
                let t = wire::topic::topic(&d.id, Channel::Event);
                d.publish_raw(&t, motion(boot_ms, h.uptime_clock)).await;
                active.insert(h.id, Instant::now());
            }
        }
        // Devices go on with their heartbeats (they are alive; the elder is not moving).
        if now >= next_heartbeat {
            for (h, d) in HOMES.iter().zip(&devices) {
                let t = wire::topic::topic(&d.id, Channel::Heartbeat);
                d.publish_raw(&t, heartbeat(boot_ms, h.uptime_clock)).await;
            }
            next_heartbeat = now + Duration::from_secs(3);
        }
        for r in sqlx::query("SELECT household_id, kind, escalation_step FROM alerts")
            .fetch_all(store.pool())
            .await
            .unwrap()
        {
            let household: String = r.get("household_id");
            let kind: String = r.get("kind");
            if kind == "inactivity" && !alerted.contains_key(&household) {
                alerted.insert(household, Instant::now());
            } else if kind == "help" && r.get::<i64, _>("escalation_step") >= 2 {
                escalated.get_or_insert_with(Instant::now);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for h in &HOMES {
        let silent = alerted[h.id].duration_since(active[h.id]);
        eprintln!(
            "fault_clock_step: {} ({}) alerted {:.1} s after its last activity",
            h.id,
            if h.uptime_clock {
                "uptime clock"
            } else {
                "real-time clock"
            },
            silent.as_secs_f64()
        );
        // The warning comes with the alert here (pre-alarm fraction 1): 60 s of real silence.
        assert!(
            silent >= Duration::from_secs(55),
            "{}: alerted after {silent:?} of silence: the step counted as silence",
            h.id
        );
    }
    let escalated_after = escalated.unwrap().duration_since(pressed);
    eprintln!(
        "fault_clock_step: help alert escalated {:.1} s after the press (policy: {ESCALATE_AFTER_S} s)",
        escalated_after.as_secs_f64()
    );
    assert!(
        escalated_after >= Duration::from_secs(ESCALATE_AFTER_S - 2),
        "escalated after {escalated_after:?}: the step forward fired it early"
    );
    // Nothing else was raised by the steps (no device offline, no missed wake-up storm).
    let kinds: Vec<String> = sqlx::query("SELECT DISTINCT kind FROM alerts ORDER BY kind")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("kind"))
        .collect();
    assert_eq!(kinds, ["help", "inactivity"], "alerts raised: {kinds:?}");
    store.close().await;
    drop(gw);
}
