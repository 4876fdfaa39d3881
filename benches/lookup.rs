//! Directory lookups, with no socket: one search per phone filter kind through the session
//! on a snapshot of 1k / 10k / 100k generated people, reported per search.
//!
//! * `lookup/<kind>/<n>`: the decoded search request is built outside the timing; the timing
//!   covers what the server does between decoding a request and writing to the socket:
//!   `Session::respond` (filter compilation, index walk, evaluation up to the size limit) and
//!   the BER encoding of every reply message into a buffer. (`Session::handle`, the same
//!   answer as `LdapMsg`s for tests, checks the answers first.) Each kind cycles through 1,024
//!   different filters drawn from the data (`benches/common/mod.rs`); the first 64 of each
//!   are checked against a scan of every entry.
//! * `snapshot/build/100000`: `Snapshot::build` of 100k entries (sort, folding, indexes).
//! * `snapshot/startup/100000`: what `serve` does before it listens: open the sled store
//!   holding 100k entries, read them all and build the snapshot.
//!
//! Run: `cargo bench --bench lookup` (`-- lookup/` or `-- snapshot/` for one part).

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ldap3_proto::proto::{
    LdapDerefAliases, LdapMsg, LdapOp, LdapResultCode, LdapSearchRequest, LdapSearchScope,
};
use ldap3_proto::LdapCodec;
use phonebook_proxy::config::Config;
use phonebook_proxy::directory::fold::Accents;
use phonebook_proxy::directory::matcher::Tri;
use phonebook_proxy::directory::{Directory, Settings, Snapshot};
use phonebook_proxy::filter;
use phonebook_proxy::ldap::response::{Part, Response};
use phonebook_proxy::ldap::session::{Policy, Session};
use phonebook_proxy::ldap::wire::encode::encode_result;
use phonebook_proxy::model::Entry;
use phonebook_proxy::runs::{Counts, Outcome, RunRecord};
use phonebook_proxy::schedule;
use phonebook_proxy::store::Store;
use phonebook_proxy::sync::{self, plan};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Encoder;

use common::{Kind, BASE_DN, PHONE_ATTRS, PHONE_SIZE_LIMIT, SEED};
use support::gen::{self, Person};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
/// Different filters per kind; the bench cycles through them.
const POOL: usize = 1024;
/// Requests built (outside the timing) per timed batch.
const BATCH: u64 = 4096;
/// Requests per kind whose answer is checked against a scan of every entry.
const CHECKED: usize = 64;
/// The server-side size limit (`[ldap] size_limit`, default 500).
const SERVER_SIZE_LIMIT: usize = 500;

fn entries(people: &[Person]) -> (Config, Vec<Entry>) {
    let text = format!(
        "{}\n{}",
        common::connector_toml("ldap://127.0.0.1:1", ""),
        common::COMPANY_BLOCKS
    );
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("bench config: {e:?}"));
    assert_eq!(
        config.numbers,
        common::company_plan(),
        "the drawn filters use this plan"
    );
    let t = sync::transform(
        &config.connectors[0],
        &config.numbers,
        &common::raw_people(people),
    );
    assert_eq!(
        t.entries.len(),
        people.len(),
        "every person becomes an entry"
    );
    (config, t.entries)
}

fn settings(config: &Config) -> Settings {
    Settings::new(BASE_DN, Accents::Fold, config.numbers.clone())
}

fn search(base: &str, scope: LdapSearchScope, filter_text: &str, sizelimit: i32) -> LdapMsg {
    let filter = filter::parse(filter_text).unwrap_or_else(|e| panic!("{filter_text}: {e}"));
    LdapMsg {
        msgid: 2,
        op: LdapOp::SearchRequest(LdapSearchRequest {
            base: base.into(),
            scope,
            aliases: LdapDerefAliases::Never,
            sizelimit,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs: PHONE_ATTRS.iter().map(|a| (*a).to_owned()).collect(),
        }),
        ctrl: Vec::new(),
    }
}

/// The requests of one measured kind.
struct Case {
    name: &'static str,
    requests: Vec<LdapMsg>,
}

fn cases(people: &[Person], snapshot: &Snapshot) -> Vec<Case> {
    let mut cases: Vec<Case> = [
        Kind::NamePrefix,
        Kind::NameContains,
        Kind::CallerOtherFormat,
        Kind::CallerExtension,
        Kind::CallerNational,
        Kind::NumberContains,
        Kind::NumberSuffix,
        Kind::PolyRange,
        Kind::YealinkOr,
    ]
    .into_iter()
    .map(|kind| Case {
        name: kind.name(),
        requests: common::filters(people, kind, POOL, SEED)
            .iter()
            .map(|f| search(BASE_DN, LdapSearchScope::Subtree, f, PHONE_SIZE_LIMIT))
            .collect(),
    })
    .collect();
    // Gigaset: a base search on an entry's DN.
    let mut r = common::Rng::new(SEED);
    cases.push(Case {
        name: "base_entry_dn",
        requests: (0..POOL)
            .map(|_| {
                let dn = snapshot.packed(r.below(snapshot.len()) as u32).dn();
                search(dn, LdapSearchScope::Base, "(objectClass=*)", 0)
            })
            .collect(),
    });
    // Everything, cut at the server's size limit (result code 4).
    cases.push(Case {
        name: "all_size_limited",
        requests: vec![search(
            BASE_DN,
            LdapSearchScope::Subtree,
            "(objectClass=*)",
            0,
        )],
    });
    cases
}

