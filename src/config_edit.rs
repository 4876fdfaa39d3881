//! Editing connector profiles in the configuration file, as the admin page does: one
//! `[[connector]]` table is created, replaced or removed, and everything else in the file —
//! comments, order, other sections — stays exactly as the administrator wrote it.
//!
//! The edited text is validated by [`Config::parse`], the same check `check-config` runs,
//! before it may be written; writing is atomic (temp file + rename) and keeps the previous
//! file beside it as `<file>.bak`.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use crate::config::{Config, ConfigError};

/// A connector profile as the admin page edits it. `None` removes an optional key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub comment: Option<String>,
    pub uri: String,
    pub base_dn: Option<String>,
    pub bind_dn: Option<String>,
    /// A new password; `None` keeps whatever secret the file has (inline, env or file).
    pub password: Option<String>,
    pub filter: Option<String>,
    pub mode: Option<String>,
    /// An interval (`15m`) or a cron expression (`0 */15 * * * *`).
    pub schedule: Option<String>,
    pub prefilter: Vec<RuleSpec>,
    /// Field name → template; fields left out keep their defaults.
    pub fields: Vec<(String, String)>,
}

/// A pre-filter rule: one test on an attribute, or a group of which one must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSpec {
    Matches { attribute: String, regex: String },
    NotMatches { attribute: String, regex: String },
    Present { attribute: String, present: bool },
    Any(Vec<RuleSpec>),
}

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the configuration file is not valid TOML: {0}")]
    Syntax(String),
    #[error("no connector named \"{0}\"")]
    NotFound(String),
    #[error("a connector named \"{0}\" exists already")]
    Exists(String),
    /// The edited file would not pass `check-config`.
    #[error("the edited configuration is invalid")]
    Invalid(Vec<ConfigError>),
}

/// `text` — the configuration file at `config_path` — with the connector `original` (or a new
/// one, when `None`) set to `profile`.
///
/// A stored secret is only kept for the upstream it was given for: when the edit points the
/// profile at another scheme, host or port, or binds as another DN, the password must be
/// entered again (refused on the `password` field otherwise). Without that, one edit or
/// preview against a listener of someone else's would send them the stored password.
pub fn upsert(
    text: &str,
    original: Option<&str>,
    profile: &Profile,
    config_path: &Path,
) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Syntax(e.to_string()))?;
    let connectors = connectors(&mut doc)?;
    let find =
        |c: &ArrayOfTables, name: &str| (0..c.len()).find(|i| name_of(c.get(*i)) == Some(name));
    if original != Some(profile.name.as_str()) && find(connectors, &profile.name).is_some() {
        return Err(EditError::Exists(profile.name.clone()));
    }
    let index = match original {
        Some(name) => find(connectors, name).ok_or_else(|| EditError::NotFound(name.to_owned()))?,
        None => {
            connectors.push(Table::new());
            connectors.len() - 1
        }
    };
    let table = connectors
        .get_mut(index)
        .ok_or_else(|| EditError::NotFound(profile.name.clone()))?;
    let password_again = (original.is_some() && keeps_secret_for_another_upstream(table, profile))
        .then(|| ConfigError {
            path: format!("connector[{index}].password"),
            message: "the upstream or bind DN changed: enter the password again (a stored password is only sent to the server it was given for)".into(),
        });
    write_profile(table, profile);
    let edited = doc.to_string();
    // Every problem at once: the page shows each next to its field.
    match (Config::parse_for(&edited, config_path), password_again) {
        (Ok(_), None) => Ok(edited),
        (Ok(_), Some(e)) => Err(EditError::Invalid(vec![e])),
        (Err(mut errors), e) => {
            errors.extend(e);
            Err(EditError::Invalid(errors))
        }
    }
}

/// Whether writing `p` over `table` would keep a stored secret (inline, env or file) while
/// the scheme, host, port or bind DN it was given for changes.
fn keeps_secret_for_another_upstream(table: &Table, p: &Profile) -> bool {
    let has_secret = ["password", "password_env", "password_file"]
        .iter()
        .any(|k| table.contains_key(k));
    let new_password = p.password.as_deref().is_some_and(|pw| !pw.is_empty());
    if !has_secret || new_password {
        return false;
    }
    let old_uri = table.get("uri").and_then(Item::as_str).unwrap_or("");
    let old_dn = table.get("bind_dn").and_then(Item::as_str).unwrap_or("");
    let new_dn = p.bind_dn.as_deref().unwrap_or("");
    let unbinds = new_dn.trim().is_empty(); // no bind DN: the secret is dropped anyway
    !unbinds
        && (endpoint(old_uri) != endpoint(&p.uri)
            || crate::model::normalise_dn(old_dn) != crate::model::normalise_dn(new_dn))
}

