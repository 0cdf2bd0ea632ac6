//! The technician's routes of the API, over the provisioning service: a device
//! registered through the API gets its secret once and logs in to the embedded broker
//! (production mode) with it until it is revoked; its blob round-trips through the
//! firmware's own parser; an installation test started through the API checks a
//! device off live on the stream and raises no caseworker alert; work orders open and
//! close; caseworkers are refused, and a technician of another committee sees nothing.

use crate::api_common;
use crate::common;
use crate::provision_support;

use std::time::Duration;

use anxin_firmware::provision::Provision;
use anxin_firmware::wire::{self, Channel, Clock, DeviceId, Event, EventBody, HelpAction};
use anxin_gateway::api::AuthConfig;
use api_common::{Api, PASSWORD, Session};
use common::RawDevice;
use provision_support::Client;
use serde_json::{Value, json};

/// Every test ends by then.
const TEST: Duration = Duration::from_secs(90);

/// A gateway whose broker requires credentials, with the API and the fixture roster.
async fn production_api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let gw = provision_support::start_production(dir.path(), |_| {}).await;
    Api::on(gw, dir, AuthConfig::default()).await
}

fn event(boot: u32, seq: u32, body: EventBody) -> Vec<u8> {
    let e = Event::new(boot, seq, 1, common::now_ms(), Clock::Unix, body);
    wire::codec::encode_vec(&e).unwrap().to_vec()
}

