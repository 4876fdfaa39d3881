//! Filter evaluation: an `LdapFilter` compiled once per search into a [`Node`] tree whose
//! assertion values are already folded, then evaluated against entries.
//!
//! Semantics are RFC 4511's three-valued logic (an unknown attribute is Undefined, and
//! `!(Undefined)` stays Undefined), with caseIgnore names (accent-folded when configured) and
//! phone numbers compared on their digits and E.164 form — so a phone typing `089 1234-567`
//! finds `+49 (89) 1234-567`.

use crate::directory::fold::fold;
use crate::directory::fold::Accents;
use crate::directory::phone_keys::{PhoneKeys, PhoneView};
use crate::directory::schema::{resolve, Attr, Resolved, Text, OBJECT_CLASSES};
use crate::filter::LdapFilter;
use crate::model::PhoneKind;
use crate::numbers::{digits, NumberPlan};

/// How deep and how large a filter may be; phones send a handful of nodes.
use crate::limits::{FILTER_DEPTH, FILTER_PARTS};

/// RFC 4511 filter truth values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    True,
    False,
    Undefined,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// The numbers of one kind of a subject.
pub enum Phones<'a> {
    Owned(std::slice::Iter<'a, PhoneKeys>),
    Packed(crate::directory::packed::PhoneIter<'a>),
}

impl<'a> Iterator for Phones<'a> {
    type Item = PhoneView<'a>;

    fn next(&mut self) -> Option<PhoneView<'a>> {
        match self {
            Phones::Owned(iter) => iter.next().map(PhoneKeys::view),
            Phones::Packed(iter) => iter.next(),
        }
    }
}

/// What a filter is evaluated against: a served entry, or the base container.
pub trait Subject {
    fn has_object_class(&self, lower: &str) -> bool;
    /// The folded value of a text attribute, as bytes (what filters compare; byte order is
    /// `str` order).
    fn text(&self, attr: Text) -> Option<&[u8]>;
    fn phones(&self, kind: PhoneKind) -> Phones<'_>;
}

/// Substring pieces, folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pieces {
    pub initial: Option<String>,
    pub any: Vec<String>,
    pub last: Option<String>,
}

impl Pieces {
    /// `substring_matches` of the filter module, by bytes: the values are short, so a plain
    /// scan beats setting up a string searcher per value.
    fn matches(&self, value: &str) -> bool {
        self.matches_bytes(value.as_bytes())
    }

    fn matches_bytes(&self, value: &[u8]) -> bool {
        let mut rest = value;
        if let Some(initial) = &self.initial {
            match rest.strip_prefix(initial.as_bytes()) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        for piece in &self.any {
            match find(rest, piece.as_bytes()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        self.last
            .as_ref()
            .is_none_or(|l| rest.ends_with(l.as_bytes()))
    }

    /// The longest piece, the most selective for an index.
    pub fn longest(&self) -> Option<&str> {
        self.initial
            .iter()
            .chain(&self.any)
            .chain(&self.last)
            .map(String::as_str)
            .max_by_key(|p| p.chars().count())
    }
}

/// The first position of `needle` in `hay`. On valid UTF-8 a byte match of a whole valid
/// UTF-8 needle starts on a character boundary, so this agrees with `str::find`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, tail) = match needle.split_first() {
        Some(split) => split,
        None => return Some(0),
    };
    let last_start = hay.len().checked_sub(needle.len())?;
    (0..=last_start).find(|&i| {
        hay[i] == first
            && hay[i + 1..i + needle.len()]
                .iter()
                .zip(tail)
                .all(|(a, b)| a == b)
    })
}

/// A phone assertion in its comparable forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneValue {
    pub e164: Option<String>,
    pub digits: String,
    pub folded: String,
}

