use super::*;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapMatchingRuleAssertion};
use ldap3_proto::LdapCodec;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

fn encode(msg: LdapMsg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    LdapCodec::default().encode(msg, &mut buf).unwrap();
    buf.to_vec()
}

/// ldap3_proto's decode of `bytes`, and how many bytes it left in the buffer.
fn reference(bytes: &[u8]) -> (Result<Option<LdapMsg>, String>, usize) {
    let mut buf = BytesMut::from(bytes);
    let result = LdapCodec::new(Some(1 << 20), None)
        .decode(&mut buf)
        .map_err(|e| e.to_string());
    (result, buf.len())
}

/// The rule: whenever the fast path answers, ldap3_proto answers the same for the same
/// bytes (and consumes all of them). Returns whether the fast path answered.
fn agrees(bytes: &[u8]) -> bool {
    let Some(fast) = search_request(bytes) else {
        return false;
    };
    let (slow, left) = reference(bytes);
    assert_eq!(slow, Ok(Some(fast)), "bytes {bytes:02x?}");
    assert_eq!(left, 0, "bytes {bytes:02x?}");
    true
}

/// A phone's search for `filter` (shared with the codec's tests).
pub(crate) fn search(msgid: i32, filter: LdapFilter) -> LdapMsg {
    LdapMsg::new(
        msgid,
        LdapOp::SearchRequest(LdapSearchRequest {
            base: "ou=phonebook,dc=example,dc=com".into(),
            scope: LdapSearchScope::Subtree,
            aliases: LdapDerefAliases::Never,
            sizelimit: 50,
            timelimit: 10,
            typesonly: false,
            filter,
            attrs: vec!["cn".into(), "telephoneNumber".into()],
        }),
    )
}

fn long(n: usize) -> String {
    "Müller-".chars().cycle().take(n).collect()
}

fn values() -> Vec<String> {
    vec![
        String::new(),
        "a".into(),
        "Müller".into(),
        "王伟 Ελένη".into(),
        long(130),
        long(300),
    ]
}

/// Every filter leaf kind, with each value shape; substrings in every combination of
/// initial / any / final.
fn leaves() -> Vec<LdapFilter> {
    let mut out = Vec::new();
    for v in values() {
        out.push(LdapFilter::Equality("sn".into(), v.clone()));
        out.push(LdapFilter::GreaterOrEqual("sn".into(), v.clone()));
        out.push(LdapFilter::LessOrEqual("telephoneNumber".into(), v.clone()));
        out.push(LdapFilter::Approx("cn".into(), v.clone()));
        out.push(LdapFilter::Equality(v.clone(), "x".into()));
        if !v.is_empty() {
            out.push(LdapFilter::Present(v.clone()));
        }
        for initial in [None, Some(v.clone())] {
            for any in [
                vec![],
                vec![v.clone()],
                vec!["b".into(), v.clone(), "c".into()],
            ] {
                for final_ in [None, Some(v.clone())] {
                    out.push(LdapFilter::Substring(
                        "cn".into(),
                        LdapSubstringFilter {
                            initial: initial.clone(),
                            any: any.clone(),
                            final_,
                        },
                    ));
                }
            }
        }
    }
    out.push(LdapFilter::Present("objectClass".into()));
    out.push(LdapFilter::Present(String::new()));
    out
}

fn filters() -> Vec<LdapFilter> {
    let leaves = leaves();
    let mut out = leaves.clone();
    out.push(LdapFilter::And(vec![]));
    out.push(LdapFilter::Or(vec![]));
    for pair in leaves.chunks(3) {
        out.push(LdapFilter::And(pair.to_vec()));
        out.push(LdapFilter::Or(pair.to_vec()));
        out.push(LdapFilter::Not(Box::new(pair[0].clone())));
    }
    // What phones send: (|(cn=*x*)(sn=x*)(telephoneNumber=*123*)) inside an and.
    out.push(LdapFilter::And(vec![
        LdapFilter::Present("objectClass".into()),
        LdapFilter::Or(vec![
            LdapFilter::Substring("cn".into(), LdapSubstringFilter::from("*Mül*")),
            LdapFilter::Substring("sn".into(), LdapSubstringFilter::from("Mül*")),
            LdapFilter::Not(Box::new(LdapFilter::Not(Box::new(LdapFilter::Equality(
                "ou".into(),
                "Straße".into(),
            ))))),
            LdapFilter::And(vec![LdapFilter::Or(vec![LdapFilter::And(vec![])])]),
        ]),
    ]));
    // Big enough that the whole message needs a three-octet length.
    out.push(LdapFilter::Or(leaves.iter().take(200).cloned().collect()));
    out
}

