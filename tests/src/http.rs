//! A minimal HTTP/1.1 GET for tests, over std's TcpStream: enough to read the project's own
//! JSON and playlists on loopback without pulling a client library into the harness.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// A response: status code, headers (lower-cased names) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// GETs `path` from 127.0.0.1:`port`; `None` if nothing answers.
pub fn get(port: u16, path: &str) -> Option<Response> {
    request(port, "GET", path, &[], None)
}

/// POSTs a JSON body with extra headers (`("Cookie", "…")`, `("Origin", "…")`).
pub fn post_json(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> Option<Response> {
    request(port, "POST", path, headers, Some(body))
}

/// One request; `None` if nothing answers (or no complete response head arrived).
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Option<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    send(&mut s, port, method, path, headers, body)?;
    read_to_end(s)
}

/// How much of an answer [`request_from`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// All of it, until the server closes the connection.
    ToEnd,
    /// Its head, and its body only when it has a `Content-Length`: for an answer that may never
    /// end (server-sent events, a log stream). The connection is closed then.
    Head,
}

/// [`request`] from the loopback address `from` (another client than 127.0.0.1, as a server
/// that counts per client address sees it), reading what `read` says.
pub fn request_from(
    from: Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    read: Read,
) -> Option<Response> {
    let mut s = crate::flood::connect_from(from, port).ok()?;
    send(&mut s, port, method, path, headers, body)?;
    match read {
        Read::ToEnd => read_to_end(s),
        Read::Head => read_answer(&mut s),
    }
}

/// Reads one answer's head, and its body when it has a `Content-Length` (not a stream's, which
/// may never end); `None` if no complete head arrives.
pub fn read_answer(s: &mut TcpStream) -> Option<Response> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if raw.len() > 64 * 1024 || s.read(&mut byte).ok()? == 0 {
            return None;
        }
        raw.push(byte[0]);
    }
    let (status, headers) = parse_head(&raw[..raw.len() - 4])?;
    let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = vec![0u8; length.unwrap_or(0)];
    s.read_exact(&mut body).ok()?;
    Some(Response { status, headers, body })
}

/// Writes the request (`Connection: close`, a body as JSON).
fn send(
    s: &mut TcpStream,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Option<()> {
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    if let Some(b) = body {
        // A server may answer (413, 429) before reading the whole body and then close; the
        // write fails but its answer is waiting to be read.
        let _ = s.write_all(b.as_bytes());
    }
    Some(())
}

/// Status and headers (lower-cased names) of a response head without its blank line.
fn parse_head(raw: &[u8]) -> Option<(u16, Vec<(String, String)>)> {
    let head = String::from_utf8_lossy(raw).into_owned();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((status, headers))
}

/// Reads the whole answer until the server closes the connection.
fn read_to_end(mut s: TcpStream) -> Option<Response> {
    // Keep what arrived even if the connection is then reset (an answer sent before the
    // request body was read ends that way).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let (status, headers) = parse_head(&raw[..split])?;
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Some(Response { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
