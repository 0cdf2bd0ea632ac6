//! What the API sends and takes: JSON shapes with their OpenAPI schemas, converted from
//! and to the workflow's own types (which stay free of HTTP concerns).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::workflow::{self, Alert, Role, User};

/// Defines a closed list for the API (snake_case, documented as an enum) mapped one to
/// one onto the workflow's own.
macro_rules! api_enum {
    ($(#[$m:meta])* $name:ident => $target:ty { $($variant:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $(
                #[allow(missing_docs)]
                $variant
            ),+
        }

        impl From<$name> for $target {
            fn from(v: $name) -> $target {
                match v {
                    $($name::$variant => <$target>::$variant),+
                }
            }
        }

        impl From<$target> for $name {
            fn from(v: $target) -> $name {
                match v {
                    $(<$target>::$variant => $name::$variant),+
                }
            }
        }
    };
}

api_enum!(
    /// A user's role.
    RoleName => Role { Caseworker, CommitteeHead, StreetSupervisor, Technician, Admin }
);
api_enum!(
    /// How an alert ended (with a note, required to resolve).
    OutcomeName => workflow::OutcomeCategory {
        FalseAlarm, ElderOk, HelpedOnSite, FamilyHandled, Hospitalised, EmergencyServices,
        GasMadeSafe, DeviceFixed, BatteryReplaced, NoFaultFound, Other,
    }
);
api_enum!(
    /// How a household was contacted.
    ContactMethodName => workflow::ContactMethod { Phone, Wechat, Visit }
);
api_enum!(
    /// What came of a contact.
    ContactOutcomeName => workflow::ContactOutcome { Well, NeedsHelp, NoAnswer, NotHome }
);
api_enum!(
    /// Kind of need.
    NeedCategoryName => workflow::NeedCategory { Medicine, Food, Repair, EscortToHospital, Other }
);
api_enum!(
    /// Where a need is.
    NeedStatusName => workflow::NeedStatus { Open, Assigned, Fulfilled, Cancelled }
);
api_enum!(
    /// Where an alert is in its life.
    AlertStateName => workflow::AlertState {
        Raised, Notified, Acknowledged, OnTheWay, Arrived, Resolved, Cancelled, Cleared,
    }
);
api_enum!(
    /// What an alert is about.
    AlertKindName => crate::signal::AlertKind {
        Help, Fall, Gas, Inactivity, MissedWakeup, NightExit, LongBathroom, NotBack,
        DeviceOffline, LowBattery, Tamper, SuspiciousDevice, GatewayBlind, CheckIn,
    }
);
api_enum!(
    /// Who acts on an alert.
    AudienceName => crate::signal::Audience { Caseworker, Technician, System, Elder }
);
api_enum!(
    /// How urgent.
    SeverityName => crate::signal::Severity { Info, Warning, Critical }
);
api_enum!(
    /// A household's mode.
    ModeName => crate::detect::HouseholdMode { Normal, Away, Hospital, InstallTest }
);
api_enum!(
    /// Risk tag of a household.
    RiskTagName => workflow::RiskTag {
        VeryOld, ChronicIllness, Dialysis, Dementia, Disability, LivesAlone, AllElderly,
        LowIncome, RecentlyDischarged,
    }
);

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UserView {
    /// Id (工号), also the login.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: RoleName,
    /// Committee.
    pub committee_id: Option<String>,
    /// Street.
    pub street_id: Option<String>,
    /// Mobile.
    pub phone: Option<String>,
    /// On duty (street supervisors).
    pub on_duty: bool,
    /// Can log in and act.
    pub active: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.0.clone(),
            name: u.name.clone(),
            role: u.role.into(),
            committee_id: u.committee_id.clone(),
            street_id: u.street_id.clone(),
            phone: u.phone.clone(),
            on_duty: u.on_duty,
            active: u.active,
        }
    }
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AlertView {
    /// Id.
    pub id: String,
    /// Household (null: the gateway itself).
    pub household_id: Option<String>,
    /// The household's resident(s), for the queue.
    pub household_name: Option<String>,
    /// The household's address.
    pub household_address: Option<String>,
    /// The device that caused it.
    pub device_id: Option<String>,
    /// Kind.
    pub kind: AlertKindName,
    /// Who acts on it.
    pub audience: AudienceName,
    /// Severity.
    pub severity: SeverityName,
    /// State.
    pub state: AlertStateName,
    /// Still open.
    pub open: bool,
    /// Detection's reason.
    pub reason: String,
    /// Repeats after the first signal.
    pub repeats: i64,
    /// Raised at (ms).
    pub raised_ms: i64,
    /// Acknowledged at (ms).
    pub acknowledged_ms: Option<i64>,
    /// By (`user:ID`).
    pub acknowledged_by: Option<String>,
    /// On the way at (ms).
    pub on_the_way_ms: Option<i64>,
    /// Arrived at (ms).
    pub arrived_ms: Option<i64>,
    /// The condition ended by itself at (ms) while the alert stays open.
    pub condition_cleared_ms: Option<i64>,
    /// Closed at (ms).
    pub closed_ms: Option<i64>,
    /// By.
    pub closed_by: Option<String>,
    /// Outcome category (or `cancelled_by_device` / `cleared`).
    pub outcome: Option<String>,
    /// Outcome note.
    pub outcome_note: Option<String>,
    /// Follow-up due at (ms).
    pub follow_up_due_ms: Option<i64>,
    /// Escalation steps fired so far (1: the caseworker; more: escalated).
    pub escalation_step: i64,
}

