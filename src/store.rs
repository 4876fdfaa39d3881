//! The store: the durable phone book in sled, and the record of each connector's last run.
//!
//! The only module that touches sled. Each connector's entries (its "book") are stored as one
//! stream of JSON entries cut into pieces of at most [`PIECE`] bytes, replaced whole by an
//! applied sync: one `apply_batch` writes the pieces, the generation and the run record —
//! sled makes that atomic, so a crash or a kill leaves the old or the new phone book, never
//! a mix — followed by a flush, so an acknowledged sync survives a power cut. A hundred
//! thousand entries are about ten thousand pieces rather than 100k tree inserts.
//!
//! **Why pieces this small.** sled 0.34 writes a page (a leaf node with up to a few dozen
//! values, or one large value) bigger than a quarter of its 512 KiB segment as a separate
//! "blob" file, and when writing such a blob fails (a full disk) it returns the error but
//! leaves the log buffer it had claimed with a writer that never leaves: every later flush
//! of that handle, and dropping it, then waits forever, and the handle keeps its file lock,
//! so not even a reopen helps (reproduced on a full tmpfs; `Log::reserve_inner` returns
//! from `encapsulate` with `?` after claiming the buffer). Pieces of a few KiB keep every
//! page far below that threshold, so a full disk fails the ordinary log write instead, which
//! sled reports as a clean, sticky error.
//!
//! **Bounded calls.** sled runs its I/O synchronously in the calling thread, so one thread
//! owns the database and runs every call ([`Worker`]); callers wait for the answer at most
//! `store.write_timeout`. After a sled error the worker drops its handle and exits — sled's
//! error is sticky for the life of a handle — and the next call opens a fresh one, which is
//! how a sync after the disk has room again succeeds without a restart. A call that does not
//! answer in time leaves its worker behind (it may be blocked in the kernel for good): calls
//! then fail at once, and a new worker is started as soon as the old one has let go.
//!
//! **What status reads.** The last run of each connector is kept in memory as well, so a
//! failure that could not be written (the disk is full) is still shown by status.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::limits;
use crate::model::Entry;
use crate::runs::{Health, RunLog, RunRecord};

/// sled's page cache. Books are read whole and rarely (at start, at each sync), so a large
/// cache only grows the resident set (sled's default is 1 GiB); the served data lives in the
/// directory snapshot anyway.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the store {path} is in use by another phonebook-proxy process (stop it, or use its HTTP API)")]
    Locked { path: String },
    #[error("store {path}: {cause}")]
    Io { path: String, cause: String },
    #[error("store: a stored record is damaged ({0}); {REBUILD}")]
    Corrupt(String),
    #[error("store {path} cannot be opened: its files are damaged ({cause}); {REBUILD}")]
    Damaged { path: String, cause: String },
    #[error("store {path}: the disk did not answer within {}s (store.write_timeout); the sync failed and the last good phone book is still served", timeout.as_secs())]
    Timeout { path: String, timeout: Duration },
    #[error("store {path}: an earlier disk operation has not finished after {}s; the last good phone book is still served (check the disk; restart the service if this persists)", since.as_secs())]
    Stuck { path: String, since: Duration },
    #[error("store {path}: closed")]
    Closed { path: String },
    /// Refused before sled was asked to write: sled 0.34 can leave pages it failed to write
    /// unreadable when the disk runs full under it, so it is never let near a full disk.
    #[error("store {path}: no space left on the disk for this write (about {} MB needed, {} MB free); free some and the next sync retries — the last good phone book is still served", needed / 1_000_000, free / 1_000_000)]
    DiskFull {
        path: String,
        needed: u64,
        free: u64,
    },
}

/// What to do about a damaged store: the upstreams hold the truth, so the book can be read
/// again from them.
const REBUILD: &str = "the phone book can be rebuilt from the upstreams: stop the service, move the store directory (store.path) aside, start it again and run a sync of every connector";

/// Free space every write leaves untouched beyond its own size (sled's log segments, its
/// snapshot, and whatever else lives on the disk).
const SPACE_RESERVE: u64 = 8 * 1024 * 1024;

