//! Named positions of the history (`history_cursor`): `journal`, `next_id`, `sink`.

use sqlx::{Any, Executor};

/// Last events.journal_id turned into points.
pub const JOURNAL: &str = "journal";
/// Next point id / hourly version.
pub const NEXT_ID: &str = "next_id";
/// Last id the time-series server accepted.
pub const SINK: &str = "sink";

/// The value of cursor `name`, if set.
pub async fn get<'e, E>(db: E, name: &str) -> Result<Option<i64>, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<(i64,)> = sqlx::query_as("SELECT value FROM history_cursor WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Sets cursor `name`.
pub async fn set<'e, E>(db: E, name: &str, value: i64) -> Result<(), sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO history_cursor (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(db)
    .await?;
    Ok(())
}
