//! Who is asking: password login (argon2id), browser sessions with CSRF protection, API
//! tokens, and login rate limiting.
//!
//! - **Passwords** are stored only as argon2id PHC strings (`users.password_hash`),
//!   hashed and verified on the blocking pool. An unknown user costs the same hash
//!   verification as a known one, so timing tells nothing.
//! - **Sessions**: a random 256-bit token in the cookie `anxin_session` (`HttpOnly;
//!   SameSite=Strict; Path=/`, plus `Secure` when served over TLS); the store keeps only
//!   its SHA-256. Each session has a CSRF token that every state-changing request must
//!   send back in `X-CSRF-Token` (given by login and by `GET /auth/me`). A session ends
//!   after [`AuthConfig::session_idle_s`] without a request, at
//!   [`AuthConfig::session_max_s`], at logout, or when the user is deactivated.
//! - **API tokens**: `Authorization: Bearer anx_<id>_<secret>`; the store keeps the
//!   secret's SHA-256. A token acts as its user (same role and scope) and needs no CSRF
//!   token (no browser sends it by itself).
//! - **Rate limiting** ([`LoginLimiter`]): failed logins are counted per (user id, client
//!   address), so that guesses from one address never lock the user out of another;
//!   past [`AuthConfig::login_max_failures_per_user`] each further attempt of that pair
//!   waits 1 s, doubling up to [`AuthConfig::login_window_s`]; one address has at most
//!   [`AuthConfig::login_max_failures_per_client`] failures per window over all users.
//!   Check and count are one step under a lock, and a pair has one attempt in flight at
//!   a time, so concurrent guesses are refused (429 with `Retry-After`) before any
//!   password is checked.
//!
//! Time here is wall-clock time ([`ApiState::auth_clock`]), not the demo's accelerated
//! clock, so that a session lasts hours of real time.

use std::net::SocketAddr;

use crate::store::{ApiTokenRow, SessionRow};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::ApiState;
use super::error::{ApiError, ErrorCode};
use crate::workflow::{Actor, User, UserId};

/// The session cookie.
pub const SESSION_COOKIE: &str = "anxin_session";
/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// When `Secure` is added to the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureCookies {
    /// When the request came over TLS: an `https` URI, or `X-Forwarded-Proto: https`
    /// from a TLS-terminating proxy. Plain HTTP on localhost gets no `Secure` (browsers
    /// would drop the cookie).
    Auto,
    /// Always (the gateway is only reached over TLS).
    Always,
}

/// Authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// A session ends after this long without a request.
    pub session_idle_s: i64,
    /// A session ends this long after login, whatever happens.
    pub session_max_s: i64,
    /// Failed logins counted over this window.
    pub login_window_s: i64,
    /// Failed logins per (user id, client address) before each further attempt of that
    /// pair waits (1 s, doubling, at most the window).
    pub login_max_failures_per_user: i64,
    /// Failed logins per client address, over all user ids, within the window before 429.
    pub login_max_failures_per_client: i64,
    /// Longest lifetime of an API token, in days.
    pub token_max_days: i64,
    /// `Secure` cookies.
    pub secure_cookies: SecureCookies,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_s: 8 * 3600,
            session_max_s: 72 * 3600,
            login_window_s: 15 * 60,
            login_max_failures_per_user: 5,
            login_max_failures_per_client: 30,
            token_max_days: 365,
            secure_cookies: SecureCookies::Auto,
        }
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session (its hashed token and CSRF token).
    Session {
        /// SHA-256 of the cookie.
        token_hash: String,
        /// The CSRF token.
        csrf: String,
    },
    /// An API token.
    Token {
        /// The token's id.
        id: String,
    },
}

/// The authenticated caller, put in the request's extensions by the policy middleware.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user (active).
    pub user: User,
    /// How.
    pub via: Via,
}

impl Principal {
    /// As the workflow's actor.
    pub fn actor(&self) -> Actor {
        Actor::User(self.user.id.clone())
    }

