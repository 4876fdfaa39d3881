//! The configuration file: TOML in, a validated [`Config`] out.
//!
//! The file is walked by hand rather than deserialised by derive, so that *every* problem is
//! reported at once with its key path (`connector[0].prefilter[1].matches: invalid regex …`)
//! instead of only the first. Everything that can be checked before a sync runs is checked
//! here: regexes, templates, filters, durations, files and secrets.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use toml::{Table, Value};

use crate::numbers::NumberPlan;
use crate::sync::mapping::{is_attribute_name, FieldMap, FieldTemplate, PHONE_FIELDS};
use crate::sync::prefilter::{Prefilter, Rule};

/// The default configuration path, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/phonebook.toml";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    /// One line per LDAP operation and HTTP request (target `access`), off by default.
    pub access_log: bool,
    pub numbers: NumberPlan,
    pub ldap: LdapConfig,
    pub http: HttpConfig,
    pub connectors: Vec<ConnectorConfig>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The sled directory.
    pub path: PathBuf,
    /// The longest any store operation (a sync's write and flush, reading a book) may take
    /// before the sync fails: a full or hung disk must fail one sync, never freeze the server.
    pub write_timeout: Duration,
}

/// How names are compared by the LDAP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accents {
    /// `muller` finds `Müller`: phones cannot type every accent.
    Fold,
    /// RFC 4518 caseIgnore only, exactly as slapd compares.
    Exact,
}

#[derive(Debug, Clone)]
pub struct LdapConfig {
    pub listen: SocketAddr,
    pub listen_ldaps: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub starttls: bool,
    pub base_dn: String,
    pub anonymous: bool,
    pub size_limit: usize,
    pub accents: Accents,
    pub users: Vec<LdapUser>,
    /// Open connections at most; more are refused until one closes.
    pub max_connections: usize,
    /// Open connections from one client address at most, so one phone cannot starve the rest.
    pub max_connections_per_client: usize,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// The largest request accepted; a larger one closes its connection.
    pub max_pdu_size: usize,
}

/// A DN that phones may bind as.
#[derive(Debug, Clone)]
pub struct LdapUser {
    pub dn: String,
    pub password: Secret,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The bearer token `/api` requires, read from the variable `token_env` names.
    pub token: Option<Secret>,
}

/// A connector profile: one upstream and how its entries become phone book entries.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub comment: Option<String>,
    pub source: SourceUri,
    pub base_dn: String,
    pub bind: Option<Credentials>,
    pub filter: String,
    pub mode: Mode,
    pub schedule: Option<Schedule>,
    /// Page size of the paged-results control; 0 turns paging off.
    pub page_size: u32,
    /// Lower-cased; `None` means the DN is the identity.
    pub id_attribute: Option<String>,
    pub max_removals: MaxRemovals,
    pub ca_file: Option<PathBuf>,
    pub tls_insecure: bool,
    pub starttls: bool,
    pub timeout: Duration,
    pub prefilter: Prefilter,
    pub fields: FieldMap,
}

/// Where a connector reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUri {
    /// `ldap://` or `ldaps://`, kept as written (without credentials: URIs never carry them).
    Ldap(String),
    /// `file:path` — an LDIF file read through the same pipeline.
    Ldif(PathBuf),
}

impl fmt::Display for SourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceUri::Ldap(url) => f.write_str(url),
            SourceUri::Ldif(path) => write!(f, "file:{}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub dn: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Create, update, and remove what vanished upstream.
    Mirror,
    /// Create and update; never remove.
    Merge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<Cron>),
}

/// A parsed cron expression (UTC), kept with the text it was written as.
#[derive(Debug, Clone)]
pub struct Cron {
    pub text: String,
    schedule: cron::Schedule,
}

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Cron {}

impl Cron {
    /// Parses a 6-field (`sec min hour day month weekday`) or classic 5-field expression.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields = text.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {text}"),
            6 => text.to_owned(),
            _ => {
                return Err(format!(
                    "\"{text}\" needs 6 fields (sec min hour day month weekday) or 5"
                ))
            }
        };
        let schedule = full
            .parse::<cron::Schedule>()
            .map_err(|e| format!("\"{text}\" is not a cron expression ({e})"))?;
        Ok(Cron {
            text: text.to_owned(),
            schedule,
        })
    }

    /// The first time after `after` the expression names.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.schedule.after(&after).next()
    }
}

/// The deletion guard: a sync that would remove more than this is held back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxRemovals {
    Count(u64),
    Percent(f64),
}

