//! The connector profiles as the admin page manages them: list, create, edit, delete, and
//! test an unsaved profile. Edits go through [`config_edit`] (validated exactly like
//! `check-config`, written atomically with a backup) and take effect through the same reload
//! as SIGHUP. Passwords are write-only: they are accepted, never sent back.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{ApiError, Shared};
use crate::config::Config;
use crate::config_edit::{self, EditError};
use crate::report::ReportJson;
use crate::sync::profile::Profile;

/// `GET /api/v1/connectors` — the profiles as the configuration file has them (what the
/// editor edits, in the administrator's own spelling), never a password.
pub async fn list(State(state): State<Shared>) -> Response {
    let path = &state.admin.config_path;
    let read = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {} ({e})", path.display()))
        .and_then(|text| config_edit::profiles(&text).map_err(|e| e.to_string()));
    match read {
        Ok(profiles) => Json(profiles).into_response(),
        Err(e) => ApiError::new(
            StatusCode::CONFLICT,
            format!("{e}; the server goes on with the configuration it last loaded"),
        )
        .into_response(),
    }
}

/// An edit refused by validation: 422 with each problem, located by its key inside the
/// connector (`filter`, `prefilter[1].matches`) when it is about the edited one.
fn invalid(errors: Vec<crate::config::ConfigError>, index: Option<usize>) -> Response {
    let prefix = index.map(|i| format!("connector[{i}]."));
    let list: Vec<_> = errors
        .iter()
        .map(|e| {
            let field = prefix
                .as_deref()
                .and_then(|p| e.path.strip_prefix(p))
                .map(str::to_owned);
            json!({ "path": e.path, "field": field, "message": e.message })
        })
        .collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "error": "the profile is not valid", "errors": list })),
    )
        .into_response()
}

fn edit_error(e: EditError, edited_index: Option<usize>) -> Response {
    match e {
        EditError::Invalid(errors) => invalid(errors, edited_index),
        EditError::NotFound(_) => {
            ApiError::new(StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        // A taken name is a problem of the name field, reported like the other field errors.
        EditError::Exists(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": "the profile is not valid",
                "errors": [{ "path": "name", "field": "name", "message": e.to_string() }],
            })),
        )
            .into_response(),
        EditError::Syntax(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()).into_response(),
    }
}

/// Reads the file, applies `edit`, writes it back and reloads; one edit at a time.
async fn apply_edit(
    state: &Shared,
    edit: impl FnOnce(&str) -> Result<String, EditError>,
    index_of_edited: impl FnOnce(&str) -> Option<usize>,
) -> Response {
    let _one_at_a_time = state.admin_lock.lock().await;
    let path = &state.admin.config_path;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read {} ({e})", path.display()),
            )
            .into_response()
        }
    };
    let edited = match edit(&text) {
        Ok(edited) => edited,
        Err(e) => {
            let index = index_of_edited(&text);
            return edit_error(e, index);
        }
    };
    if let Err(e) = config_edit::write_atomically(path, &edited) {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "cannot write {} ({e}); the server needs write access to the file and its directory to save edits (README: Security, Config file) — or edit the file by hand and reload",
                path.display()
            ),
        )
        .into_response();
    }
    let (answer, outcome) = tokio::sync::oneshot::channel();
    if state.admin.reload.send(Some(answer)).is_err() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        )
        .into_response();
    }
    match outcome.await {
        Ok(Ok(())) => Json(json!({ "ok": true })).into_response(),
        Ok(Err(errors)) => ApiError::new(StatusCode::CONFLICT, errors.join("; ")).into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        )
        .into_response(),
    }
}

/// A body that is not a profile: its status (400, 413, 415) with the reason as JSON.
fn rejected(e: axum::extract::rejection::JsonRejection) -> Response {
    ApiError::new(e.status(), e.body_text()).into_response()
}

/// `POST /api/v1/connectors` — a new profile.
pub async fn create(State(state): State<Shared>, body: ProfileBody) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return rejected(e),
    };
    let p = body;
    let count = state.runner().config().connectors.len();
    apply_edit(
        &state,
        |text| config_edit::upsert(text, None, &p, &state.admin.config_path),
        |_| Some(count),
    )
    .await
}

/// `PUT /api/v1/connectors/{name}` — replace (and possibly rename) a profile.
///
/// A rename takes the old name's entries out of the served book until the new name's first
/// sync, so it goes through the deletion guard like a delete (`?force=true` past it).
pub async fn update(
    State(state): State<Shared>,
    Path(name): Path<String>,
    query: super::Params,
    body: ProfileBody,
) -> Response {
    let force = match force(query) {
        Ok(force) => force,
        Err(e) => return e.into_response(),
    };
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return rejected(e),
    };
    let p = body;
    if p.name.trim() != name {
        if let Some(held) = guard(&state, &name, force, "renaming") {
            return held;
        }
    }
    apply_edit(
        &state,
        |text| config_edit::upsert(text, Some(&name), &p, &state.admin.config_path),
        |text| config_edit::connector_index(text, &name),
    )
    .await
}