    /// The user's id.
    pub fn id(&self) -> &UserId {
        &self.user.id
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// The client address (from the socket, when the server was started with connect
/// info), for rate limiting.
pub fn client_of(parts_ext: &axum::http::Extensions) -> String {
    parts_ext
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Hex SHA-256.
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Compares without an early exit.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Hashes a password as an argon2id PHC string (on the blocking pool).
pub async fn hash_password(password: &str) -> Result<String, ApiError> {
    check_password_rules(password)?;
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(pw.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| ApiError::internal(&e))
}

/// A PHC string that no password matches, verified for unknown users so that their
/// answer takes as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
    Tq0ZcIMzVtLnvX2cGx0hk4s/5vzIwqEp5BXwLAyVgp0";

/// Verifies `password` against a stored PHC string (on the blocking pool); a missing
/// or unparsable hash never matches.
pub async fn verify_password(password: &str, stored: Option<String>) -> bool {
    let pw = password.to_string();
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
        && known
}

/// Password rules: at least [`MIN_PASSWORD_LEN`] characters, at most 256.
pub fn check_password_rules(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(ApiError::bad_field(
            "password",
            format!("a password needs at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if n > 256 {
        return Err(ApiError::bad_field(
            "password",
            "a password has at most 256 characters",
        ));
    }
    Ok(())
}

/// Sessions that ended, told to live streams so that theirs end at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndedSessions {
    /// One session (the SHA-256 of its cookie), at logout.
    Session(String),
    /// Every session and token of a user (password change, deactivation).
    User(UserId),
}

impl EndedSessions {
    /// Whether `p`'s credentials are among them.
    pub fn covers(&self, p: &Principal) -> bool {
        match (self, &p.via) {
            (EndedSessions::User(u), _) => *u == p.user.id,
            (EndedSessions::Session(h), Via::Session { token_hash, .. }) => h == token_hash,
            (EndedSessions::Session(_), Via::Token { .. }) => false,
        }
    }
}

/// Sets `user`'s password (argon2id); ends the user's sessions (and their live streams)
/// and revokes the user's API tokens.
pub async fn set_password(state: &ApiState, user: &UserId, password: &str) -> Result<(), ApiError> {
    store_password(state.store(), state.auth_now(), user, password).await?;
    state.sessions_ended(EndedSessions::User(user.clone()));
    Ok(())
}

/// Sets `user`'s password (argon2id) in `store`, and in the same transaction ends the
/// user's sessions and revokes the user's API tokens: a credential obtained with the
/// old password (or by whoever learnt it) must not outlive it. For tools and tests that
/// have no [`ApiState`] too.
pub async fn store_password(
    store: &crate::store::Store,
    now_ms: i64,
    user: &UserId,
    password: &str,
) -> Result<(), ApiError> {
    let hash = hash_password(password).await?;
    let Some(revoked) = store.replace_password(user.as_str(), &hash, now_ms).await? else {
        return Err(ApiError::not_found("user"));
    };
    if revoked > 0 {
        tracing::info!(user_id = %user, tokens = revoked, "API tokens revoked with the password change");
    }
    Ok(())
}

/// Ends every session of `user`.
pub async fn end_sessions_of(state: &ApiState, user: &UserId) -> Result<(), ApiError> {
    state
        .store()
        .end_sessions_of(user.as_str(), state.auth_now())
        .await?;
    state.sessions_ended(EndedSessions::User(user.clone()));
    Ok(())
}

/// A new session: its cookie value, CSRF token and end.
pub struct NewSession {
    /// The cookie value (only ever sent to the client).
    pub token: String,
    /// The CSRF token.
    pub csrf: String,
    /// When it ends at the latest.
    pub expires_ms: i64,
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Wrong id or password (or no password set, or deactivated).
    BadCredentials,
    /// Too many failures; wait this many seconds.
    RateLimited(u64),
}

/// Checks the rate limits, the password, and opens a session.
pub async fn login(
    state: &ApiState,
    login: &str,
    password: &str,
    client: &str,
    user_agent: &str,
) -> Result<Result<(User, NewSession), LoginFailure>, ApiError> {
    let cfg = &state.auth_config;
    let now = state.auth_now();
    let key: String = login.trim().to_lowercase().chars().take(64).collect();
    let ticket = match state.login_limiter().begin(&key, client, now, cfg) {
        Ok(t) => t,
        Err(wait) => return Ok(Err(LoginFailure::RateLimited(wait))),
    };
    let (stored, active) = state
        .store()
        .sign_in_record(login.trim())
        .await?
        .unwrap_or((None, false));
    let ok = verify_password(password, stored).await && active;
    ticket.finish(ok, state.auth_now());
    state
        .store()
        .record_login_attempt(&crate::workflow::new_id("la", now), now, &key, client, ok)
        .await?;
    if !ok {
        return Ok(Err(LoginFailure::BadCredentials));
    }
    let user = state
        .workflow()
        .user(&UserId::new(login.trim()))
        .await
        .map_err(ApiError::from)?;
    let token = random_hex(32);
    let csrf = random_hex(32);
    let expires_ms = now + cfg.session_max_s * 1000;
    state
        .store()
        .open_session(&SessionRow {
            token_hash: sha256_hex(&token),
            user_id: user.id.as_str().to_string(),
            csrf: csrf.clone(),
            created_ms: now,
            last_seen_ms: now,
            expires_ms,
            ended_ms: None,
            user_agent: user_agent.chars().take(200).collect(),
        })
        .await?;
    Ok(Ok((
        user,
        NewSession {
            token,
            csrf,
            expires_ms,
        },
    )))
}

/// The login limiter (see the module's documentation): in memory, per gateway process.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    state: std::sync::Arc<std::sync::Mutex<LimiterState>>,
}

#[derive(Debug, Default)]
struct LimiterState {
    /// (user id, client address) → its failures.
    pairs: std::collections::HashMap<(String, String), PairState>,
    /// Client address → times of its failures within the window (oldest first).
    clients: std::collections::HashMap<String, std::collections::VecDeque<i64>>,
}

#[derive(Debug, Default)]
struct PairState {
    failures: u32,
    last_failure_ms: i64,
    /// An attempt of this pair is being checked.
    busy: bool,
}

/// Entries kept before the ones older than the window are dropped.
const LIMITER_PRUNE_AT: usize = 10_000;

/// Ceiling of milliseconds as whole seconds, at least 1.
fn wait_s(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

impl LoginLimiter {
    /// Checks the limits for one attempt of `login` from `client` and, in the same step,
    /// reserves it: `Err(seconds to wait)` when it is refused.
    pub fn begin(
        &self,
        login: &str,
        client: &str,
        now: i64,
        cfg: &AuthConfig,
    ) -> Result<LoginTicket, u64> {
        let window = cfg.login_window_s.max(1) * 1000;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.pairs.len() + st.clients.len() > LIMITER_PRUNE_AT {
            st.pairs
                .retain(|_, p| p.busy || now - p.last_failure_ms < window);
            st.clients
                .retain(|_, q| q.back().is_some_and(|t| now - t < window));
        }
        let key = (login.to_string(), client.to_string());
        let pair = st.pairs.entry(key.clone()).or_default();
        if pair.failures > 0 && now - pair.last_failure_ms >= window {
            *pair = PairState::default();
        }
        if pair.busy {
            return Err(1);
        }
        let free = u32::try_from(cfg.login_max_failures_per_user.max(0)).unwrap_or(u32::MAX);
        if pair.failures >= free {
            let doublings = (pair.failures - free).min(30);
            let delay = (1000_i64 << doublings).min(window);
            let until = pair.last_failure_ms + delay;
            if now < until {
                return Err(wait_s(until - now));
            }
        }
        pair.busy = true;
        let recent = st.clients.entry(client.to_string()).or_default();
        while recent.front().is_some_and(|t| now - t >= window) {
            recent.pop_front();
        }
        let over =
            i64::try_from(recent.len()).unwrap_or(i64::MAX) >= cfg.login_max_failures_per_client;
        let oldest = recent.front().copied();
        if over {
            if let Some(p) = st.pairs.get_mut(&key) {
                p.busy = false;
            }
            return Err(wait_s(oldest.unwrap_or(now) + window - now));
        }
        Ok(LoginTicket {
            state: self.state.clone(),
            key: Some(key),
        })
    }
}

/// One reserved login attempt; [`LoginTicket::finish`] records its outcome (dropped
/// unfinished, it only frees the pair).
#[derive(Debug)]
pub struct LoginTicket {
    state: std::sync::Arc<std::sync::Mutex<LimiterState>>,
    key: Option<(String, String)>,
}

impl LoginTicket {
    /// Records the outcome: a success clears the pair's failures, a failure counts for
    /// the pair and for the client address.
    pub fn finish(mut self, ok: bool, now: i64) {
        let Some(key) = self.key.take() else { return };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            st.pairs.remove(&key);
            return;
        }
        let pair = st.pairs.entry(key.clone()).or_default();
        pair.busy = false;
        pair.failures = pair.failures.saturating_add(1);
        pair.last_failure_ms = now;
        st.clients.entry(key.1).or_default().push_back(now);
    }
}

impl Drop for LoginTicket {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = st.pairs.get_mut(&key) {
                p.busy = false;
            }
        }
    }
}

/// Ends a session.
pub async fn logout(state: &ApiState, token_hash: &str) -> Result<(), ApiError> {
    state
        .store()
        .end_session(token_hash, state.auth_now())
        .await?;
    state.sessions_ended(EndedSessions::Session(token_hash.to_string()));
    Ok(())
}

/// The cookie's value in `headers`, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came over TLS.
fn over_tls(parts: &Parts) -> bool {
    parts.uri.scheme_str() == Some("https")
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a session (empty value and `Max-Age=0` to clear it).
pub fn session_cookie(state: &ApiState, parts: &Parts, value: Option<&str>) -> HeaderValue {
    let secure = state.auth_config.secure_cookies == SecureCookies::Always || over_tls(parts);
    let (v, age) = match value {
        Some(v) => (v, state.auth_config.session_max_s),
        None => ("", 0),
    };
    let s = format!(
        "{SESSION_COOKIE}={v}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&s)
        .unwrap_or_else(|_| HeaderValue::from_static("anxin_session=; Max-Age=0"))
}

/// Why the credentials of a request were refused (logged and counted; the client
/// always gets the same 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No cookie, no token.
    Missing,
    /// Unknown, ended or expired session.
    Session,
    /// Unknown, revoked or expired token, or a malformed one.
    Token,
    /// The user is deactivated or gone.
    User,
}

/// Resolves the request's credentials: a Bearer token first, else the session cookie.
pub async fn authenticate(
    state: &ApiState,
    parts: &Parts,
) -> Result<Result<Principal, Refused>, ApiError> {
    let now = state.auth_now();
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
        let Some(token) = auth
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Ok(Err(Refused::Token));
        };
        let Some((id, secret)) = token.strip_prefix("anx_").and_then(|t| t.split_once('_')) else {
            return Ok(Err(Refused::Token));
        };
        let Some(row) = state.store().api_token(id).await? else {
            return Ok(Err(Refused::Token));
        };
        if !same(&row.secret_hash, &sha256_hex(secret))
            || row.revoked_ms.is_some()
            || row.expires_ms.is_some_and(|e| e <= now)
        {
            return Ok(Err(Refused::Token));
        }
        let Some(user) = active_user(state, &row.user_id).await? else {
            return Ok(Err(Refused::User));
        };
        if row.last_used_ms.is_none_or(|t| now - t > 60_000) {
            state.store().touch_api_token(id, now).await?;
        }
        return Ok(Ok(Principal {
            user,
            via: Via::Token { id: id.to_string() },
        }));
    }
    let Some(cookie) = cookie(&parts.headers, SESSION_COOKIE).filter(|c| !c.is_empty()) else {
        return Ok(Err(Refused::Missing));
    };
    let token_hash = sha256_hex(cookie);
    let Some(row) = state.store().session(&token_hash).await? else {
        return Ok(Err(Refused::Session));
    };
    if row.ended_ms.is_some()
        || row.expires_ms <= now
        || now - row.last_seen_ms > state.auth_config.session_idle_s * 1000
    {
        return Ok(Err(Refused::Session));
    }
    let Some(user) = active_user(state, &row.user_id).await? else {
        return Ok(Err(Refused::User));
    };
    if now - row.last_seen_ms > 30_000 {
        state.store().touch_session(&token_hash, now).await?;
    }
    Ok(Ok(Principal {
        user,
        via: Via::Session {
            token_hash,
            csrf: row.csrf,
        },
    }))
}

