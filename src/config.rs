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

use crate::numbers::{ExtensionBlock, NumberFormat, NumberPlan};
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
    /// The order every listing uses (LDAP answers, XML books, the feed, exports).
    pub order: Order,
    pub ldap: LdapConfig,
    pub http: HttpConfig,
    pub connectors: Vec<ConnectorConfig>,
    pub files: FilesConfig,
}

/// Which local files `file:` connectors may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesConfig {
    /// Absolute, without `.`/`..` and symlinks: a `file:` connector's LDIF must lie below one
    /// of these. Default: the directory of the configuration file.
    pub allowed_dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The sled directory.
    pub path: PathBuf,
    /// The longest any store operation (a sync's write and flush, reading a book) may take
    /// before the sync fails: a full or hung disk must fail one sync, never freeze the server.
    pub write_timeout: Duration,
}

/// The order phones list the book in. One order for every endpoint, so a phone's LDAP list,
/// its XML book and the PBX's feed agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// By display name, as a phone shows it.
    #[default]
    DisplayName,
    /// By last name, then first name (`Müller, Anna` before `Schulz, Andreas`); entries
    /// without a last name by display name among them.
    LastName,
}

/// The XML books, by file name without `.xml`.
pub const XML_BOOKS: [&str; 5] = ["yealink", "cisco", "snom", "grandstream", "fanvil"];

/// How the XML books write numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlConfig {
    /// The number format of each of [`XML_BOOKS`], in that order.
    pub formats: [NumberFormat; 5],
    /// List entries that have no number a phone can dial (left out by default: a phone
    /// cannot do anything with them).
    pub keep_without_number: bool,
}

impl XmlConfig {
    /// The number format of the book `name` (`yealink`, …); `e164` for an unknown name.
    pub fn format(&self, name: &str) -> NumberFormat {
        XML_BOOKS
            .iter()
            .position(|b| *b == name)
            .map_or(NumberFormat::E164, |i| self.formats[i])
    }
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
    /// How numbers are written in answers (searches still match every notation).
    pub number_format: NumberFormat,
    pub users: Vec<LdapUser>,
    /// Open connections at most; more are refused until one closes.
    pub max_connections: usize,
    /// Open connections from one client address at most, so one phone cannot starve the rest.
    pub max_connections_per_client: usize,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// The largest request accepted; a larger one closes its connection.
    pub max_pdu_size: usize,
    /// A reply the client does not read within this long closes its connection, so a client
    /// that never reads cannot hold a connection (and its queued bytes) for ever.
    pub write_timeout: Duration,
    /// Bytes of a reply queued per connection before the server waits for the client to read
    /// them: a whole-book search is written in slices, not held in memory whole.
    pub max_queued_bytes: usize,
    /// The largest page a paged search gets, whatever size it asks for (RFC 2696 lets the
    /// server return fewer entries per page).
    pub max_page_size: usize,
    /// Failed binds (wrong password) from one address within `failed_bind_window` after which
    /// its further binds are delayed and refused until the window has passed.
    pub max_failed_binds: u32,
    pub failed_bind_window: Duration,
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
    /// The *admin* scope's token: everything that changes or reveals configuration (status,
    /// connector profiles, preview, sync triggers). Without one, the admin API answers only
    /// requests from this machine (loopback peer and a loopback `Host`).
    pub admin_token: Option<Secret>,
    /// The *read* scope's token: what phones and the PBX use (entries, search, lookup, XML
    /// books, metrics). The admin token is accepted for it too.
    pub read_token: Option<Secret>,
    /// Client addresses that may use the read scope without a token (the PBX cannot always
    /// send a header). Empty: the read scope is open when no read token is set.
    pub read_clients: Vec<Cidr>,
    /// Bounds on connections and responses, so that no client can hold descriptors or memory
    /// the LDAP endpoint needs.
    pub limits: HttpLimits,
    pub xml: XmlConfig,
}

/// An address block, `192.168.10.0/24`, `10.1.2.3` (one host) or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: std::net::IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, bits) = match text.trim().split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let net: std::net::IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net, bits })
    }

    /// Whether `ip` lies in the block (an IPv4-mapped IPv6 peer counts as its IPv4 address).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, width) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.bits);
        shift >= width || (a >> shift) == (b >> shift)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

/// What one HTTP client can hold: connections, time, and rows of an XML book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Open HTTP connections at most; further ones are closed at once (never queued), so
    /// idle sockets cannot use up the descriptors LDAP needs.
    pub max_connections: usize,
    /// Open HTTP connections from one client address at most, so one host cannot take the
    /// whole cap (and with it the endpoint) for itself.
    pub max_connections_per_client: usize,
    /// How long a client has to send a whole request head, counted from the moment the
    /// server waits for it: a new connection, or the end of the previous response on a
    /// keep-alive connection (hyper counts that gap as part of reading the next head).
    pub header_timeout: Duration,
    /// How long a read or a write may make no progress at all (a client that stops sending
    /// its body, stops reading its response, or sits silent) before the connection closes.
    pub idle_timeout: Duration,
    /// The most rows (entries, or numbers for books with one row per number) one XML book
    /// response holds.
    pub xml_max_rows: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 512,
            max_connections_per_client: 64,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            xml_max_rows: 10_000,
        }
    }
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
    /// The `[import]` caps, the same for every connector.
    pub import: ImportLimits,
}

