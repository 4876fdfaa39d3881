//! Caller lookup as a PBX uses it, through the real binary's `serve` and `curl`: every
//! notation and extension of a company with two number blocks, the plain-text answers
//! Asterisk's `CURL()` reads (byte for byte, for every status), withheld numbers, the read
//! scope's refusals, the feed's `extension` / `dialable` fields, and the dialplan and FreePBX
//! settings documented in docs/pbx.md, run as written.

mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cli::Workspace;
use support::curl::{curl, Response};
use support::gen::{person_ldif, PEOPLE_OU};
use support::server::Server;
use support::slapd::signal;

const SIGHUP: i32 = 1;
const TOKEN: &str = "r34dT0kenForThePbx";
const TOKEN_ENV: &str = "PB_LOOKUP_TEST_READ_TOKEN";

const JUERGEN: &str = "Jürgen Müller";
/// A name with every character that could break a dialplan expression or argument list.
const ZOE: &str = "Zoë O'Brien (Vertrieb): \"Team\", Süd";

/// A lookup of `number` (URL-encoded by curl) with `extra` parameters and curl arguments.
fn lookup(base: &str, number: &str, query: &str, args: &[&str]) -> Response {
    let number = format!("number={number}");
    let url = format!("{base}/api/v1/lookup?{query}");
    let mut all = vec!["-G", "--data-urlencode", &number];
    all.extend_from_slice(args);
    all.push(&url);
    curl(&all)
}

/// A company with two number blocks (Munich, three-digit extensions; Berlin, four), dialled
/// from desk phones with `0` before outside numbers.
const NUMBERS: &str = r#"[numbers]
outside_prefix = "0"
extensions = [{ prefix = "+49891234", digits = 3 }, { prefix = "+49 30 5678", digits = 4 }]
"#;

fn people() -> String {
    [
        PEOPLE_OU.to_owned(),
        person_ldif(
            "juergen",
            &[
                ("cn", JUERGEN),
                ("sn", "Müller"),
                ("telephoneNumber", "+49 89 1234-826"),
                ("mobile", "0170 1234567"),
            ],
        ),
        person_ldif(
            "anna",
            &[
                ("cn", "Anna Weiß"),
                ("sn", "Weiß"),
                ("telephoneNumber", "030 5678-1234"),
            ],
        ),
        person_ldif(
            "karl",
            &[
                ("cn", "Karl Kunde"),
                ("sn", "Kunde"),
                ("telephoneNumber", "(0)89/0859 929"),
            ],
        ),
        person_ldif(
            "zoe",
            &[
                ("cn", ZOE),
                ("sn", "O'Brien"),
                ("telephoneNumber", "+41 44 1234 567"),
            ],
        ),
    ]
    .concat()
}

/// The configuration: `http` goes into `[http]`, `numbers` is the `[numbers]` table.
fn config(http: &str, numbers: &str) -> String {
    format!(
        r#"[store]
path = "data/phonebook.db"

[ldap]
listen = "127.0.0.1:0"

[http]
listen = "127.0.0.1:0"
{http}

{numbers}

[[connector]]
name = "corp"
uri = "file:people.ldif"
base_dn = "ou=people,dc=example,dc=com"
filter = "(objectClass=inetOrgPerson)"
"#
    )
}

/// A workspace with [`people`] and `[http]` extras, synced and served (with the read token in
/// the environment, which the configuration may name).
fn serve(http: &str) -> (Workspace, Server) {
    let ws = Workspace::new(&config(http, NUMBERS));
    std::fs::write(ws.path().join("people.ldif"), people()).expect("write LDIF");
    let env = [(TOKEN_ENV, TOKEN)];
    let synced = ws.run_with_env(&["sync"], &env);
    assert_eq!(synced.code, 0, "{synced:?}");
    let server = Server::start_with_env(&ws, &env);
    (ws, server)
}

fn with_token() -> String {
    format!("read_token_env = \"{TOKEN_ENV}\"")
}

