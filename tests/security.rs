//! The walls of the admin API, tried as an attacker on the same network would: local files
//! and secrets through `file:` connectors, a stored password sent to a new host, filters deep
//! enough to overflow a stack, an API open to a DNS-rebinding page or a cross-site form, and
//! a config file whose mode an edit loosens. The real binary and curl, as in production.

mod support;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use serde_json::{json, Value};
use support::cli::Workspace;
use support::server::Server;

/// What a secret looks like in these tests; it must appear in no answer and no log.
const SECRET: &str = "Tr0ub4dor-secret-value";

struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// curl with `args`; the status and the body.
fn curl(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "60", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    Answer {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_owned(),
    }
}

/// A JSON request to the admin API (a JSON body is what the page sends).
fn send_json(method: &str, url: &str, body: &Value) -> Answer {
    curl(&[
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &body.to_string(),
        url,
    ])
}

const PERSON: &str = "dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\n\ndn: uid=anna,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: Anna Weiß\nsn: Weiß\ntelephoneNumber: +49 89 1234-567\n";

/// A workspace with one `file:` connector ("book") next to the config, served on port 0.
fn workspace(http_extra: &str, extra: &str) -> Workspace {
    let ws = Workspace::new(&format!(
        r#"[store]
path = "data/phonebook.db"
[ldap]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
{http_extra}
[[ldap.users]]
dn = "cn=phone,dc=example,dc=com"
password_env = "PB_PHONE_PW"

[[connector]]
name = "book"
uri = "file:people.ldif"
base_dn = "ou=people,dc=example,dc=com"
{extra}
"#
    ));
    std::fs::write(ws.path().join("people.ldif"), PERSON).expect("ldif");
    ws
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![("PB_PHONE_PW", SECRET), ("PB_ADMIN_TOKEN", "admin-tok-123")]
}

fn preview(base: &str, uri: &str) -> Answer {
    send_json(
        "POST",
        &format!("{base}/api/v1/preview"),
        &json!({ "name": "probe", "uri": uri }),
    )
}

/// Finding 1: `file:` connectors read only LDIF below `files.allowed_dirs`, the answer does
/// not tell whether a file outside exists, and no error ever quotes a file's content.
#[test]
fn file_connectors_cannot_read_local_files_or_secrets() {
    let ws = workspace("", "");
    // A secret next to the config, dressed as LDIF: readable only as a (failing) LDIF source.
    std::fs::write(ws.path().join("secret.ldif"), format!("{SECRET}\n")).expect("secret");
    std::fs::write(ws.path().join("token.txt"), format!("{SECRET}\n")).expect("token");
    let server = Server::start_with_env(&ws, &env());
    let base = server.http_url();
    let outside = [
        "file:/proc/self/environ",
        "file:/etc/passwd",
        "file:/etc/no-such-file.ldif",
        "file:../../../../etc/passwd",
        "file:token.txt",
    ];
    let mut messages = Vec::new();
    for uri in outside {
        let answer = preview(&base, uri);
        assert_eq!(answer.status, 422, "{uri}: {}", answer.body);
        assert!(
            !answer.body.contains(SECRET) && !answer.body.contains("root:"),
            "{uri}: {}",
            answer.body
        );
        let errors = answer.json()["errors"].clone();
        assert_eq!(errors[0]["field"], "uri", "{uri}: {errors}");
        // The message names the path as given; the rest must not depend on the file.
        let message = errors[0]["message"].as_str().unwrap_or("");
        let path = uri.trim_start_matches("file:");
        // "(resolved against the working directory: …)" names the path too.
        let generic = match message.find(" (resolved") {
            Some(start) => {
                let end = message[start..]
                    .find(')')
                    .map_or(message.len(), |e| start + e + 1);
                format!("{}{}", &message[..start], &message[end..])
            }
            None => message.to_owned(),
        };
        messages.push(generic.replacen(path, "PATH", 1));
    }
    assert!(
        messages.windows(2).all(|w| w[0] == w[1]),
        "existing and missing files get the same answer: {messages:?}"
    );
    // A symlink inside the allowed directory pointing outside it is outside.
    std::os::unix::fs::symlink("/etc/passwd", ws.path().join("link.ldif")).expect("symlink");
    assert_eq!(preview(&base, "file:link.ldif").status, 422);
    // Inside, but not LDIF: the error names the line, never its text.
    let answer = preview(&base, "file:secret.ldif");
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("line 1"), "{}", answer.body);
    assert!(!answer.body.contains(SECRET), "{}", answer.body);
    // Saving such a profile is refused the same way, and nothing reaches status or the log.
    let created = send_json(
        "POST",
        &format!("{base}/api/v1/connectors"),
        &json!({ "name": "env", "uri": "file:/proc/self/environ" }),
    );
    assert_eq!(created.status, 422, "{}", created.body);
    let status = curl(&[&format!("{base}/api/v1/status")]);
    assert_eq!(status.status, 200);
    assert!(!status.body.contains(SECRET));
    let config = std::fs::read_to_string(ws.config_path()).expect("config");
    assert!(!config.contains("environ"), "the file is unchanged");
    let log = server.stop();
    assert!(!log.contains(SECRET), "{log}");
}

