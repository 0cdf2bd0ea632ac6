//! Ingest under hostile or unusual input, through the embedded broker: old boot epochs
//! replayed, sequence jumps, payloads that are not UTF-8, sockets that never speak MQTT,
//! password guessing.

use crate::common;

use anxin_firmware::wire::EventBody;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_old_epoch_is_stored_and_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_embedded(dir.path()).await;
    register(&gw, "ho", &[("ho-door", "door")]).await;
    let mut d = RawDevice::connect("ho-door", gw.mqtt_addr).await;
    let t = now_ms();
    // Four later boots, each fully acknowledged.
    for boot in 2..=5 {
        for seq in 1..=10 {
            d.event(
                boot,
                seq,
                1,
                t + u64::from(seq),
                EventBody::Door { open: seq % 2 == 0 },
            )
            .await;
        }
        assert_eq!(d.wait_ack(boot, 10).await.upto, 10);
    }
    // Then the flash-backed outbox replays boot 1, never seen by the gateway.
    for seq in 1..=5 {
        d.event(
            1,
            seq,
            1,
            t + u64::from(seq),
            EventBody::Door { open: true },
        )
        .await;
    }
    assert_eq!(d.wait_ack(1, 5).await.upto, 5);
    let rows = gw.store.events_of("ho-door").await.unwrap();
    let boot1: Vec<i64> = rows.iter().filter(|r| r.0 == 1).map(|r| r.1).collect();
    assert_eq!(
        boot1,
        vec![1, 2, 3, 4, 5],
        "every replayed event stored once"
    );
    assert_eq!(rows.len(), 45);
    // A second replay of the old epoch: duplicates, acknowledged again, stored once.
    for seq in 1..=5 {
        d.event(
            1,
            seq,
            1,
            t + u64::from(seq),
            EventBody::Door { open: true },
        )
        .await;
    }
    assert_eq!(d.wait_ack(1, 5).await.upto, 5);
    // That ack may be the first duplicate's (the mark was at 5 already): wait until all
    // five are counted.
    common::eventually("the five duplicates counted", || {
        metric(&gw.metrics.encode(), "anxin_ingest_duplicates_total", "") >= 5.0
    })
    .await;
    assert_eq!(gw.store.events_of("ho-door").await.unwrap().len(), 45);
    let m = gw.metrics.encode();
    assert_eq!(metric(&m, "anxin_ingest_duplicates_total", ""), 5.0);
    // The later boots' marks were not moved by the replay.
    let mut again = RawDevice::connect("ho-door", gw.mqtt_addr).await;
    again
        .event(5, 10, 1, t + 10, EventBody::Door { open: true })
        .await;
    assert_eq!(again.wait_ack(5, 10).await.upto, 10);
    drop(d);
    gw.shutdown().await;
}

