//! What an operator may change from the dashboard: start, stop or restart one of its units;
//! rebuild the stream's pipeline; clean up segments. Mounted behind the authentication guard
//! (a session or an API token, same origin).
//!
//! The stream tools reach the streamer through systemd (KillUnit with SIGUSR1 / SIGUSR2), so
//! the streamer's own port stays read-only for everyone.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ds_systemd::SystemdError;
use ds_wire::status::{ActionReply, UnitStatus};
use serde::Deserialize;

use super::{AppError, AppState, JsonBody};
pub use crate::systemd_link::STREAMER_UNIT;

/// How long a start/stop/restart may take before the answer says it is still under way.
const JOB_WAIT: Duration = Duration::from_secs(20);
const SIGUSR1: i32 = 10;
const SIGUSR2: i32 = 12;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRequest {
    pub unit: String,
}

/// `POST /api/service/{start|stop|restart}` with `{"unit": "desktop-streamer.service"}`.
pub async fn service(
    State(s): State<AppState>,
    Path(action): Path<String>,
    JsonBody(request): JsonBody<ServiceRequest>,
) -> Response {
    if !["start", "stop", "restart"].contains(&action.as_str()) {
        return AppError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown action `{action}`; use start, stop or restart"),
        )
        .into_response();
    }
    if !s.config.units.contains(&request.unit) {
        return AppError::new(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not one of the dashboard's units: {}", request.unit, s.config.units.join(", ")),
        )
        .into_response();
    }
    let systemd = match s.systemd.get() {
        Ok(systemd) => systemd,
        Err(why) => return no_systemd(why),
    };
    let unit = request.unit.as_str();
    // Stopping or restarting the dashboard's own unit stops this process before the job
    // ends: the answer goes out as soon as systemd has the job, or it would never go out.
    let own = action != "start" && is_own_unit(&systemd, unit).await;
    let job = match action.as_str() {
        "start" => systemd.start(unit).await,
        "stop" => systemd.stop(unit).await,
        _ => systemd.restart(unit).await,
    };
    tracing::info!(unit, action = %action, ok = job.is_ok(), own, "service control");
    match job {
        Ok(_) if own => (
            StatusCode::ACCEPTED,
            Json(reply(unit, &action, format!(
                "systemd has the {action} job; it stops this dashboard now, so this answer comes before it is done{}",
                if action == "restart" { ": the dashboard is back in a few seconds" } else { "" }
            ))),
        )
            .into_response(),
        Ok(job) => {
            let waited = tokio::time::timeout(JOB_WAIT, job.wait()).await;
            s.status.refresh();
            match waited {
                Ok(Ok(state)) => Json(ActionReply {
                    unit: Some(unit.to_owned()),
                    action: Some(action.clone()),
                    state: Some(UnitStatus::from(&state)),
                    message: None,
                })
                .into_response(),
                Ok(Err(e)) => systemd_error(&s, &e),
                Err(_) => (
                    StatusCode::ACCEPTED,
                    Json(reply(unit, &action, "systemd is still working on it".to_owned())),
                )
                    .into_response(),
            }
        }
        Err(e) => systemd_error(&s, &e),
    }
}

/// A unit action's answer without a state to show.
fn reply(unit: &str, action: &str, message: String) -> ActionReply {
    ActionReply { unit: Some(unit.to_owned()), action: Some(action.to_owned()), state: None, message: Some(message) }
}

/// Whether `unit`'s main process is this one.
async fn is_own_unit(systemd: &ds_systemd::Systemd, unit: &str) -> bool {
    systemd.unit(unit).await.is_ok_and(|u| u.main_pid == std::process::id())
}

/// `POST /api/stream/restart`: the streamer rebuilds its pipeline (HTTP and playlist stay).
pub async fn stream_restart(State(s): State<AppState>) -> Response {
    signal_streamer(&s, SIGUSR1, "the streamer is rebuilding its pipeline").await
}

/// `POST /api/stream/cleanup`: the streamer deletes every segment outside its playlist window;
/// the playlist stays valid.
pub async fn stream_cleanup(State(s): State<AppState>) -> Response {
    signal_streamer(&s, SIGUSR2, "the streamer is deleting segments outside its playlist").await
}

async fn signal_streamer(s: &AppState, signal: i32, done: &str) -> Response {
    let systemd = match s.systemd.get() {
        Ok(systemd) => systemd,
        Err(why) => return no_systemd(why),
    };
    match systemd.signal(STREAMER_UNIT, signal).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(ActionReply { unit: None, action: None, state: None, message: Some(done.to_owned()) }),
        )
            .into_response(),
        Err(e) => systemd_error(s, &e),
    }
}

/// 503 with the reason the link gives (the last connect error); it retries by itself.
fn no_systemd(why: String) -> Response {
    AppError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{why}; the dashboard keeps trying to connect"))
        .into_response()
}

fn systemd_error(s: &AppState, e: &SystemdError) -> Response {
    s.systemd.suspect(e);
    let code = match e {
        SystemdError::NoSuchUnit { .. } => StatusCode::NOT_FOUND,
        SystemdError::AccessDenied { .. } => StatusCode::FORBIDDEN,
        SystemdError::StartLimitHit { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_GATEWAY,
    };
    AppError::new(code, e.to_string()).into_response()
}
