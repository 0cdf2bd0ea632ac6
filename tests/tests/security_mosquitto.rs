//! Device security against a real mosquitto whose password and ACL files the gateway's
//! provisioning writes (mosquitto's own `$7$` PBKDF2 hashes, `pattern` rules) and
//! reloads: a wrong password is refused; a device publishing to another device's topic
//! is acknowledged (MQTT 3.1.1) but dropped, so nothing arrives and the other home has
//! no event; a device cannot read another device's commands; a revocation made by the
//! CLI (another process, on the store) disconnects the device at the broker's reload.

use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::wire::{self, Channel, Clock, DeviceId, Event, EventBody, HelpAction};
use anxin_gateway::app::{Gateway, StartOptions};
use anxin_gateway::clock::SystemClock;
use anxin_gateway::config::{Config, MqttMode};
use anxin_gateway::provision::{MosquittoConfig, Provisioning, Registration, Secret};
use anxin_gateway::store::{NewHousehold, Store};
use anxin_tests::harness::{ClientOpts, Mosquitto, MosquittoOpts, TestClient};
use rumqttc::ConnectReturnCode;

const GW_USER: &str = "anxin-gateway";

fn event(seq: u32, body: EventBody) -> Vec<u8> {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let e = Event::new(9, seq, 1, ts, Clock::Unix, body);
    wire::codec::encode_vec(&e).unwrap().to_vec()
}

fn topic(id: &str, ch: Channel) -> String {
    wire::topic::topic(&DeviceId::new(id).unwrap(), ch).to_string()
}

/// mosquitto with the harness's file names, a gateway in external mode that keeps those
/// files current, households hA and hB with a device each.
async fn setup(dir: &std::path::Path) -> anyhow::Result<(Mosquitto, Gateway, Secret, Secret)> {
    // The harness writes its own password and ACL files; provisioning overwrites them.
    let broker = Mosquitto::start(
        MosquittoOpts::default()
            .user("placeholder", "not-used")
            .anxin_acl(GW_USER),
    )
    .await?;
    let mut config = Config::default();
    config.general.data_dir = dir.to_path_buf();
    config.http.listen = "127.0.0.1:0".parse()?;
    config.mqtt.mode = MqttMode::External;
    config.mqtt.host = broker.host().into();
    config.mqtt.port = broker.port();
    config.mqtt.username = Some(GW_USER.into());
    config.mqtt.password = Some(Secret::generate().expose().to_string());
    config.mqtt.reconnect_min_ms = 50;
    config.mqtt.reconnect_max_ms = 300;
    config.provision.poll_interval_ms = 200;
    config.provision.mosquitto = Some(MosquittoConfig {
        password_file: broker.dir().join("passwd"),
        acl_file: broker.dir().join("acl"),
        reload_command: vec!["kill".into(), "-HUP".into(), broker.pid().to_string()],
    });
    let gw = Gateway::start(config, Arc::new(SystemClock), StartOptions::default()).await?;
    assert!(
        gw.wait_connected(Duration::from_secs(20)).await,
        "the gateway's own login (written by provisioning) was not accepted:\n{}",
        broker.log()
    );
    gw.store
        .upsert_households(
            &["hA", "hB"].map(|h| NewHousehold {
                id: h.into(),
                name: format!("测试户 {h}"),
                address: String::new(),
            }),
            1,
        )
        .await?;
    let mut secrets = Vec::new();
    for (id, hh) in [("devA", "hA"), ("devB", "hB")] {
        let r = gw
            .provision
            .register(
                Registration {
                    device_id: Some(id.into()),
                    kind: "help".into(),
                    household_id: Some(hh.into()),
                    ..Registration::default()
                },
                "test",
            )
            .await?;
        secrets.push(r.secret.expect("a secret"));
    }
    let sb = secrets.pop().expect("B");
    let sa = secrets.pop().expect("A");
    Ok((broker, gw, sa, sb))
}

