use std::sync::Arc;

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::LdapResultCode;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Encoder;

use super::*;
use crate::ldap::response::{result, Kind};
use crate::ldap::selection::Selection;
use crate::ldap::session::tests::snapshot;

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
