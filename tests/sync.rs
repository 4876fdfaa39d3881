//! Integration tests of `sync`, `export` and `check-config`: the real binary against a real
//! OpenLDAP slapd started by the test (see tests/support/slapd.rs).

mod support;

use serde_json::Value;
use support::cli::{ldap_config, Workspace};
use support::gen::{self, person_ldif, GenOptions, GenStats, PEOPLE_OU};
use support::slapd::{Slapd, PROXY_PW};

/// A slapd holding `n` generated people (memberOf written for the offline load).
fn upstream(n: usize) -> (Slapd, GenStats) {
    let (ldif, stats) = gen::people_ldif(&GenOptions {
        n,
        seed: 7,
        with_memberof: true,
    });
    let slapd = Slapd::builder().ldif(ldif).start().expect("start slapd");
    (slapd, stats)
}

fn count(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {report}"))
}

fn ids(entries: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = entries
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn assert_no_secret(run_output: &str) {
    assert!(
        !run_output.contains(PROXY_PW),
        "a password leaked: {run_output}"
    );
}

#[test]
fn paged_pull_fetches_more_entries_than_the_unpaged_cap() {
    let (slapd, stats) = upstream(1_500);
    let ws = Workspace::new(&ldap_config(
        "corp",
        &slapd.url(),
        "page_size = 500\nid_attribute = \"entryUUID\"",
    ));
    let report = ws.sync(&[], 0);
    assert_eq!(count(&report, "fetched"), stats.people as u64);
    assert_eq!(count(&report, "created"), stats.people as u64);
    assert_eq!(count(&report, "invalid"), 0);
    let entries = ws.entries();
    assert_eq!(entries.len(), stats.people);
    // entryUUID is operational: it only arrives because the source asked for it by name.
    let id = entries[0]["id"].as_str().unwrap();
    assert!(
        id.len() == 36 && id.matches('-').count() == 4,
        "not an entryUUID: {id}"
    );

    // The cap is real: without paging the service account gets sizeLimitExceeded, and the
    // failed pull changes nothing.
    ws.write_config(&ldap_config(
        "corp",
        &slapd.url(),
        "page_size = 0\nid_attribute = \"entryUUID\"",
    ));
    let run = ws.run(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("sizeLimitExceeded"), "{}", run.stderr);
    assert_eq!(ws.entries().len(), stats.people);
}

#[test]
fn memberof_prefilter_keeps_only_phonebook_members() {
    let (slapd, stats) = upstream(600);
    let prefilter = "[[connector.prefilter]]\nattribute = \"memberOf\"\nmatches = \"(?i)^cn=company-phonebook,\"";
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), prefilter));
    let report = ws.sync(&[], 0);
    assert_eq!(count(&report, "fetched"), stats.people as u64);
    assert_eq!(count(&report, "created"), stats.phonebook as u64);
    assert_eq!(
        count(&report, "filtered_out"),
        (stats.people - stats.phonebook) as u64
    );

    let members: Vec<String> = gen::people(7, 600)
        .into_iter()
        .filter(|p| {
            p.groups
                .iter()
                .any(|g| g.starts_with("cn=company-phonebook,"))
        })
        .map(|p| p.dn.to_lowercase())
        .collect();
    let mut members = members;
    members.sort();
    assert_eq!(ids(&ws.entries()), members);
}

