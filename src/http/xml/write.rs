//! Writing one entry in each vendor's XML, and the text rules every book shares: escaping,
//! the characters XML 1.0 forbids, the caps on what a phone can show, Cisco's labelled names.

use super::*;

/// A Cisco row: the name (with the number's kind when the entry lists more than one) and
/// the one number it dials.
pub(super) fn cisco_row(e: &Entry, number: Option<&Listed>, labelled: bool, out: &mut String) {
    let name = cut(&e.display_name);
    let name = match number {
        Some((kind, _)) if labelled => with_label(name, Vendor::Cisco.label(*kind)),
        _ => name.to_owned(),
    };
    let _ = writeln!(
        out,
        "  <DirectoryEntry>\n    <Name>{}</Name>\n    <Telephone>{}</Telephone>\n  </DirectoryEntry>",
        esc(&name),
        esc(number.map_or("", |(_, n)| n))
    );
}

/// `name` followed by the kind of number a row dials, `Anna Weiß (Mobile)`; a name that
/// already ends in a bracketed part gets the kind inside it, `Andreas Schulz (IT, Business)`,
/// so that a phone never shows two pairs of brackets.
pub(super) fn with_label(name: &str, label: &str) -> String {
    let name = name.trim_end();
    if ends_in_brackets(name) {
        format!("{}, {label})", &name[..name.len() - 1])
    } else {
        format!("{name} ({label})")
    }
}

/// Whether `s` ends in a balanced `( … )` with something inside.
pub(super) fn ends_in_brackets(s: &str) -> bool {
    if !s.ends_with(')') || s.ends_with("()") {
        return false;
    }
    let mut depth = 0usize;
    for c in s.chars().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
pub(super) fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production), minus the C1 controls
/// it discourages and no phone displays.
pub(super) fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
        || matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// XML character escaping for text and attribute values; characters XML cannot hold are
/// dropped.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// A display text cut to [`MAX_TEXT_CHARS`] characters.
pub(super) fn cut(s: &str) -> &str {
    let end = s
        .char_indices()
        .nth(MAX_TEXT_CHARS)
        .map_or(s.len(), |(i, _)| i);
    &s[..end]
}

/// A display text cut to [`MAX_TEXT_CHARS`] characters, escaped.
pub(super) fn text(s: &str) -> String {
    esc(cut(s))
}

pub(super) const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

pub(super) fn yealink(e: &Entry, numbers: &[Listed], out: &mut String) {
    let _ = writeln!(
        out,
        "  <DirectoryEntry>\n    <Name>{}</Name>",
        text(&e.display_name)
    );
    for (kind, number) in numbers {
        let _ = writeln!(
            out,
            "    <Telephone label=\"{}\">{}</Telephone>",
            Vendor::Yealink.label(*kind),
            esc(number)
        );
    }
    out.push_str("  </DirectoryEntry>\n");
}

/// One Snom item: a Snom book lists one number per item (an empty one for an entry kept
/// without a number, which then has no type).
pub(super) fn snom_item(e: &Entry, number: Option<&Listed>, index: usize, out: &mut String) {
    let _ = write!(
        out,
        "  <item context=\"active\" type=\"none\" fav=\"false\" mod=\"false\" index=\"{index}\">\n    <name>{}</name>\n    <first_name>{}</first_name>\n    <last_name>{}</last_name>\n    <organization>{}</organization>\n    <number>{}</number>\n",
        text(&e.display_name),
        text(e.first_name.as_deref().unwrap_or("")),
        text(e.last_name.as_deref().unwrap_or("")),
        text(e.company.as_deref().unwrap_or("")),
        esc(number.map_or("", |(_, n)| n)),
    );
    if let Some((kind, _)) = number {
        let _ = writeln!(
            out,
            "    <number_type>{}</number_type>",
            Vendor::Snom.label(*kind)
        );
    }
    out.push_str("  </item>\n");
}

pub(super) fn grandstream(e: &Entry, numbers: &[Listed], out: &mut String) {
    let last = e.last_name.as_deref().unwrap_or(&e.display_name);
    let _ = write!(
        out,
        "  <Contact>\n    <LastName>{}</LastName>\n",
        text(last)
    );
    if let Some(first) = &e.first_name {
        let _ = writeln!(out, "    <FirstName>{}</FirstName>", text(first));
    }
    if let Some(company) = &e.company {
        let _ = writeln!(out, "    <Company>{}</Company>", text(company));
    }
    for (kind, number) in numbers {
        let _ = writeln!(
            out,
            "    <Phone type=\"{}\">\n      <phonenumber>{}</phonenumber>\n      <accountindex>1</accountindex>\n    </Phone>",
            Vendor::Grandstream.label(*kind),
            esc(number)
        );
    }
    out.push_str("  </Contact>\n");
}

pub(super) fn fanvil(e: &Entry, numbers: &[Listed], out: &mut String) {
    let _ = writeln!(
        out,
        "  <DirectoryEntry>\n    <Name>{}</Name>",
        text(&e.display_name)
    );
    for (kind, number) in numbers {
        let tag = Vendor::Fanvil.label(*kind);
        let _ = writeln!(out, "    <{tag}>{}</{tag}>", esc(number));
    }
    out.push_str("  </DirectoryEntry>\n");
}
