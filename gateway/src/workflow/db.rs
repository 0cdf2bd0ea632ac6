//! Store helpers: transactions that take the write lock first.
//!
//! On SQLite a transaction that reads and then writes can fail with "database is
//! locked" when another connection (ingest's committer) committed in between; `BEGIN
//! IMMEDIATE` takes the write lock up front, waiting for it under the busy timeout.

use sqlx::{Any, Transaction};

use crate::store::{Backend, Store};

/// A write transaction.
pub(crate) type Tx = Transaction<'static, Any>;

/// Begins a write transaction.
pub(crate) async fn begin(store: &Store) -> Result<Tx, sqlx::Error> {
    let stmt = match store.backend() {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    store.pool().begin_with(stmt).await
}

/// `true` as stored.
pub(crate) fn flag(b: bool) -> i32 {
    i32::from(b)
}
