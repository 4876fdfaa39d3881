//! The phone book's own vocabulary: an [`Entry`] and its [`PhoneNumber`]s.
//!
//! Plain data, no I/O. Every layer (sync, store, directory, endpoints) speaks these types, so
//! a change here is a change of what the product *is*; the serde derives only give the store
//! and the edges one stable encoding to build on.

use serde::{Deserialize, Serialize};

/// One number as the upstream wrote it, plus its E.164 form when it could be derived.
///
/// The written form is what phones display; the E.164 form is what matching and caller lookup
/// use. A number that cannot be normalised (an extension, letters, too short) keeps `e164 =
/// None` but is never dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumber {
    pub written: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e164: Option<String>,
}

/// A phone book entry as served to phones and the PBX.
///
/// `(connector, id)` is the identity: two connectors never touch each other's entries even
/// when their upstream ids collide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Stable upstream identity: the `id_attribute` value, or the normalised DN.
    pub id: String,
    pub connector: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default)]
    pub business: Vec<PhoneNumber>,
    #[serde(default)]
    pub mobile: Vec<PhoneNumber>,
    #[serde(default)]
    pub home: Vec<PhoneNumber>,
    #[serde(default)]
    pub fax: Vec<PhoneNumber>,
    #[serde(default)]
    pub other: Vec<PhoneNumber>,
}

/// Which list of an [`Entry`] a number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneKind {
    Business,
    Mobile,
    Home,
    Fax,
    Other,
}

impl PhoneKind {
    pub const ALL: [PhoneKind; 5] = [
        PhoneKind::Business,
        PhoneKind::Mobile,
        PhoneKind::Home,
        PhoneKind::Fax,
        PhoneKind::Other,
    ];
}

impl Entry {
    /// An entry with only the required fields set.
    pub fn new(connector: &str, id: &str, display_name: &str) -> Self {
        Entry {
            id: id.to_owned(),
            connector: connector.to_owned(),
            display_name: display_name.to_owned(),
            first_name: None,
            last_name: None,
            company: None,
            department: None,
            title: None,
            email: None,
            notes: None,
            business: Vec::new(),
            mobile: Vec::new(),
            home: Vec::new(),
            fax: Vec::new(),
            other: Vec::new(),
        }
    }

    pub fn phones(&self, kind: PhoneKind) -> &[PhoneNumber] {
        match kind {
            PhoneKind::Business => &self.business,
            PhoneKind::Mobile => &self.mobile,
            PhoneKind::Home => &self.home,
            PhoneKind::Fax => &self.fax,
            PhoneKind::Other => &self.other,
        }
    }

    pub fn phones_mut(&mut self, kind: PhoneKind) -> &mut Vec<PhoneNumber> {
        match kind {
            PhoneKind::Business => &mut self.business,
            PhoneKind::Mobile => &mut self.mobile,
            PhoneKind::Home => &mut self.home,
            PhoneKind::Fax => &mut self.fax,
            PhoneKind::Other => &mut self.other,
        }
    }

    /// How many numbers the entry has, all kinds together.
    pub fn phone_count(&self) -> usize {
        self.business.len()
            + self.mobile.len()
            + self.home.len()
            + self.fax.len()
            + self.other.len()
    }

    /// Every number of the entry, in a fixed order (business, mobile, home, fax, other).
    pub fn all_phones(&self) -> impl Iterator<Item = (PhoneKind, &PhoneNumber)> {
        PhoneKind::ALL
            .into_iter()
            .flat_map(move |k| self.phones(k).iter().map(move |p| (k, p)))
    }

    /// The value of the `uid` RDN under which the entry is served (`uid=<uid>,<base_dn>`).
    ///
    /// It must be unique across connectors (two connectors may read the same directory) and
    /// safe inside a DN without escaping, so ids that are not plain tokens (DNs, say) are
    /// replaced by a stable hash of themselves.
    pub fn uid(&self) -> String {
        let plain = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if plain {
            format!("{}.{}", self.connector, self.id)
        } else {
            format!("{}.{:016x}", self.connector, fnv1a64(self.id.as_bytes()))
        }
    }
}

/// A DN in the form used to compare DNs: lower-cased, without the spaces RFC 4514 allows
/// around `,` and `=`.
pub fn normalise_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| match rdn.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim(), v.trim()),
            None => rdn.trim().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// FNV-1a: stable across Rust versions and platforms, unlike `std`'s hashers.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_keeps_plain_ids_and_hashes_dns() {
        let plain = Entry::new("corp", "3f2a-11ee", "A");
        assert_eq!(plain.uid(), "corp.3f2a-11ee");
        let dn = Entry::new("corp", "uid=jdoe,ou=people,dc=example,dc=com", "A");
        let uid = dn.uid();
        assert!(
            uid.starts_with("corp.") && uid.len() == "corp.".len() + 16,
            "{uid}"
        );
        assert_eq!(uid, dn.uid(), "stable");
        let other = Entry::new("corp", "uid=jdoe2,ou=people,dc=example,dc=com", "A");
        assert_ne!(uid, other.uid());
    }
}
