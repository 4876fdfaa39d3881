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

use crate::config::Config;
use crate::directory::{Directory, Settings, Snapshot};
use crate::metrics::Metrics;
use crate::runs::Outcome;
use crate::store::{Store, StoreError};
use crate::sync::connector::{ConnectorConfig, Schedule};
use crate::sync::{self, SyncError, SyncOptions, SyncReport};

/// Builds the snapshot of what the store holds for the configured `connectors`. A connector
/// removed from the configuration stops being served; its book stays in the store, so adding
/// it back (same name) brings its entries back.
pub fn load_snapshot(
    store: &Store,
    settings: &Settings,
    connectors: &[String],
) -> Result<Snapshot, StoreError> {
    let generation = store.generation()?;
    let mut entries = store.all_entries()?;
    entries.retain(|e| connectors.contains(&e.connector));
    for e in &mut entries {
        settings.numbers.renumber(e);
    }
    Ok(Snapshot::build(entries, generation, settings.clone()))
}

/// The per-connector sync locks, by connector name, created on first use.
#[derive(Default)]
pub struct Gates {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Gates {
    pub fn get(&self, connector: &str) -> Arc<tokio::sync::Mutex<()>> {
        // A panic while the map was locked leaves it whole (an insert either happened or not),
        // so a poisoned map is used as it is: handing out a fresh lock instead would let two
        // syncs of one connector overlap.
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(connector.to_owned()).or_default().clone()
    }
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
    /// One lock per connector, held for the whole of a sync; shared with the runners of
    /// earlier and later configurations, so a reload cannot start a second sync beside one
    /// still running.
    gates: Arc<Gates>,
    next_runs: Mutex<HashMap<String, SystemTime>>,
}

impl Runner {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        directory: Arc<Directory>,
        metrics: Arc<Metrics>,
        gates: Arc<Gates>,
    ) -> Self {
        let settings = config.directory_settings();
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

    pub fn settings(&self) -> &Settings {
        &self.settings
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
        self.gates.get(connector).try_lock().is_err()
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
    ) -> Result<(&ConnectorConfig, Arc<tokio::sync::Mutex<()>>), TriggerError> {
        match self.config.connector(name) {
            Some(c) => Ok((c, self.gates.get(name))),
            None => Err(TriggerError::UnknownConnector(name.to_owned())),
        }
    }

    /// One run of `connector` against this runner's store and number plan.
    async fn run(
        &self,
        connector: &ConnectorConfig,
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        sync::run(
            connector,
            &self.config.numbers,
            &self.store,
            options,
            &|_| {},
        )
        .await
    }

    /// "Test connection" for a connector that may not be saved: what its upstream answers
    /// (bind, base, filter, pre-filter), without the store. Numbers under `numbers`, the plan
    /// of the configuration the profile was checked in.
    pub async fn probe(
        &self,
        connector: &ConnectorConfig,
        numbers: &crate::numbers::NumberPlan,
    ) -> Result<sync::Probe, SyncError> {
        sync::probe(connector, numbers).await
    }

    /// A dry run of a profile that need not be saved yet (the admin page's Test button):
    /// against the store, writing nothing.
    pub async fn test(&self, connector: &ConnectorConfig) -> Result<SyncReport, SyncError> {
        let options = SyncOptions {
            dry_run: true,
            force: false,
        };
        let result = self.run(connector, options).await;
        crate::memory::release_freed();
        result
    }

    /// One sync with its bookkeeping: metrics, logs, and a new snapshot when it changed
    /// the book.
    async fn sync(
        &self,
        connector: &ConnectorConfig,
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        // What is served, not a store read: the store may be the thing that is failing, and
        // a change a timed-out write made after all is then published by the next sync.
        let before = self.directory.load().generation();
        let result = self.run(connector, options).await;
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
        // What the pull, the mapping and the compare allocated is free now.
        crate::memory::release_freed();
        result
    }

    /// Rebuilds the snapshot from the store (off the async threads) and publishes it if it
    /// is newer than the one being served.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let built = self.build().await?;
        self.directory.publish_if_newer(built);
        Ok(())
    }