#[test]
fn searches_decode_as_ldap3_proto_decodes_them() {
    let bases = [
        "".to_string(),
        "dc=example,dc=com".into(),
        "cn=Jürgen Müller,ou=Straße".into(),
        long(200),
        long(400),
    ];
    let scopes = [
        LdapSearchScope::Base,
        LdapSearchScope::OneLevel,
        LdapSearchScope::Subtree,
        LdapSearchScope::Children,
    ];
    let derefs = [
        LdapDerefAliases::Never,
        LdapDerefAliases::InSearching,
        LdapDerefAliases::FindingBaseObj,
        LdapDerefAliases::Always,
    ];
    let numbers = [
        0,
        1,
        127,
        128,
        255,
        256,
        32767,
        32768,
        65535,
        65536,
        0x7f_ffff,
        0x80_0000,
        i32::MAX,
    ];
    let attr_lists: Vec<Vec<String>> = vec![
        vec![],
        vec!["cn".into()],
        vec!["*".into(), "+".into(), "1.1".into()],
        vec![
            "cn".into(),
            "sn".into(),
            "telephoneNumber".into(),
            "mobile".into(),
            "Ünïcödé".into(),
        ],
        (0..60).map(|i| format!("attribute{i}")).collect(),
    ];
    let filters = filters();
    let mut count = 0;
    for (i, filter) in filters.iter().enumerate() {
        // Every filter with a rotating choice of everything else, plus a sweep of every
        // other field with a fixed filter.
        for j in 0..3 {
            let k = i * 3 + j;
            let msg = LdapMsg::new(
                numbers[k % numbers.len()].max(1),
                LdapOp::SearchRequest(LdapSearchRequest {
                    base: bases[k % bases.len()].clone(),
                    scope: scopes[k % scopes.len()].clone(),
                    aliases: derefs[(k / 4) % derefs.len()].clone(),
                    sizelimit: numbers[(k / 3) % numbers.len()],
                    timelimit: numbers[(k / 7) % numbers.len()],
                    typesonly: k % 2 == 1,
                    filter: filter.clone(),
                    attrs: attr_lists[(k / 2) % attr_lists.len()].clone(),
                }),
            );
            let bytes = encode(msg.clone());
            assert!(agrees(&bytes), "not decoded: {msg:?}");
            assert_eq!(search_request(&bytes), Some(msg));
            count += 1;
        }
    }
    for base in &bases {
        for scope in &scopes {
            for aliases in &derefs {
                for (n, &number) in numbers.iter().enumerate() {
                    for attrs in &attr_lists {
                        let msg = LdapMsg::new(
                            numbers[(n + 3) % numbers.len()].max(1),
                            LdapOp::SearchRequest(LdapSearchRequest {
                                base: base.clone(),
                                scope: scope.clone(),
                                aliases: aliases.clone(),
                                sizelimit: number,
                                timelimit: numbers[numbers.len() - 1 - n],
                                typesonly: n % 2 == 0,
                                filter: LdapFilter::Present("objectClass".into()),
                                attrs: attrs.clone(),
                            }),
                        );
                        let bytes = encode(msg.clone());
                        assert!(agrees(&bytes), "not decoded: {msg:?}");
                        assert_eq!(search_request(&bytes), Some(msg));
                        count += 1;
                    }
                }
            }
        }
    }
    for &msgid in &numbers {
        let bytes = encode(search(msgid, LdapFilter::Present("cn".into())));
        assert!(agrees(&bytes));
    }
    assert!(count > 1000, "{count}");
}

