use super::*;
use crate::directory::fold::Accents;
use crate::directory::Settings;
use crate::directory::Snapshot;
use crate::model::Entry;
use crate::numbers::NumberPlan;

/// The book the session tests and the encoder tests answer from.
pub(crate) fn snapshot() -> Arc<Snapshot> {
    Arc::new(book())
}

fn book() -> Snapshot {
    let plan = NumberPlan::default();
    let mut a = Entry::new("corp", "1", "Jürgen Müller");
    a.first_name = Some("Jürgen".into());
    a.last_name = Some("Müller".into());
    a.company = Some("Example GmbH".into());
    a.business.push(plan.phone("+49 (89) 1234-567"));
    a.business.push(plan.phone("089 7654321"));
    a.mobile.push(plan.phone("0170 1234567"));
    a.notes = Some("n".repeat(300));
    let b = Entry::new("corp", "2", "Zoë");
    let c = Entry::new("corp", "3", &"a long name ".repeat(30));
    let settings = Settings::new("ou=phonebook,dc=example,dc=com", Accents::Fold, plan);
    Snapshot::build(vec![a, b, c], 1, settings)
}

#[test]
fn each_search_gets_its_own_attribute_list_on_one_connection() {
    let directory = Arc::new(Directory::new(book()));
    let policy = Arc::new(Policy {
        anonymous: true,
        users: Vec::new(),
        size_limit: 10,
        max_page_size: 1000,
        starttls: false,
    });
    let mut session = Session::new(directory, policy, false);
    let mut search = |attrs: &[&str]| -> Vec<Vec<String>> {
        let msg = LdapMsg {
            msgid: 2,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: "uid=corp.1,ou=phonebook,dc=example,dc=com".into(),
                scope: LdapSearchScope::Base,
                aliases: ldap3_proto::proto::LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: crate::filter::parse("(objectClass=*)").unwrap(),
                attrs: attrs.iter().map(|a| (*a).to_owned()).collect(),
            }),
            ctrl: Vec::new(),
        };
        session
            .handle(msg)
            .msgs
            .into_iter()
            .filter_map(|m| match m.op {
                LdapOp::SearchResultEntry(e) => {
                    Some(e.attributes.into_iter().map(|a| a.atype).collect())
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(search(&["cn"]), [["cn"]]);
    assert_eq!(search(&["cn"]), [["cn"]]);
    assert_eq!(search(&["mobile", "sn"]), [["sn", "mobile"]]);
    assert_eq!(search(&["cn"]), [["cn"]]);
}

#[test]
fn critical_paged_or_sort_controls_refuse_every_other_operation() {
    let directory = Arc::new(Directory::new(book()));
    let policy = Arc::new(Policy {
        anonymous: true,
        users: Vec::new(),
        size_limit: 10,
        max_page_size: 1000,
        starttls: false,
    });
    let mut session = Session::new(directory, policy, false);
    let bind = || {
        LdapMsg::new(
            1,
            LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: String::new(),
                cred: LdapBindCred::Simple(String::new()),
            }),
        )
    };
    let sort = Critical {
        paged: false,
        sort: true,
    };
    let reply = session.handle_with(bind(), sort);
    assert!(matches!(
        &reply.msgs[..],
        [LdapMsg { op: LdapOp::BindResponse(r), .. }]
            if r.res.code == LdapResultCode::UnavailableCriticalExtension
    ));
    // An Unbind has no response: refusing it means not performing it.
    let unbind = || LdapMsg::new(2, LdapOp::UnbindRequest);
    let paged = Critical {
        paged: true,
        sort: false,
    };
    let reply = session.handle_with(unbind(), paged);
    assert!(reply.msgs.is_empty());
    assert_eq!(reply.action, Action::Continue);
    // Not critical, both are simply performed.
    let reply = session.handle(bind());
    assert!(matches!(
        &reply.msgs[..],
        [LdapMsg { op: LdapOp::BindResponse(r), .. }] if r.res.code == LdapResultCode::Success
    ));
    assert_eq!(session.handle(unbind()).action, Action::Close);
}

/// What one operation should answer.
#[derive(Debug)]
enum Want {
    /// The last message's result code, after `entries` search result entries.
    Code(usize, LdapResultCode),
    /// Nothing is sent, and the connection goes on (Abandon).
    Nothing,
    /// Nothing is sent and the connection closes (Unbind).
    Close,
    /// The StartTLS response, then the upgrade.
    StartTls,
}

