//! Search results on the wire: [`Entries`] are written straight from the snapshot's
//! pre-encoded values to BER (no `LdapMsg` per entry, no copy of a value), and
//! [`encode_result`] writes the result that ends a search. The session decides what to send;
//! this module only writes it, byte for byte what ldap3_proto's codec writes for the same
//! messages (`encode/tests.rs` compares the two).

use tokio_util::bytes::{BufMut, BytesMut};

use ldap3_proto::proto::{LdapMsg, LdapOp};

use crate::ber::{self, put_header, tlv_len, EMPTY_SET, OCTET_STRING, SEQUENCE, SET};
use crate::directory::schema::{Attr, OBJECT_CLASSES, SERVED};
use crate::directory::Hit;
use crate::ldap::response::Entries;
use crate::ldap::selection::{attributes, Values};

/// `[APPLICATION 4]`, constructed.
const SEARCH_RESULT_ENTRY: u8 = 0x64;
/// `[APPLICATION 5]`, constructed.
const SEARCH_RESULT_DONE: u8 = 0x65;

/// The objectClass values every entry has, as a BER SET, encoded once.
fn object_classes() -> &'static [u8] {
    static SET: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let mut set = Vec::new();
        ber::put_set(&mut set, OBJECT_CLASSES.iter().copied());
        set
    })
}

/// Entries encoded per slice of a reply: between two slices the server looks at how much it
/// has queued for the client, so a whole-book answer never sits in memory whole. A reply of
/// at most this many entries (nearly every phone search) is encoded in one go, as before.
pub(crate) const SLICE: usize = 64;

impl Entries {
    /// Appends every entry as a BER-encoded `SearchResultEntry` message, byte for byte what
    /// ldap3_proto's codec writes for [`Entries::msgs`].
    pub fn encode(&self, out: &mut BytesMut) {
        let mut next = 0;
        while next < self.hits.len() {
            next = self.encode_from(next, usize::MAX, out);
        }
    }

    /// Appends the entries from `start` on, [`SLICE`] at a time, until all are written or
    /// `out` holds at least `queue_limit` bytes; returns the index of the first entry not
    /// written (`len()` when done). The server flushes in between, so a large reply is never
    /// queued whole.
    pub fn encode_from(&self, start: usize, queue_limit: usize, out: &mut BytesMut) -> usize {
        let id = ber::integer(i64::from(self.id));
        let mut at = start;
        while at < self.hits.len() {
            let end = at.saturating_add(SLICE).min(self.hits.len());
            self.encode_slice(&id, &self.hits[at..end], out);
            at = end;
            if out.len() >= queue_limit {
                break;
            }
        }
        at
    }

    /// Entries are copied from their pre-encoded form in the snapshot; only the headers are
    /// written here.
    pub(crate) fn encode_slice(&self, id: &[u8], hits: &[Hit], out: &mut BytesMut) {
        let selection = &self.selection;
        let object_classes = object_classes();
        let mut parts: Vec<(&str, &[u8])> = Vec::with_capacity(selection.served.len());
        // Start reading every entry of the slice at once (the loads overlap). The search walk
        // touched them already; a later page of a paged search has not.
        for hit in hits {
            if let Hit::Entry(entry) = hit {
                self.snapshot.packed(*entry).touch();
            }
        }
        for hit in hits {
            let Hit::Entry(entry) = *hit else {
                self.encode_container(id, out);
                continue;
            };
            let e = self.snapshot.packed(entry);
            parts.clear();
            for i in &selection.served {
                let (name, attr) = SERVED[*i];
                let values = match attr {
                    Attr::ObjectClass => object_classes,
                    _ => match e.ber_values(attr) {
                        Some(values) => values,
                        None => continue,
                    },
                };
                parts.push((
                    name,
                    if selection.types_only {
                        EMPTY_SET
                    } else {
                        values
                    },
                ));
            }
            let attr_len = |(name, values): &(&str, &[u8])| tlv_len(name.len()) + values.len();
            let list_len: usize = parts.iter().map(|p| tlv_len(attr_len(p))).sum();
            let dn = e.ber_dn();
            let op_len = dn.len() + tlv_len(list_len);
            let msg_len = tlv_len(id.len()) + tlv_len(op_len);
            out.reserve(tlv_len(msg_len));
            put_header(out, SEQUENCE, msg_len);
            put_header(out, ber::INTEGER, id.len());
            out.put_slice(id);
            put_header(out, SEARCH_RESULT_ENTRY, op_len);
            out.put_slice(dn);
            put_header(out, SEQUENCE, list_len);
            for part in &parts {
                put_header(out, SEQUENCE, attr_len(part));
                put_header(out, OCTET_STRING, part.0.len());
                out.put_slice(part.0.as_bytes());
                out.put_slice(part.1);
            }
        }
    }

