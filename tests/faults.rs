//! Faults an administrator's phone book must survive: kills in the middle of a sync, an
//! upstream that stops or hangs, a broken configuration on reload. The real binary, a real
//! slapd, real clients.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::{binary, ldap_config, Workspace};
use support::gen::{self, GenOptions};
use support::server::Server;
use support::slapd::{signal, Slapd};

const SIGKILL: i32 = 9;
const SIGHUP: i32 = 1;

/// curl with `args`; the status and the JSON body. Every request says it is a script's own
/// (`X-Requested-With`): the admin API refuses changes without it or a JSON body.
fn curl_json(args: &[&str]) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "60"])
        .args(["-H", "X-Requested-With: test"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// Polls `condition` until it holds or `limit` passes.
fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies a directory tree (the sled store) so each trial starts from the same state.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn sigkill_during_a_sync_leaves_the_old_or_the_new_book_and_the_next_sync_succeeds() {
    let (ldif, stats) = gen::people_ldif(&GenOptions {
        n: 20_000,
        seed: 5,
        with_memberof: true,
    });
    let slapd = Slapd::builder().ldif(ldif).start().expect("start slapd");
    let ws = Workspace::new(&ldap_config(
        "corp",
        &slapd.url(),
        "max_removals = \"100%\"\nid_attribute = \"entryUUID\"",
    ));
    ws.sync(&[], 0);
    let old = ws.export();
    assert_eq!(old["entries"].as_array().map(Vec::len), Some(stats.people));
    let pristine = ws.path().join("pristine-db");
    copy_dir(&ws.path().join("data/phonebook.db"), &pristine);

    // The upstream changes: 500 people leave, 500 are renamed.
    let people = gen::people(5, 1_000);
    let leaving: Vec<&str> = people[..500].iter().map(|p| p.dn.as_str()).collect();
    slapd.delete_many(&leaving).expect("delete upstream");
    let renames: String = people[500..]
        .iter()
        .map(|p| {
            format!(
                "dn: {}\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed {}\n\n",
                p.dn, p.index
            )
        })
        .collect();
    slapd.ldapmodify(&renames).expect("rename upstream");

    // The new book, from an undisturbed sync of a copy.
    let reference = Workspace::new(&std::fs::read_to_string(ws.config_path()).expect("config"));
    copy_dir(&pristine, &reference.path().join("data/phonebook.db"));
    reference.sync(&[], 0);
    let new = reference.export();
    assert_ne!(old, new);

    // Kill the sync at many moments — while pulling, while planning, around the apply — and
    // check every time that the store is whole.
    let mut outcomes = (0, 0);
    for delay_ms in [
        0u64, 20, 60, 120, 200, 300, 450, 600, 800, 1000, 1300, 1700, 2200,
    ] {
        copy_dir(&pristine, &ws.path().join("data/phonebook.db"));
        let mut child = Command::new(binary())
            .current_dir(ws.path())
            .args(["--config", "phonebook.toml", "sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sync");
        // Fault injection at a chosen moment; the assertions hold whatever the moment was.
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(child.id(), SIGKILL).expect("SIGKILL");
        let _ = child.wait();
        let now = ws.export();
        if now == old {
            outcomes.0 += 1;
        } else if now == new {
            outcomes.1 += 1;
        } else {
            panic!(
                "after a kill at {delay_ms} ms the store holds neither the old nor the new book"
            );
        }
    }
    eprintln!(
        "kills that left the old book: {}, the new book: {}",
        outcomes.0, outcomes.1
    );
    assert!(outcomes.0 > 0, "some kills must have hit before the apply");

    // The next sync succeeds and a restarted server serves the result at once.
    ws.sync(&[], 0);
    assert_eq!(ws.export(), new);
    let config = format!(
        "[ldap]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n{}",
        std::fs::read_to_string(ws.config_path()).expect("config")
    );
    ws.write_config(&config.replace("id_attribute", "schedule = \"1h\"\nid_attribute"));
    let server = Server::start(&ws);
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &server.url(),
            "-b",
            "ou=phonebook,dc=example,dc=com",
            "-E",
            "pr=1000/noprompt",
            "(objectClass=inetOrgPerson)",
            "1.1",
        ])
        .output()
        .expect("ldapsearch");
    let served = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("dn:"))
        .count();
    assert_eq!(served, new["entries"].as_array().map_or(0, Vec::len));
    server.stop();
}

