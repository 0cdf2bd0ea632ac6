//! Zigbee2MQTT devices: their JSON state messages under a configurable base topic
//! (default `zigbee2mqtt`), translated into the protocol's own messages so that they
//! take the same path as Anxin devices (registry check, journal, de-duplication,
//! observations for detection and history).
//!
//! **Mapping.** A Zigbee device is registered like any device (`anxin device register
//! --kind door --zigbee 0x00158d0007ef997c …`); its `zigbee_name` is the topic suffix
//! after the base topic: the IEEE address or whatever friendly name the installer typed,
//! so devices are mapped by configuration, never by the topic's shape. A Zigbee2MQTT
//! bridge is registered with kind `zigbee_bridge`; its `zigbee_name` is its own path
//! under the base topic (empty for a bridge whose `base_topic` is the base topic itself).
//! A device belongs to the bridge with the longest path that prefixes its name.
//!
//! **Translation** (payload members; any other member is ignored, never rejected):
//! - `contact` (`true` = **closed**): a door event `open = !contact` when it changed
//!   (state re-publishes repeat every member; a battery report is not a door opening);
//! - `occupancy: true`: a motion event every time (repeated `true` without `false` is
//!   motion going on); `occupancy: false` is Zigbee2MQTT's `occupancy_timeout`, not the
//!   sensor: no event;
//! - `action: "emergency"`: a help press; `null`, `""` (state refresh, reset) and other
//!   actions are not presses;
//! - `gas`: a gas event when it changed (`ppm` 0: these sensors report no reading);
//! - `tamper`: a tamper event when it changed (an initial `false` is just the state);
//! - `battery` (1–100; a 0 is not believed: devices report it while transmitting),
//!   `voltage` (mV), `temperature` (°C), `battery_low`: device health, as a heartbeat;
//!   `battery_low: true` reports the battery as at most [`BATTERY_LOW_PCT`] % so that
//!   the usual low-battery rule applies;
//! - `linkquality`: ignored. It is an LQI (0–255), not an RSSI in dBm, and it reads 0 on
//!   messages that were delivered: not a liveness signal;
//! - **every** message from a device is its liveness: it is followed by a heartbeat with
//!   the configured check-in interval (`liveness_s`), so the device is called offline
//!   only after two of those intervals without any message.
//!
//! **Availability.** `<base>/<bridge>/bridge/state` (`online`/`offline`, plain or
//! `{"state":…}`, retained, the bridge's last will) becomes an availability message for
//! the bridge and for **every device of that bridge**: a dead bridge marks its devices
//! offline, so detection sees a home it cannot see (no inactivity claimed), and
//! provisioning opens one technician work order for the bridge. `<name>/availability`
//! is the device's own availability. Other `bridge/…` topics and `…/set`, `…/get` are
//! not device data and are ignored (counted).
//!
//! **Exactly once.** Zigbee messages carry no sequence number, so the gateway assigns
//! one: boot epoch [`ZIGBEE_BOOT`] and the next sequence number of the device (restored
//! from the journal), `oldest = seq`. A message is translated once, when it is taken
//! from the MQTT session; its events enter the journal in the same group commit that
//! precedes its PUBACK. A QoS 1 **redelivery** (MQTT DUP flag set: the gateway's ack was
//! lost) whose event equals the device's last journalled event of that kind within
//! [`REDELIVERY_WINDOW_MS`] is given that event's (boot, seq) again, and the journal's
//! (device, boot, seq) key stores it once; state-change events are not re-emitted at
//! all, since the state did not change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anxin_firmware::wire::{
    self, Availability, Clock, DeviceId, Event, EventBody, Heartbeat, HelpAction, Status,
};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rumqttc::Publish;
use serde_json::{Map, Value};
use tracing::{debug, warn};