impl MaxRemovals {
    /// Whether removing `removals` of `stored` entries stays within the guard.
    pub fn allows(&self, removals: usize, stored: usize) -> bool {
        match *self {
            MaxRemovals::Count(n) => removals as u64 <= n,
            MaxRemovals::Percent(p) => removals as f64 <= stored as f64 * p / 100.0,
        }
    }
}

impl fmt::Display for MaxRemovals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxRemovals::Count(n) => write!(f, "{n}"),
            MaxRemovals::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// A password or token. Its `Debug` and `Display` never show the value, so a secret cannot
/// leak through a log line or an error by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (a bind, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One problem, located by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {e}", self.file.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let fail = |message: String| ConfigErrors {
            file: path.to_owned(),
            errors: vec![ConfigError {
                path: String::new(),
                message,
            }],
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read the configuration ({e})")))?;
        Config::parse(&text).map_err(|errors| ConfigErrors {
            file: path.to_owned(),
            errors,
        })
    }

    /// Validates configuration text; every problem is returned, not only the first.
    pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            vec![ConfigError {
                path: String::new(),
                message: format!("not valid TOML: {}", one_line(&e.to_string())),
            }]
        })?;
        let mut errs = Errors::default();
        let mut root = Section::new(String::new(), &table);
        let store = parse_store(root.table("store", &mut errs), &mut errs);
        let mut log = root.table("log", &mut errs);
        let access_log = log.boolean("access", &mut errs).unwrap_or(false);
        log.finish(&mut errs);
        let numbers = parse_numbers(root.table("numbers", &mut errs), &mut errs);
        let ldap = parse_ldap(root.table("ldap", &mut errs), &mut errs);
        let http = parse_http(root.table("http", &mut errs), &mut errs);
        let connectors: Vec<_> = root
            .tables("connector", &mut errs)
            .into_iter()
            .filter_map(|s| parse_connector(s, &mut errs))
            .collect();
        root.finish(&mut errs);
        for (i, c) in connectors.iter().enumerate() {
            if connectors[..i].iter().any(|o| o.name == c.name) {
                errs.push(
                    format!("connector[{i}].name"),
                    format!("\"{}\" is used by another connector", c.name),
                );
            }
        }
        match (store, numbers, ldap, http) {
            (Some(store), Some(numbers), Some(ldap), Some(http)) if errs.0.is_empty() => {
                Ok(Config {
                    store,
                    access_log,
                    numbers,
                    ldap,
                    http,
                    connectors,
                })
            }
            _ => Err(errs.0),
        }
    }

    pub fn connector(&self, name: &str) -> Option<&ConnectorConfig> {
        self.connectors.iter().find(|c| c.name == name)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, path: String, message: impl Into<String>) {
        self.0.push(ConfigError {
            path,
            message: message.into(),
        });
    }
}

/// A TOML table being read: remembers which keys were asked for, so the rest can be reported
/// as unknown.
struct Section<'a> {
    path: String,
    table: Option<&'a Table>,
    known: Vec<&'static str>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

impl<'a> Section<'a> {
    fn new(path: String, table: &'a Table) -> Self {
        Section {
            path,
            table: Some(table),
            known: Vec::new(),
        }
    }

