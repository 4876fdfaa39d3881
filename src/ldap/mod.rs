//! The LDAP endpoint for phones: [`session`] holds the protocol semantics (no socket),
//! [`server`] the listeners, framing, limits and TLS upgrade, [`codec`] the message framing,
//! [`tls`] the certificate loading.

pub mod codec;
pub mod server;
pub mod session;
pub mod tls;
