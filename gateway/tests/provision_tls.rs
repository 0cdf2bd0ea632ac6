//! TLS: the embedded broker's TLS listener with certificates from configuration (a CA
//! made here with rcgen), and a provisioned device that connects with what its blob
//! says — host, port, its secret, and the SHA-256 of the CA it must trust.

use crate::provision_support;

use std::net::SocketAddr;
use std::time::Duration;

use anxin_firmware::provision::Provision;
use anxin_firmware::wire::{self, Channel, Clock, DeviceId, Event, EventBody};
use anxin_gateway::broker::TlsConfig;
use anxin_gateway::provision::Registration;
use provision_support::{Client, household, start_production};
use sha2::{Digest, Sha256};

/// Writes `ca.crt`, `server.crt` (localhost, 127.0.0.1) and `server.key` into `dir`;
/// returns the CA (PEM, DER).
fn pki(dir: &std::path::Path) -> (String, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Anxin provisioning test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    (ca.pem(), ca.der().to_vec())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_device_connects_over_tls_with_the_ca_its_blob_pins() {
    // rmqtt's dependencies enable two rustls providers: TLS clients must pick one.
    let _ = rumqttc::tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, ca_der) = pki(dir.path());
        let port = free_port();
        let gw = start_production(dir.path(), |c| {
            c.broker.tls = Some(TlsConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], port)),
                cert_path: dir.path().join("server.crt"),
                key_path: dir.path().join("server.key"),
            });
            c.provision.broker_host = "localhost".into();
            c.provision.broker_port = port;
            c.provision.ca_cert_path = Some(dir.path().join("ca.crt"));
        })
        .await;
        household(&gw, "h0001").await;
        let r = gw
            .provision
            .register(
                Registration {
                    device_id: Some("h0001-door".into()),
                    kind: "door".into(),
                    household_id: Some("h0001".into()),
                    room: Some("entrance".into()),
                    ..Registration::default()
                },
                "test",
            )
            .await
            .unwrap();
        let options = gw.provision.blob_options().unwrap();
        let bytes = gw
            .provision
            .blob("h0001-door", r.secret.as_ref().unwrap(), &options)
            .await
            .unwrap();

        // What the firmware reads at boot.
        let p = Provision::decode(&bytes).unwrap();
        assert_eq!(p.broker_host.as_str(), "localhost");
        assert_eq!(p.broker_port, port);
        let fingerprint: [u8; 32] = Sha256::digest(&ca_der).into();
        assert_eq!(
            p.ca_sha256,
            Some(fingerprint),
            "the blob pins the broker's CA"
        );

        // The device connects as its blob says, over TLS, and its event is journalled.
        let addr = SocketAddr::from(([127, 0, 0, 1], p.broker_port));
        let mut dev = Client::connect_with(
            addr,
            p.broker_host.as_str(),
            p.device_id.as_str(),
            Some((p.device_id.as_str(), p.secret.as_str())),
            Some(ca_pem.clone().into_bytes()),
        )
        .await
        .unwrap();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let e = Event::new(1, 1, 1, ts, Clock::Unix, EventBody::Door { open: true });
        let topic = wire::topic::topic(&DeviceId::new("h0001-door").unwrap(), Channel::Event);
        dev.publish(&topic, &wire::codec::encode_vec(&e).unwrap(), false)
            .await;
        provision_support::eventually("the TLS device's event in the journal", || async {
            gw.store.events_of("h0001-door").await.unwrap().len() == 1
        })
        .await;

        // A client that trusts another CA cannot reach the listener; nor can the device
        // with a wrong secret over TLS.
        let stranger = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        assert!(
            Client::connect_with(
                addr,
                "localhost",
                "h0001-door",
                Some(("h0001-door", p.secret.as_str())),
                Some(stranger.cert.pem().into_bytes()),
            )
            .await
            .is_err()
        );
        assert!(
            Client::connect_with(
                addr,
                "localhost",
                "h0001-door",
                Some(("h0001-door", "ffffffffffffffffffffffffffffffff")),
                Some(ca_pem.into_bytes()),
            )
            .await
            .is_err()
        );
        gw.shutdown().await;
    })
    .await
    .expect("test took too long");
}
