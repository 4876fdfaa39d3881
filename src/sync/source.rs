//! Sources: where a connector's raw entries come from — an LDAP directory (ldap3: bind, paged
//! search, TLS) or an LDIF file.
//!
//! Both hand back the same [`RawEntry`] list, so pre-filter, mapping and plan cannot tell them
//! apart. A source either returns every entry the upstream holds or fails as a whole: a
//! partial pull must never look like people leaving.

use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::asn1::PL;
use ldap3::controls::RawControl;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};

use super::connector::{ConnectorConfig, SourceUri};
use super::content_sync;
use super::raw::{is_object_guid, object_guid, RawEntry};

/// Why a pull failed. Messages name the cause and, where there is one, the remedy; they never
/// carry a password.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot reach {uri} ({cause})")]
    Unreachable { uri: String, cause: String },
    #[error("{uri} refused the bind as {dn}: wrong bind_dn or password")]
    BadCredentials { uri: String, dn: String },
    #[error(
        "{uri} did not answer within {timeout:?} while {step}; check the server or raise timeout"
    )]
    Timeout {
        uri: String,
        step: &'static str,
        timeout: Duration,
    },
    #[error("{uri}: {step} failed ({cause})")]
    Ldap {
        uri: String,
        step: &'static str,
        cause: String,
    },
    #[error("cannot read {path} ({cause})")]
    File { path: String, cause: String },
    /// The upstream no longer knows the content-sync cookie (e-syncRefreshRequired): only a
    /// full run can bring the book up to date.
    #[error("{uri} asks for a full refresh: the content-sync cookie is too old or unknown")]
    CookieRejected { uri: String },
    #[error("{path} line {line}: {message}")]
    Ldif {
        path: String,
        line: usize,
        message: String,
    },
}

/// Pulls every entry of the connector's search, requesting exactly `attributes`, handing each
/// to `sink` as it arrives (so the caller can work while the upstream is still sending).
/// Returns the number of entries. An error means the pull as a whole is void.
pub async fn pull(
    connector: &ConnectorConfig,
    attributes: &[String],
    sink: &mut (dyn FnMut(RawEntry) + Send),
) -> Result<usize, SourceError> {
    match &connector.source {
        SourceUri::Ldap(url) => pull_ldap(connector, url, attributes, sink).await,
        SourceUri::Ldif(path) => {
            let shown = path.display().to_string();
            let limit = connector.import.max_file_bytes;
            let text = read_bounded(path, limit)
                .await
                .map_err(|cause| SourceError::File {
                    path: shown.clone(),
                    cause,
                })?;
            let entries = crate::sync::ldif::parse(&text).map_err(|e| SourceError::Ldif {
                path: shown,
                line: e.line,
                message: e.message,
            })?;
            let selected =
                crate::sync::ldif::select(entries, &connector.base_dn, &connector.filter);
            let count = selected.len();
            selected.into_iter().for_each(sink);
            Ok(count)
        }
    }
}

/// The file's text, refused when larger than `limit` bytes (read no further than that, so a
/// file that grows, or a special file without a size, cannot exhaust memory).
async fn read_bounded(path: &std::path::Path, limit: u64) -> Result<String, String> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.kind().to_string())?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| e.kind().to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than import.max_file_bytes = {limit}"));
    }
    String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_owned())
}

/// How an ldap3 error reads as a [`SourceError`] for the step it happened in.
fn classify(
    connector: &ConnectorConfig,
    uri: &str,
    step: &'static str,
    e: LdapError,
) -> SourceError {
    match e {
        LdapError::Timeout { .. } => SourceError::Timeout {
            uri: uri.to_owned(),
            step,
            timeout: connector.timeout,
        },
        LdapError::Io { source } => SourceError::Unreachable {
            uri: uri.to_owned(),
            cause: with_hint(io_cause(&source), uri),
        },
        other => SourceError::Ldap {
            uri: uri.to_owned(),
            step,
            cause: with_hint(one_line(&other.to_string()), uri),
        },
    }
}

