//! Phone numbers as the company's phone system sees them: normalised to E.164 (the one form
//! every matcher compares), inside or outside the company's own number blocks, and written
//! back out in the notation each endpoint serves.
//!
//! Upstream directories hold numbers in every notation people type (`089 1234-567`,
//! `+49 (0)89 1234567`, `0049 89 1234567`, or only the extension `826`); phones and PBXes ask
//! in others (`826`, `891234826`, `+49891234826`) and dial what they are given. Normalising
//! both sides with one [`NumberPlan`] is what lets them meet, and [`NumberFormat::Dialable`]
//! is what lets a desk phone dial a colleague's extension instead of the trunk. Numbers that
//! cannot be normalised safely are left alone rather than guessed at.

use std::borrow::Cow;

use crate::model::PhoneNumber;

/// The dialling conventions of the site: how national and international numbers are written,
/// and which numbers are the company's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPlan {
    /// Country calling code without `+`, e.g. `49`.
    pub country_code: String,
    /// Prefix that introduces an international number, e.g. `00`.
    pub international_prefix: String,
    /// Trunk prefix of national numbers, e.g. `0`; empty where a country has none.
    pub national_prefix: String,
    /// What a desk phone dials before an outside number (`0` on many PBXes); empty when the
    /// PBX routes outside numbers without one.
    pub outside_prefix: String,
    /// The company's number blocks: a number inside one is reached by its extension.
    pub extensions: Vec<ExtensionBlock>,
}

/// A block of the company's own numbers: `prefix` followed by exactly `digits` more digits is
/// an internal number, and those digits are its extension (`+49891234` + `826`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionBlock {
    /// The E.164 digits before the extension, without `+` (`49891234`).
    pub prefix: String,
    /// How many digits an extension of this block has.
    pub digits: usize,
}

/// How an endpoint writes the numbers it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberFormat {
    /// Exactly as upstream wrote it.
    AsWritten,
    /// `+49891234826`.
    E164,
    /// `0891234826` at home, `0041441234567` for a foreign number: what a line outside the
    /// company dials inside the country.
    National,
    /// What a desk phone on the company's PBX dials: the extension for an internal number,
    /// else the outside prefix followed by the national form.
    Dialable,
}

