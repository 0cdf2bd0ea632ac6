//! Notifications: a [`Notifier`] per channel (one file each), a persistent [`Outbox`]
//! written in the same transaction as the change it reports, and one sender lane per
//! channel that delivers at least once with retries and exponential backoff.
//!
//! ```text
//! workflow tx ─ INSERT outbox ─▶ commit ─ wake ─▶ lane(channel) ─ claim ─▶ Notifier::send
//!                                                     ▲   └─ ok: sent · transient: retry later · permanent: failed
//!                                                     └─ timer (next_attempt_ms)
//! ```
//!
//! Every notification carries an idempotency key, unique per (alert, recipient, step) and
//! channel; a receiver that sees a key twice (a retry after a lost response, a restart
//! between send and commit) drops the second copy.

mod device;
mod dingtalk;
mod mock;
mod outbox;
mod smtp;
mod webhook;
mod wecom;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use serde::{Deserialize, Serialize};

pub use device::{DeviceCommands, DeviceNotifier, DownlinkCommands, command_id, feedback_payload};
pub use dingtalk::{DingtalkConfig, DingtalkNotifier, dingtalk_sign};
pub use mock::{MockDevices, MockNotifier};
pub use outbox::{DeliveryHook, Envelope, Outbox, OutboxRow};
pub use smtp::{SmtpConfig, SmtpNotifier, SmtpTls};
pub use webhook::{WebhookConfig, WebhookNotifier, webhook_signature};
pub use wecom::{WecomConfig, WecomNotifier};

/// A way to reach someone (or a device).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    EncodeLabelValue,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 企业微信 group robot webhook.
    Wecom,
    /// DingTalk robot webhook (signed).
    Dingtalk,
    /// Generic JSON webhook, HMAC-signed.
    Webhook,
    /// E-mail over SMTP.
    Email,
    /// A command to the elder's device (feedback "received" / "acknowledged").
    Device,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 5] = [
        Channel::Wecom,
        Channel::Dingtalk,
        Channel::Webhook,
        Channel::Email,
        Channel::Device,
    ];

    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Wecom => "wecom",
            Channel::Dingtalk => "dingtalk",
            Channel::Webhook => "webhook",
            Channel::Email => "email",
            Channel::Device => "device",
        }
    }

    /// Parses [`Channel::as_str`].
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim().to_ascii_lowercase())
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The person a notification is for (what channels need to address and mention them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// User id.
    pub user_id: String,
    /// Display name.
    pub name: String,
    /// Role (`caseworker`, …).
    pub role: String,
    /// Mobile number (WeCom/DingTalk mention).
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// WeCom user id (mention).
    pub wecom_userid: Option<String>,
}

/// One notification as a [`Notifier`] sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Outbox row id.
    pub id: String,
    /// Idempotency key: the same for every attempt and every copy of this notification.
    pub key: String,
    /// Channel.
    pub channel: Channel,
    /// Who (None for a device).
    pub recipient: Option<Recipient>,
    /// Channel address: an e-mail address, a device id; empty for webhooks.
    pub address: String,
    /// The alert it is about, if any.
    pub alert_id: Option<String>,
    /// Why it is sent (`raised`, `escalated`, `repeat`, `morning_list`, …).
    pub purpose: String,
    /// Critical: never held back by quiet hours.
    pub critical: bool,
    /// Short title.
    pub title: String,
    /// Plain text.
    pub text: String,
    /// Structured content (the generic webhook's `data`; the device command).
    pub payload: serde_json::Value,
    /// Attempt number, from 1.
    pub attempt: u32,
}

/// Why a delivery failed (a closed list: metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(missing_docs)]
pub enum FailReason {
    Connect,
    Timeout,
    Status4xx,
    Status5xx,
    RateLimited,
    ApiError,
    BadAddress,
    NotConnected,
    Encode,
    NotConfigured,
    Smtp,
    /// A device command was published but the device has not acknowledged it yet (by its
    /// heartbeat's `cmd`): kept pending and resent; not a failure of the channel.
    AwaitingAck,
}

impl FailReason {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailReason::Connect => "connect",
            FailReason::Timeout => "timeout",
            FailReason::Status4xx => "status_4xx",
            FailReason::Status5xx => "status_5xx",
            FailReason::RateLimited => "rate_limited",
            FailReason::ApiError => "api_error",
            FailReason::BadAddress => "bad_address",
            FailReason::NotConnected => "not_connected",
            FailReason::Encode => "encode",
            FailReason::NotConfigured => "not_configured",
            FailReason::Smtp => "smtp",
            FailReason::AwaitingAck => "awaiting_ack",
        }
    }
}

