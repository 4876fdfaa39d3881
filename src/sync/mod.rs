//! Sync: one connector's run from upstream to store.
//!
//! source → pre-filter → mapping → plan → deletion guard → store. The pure middle
//! ([`transform`], [`plan::plan`]) is separate from the I/O at both ends so it can be tested
//! and benchmarked on its own, and so a dry run is the same run minus the final write.

pub mod connector;
pub mod content_sync;
pub mod ldif;
pub mod mapping;
pub mod plan;
pub mod prefilter;
pub mod profile;
pub mod raw;
pub mod source;

use std::collections::{BTreeSet, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::model::Entry;
use crate::numbers::NumberPlan;
use crate::runs::{Counts, Outcome, RunRecord};
use crate::store::{Store, StoreError};
use connector::ConnectorConfig;
use mapping::InvalidEntry;
use plan::ChangeSet;
use raw::RawEntry;
use source::SourceError;

/// How a run should behave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Compute and report the changes, write nothing.
    pub dry_run: bool,
    /// Apply even what the deletion guard would hold back, or an empty upstream answer.
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Remove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Remove => "remove",
        }
    }
}

/// One line of a preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: Action,
    pub entry: Entry,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub connector: String,
    pub dry_run: bool,
    pub counts: Counts,
    pub held_back: bool,
    pub duration_ms: u64,
    /// The change list; filled for dry runs.
    pub changes: Vec<Change>,
    /// Upstream entries that could not be mapped, with the reason.
    pub invalid: Vec<InvalidEntry>,
    /// Dry runs: the first [`PREVIEW_MAPPED`] records as they would be served, in display
    /// order — what an operator checks the field mapping against.
    pub mapped: Vec<Entry>,
    /// Dry runs: the first entries the pre-filter dropped, each with the rule that did.
    pub filtered: Vec<InvalidEntry>,
    /// The store's generation after the run.
    pub generation: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the upstream returned {fetched} entries, more than import.max_entries = {limit}; nothing was changed (raise the cap if the directory really is this large)")]
    TooMany { fetched: usize, limit: usize },
    #[error("the upstream returned no entries; nothing was changed (an empty answer is treated as a failure, never as everyone leaving; --force accepts it)")]
    EmptyUpstream,
    #[error("the pre-filter kept none of the {fetched} entries the upstream returned; nothing was changed (check the pre-filter rules, e.g. the group DN a memberOf rule matches; --force accepts an empty book)")]
    AllFilteredOut { fetched: usize },
    #[error("none of the {fetched} entries the upstream returned could be used ({invalid} invalid, {filtered_out} filtered out; the first: {first}); nothing was changed (--force accepts an empty book)")]
    AllInvalid {
        fetched: usize,
        invalid: usize,
        filtered_out: usize,
        first: String,
    },
}

/// The attributes a connector must request: what the mapping, the pre-filter and the id
/// read, and nothing else (operational attributes such as `memberOf` come only when named).
pub fn requested_attributes(connector: &ConnectorConfig) -> Vec<String> {
    let mut names: BTreeSet<&str> = connector.fields.attributes().collect();
    names.extend(connector.prefilter.attributes());
    names.extend(connector.id_attribute.as_deref());
    names.into_iter().map(str::to_owned).collect()
}

/// What `check-config --connect` learns of a connector without touching the store: the
/// upstream answered (bind, base DN, filter) with `fetched` entries, of which the pre-filter
/// kept `fetched - filtered_out` and `invalid` could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub fetched: usize,
    pub filtered_out: usize,
    pub invalid: usize,
}

/// Pulls and transforms what a sync would, and reports the counts; writes nothing. The same
/// failures as a sync (unreachable, bind refused, no such base, over a cap) are errors.
pub async fn probe(connector: &ConnectorConfig, numbers: &NumberPlan) -> Result<Probe, SyncError> {
    let (fetched, t) = pull_and_transform(connector, numbers, &|_| {}).await?;
    Ok(Probe {
        fetched,
        filtered_out: t.filtered_out,
        invalid: t.invalid.len(),
    })
}

