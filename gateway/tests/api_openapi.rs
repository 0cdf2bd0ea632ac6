//! The OpenAPI document: it parses as OpenAPI 3.1 (`oas3`), every reference resolves,
//! operation ids are unique, path parameters are declared, and every documented
//! operation answers as documented — its status among the documented responses and
//! its JSON body valid against the documented schema — for good and for bad input.
//! Every operation must have at least one good and one bad case below, so a new
//! endpoint without them fails this test.

use crate::api_common;

use std::collections::{BTreeMap, BTreeSet};

use api_common::{Api, Resp, Session, raise_help};
use serde_json::{Value, json};

/// The operation `(METHOD, template)` of a concrete path.
fn operation_of(doc: &Value, method: &str, path: &str) -> Option<(String, Value)> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').collect();
    for (tpl, item) in doc["paths"].as_object()? {
        let t: Vec<&str> = tpl.split('/').collect();
        if t.len() == segs.len()
            && t.iter()
                .zip(&segs)
                .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')))
            && let Some(op) = item.get(method.to_lowercase())
        {
            return Some((tpl.clone(), op.clone()));
        }
    }
    None
}

/// Resolves `#/components/schemas/X`.
fn resolve<'a>(doc: &'a Value, r: &str) -> Option<&'a Value> {
    let name = r.strip_prefix("#/components/schemas/")?;
    doc["components"]["schemas"].get(name)
}

/// A small JSON Schema check for what utoipa emits: `$ref`, `type` (one or a list,
/// with `null`), `properties` + `required`, `items`, `enum`, `oneOf` / `anyOf` /
/// `allOf`. Returns the first mismatch.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let s = resolve(doc, r).ok_or_else(|| format!("{at}: unresolved {r}"))?;
        return check(doc, s, v, at);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            if alts.iter().any(|s| check(doc, s, v, at).is_ok()) {
                return Ok(());
            }
            return Err(format!("{at}: {v} matches no alternative of {key}"));
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(doc, s, v, at)?;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} not in {e:?}"));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let ok = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => true,
        });
        if !ok {
            return Err(format!("{at}: {v} is not {types:?}"));
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    return Err(format!("{at}: missing required {r}"));
                }
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, s) in props {
                if let Some(x) = obj.get(k) {
                    check(doc, s, x, &format!("{at}.{k}"))?;
                }
            }
            for k in obj.keys() {
                if !props.contains_key(k) {
                    return Err(format!("{at}: undocumented property {k}"));
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_3_1() {
    let api = Api::start().await;
    let r = api.anonymous().get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let spec = oas3::from_json(&r.text).expect("parses as OpenAPI 3.1");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let doc = r.json;
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let mut all = vec![];
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        assert!(resolve(&doc, r).is_some(), "unresolved {r}");
    }
    let mut op_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().expect("an operationId");
            assert!(op_ids.insert(id.to_string()), "operationId {id} twice");
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = &seg[1..seg.len() - 1];
                assert!(params.contains(&name), "{method} {path}: {name} undeclared");
            }
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path}: no success response"
            );
            let public = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| {
                    s.iter()
                        .all(|x| x.as_object().is_some_and(|o| o.is_empty()))
                });
            if !public {
                for code in ["401", "403"] {
                    assert!(
                        responses.contains_key(code),
                        "{method} {path}: {code} undocumented"
                    );
                }
            }
            for (code, resp) in responses {
                if code.starts_with('4') {
                    let schema = &resp["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {code}: not the one error shape"
                    );
                }
            }
        }
    }
    api.stop().await;
}

/// One request of the conformance table.
struct Case {
    who: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// 2xx for a good case, 4xx for a bad one.
    want: u16,
}

