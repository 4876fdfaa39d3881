//! The LDAP endpoint against hostile clients, through the real binary: clients that never
//! read their replies, paged searches asking for the whole book in one page, password
//! guessing, and controls the server must refuse (RFC 4511 §4.1.11, RFC 2891).
//!
//! The book is generated people (`support::gen`) read from an LDIF file by a `file:`
//! connector; the clients speak BER over raw TCP so that each test controls exactly what is
//! sent and when (or whether) anything is read.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::cli::Workspace;
use support::gen::{people_ldif, GenOptions, DEFAULT_SEED};
use support::server::Server;

const BASE: &str = "ou=phonebook,dc=example,dc=com";
const PHONE_DN: &str = "cn=phone,ou=devices,dc=example,dc=com";
const PHONE_PASSWORD: &str = "right-password";

use support::ber::{
    BIND_RESPONSE, OID_PAGED, OID_SORT_RESPONSE, SEARCH_RESULT_DONE, SEARCH_RESULT_ENTRY,
};

/// How long a raw connection may stay silent before the test calls it hanging.
const RAW_TIMEOUT: Duration = Duration::from_secs(15);
/// A generous deadline for things that must eventually happen.
const DEADLINE: Duration = Duration::from_secs(90);

/// A workspace whose store holds `people` generated people; `ldap` is appended to `[ldap]`.
/// Returns it with the number of entries served below the base (the container excluded).
fn book(people: usize, ldap: &str) -> (Workspace, usize) {
    let ws = Workspace::new(&format!(
        r#"[store]
path = "data/phonebook.db"

[ldap]
listen = "127.0.0.1:0"
base_dn = "{BASE}"
{ldap}

[[ldap.users]]
dn = "{PHONE_DN}"
password = "{PHONE_PASSWORD}"

[http]
listen = "127.0.0.1:0"

[[connector]]
name = "people"
uri = "file:people.ldif"
base_dn = "ou=people,dc=example,dc=com"
filter = "(objectClass=inetOrgPerson)"

[connector.fields]
display_name = "{{displayName|cn}}"
first_name = "{{givenName}}"
last_name = "{{sn}}"
company = "{{o}}"
department = "{{ou}}"
title = "{{title}}"
email = "{{mail}}"
business = "{{telephoneNumber}}"
mobile = "{{mobile}}"
home = "{{homePhone}}"
fax = "{{facsimileTelephoneNumber}}"
"#
    ));
    let (ldif, _) = people_ldif(&GenOptions {
        n: people,
        seed: DEFAULT_SEED,
        with_memberof: false,
    });
    std::fs::write(ws.path().join("people.ldif"), ldif).expect("write the LDIF");
    let report = ws.sync(&[], 0);
    let served = report["created"].as_u64().expect("created count") as usize;
    assert!(served > people / 2, "{report}");
    (ws, served)
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(RAW_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(RAW_TIMEOUT)).unwrap();
    stream
}

/// The `Name:` value of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
}

use support::ber;

/// Reads replies up to the SearchResultDone: (entries, done).
fn read_search(stream: &mut TcpStream) -> (Vec<ber::Reply>, ber::Reply) {
    let mut entries = Vec::new();
    loop {
        let reply = ber::read(stream).expect("a search reply");
        match reply.op {
            SEARCH_RESULT_ENTRY => entries.push(reply),
            SEARCH_RESULT_DONE => return (entries, reply),
            other => panic!("unexpected reply {other:#04x}: {reply:?}"),
        }
    }
}

/// The cookie of a paged SearchResultDone (empty at the end).
fn cookie(done: &ber::Reply) -> Vec<u8> {
    let value = done.control(OID_PAGED).expect("paged results control");
    let (_, seq, _) = ber::element(value).expect("SEQUENCE");
    let (_, _, rest) = ber::element(seq).expect("size");
    let (_, cookie, _) = ber::element(rest).expect("cookie");
    cookie.to_vec()
}

/// Reads until the server closes the connection; panics if it stays open. Returns the bytes
/// that were still delivered.
fn read_to_close(stream: &mut TcpStream, what: &str) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("{what}: the connection is still open after {RAW_TIMEOUT:?} of silence")
            }
            Err(_) => return total, // reset
        }
    }
}

/// One search on a fresh connection answers (the server is not stuck).
fn answers(server: &Server) -> usize {
    let mut stream = connect(server);
    let paged = ber::paged(50, b"");
    stream
        .write_all(&ber::message(1, &ber::search(BASE), &[paged]))
        .unwrap();
    let (entries, done) = read_search(&mut stream);
    assert_eq!(done.code, Some(0), "{done:?}");
    entries.len()
}

