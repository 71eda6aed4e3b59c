//! HTTP on :8888: the health API, `/metrics`, the HLS stream itself (the plain playlist
//! `playlist.m3u8` and its segments from the output directory; the low-latency playlist
//! `ll.m3u8` and its parts from memory, [`crate::live`]) and WHEP signalling ([`whep`]). It
//! keeps answering while the pipeline restarts. It answers only to this machine's names and
//! addresses and those `allowed_hosts` lists ([`ds_http::hosts`]), lets web pages of other
//! origins read it only where `cors_origins` names them ([`cors`]), and serves the stream only
//! with its token when `stream_token_file` names one ([`crate::access`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use ds_config::StreamerConfig;
use ds_wire::health::{ServiceDetails, ServiceReport, StreamReport, StreamerStatus, SystemReport};
use serde_json::json;
use tokio::sync::watch;

use crate::health::{self, DetailedReport, HealthReport, Verdict};
use crate::live::{self, Answer, LL_PLAYLIST_FILE, LiveHls};
use crate::metrics;
use crate::playlist::PLAYLIST_FILE;
use crate::status::{State as StreamState, StatusHandle};
use crate::webrtc::{Viewers, whep};
use ds_runtime::system::SystemMonitor;

/// What the handlers read.
#[derive(Clone, Debug)]
pub struct AppState {
    pub status: StatusHandle,
    pub config: watch::Receiver<Arc<StreamerConfig>>,
    pub system: SystemMonitor,
    /// WebRTC viewers; `None` when the media port could not be bound (WHEP then answers 503).
    pub viewers: Option<Viewers>,
    /// The low-latency playlist and its parts.
    pub live: LiveHls,
    /// What the HTTP server did with its connections, for `/metrics`.
    pub served: Arc<ds_http::serve::Served>,
}

impl AppState {
    fn config(&self) -> Arc<StreamerConfig> {
        self.config.borrow().clone()
    }

    fn detailed(&self) -> DetailedReport {
        let mut report = health::build_detailed(&self.status, &self.config(), self.system.latest());
        if let Some(v) = &self.viewers {
            report.webrtc = v.report();
        }
        report
    }
}

/// The whole router; tests call it with `oneshot` or serve it on port 0.
pub fn app(state: AppState) -> Router {
    let hosts = Arc::new(ds_http::hosts::AllowedHosts::new(&state.config().allowed_hosts));
    // The picture itself: behind `stream_token_file`'s token when one is set.
    let stream = Router::new()
        .route("/hls/desktop/{file}", get(hls_file).options(preflight))
        .merge(whep::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::access::require_token));
    Router::new()
        .route("/api/health", get(health))
        .route("/api/health/detailed", get(detailed))
        .route("/api/status", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .merge(stream)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors))
        .layer(axum::middleware::from_fn_with_state(hosts, ds_http::hosts::check_host))
        .layer(axum::middleware::from_fn(ds_http::trace_requests))
        .with_state(state)
}

async fn health(State(s): State<AppState>) -> Json<HealthReport> {
    Json(health::build(&s.status, &s.config(), s.system.latest()))
}

async fn detailed(State(s): State<AppState>) -> Json<DetailedReport> {
    Json(s.detailed())
}

/// The seed's `/api/status` shape: service, stream, health, system.
async fn status(State(s): State<AppState>) -> Json<StreamerStatus> {
    let config = s.config();
    let d = s.detailed();
    let playlist_exists = tokio::fs::try_exists(config.output_dir.join(PLAYLIST_FILE)).await.unwrap_or(false);
    let stopping = d.health.current_state == StreamState::Stopping;
    Json(StreamerStatus {
        // This process's own view of its unit's state (it is answering, so it runs).
        service: ServiceReport {
            active: !stopping,
            details: ServiceDetails {
                active_state: if stopping { "deactivating" } else { "active" }.to_owned(),
                sub_state: if stopping { "stop-sigterm" } else { "running" }.to_owned(),
            },
            managed_by_systemd: Some(std::env::var_os("INVOCATION_ID").is_some()),
        },
        stream: StreamReport {
            playlist_exists,
            segment_count: d.playlist.as_ref().map_or(0, |p| p.segment_count),
            total_size_mb: d.playlist.as_ref().map_or(0.0, |p| p.window_bytes as f64 / 1_048_576.0),
            stream_active: d.health.stream_active,
        },
        system: SystemReport {
            cpu_percent: d.system.map(|x| x.cpu_percent),
            memory_percent: d.system.map(|x| x.memory_percent),
            disk_usage_percent: d.system.and_then(|x| x.disk_usage_percent),
        },
        health: d.health,
    })
}

/// 200 while fresh segments flow, 503 otherwise; the body says why.
async fn healthz(State(s): State<AppState>) -> Response {
    let h = health::build(&s.status, &s.config(), None);
    let code = if h.health == Verdict::Unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let text = match (&h.health, h.newest_segment_age_seconds) {
        (Verdict::Unhealthy, Some(age)) => {
            format!("unhealthy: newest segment is {age:.1} s old ({:?})\n", h.current_state)
        }
        (Verdict::Unhealthy, None) => format!("unhealthy: no segment yet ({:?})\n", h.current_state),
        (v, _) => format!("{v:?}: {:?}\n", h.current_state).to_lowercase(),
    };
    (code, text).into_response()
}

/// The health report's series, then the HTTP server's connection counts.
async fn metrics_text(State(s): State<AppState>) -> Response {
    let mut text = metrics::render(&s.detailed());
    let mut connections = ds_runtime::prometheus::Writer::new();
    s.served.write_metrics(&mut connections, "desktop_streamer");
    text.push_str(&connections.finish());
    ([(header::CONTENT_TYPE, ds_runtime::prometheus::CONTENT_TYPE)], text).into_response()
}

