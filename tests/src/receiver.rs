//! A real HTTP receiver for webhook tests: listens on 127.0.0.1, records every request
//! (method, path, headers, body) and answers each with the next status of a script.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::wait::wait_until;

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const ACCEPT_POLL: Duration = Duration::from_millis(10);
/// Larger bodies are refused (413): a webhook payload is a few kB.
const MAX_BODY: usize = 1 << 20;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: Vec<Request>,
    served: usize,
    /// Set by [`Receiver::answer_from_now`]: the status of every request from then on.
    from_now: Option<u16>,
}

/// A running receiver; stopped when dropped.
#[derive(Debug)]
pub struct Receiver {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Answers the n-th request with `statuses[n]`, and every later one with the last status.
    pub fn start(statuses: &[u16]) -> Receiver {
        assert!(!statuses.is_empty(), "give at least one status");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let statuses = statuses.to_vec();
        let thread = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &shared, &statuses),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
                        Err(_) => std::thread::sleep(ACCEPT_POLL),
                    }
                }
            })
        };
        Receiver { port, shared, stop, thread: Some(thread) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers every request from now on with `status` (a receiver that was down comes up);
    /// returns how many requests were answered before, so the caller can tell them apart.
    pub fn answer_from_now(&self, status: u16) -> usize {
        let mut s = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.from_now = Some(status);
        s.requests.len()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).requests.clone()
    }

    /// Waits (at most `timeout`) until at least `count` requests arrived; returns them all.
    /// Panics with those that did arrive otherwise.
    #[track_caller]
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Request> {
        wait_until(&format!("{count} requests at the receiver"), timeout, || {
            let requests = self.requests();
            if requests.len() >= count {
                Ok(requests)
            } else {
                Err(format!("{} arrived: {requests:#?}", requests.len()))
            }
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request, records it, answers and closes the connection.
fn serve(stream: TcpStream, shared: &Mutex<Shared>, statuses: &[u16]) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(request) = read_request(&stream) else { return };
    let status = {
        let mut s = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let status = s.from_now.unwrap_or(statuses[s.served.min(statuses.len() - 1)]);
        s.served += 1;
        s.requests.push(request);
        status
    };
    let body = format!("{{\"status\":{status}}}");
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else { return Err(bad("no request line")) };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Err(bad("headers cut short"));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    if length > MAX_BODY {
        return Err(bad("body too large"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Request { method, path, headers, body })
}
