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
//! * every digit key of every number (its digits, E.164 and national forms, national
//!   significant number, extension) exactly (caller lookup), and the digit 3-grams and
//!   5-grams of the first three (number contains / suffix: the other two are runs of the
//!   E.164 digits).
//!
//! Indexes only ever narrow the candidates; the filter itself still decides. A filter with no
//! usable index walks every entry. The lists share one allocation per index ([`Postings`]),
//! so 100k entries cost a few tens of MB, not a heap object per key.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::directory::matcher::{Node, Pieces, Tri};
use crate::directory::schema::Text;
use crate::directory::Packed;

/// Text attributes with a prefix index (every one a phone might search by name).
const PREFIXED: [Text; 7] = [
    Text::Uid,
    Text::Cn,
    Text::GivenName,
    Text::Sn,
    Text::O,
    Text::Ou,
    Text::Mail,
];
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

/// Collects `(key, id)` pairs — ids must not decrease (entries are visited in order) and
/// may repeat — grouping them by hashing, so that only the distinct keys are sorted.
#[derive(Default)]
struct PostingsBuilder {
    groups: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
    keys: Vec<u64>,
    counts: Vec<u32>,
    last: Vec<u32>,
    /// (group, id) in arrival order.
    seq: Vec<(u32, u32)>,
}

impl PostingsBuilder {
    fn push(&mut self, key: u64, id: u32) {
        let (keys, counts, last) = (&mut self.keys, &mut self.counts, &mut self.last);
        let g = *self.groups.entry(key).or_insert_with(|| {
            keys.push(key);
            counts.push(0);
            last.push(u32::MAX);
            (keys.len() - 1) as u32
        }) as usize;
        if self.last[g] != id {
            self.last[g] = id;
            self.counts[g] += 1;
            self.seq.push((g as u32, id));
        }
    }

    fn finish(self) -> Postings {
        let PostingsBuilder {
            groups,
            keys,
            counts,
            seq,
            ..
        } = self;
        drop(groups);
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_unstable_by_key(|g| keys[*g as usize]);
        let mut next = vec![0u32; keys.len()];
        let mut offsets = Vec::with_capacity(keys.len() + 1);
        let mut total = 0u32;
        for g in &order {
            next[*g as usize] = total;
            offsets.push(total);
            total += counts[*g as usize];
        }
        offsets.push(total);
        let mut ids = vec![0u32; total as usize];
        for (g, id) in seq {
            let at = &mut next[g as usize];
            ids[*at as usize] = id;
            *at += 1;
        }
        Postings {
            keys: order.iter().map(|g| keys[*g as usize]).collect(),
            offsets,
            ids,
        }
    }
}

impl Postings {
    fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8 + (self.offsets.capacity() + self.ids.capacity()) * 4
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

/// Posting lists of every digit n-gram, addressed by its value (`10^n` lists).
#[derive(Default)]
struct DigitGrams {
    n: usize,
    offsets: Vec<u32>,
    ids: Vec<u32>,
}

impl DigitGrams {
    /// The n-gram lists of `keys` (`(entry, key)` with entries in order).
    fn build<'a>(
        keys: impl Fn() -> Box<dyn Iterator<Item = (u32, &'a [u8])> + 'a>,
        n: usize,
    ) -> Self {
        let k = 10usize.pow(n as u32);
        let mut counts = vec![0u32; k];
        let mut last = vec![u32::MAX; k];
        for (id, key) in keys() {
            for g in digit_grams(key, n) {
                if last[g] != id {
                    last[g] = id;
                    counts[g] += 1;
                }
            }
        }
        let mut offsets = Vec::with_capacity(k + 1);
        let mut total = 0u32;
        for c in &counts {
            offsets.push(total);
            total += c;
        }
        offsets.push(total);
        drop(counts);
        let mut ids = vec![0u32; total as usize];
        let mut next = offsets[..k].to_vec();
        last.fill(u32::MAX);
        for (id, key) in keys() {
            for g in digit_grams(key, n) {
                if last[g] != id {
                    last[g] = id;
                    ids[next[g] as usize] = id;
                    next[g] += 1;
                }
            }
        }
        DigitGrams { n, offsets, ids }
    }

