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
use serde::Deserialize;
use serde_json::json;

use crate::auth::JsonBody;
use crate::server::{AppState, error};

/// The streamer's unit, which the stream tools signal.
pub const STREAMER_UNIT: &str = "desktop-streamer.service";
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
        return error(StatusCode::BAD_REQUEST, format!("unknown action `{action}`; use start, stop or restart"));
    }
    if !s.config.units.contains(&request.unit) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not one of the dashboard's units: {}", request.unit, s.config.units.join(", ")),
        );
    }
    let Some(systemd) = &s.systemd else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no connection to systemd's D-Bus API; see the web service's log",
        );
    };
    let unit = request.unit.as_str();
    let job = match action.as_str() {
        "start" => systemd.start(unit).await,
        "stop" => systemd.stop(unit).await,
        _ => systemd.restart(unit).await,
    };
    tracing::info!(unit, action = %action, ok = job.is_ok(), "service control");
    match job {
        Ok(job) => match tokio::time::timeout(JOB_WAIT, job.wait()).await {
            Ok(Ok(state)) => Json(json!({"unit": unit, "action": action, "state": state})).into_response(),
            Ok(Err(e)) => systemd_error(&e),
            Err(_) => (
                StatusCode::ACCEPTED,
                Json(json!({"unit": unit, "action": action, "message": "systemd is still working on it"})),
            )
                .into_response(),
        },
        Err(e) => systemd_error(&e),
    }
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
    let Some(systemd) = &s.systemd else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no connection to systemd's D-Bus API; see the web service's log",
        );
    };
    match systemd.signal(STREAMER_UNIT, signal).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"message": done}))).into_response(),
        Err(e) => systemd_error(&e),
    }
}

fn systemd_error(e: &SystemdError) -> Response {
    let code = match e {
        SystemdError::NoSuchUnit { .. } => StatusCode::NOT_FOUND,
        SystemdError::AccessDenied { .. } => StatusCode::FORBIDDEN,
        SystemdError::StartLimitHit { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_GATEWAY,
    };
    error(code, e.to_string())
}
