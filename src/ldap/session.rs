//! One LDAP connection's state and semantics, with no socket: [`Session::handle`] takes a
//! decoded message and returns the messages to send back, so every behaviour a phone relies
//! on is testable as plain function calls. The server calls [`Session::respond`], the same
//! answer with the search result entries left as references into the snapshot, which
//! [`Entries::encode`] writes straight to BER — no `LdapMsg` per entry, no copy of a value.
//!
//! The session owns what lives as long as a connection: who is bound, whether TLS is on, and
//! the result lists of paged searches in progress (each pinned to the snapshot it started on,
//! so a sync in between neither duplicates nor skips an entry).

use std::sync::Arc;

use tokio_util::bytes::{BufMut, BytesMut};

use ldap3_proto::control::{LdapControl, ServerSortRequet, ServerSortResult};
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapBindResponse, LdapCompareRequest, LdapExtendedRequest,
    LdapExtendedResponse, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode,
    LdapSearchRequest, LdapSearchResultEntry, LdapSearchScope,
};

use crate::config::{LdapConfig, Secret};
use crate::directory::ber::{self, put_header, tlv_len};
use crate::directory::fold::fold;
use crate::directory::matcher::Tri;
use crate::directory::schema::{resolve, Attr, Resolved, OBJECT_CLASSES, SERVED};
use crate::directory::{BaseRef, Directory, Hit, Packed, Scope, Snapshot};
use crate::filter::LdapFilter;
use crate::model::normalise_dn;

pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
pub const OID_SERVER_SORT: &str = "1.2.840.113556.1.4.473";
pub const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
pub const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";

/// Paged searches a connection may keep open at once; the oldest is dropped beyond that.
const MAX_CURSORS: usize = 4;

/// Entries encoded per slice of a reply: between two slices the server looks at how much it
/// has queued for the client, so a whole-book answer never sits in memory whole. A reply of
/// at most this many entries (nearly every phone search) is encoded in one go, as before.
const SLICE: usize = 64;

/// What the endpoint's configuration means for a session.
#[derive(Debug, Clone)]
pub struct Policy {
    pub anonymous: bool,
    /// Normalised DN and password of each account phones may bind with.
    pub users: Vec<(String, Secret)>,
    pub size_limit: usize,
    /// Entries per page of a paged search at most, whatever size the client asks for.
    pub max_page_size: usize,
    /// StartTLS is offered (a certificate is configured).
    pub starttls: bool,
}

/// Which controls of a request were marked critical on the wire, for the controls whose
/// ldap3_proto type has no criticality field (paged results, server-side sort). The codec
/// reads them from the bytes; [`Session::respond`] assumes neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Critical {
    pub paged: bool,
    pub sort: bool,
}

impl Policy {
    pub fn from_config(ldap: &LdapConfig) -> Self {
        Policy {
            anonymous: ldap.anonymous,
            users: ldap
                .users
                .iter()
                .map(|u| (normalise_dn(&u.dn), u.password.clone()))
                .collect(),
            size_limit: ldap.size_limit,
            max_page_size: ldap.max_page_size,
            starttls: ldap.starttls && ldap.tls_cert.is_some() && ldap.tls_key.is_some(),
        }
    }
}

/// What the connection must do after sending the replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Wrap the connection in TLS (the StartTLS response has been queued).
    StartTls,
    Close,
}

#[derive(Debug)]
pub struct Reply {
    pub msgs: Vec<LdapMsg>,
    pub action: Action,
}

/// [`Reply`] as the server sends it: search result entries stay references until encoded.
pub struct Response {
    pub parts: Vec<Part>,
    pub action: Action,
}

/// One piece of a response, in order.
pub enum Part {
    Msg(LdapMsg),
    Entries(Entries),
}

impl Response {
    fn send(msgs: Vec<LdapMsg>) -> Self {
        Response {
            parts: msgs.into_iter().map(Part::Msg).collect(),
            action: Action::Continue,
        }
    }

