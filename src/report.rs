//! The JSON shape of a sync report (SPEC "sync --json"), shared by the CLI and the HTTP API
//! so both print exactly the same object.

use serde::Serialize;

use crate::export::FeedEntry;
use crate::numbers::NumberPlan;
use crate::runs::Counts;
use crate::sync::SyncReport;

/// The `sync --json` object, fields in SPEC's order.
#[derive(Serialize)]
pub struct ReportJson<'a> {
    pub connector: &'a str,
    pub dry_run: bool,
    /// `fetched` … `unchanged`, in SPEC's order: the counts a run record keeps too.
    #[serde(flatten)]
    pub counts: Counts,
    pub held_back: bool,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<ChangeJson<'a>>>,
    /// Dry runs: the first mapped records with every field, in the feed's shape (numbers as
    /// written, E.164, extension, dialable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped: Option<Vec<FeedEntry<'a>>>,
    /// Dry runs: entries the pre-filter dropped and entries that could not be mapped, each
    /// with its reason (the first of each kind, up to `sync::PREVIEW_DROPPED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<Vec<DroppedJson<'a>>>,
}

/// An upstream entry that did not become a phone book entry, and why.
#[derive(Serialize)]
pub struct DroppedJson<'a> {
    pub dn: &'a str,
    /// `filtered_out` (a pre-filter rule) or `invalid` (no id, no name, a cap, …).
    pub kind: &'static str,
    pub reason: &'a str,
}

/// One line of a dry run's change list; the numbers help a person recognise the entry.
#[derive(Serialize)]
pub struct ChangeJson<'a> {
    pub action: &'static str,
    pub id: &'a str,
    pub display_name: &'a str,
    pub numbers: Vec<&'a str>,
}

impl<'a> ReportJson<'a> {
    /// The report of `r`; `plan` writes the mapped records' numbers.
    pub fn new(r: &'a SyncReport, plan: &'a NumberPlan) -> Self {
        ReportJson {
            connector: &r.connector,
            dry_run: r.dry_run,
            counts: r.counts,
            held_back: r.held_back,
            duration_ms: r.duration_ms,
            // A held-back run lists what it would have done too: who would go is what the
            // operator must check before applying it anyway.
            changes: (r.dry_run || r.held_back).then(|| {
                r.changes
                    .iter()
                    .map(|ch| ChangeJson {
                        action: ch.action.as_str(),
                        id: &ch.entry.id,
                        display_name: &ch.entry.display_name,
                        numbers: ch
                            .entry
                            .all_phones()
                            .map(|(_, p)| p.written.as_str())
                            .collect(),
                    })
                    .collect()
            }),
            mapped: r
                .dry_run
                .then(|| r.mapped.iter().map(|e| FeedEntry::new(e, plan)).collect()),
            dropped: r.dry_run.then(|| {
                let kind = |kind| {
                    move |d: &'a crate::sync::mapping::InvalidEntry| DroppedJson {
                        dn: &d.dn,
                        kind,
                        reason: &d.reason,
                    }
                };
                r.filtered
                    .iter()
                    .map(kind("filtered_out"))
                    .chain(
                        r.invalid
                            .iter()
                            .take(crate::sync::PREVIEW_DROPPED)
                            .map(kind("invalid")),
                    )
                    .collect()
            }),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
