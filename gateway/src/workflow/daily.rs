//! 一日三问: each morning at `workflow.morning_time` every caseworker gets their
//! households in order of need, with what the sensors saw; at `workflow.evening_time`
//! the households nobody contacted today go to their caseworker, and each committee's
//! coverage to its head. Each job runs at most once per local day (`workflow_jobs`), also
//! across restarts, and a day missed while the gateway was down is caught up at start.

use std::cmp::Reverse;

use jiff::civil::Date;
use serde::Serialize;

use super::activity::{self, ActivitySummary};
use super::config::parse_hhmm;
use super::org::{Household, Scope, User};
use super::time::{next_day, prev_day};
use super::{Actor, Role, UserId, WorkflowError, WorkflowHandle, audit, kind_zh};
use crate::signal::{AlertKind, Severity};
use crate::store::{self, DailyJob};

/// An open alert, briefly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertBrief {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: AlertKind,
    /// Severity.
    pub severity: Severity,
    /// State.
    pub state: String,
}

/// One line of the morning list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MorningItem {
    /// Position, from 1.
    pub rank: usize,
    /// The household.
    pub household: Household,
    /// Its open alerts for a caseworker.
    pub open_alerts: Vec<AlertBrief>,
    /// An open visit task.
    pub open_visit_task: bool,
    /// Contacted yesterday.
    pub contacted_yesterday: bool,
    /// Contacted already today.
    pub contacted_today: bool,
    /// Sum of risk tag weights.
    pub risk_score: u32,
    /// What the sensors saw.
    pub activity: ActivitySummary,
    /// Why it is where it is: `open_alert`, `visit_task`, `no_sign_of_life_today`,
    /// `no_contact_yesterday`, `risk_tags`.
    pub reasons: Vec<&'static str>,
}

impl MorningItem {
    fn sort_key(&self) -> impl Ord + use<> {
        let worst = self
            .open_alerts
            .iter()
            .map(|a| a.severity)
            .max()
            .map(|s| s as u8 + 1)
            .unwrap_or(0);
        (
            Reverse(worst),
            Reverse(self.open_visit_task),
            self.contacted_today,
            Reverse(!self.activity.sign_of_life()),
            Reverse(!self.contacted_yesterday),
            Reverse(self.risk_score),
            self.household.id.0.clone(),
        )
    }
}

impl WorkflowHandle {
    /// `caseworker`'s households on `date`, in order of need: open alerts (worst
    /// first), open visit tasks, not yet contacted today, no sign of life yet today, no
    /// contact yesterday, then risk tags.
    pub async fn morning_list(
        &self,
        caseworker: &UserId,
        date: Date,
    ) -> Result<Vec<MorningItem>, WorkflowError> {
        self.user(caseworker).await?;
        let households = self
            .households(&Scope::Caseworker(caseworker.clone()))
            .await?;
        let lt = &self.inner.local;
        let now = self.now_ms();
        // As of now for today; the end of the day for a past day.
        let at = now.min(lt.day_end(date) - 1).max(lt.day_start(date));
        let today = date.to_string();
        let yesterday = prev_day(date).to_string();
        let mut conn = self.inner.store.acquire().await?;
        let mut items = vec![];
        for h in households {
            let hid = h.id.0.clone();
            // An alert of a kind or severity this build does not know is left out.
            let open_alerts = store::open_caseworker_alerts(&mut conn, &hid)
                .await?
                .into_iter()
                .filter_map(|r| {
                    Some(AlertBrief {
                        kind: AlertKind::parse(&r.kind)?,
                        severity: super::parse_severity(&r.severity)?,
                        id: r.id,
                        state: r.state,
                    })
                })
                .collect::<Vec<_>>();
            let visit = store::open_visit_task_count(&mut conn, &hid).await?;
            let contacted_yesterday =
                store::contacts_on_day(&mut conn, &hid, &yesterday).await? > 0;
            let contacted_today = store::contacts_on_day(&mut conn, &hid, &today).await? > 0;
            let activity =
                activity::summary(&mut conn, lt, &hid, date, at, self.inner.cfg.usual_days).await?;
            let risk_score = h.risk_score();
            let mut reasons = vec![];
            if !open_alerts.is_empty() {
                reasons.push("open_alert");
            }
            if visit > 0 {
                reasons.push("visit_task");
            }
            if !activity.sign_of_life() {
                reasons.push("no_sign_of_life_today");
            }
            if !contacted_yesterday {
                reasons.push("no_contact_yesterday");
            }
            if risk_score > 0 {
                reasons.push("risk_tags");
            }
            items.push(MorningItem {
                rank: 0,
                household: h,
                open_alerts,
                open_visit_task: visit > 0,
                contacted_yesterday,
                contacted_today,
                risk_score,
                activity,
                reasons,
            });
        }
        items.sort_by_key(|i| i.sort_key());
        for (i, item) in items.iter_mut().enumerate() {
            item.rank = i + 1;
        }
        Ok(items)
    }

