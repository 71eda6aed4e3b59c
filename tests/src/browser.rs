//! Real-browser tests: the scripts in tests/browser (playwright-core driving Debian's headless
//! Chromium; installed from the npm registry by tests/run.sh) run under node, print one JSON
//! line with their checks last, and may ask the test for what only it can do (change what a
//! camera server sends) with `{"ask": ...}` lines, answered with one JSON line on their stdin.
//!
//! A script that hangs is killed at its deadline, so a browser test fails instead of
//! blocking the suite.

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bins::{bin, workspace_root};

/// Where the screenshots of `test` go: `$DS_SCREENSHOT_DIR` if set, else `screenshots/<test>`
/// beside the binaries under test (created).
pub fn screenshot_dir(test: &str) -> PathBuf {
    let dir = std::env::var_os("DS_SCREENSHOT_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let profile = bin("desktop-streamer-web").parent().expect("the binary is in a directory").to_owned();
        profile.join("screenshots").join(test)
    });
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// What a finished script said.
#[derive(Debug)]
pub struct ScriptRun {
    /// Its last stdout line, parsed (`{"ok": …, "checks": {…}}` by convention).
    pub result: Value,
    /// Its stderr (node's warnings, a script's own diagnostics).
    pub stderr: String,
    pub elapsed: Duration,
}

impl ScriptRun {
    /// Asserts that each check in `names` passed, showing the check, the script's stderr and
    /// `logs` (the services' logs) when one did not.
    ///
    /// # Panics
    /// When a check did not pass.
    pub fn assert_passed(&self, names: &[&str], logs: &str) {
        for name in names {
            let check = &self.result["checks"][name];
            assert_eq!(check["ok"], true, "{name}: {check:#}\n{}\n{logs}", self.stderr);
        }
    }
}

/// Runs `tests/browser/<script>` with `args`, answering each `{"ask": …}` line it prints with
/// `answer(line)`; panics with the script's output when it prints no JSON result or is still
/// running after `limit`.
pub fn run_script<A: AsRef<OsStr>>(
    script: &str,
    args: &[A],
    limit: Duration,
    mut answer: impl FnMut(&Value) -> Value,
) -> ScriptRun {
    let started = Instant::now();
    let mut child = Node(
        Command::new("node")
            .arg(workspace_root().join("tests/browser").join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs (tests/deps.sh installs it)"),
    );
    let mut stdin = child.0.stdin.take().expect("piped stdin");
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut stderr = child.0.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = started + limit;
    let mut said = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Ok(ask @ Value::Object(_)) = serde_json::from_str::<Value>(&line)
                    && ask.get("ask").is_some()
                {
                    let reply = answer(&ask);
                    // A script that already ended cannot read it; its result says why.
                    let _ = writeln!(stdin, "{reply}");
                }
                said.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // `child` is killed when the panic drops it.
                panic!("{script} still ran after {limit:?}; it said:\n{}", said.join("\n"));
            }
        }
    }
    drop(stdin);
    let _ = child.0.wait();
    let stderr = err_reader.join().unwrap_or_default();
    let result = said.last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
        panic!("no result from {script}:\n{}\n{stderr}", said.join("\n"));
    });
    ScriptRun { result, stderr, elapsed: started.elapsed() }
}

/// The node process, killed when a failed test unwinds past it (the Chromium it started
/// ends when its debugging pipe closes).
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sets the dashboard's admin password in the auth file `config` names
/// (`desktop-streamer-web set-password`, reading it from stdin), so a page can log in.
pub fn set_admin_password(config: &Path, password: &str) {
    let mut set = Command::new(bin("desktop-streamer-web"))
        .arg("--config")
        .arg(config)
        .arg("set-password")
        .stdin(Stdio::piped())
        .spawn()
        .expect("desktop-streamer-web runs");
    writeln!(set.stdin.take().expect("piped stdin"), "{password}").expect("write the password");
    assert!(set.wait().expect("set-password ends").success(), "set-password failed (its stderr is above)");
}
