//! Indexes of a snapshot: which entries can match a compiled filter, without looking at all.
//!
//! The phone query mix is name prefixes and substrings over cn / sn / givenName / o and
//! number lookups (equality, contains, suffix). Sorted value arrays answer equality, prefix
//! and range; trigram posting lists answer substrings of three or more characters (digits for
//! numbers); an E.164 map answers caller lookup. A filter with no usable index falls back to a
//! scan: indexes only ever narrow the candidates, the filter itself still decides.

use std::collections::HashMap;

use crate::directory::matcher::{Node, Pieces, Tri};
use crate::directory::schema::Text;
use crate::directory::ServedEntry;

/// Text attributes with a sorted-value index (equality, prefix, range).
const SORTED: [Text; 8] = [
    Text::Uid,
    Text::Cn,
    Text::GivenName,
    Text::Sn,
    Text::O,
    Text::Ou,
    Text::Title,
    Text::Mail,
];
/// Text attributes with a trigram index (substrings).
const TRIGRAM: [Text; 4] = [Text::Cn, Text::GivenName, Text::Sn, Text::O];

/// Entry positions, ascending (= display order).
pub type Ids = Vec<u32>;

#[derive(Default)]
pub struct Indexes {
    sorted: HashMap<Text, Vec<(Box<str>, u32)>>,
    trigrams: HashMap<Text, HashMap<u64, Ids>>,
    e164: HashMap<Box<str>, Ids>,
    digit_trigrams: HashMap<u64, Ids>,
}

/// `displayName` holds the same value as `cn` and shares its indexes.
fn index_attr(t: Text) -> Text {
    if t == Text::DisplayName {
        Text::Cn
    } else {
        t
    }
}

impl Indexes {
    pub fn build(entries: &[ServedEntry]) -> Self {
        let mut ix = Indexes::default();
        for (i, e) in entries.iter().enumerate() {
            let id = i as u32;
            for t in SORTED {
                if let Some(v) = e.folded(t) {
                    ix.sorted.entry(t).or_default().push((v.into(), id));
                }
            }
            for t in TRIGRAM {
                if let Some(v) = e.folded(t) {
                    let postings = ix.trigrams.entry(t).or_default();
                    for g in trigrams(v) {
                        push_unique(postings.entry(g).or_default(), id);
                    }
                }
            }
            for keys in e.all_phone_keys() {
                if let Some(e164) = &keys.e164 {
                    push_unique(ix.e164.entry(e164.as_str().into()).or_default(), id);
                }
                for key in keys.keys() {
                    for g in trigrams(key) {
                        push_unique(ix.digit_trigrams.entry(g).or_default(), id);
                    }
                }
            }
        }
        for values in ix.sorted.values_mut() {
            values.sort_unstable();
        }
        ix
    }

