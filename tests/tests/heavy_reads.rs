//! The dashboard's heavy reads against the real `desktop-streamer-web` on loopback, as clients
//! of a hostile LAN use them: a CSV export of a large camera history read by a client that
//! stops reading or goes away, log searches for a text that is nowhere in large log files, and
//! many log streams. None of them may hold the database, memory, the blocking pool or the log
//! files beyond their bounds. The history is written through the real store before the service
//! starts; the log files are written in the services' own line format. Every wait is bounded
//! and synchronised on what the service answers or logs.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use ds_tests::flood::{connect_from, connect_slow_reader};
use ds_tests::http;
use ds_tests::procfs;
use ds_tests::service::ServiceProcess;
use ds_tests::wait::wait_until;
use serde_json::json;

/// Cameras and heartbeats of each in the history (at 5 s: 5.8 days, inside the raw retention):
/// an export of about 60 MiB.
const CAMERAS: usize = 4;
const HEARTBEATS_PER_CAMERA: usize = 100_000;
const HEARTBEAT_S: i64 = 5;
/// The exports and searches the service runs at once (`MAX_CONCURRENT_EXPORTS`,
/// `MAX_CONCURRENT_SEARCHES`) and the streams it keeps (`MAX_LOG_STREAMS`).
const MAX_EXPORTS: usize = 2;
const MAX_SEARCHES: usize = 2;
const MAX_STREAMS: usize = 8;
/// What one client may hold of each (`MAX_EXPORTS_PER_CLIENT`, `MAX_SEARCHES_PER_CLIENT`,
/// `MAX_LOG_STREAMS_PER_CLIENT`).
const EXPORTS_PER_CLIENT: usize = 1;
const SEARCHES_PER_CLIENT: usize = 1;
const STREAMS_PER_CLIENT: usize = 2;
/// What one log search may read (`RECENT_SCAN_LIMIT_BYTES`), and one block of it.
const SCAN_LIMIT: u64 = 64 * 1024 * 1024;
const SCAN_BLOCK: u64 = 64 * 1024;
/// How long the service may take to notice a client that went away, or to answer the grid.
const PROMPT: Duration = Duration::from_secs(2);
/// A client that takes nothing for this long loses its export (`EXPORT_STALL_TIMEOUT`).
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(30);

/// The real web service on a temporary directory: its database, log folder and an empty
/// camera list (the history's cameras are in the database only, so no probe adds to it).
struct Dashboard {
    dir: tempfile::TempDir,
    service: Option<ServiceProcess>,
}

impl Dashboard {
    fn prepare() -> Dashboard {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("cameras.yaml"), "streams: []\n").unwrap();
        Dashboard { dir, service: None }
    }

    fn database(&self) -> std::path::PathBuf {
        self.dir.path().join("cameras.db")
    }

    fn logs(&self) -> std::path::PathBuf {
        self.dir.path().join("logs")
    }

    /// Starts the service with the debug lines of the exports and log searches.
    fn start(&mut self) -> &ServiceProcess {
        self.start_with(json!({}))
    }

    /// [`Dashboard::start`] with `extra` keys in the configuration.
    fn start_with(&mut self, extra: serde_json::Value) -> &ServiceProcess {
        let d = self.dir.path();
        let config = d.join("web-config.json");
        let mut value = json!({
            "bus": "session",
            "streamer_url": "http://127.0.0.1:1",
            "auth_file": d.join("web-auth.json"),
            "cameras_file": d.join("cameras.yaml"),
            "database": self.database(),
            "log_dir": self.logs(),
            "watchdog_state_dir": d.join("watchdog"),
        });
        if let (Some(value), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
            value.extend(extra);
        }
        std::fs::write(&config, value.to_string()).unwrap();
        let args: Vec<OsString> = vec!["--config".into(), config.into(), "--listen".into(), "127.0.0.1:0".into()];
        let no_bus = format!("unix:path={}", d.join("no-bus").display());
        // No DESKTOP_STREAMER_LOG_DIR: the service logs to stderr only, and the log folder
        // holds the test's files alone.
        let env = [
            (
                "RUST_LOG",
                "info,desktop_streamer_web::http::cameras::export=debug,desktop_streamer_web::http::logs=debug",
            ),
            ("DBUS_SESSION_BUS_ADDRESS", no_bus.as_str()),
        ];
        self.service = Some(ServiceProcess::start("desktop-streamer-web", &args, &env));
        self.service.as_ref().unwrap()
    }
}

