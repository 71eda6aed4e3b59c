//! WebRTC viewers (WHEP): the one encoder's H.264, from the [`Feed`], to browsers with a
//! fraction of a second of delay, beside HLS and without a second encode.
//!
//! str0m is sans-IO, so the viewers live here in the streamer process (they carry on across
//! worker restarts: a new run is a jump in the timestamps, re-based in [`session`]) and all of
//! them share ONE UDP port: it is bound once on each offered address ([`MediaSockets`]), and
//! [`route`] tells whose each datagram is (the ICE username of a STUN request first, then the
//! peer's address). A firewall rule for WebRTC is then one line: `webrtc_udp_port`. Where no
//! UDP gets through, media may go over TCP instead ([`tcp`], ICE-TCP on `webrtc_tcp_port`).
//!
//! The streamer is ICE-lite: it only answers the browser's checks on its host candidates,
//! which is all a server on an address the browser can reach needs.

pub mod route;
pub mod session;
pub mod tcp;
pub mod whep;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ds_config::StreamerConfig;
use ds_runtime::Shutdown;
use ds_wire::health::{WebrtcReport, WebrtcViewer};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, TcpType};
use str0m::{Candidate, IceCreds, Rtc};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::feed::Feed;
use route::{Datagram, Routes};

/// The largest SDP offer accepted (a browser's is a few KiB).
pub const MAX_OFFER_BYTES: usize = 64 << 10;
/// Datagrams queued for one viewer before more are dropped (its task is behind).
pub(crate) const INBOX: usize = 256;
/// A UDP datagram cannot be larger.
const MAX_DATAGRAM: usize = 65_535;

/// Why an offer was refused; each is a 4xx (or 503) that names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("the offer is not SDP: {0}")]
    NotSdp(String),
    #[error("the offer has no video m-line; offer one video transceiver (recvonly)")]
    NoVideo,
    #[error("the offer's video does not receive (its direction is {0}); offer it recvonly or sendrecv")]
    NotReceiving(String),
    #[error("the offer's video has no H.264 with packetization-mode=1, the only codec this stream is in")]
    NoH264,
    #[error("the offer could not be accepted: {0}")]
    Refused(String),
    #[error("{viewers} WebRTC viewers are watching, the most allowed (max_webrtc_viewers); try again later or use HLS")]
    Full { viewers: usize },
    #[error("WebRTC is turned off (max_webrtc_viewers is 0); use HLS")]
    Off,
}

/// What a new viewer gets back.
#[derive(Debug)]
pub struct Answer {
    pub id: String,
    pub sdp: String,
}

/// The UDP port on each offered address, and the TCP one.
#[derive(Debug)]
pub struct MediaSockets {
    sockets: Vec<Arc<UdpSocket>>,
    port: u16,
    /// Taken by [`Viewers::start`], which serves them.
    tcp: Vec<TcpListener>,
    tcp_addrs: Vec<SocketAddr>,
}

impl MediaSockets {
    /// Binds `port` (UDP) and `tcp_port` on every address (0: a free port, then the same one
    /// on the rest). A TCP port that cannot be had leaves media on UDP only.
    pub async fn bind(addresses: &[IpAddr], port: u16, tcp_port: u16) -> io::Result<MediaSockets> {
        let mut sockets = Vec::new();
        let mut port = port;
        for &ip in addresses {
            let addr = SocketAddr::new(ip, port);
            let socket = UdpSocket::bind(addr).await.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot bind the WebRTC UDP port on {addr}: {e} (set webrtc_udp_port or webrtc_addresses)"),
                )
            })?;
            port = socket.local_addr()?.port();
            sockets.push(Arc::new(socket));
        }
        let (mut tcp, mut tcp_addrs, mut tcp_port) = (Vec::new(), Vec::new(), tcp_port);
        for &ip in addresses {
            let addr = SocketAddr::new(ip, tcp_port);
            // Without it, viewers whose UDP is blocked cannot play; the others still can.
            let listener = match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cannot listen on the WebRTC TCP port; media over UDP only (set webrtc_tcp_port)");
                    return Ok(MediaSockets { sockets, port, tcp: Vec::new(), tcp_addrs: Vec::new() });
                }
            };
            let local = listener.local_addr()?;
            tcp_port = local.port();
            tcp.push(listener);
            tcp_addrs.push(local);
        }
        Ok(MediaSockets { sockets, port, tcp, tcp_addrs })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.iter().filter_map(|s| s.local_addr().ok()).collect()
    }

    /// The TCP port's addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// The socket bound on `local`, to send from it.
    fn by_addr(&self, local: SocketAddr) -> Option<&Arc<UdpSocket>> {
        self.sockets.iter().find(|s| s.local_addr().ok() == Some(local))
    }
}

