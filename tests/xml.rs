//! The remote XML phone books through the real binary: people read from an LDIF file by a
//! `file:` connector, `serve` with a number plan of two company blocks and an outside prefix,
//! `curl` as the phone, and each book parsed with roxmltree the way the phone reads it.
//!
//! The expected numbers and labels are written out here by hand, per book and per format,
//! rather than derived from the code under test.

mod support;

use std::io::Read as _;
use std::thread;
use std::time::{Duration, Instant};

use support::cli::Workspace;
use support::curl::{curl, Response};
use support::gen::{person_ldif, PEOPLE_OU};
use support::server::Server;
use support::slapd::signal;

const SIGHUP: i32 = 1;
/// Long enough for anything that "eventually happens" on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

const BOOKS: [&str; 5] = ["yealink", "cisco", "snom", "grandstream", "fanvil"];
const FORMATS: [&str; 4] = ["as_written", "e164", "national", "dialable"];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Business,
    Mobile,
    Home,
    Other,
}

/// What each book calls a kind of number (its documented vocabulary).
fn label(book: &str, kind: Kind) -> &'static str {
    let words = match book {
        "yealink" | "cisco" => ["Business", "Mobile", "Home", "Other"],
        "snom" => ["business", "mobile", "home", "fixed"],
        "grandstream" => ["Work", "Mobile", "Home", "Other"],
        "fanvil" => ["Telephone", "Mobile", "Other", "Other"],
        other => panic!("no book {other}"),
    };
    words[kind as usize]
}

/// A person the books list: display name, last name, and each number in every format
/// (in the order of [`FORMATS`]).
struct Person {
    name: &'static str,
    last: &'static str,
    numbers: &'static [(Kind, [&'static str; 4])],
}

/// The listed people in display order, with what the plan below makes of their numbers:
/// `+49891234…` is the 3-digit block, `+49305678…` the 4-digit one, `0` the outside prefix.
const LISTED: [Person; 3] = [
    Person {
        name: "Andreas Schulz (IT)",
        last: "Schulz",
        numbers: &[
            (
                Kind::Business,
                ["+49 89 1234-826", "+49891234826", "0891234826", "826"],
            ),
            (
                Kind::Mobile,
                [
                    "0170 1234567",
                    "+491701234567",
                    "01701234567",
                    "001701234567",
                ],
            ),
        ],
    },
    Person {
        name: "Bettina Kunde",
        last: "Kunde",
        numbers: &[
            (
                Kind::Business,
                [
                    "(0)89/0859 929",
                    "+49890859929",
                    "0890859929",
                    "00890859929",
                ],
            ),
            (
                Kind::Home,
                ["030 5678-1234", "+493056781234", "03056781234", "1234"],
            ),
            (
                Kind::Other,
                [
                    "+41 44 1234 567",
                    "+41441234567",
                    "0041441234567",
                    "00041441234567",
                ],
            ),
        ],
    },
    Person {
        name: "Carla Intern",
        last: "Intern",
        numbers: &[
            (Kind::Business, ["827", "+49891234827", "0891234827", "827"]),
            // No E.164 form: served as written in every format.
            (Kind::Other, ["intern 42"; 4]),
        ],
    },
];

/// People with nothing to dial (no number, a fax only, numbers without a digit or too long
/// to be one), as (display name, last name); they sort before everyone listed.
const UNLISTED: [(&str, &str); 3] = [
    ("Aaron Ohne", "Ohne"),
    ("Abel Fax", "Fax"),
    ("Achim Strich", "Strich"),
];

