//! The dashboard's HTTP API on :8080. Reads come from the streamer's API, systemd over D-Bus,
//! the machine and the watchdog's alert history; each part that cannot be reached is named
//! in the answer instead of showing stale numbers.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use ds_config::WebConfig;
use ds_wire::alerts;
use ds_wire::health::HealthReport;
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::auth::{self, AuthState};
use crate::control;
use crate::history::History;
use crate::snapshot::StatusCache;
use crate::upstream::Streamer;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<WebConfig>,
    pub streamer: Streamer,
    /// systemd over D-Bus, or why it cannot be reached.
    pub systemd: crate::systemd_link::SystemdLink,
    /// The status, sampled in the background.
    pub status: StatusCache,
    /// The last hour of the machine's figures.
    pub history: History,
    /// The camera monitor.
    pub cameras: crate::cameras::Cameras,
}

/// Paths anyone may read even when `public_read` is off (the page and its assets).
pub const PUBLIC_PATHS: [&str; 4] = ["/", "/cameras", "/login", "/assets/"];

/// The whole router; serve it with `into_make_service_with_connect_info::<SocketAddr>()` so
/// login attempts are limited per client. State-changing calls need a session or an API token
/// and the same origin (see [`crate::auth`]).
pub fn app(state: AppState, auth: AuthState) -> Router {
    Router::new()
        .route("/api/service/{action}", post(control::service))
        .route("/api/stream/restart", post(control::stream_restart))
        .route("/api/stream/cleanup", post(control::stream_cleanup))
        .route("/", get(crate::ui::index))
        .route("/assets/{file}", get(crate::ui::file))
        .route("/api/openapi.json", get(crate::openapi::document))
        .route("/api/status", get(status))
        .route("/api/status/history", get(status_history))
        .route("/api/events", get(events))
        .route("/api/health", get(health))
        .route("/api/alerts", get(alerts))
        .route("/api/logs", get(crate::logs_api::recent))
        .route("/api/logs/stream", get(crate::logs_api::stream))
        .route("/hls/desktop/{file}", get(hls))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state.clone())
        .merge(crate::cameras::routes(state.cameras))
        .merge(auth::routes(auth.clone()))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(auth::JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(auth, auth::require_auth))
}

/// JSON error with a message that says what was wrong.
pub fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

/// The latest sample (see [`crate::snapshot`]): never waits for the streamer or systemd.
async fn status(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], s.status.latest().body.clone()).into_response()
}

/// The last hour of the machine's figures, for the page's charts.
async fn status_history(State(s): State<AppState>) -> Json<Value> {
    Json(json!({
        "step_seconds": crate::history::STEP.as_secs(),
        "span_seconds": crate::history::SPAN.as_secs(),
        "points": s.history.points(),
    }))
}

/// Server-sent events for the page: `status` (the `/api/status` document) at once and then
/// with every new sample ([`crate::snapshot::SAMPLE_INTERVAL`]), so the page updates without
/// reloading or polling. The stream ends when the service shuts down.
async fn events(State(s): State<AppState>) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let samples = tokio_stream::wrappers::WatchStream::new(s.status.subscribe());
    // serde_json writes UTF-8, so the body is text.
    let stream =
        samples.map(|snap| Ok(Event::default().event("status").data(std::str::from_utf8(&snap.body).unwrap_or("{}"))));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The streamer's health as it reports it; 502 with the reason when it cannot be reached.
async fn health(State(s): State<AppState>) -> Response {
    match s.streamer.json::<HealthReport>("/api/health").await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::BAD_GATEWAY, format!("the streamer's health API cannot be reached: {e}")),
    }
}

/// The watchdog's recent alerts and whether they were delivered (its alert-history.json).
async fn alerts(State(s): State<AppState>) -> Response {
    let path: PathBuf = s.config.watchdog_state_dir.join(alerts::HISTORY_FILE);
    match tokio::fs::read(&path).await {
        Ok(bytes) => match serde_json::from_slice::<alerts::AlertHistory>(&bytes) {
            Ok(history) => Json(alerts::AlertsReply { entries: history.entries }).into_response(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the alert history is not the watchdog's JSON");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot read the alert history; the cause is in the web service's log",
                )
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Json(alerts::AlertsReply::default()).into_response(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the alert history");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the alert history; the cause is in the web service's log",
            )
        }
    }
}

/// The stream, same-origin for the dashboard's player. Only names the streamer writes pass.
async fn hls(State(s): State<AppState>, Path(file): Path<String>) -> Response {
    let valid = file == "playlist.m3u8"
        || file.strip_suffix(".ts").is_some_and(|stem| {
            !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !valid {
        return error(StatusCode::NOT_FOUND, "no such stream file; the playlist is /hls/desktop/playlist.m3u8");
    }
    match s.streamer.hls(&file).await {
        Ok(f) => {
            let code = StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut r = (code, f.body).into_response();
            for (name, value) in [(header::CONTENT_TYPE, f.content_type), (header::CACHE_CONTROL, f.cache_control)] {
                if let Some(v) = value.and_then(|v| v.parse().ok()) {
                    r.headers_mut().insert(name, v);
                }
            }
            r
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, e),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let streamer_up = s.streamer.json::<HealthReport>("/api/health").await.is_ok();
    let body = format!(
        "# HELP desktop_streamer_web_up 1 while the dashboard answers\n# TYPE desktop_streamer_web_up gauge\ndesktop_streamer_web_up 1\n\
         # HELP desktop_streamer_web_streamer_reachable 1 when the streamer's API answers\n# TYPE desktop_streamer_web_streamer_reachable gauge\n\
         desktop_streamer_web_streamer_reachable {}\n\
         # HELP desktop_streamer_web_systemd_reachable 1 when systemd's D-Bus API is connected\n# TYPE desktop_streamer_web_systemd_reachable gauge\n\
         desktop_streamer_web_systemd_reachable {}\n",
        u8::from(streamer_up),
        u8::from(s.systemd.is_up())
    );
    let mut body = body;
    crate::cameras::api::metrics(&s.cameras, &mut body);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// A route asked with a method it does not have: JSON naming the ones it has (axum adds them
/// as `Allow` too).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let allowed = crate::openapi::methods(uri.path());
    let message = if allowed.is_empty() {
        format!("{method} is not allowed here; /api/openapi.json lists every endpoint and its methods")
    } else {
        format!("{method} is not allowed on {}: use {}", uri.path(), allowed.join(" or "))
    };
    error(StatusCode::METHOD_NOT_ALLOWED, message)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint; /api/openapi.json lists every one (the dashboard is at /)")
}
