//! A direct decoder for the one request that is nearly all of the LDAP traffic: a plain
//! SearchRequest, read straight from the bytes into ldap3_proto's [`LdapMsg`].
//!
//! Why it exists: profiling the server under load (100k entries, phones searching) put ~6.7%
//! of its CPU in decoding requests through ldap3_proto's generic BER path, which builds a
//! `StructureTag` tree (one `Vec` per primitive) and then converts it into an `LdapMsg` —
//! about 40 allocations per search request. Here a search costs one allocation per string
//! it carries (base, attribute names, filter values) plus the vectors and boxes of the
//! filter tree and the attribute list — the `LdapMsg` itself, nothing in between.
//!
//! The rule: [`search_request`] either returns exactly what ldap3_proto (0.9, default
//! features, i.e. `strict`) would decode from the same bytes, or `None`, and then the caller
//! hands the bytes to ldap3_proto as before. It only accepts the plain, strict shape:
//!
//! * `30 len { 02 msgid, 63 len { 04 base, 0a scope, 0a deref, 02 sizelimit, 02 timelimit,
//!   01 typesOnly, filter, 30 { 04 attr ... } } }` and nothing else — no controls (`[0]`),
//!   no further elements, no bytes left over inside any element;
//! * single-byte tags only; definite lengths, short form or long form with 1–4 length octets;
//! * INTEGERs of 1–4 content octets, minimally encoded and non-negative (ldap3_proto reads
//!   content octets as an unsigned big-endian number and truncates it to `i32`, so it agrees
//!   with BER exactly on these); ENUMERATEDs of one octet, 0–3; BOOLEANs of one octet
//!   (non-zero is true, as ldap3_proto reads it);
//! * strings valid UTF-8 (ldap3_proto uses `String::from_utf8`);
//! * filters and (`a0`), or (`a1`), not (`a2`, exactly one inner filter), equalityMatch
//!   (`a3`), substrings (`a4`: `80` initial only first, `81` any, `82` final only last),
//!   greaterOrEqual (`a5`), lessOrEqual (`a6`), present (`87`), approxMatch (`a8`); the
//!   assertions exactly `04 attr, 04 value`; nested at most [`MAX_FILTER_DEPTH`] deep
//!   (ldap3_proto's own limits, 127 filter levels and 127 BER levels, are further out).
//!
//! Everything else — other operations, controls, extensible matches, anything ldap3_proto
//! might read leniently (it ignores surplus elements, unknown trailing bytes in a
//! constructed element, the class of substring parts) — falls back.

use ldap3_proto::proto::{
    LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapSearchRequest, LdapSearchScope,
    LdapSubstringFilter,
};

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;
const SEQUENCE: u8 = 0x30;
/// The class bits of an APPLICATION tag.
const APPLICATION: u8 = 0x40;
/// `[APPLICATION 3]`, constructed.
const SEARCH_REQUEST: u8 = 0x63;

const FILTER_AND: u8 = 0xa0;
const FILTER_OR: u8 = 0xa1;
const FILTER_NOT: u8 = 0xa2;
const FILTER_EQUALITY: u8 = 0xa3;
const FILTER_SUBSTRINGS: u8 = 0xa4;
const FILTER_GREATER_OR_EQUAL: u8 = 0xa5;
const FILTER_LESS_OR_EQUAL: u8 = 0xa6;
const FILTER_PRESENT: u8 = 0x87;
const FILTER_APPROX: u8 = 0xa8;

const SUBSTRING_INITIAL: u8 = 0x80;
const SUBSTRING_ANY: u8 = 0x81;
const SUBSTRING_FINAL: u8 = 0x82;

/// The deepest filter nesting decoded here (the top-level filter is depth 1). Deeper
/// filters go to ldap3_proto, which refuses them from depth 128 on.
pub const MAX_FILTER_DEPTH: usize = 64;

