//! Raw bytes from a client → the server's codec → `Session::respond_with` (with the
//! criticality the codec read) → the response encoders, exactly the path a phone's bytes take
//! through the LDAP server (minus the socket). Nothing here may panic.
//!
//! Every message the codec yields is also checked against ldap3_proto's own codec on the
//! same bytes: the codec's fast path for search requests (`ldap::wire::decode`) must decode
//! exactly what ldap3_proto decodes, and consume exactly as many bytes.
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

use phonebook_proxy::directory::fold::Accents;
use phonebook_proxy::secret::Secret;
use phonebook_proxy::directory::{Directory, Settings, Snapshot};
use phonebook_proxy::ldap::wire::codec::{encode_into, Codec};
use phonebook_proxy::ldap::wire::encode::encode_result;
use phonebook_proxy::ldap::response::{Action, Part};
use phonebook_proxy::ldap::session::{Policy, Session};
use phonebook_proxy::model::Entry;
use phonebook_proxy::numbers::NumberPlan;

/// A small phone book with the shapes that matter: accents, several numbers, no numbers.
fn directory() -> Arc<Directory> {
    static DIRECTORY: OnceLock<Arc<Directory>> = OnceLock::new();
    DIRECTORY
        .get_or_init(|| {
            // A company block, so extensions are in the keys a fuzzed filter meets.
            let plan = NumberPlan {
                outside_prefix: "0".into(),
                extensions: vec![phonebook_proxy::numbers::ExtensionBlock {
                    prefix: "49891234".into(),
                    digits: 3,
                }],
                ..NumberPlan::default()
            };
            let mut people = Vec::new();
            for (i, (name, number)) in [
                ("Jürgen Müller", "+49 (89) 1234-567"),
                ("Anna Weiß", "089 7654321"),
                ("Ελένη Παπαδοπούλου", "+30 21 0123 4567"),
                ("王伟", ""),
                ("Bert O'Brien", "(555) 010-2030 ext. 12"),
            ]
            .into_iter()
            .enumerate()
            {
                let mut e = Entry::new("fuzz", &i.to_string(), name);
                e.last_name = name.split_whitespace().last().map(str::to_owned);
                if !number.is_empty() {
                    e.business.push(plan.phone(number));
                    e.mobile.push(plan.phone("0170 1234567"));
                }
                people.push(e);
            }
            // Served dialable, so the number formats are exercised too.
            let mut settings = Settings::new("ou=phonebook,dc=example,dc=com", Accents::Fold, plan);
            settings.number_format = phonebook_proxy::numbers::NumberFormat::Dialable;
            Arc::new(Directory::new(Snapshot::build(people, 1, settings)))
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let policy = Arc::new(Policy {
        anonymous: data.first().is_some_and(|b| b & 1 == 0),
        users: vec![("cn=phones,dc=example,dc=com".into(), Secret::new("pw"))],
        size_limit: 3,
        starttls: true,
        // Small, so paging past a page cap is reached with the tiny test directory.
        max_page_size: 2,
    });
    let mut session = Session::new(directory(), policy, false);
    let mut codec = Codec::new(64 * 1024);
    let mut reference = ldap3_proto::LdapCodec::new(Some(64 * 1024), None);
    let mut buf = BytesMut::from(data);
    // Decode as the server does: message after message until the codec needs more bytes
    // or refuses the stream (which closes the connection).
    loop {
        let mut reference_buf = buf.clone();
        let Ok(Some(msg)) = codec.decode(&mut buf) else {
            break;
        };
        let expected = reference.decode(&mut reference_buf);
        assert_eq!(
            expected.ok().flatten().as_ref(),
            Some(&msg),
            "the codec differs from ldap3_proto"
        );
        assert_eq!(
            buf, reference_buf,
            "the codec consumed a different number of bytes"
        );
        let response = session.respond_with(msg, codec.critical());
        // Encoded as the server writes it: search results from the snapshot, a plain
        // SearchResultDone directly, everything else through ldap3_proto's codec.
        let mut out = BytesMut::new();
        for part in response.parts {
            match part {
                Part::Entries(entries) => entries.encode(&mut out),
                Part::Msg(msg) => {
                    if !encode_result(&msg, &mut out) {
                        encode_into(msg, &mut out).expect("ldap3_proto encodes every answer");
                    }
                }
            }
        }
        if response.action == Action::Close {
            break;
        }
    }
});
