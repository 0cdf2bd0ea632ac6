//! Reads of the event journal (`events`) for people: signs of life — door, contact,
//! motion, occupancy and help-button events — per household and time window (the daily
//! list, the dashboard's tiles), and a household's events of a day (its timeline).

use sqlx::Row;

use super::sql::SqlBuilder;
use super::{Conn, Store, StoreError};

/// Event kinds that show someone is up and about, as an SQL list.
const LIFE_KINDS: &str =
    "('door', 'front_door', 'contact', 'motion', 'occupancy', 'presence', 'help')";

/// One household's signs of life in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifeSigns {
    /// Household.
    pub household_id: String,
    /// How many.
    pub count: i64,
    /// The first.
    pub first_ms: Option<i64>,
    /// The last.
    pub last_ms: Option<i64>,
}

/// The first sign of life of `household` in `from_ms..=to_ms` and how many there were.
pub async fn first_life_sign(
    conn: &mut Conn,
    household: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<(Option<i64>, i64), StoreError> {
    let mut q = SqlBuilder::new("SELECT MIN(event_ms) AS f, COUNT(*) AS n FROM events WHERE ");
    q.push("household_id = ")
        .push_bind(household)
        .push(" AND event_ms >= ")
        .push_bind(from_ms)
        .push(" AND event_ms <= ")
        .push_bind(to_ms)
        .push(" AND kind IN ")
        .push(LIFE_KINDS);
    let row = q.build()?.fetch_one(&mut *conn).await?;
    Ok((row.try_get("f")?, row.try_get("n")?))
}

/// The last sign of life of `household` at or before `until_ms`.
pub async fn last_life_sign(
    conn: &mut Conn,
    household: &str,
    until_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let mut q = SqlBuilder::new("SELECT MAX(event_ms) AS l FROM events WHERE household_id = ");
    q.push_bind(household)
        .push(" AND event_ms <= ")
        .push_bind(until_ms)
        .push(" AND kind IN ")
        .push(LIFE_KINDS);
    let row = q.build()?.fetch_one(&mut *conn).await?;
    Ok(row.try_get("l")?)
}

/// The times of `household`'s signs of life in `from_ms..to_ms`.
pub async fn life_sign_times(
    conn: &mut Conn,
    household: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut q = SqlBuilder::new("SELECT event_ms FROM events WHERE household_id = ");
    q.push_bind(household)
        .push(" AND event_ms >= ")
        .push_bind(from_ms)
        .push(" AND event_ms < ")
        .push_bind(to_ms)
        .push(" AND kind IN ")
        .push(LIFE_KINDS);
    let rows = q.build()?.fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok(r.try_get("event_ms")?)).collect()
}

impl Store {
    /// Signs of life in `from_ms..=to_ms` per household: of `household` only, or of
    /// every household.
    pub async fn life_signs_by_household(
        &self,
        from_ms: i64,
        to_ms: i64,
        household: Option<&str>,
    ) -> Result<Vec<LifeSigns>, StoreError> {
        let mut q = SqlBuilder::new(
            "SELECT household_id, COUNT(*) AS n, MIN(event_ms) AS f, MAX(event_ms) AS l \
             FROM events WHERE event_ms >= ",
        );
        q.push_bind(from_ms)
            .push(" AND event_ms <= ")
            .push_bind(to_ms)
            .push(" AND kind IN ")
            .push(LIFE_KINDS);
        match household {
            Some(h) => q.push(" AND household_id = ").push_bind(h),
            None => q.push(" AND household_id IS NOT NULL"),
        };
        q.push(" GROUP BY household_id");
        let rows = q.build()?.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(LifeSigns {
                    household_id: r.try_get("household_id")?,
                    count: r.try_get("n")?,
                    first_ms: r.try_get("f")?,
                    last_ms: r.try_get("l")?,
                })
            })
            .collect()
    }
}

/// An event of a household's day, with the room of its device.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DayEventRow {
    /// When it happened.
    pub event_ms: i64,
    /// Kind.
    pub kind: String,
    /// Device.
    pub device_id: String,
    /// The event as received (JSON).
    pub body: String,
    /// The device's room.
    pub room: Option<String>,
}

impl Store {
    /// The events of `household` in `from_ms..to_ms`, in journal order, at most `limit`.
    pub async fn household_events(
        &self,
        household: &str,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<DayEventRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT e.event_ms, e.kind, e.device_id, e.body, d.room FROM events e \
             LEFT JOIN devices d ON d.id = e.device_id \
             WHERE e.household_id = $1 AND e.event_ms >= $2 AND e.event_ms < $3 \
             ORDER BY e.event_ms, e.journal_id LIMIT $4",
        )
        .bind(household)
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
