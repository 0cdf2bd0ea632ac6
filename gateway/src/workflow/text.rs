//! The words of notifications, in Chinese (default) or English. Device alerts are
//! worded as device problems, never as an elder in trouble.

use super::alerts::Alert;
use super::org::Household;
use super::types::kind_zh;
use crate::signal::{Audience, Severity};

/// Why a notification about an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Raised,
    Escalated,
    Repeat,
    ArrivalOverdue,
    Upgraded,
    RepeatSignal,
    Acknowledged,
    Cancelled,
    Cleared,
    ConditionCleared,
    Resolved,
    Unroutable,
}

impl Purpose {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Purpose::Raised => "raised",
            Purpose::Escalated => "escalated",
            Purpose::Repeat => "repeat",
            Purpose::ArrivalOverdue => "arrival_overdue",
            Purpose::Upgraded => "upgraded",
            Purpose::RepeatSignal => "repeat_signal",
            Purpose::Acknowledged => "acknowledged",
            Purpose::Cancelled => "cancelled",
            Purpose::Cleared => "cleared",
            Purpose::ConditionCleared => "condition_cleared",
            Purpose::Resolved => "resolved",
            Purpose::Unroutable => "unroutable",
        }
    }

    /// Purposes that ask someone to act, superseded once someone has.
    pub(crate) const CALLS_TO_ACT: [&'static str; 4] =
        ["raised", "escalated", "repeat", "unroutable"];
}

fn where_zh(a: &Alert, h: Option<&Household>) -> String {
    match h {
        Some(h) if !h.address.is_empty() => format!("{}（{}）", h.name, h.address),
        Some(h) => h.name.clone(),
        None => match &a.household_id {
            Some(id) => format!("住户 {id}"),
            None => "网关".into(),
        },
    }
}

fn where_en(a: &Alert, h: Option<&Household>) -> String {
    match h {
        Some(h) if !h.address.is_empty() => format!("{} ({})", h.name, h.address),
        Some(h) => h.name.clone(),
        None => match &a.household_id {
            Some(id) => format!("household {id}"),
            None => "the gateway".into(),
        },
    }
}

/// Title and text of a notification about `a`.
pub(crate) fn alert_message(
    lang: &str,
    purpose: Purpose,
    a: &Alert,
    h: Option<&Household>,
    extra: &str,
) -> (String, String) {
    let device = a.kind.audience() != Audience::Caseworker;
    if lang == "en" {
        let tag = match (purpose, a.severity, device) {
            (_, _, true) => "Anxin · device",
            (Purpose::Raised | Purpose::Escalated | Purpose::Repeat, Severity::Critical, _) => {
                "Anxin · URGENT"
            }
            _ => "Anxin",
        };
        let what = a.kind.as_str().replace('_', " ");
        let place = where_en(a, h);
        let title = format!("[{tag}] {what}: {place}");
        let body = match purpose {
            Purpose::Raised => format!("{}. Please acknowledge.", a.reason),
            Purpose::Escalated => format!(
                "Not acknowledged in time; you are now asked to act. {}",
                a.reason
            ),
            Purpose::Repeat => format!("Still not acknowledged. {}", a.reason),
            Purpose::ArrivalOverdue => {
                format!("Acknowledged but arrival not confirmed. {extra}")
            }
            Purpose::Upgraded => format!("Now critical. {}", a.reason),
            Purpose::RepeatSignal => format!("Signalled again ({} times).", a.repeats + 1),
            Purpose::Acknowledged => format!("Acknowledged by {extra}."),
            Purpose::Cancelled => "Cancelled at the device (a false press or \"I'm OK\").".into(),
            Purpose::Cleared => format!("Ended by itself: {extra}"),
            Purpose::ConditionCleared => {
                format!("The condition ended ({extra}); the alert stays open until closed.")
            }
            Purpose::Resolved => format!("Resolved: {extra}"),
            Purpose::Unroutable => format!(
                "Nobody is assigned to receive this alert; please route it. {}",
                a.reason
            ),
        };
        return (title, format!("{body}\nRef {}", a.id));
    }
    let tag = match (purpose, a.severity, device) {
        (_, _, true) => "安心·设备",
        (Purpose::Raised | Purpose::Escalated | Purpose::Repeat, Severity::Critical, _) => {
            "安心·紧急"
        }
        (Purpose::Escalated, _, _) => "安心·升级",
        _ => "安心",
    };
    let place = where_zh(a, h);
    let title = format!("【{tag}】{}：{place}", kind_zh(a.kind));
    let body = match purpose {
        Purpose::Raised => format!("{}。请尽快确认。", a.reason),
        Purpose::Escalated => format!("未在时限内确认，现请您处理。{}", a.reason),
        Purpose::Repeat => format!("仍未确认，请尽快处理。{}", a.reason),
        Purpose::ArrivalOverdue => format!("已确认但尚未确认到场。{extra}"),
        Purpose::Upgraded => format!("已升级为紧急。{}", a.reason),
        Purpose::RepeatSignal => format!("再次触发（共 {} 次）。", a.repeats + 1),
        Purpose::Acknowledged => format!("已由 {extra} 确认，正在处理。"),
        Purpose::Cancelled => "老人已在设备上取消（误按或“我没事”）。".into(),
        Purpose::Cleared => format!("已自行恢复：{extra}"),
        Purpose::ConditionCleared => format!("情况已解除（{extra}），告警仍需人工处理后关闭。"),
        Purpose::Resolved => format!("已处理完毕：{extra}"),
        Purpose::Unroutable => format!("此告警无人负责接收，请指派。{}", a.reason),
    };
    (title, format!("{body}\n编号 {}", a.id))
}