/// Caps on what one upstream may hand a sync (`[import]`). An entry over a per-entry cap is
/// reported as invalid with the reason and left out; a pull over `max_entries` or an LDIF
/// file over `max_file_bytes` fails as a whole (a partial pull must never look like people
/// leaving).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Bytes of one attribute value.
    pub max_value_bytes: usize,
    /// Values of one attribute (AD's `memberOf` of a long-serving employee can be long).
    pub max_values_per_attribute: usize,
    /// Phone numbers of one entry, all kinds together.
    pub max_numbers_per_entry: usize,
    /// Bytes of one entry: its DN and every value read.
    pub max_entry_bytes: usize,
    /// Entries one pull may return.
    pub max_entries: usize,
    /// Size of a `file:` connector's LDIF file.
    pub max_file_bytes: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_value_bytes: 4096,
            max_values_per_attribute: 5000,
            max_numbers_per_entry: 32,
            max_entry_bytes: 256 * 1024,
            max_entries: 1_000_000,
            max_file_bytes: 128 * 1024 * 1024,
        }
    }
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

/// A parsed cron expression, read in its `timezone` (the host's local time when none), kept with
/// the text it was written as.
#[derive(Debug, Clone)]
pub struct Cron {
    pub text: String,
    schedule: cron::Schedule,
    /// The zone the expression's times are read in; `None` is the host's local time.
    pub timezone: Option<chrono_tz::Tz>,
}

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.timezone == other.timezone
    }
}

impl Eq for Cron {}

/// The shortest time between two scheduled syncs of one connector, interval or cron.
const MIN_SCHEDULE: Duration = Duration::from_secs(10);

/// The longest a connector waits for its upstream's answer: past this it is a hang.
const MAX_CONNECTOR_TIMEOUT: Duration = Duration::from_secs(3600);

impl Cron {
    /// Parses a 6-field (`sec min hour day month weekday`) or classic 5-field expression,
    /// read in the host's local time.
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
        // The same floor as an interval: a sync every second is an attack on the upstream.
        // A gap too short shows within the expression's first hundred times.
        let start = chrono::DateTime::<chrono::Utc>::from_timestamp(1_767_225_600, 0);
        let times: Vec<_> = start
            .map(|s| schedule.after(&s).take(100).collect())
            .unwrap_or_default();
        if times
            .windows(2)
            .any(|w| (w[1] - w[0]).num_seconds() < MIN_SCHEDULE.as_secs() as i64)
        {
            return Err(format!(
                "\"{text}\" runs more often than every {}s, the shortest schedule allowed",
                MIN_SCHEDULE.as_secs()
            ));
        }
        Ok(Cron {
            text: text.to_owned(),
            schedule,
            timezone: None,
        })
    }

    /// The first time after `after` the expression names, its hours read in the cron's zone
    /// (so `0 0 6 * * *` is six in the morning there, summer and winter).
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        match self.timezone {
            Some(tz) => self
                .schedule
                .after(&after.with_timezone(&tz))
                .next()
                .map(|t| t.with_timezone(&chrono::Utc)),
            None => self
                .schedule
                .after(&after.with_timezone(&chrono::Local))
                .next()
                .map(|t| t.with_timezone(&chrono::Utc)),
        }
    }

    /// The zone as status shows it.
    pub fn zone(&self) -> String {
        match self.timezone {
            Some(tz) => tz.name().to_owned(),
            None => "the host's local time".to_owned(),
        }
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

    /// The value, for the one place that must send it (a bind).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, compared without an early exit on the first differing
    /// byte (a timing difference would tell a guesser how much of a token was right).
    pub fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
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
        Config::parse_for(&text, path).map_err(|errors| ConfigErrors {
            file: path.to_owned(),
            errors,
        })
    }

    /// Validates configuration text as if it were the file `phonebook.toml` in the working
    /// directory (so `file:` connectors may read below the working directory).
    pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::parse_for(text, Path::new("phonebook.toml"))
    }

    /// Validates configuration text that is (or will be) the file at `path`; every problem is
    /// returned, not only the first. `path` decides the default `files.allowed_dirs`.
    pub fn parse_for(text: &str, path: &Path) -> Result<Config, Vec<ConfigError>> {
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            vec![ConfigError {
                path: String::new(),
                message: format!(
                    "not valid TOML: {}",
                    syntax_error(text, e.message(), e.span())
                ),
            }]
        })?;
        let mut errs = Errors::default();
        let mut root = Section::new(String::new(), &table);
        let store = parse_store(root.table("store", &mut errs), &mut errs);
        let mut log = root.table("log", &mut errs);
        let access_log = log.boolean("access", &mut errs).unwrap_or(false);
        log.finish(&mut errs);
        let numbers = parse_numbers(root.table("numbers", &mut errs), &mut errs);
        let plan = numbers.clone().unwrap_or_default();
        let order = parse_directory(root.table("directory", &mut errs), &mut errs);
        let ldap = parse_ldap(root.table("ldap", &mut errs), &plan, &mut errs);
        let http = parse_http(root.table("http", &mut errs), &plan, &mut errs);
        let files = parse_files(root.table("files", &mut errs), path, &mut errs);
        let import = parse_import(root.table("import", &mut errs), &mut errs);
        let connectors: Vec<_> = root
            .tables("connector", &mut errs)
            .into_iter()
            .filter_map(|s| parse_connector(s, &files, import, &mut errs))
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
                    order,
                    ldap,
                    http,
                    connectors,
                    files,
                })
            }
            _ => Err(errs.0),
        }
    }

    pub fn connector(&self, name: &str) -> Option<&ConnectorConfig> {
        self.connectors.iter().find(|c| c.name == name)
    }
}

