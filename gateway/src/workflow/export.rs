//! 台账 out: the contact ledger, alerts with outcomes, needs, KPIs, coverage and the
//! roster (in the import's own format, so that an export can be edited and imported
//! again), as CSV or XLSX. Every export is recorded in the audit trail.

use std::collections::HashMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::alerts::AlertFilter;
use super::kpi::GroupBy;
use super::needs::NeedFilter;
use super::org::Scope;
use super::table::{Cell, Table, to_csv, to_xlsx};
use super::{Actor, WorkflowError, WorkflowHandle, audit, kind_zh, risk_tags_text, severity_str};

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    /// The daily-contact ledger.
    Contacts,
    /// Alerts with their outcomes.
    Alerts,
    /// The needs list.
    Needs,
    /// KPIs per group.
    Kpis,
    /// Contact coverage per group and day.
    Coverage,
    /// Households with their assignments (import format); XLSX adds the users and
    /// committees sheets.
    Roster,
    /// Users (import format).
    Users,
    /// Committees, streets and districts (import format).
    Committees,
}

impl ExportKind {
    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<ExportKind> {
        Some(match s {
            "contacts" => ExportKind::Contacts,
            "alerts" => ExportKind::Alerts,
            "needs" => ExportKind::Needs,
            "kpis" => ExportKind::Kpis,
            "coverage" => ExportKind::Coverage,
            "roster" => ExportKind::Roster,
            "users" => ExportKind::Users,
            "committees" => ExportKind::Committees,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            ExportKind::Contacts => "contacts",
            ExportKind::Alerts => "alerts",
            ExportKind::Needs => "needs",
            ExportKind::Kpis => "kpis",
            ExportKind::Coverage => "coverage",
            ExportKind::Roster => "roster",
            ExportKind::Users => "users",
            ExportKind::Committees => "committees",
        }
    }
}

/// File format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// CSV (UTF-8 with BOM); multi-sheet exports give their first table.
    Csv,
    /// XLSX, one sheet per table.
    Xlsx,
}

impl ExportFormat {
    /// Parses `csv` or `xlsx`.
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Some(ExportFormat::Csv),
            "xlsx" => Some(ExportFormat::Xlsx),
            _ => None,
        }
    }
}

/// An export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    /// What.
    pub kind: ExportKind,
    /// Format.
    pub format: ExportFormat,
    /// Households in scope.
    pub scope: Scope,
    /// First local day.
    pub from: Date,
    /// Last local day (inclusive).
    pub to: Date,
    /// Grouping (KPIs, coverage).
    pub group: GroupBy,
}

impl WorkflowHandle {
    fn zh(&self) -> bool {
        self.inner.cfg.language != "en"
    }

    fn headers(&self, name: &str, cols: &[(&str, &str)]) -> Table {
        let zh = self.zh();
        let h: Vec<&str> = cols.iter().map(|(z, e)| if zh { *z } else { *e }).collect();
        Table::new(name, &h)
    }

    fn when(&self, ms: Option<i64>) -> Cell {
        ms.map(|t| Cell::Text(self.inner.local.datetime_text(t)))
            .unwrap_or(Cell::Empty)
    }

