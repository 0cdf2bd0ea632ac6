//! Test doubles: a notifier that records what it was asked to send (and can be told to
//! fail), and a device downlink that records commands.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anxin_firmware::wire;
use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Channel, DeviceCommands, FailReason, Notification, Notifier, NotifyError};

/// Records notifications; fails the next `n` sends when told to.
pub struct MockNotifier {
    channel: Channel,
    sent: Mutex<Vec<Notification>>,
    fail_next: Mutex<VecDeque<bool>>,
    changed: Notify,
}

impl MockNotifier {
    /// A recording notifier for `channel`.
    pub fn new(channel: Channel) -> Arc<Self> {
        Arc::new(MockNotifier {
            channel,
            sent: Mutex::new(vec![]),
            fail_next: Mutex::new(VecDeque::new()),
            changed: Notify::new(),
        })
    }

    /// The next `n` sends fail with a transient error.
    pub fn fail_next(&self, n: usize) {
        if let Ok(mut f) = self.fail_next.lock() {
            f.extend(std::iter::repeat_n(true, n));
        }
    }

    /// Everything delivered so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Delivered notifications for `user_id`.
    pub fn sent_to(&self, user_id: &str) -> Vec<Notification> {
        self.sent()
            .into_iter()
            .filter(|n| n.recipient.as_ref().is_some_and(|r| r.user_id == user_id))
            .collect()
    }

    /// Waits until `f` holds for what was delivered.
    pub async fn wait_until(&self, f: impl Fn(&[Notification]) -> bool) {
        loop {
            let notified = self.changed.notified();
            if f(&self.sent()) {
                return;
            }
            notified.await;
        }
    }
}

#[async_trait]
impl Notifier for MockNotifier {
    fn channel(&self) -> Channel {
        self.channel
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let fail = self
            .fail_next
            .lock()
            .ok()
            .and_then(|mut f| f.pop_front())
            .unwrap_or(false);
        if fail {
            return Err(NotifyError::Transient(
                FailReason::Connect,
                "mock failure".into(),
            ));
        }
        if let Ok(mut s) = self.sent.lock() {
            s.push(n.clone());
        }
        self.changed.notify_waiters();
        Ok(())
    }
}

/// Records device commands.
#[derive(Default)]
pub struct MockDevices {
    sent: Mutex<Vec<(String, wire::Command)>>,
}

impl MockDevices {
    /// A recorder.
    pub fn new() -> Arc<Self> {
        Arc::new(MockDevices::default())
    }

    /// Commands sent so far, as (device, command).
    pub fn sent(&self) -> Vec<(String, wire::Command)> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl DeviceCommands for MockDevices {
    fn send(&self, device: &str, cmd: &wire::Command) -> Result<(), NotifyError> {
        if let Ok(mut s) = self.sent.lock() {
            s.push((device.to_string(), cmd.clone()));
        }
        Ok(())
    }
}
