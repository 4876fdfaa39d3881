//! Integration tests of the LDAP endpoint: the real binary's `serve`, answering from a store
//! that `sync` filled from a real slapd, queried by two independent clients — OpenLDAP's
//! `ldapsearch` (and the other ldap-utils tools) and the `ldap3` crate's async API — plus raw
//! TCP sockets for the robustness checks, and a second slapd holding the exported book for the
//! comparison with OpenLDAP.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ldap3::controls::{Control, ControlType, PagedResults, RawControl};
use ldap3::exop::{WhoAmI, WhoAmIResp};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry, SearchOptions};

use support::ber::{
    self, OID_PAGED, OID_SORT, OID_SORT_RESPONSE, SEARCH_RESULT_DONE, SEARCH_RESULT_ENTRY,
};
use support::certs::{write_test_certs, TestCerts};
use support::cli::{ldap_config, Workspace};
use support::gen::{person_ldif, PEOPLE_OU};
use support::server::Server;
use support::slapd::{self, run_tool, Bind, CliOutput, Slapd, CLI_TIMEOUT};

// ---------------------------------------------------------------------------------------------
// The phone book: hand-written people with umlauts, Greek, CJK, many number notations, and
// people without numbers. Upstream `pager` is mapped to the served `ipPhone` (slapd's standard
// schema has no ipPhone).

const ANNA: &str = "Anna Müller-Lüdenscheidt";
const BERT: &str = "Bert Meier";
const EMPFANG: &str = "Empfang München";
const JUERGEN: &str = "Jürgen Müller";
const MARIA: &str = "María Martínez";
const MAX: &str = "Max Mustermann";
const MIA: &str = "Mia Maier";
const OTTO: &str = "Otto Normalverbraucher";
const SOREN: &str = "Søren Ødegård";
const ZOE: &str = "Zoë Weiß";
const ELENI: &str = "Ελένη Παπαδοπούλου";
const WANG: &str = "王伟";

type Person = (&'static str, &'static [(&'static str, &'static str)]);

/// `(uid, upstream attributes)`; `cn` is the display name.
const PEOPLE: &[Person] = &[
    (
        "juergen",
        &[
            ("cn", JUERGEN),
            ("givenName", "Jürgen"),
            ("sn", "Müller"),
            ("o", "Bäckerei Weiß GmbH"),
            ("telephoneNumber", "+49 (89) 1234-567"),
            ("mobile", "0170 1234567"),
        ],
    ),
    (
        "anna",
        &[
            ("cn", ANNA),
            ("givenName", "Anna"),
            ("sn", "Müller-Lüdenscheidt"),
            ("telephoneNumber", "089 7654321"),
            ("pager", "4711"),
        ],
    ),
    (
        "empfang",
        &[
            // The switchboard's cordless handset has the same number as Jürgen's desk.
            ("cn", EMPFANG),
            ("sn", "Empfang"),
            ("o", "Bäckerei Weiß GmbH"),
            ("mobile", "+49 (89) 1234-567"),
        ],
    ),
    (
        "zoe",
        &[
            ("cn", ZOE),
            ("givenName", "Zoë"),
            ("sn", "Weiß"),
            ("telephoneNumber", "0049 30 12345678"),
            ("mobile", "+49 (0)151 2345678"),
        ],
    ),
    (
        "eleni",
        &[
            ("cn", ELENI),
            ("givenName", "Ελένη"),
            ("sn", "Παπαδοπούλου"),
            ("telephoneNumber", "+30 21 0987 6543"),
        ],
    ),
    (
        "wang",
        &[
            ("cn", WANG),
            ("givenName", "伟"),
            ("sn", "王"),
            ("telephoneNumber", "+86 10 8765 4321"),
        ],
    ),
    (
        "bert",
        &[
            ("cn", BERT),
            ("givenName", "Bert"),
            ("sn", "Meier"),
            ("o", "Meier & Söhne KG"),
            ("telephoneNumber", "+1 (555) 010-2030"),
            ("homePhone", "(089) 555-0199"),
        ],
    ),
    (
        "maria",
        &[
            ("cn", MARIA),
            ("givenName", "María"),
            ("sn", "Martínez"),
            ("mobile", "+34 612 345 678"),
        ],
    ),
    (
        "max",
        &[("cn", MAX), ("givenName", "Max"), ("sn", "Mustermann")],
    ),
    ("otto", &[("cn", OTTO), ("sn", "Normalverbraucher")]),
    (
        "soren",
        &[
            ("cn", SOREN),
            ("givenName", "Søren"),
            ("sn", "Ødegård"),
            ("telephoneNumber", "+47 22 12 34 56"),
        ],
    ),
    (
        "mia",
        &[
            ("cn", MIA),
            ("givenName", "Mia"),
            ("sn", "Maier"),
            ("telephoneNumber", "030/555 12 34"),
            ("pager", "4712"),
        ],
    ),
];

/// Everyone, in the order every answer lists them: by display name, case- and accent-folded.
const EVERYONE: &[&str] = &[
    ANNA, BERT, EMPFANG, JUERGEN, MARIA, MAX, MIA, OTTO, SOREN, ZOE, ELENI, WANG,
];

const BASE: &str = "ou=phonebook,dc=example,dc=com";
const PERSON_FILTER: &str = "(objectClass=inetOrgPerson)";

fn dn_of(uid: &str) -> String {
    format!("uid=corp.{uid},{BASE}")
}

// ---------------------------------------------------------------------------------------------
// What phones send. `%` is what the user typed; the phone substitutes it and searches the
// subtree of the base DN (Gigaset then reads the chosen entry with a base search on its DN).

/// Where a phone search starts.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// The phone book, scope subtree.
    Book,
    /// One entry's DN (`uid=corp.<uid>,…`), scope base.
    Entry(&'static str),
}

/// A default or documented search of one phone family, with a typed value and the exact
/// answer (display names in order).
#[derive(Debug)]
struct PhoneSearch {
    family: &'static str,
    filter: &'static str,
    typed: &'static str,
    base: Base,
    expect: &'static [&'static str],
}

/// One filter per phone family, as the phones' documentation and defaults write them.
const PHONE_FAMILIES: &[PhoneSearch] = &[
    PhoneSearch {
        family: "Yealink name",
        filter: "(|(cn=%)(sn=%))",
        typed: "Müller",
        base: Base::Book,
        expect: &[JUERGEN],
    },
    PhoneSearch {
        family: "Yealink number",
        filter: "(|(telephoneNumber=%)(mobile=%)(ipPhone=%))",
        typed: "4711",
        base: Base::Book,
        expect: &[ANNA],
    },
    PhoneSearch {
        family: "Snom",
        filter: "(|(sn=%*)(cn=%*))",
        typed: "Mül",
        base: Base::Book,
        expect: &[ANNA, JUERGEN],
    },
    PhoneSearch {
        family: "Grandstream name",
        filter: "(&(cn=%*)(telephoneNumber=*))",
        typed: "M",
        base: Base::Book,
        expect: &[MIA],
    },
    PhoneSearch {
        family: "Grandstream number",
        filter: "(|(telephoneNumber=%*)(Mobile=%*))",
        typed: "0151",
        base: Base::Book,
        expect: &[ZOE],
    },
    PhoneSearch {
        family: "Cisco",
        filter: "(sn=%*)",
        typed: "mei",
        base: Base::Book,
        expect: &[BERT],
    },
    PhoneSearch {
        family: "Poly",
        filter: "(&(objectClass=*)(sn>=A)(sn<=zz)(sn=%*))",
        typed: "M",
        base: Base::Book,
        expect: &[ANNA, BERT, JUERGEN, MARIA, MAX, MIA],
    },
    PhoneSearch {
        family: "Gigaset (read the chosen entry)",
        filter: "(objectclass=*)",
        typed: "",
        base: Base::Entry("soren"),
        expect: &[SOREN],
    },
    PhoneSearch {
        family: "Fanvil",
        filter: "(|(cn=*%*)(telephoneNumber=*%*)(mobile=*%*))",
        typed: "555",
        base: Base::Book,
        expect: &[BERT, MIA],
    },
    PhoneSearch {
        family: "FreePBX superfecta",
        filter: "(|(telephoneNumber=*%)(mobile=*%))",
        typed: "1234567",
        base: Base::Book,
        expect: &[EMPFANG, JUERGEN],
    },
];

