//! `GET /metrics`: the dashboard's own series and the camera monitor's, in Prometheus' text
//! format, written with the writer every service shares ([`ds_runtime::prometheus`]).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ds_cameras::{CameraStatus, State as CamState};
use ds_config::CamerasConfig;
use ds_runtime::prometheus::{CONTENT_TYPE, Kind, Writer};

use super::AppState;

pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let streamer_up = s.streamer.json::<ds_wire::health::HealthReport>("/api/health").await.is_ok();
    let list = s.cameras.fleet.current();
    let ages = list
        .streams
        .iter()
        .filter_map(|c| {
            let id = c.stable_id();
            Some((id.clone(), s.cameras.live.last_frame_age(&id)?))
        })
        .collect();
    let mut body = render(streamer_up, s.systemd.is_up(), &list, &s.cameras.live.all(), &ages);
    let mut connections = Writer::new();
    s.served.write_metrics(&mut connections, "desktop_streamer_web");
    body.push_str(&connections.finish());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// The whole text: whether the dashboard's peers answer, then each camera's series (a camera
/// without a heartbeat yet has none). `frame_ages` are measured on the monotonic clock (by
/// the live state), so a step of the wall clock does not make them absurd.
fn render(
    streamer_up: bool,
    systemd_up: bool,
    list: &CamerasConfig,
    live: &HashMap<String, CameraStatus>,
    frame_ages: &HashMap<String, Duration>,
) -> String {
    let mut w = Writer::new();
    w.single("desktop_streamer_web_up", Kind::Gauge, "1 while the dashboard answers", 1);
    w.single(
        "desktop_streamer_web_streamer_reachable",
        Kind::Gauge,
        "1 when the streamer's API answers",
        u8::from(streamer_up),
    );
    w.single(
        "desktop_streamer_web_systemd_reachable",
        Kind::Gauge,
        "1 when systemd's D-Bus API is connected",
        u8::from(systemd_up),
    );
    cameras(&mut w, list, live, frame_ages);
    w.finish()
}

/// The cameras' series, each family over every camera that has a figure for it.
fn cameras(
    w: &mut Writer,
    list: &CamerasConfig,
    live: &HashMap<String, CameraStatus>,
    frame_ages: &HashMap<String, Duration>,
) {
    let rows: Vec<(Option<&CameraStatus>, String, &str)> = list
        .streams
        .iter()
        .map(|cam| {
            let id = cam.stable_id();
            (live.get(&id), id, cam.name.as_str())
        })
        .collect();
    let states = || rows.iter().filter_map(|(l, id, name)| Some((l.as_ref()?.state?, id.as_str(), *name)));

    let mut up = w.family(
        "ds_camera_up",
        Kind::Gauge,
        "1 when the camera's last heartbeat proved video arrives (UP or DEGRADED).",
    );
    for (state, id, name) in states() {
        up.sample(&[("camera", id), ("name", name)], u8::from(matches!(state, CamState::Up | CamState::Degraded)));
    }
    let mut family = w.family("ds_camera_state", Kind::Gauge, "The camera's state: 1 for the state it is in.");
    for (state, id, name) in states() {
        for s in CamState::ALL {
            family.sample(&[("camera", id), ("name", name), ("state", s.as_str())], u8::from(state == s));
        }
    }
    let mut latency =
        w.family("ds_camera_latency_seconds", Kind::Gauge, "Time from the start of the last probe to its first frame.");
    for (l, id, name) in &rows {
        if let Some(ms) = l.and_then(|l| l.last_heartbeat.as_ref()?.latency_ms) {
            latency.sample(&[("camera", id), ("name", name)], format_args!("{:.3}", f64::from(ms) / 1000.0));
        }
    }
    let mut age = w.family(
        "ds_camera_last_frame_age_seconds",
        Kind::Gauge,
        "Seconds since a frame last arrived from the camera.",
    );
    for (_, id, name) in &rows {
        if let Some(a) = frame_ages.get(id) {
            age.sample(&[("camera", id), ("name", name)], format_args!("{:.1}", a.as_secs_f64()));
        }
    }
}

#[cfg(test)]
mod tests {
    use ds_cameras::{Heartbeat, Reason};
    use ds_config::Camera;
    use jiff::Timestamp;

    use super::*;

