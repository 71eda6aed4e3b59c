//! HTTP probe through reqwest, for MJPEG streams (`multipart/x-mixed-replace`) and snapshot
//! URLs (`image/jpeg`): a GET (never HEAD: many cameras answer HEAD without having a
//! picture), then at least two complete JPEG frames, each checked for its start and end
//! markers and its size read from its frame header. A snapshot URL is fetched twice.
//!
//! Credentials in the URL are sent only when the camera asks (401), in the scheme it asks
//! for: Digest or Basic. Over https they are sent only after the certificate was accepted
//! (verified, or any for a camera with `verify_tls: false`).
//!
//! What the picture shows: the two JPEGs go to [`crate::picture`], which decodes them and
//! judges motion on the pictures, as for RTSP.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Client, Response, StatusCode};
use tokio::time::{Instant, timeout, timeout_at};

use super::jpeg::{self, JpegInfo};
use super::{ProbeFailure, ProbeOutcome, Proof, Target, io_reason, resolve, seconds, timeout_failure};
use crate::picture::Coded;
use crate::state::Reason;

const USER_AGENT: &str = "desktop-streamer-web camera probe";
/// A frame larger than this is not a camera picture (or the boundary was missed).
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
const MAX_REDIRECTS: usize = 5;
/// Frames a probe needs to prove a live picture.
const FRAMES_NEEDED: usize = 2;

/// A client all HTTP probes of one `verify_tls` setting share. Idle connections are not
/// kept: a probe every few seconds per camera, for thousands of cameras, would only pile
/// them up. `verify_tls` false accepts any certificate, for self-signed cameras.
pub(crate) fn client(verify_tls: bool) -> Result<Client, reqwest::Error> {
    Client::builder()
        .user_agent(USER_AGENT)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .tls_danger_accept_invalid_certs(!verify_tls)
        .build()
}

struct Frame {
    info: JpegInfo,
    jpeg: Vec<u8>,
    at: Instant,
}

pub(crate) async fn probe(http: &Client, target: &Target, step: Duration) -> ProbeOutcome {
    let start = Instant::now();
    resolve(target, step).await?;
    let mut auth = None;
    let response = request(http, target, step, &mut auth).await?;
    let content_type = content_type(&response);
    let frames = if content_type.starts_with("multipart/") {
        let Some(boundary) = boundary(&response) else {
            return Err(ProbeFailure::new(
                Reason::BadData,
                format!("the answer is {content_type} without a boundary, so its frames cannot be told apart"),
            ));
        };
        stream_frames(response, &boundary, step).await?
    } else if content_type.starts_with("image/jpeg") || content_type.starts_with("image/jpg") {
        let first = snapshot(response, step).await?;
        let response = request(http, target, step, &mut auth).await?;
        let second = snapshot(response, step).await?;
        vec![first, second]
    } else {
        let shown = if content_type.is_empty() { "without a content type".to_owned() } else { content_type };
        return Err(ProbeFailure::new(
            Reason::NoVideoTrack,
            format!(
                "the answer is {shown}, not a JPEG picture (image/jpeg) or an MJPEG stream (multipart/x-mixed-replace)"
            ),
        ));
    };
    let (first_at, last_at, info) = (frames[0].at, frames[frames.len() - 1].at, frames[frames.len() - 1].info);
    Ok(Proof {
        latency: first_at - start,
        codec: "jpeg".to_owned(),
        width: Some(info.width),
        height: Some(info.height),
        last_frame: last_at,
        last_frame_at: jiff::Timestamp::now() - (Instant::now() - last_at),
        coded: Some(Coded::Jpeg(frames.into_iter().map(|f| f.jpeg).collect())),
        span: last_at - first_at,
        packets_lost: None,
    })
}

