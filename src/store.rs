//! The store: the durable phone book in sled, and the record of each connector's last run.
//!
//! The only module that touches sled. Each connector's entries (its "book") are stored in
//! chunks of [`CHUNK`] entries, replaced whole by an applied sync: one `apply_batch` writes
//! the chunks, the generation and the run record — sled makes that atomic, so a crash or a
//! kill leaves the old or the new phone book, never a mix — followed by a flush, so an
//! acknowledged sync survives a power cut. Chunks rather than one value per entry keep a
//! 100k-entry import to a hundred writes instead of 100k tree inserts (about 30× faster
//! here); chunks rather than one value per book keep every value small enough for sled's
//! page cache to evict (one 40 MB value per sync stayed resident, sync after sync).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::Entry;
use crate::sync::plan::ChangeSet;

/// Key prefixes inside the one tree: `b\0<connector>\0<chunk, u32 BE>` holds a connector's
/// entries, `n\0<connector>` its number of chunks.
const BOOK: &[u8] = b"b\0";
const CHUNKS: &[u8] = b"n\0";

/// Entries per stored value (a few hundred KB of JSON).
const CHUNK: usize = 1000;
const RUN: &[u8] = b"r\0";
const GENERATION: &[u8] = b"generation";

/// sled's page cache. Books are read whole and rarely (at start, at each sync), so a large
/// cache only grows the resident set (sled's default is 1 GiB); the served data lives in the
/// directory snapshot anyway.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {path} is in use by another phonebook-proxy process (stop it, or use its HTTP API)")]
    Locked { path: String },
    #[error("store {path}: {cause}")]
    Io { path: String, cause: String },
    #[error("store: a stored record is damaged ({0})")]
    Corrupt(String),
}

/// How a sync ended, as recorded for status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Changes were written.
    Applied,
    /// The upstream matched the store; nothing was written.
    Unchanged,
    /// The deletion guard held the changes back.
    HeldBack,
    /// The pull or the apply failed; the store kept its previous state.
    Failed,
}

/// The counts of one run, as `sync --json` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub fetched: usize,
    pub filtered_out: usize,
    pub invalid: usize,
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// The last run of a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Seconds since the Unix epoch at which the run finished.
    pub finished_at: u64,
    pub duration_ms: u64,
    pub outcome: Outcome,
    pub counts: Counts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The opened store. Clones share one database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: String,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Io {
                path: shown.clone(),
                cause: e.to_string(),
            })?;
        }
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    StoreError::Locked {
                        path: shown.clone(),
                    }
                }
                other => StoreError::Io {
                    path: shown.clone(),
                    cause: other.to_string(),
                },
            })?;
        Ok(Store { db, path: shown })
    }

    fn io(&self, e: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            cause: e.to_string(),
        }
    }

    /// Bumped by every applied change: the version of the phone book.
    pub fn generation(&self) -> Result<u64, StoreError> {
        Ok(self
            .db
            .get(GENERATION)
            .map_err(|e| self.io(e))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// One connector's entries, by id.
    pub fn entries_of(&self, connector: &str) -> Result<HashMap<String, Entry>, StoreError> {
        let mut entries = HashMap::new();
        for kv in self.db.scan_prefix(book_prefix(connector)) {
            let (_, v) = kv.map_err(|e| self.io(e))?;
            entries.extend(decode_chunk(&v)?.into_iter().map(|e| (e.id.clone(), e)));
        }
        Ok(entries)
    }

    /// Every stored entry, grouped by connector.
    pub fn all_entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut all = Vec::new();
        for kv in self.db.scan_prefix(BOOK) {
            let (_, v) = kv.map_err(|e| self.io(e))?;
            all.extend(decode_chunk(&v)?);
        }
        Ok(all)
    }

    /// Applies a change set of `connector` and records `run`, atomically and durably.
    /// Returns the new generation. An empty change set writes only the run record.
    pub fn apply(
        &self,
        connector: &str,
        changes: &ChangeSet,
        run: &RunRecord,
    ) -> Result<u64, StoreError> {
        if changes.is_empty() {
            self.record_run(connector, run)?;
            return self.generation();
        }
        let generation = self.generation()? + 1;
        let mut entries: Vec<&Entry> = changes.resulting_entries().collect();
        entries.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        debug_assert!(entries.iter().all(|e| e.connector == connector));
        let old_chunks = self
            .db
            .get(chunks_key(connector))
            .map_err(|e| self.io(e))?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map_or(0, u32::from_be_bytes);
        let mut batch = sled::Batch::default();
        let mut chunks = 0u32;
        for chunk in entries.chunks(CHUNK) {
            let value =
                serde_json::to_vec(chunk).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            batch.insert(chunk_key(connector, chunks), value);
            chunks += 1;
        }
        for stale in chunks..old_chunks {
            batch.remove(chunk_key(connector, stale));
        }
        batch.insert(chunks_key(connector), &chunks.to_be_bytes());
        batch.insert(GENERATION, &generation.to_be_bytes());
        batch.insert(run_key(connector), encode_run(run)?);
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(generation)
    }

    /// Records the outcome of a run that changed no entries (failed, held back, unchanged).
    pub fn record_run(&self, connector: &str, run: &RunRecord) -> Result<(), StoreError> {
        self.db
            .insert(run_key(connector), encode_run(run)?)
            .map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(())
    }

    /// The last recorded run of each connector.
    pub fn last_runs(&self) -> Result<HashMap<String, RunRecord>, StoreError> {
        self.db
            .scan_prefix(RUN)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.io(e))?;
                let name = String::from_utf8_lossy(&k[RUN.len()..]).into_owned();
                let run =
                    serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((name, run))
            })
            .collect()
    }
}