impl AlertView {
    /// From the workflow's alert and its household's name and address.
    pub fn new(a: &Alert, household: Option<(&str, &str)>) -> Self {
        AlertView {
            id: a.id.0.clone(),
            household_id: a.household_id.clone(),
            household_name: household.map(|h| h.0.to_string()),
            household_address: household.map(|h| h.1.to_string()),
            device_id: a.device_id.clone(),
            kind: a.kind.into(),
            audience: a.audience.into(),
            severity: a.severity.into(),
            state: a.state.into(),
            open: a.state.is_open(),
            reason: a.reason.clone(),
            repeats: a.repeats,
            raised_ms: a.raised_ms,
            acknowledged_ms: a.acknowledged_ms,
            acknowledged_by: a.acknowledged_by.clone(),
            on_the_way_ms: a.on_the_way_ms,
            arrived_ms: a.arrived_ms,
            condition_cleared_ms: a.condition_cleared_ms,
            closed_ms: a.closed_ms,
            closed_by: a.closed_by.clone(),
            outcome: a.outcome.clone(),
            outcome_note: a.outcome_note.clone(),
            follow_up_due_ms: a.follow_up_due_ms,
            escalation_step: a.escalation_step,
        }
    }
}

/// A household's status on the "today" page, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TileStatus {
    /// An open alert about the elder.
    Alert,
    /// No sign of life yet today (and not away).
    NoSignOfLife,
    /// A device is offline or has an open device alert.
    DeviceProblem,
    /// Away, in hospital or under an installation test: silence is expected.
    Away,
    /// Signs of life today, nothing open.
    Well,
}

/// An open alert, briefly.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AlertBriefView {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: AlertKindName,
    /// Severity.
    pub severity: SeverityName,
    /// State.
    pub state: AlertStateName,
    /// Raised at (ms).
    pub raised_ms: i64,
}

/// The last contact with a household.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LastContact {
    /// When (ms).
    pub at_ms: i64,
    /// How.
    pub method: ContactMethodName,
    /// Outcome.
    pub outcome: ContactOutcomeName,
}

/// One household on the "my households today" page.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HouseholdTile {
    /// Id.
    pub id: String,
    /// Resident(s).
    pub name: String,
    /// Address.
    pub address: String,
    /// Phone.
    pub phone: Option<String>,
    /// Status (the tile's colour, text and icon).
    pub status: TileStatus,
    /// Why, in order: `open_alert`, `no_sign_of_life_today`, `device_offline`,
    /// `device_alert`, `away`, `not_contacted_today`, `visit_task`.
    pub reasons: Vec<String>,
    /// The caller's part: `caseworker`, `backup`, or null (a supervisor's view).
    pub my_role: Option<String>,
    /// Responsible caseworker.
    pub caseworker_id: Option<String>,
    /// Backup.
    pub backup_id: Option<String>,
    /// Committee.
    pub committee_id: Option<String>,
    /// Mode.
    pub mode: ModeName,
    /// Mode ends at (ms).
    pub mode_until_ms: Option<i64>,
    /// Open alerts about the elder.
    pub open_alerts: Vec<AlertBriefView>,
    /// Open device alerts.
    pub device_alerts: i64,
    /// First activity today (ms).
    pub first_activity_today_ms: Option<i64>,
    /// Last activity (ms).
    pub last_activity_ms: Option<i64>,
    /// Activity events today.
    pub activity_today: i64,
    /// Contacted today.
    pub contacted_today: bool,
    /// The last contact.
    pub last_contact: Option<LastContact>,
    /// An open visit task.
    pub visit_task: bool,
    /// Devices.
    pub devices: i64,
    /// Devices offline.
    pub devices_offline: i64,
    /// Risk tags.
    pub risk_tags: Vec<RiskTagName>,
}

