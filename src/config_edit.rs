//! Editing connector profiles in the configuration file, as the admin page does: one
//! `[[connector]]` table is created, replaced or removed, and everything else in the file —
//! comments, order, other sections — stays exactly as the administrator wrote it.
//!
//! The edited text is validated by [`Config::parse_for`], the same check `check-config` runs,
//! before it may be written; writing is atomic (temp file + rename) and keeps the previous
//! file beside it as `<file>.bak`.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use std::collections::BTreeMap;

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use crate::config::{Config, ConfigError};
use crate::sync::mapping::FieldMap;
use crate::sync::profile::{Profile, RuleJson, RuleSpec};

/// A file that is not TOML, named by position only (its line may hold a password).
fn syntax(text: &str, e: &toml_edit::TomlError) -> EditError {
    EditError::Syntax(crate::config::syntax_error(text, e.message(), e.span()))
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
/// profile at another scheme, host or port, binds as another DN, or weakens the TLS that
/// protects it, the password must be entered again (refused on the `password` field
/// otherwise). Without that, one edit or
/// preview against a listener of someone else's would send them the stored password.
pub fn upsert(
    text: &str,
    original: Option<&str>,
    profile: &Profile,
    config_path: &Path,
) -> Result<String, EditError> {
    let profile = &Profile {
        name: profile.name.trim().to_owned(),
        uri: profile.uri.trim().to_owned(),
        ..profile.clone()
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| syntax(text, &e))?;
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
            message: "the upstream, the bind DN or its TLS settings changed: enter the password again (a stored password is only sent to the server, and over the connection security, it was entered for)".into(),
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
    let old = read_profile(table);
    let new_password = p.password.as_deref().is_some_and(|pw| !pw.is_empty());
    if !old.has_password || new_password {
        return false;
    }
    let dn = |p: &Profile| crate::model::normalise_dn(p.bind_dn.as_deref().unwrap_or(""));
    let ca = |p: &Profile| {
        p.ca_file
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
    };
    let unbinds = dn(p).is_empty(); // no bind DN: the secret is dropped anyway
                                    // How the password travels counts as much as where: once it went over TLS, an edit that
                                    // drops StartTLS, stops checking the certificate or trusts another CA must not take the
                                    // stored secret along. (ldaps:// to ldap:// is another endpoint, caught below.)
    let old_tls = endpoint(&old.uri).0 == "ldaps" || old.starttls;
    let weaker_transport = old_tls
        && ((old.starttls && !p.starttls)
            || (!old.tls_insecure && p.tls_insecure)
            || ca(&old) != ca(p));
    !unbinds && (endpoint(&old.uri) != endpoint(&p.uri) || dn(&old) != dn(p) || weaker_transport)
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
        .map_err(|e: toml_edit::TomlError| syntax(text, &e))?;
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
    let mut doc: DocumentMut = text.parse().ok()?;
    let connectors = connectors(&mut doc).ok()?;
    (0..connectors.len()).find(|i| name_of(connectors.get(*i)) == Some(name))
}

/// The file's connectors as `[[connector]]` tables; a file that wrote them as an inline
/// array (`connector = [{ … }]`) gets them as tables from the first edit on.
fn connectors(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, EditError> {
    let item = doc
        .entry("connector")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    if item.is_array() {
        *item = match std::mem::take(item).into_array_of_tables() {
            Ok(tables) => Item::ArrayOfTables(tables),
            Err(kept) => kept,
        };
    }
    item.as_array_of_tables_mut().ok_or_else(|| {
        EditError::Syntax("`connector` must be an array of tables ([[connector]])".into())
    })
}

fn name_of(table: Option<&Table>) -> Option<&str> {
    table?.get("name")?.as_str()
}

/// Sets `key` to `v`, or removes it for `None`. Replacing a value keeps the key's place and
/// the comments around it.
fn put(table: &mut dyn toml_edit::TableLike, key: &str, v: Option<Value>) {
    match v {
        Some(v) => match table.get_mut(key).and_then(Item::as_value_mut) {
            Some(existing) => {
                let decor = existing.decor().clone();
                *existing = v;
                *existing.decor_mut() = decor;
            }
            None => {
                table.insert(key, Item::Value(v));
            }
        },
        None => {
            table.remove(key);
        }
    }
}

/// A text key; empty (after trimming) leaves it out.
fn set(table: &mut Table, key: &str, v: Option<&str>) {
    let v = v.map(str::trim).filter(|v| !v.is_empty());
    put(table, key, v.map(Value::from));
}

/// A switch that is off by default: only `true` is written.
fn set_flag(table: &mut Table, key: &str, on: bool) {
    put(table, key, on.then(|| Value::from(true)));
}

fn write_profile(table: &mut Table, p: &Profile) {
    // A key is written only when its value changed: an unchanged one keeps its exact text
    // (`max_removals = "25"` stays a string, `schedule` stays where the file put it).
    let before = read_profile(table);
    let trimmed = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let text_keys: [(&str, &Option<String>, &Option<String>); 9] = [
        ("comment", &p.comment, &before.comment),
        ("base_dn", &p.base_dn, &before.base_dn),
        ("bind_dn", &p.bind_dn, &before.bind_dn),
        ("filter", &p.filter, &before.filter),
        ("mode", &p.mode, &before.mode),
        // A time zone only goes with cron; the check says so when it is given anyway.
        ("timezone", &p.timezone, &before.timezone),
        ("id_attribute", &p.id_attribute, &before.id_attribute),
        ("timeout", &p.timeout, &before.timeout),
        ("ca_file", &p.ca_file, &before.ca_file),
    ];
    if p.name.trim() != before.name.trim() {
        set(table, "name", Some(&p.name));
    }
    if p.uri.trim() != before.uri.trim() {
        set(table, "uri", Some(&p.uri));
    }
    for (key, new, old) in text_keys {
        if trimmed(new) != trimmed(old) {
            set(table, key, new.as_deref());
        }
    }
    if p.bind_dn.as_deref().is_none_or(|d| d.trim().is_empty()) {
        for key in ["password", "password_env", "password_file"] {
            table.remove(key);
        }
    } else if let Some(password) = p.password.as_deref().filter(|pw| !pw.is_empty()) {
        table.remove("password_env");
        table.remove("password_file");
        put(table, "password", Some(Value::from(password)));
    }
    let schedule = trimmed(&p.schedule);
    if schedule != trimmed(&before.schedule) {
        // What reads as an interval (`15m`, `1h 30m`) is one; anything else is cron.
        let is_interval = schedule
            .as_deref()
            .is_some_and(|s| crate::config::parse_duration(s).is_ok());
        let schedule = schedule.as_deref();
        set(table, "schedule", schedule.filter(|_| is_interval));
        set(table, "cron", schedule.filter(|_| !is_interval));
    }
    if p.page_size != before.page_size {
        put(
            table,
            "page_size",
            p.page_size.map(|n| Value::from(i64::from(n))),
        );
    }
    let max_removals = trimmed(&p.max_removals);
    if max_removals != trimmed(&before.max_removals) {
        // A plain count is written as a TOML integer, a percentage as text, as the README shows.
        put(
            table,
            "max_removals",
            max_removals.map(|m| match m.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::from(m),
            }),
        );
    }
    if p.starttls != before.starttls || p.tls_insecure != before.tls_insecure {
        set_flag(table, "starttls", p.starttls);
        set_flag(table, "tls_insecure", p.tls_insecure);
    }

    // Unchanged rules and fields stay as written, comments and layout included.
    if p.prefilter != before.prefilter {
        if p.prefilter.is_empty() {
            table.remove("prefilter");
        } else {
            let mut rules = ArrayOfTables::new();
            for rule in &p.prefilter {
                rules.push(rule_table(rule));
            }
            table.insert("prefilter", Item::ArrayOfTables(rules));
        }
    }
    // Only what differs from the default mapping goes into the file: the page shows every
    // field, and a file full of defaults hides the one line that matters.
    let defaults = FieldMap::default();
    let differs = |(field, template): &(&String, &String)| {
        defaults.get(field).map(|d| d.text()) != Some(template.trim())
    };
    let changed: BTreeMap<&String, &String> = p.fields.iter().filter(differs).collect();
    let was: BTreeMap<&String, &String> = before.fields.iter().filter(differs).collect();
    if changed != was {
        if changed.is_empty() {
            table.remove("fields");
        } else {
            if !table.get("fields").is_some_and(Item::is_table_like) {
                table.insert("fields", Item::Table(Table::new()));
            }
            if let Some(fields) = table.get_mut("fields").and_then(Item::as_table_like_mut) {
                let stale: Vec<String> = fields
                    .iter()
                    .map(|(k, _)| k.to_owned())
                    .filter(|k| !changed.keys().any(|c| c.as_str() == k))
                    .collect();
                for k in stale {
                    fields.remove(&k);
                }
                for (field, template) in changed {
                    put(fields, field, Some(Value::from(template.as_str())));
                }
            }
        }
    }
}

/// Every connector profile of `text` as the file writes it: attribute names in their own
/// case, durations and schedules as written, every mapping field (its default when the file
/// names none), whether a password is stored — never the password.
pub fn profiles(text: &str) -> Result<Vec<Profile>, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| syntax(text, &e))?;
    Ok(connectors(&mut doc)?.iter().map(read_profile).collect())
}

