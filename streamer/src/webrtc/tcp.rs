//! WebRTC media over TCP (ICE-TCP, RFC 6544), for viewers whose network lets no UDP through.
//! Each offered address has a passive TCP candidate on `webrtc_tcp_port`; a browser that cannot
//! reach the UDP port connects there and sends its ICE checks, DTLS, RTP and RTCP as RFC 4571
//! frames (a 16-bit length, then the packet). A connection belongs to the session its first
//! frame names (a STUN binding request with our ICE username fragment, as on UDP); one that
//! names none, or says nothing in time, is closed, and so is one whose session ended.

use std::net::SocketAddr;
use std::sync::Weak;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ds_runtime::Shutdown;
use str0m::net::Protocol;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::route::{Datagram, stun_local_ufrag};
use super::{INBOX, Inner, lock};

/// How long a new connection may take to send its first ICE check.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a silent connection looks whether its session still exists.
const SESSION_CHECK: Duration = Duration::from_secs(5);
/// Connections open at once, named or not; more are closed at once (each viewer needs one).
const MAX_CONNECTIONS: usize = 64;

/// Open connections, for [`MAX_CONNECTIONS`].
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Accepts connections on `listener` until the streamer stops.
pub(crate) async fn serve(inner: Weak<Inner>, listener: TcpListener, shutdown: Shutdown) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.wait() => return,
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "WebRTC TCP accept failed");
                    continue;
                }
            },
        };
        if OPEN.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            OPEN.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!(%peer, "too many WebRTC TCP connections; closed");
            continue;
        }
        let (inner, shutdown) = (inner.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(why) = connection(inner, stream, peer, shutdown).await {
                tracing::debug!(%peer, %why, "WebRTC TCP connection closed");
            }
            OPEN.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Reads one RFC 4571 frame; `None` at a clean end of the stream.
async fn read_frame(rd: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut frame = vec![0u8; usize::from(u16::from_be_bytes(len))];
    rd.read_exact(&mut frame).await?;
    Ok(Some(frame))
}

/// Frames `data` for the wire: its length, then itself.
pub fn frame(data: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(data.len()).ok()?;
    let mut out = Vec::with_capacity(data.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    Some(out)
}

/// One connection: its frames to its session, its session's packets back.
async fn connection(inner: Weak<Inner>, stream: TcpStream, peer: SocketAddr, shutdown: Shutdown) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    let (mut rd, mut wr) = stream.into_split();
    let first = tokio::time::timeout(FIRST_FRAME_TIMEOUT, read_frame(&mut rd))
        .await
        .map_err(|_| "no ICE check in time".to_owned())?
        .map_err(|e| e.to_string())?
        .ok_or("closed before its first frame")?;
    let ufrag = stun_local_ufrag(&first).ok_or("its first frame is no ICE check")?;
    let id = {
        let inner = inner.upgrade().ok_or("stopping")?;
        lock(&inner.routes).session_of(ufrag).ok_or("its ICE check names no session")?
    };
    let (tx, mut outbox) = mpsc::channel::<Vec<u8>>(INBOX);
    if let Some(inner) = inner.upgrade() {
        lock(&inner.tcp).insert((local, peer), tx);
    }
    tracing::debug!(viewer = %id, %peer, "WebRTC media over TCP");
    let writer = tokio::spawn(async move {
        while let Some(framed) = outbox.recv().await {
            if wr.write_all(&framed).await.is_err() {
                break;
            }
        }
    });
    // Frames are read in a task of their own: a read broken off half-way would lose the
    // stream's framing.
    let (frames_tx, mut frames) = mpsc::channel::<std::io::Result<Option<Vec<u8>>>>(INBOX);
    let reader = tokio::spawn(async move {
        loop {
            let r = read_frame(&mut rd).await;
            let more = matches!(r, Ok(Some(_)));
            if frames_tx.send(r).await.is_err() || !more {
                break;
            }
        }
    });
    let mut next = Some(first);
    let result = loop {
        let data = match next.take() {
            Some(d) => d,
            None => tokio::select! {
                _ = shutdown.wait() => break Ok(()),
                r = frames.recv() => match r {
                    Some(Ok(Some(d))) => d,
                    Some(Ok(None)) | None => break Ok(()),
                    Some(Err(e)) => break Err(e.to_string()),
                },
                // A silent peer whose session ended (its ICE timed out) is let go.
                _ = tokio::time::sleep(SESSION_CHECK) => {
                    let alive = inner.upgrade().is_some_and(|i| lock(&i.sessions).contains_key(&id));
                    if alive { continue } else { break Err("its session ended".to_owned()) }
                }
            },
        };
        let Some(inner) = inner.upgrade() else { break Ok(()) };
        let Some(inbox) = lock(&inner.sessions).get(&id).map(|s| s.inbox.clone()) else {
            break Err("its session ended".to_owned());
        };
        // A full inbox drops the packet, as on UDP.
        let _ = inbox.try_send(Datagram {
            proto: Protocol::Tcp,
            source: peer,
            destination: local,
            at: Instant::now(),
            data,
        });
    };
    reader.abort();
    if let Some(inner) = inner.upgrade() {
        lock(&inner.tcp).remove(&(local, peer));
    }
    writer.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_a_length_then_the_packet() {
        let framed = frame(&[1, 2, 3]).unwrap();
        assert_eq!(framed, [0, 3, 1, 2, 3]);
        let mut wire = framed.clone();
        wire.extend_from_slice(&frame(&[]).unwrap());
        let mut rd = wire.as_slice();
        assert_eq!(read_frame(&mut rd).await.unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(read_frame(&mut rd).await.unwrap(), Some(vec![]));
        assert_eq!(read_frame(&mut rd).await.unwrap(), None, "the end");
        assert!(frame(&vec![0; 70_000]).is_none(), "a frame holds 64 KiB at most");
    }
}
