//! The HTTP endpoint's bounds, through the real binary: the connection cap (LDAP keeps
//! accepting while HTTP is full), the header and idle timeouts, a shutdown a stuck client
//! cannot hold up, and XML books that stay well-formed and small whatever upstream sent
//! (hostile entries come from a `file:` connector reading an LDIF written here).

mod support;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::cli::Workspace;
use support::gen::{person_ldif, PEOPLE_OU};
use support::server::Server;

/// Long enough for anything that "eventually happens" on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// A workspace serving `ldif` (written to `people.ldif`) with `http` added to `[http]`,
/// synced and started.
fn serve(ldif: &str, http: &str) -> (Workspace, Server) {
    let config = format!(
        r#"[store]
path = "data/phonebook.db"

[ldap]
listen = "127.0.0.1:0"

[http]
listen = "127.0.0.1:0"
{http}

# The import caps would refuse the hostile entries these tests serve; the books must be
# bounded on their own, so the caps are opened wide here.
[import]
max_value_bytes = 1048576
max_numbers_per_entry = 10000

[[connector]]
name = "file"
uri = "file:people.ldif"
base_dn = "ou=people,dc=example,dc=com"
filter = "(objectClass=inetOrgPerson)"
"#
    );
    let ws = Workspace::new(&config);
    std::fs::write(ws.path().join("people.ldif"), ldif).expect("write LDIF");
    ws.sync(&[], 0);
    let server = Server::start(&ws);
    (ws, server)
}

fn small_book() -> String {
    format!(
        "{PEOPLE_OU}{}",
        person_ldif(
            "anna",
            &[
                ("cn", "Anna Weiß"),
                ("sn", "Weiß"),
                ("telephoneNumber", "089 7654321")
            ]
        )
    )
}

fn http_addr(server: &Server) -> SocketAddr {
    server
        .http_url()
        .trim_start_matches("http://")
        .parse()
        .expect("http address")
}

