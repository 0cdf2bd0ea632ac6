//! The dashboard's user accounts (`users`) and their committees (`committees`), as far
//! as they are read or changed outside the API's sign-in code: a password set for the
//! demo roster's users, the hash a password change checks, committees' names.

use super::{Store, StoreError};

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
