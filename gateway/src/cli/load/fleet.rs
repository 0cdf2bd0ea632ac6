//! The virtual devices: how households and devices are named and numbered, what each
//! device has issued and what the gateway has acknowledged (for the reconciliation by
//! sequence number), and the wire messages they send, encoded without allocating.
//!
//! Household `n` (from 0) is `b0000123`; its devices are `b0000123-door`, `-pir1`,
//! `-help`, `-pir2`, `-gas` (the first `per_household` of them). Device index =
//! household × per_household + slot, so a device id is parsed back to its index without
//! a lookup table.

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};

/// Slot names, kinds and rooms, in slot order.
pub const SLOTS: [(&str, &str, &str); 5] = [
    ("door", "door", "entrance"),
    ("pir1", "motion", "living"),
    ("help", "help", "bedroom"),
    ("pir2", "motion", "bedroom"),
    ("gas", "gas", "kitchen"),
];

/// The slot of the help button.
pub const HELP_SLOT: usize = 2;

/// The topic prefix of every device.
pub const PREFIX: &[u8] = b"anxin/v1/dev/";

/// The population's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Households.
    pub households: usize,
    /// Devices per household (1–5).
    pub per_household: usize,
}

impl Layout {
    /// Number of devices.
    pub fn devices(&self) -> usize {
        self.households * self.per_household
    }

    /// Household id of household `h`.
    pub fn household_id(h: usize) -> String {
        format!("b{h:07}")
    }

    /// Writes the device id of `idx` into `out` (16 bytes at most).
    pub fn device_id_into(&self, idx: usize, out: &mut Vec<u8>) {
        let (h, slot) = (idx / self.per_household, idx % self.per_household);
        let _ = write!(out, "b{h:07}-{}", SLOTS[slot].0);
    }

