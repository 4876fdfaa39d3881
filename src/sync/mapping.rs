//! Field mapping: phone book fields filled from templates over upstream attributes.
//!
//! A template is literal text with slots: `"{givenName} {sn}"`, `"{displayName|cn}"` (the
//! first non-empty attribute of a slot wins). Templates are parsed once, when the
//! configuration is loaded, so a typo is a config error with its key, never a sync surprise.

use std::collections::HashMap;

use crate::model::{Entry, PhoneKind};
use crate::numbers::NumberPlan;
use crate::sync::raw::RawEntry;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTemplate {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// Lower-cased attribute names, tried in order.
    Slot(Vec<String>),
}

impl FieldTemplate {
    /// Parses `text`; `{{` and `}}` stand for literal braces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err("unmatched '}' (write '}}' for a literal brace)".into()),
                '{' => {
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') => return Err("'{' inside a {slot}".into()),
                            Some(c) => inner.push(c),
                            None => return Err(format!("unclosed '{{{inner}'")),
                        }
                    }
                    let names = inner
                        .split('|')
                        .map(|n| n.trim().to_ascii_lowercase())
                        .collect::<Vec<_>>();
                    if let Some(bad) = names.iter().find(|n| !is_attribute_name(n)) {
                        return Err(if bad.is_empty() {
                            format!("empty attribute name in '{{{inner}}}'")
                        } else {
                            format!("'{bad}' in '{{{inner}}}' is not an attribute name")
                        });
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Slot(names));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(FieldTemplate {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every attribute the template reads, lower-cased.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .flat_map(|p| match p {
                Part::Slot(names) => names.as_slice(),
                Part::Literal(_) => &[],
            })
            .map(String::as_str)
    }

    pub fn slot_count(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Slot(_)))
            .count()
    }

    /// The template filled with the first value of each slot's first non-empty attribute,
    /// trimmed; `None` when every slot is empty (a lone literal is not a value).
    pub fn render(&self, entry: &RawEntry) -> Option<String> {
        let mut out = String::new();
        let mut filled = false;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Slot(names) => {
                    if let Some(v) = first_non_empty(entry, names).and_then(|vs| vs.first()) {
                        out.push_str(v.trim());
                        filled = true;
                    }
                }
            }
        }
        let out = out.trim();
        (filled || self.slot_count() == 0)
            .then(|| out.to_owned())
            .filter(|s| !s.is_empty())
    }

    /// One rendering per value of the (single) slot: phone fields keep every number an
    /// upstream attribute holds. Config validation guarantees at most one slot.
    pub fn render_all(&self, entry: &RawEntry) -> Vec<String> {
        let Some(values) = self.parts.iter().find_map(|p| match p {
            Part::Slot(names) => first_non_empty(entry, names),
            Part::Literal(_) => None,
        }) else {
            return Vec::new();
        };
        values
            .iter()
            .filter(|v| !v.trim().is_empty())
            .map(|value| {
                let mut out = String::new();
                for part in &self.parts {
                    match part {
                        Part::Literal(text) => out.push_str(text),
                        Part::Slot(_) => out.push_str(value.trim()),
                    }
                }
                out.trim().to_owned()
            })
            .collect()
    }
}

fn first_non_empty<'e>(entry: &'e RawEntry, names: &[String]) -> Option<&'e [String]> {
    names
        .iter()
        .filter_map(|n| entry.values(n))
        .find(|vs| vs.iter().any(|v| !v.trim().is_empty()))
}

/// RFC 4512 attribute descriptions: a letter, then letters, digits and hyphens (or an OID).
pub fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
        }
        Some(c) if c.is_ascii_digit() => name.chars().all(|c| c.is_ascii_digit() || c == '.'),
        _ => false,
    }
}

/// The text fields of an entry, as named in `[connector.fields]`.
pub const TEXT_FIELDS: [&str; 8] = [
    "display_name",
    "first_name",
    "last_name",
    "company",
    "department",
    "title",
    "email",
    "notes",
];

