//! A real `desktop-streamer` process for end-to-end tests: its own output directory, a free
//! loopback port, its log collected, and helpers to wait for what its health API says.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::Value;

use crate::http;
use crate::procfs;
use crate::service::ServiceProcess;
pub use crate::service::signal_pid;
use crate::systemd::UserSystemd;
use crate::wait::{try_wait_until_every, wait_until_every};

/// How often the health API is asked: each answer is an HTTP request and a JSON document.
const HEALTH_POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct StreamerProcess {
    service: ServiceProcess,
    pub port: u16,
    pub config_path: PathBuf,
    hls: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// Raises the disk-pressure thresholds of a streamer `config` (a JSON object) unless it sets
/// them: a test's stream is a few megabytes, and the test machine's disk filling up with build
/// artifacts is not the stream's disk pressure (the tests of that set their own thresholds).
pub fn ignore_host_disk(config: &mut Value) {
    let Some(object) = config.as_object_mut() else { return };
    let live = object.entry("live_streaming").or_insert_with(|| Value::Object(Default::default()));
    if let Some(live) = live.as_object_mut() {
        live.entry("cleanup_threshold_percent").or_insert(98.into());
        live.entry("emergency_cleanup_threshold_percent").or_insert(99.into());
    }
}

/// Makes `unit` of the user manager `sd` run a real streamer on `display`, listening on
/// 127.0.0.1:`port`, with its configuration and segments under `dir` and its log file in
/// `log_dir`; systemd never restarts it by itself (`Restart=no`). The unit is not started.
pub fn write_streamer_unit(sd: &UserSystemd, unit: &str, display: &str, port: u16, dir: &Path, log_dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("config.json");
    let mut streamer_config = serde_json::json!({"output_dir": dir.join("hls")});
    ignore_host_disk(&mut streamer_config);
    std::fs::write(&config, streamer_config.to_string()).unwrap();
    let text = format!(
        "[Unit]\nDescription=desktop-streamer under test\n\n[Service]\nExecStart={} --config {} --listen 127.0.0.1:{port}\n\
         Environment=DISPLAY={display} DESKTOP_STREAMER_LOG_DIR={} RUST_LOG=info\nRestart=no\nTimeoutStopSec=15\n",
        crate::bins::bin("desktop-streamer").display(),
        config.display(),
        log_dir.display()
    );
    sd.write_unit(unit, &text).unwrap();
    sd.daemon_reload().unwrap();
}

/// Waits (`limit` at most) until the streamer on `port` lists `segments` segments; panics
/// with its last health answer otherwise.
pub fn wait_for_segments(port: u16, segments: u64, limit: Duration) {
    let what = format!("the streamer on port {port} to list {segments} segments");
    wait_until_every(&what, limit, HEALTH_POLL, || {
        let health = http::get(port, "/api/health/detailed").map(|r| r.json()).unwrap_or(Value::Null);
        if health["playlist"]["segment_count"].as_u64() >= Some(segments) { Ok(()) } else { Err(health) }
    });
}

impl StreamerProcess {
    /// Starts a streamer on `display` with `config` (a JSON object; `output_dir` is set to a
    /// fresh directory unless given) and waits until its HTTP API answers.
    pub fn start(display: &str, config: Value) -> StreamerProcess {
        StreamerProcess::start_with_env(display, config, &[])
    }

    /// Like [`start`](Self::start) with extra environment variables.
    pub fn start_with_env(display: &str, config: Value, env: &[(&str, &str)]) -> StreamerProcess {
        let dir = crate::stream_dir();
        let hls = dir.path().join("hls");
        let conf_dir = dir.path().to_owned();
        StreamerProcess::spawn(display, config, &hls, &conf_dir, Some(dir), env)
    }

    /// Like [`start`](Self::start) with a given output directory and config location (to
    /// start a second process on the same stream).
    pub fn start_in(
        display: &str,
        config: Value,
        hls: &Path,
        conf_dir: &Path,
        dir: Option<tempfile::TempDir>,
    ) -> StreamerProcess {
        StreamerProcess::spawn(display, config, hls, conf_dir, dir, &[])
    }

    /// [`start_in`](Self::start_in) with extra environment variables (a stepped wall clock).
    pub fn start_in_with_env(
        display: &str,
        config: Value,
        hls: &Path,
        conf_dir: &Path,
        env: &[(&str, &str)],
    ) -> StreamerProcess {
        StreamerProcess::spawn(display, config, hls, conf_dir, None, env)
    }

    fn spawn(
        display: &str,
        mut config: Value,
        hls: &Path,
        conf_dir: &Path,
        dir: Option<tempfile::TempDir>,
        env: &[(&str, &str)],
    ) -> StreamerProcess {
        config
            .as_object_mut()
            .expect("config is an object")
            .entry("output_dir")
            .or_insert(hls.display().to_string().into());
        ignore_host_disk(&mut config);
        let config_path = conf_dir.join("config.json");
        std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        let args: Vec<OsString> =
            vec!["--config".into(), config_path.clone().into(), "--listen".into(), "127.0.0.1:0".into()];
        let mut all_env = vec![("DISPLAY", display)];
        all_env.extend_from_slice(env);
        let service = ServiceProcess::start("desktop-streamer", &args, &all_env);
        StreamerProcess { port: service.port, service, config_path, hls: hls.to_owned(), _dir: dir }
    }

    pub fn hls_dir(&self) -> &Path {
        &self.hls
    }

    pub fn pid(&self) -> u32 {
        self.service.pid()
    }

    /// The `gst-launch-1.0` description of this streamer's pipeline on `display`, writing
    /// segments to `location` (`desktop-streamer print-pipeline`): the reference the
    /// benchmarks compare the streamer's cost with.
    pub fn print_pipeline(&self, display: &str, location: &str) -> String {
        let out = std::process::Command::new(crate::bins::bin("desktop-streamer"))
            .arg("--config")
            .arg(&self.config_path)
            .args(["print-pipeline", "--location", location])
            .env("DISPLAY", display)
            .stderr(std::process::Stdio::null())
            .output()
            .expect("desktop-streamer print-pipeline");
        String::from_utf8(out.stdout).expect("a UTF-8 description").trim().to_owned()
    }

    pub fn get(&self, path: &str) -> Option<http::Response> {
        http::get(self.port, path)
    }

    /// `/api/health/detailed`.
    pub fn detailed(&self) -> Value {
        self.get("/api/health/detailed").map(|r| r.json()).unwrap_or(Value::Null)
    }

    /// Polls the detailed health until `ok` holds, at most `timeout`; panics with the last
    /// answer and the log otherwise.
    pub fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let health = || {
            let h = self.detailed();
            if ok(&h) { Ok(h) } else { Err(format!("{h:#}")) }
        };
        try_wait_until_every(what, timeout, HEALTH_POLL, health)
            .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", self.logs()))
    }

    pub fn logs(&self) -> String {
        self.service.logs()
    }

    pub fn signal(&self, name: &str) {
        self.service.signal(name);
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`.
    pub fn terminate(mut self, limit: Duration) -> (Option<ExitStatus>, Duration) {
        self.service.terminate(limit)
    }

    /// Waits for the process to end by itself, at most `limit`; its log comes back too.
    pub fn terminate_when_exited(mut self, limit: Duration) -> (Option<ExitStatus>, String) {
        let status = self.service.wait_exit(limit);
        (status, self.logs())
    }

    /// SIGKILL, as a crash.
    pub fn kill(mut self) {
        self.service.kill();
    }
}

/// What `gst-launch-1.0` running a pipeline cost: the reference for the streamer's figures.
#[derive(Clone, Copy, Debug)]
pub struct GstLaunchCost {
    pub cpu_seconds: f64,
    pub peak_rss_mb: f64,
    /// Resident memory at the end.
    pub rss_mb: f64,
}

/// Runs `description` (from [`StreamerProcess::print_pipeline`], writing into `dir`) under
/// `gst-launch-1.0` for `secs` seconds through a shell, as a person would paste it; `dir` is
/// created first and removed after.
pub fn gst_launch_cost(description: &str, dir: &Path, secs: u64) -> GstLaunchCost {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("the gst-launch output directory");
    let mut gst = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec gst-launch-1.0 {description}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gst-launch-1.0");
    std::thread::sleep(Duration::from_secs(secs));
    let cost = GstLaunchCost {
        cpu_seconds: procfs::cpu_seconds(gst.id(), false).unwrap_or(0.0),
        peak_rss_mb: procfs::peak_rss_mb(gst.id()).unwrap_or(0.0),
        rss_mb: procfs::rss_mb(gst.id()).unwrap_or(0.0),
    };
    let _ = gst.kill();
    let _ = gst.wait();
    let _ = std::fs::remove_dir_all(dir);
    cost
}
