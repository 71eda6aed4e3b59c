//! The dashboard's one error answer: `{"error": "..."}` with the status the kind of failure
//! calls for, and the headers that go with some of them (`Retry-After` on 429,
//! `WWW-Authenticate` on 401).
//!
//! A 4xx message says what was wrong with the request and what to do instead. A 502, 503 or
//! 504 names the part that could not be reached (the streamer, systemd, a camera) and why: the
//! operator fixes that part, and the reason is no secret of this service. Any other 5xx body is
//! generic, and its cause goes to the service's log ([`AppError::internal`]), so a client
//! never sees paths, SQL or a library's internals.

use std::fmt;
use std::time::Duration;

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ds_http::places::Full;
use serde::Serialize;

/// An error answer; build it with the status and a message saying what was wrong.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
    retry_after: Option<u64>,
    www_authenticate: bool,
}

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppError { status, message: message.into(), retry_after: None, www_authenticate: false }
    }

    /// A 500 whose cause goes to the log, not to the client.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "request failed");
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; the cause is in the service log")
    }

    /// Adds `Retry-After: <seconds>` (rounded up).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        self
    }

    /// An expensive read refused for want of a place ([`Full`]): 503 when every place is taken
    /// (the service is busy), 429 when the client holds its share already (it asks too much);
    /// either with `Retry-After: wait`.
    pub fn no_place(full: Full, message: impl Into<String>, wait: Duration) -> Self {
        let status = match full {
            Full::All => StatusCode::SERVICE_UNAVAILABLE,
            Full::Client => StatusCode::TOO_MANY_REQUESTS,
        };
        AppError::new(status, message).retry_after(wait)
    }

    /// Adds `WWW-Authenticate: Bearer realm="desktop-streamer"` (a 401's challenge).
    pub fn www_authenticate(mut self) -> Self {
        self.www_authenticate = true;
        self
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: &self.message })).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.www_authenticate {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"desktop-streamer\""));
        }
        response
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    async fn body(r: Response) -> String {
        String::from_utf8(to_bytes(r.into_body(), 1024).await.unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_body_is_the_message_in_json_with_the_headers_of_its_kind() {
        let r = AppError::new(StatusCode::TOO_MANY_REQUESTS, "wait \"a bit\"")
            .retry_after(Duration::from_millis(1500))
            .into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "2", "rounded up");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(body(r).await, r#"{"error":"wait \"a bit\""}"#);

        let r = AppError::new(StatusCode::UNAUTHORIZED, "log in").www_authenticate().into_response();
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"desktop-streamer\"");
        assert!(r.headers().get("retry-after").is_none());

        let cause = std::io::Error::other("/secret/path: permission denied");
        let r = AppError::internal(&cause).into_response();
        assert_eq!(r.status(), 500);
        assert_eq!(body(r).await, r#"{"error":"internal error; the cause is in the service log"}"#);
    }
}