/// Checks, on the store thread, that `bytes` can be written — twice over, for sled's log and
/// its later compaction — with [`SPACE_RESERVE`] left.
fn ensure_space(path: &Path, shown: &str, bytes: u64) -> Result<(), StoreError> {
    let needed = bytes.saturating_mul(2).saturating_add(SPACE_RESERVE);
    match fs2::available_space(path) {
        Ok(free) if free < needed => Err(StoreError::DiskFull {
            path: shown.to_owned(),
            needed,
            free,
        }),
        // A file system that cannot say is left to sled's own error.
        _ => Ok(()),
    }
}

impl StoreError {
    /// Errors after which the sled handle must not be used again.
    fn poisons_the_handle(&self) -> bool {
        matches!(self, StoreError::Io { .. })
    }
}
/// The opened store. Clones share one database (and one worker thread).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    shown: String,
    /// The most any call may take, `store.write_timeout`.
    timeout: Duration,
    worker: Mutex<Option<Worker>>,
    closed: AtomicBool,
    /// The run history of each connector, as written or as it failed to be written.
    logs: Mutex<HashMap<String, RunLog>>,
}

/// A call to run on the worker thread; answers whether the handle is still sound.
type Job = Box<dyn FnOnce(&sled::Db) -> bool + Send>;

/// The thread that owns one sled handle.
struct Worker {
    /// `None` once the worker is left behind or closed: it then finishes what it runs,
    /// drops its handle and exits.
    jobs: Option<mpsc::Sender<Job>>,
    /// Set by the thread after it dropped its handle.
    done: Arc<AtomicBool>,
    /// Disconnected when the thread ends.
    exited: mpsc::Receiver<()>,
    /// When a caller stopped waiting for it.
    abandoned_at: Option<Instant>,
}