/// A connection to the upstream at `url`, bound as the connector says; every step bounded
/// by the connector's timeout.
async fn connect(connector: &ConnectorConfig, url: &str) -> Result<ldap3::Ldap, SourceError> {
    let timeout = connector.timeout;
    let uri = url.to_owned();
    let settings = settings(connector).map_err(|cause| SourceError::Ldap {
        uri: uri.clone(),
        step: "setting up TLS",
        cause,
    })?;
    // The whole connect (TCP, TLS, StartTLS) is bounded: an upstream that accepts and then
    // says nothing must not hang the sync.
    let (conn, mut ldap) =
        tokio::time::timeout(timeout, LdapConnAsync::with_settings(settings, url))
            .await
            .map_err(|_| SourceError::Timeout {
                uri: uri.clone(),
                step: "connecting",
                timeout,
            })?
            .map_err(|e| classify(connector, &uri, "connecting", e))?;
    ldap3::drive!(conn);

    if let Some(bind) = &connector.bind {
        let result = ldap
            .with_timeout(timeout)
            .simple_bind(&bind.dn, bind.password.expose())
            .await
            .map_err(|e| classify(connector, &uri, "binding", e))?;
        match result.rc {
            0 => {}
            49 => {
                return Err(SourceError::BadCredentials {
                    uri: uri.clone(),
                    dn: bind.dn.clone(),
                })
            }
            rc => {
                return Err(SourceError::Ldap {
                    uri: uri.clone(),
                    step: "binding",
                    cause: format!("result code {rc} {}", result.text),
                })
            }
        }
    }
    Ok(ldap)
}

/// The attributes to request: `1.1` (none) when nothing is read.
fn requested(attributes: &[String]) -> Vec<&str> {
    let mut requested: Vec<&str> = attributes.iter().map(String::as_str).collect();
    if requested.is_empty() {
        requested.push("1.1");
    }
    requested
}

async fn pull_ldap(
    connector: &ConnectorConfig,
    url: &str,
    attributes: &[String],
    sink: &mut (dyn FnMut(RawEntry) + Send),
) -> Result<usize, SourceError> {
    let timeout = connector.timeout;
    let uri = url.to_owned();
    let classify = |step: &'static str, e: LdapError| classify(connector, &uri, step, e);
    let mut ldap = connect(connector, url).await?;

    let requested = requested(attributes);
    let mut adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> =
        vec![Box::new(EntriesOnly::new())];
    if connector.page_size > 0 {
        adapters.push(Box::new(PagedResults::new(connector.page_size as i32)));
    }
    let mut stream = ldap
        .with_timeout(timeout)
        .streaming_search_with(
            adapters,
            &connector.base_dn,
            Scope::Subtree,
            &connector.filter,
            requested,
        )
        .await
        .map_err(|e| classify("searching", e))?;
    let mut count = 0;
    loop {
        match stream.next().await {
            Ok(Some(entry)) => {
                sink(raw_from_search(SearchEntry::construct(entry)));
                count += 1;
            }
            Ok(None) => break,
            Err(e) => return Err(classify("reading a page", e)),
        }
    }
    let result = stream.finish().await;
    if result.rc != 0 {
        let cause = match result.rc {
            4 => "result code 4 sizeLimitExceeded: the server caps this account; set page_size (paged results) or raise the limit".to_owned(),
            11 => "result code 11 adminLimitExceeded: lower page_size".to_owned(),
            32 => format!("result code 32 noSuchObject: base_dn {} does not exist", connector.base_dn),
            rc => format!("result code {rc} {}", result.text),
        };
        return Err(SourceError::Ldap {
            uri: uri.clone(),
            step: "searching",
            cause,
        });
    }
    let _ = ldap.unbind().await;
    Ok(count)
}

/// What a content-sync refresh (RFC 4533 refreshOnly) reported since a cookie.
#[derive(Debug, Default)]
pub struct Delta {
    /// Entries added or changed upstream: their UUID, and the entry as a full pull gives it.
    pub changed: Vec<(content_sync::Uuid, RawEntry)>,
    /// Entries gone upstream.
    pub deleted: Vec<content_sync::Uuid>,
    /// Entries reported unchanged ("present"). When the refresh ended with a present phase
    /// (`present_phase`), every stored entry neither here nor in `changed` is gone.
    pub present: Vec<content_sync::Uuid>,
    pub present_phase: bool,
    /// The cookie to start the next refresh from.
    pub cookie: Option<Vec<u8>>,
}

