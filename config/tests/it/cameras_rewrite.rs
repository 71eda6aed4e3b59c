//! The dashboard edits cameras.yaml: what it does not know survives, bad edits change nothing,
//! and the file on disk is always whole.

use std::fs;

use ds_config::CamerasDocument;
use serde_json::json;

const WITH_UNKNOWN_KEYS: &str = "\
heartbeat_seconds: 15
timezone: Asia/Kolkata
notify_email: ops@example.com
streams:
- name: GateCamera
  url: rtsp://user:pass@192.0.2.10:554/stream1
  location: north gate
- name: LabCam1
  url: http://192.0.2.11:9081
";

#[test]
fn unknown_keys_survive_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cameras.yaml");
    fs::write(&path, WITH_UNKNOWN_KEYS).unwrap();
    let (mut doc, warnings) = CamerasDocument::load(&path).unwrap();
    assert_eq!(warnings.len(), 2, "one warning per unknown key: {warnings:#?}");

    doc.edit(|m| {
        m.insert("heartbeat_seconds".into(), json!(20));
        m["streams"].as_array_mut().unwrap().push(json!({"name": "Dock", "url": "rtsp://192.0.2.12/live"}));
    })
    .unwrap();
    doc.save().unwrap();

    let (again, _) = CamerasDocument::load(&path).unwrap();
    assert_eq!(again.config().heartbeat_seconds, 20);
    assert_eq!(again.config().streams.len(), 3);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("notify_email: ops@example.com"), "{text}");
    assert!(text.contains("location: north gate"), "{text}");
    assert!(text.contains("rtsp://user:pass@192.0.2.10:554/stream1"), "the real URL is kept on disk: {text}");
    // Key order is kept: people diff these files.
    let order: Vec<_> =
        ["heartbeat_seconds", "timezone", "notify_email", "streams"].iter().map(|k| text.find(k).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn an_invalid_edit_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cameras.yaml");
    fs::write(&path, WITH_UNKNOWN_KEYS).unwrap();
    let (mut doc, _) = CamerasDocument::load(&path).unwrap();
    let before = doc.to_yaml();
    let err = doc
        .edit(|m| {
            m["streams"].as_array_mut().unwrap().push(json!({"name": "Bad", "url": "gopher://192.0.2.1/"}));
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("streams[2].url = \"gopher://192.0.2.1/\": scheme `gopher` is not supported"),
        "{err}"
    );
    assert_eq!(doc.to_yaml(), before, "the document is unchanged");
    assert_eq!(fs::read_to_string(&path).unwrap(), WITH_UNKNOWN_KEYS, "the file is unchanged");
}

#[test]
fn a_leftover_temporary_file_from_a_crash_does_not_disturb_loading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cameras.yaml");
    fs::write(&path, WITH_UNKNOWN_KEYS).unwrap();
    // What a crash between write and rename leaves: a half-written temporary beside the file.
    fs::write(dir.path().join(".cameras.yaml.Xy12ab.tmp"), "heartbeat_seconds: 2\nstreams:\n- name: Ga").unwrap();
    let (doc, _) = CamerasDocument::load(&path).unwrap();
    assert_eq!(doc.config().heartbeat_seconds, 15);
    assert_eq!(doc.config().streams.len(), 2);
}