#[test]
fn filters_nest_up_to_the_limit() {
    let nest = |depth: usize| {
        let mut f = LdapFilter::Equality("cn".into(), "x".into());
        for i in 1..depth {
            f = match i % 3 {
                0 => LdapFilter::Not(Box::new(f)),
                1 => LdapFilter::And(vec![f]),
                _ => LdapFilter::Or(vec![LdapFilter::Present("sn".into()), f]),
            };
        }
        f
    };
    let bytes = encode(search(7, nest(limits::DECODED_FILTER_DEPTH)));
    assert!(agrees(&bytes));
    // Deeper goes to ldap3_proto, whatever it makes of it.
    for depth in [limits::DECODED_FILTER_DEPTH + 1, 127, 128, 200] {
        let bytes = encode(search(7, nest(depth)));
        assert_eq!(search_request(&bytes), None, "depth {depth}");
    }
}

#[test]
fn other_messages_fall_back() {
    let paged = LdapMsg::new_with_ctrls(
        3,
        search(3, LdapFilter::Present("cn".into())).op,
        vec![LdapControl::SimplePagedResults {
            size: 100,
            cookie: vec![],
        }],
    );
    let bind = LdapMsg::new(
        1,
        LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: "cn=phones,dc=example,dc=com".into(),
            cred: LdapBindCred::Simple("pw".into()),
        }),
    );
    let extensible = search(
        4,
        LdapFilter::Extensible(LdapMatchingRuleAssertion {
            matching_rule: Some("caseIgnoreMatch".into()),
            type_: Some("cn".into()),
            match_value: "x".into(),
            dn_attributes: false,
        }),
    );
    let extensible_inside = search(
        5,
        LdapFilter::And(vec![LdapFilter::Present("cn".into()), extensible_filter()]),
    );
    let negative = |sizelimit: i32| {
        let mut msg = search(6, LdapFilter::Present("cn".into()));
        if let LdapOp::SearchRequest(s) = &mut msg.op {
            s.sizelimit = sizelimit;
        }
        msg
    };
    for msg in [
        paged,
        bind,
        LdapMsg::new(2, LdapOp::UnbindRequest),
        LdapMsg::new(2, LdapOp::AbandonRequest(1)),
        LdapMsg::new(2, LdapOp::DelRequest("cn=x".into())),
        extensible,
        extensible_inside,
        negative(-1),
        negative(i32::MIN),
        search(-5, LdapFilter::Present("cn".into())),
    ] {
        let bytes = encode(msg.clone());
        assert_eq!(search_request(&bytes), None, "{msg:?}");
        // ... and the codec still answers as ldap3_proto does.
        let mut buf = BytesMut::from(&bytes[..]);
        let ours = super::super::codec::Codec::new(1 << 20)
            .decode(&mut buf)
            .map_err(|e| e.to_string());
        assert_eq!((ours, buf.len()), reference(&bytes), "{msg:?}");
    }
}

fn extensible_filter() -> LdapFilter {
    LdapFilter::Extensible(LdapMatchingRuleAssertion {
        matching_rule: None,
        type_: Some("cn".into()),
        match_value: "x".into(),
        dn_attributes: true,
    })
}

/// A TLV with the shortest length encoding.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | octets.len() as u8);
        out.extend(octets);
    }
    out.extend_from_slice(content);
    out
}

/// A search request from raw parts: msgid content, the request's elements, and what
/// follows the request inside the message.
fn raw(msgid: &[u8], elements: &[Vec<u8>], after: &[u8]) -> Vec<u8> {
    let mut body = tlv(INTEGER, msgid);
    body.extend(tlv(SEARCH_REQUEST, &elements.concat()));
    body.extend_from_slice(after);
    tlv(SEQUENCE, &body)
}