/// A failed delivery.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Worth retrying (network, 5xx, rate limit, device not connected).
    #[error("{reason} (will retry): {detail}", reason = .0.as_str(), detail = .1)]
    Transient(FailReason, String),
    /// Retrying will not help (bad address, 4xx, not configured).
    #[error("{reason} (permanent): {detail}", reason = .0.as_str(), detail = .1)]
    Permanent(FailReason, String),
}

impl NotifyError {
    /// The reason.
    pub fn reason(&self) -> FailReason {
        match self {
            NotifyError::Transient(r, _) | NotifyError::Permanent(r, _) => *r,
        }
    }
}

/// Sends notifications on one channel.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The channel.
    fn channel(&self) -> Channel;

    /// Whether it can send at all (configured).
    fn enabled(&self) -> bool {
        true
    }

    /// Delivers one notification. Must be safe to call again with the same
    /// notification (receivers deduplicate by [`Notification::key`]).
    async fn send(&self, n: &Notification) -> Result<(), NotifyError>;
}

/// The notifiers by channel.
pub type Notifiers = HashMap<Channel, Arc<dyn Notifier>>;

/// Channels per role: the defaults for users who chose none.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleChannels {
    /// Caseworkers.
    pub caseworker: Vec<Channel>,
    /// Committee heads.
    pub committee_head: Vec<Channel>,
    /// Street supervisors.
    pub street_supervisor: Vec<Channel>,
    /// Technicians.
    pub technician: Vec<Channel>,
    /// Administrators.
    pub admin: Vec<Channel>,
}

impl Default for RoleChannels {
    fn default() -> Self {
        let all = vec![
            Channel::Wecom,
            Channel::Dingtalk,
            Channel::Webhook,
            Channel::Email,
        ];
        RoleChannels {
            caseworker: all.clone(),
            committee_head: all.clone(),
            street_supervisor: all.clone(),
            technician: all.clone(),
            admin: all,
        }
    }
}

impl RoleChannels {
    /// The defaults of `role` (snake_case name).
    pub fn for_role(&self, role: &str) -> &[Channel] {
        match role {
            "caseworker" => &self.caseworker,
            "committee_head" => &self.committee_head,
            "street_supervisor" => &self.street_supervisor,
            "technician" => &self.technician,
            _ => &self.admin,
        }
    }
}

/// `[workflow.notify]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// First retry delay in milliseconds; doubles per attempt up to `backoff_max_ms`.
    pub backoff_min_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// Attempts before a notification is marked failed (0: never give up).
    pub max_attempts: u32,
    /// A claimed notification whose sender died is retried after this many seconds.
    pub lease_s: u64,
    /// Notifications in flight per channel.
    pub concurrency: usize,
    /// Channels of users who chose none, by role (channels that are not configured
    /// below are skipped).
    pub role_channels: RoleChannels,
    /// 企业微信 group robot.
    pub wecom: WecomConfig,
    /// DingTalk robot.
    pub dingtalk: DingtalkConfig,
    /// Generic JSON webhook.
    pub webhook: WebhookConfig,
    /// E-mail.
    pub smtp: SmtpConfig,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            backoff_min_ms: 1000,
            backoff_max_ms: 300_000,
            max_attempts: 0,
            lease_s: 60,
            concurrency: 8,
            role_channels: RoleChannels::default(),
            wecom: WecomConfig::default(),
            dingtalk: DingtalkConfig::default(),
            webhook: WebhookConfig::default(),
            smtp: SmtpConfig::default(),
        }
    }
}

/// A configuration mistake in `[workflow.notify]`.
#[derive(Debug, thiserror::Error)]
#[error("workflow.notify: {0}")]
pub struct NotifyConfigError(pub String);

