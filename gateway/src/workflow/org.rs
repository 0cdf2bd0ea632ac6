//! The organisation (包保): districts → streets/towns (街镇) → residents' committees
//! (居委会); users with a role and a committee or street; households with a responsible
//! caseworker and a backup, risk tags and emergency contacts (family). Devices belong
//! to households (the registry, `store::devices`).

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use super::config::Target;
use super::{
    Actor, HouseholdId, RiskTag, Role, UserId, WorkflowError, WorkflowHandle, audit, db,
    parse_risk_tags,
};
use crate::notify::{Channel, Recipient};

/// An emergency contact of a household (family, neighbour).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyContact {
    /// Name.
    pub name: String,
    /// Relation (女儿, 儿子, 邻居…).
    pub relation: String,
    /// Phone.
    pub phone: String,
}

/// A household as the workflow sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Household {
    /// Id.
    pub id: HouseholdId,
    /// Resident(s).
    pub name: String,
    /// Address.
    pub address: String,
    /// Phone of the home or the elder.
    pub phone: Option<String>,
    /// Committee.
    pub committee_id: Option<String>,
    /// Street of the committee.
    pub street_id: Option<String>,
    /// Responsible caseworker (包保人).
    pub caseworker_id: Option<UserId>,
    /// Backup caseworker.
    pub backup_id: Option<UserId>,
    /// Risk tags.
    pub risk_tags: Vec<RiskTag>,
    /// Notes.
    pub notes: String,
    /// Emergency contacts, in order.
    pub emergency_contacts: Vec<EmergencyContact>,
}

impl Household {
    /// Sum of the risk tags' weights.
    pub fn risk_score(&self) -> u32 {
        self.risk_tags.iter().map(|t| t.weight()).sum()
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Committee (caseworkers, committee heads; technicians optionally).
    pub committee_id: Option<String>,
    /// Street (supervisors; for others the street of their committee).
    pub street_id: Option<String>,
    /// Mobile.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// WeCom user id.
    pub wecom_userid: Option<String>,
    /// Chosen channels (empty: the role's default).
    pub channels: Vec<Channel>,
    /// Own quiet hours ("HH:MM"), if any.
    pub quiet_start: Option<String>,
    /// Own quiet hours end.
    pub quiet_end: Option<String>,
    /// On duty (street supervisors).
    pub on_duty: bool,
    /// Can act and be notified.
    pub active: bool,
}

impl User {
    /// As a notification recipient.
    pub fn recipient(&self) -> Recipient {
        Recipient {
            user_id: self.id.0.clone(),
            name: self.name.clone(),
            role: self.role.as_str().to_string(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            wecom_userid: self.wecom_userid.clone(),
        }
    }
}

/// A user to create or update.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NewUser {
    /// Id (工号).
    pub id: String,
    /// Name.
    pub name: String,
    /// Role (snake_case or Chinese).
    pub role: String,
    /// Committee id.
    pub committee_id: Option<String>,
    /// Street id.
    pub street_id: Option<String>,
    /// Mobile.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// WeCom user id.
    pub wecom_userid: Option<String>,
    /// Channels, comma-separated (empty: role default).
    pub channels: String,
    /// On duty.
    pub on_duty: bool,
}

/// Which part of the organisation a list or report covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "level", content = "id", rename_all = "snake_case")]
pub enum Scope {
    /// Everything.
    All,
    /// One district.
    District(String),
    /// One street/town.
    Street(String),
    /// One committee.
    Committee(String),
    /// One caseworker's households.
    Caseworker(UserId),
}

impl Scope {
    /// Parses `all`, `district:ID`, `street:ID`, `committee:ID`, `caseworker:ID`.
    pub fn parse(s: &str) -> Result<Scope, WorkflowError> {
        let bad = || WorkflowError::Invalid {
            field: "scope",
            reason: format!(
                "{s:?} (use all, district:ID, street:ID, committee:ID or caseworker:ID)"
            ),
        };
        if s == "all" {
            return Ok(Scope::All);
        }
        let (level, id) = s.split_once(':').ok_or_else(bad)?;
        let id = id.trim().to_string();
        if id.is_empty() {
            return Err(bad());
        }
        match level {
            "district" => Ok(Scope::District(id)),
            "street" => Ok(Scope::Street(id)),
            "committee" => Ok(Scope::Committee(id)),
            "caseworker" => Ok(Scope::Caseworker(UserId(id))),
            _ => Err(bad()),
        }
    }

