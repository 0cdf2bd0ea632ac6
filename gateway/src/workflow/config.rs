//! `[workflow]` configuration: the daily times, quiet hours, escalation policies and
//! notification channels. Every key has a default; `anxin.example.toml` documents them.

use serde::Deserialize;

use super::WorkflowError;
use crate::notify::NotifyConfig;
use crate::signal::{Audience, Severity};

/// `[workflow]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {
    /// Local time ("HH:MM", `general.timezone`) of the morning list (一日三问).
    pub morning_time: String,
    /// Local time of the end-of-day list of households with no contact today.
    pub evening_time: String,
    /// Start of quiet hours ("HH:MM") for users who set none: non-critical
    /// notifications wait until they end. Critical ones never wait. Empty: no quiet hours.
    pub quiet_start: String,
    /// End of quiet hours.
    pub quiet_end: String,
    /// Days of history behind "activity today against usual".
    pub usual_days: u32,
    /// A caseworker with more households than this gets an import warning (包保: 5–10).
    pub max_households_per_caseworker: u32,
    /// Language of notifications: "zh" (default) or "en".
    pub language: String,
    /// Escalation policies.
    pub escalation: EscalationConfig,
    /// Notification channels, delivery retries and who gets which channel.
    pub notify: NotifyConfig,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            morning_time: "07:30".into(),
            evening_time: "18:00".into(),
            quiet_start: "22:00".into(),
            quiet_end: "07:00".into(),
            usual_days: 14,
            max_households_per_caseworker: 10,
            language: "zh".into(),
            escalation: EscalationConfig::default(),
            notify: NotifyConfig::default(),
        }
    }
}

/// Who a step of an escalation policy calls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The household's responsible caseworker (包保人).
    Caseworker,
    /// The household's backup caseworker.
    Backup,
    /// The head of the household's committee.
    CommitteeHead,
    /// The street office's supervisor on duty (all of the street's supervisors when
    /// nobody is marked on duty).
    StreetDuty,
    /// Technicians of the household's committee or street (or all).
    Technicians,
    /// Administrators.
    Admins,
}

impl Target {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Target::Caseworker => "caseworker",
            Target::Backup => "backup",
            Target::CommitteeHead => "committee_head",
            Target::StreetDuty => "street_duty",
            Target::Technicians => "technicians",
            Target::Admins => "admins",
        }
    }
}

/// One step: at `after_s` seconds after the alert was raised (or became critical), if
/// nobody has acknowledged it, `to` is notified too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Who.
    pub to: Target,
    /// Seconds after the start of the policy.
    #[serde(default)]
    pub after_s: u64,
}

/// An escalation policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Steps in time order; a step whose people cannot be found is skipped at once.
    pub steps: Vec<Step>,
    /// Until acknowledged, everyone notified so far is notified again every so many
    /// seconds (0: never).
    #[serde(default)]
    pub repeat_s: u64,
    /// After an acknowledgement, arrival at the home must be confirmed within so many
    /// seconds, or everyone involved (and the next step) is alarmed again, and again
    /// every so many seconds (0: no arrival tracking).
    #[serde(default)]
    pub arrival_s: u64,
}

/// `[workflow.escalation]`: a policy per severity for alerts about an elder, and one
/// each for technicians' and the system's alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationConfig {
    /// Critical (help, fall, gas, and detectors' critical stage).
    pub critical: Policy,
    /// Warning (pre-alarms).
    pub warning: Policy,
    /// Info (for the record and the daily list).
    pub info: Policy,
    /// Device alerts (offline, battery, tamper): technicians.
    pub technician: Policy,
    /// The gateway itself (blind): administrators.
    pub system: Policy,
}

