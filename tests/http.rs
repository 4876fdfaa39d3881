//! Integration tests of the HTTP endpoint: the real binary's `serve`, data synced from a real
//! slapd, and `curl` as the client.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::{ldap_config, Workspace};
use support::curl::{curl, Response};
use support::gen::{person_ldif, PEOPLE_OU};
use support::server::Server;
use support::slapd::Slapd;

fn get(url: &str) -> Response {
    curl(&[url])
}

/// A POST as a script sends it: the admin API refuses changes without a JSON body or this
/// header (a cross-site form can send neither).
fn post(url: &str) -> Response {
    curl(&["-X", "POST", "-H", "X-Requested-With: test", url])
}

/// People with known numbers in several notations.
fn directory() -> String {
    [
        PEOPLE_OU.to_owned(),
        person_ldif(
            "juergen",
            &[
                ("cn", "Jürgen Müller"),
                ("sn", "Müller"),
                ("givenName", "Jürgen"),
                ("o", "Bäckerei & Söhne <GmbH>"),
                ("telephoneNumber", "+49 (89) 1234-567"),
                ("mobile", "0170 1234567"),
            ],
        ),
        person_ldif(
            "anna",
            &[
                ("cn", "Anna Weiß"),
                ("sn", "Weiß"),
                ("telephoneNumber", "089 7654321"),
            ],
        ),
        person_ldif(
            "eleni",
            &[
                ("cn", "Ελένη Παπαδοπούλου"),
                ("sn", "Παπαδοπούλου"),
                ("telephoneNumber", "+30 21 0123 4567"),
            ],
        ),
        person_ldif("wang", &[("cn", "王伟"), ("sn", "王")]),
    ]
    .concat()
}

/// slapd with the directory, a workspace synced from it, and `serve` running on free ports.
fn setup(extra: &str) -> (Slapd, Workspace, Server) {
    let slapd = Slapd::builder()
        .ldif(directory())
        .start()
        .expect("start slapd");
    let config = format!(
        "[ldap]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n{extra}\n{}",
        ldap_config("corp", &slapd.url(), "max_removals = \"100%\"")
    );
    let ws = Workspace::new(&config);
    ws.sync(&[], 0);
    let server = Server::start(&ws);
    (slapd, ws, server)
}

fn names(entries: &Value) -> Vec<String> {
    entries
        .as_array()
        .expect("entries array")
        .iter()
        .map(|e| e["display_name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn feed_matches_the_export_and_honours_etag_and_gzip() {
    let (_slapd, ws, server) = setup("");
    let base = server.http_url();
    let feed = get(&format!("{base}/api/v1/entries"));
    assert_eq!(feed.status, 200);
    assert_eq!(feed.header("content-type"), Some("application/json"));
    let etag = feed.header("etag").expect("ETag").to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "a strong ETag: {etag}"
    );

    let not_modified = curl(&[
        "-H",
        &format!("If-None-Match: {etag}"),
        &format!("{base}/api/v1/entries"),
    ]);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());

    let gzip = curl(&[
        "-H",
        "Accept-Encoding: gzip",
        &format!("{base}/api/v1/entries"),
    ]);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert!(gzip.body.len() < feed.body.len());
    let inflated = curl(&["--compressed", &format!("{base}/api/v1/entries")]);
    assert_eq!(
        inflated.json(),
        feed.json(),
        "gzip carries the same document"
    );

    server.stop();
    assert_eq!(feed.json(), ws.export(), "the feed is the export");
}