    /// The base container as a `SearchResultEntry` (not pre-encoded: it is one entry).
    pub(crate) fn encode_container(&self, id: &[u8], out: &mut BytesMut) {
        let types_only = self.selection.types_only;
        let (dn, attributes) = attributes(&self.snapshot, Hit::Container, &self.selection);
        let value_len = |vals: &Values| -> usize {
            let mut len = 0;
            if !types_only {
                vals.for_each(|v| len += tlv_len(v.len()));
            }
            len
        };
        let list_len: usize = attributes
            .iter()
            .map(|(name, vals)| tlv_len(tlv_len(name.len()) + tlv_len(value_len(vals))))
            .sum();
        let op_len = tlv_len(dn.len()) + tlv_len(list_len);
        put_header(out, SEQUENCE, tlv_len(id.len()) + tlv_len(op_len));
        put_header(out, ber::INTEGER, id.len());
        out.put_slice(id);
        put_header(out, SEARCH_RESULT_ENTRY, op_len);
        put_header(out, OCTET_STRING, dn.len());
        out.put_slice(dn.as_bytes());
        put_header(out, SEQUENCE, list_len);
        for (name, vals) in &attributes {
            let vals_len = value_len(vals);
            put_header(out, SEQUENCE, tlv_len(name.len()) + tlv_len(vals_len));
            put_header(out, OCTET_STRING, name.len());
            out.put_slice(name.as_bytes());
            put_header(out, SET, vals_len);
            if !types_only {
                vals.for_each(|v| {
                    put_header(out, OCTET_STRING, v.len());
                    out.put_slice(v.as_bytes());
                });
            }
        }
    }
}

/// Writes a `SearchResultDone` without controls or referrals straight to BER, byte for byte
/// what ldap3_proto's codec writes; `false` (nothing written) for any other message.
pub fn encode_result(msg: &LdapMsg, out: &mut BytesMut) -> bool {
    let LdapOp::SearchResultDone(res) = &msg.op else {
        return false;
    };
    if !msg.ctrl.is_empty() || !res.referral.is_empty() {
        return false;
    }
    let id = ber::integer(i64::from(msg.msgid));
    let code = ber::integer(res.code.clone() as i64);
    let op_len = tlv_len(code.len()) + tlv_len(res.matcheddn.len()) + tlv_len(res.message.len());
    put_header(out, SEQUENCE, tlv_len(id.len()) + tlv_len(op_len));
    put_header(out, ber::INTEGER, id.len());
    out.put_slice(&id);
    put_header(out, SEARCH_RESULT_DONE, op_len);
    put_header(out, ber::ENUMERATED, code.len());
    out.put_slice(&code);
    put_header(out, OCTET_STRING, res.matcheddn.len());
    out.put_slice(res.matcheddn.as_bytes());
    put_header(out, OCTET_STRING, res.message.len());
    out.put_slice(res.message.as_bytes());
    true
}

#[cfg(test)]
mod tests;