/// An emergency contact.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EmergencyContactView {
    /// Name.
    pub name: String,
    /// Relation.
    pub relation: String,
    /// Phone.
    pub phone: String,
}

/// A household in full (its caseworkers and supervisors only).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HouseholdDetail {
    /// Today's tile.
    pub tile: HouseholdTile,
    /// Notes.
    pub notes: String,
    /// Emergency contacts, in order.
    pub emergency_contacts: Vec<EmergencyContactView>,
    /// Street.
    pub street_id: Option<String>,
    /// Days of routine detection has learned.
    pub learned_days: i64,
    /// Out since (ms), when probably out.
    pub out_since_ms: Option<i64>,
}

/// A contact in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContactView {
    /// Id.
    pub id: String,
    /// Household.
    pub household_id: String,
    /// Who made it.
    pub user_id: String,
    /// Local day.
    pub day: String,
    /// When (ms).
    pub at_ms: i64,
    /// How.
    pub method: ContactMethodName,
    /// Outcome.
    pub outcome: ContactOutcomeName,
    /// Note.
    pub note: String,
}

impl From<&workflow::contacts::ContactRecord> for ContactView {
    fn from(c: &workflow::contacts::ContactRecord) -> Self {
        ContactView {
            id: c.id.clone(),
            household_id: c.household_id.0.clone(),
            user_id: c.user_id.0.clone(),
            day: c.day.clone(),
            at_ms: c.at_ms,
            method: c.method.into(),
            outcome: c.outcome.into(),
            note: c.note.clone(),
        }
    }
}

/// A need.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NeedView {
    /// Id.
    pub id: String,
    /// Household.
    pub household_id: String,
    /// The household's resident(s).
    pub household_name: Option<String>,
    /// Category.
    pub category: NeedCategoryName,
    /// What exactly.
    pub description: String,
    /// Status.
    pub status: NeedStatusName,
    /// Recorded at (ms).
    pub created_ms: i64,
    /// By.
    pub created_by: String,
    /// Who takes care of it.
    pub assignee_id: Option<String>,
    /// By when (ms).
    pub due_ms: Option<i64>,
    /// Fulfilled or cancelled at (ms).
    pub fulfilled_ms: Option<i64>,
    /// What was done.
    pub outcome_note: Option<String>,
    /// The contact it came from.
    pub source_contact_id: Option<String>,
    /// The alert it came from.
    pub source_alert_id: Option<String>,
}

impl NeedView {
    /// From the workflow's need.
    pub fn new(n: &workflow::Need, household_name: Option<String>) -> Self {
        NeedView {
            id: n.id.0.clone(),
            household_id: n.household_id.0.clone(),
            household_name,
            category: n.category.into(),
            description: n.description.clone(),
            status: n.status.into(),
            created_ms: n.created_ms,
            created_by: n.created_by.clone(),
            assignee_id: n.assignee_id.as_ref().map(|u| u.0.clone()),
            due_ms: n.due_ms,
            fulfilled_ms: n.fulfilled_ms,
            outcome_note: n.outcome_note.clone(),
            source_contact_id: n.source_contact_id.clone(),
            source_alert_id: n.source_alert_id.clone(),
        }
    }
}

/// What is wrong with a device (a device list shows these first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceProblem {
    /// Not heard from by its heartbeat interval (or its last will, or its bridge).
    Offline,
    /// Registered, never heard from.
    NeverSeen,
    /// Its credentials are revoked: the broker refuses it.
    Revoked,
    /// Battery at or below the low-battery threshold.
    LowBattery,
    /// The battery trend says it is empty within the warning period.
    BatterySoon,
    /// Signal below −85 dBm.
    WeakSignal,
    /// False presses (cancelled at once, or nobody home) in the suspicious window.
    FalsePresses,
    /// An open device alert (technicians' audience).
    OpenAlert,
    /// An open work order.
    WorkOrder,
}