    /// The tables of an export.
    pub async fn report_tables(&self, r: &ExportRequest) -> Result<Vec<Table>, WorkflowError> {
        if r.to < r.from {
            return Err(WorkflowError::Invalid {
                field: "to",
                reason: "the range ends before it starts".into(),
            });
        }
        let names: HashMap<String, (String, String)> = self
            .households(&r.scope)
            .await?
            .into_iter()
            .map(|h| (h.id.0.clone(), (h.name, h.address)))
            .collect();
        let name_of = |id: &str| names.get(id).map(|n| n.0.clone()).unwrap_or_default();
        let lt = &self.inner.local;
        Ok(match r.kind {
            ExportKind::Contacts => {
                let needs = self
                    .needs(&NeedFilter {
                        scope: Some(r.scope.clone()),
                        from_ms: Some(lt.day_start(r.from)),
                        to_ms: Some(lt.day_end(r.to) + 86_400_000),
                        ..NeedFilter::default()
                    })
                    .await?;
                let mut by_contact: HashMap<String, Vec<String>> = HashMap::new();
                for n in needs {
                    if let Some(c) = n.source_contact_id {
                        by_contact
                            .entry(c)
                            .or_default()
                            .push(format!("{}: {}", n.category, n.description));
                    }
                }
                let mut t = self.headers(
                    "contacts",
                    &[
                        ("日期", "day"),
                        ("时间", "time"),
                        ("户号", "household_id"),
                        ("姓名", "name"),
                        ("地址", "address"),
                        ("联络人", "by"),
                        ("方式", "method"),
                        ("结果", "outcome"),
                        ("备注", "note"),
                        ("需求", "needs"),
                    ],
                );
                for c in self.contacts(&r.scope, r.from, r.to).await? {
                    let (name, address) = names
                        .get(c.household_id.as_str())
                        .cloned()
                        .unwrap_or_default();
                    t.rows.push(vec![
                        c.day.clone().into(),
                        lt.hhmm(c.at_ms).into(),
                        c.household_id.0.clone().into(),
                        name.into(),
                        address.into(),
                        c.user_id.0.clone().into(),
                        c.method.as_str().into(),
                        c.outcome.as_str().into(),
                        c.note.clone().into(),
                        by_contact
                            .get(&c.id)
                            .map(|v| v.join("; "))
                            .unwrap_or_default()
                            .into(),
                    ]);
                }
                vec![t]
            }
            ExportKind::Alerts => {
                let alerts = self
                    .alerts(&AlertFilter {
                        scope: Some(r.scope.clone()),
                        from_ms: Some(lt.day_start(r.from)),
                        to_ms: Some(lt.day_end(r.to)),
                        limit: Some(i64::MAX),
                        ..AlertFilter::default()
                    })
                    .await?;
                let mut t = self.headers(
                    "alerts",
                    &[
                        ("编号", "alert_id"),
                        ("发生时间", "raised_at"),
                        ("户号", "household_id"),
                        ("姓名", "name"),
                        ("类型", "kind"),
                        ("级别", "severity"),
                        ("状态", "state"),
                        ("原因", "reason"),
                        ("重复次数", "repeats"),
                        ("确认时间", "acknowledged_at"),
                        ("确认人", "acknowledged_by"),
                        ("确认用时(秒)", "time_to_ack_s"),
                        ("到场时间", "arrived_at"),
                        ("到场用时(秒)", "time_to_arrival_s"),
                        ("关闭时间", "closed_at"),
                        ("关闭人", "closed_by"),
                        ("处理结果", "outcome"),
                        ("处理说明", "outcome_note"),
                        ("回访日期", "follow_up_due"),
                        ("升级步数", "escalation_steps"),
                    ],
                );
                let zh = self.zh();
                for a in alerts.iter().rev() {
                    let hid = a.household_id.clone().unwrap_or_default();
                    t.rows.push(vec![
                        a.id.0.clone().into(),
                        self.when(Some(a.raised_ms)),
                        hid.clone().into(),
                        name_of(&hid).into(),
                        if zh { kind_zh(a.kind) } else { a.kind.as_str() }.into(),
                        severity_str(a.severity).into(),
                        a.state.as_str().into(),
                        a.reason.clone().into(),
                        Cell::Int(a.repeats),
                        self.when(a.acknowledged_ms),
                        Cell::opt(a.acknowledged_by.clone()),
                        Cell::opt_f(a.time_to_ack_ms().map(|t| t as f64 / 1000.0)),
                        self.when(a.arrived_ms),
                        Cell::opt_f(a.time_to_arrival_ms().map(|t| t as f64 / 1000.0)),
                        self.when(a.closed_ms),
                        Cell::opt(a.closed_by.clone()),
                        Cell::opt(a.outcome.clone()),
                        Cell::opt(a.outcome_note.clone()),
                        a.follow_up_due_ms
                            .map(|t| Cell::Text(lt.day_text(t)))
                            .unwrap_or(Cell::Empty),
                        Cell::Int(a.escalation_step),
                    ]);
                }
                vec![t]
            }
            ExportKind::Needs => {
                let needs = self
                    .needs(&NeedFilter {
                        scope: Some(r.scope.clone()),
                        from_ms: Some(lt.day_start(r.from)),
                        to_ms: Some(lt.day_end(r.to)),
                        ..NeedFilter::default()
                    })
                    .await?;
                let mut t = self.headers(
                    "needs",
                    &[
                        ("编号", "need_id"),
                        ("登记时间", "created_at"),
                        ("户号", "household_id"),
                        ("姓名", "name"),
                        ("类别", "category"),
                        ("内容", "description"),
                        ("状态", "status"),
                        ("负责人", "assignee"),
                        ("期限", "due"),
                        ("完成时间", "fulfilled_at"),
                        ("完成人", "fulfilled_by"),
                        ("办理结果", "outcome_note"),
                        ("来源", "source"),
                    ],
                );
                for n in needs {
                    let source = n
                        .source_contact_id
                        .clone()
                        .or(n.source_alert_id.clone())
                        .unwrap_or_default();
                    t.rows.push(vec![
                        n.id.0.clone().into(),
                        self.when(Some(n.created_ms)),
                        n.household_id.0.clone().into(),
                        name_of(n.household_id.as_str()).into(),
                        n.category.as_str().into(),
                        n.description.clone().into(),
                        n.status.as_str().into(),
                        Cell::opt(n.assignee_id.as_ref().map(|u| u.0.clone())),
                        n.due_ms
                            .map(|t| Cell::Text(lt.day_text(t)))
                            .unwrap_or(Cell::Empty),
                        self.when(n.fulfilled_ms),
                        Cell::opt(n.fulfilled_by.clone()),
                        Cell::opt(n.outcome_note.clone()),
                        source.into(),
                    ]);
                }
                vec![t]
            }
            ExportKind::Kpis => {
                let rows = self.kpis(r.group, &r.scope, r.from, r.to).await?;
                let mut t = self.headers(
                    "kpis",
                    &[
                        ("分组", "group"),
                        ("告警数", "alerts"),
                        ("紧急告警数", "critical"),
                        ("60秒内确认", "critical_ack_60s"),
                        ("60秒确认率", "share_ack_60s"),
                        ("180秒内确认", "critical_ack_180s"),
                        ("180秒确认率", "share_ack_180s"),
                        ("未确认", "unacknowledged"),
                        ("确认用时中位数(秒)", "ack_median_s"),
                        ("确认用时P90(秒)", "ack_p90_s"),
                        ("到场用时中位数(秒)", "arrival_median_s"),
                        ("户数", "households"),
                        ("户·日", "household_days"),
                        ("已联络户·日", "contacted_days"),
                        ("联络覆盖率", "coverage"),
                    ],
                );
                for k in rows {
                    t.rows.push(vec![
                        k.group.into(),
                        Cell::Int(k.alerts),
                        Cell::Int(k.critical),
                        Cell::Int(k.critical_ack_60s),
                        Cell::opt_f(k.share_ack_60s),
                        Cell::Int(k.critical_ack_180s),
                        Cell::opt_f(k.share_ack_180s),
                        Cell::Int(k.unacknowledged),
                        Cell::opt_f(k.ack_median_s),
                        Cell::opt_f(k.ack_p90_s),
                        Cell::opt_f(k.arrival_median_s),
                        Cell::Int(k.households),
                        Cell::Int(k.household_days),
                        Cell::Int(k.contacted_days),
                        Cell::opt_f(k.coverage),
                    ]);
                }
                vec![t]
            }
            ExportKind::Coverage => {
                let rows = self.coverage(r.group, &r.scope, r.from, r.to).await?;
                let mut t = self.headers(
                    "coverage",
                    &[
                        ("日期", "day"),
                        ("分组", "group"),
                        ("户数", "households"),
                        ("已联络", "contacted"),
                        ("覆盖率", "coverage"),
                    ],
                );
                for c in rows {
                    t.rows.push(vec![
                        c.day.into(),
                        c.group.into(),
                        Cell::Int(c.households),
                        Cell::Int(c.contacted),
                        Cell::opt_f(c.coverage),
                    ]);
                }
                vec![t]
            }
            ExportKind::Roster => {
                let mut tables = vec![self.roster_households(&r.scope).await?];
                if r.format == ExportFormat::Xlsx {
                    tables.push(self.roster_users().await?);
                    tables.push(self.roster_committees().await?);
                    // Committees first: they are imported first.
                    tables.rotate_right(1);
                    tables.swap(1, 2);
                }
                tables
            }
            ExportKind::Users => vec![self.roster_users().await?],
            ExportKind::Committees => vec![self.roster_committees().await?],
        })
    }

