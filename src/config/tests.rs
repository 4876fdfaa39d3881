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
    let errs = errors(
        "[numbers]\noutside_prefix = \"0\"\n[store]\npath = \"x\"\n[numbers]\nextensions = []\n",
    );
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

    let missing =
        format!("{MINIMAL}bind_dn = \"cn=p\"\npassword_env = \"PHONEBOOK_TEST_SURELY_UNSET\"\n");
    assert!(has(
        &errors(&missing),
        "connector[0].password_env: environment variable PHONEBOOK_TEST_SURELY_UNSET is not set"
    ));
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
    // Found by the attack review: parts that add up past Duration's range are an error,
    // where the sum used to panic.
    assert!(parse_duration(&"4294967295d".repeat(50_000)).is_err());
    let config = format!(
        "{MINIMAL}[ldap]\nidle_timeout = \"{}\"\n",
        "4294967295d".repeat(50_000)
    );
    assert!(
        errors(&config)
            .iter()
            .any(|e| e.starts_with("ldap.idle_timeout")),
        "the key is named"
    );
}

/// Timers add these to the clock: a duration of thousands of years would overflow it.
#[test]
fn durations_that_timers_add_to_the_clock_are_bounded() {
    for (section, key, value) in [
        ("[ldap]", "idle_timeout", "25h"),
        ("[ldap]", "write_timeout", "100000h"),
        ("[ldap]", "failed_bind_window", "367d"),
        ("[http]", "idle_timeout", "25h"),
    ] {
        let text = format!("{MINIMAL}{section}\n{key} = \"{value}\"\n");
        let found = errors(&text);
        assert!(
            found
                .iter()
                .any(|e| e.contains(key) && e.contains("at most 24h")),
            "{key} = {value}: {found:?}"
        );
    }
    let far = errors(&format!("{MINIMAL}schedule = \"367d\"\n"));
    assert!(
        far.iter()
            .any(|e| e.contains("schedule") && e.contains("366d")),
        "{far:?}"
    );
    assert!(errors(&format!("{MINIMAL}schedule = \"7d\"\n")).is_empty());
    assert!(errors(&format!("{MINIMAL}[ldap]\nidle_timeout = \"24h\"\n")).is_empty());
}

/// check-config lists the [ldap] limit errors in the order it always has.
#[test]
fn ldap_limit_errors_keep_their_order() {
    let text = format!(
        "{MINIMAL}[ldap]\nmax_page_size = 0\nmax_failed_binds = 0\nwrite_timeout = \"0s\"\n"
    );
    let errors: Vec<String> = Config::parse(&text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    let at = |key: &str| {
        errors
            .iter()
            .position(|e| e.contains(key))
            .unwrap_or(usize::MAX)
    };
    assert!(
        at("write_timeout") < at("max_page_size") && at("max_page_size") < at("max_failed_binds"),
        "{errors:?}"
    );
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
