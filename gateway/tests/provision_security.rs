//! Device security against the embedded broker in production mode, with credentials
//! issued by provisioning: wrong passwords are refused, one home cannot speak for or
//! listen to another, revocation and rotation take effect at once, and a revocation
//! made by the CLI (another process, on the store) reaches the running gateway.

use crate::provision_support;

use std::sync::Arc;
use std::time::Duration;

use anxin_firmware::wire::{self, Channel, Clock, DeviceId, Event, EventBody};
use anxin_gateway::broker::DenyReason;
use anxin_gateway::clock::SystemClock;
use anxin_gateway::provision::{CredentialState, Provisioning, Registration, Secret};
use provision_support::{Client, household, start_production};
use rumqttc::SubscribeReasonCode;

const TEST: Duration = Duration::from_secs(60);

fn event(seq: u32, body: EventBody) -> Vec<u8> {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let e = Event::new(7, seq, 1, ts, Clock::Unix, body);
    wire::codec::encode_vec(&e).unwrap().to_vec()
}

fn up(id: &str) -> String {
    wire::topic::topic(&DeviceId::new(id).unwrap(), Channel::Event).to_string()
}

async fn register(gw: &anxin_gateway::app::Gateway, id: &str, hh: &str) -> Secret {
    gw.provision
        .register(
            Registration {
                device_id: Some(id.into()),
                kind: "door".into(),
                household_id: Some(hh.into()),
                room: Some("entrance".into()),
                serial: Some(format!("SN-{id}")),
                ..Registration::default()
            },
            "test",
        )
        .await
        .unwrap()
        .secret
        .unwrap()
}

