//! `GET /api/logs?lines=&level=&q=&service=` (the last lines) and `GET /api/logs/stream` (the
//! last lines, then new ones as they are written, as server-sent `log` events).

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::json;

use super::{AppError, AppState, JsonQuery};
use crate::logs::{self, Level, LogError};

/// Most lines one request may ask for.
pub const MAX_LINES: usize = 5000;
/// Lines when the request does not say.
pub const DEFAULT_LINES: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    lines: Option<usize>,
    /// This level or worse: error, warn, info, debug, trace.
    level: Option<String>,
    /// Case-insensitive text to look for.
    q: Option<String>,
    /// One service (`desktop-streamer`, `desktop-streamer-watchdog`, `desktop-streamer-web`);
    /// all three when absent.
    service: Option<String>,
}

struct Parsed {
    lines: usize,
    level: Option<Level>,
    query: Option<String>,
    services: Vec<&'static str>,
}

/// The query checked; the error says what is wrong and what is allowed (a 400).
fn parse(q: LogQuery) -> Result<Parsed, String> {
    let lines = q.lines.unwrap_or(DEFAULT_LINES);
    if lines > MAX_LINES {
        return Err(format!("lines = {lines}: at most {MAX_LINES}"));
    }
    let level = match q.level.as_deref() {
        None | Some("") => None,
        Some(l) => {
            Some(l.parse::<Level>().map_err(|_| format!("level = {l:?}: use error, warn, info, debug or trace"))?)
        }
    };
    let services: Vec<&'static str> = match q.service.as_deref() {
        None | Some("") => logs::SERVICES.to_vec(),
        Some(s) => match logs::SERVICES.iter().find(|known| **known == s) {
            Some(known) => vec![*known],
            None => return Err(format!("service = {s:?}: use one of {}", logs::SERVICES.join(", "))),
        },
    };
    Ok(Parsed { lines, level, query: q.q.filter(|t| !t.is_empty()), services })
}

fn log_error(e: &LogError) -> Response {
    match e {
        LogError::NoLogDir { .. } => AppError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        _ => {
            tracing::warn!(error = %e, "cannot read the logs");
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the logs").into_response()
        }
    }
}

pub async fn recent(State(s): State<AppState>, JsonQuery(q): JsonQuery<LogQuery>) -> Response {
    let p = match parse(q) {
        Ok(p) => p,
        Err(why) => return AppError::new(StatusCode::BAD_REQUEST, why).into_response(),
    };
    let dir = s.config.log_dir.clone();
    let read =
        tokio::task::spawn_blocking(move || logs::recent(&dir, &p.services, p.lines, p.level, p.query.as_deref()))
            .await;
    match read {
        Ok(Ok(lines)) => Json(json!({ "lines": lines })).into_response(),
        Ok(Err(e)) => log_error(&e),
        Err(_) => AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the logs").into_response(),
    }
}

pub async fn stream(State(s): State<AppState>, JsonQuery(q): JsonQuery<LogQuery>) -> Response {
    let p = match parse(q) {
        Ok(p) => p,
        Err(why) => return AppError::new(StatusCode::BAD_REQUEST, why).into_response(),
    };
    match logs::recent_then_follow(&s.config.log_dir, &p.services, p.lines, p.level, p.query.as_deref()).await {
        Ok((recent, follow)) => {
            let events = futures_util::stream::iter(recent)
                .chain(follow)
                .map(|line| Ok::<_, Infallible>(Event::default().event("log").json_data(line).unwrap_or_default()));
            Sse::new(events).keep_alive(KeepAlive::default()).into_response()
        }
        Err(e) => log_error(&e),
    }
}
