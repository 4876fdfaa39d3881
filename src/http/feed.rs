//! The phone book as JSON: the whole feed (with ETag and gzip), search, and caller lookup.
//!
//! Search and lookup build LDAP filters and run them through the snapshot exactly like a
//! phone's query, so HTTP and LDAP can never disagree about what matches. The JSON shape of
//! an entry is [`crate::export::FeedEntry`], shared with `export --format json`.
//!
//! The plain-text lookup (`format=text`) is read by Asterisk's `CURL()`, which hands the PBX
//! whatever body comes back whatever the status: every answer to it is either the caller's
//! name or an empty body, never JSON — including the access checks' refusals
//! ([`asks_for_text`], [`empty_text`]).

use std::io::Write as _;
use std::sync::Arc;

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::conditional::{accepts_gzip, etag_matches};
use super::{params, ApiError, Params, Shared};
use crate::directory::schema::{Attr, SERVED};
use crate::directory::{BaseRef, Hit, Scope, Snapshot};
use crate::export::{Document, FeedEntry};
use crate::filter::{LdapFilter, LdapSubstringFilter};

/// The serialised feed of one snapshot version, plain and gzip-compressed.
pub struct Feed {
    version: String,
    json: Bytes,
    gzip: Bytes,
}

impl Feed {
    fn build(snapshot: &Snapshot) -> Result<Feed, String> {
        let json = serde_json::to_vec(&Document::new(
            snapshot.generation(),
            snapshot.entries().iter().map(|e| &e.entry),
            &snapshot.settings().numbers,
        ))
        .map_err(|e| e.to_string())?;
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(json.len() / 6),
            flate2::Compression::fast(),
        );
        gz.write_all(&json).map_err(|e| e.to_string())?;
        let gzip = gz.finish().map_err(|e| e.to_string())?;
        Ok(Feed {
            version: snapshot.version().to_owned(),
            json: json.into(),
            gzip: gzip.into(),
        })
    }

    /// Strong ETags: the snapshot version names the content; each encoding is its own
    /// representation.
    fn etag(&self, gzip: bool) -> String {
        if gzip {
            format!("\"pb-{}-gz\"", self.version)
        } else {
            format!("\"pb-{}\"", self.version)
        }
    }
}

/// The feed of the snapshot being served, built once per version.
async fn current_feed(state: &Shared) -> Result<Arc<Feed>, ApiError> {
    let snapshot = state.runner().directory().load();
    if let Ok(cache) = state.feed.lock() {
        if let Some(feed) = cache.as_ref().filter(|f| f.version == snapshot.version()) {
            return Ok(feed.clone());
        }
    }
    let feed = tokio::task::spawn_blocking(move || Feed::build(&snapshot))
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let feed = Arc::new(feed);
    if let Ok(mut cache) = state.feed.lock() {
        *cache = Some(feed.clone());
    }
    Ok(feed)
}

/// `GET /api/v1/entries` — the feed, or with `?q=` a search.
pub async fn entries(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Params,
) -> Result<Response, ApiError> {
    let params = params(query)?;
    if let Some(q) = params.get("q") {
        let limit = limit(params.get("limit"))?;
        let snapshot = state.runner().directory().load();
        let found = search(&snapshot, q, limit)?;
        return Ok(axum::Json(Document::new(
            snapshot.generation(),
            found.iter().map(|id| &snapshot.entry(*id).entry),
            &snapshot.settings().numbers,
        ))
        .into_response());
    }
    if params.contains_key("limit") {
        return Err(ApiError::bad_request("limit goes with q"));
    }
    let feed = current_feed(&state).await?;
    let gzip = accepts_gzip(&headers);
    let etag = feed.etag(gzip);
    let mut response = if etag_matches(&headers, &[&feed.etag(false), &feed.etag(true)]) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = if gzip {
            feed.gzip.clone()
        } else {
            feed.json.clone()
        };
        let mut r = Response::new(Body::from(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        if gzip {
            r.headers_mut().insert(
                header::CONTENT_ENCODING,
                header::HeaderValue::from_static("gzip"),
            );
        }
        r
    };
    let headers = response.headers_mut();
    if let Ok(v) = header::HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::VARY,
        header::HeaderValue::from_static("Accept-Encoding"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}

/// `limit`: 1..=1000, default 50.
pub fn limit(value: Option<&String>) -> Result<usize, ApiError> {
    match value {
        None => Ok(50),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "limit must be a number from 1 to 1000, not \"{v}\""
            ))),
        },
    }
}

