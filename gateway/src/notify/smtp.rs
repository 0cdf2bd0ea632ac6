//! E-mail over SMTP (lettre, rustls; STARTTLS, implicit TLS, or plain for loopback
//! relays and tests).
//!
//! Each message has `Message-ID: <KEY@anxin>` and `Idempotency-Key: KEY`: mail systems
//! and scripts that read the mailbox drop a second copy with the same id. Permanent SMTP
//! replies (5xx) fail for good; everything else is retried.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::{Channel, FailReason, Notification, Notifier, NotifyConfigError, NotifyError};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain TCP, STARTTLS required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same machine or network.
    None,
}

/// `[workflow.notify.smtp]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host (empty: channel off).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Login (empty: no authentication).
    pub username: String,
    /// Password.
    pub password: String,
    /// Sender, e.g. `安心 <anxin@example.org>`.
    pub from: String,
    /// Timeout of each SMTP exchange in milliseconds.
    pub timeout_ms: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: String::new(),
            from: "Anxin <anxin@localhost>".into(),
            timeout_ms: 10_000,
        }
    }
}

impl SmtpConfig {
    pub(crate) fn validate(&self) -> Result<(), NotifyConfigError> {
        if !self.host.is_empty() && self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(NotifyConfigError(format!(
                "smtp.from: {:?} is not a mailbox",
                self.from
            )));
        }
        Ok(())
    }
}

/// The `Idempotency-Key` mail header.
#[derive(Debug, Clone)]
struct IdempotencyKey(String);

impl Header for IdempotencyKey {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Idempotency-Key")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(IdempotencyKey(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Sends e-mail.
pub struct SmtpNotifier {
    cfg: SmtpConfig,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl SmtpNotifier {
    /// A notifier for `cfg` (no connection is made until the first message).
    pub fn new(cfg: SmtpConfig) -> Self {
        let transport = if cfg.host.is_empty() {
            None
        } else {
            let builder = match cfg.tls {
                SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                    &cfg.host,
                )),
                SmtpTls::Starttls => {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)
                }
                SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host),
            };
            match builder {
                Ok(b) => {
                    let mut b = b
                        .port(cfg.port)
                        .timeout(Some(Duration::from_millis(cfg.timeout_ms.max(100))));
                    if !cfg.username.is_empty() {
                        b = b.credentials(Credentials::new(
                            cfg.username.clone(),
                            cfg.password.clone(),
                        ));
                    }
                    Some(b.build())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SMTP transport not usable");
                    None
                }
            }
        };
        SmtpNotifier { cfg, transport }
    }

    /// The message for `n`.
    pub fn message(&self, n: &Notification) -> Result<Message, NotifyError> {
        let to = n
            .recipient
            .as_ref()
            .and_then(|r| r.email.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| n.address.clone());
        let to = to
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| NotifyError::Permanent(FailReason::BadAddress, e.to_string()))?;
        let from = self
            .cfg
            .from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| NotifyError::Permanent(FailReason::NotConfigured, e.to_string()))?;
        let safe_key: String = n
            .key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-._".contains(c) {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        Message::builder()
            .from(from)
            .to(to)
            .subject(n.title.clone())
            .message_id(Some(format!("<{safe_key}@anxin>")))
            .header(IdempotencyKey(n.key.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(format!("{}\n\n#{}", n.text, n.key))
            .map_err(|e| NotifyError::Permanent(FailReason::Encode, e.to_string()))
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn enabled(&self) -> bool {
        self.transport.is_some()
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let Some(t) = &self.transport else {
            return Err(NotifyError::Permanent(
                FailReason::NotConfigured,
                "no SMTP server".into(),
            ));
        };
        let msg = self.message(n)?;
        match t.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => {
                Err(NotifyError::Permanent(FailReason::Smtp, e.to_string()))
            }
            Err(e) if e.is_timeout() => {
                Err(NotifyError::Transient(FailReason::Timeout, e.to_string()))
            }
            Err(e) => Err(NotifyError::Transient(FailReason::Connect, e.to_string())),
        }
    }
}
