//! Serving a router on a LAN whose clients are not all browsers: [`serve`] is `axum::serve`
//! with the limits a kiosk needs against clients that open connections and hold them.
//!
//! - **Header-read timeout** ([`Limits::header_read_timeout`]): a client has that long to send
//!   a request's head from the connection's start (hyper's `header_read_timeout`): a connection
//!   that sends half a request line, or nothing, is closed then.
//! - **Idle timeout**, the same length: a kept-alive connection whose last request started that
//!   long ago is closed once its answer is written (hyper's graceful shutdown of the
//!   connection). An answer being written (an event stream, a segment) is never cut by it.
//! - **A cap on connections** ([`Limits::max_connections`]), kept below the unit's
//!   `LimitNOFILE=` so that a flood of connections cannot take the descriptors the service
//!   needs for its own files. When every place is taken, a new connection takes the place of
//!   the oldest connection that has not sent a request yet (which is closed: a flood of
//!   half-open connections from many addresses cannot keep the page, the watchdog or a player
//!   out for the header timeout); only when every place serves a request is the new
//!   connection closed at once, unread.
//! - **A cap per client address** ([`Limits::max_per_client`]): one address cannot take every
//!   place, so the other clients (the page, the watchdog, a player) keep theirs.
//!
//! - **HTTPS** ([`serve_over`] with [`Transport::Https`]): the TLS handshake is part of the
//!   connection inside these bounds: it holds its places from accept, must finish within the
//!   header-read timeout, and a connection still in it is evictable like one that has not sent
//!   a request. Plain HTTP sent to the port is answered `400` ("this port speaks HTTPS"), not
//!   served.
//!
//! Refused and evicted connections are counted ([`Served::refused`], [`Served::evicted`]) and logged at most once per
//! [`REFUSAL_LOG_INTERVAL`] with the counts since the last line, so a flood does not flood the
//! log. Each request carries the client's address as `ConnectInfo<SocketAddr>`, as
//! `into_make_service_with_connect_info` gives it. On shutdown the listener closes, open
//! connections finish the request they are serving and close, and [`serve`] returns when all
//! are closed.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// Default time a client has to send a request's head (and the longest a kept-alive connection
/// stays idle).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on open connections, over all clients.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default cap on open connections from one address: a browser opens six per host, a few
/// pages and players behind one address stay well within it.
pub const DEFAULT_MAX_PER_CLIENT: usize = 64;
/// Refused connections are logged at most this often.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How long accepting pauses when the process is out of descriptors (or the like), rather than
/// spinning on the error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// What [`serve`] allows its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// See the module's documentation. Default [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// Default [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// Default [`DEFAULT_MAX_PER_CLIENT`].
    pub max_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_per_client: DEFAULT_MAX_PER_CLIENT,
        }
    }
}

/// Counts of what [`serve`] did, readable while it runs; each service reports them in its
/// `/metrics` ([`Served::write_metrics`]).
#[derive(Debug, Default)]
pub struct Served {
    open: AtomicU64,
    accepted: AtomicU64,
    refused_full: AtomicU64,
    refused_client: AtomicU64,
    evicted: AtomicU64,
    /// Set by [`serve_over`] with [`Transport::Https`]: the TLS counts below are reported.
    https: std::sync::atomic::AtomicBool,
    tls_plain_http: AtomicU64,
    tls_failed: AtomicU64,
    tls_timed_out: AtomicU64,
}

/// Why a connection to an HTTPS port ended before its first request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsRefusal {
    /// It spoke plain HTTP (answered 400).
    PlainHttp,
    /// The handshake failed (an untrusted certificate on the client's side, no common
    /// version or cipher, not TLS at all).
    Failed,
    /// The handshake did not finish within the header-read timeout.
    TimedOut,
}

