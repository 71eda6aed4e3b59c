//! The whole prober against real servers on loopback: GStreamer's RTSP server
//! (tests/fixtures/rtsp_server.py) and the test MJPEG server. Frozen pictures are judged on
//! decoded pictures, by the scheduler's decoder. Every scenario must reach its
//! state and reason within one heartbeat plus the probe time (times the retries for DOWN),
//! recover to UP, and no message may carry a password.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ds_cameras::{CameraStatus, Event, NetworkProber, Reason, Scheduler, State, StatusBoard};
use ds_config::cameras::{Camera, CamerasConfig};
use ds_tests::mjpeg::{self, MjpegServer, Mode};
use ds_tests::rtsp::{self, RtspServer};
use ds_tests::wait::wait_until_async;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

mod common;

const HEARTBEAT_S: u32 = 1;
const TIMEOUT_S: u32 = 2;
const RETRIES: u32 = 1;
const FROZEN_S: u32 = 2;
const BLACK_S: u32 = 2;
const WRONG_PASSWORD: &str = "wr0ng-Secret";

fn camera(name: &str, url: String) -> Camera {
    Camera { name: name.into(), url, ..Camera::default() }
}

/// Longest a camera may take to reach a state: its first slot (one heartbeat), then one
/// probe per attempt (at most three steps run into their timeout), attempts = retries + 1.
fn bound(state: State) -> Duration {
    let probe = Duration::from_secs(u64::from(HEARTBEAT_S + 3 * TIMEOUT_S));
    let attempts = if state == State::Down { RETRIES + 1 } else { 1 };
    Duration::from_secs(u64::from(HEARTBEAT_S)) + probe * attempts + Duration::from_secs(1)
}

