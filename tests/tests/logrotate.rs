//! The shipped log rotation (`logrotate/desktop-streamer`) with Debian's real `logrotate`, forced
//! (`-f`) twice while the real dashboard service writes a log line for every request it answers:
//! no line is lost, the service keeps running and logging into a new file, rotated files are
//! compressed from the second rotation on. The configuration is the shipped file with only its
//! path (and `su` user) rewritten to a temporary directory.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ds_tests::bins::{bin, workspace_root};
use ds_tests::service::ServiceProcess;
use ds_tests::wait::wait_until;

const SHIPPED_PATTERN: &str = "/var/log/desktop-streamer/*.log";
const SHIPPED_SU: &str = "su desktop-streamer desktop-streamer";
/// Every request the writer sends logs exactly one line with one of these messages.
const LOGIN_MESSAGES: [&str; 2] = ["login failed: wrong password", "login refused: too many failed attempts"];
/// Answered logins after which the dashboard refuses logins quickly (its limit is 5 failures).
const WARM_UP_REQUESTS: u64 = 8;
const WARM_UP_LIMIT: Duration = Duration::from_secs(60);
/// Bound on the wait for login lines in the current file, before, between and after the
/// rotations.
const PHASE_LIMIT: Duration = Duration::from_secs(20);

fn shipped_config() -> String {
    std::fs::read_to_string(workspace_root().join("logrotate/desktop-streamer")).unwrap()
}

#[test]
fn the_shipped_rotation_is_lossless_compressed_and_bounded() {
    let text = shipped_config();
    let settings: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for needed in ["nocreate", "compress", "missingok"] {
        assert!(settings.contains(&needed), "logrotate/desktop-streamer lacks `{needed}`");
    }
    assert!(!settings.contains(&"copytruncate"), "copytruncate loses lines");
    let number = |key: &str| settings.iter().find_map(|l| l.strip_prefix(key)).map(str::trim).map(str::to_owned);
    let rotate: u32 = number("rotate ").expect("a `rotate N` count").parse().unwrap();
    assert!((1..=30).contains(&rotate), "rotate {rotate}");
    assert!(number("maxsize ").is_some() || number("size ").is_some(), "no size bound");
    assert!(text.contains(SHIPPED_PATTERN) && text.contains(SHIPPED_SU));
}

/// Lines in `path` (gzip-compressed when its name ends in .gz) whose message is a login line.
fn login_lines(path: &Path) -> u64 {
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let out = Command::new("zcat").arg(path).output().expect("zcat (gzip) is installed");
        assert!(out.status.success(), "zcat {}", path.display());
        String::from_utf8(out.stdout).unwrap()
    } else {
        std::fs::read_to_string(path).unwrap_or_default()
    };
    text.lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
            LOGIN_MESSAGES.contains(&v["fields"]["message"].as_str().unwrap_or(""))
        })
        .count() as u64
}

