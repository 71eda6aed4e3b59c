//! The supervisor's side: a worker is a child process `desktop-streamer worker` spoken to in
//! JSON lines; its stderr goes to the log and its last lines explain its end.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ds_config::StreamerConfig;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use command_fds::{CommandFdExt as _, FdMapping};

use super::{Control, EncoderAnswer, Event, Request, STOP_GRACE};
use crate::encoder::EncoderChoice;
use crate::feed::{FEED_FD, Feed};

/// Lines of a worker's stderr kept to explain its end.
const STDERR_TAIL: usize = 6;

/// Starts workers as `exe worker`, `exe` being this program, feeding what they encode into
/// one [`Feed`].
#[derive(Clone, Debug)]
pub struct WorkerProcesses {
    exe: PathBuf,
    feed: Feed,
}

impl WorkerProcesses {
    pub fn new(exe: PathBuf, feed: Feed) -> Self {
        WorkerProcesses { exe, feed }
    }
}

impl super::Workers for WorkerProcesses {
    type Worker = WorkerProcess;

    async fn select_encoder(&self, config: &StreamerConfig, exclude: &[String]) -> Result<EncoderChoice, String> {
        select_encoder(&self.exe, config, exclude).await
    }

    async fn start(&self, request: &Request) -> std::io::Result<WorkerProcess> {
        WorkerProcess::spawn(&self.exe, request, &self.feed).await
    }
}

impl super::Worker for WorkerProcess {
    fn pid(&self) -> Option<u32> {
        self.pid
    }

    async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    async fn end_detail(&mut self) -> String {
        WorkerProcess::end_detail(self).await
    }

    async fn stop(self) {
        WorkerProcess::stop(self).await;
    }
}

/// A running worker process.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
    /// Shared with the task passing keyframe requests; taken (closed) to stop the worker.
    stdin: Arc<tokio::sync::Mutex<Option<ChildStdin>>>,
    events: mpsc::UnboundedReceiver<Event>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    pid: Option<u32>,
}

impl WorkerProcess {
    /// Starts `exe worker` with `request`; a run with a feed gets the pipe of `feed` on its
    /// [`FEED_FD`] and `feed`'s keyframe requests on its stdin.
    async fn spawn(exe: &Path, request: &Request, feed: &Feed) -> std::io::Result<WorkerProcess> {
        let mut command = worker_command(exe, Stdio::piped());
        let wants_feed = matches!(request, Request::Run { .. });
        let pipe = if wants_feed {
            let (reader, writer) = std::io::pipe()?;
            command
                .fd_mappings(vec![FdMapping { parent_fd: writer.into(), child_fd: FEED_FD }])
                .map_err(std::io::Error::other)?;
            Some(tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())?)
        } else {
            None
        };
        let mut child = command.spawn()?;
        // Our copy of the write end went with the command: the pipe ends when the worker does.
        drop(command);
        let pid = child.id();
        let mut stdin = child.stdin.take();
        if let Some(input) = stdin.as_mut() {
            let mut line = serde_json::to_string(request).map_err(std::io::Error::other)?;
            line.push('\n');
            input.write_all(line.as_bytes()).await?;
            input.flush().await?;
        }
        let stdin = Arc::new(tokio::sync::Mutex::new(stdin));
        if let Some(pipe) = pipe {
            tokio::spawn(pass_keyframe_requests(
                feed.keyframe_requests(),
                feed.timed_keyframe_requests(),
                Arc::clone(&stdin),
            ));
            // The run begins now, before the supervisor reads the next unit.
            let pumping = feed.pump(pipe);
            tokio::spawn(async move {
                if let Err(e) = pumping.await {
                    tracing::warn!(worker = pid, error = %e, "the live feed from the capture process broke");
                }
            });
        }
        let (tx, events) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<Event>(&line) {
                        Ok(e) => {
                            if tx.send(e).is_err() {
                                break;
                            }
                        }
                        Err(_) => tracing::debug!(pid, line = %line, "worker output"),
                    }
                }
            });
        }
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = Arc::clone(&stderr_tail);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::warn!(worker = pid, "{line}");
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == STDERR_TAIL {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            });
        }
        Ok(WorkerProcess { child, stdin, events, stderr_tail, pid })
    }

    /// Why the worker ended, once its output ended: exit status and its last stderr lines.
    async fn end_detail(&mut self) -> String {
        let status = tokio::time::timeout(STOP_GRACE, self.child.wait()).await;
        let status = match status {
            Ok(Ok(s)) => s.to_string(),
            Ok(Err(e)) => format!("unknown exit ({e})"),
            Err(_) => "no exit yet".to_owned(),
        };
        // stderr may trail stdout by a moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        let last = tail.iter().rev().find(|l| !l.trim().is_empty()).cloned().unwrap_or_default();
        if last.is_empty() {
            format!("the capture process ended ({status})")
        } else {
            format!("the capture process ended ({status}): {last}")
        }
    }

    /// Asks the worker to stop (closes its stdin), then kills it if it does not.
    async fn stop(mut self) {
        drop(self.stdin.lock().await.take());
        if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
            tracing::warn!(pid = self.pid, "capture process did not stop; killing it");
            let _ = self.child.kill().await;
        }
    }
}

