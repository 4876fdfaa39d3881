//! The directory: the immutable, indexed snapshot of the phone book that the endpoints serve.
//!
//! sled is the durable truth; a [`Snapshot`] is what is read. It is built from the store's
//! entries after each applied sync and swapped in whole ([`Directory::publish`]); searches
//! take the current `Arc<Snapshot>` without a lock and never wait for a sync.

pub mod fold;
pub mod index;
pub mod matcher;
pub mod packed;
pub mod phone_keys;
pub mod schema;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::model::{normalise_dn, Entry, PhoneKind};
use crate::numbers::{NumberFormat, NumberPlan};
use fold::{fold, Accents};
use index::{Ids, Indexes};
use matcher::{Node, Phones, Subject, Tri};
pub use packed::Packed;
use schema::{Text, OBJECT_CLASSES};

/// How the snapshot presents, orders and compares entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub base_dn: String,
    pub accents: Accents,
    pub numbers: NumberPlan,
    /// How LDAP answers write numbers.
    pub number_format: NumberFormat,
    pub order: Order,
}

impl Settings {
    /// Settings with numbers served as written, in display-name order.
    pub fn new(base_dn: &str, accents: Accents, numbers: NumberPlan) -> Settings {
        Settings {
            base_dn: base_dn.to_owned(),
            accents,
            numbers,
            number_format: NumberFormat::AsWritten,
            order: Order::DisplayName,
        }
    }
}

/// The order phones list the book in. One order for every endpoint, so a phone's LDAP list,
/// its XML book and the PBX's feed agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// By display name, as a phone shows it.
    #[default]
    DisplayName,
    /// By last name, then first name (`Müller, Anna` before `Schulz, Andreas`); entries
    /// without a last name by display name among them.
    LastName,
}

/// One entry of the phone book as the endpoints list it.
///
/// What a search reads — folded names, number keys, the BER-encoded values — is packed
/// apart from it ([`Snapshot::packed`]), in one allocation per entry.
pub struct ServedEntry {
    pub entry: Entry,
}

impl Subject for Packed<'_> {
    fn has_object_class(&self, lower: &str) -> bool {
        OBJECT_CLASSES.iter().any(|c| c.eq_ignore_ascii_case(lower))
    }

    fn text(&self, attr: Text) -> Option<&[u8]> {
        self.text_bytes(attr)
    }

    fn phones(&self, kind: PhoneKind) -> Phones<'_> {
        Phones::Packed(Packed::phones(*self, kind))
    }
}

/// The entry at `base_dn` itself, which holds the phone book (`ou=phonebook,…`).
pub struct Container {
    pub dn: String,
    /// `(attribute, value)` of the DN's first RDN, e.g. `("ou", "phonebook")`.
    pub rdn: (String, String),
    pub object_classes: Vec<&'static str>,
    folded_rdn: String,
}

impl Container {
    fn new(base_dn: &str) -> Self {
        let first = base_dn.split(',').next().unwrap_or_default();
        let (attr, value) = first.split_once('=').unwrap_or(("ou", first));
        let attr = attr.trim().to_owned();
        let value = value.trim().to_owned();
        let object_classes = match attr.to_ascii_lowercase().as_str() {
            "ou" => vec!["top", "organizationalUnit"],
            "o" => vec!["top", "organization"],
            "dc" => vec!["top", "dcObject"],
            _ => vec!["top"],
        };
        Container {
            dn: base_dn.to_owned(),
            folded_rdn: value.to_lowercase(),
            rdn: (attr, value),
            object_classes,
        }
    }
}

impl Subject for Container {
    fn has_object_class(&self, lower: &str) -> bool {
        self.object_classes
            .iter()
            .any(|c| c.eq_ignore_ascii_case(lower))
    }

    fn text(&self, attr: Text) -> Option<&[u8]> {
        let name = match attr {
            Text::Ou => "ou",
            Text::O => "o",
            _ => return None,
        };
        self.rdn
            .0
            .eq_ignore_ascii_case(name)
            .then_some(self.folded_rdn.as_bytes())
    }

    fn phones(&self, _: PhoneKind) -> Phones<'_> {
        Phones::Owned([].iter())
    }
}

/// The scope of a search, as RFC 4511 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    One,
    Sub,
    Children,
}

