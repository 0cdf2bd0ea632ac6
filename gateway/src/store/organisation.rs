//! The organisation (包保): districts, streets/towns, residents' committees, the
//! households' place in it (committee, caseworker and backup, risk tags, notes) and
//! their emergency contacts (`household_contacts`). What the roles mean is the
//! workflow's business (`workflow/org.rs`); this file keeps the statements. The
//! registry's own household statements are in `devices.rs`.

use std::collections::HashSet;

use sqlx::FromRow;

use super::sql::SqlBuilder;
use super::{Conn, Store, StoreError};

/// Which households a list covers, by the organisation (the workflow's `Scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HouseholdScope<'a> {
    /// Every household.
    All,
    /// The households of the committees of one district's streets.
    District(&'a str),
    /// The households of one street's committees.
    Street(&'a str),
    /// The households of one committee.
    Committee(&'a str),
    /// The households one caseworker is responsible for.
    Caseworker(&'a str),
}

impl<'a> HouseholdScope<'a> {
    /// The condition on households aliased `h` as the fixed text before its one
    /// placeholder, the fixed text after it and the value bound to it (None: no
    /// placeholder, the text before is the whole condition).
    fn parts(self) -> (&'static str, &'static str, Option<&'a str>) {
        match self {
            HouseholdScope::All => ("1 = 1", "", None),
            HouseholdScope::District(d) => (
                "h.committee_id IN (SELECT c2.id FROM committees c2 JOIN streets s2 \
                 ON s2.id = c2.street_id WHERE s2.district_id = ",
                ")",
                Some(d),
            ),
            HouseholdScope::Street(s) => (
                "h.committee_id IN (SELECT c2.id FROM committees c2 WHERE c2.street_id = ",
                ")",
                Some(s),
            ),
            HouseholdScope::Committee(c) => ("h.committee_id = ", "", Some(c)),
            HouseholdScope::Caseworker(u) => ("h.caseworker_id = ", "", Some(u)),
        }
    }

    /// Appends the condition on households aliased `h` to `q`, binding its value.
    pub(crate) fn push_condition(self, q: &mut SqlBuilder) {
        let (before, after, value) = self.parts();
        q.push(before);
        if let Some(v) = value {
            q.push_bind(v.to_string()).push(after);
        }
    }
}

/// The columns of a household as the workflow reads it (`h`: households, `c`: its
/// committee).
macro_rules! household_columns {
    () => {
        "h.id, h.name, h.address, h.phone, h.committee_id, c.street_id, \
         h.caseworker_id, h.backup_id, h.risk_tags, h.notes"
    };
}

/// A household with its place in the organisation, as stored (risk tags as their
/// comma list).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HouseholdRow {
    /// Id.
    pub id: String,
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
    /// Responsible caseworker.
    pub caseworker_id: Option<String>,
    /// Backup caseworker.
    pub backup_id: Option<String>,
    /// Risk tags, comma-separated.
    pub risk_tags: String,
    /// Notes.
    pub notes: String,
}

/// An emergency contact of a household, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmergencyContactRow {
    /// Name.
    pub name: String,
    /// Relation.
    pub relation: String,
    /// Phone.
    pub phone: String,
}

/// One household, read through `conn` (a pooled connection or the caller's
/// transaction).
pub async fn household(conn: &mut Conn, id: &str) -> Result<Option<HouseholdRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        household_columns!(),
        " FROM households h LEFT JOIN committees c ON c.id = h.committee_id WHERE h.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The emergency contacts of `household` in order of priority, through `conn`.
pub async fn household_contacts(
    conn: &mut Conn,
    household: &str,
) -> Result<Vec<EmergencyContactRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT name, relation, phone FROM household_contacts WHERE household_id = $1 \
         ORDER BY priority, id",
    )
    .bind(household)
    .fetch_all(&mut *conn)
    .await?)
}

