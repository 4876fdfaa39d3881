//! phonebook-proxy: keeps a company phone book in sync with upstream LDAP directories and
//! serves it to IP phones and the PBX.
//!
//! Data flows one way: [`sync`] pulls (source → pre-filter → mapping → plan) and applies to
//! the [`store`]; the endpoints read what the store holds. See ARCHITECTURE.md for the map and
//! the invariants.
//!
//! Nothing a client, an upstream or a configuration file controls may panic this crate.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod ber;
pub mod config;
pub mod config_edit;
pub mod directory;
pub mod export;
pub mod filter;
pub mod http;
pub mod ldap;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod numbers;
pub mod per_client;
pub mod report;
pub mod runs;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod store;
pub mod sync;
