//! What the lookup and load benches share: the generated people as the upstream hands them
//! over, and the phone query mix drawn from them.
//!
//! Queries are drawn from the upstream attributes (`sn`, `givenName`, the numbers as written),
//! which our endpoint and slapd both hold, so the same filter text can be sent to either.
//! Everything depends only on the seeds: two runs send the same searches.

// Each bench uses a part of this module.
#![allow(dead_code)]

use anyhow::{bail, Context as _, Result};
use ldap3::{LdapConnAsync, Scope, SearchOptions};
use phonebook_proxy::numbers::NumberPlan;
use phonebook_proxy::sync::raw::RawEntry;

use crate::support::gen::Person;

/// The data set of every bench (see `tests/support/gen.rs`).
pub const SEED: u64 = 11;

/// The base the phone book is served under.
pub const BASE_DN: &str = "ou=phonebook,dc=example,dc=com";

/// What a phone asks for in a directory search (name and number attributes).
pub const PHONE_ATTRS: &[&str] = &[
    "cn",
    "sn",
    "givenName",
    "o",
    "telephoneNumber",
    "mobile",
    "homePhone",
];

/// The hits a phone displays at most (Yealink's "LDAP max hits" default), sent as sizeLimit.
pub const PHONE_SIZE_LIMIT: i32 = 50;

/// The connector that reads the generated people: every person becomes an entry (no
/// pre-filter), with an `entryUUID` id, the default field mapping.
pub fn connector_toml(uri: &str, bind: &str) -> String {
    format!(
        r#"[[connector]]
name = "corp"
uri = "{uri}"
base_dn = "ou=people,dc=example,dc=com"
{bind}
filter = "(objectClass=inetOrgPerson)"
id_attribute = "entryUUID"
page_size = 500
max_removals = "100%"
"#
    )
}

/// The `entryUUID` the benches give person `index` (slapadd generates random ones).
pub fn entry_uuid(index: usize) -> String {
    format!("00000000-0000-4000-8000-{index:012x}")
}

/// People as the LDAP source would hand them over.
pub fn raw_people(people: &[Person]) -> Vec<RawEntry> {
    people
        .iter()
        .map(|p| {
            let mut raw = RawEntry::new(&p.dn);
            for (name, value) in &p.attrs {
                raw.push(name, value.clone());
            }
            raw.push("entryUUID", entry_uuid(p.index));
            raw
        })
        .collect()
}

/// splitmix64: deterministic draws without a `rand` dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5EED_F00D_B00C)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The kinds of phone searches the benches measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `(|(cn=Mül*)(sn=Mül*))`, 2–4 letters of a surname (Snom, Cisco, Yealink as typed).
    NamePrefix,
    /// `(|(cn=*üll*)(sn=*üll*))`, 3 letters from inside a surname or given name.
    NameContains,
    /// `(|(telephoneNumber=N)(mobile=N))`, N a stored number exactly as written upstream.
    CallerExact,
    /// `(|(telephoneNumber=N)(mobile=N))`, N a stored number in another notation (`+49…` for
    /// `089 …`, `0049…` for `+49 …`): what a PBX presents.
    CallerOtherFormat,
    /// `(|(telephoneNumber=*34567*)(mobile=*34567*))`, 5 consecutive digits of a number.
    NumberContains,
    /// `(|(telephoneNumber=*891234567)(mobile=*891234567))`: FreePBX superfecta, the
    /// national significant number as a suffix.
    NumberSuffix,
    /// `(&(objectClass=*)(sn>=A)(sn<=zz)(sn=M*))`, M the initial of a surname (Poly).
    PolyRange,
    /// `(|(telephoneNumber=N)(mobile=N)(ipPhone=N))`, Yealink's default number filter, N a
    /// number in another notation (incoming call lookup).
    YealinkOr,
    /// `(|(telephoneNumber=1234567)(mobile=1234567))`: an internal call, the colleague's
    /// extension in the Berlin block of [`COMPANY_BLOCKS`]. (Berlin, because the generator
    /// gives each Berlin office number to one person; its Munich office has only 1,000
    /// numbers, `+49 89 1234-xxx`, each shared by about 11 people at 100k, so a Munich
    /// extension answers 11 entries where a caller lookup answers one or two.)
    CallerExtension,
    /// `(|(telephoneNumber=891234567)(mobile=891234567))`: a German number as some PBXes
    /// present it, national without the trunk prefix.
    CallerNational,
}