fn serve_config(slapd_url: &str, extra: &str) -> String {
    format!(
        "[ldap]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n{}",
        ldap_config("corp", slapd_url, &format!("schedule = \"1h\"\n{extra}"))
    )
}

fn ldap_count(server: &Server, filter: &str) -> usize {
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &server.url(),
            "-b",
            "ou=phonebook,dc=example,dc=com",
            filter,
            "1.1",
        ])
        .output()
        .expect("ldapsearch");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("dn:"))
        .count()
}

#[test]
fn an_upstream_that_stops_leaves_the_last_good_book_served_and_status_shows_the_error() {
    let (ldif, stats) = gen::people_ldif(&GenOptions {
        n: 60,
        seed: 9,
        with_memberof: true,
    });
    let mut slapd = Slapd::builder().ldif(ldif).start().expect("start slapd");
    let ws = Workspace::new(&serve_config(&slapd.url(), ""));
    let server = Server::start(&ws);
    let status_url = format!("{}/api/v1/status", server.http_url());
    eventually(Duration::from_secs(30), "the first scheduled sync", || {
        curl_json(&[&status_url]).1["connectors"][0]["last_run"]["outcome"] == "applied"
    });
    assert_eq!(
        ldap_count(&server, "(objectClass=inetOrgPerson)"),
        stats.people
    );

    slapd.stop().expect("stop slapd");
    let (code, body) = curl_json(&[
        "-X",
        "POST",
        &format!("{}/api/v1/connectors/corp/sync", server.http_url()),
    ]);
    assert_eq!(code, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot reach"),
        "{body}"
    );

    let (_, status) = curl_json(&[&status_url]);
    let last = &status["connectors"][0]["last_run"];
    assert_eq!(last["outcome"], "failed", "{status}");
    assert!(
        last["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot reach"),
        "{status}"
    );
    assert_eq!(
        status["connectors"][0]["entries"], stats.people as u64,
        "nothing removed"
    );
    assert_eq!(
        ldap_count(&server, "(objectClass=inetOrgPerson)"),
        stats.people,
        "phones still get the book"
    );
    server.stop();
}

