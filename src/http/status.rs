//! Operator endpoints: per-connector status, and running a sync (or a dry run) now.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{flag, params, ApiError, Params, Shared};
use crate::report::ReportJson;
use crate::runs::{Counts, RunRecord};
use crate::schedule::{Runner, TriggerError};
use crate::sync::connector::{Mode, Schedule};
use crate::sync::SyncOptions;

#[derive(Serialize)]
struct StatusJson {
    generation: u64,
    entries: usize,
    connectors: Vec<ConnectorStatus>,
}

/// A connector as an operator sees it; never its password.
#[derive(Serialize)]
struct ConnectorStatus {
    name: String,
    comment: Option<String>,
    uri: String,
    base_dn: String,
    bind_dn: Option<String>,
    filter: String,
    mode: &'static str,
    schedule: Option<String>,
    max_removals: String,
    entries: usize,
    running: bool,
    next_run: Option<String>,
    /// When the last applied or unchanged run finished (RFC 3339), if any run ever did.
    last_success: Option<String>,
    /// Runs since the last success that failed or were held back.
    consecutive_failures: u64,
    last_run: Option<RunJson>,
}

#[derive(Serialize)]
struct RunJson {
    finished_at: String,
    duration_ms: u64,
    outcome: &'static str,
    #[serde(flatten)]
    counts: Counts,
    error: Option<String>,
}

impl From<RunRecord> for RunJson {
    fn from(r: RunRecord) -> Self {
        RunJson {
            finished_at: unix_time(r.finished_at),
            duration_ms: r.duration_ms,
            outcome: Runner::outcome_label(r.outcome),
            counts: r.counts,
            error: r.error,
        }
    }
}

fn unix_time(seconds: u64) -> String {
    rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(seconds))
}

#[derive(Serialize)]
struct RunsJson {
    connector: String,
    last_success: Option<String>,
    consecutive_failures: u64,
    /// The last runs, newest first.
    runs: Vec<RunJson>,
}

/// `GET /api/v1/connectors/{name}/runs` — the connector's last runs (at most
/// [`crate::runs::HISTORY`]), newest first, and its health.
pub async fn runs(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<impl Serialize>, ApiError> {
    let runner = state.runner();
    if runner.config().connector(&name).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no connector named \"{name}\""),
        ));
    }
    let (runs, health) = runner.store().runs(&name);
    Ok(Json(RunsJson {
        connector: name,
        last_success: health.last_success.map(unix_time),
        consecutive_failures: health.consecutive_failures,
        runs: runs.into_iter().map(RunJson::from).collect(),
    }))
}

/// `GET /api/v1/status`
pub async fn status(State(state): State<Shared>) -> Result<Json<impl Serialize>, ApiError> {
    let runner = state.runner();
    let snapshot = runner.directory().load();
    let per_connector = snapshot.entries_per_connector();
    let health = runner.store().health();
    let mut runs = runner
        .store()
        .last_runs()
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let connectors = runner
        .config()
        .connectors
        .iter()
        .map(|c| ConnectorStatus {
            name: c.name.clone(),
            comment: c.comment.clone(),
            uri: c.source.to_string(),
            base_dn: c.base_dn.clone(),
            bind_dn: c.bind.as_ref().map(|b| b.dn.clone()),
            filter: c.filter.clone(),
            mode: match c.mode {
                Mode::Mirror => "mirror",
                Mode::Merge => "merge",
            },
            schedule: c.schedule.as_ref().map(|s| match s {
                Schedule::Every(d) => format!("every {}", crate::config::show_duration(*d)),
                Schedule::Cron(cron) => format!("cron {} ({})", cron.text, cron.zone()),
            }),
            max_removals: c.max_removals.to_string(),
            entries: per_connector.get(c.name.as_str()).copied().unwrap_or(0),
            running: runner.is_running(&c.name),
            next_run: runner.next_run(&c.name).map(rfc3339),
            last_success: health
                .get(&c.name)
                .and_then(|h| h.last_success)
                .map(unix_time),
            consecutive_failures: health.get(&c.name).map_or(0, |h| h.consecutive_failures),
            last_run: runs.remove(&c.name).map(RunJson::from),
        })
        .collect();
    Ok(Json(StatusJson {
        generation: snapshot.generation(),
        entries: snapshot.len(),
        connectors,
    }))
}

/// `POST /api/v1/connectors/{name}/sync?dry_run=true&force=true`
pub async fn trigger(
    State(state): State<Shared>,
    Path(name): Path<String>,
    query: Params,
) -> Result<Response, ApiError> {
    let params = params(query)?;
    if let Some(unknown) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "dry_run" | "force"))
    {
        return Err(ApiError::bad_request(format!(
            "unknown parameter \"{unknown}\" (dry_run, force)"
        )));
    }
    let options = SyncOptions {
        dry_run: flag(&params, "dry_run")?,
        force: flag(&params, "force")?,
    };
    let runner = state.runner();
    match runner.trigger(&name, options).await {
        Ok(report) => Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            ReportJson::new(&report, &runner.config().numbers).to_json(),
        )
            .into_response()),
        Err(e @ TriggerError::UnknownConnector(_)) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, e.to_string()))
        }
        Err(e @ TriggerError::Busy(_)) => Err(ApiError::new(StatusCode::CONFLICT, e.to_string())),
        // The upstream failed, not the request.
        Err(TriggerError::Sync(e)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("connector \"{name}\": {e}"),
        )),
    }
}

/// `2026-11-27T12:00:00Z` (UTC, seconds).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(1_795_780_800)),
            "2026-11-27T12:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