    /// A condition on households aliased `h` (with `$n` as its parameter) and the value
    /// to bind, if any.
    pub(crate) fn household_condition(&self, n: usize) -> (String, Option<String>) {
        match self {
            Scope::All => ("1 = 1".into(), None),
            Scope::District(d) => (
                format!(
                    "h.committee_id IN (SELECT c2.id FROM committees c2 JOIN streets s2 \
                     ON s2.id = c2.street_id WHERE s2.district_id = ${n})"
                ),
                Some(d.clone()),
            ),
            Scope::Street(s) => (
                format!(
                    "h.committee_id IN (SELECT c2.id FROM committees c2 WHERE c2.street_id = ${n})"
                ),
                Some(s.clone()),
            ),
            Scope::Committee(c) => (format!("h.committee_id = ${n}"), Some(c.clone())),
            Scope::Caseworker(u) => (format!("h.caseworker_id = ${n}"), Some(u.0.clone())),
        }
    }
}

const HOUSEHOLD_COLUMNS: &str = "h.id, h.name, h.address, h.phone, h.committee_id, c.street_id, \
     h.caseworker_id, h.backup_id, h.risk_tags, h.notes";

fn household_row(r: &sqlx::any::AnyRow) -> Result<Household, sqlx::Error> {
    let tags: String = r.try_get("risk_tags")?;
    Ok(Household {
        id: HouseholdId(r.try_get("id")?),
        name: r.try_get("name")?,
        address: r.try_get("address")?,
        phone: r.try_get("phone")?,
        committee_id: r.try_get("committee_id")?,
        street_id: r.try_get("street_id")?,
        caseworker_id: r.try_get::<Option<String>, _>("caseworker_id")?.map(UserId),
        backup_id: r.try_get::<Option<String>, _>("backup_id")?.map(UserId),
        risk_tags: parse_risk_tags(&tags),
        notes: r.try_get("notes")?,
        emergency_contacts: vec![],
    })
}

const USER_COLUMNS: &str = "u.id, u.name, u.role, u.committee_id, \
     COALESCE(u.street_id, c.street_id) AS street_id, u.phone, u.email, u.wecom_userid, \
     u.channels, u.quiet_start, u.quiet_end, u.on_duty, u.active";

fn user_row(r: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    let role: String = r.try_get("role")?;
    let channels: String = r.try_get("channels")?;
    Ok(User {
        id: UserId(r.try_get("id")?),
        name: r.try_get("name")?,
        role: Role::parse(&role).unwrap_or(Role::Caseworker),
        committee_id: r.try_get("committee_id")?,
        street_id: r.try_get("street_id")?,
        phone: r.try_get("phone")?,
        email: r.try_get("email")?,
        wecom_userid: r.try_get("wecom_userid")?,
        channels: channels.split(',').filter_map(Channel::parse).collect(),
        quiet_start: r.try_get("quiet_start")?,
        quiet_end: r.try_get("quiet_end")?,
        on_duty: r.try_get::<i32, _>("on_duty")? != 0,
        active: r.try_get::<i32, _>("active")? != 0,
    })
}

impl WorkflowHandle {
    /// One household, with its emergency contacts.
    pub async fn household(&self, id: &HouseholdId) -> Result<Household, WorkflowError> {
        let mut conn = self.inner.store.pool().acquire().await?;
        load_household(&mut conn, id.as_str())
            .await?
            .ok_or_else(|| WorkflowError::UnknownHousehold(id.0.clone()))
    }

