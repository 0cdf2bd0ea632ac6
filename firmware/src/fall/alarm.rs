//! The "I'm OK" window after a detected fall, and when the fall event is sent.
//!
//! When the detector decides "fall", the pendant beeps and blinks for
//! `cancel_window_ms`; a press of its button in that window means "I'm OK".
//!
//! Two policies ([`SendPolicy`]):
//! - [`SendPolicy::AtDetection`] (the default): `fall detected` goes into the outbox at
//!   once; an "I'm OK" press within the window sends `fall cancel`. The gateway holds
//!   the caseworker's notification for the window and drops it when the cancel arrives,
//!   so a cancelled fall costs nobody a call; and an elder who is unconscious, whose
//!   pendant is then crushed or runs flat during the window, is not lost — the event left
//!   seconds after the fall.
//! - [`SendPolicy::AfterWindow`]: nothing leaves the pendant until the window has passed
//!   without a press; a press sends nothing at all. Less traffic, and it works with a
//!   gateway that does not hold fall alerts, but the whole window (30 s by default) is
//!   added to the response time and a pendant that dies in the window loses the fall.

use crate::wire::{EventBody, FallAction};

/// When the fall event leaves the pendant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPolicy {
    /// Send `detected` at once, `cancel` on an "I'm OK" press within the window.
    AtDetection,
    /// Send `detected` only when the window passes without a press.
    AfterWindow,
}

/// The alarm's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmConfig {
    /// How long the wearer has to press "I'm OK", in ms.
    pub cancel_window_ms: u32,
    /// When the event is sent.
    pub policy: SendPolicy,
}

impl AlarmConfig {
    /// 30 s window, sent at detection.
    pub const PENDANT: AlarmConfig = AlarmConfig {
        cancel_window_ms: 30_000,
        policy: SendPolicy::AtDetection,
    };
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig::PENDANT
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    deadline_ms: u64,
    peak_mg: u32,
}

/// The alarm state machine. Time is passed in (milliseconds from any monotonic clock).
#[derive(Debug, Clone)]
pub struct FallAlarm {
    cfg: AlarmConfig,
    pending: Option<Pending>,
}

impl FallAlarm {
    /// An idle alarm.
    pub const fn new(cfg: AlarmConfig) -> Self {
        FallAlarm { cfg, pending: None }
    }

    /// Changes the window (the `fall_cancel_s` member of a `config` command); an open
    /// window keeps its deadline.
    pub fn set_window_ms(&mut self, cancel_window_ms: u32) {
        self.cfg.cancel_window_ms = cancel_window_ms;
    }

    /// Whether the window is open: the pendant should beep and blink, and a button press
    /// means "I'm OK" rather than a help request.
    pub fn alarming(&self) -> bool {
        self.pending.is_some()
    }

    /// A fall was detected with this impact peak. Returns the event to send now, if
    /// any. A detection while the window is open is part of the same fall and ignored.
    pub fn on_fall(&mut self, peak_mg: u32, now_ms: u64) -> Option<EventBody> {
        if self.pending.is_some() {
            return None;
        }
        self.pending = Some(Pending {
            deadline_ms: now_ms.saturating_add(u64::from(self.cfg.cancel_window_ms)),
            peak_mg,
        });
        match self.cfg.policy {
            SendPolicy::AtDetection => Some(fall(FallAction::Detected, peak_mg)),
            SendPolicy::AfterWindow => None,
        }
    }

    /// The wearer pressed "I'm OK". Within the window it closes the alarm and returns
    /// the cancel to send (none under [`SendPolicy::AfterWindow`], where nothing was
    /// sent). Outside the window it does nothing (the press is a help press).
    pub fn on_im_ok(&mut self, now_ms: u64) -> Option<EventBody> {
        let p = self.pending?;
        if now_ms >= p.deadline_ms {
            return None;
        }
        self.pending = None;
        match self.cfg.policy {
            SendPolicy::AtDetection => Some(fall(FallAction::Cancel, p.peak_mg)),
            SendPolicy::AfterWindow => None,
        }
    }

    /// Advances time: closes the window when it has passed, returning `detected` under
    /// [`SendPolicy::AfterWindow`].
    pub fn poll(&mut self, now_ms: u64) -> Option<EventBody> {
        let p = self.pending?;
        if now_ms < p.deadline_ms {
            return None;
        }
        self.pending = None;
        match self.cfg.policy {
            SendPolicy::AtDetection => None,
            SendPolicy::AfterWindow => Some(fall(FallAction::Detected, p.peak_mg)),
        }
    }
}

fn fall(act: FallAction, peak_mg: u32) -> EventBody {
    let peak_mg = match act {
        FallAction::Detected => Some(peak_mg),
        FallAction::Cancel => None,
    };
    EventBody::Fall { act, peak_mg }
}
