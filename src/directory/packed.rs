//! The served form of an entry — everything a search reads of it — packed into one
//! allocation, so that a search touches one place in memory per candidate instead of a dozen
//! strings scattered over the heap, and a 100k phone book stays small.
//!
//! Layout: a header of offsets, so that any value is found without parsing what comes before
//! it, then three sections.
//!
//! ```text
//! header:  flags (1 = offsets are u32, else u16), the bitmask of present texts (u16),
//!          then little-endian offsets: where each of Text::DISTINCT's folded values ends
//!          (in the texts section), the length of the phones section, where each BER part
//!          ends (in the BER section)
//! texts:   the folded values of Text::DISTINCT, one after another
//! phones:  per PhoneKind::ALL a count, then per number: flags (1 = E.164, 2 = national,
//!          4 = extension), six LEB128 numbers — the lengths of its digits, E.164 digits,
//!          national digits, extension and folded written form, then the trunk prefix's
//!          length (where the national significant number starts in the national digits) —
//!          then those five strings
//! ber:     the DN as an OCTET STRING, then per BER_PARTS attribute the SET OF its values as
//!          served (numbers in the LDAP number format; empty when it has none)
//! ```

use std::cell::RefCell;

use crate::ber;
use crate::directory::fold::fold_into;
use crate::directory::fold::Accents;
use crate::directory::phone_keys::PhoneView;
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

thread_local! {
    /// Scratch buffers of [`pack`], reused from entry to entry.
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Packs the served form of `entry`.
pub fn pack(entry: &Entry, settings: &Settings) -> Box<[u8]> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        pack_into(entry, settings, &mut scratch);
        Box::from(scratch.out.as_slice())
    })
}

/// Offsets in the header: text ends, the phones section's length, BER part ends.
const OFFSETS: usize = Text::DISTINCT.len() + 1 + 1 + BER_PARTS.len();
/// Where the offsets start: after the flags byte and the presence bitmask.
const OFFSETS_AT: usize = 3;

#[derive(Default)]
struct Scratch {
    out: Vec<u8>,
    text: String,
    phones: Vec<u8>,
    keys: String,
    ber: Vec<u8>,
}

