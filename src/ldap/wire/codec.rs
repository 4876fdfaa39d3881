//! Framing of LDAP messages: ldap3_proto's codec behind a check of each message's header.
//!
//! ldap3_proto's codec only notices an oversized message once twice the limit has been
//! buffered, and it waits for as many bytes as any header announces. So a peer that sends
//! `30 84 7f ff ff ff` (a 2 GiB message) or the first bytes of an HTTP request would hold
//! its connection and buffer until the idle timeout. Every LDAPMessage is a SEQUENCE
//! (`0x30`) with a definite length (RFC 4511 §5.1), so both are refused as soon as the
//! header has arrived.
//!
//! Once a whole message has arrived, a plain SearchRequest — nearly all of the traffic — is
//! decoded by [`decode::search_request`] without ldap3_proto's intermediate BER tree; every
//! other message, and any search it does not fully recognise, goes to ldap3_proto as before.
//!
//! ldap3_proto keeps no criticality for the paged-results and sort controls, so for a message
//! with controls (never one the fast path takes) the codec reads those two flags from the
//! bytes itself; [`Codec::critical`] tells them for the message decoded last.

use std::io;

use ldap3_proto::proto::LdapMsg;
use ldap3_proto::LdapCodec;
use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::decode;
use crate::ber::{self, Form, Lengths, SEQUENCE};

/// `[0] Controls`, the optional last element of an LDAPMessage.
const CONTROLS: u8 = ber::CONTEXT | ber::CONSTRUCTED;
use crate::ldap::controls::{Critical, OID_PAGED_RESULTS, OID_SERVER_SORT};

pub struct Codec {
    inner: LdapCodec,
    max_pdu_size: usize,
    critical: Critical,
}

impl Codec {
    pub fn new(max_pdu_size: usize) -> Self {
        Codec {
            inner: LdapCodec::new(Some(max_pdu_size), None),
            max_pdu_size,
            critical: Critical::default(),
        }
    }

    /// Which paged-results / sort controls of the message decoded last were critical.
    pub fn critical(&self) -> Critical {
        self.critical
    }
}

/// Appends `msg` as ldap3_proto's codec encodes it, straight into a connection's write buffer
/// (a `Sink::feed` would flush a full buffer without the server's write timeout).
pub fn encode_into(msg: LdapMsg, out: &mut BytesMut) -> io::Result<()> {
    LdapCodec::new(None, None).encode(msg, out)
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
            Announced::Size(size) => {
                // ldap3_proto refuses a buffer holding more than twice its message limit before
                // looking at it; so does the fast path, to answer exactly as it would.
                if buf.len() <= self.max_pdu_size.saturating_mul(2) {
                    if let Some(msg) = buf.get(..size).and_then(decode::search_request) {
                        buf.advance(size);
                        self.critical = Critical::default();
                        return Ok(Some(msg));
                    }
                    if let Some(tag) = buf.get(..size).and_then(decode::unknown_operation) {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("unknown LDAP operation (tag {tag:#04x})"),
                        ));
                    }
                }
                self.critical = buf.get(..size).map(critical_controls).unwrap_or_default();
            }
        }
        self.inner.decode(buf)
    }
}

/// One element as the control scan reads it (definite lengths, at most four octets).
fn element(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    ber::element(buf, Lengths::Definite)
}

