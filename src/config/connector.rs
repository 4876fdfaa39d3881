//! One `[[connector]]` table: source, bind, filter, schedule, guard, TLS, pre-filter rules
//! and field templates.

use super::*;

pub(super) fn parse_connector(
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
    // The next run's time is the clock plus the interval: it must stay far from overflowing.
    if every.is_some_and(|d| d > MAX_SCHEDULE) {
        errs.push(s.key("schedule"), "must be at most 366d");
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

pub(super) fn parse_uri(uri: &str) -> Result<SourceUri, String> {
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

pub(super) fn parse_max_removals(v: Option<&Value>) -> Result<MaxRemovals, String> {
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
pub(super) fn parse_rule(mut s: Section, errs: &mut Errors, depth: usize) -> Option<Rule> {
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

pub(super) fn parse_fields(s: Section, errs: &mut Errors) -> FieldMap {
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
