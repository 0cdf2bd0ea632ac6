//! The provisioning blob: what the firmware accepts at boot, and everything it refuses.

use anxin_firmware::provision::{BLOB_LEN, Provision, ProvisionError, VERSION};
use anxin_firmware::wire::DeviceId;

fn sample(tls: bool) -> Provision {
    Provision {
        device_id: DeviceId::new("h0001-help").unwrap(),
        broker_host: heapless::String::try_from("192.0.2.10").unwrap(),
        broker_port: if tls { 8883 } else { 1883 },
        ca_sha256: tls.then_some([0xA5; 32]),
        secret: heapless::String::try_from("0f1e2d3c4b5a69788796a5b4c3d2e1f0").unwrap(),
        heartbeat_s: 120,
        help_cancel_s: 8,
        fall_cancel_s: 45,
    }
}

/// Recomputes the CRC after a deliberate edit, so that a test reaches the field checks.
fn reseal(b: &mut [u8; BLOB_LEN]) {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&b[..BLOB_LEN - 4]);
    b[BLOB_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_blob_round_trips_with_and_without_tls() {
    for tls in [true, false] {
        let p = sample(tls);
        let b = p.to_bytes().unwrap();
        assert_eq!(b.len(), BLOB_LEN);
        assert_eq!(Provision::decode(&b).unwrap(), p);
    }
}

#[test]
fn a_blob_at_the_start_of_a_larger_flash_page_is_read() {
    let mut page = vec![0xFF; 4096];
    page[..BLOB_LEN].copy_from_slice(&sample(true).to_bytes().unwrap());
    assert_eq!(Provision::decode(&page).unwrap(), sample(true));
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let good = sample(true).to_bytes().unwrap();
    for byte in 0..BLOB_LEN {
        for bit in 0..8 {
            let mut b = good;
            b[byte] ^= 1 << bit;
            assert!(
                Provision::decode(&b).is_err(),
                "flip of bit {bit} in byte {byte:#04x} was accepted"
            );
        }
    }
}

#[test]
fn a_corrupted_payload_is_rejected_by_its_crc() {
    let mut b = sample(false).to_bytes().unwrap();
    b[0x40] ^= 0xFF;
    assert!(matches!(
        Provision::decode(&b),
        Err(ProvisionError::BadCrc { .. })
    ));
}

#[test]
fn every_truncation_is_rejected() {
    let b = sample(true).to_bytes().unwrap();
    for len in 0..BLOB_LEN {
        assert_eq!(
            Provision::decode(&b[..len]),
            Err(ProvisionError::Truncated { len })
        );
    }
}

#[test]
fn a_blank_flash_page_means_not_provisioned() {
    assert_eq!(
        Provision::decode(&[0xFF; BLOB_LEN]),
        Err(ProvisionError::Erased)
    );
    assert_eq!(
        Provision::decode(&[0x00; BLOB_LEN]),
        Err(ProvisionError::BadMagic)
    );
}

#[test]
fn another_layout_version_is_rejected_even_with_a_valid_crc() {
    let mut b = sample(true).to_bytes().unwrap();
    b[4] = VERSION + 1;
    reseal(&mut b);
    assert_eq!(
        Provision::decode(&b),
        Err(ProvisionError::UnsupportedVersion { found: VERSION + 1 })
    );
    let mut b = sample(true).to_bytes().unwrap();
    b[6] = 0;
    b[7] = 2;
    reseal(&mut b);
    assert_eq!(
        Provision::decode(&b),
        Err(ProvisionError::BadLength { declared: 512 })
    );
}

#[test]
fn fields_out_of_range_are_rejected_even_with_a_valid_crc() {
    type Edit = fn(&mut [u8; BLOB_LEN]);
    let cases: [(&str, Edit); 9] = [
        ("device_id", |b| b[0x12] = 0),
        ("device_id", |b| b[0x18] = b'/'),
        ("broker_host", |b| b[0x13] = 65),
        ("secret", |b| b[0x14] = 8),
        ("heartbeat_s", |b| {
            b[0x08..0x0C].copy_from_slice(&1u32.to_le_bytes())
        }),
        ("help_cancel_s", |b| {
            b[0x0C..0x0E].copy_from_slice(&0u16.to_le_bytes())
        }),
        ("broker_port", |b| {
            b[0x10..0x12].copy_from_slice(&0u16.to_le_bytes())
        }),
        ("flags", |b| b[0x05] = 0x80),
        ("reserved", |b| b[0xE0] = 1),
    ];
    for (field, edit) in cases {
        let mut b = sample(true).to_bytes().unwrap();
        edit(&mut b);
        reseal(&mut b);
        assert_eq!(
            Provision::decode(&b),
            Err(ProvisionError::OutOfRange { field }),
            "{field}"
        );
    }
}

#[test]
fn a_fingerprint_without_the_tls_flag_is_rejected() {
    let mut b = sample(false).to_bytes().unwrap();
    b[0x78] = 1;
    reseal(&mut b);
    assert_eq!(
        Provision::decode(&b),
        Err(ProvisionError::OutOfRange { field: "ca_sha256" })
    );
}

#[test]
fn the_encoder_refuses_to_write_what_the_decoder_would_refuse() {
    let mut p = sample(true);
    p.secret = heapless::String::try_from("short").unwrap();
    assert_eq!(
        p.to_bytes(),
        Err(ProvisionError::OutOfRange { field: "secret" })
    );
    let mut p = sample(true);
    p.heartbeat_s = 0;
    assert!(p.to_bytes().is_err());
    let mut p = sample(true);
    p.broker_host = heapless::String::try_from("bad host").unwrap();
    assert!(p.to_bytes().is_err());
}

#[test]
fn the_blob_sets_the_device_settings() {
    let s = sample(true).settings(4);
    assert_eq!(s.id.as_str(), "h0001-help");
    assert_eq!(s.boot, 4);
    assert_eq!(s.heartbeat_s, 120);
    assert_eq!(s.button.cancel_s, 8);
    assert_eq!(s.fall_cancel_s, 45);
}

#[test]
fn debug_output_never_shows_the_secret() {
    let text = format!("{:?}", sample(true));
    assert!(!text.contains("0f1e2d3c"), "{text}");
    assert!(text.contains("redacted"));
}