fn directory() -> String {
    let too_long = "1234 5678 9012 3456 7890 1234 5678 9012 3456 7890";
    [
        PEOPLE_OU.to_owned(),
        person_ldif(
            "aaron",
            &[("cn", "Aaron Ohne"), ("sn", "Ohne"), ("givenName", "Aaron")],
        ),
        person_ldif(
            "abel",
            &[
                ("cn", "Abel Fax"),
                ("sn", "Fax"),
                ("givenName", "Abel"),
                ("facsimileTelephoneNumber", "+49 89 1234-999"),
            ],
        ),
        person_ldif(
            "achim",
            &[
                ("cn", "Achim Strich"),
                ("sn", "Strich"),
                ("givenName", "Achim"),
                ("telephoneNumber", "n/a"),
                ("ipPhone", too_long),
            ],
        ),
        person_ldif(
            "andreas",
            &[
                ("cn", "Andreas Schulz (IT)"),
                ("sn", "Schulz"),
                ("givenName", "Andreas"),
                ("telephoneNumber", "+49 89 1234-826"),
                ("mobile", "0170 1234567"),
                ("facsimileTelephoneNumber", "+49 89 1234-999"),
            ],
        ),
        person_ldif(
            "bettina",
            &[
                ("cn", "Bettina Kunde"),
                ("sn", "Kunde"),
                ("givenName", "Bettina"),
                ("telephoneNumber", "(0)89/0859 929"),
                ("homePhone", "030 5678-1234"),
                ("ipPhone", "+41 44 1234 567"),
            ],
        ),
        person_ldif(
            "carla",
            &[
                ("cn", "Carla Intern"),
                ("sn", "Intern"),
                ("givenName", "Carla"),
                ("telephoneNumber", "827"),
                ("ipPhone", "intern 42"),
            ],
        ),
    ]
    .concat()
}

/// The configuration: `http` inside `[http]`, then `xml` (`[http.xml…]` tables) and
/// `outside_prefix` for the number plan.
fn config(http: &str, xml: &str, outside_prefix: &str) -> String {
    format!(
        r#"[store]
path = "data/phonebook.db"

[ldap]
listen = "127.0.0.1:0"

[http]
listen = "127.0.0.1:0"
{http}

{xml}

[numbers]
outside_prefix = "{outside_prefix}"
extensions = [{{ prefix = "+49891234", digits = 3 }}, {{ prefix = "+49 30 5678", digits = 4 }}]

[[connector]]
name = "file"
uri = "file:people.ldif"
base_dn = "ou=people,dc=example,dc=com"
filter = "(objectClass=inetOrgPerson)"
"#
    )
}

/// A workspace with `ldif` as `people.ldif` and `config`, synced, and `serve` running.
fn serve(ldif: &str, config: &str) -> (Workspace, Server) {
    let ws = Workspace::new(config);
    std::fs::write(ws.path().join("people.ldif"), ldif).expect("write LDIF");
    ws.sync(&[], 0);
    let server = Server::start(&ws);
    (ws, server)
}

fn get(url: &str) -> Response {
    let r = curl(&[url]);
    assert_eq!(r.status, 200, "{url}: {}", String::from_utf8_lossy(&r.body));
    r
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a gzip stream of UTF-8");
    text
}

/// One listed entry (or, in Cisco's and Snom's books, one row) as the phone reads it: who,
/// and each number with its label. Cisco rows carry no label; their name says the kind.
type Listing = Vec<(String, Vec<(String, String)>)>;

fn child_text(node: roxmltree::Node, tag: &str) -> String {
    node.children()
        .find(|c| c.has_tag_name(tag))
        .and_then(|c| c.text())
        .unwrap_or_default()
        .to_owned()
}

