//! What the lookup and load benches share: the generated people as the upstream hands them
//! over, and the phone query mix drawn from them.
//!
//! Queries are drawn from the upstream attributes (`sn`, `givenName`, the numbers as written),
//! which our endpoint and slapd both hold, so the same filter text can be sent to either.
//! Everything depends only on the seeds: two runs send the same searches.

// Each bench uses a part of this module.
#![allow(dead_code)]

use anyhow::{bail, Context as _, Result};
use ldap3::{LdapConnAsync, Scope, SearchOptions};
use phonebook_proxy::numbers::NumberPlan;
use phonebook_proxy::sync::source::RawEntry;

use crate::support::gen::Person;

/// The data set of every bench (see `tests/support/gen.rs`).
pub const SEED: u64 = 11;

/// The base the phone book is served under.
pub const BASE_DN: &str = "ou=phonebook,dc=example,dc=com";

/// What a phone asks for in a directory search (name and number attributes).
pub const PHONE_ATTRS: &[&str] = &[
    "cn",
    "sn",
    "givenName",
    "o",
    "telephoneNumber",
    "mobile",
    "homePhone",
];

/// The hits a phone displays at most (Yealink's "LDAP max hits" default), sent as sizeLimit.
pub const PHONE_SIZE_LIMIT: i32 = 50;

/// The connector that reads the generated people: every person becomes an entry (no
/// pre-filter), with an `entryUUID` id, the default field mapping.
pub fn connector_toml(uri: &str, bind: &str) -> String {
    format!(
        r#"[[connector]]
name = "corp"
uri = "{uri}"
base_dn = "ou=people,dc=example,dc=com"
{bind}
filter = "(objectClass=inetOrgPerson)"
id_attribute = "entryUUID"
page_size = 500
max_removals = "100%"
"#
    )
}

/// The `entryUUID` the benches give person `index` (slapadd generates random ones).
pub fn entry_uuid(index: usize) -> String {
    format!("00000000-0000-4000-8000-{index:012x}")
}

/// People as the LDAP source would hand them over.
pub fn raw_people(people: &[Person]) -> Vec<RawEntry> {
    people
        .iter()
        .map(|p| {
            let mut raw = RawEntry::new(&p.dn);
            for (name, value) in &p.attrs {
                raw.push(name, value.clone());
            }
            raw.push("entryUUID", entry_uuid(p.index));
            raw
        })
        .collect()
}

/// splitmix64: deterministic draws without a `rand` dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5EED_F00D_B00C)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The kinds of phone searches the benches measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `(|(cn=Mül*)(sn=Mül*))`, 2–4 letters of a surname (Snom, Cisco, Yealink as typed).
    NamePrefix,
    /// `(|(cn=*üll*)(sn=*üll*))`, 3 letters from inside a surname or given name.
    NameContains,
    /// `(|(telephoneNumber=N)(mobile=N))`, N a stored number exactly as written upstream.
    CallerExact,
    /// `(|(telephoneNumber=N)(mobile=N))`, N a stored number in another notation (`+49…` for
    /// `089 …`, `0049…` for `+49 …`): what a PBX presents.
    CallerOtherFormat,
    /// `(|(telephoneNumber=*34567*)(mobile=*34567*))`, 5 consecutive digits of a number.
    NumberContains,
    /// `(|(telephoneNumber=*891234567)(mobile=*891234567))`: FreePBX superfecta, the
    /// national significant number as a suffix.
    NumberSuffix,
    /// `(&(objectClass=*)(sn>=A)(sn<=zz)(sn=M*))`, M the initial of a surname (Poly).
    PolyRange,
    /// `(|(telephoneNumber=N)(mobile=N)(ipPhone=N))`, Yealink's default number filter, N a
    /// number in another notation (incoming call lookup).
    YealinkOr,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::NamePrefix => "name_prefix",
            Kind::NameContains => "name_contains3",
            Kind::CallerExact => "caller_exact",
            Kind::CallerOtherFormat => "caller_other_format",
            Kind::NumberContains => "number_contains",
            Kind::NumberSuffix => "number_suffix",
            Kind::PolyRange => "poly_range",
            Kind::YealinkOr => "yealink_or",
        }
    }
}

/// Characters that need escaping in a filter value (RFC 4515).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => out.push_str(&format!("\\{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn numbers(p: &Person) -> Vec<&str> {
    p.values("telephoneNumber")
        .chain(p.values("mobile"))
        .collect()
}

/// slapd's telephoneNumber normalisation: spaces and hyphens dropped.
fn slapd_normalised(number: &str) -> String {
    number.chars().filter(|c| *c != ' ' && *c != '-').collect()
}