const BASE: &str = "ou=phonebook,dc=example,dc=com";
const PHONE: &str = "cn=phone,dc=example,dc=com";

fn session(anonymous: bool, starttls: bool, tls: bool) -> Session {
    let policy = Policy {
        anonymous,
        users: vec![(normalise_dn(PHONE), Secret::new("pw"))],
        size_limit: 2,
        max_page_size: 1000,
        starttls,
    };
    Session::new(Arc::new(Directory::new(book())), Arc::new(policy), tls)
}

fn bind(dn: &str, password: &str) -> LdapOp {
    LdapOp::BindRequest(LdapBindRequest {
        version: 3,
        dn: dn.into(),
        cred: LdapBindCred::Simple(password.into()),
    })
}

fn search(base: &str, scope: LdapSearchScope, filter: &str, sizelimit: i32) -> LdapOp {
    LdapOp::SearchRequest(LdapSearchRequest {
        base: base.into(),
        scope,
        aliases: ldap3_proto::proto::LdapDerefAliases::Never,
        sizelimit,
        timelimit: 0,
        typesonly: false,
        filter: crate::filter::parse(filter).unwrap(),
        attrs: Vec::new(),
    })
}

fn extended(name: &str) -> LdapOp {
    LdapOp::ExtendedRequest(LdapExtendedRequest {
        name: name.into(),
        value: None,
    })
}

fn compare(dn: &str, atype: &str, val: &str) -> LdapOp {
    LdapOp::CompareRequest(LdapCompareRequest {
        dn: dn.into(),
        atype: atype.into(),
        val: val.as_bytes().to_vec(),
    })
}

/// Operations sent one after another on one connection, each with its controls.
type Ops = Vec<(LdapOp, Vec<LdapControl>)>;

/// Runs `ops` on one session; checks what the last one answered.
fn check(name: &str, mut s: Session, ops: Ops, want: Want) {
    let mut reply = None;
    for (i, (op, ctrl)) in ops.into_iter().enumerate() {
        let msg = LdapMsg {
            msgid: i as i32 + 1,
            op,
            ctrl,
        };
        reply = Some(s.handle(msg));
    }
    let reply = reply.expect("at least one operation");
    let entries = reply
        .msgs
        .iter()
        .filter(|m| matches!(m.op, LdapOp::SearchResultEntry(_)))
        .count();
    let code = reply.msgs.last().and_then(|m| match &m.op {
        LdapOp::BindResponse(r) => Some(r.res.code.clone()),
        LdapOp::SearchResultDone(r)
        | LdapOp::CompareResult(r)
        | LdapOp::ModifyResponse(r)
        | LdapOp::AddResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r) => Some(r.code.clone()),
        LdapOp::ExtendedResponse(r) => Some(r.res.code.clone()),
        _ => None,
    });
    match want {
        Want::Code(n, c) => {
            assert_eq!((entries, code), (n, Some(c)), "{name}: {:?}", reply.msgs);
            assert_eq!(reply.action, Action::Continue, "{name}");
        }
        Want::Nothing => {
            assert!(reply.msgs.is_empty(), "{name}: {:?}", reply.msgs);
            assert_eq!(reply.action, Action::Continue, "{name}");
        }
        Want::Close => {
            assert!(reply.msgs.is_empty(), "{name}: {:?}", reply.msgs);
            assert_eq!(reply.action, Action::Close, "{name}");
        }
        Want::StartTls => {
            assert_eq!(code, Some(LdapResultCode::Success), "{name}");
            assert_eq!(reply.action, Action::StartTls, "{name}");
        }
    }
}

