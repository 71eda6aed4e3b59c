//! Each probe against real servers on loopback: GStreamer's RTSP server
//! (tests/fixtures/rtsp_server.py) and the test MJPEG server (ds_tests::mjpeg).

use std::time::Duration;

use ds_cameras::probe::{NetworkProber, ProbeOutcome, Prober};
use ds_cameras::verdict::Tracker;
use ds_cameras::{Decoder, Reason, State};
use ds_tests::mjpeg::{self, MjpegServer};
use ds_tests::rtsp::{self, RtspServer};

const STEP: Duration = Duration::from_secs(2);

async fn probe(url: &str) -> ProbeOutcome {
    NetworkProber::new().unwrap().probe(url, STEP, true).await
}

fn failure(outcome: ProbeOutcome, reason: Reason, secret: Option<&str>) -> String {
    let f = outcome.expect_err("the probe should fail");
    assert_eq!(f.reason, reason, "{f}");
    if let Some(s) = secret {
        assert!(!f.message.contains(s), "the message shows the password: {}", f.message);
    }
    f.message
}

#[tokio::test]
async fn rtsp_probes() {
    let server = RtspServer::start();
    let proof = probe(&server.url("live")).await.expect("live H.264 proves video");
    assert_eq!((proof.codec.as_str(), proof.width, proof.height), ("h264", Some(320), Some(240)));
    assert!(proof.latency < STEP * 2, "{proof:?}");

    // H.265 is probed and decoded as H.264 is.
    let proof = probe(&server.url("h265")).await.expect("live H.265 proves video");
    assert_eq!((proof.codec.as_str(), proof.width, proof.height), ("h265", Some(320), Some(240)));
    let pictures = Decoder::new(1, 1).decode(proof.coded.expect("frames")).await.expect("H.265 decodes");
    assert_eq!((pictures.first.width, pictures.first.height), (320, 240));
    assert!(pictures.moved(), "the ball moves: {pictures:?}");

    let m = failure(probe(&server.url("nope")).await, Reason::NotFound, None);
    assert!(m.contains("404"), "{m}");
    let m = failure(probe(&server.url("noframes")).await, Reason::NoFrames, None);
    assert!(m.contains("no frame"), "{m}");

    let m = failure(probe(&server.secure_url(None)).await, Reason::AuthFailed, None);
    assert!(m.contains("asks for credentials"), "{m}");
    let m = failure(
        probe(&server.secure_url(Some((rtsp::USER, "wrong-secret")))).await,
        Reason::AuthFailed,
        Some("wrong-secret"),
    );
    assert!(m.contains("refused the credentials"), "{m}");
    let proof = probe(&server.secure_url(Some((rtsp::USER, rtsp::PASSWORD)))).await.expect("right Digest credentials");
    assert_eq!(proof.codec, "h264");

    let port = server.port;
    server.stop();
    let m =
        failure(probe(&format!("rtsp://u:topsecret@127.0.0.1:{port}/live")).await, Reason::Refused, Some("topsecret"));
    assert!(m.contains("127.0.0.1"), "{m}");
    failure(probe("rtsp://camera.invalid/live").await, Reason::Dns, None);
}

/// A media shared among clients, whose encoder runs all along (`/shared`, kept alive by a
/// client inside the server): each session joins it mid-stream, possibly in the middle of a
/// fragmented frame. Nothing is lost on loopback TCP, so every probe counts 0 lost and, with
/// the default limit, is UP; ten cameras at once, three times, as a fleet behind one
/// restreamer would be. (The GStreamer 1.22 of Debian 12 announces in `RTP-Info` the very
/// packet a joining client gets first, measured; the gap other servers leave there is
/// reproduced exactly by the simulator's `/joined`, in sim.rs.)
#[tokio::test]
async fn a_shared_media_joined_mid_stream_loses_nothing() {
    const CAMERAS: usize = 10;
    let server = RtspServer::start();
    let prober = NetworkProber::new().unwrap();
    let settings = ds_config::CamerasConfig::default().probe_settings(&ds_config::Camera::default());
    for round in 0..3 {
        let probes = (0..CAMERAS).map(|_| {
            let (prober, url) = (prober.clone(), server.url("shared"));
            tokio::spawn(async move { prober.probe(&url, STEP, true).await })
        });
        for (i, p) in probes.enumerate() {
            let proof = p.await.unwrap().unwrap_or_else(|f| panic!("round {round}, camera {i}: {f}"));
            assert_eq!(proof.packets_lost, Some(0), "round {round}, camera {i}: {proof:?}");
            let v = Tracker::default().judge(tokio::time::Instant::now(), &Ok(proof), None, &settings);
            assert_eq!((v.state, v.reason), (State::Up, None), "round {round}, camera {i}: {v:?}");
        }
    }
}

#[tokio::test]
async fn mjpeg_probes() {
    let server = MjpegServer::start();
    let (w, h) = MjpegServer::frame_size();
    let proof = probe(&server.url("live")).await.expect("a live MJPEG stream proves video");
    assert_eq!((proof.codec.as_str(), proof.width, proof.height), ("jpeg", Some(w), Some(h)));
    probe(&server.url("snapshot.jpg")).await.expect("two snapshots prove video");

    failure(probe(&server.url("missing")).await, Reason::NotFound, None);
    failure(probe(&server.url("headers-only")).await, Reason::NoFrames, None);
    failure(probe(&server.url("garbage")).await, Reason::BadData, None);
    let m = failure(probe(&server.url("auth")).await, Reason::AuthFailed, None);
    assert!(m.contains("asks for credentials"), "{m}");
    failure(probe(&server.auth_url(mjpeg::USER, "not-it")).await, Reason::AuthFailed, Some("not-it"));
    probe(&server.auth_url(mjpeg::USER, mjpeg::PASSWORD)).await.expect("right Basic credentials");
    assert!(server.requests().iter().all(|(method, _)| method == "GET"), "{:?}", server.requests());
}