#[test]
fn a_hanging_upstream_times_out_without_blocking_other_connectors_or_searches() {
    let (ldif, _) = gen::people_ldif(&GenOptions {
        n: 30,
        seed: 3,
        with_memberof: true,
    });
    let mut hung = Slapd::builder()
        .ldif(ldif.clone())
        .start()
        .expect("start slapd");
    let healthy = Slapd::builder().ldif(ldif).start().expect("start slapd");
    let config = format!(
        "[ldap]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n{}\n{}",
        ldap_config("hung", &hung.url(), "timeout = \"3s\""),
        ldap_config("healthy", &healthy.url(), "")
            .replace("[store]\npath = \"data/phonebook.db\"\n", "")
    );
    let ws = Workspace::new(&config);
    ws.run(&["sync", "--connector", "hung"]);
    let server = Server::start(&ws);
    let base = server.http_url();
    hung.pause().expect("SIGSTOP slapd");
    let hung_url = format!("{base}/api/v1/connectors/hung/sync");
    let hanging = std::thread::spawn(move || curl_json(&["-X", "POST", &hung_url]));
    eventually(Duration::from_secs(10), "the hung sync to start", || {
        curl_json(&[&format!("{base}/api/v1/status")]).1["connectors"][0]["running"] == true
    });
    // While it hangs: another connector syncs, and phones get answers.
    let started = Instant::now();
    let (code, report) = curl_json(&[
        "-X",
        "POST",
        &format!("{base}/api/v1/connectors/healthy/sync"),
    ]);
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["created"], 30);
    assert!(ldap_count(&server, "(objectClass=inetOrgPerson)") >= 30);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "nothing waited for the hung upstream"
    );
    let (code, body) = hanging.join().expect("hung trigger");
    assert_eq!(code, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("did not answer within 3s"),
        "{body}"
    );
    hung.resume().expect("SIGCONT slapd");
    let log = server.stop();
    assert!(!log.contains("proxy-secret"), "no password in the log");
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one_and_a_good_one_takes_effect() {
    let (ldif, stats) = gen::people_ldif(&GenOptions {
        n: 40,
        seed: 4,
        with_memberof: true,
    });
    let slapd = Slapd::builder().ldif(ldif).start().expect("start slapd");
    let good = serve_config(&slapd.url(), "");
    let ws = Workspace::new(&good);
    let server = Server::start(&ws);
    let status_url = format!("{}/api/v1/status", server.http_url());
    eventually(Duration::from_secs(30), "the first sync", || {
        curl_json(&[&status_url]).1["entries"] == stats.people as u64
    });

    // A broken file: rejected with a clear line; the old configuration keeps running.
    ws.write_config(&format!(
        "{good}\n[[connector.prefilter]]\nattribute = \"memberOf\"\nmatches = \"(unclosed\"\n"
    ));
    signal(server.pid(), SIGHUP).expect("SIGHUP");
    eventually(Duration::from_secs(10), "the rejection in the log", || {
        server.log().contains("config reload rejected")
    });
    assert!(
        server.log().contains("prefilter[0].matches: invalid regex"),
        "{}",
        server.log()
    );
    assert_eq!(
        curl_json(&[&status_url]).1["connectors"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        ldap_count(&server, "(objectClass=inetOrgPerson)"),
        stats.people
    );

    // A good new file: a second connector appears and syncs.
    let second = ldap_config("second", &slapd.url(), "schedule = \"1h\"")
        .replace("[store]\npath = \"data/phonebook.db\"\n", "");
    ws.write_config(&format!("{good}\n{second}"));
    signal(server.pid(), SIGHUP).expect("SIGHUP");
    eventually(
        Duration::from_secs(30),
        "the second connector to sync",
        || {
            let (_, status) = curl_json(&[&status_url]);
            status["connectors"].as_array().map(Vec::len) == Some(2)
                && status["entries"] == 2 * stats.people as u64
        },
    );
    assert_eq!(
        ldap_count(&server, "(objectClass=inetOrgPerson)"),
        2 * stats.people
    );
    server.stop();
}

#[test]
fn one_client_cannot_hold_more_than_its_share_of_connections() {
    use std::io::Read as _;
    let (ldif, _) = gen::people_ldif(&GenOptions {
        n: 5,
        seed: 2,
        with_memberof: true,
    });
    let slapd = Slapd::builder().ldif(ldif).start().expect("start slapd");
    let ws = Workspace::new(
        &serve_config(&slapd.url(), "")
            .replace("[ldap]\n", "[ldap]\nmax_connections_per_client = 2\n"),
    );
    let server = Server::start(&ws);
    let addr = server.addr();
    let held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    // The server counts a connection once it has accepted it; the third is closed at once,
    // which the client sees as end-of-stream (or a reset) instead of a hang.
    eventually(
        Duration::from_secs(10),
        "the third connection to be refused",
        || {
            let mut third = std::net::TcpStream::connect(addr).expect("connect");
            third
                .set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            match third.read(&mut [0u8; 1]) {
                Ok(0) => true,
                Ok(_) => false,
                // A timeout means the server kept the connection open: not refused (yet).
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            }
        },
    );
    // A flood of refused connections is counted, not logged line by line.
    for _ in 0..200 {
        let mut extra = std::net::TcpStream::connect(addr).expect("connect");
        let _ = extra.read(&mut [0u8; 1]);
    }
    let refusals = server
        .log()
        .lines()
        .filter(|l| l.contains("too many connections"))
        .count();
    assert!(
        (1..=2).contains(&refusals),
        "{refusals} log lines for 200 refused connections"
    );
    drop(held);
    // Once they close, the same client is served again.
    eventually(
        Duration::from_secs(10),
        "a search after the others closed",
        || ldap_count(&server, "(objectClass=inetOrgPerson)") == 5,
    );
    assert!(
        server.log().contains("too many connections"),
        "{}",
        server.log()
    );
    server.stop();
}

#[test]
fn the_access_log_records_operations_without_passwords() {
    let (ldif, _) = gen::people_ldif(&GenOptions {
        n: 5,
        seed: 2,
        with_memberof: true,
    });
    let slapd = Slapd::builder().ldif(ldif).start().expect("start slapd");
    let config = serve_config(&slapd.url(), "")
        .replace("[ldap]\n", "[log]\naccess = true\n[ldap]\n[[ldap.users]]\ndn = \"cn=phones,dc=example,dc=com\"\npassword = \"ph0ne-Secret\"\n");
    // [[ldap.users]] must follow the [ldap] keys: move the table after them.
    let config = config.replacen(
        "[[ldap.users]]\ndn = \"cn=phones,dc=example,dc=com\"\npassword = \"ph0ne-Secret\"\nlisten = \"127.0.0.1:0\"\n",
        "listen = \"127.0.0.1:0\"\n[[ldap.users]]\ndn = \"cn=phones,dc=example,dc=com\"\npassword = \"ph0ne-Secret\"\n",
        1,
    );
    let ws = Workspace::new(&config);
    let server = Server::start(&ws);
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &server.url(),
            "-D",
            "cn=phones,dc=example,dc=com",
            "-w",
            "ph0ne-Secret",
        ])
        .args([
            "-b",
            "ou=phonebook,dc=example,dc=com",
            "(|(cn=a*)(sn=b*))",
            "cn",
        ])
        .output()
        .expect("ldapsearch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = curl_json(&[&format!(
        "{}/api/v1/lookup?number=%2B49891234567",
        server.http_url()
    )]);
    let log = server.stop();
    let ldap: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("access") && l.contains("op=\"search\""))
        .collect();
    assert!(
        ldap.iter().any(|l| l.contains("filter=(|(cn=a*)(sn=b*))")
            && l.contains("bind_dn=\"cn=phones,dc=example,dc=com\"")
            && l.contains("result=\"success\"")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("access")
            && l.contains("GET /api/v1/lookup")
            && l.contains("status=404")),
        "{log}"
    );
    assert!(
        !log.contains("ph0ne-Secret") && !log.contains("proxy-secret"),
        "no password in the log"
    );
}

