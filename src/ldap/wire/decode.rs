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
//!   assertions exactly `04 attr, 04 value`; nested at most [`limits::DECODED_FILTER_DEPTH`] deep
//!   (ldap3_proto's own limits, 127 filter levels and 127 BER levels, are further out).
//!
//! Everything else — other operations, controls, extensible matches, anything ldap3_proto
//! might read leniently (it ignores surplus elements, unknown trailing bytes in a
//! constructed element, the class of substring parts) — falls back.

use ldap3_proto::proto::{
    LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapSearchRequest, LdapSearchScope,
    LdapSubstringFilter,
};

use crate::ber::{self, Lengths, BOOLEAN, ENUMERATED, INTEGER, OCTET_STRING, SEQUENCE};
use crate::filter::choice;
use crate::limits;

/// `[APPLICATION 3]`, constructed.
const SEARCH_REQUEST: u8 = ber::APPLICATION | ber::CONSTRUCTED | 3;

/// A filter choice's tag: context-specific, constructed but for `present`.
const fn filter_tag(number: u8) -> u8 {
    ber::CONTEXT | ber::CONSTRUCTED | number
}
const FILTER_AND: u8 = filter_tag(choice::AND);
const FILTER_OR: u8 = filter_tag(choice::OR);
const FILTER_NOT: u8 = filter_tag(choice::NOT);
const FILTER_EQUALITY: u8 = filter_tag(choice::EQUALITY);
const FILTER_SUBSTRINGS: u8 = filter_tag(choice::SUBSTRINGS);
const FILTER_GREATER_OR_EQUAL: u8 = filter_tag(choice::GREATER_OR_EQUAL);
const FILTER_LESS_OR_EQUAL: u8 = filter_tag(choice::LESS_OR_EQUAL);
const FILTER_PRESENT: u8 = ber::CONTEXT | choice::PRESENT;
const FILTER_APPROX: u8 = filter_tag(choice::APPROX);

const SUBSTRING_INITIAL: u8 = ber::CONTEXT | choice::INITIAL;
const SUBSTRING_ANY: u8 = ber::CONTEXT | choice::ANY;
const SUBSTRING_FINAL: u8 = ber::CONTEXT | choice::FINAL;

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
    let msgid = ber::small_integer(body.element(INTEGER)?)?;
    let op = body.element(SEARCH_REQUEST)?;
    if !body.is_empty() {
        // Controls, or something ldap3_proto would read or skip on its own terms.
        return None;
    }

    let mut op = Reader::new(op);
    let base = string(op.element(OCTET_STRING)?)?;
    let scope = match ber::small_enumerated(op.element(ENUMERATED)?)? {
        0 => LdapSearchScope::Base,
        1 => LdapSearchScope::OneLevel,
        2 => LdapSearchScope::Subtree,
        3 => LdapSearchScope::Children,
        _ => return None,
    };
    let aliases = match ber::small_enumerated(op.element(ENUMERATED)?)? {
        0 => LdapDerefAliases::Never,
        1 => LdapDerefAliases::InSearching,
        2 => LdapDerefAliases::FindingBaseObj,
        3 => LdapDerefAliases::Always,
        _ => return None,
    };
    let sizelimit = ber::small_integer(op.element(INTEGER)?)?;
    let timelimit = ber::small_integer(op.element(INTEGER)?)?;
    let typesonly = ber::boolean(op.element(BOOLEAN)?)?;
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
    if depth > limits::DECODED_FILTER_DEPTH {
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
    if tag & ber::CLASS != ber::APPLICATION {
        return None;
    }
    // ldap3_lber reads the low five bits as the tag number (no high-tag-number form).
    let number = tag & ber::NUMBER;
    let constructed = tag & ber::CONSTRUCTED != 0;
    // The operations ldap3_proto decodes (RFC 4511 §4.2–4.14), by number and form.
    let known = match number {
        2 => true,
        10 | 16 => !constructed,
        0 | 1 | 3..=9 | 11..=15 | 19 | 23..=25 => constructed,
        _ => false,
    };
    (!known).then_some(tag)
}

/// One element as ldap3_lber reads it (see [`Lengths::Lber`]).
fn lber_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    ber::element(bytes, Lengths::Lber)
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
        if ber::is_high_tag(*self.rest.first()?) {
            return None;
        }
        let (tag, content, rest) = ber::element(self.rest, Lengths::Definite)?;
        self.rest = rest;
        Some((tag, content))
    }
}

#[cfg(test)]
pub(crate) mod tests;