/// A filter of `kind` drawn from a random person, or `None` when the person drawn has nothing
/// to draw from (no number, a one-letter name); callers draw again.
fn draw(kind: Kind, p: &Person, r: &mut Rng, plan: &NumberPlan) -> Option<String> {
    let letters = |s: &str| -> Vec<char> { s.chars().collect() };
    match kind {
        Kind::NamePrefix => {
            let sn = letters(p.get("sn")?);
            let n = (2 + r.below(3)).min(sn.len());
            let prefix: String = sn[..n].iter().collect();
            (!prefix.contains(' ')).then(|| {
                let v = escape(&prefix);
                format!("(|(cn={v}*)(sn={v}*))")
            })
        }
        Kind::NameContains => {
            let name = if r.below(2) == 0 {
                p.get("sn")?
            } else {
                p.get("givenName")?
            };
            let chars = letters(name);
            if chars.len() < 4 {
                return None;
            }
            // from inside the name: not its first letter
            let at = 1 + r.below(chars.len() - 3);
            let piece: String = chars[at..at + 3].iter().collect();
            (piece.chars().all(char::is_alphabetic)).then(|| {
                let v = escape(&piece);
                format!("(|(cn=*{v}*)(sn=*{v}*))")
            })
        }
        Kind::CallerExact => {
            let n = *r.pick(&numbers(p));
            let v = escape(n);
            Some(format!("(|(telephoneNumber={v})(mobile={v}))"))
        }
        Kind::CallerOtherFormat | Kind::YealinkOr => {
            let written = *r.pick(&numbers(p));
            let e164 = plan.to_e164(written)?;
            let other = if written.starts_with('+') {
                format!("00{}", &e164[1..])
            } else {
                e164
            };
            Some(if kind == Kind::YealinkOr {
                format!("(|(telephoneNumber={other})(mobile={other})(ipPhone={other}))")
            } else {
                format!("(|(telephoneNumber={other})(mobile={other}))")
            })
        }
        Kind::NumberContains => {
            // 5 digits from one run of digits, as slapd's telephoneNumber index sees it
            let written = slapd_normalised(r.pick::<&str>(&numbers(p)));
            let runs: Vec<&str> = written
                .split(|c: char| !c.is_ascii_digit())
                .filter(|run| run.len() >= 6)
                .collect();
            if runs.is_empty() {
                return None;
            }
            let run = *r.pick(&runs);
            let at = 1 + r.below(run.len() - 5);
            let d = &run[at..at + 5];
            Some(format!("(|(telephoneNumber=*{d}*)(mobile=*{d}*))"))
        }
        Kind::NumberSuffix => {
            let written = *r.pick(&numbers(p));
            let e164 = plan.to_e164(written)?;
            let cc = if e164.starts_with("+1") { 2 } else { 3 };
            let nsn = e164.get(cc..)?;
            Some(format!("(|(telephoneNumber=*{nsn})(mobile=*{nsn}))"))
        }
        Kind::PolyRange => {
            let initial = p.get("sn")?.chars().next()?;
            let v = escape(&initial.to_uppercase().to_string());
            Some(format!("(&(objectClass=*)(sn>=A)(sn<=zz)(sn={v}*))"))
        }
    }
}

/// `count` filters of `kind` drawn from `people` with `seed`.
pub fn filters(people: &[Person], kind: Kind, count: usize, seed: u64) -> Vec<String> {
    let plan = NumberPlan::default();
    let mut r = Rng::new(seed ^ (kind as u64).wrapping_mul(0x1000_0001));
    let mut out = Vec::with_capacity(count);
    let mut attempts = 0usize;
    while out.len() < count {
        attempts += 1;
        assert!(
            attempts < count * 100 + 10_000,
            "cannot draw {count} {kind:?} filters from {} people",
            people.len()
        );
        let p = r.pick(people);
        if numbers(p).is_empty()
            && !matches!(
                kind,
                Kind::NamePrefix | Kind::NameContains | Kind::PolyRange
            )
        {
            continue;
        }
        if let Some(f) = draw(kind, p, &mut r, &plan) {
            out.push(f);
        }
    }
    out
}

/// An anonymous ldap3 connection, driven on the current runtime.
pub async fn connect(url: &str) -> Result<ldap3::Ldap> {
    let (conn, ldap) = LdapConnAsync::new(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    ldap3::drive!(conn);
    Ok(ldap)
}

/// One search; the number of entries, and whether the size limit stopped it.
pub async fn search(ldap: &mut ldap3::Ldap, base: &str, filter: &str) -> Result<(usize, bool)> {
    let res = ldap
        .with_search_options(SearchOptions::new().sizelimit(PHONE_SIZE_LIMIT))
        .search(base, Scope::Subtree, filter, PHONE_ATTRS)
        .await
        .with_context(|| format!("search {filter}"))?;
    match res.1.rc {
        0 => Ok((res.0.len(), false)),
        4 => Ok((res.0.len(), true)),
        rc => bail!("search {filter}: result code {rc} ({})", res.1.text),
    }
}