/// A segment or the playlist, the low-latency playlist or a part. Only names the streamer
/// writes are served: letters, digits, `-`, `_` and one extension (and `.partN` for parts);
/// nothing else can reach the file system.
async fn hls_file(State(s): State<AppState>, Path(file): Path<String>, RawQuery(query): RawQuery) -> Response {
    let Some(kind) = hls_kind(&file) else {
        return error(
            StatusCode::NOT_FOUND,
            "no such stream file; the playlists are /hls/desktop/playlist.m3u8 and (low-latency) /hls/desktop/ll.m3u8",
        );
    };
    let target = Duration::from_secs(s.config().segment_duration.into());
    match kind {
        HlsKind::LowLatency => return ll_playlist(&s.live, query.as_deref().unwrap_or(""), target).await,
        HlsKind::Part => return part(&s.live, &file, target).await,
        HlsKind::Playlist | HlsKind::Segment => {}
    }
    let path: PathBuf = s.config().output_dir.join(&file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let cache = if kind == HlsKind::Playlist { "no-cache" } else { "public, max-age=300, immutable" };
            let ctype = if kind == HlsKind::Playlist { PLAYLIST_TYPE } else { "video/mp2t" };
            ([(header::CONTENT_TYPE, ctype), (header::CACHE_CONTROL, cache)], bytes).into_response()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let why = if kind == HlsKind::Playlist {
                "the stream has not produced a playlist yet"
            } else {
                "segment not found (it may have expired)"
            };
            error(StatusCode::NOT_FOUND, why)
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read HLS file");
            error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file")
        }
    }
}

/// The low-latency playlist; a blocking request (`_HLS_msn`, `_HLS_part`) is answered as soon
/// as what it names exists, within three target durations (then 503, RFC 8216bis 6.2.5.2).
async fn ll_playlist(live: &LiveHls, query: &str, target: Duration) -> Response {
    match live.playlist(query, 3 * target).await {
        Answer::Playlist(text) => {
            ([(header::CONTENT_TYPE, PLAYLIST_TYPE), (header::CACHE_CONTROL, "no-cache")], text).into_response()
        }
        Answer::BadRequest(why) => error(StatusCode::BAD_REQUEST, &why),
        Answer::Timeout => error(StatusCode::SERVICE_UNAVAILABLE, "the stream did not reach that segment in time"),
    }
}

/// A part, from memory; the next one (the playlist's preload hint) is waited for.
async fn part(live: &LiveHls, name: &str, target: Duration) -> Response {
    match live.part(name, target).await {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "video/mp2t"), (header::CACHE_CONTROL, "public, max-age=300, immutable")], bytes)
                .into_response()
        }
        None => error(StatusCode::NOT_FOUND, "part not found (it may have expired)"),
    }
}

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HlsKind {
    Playlist,
    Segment,
    LowLatency,
    Part,
}

fn hls_kind(name: &str) -> Option<HlsKind> {
    if name == PLAYLIST_FILE {
        return Some(HlsKind::Playlist);
    }
    if name == LL_PLAYLIST_FILE {
        return Some(HlsKind::LowLatency);
    }
    if live::parse_part_name(name).is_some() {
        return Some(HlsKind::Part);
    }
    let stem = name.strip_suffix(".ts")?;
    let ok = !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(HlsKind::Segment)
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /api/health, /api/status, /api/health/detailed, /healthz, /metrics, /hls/desktop/playlist.m3u8, /hls/desktop/ll.m3u8, /whep/desktop",
    )
}

pub fn error(code: StatusCode, message: &str) -> Response {
    (code, Json(json!({ "error": message }))).into_response()
}

/// Answers may be read by pages of the origins `cors_origins` names (every origin for `*`),
/// read when each request comes so a changed list applies at once. WHEP's own preflight names
/// its methods and headers. Other pages get no CORS headers: their browser keeps the answer
/// from them.
async fn cors(State(s): State<AppState>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut res = next.run(request).await;
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    let config = s.config();
    let allowed = if config.cors_origins.iter().any(|o| o == "*") {
        Some(HeaderValue::from_static("*"))
    } else {
        origin.filter(|o| o.to_str().is_ok_and(|o| config.cors_origins.iter().any(|c| same_origin(c, o))))
    };
    let Some(allowed) = allowed else { return res };
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    h.entry(header::ACCESS_CONTROL_ALLOW_METHODS).or_insert(HeaderValue::from_static("GET, HEAD, OPTIONS"));
    h.entry(header::ACCESS_CONTROL_ALLOW_HEADERS).or_insert(HeaderValue::from_static("Range"));
    // A WHEP player reads its session's URL from Location, the ICE servers from Link.
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link, Accept-Post, Retry-After"),
    );
    res
}

/// Whether a configured origin and a request's `Origin` are the same (case and a trailing
/// slash aside).
fn same_origin(configured: &str, origin: &str) -> bool {
    configured.trim_end_matches('/').eq_ignore_ascii_case(origin.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stream_file_names_are_served() {
        assert!(hls_kind("playlist.m3u8") == Some(HlsKind::Playlist));
        assert!(hls_kind("run000003-seg00012.ts") == Some(HlsKind::Segment));
        assert!(hls_kind("ll.m3u8") == Some(HlsKind::LowLatency));
        assert!(hls_kind("run000003-seg00012.part4.ts") == Some(HlsKind::Part));
        for bad in
            ["../config.json", "..%2Fetc%2Fpasswd", ".ts", ".playlist-state.json", "a/b.ts", "x.ts.bak", "seg 1.ts"]
        {
            assert!(hls_kind(bad).is_none(), "{bad} must be refused");
        }
    }
}
