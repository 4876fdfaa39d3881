//! An admin API body → the profile → the edit of a configuration file → its validation:
//! the path `POST /api/v1/connectors` and `/api/v1/preview` take, minus the socket. No body
//! may panic or recurse without bound, and a refused edit must leave a reason.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use phonebook_proxy::config::Config;
use phonebook_proxy::config_edit::{self, EditError};
use phonebook_proxy::sync::profile::Profile;

/// A file with a stored secret, so the "password again" rule is exercised too.
const BASE: &str = r#"[store]
path = "data/phonebook.db"

[[connector]]
name = "corp"
uri = "ldap://127.0.0.1:389"
base_dn = "ou=people,dc=example,dc=com"
bind_dn = "cn=proxy,dc=example,dc=com"
password = "stored"
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = serde_json::from_slice::<Profile>(data) else {
        return;
    };
    let path = Path::new("phonebook.toml");
    for original in [None, Some("corp")] {
        match config_edit::upsert(BASE, original, &profile, path) {
            Ok(edited) => assert!(Config::parse_for(&edited, path).is_ok()),
            Err(EditError::Invalid(errors)) => assert!(!errors.is_empty()),
            Err(_) => {}
        }
    }
});