/// Finding 2: a stored password is only ever sent to the upstream it was given for.
#[test]
fn a_changed_upstream_or_bind_dn_needs_the_password_again() {
    let ws = workspace(
        "",
        "[[connector]]\nname = \"corp\"\nuri = \"ldap://127.0.0.1:1\"\nbase_dn = \"ou=people,dc=example,dc=com\"\nbind_dn = \"cn=proxy,dc=example,dc=com\"\npassword = \"stored-upstream-pw\"\n",
    );
    let server = Server::start_with_env(&ws, &env());
    let base = server.http_url();
    // The attacker's listener: it must never see a connection.
    let trap = TcpListener::bind("127.0.0.1:0").expect("bind");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_uri = format!("ldap://{}", trap.local_addr().expect("addr"));
    let before = std::fs::read_to_string(ws.config_path()).expect("config");
    let profile = |uri: &str, dn: &str| {
        json!({
            "name": "corp", "uri": uri, "base_dn": "ou=people,dc=example,dc=com",
            "bind_dn": dn,
        })
    };
    for (uri, dn) in [
        (trap_uri.as_str(), "cn=proxy,dc=example,dc=com"),
        ("ldap://127.0.0.1:1", "cn=admin,dc=example,dc=com"),
    ] {
        for (method, path) in [
            ("POST", "/api/v1/preview"),
            ("PUT", "/api/v1/connectors/corp"),
        ] {
            let answer = send_json(method, &format!("{base}{path}"), &profile(uri, dn));
            assert_eq!(
                answer.status, 422,
                "{method} {path} {uri} {dn}: {}",
                answer.body
            );
            assert_eq!(
                answer.json()["errors"][0]["field"],
                "password",
                "{}",
                answer.body
            );
        }
    }
    assert!(
        trap.accept().is_err(),
        "nobody connected to the new host with the stored password"
    );
    let after = std::fs::read_to_string(ws.config_path()).expect("config");
    assert_eq!(before, after, "refused edits change nothing");
    // Editing what does not move the secret keeps working.
    let mut same = profile("ldap://127.0.0.1:1", "cn=proxy,dc=example,dc=com");
    same["comment"] = json!("renamed DC later");
    let saved = send_json("PUT", &format!("{base}/api/v1/connectors/corp"), &same);
    assert_eq!(saved.status, 200, "{}", saved.body);
    let log = server.stop();
    assert!(!log.contains("stored-upstream-pw"));
}

fn deep_filter(depth: usize) -> String {
    format!("{}(cn=x){}", "(&".repeat(depth), ")".repeat(depth))
}