/// A tmpfs of `size_mb` mounted on `dir` for as long as it lives: a disk that can be filled.
/// Mounting needs root (CAP_SYS_ADMIN); without it the test fails — loudly, not skipped.
struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(dir: &std::path::Path, size_mb: u32) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mkdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs (run it as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    /// Writes a filler file until the disk is full; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).expect("create filler");
        let block = vec![0xa5u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = file.flush();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process that still has files open there does not keep the mount.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Every served entry, through a paged search (more than the size limit).
fn ldap_count_all(server: &Server) -> usize {
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &server.url(),
            "-b",
            "ou=phonebook,dc=example,dc=com",
        ])
        .args([
            "-E",
            "pr=1000/noprompt",
            "(objectClass=inetOrgPerson)",
            "1.1",
        ])
        .output()
        .expect("ldapsearch");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("dn:"))
        .count()
}

fn file_config(write_timeout: &str) -> String {
    format!(
        r#"[store]
path = "data/phonebook.db"
write_timeout = "{write_timeout}"

[ldap]
listen = "127.0.0.1:0"

[http]
listen = "127.0.0.1:0"

[[connector]]
name = "corp"
uri = "file:people.ldif"
base_dn = "ou=people,dc=example,dc=com"
filter = "(objectClass=inetOrgPerson)"
max_removals = "100%"
"#
    )
}

