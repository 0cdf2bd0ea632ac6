//! The users (`users`) and their committees (`committees`), as far as they are read or
//! changed outside the API's sign-in code: the workflow's users with their street, the
//! active users an escalation step calls on, a user created or updated by hand or by a
//! roster import, a password set for the demo roster's users, the hash a password
//! change checks, committees' names.

use sqlx::FromRow;
use sqlx::any::AnyRow;

use super::{Conn, Store, StoreError};

/// The columns of a user as the workflow reads it (`u`: users, `c`: its committee); the
/// street is the user's own or else the one of the committee.
macro_rules! user_columns {
    () => {
        "u.id, u.name, u.role, u.committee_id, \
         COALESCE(u.street_id, c.street_id) AS street_id, u.phone, u.email, u.wecom_userid, \
         u.channels, u.quiet_start, u.quiet_end, u.on_duty, u.active"
    };
}

/// `SELECT` of the user columns from users joined with their committee, followed by
/// `tail`.
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u LEFT JOIN committees c ON c.id = u.committee_id",
            $tail
        )
    };
}

/// A user as stored (role and channels as their names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Committee.
    pub committee_id: Option<String>,
    /// Own street, or else the committee's.
    pub street_id: Option<String>,
    /// Mobile.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// WeCom user id.
    pub wecom_userid: Option<String>,
    /// Channels, comma-separated.
    pub channels: String,
    /// Own quiet hours start.
    pub quiet_start: Option<String>,
    /// Own quiet hours end.
    pub quiet_end: Option<String>,
    /// On duty.
    pub on_duty: bool,
    /// Active.
    pub active: bool,
}

impl<'r> FromRow<'r, AnyRow> for UserRow {
    fn from_row(r: &'r AnyRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(UserRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            role: r.try_get("role")?,
            committee_id: r.try_get("committee_id")?,
            street_id: r.try_get("street_id")?,
            phone: r.try_get("phone")?,
            email: r.try_get("email")?,
            wecom_userid: r.try_get("wecom_userid")?,
            channels: r.try_get("channels")?,
            quiet_start: r.try_get("quiet_start")?,
            quiet_end: r.try_get("quiet_end")?,
            on_duty: r.try_get::<i32, _>("on_duty")? != 0,
            active: r.try_get::<i32, _>("active")? != 0,
        })
    }
}

/// Which active users to read (the targets of escalation steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveUsers<'a> {
    /// The one with this id.
    Id(&'a str),
    /// The committee heads of a committee, by id.
    CommitteeHeads(&'a str),
    /// The street supervisors of a street (own street or their committee's), those on
    /// duty first.
    StreetSupervisors(&'a str),
    /// Every technician, by id.
    Technicians,
    /// Every admin, by id.
    Admins,
}

/// One user (active or not), through `conn` (a pooled connection or the caller's
/// transaction).
pub async fn user(conn: &mut Conn, id: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(sqlx::query_as(select_users!(" WHERE u.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The active users `which` names, through `conn`.
pub async fn active_users(
    conn: &mut Conn,
    which: ActiveUsers<'_>,
) -> Result<Vec<UserRow>, StoreError> {
    let q = match which {
        ActiveUsers::Id(id) => {
            sqlx::query_as(select_users!(" WHERE u.active = 1 AND u.id = $1")).bind(id)
        }
        ActiveUsers::CommitteeHeads(committee) => sqlx::query_as(select_users!(
            " WHERE u.active = 1 AND u.role = 'committee_head' AND u.committee_id = $1 \
             ORDER BY u.id"
        ))
        .bind(committee),
        ActiveUsers::StreetSupervisors(street) => sqlx::query_as(select_users!(
            " WHERE u.active = 1 AND u.role = 'street_supervisor' \
             AND COALESCE(u.street_id, c.street_id) = $1 ORDER BY u.on_duty DESC, u.id"
        ))
        .bind(street),
        ActiveUsers::Technicians => sqlx::query_as(select_users!(
            " WHERE u.active = 1 AND u.role = 'technician' ORDER BY u.id"
        )),
        ActiveUsers::Admins => sqlx::query_as(select_users!(
            " WHERE u.active = 1 AND u.role = 'admin' ORDER BY u.id"
        )),
    };
    Ok(q.fetch_all(&mut *conn).await?)
}

/// A user to create or update (active again if it was not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserUpsert<'a> {
    /// Id.
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
    /// Role name.
    pub role: &'a str,
    /// Committee.
    pub committee_id: Option<&'a str>,
    /// Own street.
    pub street_id: Option<&'a str>,
    /// Mobile.
    pub phone: Option<&'a str>,
    /// E-mail.
    pub email: Option<&'a str>,
    /// WeCom user id.
    pub wecom_userid: Option<&'a str>,
    /// Channels, comma-separated.
    pub channels: &'a str,
    /// On duty, as stored (1: on duty, 0: not).
    pub on_duty: i32,
}

/// Inserts or updates a user, through `conn` (the caller's transaction).
pub async fn upsert_user(
    conn: &mut Conn,
    u: &UserUpsert<'_>,
    now_ms: i64,
) -> Result<(), StoreError> {
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
    .bind(u.id)
    .bind(u.name)
    .bind(u.role)
    .bind(u.committee_id)
    .bind(u.street_id)
    .bind(u.phone)
    .bind(u.email)
    .bind(u.wecom_userid)
    .bind(u.channels)
    .bind(u.on_duty)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Every user (active or not), by id.
    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        Ok(sqlx::query_as(select_users!(" ORDER BY u.id"))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Every user's own street (not the one of their committee), by id: what a roster
    /// export writes so that it imports back unchanged.
    pub async fn users_own_streets(
        &self,
    ) -> Result<std::collections::HashMap<String, Option<String>>, StoreError> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as("SELECT id, street_id FROM users")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }
}

impl Store {
    /// Sets the password hash of user `id` (nothing happens when there is no such user).
    pub async fn set_password_hash(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The password hash of user `id` (None: no such user, or no password set).
    pub async fn password_hash(&self, id: &str) -> Result<Option<String>, StoreError> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(hash.flatten())
    }

    /// Every committee's name, by id.
    pub async fn committee_names(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM committees")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }
}
