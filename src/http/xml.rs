//! Remote XML phone books for phones that fetch a directory over HTTP instead of asking LDAP:
//! Yealink, Cisco (32 rows a page, with paging), Snom, Grandstream and Fanvil. `?q=`
//! narrows any of them with the same search as the JSON API.
//!
//! # Numbers
//!
//! Each book writes numbers in its own format ([`NumberFormat`]; `[http.xml] number_format`
//! for every book, `[http.xml.<book>] number_format` for one), because the phones reading
//! them dial differently: a desk phone on the company's PBX wants `826` for a colleague and
//! `00890859929` for a customer (`dialable`, the default once the company's number blocks
//! are configured), a phone on a public line the national form.
//!
//! A book lists only numbers a phone can dial: no faxes (nobody calls a fax from a phone
//! book), no number whose served form is longer than [`MAX_NUMBER_CHARS`] (a cut number would
//! dial someone else) or holds no digit at all (`n/a`), at most [`MAX_NUMBERS_PER_ENTRY`]. An
//! entry left without a number is left out of every book — a phone can do nothing with it —
//! unless `[http.xml] keep_without_number` is set; then it is listed by name (Cisco and Snom,
//! which hold one number a row, give it one row with an empty number). The row cap, Cisco's
//! page count and Snom's `complete` count exactly the rows that are listed.
//!
//! # Labels
//!
//! Each book names a number's kind in its own vocabulary, all from one table
//! ([`Vendor::labels`]):
//!
//! | kind     | Yealink `label`, Cisco name | Snom `number_type` | Grandstream `Phone type` | Fanvil element |
//! |----------|-----------------------------|--------------------|--------------------------|----------------|
//! | business | `Business`                  | `business`         | `Work`                   | `Telephone`    |
//! | mobile   | `Mobile`                    | `mobile`           | `Mobile`                 | `Mobile`       |
//! | home     | `Home`                      | `home`             | `Home`                   | `Other`        |
//! | other    | `Other`                     | `fixed`            | `Other`                  | `Other`        |
//!
//! Fanvil's book has only the three elements `Telephone`, `Mobile` and `Other`, so home and
//! other numbers share `Other` there; every other book tells all four apart. Cisco shows one
//! number a row, so when an entry lists more than one the row's name says which:
//! `Anna Weiß (Mobile)`; a name that already ends in brackets gets the kind inside them,
//! `Andreas Schulz (IT, Business)`, never `Andreas Schulz (IT) (Business)`.
//!
//! # Polling
//!
//! Phones fetch their book every few minutes, so every book has a strong ETag naming what it
//! is made of — the snapshot version (which names its settings, the number plan among them),
//! the book and its number format, and a hash of the book options, the query (`q`, `page`)
//! and for Cisco the `Host` its soft-key links point back to — and `If-None-Match` with it
//! gets a `304`. With `Accept-Encoding: gzip` a book
//! is sent compressed (its ETag ends in `-gz`: another representation), see [`stream`].
//!
//! # Bounds
//!
//! What one request may cost is bounded whatever upstream sent: a book holds at most
//! `http.xml_max_rows` rows, text fields are cut to what a phone can show
//! ([`MAX_TEXT_CHARS`]) and numbers are capped as above. A book of up to [`WHOLE_BODY`] bytes
//! is sent whole with a Content-Length; a larger one is written while it is sent, [`CHUNK`]
//! bytes at a time, from the snapshot the request started on — so memory per request stays
//! small however large the book. Characters XML 1.0 forbids never reach the output, so every
//! book stays well-formed.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use flate2::Compression;

use super::conditional::{accepts_gzip, etag_matches};
use super::feed::search;
use super::{params, ApiError, Params, Shared};
use crate::directory::Snapshot;
use crate::model::{fnv1a64, Entry, PhoneKind};
use crate::numbers::{NumberFormat, NumberPlan};