/// Polls `condition` until it holds; panics with `what` after [`DEADLINE`].
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads until the server closes the connection or `within` passes; the bytes read, and
/// whether it closed.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + within;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (data, false);
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return (data, true),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return (data, true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (data, false)
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// `GET path` on a fresh connection: the status, or `None` when the connection was closed
/// without an answer.
fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .ok()?;
    let (data, _) = read_until_closed(&mut stream, DEADLINE);
    let text = String::from_utf8_lossy(&data);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// An anonymous simple bind on a raw socket; true when slapd-style success comes back.
fn ldap_binds(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return false;
    };
    // BindRequest, messageID 1, version 3, empty DN, empty simple password.
    let bind = [
        0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
    ];
    if stream.write_all(&bind).is_err() {
        return false;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut answer = [0u8; 14];
    // BindResponse (0x61) with resultCode success (0x0a 0x01 0x00).
    stream.read_exact(&mut answer).is_ok()
        && answer[5] == 0x61
        && answer.windows(3).any(|w| w == [0x0a, 0x01, 0x00])
}

/// Whether the server has closed `stream` (EOF, reset, or its 503 followed by a close);
/// never blocks.
fn closed(mut stream: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn connections_over_the_cap_are_closed_and_ldap_keeps_accepting() {
    let (_ws, server) = serve(
        &small_book(),
        "max_connections = 50\nheader_timeout = \"5m\"\nidle_timeout = \"5m\"",
    );
    // Few descriptors, as on a host where 20,000 sockets are all there is: without the cap,
    // 300 idle HTTP sockets would use up the process's descriptors and LDAP stop accepting.
    let pid = server.pid().to_string();
    let out = Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=200:200"])
        .output()
        .expect("run prlimit");
    assert!(out.status.success(), "prlimit: {out:?}");

    let http = http_addr(&server);
    let mut sockets: Vec<TcpStream> = (0..300)
        .map(|_| {
            let s = TcpStream::connect(http).expect("connect");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    let mut open = 0;
    eventually("all but 50 of 300 idle connections to be closed", || {
        open = sockets.iter().filter(|s| !closed(s)).count();
        open == 50
    });
    // LDAP still accepts while HTTP is at its cap.
    assert!(ldap_binds(server.addr()), "LDAP bind while HTTP is full");
    // A new HTTP connection is turned away at once, not queued.
    assert_ne!(get_status(http, "/healthz"), Some(200));
    assert_eq!(
        sockets.iter().filter(|s| !closed(s)).count(),
        50,
        "the 50 admitted connections stay open"
    );

    // Once the idle ones go, HTTP answers again.
    sockets.clear();
    eventually("HTTP to answer on a fresh connection", || {
        get_status(http, "/healthz") == Some(200)
    });
    assert!(ldap_binds(server.addr()), "LDAP bind afterwards");
    server.stop();
}

/// One host holding half-sent requests open could take the whole cap (every lookup answered
/// 503); its share is `max_connections_per_client`, and a freed slot is usable again.
#[test]
fn one_client_holds_at_most_its_share_of_http_connections() {
    let (_ws, server) = serve(
        &small_book(),
        "max_connections = 100\nmax_connections_per_client = 5\nheader_timeout = \"5m\"\nidle_timeout = \"5m\"",
    );
    let http = http_addr(&server);
    let mut held: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect(http).expect("connect");
            s.write_all(b"GET /healthz HTTP/1.1\r\n")
                .expect("half a head");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    // Five are this client's share: a sixth is turned away at once.
    eventually(
        "a sixth connection from the same address to be refused",
        || get_status(http, "/healthz") != Some(200),
    );
    assert!(held.iter().all(|s| !closed(s)), "the five stay open");
    held.pop();
    eventually("a freed slot to be usable", || {
        get_status(http, "/healthz") == Some(200)
    });
    drop(held);
    let log = server.stop();
    assert!(log.contains("a client holds too many connections"), "{log}");
}

#[test]
fn a_half_sent_request_header_is_cut_off_after_the_header_timeout() {
    let (_ws, server) = serve(
        &small_book(),
        "header_timeout = \"1s\"\nidle_timeout = \"5m\"",
    );
    let mut stream = TcpStream::connect(http_addr(&server)).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .expect("half a header");
    let (data, closed) = read_until_closed(&mut stream, DEADLINE);
    assert!(closed, "the connection must be closed");
    assert!(
        !String::from_utf8_lossy(&data).contains("200 OK"),
        "{data:?}"
    );
    // The server itself is fine.
    assert_eq!(get_status(http_addr(&server), "/healthz"), Some(200));
    server.stop();
}

/// One request on a keep-alive connection answered, then the connection closed while idle.
fn keep_alive_closes_when_idle(http: &str) {
    let (_ws, server) = serve(&small_book(), http);
    let mut stream = TcpStream::connect(http_addr(&server)).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("request");
    // The answer comes, the connection stays open for another request …
    let mut data = Vec::new();
    let mut buf = [0u8; 1024];
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    while !String::from_utf8_lossy(&data).ends_with("ok\n") {
        let n = stream.read(&mut buf).expect("response");
        assert!(n > 0, "closed before answering: {data:?}");
        data.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&data).starts_with("HTTP/1.1 200"));
    // … and is closed once it has been idle for too long.
    let (more, closed) = read_until_closed(&mut stream, DEADLINE);
    assert!(
        closed && more.is_empty(),
        "{http}: idle keep-alive must close: {more:?}"
    );
    server.stop();
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    keep_alive_closes_when_idle("header_timeout = \"5m\"\nidle_timeout = \"1s\"");
    // hyper counts the wait for the next request as reading its header, so the header
    // timeout bounds the gap too when it is the shorter one.
    keep_alive_closes_when_idle("header_timeout = \"1s\"\nidle_timeout = \"5m\"");
}

#[test]
fn sigterm_with_a_stuck_half_request_still_exits_promptly() {
    let (_ws, server) = serve(
        &small_book(),
        "header_timeout = \"5m\"\nidle_timeout = \"5m\"",
    );
    let mut stuck = TcpStream::connect(http_addr(&server)).expect("connect");
    stuck
        .write_all(b"GET /phonebook/yealink.xml HTTP/1.1\r\nHost: t\r\nX-Half: ")
        .expect("half a header");
    // A later connection answered means the stuck one was accepted before it.
    assert_eq!(get_status(http_addr(&server), "/healthz"), Some(200));
    // `stop` asserts exit 0 within 15 s of SIGTERM.
    server.stop();
    drop(stuck);
}

/// `curl` a book: status and body.
fn fetch(url: &str) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "120", "-w", "%{http_code}", "-o"])
        .arg(&body)
        .arg(url)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {url}: {out:?}");
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("status");
    (status, std::fs::read(body).unwrap_or_default())
}