/// Writes a [`Control::Keyframe`] line to the worker for each request let through, and a
/// [`Control::KeyframeAt`] for each timed one, until the worker's stdin is closed.
async fn pass_keyframe_requests(
    mut requests: tokio::sync::watch::Receiver<u64>,
    mut timed: tokio::sync::watch::Receiver<Option<Duration>>,
    stdin: Arc<tokio::sync::Mutex<Option<ChildStdin>>>,
) {
    requests.mark_unchanged();
    // A timed request already there is for the previous worker's clock.
    timed.mark_unchanged();
    loop {
        let control = tokio::select! {
            r = requests.changed() => match r {
                Ok(()) => Control::Keyframe,
                Err(_) => return,
            },
            r = timed.changed() => match (r, *timed.borrow_and_update()) {
                (Ok(()), Some(at)) => {
                    Control::KeyframeAt { pts_ns: u64::try_from(at.as_nanos()).unwrap_or(u64::MAX) }
                }
                (Ok(()), None) => continue,
                (Err(_), _) => return,
            },
        };
        let line = serde_json::to_string(&control).unwrap_or_default() + "\n";
        let mut input = stdin.lock().await;
        let Some(pipe) = input.as_mut() else { return };
        if pipe.write_all(line.as_bytes()).await.is_err() || pipe.flush().await.is_err() {
            return;
        }
    }
}

/// `exe worker` speaking on its stdin and stdout, killed if dropped.
fn worker_command(exe: &Path, stderr: Stdio) -> Command {
    let mut command = Command::new(exe);
    command.arg("worker").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr).kill_on_drop(true);
    command
}

/// Proves encoders in a worker process and returns the choice.
async fn select_encoder(exe: &Path, config: &StreamerConfig, exclude: &[String]) -> Result<EncoderChoice, String> {
    let request = Request::SelectEncoder { config: Box::new(config.clone()), exclude: exclude.to_vec() };
    let mut child = worker_command(exe, Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {} worker: {e}", exe.display()))?;
    if let Some(mut input) = child.stdin.take() {
        let line = serde_json::to_string(&request).map_err(|e| e.to_string())? + "\n";
        input.write_all(line.as_bytes()).await.map_err(|e| format!("cannot talk to the worker: {e}"))?;
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| "encoder selection took longer than 60 s".to_owned())?
        .map_err(|e| format!("encoder selection failed: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    match serde_json::from_str::<EncoderAnswer>(text.trim()) {
        Ok(EncoderAnswer::Chosen(c)) => Ok(c),
        Ok(EncoderAnswer::Failed(e)) => Err(e),
        Err(_) => Err(format!("encoder selection ended without an answer ({})", output.status)),
    }
}

/// This program, for starting workers.
pub fn current_exe() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}