use super::RejectReason;
use super::decode::Decoded;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// Boot epoch of every gateway-numbered Zigbee event.
pub const ZIGBEE_BOOT: u32 = 1;
/// Device kind of a Zigbee2MQTT bridge.
pub const BRIDGE_KIND: &str = "zigbee_bridge";
/// A redelivered message whose event equals the last one of its kind within this window
/// is that event again.
pub const REDELIVERY_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Battery reported for `battery_low: true` when the device gives no lower percentage.
pub const BATTERY_LOW_PCT: u8 = 10;
/// Largest Zigbee2MQTT payload read (state messages with `update` objects exceed the
/// protocol's 512 bytes).
pub const MAX_PAYLOAD: usize = 4096;
/// Firmware version shown for Zigbee devices (their own is not in the state messages).
pub const FW: &str = "zigbee";

/// How many recent events per device are read back to restore state.
const RESTORE_EVENTS: i64 = 50;

/// A mapped Zigbee device (or bridge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZigbeeDevice {
    /// The registered device.
    pub device_id: DeviceId,
    /// Topic suffix after the base topic (friendly name or IEEE address); for a bridge,
    /// its path ("" for the base topic itself).
    pub name: String,
    /// Device kind.
    pub kind: String,
    /// The bridge it belongs to.
    pub bridge: Option<DeviceId>,
    /// Highest journalled sequence number of boot [`ZIGBEE_BOOT`] when loaded.
    pub seq_floor: u32,
    /// Last journalled event of each kind when loaded: (body, seq, received ms).
    pub last: Vec<(EventBody, u32, i64)>,
}

#[derive(Debug, Default)]
struct MapInner {
    devices: HashMap<String, ZigbeeDevice>,
    /// Bridges by path.
    bridges: HashMap<String, ZigbeeDevice>,
}

/// Zigbee names → registered devices. Shared between the adapter (in the committer)
/// and provisioning, which reloads it after registrations. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ZigbeeMap(Arc<RwLock<MapInner>>);

impl ZigbeeMap {
    /// Loads the mapping from the store.
    pub async fn load(store: &Store) -> Result<ZigbeeMap, StoreError> {
        let m = ZigbeeMap::default();
        m.reload(store).await?;
        Ok(m)
    }

    /// Replaces the mapping with the store's (`device_provision.zigbee_name`).
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let rows = store.zigbee_names().await?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            let Ok(device_id) = DeviceId::new(&r.device_id) else {
                warn!(device_id = %r.device_id, "registered Zigbee device has an invalid id; ignored");
                continue;
            };
            let (seq_floor, last) = if r.kind == BRIDGE_KIND {
                (0, Vec::new())
            } else {
                recent_events(store, &r.device_id).await?
            };
            entries.push(ZigbeeDevice {
                device_id,
                name: r.zigbee_name,
                kind: r.kind,
                bridge: None,
                seq_floor,
                last,
            });
        }
        self.set(entries);
        Ok(())
    }

    /// Replaces the mapping (bridges are assigned here).
    pub fn set(&self, entries: Vec<ZigbeeDevice>) {
        let mut inner = MapInner::default();
        for e in entries {
            if e.kind == BRIDGE_KIND {
                inner.bridges.insert(e.name.clone(), e);
            } else {
                inner.devices.insert(e.name.clone(), e);
            }
        }
        let bridges: Vec<(String, DeviceId)> = inner
            .bridges
            .values()
            .map(|b| (b.name.clone(), b.device_id.clone()))
            .collect();
        for d in inner.devices.values_mut() {
            d.bridge = bridges
                .iter()
                .filter(|(path, _)| {
                    path.is_empty()
                        || d.name
                            .strip_prefix(path.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                })
                .max_by_key(|(path, _)| path.len())
                .map(|(_, id)| id.clone());
        }
        if let Ok(mut w) = self.0.write() {
            *w = inner;
        }
    }

    /// The device mapped to `name`.
    pub fn device(&self, name: &str) -> Option<ZigbeeDevice> {
        self.0.read().ok()?.devices.get(name).cloned()
    }

    /// The bridge at `path`.
    pub fn bridge(&self, path: &str) -> Option<ZigbeeDevice> {
        self.0.read().ok()?.bridges.get(path).cloned()
    }

    /// The devices of `bridge`.
    pub fn devices_of(&self, bridge: &DeviceId) -> Vec<ZigbeeDevice> {
        self.0
            .read()
            .map(|m| {
                let mut v: Vec<ZigbeeDevice> = m
                    .devices
                    .values()
                    .filter(|d| d.bridge.as_ref() == Some(bridge))
                    .cloned()
                    .collect();
                v.sort_by(|a, b| a.device_id.cmp(&b.device_id));
                v
            })
            .unwrap_or_default()
    }

    /// The bridge a device id belongs to, if it is a mapped Zigbee device.
    pub fn bridge_of(&self, device_id: &str) -> Option<DeviceId> {
        self.0.read().ok().and_then(|m| {
            m.devices
                .values()
                .find(|d| d.device_id.as_str() == device_id)
                .and_then(|d| d.bridge.clone())
        })
    }

    /// Whether `device_id` is a mapped Zigbee device or bridge.
    pub fn contains(&self, device_id: &str) -> bool {
        self.0.read().is_ok_and(|m| {
            m.devices
                .values()
                .chain(m.bridges.values())
                .any(|d| d.device_id.as_str() == device_id)
        })
    }
}

