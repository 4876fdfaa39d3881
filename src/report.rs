//! The JSON shape of a sync report (SPEC "sync --json"), shared by the CLI and the HTTP API
//! so both print exactly the same object.

use serde::Serialize;

use crate::sync::SyncReport;

/// The `sync --json` object, fields in SPEC's order.
#[derive(Serialize)]
pub struct ReportJson<'a> {
    pub connector: &'a str,
    pub dry_run: bool,
    pub fetched: usize,
    pub filtered_out: usize,
    pub invalid: usize,
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub held_back: bool,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<ChangeJson<'a>>>,
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
    pub fn new(r: &'a SyncReport) -> Self {
        let c = r.counts;
        ReportJson {
            connector: &r.connector,
            dry_run: r.dry_run,
            fetched: c.fetched,
            filtered_out: c.filtered_out,
            invalid: c.invalid,
            created: c.created,
            updated: c.updated,
            removed: c.removed,
            unchanged: c.unchanged,
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
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