#[test]
fn mapping_keeps_utf8_names_and_normalises_every_number_format() {
    let ldif = [
        PEOPLE_OU.to_owned(),
        person_ldif(
            "juergen",
            &[
                ("cn", "Jürgen Müller"),
                ("sn", "Müller"),
                ("givenName", "Jürgen"),
                ("displayName", "Müller, Jürgen"),
                ("o", "Bäckerei Weiß GmbH"),
                ("telephoneNumber", "089 1234-567"),
                ("telephoneNumber", "+49 (0)89 1234567"),
                ("telephoneNumber", "0049 89 1234567"),
                ("mobile", "+49 (89) 1234-568"),
                ("homePhone", "(0)89/1234 569"),
                ("facsimileTelephoneNumber", "(555) 010-2030 ext. 123"),
            ],
        ),
        person_ldif(
            "eleni",
            &[
                ("cn", "Ελένη Παπαδοπούλου"),
                ("sn", "Παπαδοπούλου"),
                ("displayName", "Ελένη Παπαδοπούλου"),
                ("telephoneNumber", "+30 21 0123 4567"),
            ],
        ),
        person_ldif(
            "wang",
            &[("cn", "王伟"), ("sn", "王"), ("displayName", "王伟")],
        ),
        person_ldif(
            "nodisplay",
            &[("cn", "Ohne Anzeigename"), ("sn", "Anzeigename")],
        ),
    ]
    .concat();
    let slapd = Slapd::builder().ldif(ldif).start().expect("start slapd");
    let fields = "[connector.fields]\ndisplay_name = \"{displayName}\"\ncompany = \"{o}\"";
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), fields));
    let run = ws.run(&["sync", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.report();
    assert_eq!(
        (count(&report, "created"), count(&report, "invalid")),
        (3, 1)
    );
    assert!(
        run.stderr
            .contains("uid=nodisplay,ou=people,dc=example,dc=com")
            && run.stderr.contains("no display name"),
        "the invalid entry is named on stderr: {}",
        run.stderr
    );

    let entries = ws.entries();
    let by_name = |name: &str| {
        entries
            .iter()
            .find(|e| e["display_name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let juergen = by_name("Müller, Jürgen");
    assert_eq!(juergen["first_name"], "Jürgen");
    assert_eq!(juergen["company"], "Bäckerei Weiß GmbH");
    let business = juergen["business"].as_array().unwrap();
    let written: Vec<&str> = business
        .iter()
        .map(|p| p["written"].as_str().unwrap())
        .collect();
    assert_eq!(
        written,
        ["089 1234-567", "+49 (0)89 1234567", "0049 89 1234567"]
    );
    assert!(
        business.iter().all(|p| p["e164"] == "+49891234567"),
        "{business:?}"
    );
    assert_eq!(juergen["mobile"][0]["e164"], "+49891234568");
    assert_eq!(juergen["home"][0]["e164"], "+49891234569");
    assert_eq!(
        juergen["fax"][0]["written"], "(555) 010-2030 ext. 123",
        "kept as written"
    );
    assert!(
        juergen["fax"][0].get("e164").is_none(),
        "an extension has no E.164 form"
    );
    assert_eq!(
        by_name("Ελένη Παπαδοπούλου")["business"][0]["e164"],
        "+302101234567"
    );
    let wang = by_name("王伟");
    assert_eq!(wang["last_name"], "王");
    assert!(wang["business"].as_array().unwrap().is_empty());
}

#[test]
fn mirror_removes_what_vanished_upstream_and_merge_keeps_it() {
    let (slapd, stats) = upstream(200);
    let base = |name: &str, mode: &str| {
        format!(
            "\n[[connector]]\nname = \"{name}\"\nuri = \"{}\"\nbase_dn = \"ou=people,dc=example,dc=com\"\nbind_dn = \"cn=phonebook-proxy,dc=example,dc=com\"\npassword = \"proxy-secret\"\nfilter = \"(objectClass=inetOrgPerson)\"\nmode = \"{mode}\"\n",
            slapd.url()
        )
    };
    let config = format!(
        "[store]\npath = \"data/db\"\n{}{}",
        base("mirrored", "mirror"),
        base("merged", "merge")
    );
    let ws = Workspace::new(&config);
    let run = ws.run(&["sync", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run
        .json_lines()
        .iter()
        .all(|r| count(r, "created") == stats.people as u64));

    let gone: Vec<String> = gen::people(7, 5).into_iter().map(|p| p.dn).collect();
    slapd.delete_many(&gone).expect("delete upstream");
    let run = ws.run(&["sync", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let reports = run.json_lines();
    assert_eq!(reports[0]["connector"], "mirrored");
    assert_eq!(
        (
            count(&reports[0], "removed"),
            count(&reports[0], "unchanged")
        ),
        (5, stats.people as u64 - 5)
    );
    assert_eq!(
        (
            count(&reports[1], "removed"),
            count(&reports[1], "unchanged")
        ),
        (0, stats.people as u64 - 5)
    );

    let entries = ws.entries();
    let of = |c: &str| {
        entries
            .iter()
            .filter(|e| e["connector"] == c)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of("mirrored").len(), stats.people - 5);
    assert_eq!(
        of("merged").len(),
        stats.people,
        "merge never removes, and connectors never touch each other's entries"
    );
    let gone_ids: Vec<String> = gone.iter().map(|dn| dn.to_lowercase()).collect();
    assert!(ids(&of("mirrored")).iter().all(|id| !gone_ids.contains(id)));
    assert!(gone_ids.iter().all(|id| ids(&of("merged")).contains(id)));
}

#[test]
fn deletion_guard_holds_back_until_forced() {
    let (slapd, stats) = upstream(100);
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), "max_removals = \"10%\""));
    ws.sync(&[], 0);
    let before = ws.export();

    let gone: Vec<String> = gen::people(7, 20).into_iter().map(|p| p.dn).collect();
    slapd.delete_many(&gone).expect("delete upstream");
    let run = ws.run(&["sync", "--json"]);
    assert_eq!(run.code, 1, "a held-back sync exits 1: {run:?}");
    let report = run.report();
    assert_eq!(report["held_back"], true);
    assert_eq!(count(&report, "removed"), 20);
    // Who would go is listed, so it can be checked before forcing.
    let mut removed: Vec<String> = report["changes"]
        .as_array()
        .expect("a held-back report lists its changes")
        .iter()
        .filter(|c| c["action"] == "remove")
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    removed.sort();
    let mut expected: Vec<String> = gone.iter().map(|dn| dn.to_lowercase()).collect();
    expected.sort();
    assert_eq!(removed, expected);
    assert!(
        run.stderr.contains("deletion guard") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(ws.export(), before, "nothing applied while held back");

    let report = ws.sync(&["--force"], 0);
    assert_eq!(report["held_back"], false);
    assert_eq!(count(&report, "removed"), 20);
    assert_eq!(ws.entries().len(), stats.people - 20);
}

#[test]
fn dry_run_lists_changes_and_changes_nothing() {
    let (slapd, stats) = upstream(50);
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), ""));
    let report = ws.sync(&["--dry-run"], 0);
    assert_eq!(report["dry_run"], true);
    assert_eq!(count(&report, "created"), stats.people as u64);
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), stats.people);
    assert!(changes
        .iter()
        .all(|c| c["action"] == "create" && c["display_name"].is_string()));
    assert_eq!(ws.export()["generation"], 0);
    assert!(ws.entries().is_empty(), "a dry run writes nothing");

    ws.sync(&[], 0);
    let before = ws.export();
    let people = gen::people(7, 3);
    slapd.delete(&people[0].dn).expect("delete");
    slapd
        .ldapmodify(&format!(
            "dn: {}\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed Person\n",
            people[1].dn
        ))
        .expect("modify");
    slapd
        .ldapadd(&person_ldif(
            "newcomer",
            &[("cn", "New Comer"), ("sn", "Comer")],
        ))
        .expect("add");

    let report = ws.sync(&["--dry-run"], 0);
    let changes = report["changes"].as_array().unwrap();
    let find = |action: &str| {
        changes
            .iter()
            .filter(|c| c["action"] == action)
            .collect::<Vec<_>>()
    };
    assert_eq!(find("create").len(), 1);
    assert_eq!(find("create")[0]["display_name"], "New Comer");
    assert_eq!(find("update").len(), 1);
    assert_eq!(find("update")[0]["display_name"], "Renamed Person");
    assert_eq!(find("remove").len(), 1);
    assert_eq!(find("remove")[0]["id"], people[0].dn.to_lowercase());
    assert_eq!(ws.export(), before, "the dry run left the store as it was");

    // Without --json the same preview is a table.
    let run = ws.run(&["sync", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("ACTION"), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("create") && l.contains("New Comer")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("(dry run)"));
}

#[test]
fn resync_without_upstream_changes_reports_unchanged_and_writes_nothing() {
    let (slapd, stats) = upstream(80);
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), ""));
    ws.sync(&[], 0);
    let first = ws.export();
    let report = ws.sync(&[], 0);
    assert_eq!(count(&report, "unchanged"), stats.people as u64);
    for key in ["created", "updated", "removed"] {
        assert_eq!(count(&report, key), 0, "{key}");
    }
    assert_eq!(ws.export(), first, "same entries, same generation");
}