    /// A superset of the entries `node` can be True for, or `None` when only a scan can tell.
    pub fn candidates(&self, node: &Node) -> Option<Ids> {
        match node {
            Node::And(nodes) => {
                let sets: Vec<Ids> = nodes.iter().filter_map(|n| self.candidates(n)).collect();
                (!sets.is_empty()).then(|| intersect(sets))
            }
            Node::Or(nodes) => {
                let sets = nodes
                    .iter()
                    .map(|n| self.candidates(n))
                    .collect::<Option<Vec<_>>>()?;
                Some(union(sets))
            }
            Node::Const(Tri::True) => None,
            Node::Const(_) => Some(Vec::new()),
            Node::TextEq(t, v) => self.range(*t, |x| x < v.as_str(), |x| x <= v.as_str()),
            Node::TextGe(t, v) => self.range(*t, |x| x < v.as_str(), |_| true),
            Node::TextLe(t, v) => self.range(*t, |_| false, |x| x <= v.as_str()),
            Node::TextSub(t, pieces) => {
                let by_prefix = pieces
                    .initial
                    .as_deref()
                    .and_then(|p| self.range(*t, |x| x < p, |x| x < p || x.starts_with(p)));
                let by_trigram = self
                    .trigrams
                    .get(&index_attr(*t))
                    .and_then(|ix| postings(ix, pieces));
                match (by_prefix, by_trigram) {
                    (Some(a), Some(b)) => Some(intersect(vec![a, b])),
                    (a, b) => a.or(b),
                }
            }
            Node::PhoneEq(_, v) => {
                let by_e164 = v
                    .e164
                    .as_deref()
                    .map(|e| self.e164.get(e).cloned().unwrap_or_default());
                let by_digits = (v.digits.chars().count() >= 3).then(|| {
                    intersect(
                        trigrams(&v.digits)
                            .map(|g| self.digit_trigrams.get(&g).cloned().unwrap_or_default())
                            .collect(),
                    )
                });
                match (by_e164, by_digits) {
                    (Some(a), Some(b)) => Some(union(vec![a, b])),
                    // Digits alone always exist when there is an E.164 form; a value with
                    // neither is compared on its written form: scan.
                    _ => None,
                }
            }
            Node::PhoneDigits(_, pieces) => postings(&self.digit_trigrams, pieces),
            _ => None,
        }
    }

    /// Ids whose value of `t` lies in the sorted range `[first x where !before(x), first x
    /// where !within(x))`.
    fn range(
        &self,
        t: Text,
        before: impl Fn(&str) -> bool,
        within: impl Fn(&str) -> bool,
    ) -> Option<Ids> {
        let values = self.sorted.get(&index_attr(t))?;
        let start = values.partition_point(|(x, _)| before(x));
        let end = start + values[start..].partition_point(|(x, _)| within(x));
        let mut ids: Ids = values[start..end].iter().map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }
}

/// Postings of every trigram of the longest piece (3+ characters), intersected.
fn postings(index: &HashMap<u64, Ids>, pieces: &Pieces) -> Option<Ids> {
    let piece = pieces.longest().filter(|p| p.chars().count() >= 3)?;
    let sets: Vec<Ids> = trigrams(piece)
        .map(|g| index.get(&g).cloned().unwrap_or_default())
        .collect();
    Some(intersect(sets))
}

fn push_unique(ids: &mut Ids, id: u32) {
    if ids.last() != Some(&id) {
        ids.push(id);
    }
}

/// Three consecutive characters packed into one key.
pub fn trigrams(s: &str) -> impl Iterator<Item = u64> + '_ {
    let chars: Vec<u64> = s.chars().map(u64::from).collect();
    (0..chars.len().saturating_sub(2))
        .map(move |i| (chars[i] << 42) | (chars[i + 1] << 21) | chars[i + 2])
}

/// Intersection of ascending id lists, smallest first so the work is bounded by it.
fn intersect(mut sets: Vec<Ids>) -> Ids {
    sets.sort_by_key(Vec::len);
    let mut iter = sets.into_iter();
    let Some(mut acc) = iter.next() else {
        return Vec::new();
    };
    for set in iter {
        if acc.is_empty() {
            break;
        }
        acc.retain(|id| set.binary_search(id).is_ok());
    }
    acc
}

fn union(sets: Vec<Ids>) -> Ids {
    let mut all: Ids = sets.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_keep_ids_sorted_and_unique() {
        assert_eq!(
            intersect(vec![vec![1, 3, 5, 7], vec![3, 4, 5], vec![0, 3, 5, 9]]),
            [3, 5]
        );
        assert_eq!(intersect(vec![vec![1], vec![]]), Vec::<u32>::new());
        assert_eq!(union(vec![vec![5, 1], vec![1, 2]]), [1, 2, 5]);
    }

    #[test]
    fn trigrams_slide_over_characters() {
        assert_eq!(trigrams("müll").count(), 2);
        assert_eq!(trigrams("ab").count(), 0);
        assert_eq!(trigrams("abc").next(), trigrams("xabc").nth(1));
    }
}