    /// The device id of `idx`.
    pub fn device_id(&self, idx: usize) -> String {
        let mut v = Vec::with_capacity(16);
        self.device_id_into(idx, &mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    /// The index of a device id, if it is one of this layout's.
    pub fn index_of(&self, id: &[u8]) -> Option<usize> {
        if id.len() < 10 || id[0] != b'b' || id[8] != b'-' {
            return None;
        }
        let mut h = 0usize;
        for &d in &id[1..8] {
            if !d.is_ascii_digit() {
                return None;
            }
            h = h * 10 + usize::from(d - b'0');
        }
        let slot = SLOTS
            .iter()
            .position(|(name, _, _)| name.as_bytes() == &id[9..])?;
        (h < self.households && slot < self.per_household).then_some(h * self.per_household + slot)
    }

    /// The device index from a downlink topic `anxin/v1/dev/{id}/down/…`.
    pub fn index_of_topic(&self, topic: &[u8]) -> Option<usize> {
        let rest = topic.strip_prefix(PREFIX)?;
        let end = rest.iter().position(|b| *b == b'/')?;
        self.index_of(&rest[..end])
    }

    /// Slots that send door or motion events.
    pub fn event_slots(&self) -> Vec<usize> {
        [0, 1, 3]
            .into_iter()
            .filter(|s| *s < self.per_household)
            .collect()
    }
}

/// Per-device counters shared by the senders and the ack listener.
pub struct Fleet {
    /// The layout.
    pub layout: Layout,
    /// Boot epoch of every device in this run.
    pub boot: u32,
    /// Last event seq issued.
    issued: Vec<AtomicU32>,
    /// Highest `upto` acknowledged by the gateway.
    acked: Vec<AtomicU32>,
    /// When the latest event was sent (µs since the run's start + 1; 0: none pending).
    sent_us: Vec<AtomicU32>,
}

impl Fleet {
    /// Every device at seq 0.
    pub fn new(layout: Layout, boot: u32) -> Fleet {
        let n = layout.devices();
        let zeros = || (0..n).map(|_| AtomicU32::new(0)).collect::<Vec<_>>();
        Fleet {
            layout,
            boot,
            issued: zeros(),
            acked: zeros(),
            sent_us: zeros(),
        }
    }

    /// Issues the next event seq of `idx`, sent at `now_us`.
    pub fn issue(&self, idx: usize, now_us: u32) -> u32 {
        let seq = self.issued[idx].fetch_add(1, Ordering::Relaxed) + 1;
        self.sent_us[idx].store(now_us.max(1), Ordering::Relaxed);
        seq
    }

    /// Last event seq issued by `idx`.
    pub fn issued(&self, idx: usize) -> u32 {
        self.issued[idx].load(Ordering::Relaxed)
    }

    /// Highest acknowledged seq of `idx`.
    pub fn acked(&self, idx: usize) -> u32 {
        self.acked[idx].load(Ordering::Relaxed)
    }

    /// Records an ack; returns the commit latency (µs) of the device's latest event
    /// when this ack is the first to cover it.
    pub fn ack(&self, idx: usize, upto: u32, now_us: u32) -> Option<u32> {
        self.acked[idx].fetch_max(upto, Ordering::Relaxed);
        if upto >= self.issued[idx].load(Ordering::Relaxed) {
            let sent = self.sent_us[idx].swap(0, Ordering::Relaxed);
            if sent != 0 {
                return Some(now_us.saturating_sub(sent));
            }
        }
        None
    }

    /// (issued, acknowledged) over all devices.
    pub fn totals(&self) -> (u64, u64) {
        let mut i = 0u64;
        let mut a = 0u64;
        for k in 0..self.issued.len() {
            let is = self.issued[k].load(Ordering::Relaxed);
            i += u64::from(is);
            a += u64::from(self.acked[k].load(Ordering::Relaxed).min(is));
        }
        (i, a)
    }

    /// Devices with issued events not acknowledged yet.
    pub fn unacked(&self) -> Vec<usize> {
        (0..self.issued.len())
            .filter(|&k| self.acked(k) < self.issued(k))
            .collect()
    }
}

/// An uplink message of a virtual device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Door contact.
    Door(bool),
    /// Motion.
    Motion,
    /// Help button pressed.
    HelpPress,
}

/// Appends the payload of an event.
pub fn event(out: &mut Vec<u8>, boot: u32, seq: u32, oldest: u32, ts: u64, body: Body) {
    let _ = write!(
        out,
        r#"{{"v":1,"boot":{boot},"seq":{seq},"oldest":{oldest},"ts":{ts},"clk":"unix","ev":"#
    );
    out.extend_from_slice(match body {
        Body::Door(true) => br#"{"k":"door","open":true}}"#,
        Body::Door(false) => br#"{"k":"door","open":false}}"#,
        Body::Motion => br#"{"k":"motion"}}"#,
        Body::HelpPress => br#"{"k":"help","act":"press"}}"#,
    });
}

/// Appends the payload of a heartbeat (battery powered, 300 s interval).
pub fn heartbeat(out: &mut Vec<u8>, boot: u32, seq: u32, ts: u64, uptime_s: u32, outbox: u16) {
    let _ = write!(
        out,
        r#"{{"v":1,"boot":{boot},"seq":{seq},"ts":{ts},"clk":"unix","battery_pct":87,"battery_mv":2950,"rssi_dbm":-67,"fw":"1.0.0","uptime_s":{uptime_s},"outbox":{outbox},"dropped":0,"interval_s":300}}"#
    );
}

/// Appends the payload of a status message.
pub fn status(out: &mut Vec<u8>, boot: u32, seq: u32, ts: u64, online: bool) {
    if online {
        let _ = write!(
            out,
            r#"{{"v":1,"boot":{boot},"seq":{seq},"ts":{ts},"clk":"unix","state":"online","fw":"1.0.0"}}"#
        );
    } else {
        let _ = write!(
            out,
            r#"{{"v":1,"boot":{boot},"seq":{seq},"ts":{ts},"clk":"unix","state":"offline"}}"#
        );
    }
}

/// Reads the `upto` (and `boot`) of an ack payload `{"v":1,"boot":B,"upto":U}`.
pub fn parse_ack(payload: &[u8]) -> Option<(u32, u32)> {
    let num = |key: &[u8]| -> Option<u32> {
        let at = payload.windows(key.len()).position(|w| w == key)? + key.len();
        let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit());
        let mut n = 0u32;
        let mut any = false;
        for d in digits {
            n = n.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
            any = true;
        }
        any.then_some(n)
    };
    Some((num(b"\"boot\":")?, num(b"\"upto\":")?))
}

