//! Kinds of home device.

use serde::{Deserialize, Serialize};

/// What a device is, which decides the inputs it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Front-door contact (door events; tamper where fitted).
    Door,
    /// PIR motion sensor in one room.
    Motion,
    /// Help button with LED/buzzer feedback.
    Help,
    /// Kitchen gas sensor with local siren.
    Gas,
    /// Worn pendant: fall detector (fed through [`super::Device::push_event`]) and help
    /// button.
    Pendant,
}

impl DeviceKind {
    /// A stable lower-case name (`"door"`, `"motion"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Door => "door",
            DeviceKind::Motion => "motion",
            DeviceKind::Help => "help",
            DeviceKind::Gas => "gas",
            DeviceKind::Pendant => "pendant",
        }
    }
}

impl core::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
