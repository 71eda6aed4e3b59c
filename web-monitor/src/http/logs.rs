//! `GET /api/logs?lines=&level=&q=&service=` (the last lines) and `GET /api/logs/stream` (the
//! last lines, then new ones as they are written, as server-sent `log` events).
//!
//! A search for a rare text reads far back, so what a client may make the service read is
//! bounded: at most [`MAX_CONCURRENT_SEARCHES`] reads of recent lines run at once over all
//! clients (more get 503 with `Retry-After`) and [`MAX_SEARCHES_PER_CLIENT`] per client (more
//! get 429 with `Retry-After`, so one client cannot take every place), each reads at most
//! [`logs::RECENT_SCAN_LIMIT_BYTES`] (the answer's `scanned_bytes` and `truncated` say how far
//! it got), and a read stops as soon as its request goes away. At most [`MAX_LOG_STREAMS`]
//! streams are open at once, [`MAX_LOG_STREAMS_PER_CLIENT`] per client. A client is counted by
//! its address as the login limit counts it ([`Client`]: behind a trusted proxy, the address
//! the proxy forwarded for).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ds_http::places::{Full, Place, Places};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::json;

use super::{AppError, AppState, Client, JsonQuery};
use crate::logs::{self, Level, LogError, ScanLimits};

/// Most lines one request may ask for.
pub const MAX_LINES: usize = 5000;
/// Lines when the request does not say.
pub const DEFAULT_LINES: usize = 200;
/// Reads of recent lines (`/api/logs`, and the start of `/api/logs/stream`) that may run at
/// once over all clients.
pub const MAX_CONCURRENT_SEARCHES: usize = 2;
/// Reads of recent lines one client may run at once.
pub const MAX_SEARCHES_PER_CLIENT: usize = 1;
/// `/api/logs/stream` clients that may be connected at once.
pub const MAX_LOG_STREAMS: usize = 8;
/// Log streams one client may hold open at once (a dashboard page holds one).
pub const MAX_LOG_STREAMS_PER_CLIENT: usize = 2;
/// The `Retry-After` of a refused search or stream.
pub const LOGS_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The places for log reads and streams, over all clients and per client.
#[derive(Clone, Debug)]
pub struct LogPlaces {
    searches: Arc<Places>,
    streams: Arc<Places>,
}

impl Default for LogPlaces {
    fn default() -> Self {
        LogPlaces {
            searches: Arc::new(Places::new(MAX_CONCURRENT_SEARCHES, MAX_SEARCHES_PER_CLIENT)),
            streams: Arc::new(Places::new(MAX_LOG_STREAMS, MAX_LOG_STREAMS_PER_CLIENT)),
        }
    }
}

impl LogPlaces {
    fn search(&self, Client(ip): Client) -> Result<Place, AppError> {
        self.searches.claim(ip).map_err(|full| {
            let message = match full {
                Full::All => format!(
                    "{MAX_CONCURRENT_SEARCHES} log searches are running, the most that may run at once; try again \
                     in a few seconds"
                ),
                Full::Client => format!(
                    "your address ({ip}) runs {MAX_SEARCHES_PER_CLIENT} log search already, the most one client may \
                     run at once; try again when it has finished"
                ),
            };
            AppError::no_place(full, message, LOGS_RETRY_AFTER)
        })
    }

    fn stream(&self, Client(ip): Client) -> Result<Place, AppError> {
        self.streams.claim(ip).map_err(|full| {
            let message = match full {
                Full::All => format!(
                    "{MAX_LOG_STREAMS} log streams are open, the most allowed at once; close one (a dashboard \
                     showing the logs) or try again later"
                ),
                Full::Client => format!(
                    "your address ({ip}) holds {MAX_LOG_STREAMS_PER_CLIENT} log streams open already, the most one \
                     client may; close one (a dashboard page showing the logs) or try again later"
                ),
            };
            AppError::no_place(full, message, LOGS_RETRY_AFTER)
        })
    }
}

/// Sets a read's cancel flag when the request is dropped (the client went away), so the read
/// on the blocking pool stops at its next line.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

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

/// `GET /api/logs`: the last lines, with how much was read for them.
pub async fn recent(State(s): State<AppState>, client: Client, JsonQuery(q): JsonQuery<LogQuery>) -> Response {
    let p = match parse(q) {
        Ok(p) => p,
        Err(why) => return AppError::new(StatusCode::BAD_REQUEST, why).into_response(),
    };
    let place = match s.logs.search(client) {
        Ok(place) => place,
        Err(e) => return e.into_response(),
    };
    let limits = ScanLimits::default();
    let _cancel = CancelOnDrop(Arc::clone(&limits.cancel));
    let dir = s.config.log_dir.clone();
    let read = tokio::task::spawn_blocking(move || {
        // The place is held while the files are read, even after the request went away.
        let _place = place;
        tracing::debug!(services = ?p.services, query = ?p.query, "log search started");
        let found = logs::search(&dir, &p.services, p.lines, p.level, p.query.as_deref(), &limits);
        if let Err(LogError::Cancelled { scanned_bytes }) = &found {
            tracing::debug!(scanned_bytes, "log search stopped: the request went away");
        }
        found
    })
    .await;
    match read {
        Ok(Ok(found)) => Json(json!({
            "lines": found.lines,
            "scanned_bytes": found.scanned_bytes,
            "truncated": found.truncated,
        }))
        .into_response(),
        Ok(Err(e)) => log_error(&e),
        Err(_) => AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the logs").into_response(),
    }
}

/// `GET /api/logs/stream`: the last lines, then each new one, as server-sent `log` events.
pub async fn stream(State(s): State<AppState>, client: Client, JsonQuery(q): JsonQuery<LogQuery>) -> Response {
    let p = match parse(q) {
        Ok(p) => p,
        Err(why) => return AppError::new(StatusCode::BAD_REQUEST, why).into_response(),
    };
    let (stream_place, search_place) =
        match s.logs.stream(client).and_then(|stream| Ok((stream, s.logs.search(client)?))) {
            Ok(places) => places,
            Err(e) => return e.into_response(),
        };
    let limits = ScanLimits::default();
    let _cancel = CancelOnDrop(Arc::clone(&limits.cancel));
    let started =
        logs::recent_then_follow(&s.config.log_dir, &p.services, p.lines, p.level, p.query.as_deref(), &limits).await;
    drop(search_place);
    match started {
        Ok((recent, follow)) => {
            let events = futures_util::stream::iter(recent).chain(follow).map(move |line| {
                // The stream's place is given back when the client goes away.
                let _place = &stream_place;
                Ok::<_, Infallible>(Event::default().event("log").json_data(line).unwrap_or_default())
            });
            Sse::new(events).keep_alive(KeepAlive::default()).into_response()
        }
        Err(e) => log_error(&e),
    }
}
