use super::*;

const FILE: &str = r#"# The phone book proxy.
[store]
path = "data/db"   # keep this comment

# Head office
[[connector]]
name = "corp"
uri = "ldap://dc1.example.com" # the DC
base_dn = "ou=people,dc=example,dc=com"
bind_dn = "cn=proxy,dc=example,dc=com"
password_env = "CORP_PW"
starttls = true

# Branch
[[connector]]
name = "branch"
uri = "ldap://dc2.example.com"
base_dn = "ou=people,dc=example,dc=com"
"#;

fn profile(name: &str) -> Profile {
    Profile {
        name: name.into(),
        uri: "ldap://dc9.example.com".into(),
        base_dn: Some("ou=staff,dc=example,dc=com".into()),
        filter: Some("(objectClass=person)".into()),
        schedule: Some("0 */15 * * * *".into()),
        prefilter: vec![
            RuleSpec::Matches {
                attribute: "memberOf".into(),
                regex: "(?i)^cn=phonebook,".into(),
            },
            RuleSpec::Any(vec![
                RuleSpec::Present {
                    attribute: "mobile".into(),
                    present: true,
                },
                RuleSpec::Present {
                    attribute: "telephoneNumber".into(),
                    present: true,
                },
            ]),
        ],
        fields: [("display_name".into(), "{givenName} {sn}".into())].into(),
        ..Profile::default()
    }
}

const P_TEXT: &str = "phonebook.toml";

fn env_set() {
    std::env::set_var("CORP_PW", "x");
}

#[test]
fn creating_appends_a_valid_connector_and_keeps_comments() {
    env_set();
    let edited = upsert(FILE, None, &profile("hr"), Path::new(P_TEXT)).unwrap();
    assert!(
        edited.starts_with(FILE.trim_end()),
        "untouched parts stay byte for byte:\n{edited}"
    );
    let config = Config::parse(&edited).unwrap();
    let hr = config.connector("hr").unwrap();
    assert_eq!(hr.base_dn, "ou=staff,dc=example,dc=com");
    assert!(matches!(
        hr.schedule,
        Some(crate::sync::connector::Schedule::Cron(_))
    ));
    assert_eq!(hr.prefilter.rules.len(), 2);
    assert_eq!(
        upsert(&edited, None, &profile("hr"), Path::new(P_TEXT)),
        Err(EditError::Exists("hr".into()))
    );
}

#[test]
fn updating_replaces_values_in_place_and_keeps_secrets() {
    env_set();
    let mut p = profile("corp");
    p.bind_dn = Some("cn=proxy,dc=example,dc=com".into());
    p.schedule = Some("15m".into());
    p.uri = "LDAP://DC1.example.com:389".into();
    p.starttls = true;
    let edited = upsert(FILE, Some("corp"), &p, Path::new(P_TEXT)).unwrap();
    assert!(
        edited.contains("uri = \"LDAP://DC1.example.com:389\" # the DC"),
        "{edited}"
    );
    assert!(
        edited.contains("password_env = \"CORP_PW\""),
        "no new password: the old secret stays"
    );
    assert!(edited.contains("starttls = true"), "{edited}");
    assert!(edited.contains("path = \"data/db\"   # keep this comment"));
    assert!(
        edited.find("name = \"corp\"") < edited.find("name = \"branch\""),
        "order kept"
    );

    p.password = Some("n3w".into());
    let edited = upsert(&edited, Some("corp"), &p, Path::new(P_TEXT)).unwrap();
    assert!(
        edited.contains("password = \"n3w\"") && !edited.contains("password_env"),
        "{edited}"
    );
}

#[test]
fn a_stored_secret_is_never_kept_for_another_upstream() {
    env_set();
    let mut p = profile("corp");
    p.bind_dn = Some("cn=proxy,dc=example,dc=com".into());
    for (uri, dn) in [
        ("ldap://evil.example.net", "cn=proxy,dc=example,dc=com"),
        ("ldap://[::1]", "cn=proxy,dc=example,dc=com"),
        ("ldap://dc1.example.com:3389", "cn=proxy,dc=example,dc=com"),
        ("ldap://dc1.example.com", "cn=admin,dc=example,dc=com"),
    ] {
        p.uri = uri.into();
        p.bind_dn = Some(dn.into());
        let Err(EditError::Invalid(errors)) = upsert(FILE, Some("corp"), &p, Path::new(P_TEXT))
        else {
            panic!("{uri} as {dn}: the stored password must not follow")
        };
        assert_eq!(errors[0].path, "connector[0].password");
        p.password = Some("typed-again".into());
        assert!(
            upsert(FILE, Some("corp"), &p, Path::new(P_TEXT)).is_ok(),
            "{uri}"
        );
        p.password = None;
    }
}