/// `DELETE /api/v1/connectors/{name}` — the connector goes from the file and its entries from
/// the served phone book at once; the store keeps its book, so adding the connector back
/// under the same name brings them back.
///
/// Deleting a connector takes its entries out of the served book at once, so it goes through
/// the connector's deletion guard like a sync that would remove them: above `max_removals`
/// it is held back (409, with the count) unless `?force=true`.
pub async fn remove(
    State(state): State<Shared>,
    Path(name): Path<String>,
    query: super::Params,
) -> Response {
    let force = match force(query) {
        Ok(force) => force,
        Err(e) => return e.into_response(),
    };
    if let Some(held) = guard(&state, &name, force, "deleting") {
        return held;
    }
    apply_edit(
        &state,
        |text| config_edit::delete(text, &name, &state.admin.config_path),
        |_| None,
    )
    .await
}

/// The one query parameter an edit takes: `force`.
fn force(query: super::Params) -> Result<bool, ApiError> {
    let p = super::params(query)?;
    match p.keys().find(|k| k.as_str() != "force") {
        Some(k) => Err(ApiError::bad_request(format!("unknown parameter \"{k}\""))),
        None => super::flag(&p, "force"),
    }
}

/// The answer holding back an edit that takes connector `name`'s entries out of the served
/// book (`doing`: "deleting", "renaming") when they are more than its `max_removals` allows
/// and the edit is not forced.
fn guard(state: &Shared, name: &str, force: bool, doing: &str) -> Option<Response> {
    let runner = state.runner();
    let connector = runner.config().connector(name)?;
    let entries = runner
        .directory()
        .load()
        .entries_per_connector()
        .get(name)
        .copied()
        .unwrap_or(0);
    if force || connector.max_removals.allows(entries, entries) {
        return None;
    }
    Some(
        (
            StatusCode::CONFLICT,
            Json(json!({
                "error": format!(
                    "{doing} {name} would take its {entries} entries out of the phone book, more than its deletion guard allows (max_removals = {})",
                    connector.max_removals
                ),
                "held_back": true,
                "entries": entries,
            })),
        )
            .into_response(),
    )
}

/// A profile sent to the API: refused with its JSON error when it does not parse.
type ProfileBody = Result<Json<Profile>, axum::extract::rejection::JsonRejection>;

/// A probe or preview whose upstream failed: 502 with what the connection said.
fn upstream_failed(name: &str, e: impl std::fmt::Display) -> Response {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!("connector \"{name}\": {e}"),
    )
    .into_response()
}

/// The configuration with the profile as entered put in (saved or not) and validated as
/// `check-config` would, and the profile's position among its connectors; or the answer
/// that says why not.
fn with_profile(state: &Shared, body: ProfileBody) -> Result<(Config, usize), Box<Response>> {
    let body = body.map_err(|e| Box::new(rejected(e)))?.0;
    let original = body.name.trim().to_owned();
    let p = body;
    let path = &state.admin.config_path;
    // The profile is tried inside the file as it is: without the file, the stored password
    // and the other connectors it would be checked against are unknown.
    let text = std::fs::read_to_string(path).map_err(|e| {
        Box::new(
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read {} ({})", path.display(), e.kind()),
            )
            .into_response(),
        )
    })?;
    let exists = config_edit::connector_index(&text, &original).is_some();
    let edited = config_edit::upsert(&text, exists.then_some(original.as_str()), &p, path)
        .map_err(|e| {
            let index = config_edit::connector_index(&text, &original).or_else(|| {
                Some(
                    text.parse::<toml_edit::DocumentMut>()
                        .ok()?
                        .get("connector")?
                        .as_array_of_tables()?
                        .len(),
                )
            });
            Box::new(edit_error(e, index))
        })?;
    let config =
        Config::parse_for(&edited, path).map_err(|errors| Box::new(invalid(errors, None)))?;
    match config
        .connectors
        .iter()
        .position(|c| c.name == p.name.trim())
    {
        Some(at) => Ok((config, at)),
        None => Err(Box::new(
            ApiError::bad_request("the profile has no name").into_response(),
        )),
    }
}

/// `POST /api/v1/probe` — "test connection" for a profile as entered, saved or not: connect,
/// bind, search the base DN with the filter, and count what the pre-filter keeps, as
/// `check-config --connect` does; nothing is compared with the store or written.
pub async fn probe(State(state): State<Shared>, body: ProfileBody) -> Response {
    let (config, at) = match with_profile(&state, body) {
        Ok(found) => found,
        Err(answer) => return *answer,
    };
    let connector = &config.connectors[at];
    let name = &connector.name;
    match state.runner().probe(connector, &config.numbers).await {
        Ok(p) => Json(json!({
            "connector": name,
            "fetched": p.fetched,
            "filtered_out": p.filtered_out,
            "invalid": p.invalid,
            "entries": p.fetched - p.filtered_out - p.invalid,
        }))
        .into_response(),
        Err(e) => upstream_failed(name, e),
    }
}

/// `POST /api/v1/preview` — a dry run of a profile as entered, saved or not.
pub async fn preview(State(state): State<Shared>, body: ProfileBody) -> Response {
    let (config, at) = match with_profile(&state, body) {
        Ok(found) => found,
        Err(answer) => return *answer,
    };
    let connector = &config.connectors[at];
    let name = &connector.name;
    match state.runner().test(connector).await {
        Ok(report) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            ReportJson::new(&report, &config.numbers).to_json(),
        )
            .into_response(),
        Err(e) => upstream_failed(name, e),
    }
}
