//! `serve`: opens the store, publishes its snapshot, answers phones (LDAP) and the PBX (HTTP)
//! at once, keeps the phone book current with the scheduled syncs, and takes a new
//! configuration on SIGHUP — until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::directory::Directory;
use crate::http::{self, HttpState, ReloadRequest};
use crate::ldap::server::{self, Endpoint, Listeners};
use crate::ldap::session::Policy;
use crate::ldap::tls;
use crate::metrics::Metrics;
use crate::schedule::{self, Gates, Runner};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr} ({cause})")]
    Listen { addr: SocketAddr, cause: String },
    /// A configuration problem found only when the files are read (exit 2).
    #[error("{0}")]
    Config(String),
    /// Shutdown could not close the store: a disk operation never returned (exit 1).
    #[error("the store could not be closed: a disk operation is stuck")]
    StoreStuck,
}

/// How long shutdown waits for the store to finish its last operation and release the
/// database; part of the 10 s `serve` takes at most from SIGTERM to exit.
const STORE_CLOSE_BOUND: std::time::Duration = std::time::Duration::from_secs(3);

/// The addresses actually bound (useful when the configuration says port 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub ldap: SocketAddr,
    pub ldaps: Option<SocketAddr>,
    pub http: SocketAddr,
}

/// Runs the server until `shutdown` turns true. `reloads` asks to re-read the configuration
/// from `path`; `on_bound` is told the listening addresses once phones and the PBX can connect.
pub async fn run(
    path: PathBuf,
    config: Config,
    shutdown: watch::Receiver<bool>,
    mut reloads: mpsc::UnboundedReceiver<ReloadRequest>,
    reloader: mpsc::UnboundedSender<ReloadRequest>,
    on_bound: impl FnOnce(Bound),
) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let (path_, timeout) = (config.store.path.clone(), config.store.write_timeout);
    let store = tokio::task::spawn_blocking(move || Store::open_with_timeout(&path_, timeout))
        .await
        .map_err(|e| StoreError::Io {
            path: config.store.path.display().to_string(),
            cause: format!("opening was interrupted ({e})"),
        })??;
    let settings = config.directory_settings();
    let names: Vec<String> = config.connectors.iter().map(|c| c.name.clone()).collect();
    let snapshot = schedule::load_snapshot(&store, &settings, &names)?;
    let (entries, generation) = (snapshot.len(), snapshot.generation());
    let directory = Arc::new(Directory::new(snapshot));
    let metrics = Arc::new(Metrics::default());

    let tls = match (&config.ldap.tls_cert, &config.ldap.tls_key) {
        (Some(cert), Some(key)) => Some(TlsAcceptor::from(
            tls::server_config(cert, key).map_err(ServeError::Config)?,
        )),
        _ => None,
    };
    let listen = |addr: SocketAddr| {
        move |e: std::io::Error| ServeError::Listen {
            addr,
            cause: e.to_string(),
        }
    };
    let listeners = Listeners::bind(config.ldap.listen, config.ldap.listen_ldaps)
        .await
        .map_err(listen(config.ldap.listen))?;
    let http_listener = TcpListener::bind(config.http.listen)
        .await
        .map_err(listen(config.http.listen))?;
    let bound = Bound {
        ldap: listeners
            .plain
            .local_addr()
            .map_err(listen(config.ldap.listen))?,
        ldaps: listeners.ldaps.as_ref().and_then(|l| l.local_addr().ok()),
        http: http_listener
            .local_addr()
            .map_err(listen(config.http.listen))?,
    };
    let endpoint = Arc::new(Endpoint {
        directory: directory.clone(),
        policy: Arc::new(Policy::from_config(&config.ldap)).into(),
        limits: config.ldap.limits.clone(),
        tls,
        metrics: metrics.clone(),
        access_log: config.access_log,
    });
    let gates = Arc::new(Gates::default());
    let runner = Arc::new(Runner::new(
        config.clone(),
        store.clone(),
        directory.clone(),
        metrics.clone(),
        gates.clone(),
    ));
    let http_state = Arc::new(HttpState::new(
        runner.clone(),
        metrics.clone(),
        config.access_log,
        crate::http::Admin {
            config_path: path.clone(),
            reload: reloader,
        },
    ));
    tracing::info!(entries, generation, ldap = %bound.ldap, ldaps = ?bound.ldaps, http = %bound.http, "serving the phone book");
    for warning in http::access_warnings(&config) {
        tracing::warn!("{warning}");
    }
    on_bound(bound);

    let mut endpoints = JoinSet::new();
    endpoints.spawn(server::serve(listeners, endpoint.clone(), shutdown.clone()));
    endpoints.spawn(http::serve(
        http_listener,
        http_state.clone(),
        shutdown.clone(),
    ));
    let mut live = Live {
        path,
        config,
        store,
        directory,
        metrics,
        gates,
        endpoint,
        http: http_state,
        schedules: Schedules::start(&runner, None),
    };

    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(answer) = reloads.recv() => {
                let outcome = live.reload().await;
                if let Some(answer) = answer {
                    let _ = answer.send(outcome);
                }
            }
        }
    }
    live.schedules.stop().await;
    while endpoints.join_next().await.is_some() {}
    // The store is released last, with a bound: a disk that does not answer must not keep
    // the process from exiting (what a sync acknowledged was flushed when it was applied).
    let store = live.store.clone();
    let closed = tokio::task::spawn_blocking(move || store.close(STORE_CLOSE_BOUND))
        .await
        .unwrap_or(false);
    if !closed {
        tracing::error!(
            bound_s = STORE_CLOSE_BOUND.as_secs(),
            "the store did not close in time (a disk operation is stuck); exiting without it"
        );
        return Err(ServeError::StoreStuck);
    }
    tracing::info!("stopped");
    Ok(())
}

