//! Fault suite: the gateway (`anxin run`, a real process on the embedded broker) is
//! SIGKILLed at random moments under load, five times in a row, and started again. The
//! devices behave as the firmware's outbox does: every event is kept until an ack covers
//! it and published again after a reconnect. At the end every event is stored exactly once
//! (nothing acknowledged lost, nothing doubled) and the help press that was pending across
//! one of the kills raised exactly one alert. The store is SQLite, or PostgreSQL when
//! `ANXIN_TEST_POSTGRES` is set.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::wire::{EventBody, HelpAction};
use anxin_gateway::store::{NewDevice, NewHousehold, Store};
use common::RawDevice;
use common::process::{AnxinProcess, wait_port};
use rand::Rng;
use sqlx::Row;
use tokio::sync::Mutex;

const HOUSEHOLDS: usize = 4;
const KILLS: usize = 5;
/// Events each motion sensor publishes per round (about 40 per second each).
const EVENTS_PER_ROUND: u32 = 30;

/// A device's outbox: what it published and what is not yet acknowledged.
#[derive(Default)]
struct Outbox {
    /// seq → body of every event not yet covered by an ack.
    unacked: BTreeMap<u32, EventBody>,
    next: u32,
    /// Highest seq an ack covered.
    acked: u32,
}

/// A simulated device: a wire-level client plus its outbox.
struct Dev {
    raw: RawDevice,
    outbox: Arc<Mutex<Outbox>>,
}

const BOOT: u32 = 1;

impl Dev {
    async fn connect(id: &str, addr: std::net::SocketAddr) -> Dev {
        Dev {
            raw: RawDevice::connect(id, addr).await,
            outbox: Arc::new(Mutex::new(Outbox {
                next: 1,
                ..Outbox::default()
            })),
        }
    }

    /// Adds an event to the outbox and publishes it.
    async fn emit(&self, body: EventBody) -> u32 {
        let seq = {
            let mut o = self.outbox.lock().await;
            let seq = o.next;
            o.next += 1;
            o.unacked.insert(seq, body);
            seq
        };
        self.send(seq, body).await;
        seq
    }

    async fn send(&self, seq: u32, body: EventBody) {
        let oldest = {
            let o = self.outbox.lock().await;
            o.unacked.keys().next().copied().unwrap_or(seq)
        };
        // A publish into a dead connection is what a real device sees too: the outbox
        // keeps the event and the replay sends it again.
        let e = anxin_firmware::wire::Event::new(
            BOOT,
            seq,
            oldest,
            common::now_ms(),
            anxin_firmware::wire::Clock::Unix,
            body,
        );
        let t =
            anxin_firmware::wire::topic::topic(&self.raw.id, anxin_firmware::wire::Channel::Event);
        let _ = self
            .raw
            .client
            .publish(
                t.as_str(),
                rumqttc::QoS::AtLeastOnce,
                false,
                anxin_firmware::wire::codec::encode_vec(&e)
                    .unwrap()
                    .to_vec(),
            )
            .await;
    }

    /// Takes in the acks that arrived.
    async fn drain_acks(&mut self) {
        while let Ok(a) = self.raw.acks.try_recv() {
            if a.boot != BOOT {
                continue;
            }
            let mut o = self.outbox.lock().await;
            o.acked = o.acked.max(a.upto);
            let upto = o.acked;
            o.unacked.retain(|s, _| *s > upto);
        }
    }

