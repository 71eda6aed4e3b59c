//! `ds_http::serve` against clients that hold connections: over loopback, from several
//! addresses of 127.0.0.0/8 so the per-client cap can be told from the global one; over plain
//! HTTP and over HTTPS (a certificate of a private CA made with openssl, real rustls clients
//! trusting it). Every wait is for an event (a connection closed, an answer) under a bound.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use ds_http::serve::{Limits, Served, Transport, serve_over};
use ds_http::tls::{Certificate, OverTls};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

const HEADER_TIMEOUT: Duration = Duration::from_millis(400);
/// The longest any event here may take on a loaded machine.
const BOUND: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    served: Arc<Served>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: Limits) -> Server {
    start_over(limits, Transport::Http).await
}

/// The server's certificate (a private CA made it) and a TLS client trusting that CA.
struct Tls {
    _dir: tempfile::TempDir,
    transport: Transport,
    connector: tokio_rustls::TlsConnector,
}

impl Tls {
    fn new() -> Tls {
        let dir = tempfile::tempdir().unwrap();
        let files = ds_tests::smtp::TlsFiles::create(dir.path());
        let certificate = Certificate::load(&files.cert, &files.key).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        let ca = std::fs::read(&files.ca).unwrap();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
            roots.add(cert.unwrap()).unwrap();
        }
        let client =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        Tls {
            _dir: dir,
            transport: Transport::Https(ds_http::tls::server_config(&certificate)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        }
    }

    /// `GET path` over TLS from 127.0.0.`last`; the whole answer.
    async fn get_from(&self, last: u8, server: SocketAddr, path: &str) -> String {
        let tcp = connect_from(last, server).await;
        let name = rustls::pki_types::ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
        let mut tls = tokio::time::timeout(BOUND, self.connector.connect(name, tcp)).await.unwrap().unwrap();
        tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(BOUND, tls.read_to_end(&mut out)).await.expect("the answer ends");
        String::from_utf8_lossy(&out).into_owned()
    }
}

async fn start_over(limits: Limits, transport: Transport) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/who", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }))
        .route(
            "/tls",
            get(|tls: Option<axum::Extension<OverTls>>| async move { format!("over TLS: {}", tls.is_some()) }),
        )
        .route(
            "/slow",
            get(|| async {
                // An answer written over three header timeouts, as an event stream is.
                let chunks = futures_util::stream::unfold(0u32, |n| async move {
                    if n == 3 {
                        return None;
                    }
                    tokio::time::sleep(HEADER_TIMEOUT).await;
                    Some((Ok::<_, std::io::Error>(format!("chunk {n}\n")), n + 1))
                });
                Body::from_stream(chunks)
            }),
        )
        .layer(axum::middleware::from_fn(ds_http::tls::strict_transport_security));
    let served = Arc::new(Served::default());
    let stop = CancellationToken::new();
    let (s, token) = (Arc::clone(&served), stop.clone());
    let task =
        tokio::spawn(async move { serve_over(listener, transport, app, limits, s, token.cancelled_owned()).await });
    Server { addr, served, stop, task }
}

/// A connection to `server` from 127.0.0.`last`.
async fn connect_from(last: u8, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0)).unwrap();
    socket.connect(server).await.unwrap()
}

/// Reads until the server closes the connection; what it sent. Panics past [`BOUND`].
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await.expect("the server closes the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET path` from 127.0.0.`last` on a connection of its own; the whole answer.
async fn get_from(last: u8, server: SocketAddr, path: &str) -> String {
    let mut s = connect_from(last, server).await;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    read_to_close(&mut s).await
}

#[tokio::test]
async fn a_half_sent_request_or_an_idle_connection_is_closed_at_the_header_timeout() {
    let server = start(Limits { header_read_timeout: HEADER_TIMEOUT, ..Limits::default() }).await;
    let mut half = connect_from(1, server.addr).await;
    half.write_all(b"GET /who HT").await.unwrap();
    let mut silent = connect_from(1, server.addr).await;
    let started = Instant::now();
    let (a, b) = tokio::join!(read_to_close(&mut half), read_to_close(&mut silent));
    let took = started.elapsed();
    assert!(took >= HEADER_TIMEOUT - Duration::from_millis(50), "closed after {took:?}, before the timeout");
    assert!(!a.contains(" 200 ") && !b.contains(" 200 "), "{a:?} {b:?}");

    // A kept-alive connection after its answer: idle, closed at the same timeout.
    let mut kept = connect_from(1, server.addr).await;
    kept.write_all(b"GET /who HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.1"), "{answer:?}");
    wait_for(|| server.served.open() == 0, "every connection closed").await;
}

#[tokio::test]
async fn an_answer_that_takes_longer_than_the_header_timeout_is_not_cut() {
    let server = start(Limits { header_read_timeout: HEADER_TIMEOUT, ..Limits::default() }).await;
    let answer = get_from(1, server.addr, "/slow").await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("chunk 2"), "{answer:?}");
}

