//! A [`Link`] test double that records what the device publishes.

use heapless::{Deque, Vec};

use super::link::{Link, LinkError, SessionId};
use crate::wire::{Channel, MAX_PAYLOAD};

/// One message the device published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Where it went.
    pub channel: Channel,
    /// What it said.
    pub payload: Vec<u8, MAX_PAYLOAD>,
}

impl Published {
    /// The payload as text (it is JSON).
    pub fn text(&self) -> &str {
        core::str::from_utf8(&self.payload).unwrap_or("")
    }
}

/// Records up to 64 published messages (the oldest is forgotten beyond that); can be
/// connected, disconnected, or made busy.
#[derive(Debug, Default)]
pub struct RecordingLink {
    session: Option<SessionId>,
    sessions: SessionId,
    busy: bool,
    rssi_dbm: Option<i16>,
    sent: Deque<Published, 64>,
}

impl RecordingLink {
    /// A disconnected link.
    pub fn new() -> Self {
        RecordingLink::default()
    }

    /// A connected link.
    pub fn connected() -> Self {
        let mut link = RecordingLink::new();
        link.connect();
        link
    }

    /// Starts a new session.
    pub fn connect(&mut self) {
        self.sessions = self.sessions.wrapping_add(1);
        self.session = Some(self.sessions);
    }

    /// Drops the connection.
    pub fn disconnect(&mut self) {
        self.session = None;
    }

    /// While busy, every publish fails with [`LinkError::Busy`].
    pub fn set_busy(&mut self, busy: bool) {
        self.busy = busy;
    }

    /// Sets the reported signal strength.
    pub fn set_rssi_dbm(&mut self, rssi_dbm: Option<i16>) {
        self.rssi_dbm = rssi_dbm;
    }

    /// Takes the oldest recorded message.
    pub fn take(&mut self) -> Option<Published> {
        self.sent.pop_front()
    }

    /// Takes every recorded message on `channel`, oldest first, dropping the others.
    pub fn take_on(&mut self, channel: Channel) -> Vec<Published, 64> {
        let mut out = Vec::new();
        while let Some(p) = self.sent.pop_front() {
            if p.channel == channel {
                let _ = out.push(p);
            }
        }
        out
    }

    /// The recorded messages, oldest first.
    pub fn published(&self) -> impl Iterator<Item = &Published> {
        self.sent.iter()
    }
}

impl Link for RecordingLink {
    fn session(&self) -> Option<SessionId> {
        self.session
    }

    fn publish(&mut self, channel: Channel, payload: &[u8]) -> Result<(), LinkError> {
        if self.session.is_none() {
            return Err(LinkError::NotConnected);
        }
        if self.busy {
            return Err(LinkError::Busy);
        }
        let payload = Vec::from_slice(payload).map_err(|_| LinkError::TooLarge)?;
        if self.sent.is_full() {
            self.sent.pop_front();
        }
        let _ = self.sent.push_back(Published { channel, payload });
        Ok(())
    }

    fn rssi_dbm(&self) -> Option<i16> {
        self.rssi_dbm
    }
}
