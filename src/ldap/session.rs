//! One LDAP connection's state and semantics, with no socket and no BER: [`Session::handle`]
//! takes a decoded message and returns the messages to send back, so every behaviour a phone
//! relies on is testable as plain function calls (`session/tests.rs`). The server calls
//! [`Session::respond_with`], the same answer with the search result entries left as references
//! into the snapshot ([`Response`]), which `wire::encode` writes straight to BER — no
//! `LdapMsg` per entry, no copy of a value.
//!
//! The session owns what lives as long as a connection: who is bound, whether TLS is on, the
//! paged searches in progress ([`Cursors`]) and the last attribute selection.

use std::sync::Arc;

use ldap3_proto::control::{LdapControl, ServerSortResult};
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapCompareRequest, LdapExtendedRequest, LdapMsg, LdapOp,
    LdapPartialAttribute, LdapResultCode, LdapSearchRequest, LdapSearchResultEntry,
    LdapSearchScope,
};

use crate::config::LdapConfig;
use crate::directory::matcher::Tri;
use crate::directory::schema::{resolve, Resolved};
use crate::directory::{BaseRef, Directory, Scope};
use crate::filter::LdapFilter;
use crate::model::normalise_dn;
use crate::secret::Secret;

use super::controls::{
    critical_unsupported, Critical, OID_PAGED_RESULTS, OID_SERVER_SORT, OID_STARTTLS, OID_WHOAMI,
};
use super::paging::Cursors;
use super::response::{response_kind, result, Action, Entries, Kind, Part, Reply, Response};
use super::selection::Selection;
use super::sort::{sort_hits, sort_key};

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

/// The state of one connection.
pub struct Session {
    directory: Arc<Directory>,
    policy: Arc<Policy>,
    bound: Option<String>,
    tls: bool,
    cursors: Cursors,
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
            cursors: Cursors::default(),
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
        let reply = |code, message: &str| result(id, Kind::Bind, code, message);
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
                let max = self.policy.max_page_size;
                return self.cursors.next_page(id, *size, cookie, max);
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
                let entries = Entries {
                    id,
                    snapshot,
                    hits,
                    selection,
                };
                let max = self.policy.max_page_size;
                let mut parts = self.cursors.first_page(entries, size, more, max);
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
        let respond = |code, message: &str, name: Option<String>, value: Option<Vec<u8>>| {
            let mut msg = result(id, Kind::Extended, code, message);
            if let LdapOp::ExtendedResponse(r) = &mut msg.op {
                r.name = name;
                r.value = value;
            }
            msg
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

#[cfg(test)]
pub(crate) mod tests;