#[tokio::test]
async fn one_address_cannot_take_every_place_and_a_full_server_makes_room_from_silent_connections() {
    let limits = Limits { header_read_timeout: BOUND * 2, max_connections: 4, max_per_client: 2 };
    let server = start(limits).await;
    // 127.0.0.2 holds its two places with connections that send nothing.
    let mut held = vec![connect_from(2, server.addr).await, connect_from(2, server.addr).await];
    wait_for(|| server.served.open() == 2, "two connections held").await;
    let mut third = connect_from(2, server.addr).await;
    assert_eq!(read_to_close(&mut third).await, "", "a third connection from the same address is closed unread");
    assert_eq!(server.served.refused(), (0, 1));
    // Another address is served meanwhile, and sees its own address.
    let answer = get_from(3, server.addr, "/who").await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.3"), "{answer:?}");
    wait_for(|| server.served.open() == 2, "the served connection closed").await;
    // Two more addresses fill the server with connections that send nothing: a new client
    // takes the place of the oldest of them, which is closed.
    held.push(connect_from(4, server.addr).await);
    held.push(connect_from(5, server.addr).await);
    wait_for(|| server.served.open() == 4, "four connections held").await;
    let answer = get_from(6, server.addr, "/who").await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.6"), "{answer:?}");
    assert_eq!((server.served.evicted(), server.served.refused()), (1, (0, 1)));
    assert_eq!(read_to_close(&mut held[0]).await, "", "the oldest silent connection was closed for it");
    // With every place serving a request, a new connection is refused at once.
    let slow: Vec<_> = futures_util::future::join_all((7..=10).map(|last| async move {
        let mut s = connect_from(last, server.addr).await;
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        s
    }))
    .await;
    wait_for(|| server.served.evicted() == 4 && server.served.open() == 4, "four places serving a request").await;
    let mut refused = connect_from(11, server.addr).await;
    assert_eq!(read_to_close(&mut refused).await, "", "no place for it");
    assert_eq!(server.served.refused(), (1, 1));
    // Places come back when their answers are written.
    for mut s in slow {
        assert!(read_to_close(&mut s).await.contains("chunk 2"), "a request in progress is never evicted");
    }
    wait_for(|| server.served.open() == 0, "every place free").await;
    assert!(get_from(6, server.addr, "/who").await.starts_with("HTTP/1.1 200"));
    drop(held);
    server.stop.cancel();
    tokio::time::timeout(BOUND, server.task).await.expect("serve returns after its shutdown").unwrap();
}

#[tokio::test]
async fn https_marks_its_requests_adds_hsts_and_tells_plain_http_clients_to_use_https() {
    let tls = Tls::new();
    let https = start_over(Limits::default(), tls.transport.clone()).await;
    let answer = tls.get_from(1, https.addr, "/tls").await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("over TLS: true"), "{answer:?}");
    assert!(answer.contains("strict-transport-security: max-age=31536000\r\n"), "{answer:?}");
    let plain = get_from(1, https.addr, "/tls").await;
    assert!(plain.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{plain:?}");
    assert!(plain.ends_with("\r\n\r\nThis port speaks HTTPS: open it with https:// in the address.\n"), "{plain:?}");
    assert_eq!(https.served.tls_refused(), (1, 0, 0), "counted as plain HTTP");
    let mut metrics = ds_runtime::prometheus::Writer::default();
    https.served.write_metrics(&mut metrics, "t");
    let text = metrics.finish();
    assert!(text.contains("t_https_connections_refused_total{reason=\"plain_http\"} 1\n"), "{text}");
    // Plain HTTP on a plain port: no mark, no HSTS.
    let http = start(Limits::default()).await;
    let answer = get_from(1, http.addr, "/tls").await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("over TLS: false"), "{answer:?}");
    assert!(!answer.contains("strict-transport-security"), "{answer:?}");
    let mut metrics = ds_runtime::prometheus::Writer::default();
    http.served.write_metrics(&mut metrics, "t");
    assert!(!metrics.finish().contains("https"), "a plain server reports no HTTPS counts");
}

#[tokio::test]
async fn unfinished_handshakes_hold_their_places_are_evicted_first_and_closed_at_the_header_timeout() {
    let tls = Tls::new();
    let limits = Limits { header_read_timeout: BOUND * 2, max_connections: 4, max_per_client: 2 };
    let server = start_over(limits, tls.transport.clone()).await;
    // 127.0.0.2 holds its two places: one sends nothing, one half a ClientHello.
    let mut held = vec![connect_from(2, server.addr).await, connect_from(2, server.addr).await];
    held[1].write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    wait_for(|| server.served.open() == 2, "two handshakes held").await;
    let mut third = connect_from(2, server.addr).await;
    assert_eq!(read_to_close(&mut third).await, "", "a third connection from the same address is closed unread");
    assert_eq!(server.served.refused(), (0, 1));
    let answer = tls.get_from(3, server.addr, "/who").await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.3"), "{answer:?}");
    // Two more addresses fill the server: a new TLS client takes the oldest handshake's place.
    held.push(connect_from(4, server.addr).await);
    held.push(connect_from(5, server.addr).await);
    wait_for(|| server.served.open() == 4, "four handshakes held").await;
    let answer = tls.get_from(6, server.addr, "/who").await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.6"), "{answer:?}");
    assert_eq!(server.served.evicted(), 1);
    assert_eq!(read_to_close(&mut held[0]).await, "", "the oldest unfinished handshake was closed for it");

    // At the header-read timeout, unfinished handshakes are closed.
    let short = Limits { header_read_timeout: HEADER_TIMEOUT, ..Limits::default() };
    let server = start_over(short, tls.transport.clone()).await;
    let (mut silent, mut half) = (connect_from(1, server.addr).await, connect_from(1, server.addr).await);
    half.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = Instant::now();
    let (a, b) = tokio::join!(read_to_close(&mut silent), read_to_close(&mut half));
    let took = started.elapsed();
    assert!(took >= HEADER_TIMEOUT - Duration::from_millis(50), "closed after {took:?}, before the timeout");
    assert_eq!((a.as_str(), b.as_str()), ("", ""));
    wait_for(|| server.served.open() == 0, "every connection closed").await;
    assert_eq!(server.served.tls_refused(), (0, 0, 2), "counted as timed out");
}

/// Polls `done` every 10 ms until it holds; panics past [`BOUND`].
async fn wait_for(done: impl Fn() -> bool, what: &str) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < BOUND, "{what}: not within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
