//! The log reader against real log files: written by the real `ds_runtime::logging` writer, by
//! the real watchdog binary, rotated by Debian's real `logrotate` (package `logrotate`).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use desktop_streamer_web::logs::{self, Level, LogError, LogLine};
use ds_runtime::logging::{LOG_DIR_ENV, file_dispatch, log_file_path};
use ds_tests::wait::{wait_until, wait_until_async};
use futures_util::StreamExt as _;
use serde_json::json;

/// A line in the exact shape `ds_runtime::logging` writes, for tests that need exact control
/// of timestamps and file operations.
fn json_line(timestamp: &str, level: &str, message: &str, seq: u64) -> String {
    format!(
        "{}\n",
        json!({"timestamp": timestamp, "level": level, "fields": {"message": message, "seq": seq}, "target": "test"})
    )
}

fn append(path: &Path, text: &str) {
    OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

fn messages(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(|l| format!("{}: {}", l.service, l.message)).collect()
}

/// Lines from the services' real writer: level and text filters, merging across services by time.
#[test]
fn recent_filters_by_level_and_text_and_merges_services_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let (streamer, streamer_guard) = file_dispatch(dir.path(), "desktop-streamer").unwrap();
    let (watchdog, watchdog_guard) = file_dispatch(dir.path(), "desktop-streamer-watchdog").unwrap();
    // Not a wait for anything: lines a few milliseconds apart have distinct timestamps, so
    // the merge by time has an order to keep.
    let step = || std::thread::sleep(Duration::from_millis(3));
    tracing::dispatcher::with_default(&streamer, || tracing::info!(encoder = "x264enc", "pipeline playing"));
    step();
    tracing::dispatcher::with_default(&watchdog, || tracing::warn!(unit = "desktop-streamer.service", "unit failed"));
    step();
    tracing::dispatcher::with_default(&streamer, || tracing::error!(element = "ximagesrc0", "X server gone"));
    step();
    tracing::dispatcher::with_default(&watchdog, || tracing::debug!("probe"));
    step();
    tracing::dispatcher::with_default(&watchdog, || tracing::info!("restarted Desktop-Streamer.service"));
    drop((streamer_guard, watchdog_guard));
    // A line from an older version that did not write JSON.
    append(&log_file_path(dir.path(), "desktop-streamer"), "plain text from an old version\n");

    let services = ["desktop-streamer", "desktop-streamer-watchdog"];
    let all = logs::recent(dir.path(), &services, 100, None, None).unwrap();
    assert_eq!(
        messages(&all),
        [
            "desktop-streamer: pipeline playing",
            "desktop-streamer-watchdog: unit failed",
            "desktop-streamer: X server gone",
            // No timestamp: sorts right after the line before it in its own file.
            "desktop-streamer: plain text from an old version",
            "desktop-streamer-watchdog: probe",
            "desktop-streamer-watchdog: restarted Desktop-Streamer.service",
        ]
    );
    assert_eq!(all[0].level, Some(Level::Info));
    assert_eq!(all[0].fields, json!({"encoder": "x264enc"}));
    assert!(all[0].target.as_deref().is_some_and(|t| t.ends_with("logs")), "{:?}", all[0].target);
    assert!(all[0].timestamp.is_some());
    assert_eq!(all[3].level, None);
    let as_json = serde_json::to_value(&all[3]).unwrap();
    assert_eq!(as_json["level"], "unknown");
    assert_eq!(serde_json::to_value(&all[1]).unwrap()["level"], "warn");

    let warn_or_worse = logs::recent(dir.path(), &services, 100, Some(Level::Warn), None).unwrap();
    assert_eq!(messages(&warn_or_worse), ["desktop-streamer-watchdog: unit failed", "desktop-streamer: X server gone"]);

    // Case-insensitive, in the message or in a field's value.
    let by_text = logs::recent(dir.path(), &services, 100, None, Some("DESKTOP-streamer.SERVICE")).unwrap();
    assert_eq!(
        messages(&by_text),
        ["desktop-streamer-watchdog: unit failed", "desktop-streamer-watchdog: restarted Desktop-Streamer.service"]
    );
    let by_field = logs::recent(dir.path(), &services, 100, None, Some("ximagesrc")).unwrap();
    assert_eq!(messages(&by_field), ["desktop-streamer: X server gone"]);
    let both = logs::recent(dir.path(), &services, 100, Some(Level::Info), Some("desktop-streamer.service")).unwrap();
    assert_eq!(messages(&both).len(), 2);

    let last_two = logs::recent(dir.path(), &services, 2, None, None).unwrap();
    assert_eq!(
        messages(&last_two),
        ["desktop-streamer-watchdog: probe", "desktop-streamer-watchdog: restarted Desktop-Streamer.service"]
    );
    // A service that has not logged yet has no lines, not an error.
    let none = logs::recent(dir.path(), &["desktop-streamer-web"], 10, None, None).unwrap();
    assert!(none.is_empty());
}

