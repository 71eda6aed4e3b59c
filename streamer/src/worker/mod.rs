//! The pipeline runs in a child process, `desktop-streamer worker`, that the supervisor owns.
//!
//! Native code can end a process without asking: when the X server dies, Xlib (inside
//! ximagesrc) prints "XIO: fatal IO error" and calls `exit()`; a hung X server blocks the
//! capture thread for good; a GPU driver may crash. In a child, each of these is just a worker
//! that ended, and the supervisor, the HTTP API and the playlist carry on. The parent never
//! loads GStreamer itself.
//!
//! The protocol: the parent writes one JSON [`Request`] line to the child's stdin and keeps
//! stdin open; the child answers with JSON [`Event`] lines on stdout and stops when stdin
//! closes. Everything the child prints on stderr goes to the parent's log.

use std::collections::VecDeque;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ds_config::StreamerConfig;
use gstreamer as gst;
use gstreamer::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::encoder::{self, EncoderChoice};
use crate::flow::FlowCounters;
use crate::pipeline::{self, ENC, SINK};

/// What the parent asks of a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Prove encoders in order and answer with one [`EncoderAnswer`] line.
    SelectEncoder { config: Box<StreamerConfig>, exclude: Vec<String> },
    /// Run this pipeline until stdin closes or it fails, cutting segments every
    /// `segment_secs`.
    Run { description: String, sample_picture: bool, segment_secs: u32 },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderAnswer {
    Chosen(EncoderChoice),
    Failed(String),
}

/// What a running worker reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The pipeline reached PLAYING.
    Playing,
    /// hlssink2 closed fragment `index` of this run (the file name follows from the run's
    /// location pattern), `duration` seconds long.
    Segment {
        index: u32,
        duration: f64,
    },
    /// Counters of the encoder's output and the captured picture, sent every [`FLOW_INTERVAL`].
    Flow {
        buffers: u64,
        bytes: u64,
        since_buffer_ms: Option<u64>,
        since_picture_change_ms: Option<u64>,
    },
    /// The pipeline failed; the worker exits after this.
    Error {
        from_encoder: bool,
        detail: String,
    },
    EndOfStream,
    /// The pipeline left PLAYING without being asked.
    StateChanged {
        detail: String,
    },
}

/// How often a worker reports its counters.
pub const FLOW_INTERVAL: Duration = Duration::from_millis(250);
/// How long a worker may take to stop after its stdin closed before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Lines of a worker's stderr kept to explain its end.
const STDERR_TAIL: usize = 6;
/// Exit status of a worker whose pipeline failed.
const EXIT_PIPELINE_FAILED: u8 = 3;

// ---- the child ----

/// `desktop-streamer worker`: reads one request from stdin and serves it.
pub fn child_main() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() || line.trim().is_empty() {
        eprintln!(
            "desktop-streamer worker: expected one JSON request on stdin (this command is started by desktop-streamer itself)"
        );
        return ExitCode::from(2);
    }
    let request: Request = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("desktop-streamer worker: bad request: {e}");
            return ExitCode::from(2);
        }
    };
    match request {
        Request::SelectEncoder { config, exclude } => {
            let answer = match encoder::select_encoder(&config, &exclude) {
                Ok(choice) => EncoderAnswer::Chosen(choice),
                Err(e) => EncoderAnswer::Failed(e.to_string()),
            };
            emit(&answer);
            ExitCode::SUCCESS
        }
        Request::Run { description, sample_picture, segment_secs } => {
            run_pipeline(&description, sample_picture, gst::ClockTime::from_seconds(segment_secs.into()))
        }
    }
}

fn emit<T: Serialize>(value: &T) -> bool {
    let Ok(mut line) = serde_json::to_string(value) else { return false };
    line.push('\n');
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).and_then(|()| out.flush()).is_ok()
}

