//! Load over loopback: our LDAP endpoint and OpenLDAP slapd, holding the same 100k people,
//! under the same phone query mix, side by side in one run.
//!
//! 1. Generates 100k people (`tests/support/gen.rs`, seed 11) and loads them into a slapd
//!    tuned for this mix (`SlapdBuilder::tuned_for_search`: mdb, eq,sub indexes on every
//!    searched attribute, 1-character substring keys, `threads 2`, `loglevel 0`).
//! 2. Syncs them with the release binary (`phonebook-proxy sync`) into a fresh store — every
//!    person, no pre-filter — and starts `phonebook-proxy serve` three times, timing spawn →
//!    "serving on" (the store → snapshot start-up path) and reading VmRSS / VmHWM.
//! 3. Checks the answers: 200 searches of each kind on both servers with the `ldap3` crate,
//!    an independent decoder (the answers table: mean entries per search on each server),
//!    and the first 48 of them again with the load client, whose entry counts and size-limit
//!    flags must equal `ldap3`'s — so every run proves the load client reads right.
//! 4. For 8 and 32 concurrent connections (each one persistent TCP connection, anonymous,
//!    on both servers), runs the mix against slapd, then against ours: a 2 s warm-up, then a
//!    measured phase (15 s by default). Reported per server: searches/s, p50 / p99 latency
//!    (client side, request sent → result done), and the server's CPU time per search from
//!    /proc/PID/stat (utime + stime delta / searches) — the figure that counts, because on a
//!    2-core machine the load client itself competes for the CPU.
//!
//! The load client is our own raw-wire one (`common::raw`), not `ldap3`: the requests are
//! BER-encoded once before the load, and of the responses only the LDAPMessage framing is
//! read (length, messageID, protocolOp tag, the resultCode of SearchResultDone) — entries
//! are counted, not decoded. `ldap3` decodes every entry into maps of `String`s; as the load
//! client it used ~1.4 of the 2 cores, so at 32 connections the p99 measured the client, not
//! the servers. The framing parser checks itself when the bench starts
//! (`common::raw::self_check`).
//!
//! The mix (equal shares, filters drawn from the data with a fixed seed, sizeLimit 50 as a
//! phone sends it, the phone attribute list): name contains (3 letters), name prefix (2–4
//! letters), caller lookup by the exact number, number contains (5 digits), Poly range. See
//! `benches/common/mod.rs` for the filter shapes.
//!
//! Run: `cargo bench --bench load` (builds the release binary first). Knobs:
//! `PHONEBOOK_LOAD_N` (people, default 100000), `PHONEBOOK_LOAD_SECS` (measured seconds per
//! phase, default 15), `PHONEBOOK_LOAD_CONNECTIONS` (default "8,32"), `PHONEBOOK_LOAD_BINARY`
//! (another `phonebook-proxy` to measure instead of this build), `PHONEBOOK_LOAD_BASELINE` (a
//! second `phonebook-proxy`, e.g. a build from before a change, measured in the same run
//! beside it — A/B on the same slapd, the same data and the same requests, on a copy of the
//! same store), `PHONEBOOK_LOAD_ROUNDS` (default 1: how often every phase is repeated; the
//! baseline and ours swap order every other round).

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};

use common::{connect, raw, search, Kind, Rng, BASE_DN, PHONE_SIZE_LIMIT, SEED};
use support::gen::{self, GenOptions};
use support::slapd::{Slapd, PEOPLE_DN, PROXY_DN, PROXY_PW};

/// The phone query mix, in equal shares.
const MIX: [Kind; 5] = [
    Kind::NameContains,
    Kind::NamePrefix,
    Kind::CallerExact,
    Kind::NumberContains,
    Kind::PolyRange,
];
/// Different filters per kind.
const POOL: usize = 2000;
const WARM_UP: Duration = Duration::from_secs(2);
const SERVE_START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Start-ups timed (the last one stays up for the load).
const STARTS: usize = 3;
/// Searches per kind in the answer check before the load.
const CHECKS: usize = 200;
/// Of those, the first searches per kind the load client repeats: its entry counts must equal
/// `ldap3`'s.
const RAW_CHECKS: usize = 48;