fn step(to: Target, after_s: u64) -> Step {
    Step { to, after_s }
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            critical: Policy {
                steps: vec![
                    step(Target::Caseworker, 0),
                    step(Target::Backup, 120),
                    step(Target::CommitteeHead, 300),
                    step(Target::StreetDuty, 600),
                ],
                repeat_s: 60,
                arrival_s: 1800,
            },
            warning: Policy {
                steps: vec![
                    step(Target::Caseworker, 0),
                    step(Target::Backup, 1800),
                    step(Target::CommitteeHead, 3600),
                ],
                repeat_s: 900,
                arrival_s: 0,
            },
            info: Policy {
                steps: vec![],
                repeat_s: 0,
                arrival_s: 0,
            },
            technician: Policy {
                steps: vec![step(Target::Technicians, 0), step(Target::Admins, 4 * 3600)],
                repeat_s: 0,
                arrival_s: 0,
            },
            system: Policy {
                steps: vec![step(Target::Admins, 0)],
                repeat_s: 600,
                arrival_s: 0,
            },
        }
    }
}

/// Names of the policies (stored with each alert).
pub const POLICY_NAMES: [&str; 5] = ["critical", "warning", "info", "technician", "system"];

impl EscalationConfig {
    /// The policy name for an alert of `audience` and `severity`.
    pub fn policy_name(audience: Audience, severity: Severity) -> &'static str {
        match (audience, severity) {
            (Audience::Technician, _) => "technician",
            (Audience::System, _) => "system",
            // Check-ins never become alerts; should one, it is for the record only.
            (Audience::Elder, _) => "info",
            (Audience::Caseworker, Severity::Critical) => "critical",
            (Audience::Caseworker, Severity::Warning) => "warning",
            (Audience::Caseworker, Severity::Info) => "info",
        }
    }

    /// The policy called `name` (unknown names: the critical one — never silence).
    pub fn policy(&self, name: &str) -> &Policy {
        match name {
            "warning" => &self.warning,
            "info" => &self.info,
            "technician" => &self.technician,
            "system" => &self.system,
            _ => &self.critical,
        }
    }

    fn validate(&self) -> Result<(), WorkflowError> {
        for name in POLICY_NAMES {
            let p = self.policy(name);
            if p.steps.windows(2).any(|w| w[0].after_s > w[1].after_s) {
                return Err(WorkflowError::Config(format!(
                    "workflow.escalation.{name}: steps must be in order of after_s"
                )));
            }
        }
        if self.critical.steps.is_empty() {
            return Err(WorkflowError::Config(
                "workflow.escalation.critical needs at least one step".into(),
            ));
        }
        Ok(())
    }
}

/// Parses "HH:MM" into minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl WorkflowConfig {
    /// Checks what serde cannot: times, policies, channels.
    pub fn validate(&self) -> Result<(), WorkflowError> {
        for (key, v) in [
            ("morning_time", &self.morning_time),
            ("evening_time", &self.evening_time),
        ] {
            if parse_hhmm(v).is_none() {
                return Err(WorkflowError::Config(format!(
                    "workflow.{key}: {v:?} is not HH:MM"
                )));
            }
        }
        for (key, v) in [
            ("quiet_start", &self.quiet_start),
            ("quiet_end", &self.quiet_end),
        ] {
            if !v.is_empty() && parse_hhmm(v).is_none() {
                return Err(WorkflowError::Config(format!(
                    "workflow.{key}: {v:?} is not HH:MM"
                )));
            }
        }
        if !matches!(self.language.as_str(), "zh" | "en") {
            return Err(WorkflowError::Config(format!(
                "workflow.language: {:?} (use \"zh\" or \"en\")",
                self.language
            )));
        }
        self.escalation.validate()?;
        self.notify
            .validate()
            .map_err(|e| WorkflowError::Config(e.to_string()))
    }

    /// Default quiet hours as minutes after midnight, if set.
    pub fn quiet_hours(&self) -> Option<(u32, u32)> {
        Some((parse_hhmm(&self.quiet_start)?, parse_hhmm(&self.quiet_end)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_configuration_is_valid() {
        WorkflowConfig::default().validate().unwrap();
    }

    #[test]
    fn hhmm_parses_only_real_times() {
        assert_eq!(parse_hhmm("07:30"), Some(450));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("7"), None);
    }

    #[test]
    fn unordered_steps_are_a_configuration_error() {
        let mut c = WorkflowConfig::default();
        c.escalation.critical.steps = vec![step(Target::Backup, 60), step(Target::Caseworker, 0)];
        assert!(c.validate().is_err());
    }
}