impl Worker {
    fn has_exited(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn abandon(&mut self) {
        self.jobs = None;
        self.abandoned_at.get_or_insert_with(Instant::now);
    }
}

/// A lock that a panic elsewhere does not make unusable: the data behind these locks is
/// replaced whole, never left half-changed.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store {
    /// Opens (or creates) the store at `path`, each call bounded by [`limits::STORE_TIMEOUT`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with_timeout(path, limits::STORE_TIMEOUT)
    }

    /// Opens (or creates) the store at `path`; every later call fails after `timeout`
    /// instead of waiting for the disk any longer.
    pub fn open_with_timeout(path: &Path, timeout: Duration) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Io {
                path: shown.clone(),
                cause: e.to_string(),
            })?;
        }
        let store = Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                shown,
                timeout,
                worker: Mutex::new(None),
                closed: AtomicBool::new(false),
                logs: Mutex::new(HashMap::new()),
            }),
        };
        let shown = store.inner.shown.clone();
        let logs = store.call(move |db| read_logs(db, &shown))?;
        *lock(&store.inner.logs) = logs;
        Ok(store)
    }

    /// Runs `f` with the sled handle on the worker thread and waits for its answer at most
    /// the store's timeout.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&sled::Db) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let deadline = Instant::now() + self.inner.timeout;
        let (answer, answered) = mpsc::sync_channel(1);
        let (dir, shown) = (self.inner.path.clone(), self.inner.shown.clone());
        let job: Job = Box::new(move |db| {
            // A call whose caller has given up is not run late: it could otherwise apply a
            // sync that was already reported as failed.
            if Instant::now() >= deadline {
                return true;
            }
            // sled is not touched on a (nearly) full disk at all: even a read can make it
            // consolidate pages, and a write that meets the full disk can wedge the handle.
            let result = ensure_space(&dir, &shown, 0).and_then(|()| f(db));
            let sound = !matches!(&result, Err(e) if e.poisons_the_handle());
            let _ = answer.send(result);
            sound
        });
        let mut slot = lock(&self.inner.worker);
        self.ready_worker(&mut slot, deadline)?;
        let sent = slot
            .as_ref()
            .and_then(|w| w.jobs.as_ref())
            .map(|jobs| jobs.send(job));
        match sent {
            Some(Ok(())) => {}
            // The worker ended between the check and the send (after an error).
            _ => {
                *slot = None;
                return Err(self.io("the store thread ended; the next call reopens the store"));
            }
        }
        drop(slot);
        match answered.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(w) = lock(&self.inner.worker).as_mut() {
                    w.abandon();
                }
                tracing::error!(store = %self.inner.shown, timeout_s = self.inner.timeout.as_secs(), "a store operation did not finish in time; leaving it behind");
                Err(StoreError::Timeout {
                    path: self.inner.shown.clone(),
                    timeout: self.inner.timeout,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(StoreError::Timeout {
                path: self.inner.shown.clone(),
                timeout: self.inner.timeout,
            }),
        }
    }

    /// Makes sure `slot` holds a worker that takes calls: keeps a sound one, replaces one that
    /// ended (after a sled error: a fresh handle clears sled's sticky error), refuses while a
    /// left-behind one still holds the handle (and with it sled's file lock).
    fn ready_worker(&self, slot: &mut Option<Worker>, deadline: Instant) -> Result<(), StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed {
                path: self.inner.shown.clone(),
            });
        }
        if let Some(w) = slot.as_ref() {
            match (w.has_exited(), w.abandoned_at) {
                (false, None) => return Ok(()),
                (false, Some(at)) => {
                    return Err(StoreError::Stuck {
                        path: self.inner.shown.clone(),
                        since: at.elapsed(),
                    })
                }
                (true, abandoned) => {
                    if abandoned.is_some() {
                        tracing::info!(store = %self.inner.shown, "the stuck store operation finished; reopening the store");
                    }
                    *slot = None;
                }
            }
        }
        let (ready, is_ready) = mpsc::sync_channel(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let (exit, exited) = mpsc::channel::<()>();
        let done = Arc::new(AtomicBool::new(false));
        let (path, shown, finished) = (
            self.inner.path.clone(),
            self.inner.shown.clone(),
            done.clone(),
        );
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                let _exit = exit;
                match open_db(&path, &shown) {
                    Ok(db) => {
                        let _ = ready.send(Ok(()));
                        while let Ok(job) = queue.recv() {
                            if !job(&db) {
                                tracing::warn!(store = %shown, "closing the store handle after a disk error; the next operation reopens it");
                                break;
                            }
                        }
                        // After sled's sticky error this flush fails at once.
                        drop(db);
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
                finished.store(true, Ordering::Release);
            })
            .map_err(|e| self.io(format!("cannot start the store thread ({e})")))?;
        let mut worker = Worker {
            jobs: Some(jobs),
            done,
            exited,
            abandoned_at: None,
        };
        match is_ready.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(())) => {
                *slot = Some(worker);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                worker.abandon();
                *slot = Some(worker);
                Err(StoreError::Timeout {
                    path: self.inner.shown.clone(),
                    timeout: self.inner.timeout,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(self.io("the store thread ended while opening the store"))
            }
        }
    }

    /// Closes the store: no further calls; waits at most `bound` for the worker to finish
    /// its call and release the database. False when it did not (the disk is stuck): the
    /// process may then exit anyway — everything a sync acknowledged was flushed already.
    pub fn close(&self, bound: Duration) -> bool {
        self.inner.closed.store(true, Ordering::Release);
        let worker = lock(&self.inner.worker).take();
        match worker {
            None => true,
            Some(mut w) => {
                w.jobs = None;
                w.has_exited()
                    || matches!(
                        w.exited.recv_timeout(bound),
                        Err(mpsc::RecvTimeoutError::Disconnected)
                    )
            }
        }
    }

    /// Runs the blocking `f` on a blocking thread, for async callers: no store call ever
    /// waits on a runtime worker, so searches and HTTP keep answering whatever the disk does.
    pub async fn off_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| store_thread_lost(&self.inner.shown, e))?
    }

    fn io(&self, cause: impl ToString) -> StoreError {
        StoreError::Io {
            path: self.inner.shown.clone(),
            cause: cause.to_string(),
        }
    }

    /// Bumped by every applied change: the version of the phone book.
    pub fn generation(&self) -> Result<u64, StoreError> {
        let shown = self.inner.shown.clone();
        self.call(move |db| read_generation(db, &shown))
    }

    /// One connector's entries, by id.
    pub fn entries_of(&self, connector: &str) -> Result<HashMap<String, Entry>, StoreError> {
        let (shown, prefix) = (self.inner.shown.clone(), book_prefix(connector));
        let entries = self.call(move |db| read_book(db, &prefix, &shown))?;
        Ok(entries.into_iter().map(|e| (e.id.clone(), e)).collect())
    }

    /// Every stored entry, grouped by connector.
    pub fn all_entries(&self) -> Result<Vec<Entry>, StoreError> {
        let shown = self.inner.shown.clone();
        self.call(move |db| read_book(db, BOOK, &shown))
    }

    /// Makes sure a write starts on a sound handle. sled keeps the first write error of a
    /// handle — its own background flusher may have met the full disk — and fails every
    /// later write with it, even after space returns; so a flush of nothing comes first, and
    /// when it fails the handle is replaced (the next call reopens the store) and tried once
    /// more.
    ///
    /// Never with the disk full: [`Store::call`] checks the space first, since a flush that
    /// meets a full disk can wait forever in sled.
    fn sound(&self) -> Result<(), StoreError> {
        let attempt = || {
            let shown = self.inner.shown.clone();
            self.call(move |db| db.flush().map(|_| ()).map_err(|e| sled_error(&shown, e)))
        };
        match attempt() {
            Err(e) if e.poisons_the_handle() => attempt(),
            other => other,
        }
    }

    /// Replaces `connector`'s book with `book` and records `run`, atomically and durably.
    /// Returns the new generation. `None` (a sync that changed nothing) writes only the run
    /// record.
    pub fn apply(
        &self,
        connector: &str,
        book: Option<Vec<&Entry>>,
        run: &RunRecord,
    ) -> Result<u64, StoreError> {
        let Some(mut entries) = book else {
            self.record_run(connector, run)?;
            return self.generation();
        };
        entries.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        debug_assert!(entries.iter().all(|e| e.connector == connector));
        let pieces = encode_book(&entries)?;
        // Into the history only once written: a failed apply is recorded as the failure.
        let (seq, dropped, health) = {
            let logs = lock(&self.inner.logs);
            let mut log = logs.get(connector).cloned().unwrap_or_default();
            let (seq, dropped) = log.push(run.clone());
            (seq, dropped, log.health)
        };
        let record = RunWrite::new(connector, run, seq, dropped, health)?;
        let (name, shown) = (connector.to_owned(), self.inner.shown.clone());
        let dir = self.inner.path.clone();
        let bytes: u64 = pieces.iter().map(|p| p.len() as u64).sum();
        self.sound()?;
        let generation = self.call(move |db| {
            ensure_space(&dir, &shown, bytes)?;
            let io = |e: sled::Error| sled_error(&shown, e);
            let generation = read_generation(db, &shown)? + 1;
            let old_pieces = db
                .get(chunks_key(&name))
                .map_err(io)?
                .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
                .map_or(0, u32::from_be_bytes);
            let mut batch = sled::Batch::default();
            let mut count = 0u32;
            for piece in pieces {
                batch.insert(chunk_key(&name, count), piece);
                count += 1;
            }
            for stale in count..old_pieces {
                batch.remove(chunk_key(&name, stale));
            }
            batch.insert(chunks_key(&name), &count.to_be_bytes());
            batch.insert(GENERATION, &generation.to_be_bytes());
            record.into_batch(&mut batch);
            db.apply_batch(batch).map_err(io)?;
            db.flush().map_err(io)?;
            Ok(generation)
        })?;
        lock(&self.inner.logs)
            .entry(connector.to_owned())
            .or_default()
            .push(run.clone());
        Ok(generation)
    }

    /// Records the outcome of a run that changed no entries (failed, held back, unchanged).
    /// Status shows it even when it cannot be written.
    pub fn record_run(&self, connector: &str, run: &RunRecord) -> Result<(), StoreError> {
        let (seq, dropped, health) = {
            let mut logs = lock(&self.inner.logs);
            let log = logs.entry(connector.to_owned()).or_default();
            let (seq, dropped) = log.push(run.clone());
            (seq, dropped, log.health)
        };
        let record = RunWrite::new(connector, run, seq, dropped, health)?;
        let shown = self.inner.shown.clone();
        self.sound()?;
        let dir = self.inner.path.clone();
        self.call(move |db| {
            ensure_space(&dir, &shown, record.bytes())?;
            let io = |e: sled::Error| sled_error(&shown, e);
            let mut batch = sled::Batch::default();
            record.into_batch(&mut batch);
            db.apply_batch(batch).map_err(io)?;
            db.flush().map_err(io)?;
            Ok(())
        })
    }

    /// The run history of `connector`, newest first (kept in memory: answers whatever the
    /// disk does), and its health.
    pub fn runs(&self, connector: &str) -> (Vec<RunRecord>, Health) {
        lock(&self.inner.logs).get(connector).map_or_else(
            || (Vec::new(), Health::default()),
            |log| (log.newest_first().cloned().collect(), log.health),
        )
    }

    /// The health of every connector that has run.
    pub fn health(&self) -> HashMap<String, Health> {
        lock(&self.inner.logs)
            .iter()
            .map(|(name, log)| (name.clone(), log.health))
            .collect()
    }

    /// The last run of each connector (kept in memory: answers whatever the disk does).
    pub fn last_runs(&self) -> Result<HashMap<String, RunRecord>, StoreError> {
        Ok(lock(&self.inner.logs)
            .iter()
            .filter_map(|(name, log)| Some((name.clone(), log.last()?.clone())))
            .collect())
    }
}