async fn wait_for(
    board: &StatusBoard,
    id: &str,
    state: State,
    reason: Option<Reason>,
    within: Duration,
) -> CameraStatus {
    wait_until_async(&format!("{id} to become {state}/{reason:?}"), within, || {
        let status = board.get(id).unwrap_or_else(|| panic!("{id} is not on the board: {:?}", board.snapshot()));
        let reached = status.state == Some(state) && status.reason == reason;
        async move { if reached { Ok(status) } else { Err(format!("it is {status:#?}")) } }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_reaches_its_state_and_recovers() {
    let rtsp = RtspServer::start();
    let restartable = RtspServer::start();
    let web = MjpegServer::start();
    // Port 1: nothing listens there, ever (a port found free could be taken by another test).
    let refused_port = 1;
    let cams = vec![
        camera("rtsp live", rtsp.url("live")),
        camera("rtsp frozen", rtsp.url("frozen")),
        camera("rtsp restarted", rtsp.url("restarted")),
        camera("rtsp shared", rtsp.url("shared")),
        camera("rtsp noisy", rtsp.url("noisy")),
        camera("rtsp shared still", rtsp.url("shared-still")),
        camera("rtsp black", rtsp.url("black")),
        camera("rtsp h265", rtsp.url("h265")),
        camera("rtsp noframes", rtsp.url("noframes")),
        camera("rtsp missing", rtsp.url("no-such-mount")),
        camera("rtsp no creds", rtsp.secure_url(None)),
        camera("rtsp wrong creds", rtsp.secure_url(Some((rtsp::USER, WRONG_PASSWORD)))),
        camera("rtsp right creds", rtsp.secure_url(Some((rtsp::USER, rtsp::PASSWORD)))),
        camera("rtsp restartable", restartable.url("live")),
        camera("refused", format!("rtsp://admin:{WRONG_PASSWORD}@127.0.0.1:{refused_port}/live")),
        camera("mjpeg live", web.url("live")),
        camera("mjpeg snapshot", web.url("snapshot.jpg")),
        camera("mjpeg frozen", web.url("frozen")),
        camera("mjpeg stamped", web.url("stamped")),
        camera("mjpeg noisy", web.url("noisy")),
        camera("mjpeg black", web.url("black")),
        camera("mjpeg missing", web.url("nothing-here")),
        camera("mjpeg headers only", web.url("headers-only")),
        camera("mjpeg garbage", web.url("garbage")),
        camera("mjpeg wrong creds", web.auth_url(mjpeg::USER, WRONG_PASSWORD)),
        camera("mjpeg right creds", web.auth_url(mjpeg::USER, mjpeg::PASSWORD)),
        camera("mjpeg switchable", web.url("switchable")),
    ];
    let config = CamerasConfig {
        heartbeat_seconds: HEARTBEAT_S,
        timeout_seconds: TIMEOUT_S,
        retries: RETRIES,
        frozen_seconds: FROZEN_S,
        black_seconds: BLACK_S,
        streams: cams,
        ..CamerasConfig::default()
    };
    let (_list, list_rx) = watch::channel(Arc::new(config));
    let (tx, mut events) = mpsc::channel(100_000);
    let stop = CancellationToken::new();
    let scheduler = Scheduler::spawn(NetworkProber::new().unwrap(), list_rx, tx, stop.clone());
    let board = scheduler.statuses();

    let expect = [
        ("rtsp-live", State::Up, None),
        ("rtsp-right-creds", State::Up, None),
        ("mjpeg-live", State::Up, None),
        ("mjpeg-snapshot", State::Up, None),
        ("mjpeg-right-creds", State::Up, None),
        ("rtsp-noframes", State::Down, Some(Reason::NoFrames)),
        ("rtsp-missing", State::Down, Some(Reason::NotFound)),
        ("rtsp-no-creds", State::Down, Some(Reason::AuthFailed)),
        ("rtsp-wrong-creds", State::Down, Some(Reason::AuthFailed)),
        ("refused", State::Down, Some(Reason::Refused)),
        ("mjpeg-missing", State::Down, Some(Reason::NotFound)),
        ("mjpeg-headers-only", State::Down, Some(Reason::NoFrames)),
        ("mjpeg-garbage", State::Down, Some(Reason::BadData)),
        ("mjpeg-wrong-creds", State::Down, Some(Reason::AuthFailed)),
    ];
    for (id, state, reason) in expect {
        wait_for(&board, id, state, reason, bound(state)).await;
    }
    let live = board.get("rtsp-live").unwrap();
    let hb = live.last_heartbeat.unwrap();
    assert_eq!((hb.codec.as_deref(), hb.width, hb.height), (Some("h264"), Some(320), Some(240)));
    assert!(hb.latency_ms.is_some_and(|ms| ms < 2000), "{hb:?}");
    let (w, h) = MjpegServer::frame_size();
    let hb = board.get("mjpeg-live").unwrap().last_heartbeat.unwrap();
    assert_eq!((hb.codec.as_deref(), hb.width, hb.height), (Some("jpeg"), Some(w), Some(h)));

    // Frozen pictures: UP at first, DEGRADED once unchanged for FROZEN_S.
    let frozen_bound = bound(State::Up) + Duration::from_secs(u64::from(FROZEN_S + HEARTBEAT_S));
    wait_for(&board, "rtsp-frozen", State::Degraded, Some(Reason::Frozen), frozen_bound).await;
    // A still picture from an encoder that runs on (a hung sensor): its coded frames differ,
    // its pictures do not.
    let status = wait_for(&board, "rtsp-shared-still", State::Degraded, Some(Reason::Frozen), frozen_bound).await;
    assert!(status.message.as_deref().is_some_and(|m| m.contains("the picture has not changed for")), "{status:#?}");
    wait_for(&board, "mjpeg-frozen", State::Degraded, Some(Reason::Frozen), frozen_bound).await;
    // A black picture is black (which says more than frozen); a ball on black (rtsp-live,
    // mjpeg-live, checked below) is a dark scene with detail.
    for id in ["rtsp-black", "mjpeg-black"] {
        let status = wait_for(&board, id, State::Degraded, Some(Reason::Black), frozen_bound).await;
        assert!(status.message.as_deref().is_some_and(|m| m.contains("almost uniformly dark")), "{status:#?}");
    }
    // One still picture whose every JPEG carries its own comment: other bytes, one picture.
    wait_for(&board, "mjpeg-stamped", State::Degraded, Some(Reason::Frozen), frozen_bound).await;
    // Judged on decoded pictures: a moving picture whose encoder starts afresh each session
    // (the same first frames every time), one from an encoder that runs on, and a still
    // scene with sensor noise are not frozen.
    for id in ["rtsp-live", "rtsp-restarted", "rtsp-shared", "rtsp-noisy", "rtsp-h265", "mjpeg-live", "mjpeg-noisy"] {
        let status = board.get(id).unwrap();
        assert_eq!((status.state, status.reason), (Some(State::Up), None), "{id} is never frozen: {status:#?}");
    }

    // Each camera's thumbnail is its picture: the frozen RTSP camera's solid colour
    // (0x3366aa), the MJPEG camera's ball on black, at most 320 wide.
    let thumbnails = scheduler.thumbnails();
    let frozen = thumbnails.get("rtsp-frozen").expect("a thumbnail of the frozen camera");
    assert_eq!((frozen.thumbnail.width, frozen.thumbnail.height), (320, 240));
    let (r, g, b) = mean_colour(&frozen.thumbnail.jpeg);
    assert!(r.abs_diff(0x33) <= 12 && g.abs_diff(0x66) <= 12 && b.abs_diff(0xaa) <= 12, "{r:02x}{g:02x}{b:02x}");
    let (r, g, b) =
        mean_colour(&thumbnails.get("mjpeg-black").expect("a thumbnail of the black camera").thumbnail.jpeg);
    assert!(r < 24 && g < 24 && b < 24, "black: {r:02x}{g:02x}{b:02x}");
    assert!(thumbnails.get("rtsp-noframes").is_none(), "no video, no thumbnail");
    // H.265 decodes as H.264 does.
    let h265 = thumbnails.get("rtsp-h265").expect("a thumbnail of the H.265 camera");
    assert_eq!((h265.thumbnail.width, h265.thumbnail.height), (320, 240));

    // Recovery: an RTSP server that goes away and comes back on the same port.
    wait_for(&board, "rtsp-restartable", State::Up, None, bound(State::Up)).await;
    let port = restartable.port;
    restartable.stop();
    wait_for(&board, "rtsp-restartable", State::Down, Some(Reason::Refused), bound(State::Down)).await;
    let restarted = RtspServer::start_on(port, 0, 0);
    wait_for(&board, "rtsp-restartable", State::Up, None, bound(State::Up)).await;

    // Recovery: an MJPEG camera that loses its path and gets it back.
    wait_for(&board, "mjpeg-switchable", State::Up, None, bound(State::Up)).await;
    web.set_mode(Mode::NotFound);
    wait_for(&board, "mjpeg-switchable", State::Pending, Some(Reason::NotFound), bound(State::Pending)).await;
    wait_for(&board, "mjpeg-switchable", State::Down, Some(Reason::NotFound), bound(State::Down)).await;
    web.set_mode(Mode::Live);
    wait_for(&board, "mjpeg-switchable", State::Up, None, bound(State::Up)).await;

    let t = Instant::now();
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(2), scheduler.join()).await.expect("the scheduler stops promptly");
    assert!(t.elapsed() < Duration::from_secs(2));
    drop(restarted);

    // No password anywhere people could see it.
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(seen.iter().any(|e| matches!(e, Event::Transition(t) if t.to == State::Down)));
    let text = serde_json::to_string(&seen).unwrap() + &serde_json::to_string(&board.snapshot()).unwrap();
    for secret in [WRONG_PASSWORD, rtsp::PASSWORD, mjpeg::PASSWORD] {
        assert!(!text.contains(secret), "a password appears in an event or status");
    }
    assert!(web.requests().iter().all(|(m, _)| m == "GET"), "the prober sent something other than GET");
}

/// The mean colour of a JPEG.
fn mean_colour(jpeg: &[u8]) -> (u8, u8, u8) {
    let (_, _, rgb) = common::decode_jpeg(jpeg);
    let mut sum = [0u64; 3];
    for px in rgb.chunks(3) {
        for (s, v) in sum.iter_mut().zip(px) {
            *s += u64::from(*v);
        }
    }
    let n = (rgb.len() / 3).max(1) as u64;
    ((sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8)
}
