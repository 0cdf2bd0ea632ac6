//! DingTalk custom robot webhook, signed.
//!
//! `POST https://oapi.dingtalk.com/robot/send?access_token=T&timestamp=MS&sign=S` where
//! `S = urlencode(base64(HMAC-SHA256(secret, "MS\nsecret")))`, with
//! `{"msgtype":"text","text":{"content":…},"at":{"atMobiles":[…],"isAtAll":false}}`.
//! errcode 0 is delivered; 130101 (sending too fast) is retried; others fail for good.

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::wecom::{RobotReply, truncate_bytes};
use super::{
    Channel, FailReason, Notification, Notifier, NotifyError, http_client, http_error, http_status,
};

/// DingTalk's text limit we keep to, in bytes.
const MAX_CONTENT: usize = 4000;

/// `[workflow.notify.dingtalk]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DingtalkConfig {
    /// The robot's webhook URL with its access token (empty: channel off).
    pub url: String,
    /// The robot's signing secret (`SEC…`); empty: unsigned (keyword or IP security).
    pub secret: String,
    /// Request timeout in milliseconds.
    pub timeout_ms: u64,
}

impl Default for DingtalkConfig {
    fn default() -> Self {
        DingtalkConfig {
            url: String::new(),
            secret: String::new(),
            timeout_ms: 5000,
        }
    }
}

/// DingTalk's signature: base64(HMAC-SHA256(secret, "timestamp\nsecret")), not yet
/// URL-encoded.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Sends to a DingTalk robot.
pub struct DingtalkNotifier {
    cfg: DingtalkConfig,
    client: reqwest::Client,
}

impl DingtalkNotifier {
    /// A notifier for `cfg`.
    pub fn new(cfg: DingtalkConfig) -> Self {
        let client = http_client(cfg.timeout_ms);
        DingtalkNotifier { cfg, client }
    }

    /// The signed URL at `timestamp_ms`.
    pub fn signed_url(&self, timestamp_ms: i64) -> Result<reqwest::Url, NotifyError> {
        let mut url = reqwest::Url::parse(&self.cfg.url)
            .map_err(|e| NotifyError::Permanent(FailReason::NotConfigured, e.to_string()))?;
        if !self.cfg.secret.is_empty() {
            url.query_pairs_mut()
                .append_pair("timestamp", &timestamp_ms.to_string())
                .append_pair("sign", &dingtalk_sign(&self.cfg.secret, timestamp_ms));
        }
        Ok(url)
    }

    /// The robot message for `n`.
    pub fn body(n: &Notification) -> serde_json::Value {
        let phone = n.recipient.as_ref().and_then(|r| r.phone.clone());
        let mention = phone.as_ref().map(|p| format!(" @{p}")).unwrap_or_default();
        let content = truncate_bytes(
            &format!("{}{mention}\n{}\n#{}", n.title, n.text, n.key),
            MAX_CONTENT,
        );
        serde_json::json!({
            "msgtype": "text",
            "text": { "content": content },
            "at": { "atMobiles": phone.into_iter().collect::<Vec<_>>(), "isAtAll": false },
        })
    }
}

#[async_trait]
impl Notifier for DingtalkNotifier {
    fn channel(&self) -> Channel {
        Channel::Dingtalk
    }

    fn enabled(&self) -> bool {
        !self.cfg.url.is_empty()
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let resp = self
            .client
            .post(self.signed_url(ts)?)
            .json(&Self::body(n))
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        http_status(resp.status())?;
        let reply: RobotReply = resp
            .json()
            .await
            .map_err(|e| NotifyError::Transient(FailReason::ApiError, e.to_string()))?;
        match reply.errcode {
            0 => Ok(()),
            130101 => Err(NotifyError::Transient(
                FailReason::RateLimited,
                reply.errmsg,
            )),
            c if c < 0 => Err(NotifyError::Transient(FailReason::ApiError, reply.errmsg)),
            _ => Err(NotifyError::Permanent(
                FailReason::ApiError,
                format!("errcode {}: {}", reply.errcode, reply.errmsg),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_dingtalks_documented_algorithm() {
        // Known answer from Python:
        // base64(hmac.new(b"SEC123", b"1700000000000\nSEC123", sha256).digest())
        assert_eq!(
            dingtalk_sign("SEC123", 1_700_000_000_000),
            "lkcPI1uoxBY1gUnCnnPH1Kkru0Hqjo7rFpA3haIVhEQ="
        );
    }

    #[test]
    fn the_signed_url_carries_an_url_encoded_signature() {
        let n = DingtalkNotifier::new(DingtalkConfig {
            url: "https://oapi.dingtalk.com/robot/send?access_token=abc".into(),
            secret: "SEC123".into(),
            timeout_ms: 1000,
        });
        let u = n.signed_url(1_700_000_000_000).unwrap();
        assert_eq!(
            u.as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000000\
             &sign=lkcPI1uoxBY1gUnCnnPH1Kkru0Hqjo7rFpA3haIVhEQ%3D"
        );
    }
}
