//! The RTSP side of a simulated camera (RFC 2326): OPTIONS, DESCRIBE, SETUP (TCP
//! interleaved only), PLAY, GET_PARAMETER and TEARDOWN on one connection, then the clip as
//! RTP packets in `$`-framed interleaved data on channel 0, paced in real time from a
//! keyframe. One task per connection; nothing is shared between connections but the clip
//! (and, for a server in a test, the record of requests: [`Shared::log`]).
//!
//! Besides `/camN`, four mounts misbehave as cameras do ([`Special`]): `/audio` describes
//! only an audio stream, `/frozen` sends the same coded picture again and again, `/lossy`
//! leaves out three of every four frames between keyframes (its RTP sequence numbers jump),
//! and `/joined` is joined mid-stream, its `RTP-Info` naming an earlier packet than the first
//! it sends, which is the second fragment of a keyframe.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep_until};

use super::clip::{Clip, FPS, NAL_FU_A};

const SERVER: &str = "ds-tests rtsp-sim";
/// Requests larger than this are refused (a camera's request buffer is small too).
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// A session without any request for this long ends, like a camera's session timeout; the
/// connection closes with it.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// The interleaved channel of RTP (RTCP would be the next one).
const RTP_CHANNEL: u8 = 0;
const RTP_PAYLOAD_TYPE: u8 = 96;
const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN";

/// What every connection shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub clip: Clip,
    pub mounts: usize,
    pub start: StartAt,
    /// Every request with its session, when the server keeps a record (a server in a test;
    /// a benchmark's server process keeps none, so its memory does not grow).
    pub log: Option<std::sync::Mutex<Vec<Seen>>>,
    /// When every mount's live picture was at the clip's first frame.
    pub epoch: std::time::Instant,
    /// Each mount's offset into the clip, in frames: independent cameras are not in step,
    /// so their keyframes do not all fall at the same instant.
    pub offsets: Vec<usize>,
    /// Connections open now.
    pub open: std::sync::atomic::AtomicUsize,
}

impl Shared {
    pub fn new(clip: Clip, mounts: usize, start: StartAt, record: bool) -> Shared {
        let len = clip.frames().len();
        let offsets = (0..mounts).map(|_| random_u32() as usize % len).collect();
        let log = record.then(|| std::sync::Mutex::new(Vec::new()));
        Shared { clip, mounts, start, log, epoch: std::time::Instant::now(), offsets, open: Default::default() }
    }

    fn note(&self, seen: Seen) {
        if let Some(log) = &self.log {
            log.lock().unwrap_or_else(|p| p.into_inner()).push(seen);
        }
    }
}

/// A request the server got: its method, the session it named (for SETUP, the session it
/// created or joined) and its client's `User-Agent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub session: Option<String>,
    pub user_agent: Option<String>,
}

/// A mount that misbehaves on purpose (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    /// Describes one audio stream (PCMU) and no video.
    AudioOnly,
    /// Sends the clip's first keyframe as every frame: the same bytes, with advancing
    /// timestamps and sequence numbers, as a camera whose picture pipeline hung repeats its
    /// last coded picture.
    Frozen,
    /// Sends keyframes and every [`LOSSY_KEPT`]th frame between them; the frames left out
    /// still take their sequence numbers, as packets lost on the way would. Each frame after
    /// the keyframe follows at least three lost packets, more than the default
    /// `max_packets_lost`, however few frames a probe waits for.
    Lossy,
    /// A stream shared among clients, joined mid-stream as through a restreamer: PLAY's
    /// `RTP-Info` names a sequence number [`JOINED_GAP`] packets before the first one sent,
    /// and the session starts with the second FU-A fragment of a keyframe's slice (the
    /// parameter sets and the first fragment before it never come).
    /// Nothing is lost after the first packet.
    Joined,
}

/// Packets between the sequence number `/joined` announces and the first one it sends.
pub const JOINED_GAP: u16 = 3;

/// `/lossy` sends one of this many frames between keyframes.
const LOSSY_KEPT: usize = 4;

/// What a request's URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mount {
    Cam(usize),
    Special(Special),
}

/// Where in its live picture a camera starts a new session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// At the current frame: predicted frames until the next keyframe, as most cameras do;
    /// a client waits up to one keyframe interval for its first picture.
    Live,
    /// At once with the keyframe of the current group of pictures, as a camera (or a
    /// proxy) with a GOP cache does.
    GopCache,
}

/// Accepts connections until the task is dropped.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(Connection::new(stream, shared.clone()).run());
            }
            // Out of file descriptors and the like: wait instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// A parsed request: method, URL and the headers this server reads.
