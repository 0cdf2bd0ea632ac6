//! Gas sensor with hysteresis and a local siren: [`EventBody::Gas`] events.
//!
//! The alarm goes on when a reading reaches `alarm_ppm` and off when a reading falls
//! strictly below `clear_ppm` (< `alarm_ppm`); readings in between keep the current
//! state, so a level hovering at the threshold does not flap. The siren output follows
//! the alarm **in the same call that sees the reading**, whether or not the device has a
//! network: it never waits for the gateway. The siren level is written again whenever
//! a write failed, so a transient pin error repairs itself on the next reading.
//!
//! Defaults: alarm at 5000 ppm (10 % of the lower explosive limit of methane, within
//! the 3–25 % LEL band household detectors use), clear below 2500 ppm.

use embedded_hal::digital::OutputPin;

use crate::wire::EventBody;
use crate::wire::event::GAS_PPM_MAX;

/// Where the device gets gas readings from (an ADC channel and its calibration).
pub trait GasProbe {
    /// The current reading in ppm, or `None` when no reading is available this time
    /// (converter busy or failed): the alarm state is then kept.
    fn read_ppm(&mut self) -> Option<u32>;
}

/// The alarm thresholds were not `clear_ppm < alarm_ppm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadThresholds {
    /// The alarm threshold given.
    pub alarm_ppm: u32,
    /// The clear threshold given.
    pub clear_ppm: u32,
}

/// Gas thresholds, always with `clear_ppm < alarm_ppm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasConfig {
    alarm_ppm: u32,
    clear_ppm: u32,
}

impl GasConfig {
    /// Thresholds in ppm; the clear threshold must be below the alarm threshold.
    pub const fn new(alarm_ppm: u32, clear_ppm: u32) -> Result<Self, BadThresholds> {
        if clear_ppm >= alarm_ppm || alarm_ppm > GAS_PPM_MAX {
            return Err(BadThresholds {
                alarm_ppm,
                clear_ppm,
            });
        }
        Ok(GasConfig {
            alarm_ppm,
            clear_ppm,
        })
    }

    /// The alarm threshold in ppm.
    pub const fn alarm_ppm(&self) -> u32 {
        self.alarm_ppm
    }

    /// The clear threshold in ppm.
    pub const fn clear_ppm(&self) -> u32 {
        self.clear_ppm
    }
}

impl Default for GasConfig {
    fn default() -> Self {
        GasConfig {
            alarm_ppm: 5000,
            clear_ppm: 2500,
        }
    }
}

/// Gas alarm logic driving a siren (or LED) output.
#[derive(Debug)]
pub struct GasAlarm<S> {
    siren: S,
    config: GasConfig,
    alarm: bool,
    written: Option<bool>,
    last_ppm: Option<u32>,
    write_errors: u32,
}

impl<S: OutputPin> GasAlarm<S> {
    /// Gas alarm logic with its siren output; the siren is switched off on the first
    /// reading (or [`GasAlarm::refresh`]).
    pub const fn new(siren: S, config: GasConfig) -> Self {
        GasAlarm {
            siren,
            config,
            alarm: false,
            written: None,
            last_ppm: None,
            write_errors: 0,
        }
    }

    /// Takes a reading: drives the siren at once and returns an alarm or clear event
    /// (with the reading) when the state changes.
    pub fn update(&mut self, ppm: u32, _now_ms: u64) -> Option<EventBody> {
        let ppm = ppm.min(GAS_PPM_MAX);
        self.last_ppm = Some(ppm);
        let changed = if !self.alarm && ppm >= self.config.alarm_ppm {
            self.alarm = true;
            true
        } else if self.alarm && ppm < self.config.clear_ppm {
            self.alarm = false;
            true
        } else {
            false
        };
        self.refresh();
        changed.then_some(EventBody::Gas {
            alarm: self.alarm,
            ppm,
        })
    }

    /// Writes the siren level if it was never written or the last write failed.
    pub fn refresh(&mut self) {
        if self.written == Some(self.alarm) {
            return;
        }
        let result = if self.alarm {
            self.siren.set_high()
        } else {
            self.siren.set_low()
        };
        match result {
            Ok(()) => self.written = Some(self.alarm),
            Err(_) => {
                self.written = None;
                self.write_errors = self.write_errors.saturating_add(1);
            }
        }
    }

    /// Changes the thresholds; the state is re-evaluated at the next reading.
    pub fn set_config(&mut self, config: GasConfig) {
        self.config = config;
    }

    /// The thresholds.
    pub const fn config(&self) -> GasConfig {
        self.config
    }

    /// Whether the alarm (and siren) is on.
    pub const fn is_alarm(&self) -> bool {
        self.alarm
    }

    /// The last reading, in ppm.
    pub const fn last_ppm(&self) -> Option<u32> {
        self.last_ppm
    }

    /// How many siren writes failed.
    pub const fn write_errors(&self) -> u32 {
        self.write_errors
    }

    /// Gives the siren pin back.
    pub fn release(self) -> S {
        self.siren
    }
}
