//! What a person sees when a file is wrong: every problem at once, each with file, line,
//! column, key path, the value and what is allowed.

use std::path::Path;

use crate::common::{load_err, warnings_of};
use ds_config::{CamerasConfig, StreamerConfig, WatchdogConfig, WebConfig, load_str};

#[test]
fn an_empty_object_means_all_defaults() {
    let s = load_str::<StreamerConfig>(Path::new("config.json"), "{}").unwrap();
    assert_eq!(s.config, StreamerConfig::default());
    assert!(s.warnings.is_empty());
    assert_eq!(load_str::<WatchdogConfig>(Path::new("w.json"), "{}").unwrap().config, WatchdogConfig::default());
    assert_eq!(load_str::<WebConfig>(Path::new("web.json"), "{}").unwrap().config, WebConfig::default());
    assert_eq!(load_str::<CamerasConfig>(Path::new("c.yaml"), "").unwrap().config, CamerasConfig::default());
    // A file of comments only is the same as {}.
    assert_eq!(
        load_str::<StreamerConfig>(Path::new("c.json"), "// nothing\n").unwrap().config,
        StreamerConfig::default()
    );
}

#[test]
fn a_missing_key_takes_its_default_and_the_rest_is_kept() {
    let s = load_str::<StreamerConfig>(Path::new("c.json"), r#"{"fps": 25, "live_streaming": {"max_segments": 8}}"#)
        .unwrap()
        .config;
    assert_eq!(s.fps, 25);
    assert_eq!(s.live_streaming.max_segments, 8);
    assert_eq!(s.live_streaming.emergency_segments, 2);
    assert_eq!(s.width, 1280);
}

#[test]
fn a_typo_warns_with_its_path_and_a_suggestion() {
    let w = warnings_of::<StreamerConfig>(
        "config.json",
        "{\n  \"fsp\": 15,\n  \"live_streaming\": {\n    \"max_segment\": 5\n  },\n  \"colour\": \"red\"\n}",
    );
    assert_eq!(
        w,
        [
            "config.json:2:3: warning: fsp: unknown key, ignored (did you mean `fps`?)",
            "config.json:4:5: warning: live_streaming.max_segment: unknown key, ignored (did you mean `max_segments`?)",
            "config.json:6:3: warning: colour: unknown key, ignored",
        ]
    );
    let w = warnings_of::<CamerasConfig>("cameras.yaml", "streams:\n- name: a\n  url: rtsp://h/\n  ulr: rtsp://x/\n");
    assert_eq!(w, ["cameras.yaml:4:3: warning: streams[0].ulr: unknown key, ignored (did you mean `url`?)"]);
}

#[test]
fn an_out_of_range_value_names_file_line_column_path_value_and_range() {
    let e = load_err::<StreamerConfig>("config.json", "{\n  \"width\": 1280,\n  \"height\": 720,\n  \"fps\": 0\n}");
    assert_eq!(e, ["config.json:4:10: fps = 0: must be 1..=120"]);
}

#[test]
fn each_kind_of_invalid_value_is_explained() {
    let cases: &[(&str, &str)] = &[
        (r#"{"fps": "fast"}"#, "config.json:1:9: fps = \"fast\": expected a whole number (0 or more)"),
        (r#"{"fps": -3}"#, "config.json:1:9: fps = -3: expected a whole number (0 or more)"),
        (r#"{"fps": 2.5}"#, "config.json:1:9: fps = 2.5: expected a whole number (0 or more)"),
        (r#"{"width": 1279}"#, "config.json:1:11: width = 1279: must be even"),
        (r#"{"listen": "8888"}"#, "config.json:1:12: listen = \"8888\": invalid socket address syntax"),
        (r#"{"output_dir": "hls"}"#, "config.json:1:16: output_dir = \"hls\": must be an absolute directory path"),
        (r#"{"keyframe_interval": 4}"#, "keyframe_interval = 4: must be at most segment_duration (2 s)"),
        (
            r#"{"encoder": "x264enc ! fakesink"}"#,
            "encoder = \"x264enc ! fakesink\": must be `auto` or one GStreamer element",
        ),
        (r#"{"live_streaming": []}"#, "live_streaming = []: expected a mapping of keys to values"),
        (
            r#"{"performance": {"low_latency_mode": "yes"}}"#,
            "performance.low_latency_mode = \"yes\": expected true or false",
        ),
    ];
    for (text, expected) in cases {
        let e = load_err::<StreamerConfig>("config.json", text);
        assert_eq!(e.len(), 1, "{text}: {e:#?}");
        assert!(e[0].contains(expected), "{text}:\n  got      {}\n  expected {expected}", e[0]);
    }
    // serde alone would fill a section from a list by position.
    let e = load_err::<StreamerConfig>("config.json", r#"{"live_streaming": [5, 2]}"#);
    assert_eq!(e, ["config.json:1:20: live_streaming = [5,2]: expected a mapping of keys to values"]);
    let e = load_err::<WatchdogConfig>("w.json", r#"{"bus": "sesion"}"#);
    assert_eq!(e, ["w.json:1:9: bus = \"sesion\": expected `system` or `session`"]);
    let e = load_err::<CamerasConfig>("c.yaml", "timezone: Mars/Olympus\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("c.yaml:1:11: timezone = \"Mars/Olympus\": is not a known IANA time zone"), "{e:?}");
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let text = r#"{
    "fps": 500,
    "width": "wide",
    "bitrate": 10,
    "bitrat": 2000,
    "live_streaming": {
        "max_segments": 2,
        "cleanup_threshold_percent": "high"
    },
    "performance": {"thread_count": 99}
}"#;
    let e = load_err::<StreamerConfig>("config.json", text);
    assert_eq!(
        e,
        [
            "config.json:2:12: fps = 500: must be 1..=120",
            "config.json:3:14: width = \"wide\": expected a whole number (0 or more)",
            "config.json:4:16: bitrate = 10: must be 100..=100000",
            "config.json:5:5: warning: bitrat: unknown key, ignored (did you mean `bitrate`?)",
            "config.json:7:25: live_streaming.max_segments = 2: must be 3..=100",
            "config.json:8:38: live_streaming.cleanup_threshold_percent = \"high\": expected a whole number (0 or more)",
            "config.json:10:37: performance.thread_count = 99: must be 0..=64",
        ]
    );
}

#[test]
fn camera_list_problems_point_into_the_yaml() {
    let text = "heartbeat_seconds: 1\nstreams:\n- name: Gate\n  url: ftp://admin:hunter2@10.0.0.5/\n- name: gate\n  url: rtsp://10.0.0.6/s\n- name: ''\n  url: 'rtsp://'\n";
    let e = load_err::<CamerasConfig>("cameras.yaml", text);
    assert_eq!(e.len(), 5, "{e:#?}");
    assert_eq!(e[0], "cameras.yaml:1:20: heartbeat_seconds = 1: must be 5..=86400");
    assert!(e[1].starts_with("cameras.yaml:4:8: streams[0].url = \"ftp://admin:***@10.0.0.5/\": scheme `ftp` is not supported; expected rtsp://"), "{}", e[1]);
    assert_eq!(
        e[2],
        "cameras.yaml:5:9: streams[1].name = \"gate\": is already the name of streams[0]; names must be unique"
    );
    assert_eq!(e[3], "cameras.yaml:7:9: streams[2].name = \"\": every camera needs a name");
    assert!(e[4].starts_with("cameras.yaml:8:8: streams[2].url = \"rtsp://\": has no host"), "{}", e[4]);
    assert!(e.iter().all(|l| !l.contains("hunter2")), "no password in any message: {e:#?}");
}

#[test]
fn secrets_never_appear_in_messages() {
    let e = load_err::<WatchdogConfig>(
        "w.json",
        r#"{"email_alerts": {"enabled": true, "password": 123456, "smtp_server": "", "to_email": "nobody"}}"#,
    );
    let all = e.join("\n");
    assert!(all.contains("email_alerts.password = ***: expected a string in quotes"), "{all}");
    assert!(!all.contains("123456"), "{all}");
    // With the password's type fixed, the other problems show, all at once.
    let e = load_err::<WatchdogConfig>(
        "w.json",
        r#"{"email_alerts": {"enabled": true, "password": "s3cret", "password_env": "SMTP_PW", "smtp_server": "", "to_email": "nobody"}}"#,
    );
    let all = e.join("\n");
    assert!(all.contains("email_alerts.smtp_server = \"\": must not be empty"), "{all}");
    assert!(
        all.contains("email_alerts.from_email = \"\"") || all.contains("email_alerts.from_email: must be an email"),
        "{all}"
    );
    assert!(all.contains("email_alerts.to_email[0]: must be an email address"), "{all}");
    assert!(all.contains("email_alerts.password = ***: give the password one way only"), "{all}");
    assert!(!all.contains("s3cret"), "{all}");
}

#[test]
fn files_that_are_not_mappings_or_not_parseable_are_refused_clearly() {
    assert_eq!(
        load_err::<StreamerConfig>("config.json", "[1, 2]"),
        ["config.json:1:1: the file holds a list; it must hold a mapping of keys to values ({} means all defaults)"]
    );
    let e = load_err::<StreamerConfig>("config.json", "{\n  \"fps\": 15,,\n}");
    assert_eq!(e, ["config.json:2:13: not valid JSON: Unexpected token in object"]);
    let e = load_err::<CamerasConfig>("cameras.yaml", "streams:\n  - name: [oops\n");
    assert!(e[0].starts_with("cameras.yaml:") && e[0].contains("not valid YAML"), "{e:?}");
}

#[test]
fn an_inline_smtp_password_in_a_world_readable_file_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchdog-config.json");
    let text = r#"{"email_alerts": {"enabled": true, "smtp_server": "smtp.example.com", "from_email": "a@example.com",
        "to_email": "b@example.com", "username": "a@example.com", "password": "pw"}}"#;
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = ds_config::load_file::<WatchdogConfig>(&path).unwrap();
    let w: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert!(w.iter().any(|l| l.contains("email_alerts.password = ***") && l.contains("chmod 600")), "{w:#?}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(ds_config::load_file::<WatchdogConfig>(&path).unwrap().warnings.is_empty());
}

#[test]
fn webrtc_ice_servers_are_checked_and_their_credential_never_shown() {
    let good = r#"{"webrtc_ice_servers": [
        {"urls": "stun:stun.example.net:3478"},
        {"urls": ["turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349?transport=tcp"],
         "username": "kiosk", "credential": "hunter2"}
    ]}"#;
    let s = load_str::<StreamerConfig>(Path::new("config.json"), good).unwrap().config;
    assert_eq!(s.webrtc_ice_servers.len(), 2);
    assert_eq!(s.webrtc_ice_servers[0].urls, ["stun:stun.example.net:3478"]);
    assert_eq!(s.webrtc_ice_servers[1].credential.as_ref().map(|c| c.expose()), Some("hunter2"));
    assert!(!format!("{s:?}").contains("hunter2"), "Debug shows no credential");
    assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"), "nor does serializing it");

    let bad = r#"{"webrtc_ice_servers": [
        {"urls": []},
        {"urls": ["stun:stun.example.net", "http://turn.example.net"]},
        {"urls": "turn:turn.example.net:99999", "username": "u", "credential": "hunter2"},
        {"urls": "turn:turn.example.net?transport=sctp", "username": "u", "credential": "hunter2"},
        {"urls": "turn:turn.example.net", "credential": "hunter2"},
        {"urls": "stun://stun.example.net"},
        {"urls": "stun:"},
        {"urls": "turn:turn.example.net", "username": "u", "credential": 7}
    ]}"#;
    let e = load_err::<StreamerConfig>("config.json", bad);
    let all = e.join("\n");
    for says in [
        "webrtc_ice_servers[0].urls = []: must name at least one stun:, stuns:, turn: or turns: URL",
        "webrtc_ice_servers[1].urls[1] = \"http://turn.example.net\": must be a stun:, stuns:, turn: or turns: URL",
        "webrtc_ice_servers[2].urls = \"turn:turn.example.net:99999\": has port \"99999\"",
        "webrtc_ice_servers[3].urls = \"turn:turn.example.net?transport=sctp\": has ?transport=sctp",
        "webrtc_ice_servers[4].username: a TURN server needs a username and a credential",
        "webrtc_ice_servers[5].urls = \"stun://stun.example.net\": takes no // after stun:",
        "webrtc_ice_servers[6].urls = \"stun:\": names no host",
        "webrtc_ice_servers[7].credential = ***: expected a string in quotes",
    ] {
        assert!(all.contains(says), "says {says:?}:\n{all}");
    }
    assert!(!all.contains("hunter2"), "no credential in any message:\n{all}");

    let w = warnings_of::<StreamerConfig>(
        "config.json",
        r#"{"webrtc_ice_servers": [{"urls": "stun:stun.example.net", "username": "u"}]}"#,
    );
    assert!(w.iter().any(|l| l.contains("a STUN server takes no username or credential")), "{w:#?}");
}