#[test]
fn recent_continues_into_the_rotated_file_when_the_current_one_is_short() {
    let dir = tempfile::tempdir().unwrap();
    let current = log_file_path(dir.path(), "svc");
    let rotated = dir.path().join("svc.log.1");
    for i in 0..5 {
        append(&rotated, &json_line(&format!("2025-01-01T10:00:0{i}Z"), "INFO", &format!("old {i}"), i));
    }
    for i in 0..2 {
        append(&current, &json_line(&format!("2025-01-01T11:00:0{i}Z"), "INFO", &format!("new {i}"), i));
    }
    // A line still being written is left for follow().
    append(&current, r#"{"timestamp":"2025-01-01T11:00:05Z","level":"INFO","fie"#);
    let got = logs::recent(dir.path(), &["svc"], 4, None, None).unwrap();
    assert_eq!(messages(&got), ["svc: old 3", "svc: old 4", "svc: new 0", "svc: new 1"]);
    let got = logs::recent(dir.path(), &["svc"], 2, None, None).unwrap();
    assert_eq!(messages(&got), ["svc: new 0", "svc: new 1"]);
}

/// A search reads at most its byte limit, shared between the services (what one leaves unread
/// goes to the next), says when it stopped there, and stops at once when cancelled.
#[test]
fn a_search_stops_at_its_byte_limit_and_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&json_line("2025-01-01T10:00:00Z", "INFO", &format!("ordinary line {i}"), i));
    }
    append(
        &log_file_path(dir.path(), "big"),
        &format!("{}{text}", json_line("2025-01-01T09:00:00Z", "INFO", "NEEDLE", 0)),
    );
    append(&log_file_path(dir.path(), "small"), &json_line("2025-01-01T10:00:00Z", "INFO", "NEEDLE too", 1));
    let size = std::fs::metadata(log_file_path(dir.path(), "big")).unwrap().len();
    let services = ["small", "big"];

    let all = logs::search(dir.path(), &services, 10, None, Some("needle"), &logs::ScanLimits::default()).unwrap();
    assert_eq!(messages(&all.lines), ["big: NEEDLE", "small: NEEDLE too"]);
    assert!(!all.truncated);
    assert!(all.scanned_bytes > size, "{} of {size}", all.scanned_bytes);

    // Half the big file: the needle at its start is not reached, and the answer says so.
    let limits = logs::ScanLimits { max_bytes: size / 2, ..Default::default() };
    let half = logs::search(dir.path(), &services, 10, None, Some("needle"), &limits).unwrap();
    assert_eq!(messages(&half.lines), ["small: NEEDLE too"]);
    assert!(half.truncated);
    // The small file used little of its half; the big one got the rest (one 64 KiB block past).
    assert!(half.scanned_bytes > size / 3 && half.scanned_bytes <= size / 2 + 64 * 1024, "{}", half.scanned_bytes);

    let limits = logs::ScanLimits::default();
    limits.cancel.store(true, Ordering::Relaxed);
    let err = logs::search(dir.path(), &services, 10, None, Some("needle"), &limits).unwrap_err();
    assert!(matches!(err, LogError::Cancelled { .. }), "{err:?}");
}

