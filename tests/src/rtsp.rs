//! Real RTSP servers for the camera tests: GStreamer's RTSP server, driven by
//! tests/fixtures/rtsp_server.py through Debian's python3 (which sees python3-gi and
//! gir1.2-gst-rtsp-server-1.0). See that file for the mounts it serves.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::bins::workspace_root;

/// Debian's interpreter: the one python3-gi installs into (a pyenv python may come first on
/// PATH).
const PYTHON: &str = "/usr/bin/python3";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The user and password the secure server accepts (Digest).
pub const USER: &str = "viewer";
pub const PASSWORD: &str = "pa55-w0rd";

/// A running pair of RTSP servers (open and Digest-protected); killed by pid when dropped.
#[derive(Debug)]
pub struct RtspServer {
    child: Child,
    /// Port of the server without authentication.
    pub port: u16,
    /// Port of the server that requires Digest authentication for `/live`.
    pub secure_port: u16,
}

impl RtspServer {
    /// Starts both servers on free ports.
    pub fn start() -> RtspServer {
        RtspServer::start_on(0, 0, 0)
    }

    /// Starts both servers on the given ports (0: a free one), with `bench_mounts` names
    /// `/bench/0`.. for the shared benchmark stream.
    pub fn start_on(port: u16, secure_port: u16, bench_mounts: usize) -> RtspServer {
        assert!(
            Path::new(PYTHON).exists()
                && Command::new(PYTHON)
                    .args(["-c", "import gi; gi.require_version('GstRtspServer', '1.0')"])
                    .status()
                    .is_ok_and(|s| s.success()),
            "GStreamer's RTSP server is missing: install Debian's python3-gi and gir1.2-gst-rtsp-server-1.0 (tests/deps.sh)"
        );
        let script = workspace_root().join("tests/fixtures/rtsp_server.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg(port.to_string())
            .arg(secure_port.to_string())
            .env("RTSP_USER", USER)
            .env("RTSP_PASSWORD", PASSWORD)
            .env("RTSP_BENCH_MOUNTS", bench_mounts.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/fixtures/rtsp_server.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let Ok(line) = rx.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the RTSP server did not report its ports within {START_TIMEOUT:?}");
        };
        let field = |name: &str| {
            line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse::<u16>().ok())
        };
        let (Some(port), Some(secure_port)) = (field("open"), field("secure")) else {
            let _ = child.kill();
            let status = child.wait();
            panic!("the RTSP server did not start (said {line:?}, {status:?}); its stderr is above");
        };
        RtspServer { child, port, secure_port }
    }

    /// `rtsp://127.0.0.1:PORT/PATH` on the open server (`path` without the leading slash).
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{path}", self.port)
    }

    /// The secure server's `/live`, with `user:password@` when given.
    pub fn secure_url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((u, p)) => format!("rtsp://{u}:{p}@127.0.0.1:{}/live", self.secure_port),
            None => format!("rtsp://127.0.0.1:{}/live", self.secure_port),
        }
    }

    /// The process id (for measuring what the servers cost).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the servers and waits for them to exit; their ports are free afterwards.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        crate::service::end(&mut self.child);
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill();
    }
}
