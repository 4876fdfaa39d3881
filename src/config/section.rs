//! Reading a TOML table key by key: every problem collected with its key path, unknown keys
//! reported with the nearest known one, durations, regex and syntax errors in words.

use super::*;

/// A regex error on one line that still says where: the regex crate marks the spot with a
/// caret under the pattern, which one line cannot show, so the caret becomes a position and
/// the text before it (`at position 27, after "(?i)^cn=phonebook,": unclosed group`).
pub(super) fn regex_error(e: &regex::Error) -> String {
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

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
pub(super) struct Errors(pub(super) Vec<ConfigError>);

impl Errors {
    pub(super) fn push(&mut self, path: String, message: impl Into<String>) {
        self.0.push(ConfigError {
            path,
            message: message.into(),
        });
    }
}

/// A TOML table being read: remembers which keys were asked for, so the rest can be reported
/// as unknown.
pub(super) struct Section<'a> {
    pub(super) path: String,
    pub(super) table: Option<&'a Table>,
    pub(super) known: Vec<&'static str>,
}

pub(super) fn type_name(v: &Value) -> &'static str {
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
    pub(super) fn new(path: String, table: &'a Table) -> Self {
        Section {
            path,
            table: Some(table),
            known: Vec::new(),
        }
    }

    /// A section that is absent from the file: every key reads as missing.
    pub(super) fn empty(path: String) -> Self {
        Section {
            path,
            table: None,
            known: Vec::new(),
        }
    }

    pub(super) fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_owned()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    pub(super) fn get(&mut self, k: &'static str) -> Option<&'a Value> {
        self.known.push(k);
        self.table.and_then(|t| t.get(k))
    }

    pub(super) fn string(&mut self, k: &'static str, errs: &mut Errors) -> Option<String> {
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

    pub(super) fn boolean(&mut self, k: &'static str, errs: &mut Errors) -> Option<bool> {
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

    pub(super) fn integer(
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

    pub(super) fn table(&mut self, k: &'static str, errs: &mut Errors) -> Section<'a> {
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
    pub(super) fn tables(&mut self, k: &'static str, errs: &mut Errors) -> Vec<Section<'a>> {
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

    pub(super) fn required_string(&mut self, k: &'static str, errs: &mut Errors) -> Option<String> {
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

    pub(super) fn socket_addr(
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

    pub(super) fn duration(&mut self, k: &'static str, errs: &mut Errors) -> Option<Duration> {
        let text = self.string(k, errs)?;
        parse_duration(&text)
            .map_err(|e| errs.push(self.key(k), e))
            .ok()
    }

    /// A path to a file that must exist.
    pub(super) fn existing_file(&mut self, k: &'static str, errs: &mut Errors) -> Option<PathBuf> {
        let path = PathBuf::from(self.string(k, errs)?);
        if !path.is_file() {
            errs.push(self.key(k), format!("file {} not found", path.display()));
        }
        Some(path)
    }

    /// A secret given inline (`password`), by environment variable (`password_env`) or by
    /// file (`password_file`): exactly one of them, or none.
    pub(super) fn secret(&mut self, errs: &mut Errors) -> Option<Result<Secret, ()>> {
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
    pub(super) fn token(
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

    pub(super) fn finish(&self, errs: &mut Errors) {
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
pub(super) fn closest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
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
pub(super) fn edits(a: &str, b: &str) -> usize {
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
        let part = per
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        // Thousands of `4294967295d` parts overflow a Duration: an error, not a panic.
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = rest[unit..].trim_start();
    }
    Ok(total)
}