#[test]
fn errors_name_the_directory_or_file_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = logs::recent(&missing, &["svc"], 10, None, None).unwrap_err();
    assert!(matches!(err, LogError::NoLogDir { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&*missing.to_string_lossy()) && text.contains(LOG_DIR_ENV), "{text}");

    // A directory where the log file should be cannot be read, even by root.
    let bad = log_file_path(dir.path(), "svc");
    std::fs::create_dir(&bad).unwrap();
    let err = logs::recent(dir.path(), &["svc"], 10, None, None).unwrap_err();
    assert!(err.to_string().starts_with(&format!("cannot read log file {}", bad.display())), "{err}");

    let err = logs::recent(dir.path(), &["../etc/passwd"], 10, None, None).unwrap_err();
    assert!(matches!(err, LogError::InvalidService { .. }), "{err:?}");
    assert!(err.to_string().contains("\"../etc/passwd\""), "{err}");
}

/// The real watchdog binary with `DESKTOP_STREAMER_LOG_DIR` set writes its log file as JSON
/// lines, including the last line before it exits on SIGTERM.
#[test]
fn the_real_watchdog_writes_json_lines_to_its_log_file_until_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("logs");
    let config = dir.path().join("watchdog-config.json");
    // state_dir keeps the watchdog's outbox out of /var/lib.
    std::fs::write(&config, json!({"state_dir": dir.path().join("state")}).to_string()).unwrap();
    let mut child = Command::new(ds_tests::bins::bin("desktop-streamer-watchdog"))
        .arg("--config")
        .arg(&config)
        .env(LOG_DIR_ENV, &log_dir)
        .env("RUST_LOG", "info")
        // No D-Bus here: the watchdog reports it and keeps running, which is all this test needs.
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let service = "desktop-streamer-watchdog";
    let started = || {
        logs::recent(&log_dir, &[service], 100, None, Some("started"))
            .is_ok_and(|l| l.iter().any(|l| l.message == "desktop-streamer-watchdog started"))
    };
    wait_until("the watchdog's started line in its log file", Duration::from_secs(20), started);
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let exit = wait_until("the watchdog to exit after SIGTERM", Duration::from_secs(15), || child.try_wait().unwrap());
    assert!(exit.success(), "{exit:?}");

    let text = std::fs::read_to_string(log_file_path(&log_dir, service)).unwrap();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["level"].is_string() && value["fields"]["message"].is_string(), "{line}");
        let ts = value["timestamp"].as_str().unwrap();
        assert!(ts.parse::<jiff::Timestamp>().is_ok() && ts.ends_with('Z'), "{line}");
    }
    let lines = logs::recent(&log_dir, &[service], 100, None, None).unwrap();
    let started = lines.iter().find(|l| l.message == "desktop-streamer-watchdog started").unwrap();
    assert_eq!(started.level, Some(Level::Info));
    assert!(started.fields.get("units").is_some(), "{:?}", started.fields);
    // Written during shutdown: the log file loses no line at exit.
    let last = lines.last().unwrap();
    assert!(lines.iter().any(|l| l.message == "shutting down"), "{:?}", messages(&lines));
    assert!(last.timestamp >= started.timestamp);
}

async fn next_line(stream: &mut logs::LogFollow) -> LogLine {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("no line within 10 s")
        .expect("the stream never ends")
}

