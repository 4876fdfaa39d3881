//! The invariants of ARCHITECTURE.md that can be read off the source, checked by reading it:
//! which module may use which crate, who may print, what the endpoints may not import. A
//! change that breaks one fails here with the file and line, instead of drifting unnoticed.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/` except unit-test modules, as (path relative to `src/`, text
/// without comments).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                // A module's unit tests (`foo/tests.rs`) may use anything.
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let name = path
                .strip_prefix(&src)
                .expect("below src/")
                .to_string_lossy()
                .into_owned();
            (name, code_only(&text))
        })
        .collect()
}

/// The text with `//` comments and the `#[cfg(test)]` module at the end cut away, so a
/// doc comment naming a crate or a test's `unwrap` does not count. String literals stay:
/// they never hold a path like `sled::`.
fn code_only(text: &str) -> String {
    let body = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    body.lines()
        .map(|line| match line.trim_start().starts_with("//") {
            true => "",
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The files (and line numbers) whose code mentions `needle`, except those `allowed` names
/// (a file, or a folder ending in `/`).
fn users_outside(needle: &str, allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, text) in sources() {
        if allowed
            .iter()
            .any(|a| name == *a || (a.ends_with('/') && name.starts_with(a)))
        {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            if line.contains(needle) {
                found.push(format!("src/{name}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_store_touches_sled() {
    let found = users_outside("sled::", &["store.rs", "store/"]);
    assert!(
        found.is_empty(),
        "sled outside store.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_source_talks_to_ldap3s_client() {
    // filter.rs borrows ldap3's filter parser; everything else reaches an upstream through
    // sync/source.rs.
    let found = users_outside("ldap3::", &["sync/source.rs", "filter.rs"]);
    assert!(
        found.is_empty(),
        "ldap3 outside sync/source.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_ldap_side_uses_ldap3_proto_types() {
    let found = users_outside("ldap3_proto::", &["ldap/", "directory/", "filter.rs"]);
    assert!(
        found.is_empty(),
        "ldap3_proto elsewhere:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_ber_rs_reads_and_writes_ber_lengths() {
    // The long form of a BER length: `0x80 | count` written, `& 0x7f` read. Everything else
    // asks `ber.rs`, so the rules for odd encodings (`ber::Lengths`) live in one place.
    // packed.rs's `& 0x7f` is its own varint, not BER.
    let mut found = users_outside("0x80 |", &["ber.rs"]);
    found.extend(users_outside("& 0x7f", &["ber.rs", "directory/packed.rs"]));
    assert!(
        found.is_empty(),
        "BER lengths handled outside ber.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_ldap_session_holds_semantics_and_writes_no_bytes() {
    // session, paging, controls, response and sort answer with plain parts; ldap/wire/
    // encodes them.
    let semantics = [
        "ldap/session.rs",
        "ldap/paging.rs",
        "ldap/controls.rs",
        "ldap/response.rs",
        "ldap/sort.rs",
    ];
    let mut found = Vec::new();
    for needle in ["ber::", "BytesMut", "wire::"] {
        found.extend(users_outside(needle, &[]).into_iter().filter(|hit| {
            semantics
                .iter()
                .any(|s| hit.starts_with(&format!("src/{s}:")))
        }));
    }
    assert!(
        found.is_empty(),
        "wire encoding in the session's semantics:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_http_uses_axum() {
    let found = users_outside("axum::", &["http/"]);
    assert!(
        found.is_empty(),
        "axum outside http/:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_main_prints() {
    let mut found = users_outside("println!", &["main.rs"]);
    found.extend(users_outside("print!(", &["main.rs"]));
    assert!(
        found.is_empty(),
        "printing outside main.rs (log through tracing instead):\n{}",
        found.join("\n")
    );
}

#[test]
fn sync_never_imports_the_endpoints_and_the_endpoints_never_run_a_sync() {
    let sync: Vec<String> = sources()
        .into_iter()
        .filter(|(name, _)| name.starts_with("sync/"))
        .flat_map(|(name, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| {
                    [
                        "crate::http",
                        "crate::ldap",
                        "crate::serve",
                        "crate::schedule",
                    ]
                    .iter()
                    .any(|m| l.contains(m))
                })
                .map(|(i, l)| format!("src/{name}:{}: {}", i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        sync.is_empty(),
        "sync/ imports an endpoint:\n{}",
        sync.join("\n")
    );
    // The endpoints trigger syncs through schedule::Runner only: they never call the sync
    // functions or write the store themselves.
    for needle in ["sync::run", "sync::apply", ".apply(", "Store::open"] {
        let found: Vec<_> = users_outside(needle, &[])
            .into_iter()
            .filter(|l| l.starts_with("src/http/") || l.starts_with("src/ldap/"))
            .collect();
        assert!(
            found.is_empty(),
            "an endpoint calls {needle}:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_library_and_the_binary_deny_unwrap_expect_and_panic() {
    for (name, text) in sources() {
        if name == "lib.rs" || name == "main.rs" {
            assert!(
                text.contains("#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]"),
                "src/{name} lost its deny"
            );
        }
    }
}

#[test]
fn every_route_is_inside_a_scoped_router() {
    // http::router builds three routers (read, admin, open) and merges them under their
    // access layers; a `.route(` after the merge would escape every scope.
    let (_, text) = sources()
        .into_iter()
        .find(|(name, _)| name == "http/mod.rs")
        .expect("src/http/mod.rs");
    let router = &text[text.find("pub fn router(").expect("http::router")..];
    let router = &router[..router.find("\n}\n").expect("the end of router")];
    let merged = router
        .find(".merge(")
        .expect("the scoped routers are merged");
    assert!(
        !router[merged..].contains(".route("),
        "a route added after the scoped routers were merged:\n{router}"
    );
    let scopes: Vec<&str> = router
        .split("let ")
        .skip(1)
        .map(|part| part.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(scopes, ["read", "admin", "open"], "{router}");
    for (scope, layer) in [
        ("read", "access::read_scope"),
        ("admin", "access::admin_scope"),
    ] {
        let part = &router[router.find(&format!("let {scope} ")).expect("scope")..];
        let part = &part[..part.find(";").expect("end of the scope")];
        assert!(
            part.contains(layer),
            "the {scope} routes lost {layer}:\n{part}"
        );
    }
}

/// The top-level module (`config`, `sync`, …) each source file belongs to.
fn top_module(file: &str) -> String {
    let first = file.split('/').next().unwrap_or(file);
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn no_import_circle_between_top_level_modules() {
    // Who names whom: every `crate::<module>` a module's code mentions.
    let mut uses: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    let mention = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    for (name, text) in sources() {
        let from = top_module(&name);
        if from == "lib" || from == "main" {
            continue;
        }
        let to = uses.entry(from.clone()).or_default();
        for m in mention.captures_iter(&text) {
            if m[1] != from {
                to.insert(m[1].to_owned());
            }
        }
    }
    // Depth-first search for a path back to where it started.
    fn back_to(
        start: &str,
        at: &str,
        uses: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
    ) -> bool {
        for next in uses.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if !path.contains(next) {
                path.push(next.clone());
                if back_to(start, next, uses, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    for start in uses.keys() {
        let mut path = vec![start.clone()];
        assert!(
            !back_to(start, start, &uses, &mut path),
            "an import circle: {} -> {start}",
            path.join(" -> ")
        );
    }
}