/// The highest seq of boot [`ZIGBEE_BOOT`] and the last event of each kind.
async fn recent_events(
    store: &Store,
    device_id: &str,
) -> Result<(u32, Vec<(EventBody, u32, i64)>), StoreError> {
    let rows = store
        .latest_events_of(device_id, i64::from(ZIGBEE_BOOT), RESTORE_EVENTS)
        .await?;
    let mut floor = 0u32;
    let mut last: Vec<(EventBody, u32, i64)> = Vec::new();
    for r in &rows {
        let seq = u32::try_from(r.seq).map_err(|_| StoreError::Corrupt("seq"))?;
        floor = floor.max(seq);
        let Ok(body) = serde_json::from_str::<EventBody>(&r.body) else {
            continue;
        };
        if last.iter().any(|(b, _, _)| b.kind() == body.kind()) {
            continue;
        }
        last.push((body, seq, r.received_ms));
    }
    Ok((floor, last))
}

/// What a Zigbee2MQTT message was, for `anxin_zigbee_messages_total{what}`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ZigbeeWhat {
    /// A device state message (with or without events).
    state,
    /// A bridge's availability.
    bridge_state,
    /// A device's availability.
    availability,
    /// A topic that carries no device data (`bridge/info`, `…/set`…).
    ignored_topic,
    /// A member with a value of the wrong type or range (the rest of the message is used).
    bad_member,
    /// A redelivered message recognised as an event already journalled.
    redelivered,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatLabels {
    what: ZigbeeWhat,
}

/// Per-device translation state.
#[derive(Debug, Default)]
struct DevState {
    seq: u32,
    contact: Option<bool>,
    tamper: Option<bool>,
    gas: Option<bool>,
    battery: Option<u8>,
    battery_mv: Option<u16>,
    /// Last event of each kind: (body, seq, received ms).
    last: Vec<(EventBody, u32, i64)>,
}

impl DevState {
    fn from_entry(e: &ZigbeeDevice) -> Self {
        let mut s = DevState {
            seq: e.seq_floor,
            last: e.last.clone(),
            ..DevState::default()
        };
        for (body, _, _) in &e.last {
            match *body {
                EventBody::Door { open } => s.contact = Some(!open),
                EventBody::Tamper { open } => s.tamper = Some(open),
                EventBody::Gas { alarm, .. } => s.gas = Some(alarm),
                _ => {}
            }
        }
        s
    }

    fn remember(&mut self, body: EventBody, seq: u32, at: i64) {
        self.last.retain(|(b, _, _)| b.kind() != body.kind());
        self.last.push((body, seq, at));
    }