#[tokio::test]
async fn follow_streams_appended_lines_filtered_and_survives_rename_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_file_path(dir.path(), "svc");
    append(&path, &json_line("2025-01-01T10:00:00Z", "ERROR", "before follow", 0));
    // `marker` gets the lines that prove the follower has looked at the files.
    let (recent, mut stream) = logs::recent_then_follow(
        dir.path(),
        &["svc", "other", "marker"],
        10,
        Some(Level::Info),
        None,
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(messages(&recent), ["svc: before follow"]);

    append(&path, &json_line("2025-01-01T10:00:01Z", "DEBUG", "filtered out", 1));
    append(&path, &json_line("2025-01-01T10:00:02Z", "INFO", "appended", 2));
    assert_eq!(next_line(&mut stream).await.message, "appended");

    // Half a line is held back until its newline arrives: a line appended to another file after
    // the half one is streamed in one poll, and a line appended after that is streamed in a
    // later poll, which began after the half line was written; neither brought the half line.
    let whole = json_line("2025-01-01T10:00:03Z", "WARN", "written in two parts", 3);
    let (a, b) = whole.split_at(20);
    append(&path, a);
    let marker = log_file_path(dir.path(), "marker");
    for n in 1..=2 {
        let text = format!("poll {n} after the half line");
        append(&marker, &json_line("2025-01-01T10:00:03Z", "INFO", &text, 100 + n));
        let line = next_line(&mut stream).await;
        assert_eq!((line.service.as_str(), line.message.as_str()), ("marker", text.as_str()), "{line:?}");
    }
    append(&path, b);
    let line = next_line(&mut stream).await;
    assert_eq!((line.message.as_str(), line.level), ("written in two parts", Some(Level::Warn)));

    // Rename rotation: the writer still holds the old file and writes one more line to it,
    // then a new file appears at the path.
    // First while no file is at the path, then once the new one is there (read in the same
    // poll as the old file's last line, which must come first).
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    std::fs::rename(&path, dir.path().join("svc.log.1")).unwrap();
    old.write_all(json_line("2025-01-01T10:00:04Z", "INFO", "late line in the old file", 4).as_bytes()).unwrap();
    assert_eq!(next_line(&mut stream).await.message, "late line in the old file");
    old.write_all(json_line("2025-01-01T10:00:04Z", "INFO", "later line in the old file", 4).as_bytes()).unwrap();
    append(&path, &json_line("2025-01-01T10:00:05Z", "INFO", "first line of the new file", 5));
    assert_eq!(next_line(&mut stream).await.message, "later line in the old file");
    assert_eq!(next_line(&mut stream).await.message, "first line of the new file");

    // A service whose file did not exist when following began is picked up when it appears.
    append(&log_file_path(dir.path(), "other"), &json_line("2025-01-01T10:00:06Z", "INFO", "other starts", 6));
    let line = next_line(&mut stream).await;
    assert_eq!((line.service.as_str(), line.message.as_str()), ("other", "other starts"));

    // The text filter applies to the stream too.
    let (_, mut filtered) =
        logs::recent_then_follow(dir.path(), &["svc"], 0, None, Some("NEEDLE"), &Default::default()).await.unwrap();
    append(&path, &json_line("2025-01-01T10:00:07Z", "INFO", "hay", 7));
    append(&path, &json_line("2025-01-01T10:00:08Z", "INFO", "a needle here", 8));
    assert_eq!(next_line(&mut filtered).await.message, "a needle here");
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rotation {
    /// Rename the file away; the writer creates it anew at its next line (lossless).
    Rename,
    /// Copy then truncate in place (logrotate loses what is written between the two).
    CopyTruncate,
}

fn logrotate_config(dir: &Path, log: &Path, rotation: Rotation) -> PathBuf {
    let conf = dir.join("logrotate.conf");
    let how = match rotation {
        Rotation::Rename => "nocreate",
        Rotation::CopyTruncate => "copytruncate",
    };
    // Compressed from the second rotation on, so `.log.1` stays readable by the dashboard.
    let text = format!(
        "{} {{\n    {how}\n    rotate 5\n    compress\n    delaycompress\n    missingok\n    notifempty\n}}\n",
        log.display()
    );
    std::fs::write(&conf, text).unwrap();
    conf
}

fn sequence_numbers(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
            v["fields"]["seq"].as_u64().unwrap()
        })
        .collect()
}