    /// Households in `scope` (without emergency contacts), by id.
    pub async fn households(&self, scope: &Scope) -> Result<Vec<Household>, WorkflowError> {
        let (cond, bind) = scope.household_condition(1);
        let sql = format!(
            "SELECT {HOUSEHOLD_COLUMNS} FROM households h \
             LEFT JOIN committees c ON c.id = h.committee_id WHERE {cond} ORDER BY h.id"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(b) = bind {
            q = q.bind(b);
        }
        let rows = q.fetch_all(self.inner.store.pool()).await?;
        Ok(rows.iter().map(household_row).collect::<Result<_, _>>()?)
    }

    /// One user (active or not).
    pub async fn user(&self, id: &UserId) -> Result<User, WorkflowError> {
        let mut conn = self.inner.store.pool().acquire().await?;
        load_user(&mut conn, id.as_str())
            .await?
            .ok_or_else(|| WorkflowError::UnknownUser(id.0.clone()))
    }

    /// Every user, by id.
    pub async fn users(&self) -> Result<Vec<User>, WorkflowError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users u LEFT JOIN committees c ON c.id = u.committee_id \
             ORDER BY u.id"
        )))
        .fetch_all(self.inner.store.pool())
        .await?;
        Ok(rows.iter().map(user_row).collect::<Result<_, _>>()?)
    }

    /// The acting user, who must exist and be active (device and system actors pass).
    pub(crate) async fn check_actor(&self, actor: &Actor) -> Result<Option<User>, WorkflowError> {
        match actor {
            Actor::User(u) => {
                let user = self.user(u).await?;
                if !user.active {
                    return Err(WorkflowError::UnknownUser(u.0.clone()));
                }
                Ok(Some(user))
            }
            _ => Ok(None),
        }
    }

    /// Creates or updates a user.
    pub async fn upsert_user(&self, actor: &Actor, u: &NewUser) -> Result<User, WorkflowError> {
        let role = Role::parse(&u.role).ok_or_else(|| WorkflowError::Invalid {
            field: "role",
            reason: u.role.clone(),
        })?;
        if u.id.trim().is_empty() || u.name.trim().is_empty() {
            return Err(WorkflowError::Invalid {
                field: "user",
                reason: "id and name are required".into(),
            });
        }
        let channels = normalise_channels(&u.channels).map_err(|c| WorkflowError::Invalid {
            field: "channels",
            reason: c,
        })?;
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        // A reference to a committee or street that does not exist is the caller's
        // mistake, said as such, not a foreign-key failure of the store.
        for (field, table, id) in [
            ("committee_id", "committees", &u.committee_id),
            ("street_id", "streets", &u.street_id),
        ] {
            let Some(id) = id else { continue };
            let found = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT 1 AS one FROM {table} WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if found.is_none() {
                return Err(WorkflowError::Invalid {
                    field,
                    reason: format!("no such {}", &table[..table.len() - 1]),
                });
            }
        }
        upsert_user_tx(&mut tx, u, role, &channels, now).await?;
        audit::record(
            &mut tx,
            now,
            actor,
            "user.upsert",
            "user",
            &u.id,
            None,
            serde_json::json!({ "role": role, "committee_id": u.committee_id, "street_id": u.street_id }),
        )
        .await?;
        tx.commit().await?;
        self.user(&UserId(u.id.clone())).await
    }

    /// Makes `caseworker` responsible for `household` with `backup` (包保).
    pub async fn assign(
        &self,
        actor: &Actor,
        household: &HouseholdId,
        caseworker: Option<&UserId>,
        backup: Option<&UserId>,
    ) -> Result<Household, WorkflowError> {
        self.check_actor(actor).await?;
        self.household(household).await?;
        for u in [caseworker, backup].into_iter().flatten() {
            self.user(u).await?;
        }
        if caseworker.is_some() && caseworker == backup {
            return Err(WorkflowError::Invalid {
                field: "backup",
                reason: "the backup must be another person".into(),
            });
        }
        let now = self.now_ms();
        let mut tx = self.inner.store.begin().await?;
        sqlx::query("UPDATE households SET caseworker_id = $1, backup_id = $2 WHERE id = $3")
            .bind(caseworker.map(|u| u.0.clone()))
            .bind(backup.map(|u| u.0.clone()))
            .bind(household.as_str())
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            now,
            actor,
            "household.assign",
            "household",
            household.as_str(),
            Some(household.as_str()),
            serde_json::json!({ "caseworker_id": caseworker, "backup_id": backup }),
        )
        .await?;
        tx.commit().await?;
        self.household(household).await
    }
}