/// GET, answering one authentication challenge when the URL has credentials.
async fn request(
    http: &Client,
    target: &Target,
    step: Duration,
    auth: &mut Option<http_auth::PasswordClient>,
) -> Result<Response, ProbeFailure> {
    let mut answered_challenge = false;
    loop {
        let mut req = http.get(target.url.clone());
        if let (Some(client), Some((user, password))) = (auth.as_mut(), &target.credentials) {
            let uri = &target.url[url::Position::BeforePath..];
            let params = http_auth::PasswordParams { username: user, password, uri, method: "GET", body: Some(&[]) };
            let value = client.respond(&params).map_err(|e| {
                ProbeFailure::new(
                    Reason::AuthFailed,
                    format!("cannot answer the camera's authentication challenge: {e}"),
                )
            })?;
            req = req.header(AUTHORIZATION, value);
        }
        let response = match timeout(step, req.send()).await {
            Err(_) => return Err(timeout_failure("connecting and the HTTP request", step)),
            Ok(Err(e)) => return Err(http_failure(&e, target)),
            Ok(Ok(r)) => r,
        };
        match response.status() {
            StatusCode::UNAUTHORIZED if target.credentials.is_some() && !answered_challenge => {
                let challenges: Vec<&str> =
                    response.headers().get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).collect();
                let mut builder = http_auth::PasswordClient::builder();
                for c in &challenges {
                    builder = builder.challenges(c);
                }
                *auth = Some(builder.build().map_err(|e| {
                    ProbeFailure::new(
                        Reason::AuthFailed,
                        format!("the camera asks for an authentication this prober cannot give: {e}"),
                    )
                })?);
                answered_challenge = true;
            }
            StatusCode::UNAUTHORIZED if target.credentials.is_some() => {
                return Err(ProbeFailure::new(
                    Reason::AuthFailed,
                    "the camera refused the credentials (401 Unauthorized)",
                ));
            }
            StatusCode::UNAUTHORIZED => {
                return Err(ProbeFailure::new(
                    Reason::AuthFailed,
                    "the camera asks for credentials (401 Unauthorized); put them in the URL: http://user:password@host/…",
                ));
            }
            StatusCode::FORBIDDEN => {
                return Err(ProbeFailure::new(Reason::AuthFailed, "the camera forbids this path (403 Forbidden)"));
            }
            StatusCode::NOT_FOUND => {
                return Err(ProbeFailure::new(Reason::NotFound, "the camera has nothing at this path (404 Not Found)"));
            }
            s if !s.is_success() => {
                return Err(ProbeFailure::new(
                    Reason::BadData,
                    format!("the camera answered {s} instead of a picture"),
                ));
            }
            _ => return Ok(response),
        }
    }
}

fn http_failure(e: &reqwest::Error, target: &Target) -> ProbeFailure {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut io_kind = None;
    let mut detail = String::new();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        detail = s.to_string();
        source = s.source();
    }
    let at = target.authority();
    if let Some(tls) = tls_error_in(e) {
        tls_failure(tls, &at)
    } else if e.is_connect() {
        let reason = io_kind.map_or(Reason::Unreachable, io_reason);
        let what = if reason == Reason::Refused {
            "the camera refused the connection"
        } else {
            "cannot connect to the camera"
        };
        ProbeFailure::new(reason, format!("{what} ({at}): {detail}"))
    } else if e.is_timeout() {
        ProbeFailure::new(Reason::Timeout, format!("the HTTP request to {at} timed out"))
    } else {
        ProbeFailure::new(
            io_kind.map_or(Reason::Unreachable, io_reason),
            format!("the HTTP request to {at} failed: {detail}"),
        )
    }
}

/// The TLS error behind a failed request, if one is.
fn tls_error_in(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(tls) = tls_error(s) {
            return Some(tls);
        }
        source = s.source();
    }
    None
}

/// The TLS error in `e`, however deep: it travels in io::Errors nested in io::Errors, and
/// an io::Error's `source` skips the error it wraps.
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    tls_error(inner)
}

/// Why the TLS handshake with `url` fails when its certificate is verified, if it does: one
/// GET through a verifying client, without credentials, dropped at the headers. For the
/// preview, whose souphttpsrc reports a refused certificate as a bare stream error, just
/// as a refused connection. The message is scrubbed like a probe's.
pub(crate) async fn certificate_refusal(url: &str, limit: Duration) -> Option<String> {
    // Built once: setting up a verifying client loads the system's trust store.
    static VERIFYING: std::sync::OnceLock<Option<Client>> = std::sync::OnceLock::new();
    let http = VERIFYING.get_or_init(|| client(true).ok()).as_ref()?;
    let target = Target::parse(url).ok()?;
    let e = timeout(limit, http.get(target.url.clone()).send()).await.ok()?.err()?;
    let tls = tls_error_in(&e)?;
    Some(target.scrub(&tls_failure(tls, &target.authority()).message))
}

