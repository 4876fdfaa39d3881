//! HTTP caching and compression negotiation shared by every book the PBX and phones poll:
//! `Accept-Encoding: gzip` and `If-None-Match`, so a poller that has the current book gets a
//! `304` and one that has none gets it compressed.

use axum::http::{header, HeaderMap};

/// Whether the client takes gzip (`gzip` or `*`, not refused with `q=0`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Whether `If-None-Match` names one of `current` (weak or strong), or is `*`.
pub fn etag_matches(headers: &HeaderMap, current: &[&str]) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || current.iter().any(|c| *c == tag.trim_start_matches("W/"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn gzip_is_used_when_accepted_and_not_refused() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1.0, gzip;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn etags_match_either_representation() {
        let current = ["\"pb-7.0\"", "\"pb-7.0-gz\""];
        assert!(etag_matches(
            &headers(&[("if-none-match", "\"pb-7.0\"")]),
            &current
        ));
        assert!(etag_matches(
            &headers(&[("if-none-match", "\"x\", W/\"pb-7.0-gz\"")]),
            &current
        ));
        assert!(!etag_matches(
            &headers(&[("if-none-match", "\"pb-6.0\"")]),
            &current
        ));
    }
}
