//! Store helpers of the workflow. Write transactions come from
//! [`crate::store::Store::begin`], which takes SQLite's write lock up front.

use sqlx::{Any, Transaction};

/// A write transaction.
pub(crate) type Tx = Transaction<'static, Any>;

/// `true` as stored.
pub(crate) fn flag(b: bool) -> i32 {
    i32::from(b)
}
