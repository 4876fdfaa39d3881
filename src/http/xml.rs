//! Remote XML phone books for phones that fetch a directory over HTTP instead of asking LDAP:
//! Yealink, Cisco (32 entries a page, with paging), Snom, Grandstream and Fanvil. `?q=`
//! narrows any of them with the same search as the JSON API.
//!
//! Numbers are written in a dialable form: E.164 when the number has one, else as written.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::feed::search;
use super::{params, ApiError, Params, Shared};
use crate::model::{Entry, PhoneKind};

/// Cisco IP phones show at most 32 directory entries per page.
const CISCO_PAGE: usize = 32;
/// The most entries a searched book returns.
const SEARCH_LIMIT: usize = 1000;

/// `GET /phonebook/{vendor}.xml[?q=…][&page=N]`
pub async fn book(
    State(state): State<Shared>,
    Path(file): Path<String>,
    headers: HeaderMap,
    query: Params,
) -> Result<Response, ApiError> {
    let params = params(query)?;
    let snapshot = state.runner().directory().load();
    let entries: Vec<&Entry> = match params.get("q") {
        Some(q) => search(&snapshot, q, SEARCH_LIMIT)?
            .into_iter()
            .map(|id| &snapshot.entry(id).entry)
            .collect(),
        None => snapshot.entries().iter().map(|e| &e.entry).collect(),
    };
    let body = match file.as_str() {
        "yealink.xml" => yealink(&entries),
        "cisco.xml" => {
            let page = match params.get("page") {
                None => 1,
                Some(p) => p
                    .parse::<usize>()
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| ApiError::bad_request("page must be a number from 1"))?,
            };
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            cisco(&entries, page, host, params.get("q").map(String::as_str))
        }
        "snom.xml" => snom(&entries),
        "grandstream.xml" => grandstream(&entries),
        "fanvil.xml" => fanvil(&entries),
        _ => return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such phone book (yealink.xml, cisco.xml, snom.xml, grandstream.xml, fanvil.xml)",
        )),
    };
    Ok(([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response())
}

/// XML character escaping for text and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn label(kind: PhoneKind) -> &'static str {
    match kind {
        PhoneKind::Business => "Business",
        PhoneKind::Mobile => "Mobile",
        PhoneKind::Home => "Home",
        PhoneKind::Fax => "Fax",
        PhoneKind::Other => "Other",
    }
}

/// Every number of an entry except faxes (nobody calls a fax from a phone book), dialable.
fn numbers(e: &Entry) -> impl Iterator<Item = (PhoneKind, String)> + '_ {
    e.all_phones()
        .filter(|(k, _)| *k != PhoneKind::Fax)
        .map(|(k, p)| (k, p.e164.clone().unwrap_or_else(|| p.written.clone())))
}

fn yealink(entries: &[&Entry]) -> String {
    let mut out = format!("{HEADER}<YealinkIPPhoneDirectory>\n");
    for e in entries {
        let _ = writeln!(
            out,
            "  <DirectoryEntry>\n    <Name>{}</Name>",
            esc(&e.display_name)
        );
        for (kind, number) in numbers(e) {
            let _ = writeln!(
                out,
                "    <Telephone label=\"{}\">{}</Telephone>",
                label(kind),
                esc(&number)
            );
        }
        out.push_str("  </DirectoryEntry>\n");
    }
    out.push_str("</YealinkIPPhoneDirectory>\n");
    out
}

/// One directory entry per number (Cisco shows one number each), 32 a page, with a Next key.
fn cisco(entries: &[&Entry], page: usize, host: &str, q: Option<&str>) -> String {
    let rows: Vec<(String, String)> = entries
        .iter()
        .flat_map(|e| {
            numbers(e).map(|(kind, n)| {
                let name = if e.all_phones().filter(|(k, _)| *k != PhoneKind::Fax).count() > 1 {
                    format!("{} ({})", e.display_name, label(kind))
                } else {
                    e.display_name.clone()
                };
                (name, n)
            })
        })
        .collect();
    let pages = rows.len().div_ceil(CISCO_PAGE).max(1);
    let start = (page - 1) * CISCO_PAGE;
    let mut out = format!(
        "{HEADER}<CiscoIPPhoneDirectory>\n  <Title>Phone book</Title>\n  <Prompt>Page {page} of {pages}</Prompt>\n"
    );
    for (name, number) in rows.iter().skip(start).take(CISCO_PAGE) {
        let _ = writeln!(
            out,
            "  <DirectoryEntry>\n    <Name>{}</Name>\n    <Telephone>{}</Telephone>\n  </DirectoryEntry>",
            esc(name),
            esc(number)
        );
    }
    let _ = writeln!(out, "  <SoftKeyItem>\n    <Name>Dial</Name>\n    <URL>SoftKey:Dial</URL>\n    <Position>1</Position>\n  </SoftKeyItem>");
    if page < pages {
        let mut url = format!("http://{host}/phonebook/cisco.xml?page={}", page + 1);
        if let Some(q) = q {
            let _ = write!(url, "&q={}", percent(q));
        }
        let _ = writeln!(
            out,
            "  <SoftKeyItem>\n    <Name>Next</Name>\n    <URL>{}</URL>\n    <Position>2</Position>\n  </SoftKeyItem>",
            esc(&url)
        );
    }
    let _ = writeln!(out, "  <SoftKeyItem>\n    <Name>Exit</Name>\n    <URL>SoftKey:Exit</URL>\n    <Position>3</Position>\n  </SoftKeyItem>");
    out.push_str("</CiscoIPPhoneDirectory>\n");
    out
}

/// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn snom(entries: &[&Entry]) -> String {
    let mut out = format!("{HEADER}<tbook complete=\"true\">\n");
    let mut index = 0;
    for e in entries {
        for (kind, number) in numbers(e) {
            let _ = writeln!(
                out,
                "  <item context=\"active\" type=\"none\" fav=\"false\" mod=\"false\" index=\"{index}\">\n    <name>{}</name>\n    <first_name>{}</first_name>\n    <last_name>{}</last_name>\n    <organization>{}</organization>\n    <number>{}</number>\n    <number_type>{}</number_type>\n  </item>",
                esc(&e.display_name),
                esc(e.first_name.as_deref().unwrap_or("")),
                esc(e.last_name.as_deref().unwrap_or("")),
                esc(e.company.as_deref().unwrap_or("")),
                esc(&number),
                match kind {
                    PhoneKind::Mobile => "mobile",
                    PhoneKind::Home => "home",
                    _ => "business",
                }
            );
            index += 1;
        }
    }
    out.push_str("</tbook>\n");
    out
}

fn grandstream(entries: &[&Entry]) -> String {
    let mut out = format!("{HEADER}<AddressBook>\n");
    for e in entries {
        let last = e
            .last_name
            .clone()
            .unwrap_or_else(|| e.display_name.clone());
        let _ = write!(
            out,
            "  <Contact>\n    <LastName>{}</LastName>\n",
            esc(&last)
        );
        if let Some(first) = &e.first_name {
            let _ = writeln!(out, "    <FirstName>{}</FirstName>", esc(first));
        }
        if let Some(company) = &e.company {
            let _ = writeln!(out, "    <Company>{}</Company>", esc(company));
        }
        for (kind, number) in numbers(e) {
            let kind = match kind {
                PhoneKind::Mobile => "Cell",
                PhoneKind::Home => "Home",
                _ => "Work",
            };
            let _ = writeln!(
                out,
                "    <Phone type=\"{kind}\">\n      <phonenumber>{}</phonenumber>\n      <accountindex>1</accountindex>\n    </Phone>",
                esc(&number)
            );
        }
        out.push_str("  </Contact>\n");
    }
    out.push_str("</AddressBook>\n");
    out
}

fn fanvil(entries: &[&Entry]) -> String {
    let mut out = format!("{HEADER}<PhoneBook>\n");
    for e in entries {
        let _ = writeln!(
            out,
            "  <DirectoryEntry>\n    <Name>{}</Name>",
            esc(&e.display_name)
        );
        for (kind, number) in numbers(e) {
            let tag = match kind {
                PhoneKind::Mobile => "Mobile",
                PhoneKind::Business => "Telephone",
                _ => "Other",
            };
            let _ = writeln!(out, "    <{tag}>{}</{tag}>", esc(&number));
        }
        out.push_str("  </DirectoryEntry>\n");
    }
    out.push_str("</PhoneBook>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbers::NumberPlan;

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

    #[test]
    fn names_are_escaped_and_faxes_left_out() {
        let entries = people(1);
        let refs: Vec<&Entry> = entries.iter().collect();
        let xml = yealink(&refs);
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
        let refs: Vec<&Entry> = entries.iter().collect();
        let first = cisco(&refs, 1, "pbx:8080", Some("mü"));
        assert_eq!(first.matches("<DirectoryEntry>").count(), 32);
        assert!(
            first.contains("<URL>http://pbx:8080/phonebook/cisco.xml?page=2&amp;q=m%C3%BC</URL>"),
            "{first}"
        );
        let last = cisco(&refs, 3, "pbx", None);
        assert_eq!(last.matches("<DirectoryEntry>").count(), 6);
        assert!(!last.contains("<Name>Next</Name>"));
    }

    #[test]
    fn control_characters_never_reach_the_xml() {
        assert_eq!(esc("a\u{1}b\tc"), "ab\tc");
    }
}
