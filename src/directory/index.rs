//! Indexes of a snapshot: which entries can match a compiled filter, without looking at all.
//!
//! The phone query mix is name prefixes and substrings over cn / sn / givenName / o and
//! number lookups (equality, contains, suffix). Every index is a set of posting lists of
//! entry positions in ascending order — which is display order — so a search walks the
//! candidates lazily in the order it answers and stops at the size limit, whatever the size
//! of the lists:
//!
//! * prefixes of 1, 2 and 3 characters of every text attribute (equality and prefix);
//! * character trigrams of cn / givenName / sn / o (substrings of 3+ characters);
//! * a value-sorted position list of cn / givenName / sn (narrow `>=` / `<=` ranges);
//! * every digit key of every number (its digits, E.164 and national forms) exactly (caller
//!   lookup), and the digit 3-grams and 5-grams of those keys (number contains / suffix).
//!
//! Indexes only ever narrow the candidates; the filter itself still decides. A filter with no
//! usable index walks every entry. The lists share one allocation per index ([`Postings`]),
//! so 100k entries cost a few tens of MB, not a heap object per key.

use std::borrow::Cow;

use crate::directory::matcher::{Node, Pieces, Tri};
use crate::directory::schema::Text;
use crate::directory::ServedEntry;

/// Text attributes with a prefix index (every one a phone might search by equality).
const PREFIXED: [Text; 9] = Text::DISTINCT;
/// Text attributes with a trigram index (substrings).
const TRIGRAM: [Text; 4] = [Text::Cn, Text::GivenName, Text::Sn, Text::O];
/// Text attributes with a value-sorted index (ranges).
const SORTED: [Text; 3] = [Text::Cn, Text::GivenName, Text::Sn];
/// A range wider than this walks all entries instead (a superset, and no sorting).
const MAX_RANGE: usize = 4096;

/// Entry positions, ascending (= display order).
pub type Ids = Vec<u32>;

/// Posting lists keyed by `u64`, all in one id array: key `keys[i]` has
/// `ids[offsets[i]..offsets[i + 1]]`, ascending and unique.
#[derive(Default)]
pub struct Postings {
    keys: Vec<u64>,
    offsets: Vec<u32>,
    ids: Vec<u32>,
}

impl Postings {
    /// From `(key, id)` pairs in any order (duplicates allowed).
    fn build(mut pairs: Vec<(u64, u32)>) -> Self {
        pairs.sort_unstable();
        pairs.dedup();
        let mut p = Postings {
            keys: Vec::new(),
            offsets: Vec::new(),
            ids: Vec::with_capacity(pairs.len()),
        };
        for (key, id) in pairs {
            if p.keys.last() != Some(&key) {
                p.keys.push(key);
                p.offsets.push(p.ids.len() as u32);
            }
            p.ids.push(id);
        }
        p.offsets.push(p.ids.len() as u32);
        p.keys.shrink_to_fit();
        p.offsets.shrink_to_fit();
        p
    }

    fn get(&self, key: u64) -> &[u32] {
        match self.keys.binary_search(&key) {
            Ok(i) => &self.ids[self.offsets[i] as usize..self.offsets[i + 1] as usize],
            Err(_) => &[],
        }
    }
}

/// Per text attribute: prefix and trigram postings (one key space), value-sorted positions.
#[derive(Default)]
struct TextIndex {
    postings: Postings,
    sorted: Vec<u32>,
}

#[derive(Default)]
pub struct Indexes {
    text: Vec<TextIndex>,
    /// Exact digit keys (hashed).
    phone_keys: Postings,
    /// Digit 3-grams and 5-grams of the keys.
    phone_grams: Postings,
    len: u32,
}

/// `displayName` holds the same value as `cn` and shares its indexes.
fn index_attr(t: Text) -> Text {
    if t == Text::DisplayName {
        Text::Cn
    } else {
        t
    }
}

/// Marks a prefix key; trigram keys use 63 bits (three 21-bit characters).
const PREFIX_BIT: u64 = 1 << 63;
/// Fills the character slots a short prefix does not use (above every char value).
const NO_CHAR: u64 = 0x1F_FFFF;

fn pack3(a: u64, b: u64, c: u64) -> u64 {
    (a << 42) | (b << 21) | c
}

/// The prefix key of the first 1..=3 characters of `s`, or `None` for an empty `s`.
fn prefix_key(s: &str) -> Option<u64> {
    let mut c = s.chars().map(u64::from);
    let a = c.next()?;
    let b = c.next().unwrap_or(NO_CHAR);
    let d = if b == NO_CHAR {
        NO_CHAR
    } else {
        c.next().unwrap_or(NO_CHAR)
    };
    Some(PREFIX_BIT | pack3(a, b, d))
}