    async fn roster_households(&self, scope: &Scope) -> Result<Table, WorkflowError> {
        let mut t = Table::new(
            "households",
            &[
                "household_id",
                "name",
                "address",
                "phone",
                "committee_id",
                "caseworker_id",
                "backup_id",
                "risk_tags",
                "emergency_contacts",
                "notes",
            ],
        );
        for h in self.households(scope).await? {
            let h = self.household(&h.id).await?;
            let contacts = h
                .emergency_contacts
                .iter()
                .map(|c| format!("{}|{}|{}", c.name, c.relation, c.phone))
                .collect::<Vec<_>>()
                .join("; ");
            t.rows.push(vec![
                h.id.0.into(),
                h.name.into(),
                h.address.into(),
                Cell::opt(h.phone),
                Cell::opt(h.committee_id),
                Cell::opt(h.caseworker_id.map(|u| u.0)),
                Cell::opt(h.backup_id.map(|u| u.0)),
                risk_tags_text(&h.risk_tags).into(),
                contacts.into(),
                h.notes.into(),
            ]);
        }
        Ok(t)
    }

    async fn roster_users(&self) -> Result<Table, WorkflowError> {
        let mut t = Table::new(
            "users",
            &[
                "user_id",
                "name",
                "role",
                "committee_id",
                "street_id",
                "phone",
                "email",
                "wecom_userid",
                "channels",
                "on_duty",
            ],
        );
        // Own street only (not the one derived from the committee), to round-trip.
        let own_street: HashMap<String, Option<String>> =
            self.inner.store.users_own_streets().await?;
        for u in self.users().await?.into_iter().filter(|u| u.active) {
            t.rows.push(vec![
                u.id.0.clone().into(),
                u.name.into(),
                u.role.as_str().into(),
                Cell::opt(u.committee_id),
                Cell::opt(own_street.get(&u.id.0).cloned().flatten()),
                Cell::opt(u.phone),
                Cell::opt(u.email),
                Cell::opt(u.wecom_userid),
                u.channels
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
                    .into(),
                if u.on_duty { "yes" } else { "no" }.into(),
            ]);
        }
        Ok(t)
    }