/// Cisco IP phones show at most 32 directory entries per page.
const CISCO_PAGE: usize = 32;
/// The most entries a searched book returns.
const SEARCH_LIMIT: usize = 1000;
/// Names and companies are cut to this many characters: more than any phone display shows.
pub const MAX_TEXT_CHARS: usize = 128;
/// A served number longer than this is not a number a phone can dial; it is left out.
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
    let Some(vendor) = Vendor::from_file(&file) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such phone book (yealink.xml, cisco.xml, snom.xml, grandstream.xml, fanvil.xml)",
        ));
    };
    let runner = state.runner();
    let config = runner.config();
    let style = Style {
        format: config.http.xml.format(vendor.name()),
        keep: config.http.xml.keep_without_number,
        max_rows: config.http.limits.xml_max_rows,
    };
    // Only Cisco's book is paged, and its page links back to this server.
    let paging = match vendor {
        Vendor::Cisco => {
            let page = match params.get("page") {
                None => 1,
                Some(p) => page_number(p)?,
            };
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            Some(Paging { page, host })
        }
        _ => None,
    };
    let q = params.get("q").map(String::as_str);
    let snapshot = runner.directory().load();
    let ids = match q {
        Some(q) => Some(search(&snapshot, q, SEARCH_LIMIT)?),
        None => None,
    };
    let tag = Tag::new(&snapshot, vendor, style, q, paging);
    let gzip = accepts_gzip(&headers);
    if etag_matches(&headers, &[&tag.etag(false), &tag.etag(true)]) {
        return Ok(polled(StatusCode::NOT_MODIFIED.into_response(), &tag, gzip));
    }
    let selection = Selection { snapshot, ids };
    let body = match paging {
        Some(Paging { page, host }) => {
            let plan = &selection.snapshot.settings().numbers;
            whole(cisco(selection.iter(), plan, style, page, host, q), gzip)?
        }
        None => stream(Book::new(selection, vendor, style), gzip)?,
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(polled(response, &tag, gzip))
}

/// The headers every answer to a poll carries, `304` included: its ETag, that the answer
/// depends on `Accept-Encoding`, and that a cache must ask again before reusing it.
fn polled(mut response: Response, tag: &Tag, gzip: bool) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag.etag(gzip)) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// What a book's ETag names (see the module doc); [`Tag::etag`] adds the encoding.
struct Tag(String);

impl Tag {
    fn new(
        snapshot: &Snapshot,
        vendor: Vendor,
        style: Style,
        q: Option<&str>,
        paging: Option<Paging>,
    ) -> Tag {
        // Debug output quotes the strings, so no two different inputs read the same; the
        // crate version stands for how this code writes a book.
        let inputs = format!(
            "{}\0{}\0{}\0{q:?}\0{paging:?}",
            env!("CARGO_PKG_VERSION"),
            style.keep,
            style.max_rows,
        );
        Tag(format!(
            "xml-{}-{}-{}-{:016x}",
            snapshot.version(),
            vendor.name(),
            style.format.name(),
            fnv1a64(inputs.as_bytes())
        ))
    }

    /// The strong ETag of the plain or the gzip-compressed book.
    fn etag(&self, gzip: bool) -> String {
        format!("\"{}{}\"", self.0, if gzip { "-gz" } else { "" })
    }
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

/// The Cisco page asked for, and the `Host` its soft keys link to.
#[derive(Debug, Clone, Copy)]
struct Paging<'a> {
    page: usize,
    host: &'a str,
}

