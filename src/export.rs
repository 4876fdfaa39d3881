//! `export`: the stored phone book as JSON, LDIF or CSV, for scripts and for loading into
//! another directory.
//!
//! The JSON document is the HTTP feed's shape, written here once ([`Document`],
//! [`FeedEntry`]) and used by both, so `export --format json` and `GET /api/v1/entries` can
//! never drift apart. The LDIF holds entries exactly as the LDAP endpoint serves them
//! (`uid=<uid>,<base_dn>`, inetOrgPerson), so it can be loaded into slapd to compare answers.

use std::borrow::Cow;
use std::io::{self, Write};

use base64::Engine;
use serde::{Serialize, Serializer};

use crate::directory::schema::{Attr, OBJECT_CLASSES, SERVED};
use crate::model::{Entry, PhoneKind, PhoneNumber};
use crate::numbers::{NumberFormat, NumberPlan};

/// The JSON document of the feed and the export: `{"generation": N, "entries": [...]}`.
#[derive(Serialize)]
pub struct Document<'a> {
    pub generation: u64,
    pub entries: Vec<FeedEntry<'a>>,
}

impl<'a> Document<'a> {
    pub fn new(
        generation: u64,
        entries: impl IntoIterator<Item = &'a Entry>,
        plan: &'a NumberPlan,
    ) -> Self {
        Document {
            generation,
            entries: entries
                .into_iter()
                .map(|e| FeedEntry::new(e, plan))
                .collect(),
        }
    }
}

/// One entry as JSON clients see it: the stored entry, with every number also written as the
/// company's desk phones dial it (`dialable`) and, inside a company number block, its
/// `extension` — so a PBX or CRM that imports the feed can dial colleagues internally
/// without knowing the number plan.
#[derive(Clone, Copy)]
pub struct FeedEntry<'a> {
    entry: &'a Entry,
    plan: &'a NumberPlan,
}

impl<'a> FeedEntry<'a> {
    pub fn new(entry: &'a Entry, plan: &'a NumberPlan) -> Self {
        FeedEntry { entry, plan }
    }
}

/// The serialised fields of a [`FeedEntry`]: the entry's own, with numbers as [`FeedNumber`]s.
#[derive(Serialize)]
struct EntryView<'a> {
    id: &'a str,
    connector: &'a str,
    display_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    company: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<&'a str>,
    business: Numbers<'a>,
    mobile: Numbers<'a>,
    home: Numbers<'a>,
    fax: Numbers<'a>,
    other: Numbers<'a>,
}

impl Serialize for FeedEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Destructured without `..`: a field added to `Entry` does not compile until the feed
        // decides how to show it.
        let Entry {
            id,
            connector,
            display_name,
            first_name,
            last_name,
            company,
            department,
            title,
            email,
            notes,
            business,
            mobile,
            home,
            fax,
            other,
        } = self.entry;
        let plan = self.plan;
        let numbers = |list| Numbers { list, plan };
        EntryView {
            id,
            connector,
            display_name,
            first_name: first_name.as_deref(),
            last_name: last_name.as_deref(),
            company: company.as_deref(),
            department: department.as_deref(),
            title: title.as_deref(),
            email: email.as_deref(),
            notes: notes.as_deref(),
            business: numbers(business),
            mobile: numbers(mobile),
            home: numbers(home),
            fax: numbers(fax),
            other: numbers(other),
        }
        .serialize(serializer)
    }
}

/// One list of an entry's numbers, each written as a [`FeedNumber`].
struct Numbers<'a> {
    list: &'a [PhoneNumber],
    plan: &'a NumberPlan,
}

impl Serialize for Numbers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.list.iter().map(|p| FeedNumber::new(p, self.plan)))
    }
}

/// `{"written", "e164"?, "extension"?, "dialable"}`: `dialable` is always there (as written
/// when the number has no E.164 form), `extension` only inside a company number block.
#[derive(Serialize)]
struct FeedNumber<'a> {
    written: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    e164: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<&'a str>,
    dialable: Cow<'a, str>,
}

impl<'a> FeedNumber<'a> {
    fn new(number: &'a PhoneNumber, plan: &NumberPlan) -> Self {
        let e164 = number.e164.as_deref();
        FeedNumber {
            written: &number.written,
            e164,
            extension: e164.and_then(|e| plan.extension(e)),
            dialable: plan.format(number, NumberFormat::Dialable),
        }
    }
}

/// The feed's JSON document of `entries`, numbers written under `plan`, and a newline.
pub fn json(
    out: &mut dyn Write,
    generation: u64,
    entries: &[Entry],
    plan: &NumberPlan,
) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &Document::new(generation, entries, plan))?;
    out.write_all(b"\n")
}