    async fn roster_committees(&self) -> Result<Table, WorkflowError> {
        let mut t = Table::new(
            "committees",
            &[
                "committee_id",
                "committee_name",
                "street_id",
                "street_name",
                "district_id",
                "district_name",
            ],
        );
        for r in self.inner.store.committee_roster().await? {
            t.rows.push(vec![
                r.id.into(),
                r.name.into(),
                Cell::opt(r.street_id),
                Cell::opt(r.street_name),
                Cell::opt(r.district_id),
                Cell::opt(r.district_name),
            ]);
        }
        Ok(t)
    }

    /// Exports `r` as file bytes, recorded in the audit trail as done by `actor`.
    pub async fn export(&self, actor: &Actor, r: &ExportRequest) -> Result<Vec<u8>, WorkflowError> {
        self.check_actor(actor).await?;
        let tables = self.report_tables(r).await?;
        let bytes = match r.format {
            ExportFormat::Csv => match tables.first() {
                Some(t) => to_csv(t)?,
                None => vec![],
            },
            ExportFormat::Xlsx => to_xlsx(&tables)?,
        };
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        audit::record(
            &mut tx,
            now,
            actor,
            &format!("export.{}", r.kind.as_str()),
            "org",
            &format!("{}..{}", r.from, r.to),
            None,
            serde_json::json!({
                "format": r.format, "scope": r.scope, "group": r.group,
                "rows": tables.iter().map(|t| t.rows.len()).sum::<usize>(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(bytes)
    }
}