#[test]
fn a_caller_is_found_from_every_notation_and_by_extension() {
    let (_ws, server) = serve("");
    let base = server.http_url();
    for number in [
        "826",
        "891234826",
        "+49891234826",
        "0049891234826",
        "0891234826",
        "089 1234-826",
        "+49 89 1234-826",
        "+49 (0)89 1234-826",
    ] {
        let text = lookup(&base, number, "format=text", &[]);
        text.assert_text(200, JUERGEN, number);
        let r = lookup(&base, number, "", &[]);
        assert_eq!(r.status, 200, "{number}: {}", r.text());
        let found = r.json();
        assert_eq!(found["display_name"], JUERGEN, "{number}");
        assert_eq!(found["e164"], "+49891234826", "{number}");
        assert_eq!(found["number"], number.trim(), "{number}");
    }
    // `+` percent-encoded by hand, and sent raw (a query string reads it as a space).
    for url in [
        format!("{base}/api/v1/lookup?format=text&number=%2B49891234826"),
        format!("{base}/api/v1/lookup?format=text&number=+49891234826"),
    ] {
        curl(&[&url]).assert_text(200, JUERGEN, &url);
    }
    // The second block: four-digit extensions.
    for number in [
        "1234",
        "3056781234",
        "030 5678-1234",
        "+493056781234",
        "493056781234",
    ] {
        lookup(&base, number, "format=text", &[]).assert_text(200, "Anna Weiß", number);
    }
    // Mobiles and numbers outside the company are found too.
    lookup(&base, "01701234567", "format=text", &[]).assert_text(200, JUERGEN, "mobile");
    lookup(&base, "890859929", "format=text", &[]).assert_text(200, "Karl Kunde", "customer");
    lookup(&base, "0041441234567", "format=text", &[]).assert_text(200, ZOE, "abroad");
    // E.164 without its `+`, as some trunks present callers.
    let r = lookup(&base, "49891234826", "", &[]).json();
    assert_eq!(r["display_name"], JUERGEN, "{r}");
    assert_eq!(r["e164"], "+49891234826", "{r}");
    lookup(&base, "41441234567", "format=text", &[]).assert_text(404, "", "no country code");

    // The JSON lookup's entry has the feed's shape, numbers with extension and dialable.
    let entry = lookup(&base, "826", "format=json", &[]).json()["entry"].clone();
    assert_eq!(
        entry["business"][0],
        json!({"written": "+49 89 1234-826", "e164": "+49891234826",
            "extension": "826", "dialable": "826"})
    );
    assert_eq!(
        entry["mobile"][0],
        json!({"written": "0170 1234567", "e164": "+491701234567",
            "dialable": "001701234567"})
    );
    server.stop();
}

#[test]
fn text_answers_are_the_name_or_an_empty_body() {
    let (_ws, server) = serve("");
    let base = server.http_url();
    lookup(&base, "+41 44 1234 567", "format=text", &[]).assert_text(200, ZOE, "odd name");
    lookup(&base, "+4930999999", "format=text", &[]).assert_text(404, "", "unknown");
    lookup(&base, "999", "format=text", &[]).assert_text(404, "", "unknown extension");
    for bad in [
        "abc",
        "12",
        "0891234826x",
        "+49 89 1234-826 ext. 5",
        &"1".repeat(65),
    ] {
        lookup(&base, bad, "format=text", &[]).assert_text(400, "", bad);
    }
    curl(&[&format!("{base}/api/v1/lookup?format=text")]).assert_text(400, "", "number missing");
    curl(&[&format!(
        "{base}/api/v1/lookup?number=826&format=text&format=text"
    )])
    .assert_text(200, JUERGEN, "repeated format");

    // JSON clients keep their error objects; a wrong `format` is a JSON 400, since the
    // client did not ask for text.
    let unknown = lookup(&base, "+4930999999", "", &[]);
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"].is_string());
    let bad = lookup(&base, "abc", "format=json", &[]);
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].is_string());
    let format = lookup(&base, "826", "format=xml", &[]);
    assert_eq!(format.status, 400);
    assert_eq!(format.header("content-type"), Some("application/json"));
    assert!(format.json()["error"]
        .as_str()
        .unwrap_or_default()
        .contains("format"));
    server.stop();
}