/// The services' real writer appends continuously while the real logrotate renames the file
/// away (the shipped configuration): every line is in the rotated file or in the new one, and
/// follow() streams every line across the rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logrotate_rename_loses_no_line_and_follow_continues() {
    let lost = rotate_while_writing(Rotation::Rename).await;
    assert!(lost.is_empty(), "{} lines lost in the rotation: {lost:?}", lost.len());
}

/// The same with `copytruncate`: the writer goes on at the start of the truncated file (no hole)
/// and follow() streams every line the files hold. logrotate itself may lose the lines written
/// between its copy and its truncation; the count is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logrotate_copytruncate_keeps_the_writer_and_follow_going() {
    let lost = rotate_while_writing(Rotation::CopyTruncate).await;
    println!("copytruncate lost {} lines: {lost:?}", lost.len());
}

/// Lines written before the rotation and after it.
const LINES_EACH_SIDE: u64 = 300;

/// Writes numbered lines through the services' real writer, rotates with the real logrotate
/// meanwhile, checks the files and what follow() saw, and returns the numbers in neither file.
async fn rotate_while_writing(rotation: Rotation) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("logs");
    std::fs::create_dir(&log_dir).unwrap();
    let path = log_file_path(&log_dir, "svc");
    let (dispatch, guard) = file_dispatch(&log_dir, "svc").unwrap();
    let (_, mut stream) =
        logs::recent_then_follow(&log_dir, &["svc"], 0, None, None, &Default::default()).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    tracing::info!(seq, "line {seq}");
                    seq += 1;
                    written.store(seq, Ordering::Relaxed);
                    // Paces the load: a steady stream of lines, not a wait for anything.
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
            guard
        })
    };
    // How many lines follow() has streamed: the rotation waits until it is under way, since a
    // follower that first looks after a copytruncate cannot know what the copy took away.
    let followed = Arc::new(AtomicU64::new(0));
    let collector = tokio::spawn({
        let followed = Arc::clone(&followed);
        async move {
            let mut seen = Vec::new();
            while let Some(line) = stream.next().await {
                seen.push(line.fields["seq"].as_u64().unwrap());
                followed.fetch_add(1, Ordering::Relaxed);
                if line.message == "done" {
                    break;
                }
            }
            seen
        }
    });

    let conf = logrotate_config(dir.path(), &path, rotation);
    let state = dir.path().join("logrotate.state");
    // The writer is under way, then writes on after the rotation (some hundred lines each).
    let lines_written = |count: u64| {
        let written = Arc::clone(&written);
        move || {
            let written = written.load(Ordering::Relaxed);
            async move { written >= count }
        }
    };
    wait_until_async("the writer's first lines", Duration::from_secs(10), lines_written(LINES_EACH_SIDE)).await;
    wait_until_async("follow() streaming the first lines", Duration::from_secs(10), || {
        let followed = followed.load(Ordering::Relaxed);
        async move { followed > 0 }
    })
    .await;
    let before = written.load(Ordering::Relaxed);
    tokio::task::spawn_blocking(move || ds_tests::logrotate::force(&conf, &state)).await.unwrap();
    let after = written.load(Ordering::Relaxed);
    assert!(after > before, "the writer was not writing during the rotation");
    wait_until_async("lines after the rotation", Duration::from_secs(10), lines_written(after + LINES_EACH_SIDE)).await;
    stop.store(true, Ordering::Relaxed);
    let guard = writer.join().unwrap();
    let total = written.load(Ordering::Relaxed);
    drop(guard);
    // The marker that ends the collector, in the same format.
    append(&path, &json_line(&jiff::Timestamp::now().to_string(), "INFO", "done", total));

    let rotated = sequence_numbers(&log_dir.join("svc.log.1"));
    let current = sequence_numbers(&path);
    assert!(!rotated.is_empty(), "logrotate did not rotate");
    assert!(current.len() > 1, "nothing written after the rotation");
    assert!(!std::fs::read(&path).unwrap().contains(&0), "the writer left a hole after the rotation");
    let mut in_files: Vec<u64> = rotated.iter().chain(&current).copied().filter(|&s| s < total).collect();
    in_files.sort_unstable();
    let count = in_files.len();
    in_files.dedup();
    assert_eq!(count, in_files.len(), "a line is in both files");

    let seen = tokio::time::timeout(Duration::from_secs(10), collector).await.unwrap().unwrap();
    let mut seen_sorted: Vec<u64> = seen.iter().copied().filter(|&s| s < total).collect();
    seen_sorted.sort_unstable();
    seen_sorted.dedup();
    assert_eq!(seen_sorted.len(), seen.len() - 1, "follow() repeated lines");
    // Every line in the files was streamed. A line copytruncate lost from the files (written
    // between its copy and its truncation) may have been streamed too: it was in the file for
    // a moment, and the wider that moment (a loaded machine), the likelier.
    let missed: Vec<u64> = in_files.iter().copied().filter(|s| seen_sorted.binary_search(s).is_err()).collect();
    assert!(missed.is_empty(), "follow() missed lines that are in the files: {missed:?}");
    (0..total).filter(|s| in_files.binary_search(s).is_err()).collect()
}