    fn get(&self, gram: usize) -> &[u32] {
        match (self.offsets.get(gram), self.offsets.get(gram + 1)) {
            (Some(&a), Some(&b)) => &self.ids[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// A hasher for keys that are already well spread `u64`s.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(self.0 ^ u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

#[derive(Default)]
pub struct Indexes {
    text: Vec<TextIndex>,
    /// Exact digit keys (hashed).
    phone_keys: Postings,
    /// Digit 3-grams and 5-grams of the keys.
    grams3: DigitGrams,
    grams5: DigitGrams,
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

/// The key of the first `n` (1..=3) characters of `s`, or `None` when it is shorter.
fn prefix_key(s: &str, n: usize) -> Option<u64> {
    let mut c = s.chars().map(u64::from);
    let mut k = [NO_CHAR; 3];
    for slot in k.iter_mut().take(n) {
        *slot = c.next()?;
    }
    Some(PREFIX_BIT | pack3(k[0], k[1], k[2]))
}

/// The prefix key a value starting with `p` has: of its first three characters at most.
fn lookup_prefix_key(p: &str) -> Option<u64> {
    let n = p.chars().take(3).count();
    if n == 0 {
        return None;
    }
    prefix_key(p, n)
}

/// The first eight bytes of `s` as a big-endian number (zero-padded): ordering by it, then by
/// the whole string, is ordering by the string — with most comparisons on a local `u64`.
pub fn head(s: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

/// Three consecutive characters packed into one key.
pub fn trigrams(s: &str) -> impl Iterator<Item = u64> + '_ {
    let mut c = s.chars().map(u64::from);
    let mut window = [c.next(), c.next()];
    c.filter_map(move |z| {
        let [x, y] = window;
        window = [y, Some(z)];
        Some(pack3(x?, y?, z))
    })
}

/// The n-grams of the digit runs of `key`, as their decimal values.
fn digit_grams(key: &[u8], n: usize) -> impl Iterator<Item = usize> + '_ {
    key.windows(n).filter_map(|w| {
        w.iter().try_fold(0usize, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + usize::from(b - b'0'))
        })
    })
}

/// FNV-1a of a digit key.
fn key_hash(key: &[u8]) -> u64 {
    crate::model::fnv1a64(key)
}

impl Indexes {
    /// Bytes the indexes hold (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        let text: usize = self
            .text
            .iter()
            .map(|t| t.postings.heap_bytes() + t.sorted.capacity() * 4)
            .sum();
        let grams = |g: &DigitGrams| (g.offsets.capacity() + g.ids.capacity()) * 4;
        text + self.phone_keys.heap_bytes() + grams(&self.grams3) + grams(&self.grams5)
    }

    /// Builds every index of `entries`; the number indexes on a second thread when the
    /// phone book is large.
    pub fn build(entries: &[Box<[u8]>]) -> Self {
        let (text, (phone_keys, grams3, grams5)) = if entries.len() >= 20_000 {
            std::thread::scope(|scope| {
                let phones = scope.spawn(|| Self::build_phones(entries));
                let text = Self::build_text(entries);
                let phones = phones
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
                (text, phones)
            })
        } else {
            (Self::build_text(entries), Self::build_phones(entries))
        };
        Indexes {
            text,
            phone_keys,
            grams3,
            grams5,
            len: entries.len() as u32,
        }
    }

    /// Prefix and trigram lists, one attribute after the other, then the sorted lists. One
    /// attribute at a time keeps only that attribute's `(key, id)` pairs in memory while they
    /// are grouped (tens of MB at 100k entries, on top of the snapshot being built — the
    /// start-up peak); it reads the entries once per attribute, which costs far less.
    fn build_text(entries: &[Box<[u8]>]) -> Vec<TextIndex> {
        let mut text: Vec<TextIndex> = (0..Text::COUNT).map(|_| TextIndex::default()).collect();
        for t in PREFIXED {
            let mut builder = PostingsBuilder::default();
            let trigram = TRIGRAM.contains(&t);
            for (i, e) in entries.iter().enumerate() {
                let id = i as u32;
                let Some(v) = Packed(e).text(t) else {
                    continue;
                };
                for n in 1..=3 {
                    if let Some(key) = prefix_key(v, n) {
                        builder.push(key, id);
                    }
                }
                if trigram {
                    trigrams(v).for_each(|g| builder.push(g, id));
                }
            }
            text[t.slot()].postings = builder.finish();
        }
        for t in SORTED {
            let values: Vec<Option<&str>> = entries.iter().map(|e| Packed(e).text(t)).collect();
            let heads: Vec<u64> = values.iter().map(|v| head(v.unwrap_or_default())).collect();
            let mut sorted: Vec<u32> = (0..entries.len() as u32)
                .filter(|id| values[*id as usize].is_some())
                .collect();
            sorted.sort_unstable_by(|a, b| {
                let (a, b) = (*a as usize, *b as usize);
                heads[a]
                    .cmp(&heads[b])
                    .then_with(|| values[a].cmp(&values[b]))
                    .then(a.cmp(&b))
            });
            text[t.slot()].sorted = sorted;
        }
        text
    }

    fn build_phones(entries: &[Box<[u8]>]) -> (Postings, DigitGrams, DigitGrams) {
        // Every distinct key once, in one buffer, so the passes below read memory in order;
        // the n-gram passes skip the keys that are runs of the E.164 digits (flagged).
        let mut bytes: Vec<u8> = Vec::new();
        let mut keys: Vec<(u32, u32, bool)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            for view in Packed(e).all_phones() {
                let tagged = view
                    .gram_keys()
                    .map(|k| (k, true))
                    .chain(view.exact_only_keys().map(|k| (k, false)));
                for (key, gram) in tagged {
                    bytes.extend_from_slice(key.as_bytes());
                    keys.push((i as u32, bytes.len() as u32, gram));
                }
            }
        }
        let tagged = || {
            keys.iter().scan(0usize, |start, &(id, end, gram)| {
                let key = &bytes[*start..end as usize];
                *start = end as usize;
                Some((id, key, gram))
            })
        };
        let flat = || -> Box<dyn Iterator<Item = (u32, &[u8])> + '_> {
            Box::new(tagged().filter(|t| t.2).map(|(id, key, _)| (id, key)))
        };
        let mut exact = PostingsBuilder::default();
        for (id, key, _) in tagged() {
            exact.push(key_hash(key), id);
        }
        (
            exact.finish(),
            DigitGrams::build(flat, 3),
            DigitGrams::build(flat, 5),
        )
    }

