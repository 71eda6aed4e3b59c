//! Loopback TCP peers that are not cameras, for the failures a prober must name: one that
//! accepts connections and never says a word (a camera whose firmware hangs: every probe
//! step must end in its timeout), and one that reads the first request and hangs up without
//! an answer (a connection that breaks: the camera is unreachable, though the port is open).
//! Both stop when dropped.

use std::io::Read as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the accepting thread looks for a new connection or the stop flag.
const POLL: Duration = Duration::from_millis(10);
/// Connections a silent peer holds open at most; older ones are closed.
const MAX_HELD: usize = 256;
/// How long a hanging-up peer waits for the end of the first request.
const REQUEST_WAIT: Duration = Duration::from_secs(2);
/// The most it reads of a request before hanging up.
const MAX_REQUEST: usize = 16 * 1024;

/// What the peer does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Holds it open and never writes.
    Silent,
    /// Reads the first request (to its blank line) and closes it without a word. Reading
    /// first makes the close an orderly one (the client reads end-of-file); closing with the
    /// request unread would reset the connection instead, depending on timing.
    HangUp,
}

/// A peer on 127.0.0.1 behaving as [`Behaviour`] says.
#[derive(Debug)]
pub struct TcpPeer {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpPeer {
    /// # Panics
    /// If it cannot listen on 127.0.0.1.
    pub fn start(behaviour: Behaviour) -> TcpPeer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("listen on 127.0.0.1");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("listening port").port();
        let (accepted, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, stopped) = (accepted.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("tcp-peer-{port}"))
            .spawn(move || {
                let mut held: Vec<TcpStream> = Vec::new();
                while !stopped.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            count.fetch_add(1, Ordering::Relaxed);
                            match behaviour {
                                Behaviour::Silent => {
                                    if held.len() == MAX_HELD {
                                        held.remove(0);
                                    }
                                    held.push(stream);
                                }
                                Behaviour::HangUp => read_request(stream),
                            }
                        }
                        Err(_) => std::thread::sleep(POLL),
                    }
                }
            })
            .expect("start the peer's thread");
        TcpPeer { port, accepted, stop, thread: Some(thread) }
    }

    /// `SCHEME://127.0.0.1:PORT/PATH`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}/{path}", self.port)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// Reads up to the end of a request head (bounded in size and time), then drops the stream.
fn read_request(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(REQUEST_WAIT));
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while got.len() < MAX_REQUEST && !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

impl Drop for TcpPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
