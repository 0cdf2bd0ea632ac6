//! Simulated homes against a real mosquitto broker, with a small gateway double that
//! acknowledges events and answers help presses. Skipped (with a message) when
//! `mosquitto` is not installed.
#![cfg(feature = "sim")]

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use anxin_firmware::sim::calendar::parse_local;
use anxin_firmware::sim::{Scenario, SimClock, SimConfig, population, run};

/// A mosquitto on a free loopback port, killed on drop.
struct Broker {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Broker {
    fn start() -> Option<Broker> {
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "mosquitto"]
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .arg("-h")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok()
            })?;
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("anxin-sim-mqtt-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .ok()?;
        let child = Command::new(exe)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let broker = Broker { child, port, dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(broker);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Default)]
struct Seen {
    /// (device, boot, seq) of every distinct event.
    events: BTreeSet<(String, u64, u64)>,
    kinds: BTreeMap<String, usize>,
    heartbeats: usize,
    /// Last status per device.
    status: BTreeMap<String, String>,
    /// Devices whose offline status arrived (a last will while the sim runs).
    wills: BTreeSet<String>,
}

/// Subscribes to every device's uplink, acks each event (contiguously per device and
/// boot), and answers a help press with `alert_received` then `alert_acknowledged`.
fn gateway_double(port: u16, seen: Arc<Mutex<Seen>>, stop: CancellationToken) {
    let mut opts = MqttOptions::new("test-gateway", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(10));
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    tokio::spawn(async move {
        let mut contiguous: BTreeMap<(String, u64), (u64, BTreeSet<u64>)> = BTreeMap::new();
        let mut cmd_id = 0u32;
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = eventloop.poll() => ev,
            };
            let p = match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe("anxin/v1/dev/+/up/#", QoS::AtLeastOnce);
                    continue;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => p,
                Ok(_) => continue,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let parts: Vec<&str> = p.topic.split('/').collect();
            let (dev, kind) = (parts[3].to_owned(), parts[5]);
            let Ok(v) = serde_json::from_slice::<Value>(&p.payload) else {
                continue;
            };
            let mut seen = seen.lock().expect("no test thread panicked");
            match kind {
                "event" => {
                    let field = |k: &str| v[k].as_u64().expect("events carry boot, seq, oldest");
                    let (boot, seq, oldest) = (field("boot"), field("seq"), field("oldest"));
                    if seen.events.insert((dev.clone(), boot, seq)) {
                        *seen
                            .kinds
                            .entry(v["ev"]["k"].as_str().unwrap_or("?").to_owned())
                            .or_default() += 1;
                        if v["ev"]["k"] == "help" && v["ev"]["act"] == "press" {
                            for cmd in ["alert_received", "alert_acknowledged"] {
                                cmd_id += 1;
                                let body = format!(
                                    r#"{{"v":1,"id":{cmd_id},"cmd":"{cmd}","cause":"help"}}"#
                                );
                                let _ = client.try_publish(
                                    format!("anxin/v1/dev/{dev}/down/cmd"),
                                    QoS::AtLeastOnce,
                                    false,
                                    body,
                                );
                            }
                        }
                    }
                    let (upto, above) = contiguous.entry((dev.clone(), boot)).or_default();
                    *upto = (*upto).max(oldest - 1);
                    above.insert(seq);
                    while above.remove(&(*upto + 1)) {
                        *upto += 1;
                    }
                    above.retain(|s| *s > *upto);
                    let ack = format!(r#"{{"v":1,"boot":{boot},"upto":{upto}}}"#);
                    let _ = client.try_publish(
                        format!("anxin/v1/dev/{dev}/down/ack"),
                        QoS::AtMostOnce,
                        false,
                        ack,
                    );
                }
                "hb" => seen.heartbeats += 1,
                "status" => {
                    let state = v["state"].as_str().unwrap_or("?").to_owned();
                    if state == "offline" {
                        seen.wills.insert(dev.clone());
                    }
                    seen.status.insert(dev, state);
                }
                _ => {}
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_homes_publish_through_a_real_broker_and_get_acked() {
    let Some(broker) = Broker::start() else {
        eprintln!("mosquitto is not installed: skipping the real-broker simulation test");
        return;
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop_gateway = CancellationToken::new();
    gateway_double(broker.port, seen.clone(), stop_gateway.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let start = parse_local("2026-11-23T07:00").unwrap();
    let clock = SimClock::new(start, 1440.0);
    let mut config = SimConfig::new("127.0.0.1", broker.port, clock);
    config.seed = 11;
    config.boot = Some(42);
    let scenarios: Vec<Scenario> = [
        // The help button is offline when pressed: the press waits in its outbox.
        "offline@h0001-help@+15m+30m",
        "help@h0001@+20m",
        "gas@h0002@+30m+10m",
        "offline@h0003-door@+10m+40m",
        "collapse@h0099@+1h",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let pop = population(3, 11);
    let devices = pop
        .households
        .iter()
        .map(|h| h.devices.len())
        .sum::<usize>();

    let shutdown = CancellationToken::new();
    let sim = tokio::spawn(run(config, pop, scenarios, shutdown.clone()));
    // 6 s real = 2.4 h virtual.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let wills = seen.lock().unwrap().wills.clone();
    shutdown.cancel();
    let report = tokio::time::timeout(Duration::from_secs(10), sim)
        .await
        .expect("the simulation stops promptly")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_gateway.cancel();

    let seen = seen.lock().unwrap();
    eprintln!(
        "{report:#?}\nwills: {wills:?}\nkinds seen: {:?}",
        seen.kinds
    );
    assert_eq!(report.homes, 3);
    assert_eq!(report.devices, devices);
    assert_eq!(
        report.unmatched_scenarios,
        vec!["collapse@h0099@+1h".to_owned()]
    );
    assert_eq!(report.generated.help, 1, "{report:#?}");
    assert_eq!(report.acked.help, 1);
    assert_eq!(report.generated.gas, 2, "gas alarm and clear");
    assert!(report.generated.motion > 10, "{report:#?}");
    // Everything generated reached the gateway double; nearly everything was acked.
    assert_eq!(seen.events.len() as u64, report.generated.total());
    assert!(report.unacked_at_end <= 3, "{report:#?}");
    assert!(
        report.resent.total() <= report.generated.door,
        "only the offline door replays"
    );
    assert!(report.acked.total() + report.unacked_at_end >= report.generated.total());
    assert_eq!(report.commands, 2, "received and acknowledged");
    assert!(report.heartbeats >= devices as u64 * 20, "{report:#?}");
    assert!(seen.heartbeats as u64 >= report.heartbeats - devices as u64);
    // The help button and the door of h0003 vanished (last will) and came back.
    assert_eq!(
        wills,
        BTreeSet::from(["h0001-help".to_owned(), "h0003-door".to_owned()])
    );
    assert!(report.connects >= devices as u64 + 2);
    // Clean shutdown: every device said offline.
    assert_eq!(seen.status.len(), devices);
    assert!(
        seen.status.values().all(|s| s == "offline"),
        "{:?}",
        seen.status
    );
    drop(broker);
}