/// The pull with pre-filter and mapping applied as entries arrive: how many the upstream
/// sent, and what became of them. More than `import.max_entries` fails as a whole (past the
/// cap nothing more is kept).
async fn pull_and_transform(
    connector: &ConnectorConfig,
    numbers: &NumberPlan,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(usize, Transformed), SyncError> {
    let mut transformer = Transformer::new(connector, numbers);
    let mut fetched = 0;
    let max_entries = connector.import.max_entries;
    let mut sink = |raw: RawEntry| {
        if fetched < max_entries {
            transformer.push(&raw);
        }
        fetched += 1;
        if fetched % 1000 == 0 {
            progress(fetched);
        }
    };
    source::pull(connector, &requested_attributes(connector), &mut sink).await?;
    progress(fetched);
    if fetched > max_entries {
        return Err(SyncError::TooMany {
            fetched,
            limit: max_entries,
        });
    }
    Ok((fetched, transformer.finish()))
}

/// Dropped entries a preview shows with their reason, at most; the counts stay exact.
pub const PREVIEW_DROPPED: usize = 1000;
/// Mapped records a preview shows, at most (the first in display order).
pub const PREVIEW_MAPPED: usize = 100;

/// The outcome of pre-filter and mapping over a pull.
#[derive(Debug, Clone, Default)]
pub struct Transformed {
    pub entries: Vec<Entry>,
    pub filtered_out: usize,
    /// The first [`PREVIEW_DROPPED`] entries the pre-filter dropped, with the rule that did.
    pub filtered: Vec<InvalidEntry>,
    pub invalid: Vec<InvalidEntry>,
}

/// Pre-filter and map raw entries; ids are unique in the result (a repeated id is invalid).
pub fn transform(
    connector: &ConnectorConfig,
    numbers: &NumberPlan,
    raws: &[RawEntry],
) -> Transformed {
    let mut t = Transformer::new(connector, numbers);
    raws.iter().for_each(|raw| t.push(raw));
    t.out
}

/// [`transform`] one entry at a time, so it can run while the pull is still arriving.
pub struct Transformer<'a> {
    connector: &'a ConnectorConfig,
    numbers: &'a NumberPlan,
    seen: HashMap<String, usize>,
    out: Transformed,
}

impl<'a> Transformer<'a> {
    pub fn new(connector: &'a ConnectorConfig, numbers: &'a NumberPlan) -> Self {
        Transformer {
            connector,
            numbers,
            seen: HashMap::new(),
            out: Transformed::default(),
        }
    }

    pub fn push(&mut self, raw: &RawEntry) {
        let (connector, out) = (self.connector, &mut self.out);
        if let Some(reason) = connector.import.exceeded_by(raw) {
            out.invalid.push(InvalidEntry {
                dn: shortened(&raw.dn),
                reason,
            });
            return;
        }
        if let Some(rule) = connector.prefilter.rejection(raw) {
            out.filtered_out += 1;
            if out.filtered.len() < PREVIEW_DROPPED {
                out.filtered.push(InvalidEntry {
                    dn: shortened(&raw.dn),
                    reason: rule,
                });
            }
            return;
        }
        let id = match &connector.id_attribute {
            Some(attr) => match raw
                .values(attr)
                .and_then(|vs| vs.iter().map(|v| v.trim()).find(|v| !v.is_empty()))
            {
                Some(v) => v.to_owned(),
                None => {
                    out.invalid.push(InvalidEntry {
                        dn: raw.dn.clone(),
                        reason: format!("no {attr} (the id_attribute)"),
                    });
                    return;
                }
            },
            None => crate::model::normalise_dn(&raw.dn),
        };
        if let Some(&first) = self.seen.get(&id) {
            let reason = format!(
                "duplicate id {id} (also {})",
                out.entries[first].display_name
            );
            out.invalid.push(InvalidEntry {
                dn: raw.dn.clone(),
                reason,
            });
            return;
        }
        match connector
            .fields
            .map(raw, &connector.name, &id, self.numbers)
        {
            Ok(entry) if entry.phone_count() > connector.import.max_numbers_per_entry => {
                out.invalid.push(InvalidEntry {
                    dn: raw.dn.clone(),
                    reason: format!(
                        "{} phone numbers (import.max_numbers_per_entry = {})",
                        entry.phone_count(),
                        connector.import.max_numbers_per_entry
                    ),
                });
            }
            Ok(entry) => {
                self.seen.insert(id, out.entries.len());
                out.entries.push(entry);
            }
            Err(invalid) => out.invalid.push(invalid),
        }
    }

    pub fn finish(self) -> Transformed {
        self.out
    }
}

/// A DN as reports show it: an oversized one is cut (it is upstream data, and one report
/// line must stay readable).
fn shortened(dn: &str) -> String {
    const SHOWN: usize = 256;
    match dn.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &dn[..cut]),
        None => dn.to_owned(),
    }
}

/// Runs one connector: pull, transform, plan, guard, and (unless dry) apply.
///
/// A failed pull changes nothing but the run record; a dry run writes nothing at all.
pub async fn run(
    connector: &ConnectorConfig,
    numbers: &NumberPlan,
    store: &Store,
    options: SyncOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let result = run_inner(connector, numbers, store, options, progress, started).await;
    if let (Err(e), false) = (&result, options.dry_run) {
        let record = RunRecord {
            finished_at: unix_now(),
            duration_ms: elapsed_ms(started),
            outcome: Outcome::Failed,
            counts: Counts::default(),
            error: Some(e.to_string()),
        };
        // The failure itself is what the caller must hear about; a second failure to record
        // it would only hide the first.
        let name = connector.name.clone();
        let _ = store
            .off_thread(move |s| s.record_run(&name, &record))
            .await;
    }
    result
}