/// A compiled filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Const(Tri),
    ObjectClass(String),
    Present(Attr),
    TextEq(Text, String),
    TextSub(Text, Pieces),
    TextGe(Text, String),
    TextLe(Text, String),
    PhoneEq(PhoneKind, PhoneValue),
    /// Substrings over the digit keys of numbers.
    PhoneDigits(PhoneKind, Pieces),
    /// Substrings over the written form (an assertion with no digits at all).
    PhoneText(PhoneKind, Pieces),
    PhoneGe(PhoneKind, String),
    PhoneLe(PhoneKind, String),
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// Compiles `filter` for evaluation with the given folding and number plan.
pub fn compile(
    filter: &LdapFilter,
    accents: Accents,
    plan: &NumberPlan,
) -> Result<Node, FilterError> {
    let mut nodes = 0;
    Compiler {
        accents,
        plan,
        nodes: &mut nodes,
    }
    .node(filter, 0)
}

struct Compiler<'a> {
    accents: Accents,
    plan: &'a NumberPlan,
    nodes: &'a mut usize,
}

impl Compiler<'_> {
    fn node(&mut self, filter: &LdapFilter, depth: usize) -> Result<Node, FilterError> {
        *self.nodes += 1;
        if depth > FILTER_DEPTH {
            return Err(FilterError(format!(
                "filter nested deeper than {FILTER_DEPTH} levels"
            )));
        }
        if *self.nodes > FILTER_PARTS {
            return Err(FilterError(format!(
                "filter has more than {FILTER_PARTS} parts"
            )));
        }
        let fold = |s: &str| fold(s, self.accents);
        Ok(match filter {
            LdapFilter::And(fs) => Node::And(
                fs.iter()
                    .map(|f| self.node(f, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            LdapFilter::Or(fs) => Node::Or(
                fs.iter()
                    .map(|f| self.node(f, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            LdapFilter::Not(f) => Node::Not(Box::new(self.node(f, depth + 1)?)),
            LdapFilter::Present(attr) => match resolve(attr) {
                Resolved::Served(a) => Node::Present(a),
                Resolved::Absent => Node::Const(Tri::False),
                Resolved::Unknown => Node::Const(Tri::Undefined),
            },
            LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
                match resolve(attr) {
                    Resolved::Served(Attr::ObjectClass) => Node::ObjectClass(value.to_lowercase()),
                    Resolved::Served(Attr::Text(t)) => Node::TextEq(t, fold(value)),
                    Resolved::Served(Attr::Phone(k)) => Node::PhoneEq(k, self.phone_value(value)),
                    Resolved::Absent => Node::Const(Tri::False),
                    Resolved::Unknown => Node::Const(Tri::Undefined),
                }
            }
            LdapFilter::Substring(attr, sub) => {
                let pieces = |f: &dyn Fn(&str) -> String| Pieces {
                    initial: sub.initial.as_deref().map(f).filter(|s| !s.is_empty()),
                    any: sub
                        .any
                        .iter()
                        .map(|s| f(s))
                        .filter(|s| !s.is_empty())
                        .collect(),
                    last: sub.final_.as_deref().map(f).filter(|s| !s.is_empty()),
                };
                match resolve(attr) {
                    Resolved::Served(Attr::ObjectClass) => {
                        let p = pieces(&|s: &str| s.to_lowercase());
                        Node::Const(Tri::from_bool(
                            OBJECT_CLASSES.iter().any(|c| p.matches(&c.to_lowercase())),
                        ))
                    }
                    Resolved::Served(Attr::Text(t)) => Node::TextSub(t, pieces(&fold)),
                    Resolved::Served(Attr::Phone(k)) => {
                        let raw = [sub.initial.as_deref(), sub.final_.as_deref()]
                            .into_iter()
                            .flatten()
                            .chain(sub.any.iter().map(String::as_str));
                        if raw.clone().any(|p| !digits(p).is_empty()) {
                            let by_digits = Node::PhoneDigits(k, pieces(&|s: &str| digits(s)));
                            // `*<number>` (how a PBX looks a caller up: "ends with") names a
                            // whole number in some notation; `*0049891234567` must find the
                            // number it names, whose digits do not end that way.
                            match (&sub.initial, sub.any.is_empty(), &sub.final_) {
                                (None, true, Some(last)) if self.plan.to_e164(last).is_some() => {
                                    Node::Or(vec![
                                        by_digits,
                                        Node::PhoneEq(k, self.phone_value(last)),
                                    ])
                                }
                                _ => by_digits,
                            }
                        } else {
                            Node::PhoneText(
                                k,
                                pieces(&|s: &str| crate::directory::fold::fold(s, Accents::Exact)),
                            )
                        }
                    }
                    Resolved::Absent => Node::Const(Tri::False),
                    Resolved::Unknown => Node::Const(Tri::Undefined),
                }
            }
            LdapFilter::GreaterOrEqual(attr, value) | LdapFilter::LessOrEqual(attr, value) => {
                let ge = matches!(filter, LdapFilter::GreaterOrEqual(..));
                match resolve(attr) {
                    Resolved::Served(Attr::Text(t)) if ge => Node::TextGe(t, fold(value)),
                    Resolved::Served(Attr::Text(t)) => Node::TextLe(t, fold(value)),
                    Resolved::Served(Attr::Phone(k)) if ge => Node::PhoneGe(k, digits(value)),
                    Resolved::Served(Attr::Phone(k)) => Node::PhoneLe(k, digits(value)),
                    // objectClass has no ordering rule.
                    Resolved::Served(Attr::ObjectClass) | Resolved::Unknown => {
                        Node::Const(Tri::Undefined)
                    }
                    Resolved::Absent => Node::Const(Tri::False),
                }
            }
            LdapFilter::Extensible(_) => Node::Const(Tri::Undefined),
        })
    }

    fn phone_value(&self, value: &str) -> PhoneValue {
        PhoneValue {
            e164: self
                .plan
                .to_e164(value)
                .map(|e| e.trim_start_matches('+').to_owned()),
            digits: digits(value),
            folded: fold(value, Accents::Exact),
        }
    }
}

impl Node {
    /// Evaluates the filter for one subject.
    pub fn eval(&self, s: &dyn Subject) -> Tri {
        match self {
            Node::And(nodes) => {
                let mut result = Tri::True;
                for n in nodes {
                    match n.eval(s) {
                        Tri::False => return Tri::False,
                        Tri::Undefined => result = Tri::Undefined,
                        Tri::True => {}
                    }
                }
                result
            }
            Node::Or(nodes) => {
                let mut result = Tri::False;
                for n in nodes {
                    match n.eval(s) {
                        Tri::True => return Tri::True,
                        Tri::Undefined => result = Tri::Undefined,
                        Tri::False => {}
                    }
                }
                result
            }
            Node::Not(n) => match n.eval(s) {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::Undefined => Tri::Undefined,
            },
            Node::Const(t) => *t,
            Node::ObjectClass(class) => Tri::from_bool(s.has_object_class(class)),
            Node::Present(Attr::ObjectClass) => Tri::True,
            Node::Present(Attr::Text(t)) => Tri::from_bool(s.text(*t).is_some()),
            Node::Present(Attr::Phone(k)) => Tri::from_bool(s.phones(*k).next().is_some()),
            Node::TextEq(t, v) => Tri::from_bool(s.text(*t) == Some(v.as_bytes())),
            Node::TextSub(t, p) => Tri::from_bool(s.text(*t).is_some_and(|v| p.matches_bytes(v))),
            Node::TextGe(t, v) => Tri::from_bool(s.text(*t).is_some_and(|x| x >= v.as_bytes())),
            Node::TextLe(t, v) => Tri::from_bool(s.text(*t).is_some_and(|x| x <= v.as_bytes())),
            Node::PhoneEq(k, v) => Tri::from_bool(s.phones(*k).any(|p| phone_equal(p, v))),
            Node::PhoneDigits(k, p) if p.initial.is_none() => {
                // Without a leading anchor, what the national significant number or the
                // extension contains, the E.164 digits contain too: three keys decide.
                Tri::from_bool(
                    s.phones(*k)
                        .any(|n| n.gram_keys().any(|key| p.matches(key))),
                )
            }
            Node::PhoneDigits(k, p) => {
                Tri::from_bool(s.phones(*k).any(|n| n.keys().any(|key| p.matches(key))))
            }
            Node::PhoneText(k, p) => Tri::from_bool(s.phones(*k).any(|n| p.matches(n.folded))),
            Node::PhoneGe(k, v) => Tri::from_bool(s.phones(*k).any(|n| n.digits >= v.as_str())),
            Node::PhoneLe(k, v) => Tri::from_bool(s.phones(*k).any(|n| n.digits <= v.as_str())),
        }
    }
}

fn phone_equal(n: PhoneView, v: &PhoneValue) -> bool {
    if let (Some(a), Some(b)) = (v.e164.as_deref(), n.e164) {
        if a == b {
            return true;
        }
    }
    if !v.digits.is_empty() && n.keys().any(|k| k == v.digits) {
        return true;
    }
    v.folded == n.folded
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Person {
        texts: Vec<(Text, String)>,
        phones: Vec<(PhoneKind, PhoneKeys)>,
        all: Vec<PhoneKeys>,
    }

    impl Person {
        fn new(texts: &[(Text, &str)], phones: &[(PhoneKind, &str)]) -> Self {
            let plan = NumberPlan::default();
            let phones: Vec<_> = phones
                .iter()
                .map(|(k, w)| (*k, PhoneKeys::new(w, plan.to_e164(w).as_deref(), &plan)))
                .collect();
            Person {
                texts: texts
                    .iter()
                    .map(|(t, v)| (*t, fold(v, Accents::Fold)))
                    .collect(),
                all: phones.iter().map(|(_, p)| p.clone()).collect(),
                phones,
            }
        }
    }

    impl Subject for Person {
        fn has_object_class(&self, lower: &str) -> bool {
            OBJECT_CLASSES.iter().any(|c| c.eq_ignore_ascii_case(lower))
        }
        fn text(&self, attr: Text) -> Option<&[u8]> {
            self.texts
                .iter()
                .find(|(t, _)| *t == attr)
                .map(|(_, v)| v.as_bytes())
        }
        fn phones(&self, kind: PhoneKind) -> Phones<'_> {
            let start = self
                .phones
                .iter()
                .position(|(k, _)| *k == kind)
                .unwrap_or(self.phones.len());
            let len = self.phones[start..]
                .iter()
                .take_while(|(k, _)| *k == kind)
                .count();
            Phones::Owned(self.all[start..start + len].iter())
        }
    }

    fn check(filter: &str, p: &Person) -> Tri {
        let f = crate::filter::parse(filter).unwrap();
        compile(&f, Accents::Fold, &NumberPlan::default())
            .unwrap()
            .eval(p)
    }

    fn mueller() -> Person {
        Person::new(
            &[
                (Text::Cn, "Jürgen Müller"),
                (Text::Sn, "Müller"),
                (Text::GivenName, "Jürgen"),
            ],
            &[
                (PhoneKind::Business, "+49 (89) 1234-567"),
                (PhoneKind::Mobile, "0170 1234567"),
            ],
        )
    }

    #[test]
    fn names_match_case_and_accent_insensitively() {
        let p = mueller();
        assert_eq!(check("(sn=muller)", &p), Tri::True);
        assert_eq!(check("(cn=JÜRGEN*)", &p), Tri::True);
        assert_eq!(check("(cn=*rgen mu*)", &p), Tri::True);
        assert_eq!(check("(|(cn=Mül*)(sn=Mül*))", &p), Tri::True);
        assert_eq!(check("(sn=Meier)", &p), Tri::False);
        assert_eq!(
            check("(&(objectClass=*)(sn>=A)(sn<=zz)(sn=M*))", &p),
            Tri::True
        );
        assert_eq!(check("(sn>=N)", &p), Tri::False);
    }

    #[test]
    fn numbers_match_on_digits_and_e164() {
        let p = mueller();
        for filter in [
            "(telephoneNumber=*0891234567*)",
            "(telephoneNumber=+49891234567)",
            "(telephoneNumber=089 1234-567)",
            "(telephoneNumber=0049891234567)",
            "(telephoneNumber=*1234567)",
            "(|(telephoneNumber=*891234567)(mobile=*891234567))",
            "(mobile=+491701234567)",
            "(telephoneNumber=+49*)",
        ] {
            assert_eq!(check(filter, &p), Tri::True, "{filter}");
        }
        assert_eq!(
            check("(mobile=089 1234-567)", &p),
            Tri::False,
            "kinds are kept apart"
        );
        assert_eq!(check("(telephoneNumber=*999*)", &p), Tri::False);
    }

    #[test]
    fn unknown_attributes_are_undefined_even_under_not() {
        let p = mueller();
        assert_eq!(check("(shoeSize=42)", &p), Tri::Undefined);
        assert_eq!(check("(!(shoeSize=42))", &p), Tri::Undefined);
        assert_eq!(
            check("(!(pager=42))", &p),
            Tri::True,
            "a known attribute that is absent is false"
        );
        assert_eq!(check("(|(shoeSize=42)(sn=muller))", &p), Tri::True);
        assert_eq!(check("(&(shoeSize=42)(sn=muller))", &p), Tri::Undefined);
        assert_eq!(check("(&(shoeSize=42)(sn=x))", &p), Tri::False);
    }

    #[test]
    fn object_classes_and_presence() {
        let p = mueller();
        assert_eq!(check("(objectClass=inetOrgPerson)", &p), Tri::True);
        assert_eq!(check("(objectclass=PERSON)", &p), Tri::True);
        assert_eq!(check("(objectClass=groupOfNames)", &p), Tri::False);
        assert_eq!(check("(mail=*)", &p), Tri::False);
        assert_eq!(check("(mobile=*)", &p), Tri::True);
    }

    #[test]
    fn deep_or_large_filters_are_refused() {
        // Built directly: the text parser refuses both before they are parsed.
        let leaf = || LdapFilter::Equality("cn".into(), "a".into());
        let deep = (0..40).fold(leaf(), |f, _| LdapFilter::Not(Box::new(f)));
        assert!(compile(&deep, Accents::Fold, &NumberPlan::default()).is_err());
        let wide = LdapFilter::Or((0..600).map(|_| leaf()).collect());
        assert!(compile(&wide, Accents::Fold, &NumberPlan::default()).is_err());
    }
}

#[cfg(test)]
mod substring_tests {
    use super::*;

    #[test]
    fn byte_search_agrees_with_the_filter_module() {
        let values = [
            "müller-lüdenscheidt",
            "0891234567",
            "abcabc",
            "",
            "王伟 wang",
            "aaa",
        ];
        let pieces = [
            (None, vec![], Some("dt")),
            (Some("mü"), vec!["lü".to_owned()], None),
            (None, vec!["234".to_owned(), "67".to_owned()], None),
            (Some("abc"), vec![], Some("abc")),
            (Some("abcabc"), vec![], Some("abc")),
            (None, vec!["伟".to_owned()], Some("wang")),
            (None, vec!["aa".to_owned(), "a".to_owned()], None),
            (None, vec!["aa".to_owned(), "aa".to_owned()], None),
            (Some(""), vec!["".to_owned()], Some("")),
        ];
        for v in values {
            for (initial, any, last) in &pieces {
                let p = Pieces {
                    initial: initial.map(str::to_owned),
                    any: any.clone(),
                    last: last.map(str::to_owned),
                };
                assert_eq!(
                    p.matches(v),
                    crate::filter::substring_matches(v, *initial, any, *last),
                    "{v:?} {p:?}"
                );
            }
        }
    }

    #[test]
    fn phone_keys_are_distinct() {
        let plan = NumberPlan::default();
        let k = PhoneKeys::new("+49 89 1234567", Some("+49891234567"), &plan);
        assert_eq!(
            k.view().keys().collect::<Vec<_>>(),
            ["49891234567", "0891234567", "891234567"]
        );
        assert_eq!(
            k.view().gram_keys().collect::<Vec<_>>(),
            ["49891234567", "0891234567"]
        );
        assert_eq!(
            k.view().exact_only_keys().collect::<Vec<_>>(),
            ["891234567"]
        );
        assert_eq!(k.view().folded, "+49 89 1234567");
        let k = PhoneKeys::new("intern 42", None, &plan);
        let v = k.view();
        assert_eq!((v.digits, v.e164, v.national), ("42", None, None));
    }
}
