//! An LDIF (RFC 2849) content reader, so a `file:` connector runs the same pipeline as LDAP.
//!
//! Only content records are accepted (a phone book export is not a change log); folded lines,
//! comments and base64 values (`attr:: …`) are handled. Values that are not UTF-8 (photos) are
//! skipped, except `objectGUID`, which becomes its UUID string as with an LDAP source.
//!
//! Errors name the line and what was expected, never what the line holds: a `file:` path
//! pointed at a secret must not turn the error into a way of reading it.

use super::raw::{is_object_guid, object_guid, RawEntry};
use crate::filter;
use crate::model::normalise_dn;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifError {
    pub line: usize,
    pub message: String,
}

/// Parses LDIF text into entries, in file order.
pub fn parse(text: &str) -> Result<Vec<RawEntry>, LdifError> {
    let mut entries = Vec::new();
    let mut current: Option<RawEntry> = None;
    for (line_no, line) in logical_lines(text) {
        let err = |message: String| LdifError {
            line: line_no,
            message,
        };
        if line.is_empty() {
            entries.extend(current.take());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = split_attr(&line).map_err(err)? else {
            return Err(err("expected \"attribute: value\"".into()));
        };
        match current.as_mut() {
            None if name.eq_ignore_ascii_case("version") => {}
            None if name.eq_ignore_ascii_case("dn") => {
                current = Some(RawEntry::new(
                    value
                        .as_text()
                        .ok_or_else(|| err("the DN is not UTF-8".into()))?,
                ));
            }
            None => return Err(err("a record must start with \"dn:\"".into())),
            Some(_) if name.eq_ignore_ascii_case("changetype") => {
                return Err(err(
                    "change records are not supported; give content records (an export)".into(),
                ))
            }
            Some(entry) => match value {
                // A GUID's 16 bytes are often valid UTF-8 too: decide by name, not content.
                Value::Text(_) | Value::Binary(_) if is_object_guid(name) => {
                    if let Some(guid) = object_guid(&value.into_bytes()) {
                        entry.push(name, guid);
                    }
                }
                Value::Text(v) => entry.push(name, v),
                Value::Binary(_) => {}
            },
        }
    }
    entries.extend(current.take());
    Ok(entries)
}

/// The entries at or below `base_dn` (all, when empty) that match `filter_text`.
pub fn select(entries: Vec<RawEntry>, base_dn: &str, filter_text: &str) -> Vec<RawEntry> {
    let base = normalise_dn(base_dn);
    let Ok(filter) = filter::parse(filter_text) else {
        return Vec::new(); // unreachable: the configuration checked the filter
    };
    entries
        .into_iter()
        .filter(|e| {
            let dn = normalise_dn(&e.dn);
            base.is_empty() || dn == base || dn.ends_with(&format!(",{base}"))
        })
        .filter(|e| filter::matches(&filter, &|name| e.values(name).unwrap_or(&[])))
        .collect()
}

enum Value {
    Text(String),
    Binary(Vec<u8>),
}

impl Value {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Value::Text(t) => t.into_bytes(),
            Value::Binary(b) => b,
        }
    }

    fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            Value::Binary(_) => None,
        }
    }
}

fn split_attr(line: &str) -> Result<Option<(&str, Value)>, String> {
    let Some((name, rest)) = line.split_once(':') else {
        return Ok(None);
    };
    if name.is_empty() || name.contains(' ') {
        return Ok(None);
    }
    if let Some(b64) = rest.strip_prefix(':') {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| "bad base64 value".to_owned())?;
        return Ok(Some((
            name,
            match String::from_utf8(bytes) {
                Ok(s) => Value::Text(s),
                Err(e) => Value::Binary(e.into_bytes()),
            },
        )));
    }
    if rest.starts_with('<') {
        return Err("URL values (attribute:< …) are not supported".into());
    }
    Ok(Some((
        name,
        Value::Text(rest.trim_start_matches(' ').to_owned()),
    )))
}

/// Joins folded lines (a continuation starts with one space), numbering each logical line by
/// where it starts.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match (line.strip_prefix(' '), out.last_mut()) {
            (Some(cont), Some((_, prev))) if !prev.is_empty() => prev.push_str(cont),
            _ => out.push((i + 1, line.to_owned())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_with_base64_folding_and_comments() {
        let text = "version: 1\n# a comment\n folded comment\ndn: uid=a,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn:: SsO8cmdlbiBNw7xsbGVy\nsn: Mül\n ler\ntelephoneNumber: 089 1234567\ntelephoneNumber: +49 89 7654321\r\n\n\ndn: uid=b,ou=people,dc=example,dc=com\ncn: B\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries.len(), 2);
        let a = &entries[0];
        assert_eq!(a.dn, "uid=a,ou=people,dc=example,dc=com");
        assert_eq!(a.values("cn").unwrap(), ["Jürgen Müller"]);
        assert_eq!(a.values("sn").unwrap(), ["Müller"]);
        assert_eq!(a.values("telephonenumber").unwrap().len(), 2);
        assert_eq!(entries[1].values("cn").unwrap(), ["B"]);
    }

    #[test]
    fn objectguid_becomes_a_uuid_and_other_binaries_are_skipped() {
        let text = "dn: cn=x,dc=y\nobjectGUID:: AAECAwQFBgcICQoLDA0ODw==\njpegPhoto:: /9j/4A==\n";
        let e = &parse(text).unwrap()[0];
        assert_eq!(
            e.values("objectguid").unwrap(),
            ["03020100-0504-0706-0809-0a0b0c0d0e0f"]
        );
        assert!(e.values("jpegphoto").is_none());
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("cn: x\n").unwrap_err().line, 1);
        let e = parse("dn: cn=x\ncn:: !!!\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("base64"), "{e:?}");
        assert!(parse("dn: cn=x\nchangetype: add\n")
            .unwrap_err()
            .message
            .contains("change records"));
        assert_eq!(parse("dn: cn=x\nno colon here\n").unwrap_err().line, 2);
    }

    #[test]
    fn select_applies_base_dn_and_filter() {
        let text = "dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\n\ndn: uid=a, ou=People,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: A\n\ndn: uid=b,ou=other,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: B\n";
        let all = parse(text).unwrap();
        let picked = select(
            all.clone(),
            "ou=people,dc=example,dc=com",
            "(objectClass=inetOrgPerson)",
        );
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].values("cn").unwrap(), ["A"]);
        assert_eq!(select(all, "", "(objectClass=*)").len(), 3);
    }
}
