//! The OpenAPI 3.1 document describing every route (`web-monitor/openapi.json`, embedded at
//! build time), served at `GET /api/openapi.json` for integrations. The test
//! `web-monitor/tests/openapi.rs` fails when the router and the document disagree.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document, as written in `web-monitor/openapi.json`.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /api/openapi.json`.
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-cache")], DOCUMENT).into_response()
}
