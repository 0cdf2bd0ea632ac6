//! Rosters in: committees (with their streets and districts), users (caseworkers and
//! others) and households with their 包保 assignment, from CSV or XLSX, the way
//! committees keep them in Excel.
//!
//! Each table is recognised by its header row (English keys or Chinese names, see
//! `docs/workflow.md`); an XLSX file may hold several sheets. Every row is checked
//! first — against the file and the store — and every bad row is reported with its
//! sheet, row number (as Excel shows it: the header is row 1) and reason. If any row is
//! bad, nothing is written; otherwise everything is written in one transaction.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use super::org::{NewUser, normalise_channels, upsert_user_tx};
use super::table::{read_csv, read_xlsx};
use super::{Actor, RiskTag, Role, WorkflowError, WorkflowHandle, audit, new_id, risk_tags_text};
use crate::store::{self, NewEmergencyContact, OrgTable, RosterHousehold};

/// A problem with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowIssue {
    /// File and sheet (`roster.xlsx:households`, `users.csv`).
    pub sheet: String,
    /// Row number as the spreadsheet shows it (the header is row 1).
    pub row: usize,
    /// Column, if one is at fault.
    pub column: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for RowIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(
                f,
                "{} row {} [{}]: {}",
                self.sheet, self.row, c, self.reason
            ),
            None => write!(f, "{} row {}: {}", self.sheet, self.row, self.reason),
        }
    }
}

/// What an import did (or, with errors, would have done: nothing was written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Districts written.
    pub districts: usize,
    /// Streets written.
    pub streets: usize,
    /// Committees written.
    pub committees: usize,
    /// Users written.
    pub users: usize,
    /// Households written.
    pub households: usize,
    /// Households whose caseworker/backup were set.
    pub assignments: usize,
    /// Emergency contacts written.
    pub emergency_contacts: usize,
    /// Bad rows (any: nothing written).
    pub errors: Vec<RowIssue>,
    /// Worth a look, but imported (e.g. a caseworker with more than the usual load).
    pub warnings: Vec<RowIssue>,
    /// Checked only.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Committees,
    Users,
    Households,
    Assignments,
}

/// Canonical column names and the headers accepted for them.
const ALIASES: &[(&str, &[&str])] = &[
    ("committee_id", &["committee_id", "居委会编号", "居委编号"]),
    (
        "committee_name",
        &["committee_name", "committee", "居委会", "居委会名称"],
    ),
    ("street_id", &["street_id", "街镇编号", "街道编号"]),
    ("street_name", &["street_name", "street", "街镇", "街道"]),
    ("district_id", &["district_id", "区编号"]),
    ("district_name", &["district_name", "district", "区"]),
    ("user_id", &["user_id", "工号", "用户编号"]),
    ("role", &["role", "角色"]),
    ("email", &["email", "邮箱", "电子邮件"]),
    (
        "wecom_userid",
        &["wecom_userid", "企业微信", "企业微信账号"],
    ),
    ("channels", &["channels", "通知方式"]),
    ("on_duty", &["on_duty", "值班"]),
    ("household_id", &["household_id", "户号", "住户编号"]),
    ("name", &["name", "姓名", "住户"]),
    ("address", &["address", "地址", "住址"]),
    ("phone", &["phone", "电话", "手机", "联系电话"]),
    (
        "caseworker_id",
        &["caseworker_id", "caseworker", "包保人", "包保人工号"],
    ),
    (
        "backup_id",
        &["backup_id", "backup", "备岗", "备岗工号", "备岗人"],
    ),
    ("risk_tags", &["risk_tags", "风险标签", "风险"]),
    ("emergency_contacts", &["emergency_contacts", "紧急联系人"]),
    ("notes", &["notes", "备注"]),
];

fn canonical(header: &str) -> Option<&'static str> {
    let h = header.trim().trim_start_matches('\u{feff}');
    let lower = h.to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(_, names)| names.iter().any(|n| *n == lower || *n == h))
        .map(|(c, _)| *c)
}