/// One household with its emergency contacts, read on `conn`.
pub(crate) async fn load_household(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<Household>, sqlx::Error> {
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {HOUSEHOLD_COLUMNS} FROM households h \
         LEFT JOIN committees c ON c.id = h.committee_id WHERE h.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let mut h = household_row(&row)?;
    let contacts = sqlx::query(
        "SELECT name, relation, phone FROM household_contacts WHERE household_id = $1 \
         ORDER BY priority, id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    h.emergency_contacts = contacts
        .iter()
        .map(|r| {
            Ok(EmergencyContact {
                name: r.try_get("name")?,
                relation: r.try_get("relation")?,
                phone: r.try_get("phone")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some(h))
}

/// One user, read on `conn`.
pub(crate) async fn load_user(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u LEFT JOIN committees c ON c.id = u.committee_id \
         WHERE u.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(user_row).transpose()
}

/// Active users an escalation step's `target` means for `household`.
pub(crate) async fn recipients(
    conn: &mut AnyConnection,
    target: Target,
    household: Option<&Household>,
) -> Result<Vec<User>, sqlx::Error> {
    let base = format!(
        "SELECT {USER_COLUMNS} FROM users u LEFT JOIN committees c ON c.id = u.committee_id \
         WHERE u.active = 1"
    );
    let one = |id: Option<&UserId>| id.map(|u| u.0.clone());
    let rows = match target {
        Target::Caseworker | Target::Backup => {
            let Some(h) = household else {
                return Ok(vec![]);
            };
            let id = if target == Target::Caseworker {
                one(h.caseworker_id.as_ref())
            } else {
                one(h.backup_id.as_ref())
            };
            let Some(id) = id else { return Ok(vec![]) };
            sqlx::query(sqlx::AssertSqlSafe(format!("{base} AND u.id = $1")))
                .bind(id)
                .fetch_all(&mut *conn)
                .await?
        }
        Target::CommitteeHead => {
            let Some(cid) = household.and_then(|h| h.committee_id.clone()) else {
                return Ok(vec![]);
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{base} AND u.role = 'committee_head' AND u.committee_id = $1 ORDER BY u.id"
            )))
            .bind(cid)
            .fetch_all(&mut *conn)
            .await?
        }
        Target::StreetDuty => {
            let Some(sid) = household.and_then(|h| h.street_id.clone()) else {
                return Ok(vec![]);
            };
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{base} AND u.role = 'street_supervisor' AND COALESCE(u.street_id, c.street_id) = $1 \
                 ORDER BY u.on_duty DESC, u.id"
            )))
            .bind(sid)
            .fetch_all(&mut *conn)
            .await?;
            let users: Vec<User> = rows.iter().map(user_row).collect::<Result<_, _>>()?;
            let on_duty: Vec<User> = users.iter().filter(|u| u.on_duty).cloned().collect();
            return Ok(if on_duty.is_empty() { users } else { on_duty });
        }
        Target::Technicians => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{base} AND u.role = 'technician' ORDER BY u.id"
            )))
            .fetch_all(&mut *conn)
            .await?;
            let all: Vec<User> = rows.iter().map(user_row).collect::<Result<_, _>>()?;
            // Technicians of the household's committee, else of its street, else
            // those without a scope, else all of them.
            let pick = |f: &dyn Fn(&User) -> bool| -> Vec<User> {
                all.iter().filter(|u| f(u)).cloned().collect()
            };
            let by_committee = household
                .and_then(|h| h.committee_id.clone())
                .map(|c| pick(&|u| u.committee_id.as_deref() == Some(c.as_str())))
                .unwrap_or_default();
            if !by_committee.is_empty() {
                return Ok(by_committee);
            }
            let by_street = household
                .and_then(|h| h.street_id.clone())
                .map(|s| pick(&|u| u.street_id.as_deref() == Some(s.as_str())))
                .unwrap_or_default();
            if !by_street.is_empty() {
                return Ok(by_street);
            }
            let unscoped = pick(&|u| u.committee_id.is_none() && u.street_id.is_none());
            return Ok(if unscoped.is_empty() { all } else { unscoped });
        }
        Target::Admins => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{base} AND u.role = 'admin' ORDER BY u.id"
            )))
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.iter().map(user_row).collect::<Result<_, _>>()
}

/// Validates a comma list of channels for people; returns it normalised.
pub(crate) fn normalise_channels(s: &str) -> Result<String, String> {
    let mut out = vec![];
    for part in s
        .split([',', '，', ';', '、', '|'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let c = match part {
            "邮件" | "邮箱" | "mail" => Some(Channel::Email),
            "企业微信" => Some(Channel::Wecom),
            "钉钉" => Some(Channel::Dingtalk),
            p => Channel::parse(p),
        };
        match c {
            Some(Channel::Device) | None => return Err(format!("unknown channel {part:?}")),
            Some(c) => {
                if !out.contains(&c.as_str()) {
                    out.push(c.as_str());
                }
            }
        }
    }
    Ok(out.join(","))
}

/// Inserts or updates a user in the caller's transaction.
pub(crate) async fn upsert_user_tx(
    conn: &mut sqlx::AnyConnection,
    u: &NewUser,
    role: Role,
    channels: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, name, role, committee_id, street_id, phone, email, wecom_userid, \
         channels, on_duty, active, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, \
         committee_id = excluded.committee_id, street_id = excluded.street_id, \
         phone = excluded.phone, email = excluded.email, wecom_userid = excluded.wecom_userid, \
         channels = excluded.channels, on_duty = excluded.on_duty, active = 1, \
         updated_ms = excluded.updated_ms",
    )
    .bind(u.id.trim())
    .bind(u.name.trim())
    .bind(role.as_str())
    .bind(&u.committee_id)
    .bind(&u.street_id)
    .bind(&u.phone)
    .bind(&u.email)
    .bind(&u.wecom_userid)
    .bind(channels)
    .bind(db::flag(u.on_duty))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_from_text() {
        assert_eq!(Scope::parse("all").unwrap(), Scope::All);
        assert_eq!(
            Scope::parse("committee:c1").unwrap(),
            Scope::Committee("c1".into())
        );
        assert!(Scope::parse("planet:earth").is_err());
        assert!(Scope::parse("street:").is_err());
    }

    #[test]
    fn channels_accept_chinese_names_and_refuse_the_device() {
        assert_eq!(
            normalise_channels("企业微信, email").unwrap(),
            "wecom,email"
        );
        assert!(normalise_channels("device").is_err());
        assert!(normalise_channels("pager").is_err());
    }
}
