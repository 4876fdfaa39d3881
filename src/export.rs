//! `export`: the stored phone book as JSON, LDIF or CSV, for scripts and for loading into
//! another directory.
//!
//! The LDIF holds entries exactly as the LDAP endpoint serves them (`uid=<uid>,<base_dn>`,
//! inetOrgPerson), so it can be loaded into slapd to compare answers.

use std::io::{self, Write};

use base64::Engine;
use serde::Serialize;

use crate::model::{Entry, PhoneKind};

/// The JSON document: the same shape as the HTTP feed.
#[derive(Serialize)]
struct Feed<'a> {
    generation: u64,
    entries: &'a [Entry],
}

/// Sorts entries the way every output lists them (the directory's display order), so the
/// export, the HTTP feed and LDAP answers agree.
pub fn sort_entries(entries: &mut [Entry], order: crate::config::Order) {
    crate::directory::display_order(entries, order);
}

pub fn json(out: &mut dyn Write, generation: u64, entries: &[Entry]) -> io::Result<()> {
    serde_json::to_writer(
        &mut *out,
        &Feed {
            generation,
            entries,
        },
    )?;
    out.write_all(b"\n")
}

/// The served LDAP attributes of an entry, in a fixed order; absent fields are left out.
pub fn ldap_attributes(entry: &Entry) -> Vec<(&'static str, Vec<String>)> {
    let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
    let numbers = |k: PhoneKind| {
        entry
            .phones(k)
            .iter()
            .map(|p| p.written.clone())
            .collect::<Vec<_>>()
    };
    let attrs = vec![
        (
            "objectClass",
            ["top", "person", "organizationalPerson", "inetOrgPerson"]
                .map(String::from)
                .to_vec(),
        ),
        ("uid", vec![entry.uid()]),
        ("cn", vec![entry.display_name.clone()]),
        ("displayName", vec![entry.display_name.clone()]),
        ("givenName", one(&entry.first_name)),
        (
            "sn",
            vec![entry
                .last_name
                .clone()
                .unwrap_or_else(|| entry.display_name.clone())],
        ),
        ("o", one(&entry.company)),
        ("ou", one(&entry.department)),
        ("title", one(&entry.title)),
        ("mail", one(&entry.email)),
        ("description", one(&entry.notes)),
        ("telephoneNumber", numbers(PhoneKind::Business)),
        ("mobile", numbers(PhoneKind::Mobile)),
        ("homePhone", numbers(PhoneKind::Home)),
        ("facsimileTelephoneNumber", numbers(PhoneKind::Fax)),
        ("otherTelephone", numbers(PhoneKind::Other)),
        ("ipPhone", numbers(PhoneKind::Other)),
    ];
    attrs.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

pub fn ldif(out: &mut dyn Write, base_dn: &str, entries: &[Entry]) -> io::Result<()> {
    for entry in entries {
        writeln!(out)?;
        ldif_line(out, "dn", &format!("uid={},{base_dn}", entry.uid()))?;
        for (name, values) in ldap_attributes(entry) {
            for value in &values {
                ldif_line(out, name, value)?;
            }
        }
    }
    Ok(())
}

/// One `name: value` line, base64 where RFC 2849 requires it.
fn ldif_line(out: &mut dyn Write, name: &str, value: &str) -> io::Result<()> {
    let safe_start = value
        .chars()
        .next()
        .is_none_or(|c| c.is_ascii() && !matches!(c, ' ' | ':' | '<'));
    let safe = safe_start
        && !value.ends_with(' ')
        && value
            .chars()
            .all(|c| c.is_ascii() && !matches!(c, '\0' | '\r' | '\n'));
    if safe {
        writeln!(out, "{name}: {value}")
    } else {
        writeln!(
            out,
            "{name}:: {}",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

pub fn csv(out: &mut dyn Write, entries: &[Entry]) -> io::Result<()> {
    writeln!(
        out,
        "id,connector,display_name,first_name,last_name,company,department,title,email,notes,business,mobile,home,fax,other"
    )?;
    for e in entries {
        let numbers = |k: PhoneKind| {
            e.phones(k)
                .iter()
                .map(|p| p.written.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let row = [
            e.id.clone(),
            e.connector.clone(),
            e.display_name.clone(),
            text(&e.first_name),
            text(&e.last_name),
            text(&e.company),
            text(&e.department),
            text(&e.title),
            text(&e.email),
            text(&e.notes),
            numbers(PhoneKind::Business),
            numbers(PhoneKind::Mobile),
            numbers(PhoneKind::Home),
            numbers(PhoneKind::Fax),
            numbers(PhoneKind::Other),
        ];
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

/// RFC 4180 quoting.
fn csv_cell(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbers::NumberPlan;

    fn anna() -> Entry {
        let mut e = Entry::new("corp", "1", "Müller, Anna");
        e.last_name = Some("Müller".into());
        e.business.push(NumberPlan::default().phone("089 1234-567"));
        e.business
            .push(NumberPlan::default().phone("+49 89 7654321"));
        e
    }

    #[test]
    fn csv_quotes_commas_and_joins_numbers() {
        let mut out = Vec::new();
        csv(&mut out, &[anna()]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let row = text.lines().nth(1).unwrap();
        assert!(row.starts_with("1,corp,\"Müller, Anna\",,Müller,"), "{row}");
        assert!(row.contains("089 1234-567; +49 89 7654321"), "{row}");
    }

    #[test]
    fn ldif_encodes_non_ascii_values_in_base64() {
        let mut out = Vec::new();
        ldif(&mut out, "ou=phonebook,dc=example,dc=com", &[anna()]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("dn: uid=corp.1,ou=phonebook,dc=example,dc=com\n"),
            "{text}"
        );
        assert!(text.contains("cn:: TcO8bGxlciwgQW5uYQ==\n"), "{text}");
        assert!(text.contains("telephoneNumber: 089 1234-567\n"), "{text}");
        let parsed = crate::sync::ldif::parse(&text).unwrap();
        assert_eq!(parsed[0].values("cn").unwrap(), ["Müller, Anna"]);
    }
}