    /// Three cameras: one UP with a measured probe, one DOWN whose name needs escaping, one
    /// without a heartbeat yet.
    fn fleet(now: Timestamp) -> (CamerasConfig, HashMap<String, CameraStatus>) {
        let camera = |name: &str| Camera {
            name: name.into(),
            url: format!("rtsp://192.0.2.1/{}", name.len()),
            ..Camera::default()
        };
        let list = CamerasConfig {
            streams: vec![camera("gate"), camera("yard \"north\"\\\nside"), camera("new")],
            ..CamerasConfig::default()
        };
        let status = |cam: &Camera, state: CamState, latency_ms: Option<u32>, frame_ago: i64| {
            let id = cam.stable_id();
            let at = now - jiff::SignedDuration::from_secs(5);
            let last_frame_at = Some(now - jiff::SignedDuration::from_millis(frame_ago));
            let reason = (state != CamState::Up).then_some(Reason::Refused);
            let heartbeat = Heartbeat {
                camera_id: id.clone(),
                at,
                state,
                reason,
                message: None,
                latency_ms,
                codec: None,
                width: None,
                height: None,
                last_frame_at,
                clock_synchronized: None,
            };
            let status = CameraStatus {
                camera_id: id.clone(),
                name: cam.name.clone(),
                url: cam.masked_url(),
                heartbeat_seconds: 10,
                state: Some(state),
                reason,
                message: None,
                since: Some(at),
                since_instant: None,
                consecutive_failures: 0,
                last_frame_at,
                packets_lost: None,
                pictures: None,
                last_heartbeat: Some(heartbeat),
            };
            (id, status)
        };
        let live = HashMap::from([
            status(&list.streams[0], CamState::Up, Some(1234), 2_340),
            status(&list.streams[1], CamState::Down, None, 61_000),
        ]);
        (list, live)
    }

    const BEFORE: &str = r##"# HELP desktop_streamer_web_up 1 while the dashboard answers
# TYPE desktop_streamer_web_up gauge
desktop_streamer_web_up 1
# HELP desktop_streamer_web_streamer_reachable 1 when the streamer's API answers
# TYPE desktop_streamer_web_streamer_reachable gauge
desktop_streamer_web_streamer_reachable 1
# HELP desktop_streamer_web_systemd_reachable 1 when systemd's D-Bus API is connected
# TYPE desktop_streamer_web_systemd_reachable gauge
desktop_streamer_web_systemd_reachable 0
# HELP ds_camera_up 1 when the camera's last heartbeat proved video arrives (UP or DEGRADED).
# TYPE ds_camera_up gauge
ds_camera_up{camera="gate",name="gate"} 1
ds_camera_up{camera="yard-north-side",name="yard \"north\"\\\nside"} 0
# HELP ds_camera_state The camera's state: 1 for the state it is in.
# TYPE ds_camera_state gauge
ds_camera_state{camera="gate",name="gate",state="UP"} 1
ds_camera_state{camera="gate",name="gate",state="PENDING"} 0
ds_camera_state{camera="gate",name="gate",state="DOWN"} 0
ds_camera_state{camera="gate",name="gate",state="DEGRADED"} 0
ds_camera_state{camera="yard-north-side",name="yard \"north\"\\\nside",state="UP"} 0
ds_camera_state{camera="yard-north-side",name="yard \"north\"\\\nside",state="PENDING"} 0
ds_camera_state{camera="yard-north-side",name="yard \"north\"\\\nside",state="DOWN"} 1
ds_camera_state{camera="yard-north-side",name="yard \"north\"\\\nside",state="DEGRADED"} 0
# HELP ds_camera_latency_seconds Time from the start of the last probe to its first frame.
# TYPE ds_camera_latency_seconds gauge
ds_camera_latency_seconds{camera="gate",name="gate"} 1.234
# HELP ds_camera_last_frame_age_seconds Seconds since a frame last arrived from the camera.
# TYPE ds_camera_last_frame_age_seconds gauge
ds_camera_last_frame_age_seconds{camera="gate",name="gate"} 2.3
ds_camera_last_frame_age_seconds{camera="yard-north-side",name="yard \"north\"\\\nside"} 61.0
"##;

    /// Byte for byte what the dashboard's and the cameras' hand-written renderers answered
    /// before the shared writer: names, labels, values, help texts and order.
    #[test]
    fn the_text_is_what_it_was() {
        let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let (list, live) = fleet(now);
        assert_eq!(render(true, false, &list, &live, &ages(&list)), BEFORE);
    }

    /// The frames' ages as the live state measures them: 2.34 s and 61 s.
    fn ages(list: &CamerasConfig) -> HashMap<String, Duration> {
        HashMap::from([
            (list.streams[0].stable_id(), Duration::from_millis(2_340)),
            (list.streams[1].stable_id(), Duration::from_secs(61)),
        ])
    }
}