/// The phone fields of an entry, as named in `[connector.fields]`.
pub const PHONE_FIELDS: [(&str, PhoneKind); 5] = [
    ("business", PhoneKind::Business),
    ("mobile", PhoneKind::Mobile),
    ("home", PhoneKind::Home),
    ("fax", PhoneKind::Fax),
    ("other", PhoneKind::Other),
];

/// The mapping of one connector: field name → template. A field without a template stays
/// empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    templates: HashMap<&'static str, FieldTemplate>,
}

impl Default for FieldMap {
    /// The mapping an inetOrgPerson / Active Directory user needs; see the README.
    fn default() -> Self {
        let defaults = [
            ("display_name", "{displayName|cn}"),
            ("first_name", "{givenName}"),
            ("last_name", "{sn}"),
            ("company", "{o|company}"),
            ("department", "{ou|department}"),
            ("title", "{title}"),
            ("email", "{mail}"),
            ("notes", "{description}"),
            ("business", "{telephoneNumber}"),
            ("mobile", "{mobile}"),
            ("home", "{homePhone}"),
            ("fax", "{facsimileTelephoneNumber}"),
            ("other", "{ipPhone|otherTelephone}"),
        ];
        let templates = defaults
            .into_iter()
            .filter_map(|(field, text)| Some((field, FieldTemplate::parse(text).ok()?)))
            .collect();
        FieldMap { templates }
    }
}

/// Why an upstream entry could not become a phone book entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEntry {
    pub dn: String,
    pub reason: String,
}

