//! The README's HTTP table is the operator's map of the endpoint: every route the router
//! serves must appear in it with its method, so no endpoint exists that the docs do not name.

use std::path::Path;

use regex::Regex;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(method, path pattern)` of every `.route("…", …)` in the router, methods as written
/// (`get(…)`, `.post(…)`, `axum::routing::put(…)`).
fn routes(source: &str) -> Vec<(String, String)> {
    let method = Regex::new(r"\b(get|post|put|delete)\(").unwrap();
    let mut out = Vec::new();
    for (at, _) in source.match_indices(".route(") {
        // The call's text up to its closing parenthesis.
        let mut depth = 0;
        let mut end = at;
        for (i, c) in source[at..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = at + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &source[at..end];
        let path = call
            .split('"')
            .nth(1)
            .unwrap_or_else(|| panic!("a route without a path: {call}"));
        for m in method.captures_iter(call) {
            out.push((m[1].to_uppercase(), path.to_owned()));
        }
    }
    out
}

/// Every `METHOD /path` in backticks in the table rows of the README's HTTP section, the
/// path cut before its query (`?`) or optional part (`[`).
fn documented(readme: &str) -> Vec<(String, String)> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("HTTP endpoint"))
        .expect("the README has an HTTP endpoint section");
    let item = Regex::new(r"`(GET|POST|PUT|DELETE) (/[^`\s?\[]*)").unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let first_cell = l.split(" | ").next().unwrap_or_default().to_owned();
            item.captures_iter(&first_cell)
                .map(|c| (c[1].to_owned(), c[2].to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_route_is_in_the_readme_http_table() {
    let routes = routes(&read("src/http/mod.rs"));
    assert!(routes.len() >= 14, "the router was read: {routes:?}");
    let documented = documented(&read("README.md"));
    let mut missing = Vec::new();
    let segment = Regex::new(r"\\\{[^}]*\\\}").unwrap();
    for (method, path) in &routes {
        // `{name}` in the router is one path segment; the README may write it as `{name}` or
        // as the choices it takes (`{yealink,cisco,…}.xml`).
        let regex = Regex::new(&format!(
            "^{}$",
            segment.replace_all(&regex::escape(path), "[^/]+")
        ))
        .unwrap();
        if !documented
            .iter()
            .any(|(m, p)| m == method && regex.is_match(p))
        {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the README's HTTP table: {missing:?}\n(documented: {documented:?})"
    );
}
