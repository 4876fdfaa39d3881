//! Framing of LDAP messages: ldap3_proto's codec behind a check of each message's header.
//!
//! ldap3_proto's codec only notices an oversized message once twice the limit has been
//! buffered, and it waits for as many bytes as any header announces. So a peer that sends
//! `30 84 7f ff ff ff` (a 2 GiB message) or the first bytes of an HTTP request would hold
//! its connection and buffer until the idle timeout. Every LDAPMessage is a SEQUENCE
//! (`0x30`) with a definite length (RFC 4511 §5.1), so both are refused as soon as the
//! header has arrived.

use std::io;

use ldap3_proto::proto::LdapMsg;
use ldap3_proto::LdapCodec;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

/// The universal, constructed SEQUENCE tag every LDAPMessage starts with.
const SEQUENCE: u8 = 0x30;

pub struct Codec {
    inner: LdapCodec,
    max_pdu_size: usize,
}

impl Codec {
    pub fn new(max_pdu_size: usize) -> Self {
        Codec {
            inner: LdapCodec::new(Some(max_pdu_size), None),
            max_pdu_size,
        }
    }
}

impl Decoder for Codec {
    type Item = LdapMsg;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<LdapMsg>, io::Error> {
        match announced_size(buf) {
            Announced::Incomplete => return Ok(None),
            Announced::NotLdap => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not an LDAP message (no SEQUENCE with a definite length)",
                ))
            }
            Announced::Size(size) if size > self.max_pdu_size => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a message of {size} bytes announced; the limit is {} (ldap.max_pdu_size)",
                        self.max_pdu_size
                    ),
                ))
            }
            Announced::Size(_) => {}
        }
        self.inner.decode(buf)
    }
}

impl Encoder<LdapMsg> for Codec {
    type Error = io::Error;

    fn encode(&mut self, msg: LdapMsg, buf: &mut BytesMut) -> Result<(), io::Error> {
        self.inner.encode(msg, buf)
    }
}

/// What the header at the start of `buf` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announced {
    /// Not all of the header has arrived.
    Incomplete,
    /// Not a SEQUENCE, or an indefinite or absurd length.
    NotLdap,
    /// The whole message's size, header included.
    Size(usize),
}

fn announced_size(buf: &[u8]) -> Announced {
    match buf.first() {
        None => return Announced::Incomplete,
        Some(&SEQUENCE) => {}
        Some(_) => return Announced::NotLdap,
    }
    let Some(&first) = buf.get(1) else {
        return Announced::Incomplete;
    };
    if first < 0x80 {
        return Announced::Size(2 + usize::from(first));
    }
    // Long form: the low bits count the length octets; zero is the indefinite form.
    let count = usize::from(first & 0x7f);
    if count == 0 || count > std::mem::size_of::<usize>() {
        return Announced::NotLdap;
    }
    let Some(octets) = buf.get(2..2 + count) else {
        return Announced::Incomplete;
    };
    let length = octets
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Announced::Size(length.saturating_add(2 + count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_announces_the_size() {
        assert_eq!(announced_size(&[]), Announced::Incomplete);
        assert_eq!(announced_size(&[0x30]), Announced::Incomplete);
        assert_eq!(announced_size(&[0x30, 0x05, 0x02]), Announced::Size(7));
        assert_eq!(announced_size(&[0x30, 0x82, 0x01]), Announced::Incomplete);
        assert_eq!(
            announced_size(&[0x30, 0x82, 0x01, 0x00]),
            Announced::Size(260)
        );
        assert_eq!(
            announced_size(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]),
            Announced::Size(0x7fff_ffff + 6)
        );
        assert_eq!(announced_size(b"GET / HTTP/1.1"), Announced::NotLdap);
        assert_eq!(
            announced_size(&[0x30, 0x80]),
            Announced::NotLdap,
            "indefinite"
        );
        assert_eq!(announced_size(&[0x30, 0xff]), Announced::NotLdap);
    }

    #[test]
    fn oversized_or_foreign_headers_fail_before_the_body_arrives() {
        let mut codec = Codec::new(1024);
        let mut buf = BytesMut::from(&[0x30, 0x83, 0x10, 0x00, 0x00, 0x02][..]);
        assert!(codec.decode(&mut buf).is_err(), "1 MiB announced");
        let mut buf = BytesMut::from(&b"GET "[..]);
        assert!(codec.decode(&mut buf).is_err(), "HTTP");
        let mut buf = BytesMut::from(&[0x30, 0x82, 0x03][..]);
        assert!(
            matches!(codec.decode(&mut buf), Ok(None)),
            "header incomplete"
        );
    }

    #[test]
    fn messages_within_the_limit_decode() {
        // An unbind request: SEQUENCE { INTEGER 1, [APPLICATION 2] NULL }.
        let mut buf = BytesMut::from(&[0x30, 0x05, 0x02, 0x01, 0x01, 0x42, 0x00][..]);
        let msg = Codec::new(1024).decode(&mut buf).unwrap().unwrap();
        assert_eq!(msg.msgid, 1);
        assert!(buf.is_empty());
        // Half a message waits for the rest.
        let mut buf = BytesMut::from(&[0x30, 0x05, 0x02, 0x01][..]);
        assert!(matches!(Codec::new(1024).decode(&mut buf), Ok(None)));
    }
}