fn book_prefix(connector: &str) -> Vec<u8> {
    [BOOK, connector.as_bytes(), b"\0"].concat()
}

fn chunk_key(connector: &str, chunk: u32) -> Vec<u8> {
    [book_prefix(connector).as_slice(), &chunk.to_be_bytes()].concat()
}

fn chunks_key(connector: &str) -> Vec<u8> {
    [CHUNKS, connector.as_bytes()].concat()
}

fn decode_chunk(bytes: &[u8]) -> Result<Vec<Entry>, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn run_key(connector: &str) -> Vec<u8> {
    [RUN, connector.as_bytes()].concat()
}

fn encode_run(run: &RunRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(run).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: Outcome) -> RunRecord {
        RunRecord {
            finished_at: 1,
            duration_ms: 2,
            outcome,
            counts: Counts::default(),
            error: None,
        }
    }

    #[test]
    fn apply_writes_entries_and_bumps_the_generation_once_per_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        assert_eq!(store.generation().unwrap(), 0);
        let anna = Entry::new("corp", "1", "Anna");
        let set = ChangeSet {
            create: vec![anna.clone(), Entry::new("corp", "2", "Bert")],
            ..Default::default()
        };
        assert_eq!(
            store.apply("corp", &set, &run(Outcome::Applied)).unwrap(),
            1
        );
        let other = ChangeSet {
            create: vec![Entry::new("hr", "1", "Hanna")],
            ..Default::default()
        };
        assert_eq!(
            store.apply("hr", &other, &run(Outcome::Applied)).unwrap(),
            2
        );

        let corp = store.entries_of("corp").unwrap();
        assert_eq!(
            corp.len(),
            2,
            "connector ranges do not bleed into each other"
        );
        assert_eq!(corp["1"], anna);
        assert_eq!(store.all_entries().unwrap().len(), 3);

        let none = ChangeSet {
            unchanged: 2,
            ..Default::default()
        };
        assert_eq!(
            store
                .apply("corp", &none, &run(Outcome::Unchanged))
                .unwrap(),
            2,
            "no change, no new generation"
        );
        let stored = store.entries_of("corp").unwrap();
        let bert = stored["2"].clone();
        let remove = crate::sync::plan::plan(stored, vec![bert], crate::config::Mode::Mirror);
        assert_eq!(remove.remove, [anna]);
        assert_eq!(
            store
                .apply("corp", &remove, &run(Outcome::Applied))
                .unwrap(),
            3
        );
        assert_eq!(store.entries_of("corp").unwrap().len(), 1);
        assert_eq!(store.entries_of("hr").unwrap().len(), 1);
        assert_eq!(store.last_runs().unwrap()["corp"].outcome, Outcome::Applied);
    }

    #[test]
    fn large_books_span_chunks_and_shrinking_drops_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let people = |n: usize| {
            (0..n)
                .map(|i| Entry::new("corp", &format!("{i:05}"), "P"))
                .collect::<Vec<_>>()
        };
        let set = ChangeSet {
            create: people(2 * CHUNK + 500),
            ..Default::default()
        };
        store.apply("corp", &set, &run(Outcome::Applied)).unwrap();
        assert_eq!(store.entries_of("corp").unwrap().len(), 2 * CHUNK + 500);
        let stored = store.entries_of("corp").unwrap();
        let smaller =
            crate::sync::plan::plan(stored, people(CHUNK + 1), crate::config::Mode::Mirror);
        store
            .apply("corp", &smaller, &run(Outcome::Applied))
            .unwrap();
        assert_eq!(
            store.all_entries().unwrap().len(),
            CHUNK + 1,
            "no stale chunk is read back"
        );
        assert_eq!(store.db.scan_prefix(book_prefix("corp")).count(), 2);
    }

    #[test]
    fn the_store_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = Store::open(&path).unwrap();
            let set = ChangeSet {
                create: vec![Entry::new("corp", "1", "Anna")],
                ..Default::default()
            };
            store.apply("corp", &set, &run(Outcome::Applied)).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.generation().unwrap(), 1);
        assert_eq!(store.all_entries().unwrap()[0].display_name, "Anna");
    }
}
