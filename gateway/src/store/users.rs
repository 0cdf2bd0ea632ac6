//! The dashboard's user accounts (`users`), as far as the gateway changes them outside
//! the API's sign-in code: setting a password (the demo roster's users).

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
}