impl PhoneSearch {
    fn query(&self) -> Query {
        let filter = self.filter.replace('%', self.typed);
        match self.base {
            Base::Book => Query::sub(&filter),
            Base::Entry(uid) => Query {
                base: dn_of(uid),
                scope: Scope::Base,
                ..Query::sub(&filter)
            },
        }
    }
}

/// Matching rules beyond the phone defaults: accent folding, scripts, number notations,
/// filter types; `(filter, display names)` over the phone book's subtree.
const MATCHING: &[(&str, &[&str])] = &[
    ("(sn=muller)", &[JUERGEN]),
    ("(cn=*ludenscheidt*)", &[ANNA]),
    ("(cn=zoe weiss)", &[ZOE]),
    ("(sn=ODEGARD)", &[SOREN]),
    ("(givenName=maria)", &[MARIA]),
    ("(o=*weiss*)", &[EMPFANG, JUERGEN]),
    ("(cn=ελένη*)", &[ELENI]),
    ("(sn=ΠΑΠΑΔΟΠΟΥΛΟΥ)", &[ELENI]),
    ("(sn=王)", &[WANG]),
    ("(cn=*伟)", &[WANG]),
    ("(cn~=jurgen muller)", &[JUERGEN]),
    ("(telephoneNumber=*0891234567*)", &[JUERGEN]),
    ("(telephoneNumber=+49891234567)", &[JUERGEN]),
    ("(telephoneNumber=0049 89 1234567)", &[JUERGEN]),
    ("(mobile=089 1234-567)", &[EMPFANG]),
    ("(mobile=+491701234567)", &[JUERGEN]),
    ("(homePhone=+49 89 5550199)", &[BERT]),
    ("(telephoneNumber=+1 555 010 2030)", &[BERT]),
    ("(telephoneNumber=+4930*)", &[MIA, ZOE]),
    ("(ipPhone=4712)", &[MIA]),
    (
        "(&(objectClass=person)(!(telephoneNumber=*)))",
        &[EMPFANG, MARIA, MAX, OTTO],
    ),
    (
        "(&(objectClass=inetOrgPerson)(!(|(telephoneNumber=*)(mobile=*)(homePhone=*)(ipPhone=*))))",
        &[MAX, OTTO],
    ),
    ("(sn<=F)", &[EMPFANG]),
    ("(shoeSize=42)", &[]),
];

// ---------------------------------------------------------------------------------------------
// Fixture: sync the people into a workspace with the binary, then serve.

const CONNECTOR_EXTRA: &str = "id_attribute = \"uid\"\n\n[connector.fields]\nother = \"{pager}\"\n";

/// The configuration: one connector reading `upstream`, `[ldap]` on a free port plus `ldap`.
fn config(upstream: &str, ldap: &str) -> String {
    ldap_config(
        "corp",
        upstream,
        &format!(
            "{CONNECTOR_EXTRA}\n[ldap]\nlisten = \"127.0.0.1:0\"\nbase_dn = \"{BASE}\"\n{ldap}\n\n[http]\nlisten = \"127.0.0.1:0\"\n"
        ),
    )
}

fn people_ldif() -> String {
    let mut ldif = PEOPLE_OU.to_owned();
    for (uid, attrs) in PEOPLE {
        ldif.push_str(&person_ldif(uid, attrs));
    }
    ldif
}

/// A workspace whose store holds [`PEOPLE`], synced by the binary from a real slapd that is
/// gone again before anything is served: the endpoint answers from the store alone.
struct Book {
    ws: Workspace,
    upstream: String,
}

impl Book {
    fn new(ldap: &str) -> Book {
        let slapd = Slapd::builder()
            .ldif(people_ldif())
            .start()
            .expect("start slapd");
        let ws = Workspace::new(&config(&slapd.url(), ldap));
        let report = ws.sync(&[], 0);
        assert_eq!(report["created"], PEOPLE.len(), "{report}");
        assert_eq!(report["invalid"], 0, "{report}");
        Book {
            ws,
            upstream: slapd.url(),
        }
    }

    /// Replaces the `[ldap]` extras (same store).
    fn configure(&self, ldap: &str) {
        self.ws.write_config(&config(&self.upstream, ldap));
    }

    fn serve(&self) -> Server {
        Server::start(&self.ws)
    }
}

// ---------------------------------------------------------------------------------------------
// One search, asked through either client, and its answer.

#[derive(Debug, Clone)]
struct Query {
    base: String,
    scope: Scope,
    filter: String,
    attrs: Vec<String>,
    size_limit: i32,
    types_only: bool,
}

impl Query {
    /// A subtree search of the phone book for what a phone displays.
    fn sub(filter: &str) -> Query {
        Query {
            base: BASE.to_owned(),
            scope: Scope::Subtree,
            filter: filter.to_owned(),
            attrs: ["cn", "sn", "telephoneNumber", "mobile", "ipPhone"]
                .map(String::from)
                .to_vec(),
            size_limit: 0,
            types_only: false,
        }
    }

    fn attrs(mut self, attrs: &[&str]) -> Query {
        self.attrs = attrs.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    fn size_limit(mut self, n: i32) -> Query {
        self.size_limit = n;
        self
    }

    fn types_only(mut self) -> Query {
        self.types_only = true;
        self
    }

    /// The ldapsearch arguments (before any `-E` / `-e` extensions the caller adds).
    fn ldapsearch_args(&self) -> Vec<String> {
        let scope = match self.scope {
            Scope::Base => "base",
            Scope::OneLevel => "one",
            Scope::Subtree => "sub",
        };
        let mut args: Vec<String> = ["-b", &self.base, "-s", scope].map(String::from).to_vec();
        if self.size_limit > 0 {
            args.extend(["-z".to_owned(), self.size_limit.to_string()]);
        }
        if self.types_only {
            args.push("-A".into());
        }
        args.push(self.filter.clone());
        args.extend(self.attrs.iter().cloned());
        args
    }
}

/// An entry as a client received it: DN and attribute values by name, as the server named them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    dn: String,
    attrs: BTreeMap<String, Vec<String>>,
}

impl Found {
    fn names(&self) -> BTreeSet<String> {
        self.attrs.keys().map(|a| a.to_ascii_lowercase()).collect()
    }

    fn get(&self, attr: &str) -> Option<&[String]> {
        self.attrs
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(attr))
            .map(|(_, v)| v.as_slice())
    }

    /// The display name (`cn`), or the DN for an entry without one (the container).
    fn label(&self) -> String {
        self.get("cn")
            .and_then(|v| v.first().cloned())
            .unwrap_or_else(|| self.dn.clone())
    }
}

/// A search's result code and entries, in the order they arrived.
#[derive(Debug, Clone)]
struct Answer {
    rc: u32,
    entries: Vec<Found>,
}

impl Answer {
    fn labels(&self) -> Vec<String> {
        self.entries.iter().map(Found::label).collect()
    }

    fn dns(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .map(|e| e.dn.to_lowercase().replace(", ", ","))
            .collect()
    }
}

