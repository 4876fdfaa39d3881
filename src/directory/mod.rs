//! The directory: the immutable, indexed snapshot of the phone book that the endpoints serve.
//!
//! sled is the durable truth; a [`Snapshot`] is what is read. It is built from the store's
//! entries after each applied sync and swapped in whole ([`Directory::publish`]); searches
//! take the current `Arc<Snapshot>` without a lock and never wait for a sync.

pub mod ber;
pub mod fold;
pub mod index;
pub mod matcher;
pub mod packed;
pub mod phone_keys;
pub mod schema;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Accents, Order};
use crate::model::{normalise_dn, Entry, PhoneKind};
use crate::numbers::{NumberFormat, NumberPlan};
use fold::fold;
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

    /// What `config` asks the snapshot to be; a reload whose settings differ rebuilds it.
    pub fn from_config(config: &crate::config::Config) -> Settings {
        Settings {
            base_dn: config.ldap.base_dn.clone(),
            accents: config.ldap.accents,
            numbers: config.numbers.clone(),
            number_format: config.ldap.number_format,
            order: config.order,
        }
    }
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

    /// Publishes `snapshot` unless the one served is already as new: two connectors finishing
    /// together must not put an older book back.
    pub fn publish_if_newer(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        self.current.rcu(|current| {
            if snapshot.generation > current.generation {
                snapshot.clone()
            } else {
                current.clone()
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::new(
            "ou=phonebook,dc=example,dc=com",
            Accents::Fold,
            NumberPlan::default(),
        )
    }

    fn book() -> Snapshot {
        let plan = NumberPlan::default();
        let person = |id: &str, name: &str, sn: &str, number: &str| {
            let mut e = Entry::new("corp", id, name);
            e.last_name = Some(sn.into());
            if !number.is_empty() {
                e.business.push(plan.phone(number));
            }
            e
        };
        let entries = vec![
            person("3", "Zoë Weiß", "Weiß", "+49 (89) 1234-567"),
            person("1", "Anna Müller", "Müller", "089 7654321"),
            person("2", "Jürgen Mülheimer", "Mülheimer", ""),
            person("4", "Bert Meier", "Meier", "+1 (555) 010-2030"),
        ];
        Snapshot::build(entries, 7, settings())
    }

    /// `filter` answers `want` through the indexes, and the same when forced through a scan
    /// of every entry; the compiled filter.
    fn assert_indexed_and_scanned(s: &Snapshot, filter: &str, want: &[&str]) -> Node {
        assert_eq!(names(s, filter), want, "{filter}");
        let node = s.compile(&crate::filter::parse(filter).unwrap()).unwrap();
        let scanned: Vec<String> = (0..s.len() as u32)
            .filter(|id| node.eval(&s.packed(*id)) == Tri::True)
            .map(|id| s.entry(id).entry.display_name.clone())
            .collect();
        assert_eq!(scanned, want, "scan of {filter}");
        node
    }

    fn names(s: &Snapshot, filter: &str) -> Vec<String> {
        let node = s.compile(&crate::filter::parse(filter).unwrap()).unwrap();
        let (hits, _) = s.search(BaseRef::Container, Scope::Sub, &node, usize::MAX);
        hits.into_iter()
            .filter_map(|h| match h {
                Hit::Entry(id) => Some(s.entry(id).entry.display_name.clone()),
                Hit::Container => None,
            })
            .collect()
    }

    /// A company with two number blocks, served dialable, in last-name order.
    fn company_book(order: Order, format: NumberFormat) -> Snapshot {
        let plan = NumberPlan {
            outside_prefix: "0".into(),
            extensions: vec![
                crate::numbers::ExtensionBlock {
                    prefix: "49891234".into(),
                    digits: 3,
                },
                crate::numbers::ExtensionBlock {
                    prefix: "49305678".into(),
                    digits: 4,
                },
            ],
            ..NumberPlan::default()
        };
        let person = |id: &str, first: &str, last: &str, number: &str| {
            let mut e = Entry::new("corp", id, &format!("{first} {last}"));
            e.first_name = Some(first.into());
            e.last_name = Some(last.into());
            e.business.push(plan.phone(number));
            e
        };
        let entries = vec![
            person("1", "Anna", "Zander", "+49 89 1234-826"),
            person("2", "Bert", "Müller", "(0)30/5678 1234"),
            person("3", "Zoë", "Muller", "(0)89/0859 929"),
            person("4", "Carl", "Adler", "+41 44 1234 567"),
            person("5", "Dora", "Berg", "826"),
        ];
        let mut settings = Settings::new("ou=phonebook,dc=example,dc=com", Accents::Fold, plan);
        settings.order = order;
        settings.number_format = format;
        Snapshot::build(entries, 1, settings)
    }

    #[test]
    fn numbers_are_found_by_extension_and_national_significant_number() {
        let s = company_book(Order::DisplayName, NumberFormat::Dialable);
        for (filter, want) in [
            ("(telephoneNumber=826)", vec!["Anna Zander", "Dora Berg"]),
            ("(telephoneNumber=1234)", vec!["Bert Müller"]),
            ("(telephoneNumber=890859929)", vec!["Zoë Muller"]),
            ("(telephoneNumber=0890859929)", vec!["Zoë Muller"]),
            ("(telephoneNumber=+49890859929)", vec!["Zoë Muller"]),
            ("(telephoneNumber=0049 89 0859929)", vec!["Zoë Muller"]),
            ("(telephoneNumber=\\280\\2989/0859 929)", vec!["Zoë Muller"]),
            ("(telephoneNumber=089/0859 929)", vec!["Zoë Muller"]),
            ("(telephoneNumber=0041441234567)", vec!["Carl Adler"]),
            ("(telephoneNumber=82*)", vec!["Anna Zander", "Dora Berg"]),
            ("(telephoneNumber=8908*)", vec!["Zoë Muller"]),
            // Not an extension of any block: 4 digits belong to Berlin only.
            ("(telephoneNumber=0826)", vec![]),
        ] {
            assert_indexed_and_scanned(&s, filter, &want);
        }
    }

    #[test]
    fn ldap_serves_numbers_in_its_format() {
        let served = |format| {
            let s = company_book(Order::DisplayName, format);
            (0..s.len() as u32)
                .flat_map(|id| {
                    s.packed(id)
                        .values(schema::Attr::Phone(PhoneKind::Business))
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        // Display order: Anna Zander, Bert Müller, Carl Adler, Dora Berg, Zoë Muller.
        assert_eq!(
            served(NumberFormat::Dialable),
            ["826", "1234", "00041441234567", "826", "00890859929"]
        );
        assert_eq!(
            served(NumberFormat::E164),
            [
                "+49891234826",
                "+493056781234",
                "+41441234567",
                "+49891234826",
                "+49890859929"
            ]
        );
        assert_eq!(
            served(NumberFormat::National),
            [
                "0891234826",
                "0305678 1234".replace(' ', "").as_str(),
                "0041441234567",
                "0891234826",
                "0890859929"
            ]
        );
        assert_eq!(
            served(NumberFormat::AsWritten),
            [
                "+49 89 1234-826",
                "(0)30/5678 1234",
                "+41 44 1234 567",
                "826",
                "(0)89/0859 929"
            ]
        );
    }

    #[test]
    fn last_name_order_sorts_by_folded_last_then_first_name() {
        let s = company_book(Order::LastName, NumberFormat::Dialable);
        let order: Vec<String> = (0..s.len() as u32)
            .map(|id| s.entry(id).entry.display_name.clone())
            .collect();
        // Müller and Muller fold alike; Bert before Zoë decides.
        assert_eq!(
            order,
            [
                "Carl Adler",
                "Dora Berg",
                "Bert Müller",
                "Zoë Muller",
                "Anna Zander"
            ]
        );
        let mut entries: Vec<Entry> = (0..s.len() as u32)
            .rev()
            .map(|id| s.entry(id).entry.clone())
            .collect();
        display_order(&mut entries, Order::LastName);
        let exported: Vec<&str> = entries.iter().map(|e| e.display_name.as_str()).collect();
        assert_eq!(exported, order, "exports list in the snapshot's order");
    }

    #[test]
    fn the_version_names_the_settings_too() {
        let version = |settings: Settings| Snapshot::build(Vec::new(), 3, settings).version;
        let base = version(settings());
        assert_eq!(base, version(settings()), "stable");
        let mut outside = settings();
        outside.numbers.outside_prefix = "0".into();
        let mut order = settings();
        order.order = Order::LastName;
        let mut format = settings();
        format.number_format = NumberFormat::Dialable;
        let versions = [base, version(outside), version(order), version(format)];
        for (i, a) in versions.iter().enumerate() {
            assert!(a.starts_with("3."), "{a}");
            for b in &versions[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn results_come_in_display_order() {
        let s = book();
        assert_eq!(
            names(&s, "(objectClass=inetOrgPerson)"),
            ["Anna Müller", "Bert Meier", "Jürgen Mülheimer", "Zoë Weiß"]
        );
    }

    #[test]
    fn indexed_and_scanned_answers_agree() {
        let s = book();
        for (filter, want) in [
            ("(sn=mül*)", vec!["Anna Müller", "Jürgen Mülheimer"]),
            ("(cn=*ulh*)", vec!["Jürgen Mülheimer"]),
            ("(sn=weiss)", vec!["Zoë Weiß"]),
            ("(telephoneNumber=+49891234567)", vec!["Zoë Weiß"]),
            ("(telephoneNumber=*0891234567*)", vec!["Zoë Weiß"]),
            ("(telephoneNumber=*7654321)", vec!["Anna Müller"]),
            (
                "(&(sn>=M)(sn<=N))",
                vec!["Anna Müller", "Bert Meier", "Jürgen Mülheimer"],
            ),
            // Bounds every value meets (known from the ends of the sorted values), and one
            // that only the highest value misses (found by a binary search).
            (
                "(&(objectClass=*)(sn>=A)(sn<=zz)(sn=M*))",
                vec!["Anna Müller", "Bert Meier", "Jürgen Mülheimer"],
            ),
            (
                "(&(sn>=A)(sn<=n))",
                vec!["Anna Müller", "Bert Meier", "Jürgen Mülheimer"],
            ),
            (
                "(|(cn=anna*)(telephoneNumber=*0102030))",
                vec!["Anna Müller", "Bert Meier"],
            ),
        ] {
            let node = assert_indexed_and_scanned(&s, filter, &want);
            assert!(
                s.candidates(&node).is_some(),
                "{filter} should use an index"
            );
        }
    }

    #[test]
    fn scopes_and_bases() {
        let s = book();
        let all = s
            .compile(&crate::filter::parse("(objectClass=*)").unwrap())
            .unwrap();
        assert_eq!(
            s.search(BaseRef::Container, Scope::Base, &all, 10).0,
            [Hit::Container]
        );
        assert_eq!(
            s.search(BaseRef::Container, Scope::One, &all, 10).0.len(),
            4
        );
        assert_eq!(
            s.search(BaseRef::Container, Scope::Sub, &all, 10).0.len(),
            5
        );
        let anna = s
            .resolve_base("UID=corp.1, ou=Phonebook,dc=example,dc=com")
            .unwrap();
        assert_eq!(anna, BaseRef::Entry(0));
        assert_eq!(s.search(anna, Scope::Base, &all, 10).0, [Hit::Entry(0)]);
        assert_eq!(s.search(anna, Scope::One, &all, 10).0, []);
        assert_eq!(s.resolve_base("dc=example,dc=com"), Some(BaseRef::Parent));
        assert_eq!(s.resolve_base("dc=com"), Some(BaseRef::Ancestor));
        let parent_one = s.search(BaseRef::Parent, Scope::One, &all, 10).0;
        assert_eq!(
            parent_one,
            [Hit::Container],
            "one level below the parent is the container"
        );
        assert_eq!(s.resolve_base("ou=other,dc=example,dc=com"), None);
        let (hits, more) = s.search(BaseRef::Container, Scope::One, &all, 2);
        assert_eq!((hits.len(), more), (2, true));
    }
}