impl NumberFormat {
    /// The configuration names, in the order the docs list them.
    pub const NAMES: [&'static str; 4] = ["as_written", "e164", "national", "dialable"];

    pub fn parse(name: &str) -> Option<NumberFormat> {
        Some(match name {
            "as_written" => NumberFormat::AsWritten,
            "e164" => NumberFormat::E164,
            "national" => NumberFormat::National,
            "dialable" => NumberFormat::Dialable,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            NumberFormat::AsWritten => "as_written",
            NumberFormat::E164 => "e164",
            NumberFormat::National => "national",
            NumberFormat::Dialable => "dialable",
        }
    }
}

impl Default for NumberPlan {
    fn default() -> Self {
        NumberPlan {
            country_code: "49".into(),
            international_prefix: "00".into(),
            national_prefix: "0".into(),
            outside_prefix: String::new(),
            extensions: Vec::new(),
        }
    }
}

/// E.164 allows at most 15 digits; fewer than 7 is an extension or a short code, not a
/// number anyone can dial from outside.
const E164_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

impl NumberPlan {
    /// A number as written plus its E.164 form, if it has one.
    pub fn phone(&self, written: &str) -> PhoneNumber {
        PhoneNumber {
            written: written.trim().to_owned(),
            e164: self.to_e164(written),
        }
    }

    /// Recomputes the E.164 form of every number of `entry` under this plan. The form depends
    /// on the plan as well as on what was written — a bare extension (`826`) is a number only
    /// inside a configured block — so the one stored at sync time goes stale when `[numbers]`
    /// changes; what is served is renumbered from the written form under the plan in force.
    pub fn renumber(&self, entry: &mut crate::model::Entry) {
        for kind in crate::model::PhoneKind::ALL {
            for p in entry.phones_mut(kind) {
                p.e164 = self.to_e164(&p.written);
            }
        }
    }

    /// Whether the company's number blocks are known, which makes `dialable` the default
    /// served format.
    pub fn has_extensions(&self) -> bool {
        !self.extensions.is_empty()
    }

    /// `+<digits>` for a number in any common notation, or `None` when the notation carries
    /// something E.164 cannot (an extension suffix, letters) or lacks what it needs (an area
    /// code). A bare extension (`826`) is the number of the one block whose extensions have
    /// that many digits; with two such blocks it is ambiguous and stays without one.
    pub fn to_e164(&self, written: &str) -> Option<String> {
        let s = written.trim();
        let international = s.starts_with('+');
        let body = if international { &s[1..] } else { s };
        if !body.chars().all(|c| {
            c.is_ascii_digit() || c.is_whitespace() || matches!(c, '-' | '/' | '.' | '(' | ')')
        }) {
            return None;
        }
        let body = drop_trunk_zero(body);
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        let national = if international {
            digits
        } else if let Some(block) = self.block_of_extension(&digits) {
            format!("{}{digits}", block.prefix)
        } else if !self.international_prefix.is_empty()
            && digits.starts_with(&self.international_prefix)
        {
            digits[self.international_prefix.len()..].to_owned()
        } else if !self.national_prefix.is_empty() && digits.starts_with(&self.national_prefix) {
            format!(
                "{}{}",
                self.country_code,
                &digits[self.national_prefix.len()..]
            )
        } else if self.national_prefix.is_empty() && !digits.is_empty() {
            format!("{}{}", self.country_code, digits)
        } else {
            // No prefix at all: a local number without its area code, or an extension.
            return None;
        };
        if !E164_DIGITS.contains(&national.len()) || national.starts_with('0') {
            return None;
        }
        // `+49 089 …` (or `+49 (0)(0)89 …`) keeps a trunk prefix no E.164 number of the home
        // country has: read as written it is `+49 0…`, which `national` writes as
        // `00891234567` — an international call. Country codes are prefix-free, so the
        // home country is recognised by its code alone.
        if !self.national_prefix.is_empty()
            && national
                .strip_prefix(self.country_code.as_str())
                .is_some_and(|nsn| nsn.starts_with(self.national_prefix.as_str()))
        {
            return None;
        }
        Some(format!("+{national}"))
    }

    /// The one block whose extensions are written with exactly as many digits as `digits`
    /// has, when `digits` could be an extension (no trunk or international prefix).
    fn block_of_extension(&self, digits: &str) -> Option<&ExtensionBlock> {
        let prefixed = |p: &str| !p.is_empty() && digits.starts_with(p);
        if digits.is_empty()
            || prefixed(&self.national_prefix)
            || prefixed(&self.international_prefix)
        {
            return None;
        }
        let mut fitting = self.extensions.iter().filter(|b| b.digits == digits.len());
        match (fitting.next(), fitting.next()) {
            (Some(block), None) => Some(block),
            _ => None,
        }
    }

    /// The extension of an E.164 number (`+49891234826` or its digits) inside one of the
    /// company's blocks.
    pub fn extension<'a>(&self, e164: &'a str) -> Option<&'a str> {
        let digits = e164.trim_start_matches('+');
        self.extensions.iter().find_map(|b| {
            digits
                .strip_prefix(b.prefix.as_str())
                .filter(|rest| rest.len() == b.digits)
        })
    }

    /// The national significant number of a number in the home country: its E.164 digits
    /// without the country code (`890859929`), which is how some PBXes present callers.
    pub fn national_significant<'a>(&self, e164: &'a str) -> Option<&'a str> {
        e164.trim_start_matches('+')
            .strip_prefix(self.country_code.as_str())
    }

    /// The number as dialled from a public line in the home country: trunk prefix and
    /// national number at home, international prefix and country code for the rest.
    pub fn national(&self, e164: &str) -> String {
        match self.national_significant(e164) {
            Some(nsn) => format!("{}{nsn}", self.national_prefix),
            None => format!(
                "{}{}",
                self.international_prefix,
                e164.trim_start_matches('+')
            ),
        }
    }

    /// The number as a desk phone on the company's PBX dials it: the extension when it has
    /// one that names this number alone, else the outside prefix and the national form.
    ///
    /// An extension that two blocks share (`826` in Munich and in Berlin), or one that starts
    /// like a national or international number (`012`), would ring someone else or go out on
    /// a trunk, so it is dialled by its whole number: the one way to reach the right person.
    pub fn dialable(&self, e164: &str) -> String {
        let digits = e164.trim_start_matches('+');
        let names_only_this = |ext: &&str| {
            self.block_of_extension(ext)
                .is_some_and(|b| digits.strip_prefix(b.prefix.as_str()) == Some(*ext))
        };
        match self.extension(e164).filter(names_only_this) {
            Some(ext) => ext.to_owned(),
            None => format!("{}{}", self.outside_prefix, self.national(e164)),
        }
    }

    /// `number` written in `format`; a number without an E.164 form is served as written,
    /// since nothing safer can be said about it.
    pub fn format<'a>(&self, number: &'a PhoneNumber, format: NumberFormat) -> Cow<'a, str> {
        let e164 = match (&number.e164, format) {
            (_, NumberFormat::AsWritten) | (None, _) => return Cow::Borrowed(&number.written),
            (Some(e164), _) => e164,
        };
        match format {
            NumberFormat::AsWritten | NumberFormat::E164 => Cow::Borrowed(e164),
            NumberFormat::National => Cow::Owned(self.national(e164)),
            NumberFormat::Dialable => Cow::Owned(self.dialable(e164)),
        }
    }
}