    /// Rebuilds and publishes the snapshot even at the same generation: the settings that
    /// shape it (base DN, folding, number plan) may have changed.
    pub async fn republish(&self) -> Result<(), StoreError> {
        let built = self.build().await?;
        // A new connector's first sync may have published while the store was read.
        self.directory.publish_unless_older(built);
        Ok(())
    }

    async fn build(&self) -> Result<Snapshot, StoreError> {
        let (store, settings) = (self.store.clone(), self.settings.clone());
        let names: Vec<String> = self
            .config
            .connectors
            .iter()
            .map(|c| c.name.clone())
            .collect();
        tokio::task::spawn_blocking(move || load_snapshot(&store, &settings, &names))
            .await
            .map_err(|e| StoreError::Io {
                path: String::new(),
                cause: e.to_string(),
            })?
    }

    /// Runs one connector's schedule until `shutdown` turns true: a sync at start, then one
    /// whenever the schedule says, retrying failures sooner with a bounded backoff.
    /// `now`: sync at once (a new server, a new connector) or first after one period (a
    /// connector that was already scheduled before a reload keeps its pace).
    pub async fn schedule(
        self: Arc<Self>,
        connector: String,
        shutdown: watch::Receiver<bool>,
        now: bool,
    ) {
        let Ok((config, gate)) = self.connector(&connector) else {
            return;
        };
        let Some(schedule) = config.schedule.clone() else {
            return;
        };
        let sync = || async {
            let _running = gate.lock().await;
            // Retrying helps a failed pull, not a sync the deletion guard held back.
            self.sync(config, SyncOptions::default()).await.is_ok()
        };
        let next = |at: SystemTime| {
            if let Ok(mut next) = self.next_runs.lock() {
                next.insert(connector.clone(), at);
            }
        };
        repeat(&schedule, sync, next, shutdown, now).await;
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

/// The first retry of a failed sync comes after this; each further failure doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(30);
/// Retries never wait longer than this (nor longer than the schedule itself).
const MAX_RETRY: Duration = Duration::from_secs(15 * 60);

/// How long after a run the next one is due: the schedule's next slot, or sooner after
/// `failures` consecutive failures (30 s, 1 min, 2 min, … at most 15 min).
pub fn next_delay(
    schedule: &Schedule,
    now: chrono::DateTime<chrono::Utc>,
    failures: u32,
) -> Duration {
    let regular = match schedule {
        Schedule::Every(interval) => *interval,
        Schedule::Cron(cron) => cron
            .next_after(now)
            .and_then(|at| (at - now).to_std().ok())
            // An expression with no future time (a past year) never runs again.
            .unwrap_or(Duration::MAX),
    };
    if failures == 0 {
        return regular;
    }
    let retry = FIRST_RETRY
        .saturating_mul(1 << (failures - 1).min(16))
        .min(MAX_RETRY);
    regular.min(retry)
}

/// Runs `sync` (at once when `now`, else first when the schedule says) and then as `schedule`
/// says until `shutdown`; `sync` tells whether it succeeded, `on_next` is told when the next
/// run is due.
pub async fn repeat<F, Fut>(
    schedule: &Schedule,
    mut sync: F,
    mut on_next: impl FnMut(SystemTime),
    mut shutdown: watch::Receiver<bool>,
    now: bool,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut failures = 0u32;
    if !now {
        let delay = next_delay(schedule, chrono::Utc::now(), 0);
        if delay == Duration::MAX {
            return;
        }
        on_next(SystemTime::now() + delay);
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    loop {
        let ok = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            ok = sync() => ok,
        };
        failures = if ok { 0 } else { failures.saturating_add(1) };
        let delay = next_delay(schedule, chrono::Utc::now(), failures);
        if delay == Duration::MAX {
            return;
        }
        if failures > 0 {
            tracing::warn!(
                failures,
                retry_in_s = delay.as_secs(),
                "sync failed; retrying"
            );
        }
        on_next(SystemTime::now() + delay);
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::connector::Cron;
    use chrono::TimeZone;
    use std::sync::Mutex as StdMutex;

    #[test]
    fn a_poisoned_lock_map_still_hands_out_the_one_lock_per_connector() {
        let gates = Arc::new(Gates::default());
        let first = gates.get("corp");
        let poisoner = gates.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.locks.lock().unwrap();
            panic!("a panic while the map is locked");
        })
        .join();
        assert!(gates.locks.is_poisoned());
        let again = gates.get("corp");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same lock, not a fresh one"
        );
        let _running = first.try_lock().unwrap();
        assert!(
            again.try_lock().is_err(),
            "a second sync of the connector waits"
        );
    }