/// How one book is written: its number format, whether entries without a number are
/// listed, and its row cap.
#[derive(Debug, Clone, Copy)]
struct Style {
    format: NumberFormat,
    keep: bool,
    max_rows: usize,
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

/// A whole book as the body, compressed when the client takes gzip.
fn whole(text: String, gzip: bool) -> Result<Body, ApiError> {
    if !gzip {
        return Ok(Body::from(text));
    }
    let mut gz = GzEncoder::new(Vec::with_capacity(text.len() / 4 + 64), Compression::fast());
    gz.write_all(text.as_bytes())
        .and_then(|()| gz.finish())
        .map(Body::from)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The body of a book: whole when small, else the first [`WHOLE_BODY`] bytes followed by the
/// rest as it is written.
///
/// A streamed book is compressed as it is streamed when the client takes gzip, one piece at
/// a time: each piece is flushed to a byte boundary (`Z_SYNC_FLUSH`), so what has arrived can
/// always be inflated and nothing waits in the compressor between pieces, and the last piece
/// carries gzip's trailer. That costs a little ratio against compressing the book in one go
/// and keeps one compressor (a few hundred KiB) per stream, but never the whole book.
fn stream(mut book: Book, gzip: bool) -> Result<Body, ApiError> {
    let mut first = String::with_capacity(CHUNK);
    if !book.fill(&mut first, WHOLE_BODY) {
        return whole(first, gzip);
    }
    let mut encoder = Encoder::new(gzip);
    let first = encoder
        .piece(first, false)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let first = futures::stream::once(async move { Ok::<_, Cut>(first) });
    let deadline = Instant::now() + STREAM_DEADLINE;
    let rest = futures::stream::unfold(Some((book, encoder)), move |state| async move {
        let (mut book, mut encoder) = state?;
        if Instant::now() > deadline {
            // An error ends the body, and hyper closes the connection.
            return Some((Err(Cut::TooSlow), None));
        }
        let mut out = String::with_capacity(CHUNK + CHUNK / 4);
        let more = book.fill(&mut out, CHUNK);
        match encoder.piece(out, !more) {
            Ok(bytes) => Some((Ok(bytes), more.then_some((book, encoder)))),
            Err(e) => Some((Err(Cut::Gzip(e)), None)),
        }
    });
    Ok(Body::from_stream(futures::StreamExt::chain(first, rest)))
}

/// Why a streamed book ends early; hyper closes the connection.
#[derive(Debug, thiserror::Error)]
enum Cut {
    #[error("the phone book was not read within {STREAM_DEADLINE:?}")]
    TooSlow,
    #[error("compressing the phone book failed: {0}")]
    Gzip(std::io::Error),
}

/// Compresses a streamed book piece by piece, or passes it through.
struct Encoder(Option<GzEncoder<Vec<u8>>>);

impl Encoder {
    fn new(gzip: bool) -> Encoder {
        Encoder(gzip.then(|| GzEncoder::new(Vec::with_capacity(CHUNK / 2), Compression::fast())))
    }

    /// The bytes to send for `text`: itself, or its compressed form flushed to a byte
    /// boundary; the `last` piece ends the gzip stream.
    fn piece(&mut self, text: String, last: bool) -> std::io::Result<Bytes> {
        let Some(gz) = self.0.as_mut() else {
            return Ok(Bytes::from(text));
        };
        gz.write_all(text.as_bytes())?;
        if last {
            return match self.0.take() {
                Some(gz) => gz.finish().map(Bytes::from),
                None => Ok(Bytes::new()),
            };
        }
        gz.flush()?;
        // The encoder appends to its Vec; what it holds after a flush is this piece.
        Ok(Bytes::from(std::mem::take(gz.get_mut())))
    }
}

/// The five books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vendor {
    Yealink,
    Cisco,
    Snom,
    Grandstream,
    Fanvil,
}

impl Vendor {
    const ALL: [Vendor; 5] = [
        Vendor::Yealink,
        Vendor::Cisco,
        Vendor::Snom,
        Vendor::Grandstream,
        Vendor::Fanvil,
    ];

    /// The book's name: its file without `.xml`, and its `[http.xml.<name>]` table.
    fn name(self) -> &'static str {
        match self {
            Vendor::Yealink => "yealink",
            Vendor::Cisco => "cisco",
            Vendor::Snom => "snom",
            Vendor::Grandstream => "grandstream",
            Vendor::Fanvil => "fanvil",
        }
    }

    fn from_file(file: &str) -> Option<Vendor> {
        let name = file.strip_suffix(".xml")?;
        Vendor::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The book's words for business, mobile, home and other numbers: the one place that
    /// maps a [`PhoneKind`] to a vendor's vocabulary (the table in the module doc).
    fn labels(self) -> [&'static str; 4] {
        match self {
            // Cisco has no number types; its row names use Yealink's words.
            Vendor::Yealink | Vendor::Cisco => ["Business", "Mobile", "Home", "Other"],
            Vendor::Snom => ["business", "mobile", "home", "fixed"],
            Vendor::Grandstream => ["Work", "Mobile", "Home", "Other"],
            // Fanvil has no element for home numbers.
            Vendor::Fanvil => ["Telephone", "Mobile", "Other", "Other"],
        }
    }

    fn label(self, kind: PhoneKind) -> &'static str {
        let [business, mobile, home, other] = self.labels();
        match kind {
            PhoneKind::Business => business,
            PhoneKind::Mobile => mobile,
            PhoneKind::Home => home,
            // Faxes are never listed.
            PhoneKind::Other | PhoneKind::Fax => other,
        }
    }

