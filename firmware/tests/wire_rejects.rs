//! Every way a payload can be wrong gets its own reason, never a panic.
#![cfg(feature = "std")]

use anxin_firmware::wire::{self, WireError};

fn ev(json: &str) -> Result<wire::Event, WireError> {
    wire::decode_event(json.as_bytes())
}

#[test]
fn malformed_json_is_malformed() {
    for p in [
        "",
        "{",
        "null",
        "[]",
        "{\"v\":1}",
        "not json",
        "{\"v\":1,\"boot\":1,\"seq\":1,\"oldest\":1,\"ts\":5,\"clk\":\"up\",\"ev\":{\"k\":\"teleport\"}}",
    ] {
        assert_eq!(ev(p), Err(WireError::Malformed), "{p}");
    }
}

#[test]
fn other_protocol_versions_are_named_as_such() {
    let p = r#"{"v":2,"boot":1,"seq":1,"oldest":1,"ts":5,"clk":"up","ev":{"k":"motion"}}"#;
    assert_eq!(ev(p), Err(WireError::UnsupportedVersion { found: 2 }));
    let p = r#"{"v":7,"something":"else"}"#;
    assert_eq!(ev(p), Err(WireError::UnsupportedVersion { found: 7 }));
}

#[test]
fn oversized_payloads_are_rejected_unread() {
    let p = format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(wire::MAX_PAYLOAD));
    assert!(matches!(ev(&p), Err(WireError::Oversized { .. })));
}

#[test]
fn out_of_range_values_name_the_field() {
    let cases = [
        (
            r#"{"v":1,"boot":0,"seq":1,"oldest":1,"ts":5,"clk":"up","ev":{"k":"motion"}}"#,
            "boot",
        ),
        (
            r#"{"v":1,"boot":1,"seq":0,"oldest":0,"ts":5,"clk":"up","ev":{"k":"motion"}}"#,
            "seq",
        ),
        (
            r#"{"v":1,"boot":1,"seq":3,"oldest":4,"ts":5,"clk":"up","ev":{"k":"motion"}}"#,
            "oldest",
        ),
        (
            r#"{"v":1,"boot":1,"seq":3,"oldest":1,"ts":5,"clk":"unix","ev":{"k":"motion"}}"#,
            "ts",
        ),
        (
            r#"{"v":1,"boot":1,"seq":3,"oldest":1,"ts":5,"clk":"up","ev":{"k":"gas","alarm":true,"ppm":2000000}}"#,
            "ppm",
        ),
        (
            r#"{"v":1,"boot":1,"seq":3,"oldest":1,"ts":5,"clk":"up","ev":{"k":"motion"},"mac":"XYZ"}"#,
            "mac",
        ),
    ];
    for (p, field) in cases {
        assert_eq!(ev(p), Err(WireError::OutOfRange { field }), "{p}");
    }
    let hb = r#"{"v":1,"boot":1,"seq":0,"ts":5,"clk":"up","battery_pct":140,"fw":"1","uptime_s":1,"outbox":0,"dropped":0,"interval_s":300}"#;
    assert_eq!(
        wire::decode_heartbeat(hb.as_bytes()),
        Err(WireError::OutOfRange {
            field: "battery_pct"
        })
    );
    let hb = r#"{"v":1,"boot":1,"seq":0,"ts":5,"clk":"up","fw":"1","uptime_s":1,"outbox":0,"dropped":0,"interval_s":1}"#;
    assert_eq!(
        wire::decode_heartbeat(hb.as_bytes()),
        Err(WireError::OutOfRange {
            field: "interval_s"
        })
    );
}

#[test]
fn negative_or_overflowing_numbers_are_malformed_not_wrapped() {
    for p in [
        r#"{"v":1,"boot":-1,"seq":1,"oldest":1,"ts":5,"clk":"up","ev":{"k":"motion"}}"#,
        r#"{"v":1,"boot":1,"seq":4294967296,"oldest":1,"ts":5,"clk":"up","ev":{"k":"motion"}}"#,
    ] {
        assert_eq!(ev(p), Err(WireError::Malformed), "{p}");
    }
}

#[test]
fn unknown_members_are_ignored_for_forward_compatibility() {
    let p = r#"{"v":1,"boot":1,"seq":1,"oldest":1,"ts":5,"clk":"up","ev":{"k":"motion","extra":1},"later":true}"#;
    assert!(ev(p).is_ok());
}

#[test]
fn commands_missing_their_members_are_rejected_on_the_device() {
    for (p, field) in [
        (r#"{"v":1,"id":1,"cmd":"alert_received"}"#, "cause"),
        (r#"{"v":1,"id":1,"cmd":"install_test"}"#, "on"),
        (r#"{"v":1,"id":1,"cmd":"config"}"#, "config"),
        (
            r#"{"v":1,"id":1,"cmd":"config","config":{"gas_alarm_ppm":100,"gas_clear_ppm":200}}"#,
            "gas_clear_ppm",
        ),
    ] {
        assert_eq!(
            wire::codec::decode_command_no_std(p.as_bytes()),
            Err(WireError::OutOfRange { field }),
            "{p}"
        );
    }
    assert_eq!(
        wire::codec::decode_command_no_std(b"{\"v\":1,\"id\":1,\"cmd\":\"selfdestruct\"}"),
        Err(WireError::Malformed)
    );
}