#[test]
fn etag_changes_exactly_when_a_sync_changes_something() {
    let (slapd, _ws, server) = setup("");
    let base = server.http_url();
    let etag = |r: Response| r.header("etag").expect("ETag").to_owned();
    let first = etag(get(&format!("{base}/api/v1/entries")));

    let report = post(&format!("{base}/api/v1/connectors/corp/sync"));
    assert_eq!(report.status, 200, "{}", report.text());
    assert_eq!(report.json()["unchanged"], 4);
    assert_eq!(
        etag(get(&format!("{base}/api/v1/entries"))),
        first,
        "an unchanged sync keeps the ETag"
    );

    slapd
        .ldapmodify("dn: uid=anna,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: cn\ncn: Anna Weiss-Neu\n")
        .expect("modify upstream");
    let dry = post(&format!("{base}/api/v1/connectors/corp/sync?dry_run=true"));
    assert_eq!(dry.status, 200);
    assert_eq!(dry.json()["updated"], 1);
    assert_eq!(dry.json()["changes"][0]["display_name"], "Anna Weiss-Neu");
    assert_eq!(
        etag(get(&format!("{base}/api/v1/entries"))),
        first,
        "a dry run changes nothing"
    );

    let applied = post(&format!("{base}/api/v1/connectors/corp/sync"));
    assert_eq!(applied.json()["updated"], 1);
    let second = etag(get(&format!("{base}/api/v1/entries")));
    assert_ne!(second, first);
    let stale = curl(&[
        "-H",
        &format!("If-None-Match: {first}"),
        &format!("{base}/api/v1/entries"),
    ]);
    assert_eq!(stale.status, 200, "an old ETag gets the new book");
    assert!(names(&stale.json()["entries"]).contains(&"Anna Weiss-Neu".to_owned()));
}

#[test]
fn search_is_case_accent_and_format_insensitive() {
    let (_slapd, _ws, server) = setup("");
    let base = server.http_url();
    let search = |q: &str| {
        let r = curl(&[
            "-G",
            "--data-urlencode",
            &format!("q={q}"),
            &format!("{base}/api/v1/entries"),
        ]);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        names(&r.json()["entries"])
    };
    assert_eq!(search("MULLER"), ["Jürgen Müller"]);
    assert_eq!(search("weiss"), ["Anna Weiß"]);
    assert_eq!(search("söhne"), ["Jürgen Müller"], "company");
    assert_eq!(
        search("089 1234567"),
        ["Jürgen Müller"],
        "national form of +49 (89) 1234-567"
    );
    assert_eq!(search("+49 89 765"), ["Anna Weiß"]);
    assert_eq!(search("ελένη"), ["Ελένη Παπαδοπούλου"]);
    assert!(search("nobody-here").is_empty());
    let limited = get(&format!("{base}/api/v1/entries?q=a&limit=1"));
    assert_eq!(limited.json()["entries"].as_array().map(Vec::len), Some(1));
    for bad in ["q=a&limit=0", "q=a&limit=x", "q=", "limit=5"] {
        let r = get(&format!("{base}/api/v1/entries?{bad}"));
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["error"].is_string());
    }
}

#[test]
fn lookup_finds_a_caller_from_every_notation() {
    let (_slapd, _ws, server) = setup("");
    let base = server.http_url();
    for number in [
        "+49891234567",
        "0049891234567",
        "089 1234567",
        "0891234567",
        "891234567",
        "+49 (0)89 1234-567",
    ] {
        let r = curl(&[
            "-G",
            "--data-urlencode",
            &format!("number={number}"),
            &format!("{base}/api/v1/lookup"),
        ]);
        assert_eq!(r.status, 200, "{number}: {}", r.text());
        assert_eq!(r.json()["display_name"], "Jürgen Müller", "{number}");
        assert_eq!(r.json()["e164"], "+49891234567");
    }
    // An unencoded `+` arrives as a space and still works; mobile numbers are found too.
    let plus = get(&format!(
        "{base}/api/v1/lookup?number=+491701234567&format=text"
    ));
    assert_eq!(
        (plus.status, plus.text()),
        (200, "Jürgen Müller".to_owned())
    );
    assert_eq!(
        plus.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    let unknown = get(&format!("{base}/api/v1/lookup?number=+4930999999"));
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"]
        .as_str()
        .unwrap_or_default()
        .contains("no entry"));
    assert_eq!(
        get(&format!(
            "{base}/api/v1/lookup?number=+4930999999&format=text"
        ))
        .status,
        404
    );
    // An empty number is a withheld caller: answered, not refused (tests/lookup.rs).
    assert_eq!(
        get(&format!("{base}/api/v1/lookup?number=")).json()["withheld"],
        true
    );
    for bad in [
        "",
        "?number=abc",
        "?number=12",
        "?number=0891234567&format=xml",
    ] {
        assert_eq!(
            get(&format!("{base}/api/v1/lookup{bad}")).status,
            400,
            "{bad:?}"
        );
    }
}