/// Three consecutive characters packed into one key.
pub fn trigrams(s: &str) -> impl Iterator<Item = u64> + '_ {
    let chars: Vec<u64> = s.chars().map(u64::from).collect();
    (0..chars.len().saturating_sub(2)).map(move |i| pack3(chars[i], chars[i + 1], chars[i + 2]))
}

/// Digit n-grams (n = 3 or 5) of an all-digit key, as decimal values tagged with n.
fn digit_grams(digits: &str, n: usize) -> impl Iterator<Item = u64> + '_ {
    let d = digits.as_bytes();
    (0..(d.len() + 1).saturating_sub(n)).map(move |i| {
        d[i..i + n].iter().fold(n as u64, |acc, b| {
            acc * 10 + u64::from(b.wrapping_sub(b'0'))
        })
    })
}

/// FNV-1a of a digit key.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Indexes {
    pub fn build(entries: &[ServedEntry]) -> Self {
        let mut text: Vec<TextIndex> = (0..crate::directory::schema::Text::COUNT)
            .map(|_| TextIndex::default())
            .collect();
        for t in PREFIXED {
            let trigram = TRIGRAM.contains(&t);
            let mut pairs = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                let Some(v) = e.folded(t) else { continue };
                let id = i as u32;
                let mut chars = v.chars().map(u64::from);
                if let Some(a) = chars.next() {
                    pairs.push((PREFIX_BIT | pack3(a, NO_CHAR, NO_CHAR), id));
                    if let Some(b) = chars.next() {
                        pairs.push((PREFIX_BIT | pack3(a, b, NO_CHAR), id));
                        if let Some(c) = chars.next() {
                            pairs.push((PREFIX_BIT | pack3(a, b, c), id));
                        }
                    }
                }
                if trigram {
                    pairs.extend(trigrams(v).map(|g| (g, id)));
                }
            }
            text[t.slot()].postings = Postings::build(pairs);
        }
        for t in SORTED {
            let mut sorted: Vec<u32> = (0..entries.len() as u32)
                .filter(|id| entries[*id as usize].folded(t).is_some())
                .collect();
            sorted.sort_by_cached_key(|id| entries[*id as usize].folded(t));
            text[t.slot()].sorted = sorted;
        }
        let mut keys = Vec::new();
        let mut grams = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let id = i as u32;
            for phone in e.all_phone_keys() {
                for key in phone.keys() {
                    keys.push((key_hash(key), id));
                    grams.extend(digit_grams(key, 3).map(|g| (g, id)));
                    grams.extend(digit_grams(key, 5).map(|g| (g, id)));
                }
            }
        }
        Indexes {
            text,
            phone_keys: Postings::build(keys),
            phone_grams: Postings::build(grams),
            len: entries.len() as u32,
        }
    }

    /// A superset of the entries `node` can be True for, or `None` when only a scan can tell.
    pub fn candidates(&self, entries: &[ServedEntry], node: &Node) -> Option<Ids> {
        match self.plan(entries, node) {
            Plan::All => None,
            plan => {
                let mut cursor = Cursor::new(plan);
                let mut ids = Vec::new();
                let mut next = 0;
                while let Some(id) = cursor.seek(next) {
                    ids.push(id);
                    next = id + 1;
                }
                Some(ids)
            }
        }
    }

    /// The candidates of `node` among `entries` (the ones indexed) as a cursor in
    /// ascending id order.
    pub fn cursor(&self, entries: &[ServedEntry], node: &Node) -> Cursor<'_> {
        let plan = self.plan(entries, node);
        if let Plan::All = plan {
            return Cursor::All { len: self.len };
        }
        Cursor::new(plan)
    }

    fn plan(&self, entries: &[ServedEntry], node: &Node) -> Plan<'_> {
        match node {
            Node::And(nodes) => Plan::and(nodes.iter().map(|n| self.plan(entries, n)).collect()),
            Node::Or(nodes) => Plan::or(nodes.iter().map(|n| self.plan(entries, n)).collect()),
            Node::Const(Tri::True) => Plan::All,
            Node::Const(_) => Plan::none(),
            Node::TextEq(t, v) => self.prefix(*t, v),
            Node::TextGe(t, v) => self.range(entries, *t, |x| x < v.as_str(), |_| true),
            Node::TextLe(t, v) => self.range(entries, *t, |_| false, |x| x <= v.as_str()),
            Node::TextSub(t, pieces) => {
                let by_prefix = pieces
                    .initial
                    .as_deref()
                    .map_or(Plan::All, |p| self.prefix(*t, p));
                let by_trigram = self.substring(*t, pieces);
                Plan::and(vec![by_prefix, by_trigram])
            }
            Node::PhoneEq(_, v) => {
                if v.digits.is_empty() {
                    // Compared on its written form only: no digit key to look up.
                    return Plan::All;
                }
                let mut keys = vec![Plan::List(Cow::Borrowed(
                    self.phone_keys.get(key_hash(&v.digits)),
                ))];
                if let Some(e164) = v.e164.as_deref().filter(|e| *e != v.digits) {
                    keys.push(Plan::List(Cow::Borrowed(
                        self.phone_keys.get(key_hash(e164)),
                    )));
                }
                Plan::or(keys)
            }
            Node::PhoneDigits(_, pieces) => {
                let Some(piece) = pieces.longest().filter(|p| p.len() >= 3) else {
                    return Plan::All;
                };
                let n = if piece.len() >= 5 { 5 } else { 3 };
                Plan::and(
                    digit_grams(piece, n)
                        .map(|g| Plan::List(Cow::Borrowed(self.phone_grams.get(g))))
                        .collect(),
                )
            }
            _ => Plan::All,
        }
    }

    /// Values of `t` starting with `p` (at most its first three characters are indexed).
    fn prefix(&self, t: Text, p: &str) -> Plan<'_> {
        match (self.text.get(index_attr(t).slot()), prefix_key(p)) {
            (Some(index), Some(key)) => Plan::List(Cow::Borrowed(index.postings.get(key))),
            _ => Plan::All,
        }
    }

    /// Values of `t` containing the longest piece (3+ characters) of `pieces`.
    fn substring(&self, t: Text, pieces: &Pieces) -> Plan<'_> {
        let t = index_attr(t);
        let Some(piece) = pieces.longest().filter(|p| p.chars().count() >= 3) else {
            return Plan::All;
        };
        if !TRIGRAM.contains(&t) {
            return Plan::All;
        }
        let Some(index) = self.text.get(t.slot()) else {
            return Plan::All;
        };
        Plan::and(
            trigrams(piece)
                .map(|g| Plan::List(Cow::Borrowed(index.postings.get(g))))
                .collect(),
        )
    }

    /// Ids whose value of `t` lies in the sorted range `[first x where !before(x), first x
    /// where !within(x))`, when that range is narrow enough to be worth sorting.
    fn range(
        &self,
        entries: &[ServedEntry],
        t: Text,
        before: impl Fn(&str) -> bool,
        within: impl Fn(&str) -> bool,
    ) -> Plan<'_> {
        let t = index_attr(t);
        if !SORTED.contains(&t) {
            return Plan::All;
        }
        let Some(index) = self.text.get(t.slot()) else {
            return Plan::All;
        };
        let value = |id: &u32| entries[*id as usize].folded(t).unwrap_or_default();
        let start = index.sorted.partition_point(|id| before(value(id)));
        let len = index.sorted[start..].partition_point(|id| within(value(id)));
        if len > MAX_RANGE {
            return Plan::All;
        }
        let mut ids = index.sorted[start..start + len].to_vec();
        ids.sort_unstable();
        Plan::List(Cow::Owned(ids))
    }
}

