//! Any of the project's services as a real process: started with its own arguments, its log
//! collected, its HTTP port learned from its "started" line (`listen=127.0.0.1:PORT`), and
//! stopped or killed on request or when dropped.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bins::bin;
use crate::http;
use crate::wait::try_wait_until;

/// How long a service may take to say it started.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the log of an ended service may stay open (held by a child it left behind).
pub const LOG_END_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    /// The HTTP port it listens on; 0 for a service without one.
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
    /// Set when its stderr ends: every line it wrote is in `log`.
    log_ended: Arc<AtomicBool>,
}

impl ServiceProcess {
    /// Starts `program` with `args` and `env` (RUST_LOG=info added) and waits for its
    /// "`program` started" log line.
    pub fn start(program: &str, args: &[OsString], env: &[(&str, &str)]) -> ServiceProcess {
        let mut child = Command::new(bin(program))
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&log);
        let log_ended = Arc::new(AtomicBool::new(false));
        let ended = Arc::clone(&log_ended);
        let started = format!("{program} started");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(&started) {
                    let port = line.split("listen=127.0.0.1:").nth(1).and_then(|r| r.split_whitespace().next());
                    let _ = port_tx.send(port.and_then(|p| p.parse::<u16>().ok()).unwrap_or(0));
                }
                sink.lock().unwrap().push(line);
            }
            ended.store(true, Ordering::Release);
        });
        let port = port_rx.recv_timeout(START_TIMEOUT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("{program} did not start:\n{}", log.lock().unwrap().join("\n"))
        });
        ServiceProcess { child, port, log, log_ended }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn get(&self, path: &str) -> Option<http::Response> {
        http::get(self.port, path)
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn signal(&self, name: &str) {
        signal_pid(self.child.id(), name);
    }

    /// Its exit status if it has ended, without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for the process to end by itself, at most `limit`, then for the log reader to
    /// take its last lines.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let status = self.wait_for_exit(limit)?;
        self.wait_log_end();
        Some(status)
    }

    fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = &mut self.child;
        try_wait_until("the process to exit", limit, || child.try_wait().unwrap()).ok()
    }

    /// Until its stderr ends; a child process left behind and still holding it open is given
    /// [`LOG_END_TIMEOUT`].
    fn wait_log_end(&self) {
        let _ = try_wait_until("the end of its stderr", LOG_END_TIMEOUT, || self.log_ended.load(Ordering::Acquire));
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`; the status and how long the exit
    /// took (the log is complete when this returns).
    pub fn terminate(&mut self, limit: Duration) -> (Option<ExitStatus>, Duration) {
        let start = std::time::Instant::now();
        self.signal("TERM");
        let status = self.wait_for_exit(limit);
        let took = start.elapsed();
        if status.is_some() {
            self.wait_log_end();
        }
        (status, took)
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        end(&mut self.child);
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// SIGKILLs `child` if it still runs and waits for it (a harness server's stop and drop).
pub fn end(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends a signal by name (`TERM`, `KILL`, `USR1`, `HUP`) to a process.
pub fn signal_pid(pid: u32, name: &str) {
    let ok = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -{name} {pid} failed");
}