/// Parses `ldapsearch -LLL -o ldif-wrap=no` output (plain, base64 and typesOnly lines).
fn parse_ldif(out: &CliOutput) -> Vec<Found> {
    let mut entries = Vec::new();
    for block in out.stdout.split("\n\n") {
        let mut found: Option<Found> = None;
        for line in block
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (name, rest) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("not LDIF: {line:?} in\n{}", out.stdout));
            let value = match rest.strip_prefix(':') {
                Some(b64) => String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .expect("base64 value"),
                )
                .expect("UTF-8 value"),
                None => rest.strip_prefix(' ').unwrap_or(rest).to_owned(),
            };
            match found.as_mut() {
                None => {
                    assert_eq!(name, "dn", "an entry starts with its DN: {}", out.stdout);
                    found = Some(Found {
                        dn: value,
                        attrs: BTreeMap::new(),
                    });
                }
                Some(entry) => {
                    let values = entry.attrs.entry(name.to_owned()).or_default();
                    if !rest.is_empty() {
                        values.push(value);
                    }
                }
            }
        }
        entries.extend(found);
    }
    entries
}

/// ldapsearch against `url`; `extra` goes before the query (`-E pr=3/noprompt`, `-ZZ`, …).
fn ldapsearch_at(
    url: &str,
    bind: &Bind,
    ca: Option<&Path>,
    extra: &[&str],
    q: &Query,
) -> (Answer, CliOutput) {
    let query = q.ldapsearch_args();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(query.iter().map(String::as_str));
    let out = slapd::ldapsearch(url, bind, &args, ca, CLI_TIMEOUT).expect("run ldapsearch");
    let code = out
        .code
        .unwrap_or_else(|| panic!("ldapsearch killed: {out:?}"));
    let answer = Answer {
        rc: u32::try_from(code).unwrap_or(u32::MAX),
        entries: parse_ldif(&out),
    };
    (answer, out)
}

/// ldapsearch, anonymous, plain LDAP.
fn ldapsearch(server: &Server, q: &Query) -> Answer {
    ldapsearch_at(&server.url(), &Bind::Anonymous, None, &[], q).0
}

/// The second, independent client: the ldap3 crate's async API, driven on a runtime of its
/// own so that tests can mix it with blocking tools and raw sockets.
struct Client {
    rt: tokio::runtime::Runtime,
    ldap: Ldap,
}

const OP_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    fn connect(url: &str) -> Client {
        Client::connect_with(url, LdapConnSettings::new())
    }

    fn connect_with(url: &str, settings: LdapConnSettings) -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let ldap = rt.block_on(async {
            let (conn, ldap) =
                LdapConnAsync::with_settings(settings.set_conn_timeout(OP_TIMEOUT), url)
                    .await
                    .unwrap_or_else(|e| panic!("ldap3 cannot connect to {url}: {e}"));
            ldap3::drive!(conn);
            ldap
        });
        Client { rt, ldap }
    }

    /// A simple bind; the result code.
    fn bind(&mut self, dn: &str, password: &str) -> u32 {
        let op = self.ldap.with_timeout(OP_TIMEOUT).simple_bind(dn, password);
        self.rt.block_on(op).expect("ldap3 bind").rc
    }

    fn search(&mut self, q: &Query) -> Answer {
        self.search_with(q, Vec::new()).0
    }

    /// A search with request controls; also gives the response controls.
    fn search_with(&mut self, q: &Query, controls: Vec<RawControl>) -> (Answer, Vec<Control>) {
        let opts = SearchOptions::new()
            .sizelimit(q.size_limit)
            .typesonly(q.types_only);
        let op = self
            .ldap
            .with_search_options(opts)
            .with_controls(controls)
            .with_timeout(OP_TIMEOUT)
            .search(&q.base, q.scope, &q.filter, q.attrs.clone());
        let result = self.rt.block_on(op).expect("ldap3 search");
        let entries = result
            .0
            .into_iter()
            .map(|e| {
                let e = SearchEntry::construct(e);
                Found {
                    dn: e.dn,
                    attrs: e.attrs.into_iter().collect(),
                }
            })
            .collect();
        (
            Answer {
                rc: result.1.rc,
                entries,
            },
            result.1.ctrls,
        )
    }

    fn whoami(&mut self) -> String {
        let op = self.ldap.with_timeout(OP_TIMEOUT).extended(WhoAmI);
        let (exop, _) = self
            .rt
            .block_on(op)
            .expect("ldap3 whoami")
            .success()
            .expect("whoami succeeds");
        exop.parse::<WhoAmIResp>().authzid
    }

    /// Add, modify, delete and modify-DN of `dn`: the four result codes.
    fn writes(&mut self, dn: &str) -> [u32; 4] {
        let ldap = &mut self.ldap;
        self.rt.block_on(async {
            let add = ldap
                .add(
                    "uid=new,ou=phonebook,dc=example,dc=com",
                    vec![
                        ("objectClass", HashSet::from(["inetOrgPerson"])),
                        ("cn", HashSet::from(["New Person"])),
                        ("sn", HashSet::from(["Person"])),
                    ],
                )
                .await
                .expect("ldap3 add");
            let modify = ldap
                .modify(dn, vec![Mod::Replace("cn", HashSet::from(["Renamed"]))])
                .await
                .expect("ldap3 modify");
            let delete = ldap.delete(dn).await.expect("ldap3 delete");
            let moddn = ldap
                .modifydn(dn, "uid=moved", true, None)
                .await
                .expect("ldap3 modifydn");
            [add.rc, modify.rc, delete.rc, moddn.rc]
        })
    }

    fn unbind(mut self) {
        let _ = self.rt.block_on(self.ldap.unbind());
    }
}

