//! `anxin device …` end to end on a store (no gateway): the blob the CLI writes is read
//! by the firmware's own parser (and refused once damaged), secrets are checked against
//! their hashes, rotation and revocation change what is accepted, mosquitto's files
//! carry only active logins, installation tests and work orders work offline.

use std::path::Path;
use std::sync::Arc;

use anxin_firmware::provision::{BLOB_LEN, Provision, ProvisionError as BlobError};
use anxin_gateway::cli::{Cli, main as cli_main};
use anxin_gateway::clock::SystemClock;
use anxin_gateway::config::Config;
use anxin_gateway::provision::secret::mosquitto_verify;
use anxin_gateway::provision::{CredentialState, ProvisionError, Provisioning, Secret};
use anxin_gateway::store::{NewHousehold, Store};
use clap::Parser;
use sha2::{Digest, Sha256};

async fn anxin(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let d = dir.display().to_string();
    let mut argv = vec!["anxin", "device"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--data-dir", &d]);
    cli_main(Cli::try_parse_from(argv)?).await
}

async fn service(dir: &Path) -> Provisioning {
    let mut c = Config::default();
    c.general.data_dir = dir.to_path_buf();
    let store = Store::open(&c.store_url()).await.unwrap();
    Provisioning::offline(store, Arc::new(SystemClock), &c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blob_written_by_the_cli_is_read_by_the_firmware_and_refused_once_damaged() {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let p = service(dir.path()).await;
        p.store()
            .upsert_households(
                &[NewHousehold {
                    id: "h0007".into(),
                    name: "测试户".into(),
                    address: String::new(),
                }],
                1,
            )
            .await
            .unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["gw.example.invalid".into()]).unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.cert.pem()).unwrap();
        let blob_path = dir.path().join("h0007-help.bin");
        anxin(
            dir.path(),
            &[
                "register",
                "--kind",
                "help",
                "--household",
                "h0007",
                "--room",
                "bedroom",
                "--serial",
                "AX-0007-01",
                "--blob",
                blob_path.to_str().unwrap(),
                "--broker-host",
                "gw.example.invalid",
                "--broker-port",
                "8883",
                "--ca-cert",
                ca_path.to_str().unwrap(),
                "--target",
                "esp32c3",
            ],
        )
        .await
        .unwrap();

        let bytes = std::fs::read(&blob_path).unwrap();
        assert_eq!(bytes.len(), BLOB_LEN);
        let blob = Provision::decode(&bytes).unwrap();
        assert_eq!(
            blob.device_id.as_str(),
            "h0007-help",
            "id derived from household and kind"
        );
        assert_eq!(blob.broker_host.as_str(), "gw.example.invalid");
        assert_eq!(blob.broker_port, 8883);
        assert_eq!(blob.heartbeat_s, 300);
        assert_eq!(blob.help_cancel_s, 10);
        let fp: [u8; 32] = Sha256::digest(ca.cert.der()).into();
        assert_eq!(blob.ca_sha256, Some(fp));
        // The secret in the blob is the one whose hash the gateway stored.
        let secret = Secret::from_text(blob.secret.as_str());
        p.verify_secret("h0007-help", &secret).await.unwrap();

        // Damaged or short blobs are refused by the firmware code.
        let mut flipped = bytes.clone();
        flipped[0x40] ^= 0x01;
        assert!(matches!(
            Provision::decode(&flipped),
            Err(BlobError::BadCrc { .. })
        ));
        assert_eq!(
            Provision::decode(&bytes[..200]),
            Err(BlobError::Truncated { len: 200 })
        );

        // Another blob with the secret shown at registration gives the same blob.
        let again = dir.path().join("again.bin");
        anxin(
            dir.path(),
            &[
                "blob",
                "h0007-help",
                "--secret",
                secret.expose(),
                "--out",
                again.to_str().unwrap(),
                "--broker-host",
                "gw.example.invalid",
                "--broker-port",
                "8883",
                "--ca-cert",
                ca_path.to_str().unwrap(),
            ],
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(&again).unwrap(), bytes);
        // A wrong secret never makes a blob.
        let err = anxin(
            dir.path(),
            &[
                "blob",
                "h0007-help",
                "--secret",
                "00000000000000000000000000000000",
                "--out",
                again.to_str().unwrap(),
                "--broker-host",
                "x",
            ],
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<ProvisionError>(),
                Some(ProvisionError::WrongSecret(_))
            ),
            "{err}"
        );

        // Rotation: the old secret is no longer the device's.
        anxin(dir.path(), &["rotate", "h0007-help"]).await.unwrap();
        assert!(matches!(
            p.verify_secret("h0007-help", &secret).await,
            Err(ProvisionError::WrongSecret(_))
        ));
        assert!(matches!(
            p.credentials("h0007-help").await.unwrap(),
            CredentialState::Active { generation: 2, .. }
        ));
        // The same serial cannot be registered twice.
        let dup = anxin(
            dir.path(),
            &[
                "register",
                "--kind",
                "door",
                "--household",
                "h0007",
                "--serial",
                "AX-0007-01",
            ],
        )
        .await
        .unwrap_err();
        assert!(matches!(
            dup.downcast_ref::<ProvisionError>(),
            Some(ProvisionError::SerialTaken { .. })
        ));
        anxin(
            dir.path(),
            &[
                "register",
                "--kind",
                "door",
                "--household",
                "h0007",
                "--id",
                "h0007-door",
            ],
        )
        .await
        .unwrap();
        let unknown = anxin(
            dir.path(),
            &["register", "--kind", "door", "--household", "h9999"],
        )
        .await
        .unwrap_err();
        assert!(matches!(
            unknown.downcast_ref::<ProvisionError>(),
            Some(ProvisionError::UnknownHousehold(_))
        ));

        // mosquitto files: the revoked device is left out.
        anxin(dir.path(), &["revoke", "h0007-door"]).await.unwrap();
        let pw = dir.path().join("anxin.passwd");
        let acl = dir.path().join("anxin.acl");
        anxin(
            dir.path(),
            &[
                "mosquitto-files",
                "--password-file",
                pw.to_str().unwrap(),
                "--acl-file",
                acl.to_str().unwrap(),
            ],
        )
        .await
        .unwrap();
        let text = std::fs::read_to_string(&pw).unwrap();
        assert!(text.starts_with("h0007-help:$7$101$"), "{text}");
        assert!(!text.contains("h0007-door"), "revoked: {text}");
        assert!(
            std::fs::read_to_string(&acl)
                .unwrap()
                .contains("pattern read anxin/v1/dev/%u/down/#")
        );
        let rotated = p.rotate("h0007-help", "test").await.unwrap();
        let conf = dir.path().join("anxin.conf");
        anxin(
            dir.path(),
            &[
                "mosquitto-files",
                "--password-file",
                pw.to_str().unwrap(),
                "--acl-file",
                acl.to_str().unwrap(),
                "--conf-file",
                conf.to_str().unwrap(),
            ],
        )
        .await
        .unwrap();
        // The settings to include from mosquitto.conf cap the packet size as the
        // embedded broker does.
        let settings = std::fs::read_to_string(&conf).unwrap();
        assert!(settings.contains("max_packet_size 4096"), "{settings}");
        assert!(settings.contains("allow_anonymous false"), "{settings}");
        let entry = std::fs::read_to_string(&pw).unwrap();
        let hash = entry.trim().split_once(':').unwrap().1;
        assert!(mosquitto_verify(hash, rotated.secret.expose().as_bytes()));

        // An installation test with no gateway running: nothing reported, all untested.
        anxin(dir.path(), &["test", "start", "h0007", "--minutes", "5"])
            .await
            .unwrap();
        let again = anxin(dir.path(), &["test", "start", "h0007"])
            .await
            .unwrap_err();
        assert!(matches!(
            again.downcast_ref::<ProvisionError>(),
            Some(ProvisionError::TestRunning(_))
        ));
        anxin(dir.path(), &["test", "stop", "h0007"]).await.unwrap();
        let report = p.test_status("h0007").await.unwrap();
        assert!(report.ended_ms.is_some());
        assert_eq!(report.untested().len(), 2);
        let orders = p.work_orders(true, Some("h0007")).await.unwrap();
        assert_eq!(orders.len(), 2, "{orders:?}");
        assert!(orders.iter().all(|o| o.reason == "untested"));
        let id = orders[0].id.to_string();
        anxin(
            dir.path(),
            &[
                "close-order",
                &id,
                "--resolution",
                "batteries fitted, tested again",
            ],
        )
        .await
        .unwrap();
        assert_eq!(p.work_orders(true, Some("h0007")).await.unwrap().len(), 1);
        anxin(dir.path(), &["list"]).await.unwrap();
        anxin(dir.path(), &["show", "h0007-help"]).await.unwrap();
        anxin(dir.path(), &["orders", "--all"]).await.unwrap();
        anxin(
            dir.path(),
            &[
                "flash-command",
                "x.bin",
                "--target",
                "cortex-m",
                "--offset",
                "0x000FE000",
            ],
        )
        .await
        .unwrap();
    })
    .await
    .expect("test took too long");
}