#[test]
fn withheld_numbers_are_answered_not_refused() {
    let (_ws, server) = serve("");
    let base = server.http_url();
    for number in [
        "",
        " ",
        "anonymous",
        "Anonymous",
        " ANONYMOUS ",
        "unknown",
        "unavailable",
        "Restricted",
        "private",
        "withheld",
    ] {
        lookup(&base, number, "format=text", &[]).assert_text(200, "", number);
        let r = lookup(&base, number, "", &[]);
        assert_eq!(r.status, 200, "{number:?}: {}", r.text());
        assert_eq!(r.json(), json!({"number": number, "withheld": true}));
    }
    server.stop();
}

#[test]
fn the_read_scope_refuses_text_lookups_with_an_empty_body() {
    let (_ws, server) = serve(&format!("{}\nread_clients = [\"10.9.9.9\"]", with_token()));
    let base = server.http_url();
    let none = lookup(&base, "826", "format=text", &[]);
    none.assert_text(401, "", "no token");
    assert!(
        none.header("www-authenticate")
            .is_some_and(|v| v.contains("Basic")),
        "{none:?}"
    );
    lookup(
        &base,
        "826",
        "format=text",
        &["-H", "Authorization: Bearer wrong"],
    )
    .assert_text(401, "", "wrong token");
    lookup(&base, "826", "format=text", &["-u", "pbx:wrong"]).assert_text(
        401,
        "",
        "wrong Basic password",
    );
    lookup(&base, "abc", "format=text", &[]).assert_text(401, "", "refused before parsed");
    lookup(
        &base,
        "826",
        "format=text",
        &["-u", &format!("pbx:{TOKEN}")],
    )
    .assert_text(200, JUERGEN, "the token as Basic password");
    lookup(
        &base,
        "826",
        "format=text",
        &["-H", &format!("Authorization: Bearer {TOKEN}")],
    )
    .assert_text(200, JUERGEN, "the token as bearer");
    // Everyone else keeps the JSON refusal.
    let json = lookup(&base, "826", "", &[]);
    assert_eq!(json.status, 401);
    assert!(json.json()["error"].is_string());
    assert!(json.header("www-authenticate").is_some());
    let feed = curl(&[&format!("{base}/api/v1/entries?format=text")]);
    assert_eq!(feed.status, 401);
    assert!(feed.json()["error"].is_string());
    let log = server.stop();
    assert!(!log.contains(TOKEN), "the token never reaches the log");
}

#[test]
fn read_clients_let_the_pbx_in_without_a_token_and_keep_others_out() {
    let (_ws, listed) = serve(&format!("{}\nread_clients = [\"127.0.0.1\"]", with_token()));
    lookup(&listed.http_url(), "826", "format=text", &[]).assert_text(
        200,
        JUERGEN,
        "listed address, no token",
    );
    listed.stop();

    let (_ws, unlisted) = serve("read_clients = [\"10.0.0.0/8\"]");
    let base = unlisted.http_url();
    lookup(&base, "826", "format=text", &[]).assert_text(403, "", "unlisted address");
    let json = lookup(&base, "826", "", &[]);
    assert_eq!(json.status, 403);
    assert!(json.json()["error"].is_string());
    unlisted.stop();
}

