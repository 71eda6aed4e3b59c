//! The stream, same-origin for the dashboard's player: its HLS files under `/hls/desktop/` (the
//! plain playlist `playlist.m3u8` and its segments, the low-latency playlist `ll.m3u8` with its
//! blocking reloads and its parts) and its WebRTC endpoint `/whep/desktop` (WHEP), all passed on
//! to the streamer.
//!
//! Watching is reading: a WHEP `POST` and `DELETE` need a session only where reading does
//! (`public_read` off; see the guard), but they must come from the dashboard's own origin.
//! Other WHEP clients talk to the streamer's port directly.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppError, AppState};
use crate::upstream::Fetched;

/// The WHEP endpoint, on the dashboard as on the streamer.
pub const WHEP_PATH: &str = "/whep/desktop";

/// The stream, same-origin for the dashboard's player. Only names the streamer writes pass,
/// and of a low-latency playlist request's query only the blocking-reload directives.
pub(super) async fn hls(State(s): State<AppState>, Path(file): Path<String>, RawQuery(query): RawQuery) -> Response {
    if !is_stream_file(&file) {
        return AppError::new(
            StatusCode::NOT_FOUND,
            "no such stream file; the playlists are /hls/desktop/playlist.m3u8 and (low-latency) /hls/desktop/ll.m3u8",
        )
        .into_response();
    }
    let directives = if file == "ll.m3u8" { blocking_directives(query.as_deref().unwrap_or("")) } else { None };
    match directives {
        Some(q) => passed_on(s.streamer.blocking_reload(&q).await),
        None => passed_on(s.streamer.hls(&file).await),
    }
}

/// The playlists, a segment (`NAME.ts`) or a low-latency part (`NAME.partN.ts`).
fn is_stream_file(file: &str) -> bool {
    let name = |stem: &str| !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    file == "playlist.m3u8"
        || file == "ll.m3u8"
        || file.strip_suffix(".ts").is_some_and(|stem| match stem.rsplit_once(".part") {
            Some((segment, index)) => name(segment) && !index.is_empty() && index.chars().all(|c| c.is_ascii_digit()),
            None => name(stem),
        })
}

/// `_HLS_msn`, `_HLS_part` and `_HLS_skip` of a query, as the streamer reads them; values
/// pass only when they are a number or a word, so nothing else reaches the streamer's URL.
fn blocking_directives(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            pair.split_once('=').is_some_and(|(k, v)| {
                ["_HLS_msn", "_HLS_part", "_HLS_skip"].contains(&k)
                    && !v.is_empty()
                    && v.len() <= 20
                    && v.chars().all(|c| c.is_ascii_alphanumeric())
            })
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_files_pass_and_nothing_else() {
        for good in ["playlist.m3u8", "ll.m3u8", "run000003-seg00012.ts", "run000003-seg00012.part4.ts"] {
            assert!(is_stream_file(good), "{good}");
        }
        for bad in ["../config.json", ".ts", "x.part.ts", "x.partA.ts", "a/b.ts", "ll.m3u8.bak", ".part1.ts"] {
            assert!(!is_stream_file(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_blocking_directives_reach_the_streamer() {
        assert_eq!(blocking_directives("_HLS_msn=12&_HLS_part=3"), Some("_HLS_msn=12&_HLS_part=3".into()));
        assert_eq!(blocking_directives("_HLS_msn=12&x=%2F..&_HLS_skip=YES"), Some("_HLS_msn=12&_HLS_skip=YES".into()));
        // A word passes (the streamer refuses it with a 400); an escape never does.
        assert_eq!(blocking_directives("_HLS_msn=x"), Some("_HLS_msn=x".into()));
        assert_eq!(blocking_directives("_HLS_msn=1%262"), None);
        assert_eq!(blocking_directives(""), None);
    }
}