    /// A section that is absent from the file: every key reads as missing.
    fn empty(path: String) -> Self {
        Section {
            path,
            table: None,
            known: Vec::new(),
        }
    }

    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_owned()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    fn get(&mut self, k: &'static str) -> Option<&'a Value> {
        self.known.push(k);
        self.table.and_then(|t| t.get(k))
    }

    fn string(&mut self, k: &'static str, errs: &mut Errors) -> Option<String> {
        match self.get(k)? {
            Value::String(s) => Some(s.clone()),
            other => {
                errs.push(
                    self.key(k),
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, k: &'static str, errs: &mut Errors) -> Option<bool> {
        match self.get(k)? {
            Value::Boolean(b) => Some(*b),
            other => {
                errs.push(
                    self.key(k),
                    format!("expected true or false, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn integer(
        &mut self,
        k: &'static str,
        range: std::ops::RangeInclusive<i64>,
        errs: &mut Errors,
    ) -> Option<i64> {
        match self.get(k)? {
            Value::Integer(i) if range.contains(i) => Some(*i),
            Value::Integer(i) => {
                errs.push(
                    self.key(k),
                    format!("{i} is out of range ({}..={})", range.start(), range.end()),
                );
                None
            }
            other => {
                errs.push(
                    self.key(k),
                    format!("expected an integer, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn table(&mut self, k: &'static str, errs: &mut Errors) -> Section<'a> {
        let path = self.key(k);
        match self.get(k) {
            None => Section::empty(path),
            Some(Value::Table(t)) => Section::new(path, t),
            Some(other) => {
                errs.push(
                    path.clone(),
                    format!("expected a table, found {}", type_name(other)),
                );
                Section::empty(path)
            }
        }
    }

    /// An array of tables (`[[k]]`), each a section with path `k[i]`.
    fn tables(&mut self, k: &'static str, errs: &mut Errors) -> Vec<Section<'a>> {
        let path = self.key(k);
        match self.get(k) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Table(t) => Some(Section::new(format!("{path}[{i}]"), t)),
                    other => {
                        errs.push(
                            format!("{path}[{i}]"),
                            format!("expected a table, found {}", type_name(other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                errs.push(
                    path,
                    format!(
                        "expected an array of tables ([[{k}]]), found {}",
                        type_name(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    fn required_string(&mut self, k: &'static str, errs: &mut Errors) -> Option<String> {
        let present = self.table.is_some_and(|t| t.contains_key(k));
        let value = self.string(k, errs);
        if !present {
            errs.push(self.key(k), "is required");
        }
        value.filter(|v| {
            let ok = !v.trim().is_empty();
            if !ok && present {
                errs.push(self.key(k), "must not be empty");
            }
            ok
        })
    }

    fn socket_addr(
        &mut self,
        k: &'static str,
        default: &str,
        errs: &mut Errors,
    ) -> Option<SocketAddr> {
        let text = self.string(k, errs).unwrap_or_else(|| default.to_owned());
        text.parse()
            .map_err(|_| {
                errs.push(
                    self.key(k),
                    format!("\"{text}\" is not an address like 127.0.0.1:3389"),
                )
            })
            .ok()
    }

    fn duration(&mut self, k: &'static str, errs: &mut Errors) -> Option<Duration> {
        let text = self.string(k, errs)?;
        parse_duration(&text)
            .map_err(|e| errs.push(self.key(k), e))
            .ok()
    }

    /// A path to a file that must exist.
    fn existing_file(&mut self, k: &'static str, errs: &mut Errors) -> Option<PathBuf> {
        let path = PathBuf::from(self.string(k, errs)?);
        if !path.is_file() {
            errs.push(self.key(k), format!("file {} not found", path.display()));
        }
        Some(path)
    }

    /// A secret given inline (`password`), by environment variable (`password_env`) or by
    /// file (`password_file`): exactly one of them, or none.
    fn secret(&mut self, errs: &mut Errors) -> Option<Result<Secret, ()>> {
        let inline = self.string("password", errs);
        let env = self.string("password_env", errs);
        let file = self.string("password_file", errs);
        let given = [inline.is_some(), env.is_some(), file.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            errs.push(
                self.key("password"),
                "give only one of password, password_env, password_file",
            );
            return Some(Err(()));
        }
        if let Some(p) = inline {
            return Some(Ok(Secret::new(p)));
        }
        if let Some(var) = env {
            return Some(match std::env::var(&var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => {
                    errs.push(
                        self.key("password_env"),
                        format!("environment variable {var} is not set"),
                    );
                    Err(())
                }
            });
        }
        if let Some(file) = file {
            return Some(match std::fs::read_to_string(&file) {
                Ok(v) => Ok(Secret::new(v.trim_end_matches(['\r', '\n']))),
                Err(e) => {
                    errs.push(
                        self.key("password_file"),
                        format!("cannot read {file} ({e})"),
                    );
                    Err(())
                }
            });
        }
        None
    }

    fn finish(&self, errs: &mut Errors) {
        let Some(table) = self.table else { return };
        for key in table.keys() {
            if !self.known.contains(&key.as_str()) {
                let path = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                let hint = if self.known.is_empty() {
                    String::new()
                } else {
                    format!(" (known keys: {})", self.known.join(", "))
                };
                errs.push(path, format!("unknown key{hint}"));
            }
        }
    }
}

/// `"30s"`, `"15m"`, `"1h30m"`, `"500ms"`, `"2d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("\"{text}\" is not a duration like \"30s\", \"15m\" or \"1h30m\"");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let per = match rest[..unit].trim() {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(bad()),
        };
        total += per
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        rest = rest[unit..].trim_start();
    }
    Ok(total)
}

fn parse_store(mut s: Section, errs: &mut Errors) -> Option<StoreConfig> {
    let path = s
        .string("path", errs)
        .unwrap_or_else(|| "data/phonebook.db".into());
    let write_timeout = s
        .duration("write_timeout", errs)
        .unwrap_or(crate::store::DEFAULT_TIMEOUT);
    if write_timeout < Duration::from_secs(1) || write_timeout > Duration::from_secs(3600) {
        errs.push(s.key("write_timeout"), "must be between 1s and 1h");
    }
    s.finish(errs);
    Some(StoreConfig {
        path: path.into(),
        write_timeout,
    })
}

fn parse_numbers(mut s: Section, errs: &mut Errors) -> Option<NumberPlan> {
    let defaults = NumberPlan::default();
    let mut digits = |k: &'static str, default: String, allow_empty: bool, errs: &mut Errors| {
        let v = s.string(k, errs).unwrap_or(default);
        if (v.is_empty() && !allow_empty) || !v.chars().all(|c| c.is_ascii_digit()) {
            errs.push(s.key(k), format!("\"{v}\" must be digits only"));
        }
        v
    };
    let plan = NumberPlan {
        country_code: digits("country_code", defaults.country_code, false, errs),
        international_prefix: digits(
            "international_prefix",
            defaults.international_prefix,
            false,
            errs,
        ),
        national_prefix: digits("national_prefix", defaults.national_prefix, true, errs),
    };
    s.finish(errs);
    Some(plan)
}

fn parse_ldap(mut s: Section, errs: &mut Errors) -> Option<LdapConfig> {
    let listen = s.socket_addr("listen", "127.0.0.1:3389", errs);
    let listen_ldaps = s.string("listen_ldaps", errs).and_then(|t| {
        t.parse()
            .map_err(|_| {
                errs.push(
                    s.key("listen_ldaps"),
                    format!("\"{t}\" is not an address like 0.0.0.0:6363"),
                )
            })
            .ok()
    });
    let tls_cert = s.existing_file("tls_cert", errs);
    let tls_key = s.existing_file("tls_key", errs);
    let starttls = s.boolean("starttls", errs).unwrap_or(false);
    if (listen_ldaps.is_some() || starttls) && (tls_cert.is_none() || tls_key.is_none()) {
        errs.push(
            s.key("tls_cert"),
            "listen_ldaps and starttls need tls_cert and tls_key",
        );
    }
    let base_dn = s
        .string("base_dn", errs)
        .unwrap_or_else(|| "ou=phonebook,dc=example,dc=com".into());
    if !looks_like_dn(&base_dn) {
        errs.push(
            s.key("base_dn"),
            format!("\"{base_dn}\" is not a DN like ou=phonebook,dc=example,dc=com"),
        );
    }
    let anonymous = s.boolean("anonymous", errs).unwrap_or(true);
    let size_limit = s.integer("size_limit", 1..=1_000_000, errs).unwrap_or(500) as usize;
    let accents = match s.string("accents", errs).as_deref() {
        None | Some("fold") => Accents::Fold,
        Some("exact") => Accents::Exact,
        Some(other) => {
            errs.push(
                s.key("accents"),
                format!("\"{other}\" is neither \"fold\" nor \"exact\""),
            );
            Accents::Fold
        }
    };
    let max_connections = s
        .integer("max_connections", 1..=1_000_000, errs)
        .unwrap_or(4096) as usize;
    let max_connections_per_client = s
        .integer("max_connections_per_client", 1..=1_000_000, errs)
        .unwrap_or(64) as usize;
    let idle_timeout = s
        .duration("idle_timeout", errs)
        .unwrap_or(Duration::from_secs(300));
    if idle_timeout.is_zero() {
        errs.push(s.key("idle_timeout"), "must be more than 0s");
    }
    let max_pdu_size = s
        .integer("max_pdu_size", 1024..=64 * 1024 * 1024, errs)
        .unwrap_or(128 * 1024) as usize;
    let users = s
        .tables("users", errs)
        .into_iter()
        .filter_map(|mut u| {
            let dn = u.required_string("dn", errs);
            let password = match u.secret(errs) {
                Some(Ok(p)) => Some(p),
                Some(Err(())) => None,
                None => {
                    errs.push(
                        u.key("password"),
                        "is required (or password_env / password_file)",
                    );
                    None
                }
            };
            u.finish(errs);
            Some(LdapUser {
                dn: dn?,
                password: password?,
            })
        })
        .collect();
    s.finish(errs);
    Some(LdapConfig {
        listen: listen?,
        listen_ldaps,
        tls_cert,
        tls_key,
        starttls,
        base_dn,
        anonymous,
        size_limit,
        accents,
        users,
        max_connections,
        max_connections_per_client,
        idle_timeout,
        max_pdu_size,
    })
}

fn parse_http(mut s: Section, errs: &mut Errors) -> Option<HttpConfig> {
    let listen = s.socket_addr("listen", "127.0.0.1:8080", errs);
    let token = s
        .string("token_env", errs)
        .and_then(|var| match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                errs.push(
                    s.key("token_env"),
                    format!("environment variable {var} is not set"),
                );
                None
            }
        });
    s.finish(errs);
    Some(HttpConfig {
        listen: listen?,
        token,
    })
}

fn looks_like_dn(dn: &str) -> bool {
    !dn.trim().is_empty()
        && dn.split(',').all(|rdn| {
            rdn.split_once('=')
                .is_some_and(|(a, v)| !a.trim().is_empty() && !v.trim().is_empty())
        })
}

fn parse_connector(mut s: Section, errs: &mut Errors) -> Option<ConnectorConfig> {
    let name = s.required_string("name", errs).filter(|n| {
        let ok = n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            errs.push(
                s.key("name"),
                format!("\"{n}\" may only hold letters, digits, '-' and '_'"),
            );
        }
        ok
    });
    let comment = s.string("comment", errs);
    let source = s
        .required_string("uri", errs)
        .and_then(|uri| parse_uri(&uri).map_err(|e| errs.push(s.key("uri"), e)).ok());
    if let Some(SourceUri::Ldif(path)) = &source {
        if !path.is_file() {
            errs.push(
                s.key("uri"),
                format!("LDIF file {} not found", path.display()),
            );
        }
    }
    let is_ldap = matches!(source, Some(SourceUri::Ldap(_)));
    let base_dn = if is_ldap {
        s.required_string("base_dn", errs)
    } else {
        s.string("base_dn", errs)
    }
    .unwrap_or_default();
    if !base_dn.is_empty() && !looks_like_dn(&base_dn) {
        errs.push(
            s.key("base_dn"),
            format!("\"{base_dn}\" is not a DN like ou=people,dc=example,dc=com"),
        );
    }
    let bind_dn = s.string("bind_dn", errs);
    let bind = match (bind_dn, s.secret(errs)) {
        (Some(dn), Some(Ok(password))) => Some(Credentials { dn, password }),
        (Some(_), None) => {
            errs.push(
                s.key("bind_dn"),
                "needs a password (password, password_env or password_file)",
            );
            None
        }
        (None, Some(_)) => {
            errs.push(s.key("password"), "a password needs a bind_dn");
            None
        }
        _ => None,
    };
    let filter = s
        .string("filter", errs)
        .unwrap_or_else(|| "(objectClass=*)".into());
    if let Err(e) = crate::filter::parse(&filter) {
        errs.push(s.key("filter"), e);
    }
    let mode = match s.string("mode", errs).as_deref() {
        None | Some("mirror") => Mode::Mirror,
        Some("merge") => Mode::Merge,
        Some(other) => {
            errs.push(
                s.key("mode"),
                format!("\"{other}\" is neither \"mirror\" nor \"merge\""),
            );
            Mode::Mirror
        }
    };
    let every = s.duration("schedule", errs);
    if every.is_some_and(|d| d < Duration::from_secs(10)) {
        errs.push(s.key("schedule"), "must be at least 10s");
    }
    let cron = s.string("cron", errs).and_then(|c| {
        Cron::parse(&c)
            .map_err(|e| errs.push(s.key("cron"), e))
            .ok()
    });
    let schedule = match (every, cron) {
        (Some(_), Some(_)) => {
            errs.push(s.key("cron"), "give either schedule or cron, not both");
            None
        }
        (Some(d), None) => Some(Schedule::Every(d)),
        (None, Some(c)) => Some(Schedule::Cron(Box::new(c))),
        (None, None) => None,
    };
    let page_size = s.integer("page_size", 0..=100_000, errs).unwrap_or(500) as u32;
    let id_attribute = s
        .string("id_attribute", errs)
        .map(|a| a.to_ascii_lowercase());
    if let Some(a) = id_attribute.as_deref().filter(|a| !is_attribute_name(a)) {
        errs.push(
            s.key("id_attribute"),
            format!("\"{a}\" is not an attribute name"),
        );
    }
    let max_removals = parse_max_removals(s.get("max_removals"))
        .map_err(|e| errs.push(s.key("max_removals"), e))
        .unwrap_or(MaxRemovals::Percent(10.0));
    let ca_file = s.existing_file("ca_file", errs);
    let tls_insecure = s.boolean("tls_insecure", errs).unwrap_or(false);
    if tls_insecure && ca_file.is_some() {
        errs.push(
            s.key("tls_insecure"),
            "give either ca_file or tls_insecure, not both",
        );
    }
    let starttls = s.boolean("starttls", errs).unwrap_or(false);
    if let Some(SourceUri::Ldap(url)) = &source {
        if starttls && url.starts_with("ldaps:") {
            errs.push(
                s.key("starttls"),
                "StartTLS is for ldap:// URIs; ldaps:// is TLS already",
            );
        }
    }
    let timeout = s
        .duration("timeout", errs)
        .unwrap_or(Duration::from_secs(30));
    if timeout.is_zero() {
        errs.push(s.key("timeout"), "must be more than 0s");
    }
    let prefilter = Prefilter {
        rules: s
            .tables("prefilter", errs)
            .into_iter()
            .filter_map(|r| parse_rule(r, errs))
            .collect(),
    };
    let fields = parse_fields(s.table("fields", errs), errs);
    s.finish(errs);
    Some(ConnectorConfig {
        name: name?,
        comment,
        source: source?,
        base_dn,
        bind,
        filter,
        mode,
        schedule,
        page_size,
        id_attribute,
        max_removals,
        ca_file,
        tls_insecure,
        starttls,
        timeout,
        prefilter,
        fields,
    })
}

fn parse_uri(uri: &str) -> Result<SourceUri, String> {
    let lower = uri.to_ascii_lowercase();
    if let Some(path) = uri.strip_prefix("file:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err("file: needs a path, like file:config/demo-directory.ldif".into());
        }
        return Ok(SourceUri::Ldif(path.into()));
    }
    if lower.starts_with("ldap://") || lower.starts_with("ldaps://") {
        let rest = &uri[uri.find("://").map_or(0, |i| i + 3)..];
        if rest.contains('@') {
            return Err(
                "credentials do not belong in the URI; use bind_dn and password_env".into(),
            );
        }
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() {
            return Err(format!("\"{uri}\" has no host"));
        }
        return Ok(SourceUri::Ldap(uri.to_owned()));
    }
    Err(format!(
        "\"{uri}\" must start with ldap://, ldaps:// or file:"
    ))
}

fn parse_max_removals(v: Option<&Value>) -> Result<MaxRemovals, String> {
    let bad = |t: &str| format!("\"{t}\" is neither a count (25) nor a percentage (\"10%\")");
    match v {
        None => Ok(MaxRemovals::Percent(10.0)),
        Some(Value::Integer(n)) if *n >= 0 => Ok(MaxRemovals::Count(*n as u64)),
        Some(Value::String(t)) => match t.trim().strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(MaxRemovals::Percent(p)),
                _ => Err(bad(t)),
            },
            None => t.trim().parse().map(MaxRemovals::Count).map_err(|_| bad(t)),
        },
        Some(other) => Err(bad(&other.to_string())),
    }
}

fn parse_rule(mut s: Section, errs: &mut Errors) -> Option<Rule> {
    if let Some(Value::Array(_)) = s.table.and_then(|t| t.get("any")) {
        let rules: Vec<_> = s
            .tables("any", errs)
            .into_iter()
            .filter_map(|r| parse_rule(r, errs))
            .collect();
        s.finish(errs);
        if rules.is_empty() {
            errs.push(s.key("any"), "needs at least one rule");
            return None;
        }
        return Some(Rule::Any(rules));
    }
    let attribute = s
        .required_string("attribute", errs)
        .map(|a| a.to_ascii_lowercase());
    if let Some(a) = attribute.as_deref().filter(|a| !is_attribute_name(a)) {
        errs.push(
            s.key("attribute"),
            format!("\"{a}\" is not an attribute name"),
        );
    }
    let mut regex = |k: &'static str, errs: &mut Errors| {
        let text = s.string(k, errs)?;
        Regex::new(&text)
            .map_err(|e| {
                errs.push(
                    s.key(k),
                    format!("invalid regex: {}", one_line(&e.to_string())),
                )
            })
            .ok()
    };
    let matches = regex("matches", errs);
    let not_matches = regex("not_matches", errs);
    let present = s.boolean("present", errs);
    let given = s.table.map_or(0, |t| {
        ["matches", "not_matches", "present"]
            .iter()
            .filter(|k| t.contains_key(**k))
            .count()
    });
    s.known.push("any");
    s.finish(errs);
    if given != 1 {
        errs.push(
            s.path.clone(),
            "needs exactly one of matches, not_matches, present (or an any = [...] group)",
        );
        return None;
    }
    let attribute = attribute?;
    if let Some(regex) = matches {
        Some(Rule::Matches { attribute, regex })
    } else if let Some(regex) = not_matches {
        Some(Rule::NotMatches { attribute, regex })
    } else {
        present.map(|present| Rule::Present { attribute, present })
    }
}

fn parse_fields(s: Section, errs: &mut Errors) -> FieldMap {
    let mut map = FieldMap::default();
    let Some(table) = s.table else { return map };
    for (key, value) in table {
        let path = s.key(key);
        let Some(field) = FieldMap::field_name(key) else {
            errs.push(path, "unknown field (known: display_name, first_name, last_name, company, department, title, email, notes, business, mobile, home, fax, other)");
            continue;
        };
        let Value::String(text) = value else {
            errs.push(
                path,
                format!("expected a template string, found {}", type_name(value)),
            );
            continue;
        };
        if text.trim().is_empty() {
            if field == "display_name" {
                errs.push(path, "must not be empty: every entry needs a display name");
            } else {
                map.set(field, None);
            }
            continue;
        }
        match FieldTemplate::parse(text) {
            Ok(t) if PHONE_FIELDS.iter().any(|(n, _)| *n == field) && t.slot_count() != 1 => {
                errs.push(path, "a phone field takes exactly one {attribute} slot (fallbacks with |), so every value becomes a number");
            }
            Ok(t) => map.set(field, Some(t)),
            Err(e) => errs.push(path, format!("invalid template: {e}")),
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[connector]]
name = "corp"
uri = "ldap://127.0.0.1:3890"
base_dn = "ou=people,dc=example,dc=com"
"#;

    fn errors(text: &str) -> Vec<String> {
        match Config::parse(text) {
            Ok(_) => Vec::new(),
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
        }
    }

    fn has(errs: &[String], needle: &str) -> bool {
        errs.iter().any(|e| e.contains(needle))
    }

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.store.path, PathBuf::from("data/phonebook.db"));
        assert_eq!(c.numbers, NumberPlan::default());
        assert_eq!(c.ldap.listen.to_string(), "127.0.0.1:3389");
        assert_eq!(c.ldap.size_limit, 500);
        assert!(c.ldap.anonymous);
        assert_eq!(c.ldap.accents, Accents::Fold);
        let k = &c.connectors[0];
        assert_eq!(k.mode, Mode::Mirror);
        assert_eq!(k.page_size, 500);
        assert_eq!(k.filter, "(objectClass=*)");
        assert_eq!(k.max_removals, MaxRemovals::Percent(10.0));
        assert_eq!(k.timeout, Duration::from_secs(30));
        assert!(k.bind.is_none() && k.schedule.is_none() && k.id_attribute.is_none());
    }

    #[test]
    fn each_bad_key_is_named_with_its_path() {
        let text = r#"
colour = "blue"
[store]
pth = "x"
[numbers]
country_code = "+49"
[ldap]
listen = "nowhere"
size_limit = 0
accents = "loose"
[http]
listen = 8080
[[connector]]
name = "corp ad"
uri = "http://x"
mode = "sideways"
schedule = "often"
page_size = -1
max_removals = "lots"
timeout = "0s"
filter = "(cn=a"
[[connector.prefilter]]
attribute = "memberOf"
matches = "(?i)^cn=company-phonebook,"
[[connector.prefilter]]
attribute = "memberOf"
matches = "(unclosed"
[[connector.prefilter]]
attribute = "mail"
[connector.fields]
display_name = "{cn"
mobile = "{mobile} / {pager}"
shoe_size = "{x}"
"#;
        let errs = errors(text);
        for needle in [
            "colour: unknown key",
            "store.pth: unknown key",
            "numbers.country_code: \"+49\" must be digits only",
            "ldap.listen: \"nowhere\" is not an address",
            "ldap.size_limit: 0 is out of range",
            "ldap.accents: \"loose\"",
            "http.listen: expected a string, found an integer",
            "connector[0].name: \"corp ad\" may only hold",
            "connector[0].uri: \"http://x\" must start with",
            "connector[0].mode: \"sideways\"",
            "connector[0].schedule: \"often\" is not a duration",
            "connector[0].page_size: -1 is out of range",
            "connector[0].max_removals: \"lots\"",
            "connector[0].timeout: must be more than 0s",
            "connector[0].filter: ",
            "connector[0].prefilter[1].matches: invalid regex",
            "connector[0].prefilter[2]: needs exactly one of",
            "connector[0].fields.display_name: invalid template: unclosed",
            "connector[0].fields.mobile: a phone field takes exactly one",
            "connector[0].fields.shoe_size: unknown field",
        ] {
            assert!(has(&errs, needle), "missing {needle:?} in {errs:#?}");
        }
        assert!(!has(&errs, "prefilter[0]"), "{errs:#?}");
    }

    #[test]
    fn not_toml_at_all_is_one_clear_error() {
        let errs = errors("[store\npath = 1");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("not valid TOML"), "{errs:?}");
    }

    #[test]
    fn connector_names_are_unique_and_required_keys_are_reported() {
        let errs = errors(&format!(
            "{MINIMAL}{MINIMAL}[[connector]]\nuri = \"ldap://h\"\n"
        ));
        assert!(
            has(
                &errs,
                "connector[1].name: \"corp\" is used by another connector"
            ),
            "{errs:#?}"
        );
        assert!(has(&errs, "connector[2].name: is required"), "{errs:#?}");
        assert!(has(&errs, "connector[2].base_dn: is required"), "{errs:#?}");
    }

    #[test]
    fn secrets_come_from_env_or_file_and_never_show() {
        let dir = tempfile::tempdir().unwrap();
        let pw_file = dir.path().join("pw");
        std::fs::write(&pw_file, "from-file\n").unwrap();
        let text = format!(
            "{MINIMAL}bind_dn = \"cn=proxy,dc=example,dc=com\"\npassword_file = \"{}\"\n",
            pw_file.display()
        );
        let c = Config::parse(&text).unwrap();
        let bind = c.connectors[0].bind.as_ref().unwrap();
        assert_eq!(bind.password.expose(), "from-file");
        assert!(!format!("{c:?}").contains("from-file"));

        let missing = format!(
            "{MINIMAL}bind_dn = \"cn=p\"\npassword_env = \"PHONEBOOK_TEST_SURELY_UNSET\"\n"
        );
        assert!(has(&errors(&missing), "connector[0].password_env: environment variable PHONEBOOK_TEST_SURELY_UNSET is not set"));
        let two = format!("{MINIMAL}bind_dn = \"cn=p\"\npassword = \"a\"\npassword_env = \"B\"\n");
        assert!(has(&errors(&two), "give only one of"));
        let no_pw = format!("{MINIMAL}bind_dn = \"cn=p\"\n");
        assert!(has(
            &errors(&no_pw),
            "connector[0].bind_dn: needs a password"
        ));
    }

    #[test]
    fn max_removals_takes_counts_and_percentages() {
        let parse = |v: &str| parse_max_removals(Some(&v.parse::<toml::Value>().unwrap()));
        assert_eq!(parse("25"), Ok(MaxRemovals::Count(25)));
        assert_eq!(parse("\"25\""), Ok(MaxRemovals::Count(25)));
        assert_eq!(parse("\"5%\""), Ok(MaxRemovals::Percent(5.0)));
        assert!(parse("\"150%\"").is_err());
        assert!(MaxRemovals::Percent(10.0).allows(10, 100));
        assert!(!MaxRemovals::Percent(10.0).allows(11, 100));
        assert!(MaxRemovals::Count(0).allows(0, 100));
        assert!(!MaxRemovals::Count(0).allows(1, 100));
    }

    #[test]
    fn durations_parse_in_the_usual_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn prefilter_any_groups_and_fields_parse() {
        let text = format!(
            "{MINIMAL}[[connector.prefilter]]\nany = [{{ attribute = \"mobile\", present = true }}, {{ attribute = \"telephoneNumber\", present = true }}]\n[connector.fields]\ndisplay_name = \"{{givenName}} {{sn}}\"\nnotes = \"\"\n"
        );
        let c = Config::parse(&text).unwrap();
        let k = &c.connectors[0];
        assert!(matches!(&k.prefilter.rules[0], Rule::Any(r) if r.len() == 2));
        assert!(
            k.fields.get("notes").is_none(),
            "an empty template turns a field off"
        );
        assert!(
            k.fields.get("mobile").is_some(),
            "unlisted fields keep their default"
        );
    }

    #[test]
    fn file_uris_need_an_existing_file_and_no_base_dn() {
        let errs = errors("[[connector]]\nname = \"demo\"\nuri = \"file:does/not/exist.ldif\"\n");
        assert_eq!(
            errs,
            ["connector[0].uri: LDIF file does/not/exist.ldif not found"]
        );
    }
}