#[derive(Debug, Default)]
struct Request {
    method: String,
    url: String,
    cseq: String,
    session: Option<String>,
    transport: Option<String>,
    user_agent: Option<String>,
}

/// The RTP stream of a playing session.
#[derive(Debug)]
struct Playing {
    next_frame: usize,
    seq: u16,
    timestamp: u32,
    next_at: Instant,
    /// Frames sent since the last keyframe (`/lossy` leaves out most of them).
    since_key: usize,
    /// Payloads of the next frame not sent (`/joined` starts in the middle of a frame).
    skip_payloads: usize,
}

struct Connection {
    stream: TcpStream,
    shared: Arc<Shared>,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The session: its id and the mount it set up.
    session: Option<(String, Mount)>,
    ssrc: u32,
    playing: Option<Playing>,
    last_request: Instant,
}

impl Connection {
    fn new(stream: TcpStream, shared: Arc<Shared>) -> Self {
        Connection {
            stream,
            shared,
            input: Vec::with_capacity(1024),
            output: Vec::with_capacity(4096),
            session: None,
            ssrc: random_u32(),
            playing: None,
            last_request: Instant::now(),
        }
    }

    /// Serves the connection until the client closes it, breaks the protocol, or the session
    /// times out. I/O errors end it quietly: the client left.
    async fn run(mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.shared.open.fetch_add(1, SeqCst);
        let _ = self.serve().await;
        self.shared.open.fetch_sub(1, SeqCst);
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 2048];
        loop {
            let frame_due = self.playing.as_ref().map(|p| p.next_at);
            let expires = self.last_request + SESSION_TIMEOUT;
            tokio::select! {
                read = self.stream.read(&mut chunk) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.input.extend_from_slice(&chunk[..n]);
                    if !self.handle_input().await? {
                        return Ok(());
                    }
                }
                () = sleep_until(frame_due.unwrap_or(expires)), if frame_due.is_some() => self.send_frame().await?,
                () = sleep_until(expires) => return Ok(()),
            }
        }
    }

    /// Handles every complete message in the input; `false`: close the connection.
    async fn handle_input(&mut self) -> std::io::Result<bool> {
        loop {
            if self.input.first() == Some(&b'$') {
                // Interleaved data from the client (RTCP receiver reports): skipped.
                if self.input.len() < 4 {
                    return Ok(true);
                }
                let len = 4 + usize::from(u16::from_be_bytes([self.input[2], self.input[3]]));
                if self.input.len() < len {
                    return Ok(true);
                }
                self.input.drain(..len);
                continue;
            }
            let Some(head_end) = self.input.windows(4).position(|w| w == b"\r\n\r\n") else {
                if self.input.len() > MAX_REQUEST_BYTES {
                    self.respond("400 Bad Request", "", &[]).await?;
                    return Ok(false);
                }
                return Ok(true);
            };
            let head = String::from_utf8_lossy(&self.input[..head_end]).into_owned();
            let body_len = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            let total = head_end + 4 + body_len;
            if total > MAX_REQUEST_BYTES {
                self.respond("400 Bad Request", "", &[]).await?;
                return Ok(false);
            }
            if self.input.len() < total {
                return Ok(true);
            }
            self.input.drain(..total);
            let Some(request) = parse_request(&head) else {
                self.respond("400 Bad Request", "", &[]).await?;
                return Ok(false);
            };
            self.last_request = Instant::now();
            // Noted when received, before the answer goes out: a client that has its answer
            // finds its request on record. SETUP is noted with the session it creates, once
            // that exists (its client sends nothing more before the answer).
            if request.method != "SETUP" {
                self.shared.note(Seen {
                    method: request.method.clone(),
                    session: request.session.clone(),
                    user_agent: request.user_agent.clone(),
                });
            }
            self.handle(&request).await?;
            if request.method == "SETUP" {
                let session = request.session.clone().or_else(|| self.session.as_ref().map(|(id, _)| id.clone()));
                self.shared.note(Seen {
                    method: request.method.clone(),
                    session,
                    user_agent: request.user_agent.clone(),
                });
            }
        }
    }

    async fn handle(&mut self, r: &Request) -> std::io::Result<()> {
        let cseq = r.cseq.as_str();
        let mount = mount_of(&r.url, self.shared.mounts);
        if r.method == "SETUP" && mount == Some(Mount::Special(Special::AudioOnly)) {
            // Nothing here to play: it has no video, and the prober never asks.
            return self.respond("461 Unsupported Transport", cseq, &[]).await;
        }
        match r.method.as_str() {
            "OPTIONS" => self.respond("200 OK", cseq, &[("Public", PUBLIC.to_owned())]).await,
            "DESCRIBE" => {
                let Some(mount) = mount else { return self.respond("404 Not Found", cseq, &[]).await };
                let base = format!("{}/", base_url(&r.url, mount));
                let sdp = self.sdp(mount);
                let headers = [("Content-Base", base), ("Content-Type", "application/sdp".to_owned())];
                self.respond_with_body("200 OK", cseq, &headers, sdp.as_bytes()).await
            }
            "SETUP" => {
                let Some(mount) = mount else { return self.respond("404 Not Found", cseq, &[]).await };
                if let Some((id, _)) = &self.session
                    && r.session.as_deref() != Some(id.as_str())
                {
                    // One stream per session; a second session on this connection is not offered.
                    return self.respond("459 Aggregate Operation Not Allowed", cseq, &[]).await;
                }
                let transport = r.transport.as_deref().unwrap_or("");
                if !transport.contains("RTP/AVP/TCP") {
                    return self.respond("461 Unsupported Transport", cseq, &[]).await;
                }
                let id = match &self.session {
                    Some((id, _)) => id.clone(),
                    None => format!("{:016X}", u64::from(random_u32()) << 32 | u64::from(random_u32())),
                };
                self.session = Some((id.clone(), mount));
                let transport = format!("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc={:08X}", self.ssrc);
                let headers =
                    [("Transport", transport), ("Session", format!("{id};timeout={}", SESSION_TIMEOUT.as_secs()))];
                self.respond("200 OK", cseq, &headers).await
            }
            "PLAY" => {
                let Some((id, mount)) = self.session.clone() else {
                    return self.respond("455 Method Not Valid in This State", cseq, &[]).await;
                };
                if r.session.as_deref() != Some(id.as_str()) {
                    return self.respond("454 Session Not Found", cseq, &[]).await;
                }
                let playing = self.playing.get_or_insert_with(|| {
                    let elapsed = self.shared.epoch.elapsed().as_secs_f64();
                    let offset = match mount {
                        Mount::Cam(n) => self.shared.offsets[n],
                        Mount::Special(_) => 0,
                    };
                    let now_frame = ((elapsed * f64::from(FPS)) as usize + offset) % self.shared.clip.frames().len();
                    let frames = self.shared.clip.frames();
                    // The first FU-A fragment of frame `i`, if it has one.
                    let fu_a = |i: usize| frames[i].payloads.iter().position(|p| p.data[0] & 0x1f == NAL_FU_A);
                    let first = match (mount, self.shared.start) {
                        (Mount::Special(Special::Frozen), _) => 0,
                        (Mount::Special(Special::Joined), _) => {
                            (0..frames.len()).find(|&i| frames[i].keyframe && fu_a(i).is_some()).unwrap_or(0)
                        }
                        (_, StartAt::Live) => now_frame,
                        (_, StartAt::GopCache) => self.shared.clip.keyframe_at_or_before(now_frame),
                    };
                    Playing {
                        next_frame: first,
                        seq: random_u32() as u16,
                        timestamp: random_u32(),
                        next_at: Instant::now(),
                        since_key: 0,
                        // Up to and with the first fragment of the keyframe's slice.
                        skip_payloads: match mount {
                            Mount::Special(Special::Joined) => fu_a(first).map_or(0, |i| i + 1),
                            _ => 0,
                        },
                    }
                });
                let announced = match mount {
                    Mount::Special(Special::Joined) => playing.seq.wrapping_sub(JOINED_GAP),
                    _ => playing.seq,
                };
                let info = format!(
                    "url={}/{};seq={};rtptime={}",
                    base_url(&r.url, mount),
                    TRACK,
                    announced,
                    playing.timestamp
                );
                let headers = [("Session", id), ("Range", "npt=now-".to_owned()), ("RTP-Info", info)];
                self.respond("200 OK", cseq, &headers).await
            }
            "GET_PARAMETER" => {
                let headers: Vec<(&str, String)> = self.session.iter().map(|(id, _)| ("Session", id.clone())).collect();
                self.respond("200 OK", cseq, &headers).await
            }
            "TEARDOWN" => {
                self.playing = None;
                self.session = None;
                self.respond("200 OK", cseq, &[]).await
            }
            _ => self.respond("501 Not Implemented", cseq, &[]).await,
        }
    }

    fn sdp(&self, mount: Mount) -> String {
        let session_id = random_u32();
        let fmtp = self.shared.clip.fmtp();
        if mount == Mount::Special(Special::AudioOnly) {
            return format!(
                "v=0\r\n\
                 o=- {session_id} 1 IN IP4 127.0.0.1\r\n\
                 s=Simulated microphone\r\n\
                 c=IN IP4 0.0.0.0\r\n\
                 t=0 0\r\n\
                 a=control:*\r\n\
                 a=range:npt=now-\r\n\
                 m=audio 0 RTP/AVP 0\r\n\
                 a=rtpmap:0 PCMU/8000\r\n\
                 a=control:{TRACK}\r\n"
            );
        }
        let name = match mount {
            Mount::Cam(n) => format!("Simulated camera {n}"),
            Mount::Special(s) => format!("Simulated camera ({s:?})"),
        };
        format!(
            "v=0\r\n\
             o=- {session_id} 1 IN IP4 127.0.0.1\r\n\
             s={name}\r\n\
             c=IN IP4 0.0.0.0\r\n\
             t=0 0\r\n\
             a=control:*\r\n\
             a=range:npt=now-\r\n\
             m=video 0 RTP/AVP {RTP_PAYLOAD_TYPE}\r\n\
             a=rtpmap:{RTP_PAYLOAD_TYPE} H264/90000\r\n\
             a=fmtp:{RTP_PAYLOAD_TYPE} {fmtp}\r\n\
             a=framerate:{FPS}\r\n\
             a=control:{TRACK}\r\n"
        )
    }

    async fn respond(&mut self, status: &str, cseq: &str, headers: &[(&str, String)]) -> std::io::Result<()> {
        self.respond_with_body(status, cseq, headers, b"").await
    }

    async fn respond_with_body(
        &mut self,
        status: &str,
        cseq: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> std::io::Result<()> {
        use std::fmt::Write as _;
        let mut head = format!("RTSP/1.0 {status}\r\nServer: {SERVER}\r\n");
        if !cseq.is_empty() {
            let _ = write!(head, "CSeq: {cseq}\r\n");
        }
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if !body.is_empty() {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.push_str("\r\n");
        self.output.clear();
        self.output.extend_from_slice(head.as_bytes());
        self.output.extend_from_slice(body);
        self.stream.write_all(&self.output).await
    }

    /// Sends the next frame of the clip (looping) as RTP packets in one write.
    async fn send_frame(&mut self) -> std::io::Result<()> {
        let Some(p) = self.playing.as_mut() else { return Ok(()) };
        let mount = self.session.as_ref().map(|(_, m)| *m);
        let frames = self.shared.clip.frames();
        let frame = match mount {
            Some(Mount::Special(Special::Frozen)) => &frames[0],
            _ => &frames[p.next_frame],
        };
        p.since_key = if frame.keyframe { 0 } else { p.since_key + 1 };
        let left_out = mount == Some(Mount::Special(Special::Lossy)) && p.since_key % LOSSY_KEPT != 0;
        self.output.clear();
        let skip = std::mem::take(&mut p.skip_payloads);
        for payload in &frame.payloads[skip.min(frame.payloads.len())..] {
            if left_out {
                p.seq = p.seq.wrapping_add(1);
                continue;
            }
            let rtp_len = 12 + payload.data.len();
            let Ok(len) = u16::try_from(rtp_len) else { continue };
            self.output.extend_from_slice(&[b'$', RTP_CHANNEL]);
            self.output.extend_from_slice(&len.to_be_bytes());
            self.output.push(0x80);
            self.output.push(RTP_PAYLOAD_TYPE | if payload.marker { 0x80 } else { 0 });
            self.output.extend_from_slice(&p.seq.to_be_bytes());
            self.output.extend_from_slice(&p.timestamp.to_be_bytes());
            self.output.extend_from_slice(&self.ssrc.to_be_bytes());
            self.output.extend_from_slice(&payload.data);
            p.seq = p.seq.wrapping_add(1);
        }
        p.timestamp = p.timestamp.wrapping_add(Clip::frame_ticks());
        p.next_frame = (p.next_frame + 1) % frames.len();
        // Paced from the schedule, not from when this write ends, so the rate stays exact.
        p.next_at += Duration::from_secs(1) / FPS;
        if self.output.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.output).await
    }
}

