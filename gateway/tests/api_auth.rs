//! Authentication over a real socket: passwords (argon2id only), the session cookie's
//! flags, CSRF, login rate limiting, session expiry (idle and absolute, on a manual
//! clock), logout, API tokens, and the counters.

use crate::api_common;
use crate::common;

use std::time::Duration;

use anxin_gateway::api::AuthConfig;
use api_common::{Api, PASSWORD};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_with_the_one_error_shape_and_counted() {
    let api = Api::start().await;
    let anon = api.anonymous();
    let r = anon
        .post(
            "/auth/login",
            json!({"user_id": "cw1", "password": "not-it-at-all"}),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json,
        json!({"code": "bad_credentials", "message": "wrong user id or password", "field": null})
    );
    assert!(r.set_cookie().is_none());
    // An unknown user gets exactly the same answer.
    let r2 = anon
        .post(
            "/auth/login",
            json!({"user_id": "nobody", "password": "not-it-at-all"}),
        )
        .await;
    assert_eq!((r2.status, r2.json.clone()), (401, r.json.clone()));
    // Malformed JSON: 400 in the same shape.
    let bad = anon
        .builder("POST", "/auth/login", None)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["code"], "bad_request");
    let (_, metrics) = common::http_get(api.gw.http_addr, "/metrics").await;
    assert_eq!(
        common::metric(
            &metrics,
            "anxin_api_logins_total",
            "outcome=\"bad_credentials\""
        ),
        2.0
    );
    assert!(
        common::metric(
            &metrics,
            "anxin_api_errors_total",
            "code=\"bad_credentials\""
        ) >= 2.0
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_stored_only_as_argon2id_hashes() {
    let api = Api::start().await;
    let hashes: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id, password_hash FROM users ORDER BY id")
            .fetch_all(api.gw.store.pool())
            .await
            .unwrap();
    assert!(!hashes.is_empty());
    for (id, h) in hashes {
        let h = h.unwrap_or_default();
        assert!(h.starts_with("$argon2id$"), "{id}: {h}");
        assert!(!h.contains(PASSWORD));
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_httponly_and_strict_and_secure_behind_tls() {
    let api = Api::start().await;
    let anon = api.anonymous();
    let body = json!({"user_id": "cw1", "password": PASSWORD});
    let r = anon.post("/auth/login", body.clone()).await;
    let c = r.set_cookie().unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"),
        "{c}"
    );
    assert!(!c.contains("Secure"), "plain HTTP on localhost: {c}");
    assert!(r.json["csrf_token"].as_str().unwrap().len() >= 32);
    let tls = anon
        .builder("POST", "/auth/login", Some(body))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let c = tls.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(c.contains("; Secure"), "{c}");
    // The session token is stored only hashed.
    let token = r.session_cookie().unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_sessions WHERE token_hash = $1")
        .bind(&token)
        .fetch_one(api.gw.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_changing_request_without_the_csrf_token_is_refused() {
    let api = Api::start().await;
    let s = api.login("cw1").await;
    let contact = json!({"household_id": "h1", "method": "phone", "outcome": "well", "note": "ok"});
    let mut no_csrf = s.clone();
    no_csrf.csrf = None;
    let r = no_csrf.post("/contacts", contact.clone()).await;
    assert_eq!((r.status, r.code()), (403, "csrf_failed"));
    let mut wrong = s.clone();
    wrong.csrf = Some("0".repeat(64));
    assert_eq!(
        wrong.post("/contacts", contact.clone()).await.code(),
        "csrf_failed"
    );
    // Another site's page cannot post with the cookie even if it guessed the token.
    let cross = s
        .builder("POST", "/contacts", Some(contact.clone()))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);
    // Reads need no token; writes with it pass.
    assert_eq!(no_csrf.get("/households").await.status, 200);
    let ok = s.post("/contacts", contact).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    // Nothing was recorded by the refused requests.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
        .fetch_one(api.gw.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_are_rate_limited_even_with_the_right_one_after() {
    let api = Api::start().await;
    let anon = api.anonymous();
    for _ in 0..5 {
        let r = anon
            .post(
                "/auth/login",
                json!({"user_id": "cw1", "password": "guess-guess"}),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = anon
        .post(
            "/auth/login",
            json!({"user_id": "cw1", "password": PASSWORD}),
        )
        .await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    // Another user from elsewhere is not affected...
    assert_eq!(
        anon.post(
            "/auth/login",
            json!({"user_id": "cw2", "password": PASSWORD})
        )
        .await
        .status,
        200
    );
    // ...and after the window the right password works again.
    api.clock.advance(Duration::from_secs(15 * 60 + 1));
    let r = anon
        .post(
            "/auth/login",
            json!({"user_id": "cw1", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, metrics) = common::http_get(api.gw.http_addr, "/metrics").await;
    assert_eq!(
        common::metric(
            &metrics,
            "anxin_api_logins_total",
            "outcome=\"rate_limited\""
        ),
        1.0
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_idle_at_their_maximum_and_at_logout() {
    let cfg = AuthConfig {
        session_idle_s: 600,
        session_max_s: 3600,
        ..AuthConfig::default()
    };
    let api = Api::start_with(cfg).await;
    // Idle.
    let s = api.login("cw1").await;
    assert_eq!(s.get("/auth/me").await.status, 200);
    api.clock.advance(Duration::from_secs(601));
    let r = s.get("/auth/me").await;
    assert_eq!((r.status, r.code()), (401, "unauthenticated"));
    // Absolute: kept busy, still ends at the maximum.
    let s = api.login("cw1").await;
    for _ in 0..6 {
        api.clock.advance(Duration::from_secs(500));
        assert_eq!(s.get("/auth/me").await.status, 200);
    }
    api.clock.advance(Duration::from_secs(601));
    assert_eq!(s.get("/auth/me").await.status, 401);
    // Logout.
    let s = api.login("cw1").await;
    let r = s.post("/auth/logout", json!({})).await;
    assert_eq!(r.status, 204);
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(s.get("/auth/me").await.status, 401);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_acts_as_its_user_without_csrf_until_revoked() {
    let api = Api::start().await;
    let head = api.login("head1").await;
    let r = head
        .post(
            "/tokens",
            json!({"name": "居委会报表", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.json["token"].as_str().unwrap().to_string();
    let id = r.json["id"].as_str().unwrap().to_string();
    assert!(token.starts_with(&format!("anx_{id}_")));
    // Listed without its secret.
    let list = head.get("/tokens").await;
    assert!(!list.text.contains(&token[id.len() + 5..]));
    let mut t = api.anonymous();
    t.bearer = Some(token.clone());
    let me = t.get("/auth/me").await;
    assert_eq!(me.json["user"]["id"], "head1");
    assert_eq!(me.json["via"], "token");
    // Writes need no CSRF token with a bearer token; the scope is the user's.
    let r = t
        .post(
            "/contacts",
            json!({"household_id": "h1", "method": "visit", "outcome": "well"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(t.get("/households/h4").await.status, 404, "h4 is not in c1");
    // A wrong secret, then revocation.
    let mut wrong = api.anonymous();
    wrong.bearer = Some(format!("anx_{id}_{}", "0".repeat(48)));
    assert_eq!(wrong.get("/auth/me").await.status, 401);
    assert_eq!(head.delete(&format!("/tokens/{id}")).await.status, 204);
    assert_eq!(t.get("/auth/me").await.status, 401);
    // Expiry.
    let r = head
        .post("/tokens", json!({"name": "short", "expires_in_days": 1}))
        .await;
    let mut short = api.anonymous();
    short.bearer = Some(r.json["token"].as_str().unwrap().to_string());
    assert_eq!(short.get("/auth/me").await.status, 200);
    api.clock.advance(Duration::from_secs(86_401));
    assert_eq!(short.get("/auth/me").await.status, 401);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_password_needs_the_current_one_and_ends_every_session() {
    let api = Api::start().await;
    let a = api.login("cw1").await;
    let b = api.login("cw1").await;
    let r = a
        .put(
            "/auth/password",
            json!({"current_password": "wrong", "new_password": "a-new-secret-1"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (400, Some("current_password"))
    );
    let r = a
        .put(
            "/auth/password",
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (400, Some("password"))
    );
    let r = a
        .put(
            "/auth/password",
            json!({"current_password": PASSWORD, "new_password": "a-new-secret-1"}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(a.get("/auth/me").await.status, 401);
    assert_eq!(b.get("/auth/me").await.status, 401);
    let r = api
        .anonymous()
        .post(
            "/auth/login",
            json!({"user_id": "cw1", "password": "a-new-secret-1"}),
        )
        .await;
    assert_eq!(r.status, 200);
    api.stop().await;
}