/// Which entries to consider, before it is walked.
enum Plan<'a> {
    /// Every entry (no index applies).
    All,
    /// Ascending, unique ids.
    List(Cow<'a, [u32]>),
    And(Vec<Plan<'a>>),
    Or(Vec<Plan<'a>>),
}

impl<'a> Plan<'a> {
    fn none() -> Self {
        Plan::List(Cow::Borrowed(&[]))
    }

    fn is_empty(&self) -> bool {
        matches!(self, Plan::List(ids) if ids.is_empty())
    }

    fn and(parts: Vec<Plan<'a>>) -> Self {
        let mut parts: Vec<Plan<'a>> = parts
            .into_iter()
            .filter(|p| !matches!(p, Plan::All))
            .collect();
        if parts.iter().any(Plan::is_empty) {
            return Plan::none();
        }
        match parts.len() {
            0 => Plan::All,
            1 => parts.remove(0),
            _ => Plan::And(parts),
        }
    }

    fn or(parts: Vec<Plan<'a>>) -> Self {
        if parts.iter().any(|p| matches!(p, Plan::All)) {
            return Plan::All;
        }
        let mut parts: Vec<Plan<'a>> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        match parts.len() {
            0 => Plan::none(),
            1 => parts.remove(0),
            _ => Plan::Or(parts),
        }
    }

    /// An upper bound of the number of ids, to order intersections.
    fn estimate(&self) -> usize {
        match self {
            Plan::All => usize::MAX,
            Plan::List(ids) => ids.len(),
            Plan::And(parts) => parts.iter().map(Plan::estimate).min().unwrap_or(0),
            Plan::Or(parts) => parts
                .iter()
                .map(Plan::estimate)
                .fold(0, usize::saturating_add),
        }
    }
}

/// Walks candidate ids in ascending order: `seek(n)` gives the first candidate `>= n`.
pub enum Cursor<'a> {
    All { len: u32 },
    List { ids: Cow<'a, [u32]>, pos: usize },
    And(Vec<Cursor<'a>>),
    Or(Vec<Cursor<'a>>),
}

impl<'a> Cursor<'a> {
    fn new(plan: Plan<'a>) -> Self {
        match plan {
            // Only reached inside And/Or, which drop All parts; kept total for safety.
            Plan::All => Cursor::All { len: u32::MAX },
            Plan::List(ids) => Cursor::List { ids, pos: 0 },
            Plan::And(mut parts) => {
                // Smallest first: it proposes, the others confirm.
                parts.sort_by_key(Plan::estimate);
                Cursor::And(parts.into_iter().map(Cursor::new).collect())
            }
            Plan::Or(parts) => Cursor::Or(parts.into_iter().map(Cursor::new).collect()),
        }
    }

    /// The first candidate id `>= target`, or `None` when there is none. Targets must not
    /// decrease from one call to the next.
    pub fn seek(&mut self, target: u32) -> Option<u32> {
        match self {
            Cursor::All { len } => (target < *len).then_some(target),
            Cursor::List { ids, pos } => {
                let ids: &[u32] = ids;
                if *pos >= ids.len() {
                    return None;
                }
                if ids[*pos] < target {
                    // Gallop, then binary search in the last step.
                    let mut step = 1;
                    let mut lo = *pos;
                    while lo + step < ids.len() && ids[lo + step] < target {
                        lo += step;
                        step *= 2;
                    }
                    let hi = (lo + step + 1).min(ids.len());
                    *pos = lo + ids[lo..hi].partition_point(|id| *id < target);
                }
                ids.get(*pos).copied()
            }
            Cursor::And(parts) => {
                let mut x = target;
                'again: loop {
                    for part in parts.iter_mut() {
                        let y = part.seek(x)?;
                        if y != x {
                            x = y;
                            continue 'again;
                        }
                    }
                    return Some(x);
                }
            }
            Cursor::Or(parts) => parts.iter_mut().filter_map(|p| p.seek(target)).min(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(mut c: Cursor) -> Vec<u32> {
        let mut out = Vec::new();
        let mut next = 0;
        while let Some(id) = c.seek(next) {
            out.push(id);
            next = id + 1;
        }
        out
    }

    fn list(ids: &[u32]) -> Plan<'static> {
        Plan::List(Cow::Owned(ids.to_vec()))
    }

    #[test]
    fn cursors_intersect_and_unite_in_order() {
        let and = Plan::and(vec![
            list(&[1, 3, 5, 7, 100, 200]),
            list(&[3, 4, 5, 200]),
            list(&[0, 3, 5, 9, 200]),
        ]);
        assert_eq!(walk(Cursor::new(and)), [3, 5, 200]);
        let or = Plan::or(vec![list(&[5, 1]), list(&[1, 2])]);
        assert_eq!(walk(Cursor::new(or)), [1, 2, 5]);
        assert!(walk(Cursor::new(Plan::and(vec![list(&[1]), list(&[])]))).is_empty());
        let long: Vec<u32> = (0..1000).collect();
        let and = Plan::and(vec![list(&long), list(&[17, 512, 999]), Plan::All]);
        assert_eq!(walk(Cursor::new(and)), [17, 512, 999]);
        assert!(matches!(Plan::or(vec![list(&[1]), Plan::All]), Plan::All));
    }

    #[test]
    fn trigrams_slide_over_characters() {
        assert_eq!(trigrams("müll").count(), 2);
        assert_eq!(trigrams("ab").count(), 0);
        assert_eq!(trigrams("abc").next(), trigrams("xabc").nth(1));
    }

    #[test]
    fn digit_grams_are_tagged_with_their_length() {
        assert_eq!(digit_grams("0891", 3).collect::<Vec<_>>(), [3089, 3891]);
        assert_eq!(digit_grams("12", 3).count(), 0);
        assert_ne!(digit_grams("00123", 5).next(), digit_grams("123", 3).next());
        assert_ne!(prefix_key("m"), prefix_key("mü"));
        assert_eq!(prefix_key(""), None);
    }
}
