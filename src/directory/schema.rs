//! The attributes the LDAP endpoint serves, and how attribute names in requests map to them.
//!
//! Only mapped phone book fields are served — never a raw upstream attribute — so this table
//! is the whole schema a phone can see.

use crate::model::{Entry, PhoneKind};

/// A text attribute of a served entry. `Cn` and `DisplayName` both hold the display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Text {
    Uid,
    Cn,
    DisplayName,
    GivenName,
    Sn,
    O,
    Ou,
    Title,
    Mail,
    Description,
}

impl Text {
    pub const COUNT: usize = 10;

    /// Every text attribute with a value of its own (`displayName` shares `cn`'s).
    pub const DISTINCT: [Text; 9] = [
        Text::Uid,
        Text::Cn,
        Text::GivenName,
        Text::Sn,
        Text::O,
        Text::Ou,
        Text::Title,
        Text::Mail,
        Text::Description,
    ];

    pub fn slot(self) -> usize {
        self as usize
    }

    /// The served value of this attribute for `e`, as written (`uid` given, as the entry
    /// computes it): the one mapping from phone book fields to LDAP attributes, used by the
    /// snapshot and the LDIF export alike.
    pub fn value<'a>(self, e: &'a Entry, uid: &'a str) -> Option<&'a str> {
        match self {
            Text::Uid => Some(uid),
            Text::Cn | Text::DisplayName => Some(&e.display_name),
            Text::GivenName => e.first_name.as_deref(),
            Text::Sn => Some(e.last_name.as_deref().unwrap_or(&e.display_name)),
            Text::O => e.company.as_deref(),
            Text::Ou => e.department.as_deref(),
            Text::Title => e.title.as_deref(),
            Text::Mail => e.email.as_deref(),
            Text::Description => e.notes.as_deref(),
        }
    }
}

/// An attribute of a served entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attr {
    ObjectClass,
    Text(Text),
    Phone(PhoneKind),
}

/// Served attributes in the order entries list them, with their canonical names.
pub const SERVED: [(&str, Attr); 17] = [
    ("objectClass", Attr::ObjectClass),
    ("uid", Attr::Text(Text::Uid)),
    ("cn", Attr::Text(Text::Cn)),
    ("displayName", Attr::Text(Text::DisplayName)),
    ("givenName", Attr::Text(Text::GivenName)),
    ("sn", Attr::Text(Text::Sn)),
    ("o", Attr::Text(Text::O)),
    ("ou", Attr::Text(Text::Ou)),
    ("title", Attr::Text(Text::Title)),
    ("mail", Attr::Text(Text::Mail)),
    ("description", Attr::Text(Text::Description)),
    ("telephoneNumber", Attr::Phone(PhoneKind::Business)),
    ("mobile", Attr::Phone(PhoneKind::Mobile)),
    ("homePhone", Attr::Phone(PhoneKind::Home)),
    ("facsimileTelephoneNumber", Attr::Phone(PhoneKind::Fax)),
    ("otherTelephone", Attr::Phone(PhoneKind::Other)),
    ("ipPhone", Attr::Phone(PhoneKind::Other)),
];

/// Object classes every entry has.
pub const OBJECT_CLASSES: [&str; 4] = ["top", "person", "organizationalPerson", "inetOrgPerson"];

/// Other names of served attributes (RFC 4519 / cosine long and short forms).
const ALIASES: [(&str, Attr); 9] = [
    ("commonname", Attr::Text(Text::Cn)),
    ("surname", Attr::Text(Text::Sn)),
    ("gn", Attr::Text(Text::GivenName)),
    ("organizationname", Attr::Text(Text::O)),
    ("organizationalunitname", Attr::Text(Text::Ou)),
    ("userid", Attr::Text(Text::Uid)),
    ("rfc822mailbox", Attr::Text(Text::Mail)),
    ("mobiletelephonenumber", Attr::Phone(PhoneKind::Mobile)),
    ("hometelephonenumber", Attr::Phone(PhoneKind::Home)),
];

/// Standard person attributes we never fill: a filter on them is simply false (as on a
/// directory whose schema knows them), while a filter on an attribute no schema knows is
/// Undefined (RFC 4511 §4.5.1.7).
const KNOWN_UNSERVED: [&str; 20] = [
    "l",
    "st",
    "street",
    "postalcode",
    "postaladdress",
    "pager",
    "employeenumber",
    "employeetype",
    "departmentnumber",
    "initials",
    "manager",
    "roomnumber",
    "jpegphoto",
    "labeleduri",
    "preferredlanguage",
    "physicaldeliveryofficename",
    "telexnumber",
    "homepostaladdress",
    "secretary",
    "seealso",
];

/// What an attribute name in a request refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Served(Attr),
    /// A standard attribute this server never fills.
    Absent,
    /// An attribute type no schema here knows.
    Unknown,
}

/// Resolves an attribute description: case-insensitive, options (`;lang-de`) ignored.
pub fn resolve(name: &str) -> Resolved {
    let base = name.split(';').next().unwrap_or(name).to_ascii_lowercase();
    if let Some((_, attr)) = SERVED
        .iter()
        .chain(ALIASES.iter())
        .find(|(n, _)| n.eq_ignore_ascii_case(&base))
    {
        return Resolved::Served(*attr);
    }
    if KNOWN_UNSERVED.contains(&base.as_str()) {
        Resolved::Absent
    } else {
        Resolved::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_case_insensitively_with_aliases_and_options() {
        assert_eq!(
            resolve("TelephoneNumber"),
            Resolved::Served(Attr::Phone(PhoneKind::Business))
        );
        assert_eq!(resolve("surName"), Resolved::Served(Attr::Text(Text::Sn)));
        assert_eq!(
            resolve("cn;lang-de"),
            Resolved::Served(Attr::Text(Text::Cn))
        );
        assert_eq!(
            resolve("ipPhone"),
            Resolved::Served(Attr::Phone(PhoneKind::Other))
        );
        assert_eq!(resolve("pager"), Resolved::Absent);
        assert_eq!(resolve("shoeSize"), Resolved::Unknown);
    }
}
