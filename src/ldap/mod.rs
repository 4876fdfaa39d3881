//! The LDAP endpoint for phones. A request flows `wire::codec` (framing, the fast
//! [`wire::decode`] of searches) → [`session`] (the protocol semantics, no socket, no BER:
//! binds, searches, [`paging`], [`sort`], [`controls`], [`selection`] of attributes) →
//! [`response`] (plain parts; the one place results are built) → [`wire::encode`] (BER). The
//! [`server`] holds the listeners, limits and the TLS upgrade ([`tls`]: certificates).

pub mod controls;
pub mod paging;
pub mod response;
pub mod selection;
pub mod server;
pub mod session;
pub mod sort;
pub mod tls;
pub mod wire;
