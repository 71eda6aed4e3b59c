//! The worker's side: `desktop-streamer worker` reads one [`Request`] and serves it, running
//! the GStreamer pipeline in this process so that whatever native code does to it (Xlib's
//! `exit()`, a hung capture thread, a crashed driver) ends only this process.

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;
use serde::Serialize;

use super::{Control, EXIT_PIPELINE_FAILED, EncoderAnswer, Event, FLOW_INTERVAL, Request, STOP_GRACE, feed_out};
use crate::encoder;
use crate::flow::FlowCounters;
use crate::pipeline::{self, ENC, PARSE};

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
        Request::Run { description, sample_picture } => run_pipeline(&description, sample_picture),
    }
}

fn emit<T: Serialize>(value: &T) -> bool {
    let Ok(mut line) = serde_json::to_string(value) else { return false };
    line.push('\n');
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).and_then(|()| out.flush()).is_ok()
}

fn run_pipeline(description: &str, sample_picture: bool) -> ExitCode {
    let fail = |from_encoder: bool, detail: String| {
        emit(&Event::Error { from_encoder, detail });
        ExitCode::from(EXIT_PIPELINE_FAILED)
    };
    if let Err(e) = encoder::init() {
        return fail(false, e.to_string());
    }
    let flow = Arc::new(FlowCounters::default());
    let pipeline = match pipeline::build(description, &flow, sample_picture) {
        Ok(p) => p,
        Err(e) => return fail(false, e.to_string()),
    };
    let Some(parse) = pipeline.by_name(PARSE) else { return fail(false, format!("no element named {PARSE}")) };
    let feed_out = match feed_out::attach(&parse) {
        Ok(out) => out,
        Err(e) => return fail(false, format!("cannot open the live feed to the streamer: {e}")),
    };
    // The parent sends control lines, and closes stdin to say "stop".
    let stop = Arc::new(AtomicBool::new(false));
    let stop_reader = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().lock().read_line(&mut line).is_ok_and(|n| n > 0) {
            match serde_json::from_str::<Control>(&line) {
                Ok(Control::Keyframe) => {
                    if !feed_out::force_keyframe(&parse) {
                        eprintln!("the encoder did not take the keyframe request");
                    }
                }
                Ok(Control::KeyframeAt { pts_ns }) => {
                    let pts = gst::ClockTime::from_nseconds(pts_ns);
                    if !feed_out::force_keyframe_at(&parse, pts) {
                        eprintln!("the encoder did not take the request for a keyframe at {pts}");
                    }
                }
                Err(e) => eprintln!("desktop-streamer worker: unknown control line {:?}: {e}", line.trim()),
            }
            line.clear();
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
                gst::MessageView::Warning(w) => {
                    let src = msg.src().map(|s| s.path_string().to_string()).unwrap_or_default();
                    eprintln!("warning from {src}: {}", w.error());
                    None
                }
                _ => None,
            };
            if let Some(event) = event {
                // Every event but the counters ends the run.
                emit(&event);
                code = ExitCode::from(EXIT_PIPELINE_FAILED);
                break;
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
    if feed_out.dropped() > 0 {
        eprintln!("the live feed dropped {} access units the streamer did not read in time", feed_out.dropped());
    }
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
    (from_encoder, format!("{path}: {}{debug}", err.error()))
}

fn first_error(bus: &gst::Bus) -> Option<(bool, String)> {
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(describe_error(e));
        }
    }
    None
}
