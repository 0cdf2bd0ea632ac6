//! The embedded broker on rmqtt 0.24: listeners, our hooks for authentication, ACL and
//! counters, an in-memory retained-message store, revocation kicks, shutdown.
//!
//! The plain TCP listener is rmqtt's on loopback, behind `front.rs` on the public address
//! (a deadline for the CONNECT, a cap on connections waiting for one, the client's
//! address passed on as a PROXY protocol line). The TLS listener is rmqtt's own.
//!
//! rmqtt keeps all its state in a per-instance `ServerContext` (no process-wide
//! globals), so several brokers can run in one process (the tests do).
//!
//! Hooks registered on the context:
//! - `ClientAuthenticate`: first the [`LoginThrottle`] (after failures, the next attempt
//!   of the same client id and address is answered only after a progressive delay, or
//!   refused unchecked when too many are queued), then [`BrokerAuth::authenticate`] plus a check of the last will's
//!   topic with [`BrokerAuth::may_publish`] (rmqtt publishes wills without any ACL check,
//!   so a will on a foreign topic is refused at CONNECT, like mosquitto does). The
//!   listener does not allow anonymous clients at the rmqtt level, so this hook sees
//!   every CONNECT; [`BrokerAuth`] decides what "anonymous" means.
//! - `MessagePublishCheckAcl`: a denied PUBLISH is dropped and never routed. Under MQTT
//!   3.1.1 the client still gets its PUBACK (there is no code to say otherwise); under
//!   MQTT 5 the PUBACK carries "not authorized". The connection stays up. An allowed
//!   PUBLISH on a topic the [`UplinkTap`] wants is handed to it here, in process, before
//!   rmqtt routes it and acknowledges it to the device: the gateway's ingest gets device
//!   uplinks without a second MQTT hop, and a full ingest queue holds the publishing
//!   connection (back-pressure) instead of filling a session queue that drops.
//! - `ClientSubscribeCheckAcl`: a denied filter gets SUBACK failure (0x80).
//! - `ClientConnected` / `ClientDisconnected`: counters and the per-connection
//!   principal table.
//! - `MessageDropped`: counted by reason (a full session queue above all).
//!
//! Known limits of rmqtt 0.24 (see the tests in `gateway/tests/broker_embedded.rs`):
//! - no back-pressure: a PUBLISH is acknowledged once queued for the subscribers; a
//!   subscriber slower than its publishers loses the excess beyond `max_queue` (counted
//!   as `queue_full`). On this 2-core machine one subscriber keeps up to ~50–60k QoS 1
//!   msg/s. (The gateway's own uplinks go through the tap, which waits instead.)
//! - a QoS 1 message whose write hits a connection that has just died is lost, and the
//!   in-flight messages of a resumed session are resent in reverse order
//!   (`session.rs`: `deliver`, `transfer_session_state`). Devices resend until the
//!   gateway's application-level ack and the gateway orders by sequence number, so Anxin
//!   loses nothing, but a two-line patch of rmqtt fixes both;
//! - after a client's DISCONNECT, rmqtt keeps delivering to it until the client closes
//!   the socket.

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::retain::{DefaultRetainStorage, RetainStorage};
use rmqtt::server::MqttServer;
use rmqtt::types::{
    AuthResult, ClientId, DashMap, Id, LastWill, PublishAclResult, Reason, Retain,
    SubscribeAclResult, TopicFilter, TopicName,
};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::stats::LogLimiter;
use super::throttle::{Admission, LoginThrottle, ThrottleConfig};
use super::{
    AuthDenied, BrokerAuth, BrokerConfig, BrokerError, BrokerStats, DenyReason, DropReason,
    Principal, UplinkTap,
};

/// Listener ids inside the rmqtt context (any distinct values).
const TCP_LISTENER: u16 = 1;
const TLS_LISTENER: u16 = 2;

/// How long [`EmbeddedBroker::shutdown`] waits for live connections to be closed.
const SHUTDOWN_KICK_TIMEOUT: Duration = Duration::from_secs(3);