/// A regex error on one line that still says where: the regex crate marks the spot with a
/// caret under the pattern, which one line cannot show, so the caret becomes a position and
/// the text before it (`at position 27, after "(?i)^cn=phonebook,": unclosed group`).
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let caret = lines.iter().position(|l| l.trim_start().starts_with('^'));
    let (Some(at), Some(message)) = (caret, lines.iter().find_map(|l| l.strip_prefix("error: ")))
    else {
        return one_line(&text);
    };
    let (Some(pattern), Some(marker)) =
        (at.checked_sub(1).and_then(|p| lines.get(p)), lines.get(at))
    else {
        return one_line(&text);
    };
    let column = marker.chars().take_while(|c| *c == ' ').count();
    let indent = pattern
        .chars()
        .take_while(|c| *c == ' ')
        .count()
        .min(column);
    let before: String = pattern.chars().skip(indent).take(column - indent).collect();
    format!(
        "{message} at position {}, after \"{before}\"",
        column - indent + 1
    )
}

/// A TOML syntax error as "line L, column C: what": never the line itself, which may hold a
/// password (a backslash in `password = "…"` is such an error).
pub fn syntax_error(text: &str, message: &str, span: Option<std::ops::Range<usize>>) -> String {
    let what = one_line(message);
    let Some(at) = span.as_ref().map(|s| s.start.min(text.len())) else {
        return what;
    };
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    // A duplicate key's span is the key (or table name): a name, never a value, and the one
    // thing that tells the administrator what to merge.
    let key = span
        .and_then(|s| text.get(s))
        .filter(|k| what.contains("duplicate") && k.len() <= 64)
        .filter(|k| {
            k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        });
    match key {
        Some(key) => {
            format!("line {line}, column {column}: {what} `{key}` (merge the two into one)")
        }
        None => format!("line {line}, column {column}: {what}"),
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

    /// A token from the environment variable named by `env_key`, or from the file named by
    /// `file_key` (`""`: no file form). Never inline: a configuration file is often readable
    /// by more people than the token should be.
    fn token(
        &mut self,
        env_key: &'static str,
        file_key: &'static str,
        errs: &mut Errors,
    ) -> Option<Secret> {
        let env = self.string(env_key, errs);
        let file = (!file_key.is_empty())
            .then(|| self.string(file_key, errs))
            .flatten();
        match (env, file) {
            (Some(_), Some(_)) => {
                errs.push(
                    self.key(env_key),
                    format!("give either {env_key} or {file_key}"),
                );
                None
            }
            (Some(var), None) => match std::env::var(&var) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    errs.push(
                        self.key(env_key),
                        format!("environment variable {var} is not set"),
                    );
                    None
                }
            },
            (None, Some(file)) => match std::fs::read_to_string(&file) {
                Ok(v) if !v.trim().is_empty() => Some(Secret::new(v.trim())),
                Ok(_) => {
                    errs.push(self.key(file_key), format!("{file} is empty"));
                    None
                }
                Err(e) => {
                    errs.push(
                        self.key(file_key),
                        format!("cannot read {file} ({})", e.kind()),
                    );
                    None
                }
            },
            (None, None) => None,
        }
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
                let guess = match closest(key, &self.known) {
                    Some(k) => format!("; did you mean \"{k}\"?"),
                    None => String::new(),
                };
                errs.push(path, format!("unknown key{guess}{hint}"));
            }
        }
    }
}

/// The known key a typo most likely meant: the same letters without `_`/`-` and case
/// (`basedn`, `BaseDN` → `base_dn`), or at most two edits away (`fitler` → `filter`).
fn closest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
    let plain = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let typed_plain = plain(typed);
    if let Some(k) = known.iter().find(|k| plain(k) == typed_plain) {
        return Some(k);
    }
    known
        .iter()
        .map(|k| (edits(&typed_plain, &plain(k)), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len() / 2 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (insert, delete, substitute, and swapping two neighbours).
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// `"30s"`, `"15m"`, `"1h30m"`, `"500ms"`, `"2d"`.
/// A duration the shortest way the file writes them (`15m`, `1h30m`, `90s`, `250ms`, `26h`):
/// what [`parse_duration`] reads back to the same value.
pub fn show_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut left = d.as_secs();
    let mut out = String::new();
    for (unit, secs) in [("h", 3600), ("m", 60), ("s", 1)] {
        if left >= secs {
            out.push_str(&format!("{}{unit}", left / secs));
            left %= secs;
        }
    }
    out
}

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
    let country_code = digits("country_code", defaults.country_code, false, errs);
    let international_prefix = digits(
        "international_prefix",
        defaults.international_prefix,
        false,
        errs,
    );
    let national_prefix = digits("national_prefix", defaults.national_prefix, true, errs);
    let outside_prefix = digits("outside_prefix", defaults.outside_prefix, true, errs);
    let mut extensions: Vec<ExtensionBlock> = Vec::new();
    for mut b in s.tables("extensions", errs) {
        let digits = b.integer("digits", 1..=10, errs);
        if b.table.is_some_and(|t| !t.contains_key("digits")) {
            errs.push(
                b.key("digits"),
                "is required (how many digits an extension has)",
            );
        }
        let prefix = b.required_string("prefix", errs).and_then(|p| {
            let e164 = block_prefix(&p);
            if e164.is_none() {
                errs.push(
                    b.key("prefix"),
                    format!(
                        "\"{p}\" is not the start of an international number like \"+49891234\""
                    ),
                );
            }
            e164
        });
        b.finish(errs);
        let (Some(prefix), Some(digits)) = (prefix, digits) else {
            continue;
        };
        let digits = digits as usize;
        if prefix.len() + digits > 15 {
            errs.push(
                b.key("digits"),
                format!(
                    "+{prefix} and {digits} more digits is longer than the 15 digits E.164 allows"
                ),
            );
        } else if extensions
            .iter()
            .any(|o| o.prefix == prefix && o.digits == digits)
        {
            errs.push(b.key("prefix"), format!("+{prefix} is listed twice"));
        } else if let Some(o) = extensions.iter().find(|o| {
            // Nested prefixes with the same total length share numbers: which extension
            // such a number has would depend on the order of the list.
            o.prefix.len() + o.digits == prefix.len() + digits
                && (o.prefix.starts_with(&prefix) || prefix.starts_with(&o.prefix))
        }) {
            errs.push(
                b.key("prefix"),
                format!(
                    "+{prefix} with {digits} digits overlaps +{} with {} digits (+{}{} would \
                     be in both); list each number in one block",
                    o.prefix,
                    o.digits,
                    if prefix.len() > o.prefix.len() {
                        &prefix
                    } else {
                        &o.prefix
                    },
                    "0".repeat(digits.min(o.digits))
                ),
            );
        } else {
            extensions.push(ExtensionBlock { prefix, digits });
        }
    }
    s.finish(errs);
    Some(NumberPlan {
        country_code,
        international_prefix,
        national_prefix,
        outside_prefix,
        extensions,
    })
}