struct Sheet {
    label: String,
    kind: Kind,
    columns: HashMap<&'static str, usize>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Sheet {
    fn get<'a>(&self, row: &'a [String], col: &str) -> Option<&'a str> {
        self.columns
            .get(col)
            .and_then(|&i| row.get(i))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn has(&self, col: &str) -> bool {
        self.columns.contains_key(col)
    }
}

fn classify(label: &str, rows: Vec<Vec<String>>) -> Result<Option<Sheet>, RowIssue> {
    let Some(header_idx) = rows
        .iter()
        .position(|r| r.iter().any(|c| !c.trim().is_empty()))
    else {
        return Ok(None);
    };
    let mut columns = HashMap::new();
    for (i, h) in rows[header_idx].iter().enumerate() {
        if let Some(c) = canonical(h) {
            columns.entry(c).or_insert(i);
        }
    }
    let has = |c: &str| columns.contains_key(c);
    let kind = if has("user_id") && has("role") {
        Kind::Users
    } else if has("household_id") && has("name") {
        Kind::Households
    } else if has("household_id") && (has("caseworker_id") || has("backup_id")) {
        Kind::Assignments
    } else if has("committee_id") && has("committee_name") {
        Kind::Committees
    } else {
        return Err(RowIssue {
            sheet: label.to_string(),
            row: header_idx + 1,
            column: None,
            reason: format!(
                "unrecognised table: headers {:?} name no committees (committee_id, committee_name), \
                 users (user_id, role), households (household_id, name) or assignments \
                 (household_id, caseworker_id)",
                rows[header_idx]
            ),
        });
    };
    let data = rows
        .into_iter()
        .enumerate()
        .skip(header_idx + 1)
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()))
        .map(|(i, r)| (i + 1, r))
        .collect();
    Ok(Some(Sheet {
        label: label.to_string(),
        kind,
        columns,
        rows: data,
    }))
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= 64
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '|')
}

fn valid_phone(s: &str) -> bool {
    let digits = s.chars().filter(|c| c.is_ascii_digit()).count();
    (5..=20).contains(&digits) && s.chars().all(|c| c.is_ascii_digit() || "+- ()".contains(c))
}

fn valid_email(s: &str) -> bool {
    s.parse::<lettre::message::Mailbox>().is_ok() && s.contains('@')
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "no" | "false" | "n" | "否" => Some(false),
        "1" | "yes" | "true" | "y" | "是" => Some(true),
        _ => None,
    }
}