async fn register_door(tech: &Session, id: &str) -> Value {
    let r = tech
        .post(
            "/devices",
            json!({"kind": "door", "household_id": "h1", "room": "entrance",
                   "serial": format!("SN-{id}"), "device_id": id}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json
}

/// A live stream being read, and the names of every event read from it.
struct Sse {
    resp: reqwest::Response,
    buf: String,
    seen: Vec<String>,
}

impl Sse {
    async fn open(s: &Session) -> Sse {
        let resp = s.builder("GET", "/stream", None).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let mut sse = Sse {
            resp,
            buf: String::new(),
            seen: vec![],
        };
        sse.next(|n, _| n == "hello").await.expect("hello");
        sse
    }

    /// Reads events until `want` matches one (bounded).
    async fn next(&mut self, want: impl Fn(&str, &Value) -> bool) -> Option<(String, Value)> {
        api_common::next_event_seen(
            &mut self.resp,
            &mut self.buf,
            &mut self.seen,
            want,
            common::WAIT,
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_registered_through_the_api_gets_its_secret_once_connects_with_it_and_is_cut_off_when_revoked()
 {
    tokio::time::timeout(TEST, async {
        let api = production_api().await;
        let tech = api.login("tech1").await;
        let r = tech
            .post(
                "/devices",
                json!({"kind": "door", "household_id": "h1", "room": "entrance",
                       "serial": "AX-TEST-0001"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            r.headers["cache-control"].to_str().unwrap(),
            "no-store",
            "an answer with a secret is not stored"
        );
        let id = r.json["device"]["id"].as_str().unwrap().to_string();
        let secret = r.json["secret"].as_str().unwrap().to_string();
        assert_eq!(secret.len(), 32, "128 bits as hex");
        assert_eq!(r.json["device"]["credentials"]["state"], "active");
        assert_eq!(r.json["device"]["household_address"], "示例路 1 号 101");

        // Never again: not in the device, the list, the work orders or the audit trail.
        for path in [
            format!("/devices/{id}"),
            "/devices?limit=500".to_string(),
            "/work-orders?open=false".to_string(),
            "/households/h1/devices".to_string(),
        ] {
            let r = tech.get(&path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            assert!(!r.text.contains(&secret), "{path} shows the secret");
        }
        let trail = api.gw.workflow.household_trail("h1").await.unwrap();
        assert!(
            trail
                .iter()
                .any(|e| e.action == "device.register" && e.actor == "user:tech1"),
            "the registration is audited"
        );
        assert!(
            !serde_json::to_string(&trail).unwrap().contains(&secret),
            "the audit trail holds no secret"
        );

        // The device logs in with it, and its events are taken.
        let mut dev = Client::connect(api.gw.mqtt_addr, &id, Some((&id, &secret)))
            .await
            .expect("the issued secret is accepted by the broker");
        let topic = wire::topic::topic(&DeviceId::new(&id).unwrap(), Channel::Event).to_string();
        dev.publish(&topic, &event(3, 1, EventBody::Door { open: true }), false)
            .await;
        provision_support::eventually("the device is seen", || {
            let tech = tech.clone();
            let path = format!("/devices/{id}");
            async move { tech.get(&path).await.json["device"]["last_seen_ms"].is_i64() }
        })
        .await;

        // Revoked: its connection is closed and it cannot log in again.
        let r = tech.post(&format!("/devices/{id}/revoke"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["credentials"]["state"], "revoked");
        assert!(
            r.json["problems"]
                .as_array()
                .unwrap()
                .contains(&json!("revoked"))
        );
        dev.closed()
            .await
            .expect("the broker closes the revoked device's session");
        assert!(
            Client::connect(api.gw.mqtt_addr, &id, Some((&id, &secret)))
                .await
                .is_err(),
            "a revoked secret is refused"
        );
        assert_eq!(
            api.audit_count("h1", "user:tech1", "device.revoke").await,
            1
        );

        // A new secret brings it back; the old one stays dead.
        let r = tech.post(&format!("/devices/{id}/rotate"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.headers["cache-control"].to_str().unwrap(), "no-store");
        let fresh = r.json["secret"].as_str().unwrap().to_string();
        assert_ne!(fresh, secret);
        assert_eq!(r.json["generation"], 2);
        Client::connect(api.gw.mqtt_addr, &id, Some((&id, &fresh)))
            .await
            .expect("the rotated secret is accepted");
        assert!(
            Client::connect(api.gw.mqtt_addr, &id, Some((&id, &secret)))
                .await
                .is_err()
        );

        // The same serial again is refused with the holder named.
        let r = tech
            .post(
                "/devices",
                json!({"kind": "door", "household_id": "h2", "serial": "AX-TEST-0001"}),
            )
            .await;
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(r.json["field"], "serial");
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_downloaded_through_the_api_parses_with_the_firmware_and_carries_the_current_secret()
{
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let tech = api.login("tech1").await;
        let reg = register_door(&tech, "h1-door-new").await;
        let secret = reg["secret"].as_str().unwrap().to_string();

        let r = tech
            .builder(
                "POST",
                "/devices/h1-door-new/blob",
                Some(json!({"secret": secret})),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains("h1-door-new.bin")
        );
        let bytes = r.bytes().await.unwrap();
        assert_eq!(bytes.len(), anxin_firmware::provision::BLOB_LEN);
        let p = Provision::decode(&bytes).expect("the firmware reads the blob");
        assert_eq!(p.device_id.as_str(), "h1-door-new");
        assert_eq!(p.secret.as_str(), secret);
        assert_eq!(p.broker_host.as_str(), "127.0.0.1");
        assert_eq!(p.broker_port, 1883);
        assert_eq!(p.ca_sha256, None);
        assert_eq!(api.audit_count("h1", "user:tech1", "device.blob").await, 1);

        // A wrong secret writes no blob.
        let r = tech
            .post(
                "/devices/h1-door-new/blob",
                json!({"secret": "00000000000000000000000000000000"}),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json["field"], "secret");

        // The flashing command names the tool, the offset and the file.
        let r = tech
            .get("/devices/h1-door-new/flash-command?target=esp32c3&port=/dev/ttyACM0")
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.json["command"],
            "espflash write-bin --port /dev/ttyACM0 0x3ff000 h1-door-new.bin"
        );
        let r = tech
            .get("/devices/h1-door-new/flash-command?target=avr")
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json["field"], "target");
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caseworkers_are_refused_and_a_technician_of_another_committee_sees_nothing_of_this_one() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let cw = api.login("cw1").await;
        for (m, path, body) in [
            ("GET", "/devices", None),
            ("GET", "/devices/h1-door", None),
            (
                "POST",
                "/devices",
                Some(json!({"kind": "door", "household_id": "h1"})),
            ),
            ("POST", "/devices/h1-door/rotate", Some(json!({}))),
            ("POST", "/devices/h1-door/revoke", Some(json!({}))),
            ("POST", "/devices/h1-door/blob", Some(json!({"secret": "x"}))),
            ("GET", "/devices/h1-door/flash-command?target=esp32c3", None),
            ("GET", "/work-orders", None),
            ("GET", "/installations", None),
            ("POST", "/installations/h1", Some(json!({}))),
        ] {
            let r = cw.send(m, path, body).await;
            assert_eq!(r.status, 403, "{m} {path}: {}", r.text);
            assert_eq!(r.code(), "forbidden");
        }

        // A technician of committee c2 (h4 only).
        let admin = api.login("admin1").await;
        let r = admin
            .post(
                "/users",
                json!({"id": "tech2", "name": "测试员 孙师傅", "role": "technician",
                       "committee_id": "c2", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let tech2 = api.login("tech2").await;
        let list = tech2.get("/devices?limit=500").await;
        let ids: Vec<&str> = list.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert!(ids.iter().all(|d| d.starts_with("h4-")), "{ids:?}");
        let hidden = tech2.get("/devices/h1-door").await;
        let missing = tech2.get("/devices/no-such-device").await;
        assert_eq!(hidden.status, 404);
        assert_eq!(hidden.json, missing.json, "hidden and missing look alike");
        for (m, path, body) in [
            ("POST", "/devices/h1-door/rotate", Some(json!({}))),
            ("POST", "/devices/h1-door/revoke", Some(json!({}))),
            (
                "POST",
                "/devices",
                Some(json!({"kind": "door", "household_id": "h1"})),
            ),
            ("POST", "/installations/h1", Some(json!({}))),
            ("GET", "/installations/h1", None),
        ] {
            let r = tech2.send(m, path, body).await;
            assert_eq!(r.status, 404, "{m} {path}: {}", r.text);
        }
        let r = tech2
            .post(
                "/devices",
                json!({"kind": "door", "household_id": "h4", "room": "entrance", "device_id": "h4-door-2"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        // Technicians read no elders' records.
        for path in ["/households/h4", "/households/h4/contacts", "/needs", "/contacts"] {
            assert_eq!(tech2.get(path).await.status, 403, "{path}");
        }
        assert!(!list.text.contains("钱老师"), "addresses, never names");
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_test_started_through_the_api_checks_a_device_off_live_and_raises_no_caseworker_alert()
 {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let tech = api.login("tech1").await;
        let cw = api.login("cw1").await;
        let mut live = Sse::open(&tech).await;
        let mut cw_live = Sse::open(&cw).await;

        let r = tech.get("/installations/h1").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["started_ms"], Value::Null, "never tested");

        let r = tech.post("/installations/h1", json!({"minutes": 30})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["running"], true);
        assert_eq!(r.json["untested"], 3);
        let again = tech.post("/installations/h1", json!({"minutes": 30})).await;
        assert_eq!(again.status, 409, "one test at a time");
        live.next(|n, v| {
            n == "installation" && v["kind"] == "started" && v["household_id"] == "h1"
        })
        .await
        .expect("the start on the stream");
        let running = tech.get("/installations").await;
        assert_eq!(running.json.as_array().unwrap().len(), 1);

        // The technician presses the help button: checked off, live.
        let mut dev = RawDevice::connect("h1-help", api.gw.mqtt_addr).await;
        dev.event(
            5,
            1,
            1,
            common::now_ms(),
            EventBody::Help {
                act: HelpAction::Press,
            },
        )
        .await;
        dev.wait_ack(5, 1).await;
        let (_, e) = live
            .next(|n, v| n == "installation" && v["kind"] == "checked_off")
            .await
            .expect("the check-off arrives on the stream");
        assert_eq!(e["household_id"], "h1");
        assert_eq!(e["device_id"], "h1-help");
        assert_eq!(e["by"], "help press");
        let r = tech.get("/installations/h1").await;
        assert_eq!(r.json["tested"], 1);
        assert_eq!(
            r.json["devices"][0]["device_id"], "h1-help",
            "checked off first"
        );
        assert!(r.json["devices"][0]["tested_ms"].is_i64());
        assert_eq!(
            r.json["devices"][2]["tested_ms"],
            Value::Null,
            "untested last"
        );

        // Ended: the report names the two others, each gets a work order.
        let stop_ms = api.gw.workflow.now_ms();
        let r = tech.delete("/installations/h1").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["running"], false);
        assert_eq!(r.json["untested"], 2);
        let (_, e) = live
            .next(|n, v| n == "installation" && v["kind"] == "ended")
            .await
            .expect("the end on the stream");
        assert_eq!(e["untested"].as_array().unwrap().len(), 2);
        assert_eq!(tech.delete("/installations/h1").await.status, 409);
        let orders = tech.get("/work-orders?household_id=h1").await;
        assert_eq!(orders.json["total"], 2, "{}", orders.text);
        assert!(
            orders.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["reason"] == "untested")
        );
        let n = orders.json["items"][0]["id"].as_i64().unwrap();
        let r = tech
            .post(
                &format!("/work-orders/{n}/close"),
                json!({"resolution": "重新装好，已测试"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["closed_by"], "user:tech1");
        let r = tech
            .post(
                &format!("/work-orders/{n}/close"),
                json!({"resolution": "again"}),
            )
            .await;
        assert_eq!(r.status, 409);
        for a in ["installation.start", "installation.stop"] {
            assert_eq!(api.audit_count("h1", "user:tech1", a).await, 1, "{a}");
        }

        // The press during the test raised nothing: a press after it raises the one
        // alert, which the caseworker hears of (had the first raised an alert, this
        // one would be its repeat).
        dev.event(
            5,
            2,
            2,
            common::now_ms(),
            EventBody::Help {
                act: HelpAction::Press,
            },
        )
        .await;
        dev.wait_ack(5, 2).await;
        let (_, a) = cw_live
            .next(|n, v| n == "alert" && v["household_id"] == "h1" && v["kind"] == "help")
            .await
            .expect("a help press after the test alarms the caseworker");
        assert!(a["raised_ms"].as_i64().unwrap() >= stop_ms, "{a}");
        let alerts = cw.get("/alerts?open=true").await;
        assert_eq!(alerts.json["total"], 1, "{}", alerts.text);
        assert_eq!(alerts.json["items"][0]["repeats"], 0, "{}", alerts.text);
        // Caseworkers never get installation events.
        assert!(
            !cw_live.seen.iter().any(|n| n == "installation"),
            "{:?}",
            cw_live.seen
        );
        api.stop().await;
    })
    .await
    .expect("test took too long");
}