/// The keys one run writes: its history entry, the health after it, and the removal of the
/// entry that fell out of the history.
struct RunWrite {
    key: Vec<u8>,
    value: Vec<u8>,
    health_key: Vec<u8>,
    health: Vec<u8>,
    dropped: Option<Vec<u8>>,
}

impl RunWrite {
    fn new(
        connector: &str,
        run: &RunRecord,
        seq: u64,
        dropped: Option<u64>,
        health: Health,
    ) -> Result<RunWrite, StoreError> {
        Ok(RunWrite {
            key: history_key(connector, seq),
            value: encode(run)?,
            health_key: [HEALTH, connector.as_bytes()].concat(),
            health: encode(&health)?,
            dropped: dropped.map(|seq| history_key(connector, seq)),
        })
    }

    fn bytes(&self) -> u64 {
        (self.key.len() + self.value.len() + self.health_key.len() + self.health.len()) as u64
    }

    fn into_batch(self, batch: &mut sled::Batch) {
        batch.insert(self.key, self.value);
        batch.insert(self.health_key, self.health);
        if let Some(old) = self.dropped {
            batch.remove(old);
        }
    }
}

impl Drop for Inner {
    /// The last clone gone: the worker finishes, flushes and releases the database, so the
    /// same process can open it again — waited for no longer than a call may take.
    fn drop(&mut self) {
        if let Some(mut w) = self.worker.get_mut().ok().and_then(Option::take) {
            w.jobs = None;
            // A worker left behind is stuck on the disk: waiting for it would not help.
            if !w.has_exited() && w.abandoned_at.is_none() {
                let _ = w.exited.recv_timeout(self.timeout);
            }
        }
    }
}