/// The changes since `cookie` (everything, as adds, without one) of an upstream that offers
/// RFC 4533 content synchronization (OpenLDAP's syncprov, 389-ds): one refreshOnly search,
/// requesting `attributes`. At most `import.max_entries` states and UUIDs are accepted; a
/// malformed control or message fails the pull, as does a search that does not end cleanly.
pub async fn pull_changes(
    connector: &ConnectorConfig,
    attributes: &[String],
    cookie: Option<&[u8]>,
) -> Result<Delta, SourceError> {
    let SourceUri::Ldap(url) = &connector.source else {
        return Err(SourceError::Ldap {
            uri: connector.source.to_string(),
            step: "content sync",
            cause: "an LDIF file has no content sync; use a full run".to_owned(),
        });
    };
    let uri = url.clone();
    let limit = connector.import.max_entries;
    let mut ldap = connect(connector, url).await?;
    let control = RawControl {
        ctype: content_sync::SYNC_REQUEST_OID.to_owned(),
        crit: true,
        val: Some(content_sync::request(
            content_sync::Mode::RefreshOnly,
            cookie,
            false,
        )),
    };
    let malformed = |e: content_sync::Malformed| SourceError::Ldap {
        uri: uri.clone(),
        step: "reading the content sync",
        cause: e.to_string(),
    };
    let too_many = || SourceError::Ldap {
        uri: uri.clone(),
        step: "reading the content sync",
        cause: format!("more than import.max_entries = {limit} changes"),
    };
    let mut stream = ldap
        .with_timeout(connector.timeout)
        .with_controls(vec![control])
        .streaming_search_with(
            Vec::<Box<dyn ldap3::adapters::Adapter<_, _>>>::new(),
            &connector.base_dn,
            Scope::Subtree,
            &connector.filter,
            requested(attributes),
        )
        .await
        .map_err(|e| classify(connector, &uri, "searching", e))?;
    let mut delta = Delta::default();
    let mut seen = 0usize;
    loop {
        let entry = match stream.next().await {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(e) => return Err(classify(connector, &uri, "reading the content sync", e)),
        };
        if entry.is_intermediate() {
            let Some(value) = intermediate_value(&entry) else {
                continue; // not ours to read (another intermediate response)
            };
            match content_sync::sync_info(&value, limit.saturating_sub(seen)).map_err(malformed)? {
                content_sync::SyncInfo::NewCookie(c) => delta.cookie = Some(c),
                content_sync::SyncInfo::RefreshDelete { cookie, .. } => {
                    delta.cookie = cookie.or(delta.cookie.take());
                }
                content_sync::SyncInfo::RefreshPresent { cookie, .. } => {
                    delta.present_phase = true;
                    delta.cookie = cookie.or(delta.cookie.take());
                }
                content_sync::SyncInfo::SyncIdSet {
                    cookie,
                    refresh_deletes,
                    uuids,
                } => {
                    seen += uuids.len();
                    delta.cookie = cookie.or(delta.cookie.take());
                    if refresh_deletes {
                        delta.deleted.extend(uuids);
                    } else {
                        delta.present.extend(uuids);
                    }
                }
            }
            continue;
        }
        if entry.is_ref() {
            continue;
        }
        seen += 1;
        if seen > limit {
            return Err(too_many());
        }
        let state = entry
            .1
            .iter()
            .find(|c| c.1.ctype == content_sync::SYNC_STATE_OID)
            .and_then(|c| c.1.val.as_deref())
            .ok_or_else(|| SourceError::Ldap {
                uri: uri.clone(),
                step: "reading the content sync",
                cause: "an entry without a Sync State control".to_owned(),
            })
            .and_then(|v| content_sync::sync_state(v).map_err(malformed))?;
        if let Some(c) = state.cookie {
            delta.cookie = Some(c);
        }
        match state.state {
            content_sync::State::Add | content_sync::State::Modify => {
                let raw = raw_from_search(SearchEntry::construct(entry));
                delta.changed.push((state.entry_uuid, raw));
            }
            content_sync::State::Delete => delta.deleted.push(state.entry_uuid),
            content_sync::State::Present => delta.present.push(state.entry_uuid),
        }
    }
    let result = stream.finish().await;
    match result.rc {
        0 => {}
        4096 => return Err(SourceError::CookieRejected { uri }),
        12 => {
            return Err(SourceError::Ldap {
                uri,
                step: "content sync",
                cause: "the upstream does not offer content sync (RFC 4533); use a full run"
                    .to_owned(),
            })
        }
        rc => {
            return Err(SourceError::Ldap {
                uri,
                step: "content sync",
                cause: format!("result code {rc} {}", one_line(&result.text)),
            })
        }
    }
    if let Some(done) = result
        .ctrls
        .iter()
        .find(|c| c.1.ctype == content_sync::SYNC_DONE_OID)
        .and_then(|c| c.1.val.as_deref())
    {
        let done = content_sync::sync_done(done).map_err(malformed)?;
        delta.cookie = done.cookie.or(delta.cookie.take());
        // Without refreshDeletes the refresh ended in a present phase: what was not sent is gone.
        delta.present_phase |= !done.refresh_deletes && !delta.present.is_empty();
    }
    let _ = ldap.unbind().await;
    Ok(delta)
}

