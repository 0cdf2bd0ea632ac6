//! What detection tells the workflow: a [`Signal`] raises, updates, cancels or clears an
//! alert of one kind for one household (or device, or the whole gateway). The workflow
//! keeps one open alert per (household, kind) and counts repeats; detection never talks
//! to people directly.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// What the alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The elder pressed the help button.
    Help,
    /// The pendant detected a fall.
    Fall,
    /// Gas alarm (never closed automatically).
    Gas,
    /// No sign of life for longer than this household's usual at this time of day.
    Inactivity,
    /// No activity by the usual getting-up time.
    MissedWakeup,
    /// Front door opened at night and no return.
    NightExit,
    /// A long stay in the bathroom.
    LongBathroom,
    /// Out, and not back by the expected time.
    NotBack,
    /// A device stopped sending heartbeats.
    DeviceOffline,
    /// A device's battery is low.
    LowBattery,
    /// A device's enclosure was opened.
    Tamper,
    /// A help button that "presses itself" (many presses cancelled or unanswered).
    SuspiciousDevice,
    /// The gateway cannot see (lost its broker, or most devices of a home at once).
    GatewayBlind,
    /// A silence became unusual and the elder is asked first, on their own help button
    /// ("press once if all is well"): never a person's task. Raise = asked, Clear =
    /// answered (a press or any sign of life), Cancel = not answered (the alert follows).
    CheckIn,
}

impl AlertKind {
    /// Who acts on it.
    pub const fn audience(self) -> Audience {
        match self {
            AlertKind::Help
            | AlertKind::Fall
            | AlertKind::Gas
            | AlertKind::Inactivity
            | AlertKind::MissedWakeup
            | AlertKind::NightExit
            | AlertKind::LongBathroom
            | AlertKind::NotBack => Audience::Caseworker,
            AlertKind::DeviceOffline
            | AlertKind::LowBattery
            | AlertKind::Tamper
            | AlertKind::SuspiciousDevice => Audience::Technician,
            AlertKind::GatewayBlind => Audience::System,
            AlertKind::CheckIn => Audience::Elder,
        }
    }

    /// Stable snake_case name (storage, API, metrics).
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertKind::Help => "help",
            AlertKind::Fall => "fall",
            AlertKind::Gas => "gas",
            AlertKind::Inactivity => "inactivity",
            AlertKind::MissedWakeup => "missed_wakeup",
            AlertKind::NightExit => "night_exit",
            AlertKind::LongBathroom => "long_bathroom",
            AlertKind::NotBack => "not_back",
            AlertKind::DeviceOffline => "device_offline",
            AlertKind::LowBattery => "low_battery",
            AlertKind::Tamper => "tamper",
            AlertKind::SuspiciousDevice => "suspicious_device",
            AlertKind::GatewayBlind => "gateway_blind",
            AlertKind::CheckIn => "check_in",
        }
    }

    /// Every kind.
    pub const ALL: [AlertKind; 14] = [
        AlertKind::Help,
        AlertKind::Fall,
        AlertKind::Gas,
        AlertKind::Inactivity,
        AlertKind::MissedWakeup,
        AlertKind::NightExit,
        AlertKind::LongBathroom,
        AlertKind::NotBack,
        AlertKind::DeviceOffline,
        AlertKind::LowBattery,
        AlertKind::Tamper,
        AlertKind::SuspiciousDevice,
        AlertKind::GatewayBlind,
        AlertKind::CheckIn,
    ];

    /// Parses [`AlertKind::as_str`].
    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who an alert is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The household's caseworker (and the escalation chain): an elder may need help.
    Caseworker,
    /// Technicians: a device needs attention; never presented as an elder in trouble.
    Technician,
    /// Operators of the gateway itself.
    System,
    /// The elder, asked on their own device (a check-in); no person is notified.
    Elder,
}

/// How urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record and the daily list.
    Info,
    /// A pre-alarm: worth a look or a call.
    Warning,
    /// Act now.
    Critical,
}

/// What happens to the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalAction {
    /// Open an alert, or update the open one (a repeat, or a stage change such as a
    /// warning that became critical).
    Raise,
    /// The device withdrew it within its window (help cancel, "I'm OK"): close it as
    /// cancelled, keep it on record.
    Cancel,
    /// The condition ended by itself (gas below threshold, device back online, the elder
    /// moved again): record it; the workflow decides whether a person must still close
    /// the alert (gas is never closed automatically).
    Clear,
}

/// One message from detection to the workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Household, when the alert is about one (None: the whole gateway).
    pub household_id: Option<String>,
    /// Device that caused it, when one did.
    pub device_id: Option<String>,
    /// What it is about.
    pub kind: AlertKind,
    /// How urgent.
    pub severity: Severity,
    /// Raise, cancel or clear.
    pub action: SignalAction,
    /// When detection decided it (ms, UTC, gateway clock).
    pub at_ms: i64,
    /// When the triggering observation happened (ms, UTC), if different.
    pub observed_ms: Option<i64>,
    /// Identifies the episode the signal belongs to (for inactivity: when the silence
    /// began; for a help press: when it was pressed; for a missed wake-up: the day). The
    /// workflow treats a second `Raise` of the same (household, kind, episode, severity)
    /// as the same signal, so a detector that re-derives its state after a restart never
    /// raises anything twice.
    pub episode_ms: i64,
    /// A short human-readable reason, e.g. "no sign of life for 5 h 12 min (usual at
    /// this hour: up to 3 h)".
    pub reason: String,
}

/// Counts signals sent by detection and signals the workflow has durably applied, so
/// that detection writes a snapshot (which marks its alerts as raised) only when nothing
/// it sent is still in flight: a crash can then re-derive a signal, never lose one.
#[derive(Debug, Default)]
pub struct SignalLedger {
    sent: AtomicU64,
    done: AtomicU64,
}

impl SignalLedger {
    /// Detection sent one.
    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::SeqCst);
    }

    /// The workflow finished with one (stored, or rejected for good).
    pub fn done(&self) {
        self.done.fetch_add(1, Ordering::SeqCst);
    }

    /// Nothing in flight.
    pub fn settled(&self) -> bool {
        self.done.load(Ordering::SeqCst) >= self.sent.load(Ordering::SeqCst)
    }
}
