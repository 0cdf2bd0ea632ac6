//! Device health and work orders in a running gateway: a help button that "presses
//! itself" (presses cancelled at once) becomes a suspicious device, a device never heard
//! from and a low battery get work orders, and those close by themselves when the device
//! is back or has a new battery.

use crate::provision_support;

use std::time::Duration;

use anxin_firmware::wire::{
    self, Channel, Clock, DeviceId, Event, EventBody, Heartbeat, HelpAction,
};
use anxin_gateway::provision::{Registration, Secret};
use provision_support::{Client, eventually, household, start_production};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn help(seq: u32, act: HelpAction, ts: u64) -> Vec<u8> {
    let e = Event::new(3, seq, 1, ts, Clock::Unix, EventBody::Help { act });
    wire::codec::encode_vec(&e).unwrap().to_vec()
}

fn heartbeat(battery: u8) -> Vec<u8> {
    let mut fw = anxin_firmware::device::FwVersion::new();
    fw.push_str("1.2.0").unwrap();
    let hb = Heartbeat {
        v: 1,
        boot: 3,
        seq: 0,
        ts: now_ms(),
        clk: Clock::Unix,
        battery_pct: Some(battery),
        battery_mv: None,
        rssi_dbm: Some(-71),
        fw,
        uptime_s: 60,
        outbox: 0,
        dropped: 0,
        interval_s: 300,
        temp_dc: None,
        cmd: None,
        mac: None,
    };
    wire::codec::encode_vec(&hb).unwrap().to_vec()
}

fn topic(id: &str, ch: Channel) -> String {
    wire::topic::topic(&DeviceId::new(id).unwrap(), ch).to_string()
}

async fn register(gw: &anxin_gateway::app::Gateway, id: &str, kind: &str) -> Secret {
    gw.provision
        .register(
            Registration {
                device_id: Some(id.into()),
                kind: kind.into(),
                household_id: Some("h0003".into()),
                ..Registration::default()
            },
            "test",
        )
        .await
        .unwrap()
        .secret
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_pressing_button_a_silent_device_and_a_low_battery_get_work_orders() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let gw = start_production(dir.path(), |c| {
            // Sweeps are called by the test; a device is "never heard from" at once.
            c.provision.sweep_interval_s = 3600;
            c.provision.never_seen_after_s = 0;
        })
        .await;
        household(&gw, "h0003").await;
        let secret = register(&gw, "h0003-help", "help").await;
        let _door = register(&gw, "h0003-door", "door").await;
        let mut dev = Client::connect(
            gw.mqtt_addr,
            "h0003-help",
            Some(("h0003-help", secret.expose())),
        )
        .await
        .unwrap();
        let up = topic("h0003-help", Channel::Event);
        // Three presses, each cancelled a second later.
        let t = now_ms();
        for i in 0..3u32 {
            let at = t + u64::from(i) * 60_000;
            dev.publish(&up, &help(2 * i + 1, HelpAction::Press, at), false)
                .await;
            dev.publish(&up, &help(2 * i + 2, HelpAction::Cancel, at + 1200), false)
                .await;
        }
        dev.publish(
            &topic("h0003-help", Channel::Heartbeat),
            &heartbeat(9),
            false,
        )
        .await;
        eventually("three cancelled presses recorded", || async {
            let h = gw.provision.health("h0003-help").await.unwrap();
            h.false_presses == 3
        })
        .await;
        let h = gw.provision.health("h0003-help").await.unwrap();
        assert!(
            h.presses
                .iter()
                .all(|p| p.outcome == "cancelled" && p.cancel_after_ms == Some(1200))
        );
        assert_eq!(h.summary.battery_pct, Some(9));
        assert_eq!(h.summary.rssi_dbm, Some(-71));
        assert_eq!(h.summary.fw.as_deref(), Some("1.2.0"));

        let report = gw.provision.sweep().await.unwrap();
        let mut opened: Vec<(String, &str)> = report.opened.clone();
        opened.sort();
        assert_eq!(
            opened,
            vec![
                ("h0003-door".to_string(), "offline"),
                ("h0003-help".to_string(), "low_battery"),
                ("h0003-help".to_string(), "suspicious"),
            ]
        );
        assert_eq!(report.samples, 1);
        // A second sweep opens nothing new: one order per device and reason.
        assert!(gw.provision.sweep().await.unwrap().opened.is_empty());

        // A new battery closes its order by itself; the suspicious one waits for a
        // technician.
        dev.publish(
            &topic("h0003-help", Channel::Heartbeat),
            &heartbeat(95),
            false,
        )
        .await;
        eventually("the new battery reading", || async {
            gw.store
                .device_health()
                .await
                .unwrap()
                .iter()
                .any(|h| h.device_id == "h0003-help" && h.battery_pct == Some(95))
        })
        .await;
        let report = gw.provision.sweep().await.unwrap();
        assert_eq!(
            report.closed,
            vec![("h0003-help".to_string(), "low_battery")]
        );
        let open = gw.provision.work_orders(true, Some("h0003")).await.unwrap();
        let suspicious = open.iter().find(|o| o.reason == "suspicious").unwrap();
        let closed = gw
            .provision
            .close_work_order(suspicious.id, "技术员小王", "button replaced")
            .await
            .unwrap();
        assert_eq!(closed.closed_by.as_deref(), Some("技术员小王"));
        let h = gw.provision.health("h0003-help").await.unwrap();
        assert_eq!(h.work_orders.len(), 2);
        gw.shutdown().await;
    })
    .await
    .expect("test took too long");
}