#[test]
fn weakening_tls_needs_the_password_again() {
    env_set();
    let mut p = profiles(FILE).unwrap().remove(0);
    assert!(p.starttls && p.has_password);
    assert!(upsert(FILE, Some("corp"), &p, Path::new(P_TEXT)).is_ok());
    let weaker: [fn(&mut Profile); 3] = [
        |p| p.starttls = false,
        |p| p.tls_insecure = true,
        |p| p.ca_file = Some("Cargo.toml".into()),
    ];
    for (i, weaken) in weaker.iter().enumerate() {
        let mut q = p.clone();
        weaken(&mut q);
        let Err(EditError::Invalid(errors)) = upsert(FILE, Some("corp"), &q, Path::new(P_TEXT))
        else {
            panic!("change {i}: the stored password must not follow")
        };
        assert_eq!(errors[0].path, "connector[0].password", "change {i}");
    }
    p.starttls = false;
    p.password = Some("typed-again".into());
    let edited = upsert(FILE, Some("corp"), &p, Path::new(P_TEXT)).unwrap();
    assert!(!edited.contains("starttls"), "{edited}");
    // From plain LDAP, any TLS is an improvement: the stored password may stay.
    let mut q = profiles(&edited).unwrap().remove(0);
    q.starttls = true;
    q.ca_file = Some("Cargo.toml".into());
    assert!(upsert(&edited, Some("corp"), &q, Path::new(P_TEXT)).is_ok());
}

/// A file of every key, in the administrator's spelling, with comments everywhere.
const EVERY_KEY: &str = r#"# Upstreams
[[connector]]
name = "ad" # the head office
comment = "Head office AD"
uri = "ldap://dc1.example.com"
base_dn = "OU=Staff,DC=example,DC=com"
bind_dn = "CN=svc-phonebook,OU=Service,DC=example,DC=com"
password_env = "CORP_PW" # never inline
filter = "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
mode = "merge"
cron = "0 30 6 * * Mon-Fri"
timezone = "Europe/Berlin"
id_attribute = "objectGUID"
page_size = 1000
max_removals = "5%"
timeout = "1m30s"
starttls = true

# Only the phone book group.
[[connector.prefilter]]
attribute = "memberOf" # as AD spells it
matches = "(?i)^CN=company-phonebook,"

[[connector.prefilter]]
any = [{ attribute = "telephoneNumber", present = true }, { attribute = "ipPhone", not_matches = "^$" }]

[connector.fields]
display_name = "{displayName}" # not cn
other = "{ipPhone}"

[[connector]]
name = "file"
uri = "file:config/demo-directory.ldif"
max_removals = 25
tls_insecure = false

[[connector]]
name = 'literal'
uri = 'file:config/demo-directory.ldif'
schedule = "1h 30m"
max_removals = "25"
"#;

