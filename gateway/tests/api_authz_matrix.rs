//! The authorisation matrix: every route of the API (taken from the OpenAPI document,
//! which is generated from the router) × every role and no login, against the policy
//! table `api/authz.rs` `RULES`. A route without a rule, a rule without a route, or a
//! route that answers a role otherwise than its rule says fails this test.

use crate::api_common;

use std::collections::{BTreeSet, HashMap};

use anxin_gateway::api::authz::{Access, RULES, rule_for};
use anxin_gateway::workflow::Role;
use api_common::{Api, Session};
use axum::http::Method;

/// `(METHOD, path)` of every operation in the document.
fn routes(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in ["get", "post", "put", "delete", "patch"] {
            if item.get(m).is_some() {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The path with its parameters filled with ids that exist for most roles.
fn concrete(path: &str) -> String {
    path.replace("{household_id}", "h1")
        .replace("/households/{id}", "/households/h1")
        .replace("/exports/{kind}", "/exports/contacts")
        .replace("{id}", "no-such-id")
}

#[test]
fn every_rule_names_a_known_method() {
    for r in RULES {
        assert!(
            ["GET", "POST", "PUT", "DELETE"].contains(&r.method),
            "{} {}",
            r.method,
            r.path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_the_policy_says() {
    let api = Api::start().await;
    let anon = api.anonymous();
    let doc = anon.get("/openapi.json").await.json;
    let routes = routes(&doc);
    assert!(routes.len() >= 40, "{} routes", routes.len());

    // The document and the policy name the same routes.
    let mut missing = vec![];
    for (m, p) in &routes {
        if rule_for(&Method::from_bytes(m.as_bytes()).unwrap(), p).is_none() {
            missing.push(format!("{m} {p}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an authorisation rule in gateway/src/api/authz.rs RULES: {missing:?}"
    );
    for r in RULES {
        assert!(
            routes.contains(&(r.method.to_string(), r.path.to_string())),
            "rule {} {} names no route",
            r.method,
            r.path
        );
    }

    let roles = [
        ("cw1", Role::Caseworker),
        ("head1", Role::CommitteeHead),
        ("sup1", Role::StreetSupervisor),
        ("tech1", Role::Technician),
        ("admin1", Role::Admin),
    ];
    let mut sessions: HashMap<&str, Session> = HashMap::new();
    for (u, _) in roles {
        sessions.insert(u, api.login(u).await);
    }
    // Logging out ends the session: that route goes last.
    let mut ordered: Vec<_> = routes.iter().collect();
    ordered.sort_by_key(|(_, p)| p == "/auth/logout");

    let mut failures = vec![];
    let mut cells = 0;
    for (method, path) in ordered {
        let rule = rule_for(&Method::from_bytes(method.as_bytes()).unwrap(), path).unwrap();
        let url = concrete(path);
        let body = (method == "POST" || method == "PUT").then(|| serde_json::json!({}));
        let call = |s: &Session| {
            let s = s.clone();
            let (m, url, body) = (method.clone(), url.clone(), body.clone());
            async move {
                if url == "/stream" {
                    // A stream does not end: only its status matters.
                    let r = s.builder(&m, &url, body).send().await.unwrap();
                    let status = r.status().as_u16();
                    if status == 200 {
                        (status, String::new())
                    } else {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        (status, v["code"].as_str().unwrap_or("").to_string())
                    }
                } else {
                    let r = s.send(&m, &url, body).await;
                    (r.status, r.code().to_string())
                }
            }
        };
        // No login.
        let (status, code) = call(&anon).await;
        cells += 1;
        match rule.access {
            Access::Public => {
                if status == 401 || status == 403 || status >= 500 {
                    failures.push(format!("anonymous {method} {path}: {status} {code}"));
                }
            }
            _ => {
                if status != 401 || code != "unauthenticated" {
                    failures.push(format!(
                        "anonymous {method} {path}: {status} {code}, want 401"
                    ));
                }
            }
        }
        for (user, role) in roles {
            let (status, code) = call(&sessions[user]).await;
            cells += 1;
            let allowed = rule.access.allows(role);
            let ok = if allowed {
                status != 401 && status != 403 && status < 500
            } else {
                status == 403 && code == "forbidden"
            };
            if !ok {
                failures.push(format!(
                    "{user} ({role}) {method} {url}: {status} {code}, want {}",
                    if allowed { "allowed" } else { "403 forbidden" }
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells disagree with the policy:\n{}",
        failures.len(),
        failures.join("\n")
    );
    api.stop().await;
}