/// Decodes `msg`, which must be exactly one whole LDAPMessage (header included), if it is
/// a SearchRequest in the plain shape described in the module documentation; `None` for
/// anything else, which the caller must then decode with ldap3_proto.
pub fn search_request(msg: &[u8]) -> Option<LdapMsg> {
    let mut outer = Reader::new(msg);
    let body = outer.element(SEQUENCE)?;
    if !outer.is_empty() {
        return None;
    }

    let mut body = Reader::new(body);
    let msgid = integer(body.element(INTEGER)?)?;
    let op = body.element(SEARCH_REQUEST)?;
    if !body.is_empty() {
        // Controls, or something ldap3_proto would read or skip on its own terms.
        return None;
    }

    let mut op = Reader::new(op);
    let base = string(op.element(OCTET_STRING)?)?;
    let scope = match enumerated(op.element(ENUMERATED)?)? {
        0 => LdapSearchScope::Base,
        1 => LdapSearchScope::OneLevel,
        2 => LdapSearchScope::Subtree,
        3 => LdapSearchScope::Children,
        _ => return None,
    };
    let aliases = match enumerated(op.element(ENUMERATED)?)? {
        0 => LdapDerefAliases::Never,
        1 => LdapDerefAliases::InSearching,
        2 => LdapDerefAliases::FindingBaseObj,
        3 => LdapDerefAliases::Always,
        _ => return None,
    };
    let sizelimit = integer(op.element(INTEGER)?)?;
    let timelimit = integer(op.element(INTEGER)?)?;
    let typesonly = boolean(op.element(BOOLEAN)?)?;
    let filter = filter(&mut op, 1)?;
    let mut list = Reader::new(op.element(SEQUENCE)?);
    if !op.is_empty() {
        return None;
    }
    let mut attrs = Vec::new();
    while !list.is_empty() {
        attrs.push(string(list.element(OCTET_STRING)?)?);
    }

    Some(LdapMsg {
        msgid,
        op: LdapOp::SearchRequest(LdapSearchRequest {
            base,
            scope,
            aliases,
            sizelimit,
            timelimit,
            typesonly,
            filter,
            attrs,
        }),
        ctrl: Vec::new(),
    })
}

/// One filter element from `r`, at nesting `depth`.
fn filter(r: &mut Reader<'_>, depth: usize) -> Option<LdapFilter> {
    if depth > MAX_FILTER_DEPTH {
        return None;
    }
    let (tag, content) = r.any()?;
    Some(match tag {
        FILTER_AND | FILTER_OR => {
            let mut inner = Reader::new(content);
            let mut filters = Vec::new();
            while !inner.is_empty() {
                filters.push(filter(&mut inner, depth + 1)?);
            }
            if tag == FILTER_AND {
                LdapFilter::And(filters)
            } else {
                LdapFilter::Or(filters)
            }
        }
        FILTER_NOT => {
            let mut inner = Reader::new(content);
            let negated = filter(&mut inner, depth + 1)?;
            if !inner.is_empty() {
                return None;
            }
            LdapFilter::Not(Box::new(negated))
        }
        FILTER_EQUALITY => {
            let (a, v) = assertion(content)?;
            LdapFilter::Equality(a, v)
        }
        FILTER_GREATER_OR_EQUAL => {
            let (a, v) = assertion(content)?;
            LdapFilter::GreaterOrEqual(a, v)
        }
        FILTER_LESS_OR_EQUAL => {
            let (a, v) = assertion(content)?;
            LdapFilter::LessOrEqual(a, v)
        }
        FILTER_APPROX => {
            let (a, v) = assertion(content)?;
            LdapFilter::Approx(a, v)
        }
        FILTER_PRESENT => LdapFilter::Present(string(content)?),
        FILTER_SUBSTRINGS => {
            let mut inner = Reader::new(content);
            let attr = string(inner.element(OCTET_STRING)?)?;
            let mut parts = Reader::new(inner.element(SEQUENCE)?);
            if !inner.is_empty() {
                return None;
            }
            let mut substrings = LdapSubstringFilter::default();
            let mut first = true;
            while !parts.is_empty() {
                let (tag, value) = parts.any()?;
                let value = string(value)?;
                match tag {
                    SUBSTRING_INITIAL if first => substrings.initial = Some(value),
                    SUBSTRING_ANY => substrings.any.push(value),
                    SUBSTRING_FINAL if parts.is_empty() => substrings.final_ = Some(value),
                    _ => return None,
                }
                first = false;
            }
            LdapFilter::Substring(attr, substrings)
        }
        _ => return None,
    })
}

/// `AttributeValueAssertion ::= SEQUENCE { OCTET STRING, OCTET STRING }`, nothing more.
fn assertion(content: &[u8]) -> Option<(String, String)> {
    let mut r = Reader::new(content);
    let attr = string(r.element(OCTET_STRING)?)?;
    let value = string(r.element(OCTET_STRING)?)?;
    r.is_empty().then_some((attr, value))
}

fn string(content: &[u8]) -> Option<String> {
    std::str::from_utf8(content).ok().map(str::to_owned)
}

/// A non-negative INTEGER of at most four content octets, minimally encoded.
fn integer(content: &[u8]) -> Option<i32> {
    let (&first, rest) = content.split_first()?;
    if content.len() > 4 || first >= 0x80 {
        return None;
    }
    if first == 0 && rest.first().is_some_and(|b| *b < 0x80) {
        return None; // a superfluous leading zero octet
    }
    Some(
        content
            .iter()
            .fold(0i32, |acc, b| (acc << 8) | i32::from(*b)),
    )
}

