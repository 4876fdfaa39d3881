use super::*;
use crate::config::XML_BOOKS;
use crate::directory::fold::Accents;
use crate::directory::Settings;
use crate::numbers::ExtensionBlock;

fn people(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let mut e = Entry::new("c", &i.to_string(), &format!("Müller & <Söhne> \"{i}\""));
            e.business
                .push(NumberPlan::default().phone(&format!("089 1234{i:03}")));
            e.fax.push(NumberPlan::default().phone("089 999999"));
            e
        })
        .collect()
}

const VENDORS: [Vendor; 4] = [
    Vendor::Yealink,
    Vendor::Snom,
    Vendor::Grandstream,
    Vendor::Fanvil,
];

fn style(max_rows: usize) -> Style {
    Style {
        format: NumberFormat::E164,
        keep: false,
        max_rows,
    }
}

fn snapshot(entries: &[Entry], plan: NumberPlan) -> Arc<Snapshot> {
    let settings = Settings::new("ou=phonebook,dc=example,dc=com", Accents::Fold, plan);
    Arc::new(Snapshot::build(entries.to_vec(), 1, settings))
}

/// A whole book as a phone receives it, written in small pieces as a stream is.
fn render_with(vendor: Vendor, entries: &[Entry], style: Style, plan: NumberPlan) -> String {
    let snapshot = snapshot(entries, plan);
    if vendor == Vendor::Cisco {
        let selection = Selection {
            snapshot: snapshot.clone(),
            ids: None,
        };
        return cisco(
            selection.iter(),
            &snapshot.settings().numbers,
            style,
            1,
            "pbx",
            None,
        );
    }
    let mut book = Book::new(
        Selection {
            snapshot,
            ids: None,
        },
        vendor,
        style,
    );
    let mut out = String::new();
    loop {
        let want = out.len() + 1000;
        if !book.fill(&mut out, want) {
            return out;
        }
    }
}

fn render(vendor: Vendor, entries: &[Entry], style: Style) -> String {
    render_with(vendor, entries, style, NumberPlan::default())
}

fn rows(xml: &str) -> usize {
    ["<DirectoryEntry>", "<item ", "<Contact>"]
        .iter()
        .map(|tag| xml.matches(tag).count())
        .sum()
}

#[test]
fn names_are_escaped_and_faxes_left_out() {
    let xml = render(Vendor::Yealink, &people(1), style(100));
    assert!(
        xml.contains("<Name>Müller &amp; &lt;Söhne&gt; &quot;0&quot;</Name>"),
        "{xml}"
    );
    assert!(
        xml.contains("<Telephone label=\"Business\">+49891234000</Telephone>"),
        "{xml}"
    );
    assert!(!xml.contains("999999"), "{xml}");
}

#[test]
fn cisco_pages_hold_32_entries_and_link_the_next_page() {
    let entries = people(70);
    let plan = NumberPlan::default();
    let page =
        |p: usize, q: Option<&str>| cisco(entries.iter(), &plan, style(10_000), p, "pbx:8080", q);
    let first = page(1, Some("mü"));
    assert_eq!(first.matches("<DirectoryEntry>").count(), 32);
    assert!(
        first.contains("<URL>http://pbx:8080/phonebook/cisco.xml?page=2&amp;q=m%C3%BC</URL>"),
        "{first}"
    );
    assert!(!first.contains("<Name>Previous</Name>"), "{first}");
    let middle = page(2, None);
    assert!(
        middle.contains("<Name>Previous</Name>\n    <URL>http://pbx:8080/phonebook/cisco.xml?page=1</URL>\n    <Position>2</Position>"),
        "{middle}"
    );
    assert!(
        middle.contains("<Name>Next</Name>\n    <URL>http://pbx:8080/phonebook/cisco.xml?page=3</URL>\n    <Position>3</Position>"),
        "{middle}"
    );
    assert!(middle
        .contains("<Name>Exit</Name>\n    <URL>SoftKey:Exit</URL>\n    <Position>4</Position>"));
    let last = page(3, None);
    assert_eq!(last.matches("<DirectoryEntry>").count(), 6);
    assert!(!last.contains("<Name>Next</Name>"));
    assert!(last.contains("cisco.xml?page=2</URL>"), "{last}");
    assert!(last.contains("<Prompt>Page 3 of 3</Prompt>"), "{last}");
    // Past the end: the last page again, never the first.
    assert_eq!(page(4, None), last);
    assert_eq!(page(usize::MAX, None), last);
    for xml in [&first, &middle, &last] {
        roxmltree::Document::parse(xml).unwrap();
    }
}