    /// The seq of the journalled event `body` repeats, for a redelivered message.
    fn repeated(&self, body: &EventBody, at: i64) -> Option<u32> {
        self.last
            .iter()
            .find(|(b, _, t)| b == body && at - t <= REDELIVERY_WINDOW_MS)
            .map(|(_, seq, _)| *seq)
    }
}

/// Translates Zigbee2MQTT messages (lives in the committer task).
pub struct ZigbeeAdapter {
    prefix: String,
    liveness_s: u32,
    map: ZigbeeMap,
    state: HashMap<DeviceId, DevState>,
    counts: Family<WhatLabels, Counter>,
}

impl ZigbeeAdapter {
    /// An adapter for `base_topic` (e.g. `zigbee2mqtt`) whose devices check in at least
    /// every `liveness_s` seconds. Registers `anxin_zigbee_messages_total{what}`.
    pub fn new(base_topic: &str, liveness_s: u32, map: ZigbeeMap, metrics: &Metrics) -> Self {
        let counts = Family::<WhatLabels, Counter>::default();
        metrics.register(
            "anxin_zigbee_messages",
            "Zigbee2MQTT messages by what they were",
            counts.clone(),
        );
        ZigbeeAdapter {
            prefix: format!("{}/", base_topic.trim_end_matches('/')),
            liveness_s: liveness_s.clamp(
                *wire::heartbeat::INTERVAL_RANGE_S.start(),
                *wire::heartbeat::INTERVAL_RANGE_S.end(),
            ),
            map,
            state: HashMap::new(),
            counts,
        }
    }

    /// Whether `topic` is under the base topic.
    pub fn owns(&self, topic: &str) -> bool {
        topic.starts_with(&self.prefix)
    }

    fn count(&self, what: ZigbeeWhat) {
        self.counts.get_or_create(&WhatLabels { what }).inc();
    }

    /// Translates one message into protocol messages of registered devices (possibly
    /// none), or a reject reason.
    pub fn translate(
        &mut self,
        publish: &Publish,
        received_ms: i64,
    ) -> Result<Vec<(DeviceId, Decoded)>, RejectReason> {
        if publish.payload.len() > MAX_PAYLOAD {
            return Err(RejectReason::oversized);
        }
        let Some(suffix) = publish.topic.strip_prefix(&self.prefix) else {
            return Err(RejectReason::wrong_topic);
        };
        if let Some(device) = self.map.device(suffix) {
            return self.state_message(&device, &publish.payload, publish.dup, received_ms);
        }
        if let Some(path) = suffix.strip_suffix("bridge/state").and_then(|p| {
            if p.is_empty() {
                Some("")
            } else {
                p.strip_suffix('/')
            }
        }) {
            let Some(bridge) = self.map.bridge(path) else {
                return Err(RejectReason::unknown_device);
            };
            let online = parse_availability(&publish.payload)?;
            self.count(ZigbeeWhat::bridge_state);
            let mut out = vec![(
                bridge.device_id.clone(),
                self.status(&bridge.device_id, online, received_ms),
            )];
            for d in self.map.devices_of(&bridge.device_id) {
                out.push((
                    d.device_id.clone(),
                    self.status(&d.device_id, online, received_ms),
                ));
            }
            return Ok(out);
        }
        if let Some(name) = suffix.strip_suffix("/availability")
            && let Some(device) = self.map.device(name)
        {
            let online = parse_availability(&publish.payload)?;
            self.count(ZigbeeWhat::availability);
            return Ok(vec![(
                device.device_id.clone(),
                self.status(&device.device_id, online, received_ms),
            )]);
        }
        let is_bridge_topic = suffix.starts_with("bridge/") || suffix.contains("/bridge/");
        let is_command = [("/set"), ("/get")]
            .iter()
            .any(|c| suffix.ends_with(c) || suffix.contains(&format!("{c}/")));
        if is_bridge_topic || is_command {
            self.count(ZigbeeWhat::ignored_topic);
            debug!(topic = %publish.topic, "Zigbee2MQTT topic without device data ignored");
            return Ok(Vec::new());
        }
        Err(RejectReason::unknown_device)
    }

