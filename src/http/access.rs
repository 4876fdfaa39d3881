//! Who may use which part of the HTTP endpoint: the two access scopes and the checks that
//! keep a browser on someone else's page from driving the admin API.
//!
//! - The **read** scope (entries, search, caller lookup, XML books, metrics) is what phones
//!   and the PBX use. It is open unless `read_token_*` or `read_clients` limit it; phones
//!   cannot always send a header, so a client address list can stand in for the token.
//! - The **admin** scope (status, connector profiles, preview, sync triggers) changes or
//!   reveals configuration. With `admin_token_*` it needs that token; without one it answers
//!   only this machine: a loopback peer that names a loopback `Host` and came through no
//!   proxy — a DNS-rebinding page reaches the port with its own host name and is refused.
//! - On the admin scope a request from another origin is refused, and a request that changes
//!   something must carry a JSON body or an `X-Requested-With` header — neither of which a
//!   cross-site HTML form can send, so a form POST to `…/sync?force=true` cannot slip past the
//!   deletion guard.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, Shared};
use crate::config::Config;

/// The read scope's check.
pub async fn read_scope(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let runner = state.runner();
    let http = &runner.config().http;
    let peer = peer_ip(&request);
    let presented = presented_token(request.headers());
    let by_token = presented.as_deref().is_some_and(|given| {
        [&http.read_token, &http.admin_token]
            .into_iter()
            .flatten()
            .any(|t| t.matches(given))
    });
    let by_address = peer.is_some_and(|ip| http.read_clients.iter().any(|c| c.contains(ip)));
    let open = http.read_token.is_none() && http.read_clients.is_empty();
    if by_token || by_address || open {
        return next.run(request).await;
    }
    // The PBX's `CURL()` would show a JSON refusal as the caller's name.
    let text = super::feed::asks_for_text(request.uri());
    if http.read_token.is_some() {
        let mut response = if text {
            super::feed::empty_text(StatusCode::UNAUTHORIZED)
        } else {
            ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong token for the phone book (read scope): send Authorization: Bearer <read token>, or HTTP Basic with the token as password").into_response()
        };
        challenge(&mut response);
        response
    } else if text {
        super::feed::empty_text(StatusCode::FORBIDDEN)
    } else {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "this address may not read the phone book (http.read_clients)",
        )
        .into_response()
    }
}

/// The admin scope's check.
pub async fn admin_scope(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Err(why) = same_origin(headers) {
        return ApiError::new(StatusCode::FORBIDDEN, why).into_response();
    }
    if !is_safe(request.method()) && !declares_itself(headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "a request that changes something needs Content-Type: application/json or an X-Requested-With header",
        )
        .into_response();
    }
    let runner = state.runner();
    match &runner.config().http.admin_token {
        Some(token) => {
            if presented_token(headers).is_some_and(|given| token.matches(&given)) {
                next.run(request).await
            } else {
                unauthorized("missing or wrong admin token")
            }
        }
        None if from_this_machine(peer_ip(&request), &request) => next.run(request).await,
        None => ApiError::new(
            StatusCode::FORBIDDEN,
            "without an admin token the admin API answers only on this machine (http://localhost:…); to use it from elsewhere set [http] admin_token_env or admin_token_file (README: Security)",
        )
        .into_response(),
    }
}

/// What the start-up log should warn about: every part that is open to whoever reaches it.
pub fn warnings(config: &Config) -> Vec<String> {
    let http = &config.http;
    let mut out = Vec::new();
    if http.admin_token.is_none() {
        out.push(
            "the admin API has no token: it answers only requests from this machine (http://localhost:…); set [http] admin_token_env to use it from elsewhere".to_owned(),
        );
    }
    if http.read_token.is_none() && http.read_clients.is_empty() && !http.listen.ip().is_loopback()
    {
        out.push(format!(
            "the phone book is readable over HTTP by anyone who reaches {} (limit it with [http] read_clients or read_token_env)",
            http.listen
        ));
    }
    let ldap_open = std::iter::once(config.ldap.listen)
        .chain(config.ldap.listen_ldaps)
        .filter(|a| !a.ip().is_loopback());
    if config.ldap.anonymous {
        for addr in ldap_open {
            out.push(format!(
                "anonymous LDAP search is allowed for anyone who reaches {addr} (set [ldap] anonymous = false and [[ldap.users]])"
            ));
        }
    }
    out
}

fn peer_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The token of `Authorization: Bearer <t>`, or the password of `Authorization: Basic`
/// (phones that fetch XML books can often only send a user and a password).
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text
            .split_once(':')
            .map(|(_, password)| password.to_owned());
    }
    None
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    challenge(&mut response);
    response
}

/// Names the schemes a 401 accepts; libcurl (and so Asterisk's `CURL()`) answers a Basic
/// challenge with the configured user and password.
fn challenge(response: &mut Response) {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer, Basic realm=\"phonebook-proxy\""),
    );
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A JSON body or a custom header: both force a browser's CORS preflight (which this server
/// never grants), so only a same-origin page or a non-browser client can send them.
fn declares_itself(headers: &HeaderMap) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let custom = headers
        .get("x-requested-with")
        .is_some_and(|v| !v.is_empty());
    json || custom
}

/// Browsers name the page a request comes from; it must be this server itself.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err("cross-site requests are refused".into());
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, h)| h.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(format!(
            "requests from another origin are refused (Origin names {}, the request's Host is {}; behind a reverse proxy pass the Host header through with its port, e.g. nginx proxy_set_header Host $http_host)",
            origin_host.unwrap_or("nothing usable"),
            host.unwrap_or("missing")
        )),
    }
}

/// Headers an intermediary adds: a request that carries one came through a proxy, so its
/// loopback peer address says nothing about the client.
const PROXY_HEADERS: [&str; 7] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
    "via",
    "client-ip",
    "true-client-ip",
];

/// A loopback peer that addressed the server by a loopback name (one `Host`, and an
/// absolute-form target naming the same) and came through no proxy.
fn from_this_machine(peer: Option<IpAddr>, request: &Request) -> bool {
    let headers = request.headers();
    let loopback_peer = peer.is_some_and(|ip| match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    });
    let proxied = PROXY_HEADERS.iter().any(|h| headers.contains_key(*h));
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(h), None) => h.to_str().unwrap_or(""),
        _ => return false, // none, or two (RFC 9112: a 400)
    };
    let target_ok = request
        .uri()
        .authority()
        .is_none_or(|a| is_loopback_host(a.as_str()));
    loopback_peer && !proxied && is_loopback_host(host) && target_ok
}

/// `localhost`, `127.0.0.1`, `[::1]` — with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            // After the bracket only a port may follow.
            Some((ip, tail))
                if tail.is_empty()
                    || tail
                        .strip_prefix(':')
                        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
            {
                ip
            }
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "127.5.5.5",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:8080",
            "",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn tokens_from_bearer_and_basic() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(presented_token(&h).as_deref(), Some("abc"));
        // "phone:s3cret"
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic cGhvbmU6czNjcmV0"),
        );
        assert_eq!(presented_token(&h).as_deref(), Some("s3cret"));
    }

    #[test]
    fn origins() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("pb.example:8080"));
        assert!(same_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://pb.example:8080"),
        );
        assert!(same_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(same_origin(&h).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(same_origin(&h).is_err());
    }
}
