//! desktop-streamer-watchdog benchmark; prints figures, asserts nothing.
//!
//! The release watchdog watches two units of a real systemd user manager with a 5 s check
//! interval and every check on (units, stream, resources) for BENCH_SECONDS (default 60). No
//! streamer runs, so each stream check is a refused connection to its health API; its restart
//! is off, so the figures are the watchdog's own, not a restart loop's:
//! 1. its peak RSS and CPU use;
//! 2. the time from a unit's failure (its main process SIGKILLed) to the watchdog's restart
//!    request (from its log) and to the unit running again, over several failures.
//!
//! Run: `cargo build --release --bins && cargo bench -p ds-tests --bench watchdog`

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ds_tests::bins::bin;
use ds_tests::procfs::{cpu_seconds, peak_rss_mb};
use ds_tests::receiver::Receiver;
use ds_tests::systemd::UserSystemd;
use serde_json::json;

const REPEATS: usize = 5;

fn main() {
    let secs: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let sd = UserSystemd::start().expect("systemd user manager");
    // Room in systemd's start limit for the failures below, a second and a half apart (the
    // watchdog holds back a restart that would come near the default 5 starts in 10 s).
    for unit in ["desktop-streamer.service", "bench-other.service"] {
        sd.write_sleep_unit(unit, "StartLimitBurst=20").unwrap();
    }
    sd.daemon_reload().unwrap();
    for unit in ["desktop-streamer.service", "bench-other.service"] {
        sd.start_unit(unit).unwrap();
    }
    let hooks = Receiver::start(&[200]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchdog-config.json");
    std::fs::write(
        &config,
        json!({"bus": "session", "units": ["desktop-streamer.service", "bench-other.service"], "check_interval": 5,
            "state_dir": dir.path().join("state"), "alert_cooldown": 1, "auto_recovery": {"stream_restart": false},
            "restart_limit": {"max_restarts": 20, "window_seconds": 60},
            "webhook_alerts": {"enabled": true, "url": hooks.url("/hook"), "format": "json"}})
        .to_string(),
    )
    .unwrap();
    let mut child = Command::new(bin("desktop-streamer-watchdog"))
        .arg("--config")
        .arg(&config)
        .env("DBUS_SESSION_BUS_ADDRESS", sd.bus_address())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let sink = Arc::clone(&log);
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push((Instant::now(), line));
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let cpu0 = cpu_seconds(child.id(), false).unwrap();
    std::thread::sleep(Duration::from_secs(secs));
    let cpu = cpu_seconds(child.id(), false).unwrap() - cpu0;
    let rss_idle = peak_rss_mb(child.id()).unwrap();
    println!(
        "desktop-streamer-watchdog benchmark: 2 units, check_interval 5 s, stream (no streamer, restart off) and resource checks on"
    );
    println!(
        "1. over {secs} s: CPU {cpu:.3} s = {:.3} % of one core (target <= 0.5 %), peak RSS {rss_idle:.1} MiB (target <= 15)",
        cpu / secs as f64 * 100.0
    );

    let mut to_request = Vec::new();
    let mut to_running = Vec::new();
    for i in 0..REPEATS {
        std::thread::sleep(Duration::from_millis(1500));
        let unit = if i % 2 == 0 { "desktop-streamer.service" } else { "bench-other.service" };
        let seen = log.lock().unwrap().len();
        let old = sd.kill_main_process(unit).unwrap();
        let t0 = Instant::now();
        loop {
            let pid = sd.main_pid(unit).unwrap_or(0);
            if pid != 0 && pid != old {
                to_running.push(t0.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "not restarted");
            std::thread::sleep(Duration::from_millis(5));
        }
        let requested = log.lock().unwrap()[seen..]
            .iter()
            .find(|(_, l)| l.contains("restart requested over D-Bus") && l.contains(unit))
            .map(|(t, _)| t.duration_since(t0).as_secs_f64() * 1000.0);
        if let Some(ms) = requested {
            to_request.push(ms);
        }
    }
    let rss = peak_rss_mb(child.id()).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    println!("2. unit failure -> restart requested (watchdog log): {} (target <= 1000 ms)", figures(&to_request));
    println!("   unit failure -> running again (systemd's MainPID): {}", figures(&to_running));
    println!(
        "   peak RSS after the failures and alerts: {rss:.1} MiB; webhook alerts received: {}",
        hooks.requests().len()
    );
}

fn figures(v: &[f64]) -> String {
    if v.is_empty() {
        return "no measurement".into();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    format!("median {:.0} ms, max {:.0} ms over {} failures", s[s.len() / 2], s[s.len() - 1], s.len())
}
