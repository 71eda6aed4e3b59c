//! Whose is this datagram? Every viewer's media arrives on the same UDP port. A browser's
//! first datagrams are STUN binding requests whose USERNAME starts with the ICE username
//! fragment we gave that viewer in its answer; from then on its DTLS, RTP and RTCP come from
//! the address those requests came from.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::Protocol;

/// One datagram for a session.
#[derive(Debug)]
pub struct Datagram {
    /// UDP, or a frame of an ICE-TCP connection.
    pub proto: Protocol,
    pub source: SocketAddr,
    /// The local address it arrived on (a host candidate).
    pub destination: SocketAddr,
    pub at: Instant,
    pub data: Vec<u8>,
}

const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const STUN_HEADER: usize = 20;
const STUN_USERNAME: u16 = 0x0006;

/// The session ids by ICE username fragment and by (local, peer) address.
#[derive(Debug, Default)]
pub struct Routes {
    by_ufrag: HashMap<String, String>,
    by_peer: HashMap<(SocketAddr, SocketAddr), String>,
}

impl Routes {
    pub fn add(&mut self, ufrag: &str, id: &str) {
        self.by_ufrag.insert(ufrag.to_owned(), id.to_owned());
    }

    pub fn remove(&mut self, id: &str) {
        self.by_ufrag.retain(|_, v| v != id);
        self.by_peer.retain(|_, v| v != id);
    }

    /// The session an ICE username fragment of ours was given to.
    pub fn session_of(&self, ufrag: &str) -> Option<String> {
        self.by_ufrag.get(ufrag).cloned()
    }

    /// The session `data` (from `peer`, on `local`) belongs to, learning the peer's address
    /// from a STUN request that names a session.
    pub fn route(&mut self, local: SocketAddr, peer: SocketAddr, data: &[u8]) -> Option<String> {
        if let Some(ufrag) = stun_local_ufrag(data)
            && let Some(id) = self.by_ufrag.get(ufrag)
        {
            self.by_peer.insert((local, peer), id.clone());
            return Some(id.clone());
        }
        self.by_peer.get(&(local, peer)).cloned()
    }
}

/// The local (our) username fragment of a STUN message's USERNAME (`ours:theirs`), if `data`
/// is a STUN message with one.
pub fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    // RFC 5389: the two top bits zero, the magic cookie, a length that fits.
    if data.len() < STUN_HEADER || data[0] & 0xc0 != 0 || data[4..8] != STUN_MAGIC_COOKIE {
        return None;
    }
    let len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let mut attrs = data.get(STUN_HEADER..STUN_HEADER + len)?;
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let alen = u16::from_be_bytes([attrs[2], attrs[3]]) as usize;
        let value = attrs.get(4..4 + alen)?;
        if kind == STUN_USERNAME {
            let name = std::str::from_utf8(value).ok()?;
            return name.split(':').next();
        }
        // Attributes are padded to four bytes.
        let next = (4 + alen).div_ceil(4) * 4;
        attrs = attrs.get(next..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding request with a SOFTWARE attribute of odd length (padding) before USERNAME.
    fn binding_request(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        for (kind, value) in [(0x8022u16, b"abcde".as_slice()), (STUN_USERNAME, username.as_bytes())] {
            attrs.extend_from_slice(&kind.to_be_bytes());
            attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
            attrs.extend_from_slice(value);
            attrs.resize(attrs.len().div_ceil(4) * 4, 0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&STUN_MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn the_local_ufrag_is_read_from_a_binding_request() {
        assert_eq!(stun_local_ufrag(&binding_request("ours:theirs")), Some("ours"));
        // DTLS (first byte 22) and RTP (first byte 0x80) are not STUN.
        assert_eq!(stun_local_ufrag(&[22; 40]), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        // A length beyond the datagram.
        let mut cut = binding_request("ours:theirs");
        cut.truncate(30);
        assert_eq!(stun_local_ufrag(&cut), None);
    }

    #[test]
    fn a_peer_is_routed_by_ufrag_then_by_address() {
        let local: SocketAddr = "127.0.0.1:8889".parse().unwrap();
        let (peer, stranger): (SocketAddr, SocketAddr) =
            ("127.0.0.1:50000".parse().unwrap(), "127.0.0.1:50001".parse().unwrap());
        let mut routes = Routes::default();
        routes.add("ufragA", "a");
        assert_eq!(routes.route(local, peer, &[22; 40]), None, "unknown until its STUN request");
        assert_eq!(routes.route(local, peer, &binding_request("ufragA:x")).as_deref(), Some("a"));
        assert_eq!(routes.route(local, peer, &[22; 40]).as_deref(), Some("a"));
        assert_eq!(routes.route(local, stranger, &[22; 40]), None);
        assert_eq!(routes.route(local, stranger, &binding_request("nobody:x")), None);
        routes.remove("a");
        assert_eq!(routes.route(local, peer, &[22; 40]), None, "gone with its session");
    }
}
