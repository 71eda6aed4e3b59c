//! Simulated cameras for benchmarks: a small RTSP server on 127.0.0.1 serving `/cam0` ..
//! `/cam{N-1}` from one canned H.264 clip (see [`clip`]). GStreamer's RTSP server (see
//! [`crate::rtsp`]) builds an encoding pipeline for every session, which a 2-core machine
//! cannot do 67 times a second for 1000 cameras at a 15 s heartbeat; this server encodes once
//! and then only frames RTP packets, so a fleet of cameras costs little besides the prober
//! under test.
//!
//! It is a real protocol peer, not a mock: OPTIONS, DESCRIBE (an SDP with the clip's
//! `sprop-parameter-sets`), SETUP over TCP interleaved, PLAY (RTP-Info), GET_PARAMETER and
//! TEARDOWN; RTP per RFC 6184 (single NAL unit packets and FU-A, the marker on the last
//! packet of a frame, 90 kHz timestamps, a random SSRC), at 15 frames per second, each
//! session starting where the mount's live picture is ([`StartAt::Live`]: the first keyframe
//! comes within a keyframe interval) or at once with a keyframe ([`StartAt::GopCache`]). It has no authentication and no UDP; unknown paths get 404.
//!
//! Besides `/camN`, the mounts `/audio` (no video), `/frozen` (the same coded picture again
//! and again), `/lossy` (three of every four frames between keyframes left out) and `/joined`
//! (joined mid-stream: `RTP-Info` names an earlier packet, the first sent is the middle of a
//! keyframe) misbehave on purpose; a server in a test records every request it got ([`SimServer::requests`]).
//!
//! Run it in-process ([`SimServer`], for tests) or as a separate process ([`SimProcess`],
//! for benchmarks, so that what the servers cost is not counted as the prober's): the
//! `rtsp-sim` binary of this crate, or any binary that hands its arguments to [`run`].

pub mod clip;
mod server;

pub use server::{Seen, StartAt};

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub use clip::{Clip, ClipFile, ClipSpec};

/// How long a server process may take to report that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The line a server process prints once it listens: `READY port=PORT`.
const READY: &str = "READY port=";

/// Why the simulated cameras cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot {0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("cannot encode the clip: {0}")]
    Encode(String),
    #[error("the clip is not usable H.264: {0}")]
    Clip(&'static str),
    #[error("{0}\nusage: rtsp-sim --mounts N [--port P] [--clip FILE.h264] [--start live|gop-cache]")]
    Usage(String),
}

/// Arguments of a server process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// Mounts `/cam0` .. `/cam{mounts-1}`.
    pub mounts: usize,
    /// 0: a free port.
    pub port: u16,
    /// A clip written by [`Clip::encode_to`]; without it, the process encodes its own.
    pub clip: Option<PathBuf>,
    pub start: StartAt,
}

impl Args {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, SimError> {
        let mut parsed = Args { mounts: 0, port: 0, clip: None, start: StartAt::Live };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| SimError::Usage(format!("{flag} needs a value")));
            match flag.as_str() {
                "--mounts" => {
                    parsed.mounts =
                        value()?.parse().map_err(|_| SimError::Usage("--mounts takes a number of mounts".into()))?;
                }
                "--port" => {
                    parsed.port = value()?.parse().map_err(|_| SimError::Usage("--port takes a port number".into()))?;
                }
                "--clip" => parsed.clip = Some(PathBuf::from(value()?)),
                "--start" => {
                    parsed.start = match value()?.as_str() {
                        "live" => StartAt::Live,
                        "gop-cache" => StartAt::GopCache,
                        other => {
                            return Err(SimError::Usage(format!("--start takes live or gop-cache, not `{other}`")));
                        }
                    };
                }
                other => return Err(SimError::Usage(format!("unknown argument `{other}`"))),
            }
        }
        if parsed.mounts == 0 {
            return Err(SimError::Usage("--mounts must be at least 1".into()));
        }
        Ok(parsed)
    }

    /// The arguments for a command line.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec!["--mounts".to_owned(), self.mounts.to_string(), "--port".to_owned(), self.port.to_string()];
        if let Some(clip) = &self.clip {
            v.extend(["--clip".to_owned(), clip.display().to_string()]);
        }
        let start = match self.start {
            StartAt::Live => "live",
            StartAt::GopCache => "gop-cache",
        };
        v.extend(["--start".to_owned(), start.to_owned()]);
        v
    }
}

