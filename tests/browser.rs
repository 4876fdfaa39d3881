//! The admin page in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/admin.mjs` (playwright-core), against the real binary's `serve` with data
//! from a real slapd. The script clicks through the page and prints `ok - …` per step; this
//! side starts everything, hands the script what it should see, and checks what only the
//! server side can tell (the file on disk, the store, the log).
//!
//! Needs `/usr/bin/chromium` and `npm ci` in tests/browser; `tests/run.sh` installs both.
//! Screenshots go to `target/browser-artifacts/`; `PHONEBOOK_UPDATE_SCREENSHOT=1 tests/run.sh
//! --test browser` also refreshes the README's `docs/admin-page.png`.

mod support;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::{ldap_config, Workspace};
use support::gen::{self, GenOptions, Kind, Person};
use support::server::Server;
use support::slapd::{Slapd, PEOPLE_DN, PHONEBOOK_GROUP_DN, PROXY_DN, PROXY_PW};

/// How many generated people slapd holds.
const PEOPLE: usize = 30;
const SEED: u64 = 7;
/// A whole scenario, Chromium's start included, must finish within this.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
const TOKEN_ENV: &str = "PB_BROWSER_TEST_TOKEN";
const TOKEN: &str = "browser-s3cret-token";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Runs one scenario of `tests/browser/admin.mjs`; panics with its output unless it exits 0.
fn browse(url: &str, scenario: &str, options: &[(&str, &str)]) -> String {
    let dir = repo().join("tests/browser");
    assert!(
        chromium().exists(),
        "{} is missing: run tests/run.sh (it installs Debian's chromium)",
        chromium().display()
    );
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run tests/run.sh (or npm ci in tests/browser)"
    );
    let artifacts = repo().join("target/browser-artifacts");
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("admin.mjs"))
        .arg(url)
        .arg(scenario)
        .arg("--artifacts")
        .arg(&artifacts);
    for (k, v) in options {
        cmd.arg(format!("--{k}")).arg(v);
    }
    let mut child = cmd
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (apt-get install nodejs npm)");
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    match status {
        Some(s) if s.success() => {
            println!("admin.mjs {scenario}:\n{out}{err}");
            out
        }
        Some(s) => panic!("admin.mjs {scenario} failed ({s}):\n{out}\n{err}"),
        None => panic!("admin.mjs {scenario} did not finish in {SCRIPT_TIMEOUT:?}:\n{out}\n{err}"),
    }
}

