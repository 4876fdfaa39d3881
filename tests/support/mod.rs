//! Test support shared by the integration tests (`mod support;`) and the benches
//! (`#[path = "../tests/support/mod.rs"] mod support;`).
//!
//! * [`slapd`]: a throwaway OpenLDAP slapd upstream (needs the Debian `slapd` and
//!   `ldap-utils` packages).
//! * [`gen`]: deterministic synthetic people (LDIF or in-memory).
//! * [`cli`]: the real binary in a scratch working directory; [`server`]: its `serve`.
//! * [`certs`]: a test CA and a server certificate for 127.0.0.1.
//! * [`ber`]: hand-written LDAP messages and replies on raw sockets.
//! * [`curl`]: HTTP requests with the real `curl`, answers read back exactly.

// Each test binary uses only a part of this module.
#![allow(dead_code)]

pub mod ber;
pub mod certs;
pub mod cli;
pub mod curl;
pub mod gen;
pub mod server;
pub mod slapd;