/// The E.164 digits of a number block's prefix written as `+49 89 1234`, or `None`.
fn block_prefix(p: &str) -> Option<String> {
    let body = p.trim().strip_prefix('+')?;
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '/' | '(' | ')'))
    {
        return None;
    }
    let digits = crate::numbers::digits(body);
    (!digits.is_empty() && digits.len() < 15 && !digits.starts_with('0')).then_some(digits)
}

/// A `number_format` key: one of [`NumberFormat::NAMES`], or `default` when absent.
fn number_format(
    s: &mut Section,
    k: &'static str,
    default: NumberFormat,
    errs: &mut Errors,
) -> NumberFormat {
    match s.string(k, errs) {
        None => default,
        Some(name) => NumberFormat::parse(&name).unwrap_or_else(|| {
            errs.push(
                s.key(k),
                format!(
                    "\"{name}\" is not a number format ({})",
                    NumberFormat::NAMES.join(", ")
                ),
            );
            default
        }),
    }
}

fn parse_directory(mut s: Section, errs: &mut Errors) -> Order {
    let order = match s.string("order", errs).as_deref() {
        None | Some("display_name") => Order::DisplayName,
        Some("last_name") => Order::LastName,
        Some(other) => {
            errs.push(
                s.key("order"),
                format!("\"{other}\" is neither \"display_name\" nor \"last_name\""),
            );
            Order::DisplayName
        }
    };
    s.finish(errs);
    order
}

/// `[http.xml]`: the books' number format (all, then per book) and whether entries without a
/// number are listed.
fn parse_xml(mut s: Section, plan: &NumberPlan, errs: &mut Errors) -> XmlConfig {
    let default = if plan.has_extensions() {
        NumberFormat::Dialable
    } else {
        NumberFormat::E164
    };
    let all = number_format(&mut s, "number_format", default, errs);
    let keep_without_number = s.boolean("keep_without_number", errs).unwrap_or(false);
    let formats = XML_BOOKS.map(|book| {
        let mut b = s.table(book, errs);
        let format = number_format(&mut b, "number_format", all, errs);
        b.finish(errs);
        format
    });
    s.finish(errs);
    XmlConfig {
        formats,
        keep_without_number,
    }
}

fn parse_ldap(mut s: Section, plan: &NumberPlan, errs: &mut Errors) -> Option<LdapConfig> {
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
    let number_format = number_format(
        &mut s,
        "number_format",
        if plan.has_extensions() {
            NumberFormat::Dialable
        } else {
            NumberFormat::AsWritten
        },
        errs,
    );
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
    let write_timeout = s
        .duration("write_timeout", errs)
        .unwrap_or(Duration::from_secs(30));
    if write_timeout.is_zero() {
        errs.push(s.key("write_timeout"), "must be more than 0s");
    }
    let max_queued_bytes = s
        .integer("max_queued_bytes", 4096..=64 * 1024 * 1024, errs)
        .unwrap_or(256 * 1024) as usize;
    let max_page_size = s
        .integer("max_page_size", 1..=1_000_000, errs)
        .unwrap_or(1000) as usize;
    let max_failed_binds = s
        .integer("max_failed_binds", 1..=1_000_000, errs)
        .unwrap_or(10) as u32;
    let failed_bind_window = s
        .duration("failed_bind_window", errs)
        .unwrap_or(Duration::from_secs(60));
    if failed_bind_window.is_zero() {
        errs.push(s.key("failed_bind_window"), "must be more than 0s");
    }
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
        number_format,
        users,
        max_connections,
        max_connections_per_client,
        idle_timeout,
        max_pdu_size,
        write_timeout,
        max_queued_bytes,
        max_page_size,
        max_failed_binds,
        failed_bind_window,
    })
}