/// Runs a server process: binds, prints `READY port=PORT` on stdout, and serves until
/// killed. It dies with the process that started it (so a crashed benchmark leaves no
/// servers behind).
pub fn run(args: &Args) -> Result<(), SimError> {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let clip = match &args.clip {
        Some(path) => Clip::load(path)?,
        None => Clip::encode(&ClipSpec::default())?,
    };
    // One thread: the server's work is framing and writing, and the machine's cores are
    // for the prober under test.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SimError::Io("start the tokio runtime".into(), e))?;
    let listener = bind(args.port)?;
    let port = listener.local_addr().map_err(|e| SimError::Io("read the listening port".into(), e))?.port();
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|e| SimError::Io("register the listener".into(), e))?;
        let mut out = std::io::stdout();
        writeln!(out, "{READY}{port}").and_then(|()| out.flush()).map_err(|e| SimError::Io("print READY".into(), e))?;
        server::serve(listener, Arc::new(server::Shared::new(clip, args.mounts, args.start, false))).await;
        Ok(())
    })
}

fn bind(port: u16) -> Result<std::net::TcpListener, SimError> {
    let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .map_err(|e| SimError::Io(format!("listen on 127.0.0.1:{port}"), e))?;
    listener.set_nonblocking(true).map_err(|e| SimError::Io("make the listener non-blocking".into(), e))?;
    Ok(listener)
}

/// A server in this process, on its own thread and runtime; stops when dropped.
#[derive(Debug)]
pub struct SimServer {
    pub port: u16,
    shared: Arc<server::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimServer {
    /// Serves `mounts` mounts of `clip` on a free port, sessions starting at `start`.
    ///
    /// # Panics
    /// If it cannot listen on 127.0.0.1 or start its thread.
    pub fn start(clip: Clip, mounts: usize, start: StartAt) -> SimServer {
        let listener = bind(0).expect("listen for the simulated cameras");
        let port = listener.local_addr().expect("listening port").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::new(server::Shared::new(clip, mounts, start, true));
        let served = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-sim".into())
            .spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("register the listener");
                    tokio::select! {
                        () = server::serve(listener, served) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime ends every connection.
            })
            .expect("start the rtsp-sim thread");
        SimServer { port, shared, stop: Some(stop), thread: Some(thread) }
    }

    /// `rtsp://127.0.0.1:PORT/camN`.
    pub fn url(&self, mount: usize) -> String {
        url(self.port, mount)
    }

    /// `rtsp://127.0.0.1:PORT/NAME`, e.g. for `frozen`, `lossy` or `audio`.
    pub fn url_of(&self, name: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{name}", self.port)
    }

    /// How many client connections are open now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every request the server got so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.log.as_ref().map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).clone()).unwrap_or_default()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn url(port: u16, mount: usize) -> String {
    format!("rtsp://127.0.0.1:{port}/cam{mount}")
}

/// A server process (see [`run`]); killed by pid and reaped when dropped.
#[derive(Debug)]
pub struct SimProcess {
    child: Child,
    pub port: u16,
}

impl SimProcess {
    /// Starts `program` with `leading` arguments (e.g. a flag that makes a benchmark run
    /// [`run`]) followed by `args`, and waits for its `READY` line.
    ///
    /// # Panics
    /// If it does not start or does not report its port within [`START_TIMEOUT`].
    pub fn start(program: &Path, leading: &[&str], args: &Args) -> SimProcess {
        let mut child = Command::new(program)
            .args(leading)
            .args(args.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start the simulated cameras ({}): {e}", program.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let Some(port) = line.trim().strip_prefix(READY).and_then(|p| p.parse::<u16>().ok()) else {
            let _ = child.kill();
            let status = child.wait();
            panic!("the simulated cameras did not start (said {line:?}, {status:?}); their stderr is above");
        };
        SimProcess { child, port }
    }

    /// `rtsp://127.0.0.1:PORT/camN`.
    pub fn url(&self, mount: usize) -> String {
        url(self.port, mount)
    }

    /// The process id (for measuring what the servers cost).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let args = Args { mounts: 250, port: 0, clip: Some(PathBuf::from("/tmp/c.h264")), start: StartAt::GopCache };
        assert_eq!(Args::parse(args.to_args()).unwrap(), args);
        let e = Args::parse(["--port".to_owned(), "1".to_owned()]).unwrap_err().to_string();
        assert!(e.contains("--mounts must be at least 1") && e.contains("usage"), "{e}");
        let e = Args::parse(["--mounts".to_owned()]).unwrap_err().to_string();
        assert!(e.contains("--mounts needs a value"), "{e}");
    }
}