/// The control suffix of the one stream.
const TRACK: &str = "trackID=0";

/// The mount a request URL names: `rtsp://host:port/camN` (or `/audio`, `/frozen`,
/// `/lossy`), optionally followed by `/trackID=0` or a slash; `None` for anything else or N
/// out of range.
fn mount_of(url: &str, mounts: usize) -> Option<Mount> {
    let path = url.strip_prefix("rtsp://").map_or(url, |rest| rest.find('/').map_or("", |i| &rest[i..]));
    let path = path.split('?').next().unwrap_or("");
    let mut parts = path.trim_start_matches('/').split('/');
    let name = parts.next()?;
    match (parts.next(), parts.next()) {
        (None | Some("" | TRACK), None) => {}
        _ => return None,
    }
    match name {
        "audio" => return Some(Mount::Special(Special::AudioOnly)),
        "frozen" => return Some(Mount::Special(Special::Frozen)),
        "lossy" => return Some(Mount::Special(Special::Lossy)),
        "joined" => return Some(Mount::Special(Special::Joined)),
        _ => {}
    }
    let digits = name.strip_prefix("cam")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse::<usize>().ok().filter(|&n| n < mounts).map(Mount::Cam)
}

/// `rtsp://host:port/camN` (or `/frozen`, …) of a request URL.
fn base_url(url: &str, mount: Mount) -> String {
    let authority = url.strip_prefix("rtsp://").and_then(|r| r.split('/').next()).unwrap_or("127.0.0.1");
    match mount {
        Mount::Cam(n) => format!("rtsp://{authority}/cam{n}"),
        Mount::Special(Special::AudioOnly) => format!("rtsp://{authority}/audio"),
        Mount::Special(Special::Frozen) => format!("rtsp://{authority}/frozen"),
        Mount::Special(Special::Lossy) => format!("rtsp://{authority}/lossy"),
        Mount::Special(Special::Joined) => format!("rtsp://{authority}/joined"),
    }
}