/// Finding 3: filters nested thousands deep are refused with a clear error; nothing aborts.
#[test]
fn deep_filters_are_refused_and_crash_nothing() {
    let ws = workspace("", "");
    let deep = Workspace::new(&format!(
        "[[connector]]\nname = \"x\"\nuri = \"ldap://127.0.0.1:1\"\nbase_dn = \"dc=x\"\nfilter = \"{}\"\n",
        deep_filter(15_000)
    ));
    let checked = deep.run(&["check-config"]);
    assert_eq!(
        checked.code, 2,
        "a configuration error, not an abort: {checked:?}"
    );
    assert!(
        checked.stderr.contains("connector[0].filter") && checked.stderr.contains("at most 32"),
        "{}",
        checked.stderr
    );
    let server = Server::start_with_env(&ws, &env());
    let base = server.http_url();
    for depth in [40, 4_000] {
        for path in ["/api/v1/preview", "/api/v1/connectors"] {
            let answer = send_json(
                "POST",
                &format!("{base}{path}"),
                &json!({ "name": "deep", "uri": "file:people.ldif", "filter": deep_filter(depth) }),
            );
            assert_eq!(
                answer.status, 422,
                "{path} at depth {depth}: {}",
                answer.body
            );
            assert_eq!(answer.json()["errors"][0]["field"], "filter");
        }
    }
    // Nested pre-filter groups are bounded too.
    let mut rule = json!({ "attribute": "cn", "present": true });
    for _ in 0..50 {
        rule = json!({ "any": [rule] });
    }
    let answer = send_json(
        "POST",
        &format!("{base}/api/v1/preview"),
        &json!({ "name": "deep", "uri": "file:people.ldif", "prefilter": [rule] }),
    );
    assert!(
        answer.status == 422 || answer.status == 400,
        "{}",
        answer.body
    );
    assert_eq!(
        curl(&[&format!("{base}/healthz")]).status,
        200,
        "still serving"
    );
    server.stop();
}

/// Finding 4: without an admin token the admin API answers only this machine by its own
/// name; a foreign origin, a rebinding host name or a form POST is refused.
#[test]
fn the_admin_api_refuses_rebinding_cross_site_and_form_requests() {
    let ws = workspace("", "max_removals = 0");
    assert_eq!(ws.run_with_env(&["sync"], &env()).code, 0);
    // Upstream swaps its one person: the guard would hold the sync back (Anna would go); a
    // forced one would apply it.
    std::fs::write(
        ws.path().join("people.ldif"),
        PERSON
            .replace("uid=anna", "uid=bert")
            .replace("Anna", "Bert"),
    )
    .expect("ldif");
    let server = Server::start_with_env(&ws, &env());
    let base = server.http_url();
    let port = server
        .http_url()
        .rsplit(':')
        .next()
        .unwrap_or("")
        .to_owned();
    let sync = format!("{base}/api/v1/connectors/book/sync?force=true");
    let status = format!("{base}/api/v1/status");
    // DNS rebinding: the page's own host name reaches the port.
    let rebound = curl(&["-H", &format!("Host: evil.example:{port}"), &status]);
    assert_eq!(rebound.status, 403, "{}", rebound.body);
    assert!(
        rebound.body.contains("admin_token"),
        "says how to enable it: {}",
        rebound.body
    );
    // Through a proxy on this machine: not "this machine" any more.
    for proxied in [
        "X-Real-IP: 10.0.0.1",
        "Via: 1.1 nginx",
        "X-Forwarded-Host: pb.example",
    ] {
        assert_eq!(curl(&["-H", proxied, &status]).status, 403, "{proxied}");
    }
    // Request shapes only an intermediary sends: two Host headers, an absolute-form target
    // naming another host.
    let raw = |request: &str| {
        use std::io::{Read as _, Write as _};
        let addr = base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    };
    for request in [
        "GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        "GET http://evil.example/api/v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "GET /api/v1/status HTTP/1.1\r\nHost: [::1]evil.example\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw(request);
        assert!(!answer.starts_with("HTTP/1.1 200"), "{request:?} → {answer}");
    }
    assert!(
        raw("GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .starts_with("HTTP/1.1 200")
    );
    assert_eq!(
        curl(&["-H", "X-Forwarded-For: 198.51.100.7", &status]).status,
        403
    );
    // A cross-site form: a simple POST with a form body.
    for args in [
        vec!["-X", "POST", "-d", "x=1", sync.as_str()],
        vec!["-X", "POST", sync.as_str()],
        vec![
            "-X",
            "POST",
            "-H",
            "Origin: http://evil.example",
            "-H",
            "X-Requested-With: x",
            sync.as_str(),
        ],
        vec![
            "-X",
            "POST",
            "-H",
            "Sec-Fetch-Site: cross-site",
            "-H",
            "X-Requested-With: x",
            sync.as_str(),
        ],
    ] {
        let answer = curl(&args);
        assert_eq!(answer.status, 403, "{args:?}: {}", answer.body);
    }
    let entries = || {
        curl(&[&format!("{base}/api/v1/entries")]).json()["entries"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(entries(), 1, "the guard was not bypassed");
    // This machine's own page (same origin, custom header) may.
    let own = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Origin: {base}"),
        "-H",
        "X-Requested-With: phonebook-proxy",
        &format!("{base}/api/v1/connectors/book/sync?dry_run=true"),
    ]);
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.json()["held_back"], true, "{}", own.body);
    let log = server.stop();
    assert!(
        log.contains("admin API has no token"),
        "a start-up warning: {log}"
    );
}

