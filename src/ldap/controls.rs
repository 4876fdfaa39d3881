//! The controls this server knows (RFC 2696 paged results, RFC 2891 server-side sort) and
//! the rule for the ones it does not: a critical control it cannot honour means the
//! operation is not performed (RFC 4511 §4.1.11).

use ldap3_proto::control::LdapControl;

pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
pub const OID_SERVER_SORT: &str = "1.2.840.113556.1.4.473";
pub const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
pub const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";

/// Which controls of a request were marked critical on the wire, for the controls whose
/// ldap3_proto type has no criticality field (paged results, server-side sort). The codec
/// reads them from the bytes; [`Session::respond`](super::session::Session::respond) assumes
/// neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Critical {
    pub paged: bool,
    pub sort: bool,
}

/// The OID of a control marked critical that this server does not implement.
pub(crate) fn critical_unsupported(controls: &[LdapControl]) -> Option<String> {
    controls.iter().find_map(|c| match c {
        LdapControl::Unknown {
            oid,
            criticality: true,
            ..
        } => Some(oid.clone()),
        LdapControl::SyncRequest {
            criticality: true, ..
        } => Some("1.3.6.1.4.1.4203.1.9.1.1".into()),
        LdapControl::PasswordPolicyRequest { criticality: true } => {
            Some("1.3.6.1.4.1.42.2.27.8.5.1".into())
        }
        LdapControl::SearchOptions {
            criticality: true, ..
        } => Some("1.2.840.113556.1.4.1340".into()),
        LdapControl::ShowDeleted { criticality: true } => Some("1.2.840.113556.1.4.417".into()),
        LdapControl::SdFlags {
            criticality: true, ..
        } => Some("1.2.840.113556.1.4.801".into()),
        LdapControl::ExtendedDn {
            criticality: true, ..
        } => Some("1.2.840.113556.1.4.529".into()),
        _ => None,
    })
}