fn case(
    who: &'static str,
    method: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    want: u16,
) -> Case {
    Case {
        who,
        method,
        path: path.into(),
        body,
        want,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_documented_for_good_and_bad_input() {
    let api = Api::start().await;
    let doc = api.anonymous().get("/openapi.json").await.json;
    let alert = raise_help(&api, "h1").await;
    let taken = raise_help(&api, "h2").await;
    let head = api.login("head1").await;
    let admin = api.login("admin1").await;
    assert_eq!(
        admin
            .post(&format!("/alerts/{taken}/acknowledge"), json!({}))
            .await
            .status,
        200
    );
    let tok = head.post("/tokens", json!({"name": "t"})).await;
    let token_id = tok.json["id"].as_str().unwrap().to_string();
    let n = head
        .post(
            "/needs",
            json!({"household_id": "h1", "category": "food", "description": "买菜"}),
        )
        .await;
    let need = n.json["id"].as_str().unwrap().to_string();
    let n2 = head
        .post(
            "/needs",
            json!({"household_id": "h2", "category": "repair", "description": "修水龙头"}),
        )
        .await;
    let need2 = n2.json["id"].as_str().unwrap().to_string();
    let n3 = head
        .post(
            "/needs",
            json!({"household_id": "h3", "category": "other", "description": "陪聊"}),
        )
        .await;
    let need3 = n3.json["id"].as_str().unwrap().to_string();
    let gas = admin
        .post(
            "/devices",
            json!({"kind": "gas", "household_id": "h2", "room": "kitchen"}),
        )
        .await;
    assert_eq!(gas.status, 201, "{}", gas.text);
    let gas_id = gas.json["device"]["id"].as_str().unwrap().to_string();
    let gas_secret = gas.json["secret"].as_str().unwrap().to_string();
    let order = admin
        .post(
            "/work-orders",
            json!({"device_id": "h2-door", "reason": "offline", "detail": "门磁不亮"}),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    let order_id = order.json["id"].as_i64().unwrap();

    let j = Some;
    let cases = vec![
        // meta and auth
        case("-", "GET", "/openapi.json", None, 200),
        case(
            "-",
            "POST",
            "/auth/login",
            j(json!({"user_id": "cw1", "password": api_common::PASSWORD})),
            200,
        ),
        case(
            "-",
            "POST",
            "/auth/login",
            j(json!({"user_id": "cw1"})),
            400,
        ),
        case(
            "-",
            "POST",
            "/auth/login",
            j(json!({"user_id": "cw1", "password": "wrong-wrong"})),
            401,
        ),
        case("cw1", "GET", "/auth/me", None, 200),
        case("-", "GET", "/auth/me", None, 401),
        case(
            "cw1",
            "PUT",
            "/auth/password",
            j(json!({"current_password": "x", "new_password": "yyyyyyyy"})),
            400,
        ),
        case(
            "sup1",
            "PUT",
            "/auth/password",
            j(json!({"current_password": api_common::PASSWORD, "new_password": "a-new-password"})),
            204,
        ),
        // tokens
        case("head1", "GET", "/tokens", None, 200),
        case("cw1", "GET", "/tokens", None, 403),
        case("head1", "POST", "/tokens", j(json!({"name": "报表"})), 201),
        case("head1", "POST", "/tokens", j(json!({"name": ""})), 400),
        case("head1", "DELETE", format!("/tokens/{token_id}"), None, 204),
        case("head1", "DELETE", "/tokens/nope", None, 404),
        // users
        case("head1", "GET", "/users", None, 200),
        case("head1", "GET", "/users?limit=0", None, 400),
        case(
            "admin1",
            "POST",
            "/users",
            j(
                json!({"id": "cw9", "name": "测试员 孙小燕", "role": "caseworker", "committee_id": "c1", "password": "first-password"}),
            ),
            200,
        ),
        case(
            "admin1",
            "POST",
            "/users",
            j(json!({"id": "cw9", "name": "x", "role": "pilot"})),
            400,
        ),
        case(
            "admin1",
            "PUT",
            "/users/cw9/password",
            j(json!({"password": "another-password"})),
            204,
        ),
        case(
            "admin1",
            "PUT",
            "/users/nobody/password",
            j(json!({"password": "another-password"})),
            404,
        ),
        case(
            "admin1",
            "PUT",
            "/users/cw9/password",
            j(json!({"password": "short"})),
            400,
        ),
        // households
        case("cw1", "GET", "/households", None, 200),
        case("cw1", "GET", "/households?status=happy", None, 400),
        case("cw1", "GET", "/households/h1", None, 200),
        case("cw1", "GET", "/households/h4", None, 404),
        case("cw1", "GET", "/households/h1/timeline", None, 200),
        case(
            "cw1",
            "GET",
            "/households/h1/timeline?date=yesterday",
            None,
            400,
        ),
        case("cw1", "GET", "/households/h1/activity?days=28", None, 200),
        case("cw1", "GET", "/households/h1/activity?days=0", None, 400),
        case(
            "cw1",
            "GET",
            "/households/h1/history?measurement=door&resolution=hour",
            None,
            200,
        ),
        case(
            "cw1",
            "GET",
            "/households/h1/history?measurement=door&resolution=week",
            None,
            400,
        ),
        case("cw1", "GET", "/households/h1/history", None, 400),
        case("cw1", "GET", "/households/h1/contacts", None, 200),
        case(
            "cw1",
            "GET",
            "/households/h1/contacts?from=2026-13-01",
            None,
            400,
        ),
        case("cw1", "GET", "/households/h1/devices", None, 200),
        case("cw1", "GET", "/households/nope/devices", None, 404),
        case(
            "cw1",
            "PUT",
            "/households/h3/mode",
            j(json!({"mode": "hospital", "until_ms": null})),
            200,
        ),
        case(
            "cw1",
            "PUT",
            "/households/h3/mode",
            j(json!({"mode": "install_test"})),
            400,
        ),
        case(
            "cw1",
            "PUT",
            "/households/h3/mode",
            j(json!({"mode": "moon"})),
            400,
        ),
        // alerts
        case("cw1", "GET", "/alerts", None, 200),
        case("cw1", "GET", "/alerts?open=false&limit=10", None, 200),
        case("cw1", "GET", "/alerts?limit=100000", None, 400),
        case("cw1", "GET", format!("/alerts/{alert}"), None, 200),
        case("cw1", "GET", "/alerts/nope", None, 404),
        case(
            "cw1",
            "POST",
            format!("/alerts/{taken}/acknowledge"),
            None,
            409,
        ),
        case(
            "cw1",
            "POST",
            format!("/alerts/{alert}/acknowledge"),
            None,
            200,
        ),
        case(
            "cw1",
            "POST",
            format!("/alerts/{alert}/on-the-way"),
            None,
            200,
        ),
        case("cw1", "POST", "/alerts/nope/on-the-way", None, 404),
        case("cw1", "POST", format!("/alerts/{alert}/arrived"), None, 200),
        case("cw1", "POST", "/alerts/nope/arrived", None, 404),
        case(
            "cw1",
            "POST",
            format!("/alerts/{alert}/resolve"),
            j(json!({"outcome": "elder_ok"})),
            422,
        ),
        case(
            "cw1",
            "POST",
            format!("/alerts/{alert}/resolve"),
            j(json!({"outcome": "fine"})),
            400,
        ),
        case(
            "cw1",
            "POST",
            format!("/alerts/{alert}/resolve"),
            j(json!({"outcome": "helped_on_site", "note": "上门查看，已处置"})),
            200,
        ),
        case(
            "cw1",
            "POST",
            format!("/alerts/{alert}/resolve"),
            j(json!({"outcome": "elder_ok", "note": "again"})),
            409,
        ),
        // contacts
        case("cw1", "GET", "/contacts", None, 200),
        case(
            "cw1",
            "GET",
            "/contacts?to=2026-01-01&from=2026-02-01",
            None,
            400,
        ),
        case(
            "cw1",
            "POST",
            "/contacts",
            j(
                json!({"household_id": "h1", "method": "phone", "outcome": "needs_help", "note": "要配药", "needs": [{"category": "medicine", "description": "降压药"}]}),
            ),
            201,
        ),
        case(
            "cw1",
            "POST",
            "/contacts",
            j(json!({"household_id": "h1", "method": "pigeon", "outcome": "well"})),
            400,
        ),
        case(
            "cw1",
            "POST",
            "/contacts",
            j(json!({"household_id": "h4", "method": "phone", "outcome": "well"})),
            404,
        ),
        // needs
        case("cw1", "GET", "/needs", None, 200),
        case("cw1", "GET", "/needs?status=lost", None, 400),
        case(
            "cw1",
            "POST",
            "/needs",
            j(
                json!({"household_id": "h2", "category": "escort_to_hospital", "description": "周三复诊"}),
            ),
            201,
        ),
        case(
            "cw1",
            "POST",
            "/needs",
            j(json!({"household_id": "h2", "category": "food", "description": " "})),
            400,
        ),
        case(
            "cw1",
            "POST",
            format!("/needs/{need}/assign"),
            j(json!({"assignee_id": "cw2"})),
            200,
        ),
        case(
            "cw1",
            "POST",
            "/needs/nope/assign",
            j(json!({"assignee_id": "cw2"})),
            404,
        ),
        case(
            "cw1",
            "POST",
            format!("/needs/{need}/fulfil"),
            j(json!({"note": "已送到"})),
            200,
        ),
        case(
            "cw1",
            "POST",
            format!("/needs/{need}/fulfil"),
            j(json!({"note": "again"})),
            409,
        ),
        case(
            "cw1",
            "POST",
            format!("/needs/{need2}/fulfil"),
            j(json!({"note": ""})),
            400,
        ),
        case(
            "cw1",
            "POST",
            format!("/needs/{need3}/cancel"),
            j(json!({"note": "不需要了"})),
            200,
        ),
        case(
            "cw1",
            "POST",
            "/needs/nope/cancel",
            j(json!({"note": "x"})),
            404,
        ),
        // figures and exports
        case("head1", "GET", "/kpis?group=caseworker", None, 200),
        case("head1", "GET", "/kpis?group=planet", None, 400),
        case("head1", "GET", "/overview", None, 200),
        case("cw1", "GET", "/overview", None, 403),
        case("head1", "GET", "/exports/contacts?format=csv", None, 200),
        case("head1", "GET", "/exports/alerts?format=xlsx", None, 200),
        case("head1", "GET", "/exports/contacts?format=pdf", None, 400),
        case("head1", "GET", "/exports/users", None, 403),
        case("head1", "GET", "/exports/poems", None, 400),
        // devices and installations
        case("tech1", "GET", "/devices?problem=true", None, 200),
        case("tech1", "GET", "/devices?limit=0", None, 400),
        case("tech1", "GET", "/installations/h1", None, 200),
        case("tech1", "GET", "/installations/nope", None, 404),
        case(
            "tech1",
            "POST",
            "/installations/h4",
            j(json!({"minutes": 30})),
            200,
        ),
        case(
            "tech1",
            "POST",
            "/installations/h4",
            j(json!({"minutes": 0})),
            400,
        ),
        case("tech1", "DELETE", "/installations/h4", None, 200),
        case("tech1", "DELETE", "/installations/nope", None, 404),
        case("tech1", "DELETE", "/installations/h4", None, 409),
        case("tech1", "GET", "/installations", None, 200),
        case("cw1", "GET", "/installations", None, 403),
        case("tech1", "GET", "/devices/h1-door", None, 200),
        case("tech1", "GET", "/devices/nope", None, 404),
        case(
            "tech1",
            "POST",
            "/devices",
            j(
                json!({"kind": "motion", "household_id": "h3", "room": "bedroom", "serial": "AX-OA-1"}),
            ),
            201,
        ),
        case(
            "tech1",
            "POST",
            "/devices",
            j(json!({"household_id": "h3"})),
            400,
        ),
        case(
            "tech1",
            "POST",
            "/devices",
            j(json!({"kind": "door", "household_id": "h3", "serial": "AX-OA-1"})),
            409,
        ),
        case(
            "tech1",
            "POST",
            "/devices",
            j(json!({"kind": "door", "household_id": "nope"})),
            404,
        ),
        case(
            "tech1",
            "POST",
            format!("/devices/{gas_id}/blob"),
            j(json!({"secret": gas_secret})),
            200,
        ),
        case(
            "tech1",
            "POST",
            format!("/devices/{gas_id}/blob"),
            j(json!({})),
            400,
        ),
        case(
            "tech1",
            "GET",
            format!("/devices/{gas_id}/flash-command?target=cortex-m"),
            None,
            200,
        ),
        case(
            "tech1",
            "GET",
            format!("/devices/{gas_id}/flash-command?target=cortex-m&offset=lots"),
            None,
            400,
        ),
        case(
            "tech1",
            "POST",
            format!("/devices/{gas_id}/rotate"),
            j(json!({})),
            200,
        ),
        case("tech1", "POST", "/devices/nope/rotate", j(json!({})), 404),
        case(
            "tech1",
            "POST",
            format!("/devices/{gas_id}/revoke"),
            j(json!({})),
            200,
        ),
        case("tech1", "POST", "/devices/nope/revoke", j(json!({})), 404),
        case("tech1", "GET", "/work-orders?open=false", None, 200),
        case("tech1", "GET", "/work-orders?limit=9999", None, 400),
        case(
            "tech1",
            "POST",
            "/work-orders",
            j(json!({"device_id": "h3-door", "reason": "suspicious", "detail": "按钮自己响"})),
            201,
        ),
        case(
            "tech1",
            "POST",
            "/work-orders",
            j(json!({"device_id": "h3-door", "reason": "bored", "detail": "x"})),
            400,
        ),
        case(
            "tech1",
            "POST",
            format!("/work-orders/{order_id}/close"),
            j(json!({"resolution": "换了电池"})),
            200,
        ),
        case(
            "tech1",
            "POST",
            format!("/work-orders/{order_id}/close"),
            j(json!({"resolution": "again"})),
            409,
        ),
        case(
            "tech1",
            "POST",
            "/work-orders/424242/close",
            j(json!({"resolution": "x"})),
            404,
        ),
        // stream
        case("cw1", "GET", "/stream", None, 200),
        case("-", "GET", "/stream", None, 401),
        // logout last for cw1's session
        case("cw1", "POST", "/auth/logout", None, 204),
        case("-", "POST", "/auth/logout", None, 401),
    ];

    let mut sessions: BTreeMap<&str, Session> = BTreeMap::new();
    sessions.insert("-", api.anonymous());
    for u in ["cw1", "head1", "sup1", "tech1", "admin1"] {
        sessions.insert(u, api.login(u).await);
    }
    let mut good: BTreeSet<(String, String)> = BTreeSet::new();
    let mut bad: BTreeSet<(String, String)> = BTreeSet::new();
    let mut failures = vec![];
    for c in &cases {
        let (tpl, op) = operation_of(&doc, c.method, &c.path)
            .unwrap_or_else(|| panic!("{} {} is not documented", c.method, c.path));
        let s = &sessions[c.who];
        let r: Resp = if c.path == "/stream" {
            let resp = s.builder(c.method, &c.path, None).send().await.unwrap();
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            // A stream does not end: its body is read only when it is an error.
            let text = if status == 200 {
                String::new()
            } else {
                resp.text().await.unwrap_or_default()
            };
            let json = serde_json::from_str(&text).unwrap_or(Value::Null);
            Resp {
                status,
                headers,
                text,
                json,
            }
        } else {
            s.send(c.method, &c.path, c.body.clone()).await
        };
        let label = format!("{} {} as {}", c.method, c.path, c.who);
        if r.status != c.want {
            failures.push(format!(
                "{label}: {} (want {}): {}",
                r.status, c.want, r.text
            ));
            continue;
        }
        let key = (c.method.to_string(), tpl.clone());
        if c.want < 300 {
            good.insert(key);
        } else {
            bad.insert(key);
        }
        let Some(doc_resp) = op["responses"].get(r.status.to_string()) else {
            failures.push(format!("{label}: status {} is not documented", r.status));
            continue;
        };
        let ctype = r
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .to_string();
        if r.status == 204 {
            continue;
        }
        let Some(content) = doc_resp["content"].get(&ctype) else {
            failures.push(format!("{label}: content type {ctype} is not documented"));
            continue;
        };
        if ctype == "application/json"
            && let Some(schema) = content.get("schema")
            && let Err(e) = check(&doc, schema, &r.json, "body")
        {
            failures.push(format!("{label}: {e}"));
        }
    }
    // Every operation has a good and a bad case (the document has nothing to take
    // from /openapi.json, so it only has a good one).
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let key = (method.to_uppercase(), path.clone());
            if !good.contains(&key) {
                failures.push(format!("no good case for {} {path}", key.0));
            }
            if !bad.contains(&key) && path != "/openapi.json" {
                failures.push(format!("no bad case for {} {path}", key.0));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    api.stop().await;
}
