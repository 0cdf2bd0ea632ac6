//! The provisioning blob parser on arbitrary bytes: no panic, and a blob that parses
//! encodes back to bytes that parse to the same record. Inputs whose first byte is even
//! get a correct CRC over the rest, so that mutations reach the field checks behind it.
#![no_main]

use anxin_firmware::provision::{BLOB_LEN, Provision};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut blob = rest.to_vec();
    if mode % 2 == 0 && blob.len() == BLOB_LEN {
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&blob[..BLOB_LEN - 4]);
        blob[BLOB_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    if let Ok(p) = Provision::decode(&blob) {
        let bytes = p.to_bytes().expect("a parsed blob encodes");
        assert_eq!(Provision::decode(&bytes).expect("re-parses"), p);
    }
});