/// An ENUMERATED of one content octet, non-negative.
fn enumerated(content: &[u8]) -> Option<u8> {
    match content {
        [value] if *value < 0x80 => Some(*value),
        _ => None,
    }
}

/// A BOOLEAN of one content octet; any non-zero octet is true (BER, and ldap3_proto).
fn boolean(content: &[u8]) -> Option<bool> {
    match content {
        [value] => Some(*value != 0),
        _ => None,
    }
}

/// The protocolOp tag of `msg` (one whole LDAPMessage) when it is an APPLICATION tag that
/// no LDAP operation has (or has in the other form, primitive for constructed). ldap3_proto
/// prints such a tag to standard output (`unknown op -> N`) before refusing the message, so
/// any client could make the server write there; the codec refuses these first. Only the
/// tag decides: ldap3_proto refuses every such message, printing or not, so refusing it here
/// changes nothing else. The messageID before it is skipped as ldap3_lber reads lengths.
pub fn unknown_operation(msg: &[u8]) -> Option<u8> {
    let (_, body, _) = lber_element(msg)?;
    let (id_tag, _, rest) = lber_element(body)?;
    if id_tag != INTEGER {
        // ldap3_proto refuses a message without a messageID before it looks at the op.
        return None;
    }
    let &tag = rest.first()?;
    if tag & 0xc0 != APPLICATION {
        return None;
    }
    // ldap3_lber reads the low five bits as the tag number (no high-tag-number form).
    let number = tag & 0x1f;
    let constructed = tag & 0x20 != 0;
    // The operations ldap3_proto decodes (RFC 4511 §4.2–4.14), by number and form.
    let known = match number {
        2 => true,
        10 | 16 => !constructed,
        0 | 1 | 3..=9 | 11..=15 | 19 | 23..=25 => constructed,
        _ => false,
    };
    (!known).then_some(tag)
}

/// One BER element at the start of `bytes` as ldap3_lber reads it — a one-octet tag; a short
/// length, or a long one of any number of octets folded into 64 bits (none: length 0) —
/// as (tag, content, what follows).
fn lber_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first - 0x80);
        let octets = rest.get(..count)?;
        let len = octets
            .iter()
            .fold(0u64, |acc, b| acc.wrapping_shl(8) | u64::from(*b));
        (usize::try_from(len).ok()?, rest.get(count..)?)
    };
    let content = rest.get(..len)?;
    Some((tag, content, rest.get(len..)?))
}

