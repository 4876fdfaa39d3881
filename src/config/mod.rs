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

use crate::directory::fold::Accents;
use crate::directory::Order;
use crate::secret::Secret;
use crate::sync::connector::{
    ConnectorConfig, Credentials, Cron, ImportLimits, MaxRemovals, Mode, Schedule, SourceUri,
    MAX_CONNECTOR_TIMEOUT, MAX_SCHEDULE, MIN_SCHEDULE,
};

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
    /// What one client may hold: connections, time, bytes, failed binds.
    pub limits: LdapLimits,
    /// The largest page a paged search gets, whatever size it asks for (RFC 2696 lets the
    /// server return fewer entries per page).
    pub max_page_size: usize,
}

/// What one LDAP client can hold, so it cannot hurt the others: the endpoint
/// (`ldap::server`) enforces exactly these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapLimits {
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
    /// Failed binds (wrong password) from one address within `failed_bind_window` after which
    /// its further binds are delayed and refused until the window has passed.
    pub max_failed_binds: u32,
    pub failed_bind_window: Duration,
}

impl Default for LdapLimits {
    fn default() -> Self {
        LdapLimits {
            max_connections: 4096,
            max_connections_per_client: 64,
            idle_timeout: Duration::from_secs(300),
            max_pdu_size: 128 * 1024,
            write_timeout: Duration::from_secs(30),
            max_queued_bytes: 256 * 1024,
            max_failed_binds: 10,
            failed_bind_window: Duration::from_secs(60),
        }
    }
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
    /// What this configuration asks the directory snapshot to be; a reload whose settings
    /// differ rebuilds it.
    pub fn directory_settings(&self) -> crate::directory::Settings {
        crate::directory::Settings {
            base_dn: self.ldap.base_dn.clone(),
            accents: self.ldap.accents,
            numbers: self.numbers.clone(),
            number_format: self.ldap.number_format,
            order: self.order,
        }
    }

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