#[test]
fn page_numbers_are_digits_from_one_and_huge_ones_saturate() {
    assert_eq!(page_number("7").ok(), Some(7));
    assert_eq!(
        page_number("99999999999999999999999999").ok(),
        Some(usize::MAX)
    );
    for bad in ["0", "000", "", "-1", "+2", "x", "1e3"] {
        assert!(page_number(bad).is_err(), "{bad}");
    }
}

#[test]
fn characters_xml_forbids_never_reach_the_xml() {
    assert_eq!(
        esc("a\u{1}b\tc\u{FFFE}d\u{FFFF}e\u{85}f\u{1F600}"),
        "ab\tcdef\u{1F600}"
    );
}

#[test]
fn fields_numbers_and_rows_are_capped() {
    let mut e = Entry::new("c", "x", &"N".repeat(100_000));
    e.first_name = Some("F".repeat(100_000));
    for i in 0..1000 {
        e.business
            .push(NumberPlan::default().phone(&format!("089 {i:06}")));
    }
    e.mobile.push(NumberPlan::default().phone(&"1".repeat(200)));
    let entries = vec![e];
    for vendor in Vendor::ALL {
        let xml = render(vendor, &entries, style(10_000));
        assert!(xml.len() < 16 * 1024, "{vendor:?}: {} bytes", xml.len());
        assert!(xml.contains(&"N".repeat(MAX_TEXT_CHARS)), "{vendor:?}");
        assert!(!xml.contains(&"N".repeat(MAX_TEXT_CHARS + 1)), "{vendor:?}");
        assert!(!xml.contains("11111111111111111111111111111111111111111"));
    }
    let snom = render(Vendor::Snom, &entries, style(10_000));
    assert_eq!(snom.matches("<item ").count(), MAX_NUMBERS_PER_ENTRY);
    let many = people(50);
    for vendor in VENDORS {
        assert_eq!(rows(&render(vendor, &many, style(7))), 7, "{vendor:?}");
    }
    assert!(render(Vendor::Snom, &many, style(7)).contains("complete=\"false\""));
    assert!(render(Vendor::Snom, &many, style(50)).contains("complete=\"true\""));
    let plan = NumberPlan::default();
    let cisco_rows = cisco(many.iter(), &plan, style(40), 9, "pbx", None);
    assert!(cisco_rows.contains("Page 2 of 2"), "{cisco_rows}");
    assert_eq!(cisco_rows.matches("<DirectoryEntry>").count(), 8);
}

fn company() -> NumberPlan {
    NumberPlan {
        outside_prefix: "0".into(),
        extensions: vec![ExtensionBlock {
            prefix: "49891234".into(),
            digits: 3,
        }],
        ..NumberPlan::default()
    }
}