/// The responseValue of an IntermediateResponse (`[APPLICATION 25] SEQUENCE { [0] name
/// OPTIONAL, [1] value OPTIONAL }`), if it is a Sync Info message.
fn intermediate_value(entry: &ldap3::ResultEntry) -> Option<Vec<u8>> {
    let PL::C(parts) = &entry.0.payload else {
        return None;
    };
    let named_sync_info = parts.iter().any(|p| {
        p.id == 0 && matches!(&p.payload, PL::P(name) if name.as_slice() == content_sync::SYNC_INFO_OID.as_bytes())
    });
    let value = parts.iter().find_map(|p| match (&p.id, &p.payload) {
        (1, PL::P(value)) => Some(value.clone()),
        _ => None,
    });
    // slapd names its Sync Info messages; a nameless one is read as Sync Info too (RFC 4533
    // lets the name be left out), anything named otherwise is not.
    let nameless = !parts.iter().any(|p| p.id == 0);
    (named_sync_info || nameless).then_some(value).flatten()
}

fn settings(connector: &ConnectorConfig) -> Result<LdapConnSettings, String> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(connector.timeout)
        .set_starttls(connector.starttls)
        .set_no_tls_verify(connector.tls_insecure);
    if let Some(ca_file) = &connector.ca_file {
        if !connector.tls_insecure {
            settings = settings.set_config(Arc::new(tls_config(ca_file)?));
        }
    }
    Ok(settings)
}