/// The state of a device's credentials (never the secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStateName {
    /// None issued (or a Zigbee device, which logs in through its bridge).
    None,
    /// Valid.
    Active,
    /// Revoked.
    Revoked,
}

/// A device's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CredentialView {
    /// State.
    pub state: CredentialStateName,
    /// Generation of the current (or revoked) secret; 0: none issued.
    pub generation: i64,
    /// When the current secret was issued (ms).
    pub issued_ms: Option<i64>,
    /// When it was revoked (ms).
    pub revoked_ms: Option<i64>,
}

impl From<crate::provision::CredentialState> for CredentialView {
    fn from(c: crate::provision::CredentialState) -> Self {
        use crate::provision::CredentialState as C;
        match c {
            C::None => CredentialView {
                state: CredentialStateName::None,
                generation: 0,
                issued_ms: None,
                revoked_ms: None,
            },
            C::Active {
                generation,
                issued_ms,
            } => CredentialView {
                state: CredentialStateName::Active,
                generation: i64::from(generation),
                issued_ms: Some(issued_ms),
                revoked_ms: None,
            },
            C::Revoked {
                generation,
                revoked_ms,
            } => CredentialView {
                state: CredentialStateName::Revoked,
                generation: i64::from(generation),
                issued_ms: None,
                revoked_ms: Some(revoked_ms),
            },
        }
    }
}

/// A technician's work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WorkOrderView {
    /// Number.
    pub id: i64,
    /// Device.
    pub device_id: String,
    /// Household.
    pub household_id: Option<String>,
    /// The household's address (where to go).
    pub household_address: Option<String>,
    /// Why: `offline`, `low_battery`, `suspicious`, `bridge_offline`, `untested`.
    pub reason: String,
    /// What was seen.
    pub detail: String,
    /// Opened (ms).
    pub opened_ms: i64,
    /// Closed (ms).
    pub closed_ms: Option<i64>,
    /// Closed by (`user:ID`, or `anxin` when it resolved itself).
    pub closed_by: Option<String>,
    /// What was done.
    pub resolution: Option<String>,
}

impl WorkOrderView {
    /// From provisioning's row, with the household's address.
    pub fn of(o: crate::provision::WorkOrderRow, address: Option<String>) -> WorkOrderView {
        WorkOrderView {
            id: o.id,
            device_id: o.device_id,
            household_id: o.household_id,
            household_address: address,
            reason: o.reason,
            detail: o.detail,
            opened_ms: o.opened_ms,
            closed_ms: o.closed_ms,
            closed_by: o.closed_by,
            resolution: o.resolution,
        }
    }
}

/// A device with its health, credentials and open work orders.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeviceView {
    /// Id (also its MQTT client id and user name).
    pub id: String,
    /// Household.
    pub household_id: Option<String>,
    /// The household's address (where to go).
    pub household_address: Option<String>,
    /// Kind (`door`, `motion`, `help`, `gas`, `pendant`, `zigbee_bridge`).
    pub kind: String,
    /// Room.
    pub room: Option<String>,
    /// Serial number or MAC address.
    pub serial: Option<String>,
    /// Zigbee2MQTT friendly name (a Zigbee device) or path (a bridge).
    pub zigbee_name: Option<String>,
    /// Sending, by its own heartbeat interval and last will.
    pub online: bool,
    /// Last message of any kind (ms).
    pub last_seen_ms: Option<i64>,
    /// Battery (%).
    pub battery_pct: Option<i64>,
    /// Battery change per day over 14 days, % (negative: draining).
    pub battery_pct_per_day: Option<f64>,
    /// Days until the battery is empty at that rate.
    pub battery_days_left: Option<f64>,
    /// Signal (dBm; Zigbee devices report none).
    pub rssi_dbm: Option<i64>,
    /// Firmware version (`zigbee` for Zigbee2MQTT devices).
    pub firmware: Option<String>,
    /// Heartbeat (or Zigbee check-in) interval, s.
    pub heartbeat_s: Option<i64>,
    /// False presses (cancelled at once, or nobody home) within the suspicious window.
    pub false_presses: u64,
    /// Credentials (never the secret).
    pub credentials: CredentialView,
    /// Open work orders, newest first.
    pub open_work_orders: Vec<WorkOrderView>,
    /// What is wrong, worst first; empty when healthy.
    pub problems: Vec<DeviceProblem>,
}

/// What changed, on the live stream (`event: household`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HouseholdEvent {
    /// The household's tile now.
    pub tile: HouseholdTile,
}
