//! The dashboard's reads of the kiosk's state: the status document and its history, the live
//! page's event stream, the streamer's health and the watchdog's alerts.

use std::convert::Infallible;
use std::path::PathBuf;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use ds_wire::alerts;
use ds_wire::health::HealthReport;
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use super::{AppError, AppState};

/// The latest sample (see [`crate::snapshot`]): never waits for the streamer or systemd.
pub(super) async fn status(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], s.status.latest().body.clone()).into_response()
}

/// The last hour of the machine's figures, for the page's charts.
pub(super) async fn status_history(State(s): State<AppState>) -> Json<Value> {
    Json(json!({
        "step_seconds": crate::history::STEP.as_secs(),
        "span_seconds": crate::history::SPAN.as_secs(),
        "points": s.history.points(),
    }))
}

/// Server-sent events for the page: `status` (the `/api/status` document) at once and then
/// with every new sample ([`crate::snapshot::SAMPLE_INTERVAL`]), so the page updates without
/// reloading or polling. The stream ends when the service shuts down.
pub(super) async fn events(
    State(s): State<AppState>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let samples = tokio_stream::wrappers::WatchStream::new(s.status.subscribe());
    // serde_json writes UTF-8, so the body is text.
    let stream =
        samples.map(|snap| Ok(Event::default().event("status").data(std::str::from_utf8(&snap.body).unwrap_or("{}"))));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The streamer's health as it reports it; 502 with the reason when it cannot be reached.
pub(super) async fn health(State(s): State<AppState>) -> Response {
    match s.streamer.json::<HealthReport>("/api/health").await {
        Ok(v) => Json(v).into_response(),
        Err(e) => AppError::new(StatusCode::BAD_GATEWAY, format!("the streamer's health API cannot be reached: {e}"))
            .into_response(),
    }
}

/// The watchdog's recent alerts and whether they were delivered (its alert-history.json).
pub(super) async fn alerts(State(s): State<AppState>) -> Response {
    let path: PathBuf = s.config.watchdog_state_dir.join(alerts::HISTORY_FILE);
    match tokio::fs::read(&path).await {
        Ok(bytes) => match serde_json::from_slice::<alerts::AlertHistory>(&bytes) {
            Ok(history) => Json(alerts::AlertsReply { entries: history.entries }).into_response(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the alert history is not the watchdog's JSON");
                AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot read the alert history; the cause is in the web service's log",
                )
                .into_response()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Json(alerts::AlertsReply::default()).into_response(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the alert history");
            AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the alert history; the cause is in the web service's log",
            )
            .into_response()
        }
    }
}