async fn run_inner(
    connector: &ConnectorConfig,
    numbers: &NumberPlan,
    store: &Store,
    options: SyncOptions,
    progress: &(dyn Fn(usize) + Sync),
    started: Instant,
) -> Result<SyncReport, SyncError> {
    // The stored side is read on a blocking thread while the upstream sends.
    let reader = store.clone();
    let name = connector.name.clone();
    let stored = tokio::task::spawn_blocking(move || reader.entries_of(&name));
    let (fetched, transformed) = pull_and_transform(connector, numbers, progress).await?;
    tracing::debug!(connector = %connector.name, entries = fetched, ms = elapsed_ms(started), "pulled and transformed");
    if fetched == 0 && !options.force {
        return Err(SyncError::EmptyUpstream);
    }
    if fetched > 0 && transformed.entries.is_empty() && !options.force {
        // A book emptied by the connector's own rules is a misconfiguration (a wrong group
        // DN, an id attribute no entry has), never everyone leaving.
        return Err(match transformed.invalid.first() {
            None => SyncError::AllFilteredOut { fetched },
            Some(first) => SyncError::AllInvalid {
                fetched,
                invalid: transformed.invalid.len(),
                filtered_out: transformed.filtered_out,
                first: format!("{}: {}", first.dn, first.reason),
            },
        });
    }
    let stored = stored.await.map_err(|e| StoreError::Io {
        path: String::new(),
        cause: e.to_string(),
    })??;
    let stored_count = stored.len();
    let mapped = if options.dry_run {
        first_in_display_order(&transformed.entries, PREVIEW_MAPPED)
    } else {
        Vec::new()
    };
    let changes = plan::plan(stored, transformed.entries, connector.mode);
    tracing::debug!(connector = %connector.name, stored = stored_count, ms = elapsed_ms(started), "planned");
    let counts = Counts {
        fetched,
        filtered_out: transformed.filtered_out,
        invalid: transformed.invalid.len(),
        created: changes.create.len(),
        updated: changes.update.len(),
        removed: changes.remove.len(),
        unchanged: changes.unchanged,
    };
    let held_back = !options.force
        && !connector
            .max_removals
            .allows(changes.remove.len(), stored_count);
    let mut report = SyncReport {
        connector: connector.name.clone(),
        dry_run: options.dry_run,
        counts,
        held_back,
        duration_ms: 0,
        changes: Vec::new(),
        invalid: transformed.invalid,
        mapped,
        filtered: if options.dry_run {
            transformed.filtered
        } else {
            Vec::new()
        },
        generation: store.off_thread(|s| s.generation()).await?,
    };
    if options.dry_run {
        report.changes = preview(changes);
    } else {
        let outcome = match (held_back, changes.is_empty()) {
            (true, _) => Outcome::HeldBack,
            (false, true) => Outcome::Unchanged,
            (false, false) => Outcome::Applied,
        };
        let record = RunRecord {
            finished_at: unix_now(),
            duration_ms: elapsed_ms(started),
            outcome,
            counts,
            error: held_back.then(|| held_back_message(connector, counts.removed, stored_count)),
        };
        let name = connector.name.clone();
        if held_back {
            store
                .off_thread(move |s| s.record_run(&name, &record))
                .await?;
            report.changes = preview(changes);
        } else {
            report.generation = store
                .off_thread(move |s| s.apply(&name, changes.book(), &record))
                .await?;
            tracing::debug!(connector = %connector.name, ms = elapsed_ms(started), "applied");
        }
    }
    report.duration_ms = elapsed_ms(started);
    Ok(report)
}

/// The explanation status and the CLI give for a held-back sync.
pub fn held_back_message(connector: &ConnectorConfig, removals: usize, stored: usize) -> String {
    format!(
        "held back by the deletion guard: it would remove {removals} of {stored} entries, more than max_removals = {}; check the upstream, then apply it anyway (sync --force, or Apply anyway on the admin page)",
        connector.max_removals
    )
}

/// The first `n` of `entries` by display name, in the collation every listing uses, cloned
/// (the rest is not copied).
fn first_in_display_order(entries: &[Entry], n: usize) -> Vec<Entry> {
    // The book's collation by display name (a run does not know the served order setting).
    let key = |e: &Entry| {
        (
            crate::directory::order_key(e, crate::directory::Order::DisplayName),
            e.id.clone(),
        )
    };
    let mut order: Vec<(_, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (key(e), i))
        .collect();
    if order.len() > n {
        order.select_nth_unstable(n);
        order.truncate(n);
    }
    order.sort_unstable();
    order.into_iter().map(|(_, i)| entries[i].clone()).collect()
}

/// The change list in the order a person reads it: by action, then display name.
fn preview(changes: ChangeSet) -> Vec<Change> {
    let tag = |action| move |entry| Change { action, entry };
    let mut list: Vec<Change> = changes
        .create
        .into_iter()
        .map(tag(Action::Create))
        .chain(changes.update.into_iter().map(tag(Action::Update)))
        .chain(changes.remove.into_iter().map(tag(Action::Remove)))
        .collect();
    list.sort_by_cached_key(|c| {
        (
            c.action as u8,
            c.entry.display_name.to_lowercase(),
            c.entry.id.clone(),
        )
    });
    list
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