#[test]
fn status_metrics_health_and_errors() {
    let (_slapd, _ws, server) = setup("");
    let base = server.http_url();
    assert_eq!(get(&format!("{base}/healthz")).status, 200);

    let status = get(&format!("{base}/api/v1/status")).json();
    assert_eq!(status["entries"], 4);
    let corp = &status["connectors"][0];
    assert_eq!(corp["name"], "corp");
    assert_eq!(corp["entries"], 4);
    assert_eq!(corp["last_run"]["outcome"], "applied");
    assert_eq!(corp["last_run"]["created"], 4);
    assert!(
        !status.to_string().contains("proxy-secret"),
        "status never shows a password"
    );

    let _ = get(&format!("{base}/api/v1/lookup?number=+49891234567"));
    let metrics = get(&format!("{base}/metrics"));
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for needle in [
        "phonebook_entries 4",
        "phonebook_ldap_open_connections ",
        "phonebook_http_requests_total{route=\"/api/v1/lookup\",status=\"200\"} 1",
        "phonebook_ldap_search_seconds_count ",
        "phonebook_sync_seconds_count ",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }

    let unknown = post(&format!("{base}/api/v1/connectors/hr/sync"));
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"]
        .as_str()
        .unwrap_or_default()
        .contains("hr"));
    assert_eq!(
        post(&format!("{base}/api/v1/connectors/corp/sync?dry_run=maybe")).status,
        400
    );
    assert_eq!(
        post(&format!("{base}/api/v1/connectors/corp/sync?colour=red")).status,
        400
    );
    assert_eq!(get(&format!("{base}/no/such/page")).status, 404);
    let long = "x".repeat(201);
    assert_eq!(get(&format!("{base}/api/v1/entries?q={long}")).status, 400);
    // Bodies are only read by the admin endpoints; one over 16 KiB is refused unread.
    let big = format!(
        "{{\"name\":\"{}\",\"uri\":\"ldap://x\"}}",
        "x".repeat(64 * 1024)
    );
    let oversized = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &big,
        &format!("{base}/api/v1/preview"),
    ]);
    assert_eq!(oversized.status, 413, "{}", oversized.text());
    let garbage = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        "{not json",
        &format!("{base}/api/v1/preview"),
    ]);
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    assert!(garbage.json()["error"].is_string());
}

/// Monitoring sees a failing connector: the run history, its last success and its failure
/// streak, in status, in `GET …/runs` and in the metrics.
#[test]
fn run_history_and_health_in_status_runs_and_metrics() {
    let (slapd, _ws, server) = setup("");
    let base = server.http_url();
    drop(slapd); // the upstream is gone: every sync from now on fails
    for _ in 0..2 {
        assert_eq!(
            post(&format!("{base}/api/v1/connectors/corp/sync")).status,
            502
        );
    }
    let history = get(&format!("{base}/api/v1/connectors/corp/runs")).json();
    let outcomes: Vec<&str> = history["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        outcomes,
        ["failed", "failed", "applied"],
        "newest first: {history}"
    );
    assert!(history["runs"][0]["error"].is_string(), "{history}");
    let applied_at = history["runs"][2]["finished_at"].clone();
    assert_eq!(history["last_success"], applied_at);
    assert_eq!(history["consecutive_failures"], 2);

    let status = get(&format!("{base}/api/v1/status")).json();
    let corp = &status["connectors"][0];
    assert_eq!(corp["last_success"], applied_at, "{status}");
    assert_eq!(corp["consecutive_failures"], 2);
    assert_eq!(corp["entries"], 4, "the last good book is still served");
    assert_eq!(corp["last_run"]["outcome"], "failed");

    let text = get(&format!("{base}/metrics")).text();
    for needle in [
        "phonebook_connector_entries{connector=\"corp\"} 4\n",
        "phonebook_consecutive_failures{connector=\"corp\"} 2\n",
        "phonebook_last_success_timestamp_seconds{connector=\"corp\"} ",
        "phonebook_build_info{version=\"",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
    assert_eq!(
        get(&format!("{base}/api/v1/connectors/hr/runs")).status,
        404
    );
}

/// "Test connection" for a profile as typed: the upstream's answer, or why it failed;
/// nothing written.
#[test]
fn probe_tests_a_profile_against_its_upstream() {
    let (slapd, ws, server) = setup("");
    let base = server.http_url();
    let before = std::fs::read_to_string(ws.config_path()).expect("config");
    let probe = |password: &str, base_dn: &str| {
        let body = serde_json::json!({
            "name": "trial",
            "uri": slapd.url(),
            "base_dn": base_dn,
            "bind_dn": "cn=phonebook-proxy,dc=example,dc=com",
            "password": password,
            "filter": "(objectClass=inetOrgPerson)",
        })
        .to_string();
        curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
            &format!("{base}/api/v1/probe"),
        ])
    };
    let ok = probe("proxy-secret", "ou=people,dc=example,dc=com");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["fetched"], 4, "{}", ok.text());
    assert_eq!(ok.json()["entries"], 4, "{}", ok.text());
    let wrong = probe("not-the-password", "ou=people,dc=example,dc=com");
    assert_eq!(wrong.status, 502, "{}", wrong.text());
    assert!(wrong.json()["error"]
        .as_str()
        .unwrap_or_default()
        .contains("wrong bind_dn or password"));
    assert!(
        !wrong.text().contains("not-the-password"),
        "no password echoed"
    );
    let nowhere = probe("proxy-secret", "ou=nobody,dc=example,dc=com");
    assert_eq!(nowhere.status, 502, "{}", nowhere.text());
    assert!(nowhere.json()["error"]
        .as_str()
        .unwrap_or_default()
        .contains("does not exist"));
    assert_eq!(
        std::fs::read_to_string(ws.config_path()).expect("config"),
        before,
        "a probe writes nothing"
    );
}

