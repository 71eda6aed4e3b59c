//! The preview grabber against real cameras on loopback: GStreamer's RTSP server
//! (tests/fixtures/rtsp_server.py, H.264 320×240, Digest on the secure server) and the
//! test MJPEG server (ds_tests::mjpeg, JPEGs of 160×120). Every picture is decoded again
//! to check it is a real JPEG of the expected size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ds_cameras::preview::{PreviewCache, PreviewError, PreviewOptions, grab};
use ds_tests::mjpeg::{self, MjpegServer};
use ds_tests::rtsp::{self, RtspServer};

mod common;

/// Long enough for a loaded CI machine to start an RTSP session and decode a keyframe.
const TIMEOUT: Duration = Duration::from_secs(8);
/// For the scenarios that must time out.
const SHORT: Duration = Duration::from_secs(3);

fn options(max_width: Option<u32>, timeout: Duration) -> PreviewOptions {
    PreviewOptions { timeout, max_width, ..PreviewOptions::default() }
}

/// Decodes a JPEG with GStreamer's jpegdec; its width and height.
fn decoded_size(jpeg: &[u8]) -> (u32, u32) {
    let (w, h, _) = common::decode_jpeg(jpeg);
    (w, h)
}

async fn expect_error(url: &str, timeout: Duration) -> PreviewError {
    let started = Instant::now();
    let e = grab(url, &options(None, timeout)).await.expect_err("the grab should fail");
    assert!(started.elapsed() < timeout + Duration::from_secs(3), "{e} took {:?}", started.elapsed());
    e
}

#[tokio::test]
async fn rtsp_previews_are_jpegs_of_the_stream() {
    let server = RtspServer::start();
    let full = grab(&server.url("live"), &options(None, TIMEOUT)).await.expect("a picture of /live");
    assert_eq!((full.width, full.height), (320, 240));
    assert_eq!(decoded_size(&full.jpeg), (320, 240));

    let small = grab(&server.url("live"), &options(Some(160), TIMEOUT)).await.expect("a scaled picture");
    assert_eq!(decoded_size(&small.jpeg), (160, 120));

    // Digest authentication with the credentials taken from the URL.
    let url = server.secure_url(Some((rtsp::USER, rtsp::PASSWORD)));
    let secure = grab(&url, &options(None, TIMEOUT)).await.expect("a picture behind Digest");
    assert_eq!(decoded_size(&secure.jpeg), (320, 240));

    // The colours are the camera's: /frozen is 0x3366aa, /black is black (not the video
    // range's dark grey, 16, that a JPEG of the decoder's YUV would show).
    for (path, want) in [("frozen", [0x33, 0x66, 0xaa]), ("black", [0, 0, 0])] {
        let picture = grab(&server.url(path), &options(None, TIMEOUT)).await.expect("a picture");
        let (_, _, rgb) = common::decode_jpeg(&picture.jpeg);
        let mean =
            |c: usize| rgb.iter().skip(c).step_by(3).map(|&v| f64::from(v)).sum::<f64>() / (rgb.len() / 3) as f64;
        let got = [mean(0), mean(1), mean(2)];
        let off = got.iter().zip(want).map(|(g, w)| (g - f64::from(w)).abs()).fold(0.0, f64::max);
        assert!(off <= 6.0, "/{path}: mean colour {got:?}, the camera's is {want:?}");
    }
}