/// Clients that ask for the whole book and never read are cut off after the write timeout,
/// and what the server holds for them stays bounded meanwhile.
#[test]
fn clients_that_never_read_are_closed_and_bounded() {
    const CLIENTS: usize = 32;
    /// Whole-book searches each client sends at once (LDAP allows pipelining): the kernel's
    /// socket buffers (up to 4 MiB on the sending side alone) swallow the first reply, so
    /// only the later ones have to wait in the server.
    const PIPELINED: usize = 5;
    const QUEUED: usize = 64 * 1024;
    let (ws, served) = book(
        6000,
        &format!(
            "max_page_size = 1000000\nmax_queued_bytes = {QUEUED}\nwrite_timeout = \"2s\"\nmax_connections_per_client = 64"
        ),
    );
    let server = Server::start(&ws);
    let pid = server.pid();

    // How big the whole-book reply is: one well-behaved client reads it all.
    let mut stream = connect(&server);
    let request = ber::message(1, &ber::search(BASE), &[ber::paged(1_000_000, b"")]);
    stream.write_all(&request).unwrap();
    let (entries, done) = read_search(&mut stream);
    assert_eq!((entries.len(), done.code), (served + 1, Some(0)));
    let reply_bytes: usize = entries.iter().map(|e| e.size).sum::<usize>() + done.size;
    drop(stream);
    let baseline = proc_kib(pid, "VmRSS");

    // The bound: per connection, the queue cap plus one slice of entries, in a buffer that
    // may have doubled its capacity while growing — at most ~4 × QUEUED — plus the session
    // and socket state; 8 MiB covers that for 32 connections with room for allocator noise.
    // Holding every reply whole (the old behaviour) needs CLIENTS × reply_bytes, minus what
    // the kernel's socket buffers absorb; the book is big enough for that to be far above.
    let bound_kib = 8 * 1024 + (CLIENTS * 4 * QUEUED / 1024) as u64;
    assert!(
        (CLIENTS * reply_bytes / 1024) as u64 > 3 * bound_kib,
        "the book is too small to tell: {reply_bytes} bytes per reply"
    );

    let mut stalled: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(&request.repeat(PIPELINED)).unwrap();
            s
        })
        .collect();
    // Meanwhile another client is served.
    assert_eq!(answers(&server), 50);

    let closed = |log: &str| log.matches("does not read its replies").count();
    let mut peak = baseline;
    let deadline = Instant::now() + DEADLINE;
    while closed(&server.log()) < CLIENTS {
        peak = peak.max(proc_kib(pid, "VmRSS"));
        assert!(
            Instant::now() < deadline,
            "{} of {CLIENTS} clients that do not read closed within {DEADLINE:?}; \
             VmRSS {baseline} → {peak} KiB",
            closed(&server.log())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(closed(&server.log()), CLIENTS, "one line per connection");
    eprintln!(
        "{CLIENTS} clients × {PIPELINED} × {reply_bytes} bytes asked for; VmRSS {baseline} → peak {peak} KiB (bound +{bound_kib})"
    );
    assert!(
        peak < baseline + bound_kib,
        "VmRSS grew from {baseline} to {peak} KiB (bound {bound_kib} KiB more; \
         {CLIENTS} × {reply_bytes} bytes asked for)"
    );

    // When they finally read, each gets what had been sent and then the end of the stream.
    for (i, s) in stalled.iter_mut().enumerate() {
        let got = read_to_close(s, &format!("stalled client {i}"));
        assert!(
            got < PIPELINED * reply_bytes,
            "client {i} got every reply ({got} bytes)"
        );
    }
    // And the server still answers.
    assert_eq!(answers(&server), 50);
    server.stop();
}

/// A paged search asking for 100000 entries a page gets pages of max_page_size, and the
/// cookie walks every entry exactly once.
#[test]
fn pages_are_capped_and_walk_every_entry_once() {
    let (ws, served) = book(1200, "max_page_size = 100");
    let server = Server::start(&ws);
    let mut stream = connect(&server);
    let mut seen = HashSet::new();
    let mut cookie_now = Vec::new();
    let mut pages = 0;
    for id in 1.. {
        let request = ber::message(id, &ber::search(BASE), &[ber::paged(100_000, &cookie_now)]);
        stream.write_all(&request).unwrap();
        let (entries, done) = read_search(&mut stream);
        assert_eq!(done.code, Some(0), "{done:?}");
        assert!(
            entries.len() <= 100,
            "page {pages}: {} entries, more than max_page_size",
            entries.len()
        );
        for e in entries {
            let dn = e.dn.expect("an entry has a DN");
            assert!(seen.insert(dn.clone()), "{dn} sent twice");
        }
        pages += 1;
        cookie_now = cookie(&done);
        if cookie_now.is_empty() {
            break;
        }
        assert!(pages < 1000, "paging does not end");
    }
    // Every entry and the base container, each once.
    assert_eq!(seen.len(), served + 1);
    assert_eq!(pages, (served + 1).div_ceil(100));
    server.stop();
}

/// Password guessing from one address: after max_failed_binds wrong binds within the window,
/// even the right password is refused (unwillingToPerform, 53), logged once.
#[test]
fn failed_binds_throttle_the_address() {
    let (ws, _) = book(50, "max_failed_binds = 3\nfailed_bind_window = \"10m\"");
    let server = Server::start(&ws);
    let mut stream = connect(&server);
    let bind = |stream: &mut TcpStream, id: u32, password: &str| -> u8 {
        let dn = if password.is_empty() { "" } else { PHONE_DN };
        stream
            .write_all(&ber::message(id, &ber::bind(dn, password), &[]))
            .unwrap();
        let reply = ber::read(stream).expect("a bind response");
        assert_eq!(reply.op, BIND_RESPONSE, "{reply:?}");
        reply.code.expect("a result code")
    };
    // The right password works, and a success does not wipe later failures.
    assert_eq!(bind(&mut stream, 1, PHONE_PASSWORD), 0);
    for id in 2..=4 {
        assert_eq!(bind(&mut stream, id, "guess"), 49, "wrong password {id}");
    }
    // Now every password bind from this address is refused, the right one too, on any
    // connection.
    assert_eq!(bind(&mut stream, 5, PHONE_PASSWORD), 53);
    assert_eq!(bind(&mut stream, 6, "guess"), 53);
    let mut other = connect(&server);
    assert_eq!(bind(&mut other, 1, PHONE_PASSWORD), 53);
    // An anonymous bind tries no password and still works, and so do searches.
    assert_eq!(bind(&mut other, 2, ""), 0);
    other
        .write_all(&ber::message(3, &ber::search(BASE), &[ber::paged(10, b"")]))
        .unwrap();
    let (entries, done) = read_search(&mut other);
    assert_eq!((entries.len(), done.code), (10, Some(0)));

    let log = server.stop();
    assert_eq!(
        log.matches("too many failed binds from this address")
            .count(),
        1,
        "one warning per address and window:\n{log}"
    );
}

/// RFC 4511 §4.1.11 for an Unbind (it has no response, so refusing it means not performing
/// it: the connection stays open) and RFC 2891 for a critical sort on unknown attributes.
#[test]
fn unbind_and_sort_honour_critical_controls() {
    let (ws, served) = book(50, "");
    let server = Server::start(&ws);
    let mut stream = connect(&server);
    let mut id = 0;
    let search = |stream: &mut TcpStream, id: &mut u32, controls: &[Vec<u8>]| {
        *id += 1;
        stream
            .write_all(&ber::message(*id, &ber::search(BASE), controls))
            .unwrap();
        read_search(stream)
    };

    // A critical sort whose keys the server does not know: 12, no entries, and the sort
    // response says noSuchAttribute (16).
    let (entries, done) = search(
        &mut stream,
        &mut id,
        &[ber::sort(true, &["shoeSize", "x-unknown"])],
    );
    assert_eq!((entries.len(), done.code), (0, Some(12)), "{done:?}");
    let sort_result = done.control(OID_SORT_RESPONSE).expect("sort response");
    assert_eq!(&sort_result[2..5], &[0x0a, 0x01, 16], "{sort_result:02x?}");
    // Not critical: success, unsorted, noSuchAttribute in the sort response.
    let (entries, done) = search(&mut stream, &mut id, &[ber::sort(false, &["shoeSize"])]);
    assert_eq!((entries.len(), done.code), (served + 1, Some(0)));
    let sort_result = done.control(OID_SORT_RESPONSE).expect("sort response");
    assert_eq!(&sort_result[2..5], &[0x0a, 0x01, 16]);
    // Critical with one known key among unknown ones: sorted, success.
    let (entries, done) = search(
        &mut stream,
        &mut id,
        &[ber::sort(true, &["shoeSize", "sn"])],
    );
    assert_eq!((entries.len(), done.code), (served + 1, Some(0)));
    let sort_result = done.control(OID_SORT_RESPONSE).expect("sort response");
    assert_eq!(&sort_result[2..5], &[0x0a, 0x01, 0]);

    // An Unbind with a critical control the server does not implement for it is not
    // performed: the next search on the same connection is answered.
    let unknown = ber::control("1.2.3.4", true, None);
    let paged = {
        // The paged results control, marked critical: known, but not for an Unbind.
        let value = ber::tlv(0x30, &[ber::tlv(0x02, &[10]), ber::tlv(0x04, b"")].concat());
        ber::control(OID_PAGED, true, Some(&value))
    };
    let sort = ber::sort(true, &["sn"]);
    for control in [unknown, paged, sort] {
        id += 1;
        stream
            .write_all(&ber::message(id, &ber::unbind(), &[control]))
            .unwrap();
        let (entries, done) = search(&mut stream, &mut id, &[ber::paged(5, b"")]);
        assert_eq!(
            (entries.len(), done.code),
            (5, Some(0)),
            "the connection must survive the refused Unbind"
        );
    }
    // A non-critical unknown control is ignored: the Unbind closes the connection.
    stream
        .write_all(&ber::message(
            99,
            &ber::unbind(),
            &[ber::control("1.2.3.4", false, None)],
        ))
        .unwrap();
    assert_eq!(read_to_close(&mut stream, "after a plain Unbind"), 0);
    server.stop();
}