fn plain_elements(filter: Vec<u8>) -> Vec<Vec<u8>> {
    vec![
        tlv(OCTET_STRING, b"dc=example"),
        tlv(ENUMERATED, &[2]),
        tlv(ENUMERATED, &[0]),
        tlv(INTEGER, &[5]),
        tlv(INTEGER, &[0]),
        tlv(BOOLEAN, &[0]),
        filter,
        tlv(SEQUENCE, &tlv(OCTET_STRING, b"cn")),
    ]
}

fn present() -> Vec<u8> {
    tlv(FILTER_PRESENT, b"cn")
}

#[test]
fn the_hand_built_baseline_decodes() {
    assert!(agrees(&raw(&[1], &plain_elements(present()), &[])));
    // A long-form length where a short one would do reads the same in both.
    let mut bytes = raw(&[1], &plain_elements(present()), &[]);
    // 30 len 02 01 01 63 len 04 0a "dc=example" → 04 81 0a ...
    let at = bytes.iter().position(|b| *b == OCTET_STRING).unwrap();
    bytes.insert(at + 1, 0x81);
    bytes[1] += 1;
    bytes[6] += 1;
    assert!(agrees(&bytes));
    // A true other than 0xff.
    let mut elements = plain_elements(present());
    elements[5] = tlv(BOOLEAN, &[0x01]);
    assert!(agrees(&raw(&[1], &elements, &[])));
}

