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

/// The text with `//` comments and unit-test modules cut away, so a doc comment naming a
/// crate or a test's `unwrap` does not count: a `#[cfg(test)] mod tests;` declaration (which
/// may stand anywhere) is dropped, an inline `#[cfg(test)] mod tests { … }` is cut to the end
/// of the file (where such a block stands). String literals stay: they never hold a path
/// like `sled::`.
fn code_only(text: &str) -> String {
    let text = text.replace("#[cfg(test)]\nmod tests;", "");
    let text = text.replace("#[cfg(test)]\npub(crate) mod tests;", "");
    let body = match text.rfind("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => &text[..],
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
    // The bit masks of BER's tags and lengths: the long form's `0x80`, the length octets'
    // `0x7f`, the class bits `0xc0`, the tag number `0x1f`. Everything else asks `ber.rs`, so
    // the rules for odd encodings (`ber::Lengths`) live in one place. packed.rs's varints
    // use `0x80`/`0x7f` for their own, non-BER encoding.
    let mut found = Vec::new();
    for mask in ["0x80", "0x7f", "0xc0", "0x1f"] {
        found.extend(users_outside(mask, &["ber.rs", "directory/packed.rs"]));
    }
    assert!(
        found.is_empty(),
        "BER tags or lengths handled outside ber.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_ldap_session_holds_semantics_and_writes_no_bytes() {
    // session, paging, controls, response, selection and sort answer with plain parts;
    // ldap/wire/ encodes them.
    let semantics = [
        "ldap/session.rs",
        "ldap/paging.rs",
        "ldap/controls.rs",
        "ldap/response.rs",
        "ldap/selection.rs",
        "ldap/sort.rs",
    ];
    let mut found = Vec::new();
    for needle in ["ber::", "BytesMut", "wire::", "put_header", "put_set"] {
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
fn no_file_in_src_is_over_800_lines() {
    // Small files with one job each: past 800 lines a file holds more than one.
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                let lines = std::fs::read_to_string(&path).map_or(0, |t| t.lines().count());
                if lines > 800 {
                    out.push(format!("{}: {lines} lines", path.display()));
                }
            }
        }
    }
    let mut long = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut long,
    );
    assert!(long.is_empty(), "split these:\n{}", long.join("\n"));
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

/// The module path of a source file: `sync/plan.rs` → `[sync, plan]`, `sync/mod.rs` →
/// `[sync]`, `numbers.rs` → `[numbers]`.
fn module_of(file: &str) -> Vec<String> {
    let mut path: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

/// Every module path the code of the module `at` names, made absolute: `crate::a::b`,
/// `crate::{a, b::c}` (groups, nested too), `super::…` (any number of them) and `self::…`.
/// Plain `child::x` paths inside a module name its own children, which is no cross edge.
fn references(at: &[String], code: &str) -> Vec<Vec<String>> {
    fn expand(prefix: Vec<String>, rest: &str, out: &mut Vec<Vec<String>>) {
        // `rest` starts right after `prefix::`.
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        expand(prefix.clone(), group[start..i].trim(), out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(prefix.clone(), group[start..i].trim(), out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let mut path = prefix;
        let mut tail = rest;
        loop {
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if end == 0 {
                break;
            }
            path.push(tail[..end].to_owned());
            tail = &tail[end..];
            match tail.strip_prefix("::") {
                Some(next) if next.starts_with('{') => return expand(path, next, out),
                Some(next) => tail = next,
                None => break,
            }
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (i, _) in code.match_indices("crate::") {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue; // `phonebook_crate::` or the like
        }
        expand(Vec::new(), &code[i + "crate::".len()..], &mut out);
    }
    for (i, _) in code.match_indices("super::") {
        if i > 0
            && (bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':')
        {
            continue; // counted with the first `super::` of a chain
        }
        let mut rest = &code[i..];
        let mut base = at.to_vec();
        while let Some(next) = rest.strip_prefix("super::") {
            base.pop();
            rest = next;
        }
        expand(base, rest, &mut out);
    }
    for (i, _) in code.match_indices("self::") {
        if i > 0
            && (bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':')
        {
            continue;
        }
        expand(at.to_vec(), &code[i + "self::".len()..], &mut out);
    }
    out
}

/// Whether `path` (below `src/`) is a module: a file `a/b.rs` or a folder `a/b/`.
fn is_module(path: &[String]) -> bool {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let joined = path.join("/");
    !path.is_empty() && (src.join(format!("{joined}.rs")).is_file() || src.join(&joined).is_dir())
}

/// Who names whom among the children of each module: for code in module `F` naming module
/// `R`, the edge is drawn where their paths part — `F[k] -> R[k]` among the children of
/// their common ancestor `F[..k]` (the crate's top level when `k` is 0). A module naming its
/// own parent (`super::Item`) or child draws none: a folder's `mod.rs` is its face.
type Edges = std::collections::BTreeMap<
    Vec<String>,
    std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
>;

fn edges() -> Edges {
    let mut edges = Edges::new();
    for (name, text) in sources() {
        let from = module_of(&name);
        if from == ["lib"] || from == ["main"] {
            continue;
        }
        for to in references(&from, &text) {
            let k = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if k >= from.len() || k >= to.len() || !is_module(&to[..=k]) {
                continue;
            }
            edges
                .entry(from[..k].to_vec())
                .or_default()
                .entry(from[k].clone())
                .or_default()
                .insert(to[k].clone());
        }
    }
    edges
}

/// A path back to `start` through `uses`, if there is one.
fn circle(
    start: &str,
    uses: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Option<Vec<String>> {
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
    let mut path = vec![start.to_owned()];
    back_to(start, start, uses, &mut path).then_some(path)
}

#[test]
fn no_import_circle_between_modules() {
    let edges = edges();
    // The check sees what it must: the endpoints name the directory, sync names its siblings.
    assert!(
        edges[&Vec::new()]["ldap"].contains("directory"),
        "{edges:?}"
    );
    assert!(
        edges[&vec!["sync".to_owned()]]["connector"].contains("prefilter"),
        "{edges:?}"
    );
    for (parent, uses) in &edges {
        for start in uses.keys() {
            if let Some(path) = circle(start, uses) {
                panic!(
                    "an import circle among the modules of `crate::{}`: {} -> {start}",
                    parent.join("::"),
                    path.join(" -> ")
                );
            }
        }
    }
}

#[test]
fn the_reference_reader_resolves_groups_super_and_self() {
    let at: Vec<String> = ["sync", "plan"].map(str::to_owned).to_vec();
    let found = references(
        &at,
        "use crate::{http as _, ldap::{server, wire::codec}};\nuse super::super::config;\nuse super::raw::RawEntry;\nuse self::inner::X;",
    );
    let found: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        found,
        [
            "http",
            "ldap::server",
            "ldap::wire::codec",
            "config",
            "sync::raw::RawEntry",
            "sync::plan::inner::X"
        ]
    );
}