/// A rustls client configuration trusting exactly the certificates of `ca_file`.
///
/// The file is read up to [`CA_FILE_BYTES`](crate::limits::CA_FILE_BYTES), and what is wrong
/// with it is said in fixed words: a parser's message can quote the bytes it choked on, and
/// the path may point at a file that is not a certificate at all (a key, the configuration).
fn tls_config(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use std::io::Read as _;

    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let shown = ca_file.display();
    let cap = crate::limits::CA_FILE_BYTES;
    let file = std::fs::File::open(ca_file)
        .map_err(|e| format!("cannot read ca_file {shown} ({})", e.kind()))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(format!("ca_file {shown} is not a regular file"));
    }
    let mut pem = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut pem)
        .map_err(|e| format!("cannot read ca_file {shown} ({})", e.kind()))?;
    if pem.len() as u64 > cap {
        return Err(format!(
            "ca_file {shown} is larger than {} KiB: not a CA bundle",
            cap / 1024
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert =
            cert.map_err(|_| format!("ca_file {shown} is not a PEM file of certificates"))?;
        roots
            .add(cert)
            .map_err(|_| format!("ca_file {shown} holds a certificate that cannot be read"))?;
    }
    if roots.is_empty() {
        return Err(format!("ca_file {shown} holds no certificate"));
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn raw_from_search(entry: SearchEntry) -> RawEntry {
    let mut raw = RawEntry::new(&entry.dn);
    for (name, values) in entry.attrs {
        if is_object_guid(&name) {
            // ldap3 hands a value that happens to be valid UTF-8 over as text — about one AD
            // GUID in 10,000: decide by the attribute, not by the bytes.
            for v in values {
                raw.extend(&name, object_guid(v.as_bytes()).into_iter().collect());
            }
        } else {
            raw.extend(&name, values);
        }
    }
    // Binary values: objectGUID is AD's stable id, kept as its canonical UUID string; other
    // non-UTF-8 values (photos, SIDs) have no place in a phone book.
    for (name, values) in entry.bin_attrs {
        if is_object_guid(&name) {
            for v in values {
                if let Some(guid) = object_guid(&v) {
                    raw.push(&name, guid);
                }
            }
        }
    }
    raw
}

fn io_cause(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connection timed out".into(),
        _ => one_line(&e.to_string()),
    }
}

/// A low-level cause with what an administrator most likely has to change, for the causes
/// whose words (from rustls or the LDAP client) do not say it themselves.
fn with_hint(cause: String, uri: &str) -> String {
    let plain = uri.to_ascii_lowercase().starts_with("ldap:");
    let hint = if cause.contains("UnknownIssuer") {
        "the server's certificate is not signed by a CA this machine trusts: set ca_file to the PEM of the CA that issued it"
    } else if cause.contains("NotValidForName") {
        "the URI's host is not a name the server's certificate carries: use that name"
    } else if cause.contains("Expired") {
        "the server's certificate has expired"
    } else if plain && (cause.contains("channel closed") || cause.contains("unexpected end")) {
        "the server closed the connection: is this an LDAPS port (636)? then use ldaps://"
    } else {
        return cause;
    };
    format!("{cause}; {hint}")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::{raw_from_search, tls_config};

    #[test]
    fn causes_that_do_not_say_what_to_do_get_a_hint() {
        let unknown = super::with_hint(
            "invalid peer certificate: UnknownIssuer".into(),
            "ldaps://dc1",
        );
        assert!(
            unknown.ends_with("set ca_file to the PEM of the CA that issued it"),
            "{unknown}"
        );
        let closed = super::with_hint("result recv error: channel closed".into(), "ldap://dc1:636");
        assert!(closed.ends_with("then use ldaps://"), "{closed}");
        let refused = super::with_hint("connection refused".into(), "ldap://dc1");
        assert_eq!(refused, "connection refused");
    }

    #[test]
    fn an_object_guid_becomes_its_uuid_whether_it_came_as_text_or_as_bytes() {
        // 16 bytes that are valid UTF-8: ldap3 returns them as text.
        let text_guid: Vec<u8> = b"N=,\x1b\0\0\x11\x11\"\"33DDUU".to_vec();
        assert_eq!(text_guid.len(), 16);
        let binary_guid: Vec<u8> = (0xf0..=0xff).collect();
        let entry = |attrs: Vec<(&str, String)>, bin: Vec<(&str, Vec<u8>)>| ldap3::SearchEntry {
            dn: "cn=x,dc=example,dc=com".into(),
            attrs: attrs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), vec![v]))
                .collect(),
            bin_attrs: bin
                .into_iter()
                .map(|(k, v)| (k.to_owned(), vec![v]))
                .collect(),
        };
        let as_text = raw_from_search(entry(
            vec![
                ("objectGUID", String::from_utf8(text_guid.clone()).unwrap()),
                ("cn", "Anna".into()),
            ],
            vec![],
        ));
        let want = uuid::Uuid::from_bytes_le(text_guid.try_into().unwrap()).to_string();
        assert_eq!(as_text.values("objectguid").unwrap(), [want]);
        assert_eq!(as_text.values("cn").unwrap(), ["Anna"]);
        let as_bytes = raw_from_search(entry(vec![], vec![("objectGUID", binary_guid.clone())]));
        let want = uuid::Uuid::from_bytes_le(binary_guid.try_into().unwrap()).to_string();
        assert_eq!(as_bytes.values("objectguid").unwrap(), [want]);
        // Not 16 bytes: no id at all rather than a wrong one.
        let short = raw_from_search(entry(vec![("objectGUID", "abc".into())], vec![]));
        assert!(short.values("objectguid").is_none_or(|v| v.is_empty()));
    }

    #[test]
    fn a_ca_file_is_bounded_and_its_errors_quote_none_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.pem");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(3 * crate::limits::CA_FILE_BYTES)
            .unwrap();
        let e = tls_config(&huge).unwrap_err();
        assert!(e.contains("is larger than 1024 KiB"), "{e}");

        let secret = dir.path().join("secret.pem");
        std::fs::write(
            &secret,
            "-----BEGIN CERTIFICATE-----SECRET-IN-BEGIN-LINE\nQUJD!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = tls_config(&secret).unwrap_err();
        assert!(!e.contains("SECRET") && !e.contains("45, 45"), "{e}");
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "password = \"hunter2\"\n").unwrap();
        assert!(tls_config(&key)
            .unwrap_err()
            .ends_with("holds no certificate"));
        let e = tls_config(dir.path()).unwrap_err();
        assert!(e.ends_with("is not a regular file"), "{e}");
    }
}