impl NotifyConfig {
    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        if self.backoff_min_ms == 0 || self.backoff_max_ms < self.backoff_min_ms {
            return Err(NotifyConfigError(
                "backoff_min_ms must be > 0 and <= backoff_max_ms".into(),
            ));
        }
        if self.concurrency == 0 {
            return Err(NotifyConfigError("concurrency must be > 0".into()));
        }
        let r = &self.role_channels;
        for list in [
            &r.caseworker,
            &r.committee_head,
            &r.street_supervisor,
            &r.technician,
            &r.admin,
        ] {
            if list.contains(&Channel::Device) {
                return Err(NotifyConfigError(
                    "role_channels: \"device\" is not a channel for people".into(),
                ));
            }
        }
        for (name, url) in [
            ("wecom.url", &self.wecom.url),
            ("dingtalk.url", &self.dingtalk.url),
            ("webhook.url", &self.webhook.url),
        ] {
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err(NotifyConfigError(format!(
                    "{name}: {url:?} is not an http(s) URL"
                )));
            }
        }
        self.smtp.validate()
    }

    /// Delay before attempt `attempts + 1` after `attempts` failures: exponential, capped,
    /// with up to 20 % jitter so that a recovering receiver is not hit in lockstep.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let base = self
            .backoff_min_ms
            .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
            .min(self.backoff_max_ms);
        let jitter = rand::random_range(0..=base / 5);
        Duration::from_millis(base.saturating_sub(jitter))
    }

    /// The notifiers of every configured channel (and the device channel), over real
    /// transports.
    pub fn notifiers(&self, devices: Arc<dyn DeviceCommands>) -> Notifiers {
        let mut m: Notifiers = HashMap::new();
        m.insert(
            Channel::Wecom,
            Arc::new(WecomNotifier::new(self.wecom.clone())),
        );
        m.insert(
            Channel::Dingtalk,
            Arc::new(DingtalkNotifier::new(self.dingtalk.clone())),
        );
        m.insert(
            Channel::Webhook,
            Arc::new(WebhookNotifier::new(self.webhook.clone())),
        );
        m.insert(
            Channel::Email,
            Arc::new(SmtpNotifier::new(self.smtp.clone())),
        );
        m.insert(Channel::Device, Arc::new(DeviceNotifier::new(devices)));
        m
    }
}

/// An HTTP client for the webhook channels (rustls, bounded time).
pub(crate) fn http_client(timeout_ms: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms.max(100)))
        .connect_timeout(Duration::from_millis(timeout_ms.clamp(100, 10_000)))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Maps a reqwest failure to a transient reason.
pub(crate) fn http_error(e: &reqwest::Error) -> NotifyError {
    let reason = if e.is_timeout() {
        FailReason::Timeout
    } else {
        FailReason::Connect
    };
    NotifyError::Transient(reason, e.to_string())
}

/// Maps an HTTP status to success or a failure.
pub(crate) fn http_status(status: reqwest::StatusCode) -> Result<(), NotifyError> {
    if status.is_success() {
        Ok(())
    } else if status.as_u16() == 429 {
        Err(NotifyError::Transient(
            FailReason::RateLimited,
            status.to_string(),
        ))
    } else if status.is_server_error() || status.as_u16() == 408 {
        Err(NotifyError::Transient(
            FailReason::Status5xx,
            status.to_string(),
        ))
    } else {
        Err(NotifyError::Permanent(
            FailReason::Status4xx,
            status.to_string(),
        ))
    }
}

/// Label set `{channel, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SentLabels {
    /// The channel.
    pub channel: Channel,
    /// What happened.
    pub outcome: SendOutcome,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(missing_docs)]
pub enum SendOutcome {
    Delivered,
    Retry,
    Failed,
    /// Published to a device, resent until the device acknowledges it.
    AwaitingAck,
}

/// Label set `{channel, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailLabels {
    /// The channel.
    pub channel: Channel,
    /// Why.
    pub reason: FailReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_its_cap() {
        let c = NotifyConfig {
            backoff_min_ms: 1000,
            backoff_max_ms: 8000,
            ..NotifyConfig::default()
        };
        let d1 = c.backoff(1).as_millis();
        let d3 = c.backoff(3).as_millis();
        let d9 = c.backoff(9).as_millis();
        assert!((800..=1000).contains(&d1), "{d1}");
        assert!((3200..=4000).contains(&d3), "{d3}");
        assert!((6400..=8000).contains(&d9), "{d9}");
    }

    #[test]
    fn the_device_channel_is_not_for_people() {
        let mut c = NotifyConfig::default();
        c.role_channels.caseworker.push(Channel::Device);
        assert!(c.validate().is_err());
    }
}
