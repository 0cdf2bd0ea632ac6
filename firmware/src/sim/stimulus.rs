//! From where the resident is to what the sensors see (pure and deterministic).

use rand::Rng;

use super::calendar::{MINUTE_MS, SECOND_MS};
use super::day::{DayPlan, Place, Stream, rng_for};
use super::population::{Household, Room};
use crate::device::DeviceKind;

/// What happens to one device's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The PIR output goes high (`true`) or low.
    Motion(bool),
    /// The door opens (`true`) or closes.
    Door(bool),
    /// The help button is pressed (`true`) or released.
    Button(bool),
    /// The gas probe now reads this many ppm.
    Gas(u32),
    /// The device loses its connection until the given virtual time (Unix ms).
    Offline {
        /// When it reconnects.
        until_ms: u64,
    },
}

/// Something that happens to a device of the home at a virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stimulus {
    /// When, Unix ms.
    pub at_ms: u64,
    /// Which device (index into the household's devices).
    pub device: usize,
    /// What.
    pub action: Action,
}

/// How long a PIR output stays high for one movement.
pub const PIR_PULSE_MS: u64 = 3 * SECOND_MS;

/// Quiet gas reading, ppm.
pub const GAS_BASELINE_PPM: u32 = 40;

/// The sensor stimuli of one day plan, sorted by time.
pub fn day_stimuli(home: &Household, home_idx: usize, seed: u64, plan: &DayPlan) -> Vec<Stimulus> {
    let mut rng = rng_for(seed, home_idx, plan.day, Stream::Stimuli);
    let mut out = Vec::new();
    let door = home.device_of(DeviceKind::Door);
    let gas = home.device_of(DeviceKind::Gas);
    for seg in &plan.segments {
        match seg.place {
            Place::Room(room) => {
                if let Some(pir) = home.device_in(DeviceKind::Motion, room) {
                    let mut t = seg.start_ms + rng.random_range(0..20 * SECOND_MS);
                    while t + PIR_PULSE_MS <= seg.end_ms {
                        out.push(stim(t, pir, Action::Motion(true)));
                        out.push(stim(t + PIR_PULSE_MS, pir, Action::Motion(false)));
                        let gap = match room {
                            Room::LivingRoom => rng.random_range(4..15),
                            Room::Kitchen => rng.random_range(2..6),
                            Room::Bathroom => rng.random_range(1..4),
                            Room::Bedroom | Room::Entrance => rng.random_range(2..8),
                        };
                        t += gap * MINUTE_MS + rng.random_range(0..MINUTE_MS);
                    }
                }
                // Cooking: the gas sensor sees a little combustion gas.
                if room == Room::Kitchen
                    && seg.end_ms - seg.start_ms >= 20 * MINUTE_MS
                    && let Some(gas) = gas
                {
                    let ppm = rng.random_range(120..400);
                    out.push(stim(seg.start_ms + 2 * MINUTE_MS, gas, Action::Gas(ppm)));
                    out.push(stim(seg.end_ms, gas, Action::Gas(GAS_BASELINE_PPM)));
                }
            }
            Place::Out => {
                if let Some(door) = door {
                    let close = rng.random_range(8..25) * SECOND_MS;
                    out.push(stim(seg.start_ms, door, Action::Door(true)));
                    out.push(stim(seg.start_ms + close, door, Action::Door(false)));
                    let close = rng.random_range(8..25) * SECOND_MS;
                    out.push(stim(seg.end_ms, door, Action::Door(true)));
                    out.push(stim(seg.end_ms + close, door, Action::Door(false)));
                }
            }
            Place::Asleep => {}
        }
    }
    out.sort_by_key(|s| s.at_ms);
    out
}

fn stim(at_ms: u64, device: usize, action: Action) -> Stimulus {
    Stimulus {
        at_ms,
        device,
        action,
    }
}
