//! LDAP search filters as text: parsing and a plain evaluator over attribute values.
//!
//! The connector's `filter` is checked here when the configuration loads, and LDIF sources
//! apply it here so a `file:` connector selects exactly what an LDAP upstream would. Values
//! are compared case-insensitively, like slapd's caseIgnoreMatch.
//!
//! Text is parsed by ldap3's RFC 4515 parser — the one that sends the filter upstream, so
//! what passes here is what the upstream receives — and its BER form is read into
//! ldap3_proto's [`LdapFilter`], the type the LDAP endpoint evaluates. (ldap3_proto's own text
//! parser rejects values with spaces, such as `(memberOf=CN=Phone Book,…)`.)

use ldap3::asn1::{StructureTag, PL};
pub use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

/// Parses an RFC 4515 filter string.
pub fn parse(text: &str) -> Result<LdapFilter, String> {
    let bad = || match locate(text.trim()) {
        Some(what) => format!("invalid LDAP filter \"{text}\": {what}"),
        None => format!("invalid LDAP filter \"{text}\""),
    };
    // ldap3's parser recurses per level: measure the text first.
    crate::limits::check_filter_text(text)?;
    let tag = ldap3::parse_filter(text.trim()).map_err(|()| bad())?;
    from_ber(ldap3::asn1::ASNTag::into_structure(tag)).ok_or_else(bad)
}

