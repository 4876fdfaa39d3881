//! BER (ITU-T X.690) as LDAP uses it: the crate's one reader and one writer of tags and
//! lengths.
//!
//! Three places read BER — the codec's framing (the size a message header announces, and
//! the criticality of two controls ldap3_proto forgets), the fast SearchRequest decoder, and
//! the snapshot's own packed values — and two write it: the snapshot, which encodes each
//! entry's values once, and `ldap::wire::encode`, which writes search results from them.
//! Every other message is encoded and decoded by ldap3_proto (and a connector filter by
//! ldap3's parser, in `filter.rs`). The readers differ only
//! in which length encodings they accept, and that difference matters (the fast decoder
//! must refuse whatever ldap3_proto might read differently; the framing must predict what
//! ldap3_proto will read), so [`Lengths`] names each rule once instead of each reader
//! carrying its own copy. Everything here is a leaf: no LDAP types, no I/O.

pub const BOOLEAN: u8 = 0x01;
pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const ENUMERATED: u8 = 0x0a;
/// Universal, constructed.
pub const SEQUENCE: u8 = 0x30;
/// Universal, constructed.
pub const SET: u8 = 0x31;
/// A whole, empty `SET OF` (the values of a typesOnly answer).
pub const EMPTY_SET: &[u8] = &[SET, 0x00];

/// The class bits of a one-octet tag.
pub const CLASS: u8 = 0xc0;
pub const APPLICATION: u8 = 0x40;
pub const CONTEXT: u8 = 0x80;
/// The constructed bit of a one-octet tag.
pub const CONSTRUCTED: u8 = 0x20;
/// The tag-number bits of a one-octet tag; all five set announce the high-tag-number form.
pub const NUMBER: u8 = 0x1f;

/// Whether `tag` starts a high-tag-number form (the number follows in further octets).
/// Nothing in LDAP uses one; ldap3_lber reads such a tag as its first octet alone.
pub fn is_high_tag(tag: u8) -> bool {
    tag & NUMBER == NUMBER
}

/// How the octet after a tag describes the length of the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The short form: the length itself, 0–127.
    Short(usize),
    /// The long form: how many length octets follow (1–127).
    Long(usize),
    /// `0x80`, the indefinite form, which LDAP does not allow (RFC 4511 §5.1).
    Indefinite,
}

/// The form of the length octet `first`.
pub fn form(first: u8) -> Form {
    match first {
        0..=0x7f => Form::Short(usize::from(first)),
        0x80 => Form::Indefinite,
        _ => Form::Long(usize::from(first & 0x7f)),
    }
}

/// Long-form length octets as a number, big-endian, folded into 64 bits the way ldap3_lber
/// folds them (of more than eight octets only the last eight count).
pub fn fold(octets: &[u8]) -> u64 {
    octets
        .iter()
        .fold(0u64, |acc, b| acc.wrapping_shl(8) | u64::from(*b))
}

/// Which length encodings a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lengths {
    /// Definite lengths with at most four long-form octets: everything this server, ldap3,
    /// OpenLDAP and the phones write. The fast decoder and the control scan accept only these
    /// and leave anything else to ldap3_proto.
    Definite,
    /// Lengths as ldap3_lber reads them: any number of long-form octets (see [`fold`]), and
    /// `0x80` as length zero. Only for predicting what ldap3_proto will make of a message.
    Lber,
}

/// The element at the start of `bytes`, with a one-octet tag and a length `lengths`
/// accepts: (tag, content, what follows). `None` if it is cut short or its length is not
/// accepted.
#[inline]
pub fn element(bytes: &[u8], lengths: Lengths) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match (form(first), lengths) {
        (Form::Short(len), _) => (len, rest),
        (Form::Long(count @ 1..=4), Lengths::Definite) | (Form::Long(count), Lengths::Lber) => {
            let octets = rest.get(..count)?;
            (usize::try_from(fold(octets)).ok()?, rest.get(count..)?)
        }
        (Form::Indefinite, Lengths::Lber) => (0, rest),
        _ => return None,
    };
    let content = rest.get(..len)?;
    Some((tag, content, rest.get(len..)?))
}

/// The content of the element at the start of `tlv` (empty if it is cut short) — for BER
/// this crate wrote itself.
#[inline]
pub fn content(tlv: &[u8]) -> &[u8] {
    element(tlv, Lengths::Definite).map_or(&[], |(_, content, _)| content)
}

/// The values of the `SET OF` (or `SEQUENCE OF`) content `set`, each element's content in
/// order; stops at the first element it cannot read.
pub fn elements(set: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = set;
    std::iter::from_fn(move || {
        let (_, content, next) = element(rest, Lengths::Definite)?;
        rest = next;
        Some(content)
    })
}

/// A non-negative INTEGER of one to four content octets, minimally encoded — the only
/// INTEGERs the fast decoder accepts (on these ldap3_proto's reading agrees with BER).
pub fn small_integer(content: &[u8]) -> Option<i32> {
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
pub fn small_enumerated(content: &[u8]) -> Option<u8> {
    match content {
        [value] if *value < 0x80 => Some(*value),
        _ => None,
    }
}

/// A BOOLEAN of one content octet; any non-zero octet is true (BER, and ldap3_proto).
pub fn boolean(content: &[u8]) -> Option<bool> {
    match content {
        [value] => Some(*value != 0),
        _ => None,
    }
}

/// Size of an element with `len` content octets, as [`put_header`] writes it.
pub fn tlv_len(len: usize) -> usize {
    1 + length_octets(len) + len
}

fn length_octets(len: usize) -> usize {
    if len < 128 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    }
}