/// Shapes ldap3_proto reads leniently, or refuses: the fast path leaves them all to it.
#[test]
fn lenient_or_odd_shapes_fall_back() {
    let eq = |a: &[u8], v: &[u8]| {
        tlv(
            FILTER_EQUALITY,
            &[tlv(OCTET_STRING, a), tlv(OCTET_STRING, v)].concat(),
        )
    };
    let substrings = |parts: &[Vec<u8>]| {
        tlv(
            FILTER_SUBSTRINGS,
            &[tlv(OCTET_STRING, b"cn"), tlv(SEQUENCE, &parts.concat())].concat(),
        )
    };
    let with = |index: usize, element: Vec<u8>| {
        let mut elements = plain_elements(present());
        elements[index] = element;
        raw(&[1], &elements, &[])
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "msgid with a leading zero",
            raw(&[0, 5], &plain_elements(present()), &[]),
        ),
        ("msgid empty", raw(&[], &plain_elements(present()), &[])),
        (
            "msgid negative",
            raw(&[0xff], &plain_elements(present()), &[]),
        ),
        (
            "msgid five octets",
            raw(&[0, 0x80, 0, 0, 0], &plain_elements(present()), &[]),
        ),
        (
            "controls",
            raw(&[1], &plain_elements(present()), &tlv(0xa0, &[])),
        ),
        (
            "junk after the request",
            raw(&[1], &plain_elements(present()), &[0x04, 0x00]),
        ),
        (
            "half an element after the request",
            raw(&[1], &plain_elements(present()), &[0x04, 0x05]),
        ),
        ("scope as an integer", with(1, tlv(INTEGER, &[2]))),
        ("scope 4", with(1, tlv(ENUMERATED, &[4]))),
        ("scope two octets", with(1, tlv(ENUMERATED, &[0, 2]))),
        ("deref 9", with(2, tlv(ENUMERATED, &[9]))),
        ("sizelimit 0xff", with(3, tlv(INTEGER, &[0xff]))),
        ("timelimit empty", with(4, tlv(INTEGER, &[]))),
        ("boolean two octets", with(5, tlv(BOOLEAN, &[0, 0]))),
        ("boolean empty", with(5, tlv(BOOLEAN, &[]))),
        ("base not UTF-8", with(0, tlv(OCTET_STRING, &[0xc3, 0x28]))),
        (
            "base constructed",
            with(0, tlv(0x24, &tlv(OCTET_STRING, b"x"))),
        ),
        (
            "attribute not UTF-8",
            with(7, tlv(SEQUENCE, &tlv(OCTET_STRING, &[0xff]))),
        ),
        ("attribute list as a set", with(7, tlv(0x31, &[]))),
        (
            "attribute list trailing half",
            with(7, tlv(SEQUENCE, &[0x04, 0x03, b'c'])),
        ),
        ("value not UTF-8", with(6, eq(b"cn", &[0x80]))),
        (
            "value as an INTEGER",
            with(
                6,
                tlv(
                    FILTER_EQUALITY,
                    &[tlv(OCTET_STRING, b"cn"), tlv(INTEGER, &[1])].concat(),
                ),
            ),
        ),
        (
            "assertion with a third element",
            with(
                6,
                tlv(
                    FILTER_EQUALITY,
                    &[
                        tlv(OCTET_STRING, b"cn"),
                        tlv(OCTET_STRING, b"x"),
                        tlv(OCTET_STRING, b"y"),
                    ]
                    .concat(),
                ),
            ),
        ),
        (
            "assertion with one element",
            with(6, tlv(FILTER_EQUALITY, &tlv(OCTET_STRING, b"cn"))),
        ),
        (
            "present constructed",
            with(6, tlv(0xa7, &tlv(OCTET_STRING, b"cn"))),
        ),
        ("equality primitive", with(6, tlv(0x83, b"cn"))),
        (
            "not with two filters",
            with(6, tlv(FILTER_NOT, &[present(), present()].concat())),
        ),
        ("not empty", with(6, tlv(FILTER_NOT, &[]))),
        (
            "and with trailing half",
            with(
                6,
                tlv(FILTER_AND, &[present(), vec![0x87, 0x05, b'c']].concat()),
            ),
        ),
        (
            "extensible",
            with(6, tlv(0xa9, &[tlv(0x82, b"cn"), tlv(0x83, b"x")].concat())),
        ),
        ("unknown filter", with(6, tlv(0xaa, &[]))),
        ("long-form tag", with(6, tlv(0xbf, &[]))),
        (
            "substring initial not first",
            with(6, substrings(&[tlv(0x81, b"a"), tlv(0x80, b"b")])),
        ),
        (
            "substring final not last",
            with(6, substrings(&[tlv(0x82, b"a"), tlv(0x81, b"b")])),
        ),
        (
            "substring two initials",
            with(6, substrings(&[tlv(0x80, b"a"), tlv(0x80, b"b")])),
        ),
        (
            "substring part universal",
            with(6, substrings(&[tlv(0x00, b"a")])),
        ),
        (
            "substring part application",
            with(6, substrings(&[tlv(0x41, b"a")])),
        ),
        (
            "substring part not UTF-8",
            with(6, substrings(&[tlv(0x81, &[0xfe])])),
        ),
        (
            "substring part 0x83",
            with(6, substrings(&[tlv(0x83, b"a")])),
        ),
        (
            "substring extra element",
            with(
                6,
                tlv(
                    FILTER_SUBSTRINGS,
                    &[
                        tlv(OCTET_STRING, b"cn"),
                        tlv(SEQUENCE, &[]),
                        tlv(OCTET_STRING, b"x"),
                    ]
                    .concat(),
                ),
            ),
        ),
        (
            "nine elements",
            raw(
                &[1],
                &[plain_elements(present()), vec![tlv(OCTET_STRING, b"x")]].concat(),
                &[],
            ),
        ),
        (
            "seven elements",
            raw(&[1], &plain_elements(present())[..7], &[]),
        ),
        ("indefinite length", {
            let mut elements = plain_elements(present());
            elements[0] = vec![OCTET_STRING, 0x80];
            raw(&[1], &elements, &[])
        }),
        ("five length octets", {
            let mut elements = plain_elements(present());
            elements[0] = vec![OCTET_STRING, 0x85, 0, 0, 0, 0, 1, b'x'];
            raw(&[1], &elements, &[])
        }),
    ];
    for (what, bytes) in cases {
        assert_eq!(search_request(&bytes), None, "{what}: {bytes:02x?}");
    }
    // And a few of them ldap3_proto does accept (so falling back matters).
    for bytes in [
        raw(&[0, 5], &plain_elements(present()), &[]),
        raw(&[1], &plain_elements(present()), &[0x04, 0x05]),
        with(6, substrings(&[tlv(0x00, b"a")])),
    ] {
        assert!(matches!(reference(&bytes).0, Ok(Some(_))), "{bytes:02x?}");
    }
}

