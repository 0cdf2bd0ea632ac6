//! The pendant's fall detection.
//!
//! - [`detector`]: [`FallDetector`], a state machine over accelerometer samples (impact →
//!   settle → posture and stillness → decision), integer arithmetic, fixed memory;
//! - [`config`]: its parameters in physical units ([`FallConfig::PENDANT`]);
//! - [`alarm`]: the "I'm OK" window and when the event is sent ([`SendPolicy`]);
//! - [`math`]: integer square root and angles;
//! - [`FallMonitor`]: detector and alarm together, as the device loop uses them: it turns
//!   samples and button presses into the [`EventBody::Fall`] events that go into the
//!   outbox like every other event;
//! - with `std`: [`trace`] (UMAFall and SisFall readers, anti-aliased resampling),
//!   [`eval`] (what `fall-eval` runs: the very same detector over recorded traces,
//!   leave-one-subject-out) and [`stress`] (slowed and seated variants of real falls).
//!
//! Method, parameters and measured figures: `docs/detection.md` ("Falls").

pub mod alarm;
pub mod config;
pub mod detector;
#[cfg(feature = "std")]
pub mod eval;
pub mod math;
#[cfg(feature = "std")]
pub mod stress;
#[cfg(feature = "std")]
pub mod trace;

pub use alarm::{AlarmConfig, FallAlarm, SendPolicy};
pub use config::{ConfigError, FallConfig};
pub use detector::{Decision, FallDetector, Features, Reason, Verdict, judge};

use crate::driver::Acceleration;
use crate::wire::{EventBody, HelpAction};

/// Samples of history the detector keeps (for the reference posture and the velocity):
/// 3.2 s at 20 Hz, 2.56 s at 25 Hz.
pub const HISTORY: usize = 64;

/// The detector and the "I'm OK" alarm, driven by the device loop.
#[derive(Debug, Clone)]
pub struct FallMonitor {
    detector: FallDetector,
    alarm: FallAlarm,
    last: Option<Decision>,
    /// The last help-button press was taken as "I'm OK": the help button's own cancel of
    /// that press must not be sent.
    swallow_help_cancel: bool,
}

impl FallMonitor {
    /// A monitor with these parameters.
    pub fn new(config: &FallConfig, alarm: AlarmConfig) -> Result<Self, ConfigError> {
        Ok(FallMonitor {
            detector: FallDetector::new(config)?,
            alarm: FallAlarm::new(alarm),
            last: None,
            swallow_help_cancel: false,
        })
    }

    /// Feeds one sample period (`None`: the sample is missing) at `now_ms`. Returns the
    /// fall event to push into the outbox, if any (at most one per call: under either
    /// policy only one of "window passed" and "fall detected" can produce an event).
    pub fn on_sample(&mut self, sample: Option<Acceleration>, now_ms: u64) -> Option<EventBody> {
        let passed = self.alarm.poll(now_ms);
        let detected = match self.detector.push(sample) {
            Some(d) => {
                self.last = Some(d);
                if d.is_fall() {
                    self.alarm.on_fall(u32::from(d.features.peak_mg), now_ms)
                } else {
                    None
                }
            }
            None => None,
        };
        passed.or(detected)
    }

    /// The wearer pressed the button while [`FallMonitor::alarming`]: "I'm OK".
    pub fn on_im_ok(&mut self, now_ms: u64) -> Option<EventBody> {
        self.alarm.on_im_ok(now_ms)
    }

    /// Routes a gesture of the pendant's single button (from [`crate::input::HelpButton`]):
    /// a press while [`FallMonitor::alarming`] is "I'm OK" (it returns the fall cancel, if
    /// the policy sends one, instead of a help press), and the help button's cancel of
    /// that same press is swallowed. Every other gesture passes through unchanged: a long
    /// press during the window is still a call for help.
    pub fn route_gesture(&mut self, gesture: EventBody, now_ms: u64) -> Option<EventBody> {
        match gesture {
            EventBody::Help {
                act: HelpAction::Press,
            } if self.alarm.alarming() => {
                self.swallow_help_cancel = true;
                self.alarm.on_im_ok(now_ms)
            }
            EventBody::Help {
                act: HelpAction::Cancel,
            } if self.swallow_help_cancel => {
                self.swallow_help_cancel = false;
                None
            }
            other => {
                if matches!(
                    other,
                    EventBody::Help {
                        act: HelpAction::Press
                    }
                ) {
                    self.swallow_help_cancel = false;
                }
                Some(other)
            }
        }
    }

    /// Advances time without a sample (e.g. while the accelerometer is off).
    pub fn poll(&mut self, now_ms: u64) -> Option<EventBody> {
        self.alarm.poll(now_ms)
    }

    /// Whether the "I'm OK" window is open (beep, blink; the button means "I'm OK").
    pub fn alarming(&self) -> bool {
        self.alarm.alarming()
    }

    /// Applies a new "I'm OK" window (the `fall_cancel_s` configuration).
    pub fn set_cancel_window_ms(&mut self, ms: u32) {
        self.alarm.set_window_ms(ms);
    }

    /// The last decision the detector reached (fall or not), for diagnostics.
    pub fn last_decision(&self) -> Option<&Decision> {
        self.last.as_ref()
    }
}
