//! The simulated cameras of the fleet benchmark (ds_tests::rtsp_sim) against the real
//! prober: retina must take them exactly as it takes a camera, or the benchmark's figures
//! would measure something else than probing.

use std::time::Duration;

use ds_cameras::Reason;
use ds_cameras::probe::{NetworkProber, Prober};
use ds_tests::rtsp_sim::{Clip, ClipSpec, SimServer, StartAt, clip};

const STEP: Duration = Duration::from_secs(3);
const MOUNTS: usize = 25;

#[tokio::test]
async fn the_prober_proves_video_from_simulated_cameras() {
    let clip = Clip::encode(&ClipSpec::SMALL).expect("encode the clip with gst-launch-1.0");
    let server = SimServer::start(clip, MOUNTS, StartAt::GopCache);
    let prober = NetworkProber::new().unwrap();

    for mount in [0, MOUNTS - 1] {
        let proof = prober.probe(&server.url(mount), STEP, true).await.expect("a simulated camera proves video");
        assert_eq!(
            (proof.codec.as_str(), proof.width, proof.height),
            ("h264", Some(ClipSpec::SMALL.width), Some(ClipSpec::SMALL.height)),
            "{proof:?}"
        );
        assert_eq!(proof.packets_lost, 0, "{proof:?}");
        // The cached keyframe goes out at once after PLAY.
        assert!(proof.latency < Duration::from_millis(500), "{proof:?}");
    }

    let f = prober.probe(&server.url(MOUNTS), STEP, true).await.expect_err("a mount past the last one");
    assert_eq!(f.reason, Reason::NotFound, "{f}");
    assert!(f.message.contains("404"), "{f}");
    let f = prober.probe(&format!("rtsp://127.0.0.1:{}/live", server.port), STEP, true).await.unwrap_err();
    assert_eq!(f.reason, Reason::NotFound, "{f}");

    // Every mount at once: sessions do not disturb each other.
    let probes = (0..MOUNTS).map(|m| {
        let (prober, url) = (prober.clone(), server.url(m));
        tokio::spawn(async move { prober.probe(&url, STEP, true).await })
    });
    for (mount, probe) in probes.enumerate() {
        let outcome = probe.await.unwrap();
        assert!(outcome.is_ok(), "/cam{mount}: {outcome:?}");
    }
}

/// Sessions that start in the middle of a group of pictures, with keyframes larger than an
/// RTP packet (FU-A fragments): the prober skips the predicted frames and proves video with
/// the next keyframe, within one keyframe interval (a second).
#[tokio::test]
async fn the_prober_waits_for_the_keyframe_of_a_live_start() {
    let spec = ClipSpec::parse("640x480@1500").unwrap();
    let clip = Clip::encode(&spec).expect("encode the clip with gst-launch-1.0");
    let fragmented = |f: &clip::Frame| f.payloads.iter().any(|p| p.data[0] & 0x1f == clip::NAL_FU_A);
    assert!(clip.frames().iter().filter(|f| f.keyframe).all(fragmented), "keyframes should need FU-A");
    let server = SimServer::start(clip, 1, StartAt::Live);
    let prober = NetworkProber::new().unwrap();
    let interval = Duration::from_secs(u64::from(spec.keyframe_interval / clip::FPS));
    for _ in 0..3 {
        let proof = prober.probe(&server.url(0), STEP, true).await.expect("a live start proves video");
        assert_eq!((proof.codec.as_str(), proof.width, proof.height), ("h264", Some(640), Some(480)), "{proof:?}");
        assert_eq!(proof.packets_lost, 0, "{proof:?}");
        assert!(proof.latency < interval + Duration::from_millis(500), "{proof:?}");
    }
}
