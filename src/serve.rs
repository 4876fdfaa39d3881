//! `serve`: opens the store, publishes its snapshot, answers phones at once, and keeps the
//! phone book current with the scheduled syncs — until the shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::directory::{Directory, Settings};
use crate::ldap::server::{self, Endpoint, Limits, Listeners};
use crate::ldap::session::Policy;
use crate::ldap::tls;
use crate::schedule;
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
}

/// Runs the server until `shutdown` turns true; `on_bound` is told the listening addresses
/// once phones can connect.
pub async fn run(
    config: Config,
    shutdown: watch::Receiver<bool>,
    on_bound: impl FnOnce(Bound),
) -> Result<(), ServeError> {
    let store = Store::open(&config.store.path)?;
    let settings = Settings {
        base_dn: config.ldap.base_dn.clone(),
        accents: config.ldap.accents,
        numbers: config.numbers.clone(),
    };
    let snapshot = schedule::load_snapshot(&store, &settings)?;
    let (entries, generation) = (snapshot.len(), snapshot.generation());
    let directory = Arc::new(Directory::new(snapshot));

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
    let bound = Bound {
        ldap: listeners
            .plain
            .local_addr()
            .map_err(listen(config.ldap.listen))?,
        ldaps: listeners.ldaps.as_ref().and_then(|l| l.local_addr().ok()),
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
        metrics: Arc::new(crate::metrics::Metrics::default()),
    });
    tracing::info!(entries, generation, ldap = %bound.ldap, ldaps = ?bound.ldaps, "serving the phone book");
    on_bound(bound);

    let mut tasks = JoinSet::new();
    tasks.spawn(server::serve(listeners, endpoint, shutdown.clone()));
    for connector in config.connectors.iter().filter(|c| c.schedule.is_some()) {
        tasks.spawn(schedule::run(
            connector.clone(),
            config.numbers.clone(),
            store.clone(),
            directory.clone(),
            settings.clone(),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}
