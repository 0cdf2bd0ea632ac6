//! KPIs: time to acknowledge and to arrival per alert; the share of critical alerts
//! acknowledged within 60 s and within 180 s (the telecare standard asks 97.5 % and
//! 99 %); daily-contact coverage — per caseworker, committee or street, over a range of
//! local days. Groups follow the households' current assignment.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::alerts::{Alert, AlertFilter};
use super::org::{Household, Scope};
use super::{AlertState, WorkflowError, WorkflowHandle};
use crate::signal::{Audience, Severity};

/// How to group a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Per responsible caseworker.
    Caseworker,
    /// Per committee.
    Committee,
    /// Per street/town.
    Street,
    /// One row for everything.
    All,
}

impl GroupBy {
    /// Parses `caseworker`, `committee`, `street`, `all`.
    pub fn parse(s: &str) -> Option<GroupBy> {
        match s {
            "caseworker" => Some(GroupBy::Caseworker),
            "committee" => Some(GroupBy::Committee),
            "street" => Some(GroupBy::Street),
            "all" => Some(GroupBy::All),
            _ => None,
        }
    }

    /// The group of `h`.
    pub fn key(self, h: &Household) -> String {
        let or_none = |v: Option<String>| v.unwrap_or_else(|| "(none)".into());
        match self {
            GroupBy::Caseworker => or_none(h.caseworker_id.as_ref().map(|u| u.0.clone())),
            GroupBy::Committee => or_none(h.committee_id.clone()),
            GroupBy::Street => or_none(h.street_id.clone()),
            GroupBy::All => "all".into(),
        }
    }
}

/// The KPIs of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KpiRow {
    /// Group id (`all` for the total row).
    pub group: String,
    /// Alerts about elders raised in the range (cancelled by the device excluded).
    pub alerts: i64,
    /// Of which critical.
    pub critical: i64,
    /// Critical alerts acknowledged within 60 s.
    pub critical_ack_60s: i64,
    /// Critical alerts acknowledged within 180 s.
    pub critical_ack_180s: i64,
    /// critical_ack_60s / critical.
    pub share_ack_60s: Option<f64>,
    /// critical_ack_180s / critical.
    pub share_ack_180s: Option<f64>,
    /// Alerts nobody acknowledged (open, or closed without an acknowledgement).
    pub unacknowledged: i64,
    /// Median seconds to acknowledge.
    pub ack_median_s: Option<f64>,
    /// 90th percentile seconds to acknowledge.
    pub ack_p90_s: Option<f64>,
    /// Median seconds from raise to arrival.
    pub arrival_median_s: Option<f64>,
    /// Households in the group.
    pub households: i64,
    /// Household-days in the range.
    pub household_days: i64,
    /// Household-days with a contact.
    pub contacted_days: i64,
    /// contacted_days / household_days.
    pub coverage: Option<f64>,
}

/// Nearest-rank percentile of sorted `v`.
fn percentile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v.get(rank.min(v.len()) - 1).copied()
}

fn share(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

#[derive(Default)]
struct Acc {
    alerts: i64,
    critical: i64,
    ack60: i64,
    ack180: i64,
    unacked: i64,
    acks: Vec<f64>,
    arrivals: Vec<f64>,
    households: i64,
    household_days: i64,
    contacted_days: i64,
}

impl Acc {
    fn add_alert(&mut self, a: &Alert) {
        let cancelled_early = matches!(a.state, AlertState::Cancelled | AlertState::Cleared)
            && a.acknowledged_ms.is_none();
        if cancelled_early {
            return;
        }
        self.alerts += 1;
        let ack = a.time_to_ack_ms();
        if a.severity == Severity::Critical {
            self.critical += 1;
            if ack.is_some_and(|t| t <= 60_000) {
                self.ack60 += 1;
            }
            if ack.is_some_and(|t| t <= 180_000) {
                self.ack180 += 1;
            }
        }
        match ack {
            Some(t) => self.acks.push(t as f64 / 1000.0),
            None => self.unacked += 1,
        }
        if let Some(t) = a.time_to_arrival_ms() {
            self.arrivals.push(t as f64 / 1000.0);
        }
    }

    fn row(mut self, group: String) -> KpiRow {
        self.acks.sort_by(f64::total_cmp);
        self.arrivals.sort_by(f64::total_cmp);
        KpiRow {
            group,
            alerts: self.alerts,
            critical: self.critical,
            critical_ack_60s: self.ack60,
            critical_ack_180s: self.ack180,
            share_ack_60s: share(self.ack60, self.critical),
            share_ack_180s: share(self.ack180, self.critical),
            unacknowledged: self.unacked,
            ack_median_s: percentile(&self.acks, 50.0),
            ack_p90_s: percentile(&self.acks, 90.0),
            arrival_median_s: percentile(&self.arrivals, 50.0),
            households: self.households,
            household_days: self.household_days,
            contacted_days: self.contacted_days,
            coverage: share(self.contacted_days, self.household_days),
        }
    }
}

impl WorkflowHandle {
    /// Alerts about elders in `scope` raised on local days `from..=to`.
    pub async fn alerts_in_range(
        &self,
        scope: &Scope,
        from: Date,
        to: Date,
    ) -> Result<Vec<Alert>, WorkflowError> {
        let lt = &self.inner.local;
        self.alerts(&AlertFilter {
            scope: Some(scope.clone()),
            audience: Some(Audience::Caseworker),
            from_ms: Some(lt.day_start(from)),
            to_ms: Some(lt.day_end(to)),
            limit: Some(i64::MAX),
            ..AlertFilter::default()
        })
        .await
    }

    /// KPIs per `group` for households in `scope` over local days `from..=to`, with a
    /// total row `all` last.
    pub async fn kpis(
        &self,
        group: GroupBy,
        scope: &Scope,
        from: Date,
        to: Date,
    ) -> Result<Vec<KpiRow>, WorkflowError> {
        if to < from {
            return Err(WorkflowError::Invalid {
                field: "to",
                reason: "the range ends before it starts".into(),
            });
        }
        let households = self.households(scope).await?;
        let by_id: HashMap<&str, &Household> =
            households.iter().map(|h| (h.id.as_str(), h)).collect();
        let alerts = self.alerts_in_range(scope, from, to).await?;
        let contacted: HashSet<(String, String)> = self
            .contacts(scope, from, to)
            .await?
            .into_iter()
            .map(|c| (c.household_id.0, c.day))
            .collect();
        let days = from.until(to).map(|s| s.get_days()).unwrap_or(0) as i64 + 1;
        let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
        let mut total = Acc::default();
        for h in &households {
            let g = groups.entry(group.key(h)).or_default();
            let mut contacted_days = 0;
            let mut d = from;
            for _ in 0..days {
                if contacted.contains(&(h.id.0.clone(), d.to_string())) {
                    contacted_days += 1;
                }
                d = super::time::next_day(d);
            }
            for acc in [&mut *g, &mut total] {
                acc.households += 1;
                acc.household_days += days;
                acc.contacted_days += contacted_days;
            }
        }
        for a in &alerts {
            let key = a
                .household_id
                .as_deref()
                .and_then(|h| by_id.get(h))
                .map(|h| group.key(h))
                .unwrap_or_else(|| "(none)".into());
            groups.entry(key).or_default().add_alert(a);
            total.add_alert(a);
        }
        let mut rows: Vec<KpiRow> = if group == GroupBy::All {
            vec![]
        } else {
            groups.into_iter().map(|(g, acc)| acc.row(g)).collect()
        };
        rows.push(total.row("all".into()));
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 90.0), Some(9.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
