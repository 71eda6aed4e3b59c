//! The stream's files under `/hls/desktop/`, fetched from the streamer so the dashboard's
//! player reads them from its own origin.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppError, AppState};

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
        Err(e) => AppError::new(StatusCode::BAD_GATEWAY, e).into_response(),
    }
}
