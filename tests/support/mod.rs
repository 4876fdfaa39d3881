//! Test support shared by the integration tests (`mod support;`) and the benches
//! (`#[path = "../tests/support/mod.rs"] mod support;`).
//!
//! * [`slapd`]: a throwaway OpenLDAP slapd upstream (needs the Debian `slapd` and
//!   `ldap-utils` packages).
//! * [`gen`]: deterministic synthetic people (LDIF or in-memory).

// Each test binary uses only a part of this module.
#![allow(dead_code)]

pub mod cli;
pub mod gen;
pub mod slapd;