/// The company's number blocks the benches configure: the generator's Munich office numbers
/// (`+49 89 1234-xxx`, extensions of three digits) and its Berlin ones (`+49 30 xxxx-xxx`, a
/// block of seven-digit extensions). [`company_plan`] is the same plan.
pub const COMPANY_BLOCKS: &str = "[numbers]\nextensions = [{ prefix = \"+49891234\", digits = 3 }, { prefix = \"+4930\", digits = 7 }]\n";

/// The number plan of [`COMPANY_BLOCKS`].
pub fn company_plan() -> NumberPlan {
    NumberPlan {
        extensions: vec![
            phonebook_proxy::numbers::ExtensionBlock {
                prefix: "49891234".into(),
                digits: 3,
            },
            phonebook_proxy::numbers::ExtensionBlock {
                prefix: "4930".into(),
                digits: 7,
            },
        ],
        ..NumberPlan::default()
    }
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::NamePrefix => "name_prefix",
            Kind::NameContains => "name_contains3",
            Kind::CallerExact => "caller_exact",
            Kind::CallerOtherFormat => "caller_other_format",
            Kind::NumberContains => "number_contains",
            Kind::NumberSuffix => "number_suffix",
            Kind::PolyRange => "poly_range",
            Kind::YealinkOr => "yealink_or",
            Kind::CallerExtension => "caller_extension",
            Kind::CallerNational => "caller_national_no_trunk",
        }
    }
}

/// Characters that need escaping in a filter value (RFC 4515).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => out.push_str(&format!("\\{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn numbers(p: &Person) -> Vec<&str> {
    p.values("telephoneNumber")
        .chain(p.values("mobile"))
        .collect()
}

/// slapd's telephoneNumber normalisation: spaces and hyphens dropped.
fn slapd_normalised(number: &str) -> String {
    number.chars().filter(|c| *c != ' ' && *c != '-').collect()
}

/// A filter of `kind` drawn from a random person, or `None` when the person drawn has nothing
/// to draw from (no number, a one-letter name); callers draw again.
fn draw(kind: Kind, p: &Person, r: &mut Rng, plan: &NumberPlan) -> Option<String> {
    let letters = |s: &str| -> Vec<char> { s.chars().collect() };
    match kind {
        Kind::NamePrefix => {
            let sn = letters(p.get("sn")?);
            let n = (2 + r.below(3)).min(sn.len());
            let prefix: String = sn[..n].iter().collect();
            (!prefix.contains(' ')).then(|| {
                let v = escape(&prefix);
                format!("(|(cn={v}*)(sn={v}*))")
            })
        }
        Kind::NameContains => {
            let name = if r.below(2) == 0 {
                p.get("sn")?
            } else {
                p.get("givenName")?
            };
            let chars = letters(name);
            if chars.len() < 4 {
                return None;
            }
            // from inside the name: not its first letter
            let at = 1 + r.below(chars.len() - 3);
            let piece: String = chars[at..at + 3].iter().collect();
            (piece.chars().all(char::is_alphabetic)).then(|| {
                let v = escape(&piece);
                format!("(|(cn=*{v}*)(sn=*{v}*))")
            })
        }
        Kind::CallerExact => {
            let n = *r.pick(&numbers(p));
            let v = escape(n);
            Some(format!("(|(telephoneNumber={v})(mobile={v}))"))
        }
        Kind::CallerOtherFormat | Kind::YealinkOr => {
            let written = *r.pick(&numbers(p));
            let e164 = plan.to_e164(written)?;
            let other = if written.starts_with('+') {
                format!("00{}", &e164[1..])
            } else {
                e164
            };
            Some(if kind == Kind::YealinkOr {
                format!("(|(telephoneNumber={other})(mobile={other})(ipPhone={other}))")
            } else {
                format!("(|(telephoneNumber={other})(mobile={other}))")
            })
        }
        Kind::NumberContains => {
            // 5 digits from one run of digits, as slapd's telephoneNumber index sees it
            let written = slapd_normalised(r.pick::<&str>(&numbers(p)));
            let runs: Vec<&str> = written
                .split(|c: char| !c.is_ascii_digit())
                .filter(|run| run.len() >= 6)
                .collect();
            if runs.is_empty() {
                return None;
            }
            let run = *r.pick(&runs);
            let at = 1 + r.below(run.len() - 5);
            let d = &run[at..at + 5];
            Some(format!("(|(telephoneNumber=*{d}*)(mobile=*{d}*))"))
        }
        Kind::NumberSuffix => {
            let written = *r.pick(&numbers(p));
            let e164 = plan.to_e164(written)?;
            let cc = if e164.starts_with("+1") { 2 } else { 3 };
            let nsn = e164.get(cc..)?;
            Some(format!("(|(telephoneNumber=*{nsn})(mobile=*{nsn}))"))
        }
        Kind::CallerExtension => {
            let e164 = plan.to_e164(r.pick::<&str>(&numbers(p)))?;
            let ext = plan.extension(&e164).filter(|ext| ext.len() == 7)?;
            Some(format!("(|(telephoneNumber={ext})(mobile={ext}))"))
        }
        Kind::CallerNational => {
            let e164 = plan.to_e164(r.pick::<&str>(&numbers(p)))?;
            let nsn = plan.national_significant(&e164)?;
            Some(format!("(|(telephoneNumber={nsn})(mobile={nsn}))"))
        }
        Kind::PolyRange => {
            let initial = p.get("sn")?.chars().next()?;
            let v = escape(&initial.to_uppercase().to_string());
            Some(format!("(&(objectClass=*)(sn>=A)(sn<=zz)(sn={v}*))"))
        }
    }
}

