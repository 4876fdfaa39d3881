//! The served form of an entry — everything a search reads of it — packed into one
//! allocation, so that a search touches one place in memory per candidate instead of a dozen
//! strings scattered over the heap, and a 100k phone book stays small.
//!
//! Layout (lengths are LEB128 varints; offsets are little-endian `u32`s):
//!
//! ```text
//! [phones_at: u32][ber_at: u32]
//! texts:  per Text::DISTINCT a length (0 = no value, else 1 + bytes), then the folded values
//! phones: per PhoneKind::ALL a count, then per number: flags (1 = E.164, 2 = national),
//!         four lengths, then its digits, E.164 digits, national digits and folded written form
//! ber:    per BER part a length, then the parts: the DN as an OCTET STRING, then per
//!         BER_PARTS attribute the SET OF its values as written (empty when it has none)
//! ```

use std::cell::RefCell;

use crate::config::Accents;
use crate::directory::ber;
use crate::directory::fold::fold_into;
use crate::directory::matcher::PhoneView;
use crate::directory::schema::{Attr, Text};
use crate::directory::Settings;
use crate::model::{Entry, PhoneKind};

/// The attributes with values of their own, in the order of the BER parts (after the DN).
pub const BER_PARTS: [Attr; 14] = [
    Attr::Text(Text::Uid),
    Attr::Text(Text::Cn),
    Attr::Text(Text::GivenName),
    Attr::Text(Text::Sn),
    Attr::Text(Text::O),
    Attr::Text(Text::Ou),
    Attr::Text(Text::Title),
    Attr::Text(Text::Mail),
    Attr::Text(Text::Description),
    Attr::Phone(PhoneKind::Business),
    Attr::Phone(PhoneKind::Mobile),
    Attr::Phone(PhoneKind::Home),
    Attr::Phone(PhoneKind::Fax),
    Attr::Phone(PhoneKind::Other),
];

fn kind_slot(kind: PhoneKind) -> usize {
    match kind {
        PhoneKind::Business => 0,
        PhoneKind::Mobile => 1,
        PhoneKind::Home => 2,
        PhoneKind::Fax => 3,
        PhoneKind::Other => 4,
    }
}

/// Position of a text attribute's value in [`Text::DISTINCT`] (`displayName` is `cn`'s).
fn distinct_slot(t: Text) -> usize {
    match t {
        Text::Uid => 0,
        Text::Cn | Text::DisplayName => 1,
        Text::GivenName => 2,
        Text::Sn => 3,
        Text::O => 4,
        Text::Ou => 5,
        Text::Title => 6,
        Text::Mail => 7,
        Text::Description => 8,
    }
}

/// The BER part of an attribute (0 is the DN); `None` for objectClass.
fn ber_part(attr: Attr) -> Option<usize> {
    Some(
        1 + match attr {
            Attr::ObjectClass => return None,
            Attr::Text(t) => distinct_slot(t),
            Attr::Phone(k) => Text::DISTINCT.len() + kind_slot(k),
        },
    )
}

/// The served value of a text attribute, as written (`uid` given, as the entry computes it).
fn raw_text<'a>(e: &'a Entry, uid: &'a str, t: Text) -> Option<&'a str> {
    match t {
        Text::Uid => Some(uid),
        Text::Cn | Text::DisplayName => Some(&e.display_name),
        Text::GivenName => e.first_name.as_deref(),
        Text::Sn => Some(e.last_name.as_deref().unwrap_or(&e.display_name)),
        Text::O => e.company.as_deref(),
        Text::Ou => e.department.as_deref(),
        Text::Title => e.title.as_deref(),
        Text::Mail => e.email.as_deref(),
        Text::Description => e.notes.as_deref(),
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a varint at `*at`, advancing it; 0 past the end (packed data is ours: never).
fn varint(data: &[u8], at: &mut usize) -> usize {
    let mut n = 0usize;
    let mut shift = 0;
    while let Some(&b) = data.get(*at) {
        *at += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    n
}

fn put_u32_at(out: &mut [u8], at: usize, value: usize) {
    let v = u32::try_from(value).unwrap_or(u32::MAX).to_le_bytes();
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&v);
    }
}

thread_local! {
    /// Scratch buffers of [`pack`]: the packed entry, folded text, BER parts.
    static SCRATCH: RefCell<(Vec<u8>, String, Vec<u8>)> = RefCell::default();
}

/// Packs the served form of `entry`.
pub fn pack(entry: &Entry, settings: &Settings) -> Box<[u8]> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let (out, text, ber) = &mut *scratch;
        out.clear();
        pack_into(entry, settings, out, text, ber);
        Box::from(out.as_slice())
    })
}