#[test]
fn every_format_goes_through_the_number_plan() {
    let plan = company();
    let mut e = Entry::new("c", "a", "Andreas");
    e.business.push(plan.phone("+49 89 1234-826"));
    e.mobile.push(plan.phone("(0)89/0859 929"));
    for (format, business, mobile) in [
        (NumberFormat::AsWritten, "+49 89 1234-826", "(0)89/0859 929"),
        (NumberFormat::E164, "+49891234826", "+49890859929"),
        (NumberFormat::National, "0891234826", "0890859929"),
        (NumberFormat::Dialable, "826", "00890859929"),
    ] {
        let style = Style {
            format,
            ..style(100)
        };
        let xml = render_with(Vendor::Yealink, &[e.clone()], style, plan.clone());
        assert!(
            xml.contains(&format!(
                "<Telephone label=\"Business\">{business}</Telephone>\n    <Telephone label=\"Mobile\">{mobile}</Telephone>"
            )),
            "{format:?}: {xml}"
        );
    }
}

#[test]
fn a_number_served_twice_is_listed_once() {
    // AD: the desk number in telephoneNumber, the same number as an extension in ipPhone.
    let plan = company();
    let mut e = Entry::new("c", "a", "Carl");
    e.business.push(plan.phone("+49 89 1234-826"));
    e.other.push(plan.phone("826"));
    e.mobile.push(plan.phone("0171 2345678"));
    let dialable = Style {
        format: NumberFormat::Dialable,
        ..style(100)
    };
    for vendor in Vendor::ALL {
        let xml = render_with(vendor, &[e.clone()], dialable, plan.clone());
        assert_eq!(xml.matches(">826<").count(), 1, "{vendor:?}: {xml}");
        assert_eq!(xml.matches(">001712345678<").count(), 1, "{vendor:?}");
    }
    let yealink = render_with(Vendor::Yealink, &[e.clone()], dialable, plan.clone());
    assert!(yealink.contains("<Telephone label=\"Business\">826</Telephone>"));
    // Written differently, both stay where the book serves them as written.
    let as_written = Style {
        format: NumberFormat::AsWritten,
        ..style(100)
    };
    let snom = render_with(Vendor::Snom, &[e], as_written, plan);
    assert_eq!(snom.matches("<item ").count(), 3, "{snom}");
}

/// An entry listed, then four that have nothing to dial.
fn with_undialable() -> Vec<Entry> {
    let plan = NumberPlan::default();
    let mut listed = Entry::new("c", "z", "Zora");
    listed.business.push(plan.phone("089 1234567"));
    listed.mobile.push(plan.phone("0170 1234567"));
    let none = Entry::new("c", "a", "Aaron");
    let mut fax = Entry::new("c", "b", "Abel");
    fax.fax.push(plan.phone("089 999999"));
    let mut no_digit = Entry::new("c", "c", "Achim");
    no_digit.business.push(plan.phone("n/a"));
    no_digit.other.push(plan.phone(&"9 ".repeat(30)));
    vec![listed, none, fax, no_digit]
}

#[test]
fn entries_without_a_number_to_dial_are_left_out_unless_kept() {
    let entries = with_undialable();
    for vendor in Vendor::ALL {
        let xml = render(vendor, &entries, style(100));
        let expected = if vendor.row_per_number() { 2 } else { 1 };
        assert_eq!(rows(&xml), expected, "{vendor:?}: {xml}");
        for name in ["Aaron", "Abel", "Achim"] {
            assert!(!xml.contains(name), "{vendor:?}: {xml}");
        }
        // The cap counts listed rows only: Zora's rows fit, after three unlisted entries.
        assert_eq!(
            rows(&render(vendor, &entries, style(expected))),
            expected,
            "{vendor:?}"
        );
        let kept = Style {
            keep: true,
            ..style(100)
        };
        let xml = render(vendor, &entries, kept);
        assert_eq!(rows(&xml), expected + 3, "{vendor:?}: {xml}");
        assert!(!xml.contains("n/a"), "{vendor:?}: {xml}");
        roxmltree::Document::parse(&xml).unwrap();
    }
    assert!(render(Vendor::Snom, &entries, style(2)).contains("complete=\"true\""));
    assert!(render(Vendor::Snom, &entries, style(1)).contains("complete=\"false\""));
    let kept = Style {
        keep: true,
        ..style(4)
    };
    assert!(render(Vendor::Snom, &entries, kept).contains("complete=\"false\""));
    let cisco = render(Vendor::Cisco, &entries, kept);
    assert!(cisco.contains("<Telephone></Telephone>"), "{cisco}");
    assert!(cisco.contains("Page 1 of 1"), "{cisco}");
}