    fn dev_state(&mut self, device: &ZigbeeDevice) -> &mut DevState {
        let s = self
            .state
            .entry(device.device_id.clone())
            .or_insert_with(|| DevState::from_entry(device));
        // A device re-mapped onto an id with a longer history never reuses a seq.
        s.seq = s.seq.max(device.seq_floor);
        s
    }

    fn status(&mut self, device: &DeviceId, online: bool, received_ms: i64) -> Decoded {
        let seq = self.state.get(device).map_or(0, |s| s.seq);
        Decoded::Status(Status {
            v: wire::PROTOCOL_VERSION,
            boot: ZIGBEE_BOOT,
            seq,
            ts: received_ms.max(0) as u64,
            clk: Clock::Unix,
            state: if online {
                Availability::Online
            } else {
                Availability::Offline
            },
            fw: None,
            mac: None,
        })
    }

    fn state_message(
        &mut self,
        device: &ZigbeeDevice,
        payload: &[u8],
        redelivered: bool,
        received_ms: i64,
    ) -> Result<Vec<(DeviceId, Decoded)>, RejectReason> {
        let obj: Map<String, Value> =
            serde_json::from_slice(payload).map_err(|_| RejectReason::malformed)?;
        self.count(ZigbeeWhat::state);
        let mut bad: Vec<&'static str> = Vec::new();
        let flag = |key: &'static str, bad: &mut Vec<&'static str>| match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                bad.push(key);
                None
            }
        };
        let contact = flag("contact", &mut bad);
        let occupancy = flag("occupancy", &mut bad);
        let gas = flag("gas", &mut bad);
        let tamper = flag("tamper", &mut bad);
        let battery_low = flag("battery_low", &mut bad);
        let emergency = match obj.get("action") {
            None | Some(Value::Null) => false,
            Some(Value::String(a)) => a == "emergency",
            Some(_) => {
                bad.push("action");
                false
            }
        };
        let number = |key: &'static str, bad: &mut Vec<&'static str>| match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => {
                bad.push(key);
                None
            }
        };
        let battery = match number("battery", &mut bad) {
            Some(b) if (1.0..=100.0).contains(&b) => Some(b.round() as u8),
            // 0: reported by devices that still transmit; not believed.
            Some(0.0) => None,
            Some(_) => {
                bad.push("battery");
                None
            }
            None => None,
        };
        let voltage = match number("voltage", &mut bad) {
            Some(v) if (1.0..=65_535.0).contains(&v) => Some(v.round() as u16),
            Some(_) => {
                bad.push("voltage");
                None
            }
            None => None,
        };
        let temp_dc = match number("temperature", &mut bad) {
            Some(t) if (-60.0..=100.0).contains(&t) => Some((t * 10.0).round() as i16),
            Some(_) => {
                bad.push("temperature");
                None
            }
            None => None,
        };
        if !bad.is_empty() {
            self.count(ZigbeeWhat::bad_member);
            warn!(device_id = %device.device_id, members = ?bad, "Zigbee2MQTT members of the wrong type or range ignored");
        }

        let liveness_s = self.liveness_s;
        let st = self.dev_state(device);
        let mut bodies: Vec<EventBody> = Vec::new();
        if let Some(c) = contact {
            if st.contact != Some(c) {
                bodies.push(EventBody::Door { open: !c });
            }
            st.contact = Some(c);
        }
        if let Some(t) = tamper {
            if st.tamper != Some(t) && (st.tamper.is_some() || t) {
                bodies.push(EventBody::Tamper { open: t });
            }
            st.tamper = Some(t);
        }
        if let Some(g) = gas {
            if st.gas != Some(g) && (st.gas.is_some() || g) {
                bodies.push(EventBody::Gas { alarm: g, ppm: 0 });
            }
            st.gas = Some(g);
        }
        if occupancy == Some(true) {
            bodies.push(EventBody::Motion);
        }
        if emergency {
            bodies.push(EventBody::Help {
                act: HelpAction::Press,
            });
        }
        if battery.is_some() {
            st.battery = battery;
        }
        if voltage.is_some() {
            st.battery_mv = voltage;
        }
        let ts = received_ms.max(0) as u64;
        let mut out = Vec::with_capacity(bodies.len() + 1);
        let mut repeated = 0;
        for body in bodies {
            let seq = match redelivered
                .then(|| st.repeated(&body, received_ms))
                .flatten()
            {
                Some(seq) => {
                    repeated += 1;
                    seq
                }
                None => {
                    st.seq += 1;
                    st.remember(body, st.seq, received_ms);
                    st.seq
                }
            };
            out.push((
                device.device_id.clone(),
                Decoded::Event(Event::new(ZIGBEE_BOOT, seq, seq, ts, Clock::Unix, body)),
            ));
        }
        let battery_pct = match (st.battery, battery_low) {
            (b, Some(true)) => Some(b.unwrap_or(BATTERY_LOW_PCT).min(BATTERY_LOW_PCT)),
            (b, _) => b,
        };
        let mut fw = anxin_firmware::device::FwVersion::new();
        let _ = fw.push_str(FW);
        let hb = Heartbeat {
            v: wire::PROTOCOL_VERSION,
            boot: ZIGBEE_BOOT,
            seq: st.seq,
            ts,
            clk: Clock::Unix,
            battery_pct,
            battery_mv: st.battery_mv,
            rssi_dbm: None,
            fw,
            uptime_s: 0,
            outbox: 0,
            dropped: 0,
            interval_s: liveness_s,
            temp_dc,
            cmd: None,
            mac: None,
        };
        out.push((device.device_id.clone(), Decoded::Heartbeat(Box::new(hb))));
        for _ in 0..repeated {
            self.count(ZigbeeWhat::redelivered);
        }
        Ok(out)
    }
}

