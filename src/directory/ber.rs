//! The few BER encodings the served form of an entry needs (definite, minimal lengths —
//! exactly what ldap3_proto's encoder writes), shared by the snapshot, which encodes each
//! entry's values once, and the LDAP session, which assembles responses from them.

/// Size of a TLV with `len` content bytes.
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
}

impl Out for Vec<u8> {
    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

impl Out for tokio_util::bytes::BytesMut {
    fn put_byte(&mut self, byte: u8) {
        tokio_util::bytes::BufMut::put_u8(self, byte);
    }
}

/// Appends a tag and a length.
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

/// The content of the TLV that starts at `tlv[0]` (empty if it is cut short).
pub fn content(tlv: &[u8]) -> &[u8] {
    let (header, len) = match tlv.get(1) {
        Some(&b) if b >= 0x80 => {
            let count = usize::from(b & 0x7f);
            let len = tlv
                .get(2..2 + count)
                .unwrap_or_default()
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (2 + count, len)
        }
        Some(&b) => (2, usize::from(b)),
        None => (2, 0),
    };
    tlv.get(header..header + len).unwrap_or_default()
}

pub const OCTET_STRING: u8 = 0x04;
pub const SET: u8 = 0x31;
pub const SEQUENCE: u8 = 0x30;

/// `SET OF OCTET STRING` of `values`.
pub fn put_set<'a>(out: &mut Vec<u8>, values: impl Iterator<Item = &'a str> + Clone) {
    let len: usize = values.clone().map(|v| tlv_len(v.len())).sum();
    put_header(out, SET, len);
    for v in values {
        put_header(out, OCTET_STRING, v.len());
        out.extend_from_slice(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_minimal() {
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
            assert_eq!(content(&out).len(), len, "only the TLV's own content");
        }
    }
}
