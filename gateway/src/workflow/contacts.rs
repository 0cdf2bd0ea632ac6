//! The daily-contact ledger (一日三问 台账): who was contacted, how, with what outcome
//! and needs. "No answer" with no sign of life today makes a visit task; a visit closes
//! the household's open visit tasks. Coverage per caseworker, committee, street and day,
//! and the end-of-day list of households nobody contacted.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::kpi::GroupBy;
use super::needs::{Need, NewNeed, insert_need};
use super::org::{Household, Scope};
use super::time::next_day;
use super::{
    Actor, ContactMethod, ContactOutcome, HouseholdId, NeedCategory, TaskId, UserId, WorkflowError,
    WorkflowHandle, activity, audit, new_id,
};
use crate::store::{self, ContactRecordRow, NewContactRow, NewVisitTask, VisitTaskRow};

/// A contact to record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewContact {
    /// Household.
    pub household_id: HouseholdId,
    /// Phone, WeChat or visit.
    pub method: ContactMethod,
    /// Well, needs help, no answer, not at home.
    pub outcome: ContactOutcome,
    /// Note.
    #[serde(default)]
    pub note: String,
    /// Needs raised (category, description).
    #[serde(default)]
    pub needs: Vec<(NeedCategory, String)>,
    /// When (default: now).
    #[serde(default)]
    pub at_ms: Option<i64>,
}

/// A recorded contact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactRecord {
    /// Id.
    pub id: String,
    /// Household.
    pub household_id: HouseholdId,
    /// Who made it.
    pub user_id: UserId,
    /// Local day.
    pub day: String,
    /// When.
    pub at_ms: i64,
    /// How.
    pub method: ContactMethod,
    /// Outcome.
    pub outcome: ContactOutcome,
    /// Note.
    pub note: String,
}

/// A visit task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitTask {
    /// Id.
    pub id: TaskId,
    /// Household.
    pub household_id: HouseholdId,
    /// Who goes.
    pub assignee_id: Option<UserId>,
    /// Local day it was made.
    pub day: String,
    /// Why.
    pub reason: String,
    /// The contact that made it.
    pub contact_id: Option<String>,
    /// `open`, `done`, `cancelled`.
    pub state: String,
    /// Made at.
    pub created_ms: i64,
    /// Done at.
    pub done_ms: Option<i64>,
    /// By.
    pub done_by: Option<String>,
    /// Note.
    pub note: Option<String>,
}

/// What recording a contact did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactRecorded {
    /// The contact.
    pub contact: ContactRecord,
    /// Needs created from it.
    pub needs: Vec<Need>,
    /// The visit task it made (no answer, no sign of life today).
    pub visit_task: Option<VisitTask>,
    /// Visit tasks it closed (a visit).
    pub closed_tasks: Vec<TaskId>,
}

/// Contact coverage of one group on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageRow {
    /// Local day.
    pub day: String,
    /// Group id (caseworker, committee or street).
    pub group: String,
    /// Households in the group.
    pub households: i64,
    /// Households contacted that day.
    pub contacted: i64,
    /// contacted / households (None without households).
    pub coverage: Option<f64>,
}

fn contact_of(r: ContactRecordRow) -> ContactRecord {
    ContactRecord {
        id: r.id,
        household_id: HouseholdId(r.household_id),
        user_id: UserId(r.user_id),
        day: r.day,
        at_ms: r.at_ms,
        method: ContactMethod::parse(&r.method).unwrap_or(ContactMethod::Phone),
        outcome: ContactOutcome::parse(&r.outcome).unwrap_or(ContactOutcome::Well),
        note: r.note,
    }
}

fn task_of(r: VisitTaskRow) -> VisitTask {
    VisitTask {
        id: TaskId(r.id),
        household_id: HouseholdId(r.household_id),
        assignee_id: r.assignee_id.map(UserId),
        day: r.day,
        reason: r.reason,
        contact_id: r.contact_id,
        state: r.state,
        created_ms: r.created_ms,
        done_ms: r.done_ms,
        done_by: r.done_by,
        note: r.note,
    }
}

/// Most needs one contact may raise: a contact is one conversation, and an unbounded
/// list lets one request fill the needs register (and every export of it).
pub const MAX_NEEDS_PER_CONTACT: usize = 20;

/// Longest description of a need, in characters.
pub const MAX_NEED_DESCRIPTION_CHARS: usize = 2000;

/// No contact is dated before 2000-01-01 (a zero or a negative time is a client bug).
pub const EARLIEST_CONTACT_MS: i64 = 946_684_800_000;