/// A failed TLS handshake, in words that say what to do. Reason `tls`: the camera answered
/// (not `unreachable`) and no credentials were offered (not `auth_failed`).
fn tls_failure(e: &rustls::Error, at: &str) -> ProbeFailure {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let message = match e {
        E::InvalidCertificate(why) => {
            let problem = match why {
                C::UnknownIssuer => "it is self-signed or its issuer is not a trusted authority",
                C::Expired | C::ExpiredContext { .. } => "it has expired",
                C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet (or the clock is wrong)",
                C::NotValidForName | C::NotValidForNameContext { .. } => "it is for another host name",
                _ => "it does not verify",
            };
            format!(
                "the camera's TLS certificate is not trusted ({at}): {problem} ({e}); if the camera has a \
                 self-signed certificate, set `verify_tls: false` on this camera to accept it"
            )
        }
        E::PeerIncompatible(_)
        | E::AlertReceived(A::ProtocolVersion | A::HandshakeFailure | A::InsufficientSecurity) => format!(
            "the TLS handshake with the camera failed ({at}): {e}; the camera may offer only TLS versions or \
             ciphers older than TLS 1.2, which the prober refuses (`verify_tls: false` does not change that); \
             try the camera's http:// URL or update its firmware"
        ),
        _ => format!("the TLS handshake with the camera failed ({at}): {e}"),
    };
    ProbeFailure::new(Reason::Tls, message)
}

fn content_type(response: &Response) -> String {
    response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_ascii_lowercase()
}

/// The multipart boundary, as written in the header (quotes and a leading `--`, which some
/// cameras wrongly include, removed).
fn boundary(response: &Response) -> Option<String> {
    let value = response.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let param = value.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_owned())
    })?;
    let b = param.strip_prefix("--").unwrap_or(&param).to_owned();
    (!b.is_empty()).then_some(b)
}

/// Reads a multipart stream until two complete frames.
async fn stream_frames(mut response: Response, boundary: &str, step: Duration) -> Result<Vec<Frame>, ProbeFailure> {
    let deadline = Instant::now() + step;
    let mut parts = Multipart::new(boundary);
    let mut frames = Vec::with_capacity(FRAMES_NEEDED);
    while frames.len() < FRAMES_NEEDED {
        if let Some(part) = parts.next_part().map_err(|e| ProbeFailure::new(Reason::BadData, e))? {
            frames.push(frame(&part, frames.len())?);
            continue;
        }
        let chunk = match timeout_at(deadline, response.chunk()).await {
            Err(_) => {
                let message = match frames.len() {
                    0 => format!("the stream's headers arrived but no frame within {}", seconds(step)),
                    n => format!("only {n} of {FRAMES_NEEDED} frames arrived within {}", seconds(step)),
                };
                return Err(ProbeFailure::new(Reason::NoFrames, message));
            }
            Ok(Err(e)) => return Err(ProbeFailure::new(Reason::Unreachable, format!("the stream broke: {e}"))),
            Ok(Ok(None)) => {
                return Err(ProbeFailure::new(
                    Reason::NoFrames,
                    format!("the camera ended the stream after {} of {FRAMES_NEEDED} frames", frames.len()),
                ));
            }
            Ok(Ok(Some(c))) => c,
        };
        parts.push(&chunk);
    }
    Ok(frames)
}

