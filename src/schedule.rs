//! Running syncs inside `serve`: the per-connector schedules, and syncs triggered through the
//! API — through one [`Runner`], so that two syncs of one connector never run at once.
//!
//! After each applied change the runner rebuilds the directory snapshot from the store and
//! publishes it; a failed run only logs and records its error (the store keeps the last good
//! book, and the endpoints keep serving it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::config::{Config, ConnectorConfig, Schedule};
use crate::directory::{Directory, Settings, Snapshot};
use crate::metrics::Metrics;
use crate::store::{Outcome, Store, StoreError};
use crate::sync::{self, SyncError, SyncOptions, SyncReport};

/// Builds the snapshot of everything the store holds.
pub fn load_snapshot(store: &Store, settings: &Settings) -> Result<Snapshot, StoreError> {
    let generation = store.generation()?;
    Ok(Snapshot::build(
        store.all_entries()?,
        generation,
        settings.clone(),
    ))
}

/// Why a triggered sync did not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("no connector named \"{0}\"")]
    UnknownConnector(String),
    #[error("a sync of connector \"{0}\" is already running")]
    Busy(String),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Runs the syncs of every connector of one configuration.
pub struct Runner {
    config: Arc<Config>,
    store: Store,
    directory: Arc<Directory>,
    settings: Settings,
    metrics: Arc<Metrics>,
    /// One lock per connector: held for the whole of a sync.
    gates: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    next_runs: Mutex<HashMap<String, SystemTime>>,
}

impl Runner {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        directory: Arc<Directory>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let gates = config
            .connectors
            .iter()
            .map(|c| (c.name.clone(), Arc::default()))
            .collect();
        Runner {
            config,
            store,
            directory,
            settings,
            metrics,
            gates,
            next_runs: Mutex::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// When the connector's schedule runs it next, if it has one.
    pub fn next_run(&self, connector: &str) -> Option<SystemTime> {
        self.next_runs.lock().ok()?.get(connector).copied()
    }

    /// Whether a sync of the connector is running now.
    pub fn is_running(&self, connector: &str) -> bool {
        self.gates
            .get(connector)
            .is_some_and(|g| g.try_lock().is_err())
    }

    /// Runs a sync now, unless one of the same connector is already running.
    pub async fn trigger(
        &self,
        connector: &str,
        options: SyncOptions,
    ) -> Result<SyncReport, TriggerError> {
        let (config, gate) = self.connector(connector)?;
        let _running = gate
            .try_lock()
            .map_err(|_| TriggerError::Busy(connector.to_owned()))?;
        Ok(self.sync(config, options).await?)
    }

    fn connector(
        &self,
        name: &str,
    ) -> Result<(&ConnectorConfig, &tokio::sync::Mutex<()>), TriggerError> {
        match (self.config.connector(name), self.gates.get(name)) {
            (Some(c), Some(g)) => Ok((c, g)),
            _ => Err(TriggerError::UnknownConnector(name.to_owned())),
        }
    }

    /// One sync with its bookkeeping: metrics, logs, and a new snapshot when it changed
    /// the book.
    async fn sync(
        &self,
        connector: &ConnectorConfig,
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let before = self.store.generation()?;
        let result = sync::run(
            connector,
            &self.config.numbers,
            &self.store,
            options,
            &|_| {},
        )
        .await;
        let name = connector.name.as_str();
        let outcome = match &result {
            Ok(r) if r.dry_run => "dry_run",
            Ok(r) if r.held_back => "held_back",
            Ok(r) if r.generation != before => "applied",
            Ok(_) => "unchanged",
            Err(_) => "failed",
        };
        self.metrics
            .syncs
            .inc(&[("connector", name), ("outcome", outcome)]);
        self.metrics.sync_seconds.observe(started.elapsed());
        match &result {
            Ok(r) if r.held_back => tracing::warn!(
                connector = name,
                removals = r.counts.removed,
                "sync held back by the deletion guard; check the upstream, then apply with force"
            ),
            Ok(r) => tracing::info!(
                connector = name,
                dry_run = r.dry_run,
                created = r.counts.created,
                updated = r.counts.updated,
                removed = r.counts.removed,
                unchanged = r.counts.unchanged,
                ms = r.duration_ms,
                "sync finished"
            ),
            Err(e) => {
                tracing::warn!(connector = name, error = %e, "sync failed; still serving the last good phone book")
            }
        }
        if let Ok(report) = &result {
            if report.generation != before {
                if let Err(e) = self.refresh().await {
                    tracing::error!(connector = name, error = %e, "cannot rebuild the directory; still serving the previous one");
                }
            }
        }
        result
    }

    /// Rebuilds the snapshot from the store (off the async threads) and publishes it if it
    /// is newer than the one being served.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let (store, settings) = (self.store.clone(), self.settings.clone());
        let built = tokio::task::spawn_blocking(move || load_snapshot(&store, &settings))
            .await
            .map_err(|e| StoreError::Io {
                path: String::new(),
                cause: e.to_string(),
            })??;
        self.directory.publish_if_newer(built);
        Ok(())
    }

    /// Runs one connector's schedule until `shutdown` turns true: a sync at start, then one
    /// per interval.
    pub async fn schedule(self: Arc<Self>, connector: String, mut shutdown: watch::Receiver<bool>) {
        let Ok((config, gate)) = self.connector(&connector) else {
            return;
        };
        loop {
            let run = async {
                let _running = gate.lock().await;
                let _ = self.sync(config, SyncOptions::default()).await;
            };
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = run => {}
            }
            let interval = match &config.schedule {
                Some(Schedule::Every(interval)) => *interval,
                // Cron timing is not implemented yet: a cron connector syncs once at start.
                _ => return,
            };
            self.set_next_run(&connector, interval);
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    fn set_next_run(&self, connector: &str, after: Duration) {
        if let Ok(mut next) = self.next_runs.lock() {
            next.insert(connector.to_owned(), SystemTime::now() + after);
        }
    }

    /// The outcome label of a stored run, for status.
    pub fn outcome_label(outcome: Outcome) -> &'static str {
        match outcome {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::HeldBack => "held_back",
            Outcome::Failed => "failed",
        }
    }
}
