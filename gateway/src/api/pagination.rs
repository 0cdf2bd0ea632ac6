//! One way to page through lists: `?limit=&offset=` in, [`Page`] out.
//!
//! ```json
//! {"items": [...], "total": 123, "offset": 0, "limit": 50, "next_offset": 50}
//! ```
//!
//! `next_offset` is null on the last page. Lists are in a stable order (documented per
//! endpoint), so walking the pages while nothing changes sees every item once.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 500;

/// Paging parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u32>,
}

impl PageParams {
    /// The limit, checked.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT as usize),
            Some(l) if (1..=MAX_LIMIT).contains(&l) => Ok(l as usize),
            Some(_) => Err(ApiError::bad_field(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The offset.
    pub fn offset(&self) -> usize {
        self.offset.unwrap_or(0) as usize
    }

    /// Cuts `all` (already in order) to this page.
    pub fn page<T>(&self, all: Vec<T>) -> Result<Page<T>, ApiError> {
        let limit = self.limit()?;
        let offset = self.offset();
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(offset).take(limit).collect();
        let end = offset.saturating_add(items.len());
        Ok(Page {
            items,
            total: total as u64,
            offset: offset as u64,
            limit: limit as u64,
            next_offset: (end < total).then_some(end as u64),
        })
    }
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: u64,
    /// Offset of the first item.
    pub offset: u64,
    /// Page size asked.
    pub limit: u64,
    /// Offset of the next page (null on the last).
    pub next_offset: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_list_once_and_say_where_the_next_starts() {
        let p = PageParams {
            limit: Some(2),
            offset: Some(2),
        };
        let page = p.page((0..5).collect()).unwrap();
        assert_eq!(page.items, vec![2, 3]);
        assert_eq!(page.next_offset, Some(4));
        let last = PageParams {
            limit: Some(2),
            offset: Some(4),
        }
        .page((0..5).collect::<Vec<_>>())
        .unwrap();
        assert_eq!(last.items, vec![4]);
        assert_eq!(last.next_offset, None);
    }

    #[test]
    fn a_limit_out_of_range_is_refused() {
        let p = PageParams {
            limit: Some(0),
            offset: None,
        };
        assert!(p.page(vec![1]).is_err());
    }
}
