//! Topic and payload → a validated message of a registered device, or a reject reason.

use anxin_firmware::wire::{self, Channel, DeviceId, Event, Heartbeat, Status};

use super::RejectReason;

/// A decoded, validated uplink message.
#[derive(Debug, Clone)]
pub enum Decoded {
    /// Sensor event.
    Event(Event),
    /// Heartbeat.
    Heartbeat(Box<Heartbeat>),
    /// Availability.
    Status(Status),
}

/// Decodes `payload` received on `topic`. Checks the size before anything else, then the
/// topic, then the JSON shape and ranges. `now_ms` and `max_skew_ms` bound `unix` clocks
/// from above (a device from the future is a broken clock, not an event to store).
pub fn decode(
    topic: &str,
    payload: &[u8],
    now_ms: i64,
    max_skew_ms: i64,
) -> Result<(DeviceId, Decoded), RejectReason> {
    if payload.len() > wire::MAX_PAYLOAD {
        return Err(RejectReason::oversized);
    }
    let (device, channel) = wire::topic::parse(topic).map_err(RejectReason::from_wire)?;
    let (decoded, ts, clk) = match channel {
        Channel::Event => {
            let e = wire::decode_event(payload).map_err(RejectReason::from_wire)?;
            let (ts, clk) = (e.ts, e.clk);
            (Decoded::Event(e), ts, clk)
        }
        Channel::Heartbeat => {
            let h = wire::decode_heartbeat(payload).map_err(RejectReason::from_wire)?;
            let (ts, clk) = (h.ts, h.clk);
            (Decoded::Heartbeat(Box::new(h)), ts, clk)
        }
        Channel::Status => {
            let s = wire::decode_status(payload).map_err(RejectReason::from_wire)?;
            let (ts, clk) = (s.ts, s.clk);
            (Decoded::Status(s), ts, clk)
        }
        Channel::Command | Channel::Ack => return Err(RejectReason::wrong_topic),
    };
    if clk == wire::Clock::Unix && ts > (now_ms.saturating_add(max_skew_ms)).max(0) as u64 {
        return Err(RejectReason::out_of_range);
    }
    Ok((device, decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_732_435_200_000;

    #[test]
    fn a_valid_event_decodes() {
        let p = br#"{"v":1,"boot":1,"seq":1,"oldest":1,"ts":1732435200000,"clk":"unix","ev":{"k":"motion"}}"#;
        let (d, m) = decode("anxin/v1/dev/h1-pir/up/event", p, NOW, 60_000).unwrap();
        assert_eq!(d.as_str(), "h1-pir");
        assert!(matches!(m, Decoded::Event(_)));
    }

    #[test]
    fn each_kind_of_bad_input_has_its_reason() {
        let ok = br#"{"v":1,"boot":1,"seq":1,"oldest":1,"ts":1732435200000,"clk":"unix","ev":{"k":"motion"}}"#;
        let future = br#"{"v":1,"boot":1,"seq":1,"oldest":1,"ts":1832435200000,"clk":"unix","ev":{"k":"motion"}}"#;
        let big = vec![b' '; 600];
        let cases: [(&str, &[u8], RejectReason); 6] = [
            ("anxin/v1/dev/x/up/event", &big, RejectReason::oversized),
            ("anxin/v1/dev/x/up/event", b"{oops", RejectReason::malformed),
            (
                "anxin/v1/dev/x/up/event",
                br#"{"v":9}"#,
                RejectReason::wrong_version,
            ),
            (
                "anxin/v1/dev/x/up/event",
                future,
                RejectReason::out_of_range,
            ),
            ("anxin/v1/dev/x/down/cmd", ok, RejectReason::wrong_topic),
            ("anxin/v1/dev/x/up/nope", ok, RejectReason::wrong_topic),
        ];
        for (t, p, r) in cases {
            assert_eq!(decode(t, p, NOW, 60_000).unwrap_err(), r, "{t}");
        }
    }

    #[test]
    fn invalid_utf8_inside_an_unknown_member_is_malformed() {
        let mut p = br#"{"v":1,"boot":1,"seq":1,"oldest":1,"ts":1732435200000,"clk":"unix","ev":{"k":"motion"},"note":"xx"}"#.to_vec();
        let at = p.len() - 3;
        p[at] = 0xc3; // a lead byte without its continuation
        for t in [
            "anxin/v1/dev/x/up/event",
            "anxin/v1/dev/x/up/hb",
            "anxin/v1/dev/x/up/status",
        ] {
            assert_eq!(
                decode(t, &p, NOW, 60_000).unwrap_err(),
                RejectReason::malformed,
                "{t}"
            );
        }
    }
}
