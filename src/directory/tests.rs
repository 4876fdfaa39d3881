use super::*;

fn settings() -> Settings {
    Settings::new(
        "ou=phonebook,dc=example,dc=com",
        Accents::Fold,
        NumberPlan::default(),
    )
}

fn book() -> Snapshot {
    let plan = NumberPlan::default();
    let person = |id: &str, name: &str, sn: &str, number: &str| {
        let mut e = Entry::new("corp", id, name);
        e.last_name = Some(sn.into());
        if !number.is_empty() {
            e.business.push(plan.phone(number));
        }
        e
    };
    let entries = vec![
        person("3", "Zoë Weiß", "Weiß", "+49 (89) 1234-567"),
        person("1", "Anna Müller", "Müller", "089 7654321"),
        person("2", "Jürgen Mülheimer", "Mülheimer", ""),
        person("4", "Bert Meier", "Meier", "+1 (555) 010-2030"),
    ];
    Snapshot::build(entries, 7, settings())
}

/// `filter` answers `want` through the indexes, and the same when forced through a scan
/// of every entry; the compiled filter.
fn assert_indexed_and_scanned(s: &Snapshot, filter: &str, want: &[&str]) -> Node {
    assert_eq!(names(s, filter), want, "{filter}");
    let node = s.compile(&crate::filter::parse(filter).unwrap()).unwrap();
    let scanned: Vec<String> = (0..s.len() as u32)
        .filter(|id| node.eval(&s.packed(*id)) == Tri::True)
        .map(|id| s.entry(id).entry.display_name.clone())
        .collect();
    assert_eq!(scanned, want, "scan of {filter}");
    node
}

fn names(s: &Snapshot, filter: &str) -> Vec<String> {
    let node = s.compile(&crate::filter::parse(filter).unwrap()).unwrap();
    let (hits, _) = s.search(BaseRef::Container, Scope::Sub, &node, usize::MAX);
    hits.into_iter()
        .filter_map(|h| match h {
            Hit::Entry(id) => Some(s.entry(id).entry.display_name.clone()),
            Hit::Container => None,
        })
        .collect()
}

/// A company with two number blocks, served dialable, in last-name order.
fn company_book(order: Order, format: NumberFormat) -> Snapshot {
    let plan = NumberPlan {
        outside_prefix: "0".into(),
        extensions: vec![
            crate::numbers::ExtensionBlock {
                prefix: "49891234".into(),
                digits: 3,
            },
            crate::numbers::ExtensionBlock {
                prefix: "49305678".into(),
                digits: 4,
            },
        ],
        ..NumberPlan::default()
    };
    let person = |id: &str, first: &str, last: &str, number: &str| {
        let mut e = Entry::new("corp", id, &format!("{first} {last}"));
        e.first_name = Some(first.into());
        e.last_name = Some(last.into());
        e.business.push(plan.phone(number));
        e
    };
    let entries = vec![
        person("1", "Anna", "Zander", "+49 89 1234-826"),
        person("2", "Bert", "Müller", "(0)30/5678 1234"),
        person("3", "Zoë", "Muller", "(0)89/0859 929"),
        person("4", "Carl", "Adler", "+41 44 1234 567"),
        person("5", "Dora", "Berg", "826"),
    ];
    let mut settings = Settings::new("ou=phonebook,dc=example,dc=com", Accents::Fold, plan);
    settings.order = order;
    settings.number_format = format;
    Snapshot::build(entries, 1, settings)
}

