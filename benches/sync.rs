//! Sync throughput.
//!
//! * `transform_and_plan/N`: pre-filter + mapping + plan over N synthetic people (no I/O),
//!   reported as entries/s.
//! * `pull_100k/*`: the whole sync of 100k people from a real slapd (pull, transform, plan,
//!   atomic apply into a fresh sled store) next to `ldapsearch -E pr=500/noprompt` fetching
//!   the same entries with the same attributes — the README compares the two (goal: ≤ 1.5×).
//!   Set `PHONEBOOK_BENCH_PULL=0` to skip it (it loads 100k people into slapd first, ~20 s).
//!
//! Run: `cargo bench --bench sync`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use phonebook_proxy::config::Config;
use phonebook_proxy::model::Entry;
use phonebook_proxy::store::Store;
use phonebook_proxy::sync::connector::ConnectorConfig;
use phonebook_proxy::sync::raw::RawEntry;
use phonebook_proxy::sync::{self, plan, SyncOptions};
use support::gen::{self, GenOptions};
use support::slapd::{Slapd, PROXY_DN, PROXY_PW};

const SEED: u64 = 11;

fn connector(uri: &str) -> (Config, ConnectorConfig) {
    let text = format!(
        r#"[[connector]]
name = "corp"
uri = "{uri}"
base_dn = "ou=people,dc=example,dc=com"
bind_dn = "{PROXY_DN}"
password = "{PROXY_PW}"
filter = "(objectClass=inetOrgPerson)"
id_attribute = "entryUUID"
page_size = 500
max_removals = "100%"
[[connector.prefilter]]
attribute = "memberOf"
matches = "(?i)^cn=company-phonebook,"
[[connector.prefilter]]
attribute = "employeeType"
not_matches = "(?i)^disabled$"
"#
    );
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("bench config: {e:?}"));
    let connector = config.connectors[0].clone();
    (config, connector)
}

/// People as the LDAP source would hand them over, with an entryUUID-like id.
fn raw_people(n: usize) -> Vec<RawEntry> {
    gen::people(SEED, n)
        .into_iter()
        .map(|p| {
            let mut raw = RawEntry::new(&p.dn);
            for (name, value) in &p.attrs {
                raw.push(name, value.clone());
            }
            raw.push(
                "entryUUID",
                format!("00000000-0000-4000-8000-{:012x}", p.index),
            );
            raw
        })
        .collect()
}

fn transform_and_plan(c: &mut Criterion) {
    let (config, connector) = connector("ldap://127.0.0.1:1");
    let mut group = c.benchmark_group("transform_and_plan");
    group.sample_size(10);
    for n in [1_000, 10_000, 100_000] {
        let raws = raw_people(n);
        // What the store held after the previous sync: the same people, 1% of them changed.
        let stored: HashMap<String, Entry> = sync::transform(&connector, &config.numbers, &raws)
            .entries
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                if i % 100 == 0 {
                    e.title = Some("changed".into());
                }
                (e.id.clone(), e)
            })
            .collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &raws, |b, raws| {
            b.iter_batched(
                || stored.clone(),
                |stored| {
                    let t = sync::transform(&connector, &config.numbers, raws);
                    plan::plan(stored, t.entries, connector.mode)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn pull_100k(c: &mut Criterion) {
    if std::env::var("PHONEBOOK_BENCH_PULL").as_deref() == Ok("0") {
        return;
    }
    let n = 100_000;
    let (ldif, _) = gen::people_ldif(&GenOptions {
        n,
        seed: SEED,
        with_memberof: true,
    });
    let slapd = Slapd::builder()
        .ldif(ldif)
        .start()
        .expect("start slapd with 100k people");
    let (config, connector) = connector(&slapd.url());
    let attributes = sync::requested_attributes(&connector);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("pull_100k");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(40))
        .throughput(Throughput::Elements(n as u64));
    group.bench_function("ldapsearch_pr500", |b| {
        b.iter(|| {
            let mut args = vec![
                "-x".to_owned(),
                "-LLL".into(),
                "-H".into(),
                slapd.url(),
                "-D".into(),
                PROXY_DN.into(),
                "-w".into(),
                PROXY_PW.into(),
                "-E".into(),
                "pr=500/noprompt".into(),
                "-b".into(),
                "ou=people,dc=example,dc=com".into(),
                "(objectClass=inetOrgPerson)".into(),
            ];
            args.extend(attributes.iter().cloned());
            let status = Command::new("ldapsearch")
                .args(&args)
                .stdout(Stdio::null())
                .status()
                .expect("ldapsearch");
            assert!(status.success());
        })
    });
    group.bench_function("sync_into_empty_store", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = Store::open(&dir.path().join("db")).expect("store");
                let start = Instant::now();
                let report = runtime
                    .block_on(sync::run(
                        &connector,
                        &config.numbers,
                        &store,
                        SyncOptions::default(),
                        &|_| {},
                    ))
                    .expect("sync");
                total += start.elapsed();
                assert!(report.counts.created > 60_000);
            }
            total
        })
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("db")).expect("store");
    runtime
        .block_on(sync::run(
            &connector,
            &config.numbers,
            &store,
            SyncOptions::default(),
            &|_| {},
        ))
        .expect("first sync");
    group.bench_function("resync_unchanged", |b| {
        b.iter(|| {
            let report = runtime
                .block_on(sync::run(
                    &connector,
                    &config.numbers,
                    &store,
                    SyncOptions::default(),
                    &|_| {},
                ))
                .expect("sync");
            assert_eq!(
                report.counts.created + report.counts.updated + report.counts.removed,
                0
            );
        })
    });
    group.finish();
}

criterion_group!(benches, transform_and_plan, pull_100k);
criterion_main!(benches);