#[test]
fn the_feed_and_the_export_show_extension_and_dialable() {
    let (ws, server) = serve("");
    let base = server.http_url();
    let feed = curl(&[&format!("{base}/api/v1/entries")]);
    assert_eq!(feed.status, 200);
    let doc = feed.json();
    let by_name = |doc: &Value, name: &str| -> Value {
        doc["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["display_name"] == name)
            .unwrap_or_else(|| panic!("{name} missing in {doc}"))
            .clone()
    };
    let juergen = by_name(&doc, JUERGEN);
    assert_eq!(juergen["business"][0]["extension"], "826");
    assert_eq!(juergen["business"][0]["dialable"], "826");
    assert_eq!(
        juergen["mobile"][0],
        json!({"written": "0170 1234567", "e164": "+491701234567", "dialable": "001701234567"}),
        "no extension outside the blocks"
    );
    let anna = by_name(&doc, "Anna Weiß");
    assert_eq!(
        anna["business"][0],
        json!({"written": "030 5678-1234", "e164": "+493056781234",
            "extension": "1234", "dialable": "1234"})
    );
    assert_eq!(
        by_name(&doc, ZOE)["business"][0]["dialable"],
        "00041441234567"
    );
    // Search answers the same shape.
    let found = curl(&[&format!("{base}/api/v1/entries?q=826")]).json();
    assert_eq!(found["entries"][0], juergen);
    // The gzip copy of the feed carries the same document.
    let inflated = curl(&["--compressed", &format!("{base}/api/v1/entries")]);
    assert_eq!(inflated.json(), doc);
    server.stop();
    assert_eq!(ws.export(), doc, "export --format json is the feed");
}

#[test]
fn a_reload_that_changes_the_number_plan_changes_the_feed_and_its_etag() {
    let (ws, server) = serve("");
    let url = format!("{}/api/v1/entries", server.http_url());
    let before = curl(&[&url]);
    let etag = before.header("etag").expect("ETag").to_owned();
    let karl = |doc: &Value| -> Value {
        doc["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["display_name"] == "Karl Kunde")
            .expect("Karl")["business"][0]["dialable"]
            .clone()
    };
    assert_eq!(karl(&before.json()), "00890859929");

    // Same people, same generation: only the outside prefix goes.
    ws.write_config(&config(
        "",
        &NUMBERS.replace("outside_prefix = \"0\"\n", ""),
    ));
    signal(server.pid(), SIGHUP).expect("SIGHUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload: {}", server.log());
        thread::sleep(Duration::from_millis(20));
    }
    let after = curl(&["-H", &format!("If-None-Match: {etag}"), &url]);
    assert_eq!(after.status, 200, "the old ETag no longer names the feed");
    assert_ne!(after.header("etag"), Some(etag.as_str()));
    assert_eq!(after.json()["generation"], before.json()["generation"]);
    assert_eq!(karl(&after.json()), "0890859929");
    server.stop();
}

#[test]
fn a_reload_that_adds_a_block_gives_bare_extensions_their_number() {
    // Synced while only Munich is configured: Berlin's `ipPhone = 4321` is no number yet.
    let munich = "[numbers]\noutside_prefix = \"0\"\nextensions = [{ prefix = \"+49891234\", digits = 3 }]\n";
    let ws = Workspace::new(&config("", munich));
    let ldif = [
        PEOPLE_OU.to_owned(),
        person_ldif(
            "bert",
            &[("cn", "Bert Berlin"), ("sn", "Berlin"), ("ipPhone", "4321")],
        ),
    ]
    .concat();
    std::fs::write(ws.path().join("people.ldif"), ldif).expect("write LDIF");
    assert_eq!(ws.run(&["sync"]).code, 0);
    let server = Server::start(&ws);
    let base = server.http_url();
    lookup(&base, "+493056784321", "format=text", &[]).assert_text(404, "", "before");

    ws.write_config(&config("", NUMBERS));
    signal(server.pid(), SIGHUP).expect("SIGHUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload: {}", server.log());
        thread::sleep(Duration::from_millis(20));
    }
    // No sync in between: the served book reads the written `4321` under the new plan.
    lookup(&base, "+493056784321", "format=text", &[]).assert_text(200, "Bert Berlin", "after");
    let other = lookup(&base, "4321", "", &[]).json()["entry"]["other"][0].clone();
    assert_eq!(
        other,
        json!({"written": "4321", "e164": "+493056784321", "extension": "4321", "dialable": "4321"})
    );
    server.stop();
    // `export` (the server stopped) says the same.
    let exported = ws.run(&["export", "--format", "json"]);
    assert!(exported.stdout.contains("+493056784321"), "{exported:?}");
}

/// The one fenced block of `docs/pbx.md` that holds the dialplan.
fn documented_dialplan() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/pbx.md"))
        .expect("read docs/pbx.md");
    let blocks: Vec<&str> = doc
        .split("```")
        .skip(1)
        .step_by(2)
        .filter(|b| b.contains("${CURL("))
        .collect();
    assert_eq!(blocks.len(), 1, "one dialplan block in docs/pbx.md");
    blocks[0].to_owned()
}

