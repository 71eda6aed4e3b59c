//! The OpenAPI 3.1 document describing every route (`web-monitor/openapi.json`, embedded at
//! build time), served at `GET /api/openapi.json` for integrations. The test
//! `web-monitor/tests/openapi.rs` fails when the router and the document disagree, and
//! `web-monitor/tests/openapi_schemas.rs` when a documented schema and the `ds_wire` type the
//! dashboard writes differ in a field.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document, as written in `web-monitor/openapi.json`.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /api/openapi.json`.
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-cache")], DOCUMENT).into_response()
}

/// The methods the document lists for a request path (`{param}` segments match any one
/// segment), upper case: what a 405 answer tells the client to use instead.
pub fn methods(path: &str) -> Vec<String> {
    static PARSED: std::sync::LazyLock<serde_json::Value> =
        std::sync::LazyLock::new(|| serde_json::from_str(DOCUMENT).unwrap_or_default());
    let wanted: Vec<&str> = path.split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == wanted.len()
            && parts.iter().zip(&wanted).all(|(t, w)| *t == *w || (t.starts_with('{') && t.ends_with('}')))
    };
    let mut found = Vec::new();
    for (template, item) in PARSED["paths"].as_object().into_iter().flatten() {
        if matches(template) {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m.to_ascii_uppercase()) {
                if !found.contains(&method) {
                    found.push(method);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_methods_of_literal_and_templated_paths() {
        assert_eq!(super::methods("/api/service/restart"), ["POST"]);
        assert_eq!(super::methods("/api/status"), ["GET"]);
        assert!(super::methods("/api/nothing/here").is_empty());
    }
}
