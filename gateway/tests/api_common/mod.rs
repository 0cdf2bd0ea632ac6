//! Shared pieces of the API tests: a real gateway on loopback with the fictional test
//! organisation (`workflow_common::org_files`: cw1 looks after h1–h3 with backup cw2,
//! cw3 after h4; head1 of c1; sup1 of street s1; tech1; admin1), every user with the
//! password [`PASSWORD`], and the API served on its own loopback port with a manual
//! clock for authentication (sessions, tokens, rate limits) — the router factory tested
//! over a real socket. [`Session`] is a small client that keeps the cookie and sends the
//! CSRF token, as the dashboard does.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use anxin_gateway::api::{self, ApiState, AuthConfig};
use anxin_gateway::app::Gateway;
use anxin_gateway::clock::ManualClock;
use anxin_gateway::workflow::{Actor, UserId};
use serde_json::Value;

use super::common;
use super::workflow_common::org_files;

/// Every fixture user's password.
pub const PASSWORD: &str = "ceshi-mima-2026";

/// The users of the fixture and their roles.
pub const USERS: &[(&str, &str)] = &[
    ("cw1", "caseworker"),
    ("cw2", "caseworker"),
    ("cw3", "caseworker"),
    ("head1", "committee_head"),
    ("sup1", "street_supervisor"),
    ("tech1", "technician"),
    ("admin1", "admin"),
];

/// A gateway and its API on loopback.
pub struct Api {
    pub gw: Gateway,
    pub state: ApiState,
    pub clock: Arc<ManualClock>,
    pub addr: SocketAddr,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Api {
    /// With the default authentication settings.
    pub async fn start() -> Api {
        Api::start_with(AuthConfig::default()).await
    }

    /// With `auth` settings.
    pub async fn start_with(auth: AuthConfig) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::loopback_config(dir.path());
        // Blobs name the broker devices connect to.
        config.provision.broker_host = "127.0.0.1".into();
        let gw = common::start(config).await;
        Api::on(gw, dir, auth).await
    }

    /// Over a running gateway `gw` (its store in `dir`), with `auth` settings: the
    /// fixture organisation and its devices are added to it.
    pub async fn on(gw: Gateway, dir: tempfile::TempDir, auth: AuthConfig) -> Api {
        for h in ["h1", "h2", "h3", "h4"] {
            common::register(
                &gw,
                h,
                &[
                    (&format!("{h}-help"), "help"),
                    (&format!("{h}-door"), "door"),
                    (&format!("{h}-motion"), "motion"),
                ],
            )
            .await;
        }
        gw.workflow
            .import_org(&Actor::System, &org_files(), false)
            .await
            .unwrap();
        for (u, _) in USERS {
            api::auth::store_password(&gw.store, 1, &UserId::new(*u), PASSWORD)
                .await
                .unwrap();
        }
        let clock = Arc::new(ManualClock::new(common::now_ms() as i64));
        let state = ApiState::with(
            &gw.services,
            gw.detect.clone(),
            gw.workflow.clone(),
            gw.history.clone(),
            gw.provision.clone(),
            clock.clone(),
            auth,
        );
        let app = axum::Router::new().nest(api::authz::PREFIX, api::router(state.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = gw.cancel_token();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        });
        Api {
            gw,
            state,
            clock,
            addr,
            base: format!("http://{addr}/api/v1"),
            dir,
        }
    }

    /// A client with no credentials.
    pub fn anonymous(&self) -> Session {
        Session {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            cookie: None,
            csrf: None,
            bearer: None,
        }
    }

    /// Logs `user` in (with [`PASSWORD`]).
    pub async fn login(&self, user: &str) -> Session {
        let mut s = self.anonymous();
        let r = s
            .post(
                "/auth/login",
                serde_json::json!({"user_id": user, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "login of {user}: {}", r.text);
        s.cookie = Some(r.session_cookie().expect("a session cookie"));
        s.csrf = r.json["csrf_token"].as_str().map(str::to_string);
        s
    }

    /// Audit entries about `household` by `actor` (`user:ID`) with `action`.
    pub async fn audit_count(&self, household: &str, actor: &str, action: &str) -> usize {
        self.gw
            .workflow
            .household_trail(household)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.actor == actor && e.action == action)
            .count()
    }

    /// Stops everything.
    pub async fn stop(self) {
        self.gw.shutdown().await;
    }
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// The value of the session cookie it sets.
    pub fn session_cookie(&self) -> Option<String> {
        self.set_cookie()?
            .split(';')
            .next()?
            .strip_prefix("anxin_session=")
            .map(str::to_string)
    }

    /// The whole `Set-Cookie` header.
    pub fn set_cookie(&self) -> Option<String> {
        self.headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The error code of the one error shape.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }
}

/// A client: the session cookie, the CSRF token, or a bearer token.
#[derive(Clone)]
pub struct Session {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
}

impl Session {
    /// Sends a request; `body` as JSON when given.
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let r = self.builder(method, path, body).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    /// The request, unsent (for streams and custom headers).
    pub fn builder(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut b = self.http.request(m.clone(), format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            b = b.header("cookie", format!("anxin_session={c}"));
        }
        if let Some(t) = &self.csrf
            && m != reqwest::Method::GET
        {
            b = b.header("x-csrf-token", t);
        }
        if let Some(t) = &self.bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if let Some(body) = body {
            b = b.json(&body);
        }
        b
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send("PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None).await
    }
}

/// Raises a help alert at `household` (as detection's signal would) and returns its id.
pub async fn raise_help(api: &Api, household: &str) -> String {
    use anxin_gateway::signal::{AlertKind, Severity, SignalAction};
    use anxin_gateway::workflow::SignalOutcome;
    let now = api.gw.workflow.now_ms();
    match api
        .gw
        .workflow
        .apply_signal(&super::workflow_common::signal(
            household,
            &format!("{household}-help"),
            AlertKind::Help,
            Severity::Critical,
            SignalAction::Raise,
            now,
        ))
        .await
        .unwrap()
    {
        SignalOutcome::Opened(id) | SignalOutcome::Repeated(id) => id.0,
        other => panic!("raise gave {other:?}"),
    }
}

/// Reads server-sent events from `resp` until `want` matches one, for at most `within`;
/// the name of every event read is pushed to `seen`.
pub async fn next_event_seen(
    resp: &mut reqwest::Response,
    buf: &mut String,
    seen: &mut Vec<String>,
    want: impl Fn(&str, &Value) -> bool,
    within: std::time::Duration,
) -> Option<(String, Value)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let v: Value = serde_json::from_str(&data).unwrap_or_default();
            seen.push(name.clone());
            if want(&name, &v) {
                return Some((name, v));
            }
        }
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(c))) => buf.push_str(&String::from_utf8_lossy(&c)),
            _ => return None,
        }
    }
}

/// [`next_event_seen`] without the record of what was read.
pub async fn next_event(
    resp: &mut reqwest::Response,
    buf: &mut String,
    want: impl Fn(&str, &Value) -> bool,
    within: std::time::Duration,
) -> Option<(String, Value)> {
    next_event_seen(resp, buf, &mut Vec::new(), want, within).await
}