/// Waits for the application-level ack of `seq` on the device's `down/ack`.
async fn acked(c: &mut Client, id: &str, seq: u32) {
    let topic = wire::topic::topic(&DeviceId::new(id).unwrap(), Channel::Ack).to_string();
    loop {
        let p = c.next_on(&topic).await.expect("an ack");
        let a = wire::decode_ack(&p.payload).unwrap();
        if a.upto >= seq {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_counted() {
    tokio::time::timeout(TEST, async {
        let dir = tempfile::tempdir().unwrap();
        let gw = start_production(dir.path(), |_| {}).await;
        household(&gw, "hA").await;
        let secret = register(&gw, "devA", "hA").await;
        assert!(
            Client::connect(
                gw.mqtt_addr,
                "devA",
                Some(("devA", "0000000000000000ffffffffffffffff"))
            )
            .await
            .is_err()
        );
        assert!(Client::connect(gw.mqtt_addr, "devA", None).await.is_err());
        assert!(
            Client::connect(gw.mqtt_addr, "devZ", Some(("devZ", secret.expose())))
                .await
                .is_err()
        );
        assert!(gw.broker_stats.denied_for(DenyReason::BadPassword) >= 2);
        assert!(gw.broker_stats.denied_for(DenyReason::UnknownClient) >= 1);
        Client::connect(gw.mqtt_addr, "devA", Some(("devA", secret.expose())))
            .await
            .expect("the right secret is accepted");
        gw.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_publishing_to_another_devices_topic_is_denied_and_the_other_home_is_untouched() {
    tokio::time::timeout(TEST, async {
        let dir = tempfile::tempdir().unwrap();
        let gw = start_production(dir.path(), |_| {}).await;
        household(&gw, "hA").await;
        household(&gw, "hB").await;
        let sa = register(&gw, "devA", "hA").await;
        let _sb = register(&gw, "devB", "hB").await;
        let mut a = Client::connect(gw.mqtt_addr, "devA", Some(("devA", sa.expose())))
            .await
            .unwrap();
        assert_ne!(
            a.subscribe("anxin/v1/dev/devA/down/#").await,
            SubscribeReasonCode::Failure
        );
        // A pretends to be B (a help press in B's home), then sends its own event.
        a.publish(
            &up("devB"),
            &event(
                1,
                EventBody::Help {
                    act: wire::HelpAction::Press,
                },
            ),
            false,
        )
        .await;
        a.publish(
            &up("devA"),
            &event(1, EventBody::Door { open: true }),
            false,
        )
        .await;
        // A's own event was committed (its ack came back) after the forged one was
        // handled: had the forgery gone through, it would be in the journal by now.
        acked(&mut a, "devA", 1).await;
        assert_eq!(gw.store.events_of("devA").await.unwrap().len(), 1);
        assert!(
            gw.store.events_of("devB").await.unwrap().is_empty(),
            "B's home untouched"
        );
        assert!(
            !gw.store
                .device_health()
                .await
                .unwrap()
                .iter()
                .any(|h| h.device_id == "devB"),
            "nothing was recorded for B"
        );
        assert!(gw.broker_stats.denied_for(DenyReason::PublishDenied) >= 1);
        gw.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_read_another_devices_commands() {
    tokio::time::timeout(TEST, async {
        let dir = tempfile::tempdir().unwrap();
        let gw = start_production(dir.path(), |_| {}).await;
        household(&gw, "hA").await;
        household(&gw, "hB").await;
        let sa = register(&gw, "devA", "hA").await;
        let sb = register(&gw, "devB", "hB").await;
        let mut a = Client::connect(gw.mqtt_addr, "devA", Some(("devA", sa.expose())))
            .await
            .unwrap();
        let mut b = Client::connect(gw.mqtt_addr, "devB", Some(("devB", sb.expose())))
            .await
            .unwrap();
        assert_eq!(
            a.subscribe("anxin/v1/dev/devB/down/#").await,
            SubscribeReasonCode::Failure
        );
        assert_eq!(
            a.subscribe("anxin/v1/dev/+/down/cmd").await,
            SubscribeReasonCode::Failure
        );
        assert_ne!(
            a.subscribe("anxin/v1/dev/devA/down/#").await,
            SubscribeReasonCode::Failure
        );
        assert_ne!(
            b.subscribe("anxin/v1/dev/devB/down/#").await,
            SubscribeReasonCode::Failure
        );
        let mut cmd = wire::Command::new(41, wire::CommandKind::InstallTest);
        cmd.on = Some(true);
        assert!(gw.downlink.command(&DeviceId::new("devB").unwrap(), &cmd));
        let got = b.next_publish().await.unwrap();
        assert_eq!(got.topic, "anxin/v1/dev/devB/down/cmd");
        let mut mine = cmd.clone();
        mine.id = 42;
        assert!(gw.downlink.command(&DeviceId::new("devA").unwrap(), &mine));
        // A's next message is its own command: B's never reached it.
        let next = a.next_publish().await.unwrap();
        assert_eq!(next.topic, "anxin/v1/dev/devA/down/cmd");
        assert_eq!(wire::decode_command(&next.payload).unwrap().id, 42);
        assert!(gw.broker_stats.denied_for(DenyReason::SubscribeDenied) >= 2);
        gw.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_credentials_stop_working_at_once_and_a_rotated_secret_replaces_the_old() {
    tokio::time::timeout(TEST, async {
        let dir = tempfile::tempdir().unwrap();
        let gw = start_production(dir.path(), |_| {}).await;
        household(&gw, "hA").await;
        let sa = register(&gw, "devA", "hA").await;
        let mut a = Client::connect(gw.mqtt_addr, "devA", Some(("devA", sa.expose())))
            .await
            .unwrap();
        let state = gw.provision.revoke("devA", "test").await.unwrap();
        assert!(matches!(state, CredentialState::Revoked { .. }));
        let why = a.closed().await.unwrap();
        assert!(!why.is_empty());
        assert!(
            Client::connect(gw.mqtt_addr, "devA", Some(("devA", sa.expose())))
                .await
                .is_err()
        );
        assert!(gw.broker_stats.denied_for(DenyReason::Revoked) >= 1);

        // A new secret brings it back; the old one stays refused.
        let issued = gw.provision.rotate("devA", "test").await.unwrap();
        assert_eq!(issued.generation, 2);
        let mut a = Client::connect(gw.mqtt_addr, "devA", Some(("devA", issued.secret.expose())))
            .await
            .unwrap();
        assert!(
            Client::connect(gw.mqtt_addr, "devA-2", Some(("devA", sa.expose())))
                .await
                .is_err()
        );
        // Rotating again closes the session made with the secret it replaces.
        let third = gw.provision.rotate("devA", "test").await.unwrap();
        a.closed().await.unwrap();
        assert!(
            Client::connect(gw.mqtt_addr, "devA", Some(("devA", issued.secret.expose())))
                .await
                .is_err()
        );
        Client::connect(gw.mqtt_addr, "devA", Some(("devA", third.secret.expose())))
            .await
            .unwrap();
        gw.shutdown().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_by_the_cli_reaches_the_running_gateway_within_its_poll_interval() {
    tokio::time::timeout(TEST, async {
        let dir = tempfile::tempdir().unwrap();
        let gw = start_production(dir.path(), |_| {}).await;
        household(&gw, "hA").await;
        // The CLI works on the store alone, in its own process.
        let cli_store = anxin_gateway::store::Store::open(&format!(
            "sqlite://{}",
            dir.path().join("anxin.db").display()
        ))
        .await
        .unwrap();
        let cli = Provisioning::offline(
            cli_store,
            Arc::new(SystemClock),
            &provision_support::config(dir.path()),
        );
        let secret = cli
            .register(
                Registration {
                    device_id: Some("devC".into()),
                    kind: "help".into(),
                    household_id: Some("hA".into()),
                    ..Registration::default()
                },
                "cli",
            )
            .await
            .unwrap()
            .secret
            .unwrap();
        // The gateway learns the new device and its secret at its next poll.
        let deadline = tokio::time::Instant::now() + provision_support::WAIT;
        let mut c = loop {
            if let Ok(client) =
                Client::connect(gw.mqtt_addr, "devC", Some(("devC", secret.expose()))).await
            {
                break client;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the CLI's device never accepted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(gw.registry.get("devC").is_some(), "ingest knows it too");
        let started = tokio::time::Instant::now();
        cli.revoke("devC", "cli").await.unwrap();
        c.closed().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "disconnected {:?} after the CLI's revocation",
            started.elapsed()
        );
        assert!(
            Client::connect(gw.mqtt_addr, "devC", Some(("devC", secret.expose())))
                .await
                .is_err()
        );
        gw.shutdown().await;
    })
    .await
    .expect("test took too long");
}