fn pack_into(
    entry: &Entry,
    settings: &Settings,
    out: &mut Vec<u8>,
    text: &mut String,
    ber: &mut Vec<u8>,
) {
    let uid = entry.uid();
    let texts = Text::DISTINCT.map(|t| raw_text(entry, &uid, t));
    out.extend_from_slice(&[0; 8]);

    // texts
    text.clear();
    let mut lens = [0usize; Text::DISTINCT.len()];
    for (len, value) in lens.iter_mut().zip(&texts) {
        if let Some(v) = value {
            let start = text.len();
            fold_into(v, settings.accents, text);
            *len = 1 + text.len() - start;
        }
    }
    for len in lens {
        put_varint(out, len);
    }
    out.extend_from_slice(text.as_bytes());

    // phones
    let phones_at = out.len();
    for kind in PhoneKind::ALL {
        put_varint(out, entry.phones(kind).len());
    }
    let plan = &settings.numbers;
    for kind in PhoneKind::ALL {
        for p in entry.phones(kind) {
            let e164 = p.e164.as_deref().map(|e| e.trim_start_matches('+'));
            let national = e164.and_then(|e| e.strip_prefix(plan.country_code.as_str()));
            out.push(u8::from(e164.is_some()) | (u8::from(national.is_some()) << 1));
            text.clear();
            text.extend(p.written.chars().filter(char::is_ascii_digit));
            let digits = text.len();
            text.push_str(e164.unwrap_or_default());
            let e164_end = text.len();
            if let Some(rest) = national {
                text.push_str(&plan.national_prefix);
                text.push_str(rest);
            }
            let national_end = text.len();
            fold_into(&p.written, Accents::Exact, text);
            for len in [
                digits,
                e164_end - digits,
                national_end - e164_end,
                text.len() - national_end,
            ] {
                put_varint(out, len);
            }
            out.extend_from_slice(text.as_bytes());
        }
    }

    // ber
    let ber_at = out.len();
    ber.clear();
    let mut ber_lens = [0usize; 1 + BER_PARTS.len()];
    let dn_len = 4 + uid.len() + 1 + settings.base_dn.len();
    ber::put_header(ber, ber::OCTET_STRING, dn_len);
    ber.extend_from_slice(b"uid=");
    ber.extend_from_slice(uid.as_bytes());
    ber.push(b',');
    ber.extend_from_slice(settings.base_dn.as_bytes());
    ber_lens[0] = ber.len();
    for (len, attr) in ber_lens[1..].iter_mut().zip(BER_PARTS) {
        let start = ber.len();
        match attr {
            Attr::Text(t) => {
                if let Some(v) = texts[distinct_slot(t)] {
                    ber::put_set(ber, std::iter::once(v));
                }
            }
            Attr::Phone(k) => {
                let phones = entry.phones(k);
                if !phones.is_empty() {
                    ber::put_set(ber, phones.iter().map(|p| p.written.as_str()));
                }
            }
            Attr::ObjectClass => {}
        }
        *len = ber.len() - start;
    }
    for len in ber_lens {
        put_varint(out, len);
    }
    out.extend_from_slice(ber);
    put_u32_at(out, 0, phones_at);
    put_u32_at(out, 4, ber_at);
}

/// A view of one packed entry.
#[derive(Clone, Copy)]
pub struct Packed<'a>(pub &'a [u8]);

impl<'a> Packed<'a> {
    fn u32_at(self, at: usize) -> usize {
        self.0
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize)
    }

    /// The folded value of a text attribute.
    pub fn text(self, t: Text) -> Option<&'a str> {
        let slot = distinct_slot(t);
        let mut at = 8;
        let mut lens = [0usize; Text::DISTINCT.len()];
        for len in lens.iter_mut() {
            *len = varint(self.0, &mut at);
        }
        let start = at
            + lens[..slot]
                .iter()
                .map(|l| l.saturating_sub(1))
                .sum::<usize>();
        let len = lens[slot].checked_sub(1)?;
        std::str::from_utf8(self.0.get(start..start + len)?).ok()
    }

    /// The keys of the numbers of one kind.
    pub fn phones(self, kind: PhoneKind) -> PhoneIter<'a> {
        let k = kind_slot(kind);
        let mut at = self.u32_at(0);
        let mut counts = [0usize; 5];
        for count in counts.iter_mut() {
            *count = varint(self.0, &mut at);
        }
        let mut iter = PhoneIter {
            data: self.0,
            at,
            left: counts[..k].iter().sum(),
        };
        // skip the numbers of the kinds before
        while iter.next().is_some() {}
        iter.left = counts[k];
        iter
    }

    /// The keys of every number.
    pub fn all_phones(self) -> PhoneIter<'a> {
        let mut at = self.u32_at(0);
        let mut total = 0;
        for _ in 0..5 {
            total += varint(self.0, &mut at);
        }
        PhoneIter {
            data: self.0,
            at,
            left: total,
        }
    }

    fn ber(self, part: usize) -> &'a [u8] {
        let mut at = self.u32_at(4);
        let mut start = 0;
        let mut len = 0;
        let mut lens = [0usize; 1 + BER_PARTS.len()];
        for (i, l) in lens.iter_mut().enumerate() {
            *l = varint(self.0, &mut at);
            if i < part {
                start += *l;
            } else if i == part {
                len = *l;
            }
        }
        let start = at + start;
        self.0.get(start..start + len).unwrap_or_default()
    }

    /// The DN as a BER OCTET STRING.
    pub fn ber_dn(self) -> &'a [u8] {
        self.ber(0)
    }

    /// The entry's DN.
    pub fn dn(self) -> &'a str {
        std::str::from_utf8(ber::content(self.ber_dn())).unwrap_or_default()
    }

    /// The values of `attr` as a BER `SET OF OCTET STRING`; `None` when it has none (and for
    /// objectClass, which every entry shares).
    pub fn ber_values(self, attr: Attr) -> Option<&'a [u8]> {
        let part = self.ber(ber_part(attr)?);
        (!part.is_empty()).then_some(part)
    }

    /// The values of `attr` as written.
    pub fn values(self, attr: Attr) -> impl Iterator<Item = &'a str> {
        let set = self.ber_values(attr).map(ber::content).unwrap_or_default();
        let mut rest = set;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let value = ber::content(rest);
            let tlv_len = ber::tlv_len(value.len());
            rest = rest.get(tlv_len..).unwrap_or_default();
            std::str::from_utf8(value).ok()
        })
    }
}

