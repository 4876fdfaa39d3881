//! Deterministic synthetic people for the test directory.
//!
//! Entry `i` depends only on `(seed, i)`: the first 1,000 people of a 100,000-people run are
//! exactly the people of a 1,000-people run (only the group member lists at the end differ).
//! Names mix German umlauts, accents, Greek, Cyrillic, CJK (family name first) and Arabic;
//! phone numbers use many real-world notations. No `rand` crate: a splitmix64 generator
//! seeded from `(seed, i)` drives everything.
//!
//! `people_ldif` writes RFC 2849 LDIF (values that are not plain ASCII are base64, `attr:: …`)
//! that both `slapadd` and the project's LDIF reader accept. With `with_memberof` the people
//! carry `memberOf` themselves, which is what an offline `slapadd` load needs because overlays
//! do not run there. `person` gives the same entries as plain structs for benches.

use std::fmt;
use std::fmt::Write as _;

use super::slapd::{
    CONTRACTORS_GROUP_DN, EDITORS_GROUP_DN, GROUPS_DN, PEOPLE_DN, PHONEBOOK_GROUP_DN, ROOT_DN,
};

/// The seed used when nothing else is asked for (and for `config/demo-directory.ldif`).
pub const DEFAULT_SEED: u64 = 1;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenOptions {
    /// Number of people (including the few service accounts and rooms).
    pub n: usize,
    pub seed: u64,
    /// Write `memberOf` values on the people (needed for an offline `slapadd` load when the
    /// memberof overlay is on; must be `false` when the overlay is off, because the attribute
    /// type is then unknown to slapd).
    pub with_memberof: bool,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            n: 1000,
            seed: DEFAULT_SEED,
            with_memberof: true,
        }
    }
}

/// Counts of what was generated; tests use them as expected values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenStats {
    /// All entries under `ou=people` (= `n`).
    pub people: usize,
    /// Ordinary people (`employeeType` employee or contractor).
    pub regular: usize,
    /// Service accounts, rooms included (`employeeType: service`).
    pub service: usize,
    /// `room-*` service entries: they have a phone number and are in the phone book.
    pub rooms: usize,
    /// `employeeType: disabled`.
    pub disabled: usize,
    /// Members of `cn=company-phonebook` (about 70% of regular people, plus rooms).
    pub phonebook: usize,
    /// Members of `cn=phonebook-editors`.
    pub editors: usize,
    /// Members of `cn=external-contractors`.
    pub contractors: usize,
    /// People with no telephoneNumber, mobile or homePhone.
    pub no_phone: usize,
    /// People with two or three telephoneNumber values.
    pub multi_phone: usize,
    /// People whose cn contains Greek, Cyrillic, CJK or Arabic letters.
    pub non_latin: usize,
    /// People whose cn or sn contains "mül" (case-insensitive), e.g. Müller, Mülheimer.
    pub mueller_like: usize,
}

impl fmt::Display for GenStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "people={} regular={} service={} rooms={} disabled={} phonebook={} editors={} \
             contractors={} no_phone={} multi_phone={} non_latin={} mueller_like={}",
            self.people,
            self.regular,
            self.service,
            self.rooms,
            self.disabled,
            self.phonebook,
            self.editors,
            self.contractors,
            self.no_phone,
            self.multi_phone,
            self.non_latin,
            self.mueller_like
        )
    }
}

/// What kind of entry a generated person is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `employeeType: employee` or `contractor`.
    Regular,
    /// `employeeType: service` (`svc-*` without phone, `room-*` with phone).
    Service,
    /// `employeeType: disabled`.
    Disabled,
}

/// One generated person, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The `i` it was generated from.
    pub index: usize,
    /// `uid=<login>,ou=people,dc=example,dc=com`
    pub dn: String,
    pub uid: String,
    pub kind: Kind,
    /// All attributes in LDIF order, objectClass first, `memberOf` values last.
    pub attrs: Vec<(String, String)>,
    /// Group DNs this person is a member of (the same as the `memberOf` values).
    pub groups: Vec<&'static str>,
    /// Values of telephoneNumber + mobile + homePhone.
    pub phone_count: usize,
    /// Two or three telephoneNumber values.
    pub multi_phone: bool,
    /// cn has Greek, Cyrillic, CJK or Arabic letters.
    pub non_latin: bool,
    /// cn or sn contains "mül" (case-insensitive).
    pub mueller_like: bool,
}