#[test]
fn each_vendor_names_the_kinds_apart_where_it_can() {
    let kinds = [
        PhoneKind::Business,
        PhoneKind::Mobile,
        PhoneKind::Home,
        PhoneKind::Other,
    ];
    for vendor in Vendor::ALL {
        let mut labels: Vec<&str> = kinds.iter().map(|k| vendor.label(*k)).collect();
        labels.sort_unstable();
        labels.dedup();
        let distinct = if vendor == Vendor::Fanvil { 3 } else { 4 };
        assert_eq!(labels.len(), distinct, "{vendor:?}");
        assert_eq!(vendor.labels().len(), 4);
    }
    for kind in kinds {
        assert_eq!(Vendor::Cisco.label(kind), Vendor::Yealink.label(kind));
    }
    assert_eq!(Vendor::Grandstream.label(PhoneKind::Other), "Other");
    assert_eq!(Vendor::Snom.label(PhoneKind::Other), "fixed");
}

#[test]
fn book_names_are_the_configured_books() {
    let names: Vec<&str> = Vendor::ALL.iter().map(|v| v.name()).collect();
    assert_eq!(names, XML_BOOKS);
    assert_eq!(Vendor::from_file("snom.xml"), Some(Vendor::Snom));
    for bad in ["snom", "nokia.xml", ".xml", "snom.xml.xml"] {
        assert_eq!(Vendor::from_file(bad), None, "{bad}");
    }
}

#[test]
fn a_name_ending_in_brackets_gets_the_kind_inside_them() {
    for (name, expected) in [
        ("Andreas Schulz (IT)", "Andreas Schulz (IT, Business)"),
        ("Andreas Schulz (IT) ", "Andreas Schulz (IT, Business)"),
        ("Anna Weiß", "Anna Weiß (Business)"),
        ("Empfang (Haus (A))", "Empfang (Haus (A), Business)"),
        ("Smiley :)", "Smiley :) (Business)"),
        ("Leer ()", "Leer () (Business)"),
        ("(IT) Andreas", "(IT) Andreas (Business)"),
    ] {
        assert_eq!(with_label(name, "Business"), expected, "{name}");
    }
    let mut e = Entry::new("c", "a", "Andreas Schulz (IT)");
    e.business.push(NumberPlan::default().phone("089 1234567"));
    e.home.push(NumberPlan::default().phone("089 7654321"));
    let xml = render(Vendor::Cisco, &[e], style(100));
    assert!(
        xml.contains("<Name>Andreas Schulz (IT, Business)</Name>"),
        "{xml}"
    );
    assert!(
        xml.contains("<Name>Andreas Schulz (IT, Home)</Name>"),
        "{xml}"
    );
}

#[test]
fn streamed_gzip_pieces_inflate_as_they_arrive() {
    let book = render(Vendor::Yealink, &people(2000), style(10_000));
    let pieces: Vec<&str> = book
        .as_bytes()
        .chunks(CHUNK)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let mut encoder = Encoder::new(true);
    let mut inflate = flate2::write::GzDecoder::new(Vec::new());
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        let bytes = encoder.piece((*piece).to_owned(), last).unwrap();
        inflate.write_all(&bytes).unwrap();
        inflate.flush().unwrap();
        // Everything sent so far can be read without waiting for the next piece.
        assert_eq!(
            inflate.get_ref().len(),
            pieces[..=i].concat().len(),
            "piece {i}"
        );
    }
    assert_eq!(inflate.finish().unwrap(), book.as_bytes());
    let mut plain = Encoder::new(false);
    assert_eq!(&plain.piece("abc".into(), true).unwrap()[..], b"abc");
}
