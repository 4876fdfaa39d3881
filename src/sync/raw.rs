//! An upstream entry as every source hands it over (an LDAP search, an LDIF file): the one
//! shape pre-filter, mapping and plan read, so they cannot tell the sources apart.

use std::collections::HashMap;

/// An upstream entry: its DN and its attribute values, names lower-cased (LDAP attribute
/// names are case-insensitive and servers answer in their own spelling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub dn: String,
    attrs: HashMap<String, Vec<String>>,
}

impl RawEntry {
    pub fn new(dn: &str) -> Self {
        RawEntry {
            dn: dn.to_owned(),
            attrs: HashMap::new(),
        }
    }

    /// Adds a value to the attribute `name` (any case).
    pub fn push(&mut self, name: &str, value: String) {
        self.attrs
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value);
    }

    /// Adds values to the attribute `name` (any case).
    pub fn extend(&mut self, name: &str, values: Vec<String>) {
        match self.attrs.get_mut(&name.to_ascii_lowercase()) {
            Some(existing) => existing.extend(values),
            None => {
                self.attrs.insert(name.to_ascii_lowercase(), values);
            }
        }
    }

    /// Every attribute (lower-cased name) with its values.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.attrs.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The values of a lower-cased attribute name.
    pub fn values(&self, lower_name: &str) -> Option<&[String]> {
        self.attrs.get(lower_name).map(Vec::as_slice)
    }
}

/// Whether an attribute is AD's `objectGUID`, whose values are 16 raw bytes.
pub fn is_object_guid(name: &str) -> bool {
    name.eq_ignore_ascii_case("objectGUID")
}

/// An `objectGUID` value as AD writes it in text (`{…}` without braces, mixed-endian as
/// Windows shows it); `None` for anything that is not 16 bytes.
pub fn object_guid(bytes: &[u8]) -> Option<String> {
    let bytes = <[u8; 16]>::try_from(bytes).ok()?;
    Some(uuid::Uuid::from_bytes_le(bytes).to_string())
}