fn samples() -> Vec<Vec<u8>> {
    let f = filters();
    vec![
        encode(search(1, LdapFilter::Present("objectClass".into()))),
        encode(search(300, f[f.len() - 2].clone())),
        encode(search(
            i32::MAX,
            LdapFilter::Or(vec![
                LdapFilter::Substring(
                    "cn".into(),
                    LdapSubstringFilter {
                        initial: Some("Mü".into()),
                        any: vec!["l".into(), long(140)],
                        final_: Some("r".into()),
                    },
                ),
                LdapFilter::Not(Box::new(LdapFilter::Approx("sn".into(), "x".into()))),
                LdapFilter::And(vec![
                    LdapFilter::GreaterOrEqual("a".into(), "1".into()),
                    LdapFilter::LessOrEqual("a".into(), "9".into()),
                ]),
            ]),
        )),
    ]
}

#[test]
fn truncations_never_panic_nor_disagree() {
    for bytes in samples() {
        assert!(agrees(&bytes));
        for n in 0..bytes.len() {
            assert!(!agrees(&bytes[..n]), "a prefix of {n} bytes");
            // The same prefix with the outer length patched to fit: inner lengths no
            // longer add up.
            let header = if bytes[1] < 0x80 {
                2
            } else {
                2 + usize::from(bytes[1] & 0x7f)
            };
            if let Some(inner) = bytes[..n].get(header..) {
                assert!(!agrees(&tlv(SEQUENCE, inner)), "{n} bytes, patched");
            }
        }
    }
}

#[test]
fn corruptions_never_panic_nor_disagree() {
    for bytes in samples() {
        let mut decoded = 0;
        for at in 0..bytes.len() {
            for value in 0..=255u8 {
                let mut corrupt = bytes.clone();
                corrupt[at] = value;
                decoded += usize::from(agrees(&corrupt));
            }
        }
        // Changed content octets (names, values, limits) still decode.
        assert!(decoded > bytes.len(), "{decoded}");
    }
}

/// The fuzzer's corpus (client byte streams), message by message.
#[test]
fn the_fuzz_corpus_agrees() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ldap_session");
    // The corpus is in the repository: without it this test would pass having read nothing.
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let (mut messages, mut fast) = (0, 0);
    for entry in entries {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let mut buf = BytesMut::from(&data[..]);
        let mut codec = LdapCodec::new(Some(64 * 1024), None);
        loop {
            let whole = match (buf.first(), buf.get(1)) {
                (Some(0x30), Some(&l)) if l < 0x80 => buf.get(..2 + usize::from(l)),
                (Some(0x30), Some(&l)) if (0x81..=0x84).contains(&l) => {
                    let count = usize::from(l & 0x7f);
                    buf.get(2..2 + count).and_then(|o| {
                        let len = o.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
                        buf.get(..2 + count + len)
                    })
                }
                _ => None,
            };
            let whole = whole.map(<[u8]>::to_vec);
            let fast_result = whole.as_deref().and_then(search_request);
            let Ok(Some(slow)) = codec.decode(&mut buf) else {
                assert_eq!(fast_result, None);
                break;
            };
            messages += 1;
            if let Some(f) = fast_result {
                assert_eq!(f, slow);
                fast += 1;
            } else if matches!(slow.op, LdapOp::SearchRequest(_)) && slow.ctrl.is_empty() {
                // Only odd encodings of a plain search are left to ldap3_proto, never
                // its own.
                assert_ne!(whole, Some(encode(slow.clone())), "{slow:?}");
            }
        }
    }
    assert!(messages > 0, "the corpus held no LDAP message");
    assert!(fast > 0, "{messages} messages, none decoded here");
}