/// Entries whose name, company or a number contains `q` (case-, accent- and
/// format-insensitive), in display order, at most `limit`.
pub fn search(snapshot: &Snapshot, q: &str, limit: usize) -> Result<Vec<u32>, ApiError> {
    let q = q.trim();
    if q.is_empty() {
        return Err(ApiError::bad_request("q must not be empty"));
    }
    if q.chars().count() > 200 {
        return Err(ApiError::bad_request("q is longer than 200 characters"));
    }
    let contains = |attr: &str| {
        LdapFilter::Substring(
            attr.to_owned(),
            LdapSubstringFilter {
                initial: None,
                any: vec![q.to_owned()],
                final_: None,
            },
        )
    };
    let mut terms: Vec<LdapFilter> = ["cn", "givenName", "sn", "o"]
        .into_iter()
        .map(contains)
        .collect();
    terms.extend(phone_attributes().map(contains));
    run(snapshot, &LdapFilter::Or(terms), limit)
}

fn phone_attributes() -> impl Iterator<Item = &'static str> {
    SERVED
        .iter()
        .filter(|(_, a)| matches!(a, Attr::Phone(_)))
        .map(|(n, _)| *n)
}

fn run(snapshot: &Snapshot, filter: &LdapFilter, limit: usize) -> Result<Vec<u32>, ApiError> {
    let node = snapshot
        .compile(filter)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (hits, _) = snapshot.search(BaseRef::Container, Scope::One, &node, limit);
    Ok(hits
        .into_iter()
        .filter_map(|h| match h {
            Hit::Entry(id) => Some(id),
            Hit::Container => None,
        })
        .collect())
}

#[derive(Serialize)]
struct LookupJson<'a> {
    number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    e164: Option<String>,
    display_name: &'a str,
    entry: FeedEntry<'a>,
}

/// The answer for a caller who withheld the number: nothing to look up, but not an error.
#[derive(Serialize)]
struct WithheldJson<'a> {
    number: &'a str,
    withheld: bool,
}

/// The route of the caller lookup (the router's path for [`lookup`]).
const LOOKUP_PATH: &str = "/api/v1/lookup";

/// What PBXes and trunks commonly put in place of a caller's number when it is withheld,
/// compared case-insensitively after trimming; an empty number means the same. docs/pbx.md
/// lists them.
const WITHHELD: [&str; 7] = [
    "anonymous",
    "unknown",
    "unavailable",
    "restricted",
    "private",
    "withheld",
    "",
];

/// A caller number longer than this is not a phone number (E.164 has at most 15 digits;
/// the rest leaves room for separators and prefixes).
const MAX_CALLER_CHARS: usize = 64;

/// Whether `number` (as sent) says the caller withheld the number.
pub fn is_withheld(number: &str) -> bool {
    let number = number.trim();
    WITHHELD.iter().any(|w| number.eq_ignore_ascii_case(w))
}

/// Whether the request is the caller lookup asking for the plain-text answer
/// (`format=text`): its refusals, too, must then be an empty text body, since `CURL()` would
/// hand a JSON error to the PBX as the caller's name.
pub fn asks_for_text(uri: &Uri) -> bool {
    uri.path() == LOOKUP_PATH && format_param(uri).as_deref() == Some("text")
}

/// The `format` parameter as the lookup reads it (the last one, as the query map keeps).
fn format_param(uri: &Uri) -> Option<String> {
    match Query::<HashMap<String, String>>::try_from_uri(uri) {
        Ok(Query(mut map)) => map.remove("format"),
        // A query string the map cannot hold still says what it asks for.
        Err(_) => uri.query().and_then(|q| {
            q.split('&')
                .rev()
                .find_map(|pair| pair.strip_prefix("format="))
                .map(str::to_owned)
        }),
    }
}

