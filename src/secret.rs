//! Passwords and tokens, kept where no log line, error or status can show them by accident.

use std::fmt;

/// A password or token. Its `Debug` and `Display` never show the value, so a secret cannot
/// leak through a log line or an error by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (a bind).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, compared without an early exit on the first differing
    /// byte (a timing difference would tell a guesser how much of a token was right).
    pub fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