fn main() {
    // `cargo test --benches` runs this target without `--bench`: nothing to test here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: skipped (run it with `cargo bench --bench load`)");
        return;
    }
    if let Err(e) = run() {
        eprintln!("load bench failed: {e:#}");
        std::process::exit(1);
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v.parse().map_err(|_| anyhow!("{name}={v:?} is not valid")),
        Err(_) => Ok(default),
    }
}

/// A server under test.
struct Target {
    name: String,
    url: String,
    base: String,
    pid: u32,
}

/// The mix as the load client sends it to one server: per kind, the pool's filters encoded.
type Requests = Arc<Vec<Vec<raw::Request>>>;

/// The pools encoded for `base`, each request with a messageID of its own.
fn encode_pools(pools: &[Vec<String>], base: &str) -> Result<Requests> {
    let mut msgid = 0i32;
    let encoded = pools
        .iter()
        .map(|pool| {
            pool.iter()
                .map(|filter| {
                    msgid = msgid.checked_add(1).context("too many requests")?;
                    raw::search_request(msgid, base, filter)
                        .with_context(|| format!("encoding the search {filter}"))
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(encoded))
}

fn run() -> Result<()> {
    raw::self_check().context("self check of the load client")?;
    let n: usize = env_or("PHONEBOOK_LOAD_N", 100_000)?;
    let secs: u64 = env_or("PHONEBOOK_LOAD_SECS", 15)?;
    let rounds: usize = env_or("PHONEBOOK_LOAD_ROUNDS", 1)?;
    let connections: Vec<usize> = env_or("PHONEBOOK_LOAD_CONNECTIONS", "8,32".to_owned())?
        .split(',')
        .map(|c| c.trim().parse().context("PHONEBOOK_LOAD_CONNECTIONS"))
        .collect::<Result<_>>()?;
    // Another build of the server (say, before a change) can be measured the same way.
    let binary = std::env::var_os("PHONEBOOK_LOAD_BINARY")
        .map_or_else(|| PathBuf::from(support::cli::binary()), PathBuf::from);
    let baseline = std::env::var_os("PHONEBOOK_LOAD_BASELINE").map(PathBuf::from);
    for b in std::iter::once(&binary).chain(&baseline) {
        if !b.components().any(|c| c.as_os_str() == "release") {
            eprintln!("load: warning: {} is not a release build", b.display());
        }
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "load: {n} people, {secs} s per phase, connections {connections:?}, binary {}{}",
        binary.display(),
        baseline
            .as_ref()
            .map(|b| format!(", baseline {}", b.display()))
            .unwrap_or_default()
    );

    // 1. slapd with the people.
    let t = Instant::now();
    let (ldif, _) = gen::people_ldif(&GenOptions {
        n,
        seed: SEED,
        with_memberof: false,
    });
    let slapd = Slapd::builder()
        .memberof(false)
        .tuned_for_search()
        .ldif(ldif)
        .start_timeout(Duration::from_secs(120))
        .start()
        .context("starting the tuned slapd")?;
    let slapd_pid = slapd.pid().context("slapd has no pid")?;
    eprintln!("load: slapd ready with {n} people in {:.1?}", t.elapsed());

    // 2. Our store, filled by the release binary, and our server.
    let work = tempfile::Builder::new()
        .prefix("phonebook-load-")
        .tempdir()
        .context("temp dir")?;
    let config_path = work.path().join("phonebook.toml");
    std::fs::write(&config_path, config_toml(&slapd.url())).context("writing the config")?;
    let t = Instant::now();
    let sync = Command::new(&binary)
        .current_dir(work.path())
        .arg("--config")
        .arg(&config_path)
        .args(["sync", "--json"])
        .env_remove("RUST_LOG")
        .output()
        .context("running phonebook-proxy sync")?;
    let sync_time = t.elapsed();
    let sync_out = String::from_utf8_lossy(&sync.stdout);
    ensure!(
        sync.status.success(),
        "sync failed ({}): {sync_out}{}",
        sync.status,
        String::from_utf8_lossy(&sync.stderr)
    );
    let sync_report: serde_json::Value =
        serde_json::from_str(sync_out.trim()).context("sync --json output")?;
    ensure!(
        sync_report["created"] == n,
        "sync created {} entries, expected {n}: {sync_out}",
        sync_report["created"]
    );
    let _ = writeln!(
        report,
        "sync of {n} people into an empty store (release binary, wall clock): {:.2} s",
        sync_time.as_secs_f64()
    );

    let mut starts = Vec::new();
    let mut server = None;
    for i in 0..STARTS {
        let (s, took) = Serve::start(&binary, work.path(), &config_path)?;
        starts.push(took);
        if i + 1 < STARTS {
            s.stop()?;
        } else {
            server = Some(s);
        }
    }
    let ours = server.context("no server left running")?;
    eprintln!("load: pids: ours {} slapd {slapd_pid}", ours.pid);
    let idle_rss = memory(ours.pid)?;
    let _ = writeln!(
        report,
        "start-up with {n} entries in the store (spawn → \"serving on\"): {}",
        starts
            .iter()
            .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        report,
        "our server after start-up: VmRSS {:.1} MB, VmHWM {:.1} MB; slapd: VmRSS {:.1} MB",
        mb(idle_rss.0),
        mb(idle_rss.1),
        mb(memory(slapd_pid)?.0)
    );

    // The baseline serves a copy of the same store (sled allows one process per store).
    let base_server = match &baseline {
        Some(b) => {
            let dir = work.path().join("baseline");
            std::fs::create_dir_all(&dir).context("baseline dir")?;
            let copy = Command::new("cp")
                .arg("-a")
                .arg(work.path().join("data"))
                .arg(&dir)
                .status()
                .context("copying the store for the baseline")?;
            ensure!(copy.success(), "cp -a of the store failed");
            let config = dir.join("phonebook.toml");
            std::fs::write(&config, config_toml(&slapd.url())).context("baseline config")?;
            Some(Serve::start(b, &dir, &config)?.0)
        }
        None => None,
    };
    let mut targets = vec![Target {
        name: "slapd".to_owned(),
        url: slapd.url(),
        base: PEOPLE_DN.to_owned(),
        pid: slapd_pid,
    }];
    if let Some(b) = &base_server {
        targets.push(Target {
            name: "baseline".to_owned(),
            url: format!("ldap://{}", b.addr),
            base: BASE_DN.to_owned(),
            pid: b.pid,
        });
    }
    targets.push(Target {
        name: "phonebook-proxy".to_owned(),
        url: format!("ldap://{}", ours.addr),
        base: BASE_DN.to_owned(),
        pid: ours.pid,
    });

    // 3. The query mix, the same for both servers.
    let people = gen::people(SEED, n);
    let pools: Arc<Vec<Vec<String>>> = Arc::new(
        MIX.iter()
            .map(|kind| common::filters(&people, *kind, POOL, SEED))
            .collect(),
    );
    drop(people);
    let requests = targets
        .iter()
        .map(|target| encode_pools(&pools, &target.base))
        .collect::<Result<Vec<_>>>()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;

    // What each server answers to the mix (both must answer every search).
    let _ = writeln!(report, "\nanswers (mean entries per search over {CHECKS} searches of each kind, sizeLimit {PHONE_SIZE_LIMIT}; in brackets: share stopped by the size limit)\n");
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let _ = writeln!(
        report,
        "| kind | {} |\n|---|{}",
        names.join(" | "),
        "---|".repeat(targets.len())
    );
    let mut answers = Vec::new();
    for (target, requests) in targets.iter().zip(&requests) {
        answers.push(runtime.block_on(check_answers(target, &pools, requests))?);
    }
    for (k, kind) in MIX.iter().enumerate() {
        let cells: Vec<String> = answers
            .iter()
            .map(|a| format!("{:.1} ({:.0}%)", a[k].0, a[k].1 * 100.0))
            .collect();
        let _ = writeln!(report, "| {} | {} |", kind.name(), cells.join(" | "));
    }
    let _ = writeln!(
        report,
        "\nload client: raw wire (BER framing only); its entry counts and size-limit flags equal ldap3's for the first {RAW_CHECKS} searches of each kind on both servers"
    );

    let _ = writeln!(report, "\nload ({secs} s measured per phase after {WARM_UP:?} warm-up; server CPU from /proc/PID/stat)\n");
    let _ = writeln!(
        report,
        "| round | connections | server | searches/s | p50 | p99 | server CPU / search (user + system) | server CPU use | client CPU use |\n|---|---|---|---|---|---|---|---|---|"
    );
    for round in 1..=rounds {
        for &conns in &connections {
            // slapd first; the two builds of ours swap places every other round, so neither
            // always runs on a machine the other has just warmed or heated.
            let mut order: Vec<usize> = (0..targets.len()).collect();
            if round % 2 == 0 {
                order[1..].reverse();
            }
            for i in order {
                let (target, requests) = (&targets[i], &requests[i]);
                eprintln!(
                    "load: round {round}: {} with {conns} connections …",
                    target.name
                );
                let r =
                    runtime.block_on(phase(target, conns, requests, Duration::from_secs(secs)))?;
                let _ = writeln!(
                    report,
                    "| {round} | {conns} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.1} µs ({:.1} + {:.1}) | {:.0}% | {:.0}% |",
                    target.name,
                    r.searches as f64 / r.seconds,
                    r.p50_us / 1e3,
                    r.p99_us / 1e3,
                    r.server.total() * 1e6 / r.searches as f64,
                    r.server.user * 1e6 / r.searches as f64,
                    r.server.system * 1e6 / r.searches as f64,
                    r.server.total() / r.seconds * 100.0,
                    r.client.total() / r.seconds * 100.0
                );
            }
        }
    }
    let after = memory(ours.pid)?;
    let _ = writeln!(
        report,
        "\nour server after the load: VmRSS {:.1} MB, VmHWM {:.1} MB",
        mb(after.0),
        mb(after.1)
    );
    // A scheduled sync runs inside the server: what does one cost in memory? The upstream is
    // unchanged (the usual case), so the served snapshot stays; the sync still pulls, maps
    // and compares all 100k people.
    let t = Instant::now();
    let url = format!("http://{}/api/v1/connectors/corp/sync", ours.http);
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-X",
            "POST",
            "-H",
            "X-Requested-With: bench",
            &url,
        ])
        .output()
        .context("running curl")?;
    ensure!(
        out.status.success(),
        "POST {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let synced = memory(ours.pid)?;
    let _ = writeln!(
        report,
        "our server after a sync inside it (POST …/sync, upstream unchanged, {:.2} s): VmRSS {:.1} MB, VmHWM {:.1} MB",
        t.elapsed().as_secs_f64(),
        mb(synced.0),
        mb(synced.1)
    );
    drop(runtime);
    ours.stop()?;
    if let Some(b) = base_server {
        b.stop()?;
    }
    drop(slapd);
    println!("{report}");
    Ok(())
}

fn config_toml(slapd_url: &str) -> String {
    format!(
        r#"[store]
path = "data/phonebook.db"

[ldap]
listen = "127.0.0.1:0"
base_dn = "{BASE_DN}"
anonymous = true
size_limit = 500

[http]
listen = "127.0.0.1:0"

{}"#,
        common::connector_toml(
            slapd_url,
            &format!("bind_dn = \"{PROXY_DN}\"\npassword = \"{PROXY_PW}\"")
        )
    )
}

// ---------------------------------------------------------------------------------------------
// our server as a child process

struct Serve {
    child: Child,
    pid: u32,
    addr: String,
    /// The HTTP API's `host:port`.
    http: String,
}

impl Serve {
    /// Spawns `serve` and waits for its "serving on" line; returns how long that took.
    fn start(binary: &Path, dir: &Path, config: &Path) -> Result<(Serve, Duration)> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .context("serve.log")?;
        let start = Instant::now();
        let mut child = Command::new(binary)
            .current_dir(dir)
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawning phonebook-proxy serve")?;
        let pid = child.id();
        let stdout = child.stdout.take().context("stdout is piped")?;
        let (tx, rx) = mpsc::channel();
        // Reads stdout for as long as the server runs, so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("phonebook-proxy: serving on ldap://") {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let http = rest
                        .split("http://")
                        .nth(1)
                        .and_then(|h| h.split_whitespace().next())
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send((Instant::now(), addr, http));
                }
            }
        });
        let mut serve = Serve {
            child,
            pid,
            addr: String::new(),
            http: String::new(),
        };
        match rx.recv_timeout(SERVE_START_TIMEOUT) {
            Ok((at, addr, http)) => {
                serve.addr = addr;
                serve.http = http;
                Ok((serve, at - start))
            }
            Err(_) => {
                let _ = serve.child.kill();
                let _ = serve.child.wait();
                bail!(
                    "serve did not print \"serving on\" within {SERVE_START_TIMEOUT:?}; log: {}",
                    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
                )
            }
        }
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) -> Result<()> {
        terminate(self.pid)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(status.success(), "serve exited with {status} on SIGTERM");
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("serve did not exit within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

/// (VmRSS, VmHWM) in kB.
fn memory(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

unsafe extern "C" {
    fn sysconf(name: i32) -> i64;
    fn kill(pid: i32, sig: i32) -> i32;
}

/// SIGTERM to one of our children.
fn terminate(pid: u32) -> Result<()> {
    const SIGTERM: i32 = 15;
    let pid = i32::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) has no memory-safety preconditions; pid is our own child's.
    let rc = unsafe { kill(pid, SIGTERM) };
    ensure!(
        rc == 0,
        "kill({pid}, SIGTERM): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Clock ticks per second of /proc/PID/stat times.
fn clock_ticks() -> Result<f64> {
    const SC_CLK_TCK: i32 = 2;
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { sysconf(SC_CLK_TCK) };
    ensure!(ticks > 0, "sysconf(_SC_CLK_TCK) failed");
    Ok(ticks as f64)
}

/// CPU time of a process (all its threads, finished ones included), in seconds.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    user: f64,
    system: f64,
}

impl Cpu {
    fn total(self) -> f64 {
        self.user + self.system
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;

    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

/// utime and stime of a process from /proc/PID/stat.
fn cpu_seconds(pid: &str) -> Result<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from the state (field 3).
    let tick = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64)
            .context("malformed /proc/PID/stat")
    };
    let hz = clock_ticks()?;
    Ok(Cpu {
        user: tick(11)? / hz,
        system: tick(12)? / hz,
    })
}

// ---------------------------------------------------------------------------------------------
// the load client

/// Per kind: mean entries per search and the share stopped by the size limit, as `ldap3`
/// reads them. The load client must count the same for the first [`RAW_CHECKS`] searches of
/// each kind.
async fn check_answers(
    target: &Target,
    pools: &[Vec<String>],
    requests: &[Vec<raw::Request>],
) -> Result<Vec<(f64, f64)>> {
    let mut ldap = connect(&target.url).await?;
    let mut conn = raw::Conn::connect(&raw::address(&target.url)?)
        .await
        .with_context(|| target.name.clone())?;
    let mut out = Vec::new();
    for (pool, requests) in pools.iter().zip(requests) {
        let (mut entries, mut limited) = (0usize, 0usize);
        for (i, filter) in pool.iter().take(CHECKS).enumerate() {
            let (e, l) = search(&mut ldap, &target.base, filter)
                .await
                .with_context(|| target.name.clone())?;
            entries += e;
            limited += usize::from(l);
            if i < RAW_CHECKS {
                let request = requests.get(i).context("fewer requests than filters")?;
                ensure!(
                    request.filter == *filter,
                    "request {i} is for {}, not {filter}",
                    request.filter
                );
                let (raw_e, raw_l) = conn
                    .search(request)
                    .await
                    .with_context(|| target.name.clone())?;
                ensure!(
                    (raw_e, raw_l) == (e, l),
                    "{}: search {filter}: the load client read {raw_e} entries (size limit hit: \
                     {raw_l}), ldap3 {e} (size limit hit: {l})",
                    target.name
                );
            }
        }
        let count = pool.len().min(CHECKS) as f64;
        out.push((entries as f64 / count, limited as f64 / count));
    }
    let _ = ldap.unbind().await;
    let _ = conn.unbind().await;
    Ok(out)
}

struct PhaseResult {
    searches: u64,
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
    server: Cpu,
    client: Cpu,
}

/// `conns` connections search the mix for a warm-up, then for `measure`.
async fn phase(
    target: &Target,
    conns: usize,
    requests: &Requests,
    measure: Duration,
) -> Result<PhaseResult> {
    let addr = raw::address(&target.url)?;
    let ready = Arc::new(tokio::sync::Barrier::new(conns + 1));
    let (times_tx, times_rx) = tokio::sync::watch::channel(None::<Instant>);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conns {
        let addr = addr.clone();
        let (requests, ready, mut times) = (requests.clone(), ready.clone(), times_rx.clone());
        tasks.spawn(async move {
            let connected = raw::Conn::connect(&addr).await;
            ready.wait().await;
            let mut conn = connected?;
            let stop = times
                .wait_for(Option::is_some)
                .await
                .map_err(|_| anyhow!("the phase was abandoned"))?
                .context("no stop time")?;
            let mut r = Rng::new(SEED.wrapping_add(1000 + c as u64));
            // (sent, done) of every search
            let mut samples: Vec<(Instant, Instant)> = Vec::with_capacity(1 << 16);
            while Instant::now() < stop {
                let pool = r.pick(&requests);
                let request = r.pick(pool);
                let sent = Instant::now();
                conn.search(request).await?;
                samples.push((sent, Instant::now()));
            }
            let _ = conn.unbind().await;
            Ok::<_, anyhow::Error>(samples)
        });
    }
    ready.wait().await;
    let start = Instant::now() + WARM_UP;
    let stop = start + measure;
    // A little past `stop`, so the connections are still busy when the CPU is read.
    let _ = times_tx.send(Some(stop + Duration::from_millis(200)));
    let pid = target.pid.to_string();

    tokio::time::sleep_until(start.into()).await;
    let (server0, client0, t0) = (cpu_seconds(&pid)?, cpu_seconds("self")?, Instant::now());
    tokio::time::sleep_until(stop.into()).await;
    let (server1, client1, t1) = (cpu_seconds(&pid)?, cpu_seconds("self")?, Instant::now());

    let mut latencies: Vec<Duration> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let samples = joined.context("a load connection panicked")??;
        latencies.extend(
            samples
                .into_iter()
                .filter(|(sent, done)| *sent >= t0 && *done <= t1)
                .map(|(sent, done)| done - sent),
        );
    }
    ensure!(
        !latencies.is_empty(),
        "no search completed in the measured phase"
    );
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e6
    };
    Ok(PhaseResult {
        searches: latencies.len() as u64,
        seconds: (t1 - t0).as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        server: server1 - server0,
        client: client1 - client0,
    })
}
