//! One LDAP connection's state and semantics, with no socket: [`Session::handle`] takes a
//! decoded message and returns the messages to send back, so every behaviour a phone relies
//! on is testable as plain function calls.
//!
//! The session owns what lives as long as a connection: who is bound, whether TLS is on, and
//! the result lists of paged searches in progress (each pinned to the snapshot it started on,
//! so a sync in between neither duplicates nor skips an entry).

use std::sync::Arc;

use ldap3_proto::control::{LdapControl, ServerSortRequet, ServerSortResult};
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapBindResponse, LdapCompareRequest, LdapExtendedRequest,
    LdapExtendedResponse, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode,
    LdapSearchRequest, LdapSearchResultEntry, LdapSearchScope,
};

use crate::config::{LdapConfig, Secret};
use crate::directory::fold::fold;
use crate::directory::matcher::Tri;
use crate::directory::schema::{resolve, Attr, Resolved, SERVED};
use crate::directory::{BaseRef, Directory, Hit, Scope, Snapshot};
use crate::filter::LdapFilter;
use crate::model::normalise_dn;

pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
pub const OID_SERVER_SORT: &str = "1.2.840.113556.1.4.473";
pub const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
pub const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";

/// Paged searches a connection may keep open at once; the oldest is dropped beyond that.
const MAX_CURSORS: usize = 4;