/// The addresses offered when `webrtc_addresses` is not set: every address of the machine's
/// interfaces that is up, loopback included (a browser on the kiosk itself), link-local IPv6
/// left out (it needs a scope a browser's candidate cannot carry).
pub fn machine_addresses() -> io::Result<Vec<IpAddr>> {
    use nix::net::if_::InterfaceFlags;
    let mut out = Vec::new();
    for a in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        if !a.flags.contains(InterfaceFlags::IFF_UP) {
            continue;
        }
        let Some(addr) = a.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let link_local_v6 = matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
        if !link_local_v6 && !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

/// The viewers: the registry the HTTP handlers and the health API use. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Viewers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    feed: Feed,
    sockets: MediaSockets,
    config: watch::Receiver<Arc<StreamerConfig>>,
    shutdown: Shutdown,
    sessions: Mutex<HashMap<String, Slot>>,
    routes: Mutex<Routes>,
    /// The open ICE-TCP connections by (local, peer) address: their framed packets to send.
    tcp: Mutex<HashMap<(SocketAddr, SocketAddr), TcpOutbox>>,
}

/// Framed packets for one ICE-TCP connection, written by its task.
type TcpOutbox = mpsc::Sender<Vec<u8>>;

#[derive(Debug)]
struct Slot {
    /// Dropping it ends the session (its inbox closes).
    inbox: mpsc::Sender<Datagram>,
    stats: Arc<Mutex<WebrtcViewer>>,
}

impl Viewers {
    /// Binds the media port on the configured addresses and starts reading it.
    pub async fn start(
        feed: Feed,
        config: watch::Receiver<Arc<StreamerConfig>>,
        shutdown: Shutdown,
    ) -> io::Result<Viewers> {
        let (addresses, port, tcp_port) = {
            let c = config.borrow();
            (c.webrtc_addresses.clone(), c.webrtc_udp_port, c.webrtc_tcp_port)
        };
        let addresses = match addresses {
            Some(a) => a,
            None => machine_addresses()?,
        };
        let mut sockets = MediaSockets::bind(&addresses, port, tcp_port).await?;
        let listeners = std::mem::take(&mut sockets.tcp);
        let viewers = Viewers {
            inner: Arc::new(Inner {
                feed,
                sockets,
                config,
                shutdown,
                sessions: Mutex::default(),
                routes: Mutex::default(),
                tcp: Mutex::default(),
            }),
        };
        for socket in &viewers.inner.sockets.sockets {
            tokio::spawn(receive(Arc::downgrade(&viewers.inner), socket.clone(), viewers.inner.shutdown.clone()));
        }
        for listener in listeners {
            tokio::spawn(tcp::serve(Arc::downgrade(&viewers.inner), listener, viewers.inner.shutdown.clone()));
        }
        tracing::info!(tcp = ?viewers.inner.sockets.tcp_addrs(), "WebRTC media over TCP (ICE-TCP) where UDP cannot reach");
        Ok(viewers)
    }

    /// The media port and the addresses it is bound on.
    pub fn media_addrs(&self) -> Vec<SocketAddr> {
        self.inner.sockets.local_addrs()
    }