fn parse_http(mut s: Section, plan: &NumberPlan, errs: &mut Errors) -> Option<HttpConfig> {
    let listen = s.socket_addr("listen", "127.0.0.1:8080", errs);
    // `token_env` is the one-token form of earlier versions: the same token for both scopes.
    let both = s.token("token_env", "", errs);
    let admin = s.token("admin_token_env", "admin_token_file", errs);
    let read = s.token("read_token_env", "read_token_file", errs);
    for inline in ["token", "admin_token", "read_token"] {
        if s.table.is_some_and(|t| t.contains_key(inline)) {
            s.known.push(inline);
            errs.push(
                s.key(inline),
                format!("tokens are never written into the file; use {inline}_env (a variable) or {inline}_file"),
            );
        }
    }
    if let (Some(a), Some(r)) = (&admin, &read) {
        if a == r {
            errs.push(
                s.key("read_token_env"),
                "the read token equals the admin token: phones carry the read token in their book URLs, so it must not open the admin API (use token_env for one token on purpose)",
            );
        }
    }
    if both.is_some() && (admin.is_some() || read.is_some()) {
        errs.push(
            s.key("token_env"),
            "give either token_env (one token for both scopes) or admin_token_* / read_token_*",
        );
    }
    let read_clients = match s.get("read_clients") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let key = s.key("read_clients");
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let cidr = v.as_str().and_then(Cidr::parse);
                    if cidr.is_none() {
                        errs.push(
                            format!("{key}[{i}]"),
                            format!("{v} is not an address or block like \"192.168.10.0/24\""),
                        );
                    }
                    cidr
                })
                .collect()
        }
        Some(other) => {
            errs.push(
                s.key("read_clients"),
                format!("expected an array of addresses, found {}", type_name(other)),
            );
            Vec::new()
        }
    };
    let limits = parse_http_limits(&mut s, errs);
    let xml = parse_xml(s.table("xml", errs), plan, errs);
    s.finish(errs);
    Some(HttpConfig {
        listen: listen?,
        admin_token: admin.or_else(|| both.clone()),
        read_token: read.or(both),
        read_clients,
        limits,
        xml,
    })
}

/// `http.max_connections`, `header_timeout`, `idle_timeout` and `xml_max_rows`; a bad value
/// is reported and its default used, so the other keys are still checked.
fn parse_http_limits(s: &mut Section, errs: &mut Errors) -> HttpLimits {
    let default = HttpLimits::default();
    let max_connections = s
        .integer("max_connections", 1..=1_000_000, errs)
        .map_or(default.max_connections, |n| n as usize);
    let max_connections_per_client = s
        .integer("max_connections_per_client", 1..=1_000_000, errs)
        .map_or(default.max_connections_per_client, |n| n as usize);
    let mut timeout = |key: &'static str, fallback: Duration| {
        let value = s.duration(key, errs).unwrap_or(fallback);
        // Timers add the value to the clock, so it must stay far from overflowing.
        if value.is_zero() || value > Duration::from_secs(86_400) {
            errs.push(s.key(key), "must be more than 0s and at most 24h");
            return fallback;
        }
        value
    };
    let header_timeout = timeout("header_timeout", default.header_timeout);
    let idle_timeout = timeout("idle_timeout", default.idle_timeout);
    let xml_max_rows = s
        .integer("xml_max_rows", 1..=1_000_000, errs)
        .map_or(default.xml_max_rows, |n| n as usize);
    HttpLimits {
        max_connections,
        max_connections_per_client,
        header_timeout,
        idle_timeout,
        xml_max_rows,
    }
}

fn looks_like_dn(dn: &str) -> bool {
    !dn.trim().is_empty()
        && dn.split(',').all(|rdn| {
            rdn.split_once('=')
                .is_some_and(|(a, v)| !a.trim().is_empty() && !v.trim().is_empty())
        })
}

/// `path` made absolute against the working directory, with `.` and `..` resolved by name
/// (not by the file system, so a path that does not exist gets the same answer).
fn absolute(path: &Path) -> PathBuf {
    let joined = match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path),
        _ => path.to_owned(),
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn parse_files(mut s: Section, config_path: &Path, errs: &mut Errors) -> FilesConfig {
    let configured = match s.get("allowed_dirs") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(d) if !d.trim().is_empty() => Some(PathBuf::from(d)),
                    other => {
                        errs.push(
                            format!("{}[{i}]", s.key("allowed_dirs")),
                            format!("expected a directory, found {}", type_name(other)),
                        );
                        None
                    }
                })
                .collect::<Vec<_>>(),
        ),
        Some(other) => {
            errs.push(
                s.key("allowed_dirs"),
                format!(
                    "expected an array of directories, found {}",
                    type_name(other)
                ),
            );
            None
        }
    };
    s.finish(errs);
    let dirs = configured.clone().unwrap_or_else(|| {
        let dir = config_path.parent().unwrap_or(Path::new(""));
        vec![if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_owned()
        }]
    });
    let explicit = configured.is_some();
    FilesConfig {
        allowed_dirs: dirs
            .iter()
            .enumerate()
            .filter_map(|(i, d)| match std::fs::canonicalize(d) {
                Ok(real) if real.is_dir() => Some(real),
                _ if explicit => {
                    errs.push(
                        format!("{}[{i}]", s.key("allowed_dirs")),
                        format!("{} is not a directory", d.display()),
                    );
                    None
                }
                // The configuration's own directory, when it is not there yet (a text
                // validated before it is written): as written.
                _ => Some(absolute(d)),
            })
            .collect(),
    }
}

/// Checks that a `file:` connector's path is an LDIF file below `files.allowed_dirs`. The
/// answer is the same whether or not a file outside exists, so the check cannot be used to
/// probe the file system; symlinks are followed before the final check.
fn check_ldif_path(path: &Path, files: &FilesConfig) -> Result<(), String> {
    let lexical = absolute(path);
    let shown = if path.is_relative() {
        format!(
            "{} (resolved against the working directory: {})",
            path.display(),
            lexical.display()
        )
    } else {
        path.display().to_string()
    };
    let outside = || {
        let dirs: Vec<String> = files
            .allowed_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        format!(
            "file: connectors may only read *.ldif files below files.allowed_dirs ({}); {shown} is not one",
            if dirs.is_empty() { "none".to_owned() } else { dirs.join(", ") }
        )
    };
    let inside = |p: &Path| files.allowed_dirs.iter().any(|d| p.starts_with(d));
    let is_ldif = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ldif"));
    if !is_ldif {
        return Err(outside());
    }
    // Where the file really is, symlinks followed; for a file that does not exist, where it
    // would be. Existing and missing files outside get the same answer.
    let real = std::fs::canonicalize(path).ok().unwrap_or_else(|| {
        let parent = lexical.parent().and_then(|p| std::fs::canonicalize(p).ok());
        match (parent, lexical.file_name()) {
            (Some(dir), Some(name)) => dir.join(name),
            _ => lexical.clone(),
        }
    });
    let real_is_ldif = real
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ldif"));
    if !inside(&real) || !real_is_ldif {
        Err(outside())
    } else if real.is_file() {
        Ok(())
    } else {
        Err(format!("LDIF file {shown} not found"))
    }
}