/// The criticality of the paged-results and sort controls of one whole LDAPMessage:
/// `SEQUENCE { messageID, protocolOp, [0] Controls OPTIONAL }`, each control
/// `SEQUENCE { OCTET STRING oid, BOOLEAN criticality DEFAULT FALSE, OCTET STRING value OPTIONAL }`.
/// Anything it cannot read counts as not critical; ldap3_proto judges the message itself.
fn critical_controls(msg: &[u8]) -> Critical {
    let mut critical = Critical::default();
    let Some((SEQUENCE, body, _)) = element(msg) else {
        return critical;
    };
    let controls = element(body)
        .and_then(|(_, _, rest)| element(rest))
        .and_then(|(_, _, rest)| element(rest));
    let Some((CONTROLS, mut controls, _)) = controls else {
        return critical;
    };
    while let Some((tag, control, rest)) = element(controls) {
        controls = rest;
        if tag != SEQUENCE {
            continue;
        }
        let Some((ber::OCTET_STRING, oid, rest)) = element(control) else {
            continue;
        };
        let is_critical = matches!(element(rest), Some((ber::BOOLEAN, [flag], _)) if *flag != 0);
        if oid == OID_PAGED_RESULTS.as_bytes() {
            critical.paged |= is_critical;
        } else if oid == OID_SERVER_SORT.as_bytes() {
            critical.sort |= is_critical;
        }
    }
    critical
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
    match ber::form(first) {
        Form::Short(len) => Announced::Size(2 + len),
        Form::Indefinite => Announced::NotLdap,
        Form::Long(count) if count > std::mem::size_of::<usize>() => Announced::NotLdap,
        Form::Long(count) => match buf.get(2..2 + count) {
            None => Announced::Incomplete,
            Some(octets) => Announced::Size(
                usize::try_from(ber::fold(octets))
                    .unwrap_or(usize::MAX)
                    .saturating_add(2 + count),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::proto::LdapOp;

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

    fn search(msgid: i32, filter: &str) -> LdapMsg {
        let filter = ldap3_proto::parse_ldap_filter_str(filter).unwrap();
        super::super::decode::tests::search(msgid, filter)
    }

    /// Every message of `buf` as `codec` decodes it, then what ends the stream.
    fn drain<D: Decoder<Item = LdapMsg, Error = io::Error>>(
        codec: &mut D,
        mut buf: BytesMut,
    ) -> (Vec<LdapMsg>, Result<(), String>, usize) {
        let mut out = Vec::new();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => out.push(msg),
                Ok(None) => return (out, Ok(()), buf.len()),
                Err(e) => return (out, Err(e.to_string()), buf.len()),
            }
        }
    }

    #[test]
    fn pipelined_messages_decode_as_ldap3_proto_decodes_them() {
        let mut bytes = BytesMut::new();
        let mut enc = LdapCodec::default();
        let controls = LdapMsg::new_with_ctrls(
            4,
            search(4, "(cn=*)").op,
            vec![ldap3_proto::control::LdapControl::SimplePagedResults {
                size: 10,
                cookie: vec![],
            }],
        );
        for msg in [
            search(1, "(|(cn=*Mül*)(sn=Mül*)(telephoneNumber=*123*))"),
            search(2, "(&(objectClass=person)(!(sn>=Z))(cn~=x)(sn<=b))"),
            LdapMsg::new(3, ldap3_proto::proto::LdapOp::AbandonRequest(2)),
            controls,
            search(5, "(cn:caseIgnoreMatch:=x)"),
            search(i32::MAX, "(telephoneNumber=*)"),
            LdapMsg::new(7, ldap3_proto::proto::LdapOp::UnbindRequest),
        ] {
            enc.encode(msg, &mut bytes).unwrap();
        }
        // Half of another search waits for the rest.
        let mut tail = BytesMut::new();
        enc.encode(search(8, "(cn=x)"), &mut tail).unwrap();
        bytes.extend_from_slice(&tail[..tail.len() / 2]);

        let ours = drain(&mut Codec::new(1 << 20), bytes.clone());
        let reference = drain(&mut LdapCodec::new(Some(1 << 20), None), bytes);
        assert_eq!(ours, reference);
        assert_eq!(ours.0.len(), 7);
        assert_eq!(ours.2, tail.len() / 2);
    }

    #[test]
    fn a_search_in_an_overfull_buffer_is_refused_as_ldap3_proto_refuses_it() {
        // ldap3_proto refuses a buffer over twice its limit, even when its first message is
        // whole and small; the fast path must not decode that message either.
        let mut bytes = BytesMut::new();
        let mut enc = LdapCodec::default();
        for msgid in 1..=40 {
            enc.encode(search(msgid, "(cn=*)"), &mut bytes).unwrap();
        }
        let limit = bytes.len() / 4;
        let ours = drain(&mut Codec::new(limit), bytes.clone());
        let reference = drain(&mut LdapCodec::new(Some(limit), None), bytes);
        assert!(ours.1.is_err());
        assert_eq!(ours, reference);
    }

    #[test]
    fn the_criticality_ldap3_proto_drops_is_read_from_the_bytes() {
        let control = |oid: &str, critical: Option<bool>| {
            let mut c = vec![0x04, oid.len() as u8];
            c.extend_from_slice(oid.as_bytes());
            if let Some(flag) = critical {
                c.extend_from_slice(&[0x01, 0x01, if flag { 0xff } else { 0x00 }]);
            }
            // A value each control's parser accepts: sort by cn; a page of 10.
            let value: &[u8] = match oid {
                OID_SERVER_SORT => &[0x30, 0x06, 0x30, 0x04, 0x04, 0x02, b'c', b'n'],
                OID_PAGED_RESULTS => &[0x30, 0x05, 0x02, 0x01, 0x0a, 0x04, 0x00],
                _ => &[],
            };
            c.extend_from_slice(&[0x04, value.len() as u8]);
            c.extend_from_slice(value);
            let mut out = vec![0x30, c.len() as u8];
            out.extend(c);
            out
        };
        let message = |controls: &[Vec<u8>]| {
            let list: Vec<u8> = controls.concat();
            // SEQUENCE { INTEGER 1, [APPLICATION 2] NULL, [0] { … } }
            let mut body = vec![0x02, 0x01, 0x01, 0x42, 0x00, 0xa0, list.len() as u8];
            body.extend(list);
            let mut out = vec![0x30, body.len() as u8];
            out.extend(body);
            BytesMut::from(&out[..])
        };
        let cases = [
            (vec![control(OID_SERVER_SORT, Some(true))], (false, true)),
            (vec![control(OID_SERVER_SORT, Some(false))], (false, false)),
            (vec![control(OID_SERVER_SORT, None)], (false, false)),
            (
                vec![
                    control("1.2.3.4", Some(true)),
                    control(OID_PAGED_RESULTS, Some(true)),
                ],
                (true, false),
            ),
        ];
        let mut codec = Codec::new(1024);
        for (controls, (paged, sort)) in cases {
            let mut bytes = message(&controls);
            let msg = codec.decode(&mut bytes).unwrap().unwrap();
            assert_eq!(msg.op, LdapOp::UnbindRequest);
            assert_eq!(
                codec.critical(),
                Critical { paged, sort },
                "{controls:02x?}"
            );
        }
        // A plain search (the fast path) has none.
        let mut bytes = BytesMut::new();
        LdapCodec::default()
            .encode(search(1, "(cn=x)"), &mut bytes)
            .unwrap();
        codec.decode(&mut bytes).unwrap().unwrap();
        assert_eq!(codec.critical(), Critical::default());
    }

    #[test]
    fn unknown_operations_are_refused_before_ldap3_proto_sees_them() {
        // SEQUENCE { INTEGER 1, tag with an empty content }
        let message = |tag: u8| BytesMut::from(&[0x30, 0x05, 0x02, 0x01, 0x01, tag, 0x00][..]);
        for tag in [0x43, 0x4b, 0x6a, 0x70, 0x7e, 0x40, 0x51, 0x5e] {
            let err = Codec::new(1024).decode(&mut message(tag)).unwrap_err();
            assert!(
                err.to_string().contains("unknown LDAP operation"),
                "{tag:#04x}: {err}"
            );
        }
        // Tag number 31 (which ldap3_lber reads from the low five bits alone) names no
        // operation either, whatever follows.
        for tag in [&[0x7f, 0x1f][..], &[0x5f, 0x81, 0x00], &[0x7f, 0x20]] {
            let mut bytes = BytesMut::from(&[0x30, 0x00, 0x02, 0x01, 0x01][..]);
            bytes.extend_from_slice(tag);
            bytes.extend_from_slice(&[0x00]);
            bytes[1] = (bytes.len() - 2) as u8;
            let err = Codec::new(1024).decode(&mut bytes).unwrap_err();
            assert!(
                err.to_string().contains("unknown LDAP operation"),
                "{tag:02x?}: {err}"
            );
        }
        // An op length ldap3_lber reads in its own way (41 length octets) changes nothing.
        let mut bytes = BytesMut::from(&[0x30, 0x2e, 0x02, 0x01, 0x0a, 0x41, 0xa9][..]);
        bytes.resize(0x30, 0);
        assert!(Codec::new(1024)
            .decode(&mut bytes)
            .unwrap_err()
            .to_string()
            .contains("unknown LDAP operation"));
        // Nor does a long-form length on the messageID.
        let mut bytes =
            BytesMut::from(&[0x30, 0x0a, 0x02, 0x85, 0, 0, 0, 0, 1, 0x01, 0x43, 0x00][..]);
        assert!(Codec::new(1024)
            .decode(&mut bytes)
            .unwrap_err()
            .to_string()
            .contains("unknown LDAP operation"));
        // Unbind (primitive, and constructed as ldap3_proto also takes it) and abandon
        // still decode.
        for tag in [0x42, 0x62] {
            let msg = Codec::new(1024).decode(&mut message(tag)).unwrap().unwrap();
            assert_eq!(msg.op, LdapOp::UnbindRequest, "{tag:#04x}");
        }
        let mut abandon = BytesMut::from(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x50, 0x01, 0x07][..]);
        let msg = Codec::new(1024).decode(&mut abandon).unwrap().unwrap();
        assert_eq!(msg.op, LdapOp::AbandonRequest(7));
    }
}