/// Removes a parenthesised trunk zero written after the country code (`+49 (0)89 …`), which
/// must not be dialled internationally. A leading `(0)89` is the national prefix itself and
/// stays.
fn drop_trunk_zero(body: &str) -> std::borrow::Cow<'_, str> {
    match body.find("(0)") {
        Some(at) if body[..at].chars().any(|c| c.is_ascii_digit()) => {
            std::borrow::Cow::Owned(format!("{}{}", &body[..at], &body[at + 3..]))
        }
        _ => std::borrow::Cow::Borrowed(body),
    }
}

/// The digits of a string, in order: the format-free form used for substring matching.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(s: &str) -> Option<String> {
        NumberPlan::default().to_e164(s)
    }

    #[test]
    fn german_notations_all_normalise_to_one_number() {
        for written in [
            "089 1234-567",
            "+49 (0)89 1234567",
            "0049 89 1234567",
            "+49 89 1234-567",
            "(0)89/1234 567",
            "+49891234567",
            "+49 (89) 1234-567",
            "0049-89-1234567",
            "089.1234.567",
        ] {
            assert_eq!(e164(written).as_deref(), Some("+49891234567"), "{written}");
        }
    }

    #[test]
    fn foreign_numbers_keep_their_country_code() {
        assert_eq!(e164("+1 (555) 010-2030").as_deref(), Some("+15550102030"));
        assert_eq!(e164("0041 44 1234 567").as_deref(), Some("+41441234567"));
        assert_eq!(e164("+43 1 1234-567").as_deref(), Some("+4311234567"));
    }

    #[test]
    fn extensions_letters_and_short_numbers_have_no_e164_form() {
        for written in [
            "(555) 010-2030 ext. 123",
            "+49 89 1234567 x12",
            "1234",
            "555 0102030",
            "",
            "+",
            "+49 89 1234#5",
            "0",
            "+1234567890123456",
            // A trunk prefix after the home country code is no E.164 number.
            "+49 089 1234567",
            "+49 (0) (0)89 1234567",
            "0049 089 1234567",
        ] {
            assert_eq!(e164(written), None, "{written:?}");
        }
    }

    #[test]
    fn phone_keeps_the_written_form_even_without_e164() {
        let p = NumberPlan::default().phone("  (555) 010-2030 ext. 123 ");
        assert_eq!(p.written, "(555) 010-2030 ext. 123");
        assert_eq!(p.e164, None);
    }

    #[test]
    fn other_plans_use_their_own_prefixes() {
        let us = NumberPlan {
            country_code: "1".into(),
            international_prefix: "011".into(),
            national_prefix: "1".into(),
            ..NumberPlan::default()
        };
        assert_eq!(
            us.to_e164("1 555 010 2030").as_deref(),
            Some("+15550102030")
        );
        assert_eq!(
            us.to_e164("011 49 89 1234567").as_deref(),
            Some("+49891234567")
        );
        let no_trunk = NumberPlan {
            country_code: "39".into(),
            international_prefix: "00".into(),
            national_prefix: String::new(),
            ..NumberPlan::default()
        };
        assert_eq!(
            no_trunk.to_e164("06 1234 5678").as_deref(),
            Some("+390612345678")
        );
    }

    fn company() -> NumberPlan {
        NumberPlan {
            outside_prefix: "0".into(),
            extensions: vec![
                ExtensionBlock {
                    prefix: "49891234".into(),
                    digits: 3,
                },
                ExtensionBlock {
                    prefix: "49305678".into(),
                    digits: 4,
                },
            ],
            ..NumberPlan::default()
        }
    }

    #[test]
    fn numbers_inside_a_block_have_an_extension() {
        let plan = company();
        assert_eq!(plan.extension("+49891234826"), Some("826"));
        assert_eq!(plan.extension("49305678" /* too short */), None);
        assert_eq!(plan.extension("+493056781234"), Some("1234"));
        assert_eq!(plan.extension("+4989123482"), None, "one digit short");
        assert_eq!(plan.extension("+498912348261"), None, "one digit long");
        assert_eq!(plan.extension("+49891239826"), None);
    }

    #[test]
    fn a_bare_extension_is_the_number_of_the_one_block_it_fits() {
        let plan = company();
        assert_eq!(plan.to_e164("826").as_deref(), Some("+49891234826"));
        assert_eq!(plan.to_e164("12-34").as_deref(), Some("+493056781234"));
        // Five digits fit no block; a trunk prefix makes it a national number.
        assert_eq!(plan.to_e164("12345"), None);
        assert_eq!(plan.to_e164("089"), None);
        let ambiguous = NumberPlan {
            extensions: vec![
                ExtensionBlock {
                    prefix: "49891234".into(),
                    digits: 3,
                },
                ExtensionBlock {
                    prefix: "4930999".into(),
                    digits: 3,
                },
            ],
            ..NumberPlan::default()
        };
        assert_eq!(ambiguous.to_e164("826"), None);
        assert_eq!(NumberPlan::default().to_e164("826"), None);
    }

    #[test]
    fn each_format_writes_the_number_its_endpoint_needs() {
        let plan = company();
        let colleague = plan.phone("+49 89 1234-826");
        let customer = plan.phone("(0)89/0859 929");
        let abroad = plan.phone("+41 44 1234 567");
        let odd = plan.phone("intern 42");
        let f = |p: &PhoneNumber, f| plan.format(p, f).into_owned();
        use NumberFormat::*;
        assert_eq!(f(&colleague, AsWritten), "+49 89 1234-826");
        assert_eq!(f(&colleague, E164), "+49891234826");
        assert_eq!(f(&colleague, National), "0891234826");
        assert_eq!(f(&colleague, Dialable), "826");
        assert_eq!(f(&customer, E164), "+49890859929");
        assert_eq!(f(&customer, National), "0890859929");
        assert_eq!(f(&customer, Dialable), "00890859929");
        assert_eq!(f(&abroad, National), "0041441234567");
        assert_eq!(f(&abroad, Dialable), "00041441234567");
        for format in [AsWritten, E164, National, Dialable] {
            assert_eq!(f(&odd, format), "intern 42");
        }
        assert_eq!(plan.national_significant("+49890859929"), Some("890859929"));
        assert_eq!(plan.national_significant("+41441234567"), None);
    }

    #[test]
    fn an_extension_that_names_more_than_this_number_is_dialled_in_full() {
        let twins = NumberPlan {
            outside_prefix: "0".into(),
            extensions: vec![
                ExtensionBlock {
                    prefix: "49891234".into(),
                    digits: 3,
                },
                ExtensionBlock {
                    prefix: "4930999".into(),
                    digits: 3,
                },
                ExtensionBlock {
                    prefix: "49305678".into(),
                    digits: 4,
                },
            ],
            ..NumberPlan::default()
        };
        // `826` rings one of the two colleagues only; their whole numbers ring each one.
        assert_eq!(twins.dialable("+49891234826"), "00891234826");
        assert_eq!(twins.dialable("+4930999826"), "0030999826");
        assert_eq!(
            twins.extension("+4930999826"),
            Some("826"),
            "still its extension"
        );
        assert_eq!(
            twins.dialable("+493056781234"),
            "1234",
            "a block of its own"
        );
        // `0123` is what a desk phone dials for a national number, not this colleague.
        assert_eq!(twins.dialable("+493056780123"), "003056780123");
    }

    #[test]
    fn format_names_round_trip() {
        for name in NumberFormat::NAMES {
            assert_eq!(
                NumberFormat::parse(name).map(NumberFormat::name),
                Some(name)
            );
        }
        assert_eq!(NumberFormat::parse("E164"), None);
    }

    #[test]
    fn digits_ignores_every_separator() {
        assert_eq!(digits("+49 (0)89/1234-567"), "490891234567");
    }
}
