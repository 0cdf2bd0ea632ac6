//! Per-household scoping: each role sees the households its rule gives it and nothing
//! else; another caseworker's household answers 404 exactly as a missing one does, on
//! every route that names it; every read of household data is in the audit trail; the
//! live stream carries an alert to the caseworker responsible and not to another.

use crate::api_common;
use crate::common;

use api_common::{Api, next_event, raise_help};
use serde_json::json;

fn ids(r: &api_common::Resp) -> Vec<String> {
    let mut v: Vec<String> = r.json["items"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|t| t["id"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_only_its_households() {
    let api = Api::start().await;
    for (user, want) in [
        ("cw1", vec!["h1", "h2", "h3"]),
        ("cw2", vec!["h1", "h2", "h3"]), // the backup of h1–h3
        ("cw3", vec!["h4"]),
        ("head1", vec!["h1", "h2", "h3"]),      // committee c1
        ("sup1", vec!["h1", "h2", "h3", "h4"]), // street s1
        ("admin1", vec!["h1", "h2", "h3", "h4"]),
    ] {
        let s = api.login(user).await;
        let r = s.get("/households").await;
        assert_eq!(r.status, 200, "{user}: {}", r.text);
        assert_eq!(ids(&r), want, "{user}");
        let tiles = r.json["items"].as_array().unwrap();
        if user == "cw1" {
            assert!(tiles.iter().all(|t| t["my_role"] == "caseworker"));
        }
        if user == "cw2" {
            assert!(tiles.iter().all(|t| t["my_role"] == "backup"));
        }
    }
    let tech = api.login("tech1").await;
    assert_eq!(tech.get("/households").await.status, 403);
    let devices = tech.get("/devices?limit=500").await;
    assert_eq!(devices.json["total"], 12, "{}", devices.text);
    assert!(
        !devices.text.contains("周阿婆"),
        "technicians see addresses, not names"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_caseworkers_household_answers_like_a_missing_one_on_every_route() {
    let api = Api::start().await;
    let alert = raise_help(&api, "h1").await;
    let cw1 = api.login("cw1").await;
    let need = cw1
        .post(
            "/needs",
            json!({"household_id": "h1", "category": "medicine", "description": "降压药"}),
        )
        .await;
    assert_eq!(need.status, 201, "{}", need.text);
    let need_id = need.json["id"].as_str().unwrap().to_string();
    let cw3 = api.login("cw3").await;
    for (method, path, body) in [
        ("GET", "/households/h1".to_string(), None),
        ("GET", "/households/h1/timeline".into(), None),
        ("GET", "/households/h1/activity".into(), None),
        (
            "GET",
            "/households/h1/history?measurement=door".into(),
            None,
        ),
        ("GET", "/households/h1/contacts".into(), None),
        ("GET", "/households/h1/devices".into(), None),
        (
            "PUT",
            "/households/h1/mode".into(),
            Some(json!({"mode": "away"})),
        ),
        ("GET", format!("/alerts/{alert}"), None),
        (
            "POST",
            format!("/alerts/{alert}/acknowledge"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/alerts/{alert}/resolve"),
            Some(json!({"outcome": "elder_ok", "note": "x"})),
        ),
        (
            "POST",
            "/contacts".into(),
            Some(json!({"household_id": "h1", "method": "phone", "outcome": "well"})),
        ),
        (
            "POST",
            "/needs".into(),
            Some(json!({"household_id": "h1", "category": "food", "description": "x"})),
        ),
        (
            "POST",
            format!("/needs/{need_id}/fulfil"),
            Some(json!({"note": "x"})),
        ),
    ] {
        let mine = cw3.send(method, &path, body.clone()).await;
        let missing_path = path
            .replace("h1", "h-none")
            .replace(&alert, "al-none")
            .replace(&need_id, "nd-none");
        let missing_body = body
            .map(|b| serde_json::from_str(&b.to_string().replace("\"h1\"", "\"h-none\"")).unwrap());
        let missing = cw3.send(method, &missing_path, missing_body).await;
        assert_eq!(mine.status, 404, "{method} {path}: {}", mine.text);
        assert_eq!(
            (mine.status, &mine.json),
            (missing.status, &missing.json),
            "{method} {path} tells a hidden household from a missing one"
        );
        assert!(
            !mine.text.contains("周阿婆") && !mine.text.contains("h1"),
            "{}",
            mine.text
        );
    }
    // Lists leave them out.
    assert_eq!(cw3.get("/alerts").await.json["total"], 0);
    assert_eq!(cw3.get("/alerts?household_id=h1").await.json["total"], 0);
    assert_eq!(cw3.get("/needs").await.json["total"], 0);
    // Nothing changed.
    let a = cw1.get(&format!("/alerts/{alert}")).await;
    assert_eq!(a.json["state"], "raised");
    assert_eq!(a.json["household_name"], "周阿婆");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_of_household_data_is_in_the_audit_trail() {
    let api = Api::start().await;
    let cw1 = api.login("cw1").await;
    for p in [
        "/households",
        "/households/h1",
        "/households/h1/timeline",
        "/households/h1/activity",
        "/households/h1/contacts",
        "/households/h1/devices",
    ] {
        assert_eq!(cw1.get(p).await.status, 200, "{p}");
    }
    for action in [
        "household.list",
        "household.view",
        "household.timeline",
        "household.activity",
        "household.contacts",
        "household.devices",
    ] {
        assert_eq!(
            api.audit_count("h1", "user:cw1", action).await,
            1,
            "{action}"
        );
    }
    // The list audits each household it showed.
    assert_eq!(api.audit_count("h2", "user:cw1", "household.list").await, 1);
    assert_eq!(api.audit_count("h4", "user:cw1", "household.list").await, 0);
    // Refused reads leave no read entry.
    let cw3 = api.login("cw3").await;
    assert_eq!(cw3.get("/households/h1").await.status, 404);
    assert_eq!(api.audit_count("h1", "user:cw3", "household.view").await, 0);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_brings_an_alert_to_its_caseworker_and_not_to_another() {
    let api = Api::start().await;
    let cw1 = api.login("cw1").await;
    let cw3 = api.login("cw3").await;
    let mut s1 = cw1.builder("GET", "/stream", None).send().await.unwrap();
    let mut s3 = cw3.builder("GET", "/stream", None).send().await.unwrap();
    assert_eq!(s1.status().as_u16(), 200);
    assert!(
        s1.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (mut b1, mut b3) = (String::new(), String::new());
    assert!(
        next_event(&mut s1, &mut b1, |n, _| n == "hello", common::WAIT)
            .await
            .is_some()
    );
    assert!(
        next_event(&mut s3, &mut b3, |n, _| n == "hello", common::WAIT)
            .await
            .is_some()
    );

    let alert = raise_help(&api, "h1").await;
    let (_, a) = next_event(
        &mut s1,
        &mut b1,
        |n, v| n == "alert" && v["id"] == alert.as_str(),
        common::WAIT,
    )
    .await
    .expect("cw1 hears of the alert");
    assert_eq!(a["kind"], "help");
    assert_eq!(a["household_name"], "周阿婆");
    let (_, h) = next_event(
        &mut s1,
        &mut b1,
        |n, v| n == "household" && v["tile"]["id"] == "h1",
        common::WAIT,
    )
    .await
    .expect("and of h1's tile");
    assert_eq!(h["tile"]["status"], "alert");
    // A contact of h4 (cw3's) reaches cw3 as a tile change; the alert never does.
    let r = cw3
        .post(
            "/contacts",
            json!({"household_id": "h4", "method": "phone", "outcome": "well"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let mut seen_h1 = false;
    let got = next_event(
        &mut s3,
        &mut b3,
        |n, v| {
            if n == "alert" || v.to_string().contains("\"h1\"") {
                // Recorded, then keep reading to the h4 event.
                return true;
            }
            n == "household" && v["tile"]["id"] == "h4"
        },
        common::WAIT,
    )
    .await
    .expect("cw3 hears of h4");
    if got.0 == "alert" || got.1.to_string().contains("\"h1\"") {
        seen_h1 = true;
    }
    assert!(!seen_h1, "cw3 was told about h1: {got:?}");
    assert_eq!(got.1["tile"]["contacted_today"], true);
    assert!(api.audit_count("h1", "user:cw1", "alert.live").await >= 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_tile_is_rendered_once_for_every_open_stream() {
    let api = Api::start().await;
    let cw1 = api.login("cw1").await;
    let rendered = || {
        common::metric(
            &api.gw.services.metrics.encode(),
            "anxin_api_live_tiles_rendered_total",
            "",
        )
    };
    // Every stream a user may have open.
    let mut streams = Vec::new();
    for _ in 0..anxin_gateway::api::routes::stream::MAX_STREAMS_PER_USER {
        let mut s = cw1.builder("GET", "/stream", None).send().await.unwrap();
        let mut buf = String::new();
        assert!(
            next_event(&mut s, &mut buf, |n, _| n == "hello", common::WAIT)
                .await
                .is_some()
        );
        streams.push((s, buf));
    }
    let before = rendered();
    let r = cw1
        .post(
            "/contacts",
            json!({"household_id": "h1", "method": "visit", "outcome": "well"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for (s, buf) in &mut streams {
        let (_, h) = next_event(
            s,
            buf,
            |n, v| n == "household" && v["tile"]["id"] == "h1",
            common::WAIT,
        )
        .await
        .expect("every stream gets h1's tile");
        assert_eq!(h["tile"]["contacted_today"], true);
        assert_eq!(
            h["tile"]["my_role"], "caseworker",
            "each stream marks its user's part"
        );
    }
    let renders = rendered() - before;
    // One render for all streams (a stream re-reading the tile itself would make it at
    // least one per stream); the detection watcher may add one for another household.
    assert!(
        (1.0..=2.0).contains(&renders),
        "{renders} renders for {} streams",
        streams.len()
    );
    api.stop().await;
}
