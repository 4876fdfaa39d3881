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

mod connector;
mod section;
mod sections;
#[cfg(test)]
mod tests;

use connector::*;
use section::*;
pub use section::{parse_duration, show_duration, syntax_error};
use sections::*;

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
