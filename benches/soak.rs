//! Soak run: the phone query mix against the real server for a long time, while the upstream
//! changes every minute and the server's own schedule syncs it every minute. Reports searches
//! served, errors (goal: 0), syncs, and the server's memory over time (goal: flat).
//!
//! Run: `cargo bench --bench soak` — 30 minutes by default; `PHONEBOOK_SOAK_SECS=120` for a
//! short check, `PHONEBOOK_SOAK_PEOPLE` for the size of the directory (default 20,000),
//! `PHONEBOOK_SOAK_CLIENTS` for the number of connections searching at once (default 8).

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use common::{connect, search, Kind, BASE_DN, SEED};
use support::cli::Workspace;
use support::gen::{self, GenOptions};
use support::server::Server;
use support::slapd::{Slapd, PROXY_DN, PROXY_PW};

const MIX: [Kind; 5] = [
    Kind::NameContains,
    Kind::NamePrefix,
    Kind::CallerExact,
    Kind::NumberContains,
    Kind::PolyRange,
];
const ROUND: Duration = Duration::from_secs(60);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return Ok(()); // `cargo test --benches` / criterion-style probes: nothing to list
    }
    let total = Duration::from_secs(env_or("PHONEBOOK_SOAK_SECS", 1800));
    let n = env_or("PHONEBOOK_SOAK_PEOPLE", 20_000) as usize;
    let clients = env_or("PHONEBOOK_SOAK_CLIENTS", 8) as usize;
    let (ldif, _) = gen::people_ldif(&GenOptions {
        n,
        seed: SEED,
        with_memberof: true,
    });
    let slapd = Slapd::builder().ldif(ldif).start().context("start slapd")?;
    let ws = Workspace::new(&format!(
        "[ldap]\nlisten = \"127.0.0.1:0\"\nsize_limit = 500\n[http]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"data/phonebook.db\"\n\
         [[connector]]\nname = \"corp\"\nuri = \"{}\"\nbase_dn = \"ou=people,dc=example,dc=com\"\nbind_dn = \"{PROXY_DN}\"\npassword = \"{PROXY_PW}\"\n\
         filter = \"(objectClass=inetOrgPerson)\"\nid_attribute = \"entryUUID\"\nschedule = \"60s\"\nmax_removals = \"100%\"\n",
        slapd.url()
    ));
    let first = ws.run(&["sync"]);
    anyhow::ensure!(first.code == 0, "initial sync: {first:?}");
    let server = Server::start(&ws);
    let pid = server.pid();
    let url = server.url();
    let people = gen::people(SEED, n);
    let pools: Vec<Vec<String>> = MIX
        .iter()
        .map(|k| common::filters(&people, *k, 500, SEED))
        .collect();
    let filters: Arc<Vec<String>> = Arc::new(pools.into_iter().flatten().collect());

    let searches = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + total;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (url, filters, searches, errors) = (
                url.clone(),
                filters.clone(),
                searches.clone(),
                errors.clone(),
            );
            rt.spawn(async move {
                let mut ldap = connect(&url).await.ok();
                let mut i = c * 97;
                while Instant::now() < deadline {
                    i = (i + 1) % filters.len();
                    let result = match ldap.as_mut() {
                        Some(l) => search(l, BASE_DN, &filters[i]).await.map(|_| ()),
                        None => Err(anyhow::anyhow!("not connected")),
                    };
                    match result {
                        Ok(()) => {
                            searches.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!("soak: search error: {e:#}");
                            }
                            ldap = connect(&url).await.ok();
                        }
                    }
                }
            })
        })
        .collect();

    // Every minute: change the upstream (renames, leavers, returners) and sample memory.
    println!("| minute | searches so far | errors | server RSS (MB) |");
    println!("|---|---|---|---|");
    let mut samples = vec![(0u64, rss_kb(pid)?)];
    let mut gone: Vec<usize> = Vec::new();
    let mut round = 0usize;
    while Instant::now() + ROUND <= deadline + Duration::from_secs(1) {
        round += 1;
        // Last round's leavers return first, so every rename below finds its entry.
        let mut back = String::new();
        for i in gone.drain(..) {
            people[i].write_ldif(false, &mut back);
        }
        if !back.is_empty() {
            slapd.ldapadd(&back).context("re-add upstream")?;
        }
        let renames: String = (0..50)
            .map(|k| {
                let p = &people[(round * 50 + k) % n];
                format!("dn: {}\nchangetype: modify\nreplace: displayName\ndisplayName: Soak {round} {}\n\n", p.dn, p.index)
            })
            .collect();
        slapd.ldapmodify(&renames).context("rename upstream")?;
        let mut leaving: Vec<usize> = (0..10).map(|k| (round * 131 + k * 7919) % n).collect();
        leaving.sort_unstable();
        leaving.dedup();
        slapd
            .delete_many(
                &leaving
                    .iter()
                    .map(|i| people[*i].dn.clone())
                    .collect::<Vec<_>>(),
            )
            .context("delete upstream")?;
        gone = leaving;
        std::thread::sleep(ROUND.saturating_sub(Duration::from_millis(50)));
        let rss = rss_kb(pid)?;
        let minute = start.elapsed().as_secs() / 60;
        samples.push((minute, rss));
        println!(
            "| {minute} | {} | {} | {:.1} |",
            searches.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            rss as f64 / 1024.0
        );
    }
    for task in tasks {
        rt.block_on(task)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let metrics = std::process::Command::new("curl")
        .args(["-s", &format!("{}/metrics", server.http_url())])
        .output()?;
    let metrics = String::from_utf8_lossy(&metrics.stdout).into_owned();
    let syncs: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("phonebook_syncs_total"))
        .collect();
    let log = server.stop();
    let served = searches.load(Ordering::Relaxed);
    println!();
    println!(
        "soak: {:.0} s, {clients} connections, {n} people: {served} searches ({:.0}/s), {} errors, RSS {:.1} MB at start, {:.1} MB at the end; syncs: {}",
        elapsed,
        served as f64 / elapsed,
        errors.load(Ordering::Relaxed),
        samples[0].1 as f64 / 1024.0,
        samples.last().map_or(0, |s| s.1) as f64 / 1024.0,
        syncs.join(", ")
    );
    anyhow::ensure!(!log.contains(PROXY_PW), "a password reached the log");
    Ok(())
}
