//! Text folding: the comparable form of a name, as phones and slapd compare names.
//!
//! `Exact` is RFC 4518's caseIgnore preparation in the form that matters for a phone book:
//! Unicode lower-casing and insignificant-space handling (trimmed, runs collapsed). `Fold`
//! additionally drops accents and expands letters phones cannot type (`Müller` → `muller`,
//! `Straße` → `strasse`, `Ødegård` → `odegard`), so it finds a superset of what `Exact` finds.

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// How names are compared by the LDAP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accents {
    /// `muller` finds `Müller`: phones cannot type every accent.
    Fold,
    /// RFC 4518 caseIgnore only, exactly as slapd compares.
    Exact,
}

/// The folded form of `s`.
pub fn fold(s: &str, accents: Accents) -> String {
    let mut out = String::with_capacity(s.len());
    fold_into(s, accents, &mut out);
    out
}

/// Appends the folded form of `s` to `out`.
pub fn fold_into(s: &str, accents: Accents, out: &mut String) {
    let start = out.len();
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = out.len() > start;
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        if c.is_ascii() {
            // The common case, and the same result as below for every ASCII character.
            out.push(c.to_ascii_lowercase());
            continue;
        }
        for lower in c.to_lowercase() {
            match accents {
                Accents::Exact => out.push(lower),
                Accents::Fold => push_unaccented(lower, out),
            }
        }
    }
}

fn push_unaccented(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c);
        return;
    }
    // Letters that are not a base letter plus a combining mark, so decomposition keeps them.
    let expanded = match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'ł' => "l",
        'đ' | 'ð' => "d",
        'þ' => "th",
        'ı' => "i",
        _ => "",
    };
    if !expanded.is_empty() {
        out.push_str(expanded);
        return;
    }
    decompose_canonical(c, |d| {
        if !is_combining_mark(d) {
            out.push(d);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_drops_case_accents_and_extra_spaces() {
        assert_eq!(fold("  Jürgen   MÜLLER ", Accents::Fold), "jurgen muller");
        assert_eq!(fold("Straße", Accents::Fold), "strasse");
        assert_eq!(fold("Ødegård", Accents::Fold), "odegard");
        assert_eq!(fold("Łukasz Wójcik", Accents::Fold), "lukasz wojcik");
        assert_eq!(fold("Çağla Şahin", Accents::Fold), "cagla sahin");
        assert_eq!(fold("Ελένη", Accents::Fold), "ελενη");
        assert_eq!(fold("王伟", Accents::Fold), "王伟");
    }

    #[test]
    fn exact_keeps_accents_but_not_case() {
        assert_eq!(fold("Jürgen  MÜLLER", Accents::Exact), "jürgen müller");
        assert_eq!(fold("ΕΛΈΝΗ", Accents::Exact), "ελένη");
    }
}