const BOOKS: [&str; 5] = [
    "yealink.xml",
    "cisco.xml",
    "snom.xml",
    "grandstream.xml",
    "fanvil.xml",
];

#[test]
fn xml_books_stay_well_formed_and_small_with_hostile_entries() {
    let huge_name = format!("Zyx{}", "A".repeat(100_000));
    let numbers: Vec<String> = (0..1000).map(|i| format!("+49 89 1000 {i:04}")).collect();
    let mut huge: Vec<(&str, &str)> = vec![("cn", &huge_name), ("sn", "Zyx")];
    huge.extend(numbers.iter().map(|n| ("telephoneNumber", n.as_str())));
    let ldif = format!(
        "{PEOPLE_OU}{}{}",
        person_ldif(
            "odd",
            &[
                ("cn", "Odd\u{FFFE}Name\u{FFFF} X\u{1}"),
                ("sn", "Odd\u{FFFF}"),
                ("givenName", "\u{FFFE}"),
                ("o", "Firm\u{FFFF}"),
                ("telephoneNumber", "+49 89 555 0101"),
                ("mobile", "+49 170 555 0101"),
            ]
        ),
        person_ldif("huge", &huge),
    );
    let (_ws, server) = serve(&ldif, "");
    let base = server.http_url();

    for book in BOOKS {
        let (status, body) = fetch(&format!("{base}/phonebook/{book}?q=Odd"));
        assert_eq!(status, 200, "{book}");
        let text = String::from_utf8(body).expect("UTF-8");
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{book} is not well-formed XML ({e}):\n{text}"));
        assert!(
            doc.descendants()
                .any(|n| n.text().is_some_and(|t| t.starts_with("Odd"))),
            "{book}: the name without its forbidden characters:\n{text}"
        );
    }

    // One entry with a 100 KB name and 1,000 numbers: a few KB of book, not 100 MB.
    let (status, body) = fetch(&format!("{base}/phonebook/snom.xml?q=Zyx"));
    assert_eq!(status, 200);
    assert!(body.len() < 16 * 1024, "snom.xml is {} bytes", body.len());
    let text = String::from_utf8(body).expect("UTF-8");
    let doc = roxmltree::Document::parse(&text).expect("snom.xml parses");
    let items = doc.descendants().filter(|n| n.has_tag_name("item")).count();
    assert!(
        (1..=16).contains(&items),
        "the huge entry is listed, with at most 16 numbers:\n{text}"
    );
    for book in BOOKS {
        let (_, body) = fetch(&format!("{base}/phonebook/{book}?q=Zyx"));
        assert!(body.len() < 16 * 1024, "{book} is {} bytes", body.len());
        let text = String::from_utf8(body).expect("UTF-8");
        roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{book}: {e}"));
    }
    server.stop();
}

/// `n` people with one number each.
fn many_people(n: usize) -> String {
    let mut ldif = PEOPLE_OU.to_owned();
    for i in 0..n {
        ldif.push_str(&person_ldif(
            &format!("p{i:04}"),
            &[
                ("cn", &format!("Person {i:04}")),
                ("sn", &format!("Person{i:04}")),
                ("telephoneNumber", &format!("+49 89 2000 {i:04}")),
            ],
        ));
    }
    ldif
}