#[test]
fn upstream_down_fails_with_one_line_and_removes_nothing() {
    let (mut slapd, stats) = upstream(30);
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), ""));
    ws.sync(&[], 0);
    slapd.stop().expect("stop slapd");
    let run = ws.run(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert!(
        run.stderr
            .starts_with("connector \"corp\": cannot reach ldap://127.0.0.1:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    assert_no_secret(&run.all_output());
    assert_eq!(
        ws.entries().len(),
        stats.people,
        "a failed pull removes nothing"
    );

    // --json callers get a JSON line too.
    let run = ws.run(&["sync", "--json"]);
    assert_eq!(run.code, 1);
    assert!(run.report()["error"]
        .as_str()
        .unwrap()
        .contains("cannot reach"));
}

#[test]
fn wrong_password_fails_without_showing_it() {
    let (slapd, _) = upstream(10);
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), "").replace(
        "password = \"proxy-secret\"",
        "password = \"not-the-Secret-42\"",
    ));
    let run = ws.run(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("connector \"corp\"")
            && run.stderr.contains("wrong bind_dn or password"),
        "{}",
        run.stderr
    );
    assert!(!run.all_output().contains("not-the-Secret-42"));
}

#[test]
fn unknown_host_fails_with_one_line() {
    let ws = Workspace::new(&ldap_config(
        "corp",
        "ldap://no-such-host.invalid:389",
        "timeout = \"5s\"",
    ));
    let run = ws.run(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("connector \"corp\": cannot reach ldap://no-such-host.invalid:389"),
        "{}",
        run.stderr
    );
    assert_no_secret(&run.all_output());
}

