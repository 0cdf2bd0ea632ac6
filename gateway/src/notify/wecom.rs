//! 企业微信 (WeCom) group robot webhook.
//!
//! `POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY` with
//! `{"msgtype":"text","text":{"content":…,"mentioned_list":[userid],"mentioned_mobile_list":[mobile]}}`;
//! the reply `{"errcode":0,"errmsg":"ok"}` means delivered, errcode 45009 (rate limit)
//! is retried, any other errcode fails for good. The robot has no idempotency key: the
//! text ends with the notification's reference so that a rare duplicate is recognisable.

use async_trait::async_trait;
use serde::Deserialize;

use super::{
    Channel, FailReason, Notification, Notifier, NotifyError, http_client, http_error, http_status,
};

/// WeCom's limit on a text message, in bytes.
const MAX_CONTENT: usize = 2048;

/// `[workflow.notify.wecom]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WecomConfig {
    /// The robot's webhook URL, with its key (empty: channel off).
    pub url: String,
    /// Request timeout in milliseconds.
    pub timeout_ms: u64,
}

impl Default for WecomConfig {
    fn default() -> Self {
        WecomConfig {
            url: String::new(),
            timeout_ms: 5000,
        }
    }
}

/// Sends to a WeCom group robot.
pub struct WecomNotifier {
    cfg: WecomConfig,
    client: reqwest::Client,
}

/// The reply of WeCom and DingTalk robots.
#[derive(Debug, Deserialize)]
pub(crate) struct RobotReply {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl WecomNotifier {
    /// A notifier for `cfg`.
    pub fn new(cfg: WecomConfig) -> Self {
        let client = http_client(cfg.timeout_ms);
        WecomNotifier { cfg, client }
    }

    /// The robot message for `n`.
    pub fn body(n: &Notification) -> serde_json::Value {
        let content = truncate_bytes(&format!("{}\n{}\n#{}", n.title, n.text, n.key), MAX_CONTENT);
        let mut mentioned: Vec<String> = vec![];
        let mut mobiles: Vec<String> = vec![];
        if let Some(r) = &n.recipient {
            if let Some(u) = &r.wecom_userid {
                mentioned.push(u.clone());
            } else if let Some(p) = &r.phone {
                mobiles.push(p.clone());
            }
        }
        serde_json::json!({
            "msgtype": "text",
            "text": {
                "content": content,
                "mentioned_list": mentioned,
                "mentioned_mobile_list": mobiles,
            }
        })
    }
}

#[async_trait]
impl Notifier for WecomNotifier {
    fn channel(&self) -> Channel {
        Channel::Wecom
    }

    fn enabled(&self) -> bool {
        !self.cfg.url.is_empty()
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let resp = self
            .client
            .post(&self.cfg.url)
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
            45009 => Err(NotifyError::Transient(
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
    fn long_chinese_text_is_cut_on_a_character_boundary() {
        let s = "安".repeat(1000);
        let t = truncate_bytes(&s, MAX_CONTENT);
        assert!(t.len() <= MAX_CONTENT);
        assert!(t.ends_with('…'));
    }
}