/// Finding 4, with tokens: the two scopes, the read scope by token (Bearer or Basic) or by
/// client address, and the admin scope by its own token only.
#[test]
fn read_and_admin_scopes() {
    let ws = workspace(
        "admin_token_env = \"PB_ADMIN_TOKEN\"\nread_token_env = \"PB_READ_TOKEN\"\nread_clients = [\"192.0.2.0/24\"]",
        "",
    );
    let mut env = env();
    env.push(("PB_READ_TOKEN", "read-tok-456"));
    assert_eq!(ws.run_with_env(&["sync"], &env).code, 0);
    let server = Server::start_with_env(&ws, &env);
    let base = server.http_url();
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    for path in [
        "/api/v1/entries",
        "/api/v1/lookup?number=%2B49891234567",
        "/phonebook/yealink.xml",
        "/metrics",
    ] {
        let url = format!("{base}{path}");
        assert_eq!(
            curl(&[&url]).status,
            401,
            "{path}: 127.0.0.1 is not a read client"
        );
        assert_eq!(
            curl(&["-H", &bearer("read-tok-456"), &url]).status,
            200,
            "{path}"
        );
        assert_eq!(
            curl(&["-H", &bearer("admin-tok-123"), &url]).status,
            200,
            "{path}"
        );
        assert_eq!(
            curl(&["-u", "phone:read-tok-456", &url]).status,
            200,
            "{path} Basic"
        );
        assert_eq!(curl(&["-u", "phone:wrong", &url]).status, 401, "{path}");
    }
    for path in ["/api/v1/status", "/api/v1/connectors"] {
        let url = format!("{base}{path}");
        assert_eq!(curl(&[&url]).status, 401, "{path}");
        assert_eq!(
            curl(&["-H", &bearer("read-tok-456"), &url]).status,
            401,
            "{path}: the read token is not admin"
        );
        assert_eq!(
            curl(&["-H", &bearer("admin-tok-123"), &url]).status,
            200,
            "{path}"
        );
    }
    assert_eq!(curl(&[&format!("{base}/healthz")]).status, 200);
    assert_eq!(
        curl(&[&format!("{base}/")]).status,
        200,
        "the page holds no data"
    );
    server.stop();

    // A read client needs no token.
    let ws = workspace(
        "admin_token_env = \"PB_ADMIN_TOKEN\"\nread_clients = [\"127.0.0.0/8\"]",
        "",
    );
    let server = Server::start_with_env(&ws, &env);
    let base = server.http_url();
    assert_eq!(
        curl(&[&format!("{base}/phonebook/yealink.xml")]).status,
        200
    );
    assert_eq!(curl(&[&format!("{base}/api/v1/status")]).status, 401);
    server.stop();
}

/// Finding 7 (config mode): an admin edit keeps the file's mode; its backup too.
#[test]
fn an_admin_edit_keeps_the_config_files_mode() {
    let ws = workspace("", "");
    std::fs::set_permissions(ws.config_path(), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let server = Server::start_with_env(&ws, &env());
    let base = server.http_url();
    let saved = send_json(
        "POST",
        &format!("{base}/api/v1/connectors"),
        &json!({ "name": "second", "uri": "file:people.ldif" }),
    );
    assert_eq!(saved.status, 200, "{}", saved.body);
    for file in ["phonebook.toml", "phonebook.toml.bak"] {
        let mode = std::fs::metadata(ws.path().join(file))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file} keeps mode 0600, got {mode:o}");
    }
    server.stop();
}

