//! Who may read the stream. Without `stream_token_file`, every client the host check lets in
//! (and, in a browser, the origin check); with it, only requests that carry the token that
//! file holds: the playlists, segments and parts, and WHEP. The health API, `/healthz` and
//! `/metrics` stay open (they show no picture), and so do CORS preflights (a browser sends
//! them without credentials).
//!
//! The token comes as `Authorization: Bearer TOKEN`, or as the password of HTTP Basic
//! authentication with any user name, which is what native players send for a URL such as
//! `http://viewer:TOKEN@kiosk:8888/hls/desktop/playlist.m3u8` (VLC, ffmpeg and mpv keep it
//! for the segments, resolved against the playlist's URL). A request without it, or with
//! another, gets 401 with a Basic challenge, so VLC asks for it. The file is read at each
//! request, so a new token applies at once and an old one stops working.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::http::{AppState, error};

/// The challenge a 401 carries: native players then ask for (or send) the URL's credentials.
const CHALLENGE: &str = "Basic realm=\"desktop-streamer stream\", charset=\"UTF-8\"";

/// A token shorter than this is guessable: refused as if none were set, and said so.
pub const MIN_TOKEN_LEN: usize = 16;

/// The middleware in front of the stream's routes.
pub async fn require_token(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let Some(file) = s.config.borrow().stream_token_file.clone() else { return next.run(request).await };
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let expected = match read_token(&file).await {
        Ok(token) => token,
        Err(why) => {
            if warn_now() {
                tracing::error!(%why, "the stream is refused to every client until the token file is fixed");
            }
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the stream's token cannot be read; the streamer's log says why",
            );
        }
    };
    match presented(request.headers()) {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => next.run(request).await,
        got => {
            let why = if got.is_some() { "that is not the stream's token" } else { "reading the stream needs a token" };
            let mut res = error(
                StatusCode::UNAUTHORIZED,
                &format!(
                    "{why}: send Authorization: Bearer TOKEN, or give it as the password in the URL, e.g. \
                     http://viewer:TOKEN@HOST:PORT/hls/desktop/playlist.m3u8 (VLC, ffmpeg, mpv)"
                ),
            );
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
            res
        }
    }
}

/// Whether to log the unreadable token file now: at most once a minute, however many clients
/// ask meanwhile.
fn warn_now() -> bool {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(60)) {
        return false;
    }
    *last = Some(now);
    true
}

/// The token in `file` (surrounding white space trimmed), or why there is none to accept.
pub async fn read_token(file: &std::path::Path) -> Result<String, String> {
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| format!("stream_token_file {} cannot be read: {e}", file.display()))?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN || token.contains(char::is_whitespace) {
        return Err(format!(
            "stream_token_file {} must hold one token of at least {MIN_TOKEN_LEN} characters without spaces \
             (e.g. made with: head -c 24 /dev/urandom | base64 | tr '+/' '-_')",
            file.display()
        ));
    }
    Ok(token.to_owned())
}

/// The token a request carries: a Bearer token, or a Basic password (any user name).
fn presented(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let pair = String::from_utf8(decoded).ok()?;
        return pair.split_once(':').map(|(_, password)| password.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_token_comes_as_bearer_or_as_a_basic_password_with_any_user() {
        assert_eq!(presented(&with("Bearer abc")).as_deref(), Some("abc"));
        assert_eq!(presented(&with("bearer  abc ")).as_deref(), Some("abc"));
        // viewer:s3cr:et (a colon in the password stays in it).
        let basic = base64::engine::general_purpose::STANDARD.encode("viewer:s3cr:et");
        assert_eq!(presented(&with(&format!("Basic {basic}"))).as_deref(), Some("s3cr:et"));
        assert_eq!(presented(&with("Basic !!!")), None);
        assert_eq!(presented(&with("Digest x")), None);
        assert_eq!(presented(&HeaderMap::new()), None);
    }
}
