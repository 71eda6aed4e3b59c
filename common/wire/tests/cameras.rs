//! The camera list holds today's JSON byte for byte. The golden document follows the
//! dashboard's writer as it was before the types (a `json!` object per camera: its
//! configuration, then its live part, then `thumbnail`, `uptime` and `bar`), including the
//! short live part of a camera that has had no heartbeat yet (with the thumbnail a restarted
//! service kept on disk).

use ds_wire::cameras::*;

const LIST: &str = include_str!("golden/cameras.json");

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn list() -> CameraList {
    CameraList {
        heartbeat_seconds: 30,
        timezone: "Europe/Berlin".into(),
        verify_tls: true,
        file_problem: Some(FileProblem {
            messages: vec!["cameras.yaml:4:9: streams[1].url = ftp://x: must be rtsp, rtsps, http or https".into()],
            noticed_at: t("2026-12-07T03:00:00Z"),
        }),
        history_problem: None,
        thumbnails_behind: Some(ThumbnailsBehind {
            refresh_seconds: 45,
            cameras: 1000,
            decoded: 6700,
            skipped: 13300,
            window_seconds: 300,
            picture_cpu_percent: 4.0,
        }),
        cameras: vec![
            CameraEntry {
                config: CameraConfig {
                    id: "gate".into(),
                    name: "Gate".into(),
                    url: "rtsp://admin:***@192.0.2.1:554/stream".into(),
                    heartbeat_seconds: 30,
                    heartbeat_override: None,
                    verify_tls: true,
                    verify_tls_override: None,
                    frozen_seconds: 60,
                    frozen_override: None,
                    black_seconds: 0,
                    black_override: Some(0),
                    max_packets_lost: 2,
                    max_packets_lost_override: None,
                },
                live: CameraLive::Probed(Probed {
                    state: State::Down,
                    reason: Some(Reason::AuthFailed),
                    message: Some("401 Unauthorized after DESCRIBE".into()),
                    since: Some(t("2026-12-07T02:55:00Z")),
                    state_age_seconds: Some(300.25),
                    consecutive_failures: 4,
                    last_heartbeat_at: Some(t("2026-12-07T03:00:00Z")),
                    latency_ms: None,
                    codec: None,
                    width: None,
                    height: None,
                    last_frame_at: Some(t("2026-12-07T02:54:30.5Z")),
                    last_frame_age_seconds: Some(329.5),
                    packets_lost: None,
                    pictures: Some(PictureCounts { window_seconds: 300, decoded: 7, skipped: 3 }),
                }),
                thumbnail: Some(ThumbnailInfo { taken_at: t("2026-12-07T02:54:30Z"), width: 320, height: 180 }),
                uptime: UptimeSummary { day: Some(99.5), week: Some(98.25), month: None },
                bar: vec![
                    BarBucket { start: t("2026-12-07T02:00:00Z"), worst: Some(State::Up) },
                    BarBucket { start: t("2026-12-07T02:02:00Z"), worst: None },
                ],
            },
            CameraEntry {
                config: CameraConfig {
                    id: "lab".into(),
                    name: "Lab".into(),
                    url: "https://192.0.2.2/mjpeg".into(),
                    heartbeat_seconds: 10,
                    heartbeat_override: Some(10),
                    verify_tls: false,
                    verify_tls_override: Some(false),
                    frozen_seconds: 600,
                    frozen_override: Some(600),
                    black_seconds: 60,
                    black_override: None,
                    max_packets_lost: 20,
                    max_packets_lost_override: Some(20),
                },
                live: CameraLive::Waiting(Waiting { state: (), message: Waiting::MESSAGE.into() }),
                // Kept on disk from before a restart: a picture before the first heartbeat.
                thumbnail: Some(ThumbnailInfo { taken_at: t("2026-12-06T22:10:00Z"), width: 320, height: 240 }),
                uptime: UptimeSummary::default(),
                bar: Vec::new(),
            },
        ],
    }
}

#[test]
fn the_camera_list_is_written_and_read_as_today() {
    assert_eq!(serde_json::to_string(&list()).unwrap(), LIST.trim_end());
    assert_eq!(serde_json::from_str::<CameraList>(LIST).unwrap(), list());
}

#[test]
fn a_camera_event_is_the_live_part_and_the_id() {
    let event = CameraEvent { live: list().cameras[1].live.clone(), id: "lab".into(), thumbnail: None };
    let written = serde_json::to_string(&event).unwrap();
    assert_eq!(written, r#"{"state":null,"message":"waiting for the first heartbeat","id":"lab"}"#);
    assert_eq!(serde_json::from_str::<CameraEvent>(&written).unwrap(), event);
    let event = CameraEvent { thumbnail: list().cameras[1].thumbnail, ..event };
    let written = serde_json::to_string(&event).unwrap();
    assert!(
        written.ends_with(r#""id":"lab","thumbnail":{"taken_at":"2026-12-06T22:10:00Z","width":320,"height":240}}"#),
        "{written}"
    );
    assert_eq!(serde_json::from_str::<CameraEvent>(&written).unwrap(), event);
}

#[test]
fn state_and_reason_words_are_the_documented_ones() {
    for s in State::ALL {
        assert_eq!(s.as_str().parse::<State>().unwrap(), s);
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for r in Reason::ALL {
        assert_eq!(r.as_str().parse::<Reason>().unwrap(), r);
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
    let e = "sideways".parse::<State>().unwrap_err().to_string();
    assert_eq!(e, "`sideways` is not a known camera state; expected one of: UP, PENDING, DOWN, DEGRADED");
}

#[test]
fn streampulse_status_keeps_its_shape_and_the_lists_order() {
    let golden = r#"{"Zulu":{"ts":"","status":"","latency":null,"message":"no data yet"},"Alpha":{"ts":"2026-12-07T04:00:00.000000+01:00","status":"fail","latency":null,"message":"connection refused","state":"DOWN","reason":"refused"},"Mike":{"ts":"2026-12-07T04:00:01.250000+01:00","status":"ok","latency":180,"message":"video arrived","state":"UP","reason":null}}"#;
    let status = StreamPulseStatus(vec![
        (
            "Zulu".into(),
            StreamPulseEntry {
                ts: String::new(),
                status: String::new(),
                latency: None,
                message: "no data yet".into(),
                state: None,
            },
        ),
        (
            "Alpha".into(),
            StreamPulseEntry {
                ts: "2026-12-07T04:00:00.000000+01:00".into(),
                status: "fail".into(),
                latency: None,
                message: "connection refused".into(),
                state: Some(StreamPulseState { state: State::Down, reason: Some(Reason::Refused) }),
            },
        ),
        (
            "Mike".into(),
            StreamPulseEntry {
                ts: "2026-12-07T04:00:01.250000+01:00".into(),
                status: "ok".into(),
                latency: Some(180),
                message: "video arrived".into(),
                state: Some(StreamPulseState { state: State::Up, reason: None }),
            },
        ),
    ]);
    assert_eq!(serde_json::to_string(&status).unwrap(), golden);
    assert_eq!(serde_json::from_str::<StreamPulseStatus>(golden).unwrap(), status);
}