fn run_pipeline(description: &str, sample_picture: bool, segment: gst::ClockTime) -> ExitCode {
    let fail = |from_encoder: bool, detail: String| {
        emit(&Event::Error { from_encoder, detail });
        ExitCode::from(EXIT_PIPELINE_FAILED)
    };
    if let Err(e) = encoder::init() {
        return fail(false, e.to_string());
    }
    let flow = Arc::new(FlowCounters::default());
    let pipeline = match pipeline::build(description, &flow, sample_picture, segment) {
        Ok(p) => p,
        Err(e) => return fail(false, e.to_string()),
    };
    // The parent closes stdin to say "stop".
    let stop = Arc::new(AtomicBool::new(false));
    let stop_reader = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut sink = String::new();
        while std::io::stdin().lock().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
        stop_reader.store(true, Ordering::Relaxed);
    });
    let Some(bus) = pipeline.bus() else { return fail(false, "the pipeline has no bus".into()) };
    if pipeline.set_state(gst::State::Playing).is_err() {
        let (from_encoder, detail) = first_error(&bus).unwrap_or((false, "the pipeline did not start".into()));
        finish(&pipeline);
        return fail(from_encoder, detail);
    }
    emit(&Event::Playing);
    let mut fragment_opened: Option<u64> = None;
    let mut index = 0u32;
    let mut last_flow = Instant::now();
    let mut code = ExitCode::SUCCESS;
    while !stop.load(Ordering::Relaxed) {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            let event = match msg.view() {
                gst::MessageView::Error(err) => {
                    let (from_encoder, detail) = describe_error(err);
                    Some(Event::Error { from_encoder, detail })
                }
                gst::MessageView::Eos(_) => Some(Event::EndOfStream),
                gst::MessageView::StateChanged(sc)
                    if msg.src() == Some(pipeline.upcast_ref())
                        && sc.old() == gst::State::Playing
                        && sc.current() < gst::State::Playing =>
                {
                    Some(Event::StateChanged { detail: format!("pipeline went from PLAYING to {:?}", sc.current()) })
                }
                gst::MessageView::Element(e) => e.structure().and_then(|s| {
                    let running_time = s.get::<u64>("running-time").ok();
                    match s.name().as_str() {
                        "splitmuxsink-fragment-opened" => {
                            fragment_opened = running_time;
                            None
                        }
                        "splitmuxsink-fragment-closed" => {
                            let duration = match (fragment_opened.take(), running_time) {
                                (Some(open), Some(close)) if close > open => (close - open) as f64 / 1e9,
                                _ => 0.0,
                            };
                            index += 1;
                            Some(Event::Segment { index: index - 1, duration })
                        }
                        _ => None,
                    }
                }),
                gst::MessageView::Warning(w) => {
                    let src = msg.src().map(|s| s.path_string().to_string()).unwrap_or_default();
                    eprintln!("warning from {src}: {}", w.error());
                    None
                }
                _ => None,
            };
            if let Some(event) = event {
                let fatal = !matches!(event, Event::Segment { .. });
                if !emit(&event) {
                    break;
                }
                if fatal {
                    code = ExitCode::from(EXIT_PIPELINE_FAILED);
                    break;
                }
            }
        }
        if last_flow.elapsed() >= FLOW_INTERVAL {
            last_flow = Instant::now();
            let (buffers, bytes) = flow.totals();
            let ago = |t: Option<Instant>| t.map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX));
            let report = Event::Flow {
                buffers,
                bytes,
                since_buffer_ms: ago(flow.last_buffer()),
                since_picture_change_ms: ago(flow.last_picture_change()),
            };
            if !emit(&report) {
                break;
            }
        }
    }
    finish(&pipeline);
    code
}

/// Sets the pipeline to NULL; if that hangs (a hung X server), the process ends anyway.
fn finish(pipeline: &gst::Pipeline) {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    std::thread::spawn(move || {
        std::thread::sleep(STOP_GRACE);
        if !flag.load(Ordering::Relaxed) {
            eprintln!("pipeline did not stop within {} s; exiting anyway", STOP_GRACE.as_secs());
            std::process::exit(i32::from(EXIT_PIPELINE_FAILED));
        }
    });
    let _ = pipeline.set_state(gst::State::Null);
    done.store(true, Ordering::Relaxed);
}

/// The text of an error message with the element path; whether the encoder sent it.
fn describe_error(err: &gst::message::Error) -> (bool, String) {
    let src = err.src();
    let path = src.map(|s| s.path_string().to_string()).unwrap_or_default();
    let from_encoder = src.is_some_and(|s| s.name() == ENC || s.path_string().contains(&format!("/{ENC}/")));
    let debug = err.debug().map(|d| format!(" ({d})")).unwrap_or_default();
    let from_sink = path.contains(&format!("/{SINK}"));
    let hint = if from_sink { "; is the output directory there and writable?" } else { "" };
    (from_encoder, format!("{path}: {}{debug}{hint}", err.error()))
}

fn first_error(bus: &gst::Bus) -> Option<(bool, String)> {
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(describe_error(e));
        }
    }
    None
}

// ---- the parent ----

/// A running worker as the supervisor sees it.
#[derive(Debug)]
pub struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::UnboundedReceiver<Event>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    pub pid: Option<u32>,
}

impl Worker {
    /// Starts `exe worker` with `request`.
    pub async fn spawn(exe: &Path, request: &Request) -> std::io::Result<Worker> {
        let mut child = Command::new(exe)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id();
        let mut stdin = child.stdin.take();
        if let Some(input) = stdin.as_mut() {
            let mut line = serde_json::to_string(request).map_err(std::io::Error::other)?;
            line.push('\n');
            input.write_all(line.as_bytes()).await?;
            input.flush().await?;
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
        Ok(Worker { child, stdin, events, stderr_tail, pid })
    }

    /// The next event; `None` once the worker's output ended (it exited).
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Why the worker ended, once its output ended: exit status and its last stderr lines.
    pub async fn end_detail(&mut self) -> String {
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
    pub async fn stop(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
            tracing::warn!(pid = self.pid, "capture process did not stop; killing it");
            let _ = self.child.kill().await;
        }
    }
}

/// Proves encoders in a worker process and returns the choice.
pub async fn select_encoder(exe: &Path, config: &StreamerConfig, exclude: &[String]) -> Result<EncoderChoice, String> {
    let request = Request::SelectEncoder { config: Box::new(config.clone()), exclude: exclude.to_vec() };
    let mut child = Command::new(exe)
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
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