fn pack_into(entry: &Entry, settings: &Settings, scratch: &mut Scratch) {
    let Scratch {
        out,
        text,
        phones,
        keys,
        ber,
    } = scratch;
    let uid = entry.uid();
    let texts = Text::DISTINCT.map(|t| t.value(entry, &uid));
    let mut offsets = [0usize; OFFSETS];
    let mut present = 0u16;

    // texts
    text.clear();
    for (i, value) in texts.iter().enumerate() {
        if let Some(v) = value {
            fold_into(v, settings.accents, text);
            present |= 1 << i;
        }
        offsets[i] = text.len();
    }

    // phones
    let plan = &settings.numbers;
    phones.clear();
    for kind in PhoneKind::ALL {
        put_varint(phones, entry.phones(kind).len());
    }
    for kind in PhoneKind::ALL {
        for p in entry.phones(kind) {
            let e164 = p.e164.as_deref().map(|e| e.trim_start_matches('+'));
            let nsn = e164.and_then(|e| plan.national_significant(e));
            let extension = e164.and_then(|e| plan.extension(e));
            phones.push(
                u8::from(e164.is_some())
                    | (u8::from(nsn.is_some()) << 1)
                    | (u8::from(extension.is_some()) << 2),
            );
            keys.clear();
            keys.extend(p.written.chars().filter(char::is_ascii_digit));
            let digits = keys.len();
            keys.push_str(e164.unwrap_or_default());
            let e164_end = keys.len();
            if let Some(rest) = nsn {
                keys.push_str(&plan.national_prefix);
                keys.push_str(rest);
            }
            let national_end = keys.len();
            keys.push_str(extension.unwrap_or_default());
            let extension_end = keys.len();
            fold_into(&p.written, Accents::Exact, keys);
            for len in [
                digits,
                e164_end - digits,
                national_end - e164_end,
                extension_end - national_end,
                keys.len() - extension_end,
                plan.national_prefix.len(),
            ] {
                put_varint(phones, len);
            }
            phones.extend_from_slice(keys.as_bytes());
        }
    }
    offsets[TEXTS_LEN] = phones.len();

    // ber
    ber.clear();
    let dn_len = 4 + uid.len() + 1 + settings.base_dn.len();
    ber::put_header(ber, ber::OCTET_STRING, dn_len);
    ber.extend_from_slice(b"uid=");
    ber.extend_from_slice(uid.as_bytes());
    ber.push(b',');
    ber.extend_from_slice(settings.base_dn.as_bytes());
    offsets[BER_ENDS_AT] = ber.len();
    for (i, attr) in BER_PARTS.into_iter().enumerate() {
        match attr {
            Attr::Text(t) => {
                if let Some(v) = texts[distinct_slot(t)] {
                    ber::put_set(ber, std::iter::once(v));
                }
            }
            Attr::Phone(k) => {
                let numbers = entry.phones(k);
                if !numbers.is_empty() {
                    let served: Vec<_> = numbers
                        .iter()
                        .map(|p| plan.format(p, settings.number_format))
                        .collect();
                    ber::put_set(ber, served.iter().map(|v| v.as_ref()));
                }
            }
            Attr::ObjectClass => {}
        }
        offsets[BER_ENDS_AT + 1 + i] = ber.len();
    }

    let wide = offsets.iter().any(|o| *o > usize::from(u16::MAX));
    out.clear();
    out.push(u8::from(wide));
    out.extend_from_slice(&present.to_le_bytes());
    for o in offsets {
        if wide {
            out.extend_from_slice(&u32::try_from(o).unwrap_or(u32::MAX).to_le_bytes());
        } else {
            out.extend_from_slice(&(o as u16).to_le_bytes());
        }
    }
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(phones);
    out.extend_from_slice(ber);
}

/// Index in the header's offsets of the phones section's length.
const TEXTS_LEN: usize = Text::DISTINCT.len();
/// Index in the header's offsets of the end of the DN (BER part 0).
const BER_ENDS_AT: usize = Text::DISTINCT.len() + 1;

/// A view of one packed entry.
#[derive(Clone, Copy)]
pub struct Packed<'a>(pub &'a [u8]);

impl<'a> Packed<'a> {
    fn wide(self) -> bool {
        self.0.first().is_some_and(|f| f & 1 != 0)
    }

