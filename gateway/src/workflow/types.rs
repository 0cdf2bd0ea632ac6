//! The workflow's vocabulary: ids, actors, roles, states and the closed lists (outcomes,
//! contact methods and outcomes, need categories, risk tags), each with a stable
//! snake_case name for storage, API and files, and the Chinese names the import accepts.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::signal::{AlertKind, Audience, Severity};

macro_rules! string_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps an id.
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
    };
}

string_id!(
    /// An alert.
    AlertId
);
string_id!(
    /// A person who uses the system (caseworker, supervisor, technician, administrator).
    UserId
);
string_id!(
    /// A household (one or more elders at one address).
    HouseholdId
);
string_id!(
    /// A need on the needs list (需求名单库).
    NeedId
);
string_id!(
    /// A visit task (an elder who did not answer and shows no sign of life).
    TaskId
);

/// A new time-ordered id: `prefix-`, 12 hex digits of milliseconds, 8 of a per-process
/// sequence (ids made in the same millisecond keep their order) and 6 random ones (ids
/// of several gateway instances do not collide).
pub fn new_id(prefix: &str, now_ms: i64) -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let r: u32 = rand::random::<u32>() & 0xff_ffff;
    format!("{prefix}-{:012x}{seq:08x}{r:06x}", now_ms.max(0))
}

/// Who did something: a person, a device, or the gateway itself. Every service-layer
/// method takes one so that the audit trail knows who.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A user of the system.
    User(UserId),
    /// A device (a help cancel, an "I'm OK").
    Device(String),
    /// The gateway (detection, timers, the daily jobs, the CLI).
    System,
}

impl Actor {
    /// A user.
    pub fn user(id: impl Into<String>) -> Self {
        Actor::User(UserId::new(id))
    }

    /// The user's id, if a user acts.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Actor::User(u) => Some(u),
            _ => None,
        }
    }

    /// `user:ID`, `device:ID` or `system` (the audit trail's actor column).
    pub fn audit_name(&self) -> String {
        match self {
            Actor::User(u) => format!("user:{u}"),
            Actor::Device(d) => format!("device:{d}"),
            Actor::System => "system".into(),
        }
    }
}