/// Reads `xml` the way `book`'s phone does.
fn parse(book: &str, xml: &str) -> Listing {
    let doc = roxmltree::Document::parse(xml)
        .unwrap_or_else(|e| panic!("{book} is not well-formed ({e}):\n{xml}"));
    let root = doc.root_element();
    let expected_root = match book {
        "yealink" => "YealinkIPPhoneDirectory",
        "cisco" => "CiscoIPPhoneDirectory",
        "snom" => "tbook",
        "grandstream" => "AddressBook",
        "fanvil" => "PhoneBook",
        other => panic!("no book {other}"),
    };
    assert_eq!(root.tag_name().name(), expected_root, "{book}");
    let elements = |tag: &'static str| {
        root.children()
            .filter(move |n| n.has_tag_name(tag))
            .collect::<Vec<_>>()
    };
    let one = |number: String, label: String| {
        if number.is_empty() {
            vec![]
        } else {
            vec![(label, number)]
        }
    };
    match book {
        "yealink" => elements("DirectoryEntry")
            .into_iter()
            .map(|e| {
                let numbers = e
                    .children()
                    .filter(|c| c.has_tag_name("Telephone"))
                    .map(|t| {
                        (
                            t.attribute("label").unwrap_or_default().to_owned(),
                            t.text().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                (child_text(e, "Name"), numbers)
            })
            .collect(),
        "fanvil" => elements("DirectoryEntry")
            .into_iter()
            .map(|e| {
                let numbers = e
                    .children()
                    .filter(|c| c.is_element() && !c.has_tag_name("Name"))
                    .map(|t| {
                        (
                            t.tag_name().name().to_owned(),
                            t.text().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                (child_text(e, "Name"), numbers)
            })
            .collect(),
        "grandstream" => elements("Contact")
            .into_iter()
            .map(|e| {
                let numbers = e
                    .children()
                    .filter(|c| c.has_tag_name("Phone"))
                    .map(|p| {
                        (
                            p.attribute("type").unwrap_or_default().to_owned(),
                            child_text(p, "phonenumber"),
                        )
                    })
                    .collect();
                (child_text(e, "LastName"), numbers)
            })
            .collect(),
        "snom" => elements("item")
            .into_iter()
            .map(|e| {
                (
                    child_text(e, "name"),
                    one(child_text(e, "number"), child_text(e, "number_type")),
                )
            })
            .collect(),
        "cisco" => elements("DirectoryEntry")
            .into_iter()
            .map(|e| {
                (
                    child_text(e, "Name"),
                    one(child_text(e, "Telephone"), String::new()),
                )
            })
            .collect(),
        other => panic!("no book {other}"),
    }
}

/// What `book` must list with numbers in `FORMATS[format]`; `keep`: the unlisted people
/// too, without numbers.
fn expected(book: &str, format: usize, keep: bool) -> Listing {
    let mut out: Listing = Vec::new();
    if keep {
        for (name, last) in UNLISTED {
            let who = if book == "grandstream" { last } else { name };
            out.push((who.to_owned(), vec![]));
        }
    }
    for p in &LISTED {
        let numbers = p
            .numbers
            .iter()
            .map(|(kind, forms)| (label(book, *kind).to_owned(), forms[format].to_owned()));
        match book {
            "snom" => out.extend(numbers.map(|n| (p.name.to_owned(), vec![n]))),
            "cisco" => {
                // Every listed person has more than one number, so each row names its kind.
                for (kind, forms) in p.numbers {
                    let word = label(book, *kind);
                    let name = match p.name.strip_suffix(')') {
                        Some(open) => format!("{open}, {word})"),
                        None => format!("{} ({word})", p.name),
                    };
                    out.push((name, vec![(String::new(), forms[format].to_owned())]));
                }
            }
            "grandstream" => out.push((p.last.to_owned(), numbers.collect())),
            _ => out.push((p.name.to_owned(), numbers.collect())),
        }
    }
    out
}

/// `[http.xml.<book>] number_format` for each book.
fn per_book(formats: &[(&str, &str)]) -> String {
    formats
        .iter()
        .map(|(book, format)| format!("[http.xml.{book}]\nnumber_format = \"{format}\"\n"))
        .collect()
}

#[test]
fn every_book_writes_every_format_value_by_value() {
    // Four servers; in each, every book has another format, so that every book is read in
    // every format and no two books share one.
    for round in 0..FORMATS.len() {
        let formats: Vec<(&str, &str)> = BOOKS
            .iter()
            .enumerate()
            .map(|(i, book)| (*book, FORMATS[(i + round) % FORMATS.len()]))
            .collect();
        let (_ws, server) = serve(&directory(), &config("", &per_book(&formats), "0"));
        let base = server.http_url();
        for (book, format) in &formats {
            let xml = get(&format!("{base}/phonebook/{book}.xml")).text();
            let index = FORMATS.iter().position(|f| f == format).unwrap();
            assert_eq!(
                parse(book, &xml),
                expected(book, index, false),
                "{book} in {format}:\n{xml}"
            );
            for (name, last) in UNLISTED {
                assert!(
                    !xml.contains(name) && !xml.contains(last),
                    "{book}: {name} is listed"
                );
            }
            assert!(!xml.contains("999"), "{book}: a fax is listed");
            if *book == "snom" {
                assert!(xml.contains("<tbook complete=\"true\">"), "{xml}");
            }
            if *book == "cisco" {
                assert!(xml.contains("<Prompt>Page 1 of 1</Prompt>"), "{xml}");
                assert!(!xml.contains("<Name>Next</Name>"), "{xml}");
                assert!(!xml.contains("<Name>Previous</Name>"), "{xml}");
            }
        }
        server.stop();
    }
}

#[test]
fn entries_without_a_number_are_kept_with_the_option_and_dialable_is_the_default() {
    let xml = "[http.xml]\nkeep_without_number = true\n";
    let (_ws, server) = serve(&directory(), &config("", xml, "0"));
    let base = server.http_url();
    let dialable = FORMATS.iter().position(|f| *f == "dialable").unwrap();
    for book in BOOKS {
        let xml = get(&format!("{base}/phonebook/{book}.xml")).text();
        assert_eq!(
            parse(book, &xml),
            expected(book, dialable, true),
            "{book}:\n{xml}"
        );
        assert!(
            !xml.contains("n/a") && !xml.contains("999"),
            "{book}:\n{xml}"
        );
    }
    server.stop();
}

#[test]
fn the_row_cap_counts_only_what_is_listed() {
    // Seven rows of numbers in Snom's and Cisco's books, after three people without one.
    let (_ws, server) = serve(&directory(), &config("xml_max_rows = 7", "", "0"));
    let base = server.http_url();
    let snom = get(&format!("{base}/phonebook/snom.xml")).text();
    assert!(snom.contains("<tbook complete=\"true\">"), "{snom}");
    assert_eq!(parse("snom", &snom), expected("snom", 3, false));
    let cisco = get(&format!("{base}/phonebook/cisco.xml")).text();
    assert_eq!(parse("cisco", &cisco), expected("cisco", 3, false));
    server.stop();

    // Kept, the three take rows of their own: the cap cuts Bettina's last number.
    let (_ws, server) = serve(
        &directory(),
        &config(
            "xml_max_rows = 7",
            "[http.xml]\nkeep_without_number = true\n",
            "0",
        ),
    );
    let base = server.http_url();
    let snom = get(&format!("{base}/phonebook/snom.xml")).text();
    assert!(snom.contains("<tbook complete=\"false\">"), "{snom}");
    let mut seven = expected("snom", 3, true);
    seven.truncate(7);
    assert_eq!(parse("snom", &snom), seven);
    let yealink = get(&format!("{base}/phonebook/yealink.xml")).text();
    assert_eq!(parse("yealink", &yealink), expected("yealink", 3, true));
    server.stop();
}

/// Polls `condition` until it holds; panics with `what` after [`DEADLINE`].
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn books_have_etags_answer_304_and_come_gzipped() {
    // One format for all books, others for Yealink and Snom.
    let xml = "[http.xml]\nnumber_format = \"national\"\n[http.xml.yealink]\nnumber_format = \"e164\"\n[http.xml.snom]\nnumber_format = \"dialable\"\n";
    let (ws, server) = serve(&directory(), &config("", xml, "0"));
    let base = server.http_url();
    let url = |book: &str| format!("{base}/phonebook/{book}.xml");
    let plain = get(&url("yealink"));
    assert_eq!(
        plain.header("content-type"),
        Some("text/xml; charset=utf-8")
    );
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(plain.header("cache-control"), Some("no-cache"));
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(
        parse("yealink", &plain.text()),
        expected("yealink", 1, false)
    );
    assert_eq!(
        parse("grandstream", &get(&url("grandstream")).text()),
        expected("grandstream", 2, false)
    );
    assert_eq!(
        parse("snom", &get(&url("snom")).text()),
        expected("snom", 3, false)
    );
    let etag = plain.header("etag").expect("ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );

    let again = curl(&["-H", &format!("If-None-Match: {etag}"), &url("yealink")]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_eq!(again.header("vary"), Some("Accept-Encoding"));
    assert_eq!(again.header("cache-control"), Some("no-cache"));

    let gzip = curl(&["-H", "Accept-Encoding: gzip", &url("yealink")]);
    assert_eq!(gzip.status, 200);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gzip.header("vary"), Some("Accept-Encoding"));
    let gz_etag = gzip.header("etag").expect("ETag").to_owned();
    assert_ne!(gz_etag, etag, "each encoding is its own representation");
    assert_eq!(
        gunzip(&gzip.body),
        plain.text(),
        "the same book, compressed"
    );
    let gz_again = curl(&[
        "-H",
        "Accept-Encoding: gzip",
        "-H",
        &format!("If-None-Match: {gz_etag}"),
        &url("yealink"),
    ]);
    assert_eq!(gz_again.status, 304);
    assert_eq!(gz_again.header("etag"), Some(gz_etag.as_str()));
    // Cisco's page is built whole: compressed whole.
    let cisco = curl(&["-H", "Accept-Encoding: gzip", &url("cisco")]);
    assert_eq!(cisco.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&cisco.body), get(&url("cisco")).text());

    // Another book, another query, another page: another ETag.
    let etag_of = |path: &str| {
        get(&format!("{base}/phonebook/{path}"))
            .header("etag")
            .expect("ETag")
            .to_owned()
    };
    let tags = [
        etag.clone(),
        etag_of("snom.xml"),
        etag_of("yealink.xml?q=Schulz"),
        etag_of("yealink.xml?q=Kunde"),
        etag_of("cisco.xml"),
        etag_of("cisco.xml?page=2"),
    ];
    for (i, a) in tags.iter().enumerate() {
        for b in &tags[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(etag_of("yealink.xml"), etag, "unchanged: the same ETag");
    let snom_etag = etag_of("snom.xml");

    // A reload that changes only the outside prefix changes every `dialable` number, though
    // no entry (and not the snapshot's version) changed: the old ETag must get the new book.
    ws.write_config(&config("", xml, "9"));
    signal(server.pid(), SIGHUP).expect("SIGHUP");
    eventually("the reload", || {
        server.log().contains("configuration reloaded")
    });
    let changed = curl(&["-H", &format!("If-None-Match: {snom_etag}"), &url("snom")]);
    assert_eq!(changed.status, 200, "the old ETag gets the new book");
    assert_ne!(changed.header("etag"), Some(snom_etag.as_str()));
    let numbers: Vec<String> = parse("snom", &changed.text())
        .into_iter()
        .flat_map(|(_, n)| n.into_iter().map(|(_, number)| number))
        .collect();
    assert_eq!(
        numbers,
        [
            "826",
            "901701234567",
            "90890859929",
            "1234",
            "90041441234567",
            "827",
            "intern 42"
        ]
    );
    server.stop();
}

#[test]
fn a_streamed_book_is_gzipped_as_it_streams() {
    let mut ldif = PEOPLE_OU.to_owned();
    for i in 0..3000 {
        ldif.push_str(&person_ldif(
            &format!("p{i:04}"),
            &[
                ("cn", &format!("Person {i:04}")),
                ("sn", &format!("Person{i:04}")),
                ("telephoneNumber", &format!("+49 89 2000 {i:04}")),
                ("mobile", &format!("+49 170 2000 {i:04}")),
            ],
        ));
    }
    let (_ws, server) = serve(&ldif, &config("", "", "0"));
    let url = format!("{}/phonebook/yealink.xml", server.http_url());
    let plain = get(&url);
    assert!(plain.body.len() > 256 * 1024, "{} bytes", plain.body.len());
    assert_eq!(plain.header("content-length"), None, "streamed");
    let gzip = curl(&["-H", "Accept-Encoding: gzip", &url]);
    assert_eq!(gzip.status, 200);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert!(
        gzip.body.len() < plain.body.len() / 4,
        "{} bytes",
        gzip.body.len()
    );
    let text = gunzip(&gzip.body);
    assert_eq!(text, plain.text());
    let entries = parse("yealink", &text);
    assert_eq!(entries.len(), 3000);
    assert_eq!(
        entries[7],
        (
            "Person 0007".to_owned(),
            vec![
                ("Business".to_owned(), "008920000007".to_owned()),
                ("Mobile".to_owned(), "0017020000007".to_owned()),
            ]
        )
    );
    let etag = gzip.header("etag").expect("ETag");
    let again = curl(&[
        "-H",
        "Accept-Encoding: gzip",
        "-H",
        &format!("If-None-Match: {etag}"),
        &url,
    ]);
    assert_eq!(again.status, 304);
    server.stop();
}

#[test]
fn cisco_pages_turn_both_ways_stop_at_the_last_and_name_kinds_in_one_bracket() {
    let mut ldif = directory();
    for i in 0..40 {
        ldif.push_str(&person_ldif(
            &format!("p{i:02}"),
            &[
                ("cn", &format!("Person {i:02}")),
                ("sn", &format!("Person{i:02}")),
                ("telephoneNumber", &format!("+49 89 1234-{:03}", 100 + i)),
            ],
        ));
    }
    let (_ws, server) = serve(&ldif, &config("", "", "0"));
    let base = server.http_url();
    let host = base.trim_start_matches("http://");
    let page = |query: &str| get(&format!("{base}/phonebook/cisco.xml{query}")).text();
    let doc_keys = |xml: &str| -> Vec<(String, String)> {
        let doc = roxmltree::Document::parse(xml).expect("XML");
        doc.root_element()
            .children()
            .filter(|n| n.has_tag_name("SoftKeyItem"))
            .map(|k| (child_text(k, "Name"), child_text(k, "URL")))
            .collect()
    };
    // 7 rows of the hand-written people and 40 more: two pages.
    let first = page("");
    assert!(first.contains("<Prompt>Page 1 of 2</Prompt>"), "{first}");
    assert_eq!(parse("cisco", &first).len(), 32);
    let next = format!("http://{host}/phonebook/cisco.xml?page=2");
    assert_eq!(
        doc_keys(&first),
        [
            ("Dial".to_owned(), "SoftKey:Dial".to_owned()),
            ("Next".to_owned(), next.clone()),
            ("Exit".to_owned(), "SoftKey:Exit".to_owned()),
        ]
    );
    // The phone follows the Next key.
    let second = get(&next).text();
    assert_eq!(second, page("?page=2"));
    assert!(second.contains("<Prompt>Page 2 of 2</Prompt>"), "{second}");
    assert_eq!(parse("cisco", &second).len(), 15);
    let previous = format!("http://{host}/phonebook/cisco.xml?page=1");
    assert_eq!(
        doc_keys(&second),
        [
            ("Dial".to_owned(), "SoftKey:Dial".to_owned()),
            ("Previous".to_owned(), previous.clone()),
            ("Exit".to_owned(), "SoftKey:Exit".to_owned()),
        ]
    );
    assert_eq!(get(&previous).text(), first);
    // Past the last page: the last page, never a wrap to the first.
    for past in [
        "3",
        "1000",
        "18446744073709551617",
        "99999999999999999999999999",
    ] {
        assert_eq!(page(&format!("?page={past}")), second, "page={past}");
    }
    assert_eq!(
        curl(&[&format!("{base}/phonebook/cisco.xml?page=0")]).status,
        400
    );

    // Names that end in brackets take the kind inside them.
    let names: Vec<String> = parse("cisco", &first).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.starts_with(&[
            "Andreas Schulz (IT, Business)".to_owned(),
            "Andreas Schulz (IT, Mobile)".to_owned(),
            "Bettina Kunde (Business)".to_owned(),
        ]),
        "{names:?}"
    );
    assert!(
        names.contains(&"Person 00".to_owned()),
        "one number: no kind"
    );
    for xml in [&first, &second] {
        assert!(!xml.contains(") ("), "double brackets:\n{xml}");
    }

    // A search pages too, and its links keep the query.
    let searched = page("?q=person");
    assert!(
        searched.contains("<Prompt>Page 1 of 2</Prompt>"),
        "{searched}"
    );
    let keys = doc_keys(&searched);
    let next = &keys[1];
    assert_eq!(next.0, "Next");
    assert_eq!(
        next.1,
        format!("http://{host}/phonebook/cisco.xml?page=2&q=person")
    );
    let searched_second = get(&next.1).text();
    assert_eq!(parse("cisco", &searched_second).len(), 8);
    assert_eq!(
        doc_keys(&searched_second)[1].1,
        format!("http://{host}/phonebook/cisco.xml?page=1&q=person")
    );
    server.stop();
}