/// The served LDAP attributes of an entry, in a fixed order, numbers in `format` (the
/// LDAP endpoint's `ldap.number_format`); absent fields are left out.
pub fn ldap_attributes(
    entry: &Entry,
    plan: &NumberPlan,
    format: NumberFormat,
) -> Vec<(&'static str, Vec<String>)> {
    let uid = entry.uid();
    let attrs = SERVED.iter().map(|&(name, attr)| {
        let values = match attr {
            Attr::ObjectClass => OBJECT_CLASSES.map(String::from).to_vec(),
            Attr::Text(t) => t
                .value(entry, &uid)
                .map(str::to_owned)
                .into_iter()
                .collect(),
            Attr::Phone(k) => entry
                .phones(k)
                .iter()
                .map(|p| plan.format(p, format).into_owned())
                .collect(),
        };
        (name, values)
    });
    attrs.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

/// The entries as the LDAP endpoint serves them under `base_dn`, numbers in `format`.
pub fn ldif(
    out: &mut dyn Write,
    base_dn: &str,
    entries: &[Entry],
    plan: &NumberPlan,
    format: NumberFormat,
) -> io::Result<()> {
    for entry in entries {
        writeln!(out)?;
        ldif_line(out, "dn", &format!("uid={},{base_dn}", entry.uid()))?;
        for (name, values) in ldap_attributes(entry, plan, format) {
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

/// The entries as CSV: one row per entry, numbers of a kind joined with `; `, each kind as
/// written and in E.164 (empty where a number has none). `bom` starts the file with a UTF-8
/// byte order mark, without which Excel reads the file as Windows-1252 and garbles umlauts.
pub fn csv(out: &mut dyn Write, entries: &[Entry], bom: bool) -> io::Result<()> {
    if bom {
        out.write_all("\u{feff}".as_bytes())?;
    }
    writeln!(
        out,
        "id,connector,display_name,first_name,last_name,company,department,title,email,notes,business,mobile,home,fax,other,business_e164,mobile_e164,home_e164,fax_e164,other_e164"
    )?;
    for e in entries {
        let numbers = |k: PhoneKind, e164: bool| {
            e.phones(k)
                .iter()
                .map(|p| {
                    if e164 {
                        p.e164.as_deref().unwrap_or_default()
                    } else {
                        p.written.as_str()
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut row = vec![
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
        ];
        for e164 in [false, true] {
            row.extend(PhoneKind::ALL.map(|k| numbers(k, e164)));
        }
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

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
        csv(&mut out, &[anna()], false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let row = text.lines().nth(1).unwrap();
        assert!(row.starts_with("1,corp,\"Müller, Anna\",,Müller,"), "{row}");
        assert!(row.contains("089 1234-567; +49 89 7654321"), "{row}");
        assert!(
            row.ends_with(",+49891234567; +49897654321,,,,"),
            "the E.164 columns: {row}"
        );
        assert!(text.lines().next().unwrap().ends_with(",other_e164"));
        assert!(!text.starts_with('\u{feff}'));
        let mut with_bom = Vec::new();
        csv(&mut with_bom, &[anna()], true).unwrap();
        assert!(with_bom.starts_with(&[0xef, 0xbb, 0xbf]), "UTF-8 BOM first");
        assert_eq!(&with_bom[3..], text.as_bytes());
    }

    fn company() -> NumberPlan {
        NumberPlan {
            outside_prefix: "0".into(),
            extensions: vec![crate::numbers::ExtensionBlock {
                prefix: "49891234".into(),
                digits: 3,
            }],
            ..NumberPlan::default()
        }
    }

    /// Every field of a fully filled entry, each number list holding one number.
    fn everything(plan: &NumberPlan) -> Entry {
        let mut e = anna();
        e.first_name = Some("Anna".into());
        e.company = Some("Bäckerei".into());
        e.department = Some("Sales".into());
        e.title = Some("Dr.".into());
        e.email = Some("anna@example.com".into());
        e.notes = Some("note".into());
        e.business = vec![plan.phone("+49 89 1234-826")];
        e.mobile = vec![plan.phone("0170 1234567")];
        e.home = vec![plan.phone("+41 44 1234 567")];
        e.fax = vec![plan.phone("intern 42")];
        e.other = vec![plan.phone("089 0859929")];
        e
    }

    #[test]
    fn the_feed_shape_is_the_entry_plus_two_fields_per_number() {
        let plan = company();
        let entry = everything(&plan);
        let mut feed = serde_json::to_value(FeedEntry::new(&entry, &plan)).unwrap();
        for kind in ["business", "mobile", "home", "fax", "other"] {
            for number in feed[kind].as_array_mut().unwrap() {
                let number = number.as_object_mut().unwrap();
                assert!(number.remove("dialable").is_some(), "{kind}: {number:?}");
                number.remove("extension");
            }
        }
        assert_eq!(feed, serde_json::to_value(&entry).unwrap());
    }

    #[test]
    fn numbers_carry_their_extension_and_dialable_form() {
        let plan = company();
        let entry = everything(&plan);
        let feed = serde_json::to_value(FeedEntry::new(&entry, &plan)).unwrap();
        assert_eq!(
            feed["business"][0],
            serde_json::json!({"written": "+49 89 1234-826", "e164": "+49891234826",
                "extension": "826", "dialable": "826"})
        );
        assert_eq!(
            feed["other"][0],
            serde_json::json!({"written": "089 0859929", "e164": "+49890859929",
                "dialable": "00890859929"})
        );
        assert_eq!(feed["home"][0]["dialable"], "00041441234567");
        assert_eq!(
            feed["fax"][0],
            serde_json::json!({"written": "intern 42", "dialable": "intern 42"}),
            "without an E.164 form a number is dialled as written"
        );
    }

    #[test]
    fn json_export_is_the_feed_document() {
        let plan = company();
        let entries = [everything(&plan)];
        let mut out = Vec::new();
        json(&mut out, 7, &entries, &plan).unwrap();
        assert!(out.ends_with(b"}\n"));
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["generation"], 7);
        assert_eq!(
            doc["entries"][0],
            serde_json::to_value(FeedEntry::new(&entries[0], &plan)).unwrap()
        );
    }

    #[test]
    fn ldif_encodes_non_ascii_values_in_base64() {
        let mut out = Vec::new();
        ldif(
            &mut out,
            "ou=phonebook,dc=example,dc=com",
            &[anna()],
            &NumberPlan::default(),
            NumberFormat::AsWritten,
        )
        .unwrap();
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