#[test]
fn large_books_are_capped_streamed_and_cisco_pages_never_wrap() {
    let (_ws, server) = serve(&many_people(3000), "xml_max_rows = 2500");
    let base = server.http_url();

    // Larger than what is sent whole: streamed, still one well-formed book, capped at 2,500.
    let (status, body) = fetch(&format!("{base}/phonebook/yealink.xml"));
    assert_eq!(status, 200);
    assert!(body.len() > 256 * 1024, "{} bytes", body.len());
    let text = String::from_utf8(body).expect("UTF-8");
    let doc = roxmltree::Document::parse(&text).expect("yealink.xml parses");
    let rows = doc
        .descendants()
        .filter(|n| n.has_tag_name("DirectoryEntry"))
        .count();
    assert_eq!(rows, 2500);
    let (_, body) = fetch(&format!("{base}/phonebook/snom.xml"));
    let text = String::from_utf8(body).expect("UTF-8");
    let doc = roxmltree::Document::parse(&text).expect("snom.xml parses");
    assert_eq!(doc.root_element().attribute("complete"), Some("false"));
    assert_eq!(
        doc.descendants().filter(|n| n.has_tag_name("item")).count(),
        2500
    );

    // 2,500 rows are 79 pages of 32; beyond that, the last page — never page 1 again.
    let page = |p: &str| {
        let (status, body) = fetch(&format!("{base}/phonebook/cisco.xml?page={p}"));
        (status, String::from_utf8(body).expect("UTF-8"))
    };
    let (status, last) = page("79");
    assert_eq!(status, 200);
    assert!(last.contains("<Prompt>Page 79 of 79</Prompt>"), "{last}");
    assert!(!last.contains("<Name>Next</Name>"), "{last}");
    // 2^59 + 1: (page - 1) × 32 is 2^64, which wrapped to the first page.
    for huge in [
        "80",
        "576460752303423489",
        "18446744073709551616",
        "99999999999999999999999999",
    ] {
        let (status, body) = page(huge);
        assert_eq!(status, 200, "page={huge}: {body}");
        assert_eq!(body, last, "page={huge}");
    }
    let (status, _) = page("0");
    assert_eq!(status, 400);
    server.stop();
}

/// The kernel's state of the TCP socket at `local` connected to `remote` (Linux
/// `/proc/net/tcp`: `01` is ESTABLISHED; after the owner closes it, FIN_WAIT1 (`04`) while
/// unsent data still waits — or the socket is gone).
fn tcp_state(local: SocketAddr, remote: SocketAddr) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |a: &str| a.rsplit(':').next().map(str::to_owned);
    let (local, remote) = (
        format!("{:04X}", local.port()),
        format!("{:04X}", remote.port()),
    );
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (l, r, st) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
        (port(l)? == local && port(r)? == remote).then(|| (*st).to_owned())
    })
}

#[test]
fn a_client_that_stops_reading_is_disconnected_after_the_idle_timeout() {
    let (_ws, server) = serve(
        &many_people(3000),
        "header_timeout = \"5m\"\nidle_timeout = \"1s\"",
    );
    let http = http_addr(&server);
    let mut stream = TcpStream::connect(http).expect("connect");
    // 100 pipelined requests for a ~450 KB book: far more than the socket buffers hold, so
    // the server's writes stall while this client reads nothing.
    let request = "GET /phonebook/yealink.xml HTTP/1.1\r\nHost: t\r\n\r\n".repeat(100);
    stream.write_all(request.as_bytes()).expect("requests");
    let local = stream.local_addr().expect("local address");
    // The server's end leaves ESTABLISHED once it closes it. Its FIN waits behind the
    // unsent data, so this client cannot see the close without reading.
    eventually("the server to close the stalled connection", || {
        tcp_state(http, local).as_deref() != Some("01")
    });
    // What arrived is less than was asked for: the server gave up on the rest.
    let (data, closed) = read_until_closed(&mut stream, DEADLINE);
    assert!(closed);
    let answers = String::from_utf8_lossy(&data)
        .matches("HTTP/1.1 200")
        .count();
    assert!(answers < 100, "{answers} answers");
    assert_eq!(get_status(http, "/healthz"), Some(200));
    server.stop();
}

#[test]
fn a_slow_request_outlives_the_idle_timeout() {
    // An upstream that accepts and never answers: a sync against it takes its whole timeout,
    // longer than the idle timeout, while the client waits silently for the answer.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let config = format!(
        r#"[store]
path = "data/phonebook.db"

[ldap]
listen = "127.0.0.1:0"

[http]
listen = "127.0.0.1:0"
idle_timeout = "1s"

[[connector]]
name = "hang"
uri = "ldap://{}"
base_dn = "ou=people,dc=example,dc=com"
timeout = "3s"
"#,
        upstream.local_addr().expect("upstream address")
    );
    let ws = Workspace::new(&config);
    let server = Server::start(&ws);
    let out = Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-X", "POST", "-H", "X-Requested-With: test"])
        .arg(format!("{}/api/v1/connectors/hang/sync", server.http_url()))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "the answer must arrive: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "502");
    server.stop();
    drop(upstream);
}
