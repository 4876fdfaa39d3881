//! What a session answers with: plain messages, and search result entries left as
//! references into the snapshot until [`wire::encode`](super::wire::encode) writes them.
//! [`result`] is the one place an operation's outcome becomes an LDAP result message.

use std::sync::Arc;

use ldap3_proto::proto::{
    LdapBindResponse, LdapExtendedResponse, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult,
    LdapResultCode, LdapSearchResultEntry,
};

use super::selection::{attributes, Selection};
use crate::directory::{Hit, Snapshot};

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
    pub(crate) fn send(msgs: Vec<LdapMsg>) -> Self {
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
}

/// The response type that answers a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Bind,
    Search,
    Modify,
    Add,
    Delete,
    ModifyDn,
    Compare,
    Extended,
}

pub(crate) fn response_kind(op: &LdapOp) -> Option<Kind> {
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
pub(crate) fn result(id: i32, kind: Kind, code: LdapResultCode, message: &str) -> LdapMsg {
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
