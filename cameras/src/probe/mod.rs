//! Probes: one look at one camera that ends in proof that video arrived ([`Proof`]) or in a
//! reason why not ([`ProbeFailure`]). RTSP goes through retina ([`rtsp`]), MJPEG streams and
//! snapshot URLs through reqwest ([`mjpeg`]). A probe does not decide UP, DEGRADED or DOWN;
//! it reports what it saw, and [`crate::verdict`] judges that against the camera's history.
//!
//! Every step runs under its own timeout, and a timeout names its step. Credentials are
//! taken out of the URL and handed to the protocol's authentication; every message meant
//! for people is scrubbed of them.
//!
//! An `https://` camera's certificate is verified unless the camera's `verify_tls` is
//! false ([`Prober::probe`]): IP cameras nearly always have self-signed
//! certificates, and their owners choose to accept them camera by camera. A refused
//! certificate is reason `tls`, with a message that names the setting.

pub mod jpeg;
pub mod mjpeg;
pub mod rtsp;

use std::future::Future;
use std::time::Duration;

use ds_config::redact::{is_credential_param, mask_url_credentials, url_problem};
use url::Url;

use crate::picture::Coded;
use crate::state::Reason;

/// Video arrived: what the probe measured on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    /// From the start of the probe to the first complete frame (RTSP: the first keyframe).
    pub latency: Duration,
    /// `h264`, `h265`, `jpeg`, …
    pub codec: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// When the newest frame arrived, on the monotonic clock (for its age)…
    pub last_frame: tokio::time::Instant,
    /// …and as the wall clock said then (for people and the history).
    pub last_frame_at: jiff::Timestamp,
    /// The frames to decode for what the picture shows ([`crate::picture`]): RTSP, the
    /// keyframe and every frame after it that the probe received; MJPEG, its two JPEGs.
    /// `None` where there is nothing to decode (a test's prober).
    pub coded: Option<Coded>,
    /// From the first to the last frame of `coded`.
    pub span: Duration,
    /// RTP packets the sequence numbers show missing during the probe (RTSP, exact); `None`
    /// for HTTP, which has no packets to count. No share of all packets is given: retina does
    /// not tell how many packets its frames took (see [`rtsp`]).
    pub packets_lost: Option<u32>,
}

/// Why a probe did not prove video; `message` is for people and holds no credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ProbeFailure {
    pub reason: Reason,
    pub message: String,
}

impl ProbeFailure {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        ProbeFailure { reason, message: message.into() }
    }
}

pub type ProbeOutcome = Result<Proof, ProbeFailure>;

/// Something that probes a camera URL; the scheduler is generic over it so its timing can
/// be tested without a network.
pub trait Prober: Send + Sync + 'static {
    /// Probes `url` (credentials allowed in it) with `step_timeout` for each step. An
    /// `https://` camera's certificate must be trusted unless `verify_tls` is false (the
    /// camera's resolved setting), which accepts any certificate (a self-signed camera).
    fn probe(&self, url: &str, step_timeout: Duration, verify_tls: bool) -> impl Future<Output = ProbeOutcome> + Send;
}

/// The real prober: RTSP through retina, HTTP through two shared reqwest clients.
#[derive(Clone, Debug)]
pub struct NetworkProber {
    /// Verifies certificates against the system's trust store.
    http: reqwest::Client,
    /// For cameras with `verify_tls: false`: accepts any certificate. Shared like the other,
    /// rather than built per probe, because building a client sets up TLS from scratch.
    http_any_certificate: reqwest::Client,
}