#[test]
fn an_empty_upstream_answer_is_a_failure_unless_forced() {
    let (slapd, stats) = upstream(20);
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), ""));
    ws.sync(&[], 0);
    ws.write_config(
        &ldap_config("corp", &slapd.url(), "")
            .replace("(objectClass=inetOrgPerson)", "(cn=nobody-has-this-name)"),
    );
    let run = ws.run(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("returned no entries"), "{}", run.stderr);
    assert_eq!(ws.entries().len(), stats.people);
    let report = ws.sync(&["--force"], 0);
    assert_eq!(count(&report, "removed"), stats.people as u64);
    assert!(ws.entries().is_empty());
}

/// A book the connector's own rules would empty (a pre-filter nobody passes, an id attribute
/// no entry has) is a misconfiguration: one clear line, exit 1, the stored book kept.
#[test]
fn a_run_that_keeps_no_entry_fails_with_one_line_unless_forced() {
    let (slapd, stats) = upstream(20);
    let ws = Workspace::new(&ldap_config(
        "corp",
        &slapd.url(),
        "max_removals = \"100%\"",
    ));
    ws.sync(&[], 0);
    let nobody = "max_removals = \"100%\"\n\n[[connector.prefilter]]\nattribute = \"cn\"\nmatches = \"^nobody is called this$\"\n";
    ws.write_config(&ldap_config("corp", &slapd.url(), nobody));
    for args in [&["sync"][..], &["sync", "--dry-run"]] {
        let run = ws.run(args);
        assert_eq!(run.code, 1, "{args:?} {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("the pre-filter kept none of the")
                && run.stderr.contains("--force"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(ws.entries().len(), stats.people, "the stored book is kept");

    let no_id = "max_removals = \"100%\"\nid_attribute = \"carLicense\"\n";
    ws.write_config(&ldap_config("corp", &slapd.url(), no_id));
    let run = ws.run(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("none of the") && last.contains("invalid") && last.contains("carlicense"),
        "{}",
        run.stderr
    );
    assert_eq!(ws.entries().len(), stats.people);

    ws.write_config(&ldap_config("corp", &slapd.url(), nobody));
    let report = ws.sync(&["--force"], 0);
    assert_eq!(count(&report, "removed"), stats.people as u64);
    assert!(ws.entries().is_empty());
}

/// `check-config --connect` asks each upstream what a sync would (bind, base, filter, what
/// the pre-filter keeps) and writes nothing; every failure is one line and exit 1.
#[test]
fn check_config_connect_contacts_every_upstream() {
    let (slapd, stats) = upstream(20);
    let good = Workspace::new(&ldap_config("corp", &slapd.url(), ""));
    let run = good.run(&["check-config", "--connect"]);
    assert_eq!(run.code, 0, "{run:?}");
    let line = run.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        line.starts_with("connector \"corp\": ok")
            && line.contains(&format!("answered {} entries", stats.people))
            && line.contains(&format!("{} become entries", stats.people)),
        "{}",
        run.stdout
    );
    assert!(
        !good.path().join("data").exists(),
        "nothing written: no store"
    );

    let port = slapd
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    for (what, config, expect) in [
        (
            "wrong password",
            ldap_config("corp", &slapd.url(), "").replace("proxy-secret", "not-the-password"),
            "wrong bind_dn or password",
        ),
        (
            "wrong base",
            ldap_config("corp", &slapd.url(), "")
                .replace("ou=people,dc=example,dc=com", "ou=nobody,dc=example,dc=com"),
            "base_dn ou=nobody,dc=example,dc=com does not exist",
        ),
        (
            "wrong port",
            ldap_config("corp", &slapd.url(), "").replace(&port, &free.to_string()),
            "cannot reach",
        ),
    ] {
        let ws = Workspace::new(&config);
        let run = ws.run(&["check-config", "--connect"]);
        assert_eq!(run.code, 1, "{what}: {run:?}");
        let line = run.stdout.lines().nth(1).unwrap_or_default();
        assert!(
            line.starts_with("connector \"corp\": ") && line.contains(expect),
            "{what}: {}",
            run.stdout
        );
        assert_no_secret(&run.all_output());
    }
    // A configuration error is still exit 2, before anything is contacted.
    let broken = Workspace::new("[[connector]]\nname = \"x\"\n");
    assert_eq!(broken.run(&["check-config", "--connect"]).code, 2);
}

/// The preview an operator checks a mapping with: the first mapped records with every
/// field, and each dropped entry with the rule or reason that dropped it.
#[test]
fn a_dry_run_shows_mapped_records_and_why_entries_were_dropped() {
    let (slapd, stats) = upstream(40);
    let rules = "id_attribute = \"uid\"\n\n[[connector.prefilter]]\nattribute = \"memberOf\"\nmatches = \"(?i)^cn=company-phonebook,\"\n";
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), rules));
    let report = ws.sync(&["--dry-run"], 0);
    let mapped = report["mapped"].as_array().expect("mapped records");
    assert_eq!(mapped.len(), stats.phonebook.min(100), "{report}");
    let names: Vec<&str> = mapped
        .iter()
        .map(|e| e["display_name"].as_str().unwrap_or_default())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names.first(), sorted.first(), "display order");
    let number = mapped
        .iter()
        .flat_map(|e| e["business"].as_array().cloned().unwrap_or_default())
        .next()
        .expect("someone has a business number");
    assert!(
        number["written"].is_string() && number["dialable"].is_string(),
        "{number}"
    );
    let dropped = report["dropped"].as_array().expect("dropped entries");
    let filtered: Vec<&Value> = dropped
        .iter()
        .filter(|d| d["kind"] == "filtered_out")
        .collect();
    assert_eq!(filtered.len() as u64, count(&report, "filtered_out"));
    assert!(filtered.iter().all(|d| d["reason"]
        .as_str()
        .unwrap_or_default()
        .starts_with("prefilter[0]: no memberof value matches")));
    assert!(ws.entries().is_empty(), "a dry run writes nothing");

    let run = ws.run(&["sync", "--dry-run", "--show", "mapped"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("MAPPED ("), "{}", run.stdout);
    assert!(run.stdout.contains("  filtered out  "), "{}", run.stdout);
    assert!(run.stdout.contains("(E.164 "), "{}", run.stdout);
    assert_eq!(
        ws.run(&["sync", "--show", "mapped"]).code,
        2,
        "--show needs --dry-run"
    );
}