/// Parses `name|relation|phone; name|relation|phone`.
fn parse_contacts(s: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out = vec![];
    for part in s
        .split([';', '；'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let f: Vec<&str> = part.split(['|', '｜']).map(str::trim).collect();
        let (name, relation, phone) = match f.as_slice() {
            [n, r, p] => (*n, *r, *p),
            [n, p] => (*n, "", *p),
            _ => return Err(format!("{part:?} is not name|relation|phone")),
        };
        if name.is_empty() {
            return Err(format!("{part:?}: a contact needs a name"));
        }
        if !valid_phone(phone) {
            return Err(format!("{part:?}: {phone:?} is not a phone number"));
        }
        out.push((name.to_string(), relation.to_string(), phone.to_string()));
    }
    Ok(out)
}

struct CommitteeRow {
    id: String,
    name: String,
    street: Option<(String, Option<String>)>,
    district: Option<(String, Option<String>)>,
}

struct HouseholdRow {
    id: String,
    name: String,
    address: Option<String>,
    phone: Option<String>,
    committee_id: Option<String>,
    caseworker_id: Option<String>,
    backup_id: Option<String>,
    risk_tags: Option<Vec<RiskTag>>,
    contacts: Option<Vec<(String, String, String)>>,
    notes: Option<String>,
    has: HashSet<&'static str>,
}

struct AssignmentRow {
    household_id: String,
    caseworker_id: Option<String>,
    backup_id: Option<String>,
}

#[derive(Default)]
struct Plan {
    districts: HashMap<String, Option<String>>,
    streets: HashMap<String, (Option<String>, Option<String>)>,
    committees: Vec<CommitteeRow>,
    users: Vec<(NewUser, Role, String)>,
    households: Vec<HouseholdRow>,
    assignments: Vec<AssignmentRow>,
}

impl WorkflowHandle {
    /// Imports roster files, each given as (file name, bytes); `.xlsx` files are read as
    /// workbooks, anything else as CSV. With `dry_run`, only checks.
    pub async fn import_org(
        &self,
        actor: &Actor,
        files: &[(String, Vec<u8>)],
        dry_run: bool,
    ) -> Result<ImportReport, WorkflowError> {
        self.check_actor(actor).await?;
        let mut report = ImportReport {
            dry_run,
            ..ImportReport::default()
        };
        let mut sheets = vec![];
        for (name, bytes) in files {
            let base = Path::new(name)
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_else(|| name.clone());
            let is_xlsx = base.to_ascii_lowercase().ends_with(".xlsx");
            let tables = if is_xlsx {
                read_xlsx(bytes)?
                    .into_iter()
                    .map(|(s, rows)| (format!("{base}:{s}"), rows))
                    .collect()
            } else {
                vec![(base.clone(), read_csv(bytes)?)]
            };
            for (label, rows) in tables {
                match classify(&label, rows) {
                    Ok(Some(s)) => sheets.push(s),
                    Ok(None) => {}
                    Err(issue) => report.errors.push(issue),
                }
            }
        }
        // Committees, then users, then households, then assignments.
        sheets.sort_by_key(|s| s.kind as u8);
        let plan = self.check(&sheets, &mut report).await?;
        if !report.errors.is_empty() {
            return Err(WorkflowError::ImportRejected(Box::new(report)));
        }
        if dry_run {
            return Ok(report);
        }
        self.write(actor, plan, &mut report).await?;
        Ok(report)
    }

    /// Reads and imports one roster file from disk.
    pub async fn import_org_file(
        &self,
        actor: &Actor,
        path: &Path,
        dry_run: bool,
    ) -> Result<ImportReport, WorkflowError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| WorkflowError::File(format!("{}: {e}", path.display())))?;
        self.import_org(actor, &[(path.display().to_string(), bytes)], dry_run)
            .await
    }

    async fn check(
        &self,
        sheets: &[Sheet],
        report: &mut ImportReport,
    ) -> Result<Plan, WorkflowError> {
        let store = &self.inner.store;
        let db_committees = store.org_ids(OrgTable::Committees).await?;
        let db_streets = store.org_ids(OrgTable::Streets).await?;
        let db_districts = store.org_ids(OrgTable::Districts).await?;
        let db_households = store.org_ids(OrgTable::Households).await?;
        let db_users: HashMap<String, Role> = self
            .users()
            .await?
            .into_iter()
            .map(|u| (u.id.0, u.role))
            .collect();
        let mut plan = Plan::default();
        let mut file_committees: HashSet<String> = HashSet::new();
        let mut file_users: HashMap<String, Role> = HashMap::new();
        let mut file_households: HashSet<String> = HashSet::new();
        let mut seen: HashMap<(u8, String), (String, usize)> = HashMap::new();
        let mut load: HashMap<String, usize> = HashMap::new();

        for sheet in sheets {
            for (rowno, row) in &sheet.rows {
                let mut errs: Vec<(Option<&str>, String)> = vec![];
                let need =
                    |col: &'static str, errs: &mut Vec<(Option<&str>, String)>| -> Option<String> {
                        match sheet.get(row, col) {
                            Some(v) => Some(v.to_string()),
                            None => {
                                errs.push((Some(col), "required".into()));
                                None
                            }
                        }
                    };
                let id_col = match sheet.kind {
                    Kind::Committees => "committee_id",
                    Kind::Users => "user_id",
                    Kind::Households | Kind::Assignments => "household_id",
                };
                let id = need(id_col, &mut errs);
                if let Some(id) = &id {
                    if !valid_id(id) {
                        errs.push((Some(id_col), format!("{id:?} is not a valid id (no spaces, commas or |, at most 64 characters)")));
                    } else if let Some((sh, first)) = seen.insert(
                        (sheet.kind as u8, id.clone()),
                        (sheet.label.clone(), *rowno),
                    ) {
                        errs.push((
                            Some(id_col),
                            format!("{id} appears twice (first at {sh} row {first})"),
                        ));
                    }
                }
                match sheet.kind {
                    Kind::Committees => {
                        let name = need("committee_name", &mut errs);
                        let street_id = sheet.get(row, "street_id").map(str::to_string);
                        let street_name = sheet.get(row, "street_name").map(str::to_string);
                        let district_id = sheet.get(row, "district_id").map(str::to_string);
                        let district_name = sheet.get(row, "district_name").map(str::to_string);
                        if street_name.is_some() && street_id.is_none() {
                            errs.push((
                                Some("street_id"),
                                "a street name needs a street id".into(),
                            ));
                        }
                        if district_name.is_some() && district_id.is_none() {
                            errs.push((
                                Some("district_id"),
                                "a district name needs a district id".into(),
                            ));
                        }
                        if district_id.is_some() && street_id.is_none() {
                            errs.push((
                                Some("street_id"),
                                "a district needs a street under it".into(),
                            ));
                        }
                        for (col, v) in [("street_id", &street_id), ("district_id", &district_id)] {
                            if let Some(v) = v
                                && !valid_id(v)
                            {
                                errs.push((Some(col), format!("{v:?} is not a valid id")));
                            }
                        }
                        if let Some(s) = &street_id
                            && street_name.is_none()
                            && !db_streets.contains(s)
                            && !plan.streets.get(s).is_some_and(|(n, _)| n.is_some())
                        {
                            errs.push((
                                Some("street_name"),
                                format!("street {s} is new: give its name"),
                            ));
                        }
                        if let Some(d) = &district_id
                            && district_name.is_none()
                            && !db_districts.contains(d)
                            && !plan.districts.get(d).is_some_and(|n| n.is_some())
                        {
                            errs.push((
                                Some("district_name"),
                                format!("district {d} is new: give its name"),
                            ));
                        }
                        if errs.is_empty()
                            && let (Some(id), Some(name)) = (id, name)
                        {
                            if let Some(d) = &district_id {
                                let e = plan.districts.entry(d.clone()).or_default();
                                if district_name.is_some() {
                                    *e = district_name.clone();
                                }
                            }
                            if let Some(s) = &street_id {
                                let e = plan.streets.entry(s.clone()).or_default();
                                if street_name.is_some() {
                                    e.0 = street_name.clone();
                                }
                                if district_id.is_some() {
                                    e.1 = district_id.clone();
                                }
                            }
                            file_committees.insert(id.clone());
                            plan.committees.push(CommitteeRow {
                                id,
                                name,
                                street: street_id.map(|s| (s, street_name)),
                                district: district_id.map(|d| (d, district_name)),
                            });
                        }
                    }
                    Kind::Users => {
                        let name = need("name", &mut errs);
                        let role_text = need("role", &mut errs);
                        let role = role_text.as_deref().and_then(|r| {
                            let parsed = Role::parse(r);
                            if parsed.is_none() {
                                errs.push((Some("role"), format!("{r:?} is not a role (caseworker, committee_head, street_supervisor, technician, admin)")));
                            }
                            parsed
                        });
                        let committee = sheet.get(row, "committee_id").map(str::to_string);
                        let street = sheet.get(row, "street_id").map(str::to_string);
                        if let Some(c) = &committee
                            && !file_committees.contains(c)
                            && !db_committees.contains(c)
                        {
                            errs.push((Some("committee_id"), format!("unknown committee {c}")));
                        }
                        if let Some(s) = &street
                            && !plan.streets.contains_key(s)
                            && !db_streets.contains(s)
                        {
                            errs.push((Some("street_id"), format!("unknown street {s}")));
                        }
                        match role {
                            Some(Role::Caseworker | Role::CommitteeHead) if committee.is_none() => {
                                errs.push((
                                    Some("committee_id"),
                                    "caseworkers and committee heads belong to a committee".into(),
                                ));
                            }
                            Some(Role::StreetSupervisor)
                                if street.is_none() && committee.is_none() =>
                            {
                                errs.push((
                                    Some("street_id"),
                                    "a street supervisor belongs to a street".into(),
                                ));
                            }
                            _ => {}
                        }
                        let phone = sheet.get(row, "phone").map(str::to_string);
                        if let Some(p) = &phone
                            && !valid_phone(p)
                        {
                            errs.push((Some("phone"), format!("{p:?} is not a phone number")));
                        }
                        let email = sheet.get(row, "email").map(str::to_string);
                        if let Some(e) = &email
                            && !valid_email(e)
                        {
                            errs.push((Some("email"), format!("{e:?} is not an e-mail address")));
                        }
                        let channels =
                            match normalise_channels(sheet.get(row, "channels").unwrap_or("")) {
                                Ok(c) => c,
                                Err(e) => {
                                    errs.push((Some("channels"), e));
                                    String::new()
                                }
                            };
                        let on_duty = match parse_bool(sheet.get(row, "on_duty").unwrap_or("")) {
                            Some(b) => b,
                            None => {
                                errs.push((Some("on_duty"), "use yes/no".into()));
                                false
                            }
                        };
                        if errs.is_empty()
                            && let (Some(id), Some(name), Some(role)) = (id, name, role)
                        {
                            file_users.insert(id.clone(), role);
                            plan.users.push((
                                NewUser {
                                    id,
                                    name,
                                    role: role.as_str().into(),
                                    committee_id: committee,
                                    street_id: street,
                                    phone,
                                    email,
                                    wecom_userid: sheet
                                        .get(row, "wecom_userid")
                                        .map(str::to_string),
                                    channels: channels.clone(),
                                    on_duty,
                                },
                                role,
                                channels,
                            ));
                        }
                    }
                    Kind::Households | Kind::Assignments => {
                        let name = if sheet.kind == Kind::Households {
                            need("name", &mut errs)
                        } else {
                            None
                        };
                        if sheet.kind == Kind::Assignments
                            && let Some(h) = &id
                            && !file_households.contains(h)
                            && !db_households.contains(h)
                        {
                            errs.push((Some("household_id"), format!("unknown household {h}")));
                        }
                        let committee = sheet.get(row, "committee_id").map(str::to_string);
                        if let Some(c) = &committee
                            && !file_committees.contains(c)
                            && !db_committees.contains(c)
                        {
                            errs.push((Some("committee_id"), format!("unknown committee {c}")));
                        }
                        let person = |col: &'static str,
                                      errs: &mut Vec<(Option<&str>, String)>|
                         -> Option<String> {
                            let v = sheet.get(row, col)?.to_string();
                            match file_users.get(&v).or(db_users.get(&v)) {
                                None => errs.push((Some(col), format!("unknown user {v}"))),
                                Some(Role::Caseworker | Role::CommitteeHead) => {}
                                Some(r) => errs
                                    .push((Some(col), format!("{v} is a {r}, not a caseworker"))),
                            }
                            Some(v)
                        };
                        let caseworker = person("caseworker_id", &mut errs);
                        let backup = person("backup_id", &mut errs);
                        if caseworker.is_some() && caseworker == backup {
                            errs.push((
                                Some("backup_id"),
                                "the backup must be another person than the caseworker".into(),
                            ));
                        }
                        let phone = sheet.get(row, "phone").map(str::to_string);
                        if let Some(p) = &phone
                            && !valid_phone(p)
                        {
                            errs.push((Some("phone"), format!("{p:?} is not a phone number")));
                        }
                        let risk_tags = sheet.get(row, "risk_tags").map(|t| {
                            let mut tags = vec![];
                            for part in t
                                .split([',', '，', ';', '；', '、', '|'])
                                .map(str::trim)
                                .filter(|p| !p.is_empty())
                            {
                                match RiskTag::parse(part) {
                                    Some(tag) => tags.push(tag),
                                    None => errs.push((
                                        Some("risk_tags"),
                                        format!("unknown risk tag {part:?}"),
                                    )),
                                }
                            }
                            tags
                        });
                        let contacts =
                            match sheet.get(row, "emergency_contacts").map(parse_contacts) {
                                None => None,
                                Some(Ok(c)) => Some(c),
                                Some(Err(e)) => {
                                    errs.push((Some("emergency_contacts"), e));
                                    None
                                }
                            };
                        if errs.is_empty()
                            && let Some(id) = id
                        {
                            if let Some(c) = &caseworker {
                                *load.entry(c.clone()).or_default() += 1;
                            }
                            if sheet.kind == Kind::Households {
                                file_households.insert(id.clone());
                                let has = [
                                    "address",
                                    "phone",
                                    "committee_id",
                                    "caseworker_id",
                                    "backup_id",
                                    "risk_tags",
                                    "emergency_contacts",
                                    "notes",
                                ]
                                .into_iter()
                                .filter(|c| sheet.has(c))
                                .collect();
                                if caseworker.is_none() {
                                    report.warnings.push(RowIssue {
                                        sheet: sheet.label.clone(),
                                        row: *rowno,
                                        column: Some("caseworker_id".into()),
                                        reason: format!("household {id} has no caseworker (包保人): its alerts go straight to the backup or the committee head"),
                                    });
                                }
                                plan.households.push(HouseholdRow {
                                    id,
                                    name: name.unwrap_or_default(),
                                    address: sheet.get(row, "address").map(str::to_string),
                                    phone,
                                    committee_id: committee,
                                    caseworker_id: caseworker,
                                    backup_id: backup,
                                    risk_tags,
                                    contacts,
                                    notes: sheet.get(row, "notes").map(str::to_string),
                                    has,
                                });
                            } else {
                                plan.assignments.push(AssignmentRow {
                                    household_id: id,
                                    caseworker_id: caseworker,
                                    backup_id: backup,
                                });
                            }
                        }
                    }
                }
                for (col, reason) in errs {
                    report.errors.push(RowIssue {
                        sheet: sheet.label.clone(),
                        row: *rowno,
                        column: col.map(str::to_string),
                        reason,
                    });
                }
            }
        }
        let max = self.inner.cfg.max_households_per_caseworker as usize;
        let mut heavy: Vec<_> = load.into_iter().filter(|(_, n)| *n > max).collect();
        heavy.sort();
        for (u, n) in heavy {
            report.warnings.push(RowIssue {
                sheet: String::new(),
                row: 0,
                column: Some("caseworker_id".into()),
                reason: format!(
                    "{u} is responsible for {n} households in this file (usual: at most {max})"
                ),
            });
        }
        report
            .errors
            .sort_by(|a, b| (&a.sheet, a.row).cmp(&(&b.sheet, b.row)));
        Ok(plan)
    }

    async fn write(
        &self,
        actor: &Actor,
        plan: Plan,
        report: &mut ImportReport,
    ) -> Result<(), WorkflowError> {
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        let mut districts: Vec<_> = plan.districts.into_iter().collect();
        districts.sort();
        for (id, name) in &districts {
            store::upsert_district(&mut tx, id, name.as_deref(), now).await?;
        }
        let mut streets: Vec<_> = plan.streets.into_iter().collect();
        streets.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, (name, district)) in &streets {
            store::upsert_street(&mut tx, id, name.as_deref(), district.as_deref(), now).await?;
        }
        for c in &plan.committees {
            store::upsert_committee(
                &mut tx,
                &c.id,
                &c.name,
                c.street.as_ref().map(|s| s.0.as_str()),
                now,
            )
            .await?;
            let _ = &c.district;
        }
        for (u, role, channels) in &plan.users {
            upsert_user_tx(&mut tx, u, *role, channels, now).await?;
        }
        for h in &plan.households {
            // The columns the roster has; a column it lacks keeps its stored value.
            let has = |c: &str| h.has.contains(c);
            let risk_tags = risk_tags_text(h.risk_tags.as_deref().unwrap_or(&[]));
            let row = RosterHousehold {
                id: &h.id,
                name: &h.name,
                address: has("address").then(|| h.address.as_deref().unwrap_or_default()),
                phone: has("phone").then_some(h.phone.as_deref()),
                committee_id: has("committee_id").then_some(h.committee_id.as_deref()),
                caseworker_id: has("caseworker_id").then_some(h.caseworker_id.as_deref()),
                backup_id: has("backup_id").then_some(h.backup_id.as_deref()),
                risk_tags: has("risk_tags").then_some(risk_tags.as_str()),
                notes: has("notes").then(|| h.notes.as_deref().unwrap_or_default()),
            };
            store::upsert_roster_household(&mut tx, &row, now).await?;
            if h.has.contains("caseworker_id") || h.has.contains("backup_id") {
                report.assignments += 1;
            }
            if let Some(contacts) = &h.contacts {
                store::delete_household_contacts(&mut tx, &h.id).await?;
                for (i, (name, relation, phone)) in contacts.iter().enumerate() {
                    let id = new_id("ec", now);
                    let contact = NewEmergencyContact {
                        id: &id,
                        household_id: &h.id,
                        name,
                        relation,
                        phone,
                        priority: i32::try_from(i).unwrap_or(i32::MAX),
                    };
                    store::insert_household_contact(&mut tx, &contact).await?;
                    report.emergency_contacts += 1;
                }
            } else if h.has.contains("emergency_contacts") {
                store::delete_household_contacts(&mut tx, &h.id).await?;
            }
        }
        for a in &plan.assignments {
            store::assign_household(
                &mut tx,
                &a.household_id,
                a.caseworker_id.as_deref(),
                a.backup_id.as_deref(),
            )
            .await?;
            report.assignments += 1;
        }
        report.districts = districts.len();
        report.streets = streets.len();
        report.committees = plan.committees.len();
        report.users = plan.users.len();
        report.households = plan.households.len();
        audit::record(
            &mut tx,
            now,
            actor,
            "org.import",
            "org",
            "import",
            None,
            serde_json::json!({
                "districts": report.districts, "streets": report.streets,
                "committees": report.committees, "users": report.users,
                "households": report.households, "assignments": report.assignments,
                "emergency_contacts": report.emergency_contacts,
                "warnings": report.warnings.len(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_and_english_headers_map_to_the_same_columns() {
        assert_eq!(canonical("户号"), Some("household_id"));
        assert_eq!(canonical("Household_ID"), Some("household_id"));
        assert_eq!(canonical("包保人"), Some("caseworker_id"));
        assert_eq!(canonical("\u{feff}user_id"), Some("user_id"));
        assert_eq!(canonical("shoe size"), None);
    }

    #[test]
    fn emergency_contacts_parse_and_bad_ones_say_why() {
        let c = parse_contacts("王小明|儿子|13800000001；李芳|13800000002").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].1, "");
        assert!(
            parse_contacts("王小明|儿子|call me")
                .unwrap_err()
                .contains("phone")
        );
    }
}