fn store_thread_lost(path: &str, e: tokio::task::JoinError) -> StoreError {
    StoreError::Io {
        path: path.to_owned(),
        cause: format!("the store call was lost ({e})"),
    }
}

/// How long an open waits for a lock held by this process's own previous handle.
const LOCK_GRACE: Duration = Duration::from_secs(2);

/// Opens the database. sled releases its file lock from background threads a moment after
/// the last handle is dropped, so a reopen right after a close (after a sled error, or a
/// restart inside one process) can meet the lock of its own previous handle: that is
/// waited out for at most [`LOCK_GRACE`]; another process's lock is reported after it.
fn open_db(path: &Path, shown: &str) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + LOCK_GRACE;
    loop {
        match open_db_once(path, shown) {
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn open_db_once(path: &Path, shown: &str) -> Result<sled::Db, StoreError> {
    sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_BYTES)
        .open()
        .map_err(|e| match e {
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                StoreError::Locked {
                    path: shown.to_owned(),
                }
            }
            sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => StoreError::Damaged {
                path: shown.to_owned(),
                cause: one_line(&e.to_string()),
            },
            other => sled_error(shown, other),
        })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn sled_error(path: &str, e: sled::Error) -> StoreError {
    let cause = match e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
            "no space left on the disk (os error 28); free some and the next sync retries"
                .to_owned()
        }
        // Seen on a full disk: sled reads back a page whose write failed. The handle is
        // reopened for the next call, which recovers from the last durable state.
        sled::Error::Corruption { .. } => "the store could not read back data it was writing (sled: corrupted data), which follows a failed write — typically a full disk; free some and the next sync retries".to_owned(),
        other => other.to_string(),
    };
    StoreError::Io {
        path: path.to_owned(),
        cause,
    }
}

mod layout;

use layout::*;

#[cfg(test)]
mod tests;
