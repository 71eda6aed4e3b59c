//! Each probe against real servers on loopback: GStreamer's RTSP server
//! (tests/fixtures/rtsp_server.py) and the test MJPEG server (ds_tests::mjpeg).

use std::time::Duration;

use ds_cameras::Reason;
use ds_cameras::probe::{NetworkProber, ProbeOutcome, Prober};
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
    let again = probe(&server.url("live")).await.unwrap();
    assert_ne!(again.picture.fingerprint, proof.picture.fingerprint, "a moving picture gives new keyframes");

    let f1 = probe(&server.url("frozen")).await.unwrap();
    let f2 = probe(&server.url("frozen")).await.unwrap();
    assert_eq!(f1.picture.fingerprint, f2.picture.fingerprint, "a still picture gives the same keyframe");

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

#[tokio::test]
async fn mjpeg_probes() {
    let server = MjpegServer::start();
    let (w, h) = MjpegServer::frame_size();
    let proof = probe(&server.url("live")).await.expect("a live MJPEG stream proves video");
    assert_eq!((proof.codec.as_str(), proof.width, proof.height), ("jpeg", Some(w), Some(h)));
    assert!(proof.picture.changed);
    let proof = probe(&server.url("snapshot.jpg")).await.expect("two snapshots prove video");
    assert!(proof.picture.changed);
    let proof = probe(&server.url("frozen")).await.unwrap();
    assert!(!proof.picture.changed && proof.picture.unchanged_for > Duration::ZERO, "{proof:?}");

    failure(probe(&server.url("missing")).await, Reason::NotFound, None);
    failure(probe(&server.url("headers-only")).await, Reason::NoFrames, None);
    failure(probe(&server.url("garbage")).await, Reason::BadData, None);
    let m = failure(probe(&server.url("auth")).await, Reason::AuthFailed, None);
    assert!(m.contains("asks for credentials"), "{m}");
    failure(probe(&server.auth_url(mjpeg::USER, "not-it")).await, Reason::AuthFailed, Some("not-it"));
    probe(&server.auth_url(mjpeg::USER, mjpeg::PASSWORD)).await.expect("right Basic credentials");
    assert!(server.requests().iter().all(|(method, _)| method == "GET"), "{:?}", server.requests());
}