/// `(scheme, host, port)` of an `ldap://` / `ldaps://` URI, compared case-insensitively with
/// the default ports filled in; anything else is its own lower-cased text.
fn endpoint(uri: &str) -> (String, String, String) {
    let lower = uri.trim().to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return (lower, String::new(), String::new());
    };
    let hostport = rest.split(['/', '?']).next().unwrap_or("");
    let (host, port) = match hostport.rsplit_once(':') {
        // An IPv6 literal's colons are inside brackets.
        Some((h, p)) if !p.contains(']') => (h.to_owned(), p.to_owned()),
        _ => (hostport.to_owned(), String::new()),
    };
    let port = match (port.as_str(), scheme) {
        ("", "ldaps") => "636".to_owned(),
        ("", _) => "389".to_owned(),
        _ => port,
    };
    (scheme.to_owned(), host, port)
}

/// `text` — the file at `config_path` — without the connector `name`.
pub fn delete(text: &str, name: &str, config_path: &Path) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Syntax(e.to_string()))?;
    let connectors = connectors(&mut doc)?;
    let index = (0..connectors.len())
        .find(|i| name_of(connectors.get(*i)) == Some(name))
        .ok_or_else(|| EditError::NotFound(name.to_owned()))?;
    connectors.remove(index);
    let edited = doc.to_string();
    Config::parse_for(&edited, config_path).map_err(EditError::Invalid)?;
    Ok(edited)
}

/// The index of connector `name` in `text`, for matching `connector[i].…` error paths.
pub fn connector_index(text: &str, name: &str) -> Option<usize> {
    let doc: DocumentMut = text.parse().ok()?;
    let connectors = doc.get("connector")?.as_array_of_tables()?;
    for (i, table) in connectors.iter().enumerate() {
        if table.get("name").and_then(Item::as_str) == Some(name) {
            return Some(i);
        }
    }
    None
}

fn connectors(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, EditError> {
    let item = doc
        .entry("connector")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    item.as_array_of_tables_mut().ok_or_else(|| {
        EditError::Syntax("`connector` must be an array of tables ([[connector]])".into())
    })
}

fn name_of(table: Option<&Table>) -> Option<&str> {
    table?.get("name")?.as_str()
}

fn set(table: &mut Table, key: &str, v: Option<&str>) {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => {
            // Replacing the value keeps the key's place and its comments.
            match table.get_mut(key).and_then(Item::as_value_mut) {
                Some(existing) => {
                    let decor = existing.decor().clone();
                    *existing = Value::from(v);
                    *existing.decor_mut() = decor;
                }
                None => {
                    table.insert(key, value(v));
                }
            }
        }
        None => {
            table.remove(key);
        }
    }
}

fn write_profile(table: &mut Table, p: &Profile) {
    set(table, "name", Some(&p.name));
    set(table, "comment", p.comment.as_deref());
    set(table, "uri", Some(&p.uri));
    set(table, "base_dn", p.base_dn.as_deref());
    set(table, "bind_dn", p.bind_dn.as_deref());
    if p.bind_dn.as_deref().is_none_or(|d| d.trim().is_empty()) {
        for key in ["password", "password_env", "password_file"] {
            table.remove(key);
        }
    } else if let Some(password) = p.password.as_deref().filter(|pw| !pw.is_empty()) {
        table.remove("password_env");
        table.remove("password_file");
        set(table, "password", Some(password));
    }
    set(table, "filter", p.filter.as_deref());
    set(table, "mode", p.mode.as_deref());
    let schedule = p
        .schedule
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let is_cron = schedule.is_some_and(|s| s.split_whitespace().count() > 1);
    set(table, "schedule", schedule.filter(|_| !is_cron));
    set(table, "cron", schedule.filter(|_| is_cron));
    if !is_cron {
        // A time zone only goes with a cron expression.
        table.remove("timezone");
    }

    if p.prefilter.is_empty() {
        table.remove("prefilter");
    } else {
        let mut rules = ArrayOfTables::new();
        for rule in &p.prefilter {
            rules.push(rule_table(rule));
        }
        table.insert("prefilter", Item::ArrayOfTables(rules));
    }
    if p.fields.is_empty() {
        table.remove("fields");
    } else {
        let mut fields = Table::new();
        for (field, template) in &p.fields {
            fields.insert(field, value(template.as_str()));
        }
        table.insert("fields", Item::Table(fields));
    }
}

fn rule_table(rule: &RuleSpec) -> Table {
    let mut t = Table::new();
    for (k, v) in rule_pairs(rule) {
        t.insert(&k, Item::Value(v));
    }
    t
}