/// Every operation and control a client may send, answered without a socket. The socket
/// side (framing, TLS, limits, real phones) is tested through the binary in tests/ldap*.rs.
#[test]
fn every_operation_and_control_answers_as_specified() {
    use LdapResultCode as C;
    use LdapSearchScope::{Base, Subtree};
    let entry = "uid=corp.2,ou=phonebook,dc=example,dc=com";
    let op = |op: LdapOp| (op, Vec::new());
    let paged = |size: i64, cookie: Vec<u8>| vec![LdapControl::SimplePagedResults { size, cookie }];
    let sorted = vec![LdapControl::ServerSort {
        sort_requests: vec![ldap3_proto::control::ServerSortRequet {
            attribute_name: "cn".into(),
            ordering_rule: None,
            reverse_order: true,
        }],
    }];
    let unknown = vec![LdapControl::Unknown {
        oid: "1.2.3.4".into(),
        criticality: true,
        value: None,
    }];
    let cases: Vec<(&str, Session, Ops, Want)> = vec![
        (
            "anonymous bind",
            session(true, false, false),
            vec![op(bind("", ""))],
            Want::Code(0, C::Success),
        ),
        (
            "anonymous bind refused",
            session(false, false, false),
            vec![op(bind("", ""))],
            Want::Code(0, C::InappropriateAuthentication),
        ),
        (
            "bind as a phone",
            session(false, false, false),
            vec![op(bind(PHONE, "pw"))],
            Want::Code(0, C::Success),
        ),
        (
            "bind with a wrong password",
            session(true, false, false),
            vec![op(bind(PHONE, "nope"))],
            Want::Code(0, C::InvalidCredentials),
        ),
        (
            "bind as nobody known",
            session(true, false, false),
            vec![op(bind("cn=x,dc=y", "pw"))],
            Want::Code(0, C::InvalidCredentials),
        ),
        (
            "one entry by its DN",
            session(true, false, false),
            vec![op(search(entry, Base, "(objectClass=*)", 0))],
            Want::Code(1, C::Success),
        ),
        (
            "a name folded",
            session(true, false, false),
            vec![op(search(BASE, Subtree, "(cn=jurgen*)", 0))],
            Want::Code(1, C::Success),
        ),
        (
            "a number in another notation",
            session(true, false, false),
            vec![op(search(
                BASE,
                Subtree,
                "(telephoneNumber=+49891234567)",
                0,
            ))],
            Want::Code(1, C::Success),
        ),
        (
            "the size limit",
            session(true, false, false),
            vec![op(search(BASE, Subtree, "(objectClass=*)", 0))],
            Want::Code(2, C::SizeLimitExceeded),
        ),
        (
            "a smaller client size limit",
            session(true, false, false),
            vec![op(search(BASE, Subtree, "(cn=*)", 1))],
            Want::Code(1, C::SizeLimitExceeded),
        ),
        (
            "outside the base",
            session(true, false, false),
            vec![op(search(
                "ou=other,dc=example,dc=com",
                Subtree,
                "(cn=*)",
                0,
            ))],
            Want::Code(0, C::NoSuchObject),
        ),
        (
            "search before a bind when anonymous is off",
            session(false, false, false),
            vec![op(search(BASE, Subtree, "(cn=*)", 0))],
            Want::Code(0, C::InsufficentAccessRights),
        ),
        (
            "search after a bind when anonymous is off",
            session(false, false, false),
            vec![
                op(bind(PHONE, "pw")),
                op(search(entry, Base, "(objectClass=*)", 0)),
            ],
            Want::Code(1, C::Success),
        ),
        (
            "a failed bind drops an earlier one",
            session(false, false, false),
            vec![
                op(bind(PHONE, "pw")),
                op(bind(PHONE, "nope")),
                op(search(entry, Base, "(objectClass=*)", 0)),
            ],
            Want::Code(0, C::InsufficentAccessRights),
        ),
        (
            "the root DSE, even before a bind",
            session(false, false, false),
            vec![op(search("", Base, "(objectClass=*)", 0))],
            Want::Code(1, C::Success),
        ),
        (
            "a paged search's first page",
            session(true, false, false),
            vec![(search(BASE, Subtree, "(cn=*)", 0), paged(1, Vec::new()))],
            Want::Code(1, C::Success),
        ),
        (
            "a paging cookie nobody issued",
            session(true, false, false),
            vec![(
                search(BASE, Subtree, "(cn=*)", 0),
                paged(1, b"forged".to_vec()),
            )],
            Want::Code(0, C::UnwillingToPerform),
        ),
        (
            "a sorted search",
            session(true, false, false),
            vec![(search(BASE, Subtree, "(objectClass=*)", 0), sorted.clone())],
            Want::Code(2, C::SizeLimitExceeded),
        ),
        (
            "compare true",
            session(true, false, false),
            vec![op(compare(entry, "cn", "zoë"))],
            Want::Code(0, C::CompareTrue),
        ),
        (
            "compare false",
            session(true, false, false),
            vec![op(compare(entry, "cn", "anna"))],
            Want::Code(0, C::CompareFalse),
        ),
        (
            "compare on an unknown entry",
            session(true, false, false),
            vec![op(compare(
                "uid=corp.9,ou=phonebook,dc=example,dc=com",
                "cn",
                "x",
            ))],
            Want::Code(0, C::NoSuchObject),
        ),
        (
            "compare before a bind when anonymous is off",
            session(false, false, false),
            vec![op(compare(entry, "cn", "zoë"))],
            Want::Code(0, C::InsufficentAccessRights),
        ),
        (
            "who am I",
            session(true, false, false),
            vec![op(bind(PHONE, "pw")), op(extended(OID_WHOAMI))],
            Want::Code(0, C::Success),
        ),
        (
            "StartTLS offered",
            session(true, true, false),
            vec![op(extended(OID_STARTTLS))],
            Want::StartTls,
        ),
        (
            "StartTLS not configured",
            session(true, false, false),
            vec![op(extended(OID_STARTTLS))],
            Want::Code(0, C::Unavailable),
        ),
        (
            "StartTLS twice",
            session(true, true, true),
            vec![op(extended(OID_STARTTLS))],
            Want::Code(0, C::OperationsError),
        ),
        (
            "an unknown extended operation",
            session(true, false, false),
            vec![op(extended("1.2.3.4"))],
            Want::Code(0, C::ProtocolError),
        ),
        (
            "modify: read-only",
            session(true, false, false),
            vec![op(LdapOp::ModifyRequest(
                ldap3_proto::proto::LdapModifyRequest {
                    dn: entry.into(),
                    changes: Vec::new(),
                },
            ))],
            Want::Code(0, C::UnwillingToPerform),
        ),
        (
            "add: read-only",
            session(true, false, false),
            vec![op(LdapOp::AddRequest(ldap3_proto::proto::LdapAddRequest {
                dn: entry.into(),
                attributes: Vec::new(),
            }))],
            Want::Code(0, C::UnwillingToPerform),
        ),
        (
            "delete: read-only",
            session(true, false, false),
            vec![op(LdapOp::DelRequest(entry.into()))],
            Want::Code(0, C::UnwillingToPerform),
        ),
        (
            "abandon",
            session(true, false, false),
            vec![op(LdapOp::AbandonRequest(1))],
            Want::Nothing,
        ),
        (
            "unbind",
            session(true, false, false),
            vec![op(LdapOp::UnbindRequest)],
            Want::Close,
        ),
        (
            "a critical unknown control on a search",
            session(true, false, false),
            vec![(search(entry, Base, "(objectClass=*)", 0), unknown.clone())],
            Want::Code(0, C::UnavailableCriticalExtension),
        ),
        (
            "an unknown control that is not critical is ignored",
            session(true, false, false),
            vec![(
                search(entry, Base, "(objectClass=*)", 0),
                vec![LdapControl::Unknown {
                    oid: "1.2.3.4".into(),
                    criticality: false,
                    value: None,
                }],
            )],
            Want::Code(1, C::Success),
        ),
        (
            "a critical unknown control on a bind",
            session(true, false, false),
            vec![(bind(PHONE, "pw"), unknown.clone())],
            Want::Code(0, C::UnavailableCriticalExtension),
        ),
        (
            "a critical unknown control on a compare",
            session(true, false, false),
            vec![(compare(entry, "cn", "zoë"), unknown.clone())],
            Want::Code(0, C::UnavailableCriticalExtension),
        ),
        (
            "a critical unknown control on an unbind: not performed, no answer",
            session(true, false, false),
            vec![(LdapOp::UnbindRequest, unknown.clone())],
            Want::Nothing,
        ),
        (
            "a critical sync request (RFC 4533) is not supported",
            session(true, false, false),
            vec![(
                search(BASE, Subtree, "(cn=*)", 0),
                vec![LdapControl::SyncRequest {
                    criticality: true,
                    mode: ldap3_proto::proto::SyncRequestMode::RefreshOnly,
                    cookie: None,
                    reload_hint: false,
                }],
            )],
            Want::Code(0, C::UnavailableCriticalExtension),
        ),
    ];
    let count = cases.len();
    for (name, s, ops, want) in cases {
        check(name, s, ops, want);
    }
    assert_eq!(count, 38);
}

