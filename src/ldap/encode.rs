//! Search results on the wire: [`Entries`] writes a search's hits straight from the
//! snapshot's pre-encoded values to BER (no `LdapMsg` per entry, no copy of a value), and
//! [`encode_result`] the messages the session answers with. The session decides what to
//! send; this module only writes it.

use std::sync::Arc;

use tokio_util::bytes::{BufMut, BytesMut};

use ldap3_proto::proto::{LdapMsg, LdapOp, LdapPartialAttribute, LdapSearchResultEntry};

use crate::directory::ber::{self, put_header, tlv_len};
use crate::directory::schema::{resolve, Attr, Resolved, OBJECT_CLASSES, SERVED};
use crate::directory::{Hit, Packed, Snapshot};

/// Entries encoded per slice of a reply: between two slices the server looks at how much it
/// has queued for the client, so a whole-book answer never sits in memory whole. A reply of
/// at most this many entries (nearly every phone search) is encoded in one go, as before.
pub(crate) const SLICE: usize = 64;

/// Search result entries of one search (or page): hits of a snapshot with the attributes
/// the request selected.
pub struct Entries {
    pub(crate) id: i32,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) hits: Vec<Hit>,
    pub(crate) selection: Arc<Selection>,
}

impl Entries {
    pub fn len(&self) -> usize {
        self.hits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// As `SearchResultEntry` messages.
    pub fn msgs(&self) -> impl Iterator<Item = LdapMsg> + '_ {
        self.hits.iter().map(|hit| {
            let (dn, attributes) = attributes(&self.snapshot, *hit, &self.selection);
            let types_only = self.selection.types_only;
            LdapMsg {
                msgid: self.id,
                op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
                    dn: dn.to_owned(),
                    attributes: attributes
                        .into_iter()
                        .map(|(name, vals)| LdapPartialAttribute {
                            atype: name.to_owned(),
                            vals: if types_only {
                                Vec::new()
                            } else {
                                let mut out = Vec::new();
                                vals.for_each(|v| out.push(v.as_bytes().to_vec()));
                                out
                            },
                        })
                        .collect(),
                }),
                ctrl: Vec::new(),
            }
        })
    }

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
        let id = ber_integer(self.id);
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
                    Attr::ObjectClass => selection.object_classes.as_slice(),
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
            put_header(out, 0x30, msg_len);
            put_header(out, 0x02, id.len());
            out.put_slice(id);
            put_header(out, 0x64, op_len);
            out.put_slice(dn);
            put_header(out, 0x30, list_len);
            for part in &parts {
                put_header(out, 0x30, attr_len(part));
                put_header(out, 0x04, part.0.len());
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
        put_header(out, 0x30, tlv_len(id.len()) + tlv_len(op_len));
        put_header(out, 0x02, id.len());
        out.put_slice(id);
        put_header(out, 0x64, op_len);
        put_header(out, 0x04, dn.len());
        out.put_slice(dn.as_bytes());
        put_header(out, 0x30, list_len);
        for (name, vals) in &attributes {
            let vals_len = value_len(vals);
            put_header(out, 0x30, tlv_len(name.len()) + tlv_len(vals_len));
            put_header(out, 0x04, name.len());
            out.put_slice(name.as_bytes());
            put_header(out, 0x31, vals_len);
            if !types_only {
                vals.for_each(|v| {
                    put_header(out, 0x04, v.len());
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
    let id = ber_integer(msg.msgid);
    let code = ber_i64(res.code.clone() as i64);
    let op_len = tlv_len(code.len()) + tlv_len(res.matcheddn.len()) + tlv_len(res.message.len());
    put_header(out, 0x30, tlv_len(id.len()) + tlv_len(op_len));
    put_header(out, 0x02, id.len());
    out.put_slice(&id);
    put_header(out, 0x65, op_len);
    put_header(out, 0x0a, code.len());
    out.put_slice(&code);
    put_header(out, 0x04, res.matcheddn.len());
    out.put_slice(res.matcheddn.as_bytes());
    put_header(out, 0x04, res.message.len());
    out.put_slice(res.message.as_bytes());
    true
}

/// An empty `SET OF` (the values of a typesOnly answer).
pub(crate) const EMPTY_SET: &[u8] = &[0x31, 0x00];

/// The served attributes a search returns, resolved once per search.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Indexes into [`SERVED`], in its order.
    pub(crate) served: Vec<usize>,
    /// The request's list, for the base container's RDN attribute.
    pub(crate) attrs: Vec<String>,
    pub(crate) types_only: bool,
    /// The objectClass values every entry has, as a BER SET.
    pub(crate) object_classes: Vec<u8>,
}

impl Selection {
    pub(crate) fn new(attrs: Vec<String>, types_only: bool) -> Self {
        let all = attrs.is_empty() || attrs.iter().any(|a| a == "*");
        let served = SERVED
            .iter()
            .enumerate()
            .filter(|(_, (name, attr))| {
                all || attrs.iter().any(|a| {
                    a.eq_ignore_ascii_case(name)
                        || (!SERVED.iter().any(|(n, _)| n.eq_ignore_ascii_case(a))
                            && resolve(a) == Resolved::Served(*attr))
                })
            })
            .map(|(i, _)| i)
            .collect();
        let mut object_classes = Vec::new();
        ber::put_set(&mut object_classes, OBJECT_CLASSES.iter().copied());
        Selection {
            served,
            attrs,
            types_only,
            object_classes,
        }
    }
}

/// The values of one attribute, borrowed from the snapshot.
pub(crate) enum Values<'a> {
    One(&'a str),
    Packed(Packed<'a>, Attr),
    Fixed(&'a [&'static str]),
}

impl Values<'_> {
    pub(crate) fn for_each(&self, mut f: impl FnMut(&str)) {
        match self {
            Values::One(v) => f(v),
            Values::Packed(p, attr) => p.values(*attr).for_each(f),
            Values::Fixed(values) => values.iter().for_each(|v| f(v)),
        }
    }
}

/// The DN and the selected, non-empty attributes of a hit.
pub(crate) fn attributes<'a>(
    snapshot: &'a Snapshot,
    hit: Hit,
    selection: &Selection,
) -> (&'a str, Vec<(&'a str, Values<'a>)>) {
    match hit {
        Hit::Container => {
            let c = snapshot.container();
            let mut attributes = Vec::new();
            if selection.served.first() == Some(&0) {
                // SERVED[0] is objectClass
                attributes.push(("objectClass", Values::Fixed(&c.object_classes)));
            }
            let a = &selection.attrs;
            if a.is_empty()
                || a.iter()
                    .any(|a| a == "*" || a.eq_ignore_ascii_case(&c.rdn.0))
            {
                attributes.push((c.rdn.0.as_str(), Values::One(&c.rdn.1)));
            }
            (&c.dn, attributes)
        }
        Hit::Entry(id) => {
            let e = snapshot.packed(id);
            let attributes = selection
                .served
                .iter()
                .filter_map(|i| {
                    let (name, attr) = SERVED[*i];
                    let values = match attr {
                        Attr::ObjectClass => Values::Fixed(&OBJECT_CLASSES),
                        attr => {
                            e.ber_values(attr)?;
                            Values::Packed(e, attr)
                        }
                    };
                    Some((name, values))
                })
                .collect();
            (e.dn(), attributes)
        }
    }
}

/// The content octets of an INTEGER as ldap3_lber writes a message id.
pub(crate) fn ber_integer(value: i32) -> Vec<u8> {
    ber_i64(i64::from(value))
}

/// The content octets of an INTEGER or ENUMERATED as ldap3_lber writes them.
pub(crate) fn ber_i64(inner: i64) -> Vec<u8> {
    let mut count = 0usize;
    let mut rem = inner.abs();
    loop {
        count += 1;
        rem >>= 8;
        if rem == 0 {
            break;
        }
    }
    if inner > 0 && inner >> (8 * count - 1) == 1 {
        count += 1;
    }
    let repr = inner.to_be_bytes();
    let mut out = Vec::with_capacity(count);
    if count > repr.len() {
        out.push(0);
        count -= 1;
    }
    out.extend_from_slice(&repr[repr.len() - count..]);
    out
}