/// A running embedded broker. Dropping it without [`shutdown`](Self::shutdown) stops
/// the listeners (the accept task is aborted) but leaves live connections to die with the
/// runtime.
#[derive(Debug)]
pub struct EmbeddedBroker {
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    scx: ServerContext,
    server: JoinHandle<()>,
    kicker: Option<JoinHandle<()>>,
    /// The plain listener's front door (CONNECT deadline, handshake cap).
    front: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// The bound address of the plain MQTT listener (the real port when configured as 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound address of the TLS listener, if one is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Closes the live connection of `client_id`, if any, and discards its session.
    /// Returns whether there was one.
    pub async fn kick(&self, client_id: &str) -> bool {
        kick(&self.scx, client_id).await
    }

    /// Stops listening, closes every live connection (waiting at most 3 s for them) and
    /// returns. Sessions, queues and retained messages are dropped.
    pub async fn shutdown(mut self) {
        self.front.abort();
        self.server.abort();
        if let Some(kicker) = self.kicker.take() {
            kicker.abort();
        }
        let _ = (&mut self.server).await;
        let client_ids: Vec<String> = {
            let shared = self.scx.extends.shared().await;
            shared
                .iter()
                .filter_map(|entry| entry.session().map(|s| s.id.client_id.to_string()))
                .collect()
        };
        let kicks = client_ids.iter().map(|c| kick(&self.scx, c));
        if tokio::time::timeout(SHUTDOWN_KICK_TIMEOUT, futures::future::join_all(kicks))
            .await
            .is_err()
        {
            tracing::warn!(
                clients = client_ids.len(),
                "Broker shutdown did not close every connection in time."
            );
        }
        tracing::info!(addr = %self.local_addr, "Embedded MQTT broker stopped.");
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(kicker) = &self.kicker {
            kicker.abort();
        }
    }
}

/// Starts the embedded broker in the current tokio runtime (multi-thread) and returns
/// once its listeners are bound.
pub async fn start(
    config: BrokerConfig,
    auth: Arc<dyn BrokerAuth>,
    stats: Arc<BrokerStats>,
) -> Result<EmbeddedBroker, BrokerError> {
    start_with_tap(config, auth, stats, None).await
}