/// Where encoded bytes go: a `Vec` while the snapshot encodes its entries, the connection's
/// `BytesMut` while a response is written. Headers go byte by byte through `put_byte`, which
/// inlines to a store: as slices, each header was a `memcpy` call, and a response of 50
/// entries writes some 700 headers.
pub trait Out {
    fn put_byte(&mut self, byte: u8);
    fn put_bytes(&mut self, bytes: &[u8]);
}

impl Out for Vec<u8> {
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }

    #[inline]
    fn put_bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Out for tokio_util::bytes::BytesMut {
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        tokio_util::bytes::BufMut::put_u8(self, byte);
    }

    #[inline]
    fn put_bytes(&mut self, bytes: &[u8]) {
        tokio_util::bytes::BufMut::put_slice(self, bytes);
    }
}

/// Appends a tag and a definite length in the minimal form (what ldap3_proto writes).
#[inline]
pub fn put_header(out: &mut impl Out, tag: u8, len: usize) {
    out.put_byte(tag);
    if len < 128 {
        out.put_byte(len as u8);
    } else {
        let count = length_octets(len) - 1;
        out.put_byte(0x80 | count as u8);
        for i in (0..count).rev() {
            out.put_byte((len >> (8 * i)) as u8);
        }
    }
}

/// Appends a whole primitive element.
#[inline]
pub fn put_tlv(out: &mut impl Out, tag: u8, content: &[u8]) {
    put_header(out, tag, content.len());
    out.put_bytes(content);
}

/// Appends `SET OF OCTET STRING` of `values`.
pub fn put_set<'a>(out: &mut impl Out, values: impl Iterator<Item = &'a str> + Clone) {
    let len: usize = values.clone().map(|v| tlv_len(v.len())).sum();
    put_header(out, SET, len);
    for v in values {
        put_tlv(out, OCTET_STRING, v.as_bytes());
    }
}

/// The content octets of an INTEGER or ENUMERATED as ldap3_lber writes them (two's
/// complement, shortest form but for a leading zero octet ldap3_lber adds before a
/// positive value whose top bit is set in the last octet it counted).
pub fn integer(value: i64) -> Vec<u8> {
    let mut count = 0usize;
    let mut rem = value.abs();
    loop {
        count += 1;
        rem >>= 8;
        if rem == 0 {
            break;
        }
    }
    if value > 0 && value >> (8 * count - 1) == 1 {
        count += 1;
    }
    let repr = value.to_be_bytes();
    let mut out = Vec::with_capacity(count);
    if count > repr.len() {
        out.push(0);
        count -= 1;
    }
    out.extend_from_slice(&repr[repr.len() - count..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_minimal_and_read_back() {
        for (len, header) in [
            (0, vec![4, 0]),
            (127, vec![4, 127]),
            (128, vec![4, 0x81, 128]),
            (255, vec![4, 0x81, 255]),
            (256, vec![4, 0x82, 1, 0]),
            (70_000, vec![4, 0x83, 1, 0x11, 0x70]),
        ] {
            let mut out = Vec::new();
            put_header(&mut out, 4, len);
            assert_eq!(out, header, "{len}");
            assert_eq!(tlv_len(len), header.len() + len);
            out.resize(tlv_len(len), b'x');
            assert_eq!(content(&out).len(), len);
            out.push(b'y');
            assert_eq!(content(&out).len(), len, "only the element's own content");
            for lengths in [Lengths::Definite, Lengths::Lber] {
                let (tag, body, rest) = element(&out, lengths).unwrap();
                assert_eq!((tag, body.len(), rest), (4, len, &b"y"[..]));
            }
        }
    }

    #[test]
    fn the_two_rules_differ_only_in_odd_lengths() {
        // Five length octets with leading zeros: ldap3_lber reads them, the strict rule not.
        let five = [0x04, 0x85, 0, 0, 0, 0, 2, b'a', b'b'];
        assert_eq!(element(&five, Lengths::Definite), None);
        assert_eq!(
            element(&five, Lengths::Lber),
            Some((4, &b"ab"[..], &[][..]))
        );
        // The indefinite form: refused, or read as length zero as ldap3_lber does.
        let indefinite = [0x30, 0x80, 0x00, 0x00];
        assert_eq!(element(&indefinite, Lengths::Definite), None);
        assert_eq!(
            element(&indefinite, Lengths::Lber),
            Some((0x30, &[][..], &[0u8, 0][..]))
        );
        // Cut short: nobody reads it.
        for lengths in [Lengths::Definite, Lengths::Lber] {
            assert_eq!(element(&[0x04, 0x82, 1], lengths), None);
            assert_eq!(element(&[0x04, 3, b'a'], lengths), None);
            assert_eq!(element(&[0x04], lengths), None);
        }
        assert_eq!(content(&[0x04, 3, b'a']), b"");
        // More than eight octets: only the last eight count, as in ldap3_lber.
        assert_eq!(fold(&[1, 0, 0, 0, 0, 0, 0, 0, 5]), 5);
        assert_eq!(form(0x84), Form::Long(4));
    }

    #[test]
    fn integers_are_written_as_ldap3_lber_writes_them() {
        for (value, octets) in [
            (0i64, vec![0]),
            (1, vec![1]),
            (127, vec![127]),
            (128, vec![0, 128]),
            (255, vec![0, 255]),
            (256, vec![1, 0]),
            (32_768, vec![0, 128, 0]),
            (i64::from(i32::MAX), vec![127, 255, 255, 255]),
        ] {
            assert_eq!(integer(value), octets, "{value}");
        }
    }
}