#[test]
fn numbers_are_found_by_extension_and_national_significant_number() {
    let s = company_book(Order::DisplayName, NumberFormat::Dialable);
    for (filter, want) in [
        ("(telephoneNumber=826)", vec!["Anna Zander", "Dora Berg"]),
        ("(telephoneNumber=1234)", vec!["Bert Müller"]),
        ("(telephoneNumber=890859929)", vec!["Zoë Muller"]),
        ("(telephoneNumber=0890859929)", vec!["Zoë Muller"]),
        ("(telephoneNumber=+49890859929)", vec!["Zoë Muller"]),
        ("(telephoneNumber=0049 89 0859929)", vec!["Zoë Muller"]),
        ("(telephoneNumber=\\280\\2989/0859 929)", vec!["Zoë Muller"]),
        ("(telephoneNumber=089/0859 929)", vec!["Zoë Muller"]),
        ("(telephoneNumber=0041441234567)", vec!["Carl Adler"]),
        ("(telephoneNumber=82*)", vec!["Anna Zander", "Dora Berg"]),
        ("(telephoneNumber=8908*)", vec!["Zoë Muller"]),
        // Not an extension of any block: 4 digits belong to Berlin only.
        ("(telephoneNumber=0826)", vec![]),
    ] {
        assert_indexed_and_scanned(&s, filter, &want);
    }
}