/// What the endpoint's configuration means for a session.
#[derive(Debug, Clone)]
pub struct Policy {
    pub anonymous: bool,
    /// Normalised DN and password of each account phones may bind with.
    pub users: Vec<(String, Secret)>,
    pub size_limit: usize,
    /// StartTLS is offered (a certificate is configured).
    pub starttls: bool,
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

impl Reply {
    fn send(msgs: Vec<LdapMsg>) -> Self {
        Reply {
            msgs,
            action: Action::Continue,
        }
    }
}

/// A paged search in progress.
struct Cursor {
    cookie: Vec<u8>,
    snapshot: Arc<Snapshot>,
    hits: Vec<Hit>,
    next: usize,
    attrs: Vec<String>,
    types_only: bool,
}

/// The state of one connection.
pub struct Session {
    directory: Arc<Directory>,
    policy: Arc<Policy>,
    bound: Option<String>,
    tls: bool,
    cursors: Vec<Cursor>,
    cookies: u64,
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
        let id = msg.msgid;
        if let Some(oid) = critical_unsupported(&msg.ctrl) {
            let message = format!("critical control {oid} is not supported");
            return match response_kind(&msg.op) {
                Some(kind) => Reply::send(vec![result(
                    id,
                    kind,
                    LdapResultCode::UnavailableCriticalExtension,
                    &message,
                )]),
                None => Reply::send(Vec::new()),
            };
        }
        match msg.op {
            LdapOp::BindRequest(req) => Reply::send(vec![self.bind(id, req)]),
            LdapOp::SearchRequest(req) => Reply::send(self.search(id, req, &msg.ctrl)),
            LdapOp::UnbindRequest => Reply {
                msgs: Vec::new(),
                action: Action::Close,
            },
            LdapOp::AbandonRequest(_) => Reply::send(Vec::new()),
            LdapOp::ExtendedRequest(req) => self.extended(id, req),
            LdapOp::CompareRequest(req) => Reply::send(vec![self.compare(id, req)]),
            op => match response_kind(&op) {
                Some(kind) => Reply::send(vec![result(
                    id,
                    kind,
                    LdapResultCode::UnwillingToPerform,
                    "the phone book is read-only",
                )]),
                // A response type sent as a request: the peer does not speak LDAP.
                None => Reply {
                    msgs: Vec::new(),
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
            Some((_, secret))
                if constant_time_eq(secret.expose().as_bytes(), password.as_bytes()) =>
            {
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
    ) -> Vec<LdapMsg> {
        let done = |code, message: &str| result(id, Kind::Search, code, message);
        if req.base.trim().is_empty() && req.scope == LdapSearchScope::Base {
            return self.root_dse(id, &req);
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
            let mut msg = done(LdapResultCode::NoSuchObject, "no such entry");
            if let LdapOp::SearchResultDone(res) = &mut msg.op {
                res.matcheddn = if normalise_dn(&req.base)
                    .ends_with(&normalise_dn(&snapshot.settings().base_dn))
                {
                    snapshot.settings().base_dn.clone()
                } else {
                    String::new()
                };
            }
            return vec![msg];
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
        match paging {
            Some((size, _)) => {
                self.cookies += 1;
                let cursor = Cursor {
                    cookie: self.cookies.to_be_bytes().to_vec(),
                    snapshot,
                    hits,
                    next: 0,
                    attrs: req.attrs,
                    types_only: req.typesonly,
                };
                if self.cursors.len() >= MAX_CURSORS {
                    self.cursors.remove(0);
                }
                self.cursors.push(cursor);
                let index = self.cursors.len() - 1;
                let mut msgs = self.page(id, index, size, more);
                if let Some(done) = msgs.last_mut() {
                    done.ctrl.extend(response_controls);
                }
                msgs
            }
            None => {
                let mut msgs: Vec<LdapMsg> = hits
                    .iter()
                    .map(|h| entry_msg(id, &snapshot, *h, &req.attrs, req.typesonly))
                    .collect();
                let mut end = if more {
                    done(LdapResultCode::SizeLimitExceeded, "size limit exceeded")
                } else {
                    done(LdapResultCode::Success, "")
                };
                end.ctrl = response_controls;
                msgs.push(end);
                msgs
            }
        }
    }

    /// Sends the next `size` hits of cursor `index`; drops the cursor when it is exhausted.
    fn page(&mut self, id: i32, index: usize, size: i64, limited: bool) -> Vec<LdapMsg> {
        let cursor = &mut self.cursors[index];
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(usize::MAX);
        let end = cursor.next.saturating_add(size).min(cursor.hits.len());
        let mut msgs: Vec<LdapMsg> = cursor.hits[cursor.next..end]
            .iter()
            .map(|h| entry_msg(id, &cursor.snapshot, *h, &cursor.attrs, cursor.types_only))
            .collect();
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
        msgs.push(done);
        msgs
    }

    fn next_page(&mut self, id: i32, size: i64, cookie: &[u8]) -> Vec<LdapMsg> {
        let Some(index) = self.cursors.iter().position(|c| c.cookie == cookie) else {
            return vec![result(
                id,
                Kind::Search,
                LdapResultCode::UnwillingToPerform,
                "unknown or expired paged results cookie",
            )];
        };
        if size == 0 {
            // RFC 2696 §3: a size of zero abandons the paged search.
            self.cursors.remove(index);
            let mut done = result(id, Kind::Search, LdapResultCode::Success, "");
            done.ctrl.push(LdapControl::SimplePagedResults {
                size: 0,
                cookie: Vec::new(),
            });
            return vec![done];
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

    fn extended(&mut self, id: i32, req: LdapExtendedRequest) -> Reply {
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
                Reply::send(vec![respond(
                    LdapResultCode::Success,
                    "",
                    None,
                    Some(authz.into_bytes()),
                )])
            }
            OID_STARTTLS if self.tls => Reply::send(vec![respond(
                LdapResultCode::OperationsError,
                "TLS is already active",
                None,
                None,
            )]),
            OID_STARTTLS if !self.policy.starttls => Reply::send(vec![respond(
                LdapResultCode::Unavailable,
                "StartTLS is not configured",
                None,
                None,
            )]),
            OID_STARTTLS => Reply {
                msgs: vec![respond(
                    LdapResultCode::Success,
                    "",
                    Some(OID_STARTTLS.to_owned()),
                    None,
                )],
                action: Action::StartTls,
            },
            other => Reply::send(vec![respond(
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
            Ok(node) if node.eval(snapshot.entry(entry)) == Tri::True => {
                done(LdapResultCode::CompareTrue, "")
            }
            Ok(_) => done(LdapResultCode::CompareFalse, ""),
            Err(e) => done(LdapResultCode::UnwillingToPerform, &e.to_string()),
        }
    }
}

/// Orders hits by the first sort key the server knows (RFC 2891); the container stays first.
fn sort_hits(snapshot: &Snapshot, hits: &mut [Hit], keys: &[ServerSortRequet]) -> ServerSortResult {
    let Some((key, attr)) = keys.iter().find_map(|k| match resolve(&k.attribute_name) {
        Resolved::Served(attr) if attr != Attr::ObjectClass => Some((k, attr)),
        _ => None,
    }) else {
        return ServerSortResult {
            result_code: LdapResultCode::NoSuchAttribute,
            attribute_type: keys.first().map(|k| k.attribute_name.clone()),
        };
    };
    let sort_key = |h: &Hit| -> (u8, String) {
        match h {
            Hit::Container => (0, String::new()),
            Hit::Entry(id) => match snapshot.entry(*id).values(attr).first() {
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

/// A search result entry with the requested attributes.
fn entry_msg(
    id: i32,
    snapshot: &Snapshot,
    hit: Hit,
    attrs: &[String],
    types_only: bool,
) -> LdapMsg {
    let wanted = |name: &str, attr: Attr| -> bool {
        if attrs.is_empty() || attrs.iter().any(|a| a == "*") {
            return true;
        }
        attrs.iter().any(|a| {
            a.eq_ignore_ascii_case(name)
                || (!SERVED.iter().any(|(n, _)| n.eq_ignore_ascii_case(a))
                    && resolve(a) == Resolved::Served(attr))
        })
    };
    let pack = |atype: &str, vals: Vec<String>| LdapPartialAttribute {
        atype: atype.to_owned(),
        vals: if types_only {
            Vec::new()
        } else {
            vals.into_iter().map(String::into_bytes).collect()
        },
    };
    let (dn, attributes) = match hit {
        Hit::Container => {
            let c = snapshot.container();
            let mut attributes = Vec::new();
            if wanted("objectClass", Attr::ObjectClass) {
                attributes.push(pack(
                    "objectClass",
                    c.object_classes.iter().map(|s| (*s).to_owned()).collect(),
                ));
            }
            if attrs.is_empty()
                || attrs
                    .iter()
                    .any(|a| a == "*" || a.eq_ignore_ascii_case(&c.rdn.0))
            {
                attributes.push(pack(&c.rdn.0, vec![c.rdn.1.clone()]));
            }
            (c.dn.clone(), attributes)
        }
        Hit::Entry(entry) => {
            let e = snapshot.entry(entry);
            let attributes = SERVED
                .iter()
                .filter(|(name, attr)| wanted(name, *attr))
                .filter_map(|(name, attr)| {
                    let vals = e.values(*attr);
                    (!vals.is_empty()).then(|| pack(name, vals))
                })
                .collect();
            (e.dn.clone(), attributes)
        }
    };
    LdapMsg {
        msgid: id,
        op: LdapOp::SearchResultEntry(LdapSearchResultEntry { dn, attributes }),
        ctrl: Vec::new(),
    }
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

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
