//! https cameras with certificates no trust store knows, as IP cameras have them: the test
//! MJPEG server over TLS (ds_tests::mjpeg, `MjpegServer::start_tls`, a certificate for
//! 127.0.0.1 signed by a private CA made at test time). With `verify_tls` on the camera is
//! refused with a message that names the setting; with it off the camera proves video and
//! can be previewed. The scheduler applies the camera's resolved setting.

use std::sync::Arc;
use std::time::Duration;

use ds_cameras::preview::{PreviewCache, PreviewError, PreviewOptions, grab};
use ds_cameras::probe::{NetworkProber, Prober};
use ds_cameras::{CameraStatus, Reason, Scheduler, State, StatusBoard};
use ds_config::{Camera, CamerasConfig};
use ds_tests::mjpeg::{self, MjpegServer};
use ds_tests::wait::wait_until_async;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const STEP: Duration = Duration::from_secs(3);
const HEARTBEAT_S: u32 = 1;
/// Long enough for a loaded CI machine to set up TLS and decode a frame.
const PREVIEW_TIMEOUT: Duration = Duration::from_secs(8);
const VERIFY: bool = true;
const ACCEPT_ANY_CERTIFICATE: bool = false;

#[tokio::test]
async fn a_self_signed_camera_is_refused_plainly_unless_verify_tls_is_off() {
    let server = MjpegServer::start_tls();
    let prober = NetworkProber::new().unwrap();
    let url = server.url("live");
    assert!(url.starts_with("https://"), "{url}");

    let f = prober.probe(&url, STEP, VERIFY).await.expect_err("an untrusted certificate is refused");
    assert_eq!(f.reason, Reason::Tls, "{f}");
    assert!(f.message.contains("TLS certificate is not trusted"), "{}", f.message);
    assert!(f.message.contains("`verify_tls: false`"), "the message names the fix: {}", f.message);
    assert!(f.message.contains(&format!("127.0.0.1:{}", server.port)), "{}", f.message);

    // Credentials are neither sent to an untrusted camera nor shown.
    let secret_url = server.auth_url(mjpeg::USER, mjpeg::PASSWORD);
    let f = prober.probe(&secret_url, STEP, VERIFY).await.unwrap_err();
    assert_eq!(f.reason, Reason::Tls, "{f}");
    assert!(!f.message.contains(mjpeg::PASSWORD), "{}", f.message);
    assert!(server.requests().is_empty(), "no request passed the refused handshakes: {:?}", server.requests());

    let (w, h) = MjpegServer::frame_size();
    let proof = prober.probe(&url, STEP, ACCEPT_ANY_CERTIFICATE).await.expect("accepted: video");
    assert_eq!((proof.codec.as_str(), proof.width, proof.height), ("jpeg", Some(w), Some(h)));
    assert!(
        matches!(&proof.coded, Some(ds_cameras::picture::Coded::Jpeg(j)) if j.len() == 2 && j[0] != j[1]),
        "two different frames: {proof:?}"
    );
    let proof = prober.probe(&server.url("snapshot.jpg"), STEP, ACCEPT_ANY_CERTIFICATE).await.unwrap();
    assert_eq!((proof.width, proof.height), (Some(w), Some(h)));
    prober.probe(&secret_url, STEP, ACCEPT_ANY_CERTIFICATE).await.expect("Basic credentials over TLS");
    let f = prober.probe(&server.url("missing"), STEP, ACCEPT_ANY_CERTIFICATE).await.unwrap_err();
    assert_eq!(f.reason, Reason::NotFound, "past the handshake, answers are judged as over http: {f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_applies_each_cameras_verify_tls_and_its_changes() {
    let server = MjpegServer::start_tls();
    let camera = |name: &str, verify_tls: Option<bool>| Camera {
        name: name.to_owned(),
        url: server.url("live"),
        verify_tls,
        ..Camera::default()
    };
    let config = CamerasConfig {
        heartbeat_seconds: HEARTBEAT_S,
        timeout_seconds: 3,
        retries: 0,
        streams: vec![camera("strict", None), camera("lenient", Some(false))],
        ..CamerasConfig::default()
    };
    let (list, list_rx) = watch::channel(Arc::new(config.clone()));
    let (tx, _events) = mpsc::channel(1000);
    let stop = CancellationToken::new();
    let scheduler = Scheduler::spawn(NetworkProber::new().unwrap(), list_rx, tx, stop.clone());
    let board = scheduler.statuses();

    let strict = wait_for(&board, "strict", State::Down).await;
    assert_eq!(strict.reason, Some(Reason::Tls), "{strict:?}");
    assert!(strict.message.as_deref().is_some_and(|m| m.contains("`verify_tls: false`")), "{strict:?}");
    let lenient = wait_for(&board, "lenient", State::Up).await;
    let beat = lenient.last_heartbeat.expect("a heartbeat");
    assert_eq!((beat.codec.as_deref(), beat.width, beat.height), (Some("jpeg"), Some(160), Some(120)));

    // Turned off in the file for every camera: the strict one comes up at its next heartbeat.
    list.send_replace(Arc::new(CamerasConfig { verify_tls: false, ..config }));
    wait_for(&board, "strict", State::Up).await;
    stop.cancel();
    scheduler.join().await;
}

/// Waits (a bounded time) until camera `id` is in `state`.
async fn wait_for(board: &StatusBoard, id: &str, state: State) -> CameraStatus {
    let within = Duration::from_secs(u64::from(HEARTBEAT_S)) + 2 * STEP + Duration::from_secs(5);
    wait_until_async(&format!("{id} to be {state}"), within, || {
        let status = board.get(id).unwrap_or_else(|| panic!("{id} is not on the board"));
        let reached = status.state == Some(state);
        async move { if reached { Ok(status) } else { Err(format!("{status:#?}")) } }
    })
    .await
}

#[tokio::test]
async fn a_self_signed_camera_is_previewed_only_with_verify_tls_off() {
    let server = MjpegServer::start_tls();
    let strict = PreviewOptions { timeout: PREVIEW_TIMEOUT, max_width: None, ..PreviewOptions::default() };
    let e = grab(&server.auth_url(mjpeg::USER, mjpeg::PASSWORD), &strict).await.expect_err("refused");
    assert!(matches!(e, PreviewError::Tls { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("`verify_tls: false`") && !text.contains(mjpeg::PASSWORD), "{text}");

    let lenient = PreviewOptions { verify_tls: false, ..strict };
    for path in ["live", "snapshot.jpg"] {
        let p = grab(&server.url(path), &lenient).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!((p.width, p.height), MjpegServer::frame_size(), "{path}");
        assert!(p.jpeg.starts_with(&[0xff, 0xd8]) && p.jpeg.ends_with(&[0xff, 0xd9]), "{path}: not a JPEG");
    }

    // The dashboard's cache grabs under the camera's setting, and a picture taken with the
    // certificate accepted is not handed out once the camera verifies again.
    let cache = PreviewCache::new(strict);
    let url = server.url("snapshot.jpg");
    let p = cache.get("cam", &url, ACCEPT_ANY_CERTIFICATE).await.expect("accepted: a picture");
    assert_eq!((p.width, p.height), MjpegServer::frame_size());
    let e = cache.get("cam", &url, VERIFY).await.expect_err("verified: refused");
    assert!(matches!(e, PreviewError::Tls { .. }), "{e:?}");
}