/// `GET` with curl, as JSON.
fn get_json(url: &str, token: Option<&str>) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "--fail", "--max-time", "30"]);
    if let Some(token) = token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
    }
    let out = cmd.arg(url).output().expect("run curl");
    assert!(
        out.status.success(),
        "GET {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

struct Fixture {
    _slapd: Slapd,
    ws: Workspace,
    server: Server,
    slapd_url: String,
    people: Vec<Person>,
    /// Members of the company-phonebook group.
    phonebook: usize,
}

/// slapd with [`PEOPLE`] generated people and `serve` with one manual connector `corp`
/// reading them (never synced yet); `token`: the API needs it.
fn start(token: Option<&str>) -> Fixture {
    let opts = GenOptions {
        n: PEOPLE,
        seed: SEED,
        with_memberof: true,
    };
    let (ldif, stats) = gen::people_ldif(&opts);
    let slapd = Slapd::builder().ldif(ldif).start().expect("start slapd");
    let slapd_url = slapd.url();
    let token_line = token.map_or(String::new(), |_| format!("token_env = \"{TOKEN_ENV}\"\n"));
    let config = format!(
        "[ldap]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n{token_line}\n{}",
        ldap_config("corp", &slapd_url, "comment = \"Head office\"")
    );
    let ws = Workspace::new(&config);
    let env: Vec<(&str, &str)> = token.map(|t| (TOKEN_ENV, t)).into_iter().collect();
    let server = Server::start_with_env(&ws, &env);
    Fixture {
        _slapd: slapd,
        ws,
        server,
        slapd_url,
        people: gen::people(SEED, PEOPLE),
        phonebook: stats.phonebook,
    }
}

/// Two ordinary people in the phone book group: the one searched for, and another.
fn two_members(people: &[Person]) -> (&Person, &Person) {
    let mut members = people
        .iter()
        .filter(|p| p.kind == Kind::Regular && p.groups.contains(&PHONEBOOK_GROUP_DN));
    let first = members.next().expect("a phone book member");
    let second = members.next().expect("a second phone book member");
    (first, second)
}

fn cn(p: &Person) -> &str {
    p.get("cn").expect("generated people have a cn")
}

#[test]
fn the_admin_page_manages_connectors_in_a_real_browser() {
    let f = start(None);
    let base = f.server.http_url();
    let (searched, other) = two_members(&f.people);
    let narrow = format!(
        "(&(objectClass=inetOrgPerson)(|(uid={})(uid={})))",
        searched.uid, other.uid
    );
    let corp_count = PEOPLE.to_string();
    let branch_count = f.phonebook.to_string();
    let out = browse(
        &base,
        "main",
        &[
            ("connector", "corp"),
            ("slapd", &f.slapd_url),
            ("base-dn", PEOPLE_DN),
            ("bind-dn", PROXY_DN),
            ("password", PROXY_PW),
            ("corp-count", &corp_count),
            ("branch-count", &branch_count),
            ("search", cn(searched)),
            ("narrow-filter", &narrow),
            ("narrow-count", "2"),
        ],
    );
    for step in [
        "ok - Test of corp: 30 preview rows",
        "ok - Import now: corp has 30 entries",
        "ok - mapped records of corp: 30",
        "ok - search for",
        "ok - Test of the unsaved profile",
        "ok - test connection of the unsaved profile",
        "ok - drop reasons of the unsaved profile",
        "ok - branch saved, listed and synced",
        "ok - Import now held back",
        "ok - apply anyway: corp now has 2 entries",
        "ok - run history of corp: applied, held_back, applied",
        "ok - scratch created and deleted",
        "main: all steps passed",
    ] {
        assert!(out.contains(step), "{step:?} missing in\n{out}");
    }
    let screenshot = repo().join("target/browser-artifacts/admin.png");
    assert!(screenshot.is_file());
    // The README's picture of the page is this screenshot, refreshed on request (a test run
    // must not change the checkout).
    if std::env::var_os("PHONEBOOK_UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(&screenshot, repo().join("docs/admin-page.png"))
            .expect("docs/admin-page.png");
    }

    // What the page did is in the file, the store and nowhere near a log.
    let file = f.ws.config_path();
    let text = std::fs::read_to_string(&file).expect("config");
    assert!(text.contains("name = \"branch\""), "{text}");
    // The page shows every field, but only the one that differs from the default mapping
    // reaches the file.
    let branch = &text[text.find("name = \"branch\"").unwrap_or(0)..];
    let branch = &branch[..branch.find("[[connector]]").unwrap_or(branch.len())];
    assert!(branch.contains("company = \"Branch office\""), "{branch}");
    assert!(
        !branch.contains("first_name") && !branch.contains("display_name"),
        "default fields are not written: {branch}"
    );
    assert!(text.contains(&narrow), "corp's new filter: {text}");
    assert!(!text.contains("scratch"), "scratch was deleted: {text}");
    assert!(
        text.contains("comment = \"Head office\""),
        "untouched keys stay: {text}"
    );
    assert!(
        file.with_extension("toml.bak").is_file(),
        "a backup is kept"
    );
    let status = get_json(&format!("{base}/api/v1/status"), None);
    let by_name = |name: &str| {
        status["connectors"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {status}"))
    };
    assert_eq!(by_name("corp")["entries"], 2);
    assert_eq!(by_name("corp")["last_run"]["outcome"], "applied");
    assert_eq!(by_name("branch")["entries"], f.phonebook);
    let listed = get_json(&format!("{base}/api/v1/connectors"), None).to_string();
    assert!(!listed.contains(PROXY_PW), "no password in {listed}");

    // An invalid filter (and regex, template, URI, duplicate name) changes nothing on disk.
    let before = std::fs::read(&file).expect("config");
    let backup = std::fs::read(file.with_extension("toml.bak")).expect("backup");
    let generation = status["generation"].clone();
    let out = browse(&base, "invalid", &[("connector", "corp")]);
    assert!(out.contains("ok - invalid filter refused"), "{out}");
    assert!(out.contains("invalid: all steps passed"), "{out}");
    assert_eq!(
        std::fs::read(&file).expect("config"),
        before,
        "the file is byte-identical"
    );
    assert_eq!(
        std::fs::read(file.with_extension("toml.bak")).expect("backup"),
        backup
    );
    assert_eq!(
        get_json(&format!("{base}/api/v1/status"), None)["generation"],
        generation
    );

    let log = f.server.stop();
    assert!(!log.contains(PROXY_PW), "no password in the log:\n{log}");
}

/// The hand-written file the editor scenario starts from: comments, an attribute in the
/// directory's own case, a count for the guard.
fn hand_written(slapd_url: &str) -> String {
    format!(
        r#"# Written by hand; the page must keep every comment.
[ldap]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"

[store]
path = "data/phonebook.db" # next to the file

# Head office directory
[[connector]]
name = "corp" # keep me
comment = "Head office"
uri = "{slapd_url}"
base_dn = "{PEOPLE_DN}"
bind_dn = "{PROXY_DN}"
password = "{PROXY_PW}"
filter = "(objectClass=inetOrgPerson)"
id_attribute = "entryUUID"
max_removals = 3

# Only the phone book group.
[[connector.prefilter]]
attribute = "memberOf" # as the directory spells it
matches = "(?i)^cn=company-phonebook,"
"#
    )
}

#[test]
fn the_editor_round_trips_every_key_presets_and_deletes_through_the_guard() {
    let opts = GenOptions {
        n: PEOPLE,
        seed: SEED,
        with_memberof: true,
    };
    let (ldif, stats) = gen::people_ldif(&opts);
    let slapd = Slapd::builder()
        .ldif(ldif)
        .tls(true)
        .start()
        .expect("start slapd");
    let ws = Workspace::new(&hand_written(&slapd.url()));
    let server = Server::start(&ws);
    let base = server.http_url();
    let ca = slapd.ca_pem_path().display().to_string();
    let filter = "(&(objectClass=inetOrgPerson)(uid=*))";
    let values = serde_json::json!({
        "inputs": {
            "f-comment": "Head office (edited on the page)",
            "f-filter": filter,
            "f-mode": "merge",
            "f-schedule": "0 30 6 * * Mon-Fri",
            "f-timezone": "Europe/Berlin",
            "f-page-size": "100",
            "f-timeout": "45s",
            "f-max-removals": "50%",
            "f-ca-file": ca,
            "field-company": "Example AG",
        },
        "switches": { "f-starttls": true, "f-tls-insecure": false },
    });
    let members = stats.phonebook.to_string();
    let people = PEOPLE.to_string();
    let file = ws.config_path();

    let out = browse(
        &base,
        "editor",
        &[
            ("connector", "corp"),
            ("slapd", &slapd.url()),
            ("ca-file", &ca),
            ("base-dn", PEOPLE_DN),
            ("bind-dn", PROXY_DN),
            ("password", PROXY_PW),
            ("members", &members),
            ("people", &people),
            ("values", &values.to_string()),
        ],
    );
    for step in [
        "ok - corp imported",
        "ok - the editor shows the file as written",
        "ok - test connection over StartTLS with the CA file",
        "ok - every field saved and shown on the card",
        "ok - reopened, every field shows what was saved",
        "ok - the Active Directory preset",
        "ok - the OpenLDAP preset, saved as ol",
        "ok - the LDIF preset clears the bind",
        "ok - delete held back by the guard",
        "ok - corp deleted after the second confirmation",
        "editor: all steps passed",
    ] {
        assert!(out.contains(step), "{step:?} missing in\n{out}");
    }

    let saved = std::fs::read_to_string(file.with_extension("toml.bak")).expect("backup");
    let text = std::fs::read_to_string(&file).expect("config");
    assert!(
        !text.contains("name = \"corp\""),
        "corp was deleted:\n{text}"
    );
    assert!(
        text.contains("name = \"ol\"") && text.contains("id_attribute = \"entryUUID\""),
        "{text}"
    );
    // The .bak holds the file as it was before the last edit (the delete): corp as saved by
    // the page, next to ol.
    let corp = &saved[saved.find("name = \"corp\"").expect("corp in the backup")..];
    let corp = &corp[..corp
        .find("[[connector]]\nname = \"ol\"")
        .unwrap_or(corp.len())];
    for line in [
        "name = \"corp\" # keep me",
        "comment = \"Head office (edited on the page)\"",
        &format!("filter = \"{filter}\""),
        "mode = \"merge\"",
        "cron = \"0 30 6 * * Mon-Fri\"",
        "timezone = \"Europe/Berlin\"",
        "id_attribute = \"entryUUID\"",
        "page_size = 100",
        "max_removals = \"50%\"",
        "timeout = \"45s\"",
        &format!("ca_file = \"{ca}\""),
        "starttls = true",
        "attribute = \"memberOf\" # as the directory spells it",
        "company = \"Example AG\"",
        &format!("password = \"{PROXY_PW}\""),
    ] {
        assert!(
            corp.contains(line),
            "{line:?} missing in corp as saved:\n{corp}"
        );
    }
    assert!(
        !corp.contains("tls_insecure") && !corp.contains("display_name"),
        "{corp}"
    );
    for comment in [
        "# Written by hand; the page must keep every comment.",
        "path = \"data/phonebook.db\" # next to the file",
        "# Head office directory",
        "# Only the phone book group.",
    ] {
        assert!(saved.contains(comment), "{comment:?} kept:\n{saved}");
        if !comment.contains("Head office") && !comment.contains("phone book group") {
            assert!(
                text.contains(comment),
                "{comment:?} kept after the delete:\n{text}"
            );
        }
    }
    let ol = &text[text.find("name = \"ol\"").expect("ol")..];
    assert!(
        ol.contains("starttls = true") && ol.contains(&format!("ca_file = \"{ca}\"")),
        "{ol}"
    );
    let status = get_json(&format!("{base}/api/v1/status"), None);
    assert_eq!(
        status["entries"], 0,
        "corp's entries left with it (ol never ran): {status}"
    );
    let log = server.stop();
    assert!(!log.contains(PROXY_PW), "no password in the log:\n{log}");
}

#[test]
fn the_admin_page_asks_for_the_token() {
    let f = start(Some(TOKEN));
    let base = f.server.http_url();
    // Entries to search for; the page itself is served without the token.
    let synced = get_json(&format!("{base}/api/v1/status"), Some(TOKEN));
    assert_eq!(synced["entries"], 0);
    let import = Command::new("curl")
        .args([
            "-s",
            "--fail",
            "-X",
            "POST",
            "-H",
            "X-Requested-With: test",
            "-H",
        ])
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .arg(format!("{base}/api/v1/connectors/corp/sync"))
        .output()
        .expect("curl");
    assert!(import.status.success(), "{import:?}");
    // The page and its files need no token, carry a strict CSP, and hold no data.
    let (searched, _) = two_members(&f.people);
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/admin/admin.js", "text/javascript; charset=utf-8"),
        ("/admin/editor.js", "text/javascript; charset=utf-8"),
        ("/admin/admin.css", "text/css; charset=utf-8"),
    ] {
        let page = Command::new("curl")
            .args(["-s", "--fail", "-D", "-"])
            .arg(format!("{base}{path}"))
            .output()
            .expect("curl");
        assert!(page.status.success(), "{path} needs no token");
        let text = String::from_utf8_lossy(&page.stdout).to_ascii_lowercase();
        assert!(
            text.contains(&format!("content-type: {content_type}")),
            "{path}: {text}"
        );
        assert!(
            text.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}"
        );
        assert!(
            !text.contains(&cn(searched).to_lowercase()) && !text.contains(TOKEN),
            "{path} holds no data"
        );
    }

    let out = browse(
        &base,
        "token",
        &[
            ("token", TOKEN),
            ("connector", "corp"),
            ("search", cn(searched)),
        ],
    );
    assert!(out.contains("ok - the page asks for the token"), "{out}");
    assert!(out.contains("token: all steps passed"), "{out}");
    let log = f.server.stop();
    assert!(!log.contains(TOKEN), "the token never reaches the log");
    drop(f.ws);
}