#[test]
fn a_second_trigger_while_one_runs_gets_409() {
    let (mut slapd, _ws, server) = setup("");
    let base = server.http_url();
    slapd.pause().expect("SIGSTOP slapd");
    let url = format!("{base}/api/v1/connectors/corp/sync");
    let first = std::thread::spawn(move || post(&url));
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&format!("{base}/api/v1/status")).json()["connectors"][0]["running"] != true {
        assert!(Instant::now() < deadline, "the first sync never started");
        std::thread::yield_now();
    }
    let second = post(&format!("{base}/api/v1/connectors/corp/sync"));
    assert_eq!(second.status, 409, "{}", second.text());
    slapd.resume().expect("SIGCONT slapd");
    let first = first.join().expect("first trigger");
    assert_eq!(first.status, 200, "{}", first.text());
}

#[test]
fn xml_books_parse_and_hold_the_entries() {
    let (_slapd, _ws, server) = setup("");
    let base = server.http_url();
    // Yealink, Grandstream and Fanvil list people (not Wang, who has no number); Cisco and
    // Snom list one row per number (Jürgen has two).
    for (file, root, element, count) in [
        (
            "yealink.xml",
            "YealinkIPPhoneDirectory",
            "DirectoryEntry",
            3,
        ),
        ("cisco.xml", "CiscoIPPhoneDirectory", "DirectoryEntry", 4),
        ("snom.xml", "tbook", "item", 4),
        ("grandstream.xml", "AddressBook", "Contact", 3),
        ("fanvil.xml", "PhoneBook", "DirectoryEntry", 3),
    ] {
        let r = get(&format!("{base}/phonebook/{file}"));
        assert_eq!(r.status, 200, "{file}");
        let text = r.text();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{file} is not XML ({e}):\n{text}"));
        assert_eq!(doc.root_element().tag_name().name(), root, "{file}");
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_tag_name(element))
                .count(),
            count,
            "{file}:\n{text}"
        );
        assert!(
            text.contains("+49891234567"),
            "{file} lists Jürgen's number in dialable form"
        );
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("Jürgen Müller") || *t == "Müller"),
            "{file}: {texts:?}"
        );
        assert!(
            !text.contains("Söhne <GmbH>"),
            "{file}: markup in values is escaped"
        );
    }
    let searched = get(&format!("{base}/phonebook/yealink.xml?q=weiss"));
    let doc_text = searched.text();
    let doc = roxmltree::Document::parse(&doc_text).expect("XML");
    let entries: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Name"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(entries, ["Anna Weiß"]);
    assert_eq!(get(&format!("{base}/phonebook/nokia.xml")).status, 404);
}