impl WorkflowHandle {
    /// Records a contact by `actor` (a person): the ledger entry, its needs, a visit task
    /// when nobody answered and the sensors show no sign of life today, and — for a
    /// visit — closes the household's open visit tasks.
    pub async fn record_contact(
        &self,
        actor: &Actor,
        c: &NewContact,
    ) -> Result<ContactRecorded, WorkflowError> {
        let Some(user) = self.check_actor(actor).await? else {
            return Err(WorkflowError::NotAllowed("only a person records contacts"));
        };
        let household = self.household(&c.household_id).await?;
        let now = self.now_ms();
        let at = c.at_ms.unwrap_or(now);
        if at > now + 5 * 60_000 {
            return Err(WorkflowError::Invalid {
                field: "at_ms",
                reason: "a contact cannot be in the future".into(),
            });
        }
        if at < EARLIEST_CONTACT_MS {
            return Err(WorkflowError::Invalid {
                field: "at_ms",
                reason: "a contact cannot be before 2000-01-01".into(),
            });
        }
        if c.needs.len() > MAX_NEEDS_PER_CONTACT {
            return Err(WorkflowError::Invalid {
                field: "needs",
                reason: format!("at most {MAX_NEEDS_PER_CONTACT} needs per contact"),
            });
        }
        if c.needs
            .iter()
            .any(|(_, d)| d.chars().count() > MAX_NEED_DESCRIPTION_CHARS)
        {
            return Err(WorkflowError::Invalid {
                field: "needs",
                reason: format!(
                    "a need's description has at most {MAX_NEED_DESCRIPTION_CHARS} characters"
                ),
            });
        }
        if let Some((_, d)) = c.needs.iter().find(|(_, d)| d.trim().is_empty()) {
            return Err(WorkflowError::Invalid {
                field: "needs",
                reason: format!("a need without a description ({d:?})"),
            });
        }
        let date = self.inner.local.date(at);
        let day = date.to_string();
        let life = {
            let mut conn = self.inner.store.acquire().await?;
            activity::summary(
                &mut conn,
                &self.inner.local,
                household.id.as_str(),
                date,
                now,
                0,
            )
            .await?
        };
        let id = new_id("ct", now);
        let mut tx = self.inner.store.begin().await?;
        let contact = NewContactRow {
            id: &id,
            household_id: household.id.as_str(),
            user_id: user.id.as_str(),
            day: &day,
            at_ms: at,
            method: c.method.as_str(),
            outcome: c.outcome.as_str(),
            note: c.note.trim(),
            created_ms: now,
        };
        store::insert_contact(&mut tx, &contact).await?;
        audit::record(
            &mut tx,
            now,
            actor,
            "contact.record",
            "contact",
            &id,
            Some(household.id.as_str()),
            serde_json::json!({
                "method": c.method, "outcome": c.outcome, "note": c.note.trim(), "day": day,
                "sign_of_life_today": life.sign_of_life(),
            }),
        )
        .await?;
        let mut need_ids = vec![];
        for (category, description) in &c.needs {
            let n = NewNeed {
                household_id: household.id.clone(),
                category: *category,
                description: description.clone(),
                assignee_id: None,
                due_ms: None,
                source_alert_id: None,
            };
            need_ids.push(insert_need(&mut tx, actor, &n, Some(&id), now).await?);
        }
        let mut closed_tasks = vec![];
        if c.method == ContactMethod::Visit {
            let open = store::open_visit_task_ids(&mut tx, household.id.as_str()).await?;
            for tid in open {
                store::finish_visit_task(
                    &mut tx,
                    &tid,
                    now,
                    &actor.audit_name(),
                    &format!("{}: {}", c.outcome, c.note.trim()),
                )
                .await?;
                audit::record(
                    &mut tx,
                    now,
                    actor,
                    "visit.done",
                    "visit_task",
                    &tid,
                    Some(household.id.as_str()),
                    serde_json::json!({ "contact_id": id }),
                )
                .await?;
                closed_tasks.push(TaskId(tid));
            }
        }
        let mut task_id = None;
        if c.outcome == ContactOutcome::NoAnswer && !life.sign_of_life() {
            let already = store::open_visit_task_count(&mut tx, household.id.as_str()).await?;
            if already == 0 {
                let tid = new_id("vt", now);
                let assignee = household
                    .caseworker_id
                    .clone()
                    .unwrap_or_else(|| user.id.clone());
                let reason = "no_answer_and_no_sign_of_life_today";
                let task = NewVisitTask {
                    id: &tid,
                    household_id: household.id.as_str(),
                    assignee_id: assignee.as_str(),
                    day: &day,
                    reason,
                    contact_id: &id,
                    created_ms: now,
                };
                store::insert_visit_task(&mut tx, &task).await?;
                audit::record(
                    &mut tx,
                    now,
                    &Actor::System,
                    "visit.create",
                    "visit_task",
                    &tid,
                    Some(household.id.as_str()),
                    serde_json::json!({ "assignee_id": assignee, "reason": reason, "contact_id": id }),
                )
                .await?;
                if assignee != user.id
                    && let Some(u) = super::org::load_user(&mut tx, assignee.as_str()).await?
                {
                    let (title, text) = if self.inner.cfg.language == "en" {
                        (
                            format!("[Anxin] Visit needed: {}", household.name),
                            format!(
                                "No answer and no sign of life today at {}. Please visit.",
                                household.address
                            ),
                        )
                    } else {
                        (
                            format!("【安心】需上门探访：{}", household.name),
                            format!(
                                "电话无人接听且今日无活动迹象（{}），请尽快上门。",
                                household.address
                            ),
                        )
                    };
                    let payload = serde_json::json!({
                        "type": "visit_task", "task_id": tid, "household_id": household.id,
                    });
                    self.enqueue_for_user(
                        &mut tx,
                        &u,
                        &format!("visit/{tid}/{}", u.id),
                        None,
                        "visit_task",
                        true,
                        &title,
                        &text,
                        &payload,
                        now,
                    )
                    .await?;
                }
                task_id = Some(TaskId(tid));
            }
        }
        tx.commit().await?;
        self.inner.outbox.wake();
        let row = self.inner.store.contact(&id).await?;
        let mut needs = vec![];
        for n in need_ids {
            needs.push(self.need(&n).await?);
        }
        let visit_task = match task_id {
            Some(t) => Some(self.visit_task(&t).await?),
            None => None,
        };
        Ok(ContactRecorded {
            contact: contact_of(row),
            needs,
            visit_task,
            closed_tasks,
        })
    }