/// The argument of the first `name(` … `)` in `text`, parentheses balanced.
fn argument<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("{name}("))
        .unwrap_or_else(|| panic!("no {name}( in {text}"))
        + name.len()
        + 1;
    let mut depth = 1;
    for (i, c) in text[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[start..start + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced {name}( in {text}")
}

/// Asterisk's `URIENCODE()`: everything but RFC 3986's unreserved characters as `%XX`.
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the documented dialplan would do for a call from `caller`: the URL of its `CURL()`
/// (host and port replaced by the server's, the number URI-encoded), fetched with curl and
/// with `userpwd` when `token` is given; the name it sets only when the answer is not empty.
fn dialplan_sets(dialplan: &str, base: &str, caller: &str, token: Option<&str>) -> Option<String> {
    let url = argument(dialplan, "CURL");
    let url = url
        .replace("http://127.0.0.1:8080", base)
        .replace("${URIENCODE(${CALLERID(num)})}", &uri_encode(caller));
    assert!(
        url.starts_with(base) && !url.contains('$'),
        "every variable substituted: {url}"
    );
    let userpwd = token.map(|t| {
        let line = dialplan
            .lines()
            .find(|l| l.contains("CURLOPT(userpwd)"))
            .expect("a userpwd line");
        argument(line, "Set")
            .strip_prefix("CURLOPT(userpwd)=")
            .expect("Set(CURLOPT(userpwd)=…)")
            .replace("${PB_READ_TOKEN}", t)
    });
    let mut args = vec!["-q".to_owned(), "--max-time".into(), "10".into()];
    if let Some(userpwd) = userpwd {
        args.extend(["-u".into(), userpwd]);
    }
    args.push(url);
    let out = Command::new("curl").args(&args).output().expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    // `GotoIf($[${LEN(${PB_NAME})} = 0]?done)`: nothing is set for an empty answer.
    (!out.stdout.is_empty()).then(|| String::from_utf8(out.stdout).expect("UTF-8 name"))
}

#[test]
fn the_documented_dialplan_sets_the_name_and_nothing_else() {
    let dialplan = documented_dialplan();
    // The lines the emulation below relies on are the ones documented.
    for line in [
        "Set(CURLOPT(userpwd)=pbx:${PB_READ_TOKEN})",
        "Set(PB_NAME=${CURL(http://127.0.0.1:8080/api/v1/lookup?format=text&number=${URIENCODE(${CALLERID(num)})})})",
        "GotoIf($[${LEN(${PB_NAME})} = 0]?done)",
        "Set(CALLERID(name)=${PB_NAME})",
    ] {
        assert!(dialplan.contains(line), "{line} missing in\n{dialplan}");
    }

    let (_ws, open) = serve("");
    let base = open.http_url();
    for (caller, name) in [
        ("+49891234826", Some(JUERGEN)),
        ("826", Some(JUERGEN)),
        ("0891234826", Some(JUERGEN)),
        ("1234", Some("Anna Weiß")),
        ("+41441234567", Some(ZOE)),
        ("+4930999999", None),
        ("anonymous", None),
        ("", None),
        ("abc", None),
    ] {
        assert_eq!(
            dialplan_sets(&dialplan, &base, caller, None).as_deref(),
            name,
            "{caller:?}"
        );
    }
    open.stop();

    let (_ws, guarded) = serve(&with_token());
    let base = guarded.http_url();
    assert_eq!(
        dialplan_sets(&dialplan, &base, "+49891234826", Some(TOKEN)).as_deref(),
        Some(JUERGEN),
        "with PB_READ_TOKEN set"
    );
    assert_eq!(
        dialplan_sets(&dialplan, &base, "+49891234826", None),
        None,
        "without the token the refusal sets nothing"
    );
    assert_eq!(
        dialplan_sets(&dialplan, &base, "+49891234826", Some("wrong")),
        None
    );
    guarded.stop();
}

/// The value of a `| field | `value` … |` row of the FreePBX table in docs/pbx.md.
fn freepbx_field(field: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/pbx.md"))
        .expect("read docs/pbx.md");
    let row = doc
        .lines()
        .find(|l| l.starts_with(&format!("| {field} |")))
        .unwrap_or_else(|| panic!("no {field} row in docs/pbx.md"));
    row.split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no `value` in {row}"))
        .to_owned()
}

#[test]
fn the_documented_freepbx_source_finds_the_caller() {
    let (path, query) = (freepbx_field("Path"), freepbx_field("Query"));
    assert_eq!(path, "/api/v1/lookup");
    assert!(query.contains("[NUMBER]"), "{query}");
    let (_ws, server) = serve(&with_token());
    let addr = server.http_url().trim_start_matches("http://").to_owned();
    // FreePBX builds http://[user:password@]host:port/path?query, with [NUMBER] replaced by
    // the caller's number as it is — a `+` unencoded.
    let url = |auth: &str, number: &str| {
        format!(
            "http://{auth}{addr}{path}?{}",
            query.replace("[NUMBER]", number)
        )
    };
    let user = freepbx_field("Username");
    for number in ["+49891234826", "826", "0891234826"] {
        curl(&[&url(&format!("{user}:{TOKEN}@"), number)]).assert_text(200, JUERGEN, number);
    }
    curl(&[&url(&format!("{user}:{TOKEN}@"), "+4930999999")]).assert_text(404, "", "unknown");
    curl(&[&url("", "+49891234826")]).assert_text(401, "", "no credentials");
    server.stop();
}

/// Two sites whose extensions have the same length: `12345` (five digits) and `826` (three)
/// each name a colleague in both blocks.
const TWIN_BLOCKS: &str = r#"[numbers]
outside_prefix = "0"
extensions = [
  { prefix = "+4940555", digits = 5 }, { prefix = "+4969777", digits = 5 },
  { prefix = "+49891234", digits = 3 }, { prefix = "+4930999", digits = 3 },
]
"#;

fn twin_people() -> String {
    [
        PEOPLE_OU.to_owned(),
        person_ldif(
            "hamburg",
            &[
                ("cn", "Hanna Hamburg"),
                ("telephoneNumber", "+49 40 555-12345"),
            ],
        ),
        person_ldif(
            "frankfurt",
            &[
                ("cn", "Frank Frankfurt"),
                ("telephoneNumber", "+49 69 777-12345"),
            ],
        ),
        person_ldif(
            "munich",
            &[
                ("cn", "Moritz München"),
                ("telephoneNumber", "+49 89 1234-826"),
            ],
        ),
        person_ldif(
            "berlin",
            &[("cn", "Bert Berlin"), ("telephoneNumber", "+49 30 999-826")],
        ),
    ]
    .concat()
}

#[test]
fn an_extension_of_two_blocks_finds_a_colleague_whatever_its_length() {
    let ws = Workspace::new(&config("", TWIN_BLOCKS));
    std::fs::write(ws.path().join("people.ldif"), twin_people()).expect("write LDIF");
    let synced = ws.run(&["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    let server = Server::start(&ws);
    let base = server.http_url();
    // README: both are found, and the lookup answers the first in the book's order. A
    // five-digit extension must not be read as a national number without its trunk prefix
    // (`+4912345`) and then miss both colleagues.
    lookup(&base, "826", "format=text", &[]).assert_text(200, "Bert Berlin", "826");
    lookup(&base, "12345", "format=text", &[]).assert_text(200, "Frank Frankfurt", "12345");
    let json = lookup(&base, "12345", "", &[]);
    assert_eq!(json.status, 200, "{}", json.text());
    assert_eq!(json.json()["display_name"], "Frank Frankfurt");
    // The whole numbers still find each one.
    lookup(&base, "4055512345", "format=text", &[]).assert_text(200, "Hanna Hamburg", "nsn");
    lookup(&base, "+496977712345", "format=text", &[]).assert_text(200, "Frank Frankfurt", "e164");
    lookup(&base, "1234", "format=text", &[]).assert_text(404, "", "no four-digit block");
    server.stop();
}
