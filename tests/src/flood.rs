//! Clients that open connections and hold them, as a broken or hostile LAN client does: each
//! connection sends half a request line and nothing more. They connect from an address of
//! 127.0.0.0/8 other than 127.0.0.1, so a server's cap per client address can be told from
//! its cap over all clients (and the tests' own requests, from 127.0.0.1, are another client).

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};

use rustix::net::{AddressFamily, SocketType};

/// What each held connection sends: the start of a request line, never finished.
const HALF_REQUEST: &[u8] = b"GET /api/health HT";

/// Connections from one address, each holding half a request.
#[derive(Debug)]
pub struct Flood {
    streams: Vec<TcpStream>,
}

impl Flood {
    /// Opens `count` connections to 127.0.0.1:`port` from `from` (in 127.0.0.0/8). A
    /// connection the server closes at once still counts (see [`Flood::closed`]).
    ///
    /// # Panics
    /// If a connection cannot be made (the server is not listening, or this process is out of
    /// descriptors).
    pub fn hold(port: u16, from: Ipv4Addr, count: usize) -> Flood {
        assert!(from.is_loopback(), "a flood comes from loopback only, not {from}");
        let streams = (0..count)
            .map(|_| {
                let mut stream = connect_from(from, port).unwrap_or_else(|e| panic!("connect from {from}: {e}"));
                // A server that closed the connection at once may reset the write: still held
                // as far as the count goes.
                let _ = stream.write_all(HALF_REQUEST);
                stream.set_nonblocking(true).expect("a non-blocking socket");
                stream
            })
            .collect();
        Flood { streams }
    }

    /// How many connections were opened.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// How many of them the server has closed (end of file or reset) so far.
    pub fn closed(&self) -> usize {
        let mut buf = [0u8; 1];
        self.streams
            .iter()
            .filter(|s| match s.peek(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            })
            .count()
    }
}

/// A TCP connection to 127.0.0.1:`port` whose source address is `from` (in 127.0.0.0/8).
///
/// # Errors
/// As `socket`, `bind` and `connect` fail.
pub fn connect_from(from: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    connect_with(from, port, None)
}

/// [`connect_from`] with a receive buffer of about `bytes` (the kernel doubles it and keeps a
/// minimum), set before connecting so the window the server sees is small from the start: a
/// slow reader that stops reading stalls the server's writes after little data.
///
/// # Errors
/// As `socket`, `setsockopt`, `bind` and `connect` fail.
pub fn connect_slow_reader(from: Ipv4Addr, port: u16, bytes: usize) -> std::io::Result<TcpStream> {
    connect_with(from, port, Some(bytes))
}

fn connect_with(from: Ipv4Addr, port: u16, receive_buffer: Option<usize>) -> std::io::Result<TcpStream> {
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None)?;
    if let Some(bytes) = receive_buffer {
        rustix::net::sockopt::set_socket_recv_buffer_size(&fd, bytes)?;
    }
    rustix::net::bind(&fd, &SocketAddrV4::new(from, 0))?;
    rustix::net::connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    Ok(TcpStream::from(fd))
}