/// `n` generated people (from `seed`) as the `file:` connector's LDIF in `ws`.
fn write_people(ws: &Workspace, n: usize, seed: u64) {
    let (ldif, _) = gen::people_ldif(&GenOptions {
        n,
        seed,
        with_memberof: true,
    });
    std::fs::write(ws.path().join("people.ldif"), ldif).expect("write LDIF");
}

#[test]
fn a_full_disk_fails_only_that_sync_and_the_next_sync_after_space_returns_succeeds() {
    let ws = Workspace::new(&file_config("10s"));
    let disk = Tmpfs::mount(&ws.path().join("data"), 48);
    let write_people = |seed: u64| write_people(&ws, 20_000, seed);
    write_people(1);
    let server = Server::start(&ws);
    let base = server.http_url();
    let sync_url = format!("{base}/api/v1/connectors/corp/sync");
    let status = || curl_json(&[&format!("{base}/api/v1/status")]).1;
    let (code, first) = curl_json(&["-X", "POST", &sync_url]);
    assert_eq!(code, 200, "{first}");
    let old_count = status()["entries"].as_u64().expect("entries") as usize;
    assert!(old_count > 10_000, "{old_count}");
    assert_eq!(ldap_count_all(&server), old_count);

    // The upstream changes while the disk is full: the sync fails, and says why.
    write_people(2);
    let filler = disk.fill();
    for attempt in 0..2 {
        let (code, body) = curl_json(&["-X", "POST", &sync_url]);
        assert_eq!(code, 502, "attempt {attempt}: {body}");
        // sled reports the full disk itself, or (now and then) the page it could not write
        // as unreadable; either way the sync fails and says what to do.
        let disk_full =
            |e: &str| e.contains("no space left") || e.contains("typically a full disk");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(disk_full(error), "attempt {attempt}: {body}");
        // Everything else keeps answering, from the old book.
        assert_eq!(curl_json(&[&format!("{base}/healthz")]).0, 200);
        assert_eq!(ldap_count_all(&server), old_count);
        let now = status();
        let corp = &now["connectors"][0];
        assert_eq!(corp["running"], false, "the sync lock is released: {now}");
        assert_eq!(corp["last_run"]["outcome"], "failed", "{now}");
        assert!(
            disk_full(corp["last_run"]["error"].as_str().unwrap_or_default()),
            "{now}"
        );
        assert_eq!(now["entries"], old_count as u64, "{now}");
    }

    // Space comes back: the next sync succeeds without a restart, and the new book is served.
    // One exception, documented in the README: when the disk filled up while sled itself was
    // writing in the background, sled's handle can stay wedged (every later call waits); the
    // sync then fails within store.write_timeout, and a restart of the service recovers.
    std::fs::remove_file(filler).expect("remove filler");
    let (code, report) = curl_json(&["-X", "POST", &sync_url]);
    let mut server = server;
    let (mut base, mut sync_url) = (base, sync_url);
    let (code, report) = if code == 200 {
        (code, report)
    } else {
        let error = report["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            error.contains("did not answer") || error.contains("has not finished"),
            "only a wedged sled handle may fail this sync: {report}"
        );
        assert_eq!(curl_json(&[&format!("{base}/healthz")]).0, 200);
        assert_eq!(ldap_count_all(&server), old_count, "still the old book");
        signal(server.pid(), SIGKILL).expect("SIGKILL");
        drop(server);
        server = Server::start(&ws);
        base = server.http_url();
        sync_url = format!("{base}/api/v1/connectors/corp/sync");
        curl_json(&["-X", "POST", &sync_url])
    };
    let status = || curl_json(&[&format!("{base}/api/v1/status")]).1;
    assert_eq!(code, 200, "{report}");
    let now = status();
    assert_eq!(
        now["connectors"][0]["last_run"]["outcome"], "applied",
        "{now}"
    );
    let new_count = now["entries"].as_u64().expect("entries") as usize;
    assert_eq!(ldap_count_all(&server), new_count);
    let renamed = report["updated"].as_u64().unwrap_or(0) + report["created"].as_u64().unwrap_or(0);
    assert!(renamed > 1000, "the new book was written: {report}");

    // SIGTERM with the disk full again, just after a sync on it, still exits promptly. (That
    // sync may fit into log space sled freed after the last one, or fail: either way it answers.)
    let _filler = disk.fill();
    write_people(3);
    let (code, body) = curl_json(&["-X", "POST", &sync_url]);
    assert!(code == 200 || code == 502, "{code}: {body}");
    let asked = Instant::now();
    let log = server.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "serve took {:?} to stop",
        asked.elapsed()
    );
    assert!(
        log.contains("no space left") || log.contains("typically a full disk"),
        "{log}"
    );
    drop(disk);
}

