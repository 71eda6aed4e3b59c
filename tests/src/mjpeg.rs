//! A real MJPEG/HTTP camera for the camera tests: an HTTP/1.1 server on 127.0.0.1 (std
//! threads, one per connection) that serves real JPEGs, encoded at start by GStreamer's
//! jpegenc (gst-launch-1.0 from gstreamer1.0-tools).
//!
//! Paths:
//! - `/live`: `multipart/x-mixed-replace` of changing frames (a moving ball), 10 per second
//! - `/frozen`: the same, but every frame is the same picture
//! - `/stamped`: one still picture (colour bars), each frame's JPEG with its own comment
//!   segment, as a camera that stamps a counter or the time into the file: the bytes differ,
//!   the picture does not
//! - `/black`: a black picture (a covered lens)
//! - `/noisy`: a still picture (colour bars) with sensor noise over it, as a quiet room at
//!   night
//! - `/snapshot.jpg`: one `image/jpeg` per request, a different picture each time
//! - `/auth`: `/live` behind Basic authentication ([`USER`], [`PASSWORD`]), else 401
//! - `/headers-only`: a multipart answer's headers, then nothing (the connection stays open)
//! - `/garbage`: a multipart stream whose parts are not JPEGs
//! - `/switchable`: whatever [`Mode`] was set last ([`MjpegServer::set_mode`]), for
//!   recovery tests
//! - anything else: 404
//!
//! [`MjpegServer::start_tls`] serves the same paths over https, with a certificate signed by a
//! private CA made at start ([`crate::smtp::TlsFiles`]): to a client it is what an IP
//! camera's self-signed certificate is, an issuer no trust store knows.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::smtp::TlsFiles;

pub const USER: &str = "cam-user";
pub const PASSWORD: &str = "cam-pa55";
const BOUNDARY: &str = "frame";
const FRAME_INTERVAL: Duration = Duration::from_millis(100);
const FRAME_COUNT: usize = 8;
const FRAME_WIDTH: u32 = 160;
const FRAME_HEIGHT: u32 = 120;
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What `/switchable` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Frozen,
    Stamped,
    Noisy,
    Black,
    NotFound,
    HeadersOnly,
    Garbage,
}

#[derive(Debug, Default)]
struct Shared {
    mode: Mutex<Option<Mode>>,
    requests: Mutex<Vec<(String, String)>>,
    stop: AtomicBool,
}

/// A running MJPEG server; stopped when dropped.
#[derive(Debug)]
pub struct MjpegServer {
    pub port: u16,
    /// `http` or `https`.
    scheme: &'static str,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl MjpegServer {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> MjpegServer {
        MjpegServer::start_on(0)
    }

    /// Listens on `port` of 127.0.0.1 (0: a free one); `/switchable` starts as [`Mode::Live`].
    pub fn start_on(port: u16) -> MjpegServer {
        MjpegServer::launch(port, None)
    }

    /// The same camera over https on a free port of 127.0.0.1, with a certificate for
    /// 127.0.0.1 that a private CA signed (made now with openssl; see the module doc).
    pub fn start_tls() -> MjpegServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = tls_config(&TlsFiles::create(dir.path()));
        MjpegServer::launch(0, Some(config))
    }

    fn launch(port: u16, tls: Option<Arc<ServerConfig>>) -> MjpegServer {
        let frames = frames();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the MJPEG server");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared { mode: Mutex::new(Some(Mode::Live)), ..Shared::default() });
        let accept_shared = shared.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let shared = accept_shared.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    if conn.set_read_timeout(Some(READ_TIMEOUT)).is_err() {
                        return;
                    }
                    match tls {
                        None => serve(conn, &shared, frames),
                        // The handshake happens on the first read; a client that refuses the
                        // certificate ends it there, before any request.
                        Some(config) => match ServerConnection::new(config) {
                            Ok(session) => serve(StreamOwned::new(session, conn), &shared, frames),
                            Err(e) => eprintln!("mjpeg test server: no TLS session: {e}"),
                        },
                    }
                });
            }
        });
        MjpegServer { port, scheme, shared, accept: Some(accept) }
    }

    /// `http://127.0.0.1:PORT/PATH` (`path` without the leading slash; https for
    /// [`MjpegServer::start_tls`]).
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}/{path}", self.scheme, self.port)
    }

    /// `/auth` with credentials in the URL.
    pub fn auth_url(&self, user: &str, password: &str) -> String {
        format!("{}://{user}:{password}@127.0.0.1:{}/auth", self.scheme, self.port)
    }

    /// Changes what `/switchable` does from the next request on.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = Some(mode);
    }

    /// Every request so far as (method, path).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The size of every frame served.
    pub fn frame_size() -> (u32, u32) {
        (FRAME_WIDTH, FRAME_HEIGHT)
    }

    /// Stops accepting; connections end at their next frame.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MjpegServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Real JPEGs of a moving ball, encoded once per test process.
fn frames() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let frames =
            encode(&format!("videotestsrc pattern=ball num-buffers={FRAME_COUNT} ! {}", caps()), "", FRAME_COUNT);
        assert!(frames.windows(2).all(|w| w[0] != w[1]), "the test JPEGs should all differ");
        frames
    })
}

/// One JPEG of colour bars (smpte75: videotestsrc's smpte has a patch of moving noise).
fn still() -> &'static [Vec<u8>] {
    static STILL: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    STILL.get_or_init(|| encode(&format!("videotestsrc pattern=smpte75 num-buffers=1 ! {}", caps()), "", 1))
}

/// One black JPEG.
fn black() -> &'static [Vec<u8>] {
    static BLACK: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BLACK.get_or_init(|| encode(&format!("videotestsrc pattern=black num-buffers=1 ! {}", caps()), "", 1))
}

