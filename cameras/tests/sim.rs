//! The simulated cameras of the fleet benchmark (ds_tests::rtsp_sim) against the real
//! prober: retina must take them exactly as it takes a camera, or the benchmark's figures
//! would measure something else than probing. The simulator's misbehaving mounts (audio
//! only, a repeated picture, lost packets) and its record of requests test what the prober
//! makes of them; the loopback peers of ds_tests::tcp_peer test timeouts and broken
//! connections.

use std::collections::HashSet;
use std::time::Duration;

use ds_cameras::Decoder;
use ds_cameras::probe::{NetworkProber, Prober};
use ds_cameras::verdict::Tracker;
use ds_cameras::{Reason, State};
use ds_config::cameras::ProbeSettings;
use ds_tests::rtsp_sim::{Clip, ClipSpec, SimServer, StartAt, clip};
use ds_tests::tcp_peer::{Behaviour, TcpPeer};
use ds_tests::wait::try_wait_until_async;

const STEP: Duration = Duration::from_secs(3);
/// How long a TEARDOWN may take to reach the server after its probe returned.
const TEARDOWN_WAIT: Duration = Duration::from_secs(2);
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
        assert_eq!(proof.packets_lost, Some(0), "{proof:?}");
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
        assert_eq!(proof.packets_lost, Some(0), "{proof:?}");
        assert!(proof.latency < interval + Duration::from_millis(500), "{proof:?}");
    }
}

/// A mount that describes only audio: `no_video_track`, with a message naming what it has.
#[tokio::test]
async fn an_audio_only_stream_has_no_video_track() {
    let server = SimServer::start(Clip::encode(&ClipSpec::SMALL).expect("encode the clip"), 1, StartAt::GopCache);
    let f = NetworkProber::new().unwrap().probe(&server.url_of("audio"), STEP, true).await.expect_err("no video");
    assert_eq!(f.reason, Reason::NoVideoTrack, "{f}");
    assert_eq!(f.message, "the stream describes no video, only audio/pcmu");
    let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
    assert!(!methods.iter().any(|m| m == "SETUP" || m == "PLAY"), "nothing is set up without video: {methods:?}");
}

/// A port that accepts and never answers: `timeout`, naming the step and the limit, within
/// the step's time. A port that accepts and hangs up: `unreachable`, saying the connection
/// broke. (A port where nothing listens is `refused`: tests/probes.rs.)
#[tokio::test]
async fn a_silent_camera_times_out_and_a_hang_up_is_unreachable() {
    let prober = NetworkProber::new().unwrap();
    let step = Duration::from_secs(1);
    let silent = TcpPeer::start(Behaviour::Silent);
    let started = std::time::Instant::now();
    let f = prober.probe(&silent.url("rtsp", "live"), step, true).await.expect_err("no answer");
    let took = started.elapsed();
    assert_eq!(f.reason, Reason::Timeout, "{f}");
    assert_eq!(f.message, "connecting and DESCRIBE took longer than 1 s");
    assert!(took >= step && took < step + Duration::from_millis(500), "bounded by the step timeout: {took:?}");
    assert_eq!(silent.accepted(), 1, "the probe did connect");
    let f = prober.probe(&silent.url("http", "video.mjpg"), step, true).await.expect_err("no answer");
    assert_eq!(f.reason, Reason::Timeout, "{f}");
    assert!(f.message.contains("took longer than 1 s"), "{f}");

    let hang_up = TcpPeer::start(Behaviour::HangUp);
    let f = prober.probe(&hang_up.url("rtsp", "live"), step, true).await.expect_err("hung up");
    assert_eq!(f.reason, Reason::Unreachable, "{f}");
    assert!(f.message.starts_with("the connection broke during connecting and DESCRIBE: "), "{f}");
    assert!(f.message.contains("EOF"), "says what happened: {f}");
}

/// Identical coded frames (`/frozen`) against a moving picture (`/cam0`), decoded: within
/// one probe the repeated frame's pictures do not move and the ball's do; through the
/// verdict, the repeated picture is DEGRADED/frozen after `frozen_seconds` and the moving one
/// stays UP.
#[tokio::test]
async fn repeated_frames_are_frozen_and_moving_ones_are_not() {
    let server = SimServer::start(Clip::encode(&ClipSpec::SMALL).expect("encode the clip"), 1, StartAt::Live);
    let prober = NetworkProber::new().unwrap();
    let decoder = Decoder::new(1, 4);
    let settings = ProbeSettings {
        heartbeat_seconds: 5,
        timeout_seconds: 3,
        retries: 0,
        frozen_seconds: 5,
        black_seconds: 0,
        max_packets_lost: 0,
        verify_tls: true,
    };
    let t0 = tokio::time::Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let look = async |url: String| {
        let proof = prober.probe(&url, STEP, true).await.expect("the mount sends video");
        let pictures = decoder.decode(proof.coded.clone().expect("frames to decode")).await.expect("decoded");
        (proof, pictures)
    };

    let (mut frozen, mut moving) = (Tracker::default(), Tracker::default());
    for beat in 0..2 {
        let (still, still_pictures) = look(server.url_of("frozen")).await;
        assert!(
            !still_pictures.moved(),
            "a repeated frame does not move: {}",
            still_pictures.first.mean_difference(&still_pictures.last)
        );
        assert_eq!((still_pictures.first.width, still_pictures.first.height), (320, 240));
        let (live, live_pictures) = look(server.url(0)).await;
        assert!(live_pictures.moved(), "the ball moves: {}", live_pictures.first.mean_difference(&live_pictures.last));
        let when = at(beat * u64::from(settings.heartbeat_seconds));
        let v = frozen.judge(when, &Ok(still), Some(&still_pictures), &settings);
        let expected = if beat == 0 { (State::Up, None) } else { (State::Degraded, Some(Reason::Frozen)) };
        assert_eq!((v.state, v.reason), expected, "beat {beat}: {v:?}");
        let v = moving.judge(when, &Ok(live), Some(&live_pictures), &settings);
        assert_eq!((v.state, v.reason), (State::Up, None), "beat {beat}: {v:?}");
    }
}

