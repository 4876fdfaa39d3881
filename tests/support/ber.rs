//! Just enough BER (X.690) to write LDAP requests and read replies on a raw socket, for tests
//! that must send what no well-behaved client library would.

use std::io::Read;

/// The paged results control (RFC 2696).
pub const OID_PAGED: &str = "1.2.840.113556.1.4.319";
/// The server-side sort request control (RFC 2891).
pub const OID_SORT: &str = "1.2.840.113556.1.4.473";
/// The server-side sort response control (RFC 2891).
pub const OID_SORT_RESPONSE: &str = "1.2.840.113556.1.4.474";

/// The protocolOp tags of the replies the tests read.
pub const BIND_RESPONSE: u8 = 0x61;
pub const SEARCH_RESULT_ENTRY: u8 = 0x64;
pub const SEARCH_RESULT_DONE: u8 = 0x65;

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The minimal two's-complement content octets of a non-negative INTEGER.
pub fn int(value: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = value
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    if bytes.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    bytes
}

/// `Control ::= SEQUENCE { controlType, criticality, controlValue }`
pub fn control(oid: &str, critical: bool, value: Option<&[u8]>) -> Vec<u8> {
    let mut c = tlv(0x04, oid.as_bytes());
    if critical {
        c.extend(tlv(0x01, &[0xff]));
    }
    if let Some(v) = value {
        c.extend(tlv(0x04, v));
    }
    tlv(0x30, &c)
}

/// The paged results control's value: `SEQUENCE { size INTEGER, cookie OCTET STRING }`.
pub fn paged(size: u32, cookie: &[u8]) -> Vec<u8> {
    control(
        OID_PAGED,
        false,
        Some(&tlv(
            0x30,
            &[tlv(0x02, &int(size)), tlv(0x04, cookie)].concat(),
        )),
    )
}

/// The sort control (RFC 2891) ordering by `keys`.
pub fn sort(critical: bool, keys: &[&str]) -> Vec<u8> {
    let list: Vec<u8> = keys
        .iter()
        .flat_map(|k| tlv(0x30, &tlv(0x04, k.as_bytes())))
        .collect();
    control(OID_SORT, critical, Some(&tlv(0x30, &list)))
}

/// `LDAPMessage ::= SEQUENCE { messageID, protocolOp, [0] controls OPTIONAL }`
pub fn message(id: u32, op: &[u8], controls: &[Vec<u8>]) -> Vec<u8> {
    let mut body = [tlv(0x02, &int(id)), op.to_vec()].concat();
    if !controls.is_empty() {
        body.extend(tlv(0xa0, &controls.concat()));
    }
    tlv(0x30, &body)
}

/// A subtree SearchRequest for `(objectClass=*)` below `base`, all user attributes.
pub fn search(base: &str) -> Vec<u8> {
    search_for(base, &tlv(0x87, b"objectClass"))
}

/// A subtree SearchRequest for `filter` (BER) below `base`, all user attributes.
pub fn search_for(base: &str, filter: &[u8]) -> Vec<u8> {
    let body = [
        tlv(0x04, base.as_bytes()),
        tlv(0x0a, &[2]),
        tlv(0x0a, &[0]),
        tlv(0x02, &[0]),
        tlv(0x02, &[0]),
        tlv(0x01, &[0]),
        filter.to_vec(),
        tlv(0x30, &[]),
    ]
    .concat();
    tlv(0x63, &body)
}

/// `(attr=value)`
pub fn equality(attr: &str, value: &[u8]) -> Vec<u8> {
    tlv(
        0xa3,
        &[tlv(0x04, attr.as_bytes()), tlv(0x04, value)].concat(),
    )
}

/// `filter` inside `depth` NOTs: `(!(!(…)))`.
pub fn nested(depth: usize, filter: Vec<u8>) -> Vec<u8> {
    (0..depth).fold(filter, |inner, _| tlv(0xa2, &inner))
}

/// A simple BindRequest, LDAPv3.
pub fn bind(dn: &str, password: &str) -> Vec<u8> {
    tlv(
        0x60,
        &[
            tlv(0x02, &[3]),
            tlv(0x04, dn.as_bytes()),
            tlv(0x80, password.as_bytes()),
        ]
        .concat(),
    )
}

/// `UnbindRequest ::= [APPLICATION 2] NULL`
pub fn unbind() -> Vec<u8> {
    vec![0x42, 0x00]
}

/// One element: (tag, content, the rest).
pub fn element(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        let len = rest
            .get(..n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// What the tests look at in one reply.
#[derive(Debug)]
pub struct Reply {
    pub op: u8,
    /// A result's resultCode.
    pub code: Option<u8>,
    /// An entry's DN.
    pub dn: Option<String>,
    pub controls: Vec<(String, Vec<u8>)>,
    /// The message's size on the wire.
    pub size: usize,
}

impl Reply {
    pub fn control(&self, oid: &str) -> Option<&[u8]> {
        self.controls
            .iter()
            .find(|(o, _)| o == oid)
            .map(|(_, v)| v.as_slice())
    }
}

/// Reads one whole message.
pub fn read(stream: &mut impl Read) -> std::io::Result<Reply> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    let mut header = head.to_vec();
    let len = if head[1] < 0x80 {
        usize::from(head[1])
    } else {
        let mut octets = vec![0u8; usize::from(head[1] & 0x7f)];
        stream.read_exact(&mut octets)?;
        header.extend(&octets);
        octets.iter().fold(0, |acc, b| (acc << 8) | usize::from(*b))
    };
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad reply");
    let (_, _, rest) = element(&body).ok_or_else(bad)?; // messageID
    let (op, content, rest) = element(rest).ok_or_else(bad)?;
    let first = element(content);
    let code = match first {
        Some((0x0a, [code], _)) => Some(*code),
        _ => None,
    };
    let dn = match (op, first) {
        (0x64, Some((0x04, dn, _))) => Some(String::from_utf8_lossy(dn).into_owned()),
        _ => None,
    };
    let mut controls = Vec::new();
    if let Some((0xa0, mut list, _)) = element(rest) {
        while let Some((_, control, more)) = element(list) {
            list = more;
            let Some((_, oid, mut fields)) = element(control) else {
                continue;
            };
            let mut value = Vec::new();
            while let Some((tag, content, more)) = element(fields) {
                fields = more;
                if tag == 0x04 {
                    value = content.to_vec();
                }
            }
            controls.push((String::from_utf8_lossy(oid).into_owned(), value));
        }
    }
    Ok(Reply {
        op,
        code,
        dn,
        controls,
        size: header.len() + len,
    })
}
