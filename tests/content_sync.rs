//! RFC 4533 content synchronization against a real slapd with the syncprov overlay: what the
//! upstream sends, read by `sync::content_sync` (the reader delta sync is built on). The
//! client is the ldap3 crate with a raw Sync Request control, so the bytes come from slapd
//! exactly as a sync would receive them.

mod support;

use std::collections::BTreeMap;

use ldap3::asn1::PL;
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, Scope, SearchEntry};
use phonebook_proxy::config::Config;
use phonebook_proxy::sync::content_sync::{
    self, Mode, State, SyncInfo, SYNC_DONE_OID, SYNC_REQUEST_OID, SYNC_STATE_OID,
};
use phonebook_proxy::sync::source::{self, SourceError};
use support::cli::ldap_config;
use support::gen::{people_ldif, GenOptions};
use support::slapd::{Slapd, PEOPLE_DN};

/// What one refresh answered: each entry's state and attributes by DN, the intermediate
/// messages, and the cookie of the Sync Done control.
#[derive(Debug, Default)]
struct Refresh {
    entries: BTreeMap<String, (State, String, Vec<String>)>,
    infos: Vec<SyncInfo>,
    cookie: Option<Vec<u8>>,
}

async fn refresh(ldap: &mut Ldap, cookie: Option<&[u8]>) -> Refresh {
    let control = RawControl {
        ctype: SYNC_REQUEST_OID.to_owned(),
        crit: true,
        val: Some(content_sync::request(Mode::RefreshOnly, cookie, false)),
    };
    // A streaming search without adapters: `search` would drop the intermediate messages.
    let mut stream = ldap
        .with_controls(vec![control])
        .streaming_search(
            PEOPLE_DN,
            Scope::Subtree,
            "(objectClass=inetOrgPerson)",
            vec!["cn", "entryUUID"],
        )
        .await
        .expect("the sync search");
    let mut results = Vec::new();
    while let Some(result) = stream.next().await.expect("the sync search's answers") {
        results.push(result);
    }
    let done = stream
        .finish()
        .await
        .success()
        .expect("the sync search succeeds");
    let mut out = Refresh::default();
    for result in results {
        if result.is_intermediate() {
            // IntermediateResponse ::= [APPLICATION 25] SEQUENCE { [0] name, [1] value }
            let PL::C(parts) = result.0.payload else {
                panic!("an intermediate response without parts");
            };
            for part in parts {
                if let (1, PL::P(value)) = (part.id, part.payload) {
                    out.infos
                        .push(content_sync::sync_info(&value, 10_000).expect("Sync Info"));
                }
            }
            continue;
        }
        let state = result
            .1
            .iter()
            .find(|c| c.1.ctype == SYNC_STATE_OID)
            .and_then(|c| c.1.val.as_deref())
            .map(|v| content_sync::sync_state(v).expect("Sync State"))
            .expect("every entry of a sync search has a Sync State control");
        let entry = SearchEntry::construct(result);
        let uuid = content_sync::uuid_text(&state.entry_uuid);
        let cn = entry.attrs.get("cn").cloned().unwrap_or_default();
        if let Some(written) = entry.attrs.get("entryUUID") {
            assert_eq!(
                written,
                std::slice::from_ref(&uuid),
                "the control names the entry's own UUID"
            );
        }
        out.entries.insert(entry.dn, (state.state, uuid, cn));
    }
    out.cookie = done
        .ctrls
        .iter()
        .find(|c| c.1.ctype == SYNC_DONE_OID)
        .and_then(|c| c.1.val.as_deref())
        .map(|v| content_sync::sync_done(v).expect("Sync Done"))
        .and_then(|d| d.cookie);
    out
}