#[test]
fn the_token_protects_the_api_but_not_health() {
    let slapd = Slapd::builder()
        .ldif(directory())
        .start()
        .expect("start slapd");
    let config = format!(
        "[ldap]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"PB_TEST_TOKEN\"\n{}",
        ldap_config("corp", &slapd.url(), "")
    );
    let ws = Workspace::new(&config);
    let synced = ws.run_with_env(&["sync"], &[("PB_TEST_TOKEN", "s3cret-token")]);
    assert_eq!(synced.code, 0, "{synced:?}");
    let server = Server::start_with_env(&ws, &[("PB_TEST_TOKEN", "s3cret-token")]);
    let base = server.http_url();
    for path in [
        "/api/v1/entries",
        "/api/v1/status",
        "/api/v1/lookup?number=+49891234567",
        "/metrics",
    ] {
        let url = format!("{base}{path}");
        assert_eq!(get(&url).status, 401, "{path} without a token");
        assert_eq!(
            curl(&["-H", "Authorization: Bearer wrong", &url]).status,
            401,
            "{path} with a wrong token"
        );
        assert_eq!(
            curl(&["-H", "Authorization: Bearer s3cret-token", &url]).status,
            200,
            "{path} with the token"
        );
    }
    assert_eq!(
        post(&format!("{base}/api/v1/connectors/corp/sync")).status,
        401
    );
    assert_eq!(get(&format!("{base}/healthz")).status, 200);
    let log = server.stop();
    assert!(
        !log.contains("s3cret-token"),
        "the token never reaches the log"
    );
}

#[test]
fn deleting_a_connector_takes_its_entries_out_of_the_served_book() {
    let slapd = Slapd::builder()
        .ldif(directory())
        .start()
        .expect("start slapd");
    let branch = ldap_config("branch", &slapd.url(), "")
        .replace("[store]\npath = \"data/phonebook.db\"\n", "");
    let config = format!(
        "[ldap]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n{}\n{branch}",
        ldap_config("corp", &slapd.url(), "")
    );
    let ws = Workspace::new(&config);
    assert_eq!(ws.run(&["sync"]).code, 0);
    let server = Server::start(&ws);
    let base = server.http_url();
    let count = || {
        get(&format!("{base}/api/v1/entries")).json()["entries"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(count(), 8);
    // branch's guard (max_removals = 10 %) holds back a delete that removes its 4 entries.
    let held = curl(&[
        "-X",
        "DELETE",
        "-H",
        "X-Requested-With: test",
        &format!("{base}/api/v1/connectors/branch"),
    ]);
    assert_eq!(held.status, 409, "{}", held.text());
    assert_eq!(held.json()["held_back"], true);
    assert_eq!(held.json()["entries"], 4);
    assert!(held.json()["error"]
        .as_str()
        .unwrap_or_default()
        .contains("max_removals"));
    assert_eq!(count(), 8, "a held-back delete changes nothing");
    // A rename takes them out just the same: held back too, file and book unchanged.
    let mut profile = get(&format!("{base}/api/v1/connectors")).json()[1].clone();
    assert_eq!(profile["name"], "branch");
    profile["name"] = "branch-office".into();
    let renamed = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "--data",
        &profile.to_string(),
        &format!("{base}/api/v1/connectors/branch"),
    ]);
    assert_eq!(renamed.status, 409, "{}", renamed.text());
    assert_eq!(renamed.json()["held_back"], true);
    assert!(renamed.json()["error"]
        .as_str()
        .unwrap_or_default()
        .starts_with("renaming branch would take its 4 entries"));
    assert_eq!(count(), 8, "a held-back rename changes nothing");
    assert_eq!(
        std::fs::read_to_string(ws.config_path()).expect("config"),
        config,
        "nor the file"
    );
    let deleted = curl(&[
        "-X",
        "DELETE",
        "-H",
        "X-Requested-With: test",
        &format!("{base}/api/v1/connectors/branch?force=true"),
    ]);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(
        count(),
        4,
        "the removed connector's people leave the phone book"
    );
    let file = std::fs::read_to_string(ws.config_path()).expect("config");
    assert!(
        !file.contains("name = \"branch\"") && file.contains("name = \"corp\""),
        "{file}"
    );
    let backup = std::fs::read_to_string(ws.path().join("phonebook.toml.bak")).expect("backup");
    assert_eq!(backup, config, "the previous file is kept beside it");
    assert_eq!(
        curl(&[
            "-X",
            "DELETE",
            "-H",
            "X-Requested-With: test",
            &format!("{base}/api/v1/connectors/branch"),
        ])
        .status,
        404
    );
    server.stop();
}