    /// One visit task.
    pub async fn visit_task(&self, id: &TaskId) -> Result<VisitTask, WorkflowError> {
        let row = self
            .inner
            .store
            .visit_task(id.as_str())
            .await?
            .ok_or_else(|| WorkflowError::UnknownTask(id.0.clone()))?;
        Ok(task_of(row))
    }

    /// Open visit tasks (of one assignee, or all), oldest first.
    pub async fn open_visit_tasks(
        &self,
        assignee: Option<&UserId>,
    ) -> Result<Vec<VisitTask>, WorkflowError> {
        let rows = self
            .inner
            .store
            .open_visit_tasks(assignee.map(UserId::as_str))
            .await?;
        Ok(rows.into_iter().map(task_of).collect())
    }

    /// Contacts of households in `scope` on local days `from..=to`, in time order.
    pub async fn contacts(
        &self,
        scope: &Scope,
        from: Date,
        to: Date,
    ) -> Result<Vec<ContactRecord>, WorkflowError> {
        let rows = self
            .inner
            .store
            .contacts_between(scope.households(), &from.to_string(), &to.to_string())
            .await?;
        Ok(rows.into_iter().map(contact_of).collect())
    }

    /// Contact coverage per `group` and day over `from..=to`, for households in `scope`
    /// (by their current assignment).
    pub async fn coverage(
        &self,
        group: GroupBy,
        scope: &Scope,
        from: Date,
        to: Date,
    ) -> Result<Vec<CoverageRow>, WorkflowError> {
        let households = self.households(scope).await?;
        let contacted: HashSet<(String, String)> = self
            .contacts(scope, from, to)
            .await?
            .into_iter()
            .map(|c| (c.household_id.0, c.day))
            .collect();
        let mut groups: BTreeMap<String, Vec<&Household>> = BTreeMap::new();
        for h in &households {
            groups.entry(group.key(h)).or_default().push(h);
        }
        let mut out = vec![];
        let mut d = from;
        while d <= to {
            let day = d.to_string();
            for (g, hs) in &groups {
                let n = hs.len() as i64;
                let c = hs
                    .iter()
                    .filter(|h| contacted.contains(&(h.id.0.clone(), day.clone())))
                    .count() as i64;
                out.push(CoverageRow {
                    day: day.clone(),
                    group: g.clone(),
                    households: n,
                    contacted: c,
                    coverage: (n > 0).then(|| c as f64 / n as f64),
                });
            }
            let nd = next_day(d);
            if nd == d {
                break;
            }
            d = nd;
        }
        Ok(out)
    }

    /// Households in `scope` with no contact on `date` (the end-of-day list).
    pub async fn uncontacted(
        &self,
        scope: &Scope,
        date: Date,
    ) -> Result<Vec<Household>, WorkflowError> {
        let contacted: HashMap<String, ()> = self
            .contacts(scope, date, date)
            .await?
            .into_iter()
            .map(|c| (c.household_id.0, ()))
            .collect();
        Ok(self
            .households(scope)
            .await?
            .into_iter()
            .filter(|h| !contacted.contains_key(h.id.as_str()))
            .collect())
    }
}