    /// Offset `i` of the header.
    fn offset(self, i: usize) -> usize {
        if self.wide() {
            let at = OFFSETS_AT + 4 * i;
            self.0
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, |b| u32::from_le_bytes(b) as usize)
        } else {
            let at = OFFSETS_AT + 2 * i;
            self.0
                .get(at..at + 2)
                .and_then(|b| <[u8; 2]>::try_from(b).ok())
                .map_or(0, |b| usize::from(u16::from_le_bytes(b)))
        }
    }

    fn texts_at(self) -> usize {
        OFFSETS_AT + OFFSETS * if self.wide() { 4 } else { 2 }
    }

    fn phones_at(self) -> usize {
        self.texts_at() + self.offset(TEXTS_LEN - 1)
    }

    fn ber_at(self) -> usize {
        self.phones_at() + self.offset(TEXTS_LEN)
    }

    /// Starts loading every cache line of the entry at once. A candidate is evaluated, then
    /// encoded, reading its header, its texts, its numbers and its BER values: lines that,
    /// loaded one after another as each is needed, cost a trip to memory each. Touching them
    /// together for a batch of candidates lets those trips overlap (the load bench showed
    /// these stalls as the largest part of a search).
    pub fn touch(self) {
        for byte in self.0.iter().step_by(64) {
            std::hint::black_box(*byte);
        }
        if let Some(last) = self.0.last() {
            std::hint::black_box(*last);
        }
    }

    /// The folded value of a text attribute, as bytes (what filters compare).
    pub fn text_bytes(self, t: Text) -> Option<&'a [u8]> {
        let slot = distinct_slot(t);
        let present = self
            .0
            .get(1..3)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map_or(0, u16::from_le_bytes);
        if present & (1 << slot) == 0 {
            return None;
        }
        let start = if slot == 0 { 0 } else { self.offset(slot - 1) };
        let at = self.texts_at();
        self.0.get(at + start..at + self.offset(slot))
    }

    /// The folded value of a text attribute.
    pub fn text(self, t: Text) -> Option<&'a str> {
        std::str::from_utf8(self.text_bytes(t)?).ok()
    }

    /// The keys of the numbers of one kind.
    pub fn phones(self, kind: PhoneKind) -> PhoneIter<'a> {
        let k = kind_slot(kind);
        let mut at = self.phones_at();
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
        let mut at = self.phones_at();
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
        let at = self.ber_at();
        let start = if part == 0 {
            0
        } else {
            self.offset(BER_ENDS_AT + part - 1)
        };
        self.0
            .get(at + start..at + self.offset(BER_ENDS_AT + part))
            .unwrap_or_default()
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
        ber::elements(set).filter_map(|value| std::str::from_utf8(value).ok())
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
        let mut lens = [0usize; 6];
        for len in lens.iter_mut() {
            *len = varint(self.data, &mut self.at);
        }
        let mut parts = [""; 5];
        for (part, len) in parts.iter_mut().zip(lens) {
            let bytes = self.data.get(self.at..self.at + len)?;
            *part = std::str::from_utf8(bytes).ok()?;
            self.at += len;
        }
        let national = (flags & 2 != 0).then_some(parts[2]);
        Some(PhoneView {
            digits: parts[0],
            e164: (flags & 1 != 0).then_some(parts[1]),
            national,
            nsn: national.and_then(|n| n.get(lens[5]..)),
            extension: (flags & 4 != 0).then_some(parts[3]),
            folded: parts[4],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::fold::Accents;
    use crate::directory::phone_keys::PhoneKeys;
    use crate::numbers::NumberPlan;

    fn settings(numbers: NumberPlan) -> Settings {
        Settings::new("ou=phonebook,dc=example,dc=com", Accents::Fold, numbers)
    }

    #[test]
    fn a_large_entry_uses_wide_offsets() {
        let mut e = Entry::new("corp", "8", "Anna");
        e.notes = Some("n".repeat(70_000));
        e.company = Some("Firma".into());
        let plan = NumberPlan::default();
        e.mobile.push(plan.phone("0170 1234567"));
        let data = pack(&e, &settings(plan));
        let p = Packed(&data);
        assert!(p.wide());
        assert_eq!(p.text(Text::Description).map(str::len), Some(70_000));
        assert_eq!(p.text(Text::O), Some("firma"));
        assert_eq!(p.dn(), "uid=corp.8,ou=phonebook,dc=example,dc=com");
        assert_eq!(
            p.phones(PhoneKind::Mobile).next().map(|v| v.digits),
            Some("01701234567")
        );
        assert_eq!(p.values(Attr::Text(Text::O)).collect::<Vec<_>>(), ["Firma"]);
        assert_eq!(
            p.values(Attr::Text(Text::Description)).next().map(str::len),
            Some(70_000)
        );
    }

    #[test]
    fn packed_entries_read_back() {
        let plan = NumberPlan::default();
        let mut e = Entry::new("corp", "7", "Jürgen Müller");
        e.first_name = Some("Jürgen".into());
        e.notes = Some("x".repeat(300));
        e.business.push(plan.phone("+49 (89) 1234-567"));
        e.business.push(plan.phone("intern 42"));
        e.fax.push(plan.phone("089 7654321"));
        let settings = settings(plan);
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