/// A mosquitto on a free loopback port with `lines` appended to its configuration;
/// killed when dropped.
struct Mosquitto {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    async fn start(lines: &[&str]) -> Mosquitto {
        use std::os::unix::fs::MetadataExt as _;
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .expect("mosquitto installed (apt-get install -y mosquitto)");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             log_dest file {}/mosquitto.log\n",
            dir.path().display()
        );
        // As root, mosquitto drops to the `mosquitto` user unless told otherwise.
        if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
            conf.push_str("user root\n");
        }
        for l in lines {
            conf.push_str(l);
            conf.push('\n');
        }
        let path = dir.path().join("mosquitto.conf");
        std::fs::write(&path, conf).unwrap();
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mosquitto did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway on `broker` with household `hh` and its door `{hh}-door` connected, and a
/// second client of that device that has just published 2 MiB at QoS 1 on the door's
/// event topic (its event loop is returned to read what mosquitto answers).
async fn behind_mosquitto_with_a_big_publish(
    broker: &Mosquitto,
    hh: &str,
) -> (
    tempfile::TempDir,
    anxin_gateway::app::Gateway,
    RawDevice,
    rumqttc::AsyncClient,
    rumqttc::EventLoop,
) {
    use rumqttc::{AsyncClient, MqttOptions, QoS};
    let dir = tempfile::tempdir().unwrap();
    let mut config = loopback_config(dir.path());
    config.mqtt.mode = anxin_gateway::config::MqttMode::External;
    config.mqtt.host = "127.0.0.1".into();
    config.mqtt.port = broker.port;
    let gw = start(config).await;
    let door = format!("{hh}-door");
    register(&gw, hh, &[(door.as_str(), "door")]).await;
    let d = RawDevice::connect(&door, broker.addr()).await;
    let mut o = MqttOptions::new(format!("{door}-big"), "127.0.0.1", broker.port);
    o.set_max_packet_size(4 << 20, 4 << 20);
    let (big, el) = AsyncClient::new(o, 16);
    big.publish(
        format!("anxin/v1/dev/{door}/up/event"),
        QoS::AtLeastOnce,
        false,
        vec![b'x'; 2 << 20],
    )
    .await
    .unwrap();
    (dir, gw, d, big, el)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_publish_behind_mosquitto_is_counted_and_ingest_goes_on() {
    use rumqttc::{Event, Packet};
    // No packet cap in mosquitto: the gateway's own session must survive the message.
    let broker = Mosquitto::start(&[]).await;
    // 2 MiB on the device's own event topic, at QoS 1, from a client that allows it.
    let (_dir, gw, mut d, _big, mut el) = behind_mosquitto_with_a_big_publish(&broker, "hb").await;
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::Incoming(Packet::PubAck(_))) = el.poll().await {
                return;
            }
        }
    })
    .await
    .expect("mosquitto took the big publish");

    let t = now_ms();
    d.event(1, 1, 1, t, EventBody::Door { open: true }).await;
    assert_eq!(d.wait_ack(1, 1).await.upto, 1, "ingest still flows");
    assert_eq!(gw.store.events_of("hb-door").await.unwrap().len(), 1);
    let m = gw.metrics.encode();
    assert_eq!(
        metric(&m, "anxin_ingest_rejected_total", "reason=\"oversized\""),
        1.0
    );
    assert_eq!(
        metric(&m, "anxin_mqtt_reconnects_total", ""),
        0.0,
        "the gateway's session never dropped"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_with_the_generated_cap_refuses_an_oversized_publish() {
    use anxin_gateway::provision::mosquitto::MAX_PACKET_SIZE;
    use rumqttc::{Event, Packet};
    let cap = format!("max_packet_size {MAX_PACKET_SIZE}");
    let broker = Mosquitto::start(&[&cap]).await;
    let (_dir, gw, mut d, _big, mut el) = behind_mosquitto_with_a_big_publish(&broker, "hc").await;
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return "acknowledged",
                Err(_) => return "disconnected",
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("mosquitto answered the big publish");
    assert_eq!(outcome, "disconnected", "mosquitto refuses the packet");

    let t = now_ms();
    d.event(1, 1, 1, t, EventBody::Door { open: true }).await;
    assert_eq!(d.wait_ack(1, 1).await.upto, 1);
    let m = gw.metrics.encode();
    assert_eq!(metric(&m, "anxin_mqtt_reconnects_total", ""), 0.0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seq_jump_to_the_end_does_not_delay_other_devices_acks() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_embedded(dir.path()).await;
    register(&gw, "hj", &[("hj-door", "door"), ("hj-help", "help")]).await;
    let mut jumper = RawDevice::connect("hj-door", gw.mqtt_addr).await;
    let mut other = RawDevice::connect("hj-help", gw.mqtt_addr).await;
    let t = now_ms();
    jumper
        .event(1, 1, 1, t, EventBody::Door { open: true })
        .await;
    assert_eq!(jumper.wait_ack(1, 1).await.upto, 1);
    // Claims to hold nothing below the last possible seq: a gap of four billion.
    jumper
        .event(
            1,
            u32::MAX,
            u32::MAX,
            t + 1,
            EventBody::Door { open: false },
        )
        .await;
    other
        .event(1, 1, 1, t + 2, EventBody::Door { open: true })
        .await;
    // Bounded well below what walking the gap costs even in a release build (seconds).
    let started = std::time::Instant::now();
    assert_eq!(other.wait_ack(1, 1).await.upto, 1);
    assert_eq!(jumper.wait_ack(1, u32::MAX).await.upto, u32::MAX);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "acks took {:?}",
        started.elapsed()
    );
    let m = gw.metrics.encode();
    assert_eq!(
        metric(&m, "anxin_ingest_device_dropped_total", ""),
        f64::from(u32::MAX - 2)
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_inside_an_unknown_member_is_rejected_as_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_embedded(dir.path()).await;
    register(&gw, "hu", &[("hu-door", "door")]).await;
    let mut d = RawDevice::connect("hu-door", gw.mqtt_addr).await;
    let t = now_ms();
    let bad = format!(
        r#"{{"v":1,"boot":1,"seq":1,"oldest":1,"ts":{t},"clk":"unix","ev":{{"k":"door","open":true}},"note":"XX"}}"#
    );
    let mut bad = bad.into_bytes();
    let at = bad.len() - 4;
    bad[at] = 0xff; // never valid in UTF-8
    bad[at + 1] = 0xfe;
    d.publish_raw("anxin/v1/dev/hu-door/up/event", bad).await;
    // A good event after it: once it is acknowledged, the bad one was processed.
    d.event(1, 2, 2, t + 1, EventBody::Door { open: false })
        .await;
    assert_eq!(d.wait_ack(1, 2).await.upto, 2);
    let rows = gw.store.events_of("hu-door").await.unwrap();
    assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), vec![2]);
    let m = gw.metrics.encode();
    assert_eq!(
        metric(&m, "anxin_ingest_rejected_total", "reason=\"malformed\""),
        1.0
    );
    gw.shutdown().await;
}

