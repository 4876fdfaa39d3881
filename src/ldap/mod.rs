//! The LDAP endpoint for phones: [`session`] holds the protocol semantics (no socket),
//! [`server`] the listeners, framing, limits and TLS upgrade, [`codec`] the message framing,
//! [`decode`] the fast path for search requests, [`encode`] the answers on the wire,
//! [`sort`] server-side sorting, [`tls`] the certificate loading.

pub mod codec;
pub mod decode;
pub mod encode;
pub mod server;
pub mod session;
pub mod sort;
pub mod tls;
