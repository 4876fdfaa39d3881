//! HTTP caching and compression negotiation shared by every book the PBX and phones poll:
//! `Accept-Encoding: gzip` and `If-None-Match`, so a poller that has the current book gets a
//! `304` and one that has none gets it compressed.

use axum::http::{header, HeaderMap};

/// Whether the client takes gzip: `gzip` (or `x-gzip`) with a weight above 0, or — when it
/// names neither — `*` with a weight above 0. A named `gzip;q=0` wins over `*` (RFC 9110
/// §12.5.3: `*` stands only for codings not listed), so a client that refused gzip never
/// gets it.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let weight = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            // An unreadable weight is no consent to compress.
            .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
        let accepted = weight > 0.0;
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(gzip.unwrap_or(false) || accepted);
        } else if coding == "*" {
            any = Some(any.unwrap_or(false) || accepted);
        }
    }
    gzip.or(any).unwrap_or(false)
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
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "x-gzip")])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "*;q=0, gzip"
        )])));
    }

    #[test]
    fn a_refused_gzip_is_never_sent_whatever_else_is_accepted() {
        for refused in [
            "gzip;q=0, *",
            "*, gzip;q=0",
            "GZIP;Q=0",
            "gzip; q=0.000",
            "gzip;q=0.",
            "gzip;q=banana",
            "*;q=0",
            "identity",
        ] {
            assert!(
                !accepts_gzip(&headers(&[("accept-encoding", refused)])),
                "{refused}"
            );
        }
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