/// `online` / `offline`, as plain text or `{"state": …}`.
fn parse_availability(payload: &[u8]) -> Result<bool, RejectReason> {
    let text = std::str::from_utf8(payload).map_err(|_| RejectReason::malformed)?;
    let state = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => o
            .get("state")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(RejectReason::malformed)?,
        Ok(Value::String(s)) => s,
        _ => text.trim().to_owned(),
    };
    match state.as_str() {
        "online" => Ok(true),
        "offline" => Ok(false),
        _ => Err(RejectReason::malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_is_read_as_plain_text_or_json() {
        assert_eq!(parse_availability(b"online"), Ok(true));
        assert_eq!(parse_availability(br#"{"state":"offline"}"#), Ok(false));
        assert_eq!(parse_availability(br#""online""#), Ok(true));
        assert_eq!(
            parse_availability(b"sleeping"),
            Err(RejectReason::malformed)
        );
    }

    #[test]
    fn a_device_belongs_to_the_bridge_with_the_longest_matching_path() {
        let id = |s: &str| DeviceId::new(s).unwrap();
        let entry = |d: &str, name: &str, kind: &str| ZigbeeDevice {
            device_id: id(d),
            name: name.into(),
            kind: kind.into(),
            bridge: None,
            seq_floor: 0,
            last: Vec::new(),
        };
        let m = ZigbeeMap::default();
        m.set(vec![
            entry("z2m-root", "", BRIDGE_KIND),
            entry("z2m-h1", "h1", BRIDGE_KIND),
            entry("h1-door", "h1/0x01", "door"),
            entry("h2-door", "0x02", "door"),
        ]);
        assert_eq!(m.bridge_of("h1-door"), Some(id("z2m-h1")));
        assert_eq!(m.bridge_of("h2-door"), Some(id("z2m-root")));
        assert_eq!(m.devices_of(&id("z2m-h1")).len(), 1);
        assert!(m.contains("z2m-h1"));
    }
}
