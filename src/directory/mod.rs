//! The directory: the immutable, indexed snapshot of the phone book that the endpoints serve.
//!
//! sled is the durable truth; a [`Snapshot`] is what is read. It is built from the store's
//! entries after each applied sync and swapped in whole ([`Directory::publish`]); searches
//! take the current `Arc<Snapshot>` without a lock and never wait for a sync.

pub mod fold;
pub mod index;
pub mod matcher;
pub mod schema;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Accents;
use crate::model::{normalise_dn, Entry, PhoneKind};
use crate::numbers::NumberPlan;
use fold::fold;
use index::{Ids, Indexes};
use matcher::{Node, PhoneKeys, Subject, Tri};
use schema::{Attr, Text, OBJECT_CLASSES};

/// How the snapshot presents and compares entries.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base_dn: String,
    pub accents: Accents,
    pub numbers: NumberPlan,
}

/// One entry as served: its DN, the phone book entry, and its comparable keys.
pub struct ServedEntry {
    pub dn: String,
    /// `dn[4..4 + uid_len]` is the uid (`uid=<uid>,<base_dn>`).
    uid_len: usize,
    pub entry: Entry,
    /// Folded values by [`Text`] slot (`DisplayName` reads the `Cn` slot).
    folded: [Option<Box<str>>; Text::COUNT],
    phones: [Vec<PhoneKeys>; 5],
}

fn kind_slot(kind: PhoneKind) -> usize {
    match kind {
        PhoneKind::Business => 0,
        PhoneKind::Mobile => 1,
        PhoneKind::Home => 2,
        PhoneKind::Fax => 3,
        PhoneKind::Other => 4,
    }
}

impl ServedEntry {
    fn new(entry: Entry, settings: &Settings) -> Self {
        let uid = entry.uid();
        let dn = format!("uid={uid},{}", settings.base_dn);
        let mut folded: [Option<Box<str>>; Text::COUNT] = Default::default();
        for t in Text::DISTINCT {
            folded[t.slot()] =
                text_value(&entry, t).map(|v| fold(&v, settings.accents).into_boxed_str());
        }
        let phones = PhoneKind::ALL.map(|k| {
            entry
                .phones(k)
                .iter()
                .map(|p| PhoneKeys::new(&p.written, p.e164.as_deref(), &settings.numbers))
                .collect()
        });
        ServedEntry {
            dn,
            uid_len: uid.len(),
            entry,
            folded,
            phones,
        }
    }

    /// The folded value of a text attribute.
    pub fn folded(&self, t: Text) -> Option<&str> {
        let t = if t == Text::DisplayName { Text::Cn } else { t };
        self.folded[t.slot()].as_deref()
    }

    fn all_phone_keys(&self) -> impl Iterator<Item = &PhoneKeys> {
        self.phones.iter().flatten()
    }

    /// The served value of a text attribute, as written.
    pub fn text_ref(&self, t: Text) -> Option<&str> {
        let e = &self.entry;
        match t {
            Text::Uid => self.dn.get(4..4 + self.uid_len),
            Text::Cn | Text::DisplayName => Some(&e.display_name),
            Text::GivenName => e.first_name.as_deref(),
            Text::Sn => Some(e.last_name.as_deref().unwrap_or(&e.display_name)),
            Text::O => e.company.as_deref(),
            Text::Ou => e.department.as_deref(),
            Text::Title => e.title.as_deref(),
            Text::Mail => e.email.as_deref(),
            Text::Description => e.notes.as_deref(),
        }
    }

    /// The served values of an attribute, as written.
    pub fn values(&self, attr: Attr) -> Vec<String> {
        match attr {
            Attr::ObjectClass => OBJECT_CLASSES.iter().map(|c| (*c).to_owned()).collect(),
            Attr::Text(t) => text_value(&self.entry, t).into_iter().collect(),
            Attr::Phone(k) => self
                .entry
                .phones(k)
                .iter()
                .map(|p| p.written.clone())
                .collect(),
        }
    }
}

/// The served value of a text attribute of an entry.
fn text_value(e: &Entry, t: Text) -> Option<String> {
    match t {
        Text::Uid => Some(e.uid()),
        Text::Cn | Text::DisplayName => Some(e.display_name.clone()),
        Text::GivenName => e.first_name.clone(),
        Text::Sn => Some(
            e.last_name
                .clone()
                .unwrap_or_else(|| e.display_name.clone()),
        ),
        Text::O => e.company.clone(),
        Text::Ou => e.department.clone(),
        Text::Title => e.title.clone(),
        Text::Mail => e.email.clone(),
        Text::Description => e.notes.clone(),
    }
}

