//! One input-validation layer for every API request, before any route sees it.
//!
//! - The path and the query string (percent-decoded) and every string in a JSON body,
//!   object keys included, must be text a person could have meant: no NUL (PostgreSQL
//!   refuses it in `text`, SQLite would store it, so the two backends behaved
//!   differently), no other control character but tab, line feed and carriage return,
//!   and no bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069), which can
//!   make a name read backwards in a list.
//! - Every time a request names (a query parameter or JSON member whose name ends in
//!   `_ms`: unix milliseconds) lies between 2000-01-01 and 2100-01-01: `i64::MIN` or
//!   1970 is a client's bug, and arithmetic on such values must not overflow anywhere.
//! - Identifiers that a request creates ([`check_id`]) use a small safe alphabet.
//!
//! A refused request answers 400 with the API's one error shape, naming the field, is
//! counted in `anxin_api_input_rejected_total{reason}` and logged. Bodies that are not
//! JSON (spreadsheet uploads) are left to their routes.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::ApiState;
use super::error::ApiError;

/// The largest JSON body the layer reads (the routes' own limits are smaller).
const MAX_JSON_BODY: usize = 2 * 1024 * 1024;

/// Why a piece of text was refused: the closed `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A NUL character.
    Nul,
    /// Another control character.
    Control,
    /// A bidirectional override or isolate.
    Bidi,
    /// An identifier outside the safe alphabet or length.
    BadId,
    /// A time (`…_ms`) outside 2000-01-01 .. 2100-01-01.
    Time,
    /// A JSON body that could not be read.
    Body,
}

/// The times a request may name: [2000-01-01, 2100-01-01) in unix milliseconds.
pub const TIME_RANGE_MS: std::ops::Range<i64> = 946_684_800_000..4_102_444_800_000;

/// Checks a time a request names (see [`TIME_RANGE_MS`]).
pub fn check_time(ms: i64) -> Result<(), Refusal> {
    if TIME_RANGE_MS.contains(&ms) {
        Ok(())
    } else {
        Err(Refusal::Time)
    }
}

impl Refusal {
    /// The metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::Nul => "nul",
            Refusal::Control => "control",
            Refusal::Bidi => "bidi",
            Refusal::BadId => "bad_id",
            Refusal::Time => "time",
            Refusal::Body => "body",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refusal::Nul => "contains a NUL character",
            Refusal::Control => "contains a control character",
            Refusal::Bidi => "contains a bidirectional override character",
            Refusal::BadId => {
                "an identifier of 1 to 64 letters, digits and . _ - : @, not starting with ."
            }
            Refusal::Time => "a time in unix milliseconds between 2000-01-01 and 2100-01-01",
            Refusal::Body => "the JSON body could not be read",
        }
    }
}

/// Checks one piece of free text.
pub fn check_text(s: &str) -> Result<(), Refusal> {
    for c in s.chars() {
        match c {
            '\0' => return Err(Refusal::Nul),
            '\t' | '\n' | '\r' => {}
            c if c.is_control() => return Err(Refusal::Control),
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => return Err(Refusal::Bidi),
            _ => {}
        }
    }
    Ok(())
}

/// Checks an identifier a request creates (a user id, a device id): 1–64 characters of
/// ASCII letters, digits and `. _ - : @`, not starting with a dot (no `..`, no path).
pub fn check_id(s: &str) -> Result<(), Refusal> {
    let ok = (1..=64).contains(&s.len())
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'@'));
    if ok { Ok(()) } else { Err(Refusal::BadId) }
}

/// [`check_id`] as an API error naming `field`.
pub fn id_field(field: &str, s: &str) -> Result<(), ApiError> {
    check_id(s).map_err(|r| ApiError::bad_field(field, r.message()))
}

