//! Every depth and count limit a parser of outside input enforces, in one place.
//!
//! Anything that recurses over input someone else wrote — a connector filter in the
//! configuration or the admin API, a phone's search filter, nested pre-filter groups — is
//! held to these numbers before it goes deeper: connector filter text is measured before
//! ldap3's recursive parser sees it, and the decoders and the filter compiler count their
//! depth as they descend, so no input can drive the stack deeper than the limit (a
//! 15,000-deep filter used to abort the process). A phone filter deeper than
//! [`DECODED_FILTER_DEPTH`] is decoded by ldap3_proto, whose own limit is 127 levels.

/// The deepest filter nesting accepted, top level = 1. Real phone and directory filters stay
/// below 6; 32 leaves room for generated ones.
pub const FILTER_DEPTH: usize = 32;

/// The deepest filter nesting the LDAP endpoint's fast decoder reads (top level = 1). A
/// deeper filter goes to ldap3_proto, which refuses it from depth 128 on; the compiled
/// filter is refused beyond [`FILTER_DEPTH`] either way.
pub const DECODED_FILTER_DEPTH: usize = 64;

/// The most parts (`(…)` items) a filter may have.
pub const FILTER_PARTS: usize = 512;

/// The deepest nesting of pre-filter `any` groups (a rule inside `any` inside `any` …).
pub const PREFILTER_DEPTH: usize = 4;

/// How long a store call may take when the configuration does not say
/// (`store.write_timeout`): a full or frozen disk fails the call after this, never the
/// endpoints. Here rather than in `store.rs`, so the configuration parser needs nothing of
/// the module that owns sled.
pub const STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest `ca_file` read: a bundle of every public root is about 200 KiB, and the file
/// is read whole on every connect, so a path to something huge must not fill the memory.
pub const CA_FILE_BYTES: u64 = 1024 * 1024;

/// Why filter text was refused before it was parsed.
pub fn check_filter_text(text: &str) -> Result<(), String> {
    let (mut depth, mut deepest, mut parts) = (0usize, 0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'(' => {
                depth += 1;
                parts += 1;
                deepest = deepest.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > FILTER_DEPTH {
        return Err(format!(
            "the filter is nested {deepest} levels deep; at most {FILTER_DEPTH} are accepted"
        ));
    }
    if parts > FILTER_PARTS {
        return Err(format!(
            "the filter has {parts} parts; at most {FILTER_PARTS} are accepted"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_text_is_measured_without_recursion() {
        let nested = |d: usize| format!("{}(cn=x){}", "(&".repeat(d - 1), ")".repeat(d - 1));
        assert!(check_filter_text(&nested(FILTER_DEPTH)).is_ok());
        assert!(check_filter_text(&nested(FILTER_DEPTH + 1)).is_err());
        // Unbalanced text is measured by its running depth.
        assert!(check_filter_text(&"(".repeat(100_000)).is_err());
        let wide = format!("(|{})", "(cn=x)".repeat(FILTER_PARTS));
        assert!(check_filter_text(&wide).is_err());
    }
}