/// [`start`], handing the accepted uplinks that `tap` wants to it in process.
pub async fn start_with_tap(
    config: BrokerConfig,
    auth: Arc<dyn BrokerAuth>,
    stats: Arc<BrokerStats>,
    tap: Option<Arc<dyn UplinkTap>>,
) -> Result<EmbeddedBroker, BrokerError> {
    let max_inflight = NonZeroU16::new(config.max_inflight)
        .ok_or(BrokerError::Config("max_inflight must be at least 1"))?;
    if config.max_packet_bytes < 128 {
        return Err(BrokerError::Config("max_packet_bytes must be at least 128"));
    }

    let scx = ServerContext::new()
        // rmqtt's busy check refuses CONNECTs when the machine's CPU load is high; on a
        // small gateway box under load that would lock devices out.
        .busy_check_enable(false)
        .build()
        .await;

    *scx.extends.retain_mut().await = Box::new(MemoryRetain::default());

    let kicks = auth.kicks();
    let hooks = Arc::new(Hooks {
        auth,
        stats,
        throttle: LoginThrottle::new(ThrottleConfig::default()),
        tap,
        principals: DashMap::default(),
        authentications: AtomicU64::new(0),
        auth_log: LogLimiter::new(20, Duration::from_secs(10)),
        acl_log: LogLimiter::new(20, Duration::from_secs(10)),
        drop_log: LogLimiter::new(5, Duration::from_secs(10)),
    });
    let register = scx.extends.hook_mgr().register();
    for typ in [
        Type::ClientAuthenticate,
        Type::ClientConnected,
        Type::ClientDisconnected,
        Type::MessagePublishCheckAcl,
        Type::ClientSubscribeCheckAcl,
        Type::MessageDropped,
    ] {
        register
            .add(typ, Box::new(HookHandler(hooks.clone())))
            .await;
    }
    register.start().await;

    let listener = |name: &str, addr: SocketAddr| {
        Builder::new()
            .name(name)
            .laddr(addr)
            .reuseaddr(Some(true))
            .nodelay(true)
            .allow_anonymous(false)
            .max_packet_size(config.max_packet_bytes)
            .max_inflight(max_inflight)
            .max_mqueue_len(config.max_queue)
            .session_expiry_interval(config.session_expiry)
            .message_expiry_interval(config.message_expiry)
            // No in-session retransmission (MQTT 3.1.1 resends on reconnect only; MQTT 5
            // forbids it): a slow gateway must not receive duplicate storms.
            .message_retry_interval(Duration::ZERO)
            .max_clientid_len(128)
            .handshake_timeout(config.connect_timeout)
    };

    // rmqtt's plain listener is on loopback behind `front.rs`, which takes the public
    // address, enforces the CONNECT deadline and passes the client's address on in a
    // PROXY protocol line.
    let inner_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let tcp = listener("anxin/tcp", inner_addr)
        .proxy_protocol(true)
        .bind()
        .and_then(|l| l.tcp())
        .map_err(|e| BrokerError::Bind {
            addr: inner_addr,
            source: e.into(),
        })?;
    let inner_addr = tcp.local_addr().map_err(|e| BrokerError::Bind {
        addr: inner_addr,
        source: e.into(),
    })?;
    let bind_err = |e: std::io::Error| BrokerError::Bind {
        addr: config.listen,
        source: e.into(),
    };
    let public = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(bind_err)?;
    let local_addr = public.local_addr().map_err(bind_err)?;
    let front = tokio::spawn(super::front::run(
        public,
        inner_addr,
        config.connect_timeout,
        config.max_packet_bytes as usize,
        hooks.stats.clone(),
    ));
    let mut server = MqttServer::new(scx.clone()).listener_by_id(tcp, TCP_LISTENER);

    let mut tls_addr = None;
    if let Some(tls) = &config.tls {
        let tls_err = |e: rmqtt::Error| BrokerError::Tls {
            cert: tls.cert_path.clone(),
            key: tls.key_path.clone(),
            source: e.into(),
        };
        let l = listener("anxin/tls", tls.listen)
            .tls_cert(Some(tls.cert_path.to_string_lossy()))
            .tls_key(Some(tls.key_path.to_string_lossy()))
            .bind()
            .map_err(|e| BrokerError::Bind {
                addr: tls.listen,
                source: e.into(),
            })?
            .tls()
            .map_err(tls_err)?;
        tls_addr = Some(l.local_addr().map_err(tls_err)?);
        server = server.listener_by_id(l, TLS_LISTENER);
    }

    let server = server.build();
    let server = tokio::spawn(async move {
        if let Err(error) = server.run().await {
            tracing::error!(%error, "Embedded MQTT broker stopped with an error.");
        }
    });
    let kicker = kicks.map(|rx| tokio::spawn(kick_revoked(scx.clone(), rx)));

    tracing::info!(addr = %local_addr, tls = ?tls_addr, "Embedded MQTT broker listening.");
    Ok(EmbeddedBroker {
        local_addr,
        tls_addr,
        scx,
        server,
        kicker,
        front,
    })
}

