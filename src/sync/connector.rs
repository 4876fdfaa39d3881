//! A connector as a sync runs it: the upstream, its credentials, schedule, mode, deletion
//! guard, TLS, pre-filter and mapping, and the import caps. Parsed from the file by
//! `config`, run by `sync`; it lives here so the dependency points one way (config → sync).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;
use crate::sync::mapping::FieldMap;
use crate::sync::prefilter::Prefilter;
use crate::sync::raw::RawEntry;

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

impl ImportLimits {
    /// Why `entry` exceeds one of the per-entry caps, if it does.
    pub fn exceeded_by(&self, entry: &RawEntry) -> Option<String> {
        let mut total = entry.dn.len();
        for (name, values) in entry.attributes() {
            if values.len() > self.max_values_per_attribute {
                return Some(format!(
                    "{name} has {} values (import.max_values_per_attribute = {})",
                    values.len(),
                    self.max_values_per_attribute
                ));
            }
            for v in values {
                if v.len() > self.max_value_bytes {
                    return Some(format!(
                        "a value of {name} is {} bytes long (import.max_value_bytes = {})",
                        v.len(),
                        self.max_value_bytes
                    ));
                }
                total += name.len() + v.len();
            }
        }
        (total > self.max_entry_bytes).then(|| {
            format!(
                "the entry is {total} bytes long (import.max_entry_bytes = {})",
                self.max_entry_bytes
            )
        })
    }
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
pub const MIN_SCHEDULE: Duration = Duration::from_secs(10);
/// The longest interval between scheduled runs: the next run's time is the clock plus it.
pub const MAX_SCHEDULE: Duration = Duration::from_secs(366 * 86_400);

/// The longest a connector waits for its upstream's answer: past this it is a hang.
pub const MAX_CONNECTOR_TIMEOUT: Duration = Duration::from_secs(3600);

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