fn read_profile(t: &Table) -> Profile {
    let text = |k: &str| t.get(k).and_then(Item::as_str).map(str::to_owned);
    let flag = |k: &str| t.get(k).and_then(Item::as_bool).unwrap_or(false);
    let defaults = FieldMap::default();
    let written = t.get("fields").and_then(Item::as_table_like);
    let fields = crate::sync::mapping::TEXT_FIELDS
        .iter()
        .copied()
        .chain(crate::sync::mapping::PHONE_FIELDS.iter().map(|(n, _)| *n))
        .map(|f| {
            let template = written
                .and_then(|w| w.get(f))
                .and_then(Item::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    defaults
                        .get(f)
                        .map(|d| d.text().to_owned())
                        .unwrap_or_default()
                });
            (f.to_owned(), template)
        })
        .collect();
    let prefilter = t.get("prefilter").map(read_rules).unwrap_or_default();
    Profile {
        name: text("name").unwrap_or_default(),
        comment: text("comment"),
        uri: text("uri").unwrap_or_default(),
        base_dn: text("base_dn"),
        bind_dn: text("bind_dn"),
        password: None,
        has_password: ["password", "password_env", "password_file"]
            .iter()
            .any(|k| t.contains_key(k)),
        password_env: text("password_env"),
        password_file: text("password_file"),
        filter: text("filter"),
        mode: text("mode"),
        schedule: text("schedule").or_else(|| text("cron")),
        timezone: text("timezone"),
        id_attribute: text("id_attribute"),
        page_size: t
            .get("page_size")
            .and_then(Item::as_integer)
            .and_then(|n| u32::try_from(n).ok()),
        max_removals: t.get("max_removals").and_then(|m| match m.as_value()? {
            Value::Integer(n) => Some(n.value().to_string()),
            Value::String(s) => Some(s.value().clone()),
            _ => None,
        }),
        timeout: text("timeout"),
        ca_file: text("ca_file"),
        starttls: flag("starttls"),
        tls_insecure: flag("tls_insecure"),
        prefilter,
        fields,
    }
}

/// The rules of `[[connector.prefilter]]` tables or of an array of inline tables.
fn read_rules(item: &Item) -> Vec<RuleSpec> {
    match item {
        Item::ArrayOfTables(rules) => rules.iter().map(|r| read_rule(r).into()).collect(),
        Item::Value(Value::Array(rules)) => rules
            .iter()
            .filter_map(Value::as_inline_table)
            .map(|r| read_rule(r).into())
            .collect(),
        _ => Vec::new(),
    }
}

/// One pre-filter rule of the file, from a `[[connector.prefilter]]` table or an inline
/// table of an `any` group, read like the JSON form.
fn read_rule(t: &dyn toml_edit::TableLike) -> RuleJson {
    let text = |k: &str| t.get(k).and_then(Item::as_str).map(str::to_owned);
    RuleJson {
        attribute: text("attribute"),
        matches: text("matches"),
        not_matches: text("not_matches"),
        present: t.get("present").and_then(Item::as_bool),
        any: t
            .get("any")
            .map(read_rules)
            .unwrap_or_default()
            .into_iter()
            .map(RuleJson::from)
            .collect(),
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
mod tests;
