//! The organisation (包保): districts → streets/towns (街镇) → residents' committees
//! (居委会); users with a role and a committee or street; households with a responsible
//! caseworker and a backup, risk tags and emergency contacts (family). Devices belong
//! to households (the registry, `store::devices`).

use serde::{Deserialize, Serialize};

use super::config::Target;
use super::{
    Actor, HouseholdId, RiskTag, Role, UserId, WorkflowError, WorkflowHandle, audit, db,
    parse_risk_tags,
};
use crate::notify::{Channel, Recipient};
use crate::store::{
    self, ActiveUsers, Conn, HouseholdRow, HouseholdScope, OrgTable, StoreError, UserRow,
};

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

    /// The households this scope covers, as the store filters them.
    pub(crate) fn households(&self) -> HouseholdScope<'_> {
        match self {
            Scope::All => HouseholdScope::All,
            Scope::District(d) => HouseholdScope::District(d),
            Scope::Street(s) => HouseholdScope::Street(s),
            Scope::Committee(c) => HouseholdScope::Committee(c),
            Scope::Caseworker(u) => HouseholdScope::Caseworker(u.as_str()),
        }
    }
}

fn household_of(r: HouseholdRow) -> Household {
    Household {
        id: HouseholdId(r.id),
        name: r.name,
        address: r.address,
        phone: r.phone,
        committee_id: r.committee_id,
        street_id: r.street_id,
        caseworker_id: r.caseworker_id.map(UserId),
        backup_id: r.backup_id.map(UserId),
        risk_tags: parse_risk_tags(&r.risk_tags),
        notes: r.notes,
        emergency_contacts: vec![],
    }
}

fn user_of(r: UserRow) -> User {
    User {
        id: UserId(r.id),
        name: r.name,
        role: Role::parse(&r.role).unwrap_or(Role::Caseworker),
        committee_id: r.committee_id,
        street_id: r.street_id,
        phone: r.phone,
        email: r.email,
        wecom_userid: r.wecom_userid,
        channels: r.channels.split(',').filter_map(Channel::parse).collect(),
        quiet_start: r.quiet_start,
        quiet_end: r.quiet_end,
        on_duty: r.on_duty,
        active: r.active,
    }
}

impl WorkflowHandle {
    /// One household, with its emergency contacts.
    pub async fn household(&self, id: &HouseholdId) -> Result<Household, WorkflowError> {
        let mut conn = self.inner.store.acquire().await?;
        load_household(&mut conn, id.as_str())
            .await?
            .ok_or_else(|| WorkflowError::UnknownHousehold(id.0.clone()))
    }

    /// Households in `scope` (without emergency contacts), by id.
    pub async fn households(&self, scope: &Scope) -> Result<Vec<Household>, WorkflowError> {
        let rows = self.inner.store.households_in(scope.households()).await?;
        Ok(rows.into_iter().map(household_of).collect())
    }

    /// One user (active or not).
    pub async fn user(&self, id: &UserId) -> Result<User, WorkflowError> {
        let mut conn = self.inner.store.acquire().await?;
        load_user(&mut conn, id.as_str())
            .await?
            .ok_or_else(|| WorkflowError::UnknownUser(id.0.clone()))
    }

    /// Every user, by id.
    pub async fn users(&self) -> Result<Vec<User>, WorkflowError> {
        let rows = self.inner.store.users().await?;
        Ok(rows.into_iter().map(user_of).collect())
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
        for (field, table, what, id) in [
            (
                "committee_id",
                OrgTable::Committees,
                "committee",
                &u.committee_id,
            ),
            ("street_id", OrgTable::Streets, "street", &u.street_id),
        ] {
            let Some(id) = id else { continue };
            if !store::org_exists(&mut tx, table, id).await? {
                return Err(WorkflowError::Invalid {
                    field,
                    reason: format!("no such {what}"),
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
        store::assign_household(
            &mut tx,
            household.as_str(),
            caseworker.map(UserId::as_str),
            backup.map(UserId::as_str),
        )
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
    conn: &mut Conn,
    id: &str,
) -> Result<Option<Household>, StoreError> {
    let Some(row) = store::household(conn, id).await? else {
        return Ok(None);
    };
    let mut h = household_of(row);
    h.emergency_contacts = store::household_contacts(conn, id)
        .await?
        .into_iter()
        .map(|c| EmergencyContact {
            name: c.name,
            relation: c.relation,
            phone: c.phone,
        })
        .collect();
    Ok(Some(h))
}

/// One user, read on `conn`.
pub(crate) async fn load_user(conn: &mut Conn, id: &str) -> Result<Option<User>, StoreError> {
    Ok(store::user(conn, id).await?.map(user_of))
}

/// The active users `which` names, read on `conn`.
async fn active_users(conn: &mut Conn, which: ActiveUsers<'_>) -> Result<Vec<User>, StoreError> {
    Ok(store::active_users(conn, which)
        .await?
        .into_iter()
        .map(user_of)
        .collect())
}

/// Active users an escalation step's `target` means for `household`.
pub(crate) async fn recipients(
    conn: &mut Conn,
    target: Target,
    household: Option<&Household>,
) -> Result<Vec<User>, StoreError> {
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
            active_users(conn, ActiveUsers::Id(&id)).await?
        }
        Target::CommitteeHead => {
            let Some(cid) = household.and_then(|h| h.committee_id.clone()) else {
                return Ok(vec![]);
            };
            active_users(conn, ActiveUsers::CommitteeHeads(&cid)).await?
        }
        Target::StreetDuty => {
            let Some(sid) = household.and_then(|h| h.street_id.clone()) else {
                return Ok(vec![]);
            };
            let users = active_users(conn, ActiveUsers::StreetSupervisors(&sid)).await?;
            let on_duty: Vec<User> = users.iter().filter(|u| u.on_duty).cloned().collect();
            return Ok(if on_duty.is_empty() { users } else { on_duty });
        }
        Target::Technicians => {
            let all = active_users(conn, ActiveUsers::Technicians).await?;
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
        Target::Admins => active_users(conn, ActiveUsers::Admins).await?,
    };
    Ok(rows)
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
    conn: &mut Conn,
    u: &NewUser,
    role: Role,
    channels: &str,
    now: i64,
) -> Result<(), StoreError> {
    store::upsert_user(
        conn,
        &store::UserUpsert {
            id: u.id.trim(),
            name: u.name.trim(),
            role: role.as_str(),
            committee_id: u.committee_id.as_deref(),
            street_id: u.street_id.as_deref(),
            phone: u.phone.as_deref(),
            email: u.email.as_deref(),
            wecom_userid: u.wecom_userid.as_deref(),
            channels,
            on_duty: db::flag(u.on_duty),
        },
        now,
    )
    .await
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
