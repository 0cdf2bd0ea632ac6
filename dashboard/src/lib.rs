//! The Anxin dashboard: a small single-page app over the gateway's `/api/v1`, compiled
//! into the gateway binary (no build step to run it: plain ES modules, CSS and the
//! vendored uPlot chart library under `assets/vendor/`, no CDN).
//!
//! Pages (each path serves the same shell; `assets/app.js` draws the page):
//! `/login`, `/` (my households today), `/alerts` (the live queue with an audible
//! alarm), `/households/{id}`, `/contact/{id}` (the daily-contact form), `/needs`,
//! `/overview` (supervisors), `/devices`, `/devices/{id}`, `/work-orders`,
//! `/installations/{id}` (technicians). zh-CN by default, English on
//! request (`assets/i18n.js`). `docs/dashboard.md` describes them.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const API_JS: &str = include_str!("../assets/api.js");
const I18N_JS: &str = include_str!("../assets/i18n.js");
const STYLE: &str = include_str!("../assets/style.css");
const UPLOT_JS: &str = include_str!("../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/vendor/uplot/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../assets/vendor/uplot/LICENSE");

/// Everything from this origin only; no inline scripts; no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; media-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The pages of the single-page app (all serve the shell).
pub const PAGES: &[&str] = &[
    "/",
    "/login",
    "/alerts",
    "/needs",
    "/overview",
    "/devices",
    "/devices/{id}",
    "/work-orders",
    "/installations/{id}",
    "/households/{id}",
    "/contact/{id}",
];

/// The dashboard's routes, to be merged into the gateway's router.
pub fn router() -> Router {
    let mut r = Router::new();
    for p in PAGES {
        r = r.route(p, get(index));
    }
    r.route("/assets/app.js", get(|| asset(APP_JS, JS)))
        .route("/assets/api.js", get(|| asset(API_JS, JS)))
        .route("/assets/i18n.js", get(|| asset(I18N_JS, JS)))
        .route("/assets/style.css", get(|| asset(STYLE, CSS)))
        .route(
            "/assets/vendor/uplot/uPlot.iife.min.js",
            get(|| asset(UPLOT_JS, JS)),
        )
        .route(
            "/assets/vendor/uplot/uPlot.min.css",
            get(|| asset(UPLOT_CSS, CSS)),
        )
        .route(
            "/assets/vendor/uplot/LICENSE",
            get(|| asset(UPLOT_LICENSE, "text/plain; charset=utf-8")),
        )
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

async fn index() -> Response {
    secure(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            INDEX,
        )
            .into_response(),
    )
}

async fn asset(body: &'static str, ctype: &'static str) -> Response {
    secure(
        (
            [
                (header::CONTENT_TYPE, ctype),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_is_chinese_by_default_and_loads_no_remote_script() {
        assert!(INDEX.contains("lang=\"zh-CN\""));
        for f in [INDEX, APP_JS, API_JS, I18N_JS, STYLE] {
            assert!(!f.contains("http://") && !f.contains("https://"), "no CDN");
        }
    }

    #[test]
    fn every_english_string_has_a_chinese_one() {
        let keys = |dict: &str| -> Vec<String> {
            let start = I18N_JS.find(&format!("const {dict} = {{")).unwrap_or(0);
            let body = &I18N_JS[start..];
            let end = body.find("\n};").unwrap_or(body.len());
            body[..end]
                .split([',', '{', '\n'])
                .filter_map(|kv| kv.trim().split_once(':'))
                .map(|(k, _)| k.trim().to_string())
                .filter(|k| {
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.is_empty()
                })
                .collect()
        };
        let zh = keys("zh");
        let en = keys("en");
        assert!(zh.len() > 100, "{}", zh.len());
        for k in &en {
            assert!(zh.contains(k), "{k} has no Chinese text");
        }
    }
}