/// Waits for the application-level ack of `seq` on the device's `down/ack`.
async fn acked(c: &mut TestClient, id: &str, seq: u32) -> anyhow::Result<()> {
    let t = topic(id, Channel::Ack);
    loop {
        let p = c.next_publish().await?;
        if p.topic == t && wire::decode_ack(&p.payload)?.upto >= seq {
            return Ok(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_with_provisioned_files_refuses_wrong_passwords_and_confines_each_device() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let dir = tempfile::tempdir()?;
        let (broker, gw, sa, sb) = setup(dir.path()).await?;
        let (host, port) = (broker.host(), broker.port());

        // A wrong password, and an unknown user, are refused.
        for opts in [
            ClientOpts::device("devA", "00000000000000000000000000000000"),
            ClientOpts::device("devZ", sa.expose()),
        ] {
            let refused = TestClient::try_connect(host, port, opts).await?;
            assert!(
                matches!(
                    refused,
                    Err(ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized)
                ),
                "{}",
                broker.log()
            );
        }

        // A publishes a help press on B's topic: PUBACKed, dropped.
        let mut a =
            TestClient::connect(host, port, ClientOpts::device("devA", sa.expose())).await?;
        a.subscribe("anxin/v1/dev/devA/down/#").await?;
        a.publish(
            &topic("devB", Channel::Event),
            &event(
                1,
                EventBody::Help {
                    act: HelpAction::Press,
                },
            ),
            false,
        )
        .await?;
        a.publish(
            &topic("devA", Channel::Event),
            &event(
                1,
                EventBody::Help {
                    act: HelpAction::Press,
                },
            ),
            false,
        )
        .await?;
        // A's own event, sent after the forgery on the same connection, is committed:
        // the forgery would have reached the gateway first.
        acked(&mut a, "devA", 1).await?;
        assert_eq!(gw.store.events_of("devA").await?.len(), 1);
        assert!(
            gw.store.events_of("devB").await?.is_empty(),
            "B's home untouched"
        );
        assert!(
            !gw.store
                .device_health()
                .await?
                .iter()
                .any(|h| h.device_id == "devB"),
            "nothing recorded for B"
        );

        // A cannot read B's commands.
        let mut b =
            TestClient::connect(host, port, ClientOpts::device("devB", sb.expose())).await?;
        b.subscribe("anxin/v1/dev/devB/down/#").await?;
        let spy = a.subscribe("anxin/v1/dev/devB/down/#").await?;
        let mut cmd = wire::Command::new(7, wire::CommandKind::InstallTest);
        cmd.on = Some(true);
        assert!(gw.downlink.command(&DeviceId::new("devB")?, &cmd));
        assert_eq!(
            b.next_publish().await?.topic,
            topic("devB", Channel::Command)
        );
        cmd.id = 8;
        assert!(gw.downlink.command(&DeviceId::new("devA")?, &cmd));
        // Everything A receives up to its own command 8 (the workflow may send it alert
        // feedback meanwhile) is on its own topics: B's command never reached it.
        loop {
            let next = a.next_publish().await?;
            assert!(
                next.topic.starts_with("anxin/v1/dev/devA/down/"),
                "A got {} (SUBACK {spy:?})",
                next.topic
            );
            if next.topic == topic("devA", Channel::Command)
                && wire::decode_command(&next.payload)?.id == 8
            {
                break;
            }
        }

        // The CLI revokes A (another process, on the store): the gateway rewrites the
        // files and reloads mosquitto, which disconnects A.
        let cli = Provisioning::offline(
            Store::open(&format!(
                "sqlite://{}",
                dir.path().join("anxin.db").display()
            ))
            .await?,
            Arc::new(SystemClock),
            &Config::default(),
        );
        let started = tokio::time::Instant::now();
        cli.revoke("devA", "cli").await?;
        let why = a.closed().await?;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "closed after {:?}: {why}",
            started.elapsed()
        );
        let refused =
            TestClient::try_connect(host, port, ClientOpts::device("devA", sa.expose())).await?;
        assert!(refused.is_err(), "a revoked device reconnected");
        // B is not affected.
        b.publish(
            &topic("devB", Channel::Event),
            &event(
                1,
                EventBody::Help {
                    act: HelpAction::Cancel,
                },
            ),
            false,
        )
        .await?;
        acked(&mut b, "devB", 1).await?;
        gw.shutdown().await;
        anyhow::Ok(())
    })
    .await
    .expect("test took too long")
    .unwrap();
}