    /// Whether a row holds one number (so an entry takes a row per number) rather than one
    /// entry with all of its numbers.
    fn row_per_number(self) -> bool {
        matches!(self, Vendor::Cisco | Vendor::Snom)
    }

    /// `complete` tells a Snom phone whether the book holds everything.
    fn open(self, out: &mut String, complete: bool) {
        out.push_str(HEADER);
        match self {
            Vendor::Yealink => out.push_str("<YealinkIPPhoneDirectory>\n"),
            Vendor::Cisco => out.push_str("<CiscoIPPhoneDirectory>\n"),
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
            Vendor::Cisco => "</CiscoIPPhoneDirectory>\n",
            Vendor::Snom => "</tbook>\n",
            Vendor::Grandstream => "</AddressBook>\n",
            Vendor::Fanvil => "</PhoneBook>\n",
        });
    }

    /// How many rows an entry with `listed` numbers takes.
    fn rows(self, listed: usize, keep: bool) -> usize {
        match listed {
            0 => usize::from(keep),
            n if self.row_per_number() => n,
            _ => 1,
        }
    }

    /// Writes the rows of `e` (listing `numbers`) that fall in `rows`.
    fn entry(self, e: &Entry, numbers: &[Listed], keep: bool, out: &mut String, rows: &mut Rows) {
        if numbers.is_empty() && !keep {
            return;
        }
        let write: fn(&Entry, &[Listed], &mut String) = match self {
            Vendor::Yealink => yealink,
            Vendor::Grandstream => grandstream,
            Vendor::Fanvil => fanvil,
            Vendor::Cisco | Vendor::Snom => {
                let labelled = numbers.len() > 1;
                // A kept entry without a number: one row with an empty number.
                let each = numbers
                    .iter()
                    .map(Some)
                    .chain(numbers.is_empty().then_some(None));
                for number in each {
                    if !rows.take() {
                        continue;
                    }
                    if rows.left == 0 {
                        return;
                    }
                    if self == Vendor::Cisco {
                        cisco_row(e, number, labelled, out);
                    } else {
                        snom_item(e, number, rows.index, out);
                    }
                    rows.wrote();
                }
                return;
            }
        };
        if rows.take() && rows.left > 0 {
            write(e, numbers, out);
            rows.wrote();
        }
    }
}

/// The rows a book (or one Cisco page) holds: rows to pass over first (earlier pages), rows
/// left to write, and the running index Snom numbers its items with.
struct Rows {
    skip: usize,
    left: usize,
    index: usize,
}

impl Rows {
    fn new(max_rows: usize) -> Rows {
        Rows {
            skip: 0,
            left: max_rows,
            index: 0,
        }
    }

    /// `false` (and one fewer to skip) while rows of earlier pages are passed over.
    fn take(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    fn wrote(&mut self) {
        self.left -= 1;
        self.index += 1;
    }
}

/// One number as a book lists it: its kind and its served form.
type Listed<'a> = (PhoneKind, Cow<'a, str>);

/// The numbers a book lists for `e`, in the book's format (see the module doc for which).
///
/// A number the entry already lists in the same served form is left out: AD commonly holds a
/// person's desk number twice, as `telephoneNumber` (`+49 30 5678-1234`) and as `ipPhone`
/// (`1234`), and a book that dials the extension would otherwise show it twice (two rows on
/// Snom and Cisco). The first kind wins, so it stays labelled as the business number.
fn listed<'a>(e: &'a Entry, plan: &NumberPlan, format: NumberFormat) -> Vec<Listed<'a>> {
    let mut out: Vec<Listed<'a>> = Vec::new();
    for (k, p) in e.all_phones().filter(|(k, _)| *k != PhoneKind::Fax) {
        if out.len() == MAX_NUMBERS_PER_ENTRY {
            break;
        }
        let n = plan.format(p, format);
        if n.chars().count() <= MAX_NUMBER_CHARS
            && n.bytes().any(|b| b.is_ascii_digit())
            && !out.iter().any(|(_, seen)| *seen == n)
        {
            out.push((k, n));
        }
    }
    out
}