#[test]
fn export_lists_exactly_what_the_feed_serves_once_a_connector_is_removed() {
    let (ldif, _) = gen::people_ldif(&GenOptions {
        n: 30,
        seed: 6,
        with_memberof: true,
    });
    let ws = Workspace::new("");
    std::fs::write(ws.path().join("people.ldif"), ldif).expect("write LDIF");
    let second = file_config("30s")
        .split("[[connector]]")
        .nth(1)
        .expect("a connector table")
        .replace("name = \"corp\"", "name = \"gone\"");
    let both = format!("{}[[connector]]{second}", file_config("30s"));
    ws.write_config(&both);
    ws.run(&["sync"]);
    let connectors = |export: &Value| {
        let mut names: Vec<String> = export["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["connector"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.dedup();
        names.sort();
        names.dedup();
        names
    };
    assert_eq!(connectors(&ws.export()), ["corp", "gone"]);

    // "gone" leaves the file: its data stays in the store, but no output lists it.
    ws.write_config(&file_config("30s"));
    let export = ws.export();
    assert_eq!(connectors(&export), ["corp"]);
    let server = Server::start(&ws);
    let (code, feed) = curl_json(&[&format!("{}/api/v1/entries", server.http_url())]);
    assert_eq!(code, 200, "{feed}");
    assert_eq!(feed["entries"], export["entries"], "export = feed");
    server.stop();
    let csv = ws.run(&["export", "--format", "csv"]);
    assert!(!csv.stdout.contains(",gone,"), "{}", csv.stdout);
    let ldif = ws.run(&["export", "--format", "ldif"]);
    assert!(!ldif.stdout.contains("uid=gone."), "{}", ldif.stdout);
}

/// An ext4 image on a loop device mounted on `dir`, which `freeze` can stop like a disk that
/// no longer answers (writes block in the kernel until `thaw`). Needs root; fails loudly.
struct FreezableDisk {
    dir: std::path::PathBuf,
}

impl FreezableDisk {
    fn mount(dir: &std::path::Path, image: &std::path::Path) -> FreezableDisk {
        let run = |cmd: &mut Command| {
            let out = cmd.output().expect("run a disk command");
            assert!(
                out.status.success(),
                "this test needs a loop-mounted ext4 (run it as root): {cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::create_dir_all(dir).expect("mkdir");
        run(Command::new("truncate").args(["-s", "64m"]).arg(image));
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image));
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(image)
            .arg(dir));
        FreezableDisk {
            dir: dir.to_owned(),
        }
    }

    /// Freezes the file system; the returned guard thaws it when dropped.
    fn freeze(&self) -> Thaw {
        let status = Command::new("fsfreeze")
            .arg("-f")
            .arg(&self.dir)
            .status()
            .expect("fsfreeze");
        assert!(status.success(), "fsfreeze -f failed");
        Thaw {
            dir: Some(self.dir.clone()),
        }
    }
}

