//! `serve`: opens the store, publishes its snapshot, answers phones (LDAP) and the PBX (HTTP)
//! at once, and keeps the phone book current with the scheduled syncs — until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::directory::{Directory, Settings};
use crate::http::{self, HttpState};
use crate::ldap::server::{self, Endpoint, Limits, Listeners};
use crate::ldap::session::Policy;
use crate::ldap::tls;
use crate::metrics::Metrics;
use crate::schedule::{self, Runner};
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
}

/// The addresses actually bound (useful when the configuration says port 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub ldap: SocketAddr,
    pub ldaps: Option<SocketAddr>,
    pub http: SocketAddr,
}

/// Runs the server until `shutdown` turns true; `on_bound` is told the listening addresses
/// once phones and the PBX can connect.
pub async fn run(
    config: Config,
    shutdown: watch::Receiver<bool>,
    on_bound: impl FnOnce(Bound),
) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let store = Store::open(&config.store.path)?;
    let settings = Settings {
        base_dn: config.ldap.base_dn.clone(),
        accents: config.ldap.accents,
        numbers: config.numbers.clone(),
    };
    let snapshot = schedule::load_snapshot(&store, &settings)?;
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
        policy: Arc::new(Policy::from_config(&config.ldap)),
        limits: Limits {
            max_connections: config.ldap.max_connections,
            idle_timeout: config.ldap.idle_timeout,
            max_pdu_size: config.ldap.max_pdu_size,
        },
        tls,
        metrics: metrics.clone(),
    });
    let runner = Arc::new(Runner::new(
        config.clone(),
        store,
        directory,
        settings,
        metrics.clone(),
    ));
    let http_state = Arc::new(HttpState::new(
        runner.clone(),
        metrics,
        config.http.token.clone(),
    ));
    tracing::info!(entries, generation, ldap = %bound.ldap, ldaps = ?bound.ldaps, http = %bound.http, "serving the phone book");
    on_bound(bound);

    let mut tasks = JoinSet::new();
    tasks.spawn(server::serve(listeners, endpoint, shutdown.clone()));
    tasks.spawn(http::serve(http_listener, http_state, shutdown.clone()));
    for connector in config.connectors.iter().filter(|c| c.schedule.is_some()) {
        tasks.spawn(
            runner
                .clone()
                .schedule(connector.name.clone(), shutdown.clone()),
        );
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}