#[test]
fn a_hanging_upstream_times_out() {
    let (mut slapd, _) = upstream(10);
    let ws = Workspace::new(&ldap_config("corp", &slapd.url(), "timeout = \"1s\""));
    slapd.pause().expect("SIGSTOP slapd");
    let run = ws.run(&["sync"]);
    slapd.resume().expect("SIGCONT slapd");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("did not answer within 1s"),
        "{}",
        run.stderr
    );
}

#[test]
fn ldaps_and_starttls_verify_the_server_with_the_test_ca() {
    let (ldif, stats) = gen::people_ldif(&GenOptions {
        n: 40,
        seed: 7,
        with_memberof: true,
    });
    let slapd = Slapd::builder()
        .tls(true)
        .ldif(ldif)
        .start()
        .expect("start slapd with TLS");
    let ca = format!("ca_file = \"{}\"", slapd.ca_pem_path().display());

    let ws = Workspace::new(&ldap_config("corp", &slapd.ldaps_url(), &ca));
    assert_eq!(count(&ws.sync(&[], 0), "created"), stats.people as u64);

    let ws = Workspace::new(&ldap_config(
        "corp",
        &slapd.url(),
        &format!("{ca}\nstarttls = true"),
    ));
    assert_eq!(count(&ws.sync(&[], 0), "created"), stats.people as u64);

    // Without the CA the server is not trusted: TLS verification is real.
    let ws = Workspace::new(&ldap_config("corp", &slapd.ldaps_url(), ""));
    let run = ws.run(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );
}