/// One page of `(cn=*)` of at most `size` entries: its DNs, the cookie it returned, its code.
fn page(
    s: &mut Session,
    id: i32,
    size: i64,
    cookie: Vec<u8>,
) -> (Vec<String>, Vec<u8>, LdapResultCode) {
    let reply = s.handle(LdapMsg {
        msgid: id,
        op: search(BASE, LdapSearchScope::Subtree, "(cn=*)", 0),
        ctrl: vec![LdapControl::SimplePagedResults { size, cookie }],
    });
    let mut dns = Vec::new();
    let mut done = None;
    for msg in reply.msgs {
        match msg.op {
            LdapOp::SearchResultEntry(e) => dns.push(e.dn),
            LdapOp::SearchResultDone(r) => {
                let cookie = msg.ctrl.iter().find_map(|c| match c {
                    LdapControl::SimplePagedResults { cookie, .. } => Some(cookie.clone()),
                    _ => None,
                });
                done = Some((cookie.unwrap_or_default(), r.code));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (cookie, code) = done.expect("a SearchResultDone");
    (dns, cookie, code)
}

/// RFC 2696 through the session: the cookie walks every hit exactly once, past the server's
/// size limit and across a sync that empties the book; size 0 abandons; at most four paged
/// searches stay open per connection.
#[test]
fn paging_walks_every_hit_once_by_its_cookie_even_across_a_sync() {
    let directory = Arc::new(Directory::new(book()));
    let policy = Policy {
        anonymous: true,
        users: Vec::new(),
        size_limit: 2,
        max_page_size: 1000,
        starttls: false,
    };
    let mut s = Session::new(directory.clone(), Arc::new(policy), false);

    let (mut seen, mut cookie, code) = page(&mut s, 1, 1, Vec::new());
    assert_eq!((seen.len(), code), (1, LdapResultCode::Success));
    assert!(!cookie.is_empty());
    // A sync publishes a book without these people: the search goes on over its own snapshot.
    let settings = Settings::new(BASE, Accents::Fold, NumberPlan::default());
    directory.publish(Snapshot::build(Vec::new(), 2, settings));
    let mut id = 1;
    while !cookie.is_empty() {
        id += 1;
        let (dns, next, code) = page(&mut s, id, 1, cookie.clone());
        assert_eq!((dns.len(), code), (1, LdapResultCode::Success), "page {id}");
        seen.extend(dns);
        cookie = next;
        assert!(id < 10, "the cookie never ran out");
    }
    let mut distinct = seen.clone();
    distinct.sort();
    distinct.dedup();
    // Three people, more than the size limit of 2: paging is bound only by the page size.
    assert_eq!((seen.len(), distinct.len()), (3, 3), "{seen:?}");
    // The new book is what a new search sees.
    assert_eq!(page(&mut s, 20, 1, Vec::new()).0.len(), 0);

    // Size 0 abandons a search; its cookie is unknown afterwards.
    directory.publish(book());
    let (_, open, _) = page(&mut s, 30, 1, Vec::new());
    let (dns, none, code) = page(&mut s, 31, 0, open.clone());
    assert_eq!(
        (dns.len(), none.len(), code),
        (0, 0, LdapResultCode::Success)
    );
    assert_eq!(
        page(&mut s, 32, 1, open).2,
        LdapResultCode::UnwillingToPerform
    );

    // A fifth open search drops the oldest.
    let cookies: Vec<Vec<u8>> = (0..5)
        .map(|i| page(&mut s, 40 + i, 1, Vec::new()).1)
        .collect();
    assert_eq!(
        page(&mut s, 50, 1, cookies[0].clone()).2,
        LdapResultCode::UnwillingToPerform
    );
    for (i, cookie) in cookies.iter().enumerate().skip(1) {
        let (dns, _, code) = page(&mut s, 51 + i as i32, 1, cookie.clone());
        assert_eq!(
            (dns.len(), code),
            (1, LdapResultCode::Success),
            "search {i}"
        );
    }
}