#[cfg(test)]
mod tests {
    use anxin_firmware::wire::{self, Clock, Event, EventBody, Heartbeat, HelpAction, Status};

    use super::*;

    fn encoded<T: serde::Serialize>(m: &T) -> Vec<u8> {
        let mut buf = [0u8; wire::MAX_PAYLOAD];
        let n = wire::encode(m, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn the_fast_encoders_write_what_the_wire_module_writes() {
        let mut out = Vec::new();
        event(&mut out, 3, 20, 15, 1_732_435_200_123, Body::HelpPress);
        let e = Event::new(
            3,
            20,
            15,
            1_732_435_200_123,
            Clock::Unix,
            EventBody::Help {
                act: HelpAction::Press,
            },
        );
        assert_eq!(out, encoded(&e));
        for (body, ev) in [
            (Body::Door(true), EventBody::Door { open: true }),
            (Body::Door(false), EventBody::Door { open: false }),
            (Body::Motion, EventBody::Motion),
        ] {
            out.clear();
            event(&mut out, 1, 2, 1, 1_732_435_200_000, body);
            let e = Event::new(1, 2, 1, 1_732_435_200_000, Clock::Unix, ev);
            assert_eq!(out, encoded(&e));
        }
        out.clear();
        heartbeat(&mut out, 3, 17, 1_732_435_200_123, 86_400, 2);
        let hb: Heartbeat = wire::decode_heartbeat(&out).unwrap();
        assert_eq!(out, encoded(&hb));
        assert_eq!((hb.seq, hb.outbox, hb.interval_s), (17, 2, 300));
        for online in [true, false] {
            out.clear();
            status(&mut out, 3, 17, 1_732_435_200_123, online);
            let s: Status = wire::decode_status(&out).unwrap();
            assert_eq!(out, encoded(&s));
        }
    }

    #[test]
    fn device_ids_map_back_to_their_index() {
        let l = Layout {
            households: 1_000_000,
            per_household: 5,
        };
        for idx in [0, 1, 2, 4, 5, 4_999_999] {
            let id = l.device_id(idx);
            assert!(wire::DeviceId::new(&id).is_ok(), "{id}");
            assert_eq!(l.index_of(id.as_bytes()), Some(idx), "{id}");
        }
        assert_eq!(
            l.index_of_topic(b"anxin/v1/dev/b0000001-help/down/ack"),
            Some(7)
        );
        assert_eq!(l.index_of(b"b1000000-door"), None);
        assert_eq!(l.index_of(b"h0001-door"), None);
    }

    #[test]
    fn an_ack_payload_gives_its_boot_and_mark() {
        let mut buf = [0u8; 64];
        let n = wire::encode(&wire::Ack::new(7, 123_456), &mut buf).unwrap();
        assert_eq!(parse_ack(&buf[..n]), Some((7, 123_456)));
        assert_eq!(parse_ack(b"{}"), None);
    }

    #[test]
    fn an_ack_covering_the_latest_event_gives_one_latency_sample() {
        let f = Fleet::new(
            Layout {
                households: 1,
                per_household: 1,
            },
            1,
        );
        f.issue(0, 100);
        f.issue(0, 200);
        assert_eq!(f.ack(0, 1, 300), None);
        assert_eq!(f.ack(0, 2, 450), Some(250));
        assert_eq!(f.ack(0, 2, 500), None);
        assert_eq!(f.totals(), (2, 2));
    }
}
