use super::*;
use crate::config::Accents;
use crate::directory::Settings;
use crate::ldap::encode::SLICE;
use crate::model::Entry;
use crate::numbers::NumberPlan;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Encoder;

fn snapshot() -> Arc<Snapshot> {
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
fn results_encode_exactly_as_the_codec_encodes_them() {
    let long = "m".repeat(300);
    for id in [0, 1, 128, 65535, i32::MAX] {
        for code in [
            LdapResultCode::Success,
            LdapResultCode::SizeLimitExceeded,
            LdapResultCode::NoSuchObject,
            LdapResultCode::UnwillingToPerform,
        ] {
            for (matched, message) in [
                ("", ""),
                ("ou=phonebook,dc=example,dc=com", "x"),
                ("", long.as_str()),
            ] {
                let mut msg = result(id, Kind::Search, code.clone(), message);
                if let LdapOp::SearchResultDone(res) = &mut msg.op {
                    res.matcheddn = matched.to_owned();
                }
                let mut fast = BytesMut::new();
                assert!(encode_result(&msg, &mut fast));
                let mut slow = BytesMut::new();
                ldap3_proto::LdapCodec::new(None, None)
                    .encode(msg, &mut slow)
                    .unwrap();
                assert_eq!(fast, slow, "{id} {code:?} {message}");
            }
        }
    }
    let mut paged = result(1, Kind::Search, LdapResultCode::Success, "");
    paged.ctrl.push(LdapControl::SimplePagedResults {
        size: 0,
        cookie: Vec::new(),
    });
    assert!(!encode_result(&paged, &mut BytesMut::new()));
    let bind = result(1, Kind::Bind, LdapResultCode::Success, "");
    assert!(!encode_result(&bind, &mut BytesMut::new()));
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

#[test]
fn a_large_reply_encoded_in_slices_is_the_same_bytes() {
    let snapshot = snapshot();
    let hits: Vec<Hit> = (0..200).map(|i| Hit::Entry(i % 3)).collect();
    let entries = Entries {
        id: 7,
        snapshot,
        hits,
        selection: Arc::new(Selection::new(Vec::new(), false)),
    };
    let mut whole = BytesMut::new();
    entries.encode(&mut whole);
    // A limit of one byte stops after every slice; the server flushes in between.
    let (mut sliced, mut next, mut calls) = (BytesMut::new(), 0, 0);
    while next < entries.len() {
        let mut out = BytesMut::new();
        let after = entries.encode_from(next, 1, &mut out);
        assert_eq!(after - next, SLICE.min(entries.len() - next));
        sliced.extend_from_slice(&out);
        next = after;
        calls += 1;
    }
    assert_eq!(calls, 200_usize.div_ceil(SLICE));
    assert_eq!(sliced, whole);
}

#[test]
fn entries_encode_exactly_as_the_codec_encodes_their_messages() {
    let snapshot = snapshot();
    let hits: Vec<Hit> = std::iter::once(Hit::Container)
        .chain((0..snapshot.len() as u32).map(Hit::Entry))
        .collect();
    let lists: [&[&str]; 5] = [
        &[],
        &["*"],
        &[
            "cn",
            "TELEPHONENUMBER",
            "surname",
            "shoeSize",
            "description",
        ],
        &["1.1"],
        &["ou", "objectClass"],
    ];
    for attrs in lists {
        for types_only in [false, true] {
            for id in [0, 1, 127, 128, 255, 256, 32767, 32768, 65535, i32::MAX] {
                let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
                let entries = Entries {
                    id,
                    snapshot: snapshot.clone(),
                    hits: hits.clone(),
                    selection: Arc::new(Selection::new(attrs.clone(), types_only)),
                };
                let mut fast = BytesMut::new();
                entries.encode(&mut fast);
                let mut slow = BytesMut::new();
                let mut codec = ldap3_proto::LdapCodec::new(None, None);
                for msg in entries.msgs() {
                    codec.encode(msg, &mut slow).unwrap();
                }
                assert_eq!(fast, slow, "{attrs:?} types_only={types_only} id={id}");
            }
        }
    }
}