#[tokio::test]
async fn rtsp_failures_are_typed_and_keep_the_password_out() {
    let server = RtspServer::start();
    let wrong = server.secure_url(Some((rtsp::USER, "not-the-password")));
    let e = expect_error(&wrong, TIMEOUT).await;
    assert!(matches!(e, PreviewError::Auth { .. }), "{e:?}");
    let text = e.to_string();
    assert!(!text.contains("not-the-password"), "{text}");
    assert!(text.contains(&format!("rtsp://{}:***@127.0.0.1:{}/live", rtsp::USER, server.secure_port)), "{text}");

    let e = expect_error(&server.secure_url(None), TIMEOUT).await;
    assert!(matches!(e, PreviewError::Auth { .. }), "no credentials: {e:?}");

    let e = expect_error(&server.url("nope"), TIMEOUT).await;
    assert!(matches!(e, PreviewError::NotFound { .. }), "{e:?}");

    let e = expect_error(&server.url("noframes"), SHORT).await;
    assert!(matches!(e, PreviewError::Timeout { .. }), "{e:?}");

    // Nothing listens on the port any more.
    let port = server.port;
    server.stop();
    let e = expect_error(&format!("rtsp://127.0.0.1:{port}/live"), SHORT).await;
    assert!(matches!(e, PreviewError::Other { .. } | PreviewError::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn mjpeg_and_snapshot_previews() {
    let server = MjpegServer::start();
    let size = MjpegServer::frame_size();
    for path in ["live", "snapshot.jpg"] {
        let p = grab(&server.url(path), &options(None, TIMEOUT)).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(decoded_size(&p.jpeg), size, "{path}");
    }
    let p = grab(&server.auth_url(mjpeg::USER, mjpeg::PASSWORD), &options(Some(80), TIMEOUT)).await.unwrap();
    assert_eq!(decoded_size(&p.jpeg), (80, 60));

    let e = expect_error(&server.auth_url(mjpeg::USER, "wrong-pw"), TIMEOUT).await;
    assert!(matches!(e, PreviewError::Auth { .. }), "{e:?}");
    assert!(!e.to_string().contains("wrong-pw"), "{e}");
    let e = expect_error(&server.url("missing"), TIMEOUT).await;
    assert!(matches!(e, PreviewError::NotFound { .. }), "{e:?}");
    let e = expect_error(&server.url("headers-only"), SHORT).await;
    assert!(matches!(e, PreviewError::Timeout { .. }), "{e:?}");
    let e = expect_error("ftp://127.0.0.1/x", SHORT).await;
    assert!(matches!(e, PreviewError::BadUrl { .. }), "{e:?}");
}

#[tokio::test]
async fn the_cache_shares_one_grab_and_expires() {
    let server = MjpegServer::start();
    let cache = PreviewCache::new(options(None, TIMEOUT));
    let url = server.url("snapshot.jpg");
    let grabs = || server.requests().iter().filter(|(_, p)| p == "/snapshot.jpg").count();

    // Concurrent requests for one camera: one grab, one shared picture.
    let (a, b) = tokio::join!(cache.get("gate", &url, true), cache.get("gate", &url, true));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(grabs(), 1);
    // A reload within the cache time: the same picture, the camera is not asked.
    assert!(Arc::ptr_eq(&a, &cache.get("gate", &url, true).await.unwrap()));
    assert_eq!(grabs(), 1);
    // Another camera has its own picture.
    cache.get("yard", &url, true).await.unwrap();
    assert_eq!(grabs(), 2);

    // After the cache time, a new grab.
    tokio::time::pause();
    tokio::time::advance(PreviewOptions::default().cache_for + Duration::from_millis(1)).await;
    tokio::time::resume();
    let c = cache.get("gate", &url, true).await.unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(grabs(), 3);
    assert_eq!(decoded_size(&c.jpeg), MjpegServer::frame_size());

    // Errors are cached too: a missing camera is asked once per cache time.
    let missing = server.url("missing");
    assert!(cache.get("gone", &missing, true).await.is_err());
    assert!(cache.get("gone", &missing, true).await.is_err());
    assert_eq!(server.requests().iter().filter(|(_, p)| p == "/missing").count(), 1);
}

/// A request that goes away leaves its grab running: the next request for that camera joins
/// it instead of opening another session. Beyond `max_grabs` running at once, a request for
/// another camera is told to come back rather than queued.
#[tokio::test]
async fn a_cancelled_request_leaves_its_grab_running_and_grabs_are_bounded() {
    use ds_tests::tcp_peer::{Behaviour, TcpPeer};
    let server = MjpegServer::start();
    let silent = TcpPeer::start(Behaviour::Silent);
    let cache = PreviewCache::new(PreviewOptions { max_grabs: 1, ..options(None, SHORT) });
    let url = server.url("snapshot.jpg");
    let grabs = || server.requests().iter().filter(|(_, p)| p == "/snapshot.jpg").count();

    // Polled once, then dropped: the grab has started and goes on.
    let cancelled = tokio::time::timeout(Duration::ZERO, cache.get("gate", &url, true)).await;
    assert!(cancelled.is_err(), "the first poll cannot have the picture already");
    let picture = cache.get("gate", &url, true).await.expect("the running grab's picture");
    assert_eq!(decoded_size(&picture.jpeg), MjpegServer::frame_size());
    assert_eq!(grabs(), 1, "the second request joined the first one's grab");

    // A camera that never answers holds the only place for its whole timeout.
    let hanging = silent.url("rtsp", "stream");
    let cancelled = tokio::time::timeout(Duration::ZERO, cache.get("mute", &hanging, true)).await;
    assert!(cancelled.is_err());
    let e = cache.get("yard", &url, true).await.unwrap_err();
    assert!(matches!(e, PreviewError::Busy { limit: 1 }), "{e:?}");
    assert!(e.to_string().contains("as many pictures as may be grabbed at once (1)"), "{e}");
    let e = cache.get("mute", &hanging, true).await.unwrap_err();
    assert!(matches!(e, PreviewError::Timeout { .. }), "the hanging grab ends at its timeout: {e:?}");
    assert_eq!(silent.accepted(), 1, "one session to the silent camera");
    // Its place is free again.
    cache.get("yard", &url, true).await.expect("a grab once the place is free");
    assert_eq!(grabs(), 2);
}

/// A requester's own share ([`PreviewCache::get_claiming`]): claimed only when a new grab
/// starts, held by that grab to its end even when the request went away (so a client cannot
/// start grab after grab by cancelling its requests), and its refusal is the answer; a request
/// that joins a running grab claims nothing.
#[tokio::test]
async fn a_requesters_share_is_claimed_for_a_new_grab_only_and_held_until_the_grab_ends() {
    use ds_tests::tcp_peer::{Behaviour, TcpPeer};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One of the requester's places; given back when dropped.
    struct Share(Arc<AtomicUsize>);
    impl Drop for Share {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let held = Arc::new(AtomicUsize::new(0));
    let claim = || {
        if held.fetch_add(1, Ordering::SeqCst) >= 1 {
            held.fetch_sub(1, Ordering::SeqCst);
            return Err(PreviewError::ClientBusy { limit: 1 });
        }
        Ok(Share(Arc::clone(&held)))
    };
    let server = MjpegServer::start();
    let silent = TcpPeer::start(Behaviour::Silent);
    let cache = PreviewCache::new(PreviewOptions { max_grabs: 2, ..options(None, SHORT) });
    let (url, hanging) = (server.url("snapshot.jpg"), silent.url("rtsp", "stream"));

    // A grab from a camera that never answers, its request gone at once: the share stays taken.
    let cancelled = tokio::time::timeout(Duration::ZERO, cache.get_claiming("mute", &hanging, true, claim)).await;
    assert!(cancelled.is_err());
    assert_eq!(held.load(Ordering::SeqCst), 1);
    // The same requester may not start another grab, though a place is free for others.
    let e = cache.get_claiming("yard", &url, true, claim).await.unwrap_err();
    assert!(matches!(e, PreviewError::ClientBusy { limit: 1 }), "{e:?}");
    assert!(e.to_string().contains("the most one client may at once"), "{e}");
    cache.get("gate", &url, true).await.expect("another requester's grab");
    // Joining the running grab claims nothing; when it ends, the share is given back.
    let e = cache.get_claiming("mute", &hanging, true, claim).await.unwrap_err();
    assert!(matches!(e, PreviewError::Timeout { .. }), "{e:?}");
    assert_eq!(held.load(Ordering::SeqCst), 0, "the ended grab gave its share back");
    cache.get_claiming("yard", &url, true, claim).await.expect("a new grab once the share is free");
    assert_eq!(held.load(Ordering::SeqCst), 0);
}