impl Subject for ServedEntry {
    fn has_object_class(&self, lower: &str) -> bool {
        OBJECT_CLASSES.iter().any(|c| c.eq_ignore_ascii_case(lower))
    }

    fn text(&self, attr: Text) -> Option<&str> {
        self.folded(attr)
    }

    fn phones(&self, kind: PhoneKind) -> &[PhoneKeys] {
        &self.phones[kind_slot(kind)]
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

    fn text(&self, attr: Text) -> Option<&str> {
        let name = match attr {
            Text::Ou => "ou",
            Text::O => "o",
            _ => return None,
        };
        self.rdn
            .0
            .eq_ignore_ascii_case(name)
            .then_some(self.folded_rdn.as_str())
    }

    fn phones(&self, _: PhoneKind) -> &[PhoneKeys] {
        &[]
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
    by_dn: HashMap<String, u32>,
    index: Indexes,
}

/// The order every listing uses: display name (accent- and case-folded), then connector, id.
pub fn display_order(entries: &mut [Entry]) {
    entries.sort_by_cached_key(|e| {
        (
            fold(&e.display_name, Accents::Fold),
            e.display_name.clone(),
            e.connector.clone(),
            e.id.clone(),
        )
    });
}

impl Snapshot {
    /// Builds the snapshot of `entries` (in any order).
    pub fn build(mut entries: Vec<Entry>, generation: u64, settings: Settings) -> Snapshot {
        display_order(&mut entries);
        let entries: Vec<ServedEntry> = entries
            .into_iter()
            .map(|e| ServedEntry::new(e, &settings))
            .collect();
        let by_dn = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (normalise_dn(&e.dn), i as u32))
            .collect();
        let index = Indexes::build(&entries);
        let mut served: Vec<&str> = entries.iter().map(|e| e.entry.connector.as_str()).collect();
        served.sort_unstable();
        served.dedup();
        let version = format!(
            "{generation}.{:08x}",
            crate::model::fnv1a64(served.join(",").as_bytes()) as u32
        );
        Snapshot {
            version,
            generation,
            base_norm: normalise_dn(&settings.base_dn),
            container: Container::new(&settings.base_dn),
            settings,
            entries,
            by_dn,
            index,
        }
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

    pub fn container(&self) -> &Container {
        &self.container
    }

    pub fn entry(&self, id: u32) -> &ServedEntry {
        &self.entries[id as usize]
    }

    pub fn entries(&self) -> &[ServedEntry] {
        &self.entries
    }

    /// What `dn` names, or `None` when nothing here has that DN.
    pub fn resolve_base(&self, dn: &str) -> Option<BaseRef> {
        let norm = normalise_dn(dn);
        if norm == self.base_norm {
            return Some(BaseRef::Container);
        }
        if let Some(id) = self.by_dn.get(&norm) {
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
                if hits.len() < limit && filter.eval(self.entry(id)) == Tri::True {
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
            if filter.eval(self.entry(id)) != Tri::True {
                return true;
            }
            if hits.len() >= limit {
                more = true;
                return false;
            }
            hits.push(Hit::Entry(id));
            true
        };
        let mut cursor = self.index.cursor(&self.entries, filter);
        let mut next = 0;
        while let Some(id) = cursor.seek(next) {
            if !consider(id, &mut hits) {
                break;
            }
            next = id + 1;
        }
        (hits, more)
    }

    /// The candidate ids of a filter (for tests and benches of the indexes).
    pub fn candidates(&self, filter: &Node) -> Option<Ids> {
        self.index.candidates(&self.entries, filter)
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
        Settings {
            base_dn: "ou=phonebook,dc=example,dc=com".into(),
            accents: Accents::Fold,
            numbers: NumberPlan::default(),
        }
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
            (
                "(|(cn=anna*)(telephoneNumber=*0102030))",
                vec!["Anna Müller", "Bert Meier"],
            ),
        ] {
            assert_eq!(names(&s, filter), want, "{filter}");
            // The same filter, forced through a scan, gives the same answer.
            let node = s.compile(&crate::filter::parse(filter).unwrap()).unwrap();
            let scanned: Vec<String> = s
                .entries()
                .iter()
                .filter(|e| node.eval(*e) == Tri::True)
                .map(|e| e.entry.display_name.clone())
                .collect();
            assert_eq!(scanned, want, "scan of {filter}");
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
