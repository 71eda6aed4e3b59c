//! The stream, same-origin for the dashboard's player: its HLS files under `/hls/desktop/` and
//! its WebRTC endpoint `/whep/desktop` (WHEP), both passed on to the streamer.
//!
//! Watching is reading: a WHEP `POST` and `DELETE` need a session only where reading does
//! (`public_read` off; see the guard), but they must come from the dashboard's own origin.
//! Other WHEP clients talk to the streamer's port directly.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppError, AppState};
use crate::upstream::Fetched;

/// The WHEP endpoint, on the dashboard as on the streamer.
pub const WHEP_PATH: &str = "/whep/desktop";

/// The stream, same-origin for the dashboard's player. Only names the streamer writes pass.
pub(super) async fn hls(State(s): State<AppState>, Path(file): Path<String>) -> Response {
    let valid = file == "playlist.m3u8"
        || file.strip_suffix(".ts").is_some_and(|stem| {
            !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !valid {
        return AppError::new(StatusCode::NOT_FOUND, "no such stream file; the playlist is /hls/desktop/playlist.m3u8")
            .into_response();
    }
    passed_on(s.streamer.hls(&file).await)
}

/// `POST /whep/desktop`: an SDP offer for the stream, answered by the streamer (`201` with the
/// SDP answer and the session's `Location`).
pub(super) async fn whep_offer(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let sent = s.streamer.send(reqwest::Method::POST, WHEP_PATH, Some((content_type, body.to_vec()))).await;
    passed_on(sent)
}

/// `DELETE /whep/desktop/{session}`: ends a viewer's session.
pub(super) async fn whep_end(State(s): State<AppState>, Path(session): Path<String>) -> Response {
    if session.is_empty() || !session.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return AppError::new(StatusCode::NOT_FOUND, "no such WebRTC session").into_response();
    }
    passed_on(s.streamer.send(reqwest::Method::DELETE, &format!("{WHEP_PATH}/{session}"), None).await)
}

/// `OPTIONS /whep/desktop`: what the endpoint takes (the WHEP draft's discovery).
pub(super) async fn whep_options() -> Response {
    (StatusCode::NO_CONTENT, [("accept-post", "application/sdp"), ("allow", "OPTIONS, POST")]).into_response()
}

/// The streamer's answer as the dashboard's: status, body and the headers a player reads.
fn passed_on(answer: Result<Fetched, String>) -> Response {
    match answer {
        Ok(f) => {
            let code = StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut r = (code, f.body).into_response();
            let headers = [
                (header::CONTENT_TYPE, f.content_type),
                (header::CACHE_CONTROL, f.cache_control),
                (header::LOCATION, f.location),
                (header::LINK, f.link),
            ];
            for (name, value) in headers {
                if let Some(v) = value.and_then(|v| v.parse().ok()) {
                    r.headers_mut().insert(name, v);
                }
            }
            r
        }
        Err(e) => AppError::new(StatusCode::BAD_GATEWAY, e).into_response(),
    }
}