impl Served {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections accepted and served so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections closed before their first request to make room for a new one, so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Writes the counts as `<prefix>_http_connections_*` series: open now, accepted, evicted
    /// and refused (by reason) so far.
    pub fn write_metrics(&self, w: &mut ds_runtime::prometheus::Writer, prefix: &str) {
        use ds_runtime::prometheus::Kind;
        w.single(&format!("{prefix}_http_connections_open"), Kind::Gauge, "HTTP connections open now", self.open());
        w.single(
            &format!("{prefix}_http_connections_accepted_total"),
            Kind::Counter,
            "HTTP connections accepted",
            self.accepted(),
        );
        w.single(
            &format!("{prefix}_http_connections_evicted_total"),
            Kind::Counter,
            "HTTP connections closed before their first request to make room for a new one (every place was taken)",
            self.evicted(),
        );
        let (full, client) = self.refused();
        w.family(
            &format!("{prefix}_http_connections_refused_total"),
            Kind::Counter,
            "HTTP connections closed unread: every place serving a request (all_places_taken), or the client's address holding all its places (client_places_taken)",
        )
        .sample(&[("reason", "all_places_taken")], full)
        .sample(&[("reason", "client_places_taken")], client);
        if self.https.load(Ordering::Relaxed) {
            let (plain, failed, timed_out) = self.tls_refused();
            w.family(
                &format!("{prefix}_https_connections_refused_total"),
                Kind::Counter,
                "HTTPS connections that ended before a request: plain HTTP sent to the port (plain_http, answered \
                 400), a failed handshake (handshake_failed), a handshake not finished within the header-read \
                 timeout (handshake_timeout)",
            )
            .sample(&[("reason", "plain_http")], plain)
            .sample(&[("reason", "handshake_failed")], failed)
            .sample(&[("reason", "handshake_timeout")], timed_out);
        }
    }

    /// Connections to an HTTPS port that ended before a request so far: (spoke plain HTTP,
    /// handshake failed, handshake timed out).
    pub fn tls_refused(&self) -> (u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (get(&self.tls_plain_http), get(&self.tls_failed), get(&self.tls_timed_out))
    }

