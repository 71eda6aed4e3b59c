//! The dashboard's page and its assets, embedded into the binary at build time (see
//! `build.rs`): `/` is `ui/index.html`, `/assets/NAME` every other file of `ui/` and hls.js.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles only from this
//! origin, no inline script, media from this origin or the player's `blob:` MediaSource),
//! `nosniff`, and an ETag; the files are revalidated (`no-cache`) so a new binary's page is
//! never mixed with an old cached script.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppError;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    /// A quoted strong ETag made from the content's hash and length.
    pub etag: &'static str,
    pub body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The page at `/`.
pub const INDEX: &str = "index.html";

/// What the page may load: its own scripts and styles, its own API (fetch, server-sent
/// events), the stream from this origin or through hls.js's MediaSource (`blob:`), and
/// hls.js's worker from this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; \
    manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The embedded file named `name`.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// `GET /`.
pub async fn index(headers: HeaderMap) -> Response {
    match asset(INDEX) {
        Some(a) => serve(a, &headers),
        None => AppError::new(StatusCode::NOT_FOUND, "this build has no dashboard page").into_response(),
    }
}

/// `GET /assets/{file}`.
pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match asset(&name) {
        Some(a) => serve(a, &headers),
        None => AppError::new(StatusCode::NOT_FOUND, format!("no asset named {name:?}")).into_response(),
    }
}

fn serve(a: &'static Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == a.etag || tag.trim() == "*"));
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { a.body.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::ETAG, HeaderValue::from_static(a.etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_its_scripts_and_hls_js_are_embedded_with_their_types() {
        let page = asset(INDEX).expect("index.html embedded");
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        let html = std::str::from_utf8(page.body).unwrap();
        assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");
        let handler = html.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(handler.is_none(), "no inline event handler: on{}", handler.unwrap_or_default());
        for name in ["style.css", "common.js", "dashboard.js", "hls.min.mjs", "hls.worker.js"] {
            let a = asset(name).unwrap_or_else(|| panic!("{name} embedded"));
            assert!(!a.body.is_empty() && a.etag.starts_with('"') && a.etag.ends_with('"'), "{name}");
        }
        assert_eq!(asset("common.js").unwrap().content_type, "text/javascript; charset=utf-8");
        assert_eq!(asset("style.css").unwrap().content_type, "text/css; charset=utf-8");
        assert!(asset("../Cargo.toml").is_none());
    }
}