#[test]
fn default_config_syncs_the_bundled_demo_directory() {
    let ws = Workspace::new("");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(ws.path().join("config")).unwrap();
    for file in ["phonebook.toml", "demo-directory.ldif"] {
        std::fs::copy(
            repo.join("config").join(file),
            ws.path().join("config").join(file),
        )
        .unwrap();
    }
    let ldif = std::fs::read_to_string(repo.join("config/demo-directory.ldif")).unwrap();
    let stat = |key: &str| -> u64 {
        let line = ldif
            .lines()
            .find(|l| l.starts_with("# stats:"))
            .expect("stats line");
        let pair = line
            .split_whitespace()
            .find(|w| w.starts_with(&format!("{key}=")))
            .unwrap();
        pair[key.len() + 1..].parse().unwrap()
    };
    let run = |args: &[&str]| {
        let out = std::process::Command::new(support::cli::binary())
            .current_dir(ws.path())
            .env_remove("PHONEBOOK_CONFIG")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(run(&["check-config"]).0, Some(0));
    let (code, out) = run(&["sync", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(count(&report, "fetched"), stat("people"));
    assert_eq!(count(&report, "created"), stat("phonebook"));
    let (code, csv) = run(&["export", "--format", "csv"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        csv.lines().count() as u64,
        stat("phonebook") + 1,
        "header + one row per entry"
    );
    let (code, ldif_out) = run(&["export", "--format", "ldif"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        ldif_out
            .lines()
            .filter(|l| l.starts_with("dn: uid=demo."))
            .count() as u64,
        stat("phonebook")
    );
}

#[test]
fn check_config_names_every_bad_key_and_exits_2() {
    let ws = Workspace::new(
        "[ldap]\nsize_limit = \"many\"\n[[connector]]\nname = \"corp\"\nuri = \"ldap://h\"\nbase_dn = \"dc=x\"\ncolour = 1\n[[connector.prefilter]]\nattribute = \"memberOf\"\nmatches = \"(?i)^cn=(\"\n",
    );
    let run = ws.run(&["check-config"]);
    assert_eq!(run.code, 2, "{run:?}");
    for needle in [
        "ldap.size_limit: expected an integer",
        "connector[0].colour: unknown key",
        "connector[0].prefilter[0].matches: invalid regex",
    ] {
        assert!(
            run.stderr.contains(needle),
            "missing {needle}: {}",
            run.stderr
        );
    }
    assert_eq!(run.stderr.lines().count(), 3, "{}", run.stderr);
    let run = ws.run(&["sync"]);
    assert_eq!(run.code, 2, "a bad config stops every command");
}

#[test]
fn example_config_documents_only_valid_keys() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml"))
            .unwrap();
    let ws = Workspace::new(&example);
    let run = ws.run_with_env(&["check-config"], &[("CORP_LDAP_PW", "x")]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn unknown_connector_is_a_usage_error() {
    let ws = Workspace::new(&ldap_config("corp", "ldap://127.0.0.1:9", ""));
    let run = ws.run(&["sync", "--connector", "hr"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("no connector named \"hr\" (known: corp)"),
        "{}",
        run.stderr
    );
}