/// JPEGs of colour bars under a faint layer of snow: sensor noise of a few levels.
fn noisy() -> &'static [Vec<u8>] {
    static NOISY: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    NOISY.get_or_init(|| {
        let caps = caps();
        encode(
            &format!("compositor name=mix sink_1::alpha={NOISE_ALPHA} ! {caps}"),
            &format!(
                "videotestsrc pattern=smpte75 num-buffers={FRAME_COUNT} ! {caps} ! mix. \
                 videotestsrc pattern=snow num-buffers={FRAME_COUNT} ! {caps} ! mix."
            ),
            FRAME_COUNT,
        )
    })
}

/// The opacity of the snow over `/noisy`'s picture.
const NOISE_ALPHA: f64 = 0.06;

fn caps() -> String {
    format!("video/x-raw,width={FRAME_WIDTH},height={FRAME_HEIGHT}")
}

/// `count` JPEGs of what `source` (a gst-launch description ending in raw video, followed by
/// the `branches` that feed it) shows.
fn encode(source: &str, branches: &str, count: usize) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let location = dir.path().join("f%02d.jpg");
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(source.split_whitespace())
        .args(["!", "jpegenc", "!", "multifilesink"])
        .arg(format!("location={}", location.display()))
        .args(branches.split_whitespace())
        .status()
        .expect("gst-launch-1.0 runs (gstreamer1.0-tools, tests/deps.sh)");
    assert!(status.success(), "gst-launch-1.0 could not encode the test JPEGs from {source}");
    (0..count).map(|i| read(&dir.path().join(format!("f{i:02}.jpg")))).collect()
}

/// `jpeg` with a comment segment (COM) naming frame `n` after its start marker.
fn stamp(jpeg: &[u8], n: usize) -> Vec<u8> {
    let text = format!("frame {n}");
    let len = u16::try_from(text.len() + 2).expect("a short comment");
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The server side of TLS with `files`' certificate, through the provider reqwest uses.
fn tls_config(files: &TlsFiles) -> Arc<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect())
        .unwrap_or_else(|e| panic!("read the certificate {}: {e}", files.cert.display()));
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .unwrap_or_else(|e| panic!("read the key {}: {e}", files.key.display()));
    let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the provider's TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a usable certificate and key");
    Arc::new(config)
}

/// A connection of the server: plain TCP, or TLS over it.
trait Connection: Read + Write {
    /// Ends the answer, so a client reading to the end has all of it.
    fn finish(&mut self);
}

impl Connection for TcpStream {
    fn finish(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Connection for StreamOwned<ServerConnection, TcpStream> {
    fn finish(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}

/// Reads the request head; (method, path, authorization header).
fn read_request(conn: &mut impl Read) -> Option<(String, String, Option<String>)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).ok()?;
        if n == 0 || head.len() > MAX_REQUEST_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let auth = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("authorization").then(|| value.trim().to_owned())
    });
    Some((method, path, auth))
}

fn serve(mut conn: impl Connection, shared: &Shared, frames: &[Vec<u8>]) {
    let Some((method, path, auth)) = read_request(&mut conn) else { return };
    shared.requests.lock().unwrap().push((method.clone(), path.clone()));
    let mode = match path.as_str() {
        "/live" => Some(Mode::Live),
        "/frozen" => Some(Mode::Frozen),
        "/stamped" => Some(Mode::Stamped),
        "/noisy" => Some(Mode::Noisy),
        "/black" => Some(Mode::Black),
        "/headers-only" => Some(Mode::HeadersOnly),
        "/garbage" => Some(Mode::Garbage),
        "/switchable" => *shared.mode.lock().unwrap(),
        "/snapshot.jpg" => {
            static NEXT: Mutex<usize> = Mutex::new(0);
            let i = {
                let mut next = NEXT.lock().unwrap();
                *next += 1;
                *next % frames.len()
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                frames[i].len()
            );
            let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(&frames[i]));
            conn.finish();
            return;
        }
        "/auth" => {
            let expected = format!("Basic {}", base64(format!("{USER}:{PASSWORD}").as_bytes()));
            if auth.as_deref() == Some(expected.as_str()) {
                Some(Mode::Live)
            } else {
                let _ = conn.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"camera\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            }
        }
        _ => None,
    };
    let Some(mode) = mode.filter(|m| *m != Mode::NotFound) else {
        let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
        return;
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(head.as_bytes()).is_err() || method == "HEAD" {
        return;
    }
    let garbage = b"this is not a JPEG, just bytes where a picture should be".repeat(20);
    for i in 0.. {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let stamped;
        let body: &[u8] = match mode {
            Mode::Live => &frames[i % frames.len()],
            Mode::Frozen => &frames[0],
            Mode::Stamped => {
                stamped = stamp(&still()[0], i);
                &stamped
            }
            Mode::Black => &black()[0],
            Mode::Noisy => {
                let noisy = noisy();
                &noisy[i % noisy.len()]
            }
            Mode::Garbage => &garbage,
            Mode::HeadersOnly | Mode::NotFound => {
                std::thread::sleep(FRAME_INTERVAL);
                continue;
            }
        };
        let part = format!("--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", body.len());
        let sent =
            conn.write_all(part.as_bytes()).and_then(|()| conn.write_all(body)).and_then(|()| conn.write_all(b"\r\n"));
        if sent.is_err() {
            return;
        }
        std::thread::sleep(FRAME_INTERVAL);
    }
}

/// Standard base64 with padding (for the expected Basic credentials).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b"abc"), "YWJj");
    }
}
