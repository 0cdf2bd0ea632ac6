//! Generic JSON webhook, signed with HMAC-SHA256.
//!
//! `POST url` with `Content-Type: application/json` and
//! - `Idempotency-Key: <key>` (also `idempotency_key` in the body): the same for every
//!   attempt of one notification; receivers drop repeats;
//! - `X-Anxin-Timestamp: <unix seconds>` and, when a secret is configured,
//!   `X-Anxin-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//!
//! Any 2xx is delivered; 408, 429 and 5xx are retried; other statuses fail for good.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{Channel, Notification, Notifier, NotifyError, http_client, http_error, http_status};

/// `[workflow.notify.webhook]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Receiver URL (empty: channel off).
    pub url: String,
    /// HMAC secret (empty: unsigned).
    pub secret: String,
    /// Request timeout in milliseconds.
    pub timeout_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            secret: String::new(),
            timeout_ms: 5000,
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `"<timestamp>.<body>"`).
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Sends to the generic webhook.
pub struct WebhookNotifier {
    cfg: WebhookConfig,
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// A notifier for `cfg`.
    pub fn new(cfg: WebhookConfig) -> Self {
        let client = http_client(cfg.timeout_ms);
        WebhookNotifier { cfg, client }
    }

    /// The JSON body of `n`.
    pub fn body(n: &Notification) -> serde_json::Value {
        serde_json::json!({
            "idempotency_key": n.key,
            "id": n.id,
            "purpose": n.purpose,
            "critical": n.critical,
            "title": n.title,
            "text": n.text,
            "recipient": n.recipient,
            "alert_id": n.alert_id,
            "attempt": n.attempt,
            "data": n.payload,
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn channel(&self) -> Channel {
        Channel::Webhook
    }

    fn enabled(&self) -> bool {
        !self.cfg.url.is_empty()
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(&Self::body(n))
            .map_err(|e| NotifyError::Permanent(super::FailReason::Encode, e.to_string()))?;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut req = self
            .client
            .post(&self.cfg.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &n.key)
            .header("X-Anxin-Timestamp", ts.to_string());
        if !self.cfg.secret.is_empty() {
            req = req.header(
                "X-Anxin-Signature",
                webhook_signature(&self.cfg.secret, ts, &body),
            );
        }
        let resp = req.body(body).send().await.map_err(|e| http_error(&e))?;
        http_status(resp.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Known answer from Python: hmac.new(b"key", b"1700000000.{}", sha256).hexdigest()
        assert_eq!(
            webhook_signature("key", 1_700_000_000, b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }
}