fn parse_request(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, url, version) = (first.next()?, first.next()?, first.next()?);
    if !version.starts_with("RTSP/1.") {
        return None;
    }
    Some(Request {
        method: method.to_owned(),
        url: url.to_owned(),
        cseq: header(head, "cseq").unwrap_or_default().to_owned(),
        session: header(head, "session").map(|s| s.split(';').next().unwrap_or("").trim().to_owned()),
        transport: header(head, "transport").map(str::to_owned),
        user_agent: header(head, "user-agent").map(str::to_owned),
    })
}

/// The value of header `name` (lower case) in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn random_u32() -> u32 {
    // The OS random source; a fixed fallback would only make SSRCs predictable.
    getrandom::u32().unwrap_or(0x5eed_1234)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_are_read_from_urls() {
        assert_eq!(mount_of("rtsp://127.0.0.1:5/cam0", 2), Some(Mount::Cam(0)));
        assert_eq!(mount_of("rtsp://127.0.0.1:5/cam1/", 2), Some(Mount::Cam(1)));
        assert_eq!(mount_of("rtsp://127.0.0.1:5/cam1/trackID=0", 2), Some(Mount::Cam(1)));
        assert_eq!(mount_of("rtsp://127.0.0.1:5/frozen/trackID=0", 2), Some(Mount::Special(Special::Frozen)));
        assert_eq!(mount_of("rtsp://127.0.0.1:5/audio", 2), Some(Mount::Special(Special::AudioOnly)));
        assert_eq!(mount_of("rtsp://127.0.0.1:5/joined/trackID=0", 2), Some(Mount::Special(Special::Joined)));
        assert_eq!(mount_of("rtsp://127.0.0.1:5/cam2", 2), None, "out of range");
        assert_eq!(mount_of("rtsp://127.0.0.1:5/cam01", 2), None);
        assert_eq!(mount_of("rtsp://127.0.0.1:5/cam", 2), None);
        assert_eq!(mount_of("rtsp://127.0.0.1:5/live", 2), None);
        assert_eq!(mount_of("rtsp://127.0.0.1:5/cam0/other", 2), None);
        assert_eq!(mount_of("*", 2), None);
        assert_eq!(base_url("rtsp://127.0.0.1:5/cam1/trackID=0", Mount::Cam(1)), "rtsp://127.0.0.1:5/cam1");
        assert_eq!(base_url("rtsp://127.0.0.1:5/lossy/", Mount::Special(Special::Lossy)), "rtsp://127.0.0.1:5/lossy");
    }

    #[test]
    fn requests_are_parsed() {
        let head = "SETUP rtsp://h/cam0/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nsession: AB12;timeout=60\r\n\
                    Transport: RTP/AVP/TCP;unicast;interleaved=0-1";
        let r = parse_request(head).unwrap();
        assert_eq!((r.method.as_str(), r.url.as_str(), r.cseq.as_str()), ("SETUP", "rtsp://h/cam0/trackID=0", "3"));
        assert_eq!(r.session.as_deref(), Some("AB12"));
        assert_eq!(r.transport.as_deref(), Some("RTP/AVP/TCP;unicast;interleaved=0-1"));
        assert!(parse_request("GET / HTTP/1.1\r\n").is_none());
    }
}