/// Where a filter ldap3 refused goes wrong, for the error message: a parenthesis never
/// closed, an item without a comparison, an empty item, or text after the end
/// (positions count characters from 1). `None` when the structure looks right and the
/// problem is elsewhere (a bad escape, say).
fn locate(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.first() != Some(&'(') {
        return Some("a filter starts with \"(\" (at position 1)".into());
    }
    let mut open: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '(' => {
                open.push(i);
                i += 1;
            }
            ')' => {
                // Never empty here: the text starts with "(" and ends at its match.
                let start = open.pop()?;
                let inner: String = chars[start + 1..i].iter().collect();
                let composite = inner.starts_with(['&', '|', '!']);
                if inner.trim().is_empty() {
                    return Some(format!("the item at position {} is empty", start + 1));
                }
                if !composite && !inner.contains('=') {
                    return Some(format!(
                        "the item \"({inner})\" at position {} has no \"=\" (items are attribute=value)",
                        start + 1
                    ));
                }
                if open.is_empty() && i + 1 < chars.len() {
                    return Some(format!(
                        "text after the end of the filter at position {}",
                        i + 2
                    ));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    open.last()
        .map(|start| format!("the \"(\" at position {} is never closed", start + 1))
}

/// The filter CHOICE of RFC 4511 §4.5.1, from its context-tagged BER structure.
/// The numbers of RFC 4511's `Filter` choices (and of a substring's parts), which the tag of
/// each carries: read here from ldap3's parse, and by the LDAP endpoint's fast decoder.
pub mod choice {
    pub const AND: u8 = 0;
    pub const OR: u8 = 1;
    pub const NOT: u8 = 2;
    pub const EQUALITY: u8 = 3;
    pub const SUBSTRINGS: u8 = 4;
    pub const GREATER_OR_EQUAL: u8 = 5;
    pub const LESS_OR_EQUAL: u8 = 6;
    pub const PRESENT: u8 = 7;
    pub const APPROX: u8 = 8;
    pub const EXTENSIBLE: u8 = 9;
    /// Parts of a substring filter.
    pub const INITIAL: u8 = 0;
    pub const ANY: u8 = 1;
    pub const FINAL: u8 = 2;
}

fn from_ber(tag: StructureTag) -> Option<LdapFilter> {
    use choice::*;
    let text = |t: StructureTag| match t.payload {
        PL::P(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        PL::C(_) => None,
    };
    let pair = |parts: Vec<StructureTag>| -> Option<(String, String)> {
        let mut it = parts.into_iter();
        Some((text(it.next()?)?, text(it.next()?)?))
    };
    let all = |fs: Vec<StructureTag>| fs.into_iter().map(from_ber).collect::<Option<Vec<_>>>();
    match (u8::try_from(tag.id).ok()?, tag.payload) {
        (AND, PL::C(fs)) => Some(LdapFilter::And(all(fs)?)),
        (OR, PL::C(fs)) => Some(LdapFilter::Or(all(fs)?)),
        (NOT, PL::C(fs)) => Some(LdapFilter::Not(Box::new(from_ber(fs.into_iter().next()?)?))),
        (EQUALITY, PL::C(p)) => pair(p).map(|(a, v)| LdapFilter::Equality(a, v)),
        (GREATER_OR_EQUAL, PL::C(p)) => pair(p).map(|(a, v)| LdapFilter::GreaterOrEqual(a, v)),
        (LESS_OR_EQUAL, PL::C(p)) => pair(p).map(|(a, v)| LdapFilter::LessOrEqual(a, v)),
        (APPROX, PL::C(p)) => pair(p).map(|(a, v)| LdapFilter::Approx(a, v)),
        (PRESENT, PL::P(attr)) => Some(LdapFilter::Present(
            String::from_utf8_lossy(&attr).into_owned(),
        )),
        (SUBSTRINGS, PL::C(parts)) => {
            let mut it = parts.into_iter();
            let attr = text(it.next()?)?;
            let PL::C(pieces) = it.next()?.payload else {
                return None;
            };
            let mut sub = LdapSubstringFilter {
                initial: None,
                any: Vec::new(),
                final_: None,
            };
            for piece in pieces {
                let id = piece.id;
                let value = text(piece)?;
                match id {
                    id if id == u64::from(INITIAL) => sub.initial = Some(value),
                    id if id == u64::from(ANY) => sub.any.push(value),
                    _ => sub.final_ = Some(value),
                }
            }
            Some(LdapFilter::Substring(attr, sub))
        }
        // Extensible matches are common in AD filters (`userAccountControl:1.2.840.113556.1.4.803:=2`):
        // they must pass validation, though an LDIF source cannot evaluate them.
        (EXTENSIBLE, PL::C(parts)) => {
            let mut rule = LdapMatchingRuleAssertion {
                matching_rule: None,
                type_: None,
                match_value: String::new(),
                dn_attributes: false,
            };
            for part in parts {
                match part.id {
                    1 => rule.matching_rule = text(part),
                    2 => rule.type_ = text(part),
                    3 => rule.match_value = text(part)?,
                    _ => {
                        rule.dn_attributes = matches!(part.payload, PL::P(ref b) if b.first().is_some_and(|b| *b != 0))
                    }
                }
            }
            Some(LdapFilter::Extensible(rule))
        }
        _ => None,
    }
}

/// The RFC 4515 text of a filter (for logs), with `*()\\` and NUL escaped in values.
pub fn to_text(filter: &LdapFilter) -> String {
    let esc = |v: &str| {
        v.chars()
            .map(|c| match c {
                '*' => "\\2a".to_owned(),
                '(' => "\\28".to_owned(),
                ')' => "\\29".to_owned(),
                '\\' => "\\5c".to_owned(),
                '\0' => "\\00".to_owned(),
                c => c.to_string(),
            })
            .collect::<String>()
    };
    let all = |fs: &[LdapFilter]| fs.iter().map(to_text).collect::<String>();
    match filter {
        LdapFilter::And(fs) => format!("(&{})", all(fs)),
        LdapFilter::Or(fs) => format!("(|{})", all(fs)),
        LdapFilter::Not(f) => format!("(!{})", to_text(f)),
        LdapFilter::Equality(a, v) => format!("({a}={})", esc(v)),
        LdapFilter::Approx(a, v) => format!("({a}~={})", esc(v)),
        LdapFilter::GreaterOrEqual(a, v) => format!("({a}>={})", esc(v)),
        LdapFilter::LessOrEqual(a, v) => format!("({a}<={})", esc(v)),
        LdapFilter::Present(a) => format!("({a}=*)"),
        LdapFilter::Substring(a, sub) => {
            let mut text = format!(
                "({a}={}*",
                sub.initial.as_deref().map(esc).unwrap_or_default()
            );
            for piece in &sub.any {
                text.push_str(&esc(piece));
                text.push('*');
            }
            text.push_str(&sub.final_.as_deref().map(esc).unwrap_or_default());
            text.push(')');
            text
        }
        LdapFilter::Extensible(m) => format!(
            "({}{}{}:={})",
            m.type_.as_deref().unwrap_or(""),
            if m.dn_attributes { ":dn" } else { "" },
            m.matching_rule
                .as_deref()
                .map(|r| format!(":{r}"))
                .unwrap_or_default(),
            esc(&m.match_value)
        ),
    }
}

/// Whether an entry whose attribute values `values` returns (by lower-cased name) matches.
pub fn matches<'a>(filter: &LdapFilter, values: &dyn Fn(&str) -> &'a [String]) -> bool {
    let lower = |s: &str| s.to_lowercase();
    let any = |attr: &str, pred: &dyn Fn(&str) -> bool| {
        values(&attr.to_ascii_lowercase())
            .iter()
            .any(|v| pred(&lower(v)))
    };
    match filter {
        LdapFilter::And(fs) => fs.iter().all(|f| matches(f, values)),
        LdapFilter::Or(fs) => fs.iter().any(|f| matches(f, values)),
        LdapFilter::Not(f) => !matches(f, values),
        LdapFilter::Present(attr) => !values(&attr.to_ascii_lowercase()).is_empty(),
        LdapFilter::Equality(attr, want) | LdapFilter::Approx(attr, want) => {
            let want = lower(want);
            any(attr, &|v| v == want)
        }
        LdapFilter::GreaterOrEqual(attr, bound) => {
            let bound = lower(bound);
            any(attr, &|v| v >= bound.as_str())
        }
        LdapFilter::LessOrEqual(attr, bound) => {
            let bound = lower(bound);
            any(attr, &|v| v <= bound.as_str())
        }
        LdapFilter::Substring(attr, sub) => {
            let initial = sub.initial.as_deref().map(lower);
            let middle: Vec<String> = sub.any.iter().map(|s| lower(s)).collect();
            let last = sub.final_.as_deref().map(lower);
            any(attr, &|v| {
                substring_matches(v, initial.as_deref(), &middle, last.as_deref())
            })
        }
        // Extensible matching rules are not something a phone book upstream filter needs.
        LdapFilter::Extensible(_) => false,
    }
}

/// RFC 4511 substring semantics: the pieces occur in order, without overlapping.
pub fn substring_matches(
    value: &str,
    initial: Option<&str>,
    any: &[String],
    last: Option<&str>,
) -> bool {
    let mut rest = value;
    if let Some(i) = initial {
        match rest.strip_prefix(i) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for piece in any {
        match rest.find(piece.as_str()) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    last.is_none_or(|l| rest.ends_with(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(filter: &str, attrs: &[(&str, &[&str])]) -> bool {
        let owned: Vec<(String, Vec<String>)> = attrs
            .iter()
            .map(|(n, vs)| {
                (
                    n.to_ascii_lowercase(),
                    vs.iter().map(|v| v.to_string()).collect(),
                )
            })
            .collect();
        let get = |name: &str| -> &[String] {
            owned
                .iter()
                .find(|(n, _)| n == name)
                .map_or(&[], |(_, v)| v.as_slice())
        };
        matches(&parse(filter).unwrap(), &get)
    }

    #[test]
    fn equality_and_presence_ignore_case() {
        let person = [
            ("objectClass", &["top", "inetOrgPerson"][..]),
            ("cn", &["Jürgen Müller"][..]),
        ];
        assert!(check("(objectClass=inetorgperson)", &person));
        assert!(check("(CN=jürgen MÜLLER)", &person));
        assert!(check("(cn=*)", &person));
        assert!(!check("(mail=*)", &person));
        assert!(check("(&(objectClass=*)(!(mail=*)))", &person));
        assert!(check("(|(mail=x)(cn=*müll*))", &person));
    }

    #[test]
    fn substrings_match_in_order_without_overlap() {
        assert!(substring_matches(
            "abcabc",
            Some("ab"),
            &["ca".into()],
            Some("bc")
        ));
        assert!(!substring_matches("abc", Some("ab"), &[], Some("bc")));
        assert!(substring_matches("abc", None, &[], None));
    }

    #[test]
    fn filters_print_back_as_rfc_4515_text() {
        for text in [
            "(&(objectClass=*)(sn>=A)(sn<=zz)(sn=M*))",
            "(|(cn=*mül*)(sn=a*b*c))",
            "(!(cn=a\\2ab))",
            "(cn~=x)",
        ] {
            assert_eq!(to_text(&parse(text).unwrap()), text);
        }
    }

    #[test]
    fn bad_filters_are_rejected() {
        assert!(parse("(cn=a").is_err());
        assert!(parse("cn=a)").is_err());
        assert!(parse("(objectClass=inetOrgPerson)").is_ok());
        let ad =
            parse("(&(objectCategory=person)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))");
        assert!(ad.is_ok(), "{ad:?}");
    }

    #[test]
    fn errors_say_where_the_filter_goes_wrong() {
        for (text, want) in [
            (
                "(&(cn=a)(!(sn=b))",
                "the \"(\" at position 1 is never closed",
            ),
            ("(cn=a))", "text after the end of the filter at position 7"),
            (
                "(&(cn=a)))",
                "text after the end of the filter at position 10",
            ),
            (
                "(&(cn=a)(mail))",
                "the item \"(mail)\" at position 9 has no \"=\"",
            ),
            ("(&(cn=a)())", "the item at position 9 is empty"),
            (
                "(cn=a)(sn=b)",
                "text after the end of the filter at position 7",
            ),
            ("cn=a)", "a filter starts with \"(\""),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn values_with_spaces_and_escapes_parse() {
        assert_eq!(
            parse("(memberOf=CN=Phone Book,OU=Groups,DC=corp)").unwrap(),
            LdapFilter::Equality("memberOf".into(), "CN=Phone Book,OU=Groups,DC=corp".into())
        );
        assert_eq!(
            parse("(cn=a\\2ab)").unwrap(),
            LdapFilter::Equality("cn".into(), "a*b".into())
        );
        let LdapFilter::Substring(_, sub) = parse("(cn=Jü*ll*er)").unwrap() else {
            panic!()
        };
        assert_eq!(
            (
                sub.initial.as_deref(),
                sub.any.as_slice(),
                sub.final_.as_deref()
            ),
            (Some("Jü"), &["ll".to_string()][..], Some("er"))
        );
    }
}
