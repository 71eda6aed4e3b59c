//! The dashboard's HTTP layer on :8080: the router, its one error answer ([`AppError`]), its
//! extractors, the guard in front of every route, and the handlers, grouped by what they
//! serve. Reads come from the streamer's API, systemd over D-Bus, the machine and the
//! watchdog's alert history; each part that cannot be reached is named in the answer instead
//! of showing stale numbers.
//!
//! The domain parts the handlers read ([`crate::snapshot`], [`crate::history`],
//! [`crate::upstream`], [`crate::systemd_link`], [`crate::logs`], [`crate::auth`]'s store,
//! sessions and limit) know nothing of HTTP.

mod auth;
pub mod cameras;
mod control;
mod error;
mod extract;
mod guard;
mod logs;
mod metrics;
mod state;
mod status;
pub mod stream;
pub mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

pub use auth::routes as auth_routes;
pub use control::STREAMER_UNIT;
pub use error::AppError;
pub use extract::{Client, ClientIp, JsonBody, JsonQuery, identify_client, json_rejection};
pub use guard::{Authenticated, check_origin, require_auth};
pub use logs::{DEFAULT_LINES, LogPlaces, MAX_CONCURRENT_SEARCHES, MAX_LINES, MAX_LOG_STREAMS};
pub use state::AppState;

use crate::auth::AuthState;

/// Paths anyone may read even when `public_read` is off (the page and its assets).
pub const PUBLIC_PATHS: [&str; 4] = ["/", "/cameras", "/login", "/assets/"];

/// The whole router; serve it with `into_make_service_with_connect_info::<SocketAddr>()` so
/// login attempts and expensive reads are limited per client ([`Client`]). State-changing calls need a session or an API token
/// and the same origin (see [`guard`]). Each request is logged with its method, path, status
/// and latency ([`ds_http::trace_requests`]: debug when fast and fine, so the page's polling
/// does not flood the log). Answers to requests over the dashboard's own TLS carry
/// `Strict-Transport-Security` ([`ds_http::tls::strict_transport_security`]).
pub fn app(state: AppState, auth: AuthState) -> Router {
    let hosts = std::sync::Arc::new(ds_http::hosts::AllowedHosts::new(&state.config.allowed_hosts));
    let proxies: std::sync::Arc<[std::net::IpAddr]> = auth.settings().trusted_proxies.clone().into();
    Router::new()
        .route("/api/service/{action}", post(control::service))
        .route("/api/stream/restart", post(control::stream_restart))
        .route("/api/stream/cleanup", post(control::stream_cleanup))
        .route("/", get(ui::index))
        .route("/assets/{file}", get(ui::file))
        .route("/api/openapi.json", get(crate::openapi::document))
        .route("/api/status", get(status::status))
        .route("/api/status/history", get(status::status_history))
        .route("/api/events", get(status::events))
        .route("/api/health", get(status::health))
        .route("/api/alerts", get(status::alerts))
        .route("/api/logs", get(logs::recent))
        .route("/api/logs/stream", get(logs::stream))
        .route("/hls/desktop/{file}", get(stream::hls))
        .route(stream::WHEP_PATH, post(stream::whep_offer).options(stream::whep_options))
        .route("/whep/desktop/{session}", delete(stream::whep_end))
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found)
        .with_state(state.clone())
        .merge(cameras::routes(state.cameras))
        .merge(auth::routes(auth.clone()))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(crate::auth::JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(auth, require_auth))
        .layer(axum::middleware::from_fn_with_state(proxies, identify_client))
        .layer(axum::middleware::from_fn_with_state(hosts, ds_http::hosts::check_host))
        // Every answer over the dashboard's own TLS, refusals included.
        .layer(axum::middleware::from_fn(ds_http::tls::strict_transport_security))
        // Outermost, so the guard's refusals are logged too.
        .layer(axum::middleware::from_fn(ds_http::trace_requests))
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
    AppError::new(StatusCode::METHOD_NOT_ALLOWED, message).into_response()
}

async fn not_found() -> Response {
    AppError::new(StatusCode::NOT_FOUND, "no such endpoint; /api/openapi.json lists every one (the dashboard is at /)")
        .into_response()
}
