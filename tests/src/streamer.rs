//! A real `desktop-streamer` process for end-to-end tests: its own output directory, a free
//! loopback port, its log collected, and helpers to wait for what its health API says.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bins::bin;
use crate::http;

/// How long a streamer may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct StreamerProcess {
    child: Child,
    pub port: u16,
    pub config_path: PathBuf,
    hls: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    _dir: Option<tempfile::TempDir>,
}

impl StreamerProcess {
    /// Starts a streamer on `display` with `config` (a JSON object; `output_dir` is set to a
    /// fresh directory unless given) and waits until its HTTP API answers.
    pub fn start(display: &str, config: Value) -> StreamerProcess {
        StreamerProcess::start_with_env(display, config, &[])
    }

    /// Like [`start`](Self::start) with extra environment variables.
    pub fn start_with_env(display: &str, config: Value, env: &[(&str, &str)]) -> StreamerProcess {
        let dir = tempfile::tempdir().expect("temp dir");
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
        let config_path = conf_dir.join("config.json");
        std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        let mut child = Command::new(bin("desktop-streamer"))
            .arg("--config")
            .arg(&config_path)
            .args(["--listen", "127.0.0.1:0"])
            .env("DISPLAY", display)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start desktop-streamer");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("desktop-streamer started")
                    && let Some(port) = line.split("listen=127.0.0.1:").nth(1).and_then(|r| r.split_whitespace().next())
                {
                    let _ = port_tx.send(port.parse::<u16>().unwrap_or(0));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let port = port_rx.recv_timeout(START_TIMEOUT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("desktop-streamer did not start:\n{}", log.lock().unwrap().join("\n"))
        });
        StreamerProcess { child, port, config_path, hls: hls.to_owned(), log, _dir: dir }
    }

    pub fn hls_dir(&self) -> &Path {
        &self.hls
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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
        let start = Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < timeout {
            last = self.detailed();
            if ok(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out after {timeout:?} waiting for {what}; last health:\n{last:#}\nlog:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn signal(&self, name: &str) {
        signal_pid(self.child.id(), name);
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`.
    pub fn terminate(mut self, limit: Duration) -> (Option<ExitStatus>, Duration) {
        let start = Instant::now();
        signal_pid(self.child.id(), "TERM");
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (Some(status), start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (None, start.elapsed())
    }

    /// Waits for the process to end by itself, at most `limit`; its log comes back too.
    pub fn terminate_when_exited(mut self, limit: Duration) -> (Option<ExitStatus>, String) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (Some(status), self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (None, self.logs())
    }

    /// SIGKILL, as a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for StreamerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal by name (`TERM`, `KILL`, `USR1`, `HUP`) to a process.
pub fn signal_pid(pid: u32, name: &str) {
    let ok = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -{name} {pid} failed");
}