/// Iterates over packed numbers.
pub struct PhoneIter<'a> {
    data: &'a [u8],
    at: usize,
    left: usize,
}

impl<'a> Iterator for PhoneIter<'a> {
    type Item = PhoneView<'a>;

    fn next(&mut self) -> Option<PhoneView<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let flags = *self.data.get(self.at)?;
        self.at += 1;
        let mut lens = [0usize; 4];
        for len in lens.iter_mut() {
            *len = varint(self.data, &mut self.at);
        }
        let mut parts = [""; 4];
        for (part, len) in parts.iter_mut().zip(lens) {
            let bytes = self.data.get(self.at..self.at + len)?;
            *part = std::str::from_utf8(bytes).ok()?;
            self.at += len;
        }
        Some(PhoneView {
            digits: parts[0],
            e164: (flags & 1 != 0).then_some(parts[1]),
            national: (flags & 2 != 0).then_some(parts[2]),
            folded: parts[3],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::matcher::PhoneKeys;
    use crate::numbers::NumberPlan;

    #[test]
    fn packed_entries_read_back() {
        let plan = NumberPlan::default();
        let mut e = Entry::new("corp", "7", "Jürgen Müller");
        e.first_name = Some("Jürgen".into());
        e.notes = Some("x".repeat(300));
        e.business.push(plan.phone("+49 (89) 1234-567"));
        e.business.push(plan.phone("intern 42"));
        e.fax.push(plan.phone("089 7654321"));
        let settings = Settings {
            base_dn: "ou=phonebook,dc=example,dc=com".into(),
            accents: Accents::Fold,
            numbers: plan,
        };
        let data = pack(&e, &settings);
        let p = Packed(&data);
        assert_eq!(p.text(Text::Cn), Some("jurgen muller"));
        assert_eq!(p.text(Text::DisplayName), Some("jurgen muller"));
        assert_eq!(p.text(Text::Sn), Some("jurgen muller"));
        assert_eq!(p.text(Text::GivenName), Some("jurgen"));
        assert_eq!(p.text(Text::O), None);
        assert_eq!(p.text(Text::Description).map(str::len), Some(300));
        assert_eq!(p.text(Text::Uid), Some("corp.7"));
        assert_eq!(p.dn(), "uid=corp.7,ou=phonebook,dc=example,dc=com");
        let business: Vec<_> = p.phones(PhoneKind::Business).map(|v| v.digits).collect();
        assert_eq!(business, ["49891234567", "42"]);
        let fax: Vec<_> = p.phones(PhoneKind::Fax).collect();
        assert_eq!(fax.len(), 1);
        assert_eq!(fax[0].e164, Some("49897654321"));
        assert_eq!(fax[0].national, Some("0897654321"));
        assert_eq!(p.phones(PhoneKind::Mobile).count(), 0);
        assert_eq!(p.all_phones().count(), 3);
        let written: Vec<_> = p.values(Attr::Phone(PhoneKind::Business)).collect();
        assert_eq!(written, ["+49 (89) 1234-567", "intern 42"]);
        assert_eq!(
            p.values(Attr::Text(Text::Description)).next().map(str::len),
            Some(300)
        );
        assert!(p.ber_values(Attr::Text(Text::O)).is_none());
        // The same keys as the matcher's own, unpacked computation.
        for (packed, number) in p.all_phones().zip(e.business.iter().chain(&e.fax)) {
            let keys = PhoneKeys::new(&number.written, number.e164.as_deref(), &settings.numbers);
            assert_eq!(packed, keys.view());
        }
    }
}