#[test]
fn ldap_serves_numbers_in_its_format() {
    let served = |format| {
        let s = company_book(Order::DisplayName, format);
        (0..s.len() as u32)
            .flat_map(|id| {
                s.packed(id)
                    .values(schema::Attr::Phone(PhoneKind::Business))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    // Display order: Anna Zander, Bert Müller, Carl Adler, Dora Berg, Zoë Muller.
    assert_eq!(
        served(NumberFormat::Dialable),
        ["826", "1234", "00041441234567", "826", "00890859929"]
    );
    assert_eq!(
        served(NumberFormat::E164),
        [
            "+49891234826",
            "+493056781234",
            "+41441234567",
            "+49891234826",
            "+49890859929"
        ]
    );
    assert_eq!(
        served(NumberFormat::National),
        [
            "0891234826",
            "0305678 1234".replace(' ', "").as_str(),
            "0041441234567",
            "0891234826",
            "0890859929"
        ]
    );
    assert_eq!(
        served(NumberFormat::AsWritten),
        [
            "+49 89 1234-826",
            "(0)30/5678 1234",
            "+41 44 1234 567",
            "826",
            "(0)89/0859 929"
        ]
    );
}

#[test]
fn last_name_order_sorts_by_folded_last_then_first_name() {
    let s = company_book(Order::LastName, NumberFormat::Dialable);
    let order: Vec<String> = (0..s.len() as u32)
        .map(|id| s.entry(id).entry.display_name.clone())
        .collect();
    // Müller and Muller fold alike; Bert before Zoë decides.
    assert_eq!(
        order,
        [
            "Carl Adler",
            "Dora Berg",
            "Bert Müller",
            "Zoë Muller",
            "Anna Zander"
        ]
    );
    let mut entries: Vec<Entry> = (0..s.len() as u32)
        .rev()
        .map(|id| s.entry(id).entry.clone())
        .collect();
    display_order(&mut entries, Order::LastName);
    let exported: Vec<&str> = entries.iter().map(|e| e.display_name.as_str()).collect();
    assert_eq!(exported, order, "exports list in the snapshot's order");
}

#[test]
fn the_version_names_the_settings_too() {
    let version = |settings: Settings| Snapshot::build(Vec::new(), 3, settings).version;
    let base = version(settings());
    assert_eq!(base, version(settings()), "stable");
    let mut outside = settings();
    outside.numbers.outside_prefix = "0".into();
    let mut order = settings();
    order.order = Order::LastName;
    let mut format = settings();
    format.number_format = NumberFormat::Dialable;
    let versions = [base, version(outside), version(order), version(format)];
    for (i, a) in versions.iter().enumerate() {
        assert!(a.starts_with("3."), "{a}");
        for b in &versions[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn results_come_in_display_order() {
    let s = book();
    assert_eq!(
        names(&s, "(objectClass=inetOrgPerson)"),
        ["Anna Müller", "Bert Meier", "Jürgen Mülheimer", "Zoë Weiß"]
    );
}

#[test]
fn indexed_and_scanned_answers_agree() {
    let s = book();
    for (filter, want) in [
        ("(sn=mül*)", vec!["Anna Müller", "Jürgen Mülheimer"]),
        ("(cn=*ulh*)", vec!["Jürgen Mülheimer"]),
        ("(sn=weiss)", vec!["Zoë Weiß"]),
        ("(telephoneNumber=+49891234567)", vec!["Zoë Weiß"]),
        ("(telephoneNumber=*0891234567*)", vec!["Zoë Weiß"]),
        ("(telephoneNumber=*7654321)", vec!["Anna Müller"]),
        (
            "(&(sn>=M)(sn<=N))",
            vec!["Anna Müller", "Bert Meier", "Jürgen Mülheimer"],
        ),
        // Bounds every value meets (known from the ends of the sorted values), and one
        // that only the highest value misses (found by a binary search).
        (
            "(&(objectClass=*)(sn>=A)(sn<=zz)(sn=M*))",
            vec!["Anna Müller", "Bert Meier", "Jürgen Mülheimer"],
        ),
        (
            "(&(sn>=A)(sn<=n))",
            vec!["Anna Müller", "Bert Meier", "Jürgen Mülheimer"],
        ),
        (
            "(|(cn=anna*)(telephoneNumber=*0102030))",
            vec!["Anna Müller", "Bert Meier"],
        ),
    ] {
        let node = assert_indexed_and_scanned(&s, filter, &want);
        assert!(
            s.candidates(&node).is_some(),
            "{filter} should use an index"
        );
    }
}

#[test]
fn scopes_and_bases() {
    let s = book();
    let all = s
        .compile(&crate::filter::parse("(objectClass=*)").unwrap())
        .unwrap();
    assert_eq!(
        s.search(BaseRef::Container, Scope::Base, &all, 10).0,
        [Hit::Container]
    );
    assert_eq!(
        s.search(BaseRef::Container, Scope::One, &all, 10).0.len(),
        4
    );
    assert_eq!(
        s.search(BaseRef::Container, Scope::Sub, &all, 10).0.len(),
        5
    );
    let anna = s
        .resolve_base("UID=corp.1, ou=Phonebook,dc=example,dc=com")
        .unwrap();
    assert_eq!(anna, BaseRef::Entry(0));
    assert_eq!(s.search(anna, Scope::Base, &all, 10).0, [Hit::Entry(0)]);
    assert_eq!(s.search(anna, Scope::One, &all, 10).0, []);
    assert_eq!(s.resolve_base("dc=example,dc=com"), Some(BaseRef::Parent));
    assert_eq!(s.resolve_base("dc=com"), Some(BaseRef::Ancestor));
    let parent_one = s.search(BaseRef::Parent, Scope::One, &all, 10).0;
    assert_eq!(
        parent_one,
        [Hit::Container],
        "one level below the parent is the container"
    );
    assert_eq!(s.resolve_base("ou=other,dc=example,dc=com"), None);
    let (hits, more) = s.search(BaseRef::Container, Scope::One, &all, 2);
    assert_eq!((hits.len(), more), (2, true));
}

/// A reload's rebuild (same generation, new settings) replaces what is served; one that read
/// the store before a sync published must not put the older book back (found as a flaky
/// reload test: the new connector's entries vanished until its next sync).
#[test]
fn a_rebuild_never_puts_an_older_book_back() {
    let directory = Directory::new(Snapshot::build(Vec::new(), 3, settings()));
    let served = |d: &Directory| (d.load().generation(), d.load().len());
    directory.publish_if_newer(book()); // generation 7, four people
    assert_eq!(served(&directory), (7, 4));
    directory.publish_unless_older(Snapshot::build(Vec::new(), 5, settings()));
    assert_eq!(served(&directory), (7, 4), "an older rebuild is refused");
    let mut other = settings();
    other.base_dn = "ou=other,dc=example,dc=com".into();
    directory.publish_unless_older(Snapshot::build(Vec::new(), 7, other));
    assert_eq!(
        served(&directory),
        (7, 0),
        "the same generation with new settings wins"
    );
    directory.publish_if_newer(book());
    assert_eq!(
        served(&directory),
        (7, 0),
        "a sync's publish still needs a newer book"
    );
}
