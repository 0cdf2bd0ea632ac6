//! Every decoder of the device wire protocol on arbitrary bytes: none may panic, and a
//! message that decodes re-encodes to bytes that decode to the same message.
#![no_main]

use anxin_firmware::wire::{self, codec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = wire::decode_event(data) {
        let bytes = codec::encode_vec(&e).expect("a decoded event encodes");
        assert_eq!(wire::decode_event(&bytes).expect("re-decodes"), e);
    }
    if let Ok(h) = wire::decode_heartbeat(data) {
        let bytes = codec::encode_vec(&h).expect("a decoded heartbeat encodes");
        assert!(wire::decode_heartbeat(&bytes).is_ok());
    }
    let _ = wire::decode_status(data);
    if let Ok(c) = wire::decode_command(data) {
        let bytes = codec::encode_vec(&c).expect("a decoded command encodes");
        assert_eq!(wire::decode_command(&bytes).expect("re-decodes"), c);
    }
    if let Ok(a) = wire::decode_ack(data) {
        let bytes = codec::encode_vec(&a).expect("a decoded ack encodes");
        assert_eq!(wire::decode_ack(&bytes).expect("re-decodes"), a);
    }
    // The device side's no_std decoders see what the gateway sends.
    let _ = codec::decode_command_no_std(data);
    let _ = codec::decode_ack_no_std(data);
    // Topics are untrusted too.
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = wire::topic::parse(s);
    }
});