/// Makes `caseworker` and `backup` responsible for `household`, through `conn` (the
/// caller's transaction).
pub async fn assign_household(
    conn: &mut Conn,
    household: &str,
    caseworker: Option<&str>,
    backup: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE households SET caseworker_id = $1, backup_id = $2 WHERE id = $3")
        .bind(caseworker)
        .bind(backup)
        .bind(household)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// The households in `scope` by id, without their emergency contacts.
    pub async fn households_in(
        &self,
        scope: HouseholdScope<'_>,
    ) -> Result<Vec<HouseholdRow>, StoreError> {
        let mut q = SqlBuilder::new(concat!(
            "SELECT ",
            household_columns!(),
            " FROM households h LEFT JOIN committees c ON c.id = h.committee_id WHERE "
        ));
        scope.push_condition(&mut q);
        q.push(" ORDER BY h.id");
        let rows = q.build()?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(HouseholdRow::from_row(r)?))
            .collect()
    }
}

/// A table of the organisation whose rows are known by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgTable {
    /// `districts`.
    Districts,
    /// `streets`.
    Streets,
    /// `committees`.
    Committees,
    /// `households`.
    Households,
}

impl OrgTable {
    fn ids_sql(self) -> &'static str {
        match self {
            OrgTable::Districts => "SELECT id FROM districts",
            OrgTable::Streets => "SELECT id FROM streets",
            OrgTable::Committees => "SELECT id FROM committees",
            OrgTable::Households => "SELECT id FROM households",
        }
    }

    fn exists_sql(self) -> &'static str {
        match self {
            OrgTable::Districts => "SELECT 1 AS one FROM districts WHERE id = $1",
            OrgTable::Streets => "SELECT 1 AS one FROM streets WHERE id = $1",
            OrgTable::Committees => "SELECT 1 AS one FROM committees WHERE id = $1",
            OrgTable::Households => "SELECT 1 AS one FROM households WHERE id = $1",
        }
    }
}

impl Store {
    /// Every id of `table` (the roster import checks its references against them).
    pub async fn org_ids(&self, table: OrgTable) -> Result<HashSet<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(table.ids_sql())
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().collect())
    }
}