impl Drop for FreezableDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Thaws a frozen disk when dropped (also when a test fails while it is frozen).
struct Thaw {
    dir: Option<std::path::PathBuf>,
}

impl Thaw {
    fn now(mut self) {
        self.thaw();
    }

    fn thaw(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = Command::new("fsfreeze").arg("-u").arg(dir).status();
        }
    }
}

impl Drop for Thaw {
    fn drop(&mut self) {
        self.thaw();
    }
}

#[test]
fn a_disk_that_stops_answering_fails_the_sync_in_time_and_sigterm_still_stops_the_server() {
    let ws = Workspace::new(&file_config("2s"));
    let disk = FreezableDisk::mount(&ws.path().join("data"), &ws.path().join("disk.img"));
    let write_people = |seed: u64| write_people(&ws, 200, seed);
    write_people(1);
    let mut server = Server::start(&ws);
    let base = server.http_url();
    let sync_url = format!("{base}/api/v1/connectors/corp/sync");
    let status = || curl_json(&[&format!("{base}/api/v1/status")]).1;
    let (code, first) = curl_json(&["-X", "POST", &sync_url]);
    assert_eq!(code, 200, "{first}");
    let old_count = status()["entries"].as_u64().expect("entries") as usize;

    write_people(2);
    // Declared after the server: on any failure the disk thaws before the server is reaped.
    let frozen = disk.freeze();
    let (code, body) = curl_json(&["-X", "POST", &sync_url]);
    assert_eq!(code, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("did not answer within 2s"),
        "{body}"
    );
    // The next one does not queue behind the stuck write: it fails at once, and says so.
    let (code, body) = curl_json(&["-X", "POST", &sync_url]);
    assert_eq!(code, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("has not finished"),
        "{body}"
    );
    assert_eq!(curl_json(&[&format!("{base}/healthz")]).0, 200);
    assert_eq!(
        ldap_count(&server, "(objectClass=inetOrgPerson)"),
        old_count
    );
    let now = status();
    assert_eq!(
        now["connectors"][0]["last_run"]["outcome"], "failed",
        "{now}"
    );
    assert_eq!(now["connectors"][0]["running"], false, "{now}");

    // The disk answers again: the next sync succeeds, without a restart.
    frozen.now();
    write_people(3);
    eventually(Duration::from_secs(30), "a sync to succeed again", || {
        curl_json(&["-X", "POST", &sync_url]).0 == 200
    });
    let now = status();
    assert_eq!(
        now["connectors"][0]["last_run"]["outcome"], "applied",
        "{now}"
    );
    let served = now["entries"].as_u64().expect("entries") as usize;
    assert_eq!(ldap_count_all(&server), served);
    let (_, feed) = curl_json(&[&format!("{base}/api/v1/entries")]);
    let names: Vec<&str> = feed["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["display_name"].as_str())
        .collect();
    let (third, _) = gen::people_ldif(&GenOptions {
        n: 200,
        seed: 3,
        with_memberof: true,
    });
    assert!(
        names.iter().all(|n| third.contains(n) || !n.is_ascii()),
        "the newest book is served"
    );

    let frozen = disk.freeze();
    write_people(4);
    let (code, body) = curl_json(&["-X", "POST", &sync_url]);
    assert_eq!(code, 502, "{body}");

    // SIGTERM while the disk is frozen: the server gives up on the store within the bound
    // and exits non-zero. (A thread blocked in the kernel on a frozen file system keeps any
    // process from being reaped until the disk thaws; all the server can do is not wait.)
    signal(server.pid(), support::slapd::SIGTERM).expect("SIGTERM");
    eventually(
        Duration::from_secs(10),
        "serve to give up on the store",
        || {
            server.log().contains("did not close in time")
                || server.log().contains("shutdown did not finish in time")
        },
    );
    frozen.now();
    eventually(Duration::from_secs(10), "serve to exit", || {
        !server.is_running()
    });
    let log = server.log();
    assert!(!log.contains("proxy-secret"), "{log}");
}