/// A status with an empty `text/plain` body: what the text lookup answers whenever it has no
/// name to give.
pub fn empty_text(status: StatusCode) -> Response {
    text(status, String::new())
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `GET /api/v1/lookup?number=N[&format=text]` — who is calling.
pub async fn lookup(State(state): State<Shared>, uri: Uri, query: Params) -> Response {
    let text_wanted = asks_for_text(&uri);
    match find_caller(&state, query) {
        Ok(Caller::Found {
            number,
            e164,
            snapshot,
            id,
        }) => {
            let entry = &snapshot.entry(id).entry;
            if text_wanted {
                text(StatusCode::OK, entry.display_name.clone())
            } else {
                axum::Json(LookupJson {
                    number: &number,
                    e164,
                    display_name: &entry.display_name,
                    entry: FeedEntry::new(entry, &snapshot.settings().numbers),
                })
                .into_response()
            }
        }
        Ok(Caller::Withheld(raw)) => {
            if text_wanted {
                empty_text(StatusCode::OK)
            } else {
                axum::Json(WithheldJson {
                    number: &raw,
                    withheld: true,
                })
                .into_response()
            }
        }
        Err(e) if text_wanted => empty_text(e.status),
        Err(e) => e.into_response(),
    }
}

/// What a lookup found.
enum Caller {
    Found {
        /// The number as read (an unencoded `+` restored).
        number: String,
        e164: Option<String>,
        snapshot: Arc<Snapshot>,
        id: u32,
    },
    /// The number as sent, which says it was withheld.
    Withheld(String),
}

fn find_caller(state: &Shared, query: Params) -> Result<Caller, ApiError> {
    let params = params(query)?;
    match params.get("format").map(String::as_str) {
        None | Some("json") | Some("text") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be json or text, not \"{other}\""
            )))
        }
    }
    let raw = params
        .get("number")
        .ok_or_else(|| ApiError::bad_request("number is required"))?;
    if is_withheld(raw) {
        return Ok(Caller::Withheld(raw.clone()));
    }
    if raw.chars().count() > MAX_CALLER_CHARS {
        return Err(ApiError::bad_request(format!(
            "a phone number has at most {MAX_CALLER_CHARS} characters"
        )));
    }
    // An unencoded `+` in a query string arrives as a space: `?number=+4989…`.
    let number = match raw.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
        _ => raw.trim().to_owned(),
    };
    let snapshot = state.runner().directory().load();
    let plan = &snapshot.settings().numbers;
    // `826` is an extension; `89 1234567` a national number written without its trunk
    // prefix.
    let own = plan.to_e164(&number);
    let e164 = own
        .clone()
        .or_else(|| plan.to_e164(&format!("{}{number}", plan.national_prefix)));
    let digits = crate::numbers::digits(&number);
    if number.chars().any(char::is_alphabetic) || (digits.len() < 3 && e164.is_none()) {
        return Err(ApiError::bad_request(format!(
            "\"{raw}\" is not a phone number"
        )));
    }
    // Readings of the number, tried in turn until one finds someone: `(its E.164 form, what
    // the filter compares)`.
    let mut readings = vec![(e164.clone(), e164.clone().unwrap_or_else(|| number.clone()))];
    // Trunks that present E.164 without its `+` (`493056781234`): tried only when the
    // reading above (a national number without trunk prefix) finds nobody, since the same
    // digits can be both.
    if !number.starts_with('+')
        && number.chars().all(|c| c.is_ascii_digit())
        && digits.starts_with(plan.country_code.as_str())
    {
        if let Some(plus) = plan.to_e164(&format!("+{digits}")) {
            if Some(&plus) != e164.as_ref() {
                readings.push((Some(plus.clone()), plus));
            }
        }
    }
    // A number with no E.164 form of its own, as long as an extension, is also compared as
    // sent: an extension of two blocks (`12345`) is no national number, though five digits
    // after a trunk prefix make one (`+4912345`) — it names the colleagues of both blocks.
    // (Longer digits are no extension: `41441234567` is not Zurich without its `+`.)
    let extension_long = plan.extensions.iter().any(|b| b.digits == digits.len());
    if own.is_none() && e164.is_some() && extension_long {
        readings.push((None, number.clone()));
    }
    for (candidate, wanted) in readings {
        let filter = LdapFilter::Or(
            phone_attributes()
                .map(|a| LdapFilter::Equality(a.to_owned(), wanted.clone()))
                .collect(),
        );
        if let Some(&id) = run(&snapshot, &filter, 1)?.first() {
            return Ok(Caller::Found {
                number,
                e164: candidate,
                snapshot,
                id,
            });
        }
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no entry has the number {number}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(&"7".to_owned())).unwrap(), 7);
        assert!(limit(Some(&"0".to_owned())).is_err());
        assert!(limit(Some(&"abc".to_owned())).is_err());
    }

    #[test]
    fn withheld_numbers_are_recognised_in_any_case_and_padding() {
        for n in [
            "",
            "  ",
            "anonymous",
            "Anonymous",
            " ANONYMOUS ",
            "unknown",
            "Unavailable",
            "restricted",
            "Private",
            "withheld",
        ] {
            assert!(is_withheld(n), "{n:?}");
        }
        for n in ["826", "+49891234826", "anonymous1", "anon", "abc"] {
            assert!(!is_withheld(n), "{n:?}");
        }
    }

    #[test]
    fn only_the_lookup_with_format_text_asks_for_text() {
        let asks = |u: &str| asks_for_text(&u.parse::<Uri>().unwrap());
        assert!(asks("/api/v1/lookup?format=text&number=826"));
        assert!(asks("/api/v1/lookup?number=826&format=text"));
        assert!(
            asks("/api/v1/lookup?format=json&format=text"),
            "the last one counts"
        );
        assert!(!asks("/api/v1/lookup?number=826"));
        assert!(!asks("/api/v1/lookup?number=826&format=json"));
        assert!(!asks("/api/v1/lookup?format=texts"));
        assert!(!asks("/api/v1/entries?format=text"));
        assert!(!asks("/api/v1/lookup/?format=text"));
    }
}