    /// When the daily jobs next fall due after `now`.
    pub fn next_daily_run(&self, now: i64) -> i64 {
        let lt = &self.inner.local;
        let morning = parse_hhmm(&self.inner.cfg.morning_time).unwrap_or(450);
        let evening = parse_hhmm(&self.inner.cfg.evening_time).unwrap_or(1080);
        let today = lt.date(now);
        [
            lt.at(today, morning),
            lt.at(today, evening),
            lt.at(next_day(today), morning),
            lt.at(next_day(today), evening),
        ]
        .into_iter()
        .filter(|t| *t > now)
        .min()
        .unwrap_or(now + 3_600_000)
    }

    /// Runs the morning and end-of-day jobs that are due today and not yet done.
    /// Returns the jobs run.
    pub async fn run_daily_jobs(&self) -> Result<Vec<&'static str>, WorkflowError> {
        let lt = &self.inner.local;
        let now = self.now_ms();
        let today = lt.date(now);
        let minute = lt.minute_of_day(now);
        let morning = parse_hhmm(&self.inner.cfg.morning_time).unwrap_or(450);
        let evening = parse_hhmm(&self.inner.cfg.evening_time).unwrap_or(1080);
        let mut ran = vec![];
        // A morning list is only worth sending before the day's end-of-day list.
        if minute >= morning
            && minute < evening.max(morning + 1)
            && !self.job_done(DailyJob::Morning, today).await?
        {
            self.send_morning_lists(today).await?;
            ran.push("morning");
        }
        if minute >= evening && !self.job_done(DailyJob::Evening, today).await? {
            self.send_evening_lists(today).await?;
            ran.push("evening");
        }
        Ok(ran)
    }

    async fn job_done(&self, job: DailyJob, day: Date) -> Result<bool, WorkflowError> {
        Ok(self
            .inner
            .store
            .daily_job_done(job, &day.to_string())
            .await?)
    }

    async fn caseworkers(&self) -> Result<Vec<User>, WorkflowError> {
        Ok(self
            .users()
            .await?
            .into_iter()
            .filter(|u| u.active && u.role == Role::Caseworker)
            .collect())
    }

    /// Sends each caseworker their morning list for `date` (once).
    pub async fn send_morning_lists(&self, date: Date) -> Result<usize, WorkflowError> {
        let now = self.now_ms();
        let day = date.to_string();
        let mut lists = vec![];
        for u in self.caseworkers().await? {
            let list = self.morning_list(&u.id, date).await?;
            if !list.is_empty() {
                lists.push((u, list));
            }
        }
        let en = self.inner.cfg.language == "en";
        let mut tx = self.inner.store.begin().await?;
        if !store::mark_daily_job_done(&mut tx, DailyJob::Morning, &day, now).await? {
            return Ok(0);
        }
        for (u, list) in &lists {
            let mut lines = vec![];
            for i in list {
                let mut why = vec![];
                for a in &i.open_alerts {
                    why.push(if en {
                        a.kind.as_str().to_string()
                    } else {
                        kind_zh(a.kind).to_string()
                    });
                }
                if i.open_visit_task {
                    why.push(if en { "visit due" } else { "需上门" }.into());
                }
                if !i.activity.sign_of_life() {
                    why.push(
                        if en {
                            "no activity yet"
                        } else {
                            "今日尚无活动"
                        }
                        .into(),
                    );
                }
                if !i.contacted_yesterday {
                    why.push(
                        if en {
                            "no contact yesterday"
                        } else {
                            "昨日未联络"
                        }
                        .into(),
                    );
                }
                lines.push(format!(
                    "{}. {} {} {}",
                    i.rank,
                    i.household.name,
                    i.household.address,
                    why.join("、")
                ));
            }
            let (title, text) = if en {
                (
                    format!("[Anxin] Today's contact list ({} households)", list.len()),
                    lines.join("\n"),
                )
            } else {
                (
                    format!("【安心·一日三问】今日联络名单（{} 户）", list.len()),
                    lines.join("\n"),
                )
            };
            let payload = serde_json::json!({
                "type": "morning_list", "day": day, "caseworker_id": u.id,
                "items": list.iter().map(|i| serde_json::json!({
                    "rank": i.rank, "household_id": i.household.id, "name": i.household.name,
                    "reasons": i.reasons, "activity": i.activity,
                    "open_alerts": i.open_alerts,
                })).collect::<Vec<_>>(),
            });
            self.enqueue_for_user(
                &mut tx,
                u,
                &format!("morning/{}/{day}", u.id),
                None,
                "morning_list",
                false,
                &title,
                &text,
                &payload,
                now,
            )
            .await?;
        }
        audit::record(
            &mut tx,
            now,
            &Actor::System,
            "daily.morning_list",
            "org",
            &day,
            None,
            serde_json::json!({ "caseworkers": lists.len() }),
        )
        .await?;
        tx.commit().await?;
        self.inner.outbox.wake();
        Ok(lists.len())
    }

    /// Sends the end-of-day lists for `date` (once): uncontacted households to each
    /// caseworker, each committee's coverage to its head.
    pub async fn send_evening_lists(&self, date: Date) -> Result<usize, WorkflowError> {
        let now = self.now_ms();
        let day = date.to_string();
        let en = self.inner.cfg.language == "en";
        let mut messages: Vec<(User, String, String, serde_json::Value)> = vec![];
        for u in self.caseworkers().await? {
            let missing = self
                .uncontacted(&Scope::Caseworker(u.id.clone()), date)
                .await?;
            if missing.is_empty() {
                continue;
            }
            let names: Vec<String> = missing
                .iter()
                .map(|h| format!("{} {}", h.name, h.address))
                .collect();
            let title = if en {
                format!("[Anxin] Not contacted today: {} households", missing.len())
            } else {
                format!("【安心·一日三问】今日尚未联络 {} 户", missing.len())
            };
            let payload = serde_json::json!({
                "type": "evening_list", "day": day,
                "households": missing.iter().map(|h| h.id.0.clone()).collect::<Vec<_>>(),
            });
            messages.push((u, title, names.join("\n"), payload));
        }
        let heads: Vec<User> = self
            .users()
            .await?
            .into_iter()
            .filter(|u| u.active && u.role == Role::CommitteeHead && u.committee_id.is_some())
            .collect();
        for head in heads {
            let Some(cid) = head.committee_id.clone() else {
                continue;
            };
            let scope = Scope::Committee(cid.clone());
            let total = self.households(&scope).await?.len();
            if total == 0 {
                continue;
            }
            let missing = self.uncontacted(&scope, date).await?;
            let title = if en {
                format!(
                    "[Anxin] Committee {cid}: {} of {total} households contacted today",
                    total - missing.len()
                )
            } else {
                format!(
                    "【安心·一日三问】{cid} 今日联络 {}/{total} 户",
                    total - missing.len()
                )
            };
            let text = missing
                .iter()
                .map(|h| format!("{} {}", h.name, h.address))
                .collect::<Vec<_>>()
                .join("\n");
            let payload = serde_json::json!({
                "type": "committee_coverage", "day": day, "committee_id": cid,
                "households": total, "contacted": total - missing.len(),
                "missing": missing.iter().map(|h| h.id.0.clone()).collect::<Vec<_>>(),
            });
            messages.push((head, title, text, payload));
        }
        let mut tx = self.inner.store.begin().await?;
        if !store::mark_daily_job_done(&mut tx, DailyJob::Evening, &day, now).await? {
            return Ok(0);
        }
        for (u, title, text, payload) in &messages {
            self.enqueue_for_user(
                &mut tx,
                u,
                &format!("evening/{}/{day}", u.id),
                None,
                "evening_list",
                false,
                title,
                text,
                payload,
                now,
            )
            .await?;
        }
        audit::record(
            &mut tx,
            now,
            &Actor::System,
            "daily.evening_list",
            "org",
            &day,
            None,
            serde_json::json!({ "messages": messages.len() }),
        )
        .await?;
        tx.commit().await?;
        self.inner.outbox.wake();
        Ok(messages.len())
    }
}