impl FieldMap {
    /// The static name of a known field, or `None` for a name the mapping does not have.
    pub fn field_name(name: &str) -> Option<&'static str> {
        TEXT_FIELDS
            .iter()
            .copied()
            .chain(PHONE_FIELDS.iter().map(|(n, _)| *n))
            .find(|f| *f == name)
    }

    /// Sets (or, with `None`, clears) the template of a known field.
    pub fn set(&mut self, field: &'static str, template: Option<FieldTemplate>) {
        match template {
            Some(t) => self.templates.insert(field, t),
            None => self.templates.remove(field),
        };
    }

    pub fn get(&self, field: &str) -> Option<&FieldTemplate> {
        self.templates.get(field)
    }

    /// Every attribute any template reads.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.templates.values().flat_map(FieldTemplate::attributes)
    }

    /// Turns one upstream entry into a phone book entry.
    pub fn map(
        &self,
        raw: &RawEntry,
        connector: &str,
        id: &str,
        numbers: &NumberPlan,
    ) -> Result<Entry, InvalidEntry> {
        let text = |field: &str| self.get(field).and_then(|t| t.render(raw));
        let Some(display_name) = text("display_name") else {
            return Err(InvalidEntry {
                dn: raw.dn.clone(),
                reason: "no display name (the display_name template is empty for it)".into(),
            });
        };
        let mut entry = Entry::new(connector, id, &display_name);
        entry.first_name = text("first_name");
        entry.last_name = text("last_name");
        entry.company = text("company");
        entry.department = text("department");
        entry.title = text("title");
        entry.email = text("email");
        entry.notes = text("notes");
        for (field, kind) in PHONE_FIELDS {
            if let Some(t) = self.get(field) {
                let list = entry.phones_mut(kind);
                for written in t.render_all(raw) {
                    let phone = numbers.phone(&written);
                    if !list.contains(&phone) {
                        list.push(phone);
                    }
                }
            }
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(attrs: &[(&str, &[&str])]) -> RawEntry {
        let mut e = RawEntry::new("uid=x,dc=example,dc=com");
        for (name, values) in attrs {
            for v in *values {
                e.push(name, v.to_string());
            }
        }
        e
    }

    #[test]
    fn template_fills_slots_and_keeps_literals() {
        let t = FieldTemplate::parse("{givenName} {sn} ({ou})").unwrap();
        let e = raw(&[
            ("givenName", &["Jürgen"]),
            ("SN", &["Müller"]),
            ("ou", &["IT"]),
        ]);
        assert_eq!(t.render(&e).as_deref(), Some("Jürgen Müller (IT)"));
        let mut attrs: Vec<_> = t.attributes().collect();
        attrs.sort();
        assert_eq!(attrs, ["givenname", "ou", "sn"]);
    }

    #[test]
    fn fallback_takes_the_first_non_empty_attribute() {
        let t = FieldTemplate::parse("{displayName|cn}").unwrap();
        assert_eq!(
            t.render(&raw(&[("cn", &["Anna"])])).as_deref(),
            Some("Anna")
        );
        let both = raw(&[("displayName", &["Dr. Anna"]), ("cn", &["Anna"])]);
        assert_eq!(t.render(&both).as_deref(), Some("Dr. Anna"));
        let blank = raw(&[("displayName", &["  "]), ("cn", &["Anna"])]);
        assert_eq!(t.render(&blank).as_deref(), Some("Anna"));
    }

    #[test]
    fn template_with_every_slot_empty_renders_nothing() {
        let t = FieldTemplate::parse("Tel. {telephoneNumber}").unwrap();
        assert_eq!(t.render(&raw(&[("cn", &["x"])])), None);
        let partial = FieldTemplate::parse("{givenName} {sn}").unwrap();
        assert_eq!(
            partial.render(&raw(&[("sn", &["Weiß"])])).as_deref(),
            Some("Weiß")
        );
    }

    #[test]
    fn literal_only_template_is_a_constant() {
        let t = FieldTemplate::parse("Example GmbH").unwrap();
        assert_eq!(t.render(&raw(&[])).as_deref(), Some("Example GmbH"));
    }

    #[test]
    fn escaped_braces_are_literal() {
        let t = FieldTemplate::parse("{{{cn}}}").unwrap();
        assert_eq!(t.render(&raw(&[("cn", &["a"])])).as_deref(), Some("{a}"));
    }

    #[test]
    fn bad_templates_are_rejected_with_a_reason() {
        for (text, needle) in [
            ("{cn", "unclosed"),
            ("cn}", "unmatched"),
            ("{}", "empty attribute"),
            ("{cn|}", "empty attribute"),
            ("{given name}", "not an attribute name"),
            ("{a{b}}", "inside"),
        ] {
            let err = FieldTemplate::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn phone_templates_keep_every_value() {
        let t = FieldTemplate::parse("{telephoneNumber}").unwrap();
        let e = raw(&[("telephoneNumber", &["089 1234-567", "+1 (555) 010-2030"])]);
        assert_eq!(t.render_all(&e), ["089 1234-567", "+1 (555) 010-2030"]);
    }

    #[test]
    fn mapping_builds_an_entry_with_normalised_numbers() {
        let e = raw(&[
            ("cn", &["Jürgen Müller"]),
            ("givenName", &["Jürgen"]),
            ("sn", &["Müller"]),
            (
                "telephoneNumber",
                &["089 1234-567", "+49 (0)89 1234567", "0049 89 7654321"],
            ),
            ("mobile", &["(555) 010-2030 ext. 12"]),
        ]);
        let entry = FieldMap::default()
            .map(&e, "corp", "id1", &NumberPlan::default())
            .unwrap();
        assert_eq!(entry.display_name, "Jürgen Müller");
        assert_eq!(entry.last_name.as_deref(), Some("Müller"));
        let business: Vec<_> = entry.business.iter().map(|p| p.e164.as_deref()).collect();
        assert_eq!(
            business,
            [
                Some("+49891234567"),
                Some("+49891234567"),
                Some("+49897654321")
            ]
        );
        assert_eq!(entry.business[1].written, "+49 (0)89 1234567");
        assert_eq!(entry.mobile[0].written, "(555) 010-2030 ext. 12");
        assert_eq!(entry.mobile[0].e164, None);
    }

    #[test]
    fn entry_without_display_name_is_invalid() {
        let err = FieldMap::default()
            .map(&raw(&[("sn", &["x"])]), "c", "i", &NumberPlan::default())
            .unwrap_err();
        assert_eq!(err.dn, "uid=x,dc=example,dc=com");
        assert!(err.reason.contains("display name"));
    }
}