/// The HTTP client could not be built (TLS set-up of the platform).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client for camera probes: {0}")]
pub struct ProberSetupError(#[from] reqwest::Error);

impl NetworkProber {
    pub fn new() -> Result<Self, ProberSetupError> {
        Ok(NetworkProber { http: mjpeg::client(true)?, http_any_certificate: mjpeg::client(false)? })
    }
}

impl Prober for NetworkProber {
    async fn probe(&self, url: &str, step_timeout: Duration, verify_tls: bool) -> ProbeOutcome {
        let target = Target::parse(url)?;
        let http = if verify_tls { &self.http } else { &self.http_any_certificate };
        let outcome = match target.url.scheme() {
            "rtsp" => rtsp::probe(&target, step_timeout).await,
            "http" | "https" => mjpeg::probe(http, &target, step_timeout).await,
            other => Err(ProbeFailure::new(
                Reason::BadData,
                format!("scheme `{other}` cannot be probed; use rtsp://, http:// or https://"),
            )),
        };
        outcome.map_err(|f| ProbeFailure { message: target.scrub(&f.message), ..f })
    }
}

/// A camera URL taken apart: the URL without credentials, and the credentials.
#[derive(Clone)]
pub(crate) struct Target {
    pub url: Url,
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("url", &mask_url_credentials(self.url.as_str())).finish_non_exhaustive()
    }
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, ProbeFailure> {
        // The text is not repeated: where the password of a URL that does not parse ends
        // cannot be known.
        let mut url =
            Url::parse(text).map_err(|_| ProbeFailure::new(Reason::BadData, url_problem(text).unwrap_or_default()))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ProbeFailure::new(Reason::BadData, "the URL has no host"));
        }
        let credentials = (!url.username().is_empty() || url.password().is_some()).then(|| {
            let decode = |s: &str| percent_decode(s);
            (decode(url.username()), decode(url.password().unwrap_or("")))
        });
        // Cannot fail for URLs with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(Target { url, credentials })
    }

    /// `message` without the password (raw or as written in the URL) and with URLs masked.
    pub fn scrub(&self, message: &str) -> String {
        let mut out = mask_url_credentials(message);
        if let Some((_, password)) = &self.credentials
            && !password.is_empty()
        {
            out = out.replace(password.as_str(), "***");
        }
        // Credentials in the query (`snap.cgi?usr=admin&pwd=…`), as written and decoded.
        for (name, value) in self.url.query_pairs() {
            if is_credential_param(&name) && !value.is_empty() {
                out = out.replace(value.as_ref(), "***");
            }
        }
        for pair in self.url.query().unwrap_or("").split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && is_credential_param(name)
                && !value.is_empty()
            {
                out = out.replace(value, "***");
            }
        }
        out
    }

    /// `host:port` for messages.
    pub fn authority(&self) -> String {
        let host = self.url.host_str().unwrap_or("");
        match self.url.port_or_known_default() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        }
    }
}

/// `%40` → `@`: the URL crate keeps user info percent-encoded; cameras want it plain.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resolves a host name (IP literals pass at once) so that a name that does not resolve is
/// reported as `dns`, not as a connection failure.
pub(crate) async fn resolve(target: &Target, step_timeout: Duration) -> Result<(), ProbeFailure> {
    let Some(url::Host::Domain(domain)) = target.url.host() else { return Ok(()) };
    let port = target.url.port_or_known_default().unwrap_or(554);
    match tokio::time::timeout(step_timeout, tokio::net::lookup_host((domain, port))).await {
        Err(_) => Err(timeout_failure("resolving the host name", step_timeout)),
        Ok(Err(e)) => Err(ProbeFailure::new(Reason::Dns, format!("the host name `{domain}` does not resolve: {e}"))),
        Ok(Ok(mut addrs)) => match addrs.next() {
            None => Err(ProbeFailure::new(Reason::Dns, format!("the host name `{domain}` has no address"))),
            Some(_) => Ok(()),
        },
    }
}

pub(crate) fn timeout_failure(step: &str, limit: Duration) -> ProbeFailure {
    ProbeFailure::new(Reason::Timeout, format!("{step} took longer than {}", seconds(limit)))
}

/// `2 s`, `1.5 s`.
pub(crate) fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s:.1} s") }
}

/// The reason for an I/O error while connecting or talking to a camera.
pub(crate) fn io_reason(kind: std::io::ErrorKind) -> Reason {
    use std::io::ErrorKind as K;
    match kind {
        K::ConnectionRefused => Reason::Refused,
        K::TimedOut => Reason::Timeout,
        _ => Reason::Unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_and_the_messages() {
        let t = Target::parse("rtsp://ad%40min:p%3Ass@192.0.2.1:8554/live?x=1").unwrap();
        assert_eq!(t.url.as_str(), "rtsp://192.0.2.1:8554/live?x=1");
        assert_eq!(t.credentials, Some(("ad@min".to_owned(), "p:ss".to_owned())));
        assert_eq!(t.scrub("401 for p:ss at rtsp://u:p%3Ass@h/"), "401 for *** at rtsp://u:***@h/");
        assert_eq!(Target::parse("http://h/").unwrap().credentials, None);
        assert!(!format!("{t:?}").contains("p:ss"));
    }

    #[test]
    fn query_credentials_leave_the_messages() {
        let t = Target::parse("http://192.0.2.1/snap.cgi?usr=admin&pwd=Zq%2F7x&token=tk9").unwrap();
        let said = t.scrub(
            "error sending request for url (http://192.0.2.1/snap.cgi?usr=admin&pwd=Zq%2F7x&token=tk9): Zq/7x tk9",
        );
        assert!(!said.contains("Zq") && !said.contains("tk9") && said.contains("usr=admin"), "{said}");
        assert!(!format!("{t:?}").contains("Zq"), "{t:?}");
        let e = Target::parse("rtsp://admin:Zq#7@192.0.2.1/s").unwrap_err();
        assert!(!e.message.contains("Zq") && e.message.contains("`#` as %23"), "{}", e.message);
    }
}
