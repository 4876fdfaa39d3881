//! The phone book as JSON: the whole feed (with ETag and gzip), search, and caller lookup.
//!
//! Search and lookup build LDAP filters and run them through the snapshot exactly like a
//! phone's query, so HTTP and LDAP can never disagree about what matches.

use std::io::Write as _;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::conditional::{accepts_gzip, etag_matches};
use super::{params, ApiError, Params, Shared};
use crate::directory::schema::{Attr, SERVED};
use crate::directory::{BaseRef, Hit, Scope, Snapshot};
use crate::filter::{LdapFilter, LdapSubstringFilter};
use crate::model::Entry;

/// The serialised feed of one snapshot version, plain and gzip-compressed.
pub struct Feed {
    version: String,
    json: Bytes,
    gzip: Bytes,
}

impl Feed {
    fn build(snapshot: &Snapshot) -> Result<Feed, String> {
        let entries: Vec<&Entry> = snapshot.entries().iter().map(|e| &e.entry).collect();
        let json = serde_json::to_vec(&FeedJson {
            generation: snapshot.generation(),
            entries: &entries,
        })
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

#[derive(Serialize)]
struct FeedJson<'a, E: Serialize> {
    generation: u64,
    entries: &'a [E],
}

/// The feed of the snapshot being served, built once per generation.
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
        let entries: Vec<&Entry> = found.iter().map(|id| &snapshot.entry(*id).entry).collect();
        return Ok(axum::Json(FeedJson {
            generation: snapshot.generation(),
            entries: &entries,
        })
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
    entry: &'a Entry,
}

/// `GET /api/v1/lookup?number=N[&format=text]` — who is calling.
pub async fn lookup(State(state): State<Shared>, query: Params) -> Result<Response, ApiError> {
    let params = params(query)?;
    let text = match params.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("text") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be json or text, not \"{other}\""
            )))
        }
    };
    let raw = params
        .get("number")
        .ok_or_else(|| ApiError::bad_request("number is required"))?;
    // An unencoded `+` in a query string arrives as a space: `?number=+4989…`.
    let number = match raw.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
        _ => raw.trim().to_owned(),
    };
    if crate::numbers::digits(&number).len() < 3 || number.chars().any(|c| c.is_alphabetic()) {
        return Err(ApiError::bad_request(format!(
            "\"{raw}\" is not a phone number"
        )));
    }
    let snapshot = state.runner().directory().load();
    let plan = &snapshot.settings().numbers;
    // `89 1234567` is a national number written without its trunk prefix.
    let e164 = plan
        .to_e164(&number)
        .or_else(|| plan.to_e164(&format!("{}{number}", plan.national_prefix)));
    let wanted = e164.clone().unwrap_or_else(|| number.clone());
    let filter = LdapFilter::Or(
        phone_attributes()
            .map(|a| LdapFilter::Equality(a.to_owned(), wanted.clone()))
            .collect(),
    );
    let found = run(&snapshot, &filter, 1)?;
    let Some(id) = found.first() else {
        return Ok(if text {
            (StatusCode::NOT_FOUND, "").into_response()
        } else {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no entry has the number {number}"),
            )
            .into_response()
        });
    };
    let entry = &snapshot.entry(*id).entry;
    Ok(if text {
        (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            entry.display_name.clone(),
        )
            .into_response()
    } else {
        axum::Json(LookupJson {
            number: &number,
            e164,
            display_name: &entry.display_name,
            entry,
        })
        .into_response()
    })
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
}