/// What a search base names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseRef {
    Container,
    Entry(u32),
    /// A DN above `base_dn` (`dc=example,dc=com`): subtree searches reach the phone book.
    Ancestor,
    /// The DN right above `base_dn`: a one-level search also finds the container itself.
    Parent,
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Container,
    Entry(u32),
}

/// An immutable phone book with its indexes.
pub struct Snapshot {
    version: String,
    generation: u64,
    settings: Settings,
    base_norm: String,
    container: Container,
    entries: Vec<ServedEntry>,
    /// The served form of each entry ([`packed`]), side by side so a search walks a dense
    /// array of pointers.
    packed: Vec<Box<[u8]>>,
    /// `(hash of the normalised DN, position)`, sorted.
    by_dn: Vec<(u64, u32)>,
    index: Indexes,
}

/// Threads a snapshot build may use.
fn workers(items: usize) -> usize {
    if items < 20_000 {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// `items.into_iter().map(f).collect()`, in order, split over the cores.
fn parallel_map<T: Send, U: Send>(mut items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let workers = workers(items.len());
    if workers <= 1 {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(workers);
    let mut chunks = Vec::with_capacity(workers);
    while items.len() > chunk {
        let tail = items.split_off(items.len() - chunk);
        chunks.push(tail);
    }
    chunks.push(items);
    chunks.reverse();
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(f).collect::<Vec<U>>()))
            .collect();
        let mut out = Vec::new();
        for handle in handles {
            out.extend(
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
        out
    })
}

/// Entries with their packed form, sorted as [`display_order`] sorts entries.
fn in_display_order(
    entries: Vec<(Box<[u8]>, Entry)>,
    accents: Accents,
    order: Order,
) -> (Vec<Box<[u8]>>, Vec<ServedEntry>) {
    // In display-name order with folded names, the packed cn is the sort key; else build it.
    let keys: Option<Vec<String>> = (order != Order::DisplayName
        || !matches!(accents, Accents::Fold))
    .then(|| entries.iter().map(|(_, e)| order_key(e, order)).collect());
    let key = |i: usize| -> &str {
        match &keys {
            Some(keys) => &keys[i],
            None => Packed(&entries[i].0).text(Text::Cn).unwrap_or_default(),
        }
    };
    // Most comparisons end on the first bytes, kept side by side in memory.
    let heads: Vec<u64> = (0..entries.len()).map(|i| index::head(key(i))).collect();
    let mut positions: Vec<usize> = (0..entries.len()).collect();
    positions.sort_unstable_by(|&a, &b| {
        heads[a]
            .cmp(&heads[b])
            .then_with(|| key(a).cmp(key(b)))
            .then_with(|| tie_break(&entries[a].1, &entries[b].1))
    });
    drop(keys);
    let mut slots: Vec<Option<(Box<[u8]>, Entry)>> = entries.into_iter().map(Some).collect();
    positions
        .iter()
        .filter_map(|&i| slots[i].take())
        .map(|(packed, entry)| (packed, ServedEntry { entry }))
        .unzip()
}

/// The collation key of an entry: its name(s) case- and accent-folded, whatever
/// `ldap.accents` says, because a list is read by people (`Müller` sorts with `Muller`).
/// Last-name order compares last name, first name, display name, each ending in `\u{1}` so
/// `Müller` comes before `Müllerson`; an entry without a last name sorts by its display name
/// among the last names (as its `sn` is served).
pub fn order_key(e: &Entry, order: Order) -> String {
    match order {
        Order::DisplayName => fold(&e.display_name, Accents::Fold),
        Order::LastName => {
            let last = e.last_name.as_deref().unwrap_or(&e.display_name);
            let first = e.first_name.as_deref().unwrap_or_default();
            format!(
                "{}\u{1}{}\u{1}{}",
                fold(last, Accents::Fold),
                fold(first, Accents::Fold),
                fold(&e.display_name, Accents::Fold)
            )
        }
    }
}

/// Entries with the same key: by display name as written, then connector and id, so the
/// order is total and the same on every build.
fn tie_break(x: &Entry, y: &Entry) -> std::cmp::Ordering {
    x.display_name
        .cmp(&y.display_name)
        .then_with(|| x.connector.cmp(&y.connector))
        .then_with(|| x.id.cmp(&y.id))
}

/// The hash under which `by_dn` finds an entry: FNV-1a of its normalised DN
/// (`uid=<uid>,<base>`), without building that string when the uid is a plain token.
fn dn_hash(e: Packed, base_norm: &str) -> u64 {
    let uid = e.text(Text::Uid).unwrap_or_default();
    let plain = !uid.is_empty()
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !plain {
        return crate::model::fnv1a64(normalise_dn(e.dn()).as_bytes());
    }
    let bytes = b"uid="
        .iter()
        .copied()
        .chain(uid.bytes().map(|b| b.to_ascii_lowercase()))
        .chain(std::iter::once(b','))
        .chain(base_norm.bytes());
    bytes.fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The order every listing uses (see [`order_key`]): the snapshot's, the exports'.
pub fn display_order(entries: &mut [Entry], order: Order) {
    let mut keyed: Vec<(String, Entry)> = entries
        .iter_mut()
        .map(|e| {
            (
                order_key(e, order),
                std::mem::replace(e, Entry::new("", "", "")),
            )
        })
        .collect();
    keyed.sort_by(|(ka, a), (kb, b)| ka.cmp(kb).then_with(|| tie_break(a, b)));
    for (slot, (_, e)) in entries.iter_mut().zip(keyed) {
        *slot = e;
    }
}

impl Snapshot {
    /// Builds the snapshot of `entries` (in any order), on every core.
    pub fn build(entries: Vec<Entry>, generation: u64, settings: Settings) -> Snapshot {
        let (packed, entries) = in_display_order(
            parallel_map(entries, |e| (packed::pack(&e, &settings), e)),
            settings.accents,
            settings.order,
        );
        let base_norm = normalise_dn(&settings.base_dn);
        let mut by_dn: Vec<(u64, u32)> = packed
            .iter()
            .enumerate()
            .map(|(i, p)| (dn_hash(Packed(p), &base_norm), i as u32))
            .collect();
        by_dn.sort_unstable();
        let index = Indexes::build(&packed);
        let mut served: Vec<&str> = entries.iter().map(|e| e.entry.connector.as_str()).collect();
        served.sort_unstable();
        served.dedup();
        // The version names what is served: the generation, the connectors, and every
        // setting (a reload that changes only the number plan or the order keeps the
        // generation, yet changes every `dialable` number or the order); `Debug` names each
        // field, so a setting added later is covered too.
        let version = format!(
            "{generation}.{:08x}",
            crate::model::fnv1a64(format!("{}\0{settings:?}", served.join(",")).as_bytes()) as u32
        );
        crate::memory::release_freed();
        Snapshot {
            version,
            generation,
            base_norm,
            container: Container::new(&settings.base_dn),
            settings,
            entries,
            packed,
            by_dn,
            index,
        }
    }

    /// Bytes held by the indexes (for memory accounting).
    pub fn index_bytes(&self) -> usize {
        self.index.heap_bytes() + self.by_dn.capacity() * 16
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Names the content: the store's generation, and which connectors' books are served
    /// (removing a connector from the configuration changes the book, not the generation).
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Entries per connector (connectors with none are absent).
    pub fn entries_per_connector(&self) -> std::collections::HashMap<&str, usize> {
        let mut counts = std::collections::HashMap::new();
        for e in &self.entries {
            *counts.entry(e.entry.connector.as_str()).or_default() += 1;
        }
        counts
    }

    pub fn container(&self) -> &Container {
        &self.container
    }

    pub fn entry(&self, id: u32) -> &ServedEntry {
        &self.entries[id as usize]
    }

    pub fn entries(&self) -> &[ServedEntry] {
        &self.entries
    }

    /// The served form of an entry: what searches read.
    pub fn packed(&self, id: u32) -> Packed<'_> {
        Packed(&self.packed[id as usize])
    }

    /// What `dn` names, or `None` when nothing here has that DN.
    pub fn resolve_base(&self, dn: &str) -> Option<BaseRef> {
        let norm = normalise_dn(dn);
        if norm == self.base_norm {
            return Some(BaseRef::Container);
        }
        let hash = crate::model::fnv1a64(norm.as_bytes());
        let start = self.by_dn.partition_point(|(h, _)| *h < hash);
        if let Some((_, id)) = self.by_dn[start..]
            .iter()
            .take_while(|(h, _)| *h == hash)
            .find(|(_, id)| normalise_dn(self.packed(*id).dn()) == norm)
        {
            return Some(BaseRef::Entry(*id));
        }
        if norm.is_empty() || !self.base_norm.ends_with(&format!(",{norm}")) {
            return None;
        }
        let parent = self
            .base_norm
            .split_once(',')
            .is_some_and(|(_, rest)| rest == norm);
        Some(if parent {
            BaseRef::Parent
        } else {
            BaseRef::Ancestor
        })
    }

    /// Compiles a filter with this snapshot's folding and number plan.
    pub fn compile(
        &self,
        filter: &crate::filter::LdapFilter,
    ) -> Result<Node, matcher::FilterError> {
        matcher::compile(filter, self.settings.accents, &self.settings.numbers)
    }

    /// The hits of a search in display order (the container first), at most `limit` of them;
    /// the flag says whether more matched.
    pub fn search(
        &self,
        base: BaseRef,
        scope: Scope,
        filter: &Node,
        limit: usize,
    ) -> (Vec<Hit>, bool) {
        let mut hits = Vec::new();
        let container = matches!(
            (base, scope),
            (BaseRef::Container, Scope::Base | Scope::Sub)
                | (
                    BaseRef::Ancestor | BaseRef::Parent,
                    Scope::Sub | Scope::Children
                )
                | (BaseRef::Parent, Scope::One)
        );
        if container && filter.eval(&self.container) == Tri::True {
            hits.push(Hit::Container);
        }
        let entries = match (base, scope) {
            (BaseRef::Container, Scope::One | Scope::Sub | Scope::Children)
            | (BaseRef::Ancestor | BaseRef::Parent, Scope::Sub | Scope::Children) => true,
            (BaseRef::Entry(id), Scope::Base | Scope::Sub) => {
                if hits.len() < limit && filter.eval(&self.packed(id)) == Tri::True {
                    hits.push(Hit::Entry(id));
                }
                false
            }
            _ => false,
        };
        if !entries {
            return (hits, false);
        }
        let mut more = false;
        let mut consider = |id: u32, hits: &mut Vec<Hit>| {
            if filter.eval(&self.packed(id)) != Tri::True {
                return true;
            }
            if hits.len() >= limit {
                more = true;
                return false;
            }
            hits.push(Hit::Entry(id));
            true
        };
        let mut cursor = self.index.cursor(&self.packed, filter);
        let mut next = 0;
        let mut batch = [0u32; 8];
        'walk: loop {
            let mut n = 0;
            while n < batch.len() {
                let Some(id) = cursor.seek(next) else { break };
                batch[n] = id;
                n += 1;
                next = id + 1;
            }
            // Start reading the next candidates all at once: their loads from memory overlap
            // instead of waiting for one another.
            for id in &batch[..n] {
                self.packed(*id).touch();
            }
            for id in &batch[..n] {
                if !consider(*id, &mut hits) {
                    break 'walk;
                }
            }
            if n < batch.len() {
                break;
            }
        }
        (hits, more)
    }

    /// The candidate ids of a filter (for tests and benches of the indexes).
    pub fn candidates(&self, filter: &Node) -> Option<Ids> {
        self.index.candidates(&self.packed, filter)
    }
}

/// The handle the endpoints read from and the sync side publishes to.
pub struct Directory {
    current: ArcSwap<Snapshot>,
}

impl Directory {
    pub fn new(snapshot: Snapshot) -> Self {
        Directory {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The current snapshot; it stays valid for as long as the caller holds it.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Makes `snapshot` the one every new search reads.
    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// Publishes `snapshot`, rebuilt from the store for new settings (a reload), unless the
    /// one served is newer: a sync that finished while the store was read has published a
    /// later book (built with the new settings already), which must not be put back.
    pub fn publish_unless_older(&self, snapshot: Snapshot) {
        self.publish_when(snapshot, |new, current| new >= current);
    }

    /// Publishes `snapshot` unless the one served is already as new: two connectors finishing
    /// together must not put an older book back.
    pub fn publish_if_newer(&self, snapshot: Snapshot) {
        self.publish_when(snapshot, |new, current| new > current);
    }

    /// Swaps `snapshot` in when `keep(its generation, the served one's)` holds, atomically
    /// against other publishers.
    fn publish_when(&self, snapshot: Snapshot, keep: impl Fn(u64, u64) -> bool) {
        let snapshot = Arc::new(snapshot);
        self.current.rcu(|current| {
            if keep(snapshot.generation, current.generation) {
                snapshot.clone()
            } else {
                current.clone()
            }
        });
    }
}

#[cfg(test)]
mod tests;