/// How many rows `entries` take in `vendor`'s book, counted no further than `cap`.
fn count_rows<'a>(
    vendor: Vendor,
    entries: impl Iterator<Item = &'a Entry>,
    plan: &NumberPlan,
    style: Style,
    cap: usize,
) -> usize {
    let mut total = 0;
    for e in entries {
        if total >= cap {
            break;
        }
        total += vendor.rows(listed(e, plan, style.format).len(), style.keep);
    }
    total.min(cap)
}

/// A book being written, entry by entry (every book but Cisco's pages).
struct Book {
    selection: Selection,
    vendor: Vendor,
    style: Style,
    next: usize,
    rows: Rows,
    started: bool,
}

impl Book {
    fn new(selection: Selection, vendor: Vendor, style: Style) -> Book {
        Book {
            selection,
            vendor,
            style,
            next: 0,
            rows: Rows::new(style.max_rows),
            started: false,
        }
    }

    /// Appends to `out` until it holds at least `want` bytes or the book is finished;
    /// `true` while there is more to write.
    fn fill(&mut self, out: &mut String, want: usize) -> bool {
        let plan = &self.selection.snapshot.settings().numbers;
        if !self.started {
            // Only Snom's header says whether the book is complete; counting one row more
            // than the cap is enough to know.
            let complete = self.vendor == Vendor::Snom && {
                let cap = self.style.max_rows.saturating_add(1);
                count_rows(self.vendor, self.selection.iter(), plan, self.style, cap)
                    <= self.style.max_rows
            };
            self.vendor.open(out, complete);
            self.started = true;
        }
        while out.len() < want {
            let entry = match self.selection.get(self.next) {
                Some(e) if self.rows.left > 0 => e,
                _ => {
                    self.vendor.close(out);
                    return false;
                }
            };
            let numbers = listed(entry, plan, self.style.format);
            self.vendor
                .entry(entry, &numbers, self.style.keep, out, &mut self.rows);
            self.next += 1;
        }
        true
    }
}

/// One page of Cisco's book: [`CISCO_PAGE`] rows, one number each, with soft keys to dial,
/// to turn to the previous and the next page, and to leave. A page past the last shows the
/// last page.
fn cisco<'a>(
    entries: impl Iterator<Item = &'a Entry> + Clone,
    plan: &NumberPlan,
    style: Style,
    page: usize,
    host: &str,
    q: Option<&str>,
) -> String {
    let vendor = Vendor::Cisco;
    let total = count_rows(vendor, entries.clone(), plan, style, style.max_rows);
    let pages = total.div_ceil(CISCO_PAGE).max(1);
    let page = page.min(pages);
    let skip = (page - 1) * CISCO_PAGE;
    let mut rows = Rows {
        skip,
        left: CISCO_PAGE.min(total.saturating_sub(skip)),
        index: 0,
    };
    let mut out = String::new();
    vendor.open(&mut out, true);
    let _ = writeln!(
        out,
        "  <Title>Phone book</Title>\n  <Prompt>Page {page} of {pages}</Prompt>"
    );
    for e in entries {
        if rows.left == 0 {
            break;
        }
        vendor.entry(
            e,
            &listed(e, plan, style.format),
            style.keep,
            &mut out,
            &mut rows,
        );
    }
    let link = |page: usize| {
        let mut url = format!("http://{host}/phonebook/cisco.xml?page={page}");
        if let Some(q) = q {
            let _ = write!(url, "&q={}", percent(q));
        }
        url
    };
    let mut keys = vec![("Dial", "SoftKey:Dial".to_owned())];
    if page > 1 {
        keys.push(("Previous", link(page - 1)));
    }
    if page < pages {
        keys.push(("Next", link(page + 1)));
    }
    keys.push(("Exit", "SoftKey:Exit".to_owned()));
    for (position, (name, url)) in keys.iter().enumerate() {
        let _ = writeln!(
            out,
            "  <SoftKeyItem>\n    <Name>{name}</Name>\n    <URL>{}</URL>\n    <Position>{}</Position>\n  </SoftKeyItem>",
            esc(url),
            position + 1
        );
    }
    vendor.close(&mut out);
    out
}

mod write;

use write::*;

#[cfg(test)]
mod tests;