    fn note_tls(&self, refusal: TlsRefusal) {
        let counter = match refusal {
            TlsRefusal::PlainHttp => &self.tls_plain_http,
            TlsRefusal::Failed => &self.tls_failed,
            TlsRefusal::TimedOut => &self.tls_timed_out,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed unread so far: (all places taken, the client's places taken).
    pub fn refused(&self) -> (u64, u64) {
        (self.refused_full.load(Ordering::Relaxed), self.refused_client.load(Ordering::Relaxed))
    }
}

/// The open connections that have not sent a request yet, oldest first (by accept order), each
/// with the token that closes it.
#[derive(Debug, Default)]
struct Waiting(Mutex<BTreeMap<u64, CancellationToken>>);

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, CancellationToken>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the oldest connection that has not sent a request; whether there was one.
    fn evict_oldest(&self) -> bool {
        let oldest = self.lock().pop_first();
        oldest.map(|(_, close)| close.cancel()).is_some()
    }
}

/// How long the accept loop waits for an evicted connection's place to come free.
const EVICTION_WAIT: Duration = Duration::from_millis(500);

/// What a connection holds while it is open.
struct Held {
    _place: OwnedSemaphorePermit,
    _client: crate::places::ClientPlace,
    served: Arc<Served>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.served.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Logs refusals at most once per [`REFUSAL_LOG_INTERVAL`].
struct RefusalLog {
    last: Option<Instant>,
    since: (u64, u64),
}

impl RefusalLog {
    fn note(&mut self, full: bool, limits: &Limits, open: u64) {
        if full {
            self.since.0 += 1;
        } else {
            self.since.1 += 1;
        }
        if self.last.is_some_and(|t| t.elapsed() < REFUSAL_LOG_INTERVAL) {
            return;
        }
        self.last = Some(Instant::now());
        let (full, client) = std::mem::take(&mut self.since);
        tracing::warn!(
            refused_all_places_taken = full,
            refused_client_places_taken = client,
            open,
            max_connections = limits.max_connections,
            max_per_client = limits.max_per_client,
            "connections refused: too many open (a client holding connections open, or more clients than the limits allow)"
        );
    }
}

/// When a connection's last request started, for its idle timeout.
#[derive(Debug)]
struct LastRequest {
    base: Instant,
    millis: AtomicU64,
}

impl LastRequest {
    fn new() -> LastRequest {
        LastRequest { base: Instant::now(), millis: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.millis.store(millis, Ordering::Relaxed);
    }

    fn at(&self) -> Instant {
        self.base + Duration::from_millis(self.millis.load(Ordering::Relaxed))
    }
}

/// How a listener's connections speak: plain HTTP, or HTTPS with a server certificate
/// ([`crate::tls`]).
#[derive(Clone, Debug, Default)]
pub enum Transport {
    #[default]
    Http,
    Https(Arc<rustls::ServerConfig>),
}

/// What a client that sends plain HTTP to an HTTPS port is answered (then the connection
/// closes): a browser shows it, so the person who typed `http://` learns what to type; the
/// watchdog recognises it.
const PLAIN_HTTP_ANSWER: &str = ds_wire::PLAIN_HTTP_ON_HTTPS_PORT;
/// The most of a plain-HTTP request's head that is read before [`PLAIN_HTTP_ANSWER`].
const PLAIN_HTTP_HEAD_LIMIT: usize = 16 * 1024;
/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets the open
/// connections finish the request they serve. `served` counts what happened.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    served: Arc<Served>,
    shutdown: impl Future<Output = ()>,
) {
    serve_over(listener, Transport::Http, app, limits, served, shutdown).await;
}

/// [`serve`] over `transport`. With [`Transport::Https`] each connection's TLS handshake
/// happens inside the same bounds as a request's head: it holds one of the places (and of its
/// client's) from the start, it must finish within [`Limits::header_read_timeout`] (then the
/// request's head has that long again), and a connection still in its handshake is among the
/// oldest evicted when every place is taken. A client that sends plain HTTP gets a
/// `400 Bad Request` saying that the port speaks HTTPS, and the connection closes. Each request
/// over TLS carries [`crate::tls::OverTls`] in its extensions.
pub async fn serve_over(
    listener: TcpListener,
    transport: Transport,
    app: Router,
    limits: Limits,
    served: Arc<Served>,
    shutdown: impl Future<Output = ()>,
) {
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(crate::places::ClientPlaces::default());
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    let acceptor = match transport {
        Transport::Http => None,
        Transport::Https(config) => {
            served.https.store(true, Ordering::Relaxed);
            Some(tokio_rustls::TlsAcceptor::from(config))
        }
    };
    let mut refusals = RefusalLog { last: None, since: (0, 0) };
    let waiting = Arc::new(Waiting::default());
    let mut sequence = 0u64;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let place = match Arc::clone(&places).try_acquire_owned() {
            Ok(place) => place,
            Err(_) if waiting.evict_oldest() => {
                served.evicted.fetch_add(1, Ordering::Relaxed);
                match tokio::time::timeout(EVICTION_WAIT, Arc::clone(&places).acquire_owned()).await {
                    Ok(Ok(place)) => place,
                    _ => {
                        served.refused_full.fetch_add(1, Ordering::Relaxed);
                        refusals.note(true, &limits, served.open());
                        continue;
                    }
                }
            }
            Err(_) => {
                served.refused_full.fetch_add(1, Ordering::Relaxed);
                refusals.note(true, &limits, served.open());
                continue;
            }
        };
        let Some(client) = clients.claim(peer.ip(), limits.max_per_client) else {
            served.refused_client.fetch_add(1, Ordering::Relaxed);
            refusals.note(false, &limits, served.open());
            continue;
        };
        served.open.fetch_add(1, Ordering::Relaxed);
        served.accepted.fetch_add(1, Ordering::Relaxed);
        let held = Held { _place: place, _client: client, served: Arc::clone(&served) };
        let _ = stream.set_nodelay(true);
        let last_request = Arc::new(LastRequest::new());
        let touched = Arc::clone(&last_request);
        sequence += 1;
        let (id, evicted) = (sequence, CancellationToken::new());
        waiting.lock().insert(id, evicted.clone());
        let asked = Arc::clone(&waiting);
        let over_tls = acceptor.is_some();
        let service = app.clone().map_request(move |mut request: Request<Incoming>| {
            touched.touch();
            asked.lock().remove(&id);
            request.extensions_mut().insert(ConnectInfo(peer));
            if over_tls {
                request.extensions_mut().insert(crate::tls::OverTls);
            }
            request
        });
        let connection = Connection {
            builder: Arc::clone(&builder),
            service: TowerToHyperService::new(service),
            evicted,
            closing: closing.clone(),
            last_request,
            idle: limits.header_read_timeout,
            peer,
        };
        let waiting = Arc::clone(&waiting);
        let acceptor = acceptor.clone();
        let counts = Arc::clone(&served);
        connections.spawn(async move {
            match acceptor {
                None => connection.run(stream).await,
                Some(acceptor) => {
                    let (evicted, closing) = (connection.evicted.clone(), connection.closing.clone());
                    let handshake = tokio::time::timeout(connection.idle, accept_tls(stream, &acceptor, peer));
                    tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(tls)) => connection.run(tls).await,
                            Ok(Err(refusal)) => counts.note_tls(refusal),
                            Err(_) => {
                                counts.note_tls(TlsRefusal::TimedOut);
                                tracing::debug!(client = %peer, "TLS handshake not finished within the header-read timeout: closed");
                            }
                        },
                        () = evicted.cancelled() => {}
                        () = closing.cancelled() => {}
                    }
                }
            }
            waiting.lock().remove(&id);
            drop(held);
        });
    }
    drop(listener);
    closing.cancel();
    connections.close();
    connections.wait().await;
}

