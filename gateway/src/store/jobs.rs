//! The daily jobs done (`workflow_jobs`): one row per job and local day, so that a
//! restart neither skips nor repeats the morning or the end-of-day list.

use sqlx::Row;

use super::{Conn, Store, StoreError};

/// A daily job of the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyJob {
    /// The morning lists.
    Morning,
    /// The end-of-day lists.
    Evening,
}

impl DailyJob {
    /// Its name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DailyJob::Morning => "morning",
            DailyJob::Evening => "evening",
        }
    }
}

impl Store {
    /// Whether `job` was done on local day `day` (`YYYY-MM-DD`).
    pub async fn daily_job_done(&self, job: DailyJob, day: &str) -> Result<bool, StoreError> {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM workflow_jobs WHERE job = $1 AND day = $2")
                .bind(job.as_str())
                .bind(day)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        Ok(n > 0)
    }
}

/// Records `job` as done on `day` at `now_ms`, through `conn` (the caller's
/// transaction, which sends the job's messages). False when it was done already
/// (nothing written; the caller sends nothing).
pub async fn mark_daily_job_done(
    conn: &mut Conn,
    job: DailyJob,
    day: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let sql = match job {
        DailyJob::Morning => {
            "INSERT INTO workflow_jobs (job, day, done_ms) VALUES ('morning', $1, $2) \
             ON CONFLICT (job, day) DO NOTHING"
        }
        DailyJob::Evening => {
            "INSERT INTO workflow_jobs (job, day, done_ms) VALUES ('evening', $1, $2) \
             ON CONFLICT (job, day) DO NOTHING"
        }
    };
    let done = sqlx::query(sql)
        .bind(day)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