#[test]
fn forced_rotation_while_the_dashboard_logs_loses_no_line_and_the_service_keeps_logging() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    // The shipped rotation, pointed at the temporary directory, rotating as the test's own user.
    let conf = dir.path().join("logrotate.conf");
    let shipped = shipped_config();
    let rewritten = shipped
        .replace(SHIPPED_PATTERN, &format!("{}/*.log", logs.display()))
        .replace(SHIPPED_SU, &format!("su {0} {0}", whoami()));
    assert_ne!(rewritten, shipped);
    std::fs::write(&conf, rewritten).unwrap();
    let state = dir.path().join("logrotate.state");

    let config = dir.path().join("web-config.json");
    let config_text = serde_json::json!({
        "bus": "session",
        "auth_file": dir.path().join("web-auth.json"),
        "cameras_file": dir.path().join("cameras.yaml"),
        "database": dir.path().join("cameras.db"),
        "log_dir": &logs,
        "watchdog_state_dir": dir.path().join("watchdog"),
    });
    std::fs::write(&config, config_text.to_string()).unwrap();
    let set = Command::new(bin("desktop-streamer-web"))
        .arg("--config")
        .arg(&config)
        .args(["set-password", "--generate"])
        .output()
        .unwrap();
    assert!(set.status.success(), "set-password: {}", String::from_utf8_lossy(&set.stderr));

    let args: Vec<OsString> = vec!["--config".into(), config.into(), "--listen".into(), "127.0.0.1:0".into()];
    let log_dir = logs.to_string_lossy().into_owned();
    let mut web = ServiceProcess::start("desktop-streamer-web", &args, &[("DESKTOP_STREAMER_LOG_DIR", &log_dir)]);
    let port = web.port;

    // The writer: wrong-password logins, one log line each, counted when answered.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (status, text) = wrong_login(port).unwrap_or_else(|e| {
                    panic!("the dashboard stopped answering after {} requests: {e}", answered.load(Ordering::Relaxed))
                });
                assert!(matches!(status, 401 | 429), "login answered {status}: {text}");
                answered.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let current = logs.join("desktop-streamer-web.log");
    // The first failed logins each cost an argon2 verification (a second in a debug build);
    // once the limiter refuses (429) the lines come fast. Rotate only then.
    wait_until("the login limiter to start refusing", WARM_UP_LIMIT, || {
        answered.load(Ordering::Relaxed) >= WARM_UP_REQUESTS
    });
    // Each rotation has lines to rotate (the file written since the last one holds some).
    let logged = || login_lines(&current) > 0;
    wait_until("login lines in the log file", PHASE_LIMIT, logged);
    for round in 1..=2 {
        let before = answered.load(Ordering::Relaxed);
        let started = Instant::now();
        ds_tests::logrotate::force(&conf, &state);
        println!("rotation {round}: logrotate -f took {:?}", started.elapsed());
        let what = format!("requests answered and logged into the new file after rotation {round}");
        wait_until(&what, PHASE_LIMIT, || answered.load(Ordering::Relaxed) > before && logged());
        assert!(web.exited().is_none(), "the service stopped after rotation {round}");
    }
    assert!(login_lines(&current) > 0, "nothing was logged into the new file after the rotations");
    // On a loaded machine the writer may have made few requests so far: enough before it stops.
    wait_until("more than 20 requests answered", PHASE_LIMIT, || answered.load(Ordering::Relaxed) > 20);
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer failed");
    let total = answered.load(Ordering::Relaxed);
    // SIGTERM: the service writes out every queued line before it exits.
    web.signal("TERM");
    let status = web.wait_exit(Duration::from_secs(10)).expect("the service did not stop on SIGTERM");
    assert!(status.success(), "the service exited with {status}");

    let mut names: Vec<String> =
        std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    println!("log files after two rotations: {names:?}");
    assert!(names.contains(&"desktop-streamer-web.log.1".to_owned()), "{names:?}");
    assert!(
        names.contains(&"desktop-streamer-web.log.2.gz".to_owned()),
        "the older file was not compressed: {names:?}"
    );
    let per_file: Vec<(String, u64)> = names.iter().map(|n| (n.clone(), login_lines(&logs.join(n)))).collect();
    let logged: u64 = per_file.iter().map(|(_, n)| n).sum();
    println!("{total} requests answered, {logged} login lines in the files: {per_file:?}");
    assert!(total > 20, "only {total} requests: the writer was too slow to test anything");
    assert_eq!(logged, total, "lines lost or repeated in the rotation: {per_file:?}");
}

/// POSTs a wrong password to /api/login; returns the status and the response text. The request
/// goes out in one write and the response is read up to an error too: the dashboard may answer a
/// refused login (429) and close before reading the body, and the kernel then resets the
/// connection after the answer arrived (`ds_tests::http` reports that as no answer).
fn wrong_login(port: u16) -> std::io::Result<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let body = r#"{"password":"not the password"}"#;
    let request = format!(
        "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let error = loop {
        match stream.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => break Some(e),
        }
    };
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    match (status, error) {
        (Some(status), _) if text.contains("\r\n\r\n") => Ok((status, text)),
        (_, Some(e)) => Err(e),
        _ => Err(std::io::Error::other(format!("not an HTTP response: {text:?}"))),
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