    /// The last message (the one with the result code), if any.
    pub fn last_msg(&self) -> Option<&LdapMsg> {
        match self.parts.last() {
            Some(Part::Msg(msg)) => Some(msg),
            _ => None,
        }
    }

    /// How many search result entries it carries.
    pub fn entry_count(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Msg(m) => usize::from(matches!(m.op, LdapOp::SearchResultEntry(_))),
                Part::Entries(e) => e.len(),
            })
            .sum()
    }

    /// The same response as plain messages.
    pub fn into_reply(self) -> Reply {
        let mut msgs = Vec::new();
        for part in self.parts {
            match part {
                Part::Msg(msg) => msgs.push(msg),
                Part::Entries(entries) => msgs.extend(entries.msgs()),
            }
        }
        Reply {
            msgs,
            action: self.action,
        }
    }
}

/// Search result entries of one search (or page): hits of a snapshot with the attributes
/// the request selected.
pub struct Entries {
    id: i32,
    snapshot: Arc<Snapshot>,
    hits: Vec<Hit>,
    selection: Arc<Selection>,
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
    fn encode_slice(&self, id: &[u8], hits: &[Hit], out: &mut BytesMut) {
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
    fn encode_container(&self, id: &[u8], out: &mut BytesMut) {
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
const EMPTY_SET: &[u8] = &[0x31, 0x00];

/// The served attributes a search returns, resolved once per search.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Indexes into [`SERVED`], in its order.
    served: Vec<usize>,
    /// The request's list, for the base container's RDN attribute.
    attrs: Vec<String>,
    types_only: bool,
    /// The objectClass values every entry has, as a BER SET.
    object_classes: Vec<u8>,
}

impl Selection {
    fn new(attrs: Vec<String>, types_only: bool) -> Self {
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
enum Values<'a> {
    One(&'a str),
    Packed(Packed<'a>, Attr),
    Fixed(&'a [&'static str]),
}

impl Values<'_> {
    fn for_each(&self, mut f: impl FnMut(&str)) {
        match self {
            Values::One(v) => f(v),
            Values::Packed(p, attr) => p.values(*attr).for_each(f),
            Values::Fixed(values) => values.iter().for_each(|v| f(v)),
        }
    }
}

/// The DN and the selected, non-empty attributes of a hit.
fn attributes<'a>(
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
fn ber_integer(value: i32) -> Vec<u8> {
    ber_i64(i64::from(value))
}

/// The content octets of an INTEGER or ENUMERATED as ldap3_lber writes them.
fn ber_i64(inner: i64) -> Vec<u8> {
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

/// A paged search in progress.
struct Cursor {
    cookie: Vec<u8>,
    snapshot: Arc<Snapshot>,
    hits: Vec<Hit>,
    next: usize,
    selection: Arc<Selection>,
}

/// The state of one connection.
pub struct Session {
    directory: Arc<Directory>,
    policy: Arc<Policy>,
    bound: Option<String>,
    tls: bool,
    cursors: Vec<Cursor>,
    cookies: u64,
    /// The attribute selection of the last search: a phone sends the same list every time,
    /// and resolving it anew cost 3 % of a loaded server's CPU.
    selection: Option<Arc<Selection>>,
}

impl Session {
    pub fn new(directory: Arc<Directory>, policy: Arc<Policy>, tls: bool) -> Self {
        Session {
            directory,
            policy,
            bound: None,
            tls,
            cursors: Vec::new(),
            cookies: 0,
            selection: None,
        }
    }

    /// The DN bound as, if any (for access logs).
    pub fn bound_dn(&self) -> Option<&str> {
        self.bound.as_deref()
    }

    /// Marks the connection as encrypted (after the StartTLS handshake).
    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    /// Handles one request.
    pub fn handle(&mut self, msg: LdapMsg) -> Reply {
        self.respond(msg).into_reply()
    }

    /// [`Session::handle`] for a request whose paged-results or sort control was marked
    /// critical as `critical` says.
    pub fn handle_with(&mut self, msg: LdapMsg, critical: Critical) -> Reply {
        self.respond_with(msg, critical).into_reply()
    }

    /// Handles one request; search result entries are left for [`Entries::encode`].
    pub fn respond(&mut self, msg: LdapMsg) -> Response {
        self.respond_with(msg, Critical::default())
    }

    /// Answers a bind without checking it: the client's address is throttled after failed
    /// binds. As any bind does, it first drops the connection's authentication (RFC 4511
    /// §4.2.1), so an earlier successful bind does not stay in force behind the refusal.
    pub fn refuse_bind(&mut self, id: i32, message: &str) -> Response {
        self.bound = None;
        Response::send(vec![result(
            id,
            Kind::Bind,
            LdapResultCode::UnwillingToPerform,
            message,
        )])
    }

    /// [`Session::respond`] knowing which paged-results and sort controls were critical.
    ///
    /// A critical control the server does not implement for the operation — unknown, or
    /// paged results / sort on anything but a search — means the operation is not performed
    /// (RFC 4511 §4.1.11): operations with a response get unavailableCriticalExtension (12);
    /// an Unbind, which has none, is not performed either — the connection stays open and
    /// bound as it was, and the idle timeout closes it if the client goes quiet. (slapd reads
    /// no controls on an Unbind and always closes; this server follows the RFC's rule.)
    pub fn respond_with(&mut self, msg: LdapMsg, critical: Critical) -> Response {
        let id = msg.msgid;
        let inapplicable = match msg.op {
            LdapOp::SearchRequest(_) => None,
            _ if critical.paged => Some(OID_PAGED_RESULTS.to_owned()),
            _ if critical.sort => Some(OID_SERVER_SORT.to_owned()),
            _ => None,
        };
        if let Some(oid) = critical_unsupported(&msg.ctrl).or(inapplicable) {
            let message = format!("critical control {oid} is not supported");
            return match response_kind(&msg.op) {
                Some(kind) => Response::send(vec![result(
                    id,
                    kind,
                    LdapResultCode::UnavailableCriticalExtension,
                    &message,
                )]),
                None => Response::send(Vec::new()),
            };
        }
        match msg.op {
            LdapOp::BindRequest(req) => Response::send(vec![self.bind(id, req)]),
            LdapOp::SearchRequest(req) => Response {
                parts: self.search(id, req, &msg.ctrl, critical),
                action: Action::Continue,
            },
            LdapOp::UnbindRequest => Response {
                parts: Vec::new(),
                action: Action::Close,
            },
            LdapOp::AbandonRequest(_) => Response::send(Vec::new()),
            LdapOp::ExtendedRequest(req) => self.extended(id, req),
            LdapOp::CompareRequest(req) => Response::send(vec![self.compare(id, req)]),
            op => match response_kind(&op) {
                Some(kind) => Response::send(vec![result(
                    id,
                    kind,
                    LdapResultCode::UnwillingToPerform,
                    "the phone book is read-only",
                )]),
                // A response type sent as a request: the peer does not speak LDAP.
                None => Response {
                    parts: Vec::new(),
                    action: Action::Close,
                },
            },
        }
    }

    fn bind(&mut self, id: i32, req: LdapBindRequest) -> LdapMsg {
        let reply = |code, message: &str| LdapMsg {
            msgid: id,
            op: LdapOp::BindResponse(LdapBindResponse {
                res: ldap_result(code, message),
                saslcreds: None,
            }),
            ctrl: Vec::new(),
        };
        self.bound = None;
        if req.version != 2 && req.version != 3 {
            return reply(
                LdapResultCode::ProtocolError,
                "only LDAPv2 and LDAPv3 binds are supported",
            );
        }
        let LdapBindCred::Simple(password) = req.cred else {
            return reply(
                LdapResultCode::AuthMethodNotSupported,
                "only simple binds are supported",
            );
        };
        if password.is_empty() {
            // Anonymous, or an "unauthenticated" bind with a DN (RFC 4513 §5.1.2).
            return if self.policy.anonymous {
                reply(LdapResultCode::Success, "")
            } else {
                reply(
                    LdapResultCode::InappropriateAuthentication,
                    "anonymous access is disabled; bind with a DN and password",
                )
            };
        }
        let dn = normalise_dn(&req.dn);
        let known = self.policy.users.iter().find(|(user, _)| *user == dn);
        match known {
            Some((_, secret)) if secret.matches(&password) => {
                self.bound = Some(req.dn);
                reply(LdapResultCode::Success, "")
            }
            _ => reply(LdapResultCode::InvalidCredentials, "invalid credentials"),
        }
    }

    fn may_search(&self) -> bool {
        self.policy.anonymous || self.bound.is_some()
    }

    fn search(
        &mut self,
        id: i32,
        req: LdapSearchRequest,
        controls: &[LdapControl],
        critical: Critical,
    ) -> Vec<Part> {
        let done = |code, message: &str| Part::Msg(result(id, Kind::Search, code, message));
        if req.base.trim().is_empty() && req.scope == LdapSearchScope::Base {
            return self.root_dse(id, &req).into_iter().map(Part::Msg).collect();
        }
        if !self.may_search() {
            return vec![done(
                LdapResultCode::InsufficentAccessRights,
                "bind first: anonymous access is disabled",
            )];
        }
        let paging = controls.iter().find_map(|c| match c {
            LdapControl::SimplePagedResults { size, cookie } => Some((*size, cookie.clone())),
            _ => None,
        });
        if let Some((size, cookie)) = &paging {
            if !cookie.is_empty() {
                return self.next_page(id, *size, cookie);
            }
        }
        let snapshot = self.directory.load();
        let Some(base) = snapshot.resolve_base(&req.base) else {
            let mut msg = result(
                id,
                Kind::Search,
                LdapResultCode::NoSuchObject,
                "no such entry",
            );
            if let LdapOp::SearchResultDone(res) = &mut msg.op {
                res.matcheddn = if normalise_dn(&req.base)
                    .ends_with(&normalise_dn(&snapshot.settings().base_dn))
                {
                    snapshot.settings().base_dn.clone()
                } else {
                    String::new()
                };
            }
            return vec![Part::Msg(msg)];
        };
        let node = match snapshot.compile(&req.filter) {
            Ok(node) => node,
            Err(e) => return vec![done(LdapResultCode::UnwillingToPerform, &e.to_string())],
        };
        let scope = match req.scope {
            LdapSearchScope::Base => Scope::Base,
            LdapSearchScope::OneLevel => Scope::One,
            LdapSearchScope::Subtree => Scope::Sub,
            LdapSearchScope::Children => Scope::Children,
        };
        let client_limit = usize::try_from(req.sizelimit)
            .ok()
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        // The paged results control pages through any size; only the client's own limit holds.
        let limit = if paging.is_some() {
            client_limit
        } else {
            client_limit.min(self.policy.size_limit)
        };
        let sort = controls.iter().find_map(|c| match c {
            LdapControl::ServerSort { sort_requests } => Some(sort_requests.as_slice()),
            _ => None,
        });
        if let Some(keys) = sort {
            if critical.sort && sort_key(keys).is_none() {
                // RFC 2891 §1.2: a critical sort the server cannot honour fails the search,
                // with no entries and the sort result saying why.
                let mut done = result(
                    id,
                    Kind::Search,
                    LdapResultCode::UnavailableCriticalExtension,
                    "the critical sort control names no attribute this server can sort by",
                );
                done.ctrl.push(LdapControl::ServerSortResult {
                    sort_result: ServerSortResult {
                        result_code: LdapResultCode::NoSuchAttribute,
                        attribute_type: keys.first().map(|k| k.attribute_name.clone()),
                    },
                });
                return vec![Part::Msg(done)];
            }
        }
        let (mut hits, mut more) = match sort {
            // Sorting must see every hit before the limit cuts.
            Some(_) => snapshot.search(base, scope, &node, usize::MAX),
            None => snapshot.search(base, scope, &node, limit),
        };
        let mut response_controls = Vec::new();
        if let Some(keys) = sort {
            response_controls.push(LdapControl::ServerSortResult {
                sort_result: sort_hits(&snapshot, &mut hits, keys),
            });
            if hits.len() > limit {
                hits.truncate(limit);
                more = true;
            }
        }
        let selection = self.selection(req.attrs, req.typesonly);
        match paging {
            Some((size, _)) => {
                self.cookies += 1;
                let cursor = Cursor {
                    cookie: self.cookies.to_be_bytes().to_vec(),
                    snapshot,
                    hits,
                    next: 0,
                    selection,
                };
                if self.cursors.len() >= MAX_CURSORS {
                    self.cursors.remove(0);
                }
                self.cursors.push(cursor);
                let index = self.cursors.len() - 1;
                let mut parts = self.page(id, index, size, more);
                if let Some(Part::Msg(done)) = parts.last_mut() {
                    done.ctrl.extend(response_controls);
                }
                parts
            }
            None => {
                let mut end = if more {
                    result(
                        id,
                        Kind::Search,
                        LdapResultCode::SizeLimitExceeded,
                        "size limit exceeded",
                    )
                } else {
                    result(id, Kind::Search, LdapResultCode::Success, "")
                };
                end.ctrl = response_controls;
                let mut parts = Vec::with_capacity(2);
                if !hits.is_empty() {
                    parts.push(Part::Entries(Entries {
                        id,
                        snapshot,
                        hits,
                        selection,
                    }));
                }
                parts.push(Part::Msg(end));
                parts
            }
        }
    }

    /// The selection `attrs` make: the last one again when they are the same.
    fn selection(&mut self, attrs: Vec<String>, types_only: bool) -> Arc<Selection> {
        if let Some(last) = &self.selection {
            if last.types_only == types_only && last.attrs == attrs {
                return last.clone();
            }
        }
        let selection = Arc::new(Selection::new(attrs, types_only));
        self.selection = Some(selection.clone());
        selection
    }

    /// Sends the next `size` hits of cursor `index`; drops the cursor when it is exhausted.
    fn page(&mut self, id: i32, index: usize, size: i64, limited: bool) -> Vec<Part> {
        let cursor = &mut self.cursors[index];
        // RFC 2696 lets the server return fewer entries than asked; the cookie still walks
        // every hit exactly once.
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(usize::MAX)
            .min(self.policy.max_page_size);
        let end = cursor.next.saturating_add(size).min(cursor.hits.len());
        let mut parts = Vec::with_capacity(2);
        if end > cursor.next {
            parts.push(Part::Entries(Entries {
                id,
                snapshot: cursor.snapshot.clone(),
                hits: cursor.hits[cursor.next..end].to_vec(),
                selection: cursor.selection.clone(),
            }));
        }
        cursor.next = end;
        let finished = end >= cursor.hits.len();
        let cookie = if finished {
            Vec::new()
        } else {
            cursor.cookie.clone()
        };
        if finished {
            self.cursors.remove(index);
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

    fn next_page(&mut self, id: i32, size: i64, cookie: &[u8]) -> Vec<Part> {
        let Some(index) = self.cursors.iter().position(|c| c.cookie == cookie) else {
            return vec![Part::Msg(result(
                id,
                Kind::Search,
                LdapResultCode::UnwillingToPerform,
                "unknown or expired paged results cookie",
            ))];
        };
        if size == 0 {
            // RFC 2696 §3: a size of zero abandons the paged search.
            self.cursors.remove(index);
            let mut done = result(id, Kind::Search, LdapResultCode::Success, "");
            done.ctrl.push(LdapControl::SimplePagedResults {
                size: 0,
                cookie: Vec::new(),
            });
            return vec![Part::Msg(done)];
        }
        self.page(id, index, size, false)
    }

    fn root_dse(&self, id: i32, req: &LdapSearchRequest) -> Vec<LdapMsg> {
        let snapshot = self.directory.load();
        let mut extensions = vec![OID_WHOAMI.to_owned()];
        if self.policy.starttls && !self.tls {
            extensions.push(OID_STARTTLS.to_owned());
        }
        let all: Vec<(&str, Vec<String>)> = vec![
            ("objectClass", vec!["top".into(), "extensibleObject".into()]),
            ("namingContexts", vec![snapshot.settings().base_dn.clone()]),
            ("supportedLDAPVersion", vec!["2".into(), "3".into()]),
            (
                "supportedControl",
                vec![OID_PAGED_RESULTS.into(), OID_SERVER_SORT.into()],
            ),
            ("supportedExtension", extensions),
            ("vendorName", vec!["phonebook-proxy".into()]),
            ("vendorVersion", vec![env!("CARGO_PKG_VERSION").into()]),
        ];
        // The root DSE's attributes are operational: a plain request (no list, `*`, `+`)
        // gets them all, as phones probing it expect; a list gets what it names.
        let plain = req.attrs.is_empty() || req.attrs.iter().any(|a| a == "*" || a == "+");
        let attributes = all
            .into_iter()
            .filter(|(name, _)| plain || req.attrs.iter().any(|a| a.eq_ignore_ascii_case(name)))
            .map(|(name, vals)| LdapPartialAttribute {
                atype: name.to_owned(),
                vals: if req.typesonly {
                    Vec::new()
                } else {
                    vals.into_iter().map(String::into_bytes).collect()
                },
            })
            .collect();
        vec![
            LdapMsg {
                msgid: id,
                op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
                    dn: String::new(),
                    attributes,
                }),
                ctrl: Vec::new(),
            },
            result(id, Kind::Search, LdapResultCode::Success, ""),
        ]
    }

    fn extended(&mut self, id: i32, req: LdapExtendedRequest) -> Response {
        let respond = |code, message: &str, name: Option<String>, value: Option<Vec<u8>>| LdapMsg {
            msgid: id,
            op: LdapOp::ExtendedResponse(LdapExtendedResponse {
                res: ldap_result(code, message),
                name,
                value,
            }),
            ctrl: Vec::new(),
        };
        match req.name.as_str() {
            OID_WHOAMI => {
                let authz = self
                    .bound
                    .as_ref()
                    .map(|dn| format!("dn:{dn}"))
                    .unwrap_or_default();
                Response::send(vec![respond(
                    LdapResultCode::Success,
                    "",
                    None,
                    Some(authz.into_bytes()),
                )])
            }
            OID_STARTTLS if self.tls => Response::send(vec![respond(
                LdapResultCode::OperationsError,
                "TLS is already active",
                None,
                None,
            )]),
            OID_STARTTLS if !self.policy.starttls => Response::send(vec![respond(
                LdapResultCode::Unavailable,
                "StartTLS is not configured",
                None,
                None,
            )]),
            OID_STARTTLS => Response {
                parts: vec![Part::Msg(respond(
                    LdapResultCode::Success,
                    "",
                    Some(OID_STARTTLS.to_owned()),
                    None,
                ))],
                action: Action::StartTls,
            },
            other => Response::send(vec![respond(
                LdapResultCode::ProtocolError,
                &format!("extended operation {other} is not supported"),
                None,
                None,
            )]),
        }
    }

    fn compare(&self, id: i32, req: LdapCompareRequest) -> LdapMsg {
        let done = |code, message: &str| result(id, Kind::Compare, code, message);
        if !self.may_search() {
            return done(
                LdapResultCode::InsufficentAccessRights,
                "bind first: anonymous access is disabled",
            );
        }
        let snapshot = self.directory.load();
        let Some(BaseRef::Entry(entry)) = snapshot.resolve_base(&req.dn) else {
            return done(LdapResultCode::NoSuchObject, "no such entry");
        };
        if !matches!(resolve(&req.atype), Resolved::Served(_)) {
            return done(LdapResultCode::NoSuchAttribute, "no such attribute");
        }
        let value = String::from_utf8_lossy(&req.val).into_owned();
        match snapshot.compile(&LdapFilter::Equality(req.atype, value)) {
            Ok(node) if node.eval(&snapshot.packed(entry)) == Tri::True => {
                done(LdapResultCode::CompareTrue, "")
            }
            Ok(_) => done(LdapResultCode::CompareFalse, ""),
            Err(e) => done(LdapResultCode::UnwillingToPerform, &e.to_string()),
        }
    }
}

/// Orders hits by the first sort key the server knows (RFC 2891); the container stays first.
fn sort_hits(snapshot: &Snapshot, hits: &mut [Hit], keys: &[ServerSortRequet]) -> ServerSortResult {
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
fn sort_key(keys: &[ServerSortRequet]) -> Option<(&ServerSortRequet, Attr)> {
    keys.iter().find_map(|k| match resolve(&k.attribute_name) {
        Resolved::Served(attr) if attr != Attr::ObjectClass => Some((k, attr)),
        _ => None,
    })
}

/// The response type that answers a request.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bind,
    Search,
    Modify,
    Add,
    Delete,
    ModifyDn,
    Compare,
    Extended,
}

fn response_kind(op: &LdapOp) -> Option<Kind> {
    Some(match op {
        LdapOp::BindRequest(_) => Kind::Bind,
        LdapOp::SearchRequest(_) => Kind::Search,
        LdapOp::ModifyRequest(_) => Kind::Modify,
        LdapOp::AddRequest(_) => Kind::Add,
        LdapOp::DelRequest(_) => Kind::Delete,
        LdapOp::ModifyDNRequest(_) => Kind::ModifyDn,
        LdapOp::CompareRequest(_) => Kind::Compare,
        LdapOp::ExtendedRequest(_) => Kind::Extended,
        _ => return None,
    })
}

fn ldap_result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_owned(),
        referral: Vec::new(),
    }
}

/// The one place operation outcomes become LDAP result messages.
fn result(id: i32, kind: Kind, code: LdapResultCode, message: &str) -> LdapMsg {
    let res = ldap_result(code, message);
    let op = match kind {
        Kind::Bind => LdapOp::BindResponse(LdapBindResponse {
            res,
            saslcreds: None,
        }),
        Kind::Search => LdapOp::SearchResultDone(res),
        Kind::Modify => LdapOp::ModifyResponse(res),
        Kind::Add => LdapOp::AddResponse(res),
        Kind::Delete => LdapOp::DelResponse(res),
        Kind::ModifyDn => LdapOp::ModifyDNResponse(res),
        Kind::Compare => LdapOp::CompareResult(res),
        Kind::Extended => LdapOp::ExtendedResponse(LdapExtendedResponse {
            res,
            name: None,
            value: None,
        }),
    };
    LdapMsg {
        msgid: id,
        op,
        ctrl: Vec::new(),
    }
}

/// The OID of a control marked critical that this server does not implement.
fn critical_unsupported(controls: &[LdapControl]) -> Option<String> {
    controls.iter().find_map(|c| match c {
        LdapControl::Unknown {
            oid,
            criticality: true,
            ..
        } => Some(oid.clone()),
        LdapControl::SyncRequest {
            criticality: true, ..
        } => Some("1.3.6.1.4.1.4203.1.9.1.1".into()),
        LdapControl::PasswordPolicyRequest { criticality: true } => {
            Some("1.3.6.1.4.1.42.2.27.8.5.1".into())
        }
        LdapControl::SearchOptions {
            criticality: true, ..
        } => Some("1.2.840.113556.1.4.1340".into()),
        LdapControl::ShowDeleted { criticality: true } => Some("1.2.840.113556.1.4.417".into()),
        LdapControl::SdFlags {
            criticality: true, ..
        } => Some("1.2.840.113556.1.4.801".into()),
        LdapControl::ExtendedDn {
            criticality: true, ..
        } => Some("1.2.840.113556.1.4.529".into()),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
