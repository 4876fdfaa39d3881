//! The HTTP stack at 100k entries, in process (router → handler → snapshot, no socket):
//! caller lookup, search, the cached feed with and without gzip, and building the feed once
//! per generation. Prints the feed's sizes. Run: `cargo bench --bench http`.

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tower::ServiceExt as _;

use phonebook_proxy::config::Config;
use phonebook_proxy::directory::Directory;
use phonebook_proxy::http::{router, Admin, HttpState};
use phonebook_proxy::metrics::Metrics;
use phonebook_proxy::runs::{Counts, Outcome, RunRecord};
use phonebook_proxy::schedule::{load_snapshot, Gates, Runner};
use phonebook_proxy::store::Store;
use phonebook_proxy::sync::plan::ChangeSet;
use phonebook_proxy::sync::transform;

const PEOPLE: usize = 100_000;

struct Fixture {
    _dir: tempfile::TempDir,
    runner: Arc<Runner>,
    numbers: Vec<String>,
}

/// A store holding 100k generated people, and the runner the HTTP state reads through.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::parse(&format!(
        "[store]\npath = \"{}\"\n{}",
        dir.path().join("db").display(),
        common::connector_toml("ldap://127.0.0.1:1", "")
    ))
    .expect("bench config");
    let people = support::gen::people(common::SEED, PEOPLE);
    let entries = transform(
        &config.connectors[0],
        &config.numbers,
        &common::raw_people(&people),
    )
    .entries;
    // Numbers callers would send, written the way a PBX hands them over: national digits.
    let numbers: Vec<String> = entries
        .iter()
        .filter_map(|e| e.business.first().and_then(|p| p.e164.clone()))
        .filter(|e| e.starts_with("+49"))
        .map(|e| format!("0{}", &e[3..]))
        .take(1000)
        .collect();
    let store = Store::open(&config.store.path).expect("store");
    let run = RunRecord {
        finished_at: 0,
        duration_ms: 0,
        outcome: Outcome::Applied,
        counts: Counts::default(),
        error: None,
    };
    store
        .apply(
            "corp",
            ChangeSet {
                create: entries,
                ..Default::default()
            }
            .book(),
            &run,
        )
        .expect("apply");
    let config = Arc::new(config);
    let runner = Runner::new(
        config.clone(),
        store.clone(),
        Arc::new(Directory::new(
            load_snapshot(&store, &settings(&config), &["corp".to_owned()]).expect("snapshot"),
        )),
        Arc::new(Metrics::default()),
        Arc::new(Gates::default()),
    );
    Fixture {
        _dir: dir,
        runner: Arc::new(runner),
        numbers,
    }
}

fn settings(config: &Config) -> phonebook_proxy::directory::Settings {
    config.directory_settings()
}

fn state(runner: &Arc<Runner>) -> Arc<HttpState> {
    let (reload, _) = tokio::sync::mpsc::unbounded_channel();
    Arc::new(HttpState::new(
        runner.clone(),
        Arc::new(Metrics::default()),
        false,
        Admin {
            config_path: "unused.toml".into(),
            reload,
        },
    ))
}

/// One request through the router; returns the status and the body size.
async fn call(app: &axum::Router, uri: &str, gzip: bool) -> (StatusCode, usize) {
    let mut request = Request::get(uri);
    if gzip {
        request = request.header(header::ACCEPT_ENCODING, "gzip");
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, body.len())
}

fn http(c: &mut Criterion) {
    let fixture = fixture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = router(state(&fixture.runner));
    let mut group = c.benchmark_group("http_100k");
    group.throughput(Throughput::Elements(1));

    let mut i = 0;
    group.bench_function("lookup_national_number", |b| {
        b.iter(|| {
            i = (i + 1) % fixture.numbers.len();
            let (status, _) = rt.block_on(call(
                &app,
                &format!("/api/v1/lookup?number={}", fixture.numbers[i]),
                false,
            ));
            assert_eq!(status, StatusCode::OK);
        })
    });
    let queries = ["mül", "sch", "anna", "+49 89 12"];
    let mut q = 0;
    group.bench_function("search_limit_50", |b| {
        b.iter(|| {
            q = (q + 1) % queries.len();
            let uri = format!("/api/v1/entries?q={}&limit=50", urlencode(queries[q]));
            assert_eq!(rt.block_on(call(&app, &uri, false)).0, StatusCode::OK);
        })
    });

    // The feed: built once per generation, then served from memory.
    let (status, json_size) = rt.block_on(call(&app, "/api/v1/entries", false));
    assert_eq!(status, StatusCode::OK);
    let (_, gzip_size) = rt.block_on(call(&app, "/api/v1/entries", true));
    eprintln!(
        "feed of {PEOPLE} entries: JSON {:.1} MB, gzip {:.1} MB",
        json_size as f64 / 1e6,
        gzip_size as f64 / 1e6
    );
    group.sample_size(20);
    group.bench_function("feed_cached_json", |b| {
        b.iter(|| rt.block_on(call(&app, "/api/v1/entries", false)))
    });
    group.bench_function("feed_cached_gzip", |b| {
        b.iter(|| rt.block_on(call(&app, "/api/v1/entries", true)))
    });
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    group.bench_function("feed_build_json_and_gzip", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // A fresh state has no cached feed, as after a new generation.
                let app = router(state(&fixture.runner));
                let start = Instant::now();
                rt.block_on(call(&app, "/api/v1/entries", false));
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

criterion_group!(benches, http);
criterion_main!(benches);
