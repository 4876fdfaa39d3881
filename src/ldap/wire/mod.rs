//! LDAP on the wire: [`codec`] frames messages (and refuses what is not LDAP before it is
//! buffered), [`decode`] reads plain search requests without ldap3_proto's BER tree,
//! [`encode`] writes search results from the snapshot's pre-encoded values. BER itself —
//! tags, lengths, integers — is [`crate::ber`]; the semantics are in [`super::session`].

pub mod codec;
pub mod decode;
pub mod encode;