/// One CONNECT as `id` with `password`: whether the broker accepted it.
async fn connects(addr: std::net::SocketAddr, id: &str, password: &str) -> bool {
    use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet};
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_credentials(id, password);
    let (_client, mut el) = AsyncClient::new(o, 16);
    tokio::time::timeout(WAIT, async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return true,
                Err(ConnectionError::ConnectionRefused(_)) => return false,
                Err(e) => panic!("connection failed: {e}"),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("CONNACK within the wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_in_a_row_are_answered_ever_later_and_the_right_one_still_connects() {
    use anxin_gateway::broker::DenyReason;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_embedded(dir.path()).await;
    let creds = gw.credentials.clone().expect("embedded broker credentials");
    let id = anxin_firmware::wire::DeviceId::new("hp-help").unwrap();
    creds.set_device_secret(id, b"the-right-secret");
    let started = std::time::Instant::now();
    for _ in 0..5 {
        assert!(!connects(gw.mqtt_addr, "hp-help", "a-guess").await);
    }
    // After failures 1..=4 the next attempt waits 100, 200, 400, 800 ms.
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(1400),
        "five guesses took only {took:?}"
    );
    // The right secret is still accepted (after the current delay), and resets the count.
    assert!(connects(gw.mqtt_addr, "hp-help", "the-right-secret").await);
    let again = std::time::Instant::now();
    assert!(connects(gw.mqtt_addr, "hp-help", "the-right-secret").await);
    assert!(again.elapsed() < std::time::Duration::from_millis(1000));
    assert_eq!(gw.broker_stats.denied_for(DenyReason::BadPassword), 5);
    // … and counted where operators look.
    let text = gw.metrics.encode();
    assert_eq!(
        common::metric(
            &text,
            "anxin_broker_denied_total",
            "reason=\"bad_password\""
        ),
        5.0,
        "{text}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_handshake_cap_wait_for_a_turn_instead_of_being_refused() {
    use anxin_gateway::broker::{HandshakeRefusal, MAX_HANDSHAKES};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let gw = start(loopback_config(dir.path())).await;
    // A reconnect storm: more sockets open at once than the broker reads CONNECTs.
    let n = MAX_HANDSHAKES + 200;
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        sockets.push(tokio::net::TcpStream::connect(gw.mqtt_addr).await.unwrap());
    }
    // Then each sends its CONNECT (MQTT 3.1.1, clean session, an unregistered client id:
    // the broker answers with a refusing CONNACK, which is all this test needs).
    let mut answered = 0;
    for (i, s) in sockets.iter_mut().enumerate() {
        let id = format!("storm-{i:05}");
        let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c];
        body.extend_from_slice(&(id.len() as u16).to_be_bytes());
        body.extend_from_slice(id.as_bytes());
        let mut packet = vec![0x10, body.len() as u8];
        packet.extend_from_slice(&body);
        if s.write_all(&packet).await.is_err() {
            continue;
        }
        let mut buf = [0u8; 4];
        let read = tokio::time::timeout(common::WAIT, s.read(&mut buf)).await;
        if matches!(read, Ok(Ok(k)) if k > 0 && buf[0] == 0x20) {
            answered += 1;
        }
    }
    assert_eq!(answered, n, "every CONNECT was answered with a CONNACK");
    assert_eq!(
        gw.broker_stats
            .handshakes_refused_for(HandshakeRefusal::Busy),
        0
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_sends_connect_is_closed_by_the_deadline() {
    use anxin_gateway::broker::HandshakeRefusal;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut config = loopback_config(dir.path());
    config.broker.connect_timeout = std::time::Duration::from_secs(1);
    let gw = start(config).await;
    let mut silent = tokio::net::TcpStream::connect(gw.mqtt_addr).await.unwrap();
    // One byte of a CONNECT, then nothing: rmqtt alone would wait for the rest for ever.
    let mut trickle = tokio::net::TcpStream::connect(gw.mqtt_addr).await.unwrap();
    trickle.write_all(&[0x10]).await.unwrap();
    let started = std::time::Instant::now();
    for s in [&mut silent, &mut trickle] {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("the broker closed the socket within the deadline");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "closed, not answered: {read:?}"
        );
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(
        gw.broker_stats
            .handshakes_refused_for(HandshakeRefusal::Timeout),
        2
    );
    assert_eq!(
        common::metric(
            &gw.metrics.encode(),
            "anxin_broker_handshakes_refused_total",
            "reason=\"timeout\""
        ),
        2.0
    );
    // A real client still connects and its events are acknowledged.
    register(&gw, "ht", &[("ht-door", "door")]).await;
    let mut d = RawDevice::connect("ht-door", gw.mqtt_addr).await;
    d.event(1, 1, 1, now_ms(), EventBody::Door { open: true })
        .await;
    assert_eq!(d.wait_ack(1, 1).await.upto, 1);
    gw.shutdown().await;
}