impl Person {
    /// First value of `attr` (attribute names compared case-insensitively).
    pub fn get(&self, attr: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(attr))
            .map(|(_, v)| v.as_str())
    }

    /// All values of `attr` (attribute names compared case-insensitively).
    pub fn values<'a>(&'a self, attr: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attrs
            .iter()
            .filter(move |(a, _)| a.eq_ignore_ascii_case(attr))
            .map(|(_, v)| v.as_str())
    }

    /// Appends this person as one LDIF record (with a trailing empty line) to `out`.
    pub fn write_ldif(&self, with_memberof: bool, out: &mut String) {
        ldif_line(out, "dn", &self.dn);
        for (a, v) in &self.attrs {
            if !with_memberof && a == "memberOf" {
                continue;
            }
            ldif_line(out, a, v);
        }
        out.push('\n');
    }
}

/// Generates people `0..n` plus the `ou=people`/`ou=groups` containers and the three groups.
///
/// The suffix entry `dc=example,dc=com` itself is not included (the slapd harness creates it).
/// The LDIF starts with comment lines (incl. `# stats: …`). There is no `version: 1` line:
/// slapadd 2.5 rejects it ("entry -1 has no dn"), and RFC 2849 readers treat it as optional.
pub fn people_ldif(opts: &GenOptions) -> (String, GenStats) {
    let mut stats = GenStats::default();
    let mut body = String::with_capacity(opts.n * 560 + 4096);
    let mut phonebook: Vec<String> = Vec::new();
    let mut editors: Vec<String> = Vec::new();
    let mut contractors: Vec<String> = Vec::new();

    for dn in [PEOPLE_DN, GROUPS_DN] {
        let ou = dn
            .strip_prefix("ou=")
            .and_then(|rest| rest.split(',').next())
            .expect("container DNs start with ou=");
        let _ = write!(
            body,
            "dn: {dn}\nobjectClass: top\nobjectClass: organizationalUnit\nou: {ou}\n\n"
        );
    }

    for i in 0..opts.n {
        let p = person(opts.seed, i);
        stats.people += 1;
        match p.kind {
            Kind::Regular => stats.regular += 1,
            Kind::Service => stats.service += 1,
            Kind::Disabled => stats.disabled += 1,
        }
        if p.uid.starts_with("room-") {
            stats.rooms += 1;
        }
        if p.phone_count == 0 {
            stats.no_phone += 1;
        }
        stats.multi_phone += usize::from(p.multi_phone);
        stats.non_latin += usize::from(p.non_latin);
        stats.mueller_like += usize::from(p.mueller_like);
        for g in &p.groups {
            match *g {
                PHONEBOOK_GROUP_DN => phonebook.push(p.dn.clone()),
                EDITORS_GROUP_DN => editors.push(p.dn.clone()),
                CONTRACTORS_GROUP_DN => contractors.push(p.dn.clone()),
                other => unreachable!("unknown group {other}"),
            }
        }
        p.write_ldif(opts.with_memberof, &mut body);
    }

    stats.phonebook = phonebook.len();
    stats.editors = editors.len();
    stats.contractors = contractors.len();
    write_group(
        &mut body,
        PHONEBOOK_GROUP_DN,
        "People and rooms published in the company phone book",
        &phonebook,
    );
    write_group(
        &mut body,
        EDITORS_GROUP_DN,
        "May edit phone book entries",
        &editors,
    );
    write_group(
        &mut body,
        CONTRACTORS_GROUP_DN,
        "External staff",
        &contractors,
    );

    let mut out = String::with_capacity(body.len() + 512);
    let _ = write!(
        out,
        "# Synthetic test data generated by tests/support/gen.rs \
         (n={} seed={} with_memberof={}); all names and numbers are made up.\n\
         # stats: {stats}\n\n",
        opts.n, opts.seed, opts.with_memberof
    );
    out.push_str(&body);
    (out, stats)
}

