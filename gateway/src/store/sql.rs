//! Statements assembled at run time from fixed fragments and bound values.
//!
//! sqlx's `QueryBuilder` numbers its placeholders `?` for the `Any` driver, which
//! PostgreSQL refuses; this builder writes `$1, $2, …` itself. Only `&'static str`
//! fragments reach the statement's text, so no value can ever be formatted into SQL:
//! every value is bound.

use sqlx::any::{Any, AnyArguments};
use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::{Arguments, Encode, Type};

/// A statement being assembled.
pub(crate) struct SqlBuilder {
    sql: String,
    args: AnyArguments,
    /// The first value that could not be encoded (reported when the query runs).
    error: Option<BoxDynError>,
}

impl SqlBuilder {
    /// Starts with `sql`.
    pub(crate) fn new(sql: &'static str) -> Self {
        SqlBuilder {
            sql: sql.to_string(),
            args: AnyArguments::default(),
            error: None,
        }
    }

    /// Appends a fixed fragment.
    pub(crate) fn push(&mut self, sql: &'static str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends the next placeholder and binds `value` to it.
    pub(crate) fn push_bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any>,
    {
        if let Err(e) = self.args.add(value)
            && self.error.is_none()
        {
            self.error = Some(e);
        }
        self.sql.push('$');
        self.sql.push_str(&self.args.len().to_string());
        self
    }

    /// The statement, ready to run, or the error of a value that could not be encoded.
    pub(crate) fn build<'q>(self) -> Result<Query<'q, Any, AnyArguments>, sqlx::Error> {
        if let Some(e) = self.error {
            return Err(sqlx::Error::Encode(e));
        }
        // Fixed fragments and numbered placeholders only (see the module documentation).
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(self.sql), self.args))
    }

    /// The statement's text so far.
    #[cfg(test)]
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_the_order_values_are_bound() {
        let mut q = SqlBuilder::new("SELECT a FROM t WHERE x = ");
        q.push_bind(1_i64).push(" AND y = ").push_bind("b");
        q.push(" LIMIT ").push_bind(5_i64);
        assert_eq!(q.sql(), "SELECT a FROM t WHERE x = $1 AND y = $2 LIMIT $3");
    }
}