/// The first string in `v` (keys included) that [`check_text`] refuses, with its path.
fn check_json(v: &Value, path: &mut String) -> Result<(), (String, Refusal)> {
    match v {
        Value::String(s) => check_text(s).map_err(|r| (path.clone(), r)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_json(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                check_text(k).map_err(|r| (path.clone(), r))?;
                if k.ends_with("_ms")
                    && let Some(ms) = item.as_i64().or_else(|| item.as_u64().map(|_| i64::MAX))
                {
                    check_time(ms).map_err(|r| (path.clone(), r))?;
                }
                check_json(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn refuse(state: &ApiState, field: &str, r: Refusal) -> Response {
    state.metrics().input_rejected(r.as_str());
    tracing::warn!(field, reason = r.as_str(), "API request refused: bad input");
    ApiError::bad_field(field, r.message()).into_response()
}

/// The layer: checks the path, the query and a JSON body, then hands the request on.
pub async fn reject_bad_input(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let uri = req.uri().clone();
    let path = percent_decode(uri.path());
    if let Err(r) = check_text(&path) {
        return refuse(&state, "path", r);
    }
    if let Some(q) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if let Err(r) = check_text(&k).and_then(|()| check_text(&v)) {
                return refuse(&state, &k, r);
            }
            if k.ends_with("_ms")
                && let Ok(ms) = v.parse::<i64>()
                && let Err(r) = check_time(ms)
            {
                return refuse(&state, &k, r);
            }
        }
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !is_json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_JSON_BODY).await else {
        return refuse(&state, "body", Refusal::Body);
    };
    // Malformed JSON is the route's to refuse, with its own message; only strings that
    // parse are checked here.
    if let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        && let Err((field, r)) = check_json(&v, &mut String::new())
    {
        return refuse(&state, if field.is_empty() { "body" } else { &field }, r);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Percent-decodes a URI path (lossy: invalid UTF-8 becomes U+FFFD, which is allowed;
/// what matters here is the characters it names).
fn percent_decode(p: &str) -> String {
    let mut out = Vec::with_capacity(p.len());
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_nul_control_or_bidi_characters_is_refused() {
        assert_eq!(check_text("李大伯\n三楼"), Ok(()));
        assert_eq!(check_text("a\u{0}b"), Err(Refusal::Nul));
        assert_eq!(check_text("a\u{1b}[31m"), Err(Refusal::Control));
        assert_eq!(check_text("user\u{202E}gpj.exe"), Err(Refusal::Bidi));
    }

    #[test]
    fn identifiers_use_a_safe_alphabet() {
        for ok in ["cw1", "demo-cw1", "h0001", "al-01a2", "user:demo@c1"] {
            assert_eq!(check_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "../etc",
            "a/b",
            ".hidden",
            "a\u{0}",
            "张三",
            &"x".repeat(65),
        ] {
            assert_eq!(check_id(bad), Err(Refusal::BadId), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_string_deep_in_a_body_is_found_with_its_path() {
        let v: Value = serde_json::json!({"a": [{"b": "ok"}, {"c": "x\u{0}"}]});
        assert_eq!(
            check_json(&v, &mut String::new()),
            Err(("a[1].c".to_string(), Refusal::Nul))
        );
    }

    #[test]
    fn times_outside_2000_to_2100_are_refused_wherever_they_sit() {
        assert_eq!(check_time(1_796_000_400_000), Ok(()));
        assert_eq!(check_time(i64::MIN), Err(Refusal::Time));
        assert_eq!(check_time(0), Err(Refusal::Time));
        let v: Value = serde_json::json!({"contact": {"at_ms": 0}, "note": "ok"});
        assert_eq!(
            check_json(&v, &mut String::new()),
            Err(("contact.at_ms".to_string(), Refusal::Time))
        );
        // A member that is not a time is not judged as one.
        let v: Value = serde_json::json!({"battery_pct": 0});
        assert_eq!(check_json(&v, &mut String::new()), Ok(()));
    }

    #[test]
    fn percent_encoded_nul_in_a_path_is_seen() {
        assert!(percent_decode("/alerts/al-%00").contains('\0'));
        assert_eq!(percent_decode("/a%2"), "/a%2");
    }
}
