//! HTTP requests as the integration tests send them: with the real `curl`, status, headers
//! and body read back exactly as they came.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

/// An HTTP answer: status, headers (names lower-cased) and the body as sent (never decoded).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Asserts the plain-text answer the PBX reads: `status`, `text/plain; charset=utf-8`,
    /// and exactly `body` (with a matching Content-Length).
    pub fn assert_text(&self, status: u16, body: &str, what: &str) {
        assert_eq!(
            (self.status, self.text()),
            (status, body.to_owned()),
            "{what}"
        );
        assert_eq!(self.body, body.as_bytes(), "{what}: byte for byte");
        assert_eq!(
            self.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{what}: {self:?}"
        );
        assert_eq!(
            self.header("content-length"),
            Some(body.len().to_string().as_str()),
            "{what}: {self:?}"
        );
    }
}

/// Runs `curl` with `args` (method, headers, URL …) and parses status, headers and body.
pub fn curl(args: &[&str]) -> Response {
    let dir = tempfile::tempdir().expect("temp dir");
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "60", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(head).expect("headers");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: std::fs::read(body).unwrap_or_default(),
    }
}
