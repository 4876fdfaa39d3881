//! The tables of the file other than `[[connector]]`: store, numbers, directory, XML books,
//! LDAP, HTTP, files and import caps.

use super::*;

pub(super) fn parse_store(mut s: Section, errs: &mut Errors) -> Option<StoreConfig> {
    let path = s
        .string("path", errs)
        .unwrap_or_else(|| "data/phonebook.db".into());
    let write_timeout = s
        .duration("write_timeout", errs)
        .unwrap_or(crate::limits::STORE_TIMEOUT);
    if write_timeout < Duration::from_secs(1) || write_timeout > Duration::from_secs(3600) {
        errs.push(s.key("write_timeout"), "must be between 1s and 1h");
    }
    s.finish(errs);
    Some(StoreConfig {
        path: path.into(),
        write_timeout,
    })
}

pub(super) fn parse_numbers(mut s: Section, errs: &mut Errors) -> Option<NumberPlan> {
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
pub(super) fn block_prefix(p: &str) -> Option<String> {
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
pub(super) fn number_format(
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

pub(super) fn parse_directory(mut s: Section, errs: &mut Errors) -> Order {
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
pub(super) fn parse_xml(mut s: Section, plan: &NumberPlan, errs: &mut Errors) -> XmlConfig {
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

pub(super) fn parse_ldap(
    mut s: Section,
    plan: &NumberPlan,
    errs: &mut Errors,
) -> Option<LdapConfig> {
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
    let size_limit = count(&mut s, "size_limit", 1..=1_000_000, 500, errs);
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
    let (limits, max_page_size) = parse_ldap_limits(&mut s, errs);
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
        limits,
        max_page_size,
    })
}

pub(super) fn parse_http(
    mut s: Section,
    plan: &NumberPlan,
    errs: &mut Errors,
) -> Option<HttpConfig> {
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

/// `ldap.max_connections`, `idle_timeout`, `max_pdu_size` and the other per-client limits,
/// and `max_page_size`, read in the order check-config has always reported them in; a bad
/// value is reported and its default used, so the other keys are still checked.
fn parse_ldap_limits(s: &mut Section, errs: &mut Errors) -> (LdapLimits, usize) {
    let d = LdapLimits::default();
    let (max_connections, max_connections_per_client) =
        connection_caps(s, d.max_connections, d.max_connections_per_client, errs);
    // Timers add these to the clock, so they must stay far from overflowing it (a duration
    // of thousands of years panicked the connection's task).
    let idle_timeout = positive_duration(s, "idle_timeout", d.idle_timeout, true, errs);
    let max_pdu_size = count(s, "max_pdu_size", 1024..=64 << 20, d.max_pdu_size, errs);
    let write_timeout = positive_duration(s, "write_timeout", d.write_timeout, true, errs);
    let max_queued_bytes = count(
        s,
        "max_queued_bytes",
        4096..=64 << 20,
        d.max_queued_bytes,
        errs,
    );
    let max_page_size = count(s, "max_page_size", 1..=1_000_000, 1000, errs);
    let max_failed_binds = count(
        s,
        "max_failed_binds",
        1..=1_000_000,
        d.max_failed_binds,
        errs,
    );
    let failed_bind_window =
        positive_duration(s, "failed_bind_window", d.failed_bind_window, true, errs);
    let limits = LdapLimits {
        max_connections,
        max_connections_per_client,
        idle_timeout,
        max_pdu_size,
        write_timeout,
        max_queued_bytes,
        max_failed_binds,
        failed_bind_window,
    };
    (limits, max_page_size)
}

/// `http.max_connections`, `header_timeout`, `idle_timeout` and `xml_max_rows`; a bad value
/// is reported and its default used, so the other keys are still checked.
pub(super) fn parse_http_limits(s: &mut Section, errs: &mut Errors) -> HttpLimits {
    let d = HttpLimits::default();
    // Timers add the value to the clock, so it must stay far from overflowing.
    let day = true;
    let (max_connections, max_connections_per_client) =
        connection_caps(s, d.max_connections, d.max_connections_per_client, errs);
    HttpLimits {
        max_connections,
        max_connections_per_client,
        header_timeout: positive_duration(s, "header_timeout", d.header_timeout, day, errs),
        idle_timeout: positive_duration(s, "idle_timeout", d.idle_timeout, day, errs),
        xml_max_rows: count(s, "xml_max_rows", 1..=1_000_000, d.xml_max_rows, errs),
    }
}

/// `max_connections` and `max_connections_per_client`, which both endpoints have.
fn connection_caps(
    s: &mut Section,
    max: usize,
    per_client: usize,
    errs: &mut Errors,
) -> (usize, usize) {
    (
        count(s, "max_connections", 1..=1_000_000, max, errs),
        count(
            s,
            "max_connections_per_client",
            1..=1_000_000,
            per_client,
            errs,
        ),
    )
}

/// An integer key within `range` (which also keeps it within `T`), or `default` when it is
/// absent or refused (the refusal is reported).
fn count<T: TryFrom<i64> + Copy>(
    s: &mut Section,
    key: &'static str,
    range: std::ops::RangeInclusive<i64>,
    default: T,
    errs: &mut Errors,
) -> T {
    s.integer(key, range, errs)
        .and_then(|n| T::try_from(n).ok())
        .unwrap_or(default)
}

/// A duration key that must be more than zero (and at most a day, when `at_most_a_day`), or
/// `default` when it is absent or refused (the refusal is reported).
fn positive_duration(
    s: &mut Section,
    key: &'static str,
    default: Duration,
    at_most_a_day: bool,
    errs: &mut Errors,
) -> Duration {
    let value = s.duration(key, errs).unwrap_or(default);
    if at_most_a_day && (value.is_zero() || value > Duration::from_secs(86_400)) {
        errs.push(s.key(key), "must be more than 0s and at most 24h");
        return default;
    }
    if value.is_zero() {
        errs.push(s.key(key), "must be more than 0s");
        return default;
    }
    value
}

pub(super) fn looks_like_dn(dn: &str) -> bool {
    !dn.trim().is_empty()
        && dn.split(',').all(|rdn| {
            rdn.split_once('=')
                .is_some_and(|(a, v)| !a.trim().is_empty() && !v.trim().is_empty())
        })
}

/// `path` made absolute against the working directory, with `.` and `..` resolved by name
/// (not by the file system, so a path that does not exist gets the same answer).
pub(super) fn absolute(path: &Path) -> PathBuf {
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

pub(super) fn parse_files(mut s: Section, config_path: &Path, errs: &mut Errors) -> FilesConfig {
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
pub(super) fn check_ldif_path(path: &Path, files: &FilesConfig) -> Result<(), String> {
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

pub(super) fn parse_import(mut s: Section, errs: &mut Errors) -> ImportLimits {
    let d = ImportLimits::default();
    let mut int = |k: &'static str, range: std::ops::RangeInclusive<i64>, default: usize| {
        count(&mut s, k, range, default, errs)
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