/// The schedule tasks of one configuration, with their own stop signal.
struct Schedules {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Schedules {
    /// Starts the schedules of `runner`'s configuration. Connectors that `before` already
    /// scheduled keep their pace (next run after one period); new ones sync at once.
    fn start(runner: &Arc<Runner>, before: Option<&Config>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for connector in runner
            .config()
            .connectors
            .iter()
            .filter(|c| c.schedule.is_some())
        {
            let known = before
                .and_then(|b| b.connector(&connector.name))
                .is_some_and(|c| c.schedule.is_some());
            tasks.spawn(
                runner
                    .clone()
                    .schedule(connector.name.clone(), stopped.clone(), !known),
            );
        }
        Schedules { stop, tasks }
    }

    /// Stops every task (a sync in progress is abandoned at its next await, which the
    /// store's atomic apply makes harmless) and waits for them.
    async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// What a reload replaces, and what it keeps.
struct Live {
    path: PathBuf,
    config: Arc<Config>,
    store: Store,
    directory: Arc<Directory>,
    metrics: Arc<Metrics>,
    gates: Arc<Gates>,
    endpoint: Arc<Endpoint>,
    http: Arc<HttpState>,
    schedules: Schedules,
}

impl Live {
    /// Re-reads the configuration file. A broken file is rejected with its errors logged and
    /// the running configuration kept; a good one takes effect for connectors, schedules,
    /// the LDAP policy (new connections), the HTTP token and the snapshot's settings, without
    /// dropping a connection.
    async fn reload(&mut self) -> Result<(), Vec<String>> {
        let new = match Config::load(&self.path) {
            Ok(new) => Arc::new(new),
            Err(errors) => {
                for e in &errors.errors {
                    tracing::error!(file = %errors.file.display(), "config reload rejected: {e}");
                }
                tracing::warn!("keeping the running configuration");
                return Err(errors.errors.iter().map(ToString::to_string).collect());
            }
        };
        for (what, changed) in [
            ("store.path", new.store.path != self.config.store.path),
            (
                "store.write_timeout",
                new.store.write_timeout != self.config.store.write_timeout,
            ),
            ("ldap.listen", new.ldap.listen != self.config.ldap.listen),
            (
                "ldap.listen_ldaps",
                new.ldap.listen_ldaps != self.config.ldap.listen_ldaps,
            ),
            (
                "ldap.tls_cert / tls_key",
                new.ldap.tls_cert != self.config.ldap.tls_cert
                    || new.ldap.tls_key != self.config.ldap.tls_key,
            ),
            (
                "ldap connection limits",
                new.ldap.limits != self.config.ldap.limits,
            ),
            ("http.listen", new.http.listen != self.config.http.listen),
            (
                "http connection limits",
                new.http.limits != self.config.http.limits,
            ),
        ] {
            if changed {
                tracing::warn!("{what} changed: it takes effect at the next restart");
            }
        }
        let runner = Arc::new(Runner::new(
            new.clone(),
            self.store.clone(),
            self.directory.clone(),
            self.metrics.clone(),
            self.gates.clone(),
        ));
        let old = std::mem::replace(
            &mut self.schedules,
            Schedules::start(&runner, Some(&self.config)),
        );
        // Old schedule tasks wind down in the background; the shared gates keep a sync that
        // is still finishing from overlapping one of the new configuration.
        tokio::spawn(old.stop());
        self.endpoint
            .policy
            .store(Arc::new(Policy::from_config(&new.ldap)));
        self.http.set_runner(runner.clone());
        let names = |c: &Config| {
            c.connectors
                .iter()
                .map(|k| k.name.clone())
                .collect::<Vec<_>>()
        };
        let reshaped = names(&new) != names(&self.config)
            || new.directory_settings() != self.config.directory_settings();
        if reshaped {
            if let Err(e) = runner.republish().await {
                tracing::error!(error = %e, "cannot rebuild the directory with the new settings");
            }
        }
        let names: Vec<&str> = new.connectors.iter().map(|c| c.name.as_str()).collect();
        tracing::info!(connectors = ?names, "configuration reloaded");
        self.config = new;
        Ok(())
    }
}
