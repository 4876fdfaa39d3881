//! Phone-number normalisation to E.164, the one form every matcher compares.
//!
//! Upstream directories hold numbers in every notation people type (`089 1234-567`,
//! `+49 (0)89 1234567`, `0049 89 1234567`); phones and PBXes ask in others. Normalising both
//! sides with one [`NumberPlan`] is what lets them meet. Numbers that cannot be normalised
//! safely are left alone rather than guessed at.

use crate::model::PhoneNumber;

/// The dialling conventions of the site: how national and international numbers are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPlan {
    /// Country calling code without `+`, e.g. `49`.
    pub country_code: String,
    /// Prefix that introduces an international number, e.g. `00`.
    pub international_prefix: String,
    /// Trunk prefix of national numbers, e.g. `0`; empty where a country has none.
    pub national_prefix: String,
}

impl Default for NumberPlan {
    fn default() -> Self {
        NumberPlan {
            country_code: "49".into(),
            international_prefix: "00".into(),
            national_prefix: "0".into(),
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

    /// `+<digits>` for a number in any common notation, or `None` when the notation carries
    /// something E.164 cannot (an extension, letters) or lacks what it needs (an area code).
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
        Some(format!("+{national}"))
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
        };
        assert_eq!(
            no_trunk.to_e164("06 1234 5678").as_deref(),
            Some("+390612345678")
        );
    }

    #[test]
    fn digits_ignores_every_separator() {
        assert_eq!(digits("+49 (0)89/1234-567"), "490891234567");
    }
}
