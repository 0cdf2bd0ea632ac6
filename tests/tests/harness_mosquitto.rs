//! The mosquitto harness: a real mosquitto with Anxin's password and ACL files.

use std::time::Duration;

use anxin_tests::harness::{ClientOpts, Mosquitto, MosquittoOpts, TestClient};
use rumqttc::{ConnectReturnCode, QoS, SubscribeReasonCode};

const GW: &str = "anxin-gateway";
const GW_PASS: &str = "gateway-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquittos_acl_drops_a_spoofed_publish_that_it_acknowledged() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let broker = Mosquitto::start(
            MosquittoOpts::default()
                .user(GW, GW_PASS)
                .user("A", "secret-a")
                .user("B", "secret-b")
                .anxin_acl(GW),
        )
        .await?;
        let (host, port) = (broker.host(), broker.port());

        let mut gw =
            TestClient::connect(host, port, ClientOpts::new("gw").login(GW, GW_PASS)).await?;
        assert_eq!(
            gw.subscribe("anxin/v1/dev/+/up/#").await?,
            SubscribeReasonCode::Success(QoS::AtLeastOnce)
        );

        // B writes under A's id: mosquitto (MQTT 3.1.1) PUBACKs it, and drops it.
        let mut b = TestClient::connect(host, port, ClientOpts::device("B", "secret-b")).await?;
        b.publish("anxin/v1/dev/A/up/event", b"spoofed", false)
            .await?;
        b.publish("anxin/v1/dev/B/up/event", b"control", false)
            .await?;
        let first = gw.next_publish().await?;
        assert_eq!(first.topic, "anxin/v1/dev/B/up/event", "{}", broker.log());
        assert_eq!(&first.payload[..], b"control");

        // Commands: B cannot read A's, A reads its own.
        let mut a = TestClient::connect(host, port, ClientOpts::device("A", "secret-a")).await?;
        a.subscribe("anxin/v1/dev/A/down/#").await?;
        let spy = b.subscribe("anxin/v1/dev/A/down/#").await?;
        b.subscribe("anxin/v1/dev/B/down/#").await?;
        gw.publish("anxin/v1/dev/A/down/cmd", b"for A", false)
            .await?;
        gw.publish("anxin/v1/dev/B/down/cmd", b"for B", false)
            .await?;
        assert_eq!(&a.next_publish().await?.payload[..], b"for A");
        assert_eq!(
            &b.next_publish().await?.payload[..],
            b"for B",
            "SUBACK was {spy:?}"
        );

        // A wrong password is refused.
        let refused = TestClient::try_connect(host, port, ClientOpts::device("A", "guess")).await?;
        assert!(matches!(
            refused,
            Err(ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword)
        ));

        let pid = broker.pid();
        drop(broker);
        // Killed and reaped.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
        );
        anyhow::Ok(())
    })
    .await
    .expect("timed out")
    .expect("failed");
}
