//! The Zigbee2MQTT adapter on arbitrary payloads for the topics of mapped devices, a
//! bridge and unknown names: no panic, whatever the converter sends.
#![no_main]

use anxin_firmware::wire::DeviceId;
use anxin_gateway::ingest::zigbee2mqtt::{BRIDGE_KIND, ZigbeeAdapter, ZigbeeDevice, ZigbeeMap};
use anxin_gateway::telemetry::Metrics;
use libfuzzer_sys::fuzz_target;
use rumqttc::{Publish, QoS};

const TOPICS: [&str; 8] = [
    "zigbee2mqtt/door",
    "zigbee2mqtt/pir",
    "zigbee2mqtt/sos",
    "zigbee2mqtt/gas",
    "zigbee2mqtt/bridge/state",
    "zigbee2mqtt/pir/availability",
    "zigbee2mqtt/unknown",
    "zigbee2mqtt/bridge/devices",
];

fn adapter() -> ZigbeeAdapter {
    let map = ZigbeeMap::default();
    let mut entries: Vec<ZigbeeDevice> = [
        ("fz-door", "door", "door"),
        ("fz-pir", "pir", "motion"),
        ("fz-sos", "sos", "help"),
        ("fz-gas", "gas", "gas"),
    ]
    .iter()
    .map(|(id, name, kind)| ZigbeeDevice {
        device_id: DeviceId::new(id).expect("valid id"),
        name: (*name).into(),
        kind: (*kind).into(),
        bridge: None,
        seq_floor: 0,
        last: Vec::new(),
    })
    .collect();
    entries.push(ZigbeeDevice {
        device_id: DeviceId::new("fz-bridge").expect("valid id"),
        name: String::new(),
        kind: BRIDGE_KIND.into(),
        bridge: None,
        seq_floor: 0,
        last: Vec::new(),
    });
    map.set(entries);
    ZigbeeAdapter::new("zigbee2mqtt", 3600, map, &Metrics::new())
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // One adapter per input, fed the payload twice (the second time as a redelivery), so
    // that change detection runs on state the first message left.
    let mut a = adapter();
    let topic = TOPICS[usize::from(first) % TOPICS.len()];
    let mut p = Publish::new(topic, QoS::AtLeastOnce, rest.to_vec());
    let _ = a.translate(&p, 1_767_225_600_000);
    p.dup = true;
    let _ = a.translate(&p, 1_767_225_601_000);
});