    /// A new viewer from its SDP offer: the answer and the session's id.
    pub fn open(&self, offer: &str) -> Result<Answer, OfferError> {
        let max = self.inner.config.borrow().max_webrtc_viewers as usize;
        if max == 0 {
            return Err(OfferError::Off);
        }
        // Counted again when the slot is taken, under the lock; this spares the work.
        let viewers = self.count();
        if viewers >= max {
            return Err(OfferError::Full { viewers });
        }
        let video_mids = video_mids(offer);
        let parsed = SdpOffer::from_sdp_string(offer).map_err(|e| OfferError::NotSdp(e.to_string()))?;
        if video_mids.is_empty() {
            return Err(OfferError::NoVideo);
        }
        let creds = IceCreds::new();
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds.clone())
            .clear_codecs()
            .enable_h264(true)
            .set_stats_interval(Some(session::STATS_INTERVAL))
            .build(Instant::now());
        for addr in self.inner.sockets.local_addrs() {
            match Candidate::host(addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "cannot offer this address to WebRTC viewers"),
            }
        }
        for &addr in self.inner.sockets.tcp_addrs() {
            match Candidate::builder().tcp().host(addr).tcptype(TcpType::Passive).build() {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "cannot offer this address to WebRTC viewers over TCP"),
            }
        }
        let answer = rtc.sdp_api().accept_offer(parsed).map_err(|e| OfferError::Refused(e.to_string()))?;
        let (mid, pt) = choose_video(&mut rtc, &video_mids)?;

        let id = session_id();
        let (inbox_tx, inbox) = mpsc::channel(INBOX);
        let stats = Arc::new(Mutex::new(WebrtcViewer { id: id.clone(), ..WebrtcViewer::default() }));
        {
            let mut sessions = lock(&self.inner.sessions);
            if sessions.len() >= max {
                return Err(OfferError::Full { viewers: sessions.len() });
            }
            sessions.insert(id.clone(), Slot { inbox: inbox_tx, stats: stats.clone() });
        }
        lock(&self.inner.routes).add(&creds.ufrag, &id);
        let units = self.inner.feed.subscribe();
        let params = session::Session {
            id: id.clone(),
            rtc,
            mid,
            pt,
            inbox,
            units,
            feed: self.inner.feed.clone(),
            stats,
            shutdown: self.inner.shutdown.clone(),
        };
        let sockets = SocketsRef(self.inner.clone());
        tokio::spawn(async move {
            let id = params.id.clone();
            let reason = params.run(&sockets).await;
            tracing::info!(viewer = %id, %reason, "WebRTC viewer left");
            sockets.0.forget(&id);
        });
        tracing::info!(viewer = %id, mid = %mid, pt = %pt, "WebRTC viewer joined");
        Ok(Answer { id, sdp: answer.to_sdp_string() })
    }

    /// Ends a viewer's session (WHEP DELETE); whether it existed.
    pub fn close(&self, id: &str) -> bool {
        self.inner.forget(id)
    }

    /// Viewers now.
    pub fn count(&self) -> usize {
        lock(&self.inner.sessions).len()
    }

    /// Each viewer's state and figures, for the health API.
    pub fn report(&self) -> WebrtcReport {
        let mut viewers: Vec<WebrtcViewer> =
            lock(&self.inner.sessions).values().map(|s| lock(&s.stats).clone()).collect();
        viewers.sort_by(|a, b| a.id.cmp(&b.id));
        WebrtcReport {
            max_viewers: self.inner.config.borrow().max_webrtc_viewers,
            udp_port: self.inner.sockets.port(),
            viewers,
        }
    }
}

/// What a session task holds of the registry: the sockets to send from. The registry itself
/// outlives every session (a session keeps it alive until it ends).
#[derive(Debug)]
pub struct SocketsRef(Arc<Inner>);

impl SocketsRef {
    /// Sends `data` from the local address `from` (a host candidate) to `to`, over UDP or the
    /// ICE-TCP connection between them. A full socket buffer or queue drops the packet: RTP is
    /// loss-tolerant and the peer asks again.
    pub fn send(&self, proto: Protocol, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        if proto != Protocol::Udp {
            let conn = lock(&self.0.tcp).get(&(from, to)).cloned();
            match (conn, tcp::frame(data)) {
                (Some(conn), Some(framed)) => {
                    let _ = conn.try_send(framed);
                }
                _ => tracing::debug!(%from, %to, "no WebRTC TCP connection for this packet"),
            }
            return;
        }
        match self.0.sockets.by_addr(from) {
            Some(s) => {
                if let Err(e) = s.try_send_to(data, to)
                    && e.kind() != io::ErrorKind::WouldBlock
                {
                    tracing::debug!(%from, %to, error = %e, "WebRTC datagram not sent");
                }
            }
            None => tracing::debug!(%from, "no media socket on this address"),
        }
    }
}

impl Inner {
    /// Drops a session's slot and routes; whether it was there.
    fn forget(&self, id: &str) -> bool {
        let had = lock(&self.sessions).remove(id).is_some();
        lock(&self.routes).remove(id);
        had
    }
}

/// Reads one media socket, handing each datagram to the session it belongs to.
async fn receive(inner: std::sync::Weak<Inner>, socket: Arc<UdpSocket>, shutdown: Shutdown) {
    let Ok(local) = socket.local_addr() else { return };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, source) = tokio::select! {
            _ = shutdown.wait() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors of earlier sends surface here on Linux; keep reading.
                    tracing::debug!(%local, error = %e, "WebRTC socket read failed");
                    continue;
                }
            },
        };
        let Some(inner) = inner.upgrade() else { return };
        let data = &buf[..n];
        let Some(id) = lock(&inner.routes).route(local, source, data) else { continue };
        let inbox = lock(&inner.sessions).get(&id).map(|s| s.inbox.clone());
        if let Some(inbox) = inbox {
            // A full inbox drops the datagram, as a full network queue would.
            let datagram =
                Datagram { proto: Protocol::Udp, source, destination: local, at: Instant::now(), data: data.to_vec() };
            let _ = inbox.try_send(datagram);
        }
    }
}

/// The mids of the offer's video m-lines, in order.
fn video_mids(sdp: &str) -> Vec<String> {
    let mut mids = Vec::new();
    let mut in_video = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            in_video = m.starts_with("video ");
        } else if in_video && let Some(mid) = line.strip_prefix("a=mid:") {
            mids.push(mid.to_owned());
        }
    }
    mids
}