fn rule_pairs(rule: &RuleSpec) -> Vec<(String, Value)> {
    match rule {
        RuleSpec::Matches { attribute, regex } => {
            vec![
                ("attribute".into(), attribute.as_str().into()),
                ("matches".into(), regex.as_str().into()),
            ]
        }
        RuleSpec::NotMatches { attribute, regex } => {
            vec![
                ("attribute".into(), attribute.as_str().into()),
                ("not_matches".into(), regex.as_str().into()),
            ]
        }
        RuleSpec::Present { attribute, present } => {
            vec![
                ("attribute".into(), attribute.as_str().into()),
                ("present".into(), (*present).into()),
            ]
        }
        RuleSpec::Any(rules) => {
            let mut group = Array::new();
            for r in rules {
                let mut inline = InlineTable::new();
                for (k, v) in rule_pairs(r) {
                    inline.insert(&k, v);
                }
                group.push(inline);
            }
            vec![("any".into(), Value::Array(group))]
        }
    }
}

/// Replaces `path` with `text` atomically, keeping the previous file as `<path>.bak`. The new
/// file keeps the old one's mode and owner (a 0600 file holding passwords stays 0600); it is
/// created 0600 and only then given that mode, so it is never readable by others meanwhile.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let before = std::fs::metadata(path).ok();
    // A file that holds a password in clear is readable by its owner only.
    let mode = before.as_ref().map(|b| b.mode() & 0o7777).map(|m| {
        if holds_inline_secret(text) {
            m & !0o077
        } else {
            m
        }
    });
    if path.exists() {
        // Copied beside it first: a failed copy (a full disk) must not leave an empty backup
        // in place of the last good one.
        let partial = dir.join(format!(".{name}.bak.tmp"));
        let copied = std::fs::copy(path, &partial)
            .and_then(|_| std::fs::rename(&partial, dir.join(format!("{name}.bak"))));
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    }
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let written = write_new(&tmp, text, before.as_ref(), mode);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `tmp` (0600 until it has the final owner and mode) holding `text`, synced.
fn write_new(
    tmp: &Path,
    text: &str,
    before: Option<&std::fs::Metadata>,
    mode: Option<u32>,
) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    if let Some(before) = before {
        let now = file.metadata()?;
        if (before.uid(), before.gid()) != (now.uid(), now.gid()) {
            std::os::unix::fs::fchown(&file, Some(before.uid()), Some(before.gid()))?;
        }
    }
    if let Some(mode) = mode {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Whether some table of the file has an inline `password` (not `password_env`/`_file`).
fn holds_inline_secret(text: &str) -> bool {
    fn walk(table: &Table) -> bool {
        table.iter().any(|(k, item)| {
            (k == "password" && item.is_value())
                || item.as_table().is_some_and(walk)
                || item
                    .as_array_of_tables()
                    .is_some_and(|a| a.iter().any(walk))
        })
    }
    text.parse::<DocumentMut>()
        .map_or(true, |doc| walk(doc.as_table()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# The phone book proxy.
[store]
path = "data/db"   # keep this comment

# Head office
[[connector]]
name = "corp"
uri = "ldap://dc1.example.com" # the DC
base_dn = "ou=people,dc=example,dc=com"
bind_dn = "cn=proxy,dc=example,dc=com"
password_env = "CORP_PW"
starttls = true

# Branch
[[connector]]
name = "branch"
uri = "ldap://dc2.example.com"
base_dn = "ou=people,dc=example,dc=com"
"#;

    fn profile(name: &str) -> Profile {
        Profile {
            name: name.into(),
            uri: "ldap://dc9.example.com".into(),
            base_dn: Some("ou=staff,dc=example,dc=com".into()),
            filter: Some("(objectClass=person)".into()),
            schedule: Some("0 */15 * * * *".into()),
            prefilter: vec![
                RuleSpec::Matches {
                    attribute: "memberOf".into(),
                    regex: "(?i)^cn=phonebook,".into(),
                },
                RuleSpec::Any(vec![
                    RuleSpec::Present {
                        attribute: "mobile".into(),
                        present: true,
                    },
                    RuleSpec::Present {
                        attribute: "telephoneNumber".into(),
                        present: true,
                    },
                ]),
            ],
            fields: vec![("display_name".into(), "{givenName} {sn}".into())],
            ..Profile::default()
        }
    }

    const P_TEXT: &str = "phonebook.toml";

    fn env_set() {
        std::env::set_var("CORP_PW", "x");
    }

    #[test]
    fn creating_appends_a_valid_connector_and_keeps_comments() {
        env_set();
        let edited = upsert(FILE, None, &profile("hr"), Path::new(P_TEXT)).unwrap();
        assert!(
            edited.starts_with(FILE.trim_end()),
            "untouched parts stay byte for byte:\n{edited}"
        );
        let config = Config::parse(&edited).unwrap();
        let hr = config.connector("hr").unwrap();
        assert_eq!(hr.base_dn, "ou=staff,dc=example,dc=com");
        assert!(matches!(
            hr.schedule,
            Some(crate::config::Schedule::Cron(_))
        ));
        assert_eq!(hr.prefilter.rules.len(), 2);
        assert_eq!(
            upsert(&edited, None, &profile("hr"), Path::new(P_TEXT)),
            Err(EditError::Exists("hr".into()))
        );
    }

    #[test]
    fn updating_replaces_values_in_place_and_keeps_unmanaged_keys_and_secrets() {
        env_set();
        let mut p = profile("corp");
        p.bind_dn = Some("cn=proxy,dc=example,dc=com".into());
        p.schedule = Some("15m".into());
        p.uri = "LDAP://DC1.example.com:389".into();
        let edited = upsert(FILE, Some("corp"), &p, Path::new(P_TEXT)).unwrap();
        assert!(
            edited.contains("uri = \"LDAP://DC1.example.com:389\" # the DC"),
            "{edited}"
        );
        assert!(
            edited.contains("password_env = \"CORP_PW\""),
            "no new password: the old secret stays"
        );
        assert!(
            edited.contains("starttls = true"),
            "keys the page does not manage stay"
        );
        assert!(edited.contains("path = \"data/db\"   # keep this comment"));
        assert!(
            edited.find("name = \"corp\"") < edited.find("name = \"branch\""),
            "order kept"
        );

        p.password = Some("n3w".into());
        let edited = upsert(&edited, Some("corp"), &p, Path::new(P_TEXT)).unwrap();
        assert!(
            edited.contains("password = \"n3w\"") && !edited.contains("password_env"),
            "{edited}"
        );
    }

    #[test]
    fn a_stored_secret_is_never_kept_for_another_upstream() {
        env_set();
        let mut p = profile("corp");
        p.bind_dn = Some("cn=proxy,dc=example,dc=com".into());
        for (uri, dn) in [
            ("ldap://evil.example.net", "cn=proxy,dc=example,dc=com"),
            ("ldap://[::1]", "cn=proxy,dc=example,dc=com"),
            ("ldap://dc1.example.com:3389", "cn=proxy,dc=example,dc=com"),
            ("ldap://dc1.example.com", "cn=admin,dc=example,dc=com"),
        ] {
            p.uri = uri.into();
            p.bind_dn = Some(dn.into());
            let Err(EditError::Invalid(errors)) = upsert(FILE, Some("corp"), &p, Path::new(P_TEXT))
            else {
                panic!("{uri} as {dn}: the stored password must not follow")
            };
            assert_eq!(errors[0].path, "connector[0].password");
            p.password = Some("typed-again".into());
            assert!(
                upsert(FILE, Some("corp"), &p, Path::new(P_TEXT)).is_ok(),
                "{uri}"
            );
            p.password = None;
        }
    }

    #[test]
    fn renaming_and_deleting() {
        env_set();
        let edited = upsert(
            FILE,
            Some("branch"),
            &profile("branch-2"),
            Path::new(P_TEXT),
        )
        .unwrap();
        assert_eq!(connector_index(&edited, "branch-2"), Some(1));
        assert_eq!(
            upsert(FILE, Some("branch"), &profile("corp"), Path::new(P_TEXT)),
            Err(EditError::Exists("corp".into()))
        );
        let gone = delete(FILE, "branch", Path::new(P_TEXT)).unwrap();
        assert!(gone.contains("name = \"corp\"") && !gone.contains("branch"));
        assert_eq!(
            delete(FILE, "nope", Path::new(P_TEXT)),
            Err(EditError::NotFound("nope".into()))
        );
        assert_eq!(
            upsert(FILE, Some("nope"), &profile("x"), Path::new(P_TEXT)),
            Err(EditError::NotFound("nope".into()))
        );
    }

    #[test]
    fn an_invalid_profile_is_refused_with_the_check_config_errors() {
        env_set();
        let mut p = profile("hr");
        p.filter = Some("(cn=".into());
        p.prefilter = vec![RuleSpec::Matches {
            attribute: "memberOf".into(),
            regex: "(".into(),
        }];
        let Err(EditError::Invalid(errors)) = upsert(FILE, None, &p, Path::new(P_TEXT)) else {
            panic!("must be refused")
        };
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"connector[2].filter"), "{paths:?}");
        assert!(
            paths.contains(&"connector[2].prefilter[0].matches"),
            "{paths:?}"
        );
    }

    #[test]
    fn writing_is_atomic_and_keeps_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phonebook.toml");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("phonebook.toml.bak")).unwrap(),
            "old"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, "# newer\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o640, "the file keeps its mode");
        // Once it holds a password in clear, only its owner may read it.
        write_atomically(&path, "[[connector]]\nname = \"x\"\npassword = \"pw\"\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "an inline password makes it private");
        assert!(!dir.path().join(".phonebook.toml.tmp").exists());
        assert!(!dir.path().join(".phonebook.toml.bak.tmp").exists());
    }
}