/// Whether a session is still valid (the live stream re-checks it).
pub async fn session_alive(state: &ApiState, principal: &Principal) -> bool {
    let now = state.auth_now();
    let r = match &principal.via {
        Via::Session { token_hash, .. } => state
            .store()
            .session(token_hash)
            .await
            .ok()
            .flatten()
            .map(|r| r.ended_ms.is_none() && r.expires_ms > now),
        Via::Token { id } => state
            .store()
            .api_token(id)
            .await
            .ok()
            .flatten()
            .map(|r| r.revoked_ms.is_none() && r.expires_ms.is_none_or(|e| e > now)),
    };
    let user_ok = matches!(
        active_user(state, principal.user.id.as_str()).await,
        Ok(Some(_))
    );
    r.unwrap_or(false) && user_ok
}

async fn active_user(state: &ApiState, id: &str) -> Result<Option<User>, ApiError> {
    match state.workflow().user(&UserId::new(id)).await {
        Ok(u) if u.active => Ok(Some(u)),
        Ok(_) | Err(crate::workflow::WorkflowError::UnknownUser(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Checks CSRF for a state-changing request of a browser session: the
/// `X-CSRF-Token` header must equal the session's token, and an `Origin` header, when
/// sent, must name this host.
pub fn check_csrf(parts: &Parts, principal: &Principal) -> Result<(), ApiError> {
    let Via::Session { csrf, .. } = &principal.via else {
        return Ok(());
    };
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !same(sent, csrf) {
        return Err(ApiError::new(
            ErrorCode::CsrfFailed,
            "missing or wrong X-CSRF-Token for this session",
        ));
    }
    check_origin(parts)
}

/// An `Origin` header, when sent, must name the host the request was sent to.
pub fn check_origin(parts: &Parts) -> Result<(), ApiError> {
    let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, h)| h.trim_end_matches('/'))
        .unwrap_or("");
    if origin == "null" || origin_host != host {
        return Err(ApiError::new(
            ErrorCode::CsrfFailed,
            "cross-origin request refused",
        ));
    }
    Ok(())
}

/// A new API token for `user`: (id, the full token to show once, expiry).
pub async fn create_token(
    state: &ApiState,
    user: &UserId,
    name: &str,
    days: Option<i64>,
) -> Result<(String, String, Option<i64>), ApiError> {
    let now = state.auth_now();
    let max = state.auth_config.token_max_days;
    let days = days.unwrap_or(max);
    if !(1..=max).contains(&days) {
        return Err(ApiError::bad_field(
            "expires_in_days",
            format!("between 1 and {max} days"),
        ));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_field("name", "a name of 1 to 100 characters"));
    }
    let id = random_hex(8);
    let secret = random_hex(24);
    let expires = now + days * 86_400_000;
    state
        .store()
        .create_api_token(&ApiTokenRow {
            id: id.clone(),
            user_id: user.as_str().to_string(),
            name: name.to_string(),
            secret_hash: sha256_hex(&secret),
            created_ms: now,
            expires_ms: Some(expires),
            last_used_ms: None,
            revoked_ms: None,
        })
        .await?;
    Ok((id.clone(), format!("anx_{id}_{secret}"), Some(expires)))
}

/// One API token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TokenInfo {
    /// Id (the part after `anx_`).
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// Created at (ms).
    pub created_ms: i64,
    /// Expires at (ms).
    pub expires_ms: Option<i64>,
    /// Last used at (ms, to the minute).
    pub last_used_ms: Option<i64>,
    /// Revoked at (ms).
    pub revoked_ms: Option<i64>,
}