/// Reads consecutive TLV elements out of a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The content of the next element, if its tag is `tag` and it fits in what is left.
    fn element(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.any()? {
            (found, content) if found == tag => Some(content),
            _ => None,
        }
    }

    /// The tag and content of the next element, if it fits in what is left. Only single-octet
    /// tags and lengths of at most four octets are expected by the callers; anything else is
    /// refused here (and left to ldap3_proto by the caller).
    fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, &first) = (self.rest.first()?, self.rest.get(1)?);
        if tag & 0x1f == 0x1f || (first >= 0x80 && !(1..=4).contains(&(first & 0x7f))) {
            return None;
        }
        let (tag, content, rest) = lber_element(self.rest)?;
        self.rest = rest;
        Some((tag, content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::control::LdapControl;
    use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapMatchingRuleAssertion};
    use ldap3_proto::LdapCodec;
    use tokio_util::bytes::BytesMut;
    use tokio_util::codec::{Decoder, Encoder};

    fn encode(msg: LdapMsg) -> Vec<u8> {
        let mut buf = BytesMut::new();
        LdapCodec::default().encode(msg, &mut buf).unwrap();
        buf.to_vec()
    }

    /// ldap3_proto's decode of `bytes`, and how many bytes it left in the buffer.
    fn reference(bytes: &[u8]) -> (Result<Option<LdapMsg>, String>, usize) {
        let mut buf = BytesMut::from(bytes);
        let result = LdapCodec::new(Some(1 << 20), None)
            .decode(&mut buf)
            .map_err(|e| e.to_string());
        (result, buf.len())
    }

    /// The rule: whenever the fast path answers, ldap3_proto answers the same for the same
    /// bytes (and consumes all of them). Returns whether the fast path answered.
    fn agrees(bytes: &[u8]) -> bool {
        let Some(fast) = search_request(bytes) else {
            return false;
        };
        let (slow, left) = reference(bytes);
        assert_eq!(slow, Ok(Some(fast)), "bytes {bytes:02x?}");
        assert_eq!(left, 0, "bytes {bytes:02x?}");
        true
    }

    fn search(msgid: i32, filter: LdapFilter) -> LdapMsg {
        LdapMsg::new(
            msgid,
            LdapOp::SearchRequest(LdapSearchRequest {
                base: "ou=phonebook,dc=example,dc=com".into(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Never,
                sizelimit: 50,
                timelimit: 10,
                typesonly: false,
                filter,
                attrs: vec!["cn".into(), "telephoneNumber".into()],
            }),
        )
    }

    fn long(n: usize) -> String {
        "Müller-".chars().cycle().take(n).collect()
    }

    fn values() -> Vec<String> {
        vec![
            String::new(),
            "a".into(),
            "Müller".into(),
            "王伟 Ελένη".into(),
            long(130),
            long(300),
        ]
    }

    /// Every filter leaf kind, with each value shape; substrings in every combination of
    /// initial / any / final.
    fn leaves() -> Vec<LdapFilter> {
        let mut out = Vec::new();
        for v in values() {
            out.push(LdapFilter::Equality("sn".into(), v.clone()));
            out.push(LdapFilter::GreaterOrEqual("sn".into(), v.clone()));
            out.push(LdapFilter::LessOrEqual("telephoneNumber".into(), v.clone()));
            out.push(LdapFilter::Approx("cn".into(), v.clone()));
            out.push(LdapFilter::Equality(v.clone(), "x".into()));
            if !v.is_empty() {
                out.push(LdapFilter::Present(v.clone()));
            }
            for initial in [None, Some(v.clone())] {
                for any in [
                    vec![],
                    vec![v.clone()],
                    vec!["b".into(), v.clone(), "c".into()],
                ] {
                    for final_ in [None, Some(v.clone())] {
                        out.push(LdapFilter::Substring(
                            "cn".into(),
                            LdapSubstringFilter {
                                initial: initial.clone(),
                                any: any.clone(),
                                final_,
                            },
                        ));
                    }
                }
            }
        }
        out.push(LdapFilter::Present("objectClass".into()));
        out.push(LdapFilter::Present(String::new()));
        out
    }

    fn filters() -> Vec<LdapFilter> {
        let leaves = leaves();
        let mut out = leaves.clone();
        out.push(LdapFilter::And(vec![]));
        out.push(LdapFilter::Or(vec![]));
        for pair in leaves.chunks(3) {
            out.push(LdapFilter::And(pair.to_vec()));
            out.push(LdapFilter::Or(pair.to_vec()));
            out.push(LdapFilter::Not(Box::new(pair[0].clone())));
        }
        // What phones send: (|(cn=*x*)(sn=x*)(telephoneNumber=*123*)) inside an and.
        out.push(LdapFilter::And(vec![
            LdapFilter::Present("objectClass".into()),
            LdapFilter::Or(vec![
                LdapFilter::Substring("cn".into(), LdapSubstringFilter::from("*Mül*")),
                LdapFilter::Substring("sn".into(), LdapSubstringFilter::from("Mül*")),
                LdapFilter::Not(Box::new(LdapFilter::Not(Box::new(LdapFilter::Equality(
                    "ou".into(),
                    "Straße".into(),
                ))))),
                LdapFilter::And(vec![LdapFilter::Or(vec![LdapFilter::And(vec![])])]),
            ]),
        ]));
        // Big enough that the whole message needs a three-octet length.
        out.push(LdapFilter::Or(leaves.iter().take(200).cloned().collect()));
        out
    }

    #[test]
    fn searches_decode_as_ldap3_proto_decodes_them() {
        let bases = [
            "".to_string(),
            "dc=example,dc=com".into(),
            "cn=Jürgen Müller,ou=Straße".into(),
            long(200),
            long(400),
        ];
        let scopes = [
            LdapSearchScope::Base,
            LdapSearchScope::OneLevel,
            LdapSearchScope::Subtree,
            LdapSearchScope::Children,
        ];
        let derefs = [
            LdapDerefAliases::Never,
            LdapDerefAliases::InSearching,
            LdapDerefAliases::FindingBaseObj,
            LdapDerefAliases::Always,
        ];
        let numbers = [
            0,
            1,
            127,
            128,
            255,
            256,
            32767,
            32768,
            65535,
            65536,
            0x7f_ffff,
            0x80_0000,
            i32::MAX,
        ];
        let attr_lists: Vec<Vec<String>> = vec![
            vec![],
            vec!["cn".into()],
            vec!["*".into(), "+".into(), "1.1".into()],
            vec![
                "cn".into(),
                "sn".into(),
                "telephoneNumber".into(),
                "mobile".into(),
                "Ünïcödé".into(),
            ],
            (0..60).map(|i| format!("attribute{i}")).collect(),
        ];
        let filters = filters();
        let mut count = 0;
        for (i, filter) in filters.iter().enumerate() {
            // Every filter with a rotating choice of everything else, plus a sweep of every
            // other field with a fixed filter.
            for j in 0..3 {
                let k = i * 3 + j;
                let msg = LdapMsg::new(
                    numbers[k % numbers.len()].max(1),
                    LdapOp::SearchRequest(LdapSearchRequest {
                        base: bases[k % bases.len()].clone(),
                        scope: scopes[k % scopes.len()].clone(),
                        aliases: derefs[(k / 4) % derefs.len()].clone(),
                        sizelimit: numbers[(k / 3) % numbers.len()],
                        timelimit: numbers[(k / 7) % numbers.len()],
                        typesonly: k % 2 == 1,
                        filter: filter.clone(),
                        attrs: attr_lists[(k / 2) % attr_lists.len()].clone(),
                    }),
                );
                let bytes = encode(msg.clone());
                assert!(agrees(&bytes), "not decoded: {msg:?}");
                assert_eq!(search_request(&bytes), Some(msg));
                count += 1;
            }
        }
        for base in &bases {
            for scope in &scopes {
                for aliases in &derefs {
                    for (n, &number) in numbers.iter().enumerate() {
                        for attrs in &attr_lists {
                            let msg = LdapMsg::new(
                                numbers[(n + 3) % numbers.len()].max(1),
                                LdapOp::SearchRequest(LdapSearchRequest {
                                    base: base.clone(),
                                    scope: scope.clone(),
                                    aliases: aliases.clone(),
                                    sizelimit: number,
                                    timelimit: numbers[numbers.len() - 1 - n],
                                    typesonly: n % 2 == 0,
                                    filter: LdapFilter::Present("objectClass".into()),
                                    attrs: attrs.clone(),
                                }),
                            );
                            let bytes = encode(msg.clone());
                            assert!(agrees(&bytes), "not decoded: {msg:?}");
                            assert_eq!(search_request(&bytes), Some(msg));
                            count += 1;
                        }
                    }
                }
            }
        }
        for &msgid in &numbers {
            let bytes = encode(search(msgid, LdapFilter::Present("cn".into())));
            assert!(agrees(&bytes));
        }
        assert!(count > 1000, "{count}");
    }

    #[test]
    fn filters_nest_up_to_the_limit() {
        let nest = |depth: usize| {
            let mut f = LdapFilter::Equality("cn".into(), "x".into());
            for i in 1..depth {
                f = match i % 3 {
                    0 => LdapFilter::Not(Box::new(f)),
                    1 => LdapFilter::And(vec![f]),
                    _ => LdapFilter::Or(vec![LdapFilter::Present("sn".into()), f]),
                };
            }
            f
        };
        let bytes = encode(search(7, nest(MAX_FILTER_DEPTH)));
        assert!(agrees(&bytes));
        // Deeper goes to ldap3_proto, whatever it makes of it.
        for depth in [MAX_FILTER_DEPTH + 1, 127, 128, 200] {
            let bytes = encode(search(7, nest(depth)));
            assert_eq!(search_request(&bytes), None, "depth {depth}");
        }
    }

    #[test]
    fn other_messages_fall_back() {
        let paged = LdapMsg::new_with_ctrls(
            3,
            search(3, LdapFilter::Present("cn".into())).op,
            vec![LdapControl::SimplePagedResults {
                size: 100,
                cookie: vec![],
            }],
        );
        let bind = LdapMsg::new(
            1,
            LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: "cn=phones,dc=example,dc=com".into(),
                cred: LdapBindCred::Simple("pw".into()),
            }),
        );
        let extensible = search(
            4,
            LdapFilter::Extensible(LdapMatchingRuleAssertion {
                matching_rule: Some("caseIgnoreMatch".into()),
                type_: Some("cn".into()),
                match_value: "x".into(),
                dn_attributes: false,
            }),
        );
        let extensible_inside = search(
            5,
            LdapFilter::And(vec![LdapFilter::Present("cn".into()), extensible_filter()]),
        );
        let negative = |sizelimit: i32| {
            let mut msg = search(6, LdapFilter::Present("cn".into()));
            if let LdapOp::SearchRequest(s) = &mut msg.op {
                s.sizelimit = sizelimit;
            }
            msg
        };
        for msg in [
            paged,
            bind,
            LdapMsg::new(2, LdapOp::UnbindRequest),
            LdapMsg::new(2, LdapOp::AbandonRequest(1)),
            LdapMsg::new(2, LdapOp::DelRequest("cn=x".into())),
            extensible,
            extensible_inside,
            negative(-1),
            negative(i32::MIN),
            search(-5, LdapFilter::Present("cn".into())),
        ] {
            let bytes = encode(msg.clone());
            assert_eq!(search_request(&bytes), None, "{msg:?}");
            // ... and the codec still answers as ldap3_proto does.
            let mut buf = BytesMut::from(&bytes[..]);
            let ours = super::super::codec::Codec::new(1 << 20)
                .decode(&mut buf)
                .map_err(|e| e.to_string());
            assert_eq!((ours, buf.len()), reference(&bytes), "{msg:?}");
        }
    }

    fn extensible_filter() -> LdapFilter {
        LdapFilter::Extensible(LdapMatchingRuleAssertion {
            matching_rule: None,
            type_: Some("cn".into()),
            match_value: "x".into(),
            dn_attributes: true,
        })
    }

    /// A TLV with the shortest length encoding.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let octets: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | octets.len() as u8);
            out.extend(octets);
        }
        out.extend_from_slice(content);
        out
    }

    /// A search request from raw parts: msgid content, the request's elements, and what
    /// follows the request inside the message.
    fn raw(msgid: &[u8], elements: &[Vec<u8>], after: &[u8]) -> Vec<u8> {
        let mut body = tlv(INTEGER, msgid);
        body.extend(tlv(SEARCH_REQUEST, &elements.concat()));
        body.extend_from_slice(after);
        tlv(SEQUENCE, &body)
    }

    fn plain_elements(filter: Vec<u8>) -> Vec<Vec<u8>> {
        vec![
            tlv(OCTET_STRING, b"dc=example"),
            tlv(ENUMERATED, &[2]),
            tlv(ENUMERATED, &[0]),
            tlv(INTEGER, &[5]),
            tlv(INTEGER, &[0]),
            tlv(BOOLEAN, &[0]),
            filter,
            tlv(SEQUENCE, &tlv(OCTET_STRING, b"cn")),
        ]
    }

    fn present() -> Vec<u8> {
        tlv(FILTER_PRESENT, b"cn")
    }

    #[test]
    fn the_hand_built_baseline_decodes() {
        assert!(agrees(&raw(&[1], &plain_elements(present()), &[])));
        // A long-form length where a short one would do reads the same in both.
        let mut bytes = raw(&[1], &plain_elements(present()), &[]);
        // 30 len 02 01 01 63 len 04 0a "dc=example" → 04 81 0a ...
        let at = bytes.iter().position(|b| *b == OCTET_STRING).unwrap();
        bytes.insert(at + 1, 0x81);
        bytes[1] += 1;
        bytes[6] += 1;
        assert!(agrees(&bytes));
        // A true other than 0xff.
        let mut elements = plain_elements(present());
        elements[5] = tlv(BOOLEAN, &[0x01]);
        assert!(agrees(&raw(&[1], &elements, &[])));
    }

    /// Shapes ldap3_proto reads leniently, or refuses: the fast path leaves them all to it.
    #[test]
    fn lenient_or_odd_shapes_fall_back() {
        let eq = |a: &[u8], v: &[u8]| {
            tlv(
                FILTER_EQUALITY,
                &[tlv(OCTET_STRING, a), tlv(OCTET_STRING, v)].concat(),
            )
        };
        let substrings = |parts: &[Vec<u8>]| {
            tlv(
                FILTER_SUBSTRINGS,
                &[tlv(OCTET_STRING, b"cn"), tlv(SEQUENCE, &parts.concat())].concat(),
            )
        };
        let with = |index: usize, element: Vec<u8>| {
            let mut elements = plain_elements(present());
            elements[index] = element;
            raw(&[1], &elements, &[])
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "msgid with a leading zero",
                raw(&[0, 5], &plain_elements(present()), &[]),
            ),
            ("msgid empty", raw(&[], &plain_elements(present()), &[])),
            (
                "msgid negative",
                raw(&[0xff], &plain_elements(present()), &[]),
            ),
            (
                "msgid five octets",
                raw(&[0, 0x80, 0, 0, 0], &plain_elements(present()), &[]),
            ),
            (
                "controls",
                raw(&[1], &plain_elements(present()), &tlv(0xa0, &[])),
            ),
            (
                "junk after the request",
                raw(&[1], &plain_elements(present()), &[0x04, 0x00]),
            ),
            (
                "half an element after the request",
                raw(&[1], &plain_elements(present()), &[0x04, 0x05]),
            ),
            ("scope as an integer", with(1, tlv(INTEGER, &[2]))),
            ("scope 4", with(1, tlv(ENUMERATED, &[4]))),
            ("scope two octets", with(1, tlv(ENUMERATED, &[0, 2]))),
            ("deref 9", with(2, tlv(ENUMERATED, &[9]))),
            ("sizelimit 0xff", with(3, tlv(INTEGER, &[0xff]))),
            ("timelimit empty", with(4, tlv(INTEGER, &[]))),
            ("boolean two octets", with(5, tlv(BOOLEAN, &[0, 0]))),
            ("boolean empty", with(5, tlv(BOOLEAN, &[]))),
            ("base not UTF-8", with(0, tlv(OCTET_STRING, &[0xc3, 0x28]))),
            (
                "base constructed",
                with(0, tlv(0x24, &tlv(OCTET_STRING, b"x"))),
            ),
            (
                "attribute not UTF-8",
                with(7, tlv(SEQUENCE, &tlv(OCTET_STRING, &[0xff]))),
            ),
            ("attribute list as a set", with(7, tlv(0x31, &[]))),
            (
                "attribute list trailing half",
                with(7, tlv(SEQUENCE, &[0x04, 0x03, b'c'])),
            ),
            ("value not UTF-8", with(6, eq(b"cn", &[0x80]))),
            (
                "value as an INTEGER",
                with(
                    6,
                    tlv(
                        FILTER_EQUALITY,
                        &[tlv(OCTET_STRING, b"cn"), tlv(INTEGER, &[1])].concat(),
                    ),
                ),
            ),
            (
                "assertion with a third element",
                with(
                    6,
                    tlv(
                        FILTER_EQUALITY,
                        &[
                            tlv(OCTET_STRING, b"cn"),
                            tlv(OCTET_STRING, b"x"),
                            tlv(OCTET_STRING, b"y"),
                        ]
                        .concat(),
                    ),
                ),
            ),
            (
                "assertion with one element",
                with(6, tlv(FILTER_EQUALITY, &tlv(OCTET_STRING, b"cn"))),
            ),
            (
                "present constructed",
                with(6, tlv(0xa7, &tlv(OCTET_STRING, b"cn"))),
            ),
            ("equality primitive", with(6, tlv(0x83, b"cn"))),
            (
                "not with two filters",
                with(6, tlv(FILTER_NOT, &[present(), present()].concat())),
            ),
            ("not empty", with(6, tlv(FILTER_NOT, &[]))),
            (
                "and with trailing half",
                with(
                    6,
                    tlv(FILTER_AND, &[present(), vec![0x87, 0x05, b'c']].concat()),
                ),
            ),
            (
                "extensible",
                with(6, tlv(0xa9, &[tlv(0x82, b"cn"), tlv(0x83, b"x")].concat())),
            ),
            ("unknown filter", with(6, tlv(0xaa, &[]))),
            ("long-form tag", with(6, tlv(0xbf, &[]))),
            (
                "substring initial not first",
                with(6, substrings(&[tlv(0x81, b"a"), tlv(0x80, b"b")])),
            ),
            (
                "substring final not last",
                with(6, substrings(&[tlv(0x82, b"a"), tlv(0x81, b"b")])),
            ),
            (
                "substring two initials",
                with(6, substrings(&[tlv(0x80, b"a"), tlv(0x80, b"b")])),
            ),
            (
                "substring part universal",
                with(6, substrings(&[tlv(0x00, b"a")])),
            ),
            (
                "substring part application",
                with(6, substrings(&[tlv(0x41, b"a")])),
            ),
            (
                "substring part not UTF-8",
                with(6, substrings(&[tlv(0x81, &[0xfe])])),
            ),
            (
                "substring part 0x83",
                with(6, substrings(&[tlv(0x83, b"a")])),
            ),
            (
                "substring extra element",
                with(
                    6,
                    tlv(
                        FILTER_SUBSTRINGS,
                        &[
                            tlv(OCTET_STRING, b"cn"),
                            tlv(SEQUENCE, &[]),
                            tlv(OCTET_STRING, b"x"),
                        ]
                        .concat(),
                    ),
                ),
            ),
            (
                "nine elements",
                raw(
                    &[1],
                    &[plain_elements(present()), vec![tlv(OCTET_STRING, b"x")]].concat(),
                    &[],
                ),
            ),
            (
                "seven elements",
                raw(&[1], &plain_elements(present())[..7], &[]),
            ),
            ("indefinite length", {
                let mut elements = plain_elements(present());
                elements[0] = vec![OCTET_STRING, 0x80];
                raw(&[1], &elements, &[])
            }),
            ("five length octets", {
                let mut elements = plain_elements(present());
                elements[0] = vec![OCTET_STRING, 0x85, 0, 0, 0, 0, 1, b'x'];
                raw(&[1], &elements, &[])
            }),
        ];
        for (what, bytes) in cases {
            assert_eq!(search_request(&bytes), None, "{what}: {bytes:02x?}");
        }
        // And a few of them ldap3_proto does accept (so falling back matters).
        for bytes in [
            raw(&[0, 5], &plain_elements(present()), &[]),
            raw(&[1], &plain_elements(present()), &[0x04, 0x05]),
            with(6, substrings(&[tlv(0x00, b"a")])),
        ] {
            assert!(matches!(reference(&bytes).0, Ok(Some(_))), "{bytes:02x?}");
        }
    }

    fn samples() -> Vec<Vec<u8>> {
        let f = filters();
        vec![
            encode(search(1, LdapFilter::Present("objectClass".into()))),
            encode(search(300, f[f.len() - 2].clone())),
            encode(search(
                i32::MAX,
                LdapFilter::Or(vec![
                    LdapFilter::Substring(
                        "cn".into(),
                        LdapSubstringFilter {
                            initial: Some("Mü".into()),
                            any: vec!["l".into(), long(140)],
                            final_: Some("r".into()),
                        },
                    ),
                    LdapFilter::Not(Box::new(LdapFilter::Approx("sn".into(), "x".into()))),
                    LdapFilter::And(vec![
                        LdapFilter::GreaterOrEqual("a".into(), "1".into()),
                        LdapFilter::LessOrEqual("a".into(), "9".into()),
                    ]),
                ]),
            )),
        ]
    }

    #[test]
    fn truncations_never_panic_nor_disagree() {
        for bytes in samples() {
            assert!(agrees(&bytes));
            for n in 0..bytes.len() {
                assert!(!agrees(&bytes[..n]), "a prefix of {n} bytes");
                // The same prefix with the outer length patched to fit: inner lengths no
                // longer add up.
                let header = if bytes[1] < 0x80 {
                    2
                } else {
                    2 + usize::from(bytes[1] & 0x7f)
                };
                if let Some(inner) = bytes[..n].get(header..) {
                    assert!(!agrees(&tlv(SEQUENCE, inner)), "{n} bytes, patched");
                }
            }
        }
    }

    #[test]
    fn corruptions_never_panic_nor_disagree() {
        for bytes in samples() {
            let mut decoded = 0;
            for at in 0..bytes.len() {
                for value in 0..=255u8 {
                    let mut corrupt = bytes.clone();
                    corrupt[at] = value;
                    decoded += usize::from(agrees(&corrupt));
                }
            }
            // Changed content octets (names, values, limits) still decode.
            assert!(decoded > bytes.len(), "{decoded}");
        }
    }

    /// The fuzzer's corpus (client byte streams), message by message.
    #[test]
    fn the_fuzz_corpus_agrees() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ldap_session");
        // The corpus is in the repository: without it this test would pass having read nothing.
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let (mut messages, mut fast) = (0, 0);
        for entry in entries {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let mut buf = BytesMut::from(&data[..]);
            let mut codec = LdapCodec::new(Some(64 * 1024), None);
            loop {
                let whole = match (buf.first(), buf.get(1)) {
                    (Some(0x30), Some(&l)) if l < 0x80 => buf.get(..2 + usize::from(l)),
                    (Some(0x30), Some(&l)) if (0x81..=0x84).contains(&l) => {
                        let count = usize::from(l & 0x7f);
                        buf.get(2..2 + count).and_then(|o| {
                            let len = o.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
                            buf.get(..2 + count + len)
                        })
                    }
                    _ => None,
                };
                let whole = whole.map(<[u8]>::to_vec);
                let fast_result = whole.as_deref().and_then(search_request);
                let Ok(Some(slow)) = codec.decode(&mut buf) else {
                    assert_eq!(fast_result, None);
                    break;
                };
                messages += 1;
                if let Some(f) = fast_result {
                    assert_eq!(f, slow);
                    fast += 1;
                } else if matches!(slow.op, LdapOp::SearchRequest(_)) && slow.ctrl.is_empty() {
                    // Only odd encodings of a plain search are left to ldap3_proto, never
                    // its own.
                    assert_ne!(whole, Some(encode(slow.clone())), "{slow:?}");
                }
            }
        }
        assert!(messages > 0, "the corpus held no LDAP message");
        assert!(fast > 0, "{messages} messages, none decoded here");
    }
}