/// Closes the connections named by `rx` until the sender goes away.
async fn kick_revoked(scx: ServerContext, mut rx: broadcast::Receiver<String>) {
    loop {
        match rx.recv().await {
            Ok(client_id) => {
                if kick(&scx, &client_id).await {
                    tracing::info!(device_id = %client_id, "Closed the connection of a revoked client.");
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "Missed revocation kicks; those clients stay connected until they reconnect."
                );
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Kicks `client_id` (clean: its session is discarded). Retries briefly while a
/// handshake of the same client id holds the session lock.
async fn kick(scx: &ServerContext, client_id: &str) -> bool {
    let id = Id::from(scx.node.id(), ClientId::from(client_id));
    for _ in 0..50 {
        let entry = scx.extends.shared().await.entry(id.clone());
        if !entry.exist() {
            return false;
        }
        match entry.try_lock().await {
            Ok(mut locked) => {
                return match locked.kick(true, true, true).await {
                    Ok(_) => true,
                    Err(error) => {
                        tracing::warn!(device_id = %client_id, %error, "Could not kick a client.");
                        false
                    }
                };
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    tracing::warn!(device_id = %client_id, "Could not kick a client: its session stayed locked.");
    false
}

/// A connection's principal, and whether its handshake completed.
struct Conn {
    who: Principal,
    connected: bool,
}

/// Every this many authentications, forget principals of handshakes that never completed.
const SWEEP_EVERY: u64 = 1024;
/// A handshake that has not completed after this long never will (rmqtt's handshake
/// timeout is 30 s).
const STALE_HANDSHAKE_MS: i64 = 120_000;

/// State shared by our hook handlers.
struct Hooks {
    auth: Arc<dyn BrokerAuth>,
    stats: Arc<BrokerStats>,
    /// Progressive delay of failed CONNECTs.
    throttle: LoginThrottle,
    /// In-process consumer of accepted uplinks (the gateway's ingest).
    tap: Option<Arc<dyn UplinkTap>>,
    /// The principal of every live connection, keyed by rmqtt's connection id (which
    /// includes the remote address and the connect time, so a reconnect is a new key).
    /// Entries are added at authentication and removed at disconnection; those of
    /// handshakes that failed after authentication are swept now and then.
    principals: DashMap<Id, Conn>,
    authentications: AtomicU64,
    auth_log: LogLimiter,
    acl_log: LogLimiter,
    drop_log: LogLimiter,
}

impl Hooks {
    /// [`Hooks::authenticate`] behind the [`LoginThrottle`]: waits out the key's delay
    /// (or refuses without checking), then records the outcome.
    async fn throttled_authenticate(&self, info: &rmqtt::types::ConnectInfo) -> AuthResult {
        let client_id: &str = info.client_id();
        let ip = info.ipaddress().map(|a| a.ip());
        match self
            .throttle
            .admit(client_id, ip, std::time::Instant::now())
        {
            Admission::Now => {}
            Admission::After(wait) => tokio::time::sleep(wait).await,
            Admission::Refuse => {
                self.stats.count_denied(DenyReason::Throttled);
                if let Some(suppressed) = self.auth_log.admit() {
                    tracing::warn!(
                        device_id = client_id,
                        remote = ?info.ipaddress(),
                        reason = DenyReason::Throttled.as_str(),
                        suppressed,
                        "Broker refused a connection."
                    );
                }
                return AuthResult::NotAuthorized;
            }
        }
        let result = self.authenticate(info);
        let ok = matches!(result, AuthResult::Allow(..));
        self.throttle
            .record(client_id, ip, ok, std::time::Instant::now());
        result
    }

    fn authenticate(&self, info: &rmqtt::types::ConnectInfo) -> AuthResult {
        let client_id: &str = info.client_id();
        let username = info.username().map(|u| -> &str { u });
        let password = info.password().map(|p| p.as_ref());
        let decision = self
            .auth
            .authenticate(client_id, username, password)
            .and_then(|who| match info.last_will() {
                Some(will) if !self.auth.may_publish(&who, will_topic(&will)) => {
                    Err(AuthDenied::WillDenied)
                }
                _ => Ok(who),
            });
        match decision {
            Ok(who) => {
                if self.authentications.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY
                    == SWEEP_EVERY - 1
                {
                    let now = rmqtt::utils::timestamp_millis();
                    self.principals
                        .retain(|id, c| c.connected || now - id.create_time < STALE_HANDSHAKE_MS);
                }
                self.principals.insert(
                    info.id().clone(),
                    Conn {
                        who,
                        connected: false,
                    },
                );
                AuthResult::Allow(false, None)
            }
            Err(denied) => {
                self.stats.count_denied(denied.reason());
                if let Some(suppressed) = self.auth_log.admit() {
                    tracing::warn!(
                        device_id = client_id,
                        username,
                        remote = ?info.ipaddress(),
                        reason = denied.reason().as_str(),
                        suppressed,
                        "Broker refused a connection."
                    );
                }
                match denied {
                    AuthDenied::UnknownClient | AuthDenied::BadPassword => {
                        AuthResult::BadUsernameOrPassword
                    }
                    AuthDenied::BadClientId
                    | AuthDenied::Revoked
                    | AuthDenied::ClientIdMismatch
                    | AuthDenied::WillDenied => AuthResult::NotAuthorized,
                }
            }
        }
    }

    fn check(&self, id: &Id, topic: &str, reason: DenyReason) -> bool {
        let allowed = match self.principals.get(id) {
            Some(conn) => match reason {
                DenyReason::PublishDenied => self.auth.may_publish(&conn.who, topic),
                _ => self.auth.may_subscribe(&conn.who, topic),
            },
            // Not authenticated through us (should not happen): fail closed.
            None => false,
        };
        if !allowed {
            self.stats.count_denied(reason);
            if let Some(suppressed) = self.acl_log.admit() {
                tracing::warn!(
                    device_id = %id.client_id,
                    topic,
                    reason = reason.as_str(),
                    suppressed,
                    "Broker denied a topic."
                );
            }
        }
        allowed
    }
}

impl Hooks {
    fn dropped(&self, to: Option<&Id>, topic: &str, reason: &Reason) {
        let reason = match reason {
            // A PUBLISH refused by the ACL: already counted as a denial.
            Reason::PublishResult(_) => return,
            Reason::MessageQueueFull | Reason::InflightWindowFull => DropReason::QueueFull,
            Reason::MessageExpiration | Reason::SessionExpiration => DropReason::Expired,
            _ => DropReason::Other,
        };
        self.stats.count_dropped(reason);
        if let Some(suppressed) = self.drop_log.admit() {
            tracing::warn!(
                client_id = to.map(|id| -> &str { &id.client_id }),
                topic,
                reason = reason.as_str(),
                suppressed,
                "Broker dropped a message."
            );
        }
    }
}

fn will_topic<'a>(will: &'a LastWill<'_>) -> &'a str {
    match will {
        LastWill::V3(w) => &w.topic,
        LastWill::V5(w) => &w.topic,
    }
}

struct HookHandler(Arc<Hooks>);

#[async_trait]
impl Handler for HookHandler {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let hooks = &self.0;
        match param {
            Parameter::ClientAuthenticate(info) => (
                false,
                Some(HookResult::AuthResult(
                    hooks.throttled_authenticate(info).await,
                )),
            ),
            Parameter::ClientConnected(session) => {
                hooks.stats.client_connected();
                if let Some(mut conn) = hooks.principals.get_mut(&session.id) {
                    conn.connected = true;
                }
                (true, acc)
            }
            Parameter::ClientDisconnected(session, _) => {
                hooks.stats.client_disconnected();
                hooks.principals.remove(&session.id);
                (true, acc)
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let result = if hooks.check(&session.id, &publish.topic, DenyReason::PublishDenied)
                {
                    if let Some(tap) = &hooks.tap
                        && tap.wants(&publish.topic)
                    {
                        tap.deliver(&publish.topic, publish.payload.clone()).await;
                    }
                    PublishAclResult::allow()
                } else {
                    PublishAclResult::rejected(false, None)
                };
                (false, Some(HookResult::PublishAclResult(result)))
            }
            Parameter::ClientSubscribeCheckAcl(session, subscribe) => {
                let result = if hooks.check(
                    &session.id,
                    &subscribe.topic_filter,
                    DenyReason::SubscribeDenied,
                ) {
                    SubscribeAclResult::new_success(subscribe.opts.qos(), None)
                } else {
                    SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                };
                (false, Some(HookResult::SubscribeAclResult(result)))
            }
            Parameter::MessageDropped(to, _from, publish, reason) => {
                hooks.dropped(to.as_ref(), &publish.topic, reason);
                (true, acc)
            }
            _ => (true, acc),
        }
    }
}

/// rmqtt's default retain store is a stub ("use the rmqtt-retainer plugin"); this one
/// enables its in-memory tree. Retained messages die with the process.
#[derive(Default)]
struct MemoryRetain(DefaultRetainStorage);

#[async_trait]
impl RetainStorage for MemoryRetain {
    fn enable(&self) -> bool {
        true
    }

    fn need_sync(&self) -> bool {
        false
    }

    async fn set(
        &self,
        topic: &TopicName,
        retain: Retain,
        expiry_interval: Option<Duration>,
    ) -> rmqtt::Result<()> {
        // rmqtt passes the listener's message expiry; zero means "never expires".
        let expiry = expiry_interval.filter(|d| !d.is_zero());
        self.0.set_with_timeout(topic, retain, expiry).await
    }

    async fn get(&self, topic_filter: &TopicFilter) -> rmqtt::Result<Vec<(TopicName, Retain)>> {
        self.0.get_message(topic_filter).await
    }

    async fn count(&self) -> isize {
        self.0.count().await
    }

    async fn max(&self) -> isize {
        self.0.max().await
    }
}
