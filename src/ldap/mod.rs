//! The LDAP endpoint for phones: [`session`] holds the protocol semantics (no socket),
//! [`server`] the listeners, TLS, framing and limits.

pub mod session;
