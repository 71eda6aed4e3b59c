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
//!
//! `child` is the worker's side, `process` the supervisor's; the supervisor starts
//! workers through the [`Workers`] trait, so its loop is tested with scripted workers.

mod child;
mod feed_out;
mod process;

use std::future::Future;
use std::time::Duration;

use ds_config::StreamerConfig;
use serde::{Deserialize, Serialize};

use crate::encoder::EncoderChoice;

pub use child::child_main;
pub use process::{WorkerProcess, WorkerProcesses, current_exe};

/// What the parent asks of a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Prove encoders in order and answer with one [`EncoderAnswer`] line.
    SelectEncoder { config: Box<StreamerConfig>, exclude: Vec<String> },
    /// Run this pipeline until stdin closes or it fails, copying every access unit to the
    /// [feed](crate::feed) pipe the worker inherited, taking [`Control`] lines on stdin.
    Run { description: String, sample_picture: bool },
}

/// What the parent asks of a running worker: one JSON line each on stdin, after the
/// [`Request::Run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// A keyframe now, with its parameter sets (a viewer joined or lost a picture).
    Keyframe,
    /// A keyframe on the first frame presented at or after this time (as the feed's units
    /// carry it; the end of an HLS segment), with its parameter sets.
    KeyframeAt { pts_ns: u64 },
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
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);
/// Exit status of a worker whose pipeline failed.
pub(crate) const EXIT_PIPELINE_FAILED: u8 = 3;

/// Starts workers: separate processes in the streamer ([`WorkerProcesses`]), a scripted fake
/// in the supervisor's tests, so its restart ladder runs without GStreamer.
pub trait Workers: Send + Sync + 'static {
    type Worker: Worker;

    /// Proves encoders and returns the first that works, skipping those in `exclude`; the
    /// error says why none did.
    fn select_encoder(
        &self,
        config: &StreamerConfig,
        exclude: &[String],
    ) -> impl Future<Output = Result<EncoderChoice, String>> + Send;

    /// Starts a worker serving `request` (a [`Request::Run`]).
    fn start(&self, request: &Request) -> impl Future<Output = std::io::Result<Self::Worker>> + Send;
}

/// A running worker as the supervisor sees it.
pub trait Worker: Send + 'static {
    /// Its process id, for the health API.
    fn pid(&self) -> Option<u32>;

    /// The next event; `None` once the worker's output ended (it exited). Cancel safe: an
    /// event is never lost when the future is dropped.
    fn next(&mut self) -> impl Future<Output = Option<Event>> + Send;

    /// Why the worker ended, once its output ended.
    fn end_detail(&mut self) -> impl Future<Output = String> + Send;

    /// Asks the worker to stop, then ends it if it does not.
    fn stop(self) -> impl Future<Output = ()> + Send;
}
