//! The admin page: one HTML file, its two scripts (the page, and the connector editor) and
//! its style sheet, embedded in the binary.
//!
//! The page holds no data and no secret, so it is served without the token; everything it
//! shows comes from the JSON API, which asks for the token (the page prompts for it on a 401
//! and keeps it in the tab's sessionStorage). A strict Content-Security-Policy allows only the
//! page's own script, style and API: nothing inline, nothing from elsewhere.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ApiError;

const INDEX: &str = include_str!("admin/index.html");
const SCRIPT: &str = include_str!("admin/admin.js");
const EDITOR: &str = include_str!("admin/editor.js");
const STYLE: &str = include_str!("admin/admin.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `GET /` — the admin page.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /admin/{file}` — the page's scripts and style sheet.
pub async fn file(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "admin.js" => asset("text/javascript; charset=utf-8", SCRIPT),
        "editor.js" => asset("text/javascript; charset=utf-8", EDITOR),
        "admin.css" => asset("text/css; charset=utf-8", STYLE),
        _ => ApiError::new(StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