/// `/lossy` leaves out three of every four frames between keyframes, its sequence numbers jumping:
/// the probe counts the missing packets, and the camera is DEGRADED/packet_loss; the clean
/// mount counts none and is UP.
#[tokio::test]
async fn lost_packets_are_counted_from_sequence_numbers() {
    let server = SimServer::start(Clip::encode(&ClipSpec::SMALL).expect("encode the clip"), 1, StartAt::GopCache);
    let prober = NetworkProber::new().unwrap();
    let lossy = prober.probe(&server.url_of("lossy"), STEP, true).await.expect("a lossy camera still sends video");
    let limit = ds_config::cameras::DEFAULT_MAX_PACKETS_LOST;
    assert!(lossy.packets_lost.is_some_and(|n| n > limit), "{lossy:?}");
    let clean = prober.probe(&server.url(0), STEP, true).await.unwrap();
    assert_eq!(clean.packets_lost, Some(0), "{clean:?}");
    // Through the verdict with the default limit: DEGRADED/packet_loss.
    let settings = ds_config::CamerasConfig::default().probe_settings(&ds_config::Camera::default());
    let now = tokio::time::Instant::now();
    let v = Tracker::default().judge(now, &Ok(lossy), None, &settings);
    assert_eq!((v.state, v.reason), (State::Degraded, Some(Reason::PacketLoss)), "{v:?}");
    let v = Tracker::default().judge(now, &Ok(clean), None, &settings);
    assert_eq!((v.state, v.reason), (State::Up, None), "{v:?}");
}

/// `/joined` is a stream joined mid-stream, as through a restreamer: `RTP-Info` names a
/// packet three before the first one sent, which is the second fragment of a keyframe.
/// Neither the gap nor the fragment whose start never came is a loss: 0 lost, and UP with
/// the default limit, every time.
#[tokio::test]
async fn a_stream_joined_mid_stream_loses_nothing() {
    let clip = Clip::encode(&ClipSpec::parse("640x480@1500").unwrap()).expect("encode the clip");
    let server = SimServer::start(clip, 1, StartAt::GopCache);
    let prober = NetworkProber::new().unwrap();
    let settings = ds_config::CamerasConfig::default().probe_settings(&ds_config::Camera::default());
    for _ in 0..3 {
        let proof = prober.probe(&server.url_of("joined"), STEP, true).await.expect("a joined stream proves video");
        assert_eq!(proof.packets_lost, Some(0), "{proof:?}");
        let v = Tracker::default().judge(tokio::time::Instant::now(), &Ok(proof), None, &settings);
        assert_eq!((v.state, v.reason), (State::Up, None), "{v:?}");
    }
}

/// Every session a probe sets up is torn down: the server sees a TEARDOWN naming each
/// session its SETUP created, for probes one after another and at the same time.
#[tokio::test]
async fn every_probe_session_ends_with_a_teardown() {
    const MOUNTS: usize = 4;
    let server = SimServer::start(Clip::encode(&ClipSpec::SMALL).expect("encode the clip"), MOUNTS, StartAt::GopCache);
    let prober = NetworkProber::new().unwrap();
    for _ in 0..2 {
        prober.probe(&server.url(0), STEP, true).await.expect("video");
    }
    let probes = (0..MOUNTS).map(|m| {
        let (prober, url) = (prober.clone(), server.url(m));
        tokio::spawn(async move { prober.probe(&url, STEP, true).await })
    });
    for p in probes {
        p.await.unwrap().expect("video");
    }
    prober.probe(&server.url_of("frozen"), STEP, true).await.expect("video");

    // retina tears a TCP session down with one TEARDOWN and then closes the connection; the
    // server may read it just after the probe returned.
    let torn_down_all = |seen: &[ds_tests::rtsp_sim::Seen]| {
        let setups = seen.iter().filter(|r| r.method == "SETUP").count();
        seen.iter().filter(|r| r.method == "TEARDOWN").count() >= setups
    };
    // Not asserted here: the checks below say which session lacks its TEARDOWN.
    let _ = try_wait_until_async("a TEARDOWN for every SETUP", TEARDOWN_WAIT, || {
        let done = torn_down_all(&server.requests());
        async move { done }
    })
    .await;
    let seen = server.requests();
    let sessions: Vec<String> = seen
        .iter()
        .filter(|r| r.method == "SETUP")
        .map(|r| r.session.clone().expect("SETUP creates a session"))
        .collect();
    let unique: HashSet<&String> = sessions.iter().collect();
    assert_eq!((sessions.len(), unique.len()), (MOUNTS + 3, MOUNTS + 3), "one session per probe: {seen:?}");
    let torn_down: Vec<&String> =
        seen.iter().filter(|r| r.method == "TEARDOWN").filter_map(|r| r.session.as_ref()).collect();
    for s in &sessions {
        assert_eq!(torn_down.iter().filter(|t| **t == s).count(), 1, "one TEARDOWN for session {s}: {seen:?}");
    }
    assert_eq!(torn_down.len(), sessions.len(), "no TEARDOWN for a session that was not set up: {seen:?}");
}
