//! A connector as the administrator wrote it: the text of one `[[connector]]` table, every
//! key, attribute names in their own case, durations as written. `config_edit` reads it
//! from the file and writes it back, and the admin API sends and receives it as JSON; what
//! it means is [`ConnectorConfig`](super::connector::ConnectorConfig), which the config
//! parser makes of the same text (and an edit is only written once that parse succeeds).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A connector profile as the admin page edits it, and as the admin API sends and receives it
/// (JSON): every key of a `[[connector]]` table. Values are kept as the administrator wrote
/// them — attribute names in their own case, durations as `15m` — because the page shows
/// the file, not what the parser made of it. `None` (or `false`) leaves the key out, so the
/// built-in default applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    pub name: String,
    pub comment: Option<String>,
    pub uri: String,
    pub base_dn: Option<String>,
    pub bind_dn: Option<String>,
    /// A new password; `None` keeps whatever secret the file has (inline, env or file).
    /// Write-only: it is never sent back.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// Sent: whether a secret is configured, so the page can say "set" without seeing it.
    #[serde(skip_deserializing)]
    pub has_password: bool,
    /// Sent: the variable or file a stored secret comes from (a name, not the secret), so the
    /// page can say that typing a password replaces it. Never received: an edit naming
    /// another variable or file would send its content to whatever upstream the edit names.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    pub filter: Option<String>,
    pub mode: Option<String>,
    /// An interval (`15m`) or a cron expression (`0 */15 * * * *`).
    pub schedule: Option<String>,
    /// The IANA time zone of a cron schedule (host local time when absent).
    pub timezone: Option<String>,
    pub id_attribute: Option<String>,
    pub page_size: Option<u32>,
    /// A count (`25`) or a percentage (`10%`); a JSON number is read as a count.
    #[serde(deserialize_with = "count_or_text")]
    pub max_removals: Option<String>,
    pub timeout: Option<String>,
    pub ca_file: Option<String>,
    pub starttls: bool,
    pub tls_insecure: bool,
    pub prefilter: Vec<RuleSpec>,
    /// Field name → template. Read from a file, every field is listed (its default when the
    /// file has none); written, only those that differ from the default reach the file.
    pub fields: BTreeMap<String, String>,
}

/// A pre-filter rule: one test on an attribute, or a group of which one must hold. As JSON
/// it is `{attribute, matches | not_matches | present}` or `{any: [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RuleJson", into = "RuleJson")]
pub enum RuleSpec {
    Matches { attribute: String, regex: String },
    NotMatches { attribute: String, regex: String },
    Present { attribute: String, present: bool },
    Any(Vec<RuleSpec>),
}

/// A rule's JSON form (and how `config_edit` reads a rule from the file). Loose on purpose: an incomplete rule still arrives, and the config
/// check then names what it lacks, next to its field on the page.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RuleJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) matches: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) not_matches: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) present: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) any: Vec<RuleJson>,
}

impl From<RuleJson> for RuleSpec {
    fn from(rule: RuleJson) -> Self {
        if !rule.any.is_empty() {
            return RuleSpec::Any(rule.any.into_iter().map(RuleSpec::from).collect());
        }
        let attribute = rule.attribute.unwrap_or_default();
        match (rule.matches, rule.not_matches, rule.present) {
            (Some(regex), _, _) => RuleSpec::Matches { attribute, regex },
            (None, Some(regex), _) => RuleSpec::NotMatches { attribute, regex },
            (None, None, Some(present)) => RuleSpec::Present { attribute, present },
            (None, None, None) => RuleSpec::Matches {
                attribute,
                regex: String::new(),
            },
        }
    }
}

impl From<RuleSpec> for RuleJson {
    fn from(rule: RuleSpec) -> Self {
        match rule {
            RuleSpec::Matches { attribute, regex } => RuleJson {
                attribute: Some(attribute),
                matches: Some(regex),
                ..RuleJson::default()
            },
            RuleSpec::NotMatches { attribute, regex } => RuleJson {
                attribute: Some(attribute),
                not_matches: Some(regex),
                ..RuleJson::default()
            },
            RuleSpec::Present { attribute, present } => RuleJson {
                attribute: Some(attribute),
                present: Some(present),
                ..RuleJson::default()
            },
            RuleSpec::Any(rules) => RuleJson {
                any: rules.into_iter().map(RuleJson::from).collect(),
                ..RuleJson::default()
            },
        }
    }
}

/// `max_removals` as a count or as text: the file takes `25` and `"10%"`.
fn count_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum CountOrText {
        Count(u64),
        Text(String),
    }
    Ok(Option::<CountOrText>::deserialize(d)?.map(|v| match v {
        CountOrText::Count(n) => n.to_string(),
        CountOrText::Text(t) => t,
    }))
}
