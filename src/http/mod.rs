//! The HTTP endpoint for the PBX, phones that prefer XML books, and operators: the JSON feed,
//! search, caller lookup, status, sync trigger, metrics and health — all answered from the
//! current directory snapshot (axum, on the same runtime as LDAP).
//!
//! Bad input is a 4xx with a JSON `{"error": …}` body, never a 500.

mod access;
mod admin;
mod conditional;
mod feed;
mod page;
mod server;
mod status;
mod xml;

pub use server::serve;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use arc_swap::ArcSwap;

use crate::metrics::Metrics;
use crate::schedule::Runner;

/// A request to re-read the configuration; the answer, when someone waits for it, is the
/// list of problems that made the new file fail (empty: it took effect). Defined here, where
/// edits ask for it, and answered by `serve`, which owns the reload.
pub type ReloadRequest = Option<tokio::sync::oneshot::Sender<Result<(), Vec<String>>>>;

/// The configuration file connector edits go to, and the reload that applies them.
pub struct Admin {
    pub config_path: std::path::PathBuf,
    pub reload: tokio::sync::mpsc::UnboundedSender<ReloadRequest>,
}

/// What every handler shares.
pub struct HttpState {
    /// The runner of the current configuration; replaced whole by a reload.
    runner: ArcSwap<Runner>,
    pub metrics: Arc<Metrics>,
    /// Log one `access` line per request.
    access_log: bool,
    /// Where connector edits are written and how they take effect.
    admin: Admin,
    /// Connector edits happen one at a time.
    admin_lock: tokio::sync::Mutex<()>,
    /// The serialised feed of the current generation, built on first request.
    feed: Mutex<Option<Arc<feed::Feed>>>,
}

impl HttpState {
    pub fn new(runner: Arc<Runner>, metrics: Arc<Metrics>, access_log: bool, admin: Admin) -> Self {
        HttpState {
            runner: ArcSwap::new(runner),
            metrics,
            access_log,
            admin,
            admin_lock: tokio::sync::Mutex::new(()),
            feed: Mutex::new(None),
        }
    }

    pub fn runner(&self) -> Arc<Runner> {
        self.runner.load_full()
    }

    /// Switches to the runner of a reloaded configuration.
    pub fn set_runner(&self, runner: Arc<Runner>) {
        self.runner.store(runner);
    }
}

pub use access::warnings as access_warnings;

type Shared = Arc<HttpState>;

/// Every route, each under its access scope (see [`access`]).
pub fn router(state: Shared) -> Router {
    let read = Router::new()
        .route("/api/v1/entries", get(feed::entries))
        .route("/api/v1/lookup", get(feed::lookup))
        .route("/phonebook/{file}", get(xml::book))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            access::read_scope,
        ));
    let admin = Router::new()
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/connectors/{name}/sync", post(status::trigger))
        .route("/api/v1/connectors/{name}/runs", get(status::runs))
        .route("/api/v1/connectors", get(admin::list).post(admin::create))
        .route(
            "/api/v1/connectors/{name}",
            axum::routing::put(admin::update).delete(admin::remove),
        )
        .route("/api/v1/preview", post(admin::preview))
        .route("/api/v1/probe", post(admin::probe))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            access::admin_scope,
        ));
    // Open to anyone: the health check and the page's own files (which hold no data).
    let open = Router::new()
        .route("/", get(page::index))
        .route("/admin/{file}", get(page::file))
        .route("/healthz", get(|| async { "ok\n" }));
    Router::new()
        .merge(read)
        .merge(admin)
        .merge(open)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

/// A 4xx/5xx answer with a JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// Query parameters, or a JSON 400 when the query string itself is broken.
pub type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|Query(map)| map)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))
}

/// A boolean query parameter (`true`/`false`/`1`/`0`), absent meaning false.
fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match params.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name} must be true or false, not \"{other}\""
        ))),
    }
}

async fn count_requests(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let target = state
        .access_log
        .then(|| format!("{} {}", request.method(), request.uri()));
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .http_requests
        .inc(&[("route", &route), ("status", response.status().as_str())]);
    if let Some(target) = target {
        // Tokens travel in a header, never in the line logged here.
        tracing::info!(
            target: "access",
            client,
            request = target,
            status = response.status().as_u16(),
            us = started.elapsed().as_micros() as u64,
            "http"
        );
    }
    response
}

async fn metrics(State(state): State<Shared>) -> Response {
    let runner = state.runner();
    let snapshot = runner.directory().load();
    let per_connector = snapshot.entries_per_connector();
    let health = runner.store().health();
    let connectors: Vec<crate::metrics::ConnectorGauges> = runner
        .config()
        .connectors
        .iter()
        .map(|c| crate::metrics::ConnectorGauges {
            name: &c.name,
            entries: per_connector.get(c.name.as_str()).copied().unwrap_or(0),
            health: health.get(&c.name).copied().unwrap_or_default(),
        })
        .collect();
    let body = state
        .metrics
        .render(snapshot.len(), snapshot.generation(), &connectors);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        Body::from(body),
    )
        .into_response()
}
