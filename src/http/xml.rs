//! Remote XML phone books for phones that fetch a directory over HTTP instead of asking LDAP:
//! Yealink, Cisco (32 entries a page, with paging), Snom, Grandstream and Fanvil. `?q=`
//! narrows any of them with the same search as the JSON API.
//!
//! Numbers are written in a dialable form: E.164 when the number has one, else as written.
//!
//! What one request may cost is bounded whatever upstream sent: a book holds at most
//! `http.xml_max_rows` rows, text fields are cut to what a phone can show
//! ([`MAX_TEXT_CHARS`]), an entry lists at most [`MAX_NUMBERS_PER_ENTRY`] numbers and a
//! number longer than [`MAX_NUMBER_CHARS`] is left out (a cut number would dial someone
//! else). A book of up to [`WHOLE_BODY`] bytes is sent whole with a Content-Length; a larger
//! one is written while it is sent, [`CHUNK`] bytes at a time, from the snapshot the request
//! started on — so memory per request stays small however large the book.
//! Characters XML 1.0 forbids never reach the output, so every book stays well-formed.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::feed::search;
use super::{params, ApiError, Params, Shared};
use crate::directory::Snapshot;
use crate::model::{Entry, PhoneKind};

/// Cisco IP phones show at most 32 directory entries per page.
const CISCO_PAGE: usize = 32;
/// The most entries a searched book returns.
const SEARCH_LIMIT: usize = 1000;
/// Names and companies are cut to this many characters: more than any phone display shows.
pub const MAX_TEXT_CHARS: usize = 128;
/// A dialable number longer than this is not a number a phone can dial; it is left out.
pub const MAX_NUMBER_CHARS: usize = 40;
/// An entry lists at most this many numbers (faxes never count).
pub const MAX_NUMBERS_PER_ENTRY: usize = 16;
/// A book up to this size is built whole and sent with a Content-Length.
pub const WHOLE_BODY: usize = 256 * 1024;
/// A larger book is streamed in pieces of about this size.
const CHUNK: usize = 32 * 1024;
/// A streamed book must be read within this time, then its connection is closed: a client
/// that reads a few bytes now and then (never idle long enough for `http.idle_timeout`)
/// would otherwise keep the snapshot the book is written from alive across any number of
/// syncs. A phone on the LAN reads the largest book in seconds.
pub const STREAM_DEADLINE: Duration = Duration::from_secs(300);

