//! Cursor pagination of lists (SPEC §3): `limit` (default 50, at most 200) with `before` /
//! `after` cursors, each the id of an item already seen. Lists are newest first; `before`
//! pages toward older items, `after` toward newer ones.

use super::{FieldError, ServiceError};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The newest items.
    Start,
    /// Items older than the one with this id.
    Before(String),
    /// Items newer than the one with this id.
    After(String),
}

/// One page to read: how many items, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Cursor,
}

impl PageRequest {
    /// Checks the query parameters of a list call.
    pub fn parse(
        limit: Option<i64>,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<Self, ServiceError> {
        let mut problems = Vec::new();
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=i64::from(MAX_LIMIT)).contains(&n) => n as u32,
            Some(_) => {
                problems.push(FieldError::new(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        };
        let cursor = match (before, after) {
            (None, None) => Cursor::Start,
            (Some(id), None) => Cursor::Before(id),
            (None, Some(id)) => Cursor::After(id),
            (Some(_), Some(_)) => {
                problems.push(FieldError::new(
                    "after",
                    "send either before or after, not both",
                ));
                Cursor::Start
            }
        };
        super::invalid_if_any(problems)?;
        Ok(Self { limit, cursor })
    }

    /// The refusal for a cursor that names no item of this list.
    pub fn unknown_cursor(&self) -> ServiceError {
        let path = match self.cursor {
            Cursor::After(_) => "after",
            _ => "before",
        };
        ServiceError::Invalid(vec![FieldError::new(path, "no such item in this list")])
    }

    /// Cuts `items` (read with a limit one above the page's, newest first; for `After`, the
    /// items nearest the cursor) to the page and says where the next page in the same
    /// direction starts, if there is one.
    pub fn finish<T>(&self, mut items: Vec<T>, id: impl Fn(&T) -> String) -> Page<T> {
        let limit = self.limit as usize;
        let more = items.len() > limit;
        match self.cursor {
            // Paging toward newer items: the store read the items closest to the cursor
            // (oldest first, then listed newest first), so the surplus is the newest; the
            // next page continues after the newest one kept.
            Cursor::After(_) => {
                if more {
                    items.drain(..items.len() - limit);
                }
                let next = more
                    .then(|| items.first().map(|item| Cursor::After(id(item))))
                    .flatten();
                Page { items, next }
            }
            _ => {
                items.truncate(limit);
                let next = more
                    .then(|| items.last().map(|item| Cursor::Before(id(item))))
                    .flatten();
                Page { items, next }
            }
        }
    }
}

/// One page of a list, and the cursor of the page after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}