/// Whether `table` has a row `id`, through `conn` (the caller's transaction).
pub async fn org_exists(conn: &mut Conn, table: OrgTable, id: &str) -> Result<bool, StoreError> {
    let found = sqlx::query(table.exists_sql())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

/// Inserts district `id`, or renames it when `name` is given, through `conn` (the
/// caller's transaction). A new district without a name is named by its id.
pub async fn upsert_district(
    conn: &mut Conn,
    id: &str,
    name: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO districts (id, name, created_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET name = COALESCE($4, districts.name)",
    )
    .bind(id)
    .bind(name.unwrap_or(id))
    .bind(now_ms)
    .bind(name)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts street `id` in `district`, or renames it and moves it when `name` and
/// `district` are given, through `conn` (the caller's transaction). A new street
/// without a name is named by its id.
pub async fn upsert_street(
    conn: &mut Conn,
    id: &str,
    name: Option<&str>,
    district: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO streets (id, district_id, name, created_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET name = COALESCE($5, streets.name), \
         district_id = COALESCE(excluded.district_id, streets.district_id)",
    )
    .bind(id)
    .bind(district)
    .bind(name.unwrap_or(id))
    .bind(now_ms)
    .bind(name)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts or renames committee `id`, moving it to `street` when one is given, through
/// `conn` (the caller's transaction).
pub async fn upsert_committee(
    conn: &mut Conn,
    id: &str,
    name: &str,
    street: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO committees (id, street_id, name, created_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
         street_id = COALESCE(excluded.street_id, committees.street_id)",
    )
    .bind(id)
    .bind(street)
    .bind(name)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A household from a roster: its id and name, and the columns the roster has (None:
/// the roster has no such column, the stored value stays; a new household gets the
/// column's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterHousehold<'a> {
    /// Id.
    pub id: &'a str,
    /// Resident(s).
    pub name: &'a str,
    /// Address.
    pub address: Option<&'a str>,
    /// Phone (inner None: none).
    pub phone: Option<Option<&'a str>>,
    /// Committee (inner None: none).
    pub committee_id: Option<Option<&'a str>>,
    /// Caseworker (inner None: none).
    pub caseworker_id: Option<Option<&'a str>>,
    /// Backup (inner None: none).
    pub backup_id: Option<Option<&'a str>>,
    /// Risk tags as their comma list.
    pub risk_tags: Option<&'a str>,
    /// Notes.
    pub notes: Option<&'a str>,
}

/// Inserts or updates a household from a roster, through `conn` (the caller's
/// transaction): the name always, the other columns only when the roster has them.
pub async fn upsert_roster_household(
    conn: &mut Conn,
    h: &RosterHousehold<'_>,
    now_ms: i64,
) -> Result<(), StoreError> {
    // Each optional column: its fragment in the column list, its SET clause, its value.
    let optional: [(&'static str, &'static str, Option<Option<&str>>); 7] = [
        (
            ", address",
            ", address = excluded.address",
            h.address.map(Some),
        ),
        (", phone", ", phone = excluded.phone", h.phone),
        (
            ", committee_id",
            ", committee_id = excluded.committee_id",
            h.committee_id,
        ),
        (
            ", caseworker_id",
            ", caseworker_id = excluded.caseworker_id",
            h.caseworker_id,
        ),
        (
            ", backup_id",
            ", backup_id = excluded.backup_id",
            h.backup_id,
        ),
        (
            ", risk_tags",
            ", risk_tags = excluded.risk_tags",
            h.risk_tags.map(Some),
        ),
        (", notes", ", notes = excluded.notes", h.notes.map(Some)),
    ];
    let mut q = SqlBuilder::new("INSERT INTO households (id, name, created_ms");
    for &(col, _, value) in &optional {
        if value.is_some() {
            q.push(col);
        }
    }
    q.push(") VALUES (");
    q.push_bind(h.id.to_string())
        .push(", ")
        .push_bind(h.name.to_string())
        .push(", ")
        .push_bind(now_ms);
    for &(_, _, value) in &optional {
        if let Some(v) = value {
            q.push(", ").push_bind(v.map(str::to_string));
        }
    }
    q.push(") ON CONFLICT (id) DO UPDATE SET name = excluded.name");
    for &(_, set, value) in &optional {
        if value.is_some() {
            q.push(set);
        }
    }
    q.build()?.execute(&mut *conn).await?;
    Ok(())
}

/// Removes every emergency contact of `household`, through `conn` (the caller's
/// transaction).
pub async fn delete_household_contacts(conn: &mut Conn, household: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM household_contacts WHERE household_id = $1")
        .bind(household)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An emergency contact to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEmergencyContact<'a> {
    /// Row id.
    pub id: &'a str,
    /// Household.
    pub household_id: &'a str,
    /// Name.
    pub name: &'a str,
    /// Relation.
    pub relation: &'a str,
    /// Phone.
    pub phone: &'a str,
    /// Order (0 first).
    pub priority: i32,
}

/// Stores an emergency contact, through `conn` (the caller's transaction).
pub async fn insert_household_contact(
    conn: &mut Conn,
    c: &NewEmergencyContact<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO household_contacts (id, household_id, name, relation, phone, priority) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.id)
    .bind(c.household_id)
    .bind(c.name)
    .bind(c.relation)
    .bind(c.phone)
    .bind(c.priority)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A committee with its street and district, as the roster export writes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommitteeRosterRow {
    /// Committee id.
    pub id: String,
    /// Committee name.
    pub name: String,
    /// Street.
    pub street_id: Option<String>,
    /// Street name.
    pub street_name: Option<String>,
    /// District.
    pub district_id: Option<String>,
    /// District name.
    pub district_name: Option<String>,
}

impl Store {
    /// Every committee with its street and district, by id.
    pub async fn committee_roster(&self) -> Result<Vec<CommitteeRosterRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.id, c.name, c.street_id, s.name AS street_name, s.district_id, \
             d.name AS district_name FROM committees c LEFT JOIN streets s ON s.id = c.street_id \
             LEFT JOIN districts d ON d.id = s.district_id ORDER BY c.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_a_fixed_condition_with_its_value_bound() {
        for (scope, expected) in [
            (HouseholdScope::All, "$1 AND 1 = 1"),
            (
                HouseholdScope::Street("s1"),
                "$1 AND h.committee_id IN (SELECT c2.id FROM committees c2 WHERE c2.street_id = $2)",
            ),
            (
                HouseholdScope::Committee("c1"),
                "$1 AND h.committee_id = $2",
            ),
            (
                HouseholdScope::Caseworker("u1"),
                "$1 AND h.caseworker_id = $2",
            ),
        ] {
            let mut q = SqlBuilder::new("");
            q.push_bind(0_i64).push(" AND ");
            scope.push_condition(&mut q);
            assert_eq!(q.sql(), expected, "{scope:?}");
        }
    }
}
