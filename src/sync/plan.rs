//! The plan: what a sync would change in one connector's part of the phone book.
//!
//! Computed entirely in memory from the stored entries and the freshly mapped ones, so a dry
//! run and a real run take the same decisions, and the store applies a finished change set
//! in one atomic step.

use std::collections::HashMap;

use super::connector::Mode;
use crate::model::Entry;

/// The difference between what the store holds for a connector and what the upstream sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    pub create: Vec<Entry>,
    pub update: Vec<Entry>,
    /// The stored entries that would go, as they are stored (for the preview).
    pub remove: Vec<Entry>,
    /// Upstream entries identical to what is stored.
    pub unchanged: usize,
    /// Stored entries that stay as they are: the unchanged ones, and in merge mode those the
    /// upstream no longer sends.
    pub kept: Vec<Entry>,
}

impl ChangeSet {
    /// True when applying the set would not change the store.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.remove.is_empty()
    }

    /// The connector's entries once the set is applied.
    pub fn resulting_entries(&self) -> impl Iterator<Item = &Entry> {
        self.kept.iter().chain(&self.create).chain(&self.update)
    }

    /// What [`Store::apply`](crate::store::Store::apply) writes: the connector's whole book
    /// after the set, or `None` when the set changes nothing (only the run is recorded).
    pub fn book(&self) -> Option<Vec<&Entry>> {
        (!self.is_empty()).then(|| self.resulting_entries().collect())
    }
}

/// Compares `incoming` (unique ids, one connector) with `stored` (that connector's entries
/// by id). Mirror removes what the upstream no longer has; merge never removes.
pub fn plan(mut stored: HashMap<String, Entry>, incoming: Vec<Entry>, mode: Mode) -> ChangeSet {
    let mut set = ChangeSet::default();
    for entry in incoming {
        match stored.remove(&entry.id) {
            None => set.create.push(entry),
            Some(old) if old == entry => {
                set.unchanged += 1;
                set.kept.push(old);
            }
            Some(_) => set.update.push(entry),
        }
    }
    match mode {
        Mode::Mirror => set.remove = stored.into_values().collect(),
        Mode::Merge => set.kept.extend(stored.into_values()),
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: &str, name: &str) -> Entry {
        Entry::new("corp", id, name)
    }

    fn stored(entries: &[Entry]) -> HashMap<String, Entry> {
        entries.iter().map(|e| (e.id.clone(), e.clone())).collect()
    }

    fn ids(entries: &[Entry]) -> Vec<&str> {
        let mut ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn mirror_mode_creates_updates_and_removes_entries_missing_upstream() {
        let before = stored(&[e("1", "Anna"), e("2", "Bert"), e("3", "Carl")]);
        let after = vec![e("1", "Anna"), e("2", "Bert Neu"), e("4", "Dora")];
        let set = plan(before, after, Mode::Mirror);
        assert_eq!(ids(&set.create), ["4"]);
        assert_eq!(ids(&set.update), ["2"]);
        assert_eq!(set.update[0].display_name, "Bert Neu");
        assert_eq!(ids(&set.remove), ["3"]);
        assert_eq!(
            set.remove[0].display_name, "Carl",
            "removals carry the stored entry"
        );
        assert_eq!(set.unchanged, 1);
        let mut result: Vec<&str> = set.resulting_entries().map(|e| e.id.as_str()).collect();
        result.sort();
        assert_eq!(result, ["1", "2", "4"]);
    }

    #[test]
    fn merge_mode_never_removes() {
        let before = stored(&[e("1", "Anna"), e("3", "Carl")]);
        let set = plan(before, vec![e("1", "Anna")], Mode::Merge);
        assert!(set.remove.is_empty());
        assert!(set.is_empty());
        assert_eq!(set.unchanged, 1);
        assert_eq!(
            set.resulting_entries().count(),
            2,
            "the unseen entry is kept"
        );
    }

    #[test]
    fn identical_input_is_an_empty_change_set() {
        let entries = [e("1", "Anna"), e("2", "Bert")];
        let set = plan(stored(&entries), entries.to_vec(), Mode::Mirror);
        assert!(set.is_empty());
        assert_eq!(set.unchanged, 2);
    }

    #[test]
    fn a_changed_number_is_an_update() {
        let mut new = e("1", "Anna");
        new.business
            .push(crate::numbers::NumberPlan::default().phone("089 1234567"));
        let set = plan(stored(&[e("1", "Anna")]), vec![new], Mode::Mirror);
        assert_eq!(ids(&set.update), ["1"]);
    }
}
