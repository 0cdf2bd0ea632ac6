//! Normalising what ingest observed into what detection reasons about, whatever the
//! source (Anxin firmware, Zigbee2MQTT, a replayed log).

use anxin_firmware::wire::{EventBody, FallAction, HelpAction};
use serde::{Deserialize, Serialize};

use crate::ingest::{Observation, ObservationKind};

/// Where in the home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomClass {
    /// Entrance / hall with the front door.
    Entrance,
    /// Bedroom.
    Bedroom,
    /// Bathroom / toilet.
    Bathroom,
    /// Kitchen.
    Kitchen,
    /// Living room.
    Living,
    /// Anything else or unknown.
    Other,
}

impl RoomClass {
    /// Classifies a room name (English or Chinese, as installers write it).
    pub fn from_name(room: Option<&str>) -> Self {
        let Some(r) = room else {
            return RoomClass::Other;
        };
        let r = r.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| r.contains(w));
        if has(&["bath", "toilet", "wc", "shower", "卫生间", "浴室", "厕所"]) {
            RoomClass::Bathroom
        } else if has(&["bed", "卧室"]) {
            RoomClass::Bedroom
        } else if has(&["entr", "hall", "door", "门", "玄关"]) {
            RoomClass::Entrance
        } else if has(&["kitchen", "厨房"]) {
            RoomClass::Kitchen
        } else if has(&["living", "lounge", "客厅"]) {
            RoomClass::Living
        } else {
            RoomClass::Other
        }
    }
}

/// A sign of life, by what produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivityKind {
    /// A motion sensor fired.
    Motion,
    /// The front door opened or closed.
    FrontDoor,
    /// Another contact (inner door, fridge, cupboard) changed.
    Contact,
    /// A presence mat or occupancy sensor turned on: someone is (still) there.
    PresenceOn,
    /// It turned off: they got up.
    PresenceOff,
    /// An appliance or fixture was used (toilet flush, microwave…).
    Use,
    /// The elder pressed a button.
    Button,
}

/// What the detector consumes.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A sign of life.
    Activity {
        /// Where.
        room: RoomClass,
        /// What.
        kind: ActivityKind,
    },
    /// Help button gesture.
    Help(HelpAction),
    /// Fall detector.
    Fall(FallAction),
    /// Gas alarm on or off, with the reading.
    Gas {
        /// Alarm on.
        alarm: bool,
        /// Reading.
        ppm: u32,
    },
    /// Enclosure tamper.
    Tamper {
        /// Open.
        open: bool,
    },
    /// A device heartbeat (device alive; not the elder).
    Heartbeat {
        /// Heartbeat interval.
        interval_s: u32,
        /// Battery, if reported.
        battery_pct: Option<u8>,
    },
    /// Device connected or gone.
    Availability {
        /// Online.
        online: bool,
    },
}

/// Maps an observation to detector inputs (an event may be both a sign of life and a
/// rule trigger, e.g. a help press).
pub fn inputs_of(o: &Observation) -> Vec<Input> {
    let room = RoomClass::from_name(o.room.as_deref());
    match &o.what {
        ObservationKind::Event { body, .. } => from_event(body, &o.device_kind, room),
        ObservationKind::Heartbeat(hb) => {
            vec![Input::Heartbeat {
                interval_s: hb.interval_s,
                battery_pct: hb.battery_pct,
            }]
        }
        ObservationKind::Availability { online } => vec![Input::Availability { online: *online }],
    }
}

/// Maps one event body from a device of `device_kind` in `room`.
pub fn from_event(body: &EventBody, device_kind: &str, room: RoomClass) -> Vec<Input> {
    let act = |kind| Input::Activity { room, kind };
    match *body {
        EventBody::Door { .. } => {
            let front = room == RoomClass::Entrance || device_kind == "front_door";
            vec![act(if front {
                ActivityKind::FrontDoor
            } else {
                ActivityKind::Contact
            })]
        }
        EventBody::Motion => vec![act(ActivityKind::Motion)],
        // "I'm OK" to a check-in is a sign of life and nothing else.
        EventBody::Help {
            act: HelpAction::Ok,
        } => vec![act(ActivityKind::Button)],
        EventBody::Help { act: a } => vec![act(ActivityKind::Button), Input::Help(a)],
        // A fall is not a sign of life; "I'm OK" is.
        EventBody::Fall { act: a, .. } => match a {
            FallAction::Detected => vec![Input::Fall(a)],
            FallAction::Cancel => vec![act(ActivityKind::Button), Input::Fall(a)],
        },
        EventBody::Gas { alarm, ppm } => vec![Input::Gas { alarm, ppm }],
        EventBody::Tamper { open } => vec![Input::Tamper { open }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_classified_in_english_and_chinese() {
        assert_eq!(RoomClass::from_name(Some("bathroom")), RoomClass::Bathroom);
        assert_eq!(RoomClass::from_name(Some("卫生间")), RoomClass::Bathroom);
        assert_eq!(RoomClass::from_name(Some("entrance")), RoomClass::Entrance);
        assert_eq!(RoomClass::from_name(None), RoomClass::Other);
    }

    #[test]
    fn a_fall_is_not_a_sign_of_life_but_im_ok_is() {
        let d = from_event(
            &EventBody::Fall {
                act: FallAction::Detected,
                peak_mg: None,
            },
            "pendant",
            RoomClass::Other,
        );
        assert_eq!(d, vec![Input::Fall(FallAction::Detected)]);
        let c = from_event(
            &EventBody::Fall {
                act: FallAction::Cancel,
                peak_mg: None,
            },
            "pendant",
            RoomClass::Other,
        );
        assert!(matches!(c[0], Input::Activity { .. }));
    }
}