    /// A superset of the entries `node` can be True for, or `None` when only a scan can tell.
    pub fn candidates(&self, entries: &[Box<[u8]>], node: &Node) -> Option<Ids> {
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
    pub fn cursor(&self, entries: &[Box<[u8]>], node: &Node) -> Cursor<'_> {
        let plan = self.plan(entries, node);
        if let Plan::All = plan {
            return Cursor::All { len: self.len };
        }
        Cursor::new(plan)
    }

    fn plan(&self, entries: &[Box<[u8]>], node: &Node) -> Plan<'_> {
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
                    self.phone_keys.get(key_hash(v.digits.as_bytes())),
                ))];
                if let Some(e164) = v.e164.as_deref().filter(|e| *e != v.digits) {
                    keys.push(Plan::List(Cow::Borrowed(
                        self.phone_keys.get(key_hash(e164.as_bytes())),
                    )));
                }
                Plan::or(keys)
            }
            Node::PhoneDigits(_, pieces) => {
                let Some(piece) = pieces.longest().filter(|p| p.len() >= 3) else {
                    return Plan::All;
                };
                let grams = if piece.len() >= self.grams5.n {
                    &self.grams5
                } else {
                    &self.grams3
                };
                Plan::and(
                    digit_grams(piece.as_bytes(), grams.n)
                        .map(|g| Plan::List(Cow::Borrowed(grams.get(g))))
                        .collect(),
                )
            }
            _ => Plan::All,
        }
    }

    /// Values of `t` starting with `p` (at most its first three characters are indexed).
    fn prefix(&self, t: Text, p: &str) -> Plan<'_> {
        let t = index_attr(t);
        if !PREFIXED.contains(&t) {
            return Plan::All;
        }
        match (self.text.get(t.slot()), lookup_prefix_key(p)) {
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
        entries: &[Box<[u8]>],
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
        let value = |id: &u32| Packed(&entries[*id as usize]).text(t).unwrap_or_default();
        // Bounds every value meets (Poly's `(sn>=A)(sn<=zz)`, sent with every search) narrow
        // nothing: the two ends of the sorted values say so without a binary search, whose
        // 30-odd probes into scattered entries cost more than the rest of such a search.
        let first_in = index.sorted.first().is_some_and(|id| !before(value(id)));
        let last_in = index.sorted.last().is_some_and(|id| within(value(id)));
        if first_in && last_in {
            return Plan::All;
        }
        let start = index.sorted.partition_point(|id| before(value(id)));
        let len = index.sorted[start..].partition_point(|id| within(value(id)));
        // A wide range narrows nothing (Poly's `(sn>=A)(sn<=zz)`): walk instead of sorting it.
        if len > MAX_RANGE || (len > 64 && len * 2 > entries.len()) {
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
    fn digit_grams_and_prefix_keys() {
        assert_eq!(digit_grams(b"0891", 3).collect::<Vec<_>>(), [89, 891]);
        assert_eq!(digit_grams(b"12", 3).count(), 0);
        assert_eq!(digit_grams(b"1x234", 3).collect::<Vec<_>>(), [234]);
        assert!(head("ab") < head("abc") && head("abz") < head("ac"));
        assert_ne!(lookup_prefix_key("m"), lookup_prefix_key("mü"));
        assert_eq!(lookup_prefix_key("müller"), prefix_key("mül", 3));
        assert_eq!(lookup_prefix_key(""), None);
        assert_eq!(prefix_key("mü", 3), None);
    }

    #[test]
    fn postings_group_keys_and_keep_ids_ascending() {
        let mut b = PostingsBuilder::default();
        for (key, id) in [(7, 1), (3, 1), (7, 1), (3, 2), (9, 4), (3, 4)] {
            b.push(key, id);
        }
        let p = b.finish();
        assert_eq!(p.get(3), [1, 2, 4]);
        assert_eq!(p.get(7), [1]);
        assert_eq!(p.get(9), [4]);
        assert!(p.get(5).is_empty());
    }
}