/// The first video m-line we can send on, and its H.264 payload type (packetization mode 1,
/// constrained baseline preferred: every browser decodes it).
fn choose_video(rtc: &mut Rtc, mids: &[String]) -> Result<(Mid, Pt), OfferError> {
    let mut not_receiving = None;
    for m in mids {
        let mid = Mid::from(m.as_str());
        let Some(media) = rtc.media(mid) else { continue };
        if media.kind() != MediaKind::Video {
            continue;
        }
        let direction = media.direction();
        if !matches!(direction, Direction::SendOnly | Direction::SendRecv) {
            not_receiving = Some(format!("{direction:?}"));
            continue;
        }
        let Some(writer) = rtc.writer(mid) else { continue };
        let mut h264: Vec<_> = writer
            .payload_params()
            .filter(|p| p.spec().codec == Codec::H264 && p.spec().format.packetization_mode == Some(1))
            .map(|p| (p.pt(), p.spec().format.profile_level_id))
            .collect();
        h264.sort_by_key(|(_, profile)| profile.map(|p| p >> 8) != Some(0x42e0));
        if let Some(&(pt, _)) = h264.first() {
            return Ok((mid, pt));
        }
        return Err(OfferError::NoH264);
    }
    Err(not_receiving.map_or(OfferError::NoVideo, |d| OfferError::NotReceiving(d.to_lowercase())))
}

/// 128 random bits, hex: the session's name in its URL, not guessable by other viewers.
fn session_id() -> String {
    let mut bytes = [0u8; 16];
    // No entropy is a broken machine; a time-based id still works as a name.
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes.copy_from_slice(&t.as_nanos().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_mids_are_read_from_video_sections_only() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
        assert_eq!(video_mids(sdp), vec!["1".to_owned()]);
        assert!(video_mids("garbage").is_empty());
    }

    /// A viewer that connects and then falls silent (a crashed tab, a lost network: no DELETE,
    /// no DTLS close) is dropped after its ICE timeout and its slot is free again. The browser
    /// here is str0m itself, a full ICE agent on its own loopback socket.
    #[tokio::test]
    async fn a_viewer_that_falls_silent_is_dropped_after_its_ice_timeout() {
        use str0m::change::SdpAnswer;
        use str0m::{Event, Input, Output};
        let config = StreamerConfig {
            max_webrtc_viewers: 1,
            webrtc_udp_port: 0,
            webrtc_tcp_port: 0,
            webrtc_addresses: Some(vec!["127.0.0.1".parse().unwrap()]),
            ..StreamerConfig::default()
        };
        let (_keep, config) = watch::channel(Arc::new(config));
        let viewers = Viewers::start(Feed::new(), config, Shutdown::new()).await.unwrap();

        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let mut browser = Rtc::builder().build(Instant::now());
        browser.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = browser.sdp_api();
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        let answer = viewers.open(&offer.to_sdp_string()).unwrap();
        browser.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer.sdp).unwrap()).unwrap();

        let mut buf = vec![0u8; MAX_DATAGRAM];
        let connect = async {
            loop {
                let deadline = match browser.poll_output().unwrap() {
                    Output::Transmit(t) => {
                        socket.send_to(&t.contents, t.destination).await.unwrap();
                        continue;
                    }
                    Output::Event(Event::Connected) => return,
                    Output::Event(_) => continue,
                    Output::Timeout(t) => t,
                };
                let input = tokio::select! {
                    r = socket.recv_from(&mut buf) => {
                        let (n, source) = r.unwrap();
                        let contents = buf[..n].try_into().unwrap();
                        Input::Receive(Instant::now(), str0m::net::Receive {
                            proto: Protocol::Udp, source, destination: local, contents,
                        })
                    }
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => Input::Timeout(Instant::now()),
                };
                browser.handle_input(input).unwrap();
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), connect).await.expect("connected within 10 s");
        let silent_since = Instant::now();
        assert_eq!(viewers.count(), 1);
        assert!(matches!(viewers.open(&offer.to_sdp_string()), Err(OfferError::Full { viewers: 1 })));

        // The browser says nothing more.
        let dropped = async {
            while viewers.count() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(40), dropped).await.expect("dropped within 40 s");
        let after = silent_since.elapsed();
        // str0m's ICE-lite agent keeps a pair for 15 s after its last binding request.
        assert!(after >= std::time::Duration::from_secs(10), "not dropped while its ICE was still fresh: {after:?}");
        eprintln!("a silent viewer was dropped after {after:?}");
        assert!(viewers.open(&offer.to_sdp_string()).is_ok(), "its slot is free again");
    }

    #[test]
    fn session_ids_are_long_and_distinct() {
        let (a, b) = (session_id(), session_id());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