/// Refuses every probe, as a camera that is down does.
struct Refusing;

impl ds_cameras::Prober for Refusing {
    async fn probe(&self, _url: &str, _step: Duration, _verify_tls: bool) -> ds_cameras::ProbeOutcome {
        Err(ds_cameras::ProbeFailure::new(ds_cameras::Reason::Refused, "the camera refused the connection"))
    }
}

/// A camera's state change, logged by the real scheduler into the real log file and read back
/// by the log reader, shows the event's own text, with the probe's explanation as a field
/// beside it. (The event once carried a field named `message` too, and the log view showed
/// `Some("the camera refused the connection")` as the text of every state change.)
#[tokio::test(start_paused = true)]
async fn a_camera_state_change_reads_back_with_its_own_text() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, guard) = file_dispatch(dir.path(), "desktop-streamer-web").unwrap();
    // The test's runtime runs on this thread, the scheduler's tasks too.
    let default = tracing::dispatcher::set_default(&dispatch);
    let cameras = ds_config::CamerasConfig {
        streams: vec![ds_config::Camera {
            name: "gate".into(),
            url: "rtsp://192.0.2.1/gate".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let id = cameras.streams[0].stable_id();
    let (_list, rx) = tokio::sync::watch::channel(Arc::new(cameras));
    let (tx, mut events) = tokio::sync::mpsc::channel(16);
    let stop = tokio_util::sync::CancellationToken::new();
    let scheduler = ds_cameras::Scheduler::spawn(Refusing, rx, tx, stop.clone());
    loop {
        match tokio::time::timeout(Duration::from_secs(600), events.recv()).await.expect("a state change").unwrap() {
            ds_cameras::Event::Transition(_) => break,
            _ => continue,
        }
    }
    stop.cancel();
    scheduler.join().await;
    drop(default);
    drop(guard);

    let lines = logs::recent(dir.path(), &["desktop-streamer-web"], 100, None, None).unwrap();
    let change = lines
        .iter()
        .find(|l| l.fields.get("camera").and_then(|c| c.as_str()) == Some(id.as_str()))
        .unwrap_or_else(|| panic!("no line names the camera: {:?}", messages(&lines)));
    assert_eq!(change.message, "camera state changed", "{change:?}");
    assert_eq!(change.level, Some(Level::Info));
    assert_eq!(change.fields["detail"], "the camera refused the connection", "{change:?}");
}