#[test]
fn every_key_reads_as_written_and_an_unchanged_save_changes_no_byte() {
    env_set();
    let read = profiles(EVERY_KEY).unwrap();
    let ad = &read[0];
    assert_eq!(ad.id_attribute.as_deref(), Some("objectGUID"), "case kept");
    assert_eq!(ad.base_dn.as_deref(), Some("OU=Staff,DC=example,DC=com"));
    assert_eq!(ad.schedule.as_deref(), Some("0 30 6 * * Mon-Fri"));
    assert_eq!(ad.timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(
        (
            ad.page_size,
            ad.max_removals.as_deref(),
            ad.timeout.as_deref()
        ),
        (Some(1000), Some("5%"), Some("1m30s"))
    );
    assert!(ad.starttls && !ad.tls_insecure && ad.has_password && ad.password.is_none());
    assert_eq!(
        ad.prefilter[0],
        RuleSpec::Matches {
            attribute: "memberOf".into(),
            regex: "(?i)^CN=company-phonebook,".into()
        }
    );
    assert!(matches!(&ad.prefilter[1], RuleSpec::Any(r) if r.len() == 2));
    assert_eq!(ad.fields["display_name"], "{displayName}");
    assert_eq!(ad.fields["first_name"], "{givenName}", "defaults filled in");
    assert_eq!(read[1].max_removals.as_deref(), Some("25"));
    // The JSON the page gets never carries a password, and comes back as it went.
    let json = serde_json::to_string(&read).unwrap();
    assert!(json.contains("\"has_password\":true") && !json.contains("\"password\""));
    assert!(json.contains("\"password_env\":\"CORP_PW\"") && !json.contains("\"x\""));
    // Naming a variable or file through the API is not possible: it is only shown.
    let smuggled: Profile = serde_json::from_str(
        r#"{"name":"a","uri":"ldap://h","password_file":"/etc/shadow","password_env":"PB_TOKEN"}"#,
    )
    .unwrap();
    assert_eq!(
        (smuggled.password_env, smuggled.password_file),
        (None, None)
    );
    let back: Vec<Profile> = serde_json::from_str(&json).unwrap();
    assert_eq!(
        back,
        read.iter()
            .cloned()
            .map(|p| Profile {
                has_password: false,
                password_env: None,
                password_file: None,
                ..p
            })
            .collect::<Vec<_>>()
    );

    let mut text = EVERY_KEY.to_owned();
    for p in &back {
        text = upsert(&text, Some(&p.name), p, Path::new(P_TEXT))
            .unwrap_or_else(|e| panic!("{}: {e:?}", p.name));
    }
    assert_eq!(text, EVERY_KEY, "an unchanged save changes no byte");
}

#[test]
fn changed_values_replace_in_place_and_defaults_leave_the_file() {
    env_set();
    let mut ad = profiles(EVERY_KEY).unwrap().remove(0);
    ad.page_size = None;
    ad.max_removals = Some("40".into());
    ad.timeout = Some("45s".into());
    ad.fields
        .insert("display_name".into(), "{displayName|cn}".into()); // the default
    ad.fields.insert("company".into(), "Example AG".into());
    let edited = upsert(EVERY_KEY, Some("ad"), &ad, Path::new(P_TEXT)).unwrap();
    assert!(!edited.contains("page_size"), "{edited}");
    assert!(
        edited.contains("max_removals = 40\n"),
        "a count is an integer: {edited}"
    );
    assert!(edited.contains("timeout = \"45s\""), "{edited}");
    assert!(edited.contains("other = \"{ipPhone}\""), "{edited}");
    assert!(edited.contains("company = \"Example AG\""), "{edited}");
    assert!(!edited.contains("display_name"), "{edited}");
    assert!(
        edited.contains("attribute = \"memberOf\" # as AD spells it"),
        "rules unchanged: {edited}"
    );
    let config = Config::parse(&edited).unwrap();
    assert_eq!(config.connector("ad").unwrap().page_size, 500);
}

#[test]
fn a_file_that_is_not_toml_is_named_by_position_never_by_its_text() {
    let broken = "[[connector]]\nname = \"x\"\npassword = \"S3CRET\\INLINE\"\n";
    for e in [
        profiles(broken).unwrap_err(),
        upsert(broken, None, &profile("y"), Path::new(P_TEXT)).unwrap_err(),
        delete(broken, "x", Path::new(P_TEXT)).unwrap_err(),
    ] {
        let shown = e.to_string();
        assert!(shown.contains("line 3, column"), "{shown}");
        assert!(
            !shown.contains("S3CRET") && !shown.contains("INLINE"),
            "{shown}"
        );
    }
}

#[test]
fn connectors_written_as_an_inline_array_are_read_and_edited() {
    let inline = "connector = [{ name = \"a\", uri = \"file:config/demo-directory.ldif\", schedule = \"15m\" }]\n\n[store]\npath = \"data/db\"\n";
    assert!(Config::parse(inline).is_ok());
    let read = profiles(inline).unwrap();
    assert_eq!(
        (read[0].name.as_str(), read[0].schedule.as_deref()),
        ("a", Some("15m"))
    );
    assert_eq!(connector_index(inline, "a"), Some(0));
    let mut a = read[0].clone();
    a.comment = Some("edited".into());
    let edited = upsert(inline, Some("a"), &a, Path::new(P_TEXT)).unwrap();
    let again = profiles(&edited).unwrap();
    assert_eq!(again[0].comment.as_deref(), Some("edited"));
    assert_eq!(again[0].schedule.as_deref(), Some("15m"));
}

#[test]
fn renaming_and_deleting() {
    env_set();
    let edited = upsert(
        FILE,
        Some("branch"),
        &profile("branch-2"),
        Path::new(P_TEXT),
    )
    .unwrap();
    assert_eq!(connector_index(&edited, "branch-2"), Some(1));
    assert_eq!(
        upsert(FILE, Some("branch"), &profile("corp"), Path::new(P_TEXT)),
        Err(EditError::Exists("corp".into()))
    );
    let gone = delete(FILE, "branch", Path::new(P_TEXT)).unwrap();
    assert!(gone.contains("name = \"corp\"") && !gone.contains("branch"));
    assert_eq!(
        delete(FILE, "nope", Path::new(P_TEXT)),
        Err(EditError::NotFound("nope".into()))
    );
    assert_eq!(
        upsert(FILE, Some("nope"), &profile("x"), Path::new(P_TEXT)),
        Err(EditError::NotFound("nope".into()))
    );
}

#[test]
fn an_invalid_profile_is_refused_with_the_check_config_errors() {
    env_set();
    let mut p = profile("hr");
    p.filter = Some("(cn=".into());
    p.prefilter = vec![RuleSpec::Matches {
        attribute: "memberOf".into(),
        regex: "(".into(),
    }];
    let Err(EditError::Invalid(errors)) = upsert(FILE, None, &p, Path::new(P_TEXT)) else {
        panic!("must be refused")
    };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"connector[2].filter"), "{paths:?}");
    assert!(
        paths.contains(&"connector[2].prefilter[0].matches"),
        "{paths:?}"
    );
}

#[test]
fn writing_is_atomic_and_keeps_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phonebook.toml");
    std::fs::write(&path, "old").unwrap();
    write_atomically(&path, "new").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("phonebook.toml.bak")).unwrap(),
        "old"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    write_atomically(&path, "# newer\n").unwrap();
    let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o640, "the file keeps its mode");
    // Once it holds a password in clear, only its owner may read it.
    write_atomically(&path, "[[connector]]\nname = \"x\"\npassword = \"pw\"\n").unwrap();
    let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600, "an inline password makes it private");
    assert!(!dir.path().join(".phonebook.toml.tmp").exists());
    assert!(!dir.path().join(".phonebook.toml.bak.tmp").exists());
}