/// `user`'s tokens, newest first.
pub async fn tokens_of(state: &ApiState, user: &UserId) -> Result<Vec<TokenInfo>, ApiError> {
    let rows = state.store().api_tokens_of(user.as_str()).await?;
    Ok(rows
        .into_iter()
        .map(|r| TokenInfo {
            id: r.id,
            name: r.name,
            created_ms: r.created_ms,
            expires_ms: r.expires_ms,
            last_used_ms: r.last_used_ms,
            revoked_ms: r.revoked_ms,
        })
        .collect())
}

/// Revokes `user`'s token `id` (404 when it is not theirs).
pub async fn revoke_token(state: &ApiState, user: &UserId, id: &str) -> Result<(), ApiError> {
    if !state
        .store()
        .revoke_api_token(user.as_str(), id, state.auth_now())
        .await?
    {
        return Err(ApiError::not_found("token"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_hash_is_argon2id_and_verifies_only_the_same_password() {
        let h = hash_password("geheim-123").await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("geheim-123", Some(h.clone())).await);
        assert!(!verify_password("geheim-124", Some(h)).await);
        assert!(!verify_password("geheim-123", None).await);
    }

    #[test]
    fn the_dummy_hash_parses_so_unknown_users_cost_a_full_verification() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password_rules("1234567").is_err());
        assert!(check_password_rules("12345678").is_ok());
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; anxin_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