/// Asks `q` through ldapsearch and through ldap3 (anonymously) and asserts that both get
/// result code `rc` and exactly the display names `expect`, in that order.
fn assert_both(
    server: &Server,
    client: &mut Client,
    what: &str,
    q: &Query,
    rc: u32,
    expect: &[&str],
) {
    for (tool, answer) in [
        ("ldapsearch", ldapsearch(server, q)),
        ("ldap3", client.search(q)),
    ] {
        assert_eq!(
            (answer.rc, answer.labels()),
            (rc, expect.iter().map(|s| (*s).to_owned()).collect()),
            "{what}: {tool} {:?}",
            q.filter
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn phone_family_filters_find_exactly_the_expected_entries() {
    let book = Book::new("");
    let server = book.serve();
    let mut client = Client::connect(&server.url());
    assert_eq!(client.bind("", ""), 0, "anonymous bind");

    for row in PHONE_FAMILIES {
        assert_both(
            &server,
            &mut client,
            row.family,
            &row.query(),
            0,
            row.expect,
        );
    }
    for (filter, expect) in MATCHING {
        assert_both(
            &server,
            &mut client,
            "matching",
            &Query::sub(filter),
            0,
            expect,
        );
    }
    // The Gigaset read gives the entry's DN, and every person sits one level below the base.
    let gigaset = client.search(&PHONE_FAMILIES[7].query());
    assert_eq!(gigaset.entries[0].dn, dn_of("soren"));
    let all = Query {
        scope: Scope::OneLevel,
        ..Query::sub("(objectClass=*)")
    };
    assert_both(&server, &mut client, "one level", &all, 0, EVERYONE);

    client.unbind();
    server.stop();
}

/// The sort control's request value (RFC 2891): `(attribute, reverse)` keys.
fn sort_keys(keys: &[(&str, bool)]) -> Vec<u8> {
    let list: Vec<u8> = keys
        .iter()
        .flat_map(|(attr, reverse)| {
            let mut key = ber::tlv(0x04, attr.as_bytes());
            if *reverse {
                key.extend(ber::tlv(0x81, &[0xff]));
            }
            ber::tlv(0x30, &key)
        })
        .collect();
    ber::tlv(0x30, &list)
}

/// The book the size-limit, paging, sort and attribute tests search (server `size_limit` 8,
/// fewer than the people in it), served, with an ldap3 client connected to it.
struct Limited {
    _book: Book,
    server: Server,
    client: Client,
}

impl Limited {
    fn new() -> Limited {
        let book = Book::new("size_limit = 8");
        let server = book.serve();
        let client = Client::connect(&server.url());
        Limited {
            _book: book,
            server,
            client,
        }
    }

    fn stop(self) {
        self.client.unbind();
        self.server.stop();
    }
}

/// sizeLimit: result 4 with exactly the first N entries; N matches within a limit of N is no
/// excess; the server's limit caps searches asking for more or none.
#[test]
fn size_limits_of_the_client_and_the_server() {
    let mut t = Limited::new();
    let (server, client) = (&t.server, &mut t.client);
    let people = Query::sub(PERSON_FILTER);

    // sizeLimit: result 4 (sizeLimitExceeded) with exactly N entries, the first N in order;
    // exactly N matches within a limit of N is no excess.
    let what = "client sizeLimit";
    assert_both(
        server,
        client,
        what,
        &people.clone().size_limit(3),
        4,
        &EVERYONE[..3],
    );
    let m = Query::sub("(sn=M*)");
    let m_people = [ANNA, BERT, JUERGEN, MARIA, MAX, MIA];
    assert_both(server, client, what, &m.clone().size_limit(6), 0, &m_people);
    assert_both(
        server,
        client,
        what,
        &m.clone().size_limit(5),
        4,
        &m_people[..5],
    );
    // The server's size_limit caps searches asking for more or for no limit.
    let what = "server size_limit";
    assert_both(server, client, what, &people, 4, &EVERYONE[..8]);
    assert_both(
        server,
        client,
        what,
        &people.clone().size_limit(100),
        4,
        &EVERYONE[..8],
    );

    t.stop();
}

/// Paged results (ldapsearch `pr=`, ldap3's control) page through more than the server's limit.
#[test]
fn paged_results_walk_every_entry_once_in_order() {
    let mut t = Limited::new();
    let (server, client) = (&t.server, &mut t.client);
    let people = Query::sub(PERSON_FILTER);

    // Paged results page through any size, every entry exactly once, in order.
    let (paged, out) = ldapsearch_at(
        &server.url(),
        &Bind::Anonymous,
        None,
        &["-E", "pr=5/noprompt"],
        &people,
    );
    assert_eq!(
        (paged.rc, paged.labels()),
        (0, to_strings(EVERYONE)),
        "{out:?}"
    );
    let mut cookie = Vec::new();
    let mut pages = Vec::new();
    let mut labels = Vec::new();
    loop {
        let control = PagedResults { size: 5, cookie }.into();
        let (page, controls) = client.search_with(&people, vec![control]);
        assert_eq!(page.rc, 0, "page {}", pages.len());
        pages.push(page.entries.len());
        labels.extend(page.labels());
        cookie = controls
            .iter()
            .find_map(|c| match c {
                Control(Some(ControlType::PagedResults), raw) => {
                    Some(raw.parse::<PagedResults>().cookie)
                }
                _ => None,
            })
            .expect("paged results response control");
        if cookie.is_empty() {
            break;
        }
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(pages, [5, 5, 2]);
    assert_eq!(labels, EVERYONE);

    t.stop();
}

/// RFC 2891 through ldapsearch and ldap3, with the sortResult control.
#[test]
fn server_side_sort_in_both_directions_before_the_size_limit() {
    let mut t = Limited::new();
    let (server, client) = (&t.server, &mut t.client);
    let people = Query::sub(PERSON_FILTER);
    let m = Query::sub("(sn=M*)");

    // Server-side sort, both directions; sorting happens before the size limit cuts.
    let by_sn = [MIA, MARIA, BERT, JUERGEN, ANNA, MAX];
    let by_sn_reversed: Vec<&str> = by_sn.iter().rev().copied().collect();
    for (key, reverse, expect) in [("sn", false, &by_sn[..]), ("sn", true, &by_sn_reversed[..])] {
        let spec = format!("sss={}{key}", if reverse { "-" } else { "" });
        let (sorted, out) =
            ldapsearch_at(&server.url(), &Bind::Anonymous, None, &["-E", &spec], &m);
        assert_eq!(
            (sorted.rc, sorted.labels()),
            (0, to_strings(expect)),
            "{spec}: {out:?}"
        );
        let control = RawControl {
            ctype: OID_SORT.into(),
            crit: true,
            val: Some(sort_keys(&[(key, reverse)])),
        };
        let (sorted, controls) = client.search_with(&m, vec![control]);
        assert_eq!(
            (sorted.rc, sorted.labels()),
            (0, to_strings(expect)),
            "ldap3 {spec}"
        );
        let response = controls
            .iter()
            .find(|c| c.1.ctype == OID_SORT_RESPONSE)
            .expect("sort response control");
        assert_eq!(
            response.1.val.as_deref().map(|v| &v[2..5]),
            Some(&[0x0a, 0x01, 0x00][..]),
            "sortResult success"
        );
    }
    // Reverse by first name, people without one last, then cut by the server's limit.
    let (sorted, out) = ldapsearch_at(
        &server.url(),
        &Bind::Anonymous,
        None,
        &["-E", "sss=-givenName"],
        &people,
    );
    let expect = [WANG, ELENI, ZOE, SOREN, MIA, MAX, MARIA, JUERGEN];
    assert_eq!(
        (sorted.rc, sorted.labels()),
        (4, to_strings(&expect)),
        "{out:?}"
    );

    t.stop();
}

/// `*`, no list, `1.1`, a list in any case with aliases, typesOnly.
#[test]
fn attribute_selection_star_none_1_1_lists_and_types_only() {
    let mut t = Limited::new();
    let (server, client) = (&t.server, &mut t.client);

    // Attribute selection: `*`, none, `1.1`, a list (any case, aliases), typesOnly.
    let juergen = Query {
        base: dn_of("juergen"),
        scope: Scope::Base,
        ..Query::sub("(objectClass=*)")
    };
    let served = [
        "objectclass",
        "uid",
        "cn",
        "displayname",
        "givenname",
        "sn",
        "o",
        "telephonenumber",
        "mobile",
    ];
    let anna = Query {
        base: dn_of("anna"),
        ..juergen.clone()
    };
    for (tool, answer) in [
        (
            "ldapsearch",
            ldapsearch(server, &juergen.clone().attrs(&["*"])),
        ),
        ("ldap3", client.search(&juergen.clone().attrs(&["*"]))),
        (
            "ldapsearch",
            ldapsearch(server, &juergen.clone().attrs(&[])),
        ),
        ("ldap3", client.search(&juergen.clone().attrs(&[]))),
    ] {
        assert_eq!(answer.entries.len(), 1, "{tool}");
        let e = &answer.entries[0];
        assert_eq!(e.dn, dn_of("juergen"), "{tool}");
        assert_eq!(e.names(), to_set(&served), "{tool}");
        assert_eq!(
            e.get("telephoneNumber"),
            Some(&to_strings(&["+49 (89) 1234-567"])[..])
        );
        assert_eq!(e.get("displayName"), Some(&to_strings(&[JUERGEN])[..]));
        assert_eq!(e.get("uid"), Some(&to_strings(&["corp.juergen"])[..]));
        assert_eq!(
            e.get("objectClass"),
            Some(&to_strings(&["top", "person", "organizationalPerson", "inetOrgPerson"])[..])
        );
    }
    for (tool, answer) in [
        (
            "ldapsearch",
            ldapsearch(server, &anna.clone().attrs(&["*"])),
        ),
        ("ldap3", client.search(&anna.clone().attrs(&["*"]))),
    ] {
        let e = &answer.entries[0];
        // The upstream pager is served as ipPhone and otherTelephone; never under its own name.
        assert_eq!(e.get("ipPhone"), Some(&to_strings(&["4711"])[..]), "{tool}");
        assert_eq!(
            e.get("otherTelephone"),
            Some(&to_strings(&["4711"])[..]),
            "{tool}"
        );
        assert_eq!(e.get("pager"), None, "{tool}");
    }
    for (tool, answer) in [
        (
            "ldapsearch",
            ldapsearch(server, &juergen.clone().attrs(&["1.1"])),
        ),
        ("ldap3", client.search(&juergen.clone().attrs(&["1.1"]))),
    ] {
        assert_eq!(answer.entries.len(), 1, "{tool}");
        assert_eq!(answer.entries[0].dn, dn_of("juergen"), "{tool}");
        assert!(answer.entries[0].attrs.is_empty(), "{tool}: {answer:?}");
    }
    let list = juergen
        .clone()
        .attrs(&["CN", "Mobile", "surname", "shoeSize"]);
    for (tool, answer) in [
        ("ldapsearch", ldapsearch(server, &list)),
        ("ldap3", client.search(&list)),
    ] {
        let e = &answer.entries[0];
        assert_eq!(e.names(), to_set(&["cn", "mobile", "sn"]), "{tool}");
        assert_eq!(
            e.get("mobile"),
            Some(&to_strings(&["0170 1234567"])[..]),
            "{tool}"
        );
        assert_eq!(e.get("sn"), Some(&to_strings(&["Müller"])[..]), "{tool}");
    }
    let types_only = juergen.clone().attrs(&["*"]).types_only();
    for (tool, answer) in [
        ("ldapsearch", ldapsearch(server, &types_only)),
        ("ldap3", client.search(&types_only)),
    ] {
        let e = &answer.entries[0];
        assert_eq!(e.names(), to_set(&served), "{tool}");
        assert!(e.attrs.values().all(Vec::is_empty), "{tool}: {e:?}");
    }

    t.stop();
}

fn to_strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn to_set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// How long a raw connection may stay silent before the test calls it hanging.
const RAW_TIMEOUT: Duration = Duration::from_secs(10);

fn raw_connection(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(RAW_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(RAW_TIMEOUT)).unwrap();
    stream
}

/// Reads the replies to one search: (entries, result code).
fn raw_search_replies(stream: &mut TcpStream) -> (usize, u8) {
    let mut entries = 0;
    loop {
        let reply = ber::read(stream).expect("a reply");
        match (reply.op, reply.code) {
            (SEARCH_RESULT_ENTRY, _) => entries += 1,
            (SEARCH_RESULT_DONE, Some(code)) => return (entries, code),
            other => panic!("unexpected reply {other:?}"),
        }
    }
}

/// Asserts that the server closed `stream`: a read ends (EOF or reset) instead of timing out.
fn assert_closed(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("{what}: the connection is still open after {RAW_TIMEOUT:?}")
            }
            Err(_) => return,
        }
    }
}

#[test]
fn malformed_and_oversized_requests_close_only_their_connection() {
    let book = Book::new("");
    let mut server = book.serve();
    // An ordinary phone, connected before and kept open throughout.
    let mut keeper = Client::connect(&server.url());
    assert_eq!(keeper.bind("", ""), 0);
    let snom = PHONE_FAMILIES[2].query();
    let mut still_serving = |server: &mut Server, after: &str| {
        assert_eq!(
            keeper.search(&snom).labels(),
            [ANNA, JUERGEN],
            "after {after}"
        );
        assert!(server.is_running(), "after {after}:\n{}", server.log());
    };
    still_serving(&mut server, "connecting");

    // The hand-written BER is right: a raw search is answered; a filter nested deeper than
    // the server allows (but shallower than the BER decoder's limit) is refused with 53 and
    // the connection stays usable.
    let muller = ber::equality("sn", "Müller".as_bytes());
    let mut raw = raw_connection(&server);
    raw.write_all(&ber::message(1, &ber::search_for(BASE, &muller), &[]))
        .unwrap();
    assert_eq!(raw_search_replies(&mut raw), (1, 0));
    raw.write_all(&ber::message(
        2,
        &ber::search_for(BASE, &ber::nested(40, muller.clone())),
        &[],
    ))
    .unwrap();
    assert_eq!(raw_search_replies(&mut raw), (0, 53));
    raw.write_all(&ber::message(3, &ber::search_for(BASE, &muller), &[]))
        .unwrap();
    assert_eq!(raw_search_replies(&mut raw), (1, 0));
    still_serving(&mut server, "a filter nested 40 deep");

    let valid = ber::message(4, &ber::search_for(BASE, &muller), &[]);
    // An inner element claims more bytes than its (complete) message holds.
    let mut inner_truncated = ber::tlv(0x04, b"sn");
    inner_truncated.extend([0x04, 50]);
    inner_truncated.extend("Mül".as_bytes());
    let inner_truncated = ber::message(
        5,
        &ber::search_for(BASE, &ber::tlv(0xa3, &inner_truncated)),
        &[],
    );
    // A filter value of 1 MiB, well over max_pdu_size.
    let huge = ber::message(
        6,
        &ber::search_for(BASE, &ber::equality("cn", &vec![b'x'; 1 << 20])),
        &[],
    );
    let deep = ber::message(
        7,
        &ber::search_for(BASE, &ber::nested(1_000, muller.clone())),
        &[],
    );
    let http = b"GET /phonebook/yealink.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Yealink SIP-T54W\r\nAccept: */*\r\n\r\n";
    // Each case on its own connection, none of them followed by an end of stream unless
    // said: the server must close on its own, not wait for more (nor for the idle timeout).
    let cases: [(&str, Vec<u8>, bool); 7] = [
        ("garbage bytes (an HTTP request)", http.to_vec(), false),
        ("a few garbage bytes", b"GET ".to_vec(), false),
        ("a truncated BER element", inner_truncated, false),
        (
            "half a message, then end of stream",
            valid[..valid.len() / 2].to_vec(),
            true,
        ),
        // Refused on the header alone: no need to buffer up to the limit first.
        ("a header announcing 1 MiB", huge[..64].to_vec(), false),
        ("a 1 MiB PDU", huge, false),
        ("a filter nested 1,000 deep", deep, false),
    ];
    for (what, bytes, then_eof) in &cases {
        let mut bad = raw_connection(&server);
        // The server may close before reading everything (the 1 MiB PDU): a failed write is
        // fine, what counts is that the connection ends.
        let _ = bad.write_all(bytes);
        if *then_eof {
            bad.shutdown(Shutdown::Write).unwrap();
        }
        assert_closed(&mut bad, what);
        still_serving(&mut server, what);
    }
    // The raw connection opened before is still served too.
    raw.write_all(&ber::message(8, &ber::search_for(BASE, &muller), &[]))
        .unwrap();
    assert_eq!(raw_search_replies(&mut raw), (1, 0));

    // Shutdown drains the open connections and exits 0; each bad connection was logged once.
    let log = server.stop();
    let closed = log.matches("closing this connection").count();
    assert_eq!(
        closed,
        cases.len(),
        "one warning per bad connection:\n{log}"
    );
}

const PHONES_DN: &str = "cn=phones,ou=devices,dc=example,dc=com";
const PHONES_PW: &str = "Yealink-T54W";
const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";

fn root_dse_query() -> Query {
    Query {
        base: String::new(),
        scope: Scope::Base,
        ..Query::sub("(objectClass=*)")
    }
    .attrs(&["*", "+"])
}

/// Asserts the root DSE's content; `extensions` are the extended operations it must list.
fn assert_root_dse(tool: &str, answer: &Answer, extensions: &[&str]) {
    assert_eq!(answer.rc, 0, "{tool}");
    assert_eq!(answer.entries.len(), 1, "{tool}: {answer:?}");
    let dse = &answer.entries[0];
    assert_eq!(dse.dn, "", "{tool}");
    let values = |attr: &str| dse.get(attr).unwrap_or_default().to_vec();
    assert_eq!(values("namingContexts"), [BASE], "{tool}");
    assert!(
        values("supportedLDAPVersion").contains(&"3".into()),
        "{tool}"
    );
    let controls = values("supportedControl");
    for oid in [OID_PAGED, OID_SORT] {
        assert!(
            controls.contains(&oid.into()),
            "{tool}: {oid} in {controls:?}"
        );
    }
    assert_eq!(values("supportedExtension"), extensions, "{tool}");
    assert_eq!(values("vendorName"), ["phonebook-proxy"], "{tool}");
}

#[test]
fn root_dse_whoami_and_critical_controls() {
    let book = Book::new("");
    let server = book.serve();
    let mut client = Client::connect(&server.url());

    // The root DSE answers before any bind.
    let dse = root_dse_query();
    assert_root_dse("ldapsearch", &ldapsearch(&server, &dse), &[OID_WHOAMI]);
    assert_root_dse("ldap3", &client.search(&dse), &[OID_WHOAMI]);

    let whoami = |bind: &Bind| {
        let out = run_tool("ldapwhoami", &server.url(), bind, &[], None, CLI_TIMEOUT).unwrap();
        assert_eq!(out.code, Some(0), "{out:?}");
        out.stdout.trim().to_owned()
    };
    assert_eq!(whoami(&Bind::Anonymous), "anonymous");
    assert_eq!(client.bind("", ""), 0);
    assert_eq!(client.whoami(), "");

    // An unknown control marked critical refuses the operation (12); not critical, it is
    // ignored.
    let yealink = PHONE_FAMILIES[0].query();
    let (answer, out) = ldapsearch_at(
        &server.url(),
        &Bind::Anonymous,
        None,
        &["-e", "!1.2.3.4"],
        &yealink,
    );
    assert_eq!((answer.rc, answer.entries.len()), (12, 0), "{out:?}");
    let (answer, out) = ldapsearch_at(
        &server.url(),
        &Bind::Anonymous,
        None,
        &["-e", "1.2.3.4"],
        &yealink,
    );
    assert_eq!(
        (answer.rc, answer.labels()),
        (0, to_strings(&[JUERGEN])),
        "{out:?}"
    );
    for (critical, rc, expect) in [(true, 12, &[][..]), (false, 0, &[JUERGEN][..])] {
        let control = RawControl {
            ctype: "1.2.3.4".into(),
            crit: critical,
            val: None,
        };
        let (answer, _) = client.search_with(&yealink, vec![control]);
        assert_eq!(
            (answer.rc, answer.labels()),
            (rc, to_strings(expect)),
            "critical {critical}"
        );
    }

    client.unbind();
    server.stop();
}

#[test]
fn binds_access_and_read_only() {
    let book = Book::new("");
    book.configure(&format!(
        "anonymous = false\n\n[[ldap.users]]\ndn = \"{PHONES_DN}\"\npassword_env = \"PHONES_PW\"\n"
    ));
    let server = Server::start_with_env(&book.ws, &[("PHONES_PW", PHONES_PW)]);
    let url = server.url();
    let phones = Bind::Simple {
        dn: PHONES_DN.into(),
        password: PHONES_PW.into(),
    };
    let wrong = Bind::Simple {
        dn: PHONES_DN.into(),
        password: "wrong".into(),
    };
    let yealink = PHONE_FAMILIES[0].query();

    // Wrong password: invalidCredentials (49), for both clients; no search afterwards.
    let (answer, out) = ldapsearch_at(&url, &wrong, None, &[], &yealink);
    assert_eq!((answer.rc, answer.entries.len()), (49, 0), "{out:?}");
    let mut client = Client::connect(&url);
    assert_eq!(client.bind(PHONES_DN, "wrong"), 49);
    assert_eq!(
        client.search(&yealink).rc,
        50,
        "no search after a failed bind"
    );
    // Anonymous is off: ldapsearch's anonymous bind is refused (48) before it can search; a
    // search without any bind gets insufficientAccessRights (50).
    let (answer, out) = ldapsearch_at(&url, &Bind::Anonymous, None, &[], &yealink);
    assert_eq!((answer.rc, answer.entries.len()), (48, 0), "{out:?}");
    let mut unbound = Client::connect(&url);
    let answer = unbound.search(&yealink);
    assert_eq!((answer.rc, answer.entries.len()), (50, 0));
    // ... but the root DSE still answers, so phones can discover the server.
    assert_root_dse(
        "ldap3 unbound",
        &unbound.search(&root_dse_query()),
        &[OID_WHOAMI],
    );
    unbound.unbind();

    // The configured account (password from the environment) binds and searches.
    let (answer, out) = ldapsearch_at(&url, &phones, None, &[], &yealink);
    assert_eq!(
        (answer.rc, answer.labels()),
        (0, to_strings(&[JUERGEN])),
        "{out:?}"
    );
    assert_eq!(client.bind(PHONES_DN, PHONES_PW), 0);
    assert_eq!(client.search(&yealink).labels(), [JUERGEN]);
    let out = run_tool("ldapwhoami", &url, &phones, &[], None, CLI_TIMEOUT).unwrap();
    assert_eq!(
        (out.code, out.stdout.trim()),
        (Some(0), format!("dn:{PHONES_DN}").as_str()),
        "{out:?}"
    );
    assert_eq!(client.whoami(), format!("dn:{PHONES_DN}"));

    // Read-only: every write is unwillingToPerform (53), for both clients.
    let juergen = dn_of("juergen");
    let add = book.ws.path().join("add.ldif");
    std::fs::write(
        &add,
        format!("dn: uid=new,{BASE}\nobjectClass: inetOrgPerson\ncn: New\nsn: New\n"),
    )
    .unwrap();
    let modify = book.ws.path().join("modify.ldif");
    std::fs::write(
        &modify,
        format!("dn: {juergen}\nchangetype: modify\nreplace: cn\ncn: Renamed\n"),
    )
    .unwrap();
    let add = add.to_string_lossy().into_owned();
    let modify = modify.to_string_lossy().into_owned();
    for (tool, args) in [
        ("ldapadd", vec!["-f", add.as_str()]),
        ("ldapmodify", vec!["-f", modify.as_str()]),
        ("ldapdelete", vec![juergen.as_str()]),
        ("ldapmodrdn", vec![juergen.as_str(), "uid=moved"]),
    ] {
        let out = run_tool(tool, &url, &phones, &args, None, CLI_TIMEOUT).unwrap();
        assert_eq!(out.code, Some(53), "{tool}: {out:?}");
    }
    assert_eq!(
        client.writes(&juergen),
        [53; 4],
        "ldap3 add, modify, delete, modDN"
    );
    assert_eq!(
        client.search(&yealink).labels(),
        [JUERGEN],
        "nothing was written"
    );

    client.unbind();
    server.stop();
}

/// A rustls client configuration trusting exactly the certificates in `ca` (PEM).
fn client_tls(ca: &Path) -> rustls::ClientConfig {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read the test CA") {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("add the test CA");
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[test]
fn ldaps_and_starttls_with_a_test_ca() {
    let book = Book::new("");
    let dir = book.ws.path().join("tls");
    std::fs::create_dir(&dir).unwrap();
    let TestCerts { ca, cert, key } = write_test_certs(&dir).expect("test certificates");
    book.configure(&format!(
        "listen_ldaps = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nstarttls = true\n",
        cert.display(),
        key.display()
    ));
    let server = book.serve();
    let snom = PHONE_FAMILIES[2].query();
    let expect = to_strings(&[ANNA, JUERGEN]);

    // ldapsearch over LDAPS, and over plain LDAP with StartTLS required (-ZZ), trusting the
    // test CA; without it the certificate is refused and nothing is answered.
    for (url, extra) in [(server.ldaps_url(), &[][..]), (server.url(), &["-ZZ"][..])] {
        let (answer, out) = ldapsearch_at(&url, &Bind::Anonymous, Some(&ca), extra, &snom);
        assert_eq!(
            (answer.rc, answer.labels()),
            (0, expect.clone()),
            "{url} {extra:?}: {out:?}"
        );
        let (answer, out) = ldapsearch_at(&url, &Bind::Anonymous, None, extra, &snom);
        assert!(
            answer.rc != 0 && answer.entries.is_empty(),
            "{url} {extra:?} without the CA: {out:?}"
        );
    }
    // ldap3 (rustls) the same ways.
    let tls = Arc::new(client_tls(&ca));
    for (url, starttls) in [(server.ldaps_url(), false), (server.url(), true)] {
        let settings = LdapConnSettings::new()
            .set_config(tls.clone())
            .set_starttls(starttls);
        let mut client = Client::connect_with(&url, settings);
        assert_eq!(
            client.search(&snom).labels(),
            expect,
            "ldap3 {url} starttls {starttls}"
        );
        // Once encrypted, StartTLS is no longer offered.
        assert_root_dse(
            "ldap3 over TLS",
            &client.search(&root_dse_query()),
            &[OID_WHOAMI],
        );
        client.unbind();
    }
    let plain = ldapsearch(&server, &root_dse_query());
    assert_root_dse("plain ldapsearch", &plain, &[OID_WHOAMI, OID_STARTTLS]);

    server.stop();
}

// ---------------------------------------------------------------------------------------------
// Comparison with OpenLDAP

/// What the test slapd needs beyond its standard schema to hold the served book: Active
/// Directory's ipPhone and otherTelephone, matched as telephone numbers (entries get
/// extensibleObject to carry them).
const EXTRA_SCHEMA: &str = "\
attributetype ( 1.2.840.113556.1.4.721 NAME 'ipPhone'
  EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.50 )
attributetype ( 1.2.840.113556.1.2.18 NAME 'otherTelephone'
  EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.50 )
";

/// Name filters beyond the phone table, compared with slapd as they are.
const NAME_FILTERS: &[&str] = &[
    "(|(cn=Müller)(sn=Müller))",
    "(sn=muller)",
    "(cn=*weiß*)",
    "(cn=*weiss*)",
    "(o=*Weiß*)",
    "(givenName=ZOË)",
    "(cn=ελένη*)",
    "(sn=ΠΑΠΑΔΟΠΟΎΛΟΥ)",
    "(|(cn=*ü*)(givenName=*ø*))",
    "(!(sn=M*))",
    "(uid=corp.juergen)",
    "(objectClass=inetOrgPerson)",
    "(objectclass=*)",
    "(&(objectClass=person)(!(telephoneNumber=*)))",
    "(mail=*)",
];

/// Ordering filters, with the answer expected under `accents = "exact"` (case-folded code
/// point order). Not compared with slapd: its standard schema gives `sn` no ORDERING rule,
/// so slapd evaluates `sn>=…` as Undefined and answers nothing — but Poly phones send these
/// and need an answer.
const RANGE_FILTERS: &[(&str, &[&str])] = &[
    (
        "(&(objectClass=*)(sn>=A)(sn<=zz)(sn=M*))",
        &[ANNA, BERT, JUERGEN, MARIA, MAX, MIA],
    ),
    ("(sn>=W)", &[SOREN, ZOE, ELENI, WANG]),
    ("(sn<=F)", &[EMPFANG]),
];

const PHONE_ATTRIBUTES: [&str; 6] = [
    "telephonenumber",
    "mobile",
    "homephone",
    "facsimiletelephonenumber",
    "othertelephone",
    "ipphone",
];

#[test]
fn answers_like_openldap_serving_the_same_book() {
    let book = Book::new("accents = \"exact\"");
    let export = book.ws.run(&["export", "--format", "ldif"]);
    assert_eq!(export.code, 0, "{export:?}");
    let container = format!("dn: {BASE}\nobjectClass: organizationalUnit\nou: phonebook\n\n");
    let served = export.stdout.replace(
        "objectClass: inetOrgPerson\n",
        "objectClass: inetOrgPerson\nobjectClass: extensibleObject\n",
    );
    let openldap = Slapd::builder()
        .memberof(false)
        .schema(EXTRA_SCHEMA)
        .ldif(container + &served)
        .start()
        .expect("start the comparison slapd");
    let server = book.serve();

    let ask = |url: &str, q: &Query| {
        let (answer, out) =
            ldapsearch_at(url, &Bind::Anonymous, None, &[], &q.clone().attrs(&["1.1"]));
        assert_eq!(answer.rc, 0, "{url} {:?}: {out:?}", q.filter);
        answer.dns()
    };
    let mut queries: Vec<Query> = PHONE_FAMILIES.iter().map(PhoneSearch::query).collect();
    queries.extend(MATCHING.iter().map(|(f, _)| Query::sub(f)));
    queries.extend(NAME_FILTERS.iter().map(|f| Query::sub(f)));
    let (mut names, mut numbers, mut more) = (0, 0, 0);
    for q in &queries {
        let lower = q.filter.to_lowercase();
        // Ordering: see RANGE_FILTERS. Approximate: the spec makes `~=` equality, slapd's
        // is phonetic (it finds "Jürgen Müller" for "jurgen muller" even with exact accents).
        if lower.contains(">=") || lower.contains("<=") || lower.contains("~=") {
            continue;
        }
        let ours = ask(&server.url(), q);
        let theirs = ask(&openldap.url(), q);
        if PHONE_ATTRIBUTES
            .iter()
            .any(|a| lower.contains(&format!("({a}")))
        {
            // Numbers: ours compares digits and E.164 forms, slapd only ignores spaces and
            // hyphens; we may find more, never less.
            assert!(
                ours.is_superset(&theirs),
                "{:?}: ours {ours:?}, slapd {theirs:?}",
                q.filter
            );
            numbers += usize::from(!theirs.is_empty());
            more += usize::from(ours.len() > theirs.len());
        } else {
            assert_eq!(ours, theirs, "{:?}", q.filter);
            names += usize::from(!ours.is_empty());
        }
    }
    // The comparison is not vacuous: slapd found names and numbers, and our number matching
    // found more than slapd's for the spec's examples.
    assert!(
        names >= 15 && numbers >= 5 && more >= 5,
        "names {names}, numbers {numbers}, more {more}"
    );
    for (filter, expect) in RANGE_FILTERS {
        let answer = ldapsearch(&server, &Query::sub(filter));
        assert_eq!(
            (answer.rc, answer.labels()),
            (0, to_strings(expect)),
            "{filter}"
        );
    }
    server.stop();
}

/// docs/phone-setup.md quotes only filters that [`PHONE_FAMILIES`] sends (Cisco's notation
/// `label:(… $VALUE …)` read as `(… % …)`), and a tested one for every phone family it covers,
/// so the guide cannot drift from what the endpoint is tested with.
#[test]
fn the_phone_setup_guide_quotes_only_tested_filters() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/phone-setup.md");
    let guide = std::fs::read_to_string(&path).expect("docs/phone-setup.md");
    assert!(
        guide.matches('`').count() % 2 == 0 && !guide.contains("```"),
        "inline code spans only, every backtick paired"
    );
    let tested: HashSet<&str> = PHONE_FAMILIES.iter().map(|row| row.filter).collect();
    // A quoted span that reads as an LDAP filter, in this server's `%` notation.
    let as_filter = |span: &str| -> Option<String> {
        let span = span.trim();
        let span = match span.split_once(':') {
            Some((label, rest))
                if rest.starts_with('(') && label.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                rest
            }
            _ => span,
        };
        (span.starts_with('(') && span.ends_with(')') && span.contains('='))
            .then(|| span.replace("$VALUE", "%"))
    };
    let mut families = Vec::new();
    for section in guide.split("\n## ").skip(1) {
        let heading = section.lines().next().unwrap_or_default().to_owned();
        let quoted: Vec<String> = section
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(as_filter)
            .collect();
        for filter in &quoted {
            assert!(
                tested.contains(filter.as_str()),
                "{heading}: {filter} is not in PHONE_FAMILIES"
            );
        }
        if !quoted.is_empty() {
            families.push(heading);
        }
    }
    for family in [
        "Yealink",
        "Snom",
        "Grandstream",
        "Cisco",
        "Poly",
        "Fanvil",
        "Gigaset",
    ] {
        assert!(
            families.iter().any(|h| h.starts_with(family)),
            "{family} quotes a tested filter: {families:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers as phones dial them: a company number plan of two blocks.

/// Jürgen's desk (`+49 (89) 1234-567`, also the switchboard handset's) lies in the Munich
/// block (extensions of three digits), Zoë's (`0049 30 12345678`) in the Berlin one (four);
/// everyone else is outside.
const COMPANY_PLAN: &str = "[numbers]\noutside_prefix = \"0\"\nextensions = [{ prefix = \"+49 89 1234\", digits = 3 }, { prefix = \"+49 30 1234\", digits = 4 }]\n";

/// Number filters of the phone families that look a caller up, with `%` for the number.
const NUMBER_FILTERS: &[(&str, &str)] = &[
    ("Yealink", "(|(telephoneNumber=%)(mobile=%)(ipPhone=%))"),
    ("Snom", "(|(telephoneNumber=%)(mobile=%)(homePhone=%))"),
    ("FreePBX superfecta", "(|(telephoneNumber=*%)(mobile=*%))"),
];

/// A value inside an LDAP filter (RFC 4515 escapes for the characters it reserves).
fn filter_value(v: &str) -> String {
    v.replace('\\', "\\5c")
        .replace('(', "\\28")
        .replace(')', "\\29")
        .replace('*', "\\2a")
}

#[test]
fn an_extension_plan_finds_colleagues_in_every_notation_and_serves_each_format() {
    // Synced with the plan, so the stored E.164 forms know the blocks; `[ldap]` extras first.
    let ldap_and_plan = |format: &str| format!("{format}\n\n{COMPANY_PLAN}");
    let book = Book::new(&ldap_and_plan(""));
    let server = book.serve();
    let mut client = Client::connect(&server.url());
    assert_eq!(client.bind("", ""), 0);
    // (typed, found by an equality filter, found by a suffix filter)
    let notations: &[(&str, &[&str], &[&str])] = &[
        // extension, national without trunk prefix, E.164, international, national, written
        ("567", &[EMPFANG, JUERGEN], &[EMPFANG, JUERGEN]),
        ("891234567", &[EMPFANG, JUERGEN], &[EMPFANG, JUERGEN]),
        ("+49891234567", &[EMPFANG, JUERGEN], &[EMPFANG, JUERGEN]),
        ("0049891234567", &[EMPFANG, JUERGEN], &[EMPFANG, JUERGEN]),
        ("0891234567", &[EMPFANG, JUERGEN], &[EMPFANG, JUERGEN]),
        (
            "+49 (89) 1234-567",
            &[EMPFANG, JUERGEN],
            &[EMPFANG, JUERGEN],
        ),
        // María's `+34 612 345 678` ends in 5678 too: a suffix is a suffix.
        ("5678", &[ZOE], &[MARIA, ZOE]),
        ("3012345678", &[ZOE], &[ZOE]),
        ("0049 30 12345678", &[ZOE], &[ZOE]),
        // Outside every block: a run of digits is no extension (but Wang's `+86 10 8765 4321`
        // ends in it too).
        ("7654321", &[], &[ANNA, WANG]),
        ("897654321", &[ANNA], &[ANNA]),
    ];
    for (family, filter) in NUMBER_FILTERS {
        for (typed, equal, suffix) in notations {
            let expect = if filter.contains("=*%") {
                suffix
            } else {
                equal
            };
            let q = Query::sub(&filter.replace('%', &filter_value(typed)));
            assert_both(&server, &mut client, family, &q, 0, expect);
        }
    }
    client.unbind();
    server.stop();

    // Each served format over LDAP, value by value (ldapsearch and ldap3 alike); with a plan
    // the default is `dialable`. Jürgen's telephoneNumber and mobile, Zoë's, Bert's.
    let served: &[(&str, [&str; 4])] = &[
        ("", ["567", "001701234567", "5678", "00015550102030"]),
        (
            "number_format = \"dialable\"",
            ["567", "001701234567", "5678", "00015550102030"],
        ),
        (
            "number_format = \"e164\"",
            [
                "+49891234567",
                "+491701234567",
                "+493012345678",
                "+15550102030",
            ],
        ),
        (
            "number_format = \"national\"",
            ["0891234567", "01701234567", "03012345678", "0015550102030"],
        ),
        (
            "number_format = \"as_written\"",
            [
                "+49 (89) 1234-567",
                "0170 1234567",
                "0049 30 12345678",
                "+1 (555) 010-2030",
            ],
        ),
    ];
    for (format, [juergen, mobile, zoe, bert]) in served {
        book.configure(&ldap_and_plan(format));
        let server = book.serve();
        let mut client = Client::connect(&server.url());
        let q = Query::sub("(|(uid=corp.juergen)(uid=corp.zoe)(uid=corp.bert))").attrs(&[
            "cn",
            "telephoneNumber",
            "mobile",
        ]);
        for (tool, answer) in [
            ("ldapsearch", ldapsearch(&server, &q)),
            ("ldap3", client.search(&q)),
        ] {
            let number = |who: &str, attr: &str| -> Vec<String> {
                answer
                    .entries
                    .iter()
                    .find(|e| e.label() == who)
                    .and_then(|e| e.get(attr))
                    .unwrap_or_else(|| panic!("{tool} {format:?}: {who} {attr}: {answer:?}"))
                    .to_vec()
            };
            assert_eq!(
                number(JUERGEN, "telephoneNumber"),
                [*juergen],
                "{tool} {format:?}"
            );
            assert_eq!(number(JUERGEN, "mobile"), [*mobile], "{tool} {format:?}");
            assert_eq!(number(ZOE, "telephoneNumber"), [*zoe], "{tool} {format:?}");
            assert_eq!(
                number(BERT, "telephoneNumber"),
                [*bert],
                "{tool} {format:?}"
            );
        }
        // What a phone was given is what finds the colleague again.
        let again = Query::sub(&format!("(telephoneNumber={})", filter_value(juergen)));
        assert_both(&server, &mut client, format, &again, 0, &[JUERGEN]);
        client.unbind();
        server.stop();
    }
}
