//! Scheduled imports inside `serve`: one task per scheduled connector runs its sync at start
//! and then on its interval, and publishes a new directory snapshot after each applied change.
//!
//! A failed run only logs and records its error (the store keeps the last good book); a run
//! never overlaps another of the same connector because each connector has exactly one task.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{ConnectorConfig, Schedule};
use crate::directory::{Directory, Settings, Snapshot};
use crate::numbers::NumberPlan;
use crate::store::{Store, StoreError};
use crate::sync::{self, SyncOptions};

/// Builds the snapshot of everything the store holds.
pub fn load_snapshot(store: &Store, settings: &Settings) -> Result<Snapshot, StoreError> {
    let generation = store.generation()?;
    Ok(Snapshot::build(
        store.all_entries()?,
        generation,
        settings.clone(),
    ))
}

/// Rebuilds the snapshot from the store (off the async threads) and publishes it if it is
/// newer than the one being served.
pub async fn refresh(
    store: &Store,
    directory: &Directory,
    settings: &Settings,
) -> Result<(), StoreError> {
    let (store, settings) = (store.clone(), settings.clone());
    let built = tokio::task::spawn_blocking(move || load_snapshot(&store, &settings))
        .await
        .map_err(|e| StoreError::Io {
            path: String::new(),
            cause: e.to_string(),
        })??;
    directory.publish_if_newer(built);
    Ok(())
}

/// Runs one connector's schedule until `shutdown` turns true.
pub async fn run(
    connector: ConnectorConfig,
    numbers: NumberPlan,
    store: Store,
    directory: Arc<Directory>,
    settings: Settings,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = connector.name.clone();
    loop {
        let before = directory.load().generation();
        let run = sync::run(
            &connector,
            &numbers,
            &store,
            SyncOptions::default(),
            &|_| {},
        );
        let result = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            result = run => result,
        };
        match result {
            Ok(report) if report.held_back => {
                tracing::warn!(connector = %name, removals = report.counts.removed, "sync held back by the deletion guard; apply it with `sync --force` or the API");
            }
            Ok(report) => {
                tracing::info!(connector = %name, created = report.counts.created, updated = report.counts.updated,
                    removed = report.counts.removed, unchanged = report.counts.unchanged, ms = report.duration_ms, "sync finished");
                if report.generation != before {
                    if let Err(e) = refresh(&store, &directory, &settings).await {
                        tracing::error!(connector = %name, error = %e, "cannot rebuild the directory; still serving the previous one");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(connector = %name, error = %e, "sync failed; still serving the last good phone book")
            }
        }
        let Some(Schedule::Every(interval)) = &connector.schedule else {
            // Cron schedules run their first sync at start; cron timing is not implemented yet.
            return;
        };
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep(*interval) => {}
        }
    }
}