#[test]
fn a_refresh_reads_every_entry_with_its_uuid_and_the_next_one_only_what_changed() {
    let (ldif, _) = people_ldif(&GenOptions {
        n: 30,
        seed: 7,
        with_memberof: true,
    });
    let slapd = Slapd::builder()
        .syncprov(true)
        .ldif(ldif)
        .start()
        .expect("slapd with syncprov");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (conn, mut ldap) = LdapConnAsync::new(&slapd.url()).await.expect("connect");
        ldap3::drive!(conn);

        // No cookie: every entry arrives as an add, with attributes and its UUID.
        let first = refresh(&mut ldap, None).await;
        assert!(first.entries.len() >= 25, "{first:?}");
        assert!(
            first
                .entries
                .values()
                .all(|(s, _, cn)| *s == State::Add && !cn.is_empty()),
            "{first:?}"
        );
        let cookie = first.cookie.clone().expect("a cookie after the refresh");

        // One change upstream: the next refresh from that cookie sends it with its new
        // values; the unchanged entries are not sent again (at most as "present", without
        // attributes).
        let (dn, (_, uuid, _)) = first.entries.iter().next().unwrap();
        slapd
            .ldapmodify(&format!(
                "dn: {dn}\nchangetype: modify\nreplace: cn\ncn: Changed Name\n"
            ))
            .expect("ldapmodify");
        let second = refresh(&mut ldap, Some(&cookie)).await;
        let (state, second_uuid, cn) = &second.entries[dn];
        assert!(matches!(state, State::Add | State::Modify), "{second:?}");
        assert_eq!(
            (second_uuid, cn.as_slice()),
            (uuid, &["Changed Name".to_owned()][..])
        );
        for (other, (state, _, cn)) in &second.entries {
            if other != dn {
                assert!(
                    *state == State::Present && cn.is_empty(),
                    "{other} was sent again: {state:?} {cn:?}"
                );
            }
        }
        assert_ne!(second.cookie.as_deref(), Some(&cookie[..]), "a new cookie");

        // A deletion upstream: the next refresh says the entry is gone — as a delete state,
        // a set of deleted UUIDs, or a present phase that leaves it out.
        let cookie = second
            .cookie
            .clone()
            .expect("a cookie after the second refresh");
        slapd.delete(dn).expect("ldapdelete");
        let third = refresh(&mut ldap, Some(&cookie)).await;
        let deleted: Vec<String> = third
            .infos
            .iter()
            .flat_map(|info| match info {
                SyncInfo::SyncIdSet {
                    refresh_deletes: true,
                    uuids,
                    ..
                } => uuids.iter().map(content_sync::uuid_text).collect(),
                _ => Vec::new(),
            })
            .collect();
        let present_phase = third.entries.values().any(|(s, _, _)| *s == State::Present);
        assert!(
            deleted.contains(uuid) || (present_phase && !third.entries.contains_key(dn)),
            "the deletion was not reported: {third:?}"
        );
        assert!(third.cookie.is_some(), "a cookie after the third refresh");
        let _ = ldap.unbind().await;
    });
}

/// `sync::source::pull_changes`, the pull delta sync is built on, against the same slapd: a
/// first refresh brings everyone, the next only a change and a deletion; a cookie slapd does
/// not know asks for a full run; an upstream without syncprov says it has no content sync.
#[test]
fn pull_changes_reads_a_refresh_a_change_and_a_deletion() {
    let (ldif, _) = people_ldif(&GenOptions {
        n: 30,
        seed: 8,
        with_memberof: true,
    });
    let slapd = Slapd::builder()
        .syncprov(true)
        .ldif(ldif.clone())
        .start()
        .expect("slapd with syncprov");
    let config = Config::parse(&ldap_config("corp", &slapd.url(), "")).expect("config");
    let connector = &config.connectors[0];
    let attrs = vec!["cn".to_owned(), "entryUUID".to_owned()];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let first = source::pull_changes(connector, &attrs, None)
            .await
            .expect("first refresh");
        assert!(first.changed.len() >= 25, "{first:?}");
        assert!(
            first.deleted.is_empty() && !first.present_phase,
            "{first:?}"
        );
        for (uuid, raw) in &first.changed {
            assert_eq!(
                raw.values("entryuuid"),
                Some(&[phonebook_proxy::sync::content_sync::uuid_text(uuid)][..]),
                "{}",
                raw.dn
            );
        }
        let cookie = first.cookie.clone().expect("a cookie");

        let (changed_uuid, changed) = &first.changed[0];
        let (deleted_uuid, deleted) = &first.changed[1];
        slapd
            .ldapmodify(&format!(
                "dn: {}\nchangetype: modify\nreplace: cn\ncn: Renamed Person\n",
                changed.dn
            ))
            .expect("ldapmodify");
        slapd.delete(&deleted.dn).expect("ldapdelete");
        let second = source::pull_changes(connector, &attrs, Some(&cookie))
            .await
            .expect("second refresh");
        let changed_now: Vec<_> = second.changed.iter().map(|(u, _)| *u).collect();
        assert_eq!(changed_now, [*changed_uuid], "{second:?}");
        assert_eq!(
            second.changed[0].1.values("cn"),
            Some(&["Renamed Person".to_owned()][..])
        );
        let gone = second.deleted.contains(deleted_uuid)
            || (second.present_phase && !second.present.contains(deleted_uuid));
        assert!(gone, "the deletion was not reported: {second:?}");
        assert_ne!(second.cookie, Some(cookie), "a new cookie");

        // A cookie of another replica: slapd asks for a full refresh (or answers one).
        match source::pull_changes(
            connector,
            &attrs,
            Some(b"rid=000,csn=19700101000000.000000Z#000000#000#000000"),
        )
        .await
        {
            Err(SourceError::CookieRejected { .. }) => {}
            Ok(delta) => assert!(
                delta.changed.len() >= 25 || delta.present_phase,
                "{delta:?}"
            ),
            Err(e) => panic!("an old cookie: {e}"),
        }
    });

    // Without syncprov the critical control is refused: the error says what to do.
    let plain = Slapd::builder()
        .ldif(ldif)
        .start()
        .expect("slapd without syncprov");
    let config = Config::parse(&ldap_config("corp", &plain.url(), "")).expect("config");
    let err = runtime
        .block_on(source::pull_changes(&config.connectors[0], &attrs, None))
        .expect_err("no content sync");
    assert!(
        err.to_string().contains("does not offer content sync"),
        "{err}"
    );
}