/// One accepted connection, ready to serve HTTP over whatever stream its transport gives.
struct Connection<S> {
    builder: Arc<Builder<TokioExecutor>>,
    service: TowerToHyperService<S>,
    /// Cancelled when its place goes to a newer connection before it sent a request.
    evicted: CancellationToken,
    closing: CancellationToken,
    last_request: Arc<LastRequest>,
    idle: Duration,
    peer: SocketAddr,
}

impl<S> Connection<S>
where
    S: tower::Service<Request<Incoming>, Response = axum::response::Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    /// Serves HTTP on `io` until the client closes, the connection idles out, is evicted, or
    /// the server shuts down; the socket is closed when this returns.
    async fn run<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(self, io: I) {
        let Connection { builder, service, evicted, closing, last_request, idle, peer } = self;
        let mut connection = Box::pin(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
        let mut asked_to_close = false;
        let ended = loop {
            tokio::select! {
                ended = connection.as_mut() => break ended,
                // Its place went to a newer connection before it sent a request.
                () = evicted.cancelled() => break Ok(()),
                () = closing.cancelled(), if !asked_to_close => {
                    connection.as_mut().graceful_shutdown();
                    asked_to_close = true;
                }
                () = tokio::time::sleep_until((last_request.at() + idle).into()), if !asked_to_close => {
                    if last_request.at().elapsed() >= idle {
                        connection.as_mut().graceful_shutdown();
                        asked_to_close = true;
                    }
                }
            }
        };
        if let Err(e) = ended {
            tracing::debug!(client = %peer, error = %e, "connection ended with an error");
        }
    }
}

/// The TLS handshake of a connection to an HTTPS port; why there is none when the client
/// spoke plain HTTP (answered with [`PLAIN_HTTP_ANSWER`]), closed first, or failed it.
async fn accept_tls(
    stream: TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
    peer: SocketAddr,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, TlsRefusal> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) => {}
        _ => return Err(TlsRefusal::Failed),
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        if first[0].is_ascii_uppercase() {
            tracing::debug!(client = %peer, "plain HTTP on the HTTPS port: told to use https://");
            answer_plain_http(stream).await;
            return Err(TlsRefusal::PlainHttp);
        }
        tracing::debug!(client = %peer, "neither TLS nor HTTP on the HTTPS port: closed");
        return Err(TlsRefusal::Failed);
    }
    acceptor.accept(stream).await.map_err(|e| {
        tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
        TlsRefusal::Failed
    })
}

/// Reads a plain-HTTP request's head (so that closing does not reset the connection before
/// the client reads the answer), then answers `400` with [`PLAIN_HTTP_ANSWER`].
async fn answer_plain_http(mut stream: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < PLAIN_HTTP_HEAD_LIMIT && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: \
         close\r\n\r\n{PLAIN_HTTP_ANSWER}",
        PLAIN_HTTP_ANSWER.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}