/// `GET /phonebook/{vendor}.xml[?q=…][&page=N]`
pub async fn book(
    State(state): State<Shared>,
    Path(file): Path<String>,
    headers: HeaderMap,
    query: Params,
) -> Result<Response, ApiError> {
    let params = params(query)?;
    let runner = state.runner();
    let max_rows = runner.config().http.limits.xml_max_rows;
    let snapshot = runner.directory().load();
    let ids = match params.get("q") {
        Some(q) => Some(search(&snapshot, q, SEARCH_LIMIT)?),
        None => None,
    };
    let selection = Selection { snapshot, ids };
    let body = match file.as_str() {
        "cisco.xml" => {
            let page = match params.get("page") {
                None => 1,
                Some(p) => page_number(p)?,
            };
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let q = params.get("q").map(String::as_str);
            Body::from(cisco(selection.iter(), max_rows, page, host, q))
        }
        other => match Vendor::from_file(other) {
            Some(vendor) => stream(Book::new(selection, vendor, max_rows)),
            None => return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no such phone book (yealink.xml, cisco.xml, snom.xml, grandstream.xml, fanvil.xml)",
            )),
        },
    };
    Ok(([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response())
}

/// `page=N` from 1. Any run of digits is a page: one past the last (even one that does not
/// fit in 64 bits) means the last page, never a wrap-around to the first.
fn page_number(p: &str) -> Result<usize, ApiError> {
    let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits || p.bytes().all(|b| b == b'0') {
        return Err(ApiError::bad_request("page must be a number from 1"));
    }
    // Only digits: the one way to fail is a number too large, which is past the last page.
    Ok(p.parse().unwrap_or(usize::MAX))
}

/// The entries a book lists: the whole snapshot, or a search's hits, in display order.
struct Selection {
    snapshot: Arc<Snapshot>,
    ids: Option<Vec<u32>>,
}

impl Selection {
    fn len(&self) -> usize {
        self.ids
            .as_ref()
            .map_or(self.snapshot.entries().len(), Vec::len)
    }

    fn get(&self, i: usize) -> Option<&Entry> {
        match &self.ids {
            Some(ids) => ids.get(i).map(|id| &self.snapshot.entry(*id).entry),
            None => self.snapshot.entries().get(i).map(|e| &e.entry),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Entry> + Clone + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// The body of a book: whole when small, else the first [`WHOLE_BODY`] bytes followed by the
/// rest as it is written.
fn stream(mut book: Book) -> Body {
    let mut first = String::with_capacity(CHUNK);
    if !book.fill(&mut first, WHOLE_BODY) {
        return Body::from(first);
    }
    let first = futures::stream::once(async move { Ok::<_, TooSlow>(Bytes::from(first)) });
    let deadline = Instant::now() + STREAM_DEADLINE;
    let rest = futures::stream::unfold(Some(book), move |book| async move {
        let mut book = book?;
        if Instant::now() > deadline {
            // An error ends the body, and hyper closes the connection.
            return Some((Err(TooSlow), None));
        }
        let mut out = String::with_capacity(CHUNK + CHUNK / 4);
        let more = book.fill(&mut out, CHUNK);
        Some((Ok(Bytes::from(out)), more.then_some(book)))
    });
    Body::from_stream(futures::StreamExt::chain(first, rest))
}

/// A streamed book not read within [`STREAM_DEADLINE`].
#[derive(Debug, thiserror::Error)]
#[error("the phone book was not read within {STREAM_DEADLINE:?}")]
struct TooSlow;

/// The books written one entry after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vendor {
    Yealink,
    Snom,
    Grandstream,
    Fanvil,
}

impl Vendor {
    fn from_file(file: &str) -> Option<Vendor> {
        match file {
            "yealink.xml" => Some(Vendor::Yealink),
            "snom.xml" => Some(Vendor::Snom),
            "grandstream.xml" => Some(Vendor::Grandstream),
            "fanvil.xml" => Some(Vendor::Fanvil),
            _ => None,
        }
    }

    /// How many rows `e` takes: Snom lists one item per number, the others one per entry.
    fn rows(self, e: &Entry) -> usize {
        match self {
            Vendor::Snom => dialable(e).count(),
            _ => 1,
        }
    }

    /// `complete` tells a Snom phone whether the book holds everything.
    fn open(self, out: &mut String, complete: bool) {
        out.push_str(HEADER);
        match self {
            Vendor::Yealink => out.push_str("<YealinkIPPhoneDirectory>\n"),
            Vendor::Snom => {
                let _ = writeln!(out, "<tbook complete=\"{complete}\">");
            }
            Vendor::Grandstream => out.push_str("<AddressBook>\n"),
            Vendor::Fanvil => out.push_str("<PhoneBook>\n"),
        }
    }

    fn close(self, out: &mut String) {
        out.push_str(match self {
            Vendor::Yealink => "</YealinkIPPhoneDirectory>\n",
            Vendor::Snom => "</tbook>\n",
            Vendor::Grandstream => "</AddressBook>\n",
            Vendor::Fanvil => "</PhoneBook>\n",
        });
    }

    /// Writes `e` using at most `rows.left` rows.
    fn entry(self, e: &Entry, out: &mut String, rows: &mut Rows) {
        match self {
            Vendor::Yealink => yealink(e, out),
            Vendor::Snom => return snom(e, out, rows),
            Vendor::Grandstream => grandstream(e, out),
            Vendor::Fanvil => fanvil(e, out),
        }
        rows.left -= 1;
    }
}

/// What is left of the row budget, and the running item index Snom numbers rows with.
struct Rows {
    left: usize,
    index: usize,
}

/// A book being written, entry by entry.
struct Book {
    selection: Selection,
    vendor: Vendor,
    next: usize,
    rows: Rows,
    /// `None` before the header is written.
    complete: Option<bool>,
}

impl Book {
    fn new(selection: Selection, vendor: Vendor, max_rows: usize) -> Book {
        Book {
            selection,
            vendor,
            next: 0,
            rows: Rows {
                left: max_rows,
                index: 0,
            },
            complete: None,
        }
    }

    /// Appends to `out` until it holds at least `want` bytes or the book is finished;
    /// `true` while there is more to write.
    fn fill(&mut self, out: &mut String, want: usize) -> bool {
        if self.complete.is_none() {
            let total: usize = match self.vendor {
                Vendor::Snom => self.selection.iter().map(|e| self.vendor.rows(e)).sum(),
                _ => self.selection.len(),
            };
            let complete = total <= self.rows.left;
            self.vendor.open(out, complete);
            self.complete = Some(complete);
        }
        while out.len() < want {
            let entry = match self.selection.get(self.next) {
                Some(e) if self.rows.left > 0 => e,
                _ => {
                    self.vendor.close(out);
                    return false;
                }
            };
            self.vendor.entry(entry, out, &mut self.rows);
            self.next += 1;
        }
        true
    }
}

/// Writes a whole book at once (what a streamed response adds up to).
#[cfg(test)]
fn render(vendor: Vendor, entries: &[Entry], max_rows: usize) -> String {
    let total: usize = entries.iter().map(|e| vendor.rows(e)).sum();
    let mut out = String::new();
    vendor.open(&mut out, total <= max_rows);
    let mut rows = Rows {
        left: max_rows,
        index: 0,
    };
    for e in entries {
        if rows.left == 0 {
            break;
        }
        vendor.entry(e, &mut out, &mut rows);
    }
    vendor.close(&mut out);
    out
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production), minus the C1 controls
/// it discourages and no phone displays.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
        || matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// XML character escaping for text and attribute values; characters XML cannot hold are
/// dropped.
fn esc(s: &str) -> String {
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

/// A display text cut to [`MAX_TEXT_CHARS`] characters, escaped.
fn text(s: &str) -> String {
    let end = s
        .char_indices()
        .nth(MAX_TEXT_CHARS)
        .map_or(s.len(), |(i, _)| i);
    esc(&s[..end])
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

/// The numbers a book lists for an entry, dialable: no faxes (nobody calls a fax from a
/// phone book), none too long to be a number, at most [`MAX_NUMBERS_PER_ENTRY`].
fn dialable(e: &Entry) -> impl Iterator<Item = (PhoneKind, &str)> + '_ {
    e.all_phones()
        .filter(|(k, _)| *k != PhoneKind::Fax)
        .map(|(k, p)| (k, p.e164.as_deref().unwrap_or(&p.written)))
        .filter(|(_, n)| n.chars().count() <= MAX_NUMBER_CHARS)
        .take(MAX_NUMBERS_PER_ENTRY)
}

fn yealink(e: &Entry, out: &mut String) {
    let _ = writeln!(
        out,
        "  <DirectoryEntry>\n    <Name>{}</Name>",
        text(&e.display_name)
    );
    for (kind, number) in dialable(e) {
        let _ = writeln!(
            out,
            "    <Telephone label=\"{}\">{}</Telephone>",
            label(kind),
            esc(number)
        );
    }
    out.push_str("  </DirectoryEntry>\n");
}

/// One directory entry per number (Cisco shows one number each), 32 a page, with a Next key.
/// A page past the last shows the last page.
fn cisco<'a>(
    entries: impl Iterator<Item = &'a Entry> + Clone,
    max_rows: usize,
    page: usize,
    host: &str,
    q: Option<&str>,
) -> String {
    let rows = || {
        entries
            .clone()
            .flat_map(|e| {
                let labelled = dialable(e).nth(1).is_some();
                dialable(e).map(move |(kind, n)| (e, labelled.then_some(kind), n))
            })
            .take(max_rows)
    };
    let pages = rows().count().div_ceil(CISCO_PAGE).max(1);
    let page = page.min(pages);
    let mut out = format!(
        "{HEADER}<CiscoIPPhoneDirectory>\n  <Title>Phone book</Title>\n  <Prompt>Page {page} of {pages}</Prompt>\n"
    );
    for (e, kind, number) in rows().skip((page - 1) * CISCO_PAGE).take(CISCO_PAGE) {
        let name = match kind {
            Some(kind) => format!("{} ({})", text(&e.display_name), label(kind)),
            None => text(&e.display_name),
        };
        let _ = writeln!(
            out,
            "  <DirectoryEntry>\n    <Name>{name}</Name>\n    <Telephone>{}</Telephone>\n  </DirectoryEntry>",
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

fn snom(e: &Entry, out: &mut String, rows: &mut Rows) {
    for (kind, number) in dialable(e) {
        if rows.left == 0 {
            return;
        }
        let _ = writeln!(
            out,
            "  <item context=\"active\" type=\"none\" fav=\"false\" mod=\"false\" index=\"{}\">\n    <name>{}</name>\n    <first_name>{}</first_name>\n    <last_name>{}</last_name>\n    <organization>{}</organization>\n    <number>{}</number>\n    <number_type>{}</number_type>\n  </item>",
            rows.index,
            text(&e.display_name),
            text(e.first_name.as_deref().unwrap_or("")),
            text(e.last_name.as_deref().unwrap_or("")),
            text(e.company.as_deref().unwrap_or("")),
            esc(number),
            match kind {
                PhoneKind::Mobile => "mobile",
                PhoneKind::Home => "home",
                _ => "business",
            }
        );
        rows.index += 1;
        rows.left -= 1;
    }
}

fn grandstream(e: &Entry, out: &mut String) {
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
    for (kind, number) in dialable(e) {
        let kind = match kind {
            PhoneKind::Mobile => "Cell",
            PhoneKind::Home => "Home",
            _ => "Work",
        };
        let _ = writeln!(
            out,
            "    <Phone type=\"{kind}\">\n      <phonenumber>{}</phonenumber>\n      <accountindex>1</accountindex>\n    </Phone>",
            esc(number)
        );
    }
    out.push_str("  </Contact>\n");
}

fn fanvil(e: &Entry, out: &mut String) {
    let _ = writeln!(
        out,
        "  <DirectoryEntry>\n    <Name>{}</Name>",
        text(&e.display_name)
    );
    for (kind, number) in dialable(e) {
        let tag = match kind {
            PhoneKind::Mobile => "Mobile",
            PhoneKind::Business => "Telephone",
            _ => "Other",
        };
        let _ = writeln!(out, "    <{tag}>{}</{tag}>", esc(number));
    }
    out.push_str("  </DirectoryEntry>\n");
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

    const VENDORS: [Vendor; 4] = [
        Vendor::Yealink,
        Vendor::Snom,
        Vendor::Grandstream,
        Vendor::Fanvil,
    ];

    #[test]
    fn names_are_escaped_and_faxes_left_out() {
        let xml = render(Vendor::Yealink, &people(1), 100);
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
        let first = cisco(entries.iter(), 10_000, 1, "pbx:8080", Some("mü"));
        assert_eq!(first.matches("<DirectoryEntry>").count(), 32);
        assert!(
            first.contains("<URL>http://pbx:8080/phonebook/cisco.xml?page=2&amp;q=m%C3%BC</URL>"),
            "{first}"
        );
        let last = cisco(entries.iter(), 10_000, 3, "pbx", None);
        assert_eq!(last.matches("<DirectoryEntry>").count(), 6);
        assert!(!last.contains("<Name>Next</Name>"));
        // Past the end: the last page again, never the first.
        assert_eq!(cisco(entries.iter(), 10_000, usize::MAX, "pbx", None), last);
    }

    #[test]
    fn page_numbers_are_digits_from_one_and_huge_ones_saturate() {
        assert_eq!(page_number("7").ok(), Some(7));
        assert_eq!(
            page_number("99999999999999999999999999").ok(),
            Some(usize::MAX)
        );
        for bad in ["0", "000", "", "-1", "+2", "x", "1e3"] {
            assert!(page_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn characters_xml_forbids_never_reach_the_xml() {
        assert_eq!(
            esc("a\u{1}b\tc\u{FFFE}d\u{FFFF}e\u{85}f\u{1F600}"),
            "ab\tcdef\u{1F600}"
        );
    }

    #[test]
    fn fields_numbers_and_rows_are_capped() {
        let mut e = Entry::new("c", "x", &"N".repeat(100_000));
        e.first_name = Some("F".repeat(100_000));
        for i in 0..1000 {
            e.business
                .push(NumberPlan::default().phone(&format!("089 {i:06}")));
        }
        e.mobile.push(NumberPlan::default().phone(&"1".repeat(200)));
        let entries = vec![e];
        for vendor in VENDORS {
            let xml = render(vendor, &entries, 10_000);
            assert!(xml.len() < 16 * 1024, "{vendor:?}: {} bytes", xml.len());
            assert!(xml.contains(&"N".repeat(MAX_TEXT_CHARS)), "{vendor:?}");
            assert!(!xml.contains(&"N".repeat(MAX_TEXT_CHARS + 1)), "{vendor:?}");
            assert!(!xml.contains("11111111111111111111111111111111111111111"));
        }
        let snom = render(Vendor::Snom, &entries, 10_000);
        assert_eq!(snom.matches("<item ").count(), MAX_NUMBERS_PER_ENTRY);
        let many = people(50);
        for vendor in VENDORS {
            let xml = render(vendor, &many, 7);
            let rows = ["<DirectoryEntry>", "<item ", "<Contact>"]
                .iter()
                .map(|tag| xml.matches(tag).count())
                .sum::<usize>();
            assert_eq!(rows, 7, "{vendor:?}");
        }
        assert!(render(Vendor::Snom, &many, 7).contains("complete=\"false\""));
        assert!(render(Vendor::Snom, &many, 50).contains("complete=\"true\""));
        let cisco_rows = cisco(many.iter(), 40, 9, "pbx", None);
        assert!(cisco_rows.contains("Page 2 of 2"), "{cisco_rows}");
        assert_eq!(cisco_rows.matches("<DirectoryEntry>").count(), 8);
    }
}