/// Finding 6 (upstream side): one hostile entry — a 100 KB name, a thousand numbers — is
/// refused as invalid with the cap it broke; the rest of the book imports. Counts and file
/// sizes over their caps fail the run as a whole and change nothing.
#[test]
fn hostile_upstream_entries_hit_the_import_caps() {
    let ws = workspace("", "");
    let mut ldif = PERSON.to_owned();
    ldif.push_str(&format!(
        "\ndn: uid=huge,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: {}\nsn: Huge\n",
        "N".repeat(100_000)
    ));
    ldif.push_str("\ndn: uid=many,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: Many Numbers\nsn: Numbers\n");
    for i in 0..1000 {
        ldif.push_str(&format!("telephoneNumber: +49 89 {:07}\n", 1_000_000 + i));
    }
    ldif.push_str("\ndn: uid=forty,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: Forty Numbers\nsn: Numbers\n");
    for i in 0..40 {
        ldif.push_str(&format!("mobile: +49 151 {:07}\n", 1_000_000 + i));
    }
    std::fs::write(ws.path().join("people.ldif"), &ldif).expect("ldif");
    let run = ws.run_with_env(&["sync", "--json"], &env());
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.report();
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(
        report["invalid"], 4,
        "the container and the three hostile entries: {report}"
    );
    for cap in [
        "import.max_value_bytes = 4096",
        "import.max_numbers_per_entry = 32",
    ] {
        assert!(run.stderr.contains(cap), "{cap}: {}", run.stderr);
    }
    assert!(run.stderr.len() < 10_000, "the report stays readable");

    // A pull larger than max_entries, and a file larger than max_file_bytes, fail whole.
    let export = || {
        let run = ws.run_with_env(&["export", "--format", "json"], &env());
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout
    };
    let before = export();
    let config = std::fs::read_to_string(ws.config_path()).expect("config");
    for (caps, needle) in [
        ("[import]\nmax_entries = 2\n", "import.max_entries = 2"),
        (
            "[import]\nmax_file_bytes = 2048\n",
            "import.max_file_bytes = 2048",
        ),
    ] {
        ws.write_config(&format!("{caps}{config}"));
        let run = ws.run_with_env(&["sync", "--json"], &env());
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.all_output().contains(needle), "{needle}: {run:?}");
        assert_eq!(export(), before, "a refused pull changes nothing");
    }
}

/// A SearchRequest whose filter is `(cn=*)` under `depth` NOTs: deeper than any decoder here
/// accepts, so it reaches ldap3_proto's parser, which fails on it.
fn deep_search_pdu(depth: usize) -> Vec<u8> {
    let mut filter = support::ber::tlv(0x87, b"cn");
    for _ in 0..depth {
        filter = support::ber::tlv(0xa2, &filter);
    }
    let mut body = support::ber::tlv(0x04, b"ou=phonebook,dc=example,dc=com");
    body.extend([0x0a, 1, 2, 0x0a, 1, 0, 0x02, 1, 0, 0x02, 1, 0, 0x01, 1, 0]);
    body.extend(filter);
    body.extend([0x30, 0]);
    let mut msg = vec![0x02, 1, 1];
    msg.extend(support::ber::tlv(0x63, &body));
    support::ber::tlv(0x30, &msg)
}

/// A message ldap3_proto cannot parse used to be logged whole, as decimal bytes, at ERROR:
/// about 4.6 bytes of log per byte received, from anyone. Now each such connection leaves
/// one short line, and the server answers the next client.
#[test]
fn unparsable_ldap_messages_cannot_flood_the_log() {
    use std::io::{Read as _, Write as _};
    let ws = workspace("", "");
    assert_eq!(ws.run_with_env(&["sync"], &env()).code, 0);
    let server = Server::start_with_env(&ws, &env());
    let pdu = deep_search_pdu(2_000);
    assert!(pdu.len() > 6_000 && pdu.len() < 128 * 1024, "{}", pdu.len());
    let attempts = 20;
    for _ in 0..attempts {
        let mut s = std::net::TcpStream::connect(server.addr()).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        s.write_all(&pdu).expect("send");
        let mut rest = Vec::new();
        // The server closes the connection (EOF or reset): it never answers this message.
        let _ = s.read_to_end(&mut rest);
    }
    // The endpoint still answers.
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &server.url(),
            "-b",
            "ou=phonebook,dc=example,dc=com",
            "(cn=anna*)",
            "cn",
        ])
        .output()
        .expect("ldapsearch");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cn:: QW5uYSBXZWnDnw=="), // Anna Weiß
        "{out:?}"
    );
    let log = server.stop();
    assert!(
        log.len() < attempts * 1024,
        "{} bytes of log for {attempts} bad messages of {} bytes:\n{}",
        log.len(),
        pdu.len(),
        &log[..log.len().min(2000)]
    );
}