/// Writes the history through the real store and its writer, ending a minute ago:
/// `heartbeats` of each of [`CAMERAS`].
fn write_history(database: &Path, heartbeats: usize) {
    use ds_camera_db::{Batching, CameraInfo, Options, Store};
    let store = Store::open(database, Options::default()).unwrap();
    let now = jiff::Timestamp::now();
    let cameras: Vec<CameraInfo> = (0..CAMERAS)
        .map(|i| CameraInfo {
            id: format!("cam-{i}"),
            name: format!("Camera {i}"),
            heartbeat: Duration::from_secs(HEARTBEAT_S as u64),
        })
        .collect();
    store.sync_cameras(&cameras, now).unwrap();
    let first = now - jiff::SignedDuration::from_secs(60 + HEARTBEAT_S * heartbeats as i64);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let batching = Batching { max_records: 5000, queue: CAMERAS * heartbeats, ..Batching::default() };
        let writer = store.writer(batching).unwrap();
        for n in 0..heartbeats {
            let at = first + jiff::SignedDuration::from_secs(HEARTBEAT_S * n as i64);
            for cam in &cameras {
                writer
                    .record(ds_cameras::Heartbeat {
                        camera_id: cam.id.clone(),
                        at,
                        state: ds_cameras::State::Up,
                        reason: None,
                        message: None,
                        latency_ms: Some(120),
                        codec: Some("h264".into()),
                        width: Some(1920),
                        height: Some(1080),
                        last_frame_at: Some(at),
                        clock_synchronized: Some(true),
                    })
                    .unwrap();
            }
        }
        writer.shutdown().await;
        assert_eq!(writer.stats().dropped, 0);
    });
}

/// Sends `GET path` on a new connection from `from` (a slow reader's when `receive_buffer`).
fn send_get(port: u16, from: Ipv4Addr, path: &str, receive_buffer: Option<usize>) -> TcpStream {
    send_get_with(port, from, path, receive_buffer, &[])
}

/// [`send_get`] with more request headers.
fn send_get_with(
    port: u16,
    from: Ipv4Addr,
    path: &str,
    receive_buffer: Option<usize>,
    headers: &[(&str, &str)],
) -> TcpStream {
    let mut stream = match receive_buffer {
        Some(bytes) => connect_slow_reader(from, port, bytes),
        None => connect_from(from, port),
    }
    .expect("connect to the service");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let more: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{more}\r\n").expect("send the request");
    stream
}

/// Reads an answer's head (status line and headers); panics if none comes within [`WAIT`].
fn read_head(stream: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 * 1024, "an answer's head of more than 16 KiB");
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("the answer's head did not come ({other:?}): {}", String::from_utf8_lossy(&head)),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head)
}

/// Sends `GET path` from `from` (with `headers`) and reads its short answer: (status, head as
/// text, body).
fn refusal(port: u16, from: Ipv4Addr, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let answer = http::read_answer(&mut send_get_with(port, from, path, None, headers)).expect("an answer");
    let head: String = answer.headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
    (answer.status, head, answer.text())
}

/// How many lines of the service's log contain `text`, and the last of them.
fn logged(service: &ServiceProcess, text: &str) -> (usize, String) {
    let logs = service.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains(text)).collect();
    (lines.len(), lines.last().map(|l| (*l).to_owned()).unwrap_or_default())
}