    /// Publishes every unacknowledged event again (the outbox replay after a reconnect).
    async fn replay(&self) {
        let pending: Vec<(u32, EventBody)> = {
            let o = self.outbox.lock().await;
            o.unacked.iter().map(|(s, b)| (*s, *b)).collect()
        };
        for (s, b) in pending {
            self.send(s, b).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_sigkills_under_load_lose_nothing_acknowledged_and_raise_the_help_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = common::process::write_config(dir.path(), "[detect]\nsnapshot_interval_s = 1\n");
    let (config, url, mqtt) = (run.path, run.store_url, run.mqtt_port);
    let mut ids = Vec::new();
    {
        let store = Store::open(&url).await.unwrap();
        for h in 0..HOUSEHOLDS {
            let hh = format!("fh{h}");
            store
                .upsert_households(
                    &[NewHousehold {
                        id: hh.clone(),
                        name: format!("测试户 {h}"),
                        address: String::new(),
                    }],
                    1,
                )
                .await
                .unwrap();
            let mut devs = vec![NewDevice {
                id: format!("{hh}-pir"),
                household_id: Some(hh.clone()),
                kind: "motion".into(),
                room: Some("living".into()),
            }];
            ids.push(format!("{hh}-pir"));
            if h == 0 {
                devs.push(NewDevice {
                    id: format!("{hh}-help"),
                    household_id: Some(hh.clone()),
                    kind: "help".into(),
                    room: None,
                });
            }
            store.upsert_devices(&devs, 1).await.unwrap();
        }
        store.close().await;
    }
    let addr: std::net::SocketAddr = format!("127.0.0.1:{mqtt}").parse().unwrap();

    let mut gw = AnxinProcess::run(&config);
    wait_port(mqtt).await;
    let mut devices = Vec::new();
    for id in &ids {
        devices.push(Dev::connect(id, addr).await);
    }
    let mut help = Dev::connect("fh0-help", addr).await;
    let mut rng = rand::rng();
    let mut help_seq = None;

    for round in 0..KILLS {
        // Load until a random moment, then SIGKILL: the timeline of the test, not a
        // synchronisation.
        let kill_after = Duration::from_millis(rng.random_range(150..900));
        let until = tokio::time::Instant::now() + kill_after;
        let mut n = 0;
        while tokio::time::Instant::now() < until && n < EVENTS_PER_ROUND * 4 {
            for d in &devices {
                d.emit(EventBody::Motion).await;
            }
            if round == 2 && n == 3 {
                help_seq = Some(
                    help.emit(EventBody::Help {
                        act: HelpAction::Press,
                    })
                    .await,
                );
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        drop(gw);
        gw = AnxinProcess::run(&config);
        wait_port(mqtt).await;
        for d in devices.iter_mut().chain(std::iter::once(&mut help)) {
            d.drain_acks().await;
        }
    }
    assert!(help_seq.is_some(), "the help press was sent");

    // Drain: devices replay what is unacknowledged until every event is covered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut open = 0;
        for d in devices.iter_mut().chain(std::iter::once(&mut help)) {
            d.drain_acks().await;
            open += d.outbox.lock().await.unacked.len();
        }
        if open == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} events never acknowledged"
        );
        for d in devices.iter().chain(std::iter::once(&help)) {
            d.replay().await;
        }
        // Acks arrive on the devices' channels; give them a moment before looking again.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let store = Store::open(&url).await.unwrap();
    let mut sent_total = 0u64;
    for d in devices.iter().chain(std::iter::once(&help)) {
        let sent = d.outbox.lock().await.next - 1;
        sent_total += u64::from(sent);
        let rows = sqlx::query(
            "SELECT seq, COUNT(*) AS n FROM events WHERE device_id = $1 AND boot = $2 \
             GROUP BY seq ORDER BY seq",
        )
        .bind(d.raw.id.as_str())
        .bind(i64::from(BOOT))
        .fetch_all(store.pool())
        .await
        .unwrap();
        let seqs: Vec<(i64, i64)> = rows
            .iter()
            .map(|r| (r.get::<i64, _>("seq"), r.get::<i64, _>("n")))
            .collect();
        assert_eq!(
            seqs.len() as u32,
            sent,
            "{}: every acknowledged event stored",
            d.raw.id.as_str()
        );
        for (i, (seq, n)) in seqs.iter().enumerate() {
            assert_eq!(*seq, i as i64 + 1, "{}: no hole", d.raw.id.as_str());
            assert_eq!(*n, 1, "{}: seq {seq} stored once", d.raw.id.as_str());
        }
    }
    assert!(sent_total > 100, "the load was real: {sent_total} events");
    eprintln!("fault_sigkill: {KILLS} SIGKILLs, {sent_total} events sent, all stored once, 0 lost");

    // The help press's alert, raised by whichever process saw it (or by the replay of the
    // journal at start), exactly once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let alerts = loop {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM alerts WHERE kind = 'help' AND household_id = 'fh0'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
        if n > 0 || tokio::time::Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(alerts, 1, "one help alert");
    store.close().await;
    drop(gw);
}