/// How many entries a search request returns when its filter is evaluated on every entry
/// of the snapshot (no index), with the phone's and the server's size limit.
fn scanned(snapshot: &Snapshot, req: &LdapMsg) -> usize {
    let LdapOp::SearchRequest(search) = &req.op else {
        panic!("not a search: {req:?}");
    };
    let node = snapshot
        .compile(&search.filter)
        .unwrap_or_else(|e| panic!("{e}"));
    let ids = 0..snapshot.len() as u32;
    let matching = if search.scope == LdapSearchScope::Base {
        let entry = ids
            .map(|id| snapshot.packed(id))
            .find(|e| e.dn() == search.base)
            .unwrap_or_else(|| panic!("no entry {}", search.base));
        usize::from(node.eval(&entry) == Tri::True)
    } else {
        // The container entry is not a person: no phone filter here matches it.
        ids.filter(|id| node.eval(&snapshot.packed(*id)) == Tri::True)
            .count()
    };
    let limit = usize::try_from(search.sizelimit)
        .ok()
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX)
        .min(SERVER_SIZE_LIMIT);
    matching.min(limit)
}

/// Writes a response as the server does: entries and plain results straight to BER, other
/// messages through the codec.
fn encode(response: Response, codec: &mut LdapCodec, wire: &mut BytesMut) {
    for part in response.parts {
        match part {
            Part::Msg(msg) if encode_result(&msg, wire) => {}
            Part::Msg(msg) => codec
                .encode(msg, wire)
                .unwrap_or_else(|e| panic!("encoding a reply: {e}")),
            Part::Entries(entries) => entries.encode(wire),
        }
    }
}

/// Entries returned and the result code of one search.
fn outcome(replies: &[LdapMsg]) -> (usize, LdapResultCode) {
    let entries = replies
        .iter()
        .filter(|m| matches!(m.op, LdapOp::SearchResultEntry(_)))
        .count();
    match replies.last().map(|m| &m.op) {
        Some(LdapOp::SearchResultDone(res)) => (entries, res.code.clone()),
        other => panic!("search did not end with a result: {other:?}"),
    }
}

fn lookup(c: &mut Criterion) {
    let all_people = gen::people(SEED, *SIZES.iter().max().unwrap_or(&0));
    let mut group = c.benchmark_group("lookup");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for n in SIZES {
        let people = &all_people[..n];
        let (config, entries) = entries(people);
        let snapshot = Snapshot::build(entries, 1, settings(&config));
        let cases = cases(people, &snapshot);
        let expected: Vec<Vec<usize>> = cases
            .iter()
            .map(|case| {
                case.requests
                    .iter()
                    .take(CHECKED)
                    .map(|r| scanned(&snapshot, r))
                    .collect()
            })
            .collect();
        let directory = Arc::new(Directory::new(snapshot));
        let policy = Arc::new(Policy {
            anonymous: true,
            users: Vec::new(),
            size_limit: SERVER_SIZE_LIMIT,
            max_page_size: 1000,
            starttls: false,
        });
        let mut session = Session::new(directory, policy, false);
        for (case, expected) in cases.iter().zip(&expected) {
            // Every request must succeed (or stop at a size limit), the first ones with as many
            // entries as evaluating the filter on every entry gives; report how much each
            // returns so the table can say what was measured.
            let mut returned = 0;
            for (i, req) in case.requests.iter().enumerate() {
                let (count, code) = outcome(&session.handle(req.clone()).msgs);
                if let Some(want) = expected.get(i) {
                    assert_eq!(count, *want, "{} at {n}: {req:?}", case.name);
                }
                assert!(
                    matches!(
                        code,
                        LdapResultCode::Success | LdapResultCode::SizeLimitExceeded
                    ),
                    "{} at {n}: {code:?}",
                    case.name
                );
                returned += count;
            }
            eprintln!(
                "lookup/{}/{n}: {:.1} entries per search on average",
                case.name,
                returned as f64 / case.requests.len() as f64
            );
            group.bench_function(BenchmarkId::new(case.name, n), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut next = 0usize;
                    let mut codec = LdapCodec::new(None, None);
                    let mut wire = BytesMut::with_capacity(64 * 1024);
                    let mut left = iters;
                    while left > 0 {
                        let k = left.min(BATCH);
                        left -= k;
                        let batch: Vec<LdapMsg> = (0..k)
                            .map(|_| {
                                next = (next + 1) % case.requests.len();
                                case.requests[next].clone()
                            })
                            .collect();
                        let start = Instant::now();
                        for req in batch {
                            wire.clear();
                            encode(session.respond(req), &mut codec, &mut wire);
                            black_box(&wire);
                        }
                        total += start.elapsed();
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

fn snapshot(c: &mut Criterion) {
    let n = 100_000;
    let people = gen::people(SEED, n);
    let (config, entries) = entries(&people);
    let settings = settings(&config);

    let mut group = c.benchmark_group("snapshot");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("build", n), |b| {
        b.iter_batched(
            || entries.clone(),
            |entries| Snapshot::build(entries, 1, settings.clone()),
            BatchSize::LargeInput,
        )
    });

    // A store holding the 100k entries, as a sync leaves it.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("phonebook.db");
    {
        let store = Store::open(&path).expect("store");
        let changes = plan::plan(HashMap::new(), entries, config.connectors[0].mode);
        let run = RunRecord {
            finished_at: 0,
            duration_ms: 0,
            outcome: Outcome::Applied,
            counts: Counts {
                fetched: n,
                created: n,
                ..Counts::default()
            },
            error: None,
        };
        store
            .apply("corp", changes.book(), &run)
            .expect("fill the store");
    }
    group.bench_function(BenchmarkId::new("startup", n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let store = Store::open(&path).expect("open the store");
                let snapshot =
                    schedule::load_snapshot(&store, &settings, &["corp".to_owned()]).expect("load");
                total += start.elapsed();
                assert_eq!(snapshot.len(), n);
                drop((snapshot, store));
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, lookup, snapshot);
criterion_main!(benches);