/// Waits (at most `limit`) until more than `seen` lines of the service's log contain `text`.
fn wait_logged_more(service: &ServiceProcess, text: &str, seen: usize, limit: Duration) {
    wait_until(&format!("another {text:?} in the log"), limit, || match logged(service, text).0 {
        n if n > seen => Ok(()),
        n => Err(format!("{n} of them")),
    });
}

/// The value of `field=` in a log line.
fn field(line: &str, name: &str) -> u64 {
    let at = line.find(&format!("{name}=")).unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + name.len() + 1..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// A year's CSV export of a large history: the client that stops reading holds a few chunks,
/// not the database (the grid answers at once meanwhile) and not memory (the service's peak
/// RSS grows by far less than the export); at most two run at once (a third is told when to
/// come back); a client that goes away stops its export, whose place is free again; a
/// complete export has every row, in order; and one that nobody reads is broken off at the
/// stall timeout.
#[test]
fn a_stalled_csv_export_holds_neither_the_database_nor_memory_and_stops_when_its_client_goes_or_stalls() {
    let mut dashboard = Dashboard::prepare();
    let started = Instant::now();
    write_history(&dashboard.database(), HEARTBEATS_PER_CAMERA);
    let wrote = started.elapsed();
    let service = dashboard.start();
    let (port, pid) = (service.port, service.pid());
    let path = "/api/cameras/export.csv?hours=8760";
    let peak_before = procfs::peak_rss_mb(pid).unwrap();

    // Two clients that read the header and then nothing.
    let mut stalled: Vec<TcpStream> = [3, 4]
        .into_iter()
        .map(|last| {
            let mut stream = send_get(port, Ipv4Addr::new(127, 0, 0, last), path, Some(4096));
            let (status, head) = read_head(&mut stream);
            assert_eq!(status, 200, "{head}");
            assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "streamed: {head}");
            let mut first = [0u8; 64];
            stream.read_exact(&mut first).unwrap();
            stream
        })
        .collect();

    // A third is refused and told when to come back.
    let refused = http::get(port, path).expect("an answer");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("retry-after").is_some(), "{:?}", refused.headers);
    assert!(refused.text().contains(&format!("{MAX_EXPORTS} CSV exports are running")), "{}", refused.text());

    // Meanwhile the grid, which reads the database, answers at once (its figures are computed
    // now: nothing asked for them before).
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let asked = Instant::now();
        let r = http::get(port, "/api/cameras").expect("an answer");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["history_problem"].is_null(), "{}", r.text());
        slowest = slowest.max(asked.elapsed());
    }
    assert!(slowest < PROMPT, "/api/cameras took {slowest:?} while two exports were stalled");
    let peak_stalled = procfs::peak_rss_mb(pid).unwrap();

    // One stalled client goes away: its export stops, having produced a small part.
    drop(stalled.remove(0));
    let total = (CAMERAS * HEARTBEATS_PER_CAMERA) as u64;
    let stopped = wait_until("the export of the client that went away stops", PROMPT * 5, || {
        match logged(service, "CSV export stopped: the client went away") {
            (0, _) => Err("not yet".to_owned()),
            (_, line) => Ok(line),
        }
    });
    // What it produced is what a stalled client holds (the socket buffers included).
    let produced = field(&stopped, "rows");
    assert!(produced < total / 10, "the stopped export produced {produced} of {total} rows: {stopped}");

    // Its place is free: a complete export, read to its end while the other is still stalled.
    let asked = Instant::now();
    let full = http::get(port, path).expect("an answer");
    let took = asked.elapsed();
    assert_eq!(full.status, 200, "{}", full.text());
    let text = full.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(ds_camera_db::CSV_HEADER.join(",").as_str()));
    let rows: Vec<(&str, &str)> = lines.map(|l| (l.split(',').next().unwrap(), l.split(',').nth(2).unwrap())).collect();
    assert_eq!(rows.len() as u64, total);
    assert!(rows.is_sorted(), "by camera id, then by time");
    // The complete export passed through a few chunks at a time; the whole test (the grid's
    // figures over the history included) stays far below one export too.
    let peak_after = procfs::peak_rss_mb(pid).unwrap();
    let export_mb = full.body.len() as f64 / (1024.0 * 1024.0);
    assert!(
        peak_after - peak_stalled < export_mb / 8.0,
        "the service's peak RSS grew by {:.1} MiB during an export of {export_mb:.1} MiB",
        peak_after - peak_stalled
    );
    assert!(
        peak_after - peak_before < export_mb / 3.0,
        "the service's peak RSS grew by {:.1} MiB with exports of {export_mb:.1} MiB",
        peak_after - peak_before
    );
    // The other stalled client never takes another chunk: at the stall timeout its export is
    // broken off, and what it reads then does not end as a complete transfer does.
    let mut last = stalled.pop().unwrap();
    let broken = wait_until("the export nobody reads is broken off", STALL_TIMEOUT + WAIT, || {
        match logged(service, "CSV export stopped: the client took nothing") {
            (0, _) => Err("not yet".to_owned()),
            (_, line) => Ok(line),
        }
    });
    let mut rest = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let reading = Instant::now();
    loop {
        assert!(reading.elapsed() < WAIT, "the broken-off export's connection is still open");
        match last.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("the broken-off export's connection is still open after {WAIT:?}")
            }
            // Reset: closed too.
            Err(_) => break,
        }
    }
    assert!(!rest.ends_with(b"0\r\n\r\n"), "a broken-off export ended as a complete one: {broken}");
    eprintln!(
        "history of {total} heartbeats written in {:.1} s; export {export_mb:.1} MiB in {:.1} s; a stalled export \
         produced {produced} rows; slowest /api/cameras while two were stalled {:.0} ms; peak RSS {peak_before:.1} → \
         {peak_stalled:.1} (two stalled, grid) → {peak_after:.1} MiB",
        wrote.as_secs_f64(),
        took.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
}

