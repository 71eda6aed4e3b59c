//! What the desktop-streamer HTTP services (the streamer's API on :8888, the dashboard on
//! :8080) do the same way: a span and a log line per request, so a slow or failing call can be
//! found in the logs.
//!
//! [`trace_requests`] wraps each request in a `request` span carrying `method` and `path`
//! (so whatever a handler logs names the request it serves) and, when the answer is ready,
//! logs one event with `status` and `latency_ms`. Its level keeps the log readable under the
//! dashboard's own traffic (the page polls and holds event streams, once a second):
//!
//! - `WARN` for a server error (5xx);
//! - `INFO` for any other answer that took [`SLOW_REQUEST`] or longer;
//! - `DEBUG` for the rest: fast successes, redirects and client errors (the login limit and
//!   the guard log what matters about refused requests themselves).
//!
//! The latency is the time until the answer's head is ready: for a stream (server-sent
//! events, a segment) that is when it starts, not when it ends.
//!
//! [`serve::serve`] serves a router within [`serve::Limits`] (header-read timeout, connection
//! caps) against clients that hold connections open, over plain HTTP or HTTPS ([`tls`]: a
//! certificate from files, HSTS); [`hosts::check_host`] answers only requests for this
//! machine's names and addresses (DNS rebinding); [`places::Places`] bound the expensive work
//! clients may hold at once, over all clients and per client.
//!
//! Not in ds-runtime: the CLI depends on that crate and must not build axum.

pub mod hosts;
pub mod places;
pub mod serve;
pub mod tls;

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument as _, Level};

/// From this latency on, a request is logged at `INFO` even when it succeeded.
pub const SLOW_REQUEST: Duration = Duration::from_secs(1);

/// The middleware: `router.layer(axum::middleware::from_fn(ds_http::trace_requests))`, as the
/// outermost layer so refusals by other layers are logged too.
pub async fn trace_requests(request: Request, next: Next) -> Response {
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path());
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    let _in_request = span.enter();
    match level(response.status(), latency) {
        Level::WARN => tracing::warn!(status, latency_ms, "request failed"),
        Level::INFO => tracing::info!(status, latency_ms, "slow request"),
        _ => tracing::debug!(status, latency_ms, "request answered"),
    }
    response
}

/// The level of a request's log line (see the module's documentation).
fn level(status: StatusCode, latency: Duration) -> Level {
    if status.is_server_error() {
        Level::WARN
    } else if latency >= SLOW_REQUEST {
        Level::INFO
    } else {
        Level::DEBUG
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::routing::get;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// The JSON lines a subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn events(&self) -> Vec<Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
        }
    }

    /// One real HTTP/1.1 request to `addr`; the status line's code.
    async fn request(addr: std::net::SocketAddr, path: &str) -> u16 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path}?token=secret HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// A real server on 127.0.0.1:0 with the middleware, under a subscriber that writes every
    /// level as the services' JSON log does: each request makes one event, inside a span naming
    /// the method and the path (without the query), with the status and the latency; a 5xx is
    /// a warning, a fast success only debug.
    #[tokio::test]
    async fn each_request_logs_method_path_status_and_latency_at_its_level() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(move || writer.clone())
                .with_current_span(true)
                .with_span_list(false),
        );
        // The test's runtime runs on this thread, the server's tasks too.
        let _default = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route("/fine", get(|| async { "fine" }))
            .route("/broken", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
            .layer(axum::middleware::from_fn(trace_requests));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        assert_eq!(request(addr, "/fine").await, 200);
        assert_eq!(request(addr, "/broken").await, 500);
        server.abort();

        let events = lines.events();
        let requests: Vec<&Value> = events.iter().filter(|e| e["span"]["name"] == "request").collect();
        assert_eq!(requests.len(), 2, "one event per request: {events:#?}");
        for (event, path, status, level) in
            [(requests[0], "/fine", 200, "DEBUG"), (requests[1], "/broken", 500, "WARN")]
        {
            assert_eq!(event["level"], level, "{event}");
            assert_eq!(event["span"]["method"], "GET", "{event}");
            assert_eq!(event["span"]["path"], path, "{event}");
            assert_eq!(event["fields"]["status"], status, "{event}");
            assert!(event["fields"]["latency_ms"].as_u64().is_some_and(|ms| ms < 1000), "{event}");
        }
        assert_eq!(requests[1]["fields"]["message"], "request failed");
    }

    #[test]
    fn server_errors_warn_slow_answers_inform_the_rest_is_debug() {
        let fast = Duration::from_millis(20);
        assert_eq!(level(StatusCode::OK, fast), Level::DEBUG);
        assert_eq!(level(StatusCode::NOT_FOUND, fast), Level::DEBUG);
        assert_eq!(level(StatusCode::OK, SLOW_REQUEST), Level::INFO);
        assert_eq!(level(StatusCode::UNAUTHORIZED, SLOW_REQUEST * 3), Level::INFO);
        assert_eq!(level(StatusCode::BAD_GATEWAY, fast), Level::WARN);
        assert_eq!(level(StatusCode::INTERNAL_SERVER_ERROR, SLOW_REQUEST), Level::WARN);
    }
}