/// `count` filters of `kind` drawn from `people` with `seed`.
pub fn filters(people: &[Person], kind: Kind, count: usize, seed: u64) -> Vec<String> {
    let plan = company_plan();
    let mut r = Rng::new(seed ^ (kind as u64).wrapping_mul(0x1000_0001));
    let mut out = Vec::with_capacity(count);
    let mut attempts = 0usize;
    while out.len() < count {
        attempts += 1;
        assert!(
            attempts < count * 100 + 10_000,
            "cannot draw {count} {kind:?} filters from {} people",
            people.len()
        );
        let p = r.pick(people);
        if numbers(p).is_empty()
            && !matches!(
                kind,
                Kind::NamePrefix | Kind::NameContains | Kind::PolyRange
            )
        {
            continue;
        }
        if let Some(f) = draw(kind, p, &mut r, &plan) {
            out.push(f);
        }
    }
    out
}

/// An anonymous ldap3 connection, driven on the current runtime.
pub async fn connect(url: &str) -> Result<ldap3::Ldap> {
    let (conn, ldap) = LdapConnAsync::new(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    ldap3::drive!(conn);
    Ok(ldap)
}

/// One search; the number of entries, and whether the size limit stopped it.
pub async fn search(ldap: &mut ldap3::Ldap, base: &str, filter: &str) -> Result<(usize, bool)> {
    let res = ldap
        .with_search_options(SearchOptions::new().sizelimit(PHONE_SIZE_LIMIT))
        .search(base, Scope::Subtree, filter, PHONE_ATTRS)
        .await
        .with_context(|| format!("search {filter}"))?;
    match res.1.rc {
        0 => Ok((res.0.len(), false)),
        4 => Ok((res.0.len(), true)),
        rc => bail!("search {filter}: result code {rc} ({})", res.1.text),
    }
}

/// The load client: searches over plain TCP, parsing of the responses limited to BER framing.
///
/// The load bench used to drive its connections with the `ldap3` crate, which decodes every
/// entry into maps of `String`s: on a 2-core machine that decoder took ~1.4 cores and the
/// client, not the server, set the latency. Here the requests are encoded once, before the
/// load (by `ldap3_proto`), and of each response only the LDAPMessage envelope is read: its
/// length, its messageID, the protocolOp tag, and the resultCode of SearchResultDone.
/// Entries are counted, never decoded. The bench proves it right on every run by comparing its
/// counts with `ldap3`'s (see `check_answers` in `benches/load.rs`), and checks the framing
/// parser itself with [`raw::self_check`].
pub mod raw {
    use anyhow::{bail, ensure, Context as _, Result};
    use ldap3_proto::proto::{
        LdapDerefAliases, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode,
        LdapSearchRequest, LdapSearchResultEntry, LdapSearchResultReference, LdapSearchScope,
    };
    use ldap3_proto::LdapCodec;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;
    use tokio_util::bytes::{Buf as _, BytesMut};
    use tokio_util::codec::{Decoder as _, Encoder as _};

    use super::{PHONE_ATTRS, PHONE_SIZE_LIMIT};

    /// BER tags (RFC 4511 §4.1.1, §4.5.2).
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const ENUMERATED: u8 = 0x0a;
    const OCTET_STRING: u8 = 0x04;
    const SEARCH_RESULT_ENTRY: u8 = 0x64;
    const SEARCH_RESULT_DONE: u8 = 0x65;
    const SEARCH_RESULT_REFERENCE: u8 = 0x73;
    /// A larger LDAPMessage is taken for garbage (the largest answer here is a few kB).
    const MAX_MESSAGE: usize = 16 << 20;
    /// Room made in the read buffer before each read.
    const READ_CHUNK: usize = 64 << 10;
    /// The messageID of the UnbindRequest that closes a connection.
    const UNBIND_MSGID: i32 = i32::MAX;

    /// A search encoded once, sent as often as the load picks it.
    pub struct Request {
        /// The filter text, for error messages.
        pub filter: String,
        pub msgid: i32,
        /// The whole LDAPMessage.
        pub pdu: Vec<u8>,
    }

    fn encode(msg: LdapMsg) -> Result<Vec<u8>> {
        let mut buf = BytesMut::new();
        LdapCodec::default()
            .encode(msg, &mut buf)
            .context("encoding an LDAPMessage")?;
        Ok(buf.to_vec())
    }

    /// The search the load sends: subtree under `base`, derefAliases never, sizeLimit
    /// [`PHONE_SIZE_LIMIT`], no time limit, the [`PHONE_ATTRS`] — what [`super::search`] sends.
    pub fn search_request(msgid: i32, base: &str, filter: &str) -> Result<Request> {
        ensure!(msgid > 0, "messageID {msgid}: must be 1..2^31-1");
        let parsed = phonebook_proxy::filter::parse(filter).map_err(anyhow::Error::msg)?;
        let pdu = encode(LdapMsg {
            msgid,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: base.to_owned(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Never,
                sizelimit: PHONE_SIZE_LIMIT,
                timelimit: 0,
                typesonly: false,
                filter: parsed,
                attrs: PHONE_ATTRS.iter().map(|a| (*a).to_owned()).collect(),
            }),
            ctrl: vec![],
        })?;
        Ok(Request {
            filter: filter.to_owned(),
            msgid,
            pdu,
        })
    }

    /// The protocolOp of one LDAPMessage, as far as a search response needs it.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Op<'a> {
        /// SearchResultEntry (not decoded).
        Entry,
        /// SearchResultReference (not decoded).
        Reference,
        /// SearchResultDone: its resultCode and diagnosticMessage.
        Done { code: i64, message: &'a [u8] },
        /// Any other protocolOp, by its tag.
        Other(u8),
    }

    /// One complete LDAPMessage at the start of a buffer.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Frame<'a> {
        /// Its length in the buffer, header included.
        pub len: usize,
        pub msgid: i32,
        pub op: Op<'a>,
    }

    /// Tag, header length and content length of the BER element at the start of `buf`, or
    /// `None` when `buf` ends inside the header. Only single-byte tags and definite lengths
    /// (short form, or long form of 1–4 bytes), as RFC 4511 §5.1 requires.
    fn header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>> {
        let (Some(&tag), Some(&first)) = (buf.first(), buf.get(1)) else {
            return Ok(None);
        };
        ensure!(tag & 0x1f != 0x1f, "multi-byte BER tag {tag:#04x}");
        if first < 0x80 {
            return Ok(Some((tag, 2, usize::from(first))));
        }
        let n = usize::from(first & 0x7f);
        ensure!(n != 0, "indefinite BER length (tag {tag:#04x})");
        ensure!(n <= 4, "BER length of {n} bytes (tag {tag:#04x})");
        let Some(bytes) = buf.get(2..2 + n) else {
            return Ok(None);
        };
        let len = bytes.iter().fold(0u64, |len, b| (len << 8) | u64::from(*b));
        let len = usize::try_from(len).context("BER length out of range")?;
        Ok(Some((tag, 2 + n, len)))
    }

    /// The element at the start of `buf`, which must hold all of it (it lies inside a
    /// complete message): (tag, contents, what follows).
    fn element<'a>(buf: &'a [u8], what: &str) -> Result<(u8, &'a [u8], &'a [u8])> {
        let (tag, head, len) = header(buf)?.with_context(|| format!("{what}: truncated header"))?;
        let contents = head
            .checked_add(len)
            .and_then(|end| buf.get(head..end))
            .with_context(|| format!("{what}: {len} bytes of contents, the message ends first"))?;
        Ok((tag, contents, &buf[head + contents.len()..]))
    }

    /// A BER INTEGER or ENUMERATED value (two's complement, big-endian, 1–8 bytes).
    fn integer(contents: &[u8], what: &str) -> Result<i64> {
        ensure!(
            (1..=8).contains(&contents.len()),
            "{what}: integer of {} bytes",
            contents.len()
        );
        let negative = contents[0] & 0x80 != 0;
        Ok(contents
            .iter()
            .fold(if negative { -1i64 } else { 0 }, |v, b| {
                (v << 8) | i64::from(*b)
            }))
    }

    /// The LDAPMessage at the start of `buf`: `Ok(None)` when `buf` does not hold all of it
    /// yet, an error when it is not one (or not one this client can read). Never reads past
    /// `buf`; controls after the protocolOp are skipped.
    pub fn frame(buf: &[u8]) -> Result<Option<Frame<'_>>> {
        let Some((tag, head, len)) = header(buf)? else {
            return Ok(None);
        };
        ensure!(
            tag == SEQUENCE,
            "LDAPMessage starts with tag {tag:#04x}, not {SEQUENCE:#04x}"
        );
        ensure!(len <= MAX_MESSAGE, "LDAPMessage of {len} bytes");
        let total = head + len;
        let Some(message) = buf.get(head..total) else {
            return Ok(None);
        };
        let (tag, id, rest) = element(message, "messageID")?;
        ensure!(
            tag == INTEGER,
            "messageID has tag {tag:#04x}, not {INTEGER:#04x}"
        );
        let msgid = integer(id, "messageID")?;
        let msgid = i32::try_from(msgid)
            .ok()
            .filter(|id| *id >= 0)
            .with_context(|| format!("messageID {msgid} out of range"))?;
        let (tag, contents, _controls) = element(rest, "protocolOp")?;
        let op = match tag {
            SEARCH_RESULT_ENTRY => Op::Entry,
            SEARCH_RESULT_REFERENCE => Op::Reference,
            SEARCH_RESULT_DONE => {
                let (tag, code, rest) = element(contents, "resultCode")?;
                ensure!(
                    tag == ENUMERATED,
                    "resultCode has tag {tag:#04x}, not {ENUMERATED:#04x}"
                );
                let code = integer(code, "resultCode")?;
                let (tag, _matched_dn, rest) = element(rest, "matchedDN")?;
                ensure!(tag == OCTET_STRING, "matchedDN has tag {tag:#04x}");
                let (tag, message, _referral) = element(rest, "diagnosticMessage")?;
                ensure!(tag == OCTET_STRING, "diagnosticMessage has tag {tag:#04x}");
                Op::Done { code, message }
            }
            other => Op::Other(other),
        };
        Ok(Some(Frame {
            len: total,
            msgid,
            op,
        }))
    }

    /// `host:port` of an `ldap://host:port` URL (port 389 when it has none).
    pub fn address(url: &str) -> Result<String> {
        let rest = url
            .strip_prefix("ldap://")
            .with_context(|| format!("{url:?} is not an ldap:// URL"))?;
        let hostport = rest.split('/').next().unwrap_or_default();
        ensure!(!hostport.is_empty(), "{url:?} has no host");
        Ok(
            if hostport
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                hostport.to_owned()
            } else {
                format!("{hostport}:389")
            },
        )
    }

    /// An anonymous LDAP connection with one search at a time in flight.
    pub struct Conn {
        stream: TcpStream,
        buf: BytesMut,
    }

    impl Conn {
        /// Connects to `addr` (`host:port`), without a bind.
        pub async fn connect(addr: &str) -> Result<Conn> {
            let stream = TcpStream::connect(addr)
                .await
                .with_context(|| format!("connecting to {addr}"))?;
            stream.set_nodelay(true).context("TCP_NODELAY")?;
            Ok(Conn {
                stream,
                buf: BytesMut::with_capacity(READ_CHUNK),
            })
        }

        /// Sends `request` and reads its response up to SearchResultDone: the number of
        /// entries, and whether the size limit stopped it (resultCode 4; any code other than
        /// 0 and 4 is an error).
        pub async fn search(&mut self, request: &Request) -> Result<(usize, bool)> {
            let filter = &request.filter;
            self.stream
                .write_all(&request.pdu)
                .await
                .with_context(|| format!("search {filter}: sending"))?;
            let mut entries = 0usize;
            loop {
                while let Some(frame) =
                    frame(&self.buf).with_context(|| format!("search {filter}: response"))?
                {
                    ensure!(
                        frame.msgid == request.msgid,
                        "search {filter}: a response with messageID {} (protocolOp {:?}), \
                         expected {}",
                        frame.msgid,
                        frame.op,
                        request.msgid
                    );
                    // Some(limited) at SearchResultDone
                    let done = match frame.op {
                        Op::Entry => {
                            entries += 1;
                            None
                        }
                        Op::Reference => None,
                        Op::Done { code: 0, .. } => Some(false),
                        Op::Done { code: 4, .. } => Some(true),
                        Op::Done { code, message } => bail!(
                            "search {filter}: result code {code} ({})",
                            String::from_utf8_lossy(message)
                        ),
                        Op::Other(tag) => {
                            bail!("search {filter}: unexpected protocolOp tag {tag:#04x}")
                        }
                    };
                    let len = frame.len;
                    self.buf.advance(len);
                    if let Some(limited) = done {
                        return Ok((entries, limited));
                    }
                }
                self.buf.reserve(READ_CHUNK);
                let read = self
                    .stream
                    .read_buf(&mut self.buf)
                    .await
                    .with_context(|| format!("search {filter}: receiving"))?;
                ensure!(
                    read > 0,
                    "search {filter}: the server closed the connection after {entries} entries"
                );
            }
        }

        /// UnbindRequest, then closes the connection.
        pub async fn unbind(mut self) -> Result<()> {
            let pdu = encode(LdapMsg {
                msgid: UNBIND_MSGID,
                op: LdapOp::UnbindRequest,
                ctrl: vec![],
            })?;
            self.stream.write_all(&pdu).await.context("unbind")?;
            self.stream.shutdown().await.context("closing")?;
            Ok(())
        }
    }

    /// Checks [`frame`] on messages encoded by `ldap3_proto` (entries whose lengths take the
    /// short and the 1-, 2- and 3-byte long form, a reference, SearchResultDone with codes 0,
    /// 4 and 32, messageIDs of 1–4 bytes), on every truncation of them (all "need more"), on
    /// malformed input (all errors), and [`search_request`] by decoding what it encodes.
    pub fn self_check() -> Result<()> {
        let entry = |msgid: i32, value_len: usize| LdapMsg {
            msgid,
            op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
                dn: "cn=Jörg Müller,ou=phonebook,dc=example,dc=com".to_owned(),
                attributes: vec![
                    LdapPartialAttribute {
                        atype: "cn".to_owned(),
                        vals: vec![b"J\xc3\xb6rg M\xc3\xbcller".to_vec()],
                    },
                    LdapPartialAttribute {
                        atype: "telephoneNumber".to_owned(),
                        vals: vec![b"+49 89 1234567".to_vec(), vec![b'7'; value_len]],
                    },
                ],
            }),
            ctrl: vec![],
        };
        let done = |msgid: i32, code: LdapResultCode, message: &str| LdapMsg {
            msgid,
            op: LdapOp::SearchResultDone(LdapResult {
                code,
                matcheddn: String::new(),
                message: message.to_owned(),
                referral: vec![],
            }),
            ctrl: vec![],
        };
        let cases: Vec<(LdapMsg, i32, Op<'static>)> = vec![
            (entry(1, 0), 1, Op::Entry),
            (entry(127, 60), 127, Op::Entry),
            (entry(128, 200), 128, Op::Entry),
            (entry(300, 1000), 300, Op::Entry),
            (entry(70_000, 70_000), 70_000, Op::Entry),
            (
                LdapMsg {
                    msgid: 9,
                    op: LdapOp::SearchResultReference(LdapSearchResultReference {
                        uris: vec!["ldap://other.example.com/dc=example,dc=com".to_owned()],
                    }),
                    ctrl: vec![],
                },
                9,
                Op::Reference,
            ),
            (
                done(9, LdapResultCode::Success, ""),
                9,
                Op::Done {
                    code: 0,
                    message: b"",
                },
            ),
            (
                done(i32::MAX, LdapResultCode::SizeLimitExceeded, "size limit"),
                i32::MAX,
                Op::Done {
                    code: 4,
                    message: b"size limit",
                },
            ),
            (
                done(5, LdapResultCode::NoSuchObject, "no such base"),
                5,
                Op::Done {
                    code: 32,
                    message: b"no such base",
                },
            ),
            (
                LdapMsg {
                    msgid: 0,
                    op: LdapOp::UnbindRequest,
                    ctrl: vec![],
                },
                0,
                Op::Other(0x42),
            ),
        ];
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (msg, msgid, op) in cases {
            let bytes = encode(msg)?;
            for cut in 0..bytes.len() {
                ensure!(
                    frame(&bytes[..cut])?.is_none(),
                    "frame: {cut} of {} bytes of message {msgid} are not \"need more\"",
                    bytes.len()
                );
            }
            expected.push(Frame {
                len: bytes.len(),
                msgid,
                op,
            });
            stream.extend_from_slice(&bytes);
        }
        // Back to back, as they arrive on a connection.
        let mut at = 0;
        for want in &expected {
            let got = frame(&stream[at..])?.context("frame: a whole message is \"need more\"")?;
            ensure!(got == *want, "frame: read {got:?}, expected {want:?}");
            at += got.len;
        }
        ensure!(
            at == stream.len(),
            "frame: {at} of {} bytes read",
            stream.len()
        );

        for bad in [
            &[0x31, 0x00][..],                                             // not a SEQUENCE
            &[0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00],                   // indefinite length
            &[0x30, 0x85, 0x00, 0x00, 0x00, 0x00, 0x05],                   // 5 length bytes
            &[0x1f, 0x05],                                                 // multi-byte tag
            &[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff],                         // too large
            &[0x30, 0x03, 0x02, 0x01, 0x01],                               // no protocolOp
            &[0x30, 0x03, 0x02, 0x05, 0x01], // messageID longer than the message
            &[0x30, 0x03, 0x04, 0x01, 0x01], // messageID not an INTEGER
            &[0x30, 0x05, 0x02, 0x00, 0x65, 0x01, 0x0a], // empty messageID
            &[0x30, 0x05, 0x02, 0x01, 0xff, 0x64, 0x00], // negative messageID
            &[0x30, 0x07, 0x02, 0x01, 0x01, 0x65, 0x02, 0x02, 0x00], // resultCode not ENUMERATED
            &[0x30, 0x08, 0x02, 0x01, 0x01, 0x65, 0x03, 0x0a, 0x01, 0x00], // no matchedDN
        ] {
            ensure!(
                frame(bad).is_err(),
                "frame: {bad:02x?} is not an error: {:?}",
                frame(bad)
            );
        }

        let filter = "(&(objectClass=*)(sn>=A)(sn<=zz)(|(cn=*\\28Mü*)(sn=Mül*)(mobile=+49 89 1)))";
        let request = search_request(4711, super::BASE_DN, filter)?;
        let mut buf = BytesMut::from(&request.pdu[..]);
        let decoded = LdapCodec::default()
            .decode(&mut buf)
            .context("decoding our SearchRequest")?
            .context("our SearchRequest is incomplete")?;
        ensure!(buf.is_empty(), "bytes after our SearchRequest");
        let want = LdapMsg {
            msgid: 4711,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: super::BASE_DN.to_owned(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Never,
                sizelimit: PHONE_SIZE_LIMIT,
                timelimit: 0,
                typesonly: false,
                filter: phonebook_proxy::filter::parse(filter).map_err(anyhow::Error::msg)?,
                attrs: PHONE_ATTRS.iter().map(|a| (*a).to_owned()).collect(),
            }),
            ctrl: vec![],
        };
        ensure!(
            decoded == want,
            "our SearchRequest decodes to {decoded:?}, expected {want:?}"
        );
        ensure!(
            address("ldap://127.0.0.1:3890")? == "127.0.0.1:3890"
                && address("ldap://127.0.0.1:3890/")? == "127.0.0.1:3890"
                && address("ldap://localhost")? == "localhost:389",
            "address"
        );
        Ok(())
    }
}
