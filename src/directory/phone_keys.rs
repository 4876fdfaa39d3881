//! The comparable keys of a stored phone number — its digits, E.164, national forms and
//! extension — owned ([`PhoneKeys`], built once per number) or borrowed ([`PhoneView`], also
//! read straight out of the packed store). The matcher compares them and the index lists
//! them; both the owned and the packed entries hand them out in this one shape.

use crate::directory::fold::fold;
use crate::directory::fold::Accents;
use crate::numbers::{digits, NumberPlan};

/// The comparable keys of one stored number, owned: its digits, the digits of its E.164
/// form, its national form (`0891234567`, when the number is in the home country), its
/// national significant number (`891234567`, the same without the trunk prefix), its
/// extension (when it lies in one of the company's blocks) and its written form case-folded
/// (for assertions that are not numbers at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneKeys {
    digits: String,
    e164: Option<String>,
    national: Option<String>,
    /// Where the national significant number starts in `national` (the trunk prefix's
    /// length), so it needs no copy of its own.
    nsn_at: usize,
    extension: Option<String>,
    folded: String,
}

impl PhoneKeys {
    pub fn new(written: &str, e164: Option<&str>, plan: &NumberPlan) -> Self {
        let e164 = e164.map(|e| e.trim_start_matches('+'));
        PhoneKeys {
            digits: digits(written),
            e164: e164.map(str::to_owned),
            national: e164
                .and_then(|e| plan.national_significant(e))
                .map(|nsn| format!("{}{nsn}", plan.national_prefix)),
            nsn_at: plan.national_prefix.len(),
            extension: e164.and_then(|e| plan.extension(e)).map(str::to_owned),
            folded: fold(written, Accents::Exact),
        }
    }

    pub fn view(&self) -> PhoneView<'_> {
        let national = self.national.as_deref();
        PhoneView {
            digits: &self.digits,
            e164: self.e164.as_deref(),
            national,
            nsn: national.and_then(|n| n.get(self.nsn_at..)),
            extension: self.extension.as_deref(),
            folded: &self.folded,
        }
    }
}

/// The comparable keys of one stored number, borrowed (see [`PhoneKeys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneView<'a> {
    /// Digits of the written form.
    pub digits: &'a str,
    /// Digits of the E.164 form (without `+`).
    pub e164: Option<&'a str>,
    /// The national form, when the number is in the home country.
    pub national: Option<&'a str>,
    /// The national form without the trunk prefix.
    pub nsn: Option<&'a str>,
    /// The extension, when the number is in one of the company's blocks.
    pub extension: Option<&'a str>,
    /// The written form, case-folded.
    pub folded: &'a str,
}

impl<'a> PhoneView<'a> {
    /// The digit keys in a fixed order: digits, E.164, national, national significant,
    /// extension.
    fn all(self) -> [Option<&'a str>; 5] {
        [
            Some(self.digits),
            self.e164,
            self.national,
            self.nsn,
            self.extension,
        ]
    }

    /// The distinct keys among the first `n` of [`Self::all`], from the `from`th on.
    fn distinct(self, from: usize, n: usize) -> impl Iterator<Item = &'a str> {
        let all = self.all();
        (from..n).filter_map(move |i| {
            let k = all[i]?;
            (!all[..i].contains(&Some(k))).then_some(k)
        })
    }

    /// Every distinct digit key: what equality and substring assertions compare.
    pub fn keys(self) -> impl Iterator<Item = &'a str> {
        self.distinct(0, 5)
    }

    /// The keys whose digit n-grams are indexed: the national significant number and the
    /// extension are runs of the E.164 digits, so their n-grams are already among those.
    pub fn gram_keys(self) -> impl Iterator<Item = &'a str> {
        self.distinct(0, 3)
    }

    /// The keys only an exact lookup needs beyond [`Self::gram_keys`].
    pub fn exact_only_keys(self) -> impl Iterator<Item = &'a str> {
        self.distinct(3, 5)
    }
}
