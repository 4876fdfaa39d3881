//! Paged results (RFC 2696) on one connection: the result lists of paged searches in
//! progress, each pinned to the snapshot it started on, so a sync in between neither
//! duplicates nor skips an entry; a cookie names one of them.

use std::sync::Arc;

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::LdapResultCode;

use super::response::{result, Entries, Kind, Part};

/// Paged searches a connection may keep open at once; the oldest is dropped beyond that.
const MAX_CURSORS: usize = 4;

/// A paged search in progress: its hits (with snapshot and selection), how far it got.
struct Cursor {
    cookie: Vec<u8>,
    entries: Entries,
    next: usize,
}

/// The paged searches a connection has open, at most [`MAX_CURSORS`].
#[derive(Default)]
pub struct Cursors {
    open: Vec<Cursor>,
    /// Cookies issued so far: each cookie is the next number, never reused on a connection.
    issued: u64,
}

impl Cursors {
    /// Opens a paged search over `entries` (every hit, `limited` if a size limit cut them)
    /// and answers its first page of at most `size` entries (and `max_page_size`).
    pub(crate) fn first_page(
        &mut self,
        entries: Entries,
        size: i64,
        limited: bool,
        max_page_size: usize,
    ) -> Vec<Part> {
        self.issued += 1;
        if self.open.len() >= MAX_CURSORS {
            self.open.remove(0);
        }
        self.open.push(Cursor {
            cookie: self.issued.to_be_bytes().to_vec(),
            next: 0,
            entries,
        });
        let index = self.open.len() - 1;
        let id = self.open[index].entries.id;
        self.page(id, index, size, limited, max_page_size)
    }

    /// Answers message `id`, which asks for the next page of the search `cookie` names, or
    /// (size 0) abandons it.
    pub(crate) fn next_page(
        &mut self,
        id: i32,
        size: i64,
        cookie: &[u8],
        max_page_size: usize,
    ) -> Vec<Part> {
        let Some(index) = self.open.iter().position(|c| c.cookie == cookie) else {
            return vec![Part::Msg(result(
                id,
                Kind::Search,
                LdapResultCode::UnwillingToPerform,
                "unknown or expired paged results cookie",
            ))];
        };
        if size == 0 {
            // RFC 2696 §3: a size of zero abandons the paged search.
            self.open.remove(index);
            let mut done = result(id, Kind::Search, LdapResultCode::Success, "");
            done.ctrl.push(LdapControl::SimplePagedResults {
                size: 0,
                cookie: Vec::new(),
            });
            return vec![Part::Msg(done)];
        }
        self.page(id, index, size, false, max_page_size)
    }

    /// Sends the next `size` hits of cursor `index`; drops the cursor when it is exhausted.
    fn page(
        &mut self,
        id: i32,
        index: usize,
        size: i64,
        limited: bool,
        max_page_size: usize,
    ) -> Vec<Part> {
        let cursor = &mut self.open[index];
        // RFC 2696 lets the server return fewer entries than asked; the cookie still walks
        // every hit exactly once.
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(usize::MAX)
            .min(max_page_size);
        let all = &cursor.entries;
        let end = cursor.next.saturating_add(size).min(all.hits.len());
        let mut parts = Vec::with_capacity(2);
        if end > cursor.next {
            parts.push(Part::Entries(Entries {
                id,
                snapshot: Arc::clone(&all.snapshot),
                hits: all.hits[cursor.next..end].to_vec(),
                selection: Arc::clone(&all.selection),
            }));
        }
        cursor.next = end;
        let finished = end >= all.hits.len();
        let cookie = if finished {
            Vec::new()
        } else {
            cursor.cookie.clone()
        };
        if finished {
            self.open.remove(index);
        }
        let (code, message) = if finished && limited {
            (LdapResultCode::SizeLimitExceeded, "size limit exceeded")
        } else {
            (LdapResultCode::Success, "")
        };
        let mut done = result(id, Kind::Search, code, message);
        done.ctrl
            .push(LdapControl::SimplePagedResults { size: 0, cookie });
        parts.push(Part::Msg(done));
        parts
    }
}