/// Reads one `image/jpeg` answer.
async fn snapshot(mut response: Response, step: Duration) -> Result<Frame, ProbeFailure> {
    let deadline = Instant::now() + step;
    let mut body = Vec::new();
    loop {
        match timeout_at(deadline, response.chunk()).await {
            Err(_) => {
                return Err(ProbeFailure::new(
                    Reason::NoFrames,
                    format!("the picture did not arrive within {}", seconds(step)),
                ));
            }
            Ok(Err(e)) => return Err(ProbeFailure::new(Reason::Unreachable, format!("the answer broke off: {e}"))),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => {
                body.extend_from_slice(&c);
                if body.len() > MAX_FRAME_BYTES {
                    return Err(ProbeFailure::new(Reason::BadData, "the picture is larger than 16 MiB"));
                }
            }
        }
    }
    if body.is_empty() {
        return Err(ProbeFailure::new(Reason::NoFrames, "the camera answered image/jpeg with an empty body"));
    }
    frame(&body, 0)
}

fn frame(data: &[u8], index: usize) -> Result<Frame, ProbeFailure> {
    let info = jpeg::inspect(data).map_err(|e| {
        ProbeFailure::new(Reason::BadData, format!("frame {} is not a complete JPEG: it {e}", index + 1))
    })?;
    Ok(Frame { info, jpeg: data.to_vec(), at: Instant::now() })
}

/// Splits a `multipart/x-mixed-replace` body into parts as its bytes arrive. A part ends at
/// its `Content-Length` when it has one (so a frame is complete without waiting for the
/// next), else at the next boundary.
#[derive(Debug)]
struct Multipart {
    delimiter: Vec<u8>,
    buf: Vec<u8>,
}

impl Multipart {
    fn new(boundary: &str) -> Self {
        Multipart { delimiter: format!("--{boundary}").into_bytes(), buf: Vec::new() }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    fn next_part(&mut self) -> Result<Option<Vec<u8>>, String> {
        let too_big = |what: &str| format!("no {what} within {} MiB of the stream", MAX_FRAME_BYTES / (1024 * 1024));
        let Some(start) = find(&self.buf, &self.delimiter, 0) else {
            if self.buf.len() > MAX_FRAME_BYTES {
                return Err(too_big("multipart boundary"));
            }
            return Ok(None);
        };
        let Some(head_end) = find(&self.buf, b"\r\n\r\n", start).map(|i| i + 4) else {
            if self.buf.len() - start > MAX_FRAME_BYTES {
                return Err(too_big("end of a part's headers"));
            }
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&self.buf[start..head_end]);
        let length = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
        });
        let end = match length {
            Some(n) if n > MAX_FRAME_BYTES => return Err(format!("a part says it is {n} bytes, more than 16 MiB")),
            Some(n) if self.buf.len() >= head_end + n => head_end + n,
            Some(_) => return Ok(None),
            None => match find(&self.buf, &self.delimiter, head_end) {
                Some(next) => next,
                None if self.buf.len() - head_end > MAX_FRAME_BYTES => return Err(too_big("next boundary")),
                None => return Ok(None),
            },
        };
        let mut body = self.buf[head_end..end].to_vec();
        while body.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            body.pop();
        }
        self.buf.drain(..end);
        Ok(Some(body))
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_say_what_to_do() {
        let expired = tls_failure(&rustls::Error::InvalidCertificate(rustls::CertificateError::Expired), "h:443");
        assert_eq!(expired.reason, Reason::Tls);
        assert!(expired.message.contains("not trusted (h:443): it has expired"), "{}", expired.message);
        assert!(expired.message.contains("`verify_tls: false`"), "{}", expired.message);
        let old = tls_failure(&rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion), "h:443");
        assert_eq!(old.reason, Reason::Tls);
        assert!(
            old.message.contains("older than TLS 1.2") && old.message.contains("does not change that"),
            "{}",
            old.message
        );
    }

    #[test]
    fn multipart_parts_with_and_without_length() {
        let mut m = Multipart::new("frame");
        m.push(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc\r\n--fra");
        assert_eq!(m.next_part().unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(m.next_part().unwrap(), None);
        m.push(b"me\r\nContent-Type: image/jpeg\r\n\r\nxyz\r\n");
        assert_eq!(m.next_part().unwrap(), None, "without a length the part ends at the next boundary");
        m.push(b"--frame\r\n");
        assert_eq!(m.next_part().unwrap().as_deref(), Some(&b"xyz"[..]));
    }
}
