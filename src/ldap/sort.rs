//! Server-side sorting (RFC 2891) of a search's hits: by the first requested key that is a
//! served attribute, compared on the values as served, entries without it last.

use ldap3_proto::control::{ServerSortRequet, ServerSortResult};
use ldap3_proto::proto::LdapResultCode;

use crate::directory::fold::fold;
use crate::directory::schema::{resolve, Attr, Resolved};
use crate::directory::{Hit, Snapshot};

/// Orders hits by the first sort key the server knows (RFC 2891); the container stays first.
pub(crate) fn sort_hits(
    snapshot: &Snapshot,
    hits: &mut [Hit],
    keys: &[ServerSortRequet],
) -> ServerSortResult {
    let Some((key, attr)) = sort_key(keys) else {
        return ServerSortResult {
            result_code: LdapResultCode::NoSuchAttribute,
            attribute_type: keys.first().map(|k| k.attribute_name.clone()),
        };
    };
    let sort_key = |h: &Hit| -> (u8, String) {
        match h {
            Hit::Container => (0, String::new()),
            // The values as served (numbers in the served format), so the order is the one the
            // phone sees.
            Hit::Entry(id) => match snapshot.packed(*id).values(attr).next() {
                Some(v) => (1, fold(v, snapshot.settings().accents)),
                // Entries without the attribute sort last (RFC 2891 §1.1), either direction.
                None => (2, String::new()),
            },
        }
    };
    hits.sort_by_cached_key(sort_key);
    if key.reverse_order {
        let present = hits.iter().filter(|h| sort_key(h).0 < 2).count();
        let first_entry = usize::from(matches!(hits.first(), Some(Hit::Container)));
        hits[first_entry..present].reverse();
    }
    ServerSortResult {
        result_code: LdapResultCode::Success,
        attribute_type: None,
    }
}

/// The first sort key naming an attribute the server can sort by.
pub(crate) fn sort_key(keys: &[ServerSortRequet]) -> Option<(&ServerSortRequet, Attr)> {
    keys.iter().find_map(|k| match resolve(&k.attribute_name) {
        Resolved::Served(attr) if attr != Attr::ObjectClass => Some((k, attr)),
        _ => None,
    })
}