    #[test]
    fn backoff_doubles_and_is_bounded_by_the_schedule_and_a_cap() {
        let hourly = Schedule::Every(Duration::from_secs(3600));
        let now = chrono::Utc::now();
        let delays: Vec<u64> = (0..8)
            .map(|f| next_delay(&hourly, now, f).as_secs())
            .collect();
        assert_eq!(delays, [3600, 30, 60, 120, 240, 480, 900, 900]);
        let short = Schedule::Every(Duration::from_secs(45));
        assert_eq!(
            next_delay(&short, now, 3).as_secs(),
            45,
            "never later than the schedule"
        );
        assert_eq!(next_delay(&hourly, now, u32::MAX).as_secs(), 900);
    }

    #[test]
    fn cron_delays_reach_the_next_slot() {
        let quarter = Schedule::Cron(Box::new(Cron::parse("0 */15 * * * *").unwrap()));
        let at = |h, m, s| chrono::Utc.with_ymd_and_hms(2026, 11, 27, h, m, s).unwrap();
        assert_eq!(
            next_delay(&quarter, at(12, 7, 30), 0).as_secs(),
            7 * 60 + 30
        );
        assert_eq!(next_delay(&quarter, at(12, 15, 0), 0).as_secs(), 15 * 60);
        let five_fields = Schedule::Cron(Box::new(Cron::parse("30 2 * * *").unwrap()));
        assert_eq!(next_delay(&five_fields, at(2, 0, 0), 0).as_secs(), 30 * 60);
        assert!(Cron::parse("61 * * * *").is_err());
        assert!(Cron::parse("* * *").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn repeat_retries_failures_with_backoff_then_keeps_the_interval() {
        let schedule = Schedule::Every(Duration::from_secs(600));
        let (stop, shutdown) = watch::channel(false);
        let start = tokio::time::Instant::now();
        let calls = StdMutex::new(Vec::new());
        let stop = StdMutex::new(Some(stop));
        let sync = || {
            let mut calls = calls.lock().unwrap();
            calls.push(start.elapsed().as_secs());
            let n = calls.len();
            if n == 6 {
                if let Some(stop) = stop.lock().unwrap().take() {
                    let _ = stop.send(true);
                }
            }
            // Fails three times, then works.
            async move { !(2..=4).contains(&n) }
        };
        repeat(&schedule, sync, |_| {}, shutdown, true).await;
        // 0: ok; +600 fails; +30; +60; +120 works; +600.
        assert_eq!(*calls.lock().unwrap(), [0, 600, 630, 690, 810, 1410]);
    }

    #[tokio::test(start_paused = true)]
    async fn repeat_stops_at_once_on_shutdown() {
        let (stop, shutdown) = watch::channel(false);
        let schedule = Schedule::Every(Duration::from_secs(3600));
        let handle = tokio::spawn(async move {
            repeat(&schedule, || async { true }, |_| {}, shutdown, true).await
        });
        tokio::task::yield_now().await;
        stop.send(true).unwrap();
        let waited = tokio::time::Instant::now();
        handle.await.unwrap();
        assert!(
            waited.elapsed() < Duration::from_secs(1),
            "no waiting for the hour to pass"
        );
    }
}