/// The LDIF for the members of one group; groupOfNames needs at least one member, so an empty
/// group gets the admin DN.
fn write_group(out: &mut String, dn: &str, description: &str, members: &[String]) {
    let cn = dn
        .strip_prefix("cn=")
        .and_then(|rest| rest.split(',').next())
        .expect("group DNs start with cn=");
    ldif_line(out, "dn", dn);
    out.push_str("objectClass: top\nobjectClass: groupOfNames\n");
    ldif_line(out, "cn", cn);
    ldif_line(out, "description", description);
    if members.is_empty() {
        ldif_line(out, "member", ROOT_DN);
    }
    for m in members {
        ldif_line(out, "member", m);
    }
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------
// LDIF encoding (RFC 2849)

/// The `ou=people` container of hand-written people ([`person_ldif`]).
pub const PEOPLE_OU: &str =
    "dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n";

/// One hand-written inetOrgPerson `uid=<uid>,ou=people,dc=example,dc=com` with `lines`
/// (`(attribute, value)`, repeated attributes allowed), for tests that need exact people.
pub fn person_ldif(uid: &str, lines: &[(&str, &str)]) -> String {
    let mut out = format!(
        "dn: uid={uid},{PEOPLE_DN}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: {uid}\n"
    );
    for (name, value) in lines {
        ldif_line(&mut out, name, value);
    }
    out.push('\n');
    out
}

/// Appends `attr: value` or, when RFC 2849 requires it, `attr:: base64(value)`.
/// Lines are not folded (slapadd and RFC 2849 readers accept long lines).
pub fn ldif_line(out: &mut String, attr: &str, value: &str) {
    out.push_str(attr);
    if needs_base64(value) {
        out.push_str(":: ");
        base64::Engine::encode_string(
            &base64::engine::general_purpose::STANDARD,
            value.as_bytes(),
            out,
        );
    } else {
        out.push_str(": ");
        out.push_str(value);
    }
    out.push('\n');
}

/// SAFE-STRING of RFC 2849: SAFE-INIT-CHAR (no NUL, LF, CR, SPACE, ':' or '<') followed by
/// SAFE-CHARs (1..=127 except LF and CR). A trailing space is base64-encoded as well, because
/// readers commonly strip it.
pub fn needs_base64(value: &str) -> bool {
    let b = value.as_bytes();
    match b.first() {
        None => false,
        Some(&first) => {
            matches!(first, b' ' | b':' | b'<')
                || b.last() == Some(&b' ')
                || b.iter()
                    .any(|&c| c == 0 || c == b'\n' || c == b'\r' || c > 0x7e)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PRNG

/// splitmix64: tiny, fast, good enough for test data, and stable across platforms/releases.
struct Rng(u64);

impl Rng {
    fn for_entry(seed: u64, i: usize) -> Rng {
        let mut s = Rng(seed ^ 0x5048_4f4e_4542_4f4f); // "PHONEBOO"
        let a = s.next_u64();
        let mut t = Rng(a ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let b = t.next_u64();
        Rng(b)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn digits(&mut self, k: usize) -> String {
        (0..k)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Pools

type Names = &'static [(&'static str, &'static str)];

/// (weight, given names, family names, family name first); each name is (display, ascii login).
const CULTURES: &[(u32, Names, Names, bool)] = &[
    (
        50,
        &[
            ("Jürgen", "juergen"),
            ("Jörg", "joerg"),
            ("Björn", "bjoern"),
            ("Günther", "guenther"),
            ("Anna", "anna"),
            ("Thomas", "thomas"),
            ("Michael", "michael"),
            ("Stefan", "stefan"),
            ("Sabine", "sabine"),
            ("Ursula", "ursula"),
            ("Katrin", "katrin"),
            ("Maximilian", "maximilian"),
            ("Lena", "lena"),
            ("Lukas", "lukas"),
            ("Sophie", "sophie"),
            ("Felix", "felix"),
            ("Marie", "marie"),
            ("Paul", "paul"),
            ("Hannah", "hannah"),
            ("Andreas", "andreas"),
            ("Julia", "julia"),
            ("Peter", "peter"),
            ("Claudia", "claudia"),
            ("Wolfgang", "wolfgang"),
            ("Käthe", "kaethe"),
            ("Hans-Jürgen", "hansjuergen"),
            ("Anne-Marie", "annemarie"),
        ],
        &[
            ("Müller", "mueller"),
            ("Müller", "mueller"),
            ("Mülheimer", "muelheimer"),
            ("Schäfer", "schaefer"),
            ("Weiß", "weiss"),
            ("Schröder", "schroeder"),
            ("Köhler", "koehler"),
            ("Bäcker", "baecker"),
            ("Hübner", "huebner"),
            ("Schmidt", "schmidt"),
            ("Schneider", "schneider"),
            ("Fischer", "fischer"),
            ("Meyer", "meyer"),
            ("Wagner", "wagner"),
            ("Becker", "becker"),
            ("Hoffmann", "hoffmann"),
            ("Schulz", "schulz"),
            ("Koch", "koch"),
            ("Richter", "richter"),
            ("Klein", "klein"),
            ("Wolf", "wolf"),
            ("Neumann", "neumann"),
            ("Schwarz", "schwarz"),
            ("Zimmermann", "zimmermann"),
            ("Braun", "braun"),
            ("Krüger", "krueger"),
            ("Hofmann", "hofmann"),
            ("Hartmann", "hartmann"),
            ("Lange", "lange"),
            ("Müller-Lüdenscheidt", "muellerluedenscheidt"),
            ("Meier-Schäfer", "meierschaefer"),
            ("von Weizsäcker", "vonweizsaecker"),
        ],
        false,
    ),
    (
        12,
        &[
            ("José", "jose"),
            ("François", "francois"),
            ("Zoë", "zoe"),
            ("Chloé", "chloe"),
            ("Renée", "renee"),
            ("Ángel", "angel"),
            ("Inés", "ines"),
            ("João", "joao"),
            ("Noémie", "noemie"),
            ("Søren", "soeren"),
            ("Åsa", "asa"),
        ],
        &[
            ("Núñez", "nunez"),
            ("García", "garcia"),
            ("Pérez", "perez"),
            ("Gonçalves", "goncalves"),
            ("Lefèvre", "lefevre"),
            ("Dupont", "dupont"),
            ("Ødegård", "odegard"),
            ("de la Cruz", "delacruz"),
            ("van der Berg", "vanderberg"),
            ("Håkansson", "hakansson"),
        ],
        false,
    ),
    (
        6,
        &[
            ("Ömer", "oemer"),
            ("Çağla", "cagla"),
            ("Fatma", "fatma"),
            ("Ayşe", "ayse"),
            ("Mehmet", "mehmet"),
            ("Dženan", "dzenan"),
        ],
        &[
            ("Özdemir", "oezdemir"),
            ("Yılmaz", "yilmaz"),
            ("Çelik", "celik"),
            ("Şahin", "sahin"),
            ("Hodžić", "hodzic"),
        ],
        false,
    ),
    (
        5,
        &[
            ("Łukasz", "lukasz"),
            ("Małgorzata", "malgorzata"),
            ("Jiří", "jiri"),
            ("Zuzana", "zuzana"),
        ],
        &[
            ("Wójcik", "wojcik"),
            ("Nowak", "nowak"),
            ("Dvořák", "dvorak"),
            ("Kowalczyk", "kowalczyk"),
        ],
        false,
    ),
    (
        10,
        &[
            ("John", "john"),
            ("Mary", "mary"),
            ("David", "david"),
            ("Sarah", "sarah"),
            ("Olivia", "olivia"),
            ("Priya", "priya"),
        ],
        &[
            ("Smith", "smith"),
            ("Johnson", "johnson"),
            ("O'Brien", "obrien"),
            ("Patel", "patel"),
            ("Nguyễn", "nguyen"),
        ],
        false,
    ),
    (
        2,
        &[("Γιώργος", "georgios"), ("Ελένη", "eleni")],
        &[("Παπαδόπουλος", "papadopoulos"), ("Οικονόμου", "oikonomou")],
        false,
    ),
    (
        3,
        &[("Иван", "ivan"), ("Ольга", "olga"), ("Дмитрий", "dmitry")],
        &[("Петров", "petrov"), ("Смирнова", "smirnova")],
        false,
    ),
    (
        2,
        &[("伟", "wei"), ("芳", "fang"), ("秀英", "xiuying")],
        &[("王", "wang"), ("李", "li"), ("张", "zhang")],
        true,
    ),
    (
        2,
        &[("健", "ken"), ("さくら", "sakura"), ("翔太", "shota")],
        &[("佐藤", "sato"), ("鈴木", "suzuki")],
        true,
    ),
    (
        1,
        &[("محمد", "mohammed"), ("فاطمة", "fatima")],
        &[("عبد الله", "abdullah"), ("حداد", "haddad")],
        false,
    ),
];

const TITLES: &[&str] = &[
    "Software Engineer",
    "Senior Software Engineer",
    "Team Lead",
    "Head of Sales",
    "Sales Representative",
    "Accountant",
    "Controller",
    "HR Business Partner",
    "Werkstudent",
    "Geschäftsführer",
    "Prokurist",
    "Assistentin der Geschäftsführung",
    "IT-Administrator",
    "Support Engineer",
    "Product Manager",
    "Chargé d'affaires",
    "Ingénieur",
    "Praktikant",
    "Projektleiterin",
    "Buyer",
    "Logistics Coordinator",
];

const ORGS: &[&str] = &[
    "Example GmbH",
    "Example GmbH",
    "Example GmbH",
    "Example Services GmbH",
    "Example Inc.",
    "Exemple SARL",
];

const OUS: &[&str] = &[
    "Vertrieb",
    "Entwicklung",
    "Buchhaltung",
    "Personal",
    "IT",
    "Einkauf",
    "Logistik",
    "Geschäftsleitung",
    "Marketing",
    "Kundendienst",
    "R&D",
    "Qualitätssicherung",
];

/// (city, country code, area code); Munich three times: most staff sit at the head office.
const CITIES: &[(&str, &str, &str)] = &[
    ("München", "+49", "89"),
    ("München", "+49", "89"),
    ("München", "+49", "89"),
    ("Köln", "+49", "221"),
    ("Düsseldorf", "+49", "211"),
    ("Berlin", "+49", "30"),
    ("Zürich", "+41", "44"),
    ("Wien", "+43", "1"),
    ("Paris", "+33", "1"),
    ("New York", "+1", "212"),
    ("São Paulo", "+55", "11"),
    ("Tokyo", "+81", "3"),
    ("Kraków", "+48", "12"),
];

/// (login prefix, cn) of service accounts; `room-*` ones are phone-book rooms.
const SERVICE: &[(&str, &str)] = &[
    ("svc-backup", "Backup Service"),
    ("svc-printer", "Print Server"),
    ("svc-sso", "SSO Connector"),
    ("room-isar", "Konferenzraum Isar"),
    ("room-wuerm", "Besprechungsraum Würm"),
    ("svc-ldapsync", "LDAP Sync"),
];

const MOBILE_PREFIXES: &[&str] = &["151", "160", "170", "171", "172", "176", "179"];

// ---------------------------------------------------------------------------------------------
// Phone numbers

/// A landline in one of many notations; Munich numbers are often in the company's DID range
/// `+49 89 1234-xxx`.
fn office_number(r: &mut Rng, cc: &str, area: &str) -> String {
    let style = r.below(12);
    if cc == "+49" && area == "89" && style < 5 {
        let ext = r.digits(3);
        return match r.below(6) {
            0 => format!("+49 89 1234-{ext}"),
            1 => format!("089 1234{ext}"),
            2 => format!("(0)89/1234 {ext}"),
            3 => format!("+49 (0)89 1234-{ext}"),
            4 => format!("0049 89 1234{ext}"),
            _ => format!("+49891234{ext}"),
        };
    }
    if cc == "+1" {
        let (a, b) = (r.digits(3), r.digits(4));
        return match r.below(3) {
            0 => format!("+1 (555) {a}-{b}"),
            1 => format!("+1 555 {a} {b}"),
            _ => format!("(555) {a}-{b} ext. {}", r.digits(3)),
        };
    }
    let (a, b) = (r.digits(4), r.digits(3));
    let cc_digits = &cc[1..];
    match style {
        0..=2 => format!("{cc} {area} {a}-{b}"),
        3 | 4 if cc == "+49" => format!("0{area} {a}{b}"),
        5 | 6 if cc == "+49" => format!("(0){area}/{a} {b}"),
        3..=7 => format!("00{cc_digits}-{area}-{a}{b}"),
        8 => format!("{cc}{area}{a}{b}"),
        9 => format!("{cc} ({area}) {a} {b}"),
        _ => format!("{cc} {area} {} {} {b}", &a[..2], &a[2..]),
    }
}

fn mobile_number(r: &mut Rng, cc: &str) -> String {
    match cc {
        "+49" => {
            let p = r.pick(MOBILE_PREFIXES);
            let n = r.digits(7);
            match r.below(5) {
                0 => format!("+49 {p} {n}"),
                1 => format!("0{p} {n}"),
                2 => format!("0{p}-{n}"),
                3 => format!("+49 (0){p} {} {}", &n[..3], &n[3..]),
                _ => format!("+49{p}{n}"),
            }
        }
        "+1" => format!("+1 (555) {}-{}", r.digits(3), r.digits(4)),
        _ => format!("{cc} {} {} {}", r.digits(3), r.digits(3), r.digits(3)),
    }
}

// ---------------------------------------------------------------------------------------------
// People

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// Letters from scripts other than Latin (Greek, Cyrillic, Arabic, CJK, kana, …).
fn is_non_latin(s: &str) -> bool {
    s.chars().any(|c| {
        let cp = u32::from(c);
        c.is_alphabetic() && cp > 0x024F && !(0x1E00..=0x1EFF).contains(&cp)
    })
}

/// Person `i` of the data set `seed`. Depends only on `(seed, i)`.
pub fn person(seed: u64, i: usize) -> Person {
    let r = &mut Rng::for_entry(seed, i);
    let kind = if i == 3 || i == 11 || (i > 20 && r.chance(0.0002)) {
        Kind::Service
    } else if i == 5 || i == 17 || (i > 20 && r.chance(0.01)) {
        Kind::Disabled
    } else {
        Kind::Regular
    };
    let &(city, cc, area) = r.pick(CITIES);

    let mut attrs: Vec<(String, String)> = Vec::with_capacity(28);
    for oc in ["top", "person", "organizationalPerson", "inetOrgPerson"] {
        attrs.push(("objectClass".into(), oc.into()));
    }
    let mut add = |a: &str, v: String| attrs.push((a.to_string(), v));
    let mut phone_count = 0;
    let mut multi_phone = false;
    let mut non_latin = false;
    let mut mueller_like = false;
    let uid;

    if kind == Kind::Service {
        let (prefix, cn) = SERVICE[i % SERVICE.len()];
        uid = format!("{prefix}-{i}");
        add("uid", uid.clone());
        add("cn", cn.to_string());
        let sn = cn.rsplit(' ').next().unwrap_or(cn);
        add("sn", sn.to_string());
        add("displayName", cn.to_string());
        add("employeeType", "service".into());
        if uid.starts_with("room-") {
            add("telephoneNumber", office_number(r, cc, area));
            phone_count = 1;
            add("l", city.to_string());
        }
        add("mail", format!("{uid}@example.com"));
        add("description", "Service account - not a person".into());
    } else {
        let total: u32 = CULTURES.iter().map(|c| c.0).sum();
        let mut w = r.below(total as usize) as u32;
        let &(_, givens, families, family_first) = CULTURES
            .iter()
            .find(|c| {
                if w < c.0 {
                    true
                } else {
                    w -= c.0;
                    false
                }
            })
            .expect("weights cover the range");
        let &(g, ga) = r.pick(givens);
        let &(s, sa) = r.pick(families);
        uid = format!("{}{sa}{i}", &ga[..1]);
        add("uid", uid.clone());
        let cn = if family_first {
            format!("{s}{g}")
        } else {
            format!("{g} {s}")
        };
        let alias = format!("{} {}", capitalize(ga), capitalize(sa));
        let second_cn = r.chance(0.03) && alias.to_lowercase() != cn.to_lowercase();
        non_latin = is_non_latin(&cn);
        mueller_like = format!("{cn}{s}").to_lowercase().contains("mül");
        add("cn", cn.clone());
        if second_cn {
            add("cn", alias);
        }
        add("sn", s.to_string());
        add("givenName", g.to_string());
        let dr = if r.chance(0.05) { "Dr. " } else { "" };
        let display = if family_first {
            if r.chance(0.5) {
                cn.clone()
            } else {
                format!("{cn} ({} {})", capitalize(sa), capitalize(ga))
            }
        } else {
            match r.below(3) {
                0 => format!("{dr}{g} {s}"),
                1 => format!("{s}, {g}"),
                _ => format!("{dr}{g} {s} ({})", r.pick(OUS)),
            }
        };
        add("displayName", display);
        add("title", r.pick(TITLES).to_string());
        add("o", r.pick(ORGS).to_string());
        add("ou", r.pick(OUS).to_string());
        add("l", city.to_string());
        add("mail", format!("{uid}@example.com"));
        if r.chance(0.05) {
            add("mail", format!("{ga}.{sa}@example.de"));
        }
        add("employeeNumber", (100_000 + i).to_string());
        if !r.chance(0.10) {
            // 10% have no number at all
            let k = if r.chance(0.85) {
                1
            } else {
                *r.pick(&[2, 2, 3])
            };
            for _ in 0..k {
                add("telephoneNumber", office_number(r, cc, area));
            }
            phone_count += k;
            multi_phone = k > 1;
            if r.chance(0.5) {
                add("mobile", mobile_number(r, cc));
                phone_count += 1;
            }
            if r.chance(0.1) {
                add("homePhone", office_number(r, cc, area));
                phone_count += 1;
            }
            if r.chance(0.15) {
                add("facsimileTelephoneNumber", office_number(r, cc, area));
            }
        }
        if kind == Kind::Disabled {
            add("employeeType", "disabled".into());
            add(
                "description",
                "Account disabled - left the company".to_string(),
            );
        } else {
            let t = if r.chance(0.1) {
                "contractor"
            } else {
                "employee"
            };
            add("employeeType", t.into());
        }
    }

    let mut groups: Vec<&'static str> = Vec::new();
    match kind {
        Kind::Regular => {
            if r.chance(0.70) {
                groups.push(PHONEBOOK_GROUP_DN);
            }
            if r.chance(0.05) {
                groups.push(CONTRACTORS_GROUP_DN);
            }
            if i % 997 == 1 {
                groups.push(EDITORS_GROUP_DN);
            }
        }
        Kind::Service if uid.starts_with("room-") => groups.push(PHONEBOOK_GROUP_DN),
        _ => {}
    }
    for g in &groups {
        add("memberOf", g.to_string());
    }

    Person {
        index: i,
        dn: format!("uid={uid},{PEOPLE_DN}"),
        uid,
        kind,
        attrs,
        groups,
        phone_count,
        multi_phone,
        non_latin,
        mueller_like,
    }
}

/// All people `0..n` of data set `seed` (no containers or groups).
pub fn people(seed: u64, n: usize) -> Vec<Person> {
    (0..n).map(|i| person(seed, i)).collect()
}