/// Defines a closed list with snake_case names and accepted aliases.
macro_rules! closed_list {
    (
        $(#[$m:meta])* $name:ident {
            $( $(#[$vm:meta])* $variant:ident = $text:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vm])* $variant ),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Stable snake_case name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the name or one of its aliases (Chinese names, case and
            /// surrounding blanks ignored).
            pub fn parse(s: &str) -> Option<$name> {
                let t = s.trim();
                let lower = t.to_ascii_lowercase().replace([' ', '-'], "_");
                $(
                    if lower == $text $(|| t == $alias)* {
                        return Some($name::$variant);
                    }
                )+
                None
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_list!(
    /// A user's role.
    Role {
        /// Committee worker responsible for households (包保).
        Caseworker = "caseworker" | "包保人" | "社工" | "工作人员" | "居委干部",
        /// Head of a residents' committee (居委会主任/书记).
        CommitteeHead = "committee_head" | "居委会主任" | "主任" | "书记",
        /// Street/town office (街镇) supervisor; the one on duty is the last step of
        /// escalation.
        StreetSupervisor = "street_supervisor" | "街道" | "街镇" | "街道值班",
        /// Installs and fixes devices.
        Technician = "technician" | "技术员" | "安装员",
        /// Imports rosters, sees the gateway itself.
        Admin = "admin" | "管理员",
    }
);

closed_list!(
    /// Where an alert is in its life.
    AlertState {
        /// Opened; nobody has been reached yet.
        Raised = "raised",
        /// At least one person got a notification.
        Notified = "notified",
        /// A person took it (who and when are recorded).
        Acknowledged = "acknowledged",
        /// The person is on the way.
        OnTheWay = "on_the_way",
        /// The person is at the home.
        Arrived = "arrived",
        /// Closed by a person with an outcome.
        Resolved = "resolved",
        /// Withdrawn by the device within its window (a false press, "I'm OK").
        Cancelled = "cancelled",
        /// Ended by itself (device back online, the elder moved again) before anyone
        /// took it.
        Cleared = "cleared",
    }
);

impl AlertState {
    /// Still needs a person (or the device/condition) to close it.
    pub const fn is_open(self) -> bool {
        !matches!(
            self,
            AlertState::Resolved | AlertState::Cancelled | AlertState::Cleared
        )
    }

    /// A person has taken it.
    pub const fn is_acknowledged(self) -> bool {
        matches!(
            self,
            AlertState::Acknowledged | AlertState::OnTheWay | AlertState::Arrived
        )
    }
}

closed_list!(
    /// How an alert ended: required to resolve one (with a note).
    OutcomeCategory {
        /// Nothing was wrong (a false press, a misread sensor).
        FalseAlarm = "false_alarm" | "误报",
        /// The elder was reached and is well.
        ElderOk = "elder_ok" | "老人安好",
        /// Helped at the home.
        HelpedOnSite = "helped_on_site" | "上门处置",
        /// Family took care of it.
        FamilyHandled = "family_handled" | "家属处理",
        /// Taken to hospital.
        Hospitalised = "hospitalised" | "送医",
        /// Emergency services (120/110/119) called.
        EmergencyServices = "emergency_services" | "呼叫120" | "报警",
        /// Gas: the source was found and made safe.
        GasMadeSafe = "gas_made_safe" | "燃气已处置",
        /// A device was repaired or reinstalled.
        DeviceFixed = "device_fixed" | "设备已修复",
        /// A battery was replaced.
        BatteryReplaced = "battery_replaced" | "已换电池",
        /// Checked; no fault found.
        NoFaultFound = "no_fault_found" | "未发现故障",
        /// Anything else (the note says what).
        Other = "other" | "其他",
    }
);

/// How an alert was closed by a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// From the closed list.
    pub category: OutcomeCategory,
    /// What happened, in the worker's words (required, not blank).
    pub note: String,
    /// When someone should check again (ms UTC), if at all.
    pub follow_up_due_ms: Option<i64>,
}

closed_list!(
    /// How a household was contacted.
    ContactMethod {
        /// A phone call.
        Phone = "phone" | "电话",
        /// WeChat message or call.
        Wechat = "wechat" | "微信",
        /// At the door.
        Visit = "visit" | "上门" | "走访",
    }
);

closed_list!(
    /// What came of a contact.
    ContactOutcome {
        /// Reached; all is well.
        Well = "well" | "安好",
        /// Reached; needs something (see the needs).
        NeedsHelp = "needs_help" | "需要帮助",
        /// Nobody answered.
        NoAnswer = "no_answer" | "无人接听",
        /// Not at home (a visit found nobody, family says away).
        NotHome = "not_home" | "不在家",
    }
);

closed_list!(
    /// Kinds of need on the needs list (需求名单库).
    NeedCategory {
        /// Medicine to fetch or refill.
        Medicine = "medicine" | "配药",
        /// Food or meal delivery.
        Food = "food" | "助餐" | "买菜",
        /// Something in the home to repair.
        Repair = "repair" | "维修",
        /// Someone to go to hospital with.
        EscortToHospital = "escort_to_hospital" | "陪医" | "就医陪同",
        /// Anything else.
        Other = "other" | "其他",
    }
);

closed_list!(
    /// Where a need is.
    NeedStatus {
        /// Recorded; nobody assigned.
        Open = "open",
        /// Someone is responsible.
        Assigned = "assigned",
        /// Done.
        Fulfilled = "fulfilled",
        /// No longer needed.
        Cancelled = "cancelled",
    }
);

closed_list!(
    /// Risk tags of a household (ordering of the morning list).
    RiskTag {
        /// Very old (高龄, 80+).
        VeryOld = "very_old" | "高龄",
        /// A chronic illness.
        ChronicIllness = "chronic_illness" | "慢病" | "慢性病",
        /// On dialysis.
        Dialysis = "dialysis" | "透析",
        /// Dementia.
        Dementia = "dementia" | "认知障碍" | "失智",
        /// A disability.
        Disability = "disability" | "残疾" | "失能",
        /// Lives alone (独居).
        LivesAlone = "lives_alone" | "独居",
        /// Only elders in the household (纯老).
        AllElderly = "all_elderly" | "纯老" | "纯老家庭",
        /// Low income, subsistence allowance (低保).
        LowIncome = "low_income" | "低保" | "困难",
        /// Recently discharged from hospital.
        RecentlyDischarged = "recently_discharged" | "近期出院",
    }
);

impl RiskTag {
    /// Weight in the morning list's ordering (higher first).
    pub const fn weight(self) -> u32 {
        match self {
            RiskTag::Dialysis | RiskTag::Dementia | RiskTag::RecentlyDischarged => 3,
            RiskTag::VeryOld | RiskTag::ChronicIllness | RiskTag::Disability => 2,
            RiskTag::LivesAlone | RiskTag::AllElderly | RiskTag::LowIncome => 1,
        }
    }
}

/// Parses a stored comma list of risk tags (unknown ones are skipped).
pub fn parse_risk_tags(s: &str) -> Vec<RiskTag> {
    s.split([',', '，', ';', '；', '、', '|'])
        .filter_map(RiskTag::parse)
        .collect()
}

/// A stored comma list of risk tags.
pub fn risk_tags_text(tags: &[RiskTag]) -> String {
    tags.iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Stable names of [`Severity`].
pub const fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// Parses [`severity_str`].
pub fn parse_severity(s: &str) -> Option<Severity> {
    match s {
        "info" => Some(Severity::Info),
        "warning" => Some(Severity::Warning),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

/// Stable names of [`Audience`].
pub const fn audience_str(a: Audience) -> &'static str {
    match a {
        Audience::Caseworker => "caseworker",
        Audience::Technician => "technician",
        Audience::System => "system",
        Audience::Elder => "elder",
    }
}

/// Parses [`audience_str`].
pub fn parse_audience(s: &str) -> Option<Audience> {
    match s {
        "caseworker" => Some(Audience::Caseworker),
        "technician" => Some(Audience::Technician),
        "system" => Some(Audience::System),
        "elder" => Some(Audience::Elder),
        _ => None,
    }
}

/// The alert's name in Chinese (notifications, exports).
pub const fn kind_zh(k: AlertKind) -> &'static str {
    match k {
        AlertKind::Help => "一键求助",
        AlertKind::Fall => "跌倒",
        AlertKind::Gas => "燃气报警",
        AlertKind::Inactivity => "长时间无活动",
        AlertKind::MissedWakeup => "未按时起床",
        AlertKind::NightExit => "夜间外出未归",
        AlertKind::LongBathroom => "卫生间停留过久",
        AlertKind::NotBack => "外出未归",
        AlertKind::DeviceOffline => "设备离线",
        AlertKind::LowBattery => "设备电量低",
        AlertKind::Tamper => "设备被拆动",
        AlertKind::SuspiciousDevice => "设备疑似误触",
        AlertKind::GatewayBlind => "网关失联",
        AlertKind::CheckIn => "平安询问",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_lists_parse_their_names_and_chinese_aliases() {
        assert_eq!(Role::parse("Committee Head"), Some(Role::CommitteeHead));
        assert_eq!(Role::parse("包保人"), Some(Role::Caseworker));
        assert_eq!(RiskTag::parse(" 透析 "), Some(RiskTag::Dialysis));
        assert_eq!(
            OutcomeCategory::parse("false_alarm"),
            Some(OutcomeCategory::FalseAlarm)
        );
        assert_eq!(ContactOutcome::parse("nobody"), None);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(*r));
        }
    }

    #[test]
    fn risk_tags_split_on_chinese_and_ascii_separators() {
        assert_eq!(
            parse_risk_tags("高龄、透析,lives_alone"),
            vec![RiskTag::VeryOld, RiskTag::Dialysis, RiskTag::LivesAlone]
        );
    }

    #[test]
    fn new_ids_sort_by_time() {
        let a = new_id("al", 1_000);
        let b = new_id("al", 2_000);
        let c = new_id("al", 2_000);
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}