fn parse_import(mut s: Section, errs: &mut Errors) -> ImportLimits {
    let d = ImportLimits::default();
    let mut int = |k: &'static str, range: std::ops::RangeInclusive<i64>, default: usize| {
        s.integer(k, range, errs).map_or(default, |v| v as usize)
    };
    let limits = ImportLimits {
        max_value_bytes: int("max_value_bytes", 64..=16 * 1024 * 1024, d.max_value_bytes),
        max_values_per_attribute: int(
            "max_values_per_attribute",
            1..=1_000_000,
            d.max_values_per_attribute,
        ),
        max_numbers_per_entry: int("max_numbers_per_entry", 1..=10_000, d.max_numbers_per_entry),
        max_entry_bytes: int(
            "max_entry_bytes",
            1024..=256 * 1024 * 1024,
            d.max_entry_bytes,
        ),
        max_entries: int("max_entries", 1..=100_000_000, d.max_entries),
        max_file_bytes: int("max_file_bytes", 1024..=i64::MAX, d.max_file_bytes as usize) as u64,
    };
    s.finish(errs);
    limits
}

fn parse_connector(
    mut s: Section,
    files: &FilesConfig,
    import: ImportLimits,
    errs: &mut Errors,
) -> Option<ConnectorConfig> {
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
        if let Err(e) = check_ldif_path(path, files) {
            errs.push(s.key("uri"), e);
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
    if every.is_some_and(|d| d < MIN_SCHEDULE) {
        errs.push(s.key("schedule"), "must be at least 10s");
    }
    let cron = s.string("cron", errs).and_then(|c| {
        Cron::parse(&c)
            .map_err(|e| errs.push(s.key("cron"), e))
            .ok()
    });
    let timezone = s.string("timezone", errs).and_then(|name| {
        name.parse::<chrono_tz::Tz>()
            .map_err(|_| {
                errs.push(
                    s.key("timezone"),
                    format!("\"{name}\" is not an IANA time zone like \"Europe/Berlin\""),
                )
            })
            .ok()
    });
    let cron = match (cron, timezone) {
        (Some(mut c), Some(tz)) => {
            c.timezone = Some(tz);
            Some(c)
        }
        (None, Some(_)) => {
            errs.push(
                s.key("timezone"),
                "goes with cron (an interval has no time of day)",
            );
            None
        }
        (c, None) => c,
    };
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
        let ldaps = url.to_ascii_lowercase().starts_with("ldaps:");
        if starttls && ldaps {
            errs.push(
                s.key("starttls"),
                "StartTLS is for ldap:// URIs; ldaps:// is TLS already",
            );
        }
        // TLS settings on a connection without TLS would be ignored, and the administrator
        // who wrote them believes the password travels encrypted.
        if !starttls && !ldaps {
            for (key, given) in [
                ("ca_file", ca_file.is_some()),
                ("tls_insecure", tls_insecure),
            ] {
                if given {
                    errs.push(
                        s.key(key),
                        format!("{url} is plain LDAP: {key} needs ldaps:// or starttls = true"),
                    );
                }
            }
        }
    }
    let timeout = s
        .duration("timeout", errs)
        .unwrap_or(Duration::from_secs(30));
    if timeout.is_zero() || timeout > MAX_CONNECTOR_TIMEOUT {
        errs.push(s.key("timeout"), "must be more than 0s and at most 1h");
    }
    let prefilter = Prefilter {
        rules: s
            .tables("prefilter", errs)
            .into_iter()
            .filter_map(|r| parse_rule(r, errs, 1))
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
        import,
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

/// One pre-filter rule at nesting `depth` (a top-level rule is 1).
fn parse_rule(mut s: Section, errs: &mut Errors, depth: usize) -> Option<Rule> {
    if let Some(Value::Array(_)) = s.table.and_then(|t| t.get("any")) {
        if depth >= crate::limits::PREFILTER_DEPTH {
            errs.push(
                s.key("any"),
                format!(
                    "any groups nest at most {} levels deep",
                    crate::limits::PREFILTER_DEPTH - 1
                ),
            );
            return None;
        }
        let rules: Vec<_> = s
            .tables("any", errs)
            .into_iter()
            .filter_map(|r| parse_rule(r, errs, depth + 1))
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
            .map_err(|e| errs.push(s.key(k), format!("invalid regex: {}", regex_error(&e))))
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

    fn config_with(connector_keys: &str) -> Config {
        Config::parse(&format!("{MINIMAL}{connector_keys}\n")).unwrap()
    }

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
    fn number_blocks_that_share_numbers_are_refused() {
        let with = |blocks: &str| format!("[numbers]\nextensions = [{blocks}]\n{MINIMAL}");
        // +49891234826 would be extension 1234826 or 826 depending on the order of the list.
        let errs = errors(&with(
            r#"{ prefix = "+4989", digits = 7 }, { prefix = "+49 89 1234", digits = 3 }"#,
        ));
        assert!(
            has(
                &errs,
                "numbers.extensions[1].prefix: +49891234 with 3 digits overlaps +4989 with 7 \
                 digits (+49891234000 would be in both)"
            ),
            "{errs:?}"
        );
        let errs = errors(&with(
            r#"{ prefix = "+49891234", digits = 3 }, { prefix = "+4989123", digits = 4 }"#,
        ));
        assert!(has(&errs, "numbers.extensions[1].prefix: +4989123 with 4 digits overlaps +49891234 with 3 digits (+49891234000"), "{errs:?}");
        // Blocks that share no number: other cities, the same prefix with longer numbers, a
        // nested prefix whose numbers are longer.
        for ok in [
            r#"{ prefix = "+49891234", digits = 3 }, { prefix = "+49305678", digits = 4 }"#,
            r#"{ prefix = "+49891234", digits = 3 }, { prefix = "+49891234", digits = 4 }"#,
            r#"{ prefix = "+4989", digits = 3 }, { prefix = "+49891234", digits = 3 }"#,
        ] {
            let c = Config::parse(&with(ok)).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
            assert_eq!(c.numbers.extensions.len(), 2);
        }
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
            "connector[0].timeout: must be more than 0s and at most 1h",
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
        let errs = errors("[numbers]\noutside_prefix = \"0\"\n[store]\npath = \"x\"\n[numbers]\nextensions = []\n");
        assert!(
            errs[0].ends_with("duplicate key `numbers` (merge the two into one)"),
            "{errs:?}"
        );
        // The offending line may hold a secret: only its position is named.
        let errs = errors("[[connector]]\nname = \"x\"\npassword = \"S3CRET\\INLINE\"\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("line 3, column"), "{errs:?}");
        assert!(
            !errs[0].contains("S3CRET") && !errs[0].contains("INLINE"),
            "{errs:?}"
        );
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
    fn regex_errors_keep_their_position_on_one_line() {
        // Built at run time, as a configured one is (clippy checks literal regexes).
        let pattern = ["(?i)^cn=phonebook,", "("].concat();
        let err = Regex::new(&pattern).unwrap_err();
        let shown = regex_error(&err);
        assert!(!shown.contains('\n'));
        assert!(
            shown.contains("unclosed group") && shown.contains("position 19"),
            "{shown}"
        );
        assert!(shown.contains("after \"(?i)^cn=phonebook,\""), "{shown}");
    }

    #[test]
    fn a_mistyped_key_gets_a_suggestion() {
        let errs = errors(&format!(
            "{MINIMAL}\n[ldap]\nbasedn = \"ou=x,dc=y\"\nsize_limt = 5\n"
        ));
        assert!(
            has(&errs, "ldap.basedn: unknown key; did you mean \"base_dn\"?"),
            "{errs:?}"
        );
        assert!(
            has(
                &errs,
                "ldap.size_limt: unknown key; did you mean \"size_limit\"?"
            ),
            "{errs:?}"
        );
        assert_eq!(closest("fitler", &["filter", "mode"]), Some("filter"));
        assert_eq!(closest("colour", &["filter", "mode"]), None);
        assert_eq!(closest("x", &["id", "uri"]), None, "too short to guess");
    }

    #[test]
    fn tls_settings_on_plain_ldap_are_refused() {
        let errs = errors("[[connector]]\nname = \"x\"\nuri = \"ldap://dc1\"\nbase_dn = \"dc=x\"\nca_file = \"Cargo.toml\"\n");
        assert_eq!(
            errs,
            ["connector[0].ca_file: ldap://dc1 is plain LDAP: ca_file needs ldaps:// or starttls = true"]
        );
        let errs = errors("[[connector]]\nname = \"x\"\nuri = \"ldap://dc1\"\nbase_dn = \"dc=x\"\ntls_insecure = true\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        for ok in [
            "uri = \"ldap://dc1\"\nstarttls = true",
            "uri = \"LDAPS://dc1\"",
        ] {
            let text = format!(
                "[[connector]]\nname = \"x\"\n{ok}\nbase_dn = \"dc=x\"\nca_file = \"Cargo.toml\"\n"
            );
            assert!(Config::parse(&text).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_cron_that_fires_more_often_than_every_10s_is_refused() {
        for text in [
            "* * * * * *",
            "*/5 * * * * *",
            "0,3 * * * * *",
            "59,0 * * * * *",
        ] {
            let e = Cron::parse(text).unwrap_err();
            assert!(e.contains("more often than every 10s"), "{text}: {e}");
        }
        for text in [
            "*/10 * * * * *",
            "0 * * * * *",
            "*/15 * * * *",
            "0 30 6 * * Mon-Fri",
        ] {
            assert!(Cron::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn cron_reads_its_hours_in_its_time_zone() {
        let c = config_with("cron = \"0 0 6 * * *\"\ntimezone = \"Europe/Berlin\"");
        let Some(Schedule::Cron(cron)) = &c.connectors[0].schedule else {
            panic!("a cron schedule");
        };
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        // Six in Berlin: 05:00 UTC in winter (CET), 04:00 UTC in summer (CEST).
        assert_eq!(
            cron.next_after(at("2026-01-10T00:00:00Z")),
            Some(at("2026-01-10T05:00:00Z"))
        );
        assert_eq!(
            cron.next_after(at("2026-07-10T00:00:00Z")),
            Some(at("2026-07-10T04:00:00Z"))
        );
        assert_eq!(cron.zone(), "Europe/Berlin");
        let errs = errors(&format!(
            "{MINIMAL}timezone = \"Mars/Olympus\"\ncron = \"0 0 6 * * *\"\n"
        ));
        assert!(
            has(&errs, "timezone: \"Mars/Olympus\" is not an IANA time zone"),
            "{errs:?}"
        );
        let errs = errors(&format!(
            "{MINIMAL}timezone = \"Europe/Berlin\"\nschedule = \"15m\"\n"
        ));
        assert!(has(&errs, "timezone: goes with cron"), "{errs:?}");
    }

    #[test]
    fn durations_show_as_the_file_writes_them() {
        for text in ["15m", "1h30m", "90s", "250ms", "1d2h", "0s", "1m1s", "24h"] {
            let d = parse_duration(text).unwrap();
            let shown = show_duration(d);
            assert_eq!(parse_duration(&shown).unwrap(), d, "{text} -> {shown}");
        }
        assert_eq!(show_duration(Duration::from_secs(900)), "15m");
        assert_eq!(show_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
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
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("connector[0].uri: LDIF file does/not/exist.ldif (resolved against the working directory: ")
                && errs[0].ends_with("/does/not/exist.ldif) not found"),
            "{errs:?}"
        );
    }

    #[test]
    fn file_uris_stay_below_the_allowed_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("phonebook.toml");
        std::fs::write(dir.path().join("ok.ldif"), "").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let check = |uri: &str, extra: &str| -> Vec<String> {
            let text = format!("{extra}[[connector]]\nname = \"x\"\nuri = \"{uri}\"\n");
            match Config::parse_for(&text, &cfg) {
                Ok(_) => Vec::new(),
                Err(errs) => errs.iter().map(ToString::to_string).collect(),
            }
        };
        let inside = format!("file:{}", dir.path().join("ok.ldif").display());
        assert!(check(&inside, "").is_empty());
        for outside in [
            "file:/etc/passwd",
            "file:/proc/self/environ",
            "file:/etc/nothing.ldif",
        ] {
            let e = check(outside, "");
            assert!(has(&e, "only read *.ldif files below"), "{outside}: {e:?}");
        }
        let txt = format!("file:{}", dir.path().join("notes.txt").display());
        assert!(has(&check(&txt, ""), "only read *.ldif"), "not LDIF");
        let elsewhere = "[files]\nallowed_dirs = [\"/nonexistent-dir\"]\n";
        assert!(has(
            &check(&inside, elsewhere),
            "files.allowed_dirs[0]: /nonexistent-dir is not a directory"
        ));
        let none = "[files]\nallowed_dirs = []\n";
        assert!(has(&check(&inside, none), "allowed_dirs (none)"));
        // Reached through a symlinked directory (systemd's /var/lib/private): still inside.
        let link = tempfile::tempdir().unwrap();
        let via = link.path().join("state");
        std::os::unix::fs::symlink(dir.path(), &via).unwrap();
        let linked = format!("file:{}", via.join("ok.ldif").display());
        assert!(check(&linked, "").is_empty(), "{:?}", check(&linked, ""));
    }

    #[test]
    fn tokens_scopes_and_read_clients() {
        std::env::set_var("PB_CFG_TEST_TOKEN", "t0k");
        let c = Config::parse("[http]\ntoken_env = \"PB_CFG_TEST_TOKEN\"\n").unwrap();
        assert_eq!(c.http.admin_token.as_ref().map(Secret::expose), Some("t0k"));
        assert_eq!(c.http.read_token.as_ref().map(Secret::expose), Some("t0k"));
        let c = Config::parse("[http]\nadmin_token_env = \"PB_CFG_TEST_TOKEN\"\nread_clients = [\"10.0.0.0/8\", \"::1\"]\n").unwrap();
        assert!(c.http.read_token.is_none());
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(c.http.read_clients[0].contains(ip("10.200.1.1")));
        assert!(c.http.read_clients[0].contains(ip("::ffff:10.1.1.1")));
        assert!(!c.http.read_clients[0].contains(ip("11.0.0.1")));
        assert!(c.http.read_clients[1].contains(ip("::1")));
        let e = errors("[http]\nread_clients = [\"10.0.0.0/33\", \"nonsense\"]\nadmin_token_env = \"PB_CFG_UNSET_VAR\"\n");
        assert!(
            has(&e, "http.read_clients[0]") && has(&e, "http.read_clients[1]"),
            "{e:?}"
        );
        assert!(
            has(
                &e,
                "http.admin_token_env: environment variable PB_CFG_UNSET_VAR is not set"
            ),
            "{e:?}"
        );
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("203.0.113.9")));
    }

    #[test]
    fn deep_prefilter_groups_are_refused() {
        let mut rule = "{ attribute = \"cn\", present = true }".to_owned();
        for _ in 0..10 {
            rule = format!("{{ any = [{rule}] }}");
        }
        let text = format!("{MINIMAL}[[connector.prefilter]]\nany = [{rule}]\n");
        assert!(
            has(&errors(&text), "any groups nest at most"),
            "{:?}",
            errors(&text)
        );
    }

    #[test]
    fn http_limits_have_defaults_and_ranges() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.http.limits, HttpLimits::default());
        let c = Config::parse(&format!(
            "[http]\nmax_connections = 50\nheader_timeout = \"2s\"\nidle_timeout = \"500ms\"\nxml_max_rows = 7\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(
            c.http.limits,
            HttpLimits {
                max_connections: 50,
                max_connections_per_client: 64,
                header_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_millis(500),
                xml_max_rows: 7,
            }
        );
        let errs = errors(&format!(
            "[http]\nmax_connections = 0\nheader_timeout = \"0s\"\nidle_timeout = \"1000h\"\nxml_max_rows = 0\n{MINIMAL}"
        ));
        for key in [
            "http.max_connections",
            "http.header_timeout",
            "http.idle_timeout",
            "http.xml_max_rows",
        ] {
            assert!(has(&errs, key), "{key}: {errs:?}");
        }
    }
}