/// A line as `ds_runtime::logging` writes it.
fn log_line(n: u64) -> String {
    format!(
        "{}\n",
        json!({"timestamp": "2026-01-01T10:00:00.000000Z", "level": "INFO",
            "fields": {"message": format!("an ordinary line, number {n}"), "camera": "gate", "latency_ms": 120},
            "target": "desktop_streamer::pipeline"})
    )
}

/// Writes `bytes` of ordinary lines into each service's log file.
fn write_logs(dir: &Path, bytes: u64) {
    let mut block = String::new();
    let mut n = 0;
    while block.len() < 1024 * 1024 {
        block.push_str(&log_line(n));
        n += 1;
    }
    for service in ["desktop-streamer", "desktop-streamer-watchdog", "desktop-streamer-web"] {
        let mut file = std::fs::File::create(dir.join(format!("{service}.log"))).unwrap();
        let mut written = 0;
        while written < bytes {
            file.write_all(block.as_bytes()).unwrap();
            written += block.len() as u64;
        }
    }
}

/// Log searches for a text that is nowhere: each reads at most its limit and says so, at most
/// two run at once (a third is told when to come back), and a search whose client went away
/// stops reading at once, its place free again. Log streams: at most eight at once.
#[test]
fn log_searches_and_streams_stay_within_their_bounds() {
    let mut dashboard = Dashboard::prepare();
    // Three files of 32 MiB: more than one search may read.
    write_logs(&dashboard.logs(), 32 * 1024 * 1024);
    let service = dashboard.start();
    let port = service.port;
    let search = "/api/logs?q=no-such-text-anywhere";

    // One search alone: the limit, and the answer says it stopped there.
    let asked = Instant::now();
    let alone = http::get(port, search).expect("an answer");
    let search_took = asked.elapsed();
    assert_eq!(alone.status, 200, "{}", alone.text());
    let alone = alone.json();
    assert_eq!(alone["lines"], json!([]));
    assert_eq!(alone["truncated"], true, "{alone}");
    let scanned = alone["scanned_bytes"].as_u64().unwrap();
    assert!((SCAN_LIMIT..=SCAN_LIMIT + 3 * SCAN_BLOCK).contains(&scanned), "scanned {scanned}");

    // Two searches from other clients; once both run, a third is refused.
    let started = |n| {
        move || match logged(service, "log search started").0 {
            seen if seen >= n => Ok(()),
            seen => Err(format!("{seen} started")),
        }
    };
    let before = logged(service, "log search started").0;
    let running: Vec<TcpStream> =
        [5, 6].into_iter().map(|last| send_get(port, Ipv4Addr::new(127, 0, 0, last), search, None)).collect();
    wait_until("two searches run", WAIT, started(before + 2));
    let refused = http::get(port, search).expect("an answer");
    assert_eq!(refused.status, 503, "{} (a search alone took {search_took:?})", refused.text());
    assert!(refused.header("retry-after").is_some(), "{:?}", refused.headers);
    assert!(refused.text().contains(&format!("{MAX_SEARCHES} log searches are running")), "{}", refused.text());

    // Their clients go away: both stop reading at once, far from their limit.
    drop(running);
    let stopped = wait_until("both searches stop", PROMPT * 5, || {
        match logged(service, "log search stopped: the request went away") {
            (2, line) => Ok(line),
            (n, _) => Err(format!("{n} stopped")),
        }
    });
    let read = field(&stopped, "scanned_bytes");
    assert!(read < SCAN_LIMIT, "a cancelled search read {read} bytes: {stopped}");
    let after = http::get(port, "/api/logs?lines=1").expect("an answer");
    assert_eq!(after.status, 200, "the places are free again: {}", after.text());

    // Streams: eight from four clients (each may hold two); the ninth, from a fifth client, is
    // refused; one goes, another may come.
    let stream_path = "/api/logs/stream?lines=5";
    let mut streams: Vec<TcpStream> = (0..MAX_STREAMS)
        .map(|n| {
            let client = Ipv4Addr::new(127, 0, 0, 20 + (n / STREAMS_PER_CLIENT) as u8);
            let mut s = send_get(port, client, stream_path, None);
            let (status, head) = read_head(&mut s);
            assert_eq!(status, 200, "{head}");
            s
        })
        .collect();
    let (status, head) = read_head(&mut send_get(port, Ipv4Addr::new(127, 0, 0, 8), stream_path, None));
    assert_eq!(status, 503, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    drop(streams.remove(0));
    wait_until("a stream's place is free once its client went away", PROMPT * 5, || {
        let mut s = send_get(port, Ipv4Addr::new(127, 0, 0, 8), stream_path, None);
        match read_head(&mut s) {
            (200, _) => Ok(s),
            (status, head) => Err(format!("{status}: {head}")),
        }
    });
    eprintln!(
        "a search alone read {scanned} bytes in {:.2} s; a cancelled one stopped after {read} bytes",
        search_took.as_secs_f64()
    );
}

/// Each heavy read has a share per client below its cap over all clients: a client that holds
/// its share is refused more (429, `Retry-After`, a message naming its address and the limit)
/// while another client still gets a place, and a client behind a trusted reverse proxy is
/// counted by the address the proxy forwarded for, as the login limit counts it. Log streams:
/// two per client; log searches and CSV exports: one.
#[test]
fn one_client_gets_its_share_of_each_heavy_read_and_another_client_still_gets_a_place() {
    let mut dashboard = Dashboard::prepare();
    // Enough history that an export nobody reads stays unfinished; logs that a search reads
    // for seconds.
    write_history(&dashboard.database(), 20_000);
    write_logs(&dashboard.logs(), 32 * 1024 * 1024);
    let proxy = Ipv4Addr::new(127, 0, 0, 19);
    let service = dashboard.start_with(json!({"trusted_proxies": [proxy.to_string()]}));
    let port = service.port;
    let (one, other) = (Ipv4Addr::new(127, 0, 0, 17), Ipv4Addr::new(127, 0, 0, 18));
    // `GET path` from `from` (through the proxy for `behind`) is refused as `from`'s share
    // (or `behind`'s) taken, the message saying `what`.
    let refused = |from: Ipv4Addr, behind: Option<&str>, path: &str, what: &str| {
        let forwarded: Vec<(&str, &str)> = behind.iter().map(|b| ("X-Forwarded-For", *b)).collect();
        let (status, head, body) = refusal(port, from, path, &forwarded);
        assert_eq!(status, 429, "{what}: {head}{body}");
        assert!(head.to_ascii_lowercase().contains("retry-after:"), "{what}: {head}");
        let client = behind.map_or_else(|| from.to_string(), str::to_owned);
        assert!(body.contains(&format!("your address ({client})")) && body.contains(what), "{body}");
    };
    let from_other =
        |path: &str| http::request_from(other, port, "GET", path, &[], None, http::Read::ToEnd).expect("an answer");

    // Log streams: one client holds two and is refused a third; another client gets one.
    let stream_path = "/api/logs/stream?lines=5";
    let open_stream = |from: Ipv4Addr, headers: &[(&str, &str)]| {
        let mut s = send_get_with(port, from, stream_path, None, headers);
        let (status, head) = read_head(&mut s);
        assert_eq!(status, 200, "a stream from {from} {headers:?}: {head}");
        s
    };
    let held: Vec<TcpStream> = (0..STREAMS_PER_CLIENT).map(|_| open_stream(one, &[])).collect();
    refused(one, None, stream_path, &format!("holds {STREAMS_PER_CLIENT} log streams open already"));
    let others = open_stream(other, &[]);
    // Behind the proxy: each forwarded client has its own share; the proxy's own address, as
    // any other, has not every client's.
    let behind = |client: &'static str| [("X-Forwarded-For", client)];
    let first: Vec<TcpStream> = (0..STREAMS_PER_CLIENT).map(|_| open_stream(proxy, &behind("192.0.2.1"))).collect();
    refused(proxy, Some("192.0.2.1"), stream_path, "log streams open already");
    let second = open_stream(proxy, &behind("192.0.2.2"));
    drop((held, others, first, second));

    // Log searches: one client runs one and is refused a second; another client's runs.
    let search = "/api/logs?q=no-such-text-anywhere";
    let started = logged(service, "log search started").0;
    let running = send_get(port, one, search, None);
    wait_logged_more(service, "log search started", started, WAIT);
    refused(one, None, search, &format!("runs {SEARCHES_PER_CLIENT} log search already"));
    // The other client's is admitted while the first one's runs (which, dropped then, is
    // cancelled: it was still running), and answers.
    let mut theirs = send_get(port, other, search, None);
    wait_logged_more(service, "log search started", started + 1, WAIT);
    let cancelled = logged(service, "log search stopped: the request went away").0;
    drop(running);
    wait_logged_more(service, "log search stopped: the request went away", cancelled, PROMPT * 5);
    let theirs = http::read_answer(&mut theirs).expect("an answer");
    assert_eq!(theirs.status, 200, "the other client's search: {}", theirs.text());

    // CSV exports: one client's export stalls and it is refused a second; another client's
    // is read to its end.
    let export = "/api/cameras/export.csv?hours=8760";
    let mut stalled = send_get(port, one, export, Some(4096));
    let (status, head) = read_head(&mut stalled);
    assert_eq!(status, 200, "{head}");
    refused(one, None, export, &format!("runs {EXPORTS_PER_CLIENT} CSV export already"));
    let full = from_other(export);
    assert_eq!(full.status, 200, "the other client's export: {}", full.text());
    assert_eq!(full.text().lines().count(), 1 + CAMERAS * 20_000, "every row");
    // The stalled export is still running: its client's share is still taken.
    refused(one, None, export, "CSV export already");
    drop(stalled);
}
