//! Sign-in state: users' password hashes as the sign-in checks them, dashboard sessions
//! (`api_sessions`), API tokens (`api_tokens`) and the login attempts on record
//! (`api_login_attempts`). Only hashes are stored: never a password, a session cookie or
//! a token's secret.

use super::{Store, StoreError};

/// A dashboard session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    /// SHA-256 of the cookie value.
    pub token_hash: String,
    /// Whose.
    pub user_id: String,
    /// Its CSRF token.
    pub csrf: String,
    /// Opened at.
    pub created_ms: i64,
    /// Last request seen (to the half minute).
    pub last_seen_ms: i64,
    /// Ends at the latest.
    pub expires_ms: i64,
    /// Ended (logout, password change).
    pub ended_ms: Option<i64>,
    /// The browser, as it said (at most 200 characters).
    pub user_agent: String,
}

/// An API token as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiTokenRow {
    /// Id (the part after `anx_`).
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// Name given at creation.
    pub name: String,
    /// SHA-256 of its secret.
    pub secret_hash: String,
    /// Created at.
    pub created_ms: i64,
    /// Expires at.
    pub expires_ms: Option<i64>,
    /// Last used (to the minute).
    pub last_used_ms: Option<i64>,
    /// Revoked at.
    pub revoked_ms: Option<i64>,
}

/// The columns of [`SessionRow`], as a literal for `concat!`.
macro_rules! session_columns {
    () => {
        "token_hash, user_id, csrf, created_ms, last_seen_ms, expires_ms, ended_ms, user_agent"
    };
}

/// The columns of [`ApiTokenRow`], as a literal for `concat!`.
macro_rules! token_columns {
    () => {
        "id, user_id, name, secret_hash, created_ms, expires_ms, last_used_ms, revoked_ms"
    };
}

impl Store {
    /// The password hash of `user` and whether the account is active; None when there is
    /// no such user.
    pub async fn sign_in_record(
        &self,
        user: &str,
    ) -> Result<Option<(Option<String>, bool)>, StoreError> {
        let row: Option<(Option<String>, i32)> =
            sqlx::query_as("SELECT password_hash, active FROM users WHERE id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(hash, active)| (hash, active != 0)))
    }

    /// Puts a login attempt on record.
    pub async fn record_login_attempt(
        &self,
        id: &str,
        at_ms: i64,
        login: &str,
        client: &str,
        ok: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_login_attempts (id, at_ms, login, client, ok) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(at_ms)
        .bind(login)
        .bind(client)
        .bind(i32::from(ok))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces `user`'s password hash and, in the same transaction, ends the user's
    /// sessions and revokes the user's API tokens. Returns how many tokens were revoked,
    /// or None when there is no such user (nothing changed).
    pub async fn replace_password(
        &self,
        user: &str,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("UPDATE users SET password_hash = $1, updated_ms = $2 WHERE id = $3")
                .bind(hash)
                .bind(now_ms)
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if done == 0 {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE api_sessions SET ended_ms = $1 WHERE user_id = $2 AND ended_ms IS NULL",
        )
        .bind(now_ms)
        .bind(user)
        .execute(&mut *tx)
        .await?;
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_ms = $1 WHERE user_id = $2 AND revoked_ms IS NULL",
        )
        .bind(now_ms)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Some(revoked))
    }

    /// Opens a session (`last_seen_ms` starts at `created_ms`; `ended_ms` is ignored).
    pub async fn open_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_sessions (token_hash, user_id, csrf, created_ms, last_seen_ms, expires_ms, user_agent) \
             VALUES ($1, $2, $3, $4, $4, $5, $6)",
        )
        .bind(&s.token_hash)
        .bind(&s.user_id)
        .bind(&s.csrf)
        .bind(s.created_ms)
        .bind(s.expires_ms)
        .bind(&s.user_agent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session whose cookie hashes to `token_hash`.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM api_sessions WHERE token_hash = $1"
        );
        Ok(sqlx::query_as(sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Records that the session was used at `now_ms`.
    pub async fn touch_session(&self, token_hash: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_sessions SET last_seen_ms = $1 WHERE token_hash = $2")
            .bind(now_ms)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends the session whose cookie hashes to `token_hash`.
    pub async fn end_session(&self, token_hash: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_sessions SET ended_ms = $1 WHERE token_hash = $2")
            .bind(now_ms)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every open session of `user`.
    pub async fn end_sessions_of(&self, user: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_sessions SET ended_ms = $1 WHERE user_id = $2 AND ended_ms IS NULL",
        )
        .bind(now_ms)
        .bind(user)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a new API token (`last_used_ms` and `revoked_ms` are ignored).
    pub async fn create_api_token(&self, t: &ApiTokenRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, secret_hash, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.id)
        .bind(&t.user_id)
        .bind(&t.name)
        .bind(&t.secret_hash)
        .bind(t.created_ms)
        .bind(t.expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The API token `id`.
    pub async fn api_token(&self, id: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE id = $1"
        );
        Ok(sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// `user`'s API tokens, newest first.
    pub async fn api_tokens_of(&self, user: &str) -> Result<Vec<ApiTokenRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE user_id = $1 ORDER BY created_ms DESC, id"
        );
        Ok(sqlx::query_as(sql).bind(user).fetch_all(&self.pool).await?)
    }

    /// Records that the token was used at `now_ms`.
    pub async fn touch_api_token(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_ms = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revokes `user`'s token `id` (kept revoked at its first revocation). Returns
    /// whether the user has such a token.
    pub async fn revoke_api_token(
        &self,
        user: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_ms = COALESCE(revoked_ms, $1) WHERE id = $2 AND user_id = $3",
        )
        .bind(now_ms)
        .bind(id)
        .bind(user)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }
}
