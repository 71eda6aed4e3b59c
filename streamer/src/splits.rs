//! Segment boundaries set by the streamer, so each segment is finished the moment it ends.
//!
//! hlssink2 cuts segments with a splitmuxsink, which counts a GOP as complete only when the
//! *next* keyframe arrives. Left to split by time on its own, it therefore announces every
//! segment one whole GOP (the keyframe interval, 2 s by default) after the segment ended:
//! a new segment appears 4 s after a restart and a change on screen reaches a finished
//! segment up to 4 s later. (Measured with GStreamer 1.22; a shorter GOP would shorten the
//! wait but costs a third more bits for the same picture.)
//!
//! So hlssink2 runs with `target-duration=0` (no splitting of its own), and:
//! - at every boundary the streamer asks splitmuxsink to `split-at-running-time` the next one
//!   (with `send-keyframe-requests`, which also makes the encoder put a keyframe there);
//! - the frame right after each boundary keyframe is shown to splitmuxsink without its
//!   DELTA_UNIT flag, so the one-frame "GOP" of the keyframe completes at once and the
//!   finished segment is closed about one frame after its end;
//! - the flag is put back before the frame reaches the muxer, so the segments themselves are
//!   untouched: each starts with PAT, PMT and an IDR frame and has one random access point.
//!
//! This leans on how splitmuxsink finds GOP ends. The end-to-end tests and the benchmark
//! check segment lengths, decodability and the latency; re-run them on a GStreamer upgrade.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

/// Frames whose flag was lifted, by timestamp, until the muxer sees them.
type Lifted = Arc<Mutex<VecDeque<gst::ClockTime>>>;

/// More than enough for the frames between the parser and the muxer.
const LIFTED_MAX: usize = 64;

#[derive(Debug, Default)]
struct Boundaries {
    next: Option<gst::ClockTime>,
    lift_next: bool,
}

/// Makes the segments of `sink` (an hlssink2) `every` long, cut by the streamer at the
/// buffers leaving `parse` (the h264parse before it); see the module docs. On error, names
/// the element that is missing.
pub fn attach(sink: gst::Element, parse: &gst::Element, every: gst::ClockTime) -> Result<(), &'static str> {
    let bin = sink.downcast::<gst::Bin>().map_err(|_| "sink as a bin")?;
    let splitmux = bin
        .iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "splitmuxsink"))
        .ok_or("splitmuxsink inside hlssink2")?;
    let muxer: gst::Element = splitmux.property("muxer");
    let lifted: Lifted = Arc::default();

    // Put the flag back on every muxer input.
    let restore = {
        let lifted = Arc::clone(&lifted);
        move |pad: &gst::Pad| {
            let lifted = Arc::clone(&lifted);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(ref mut buffer)) = info.data {
                    let mut l = lifted.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(i) = buffer.pts().and_then(|pts| l.iter().position(|t| *t == pts)) {
                        l.remove(i);
                        buffer.make_mut().set_flags(gst::BufferFlags::DELTA_UNIT);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
    };
    for pad in muxer.sink_pads() {
        restore(&pad);
    }
    muxer.connect_pad_added(move |_, pad| {
        if pad.direction() == gst::PadDirection::Sink {
            restore(pad);
        }
    });

    let src = parse.static_pad("src").ok_or("parse.src")?;
    let splitmux = splitmux.downgrade();
    let state = Mutex::new(Boundaries::default());
    src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(ref mut buffer)) = info.data else { return gst::PadProbeReturn::Ok };
        let Some(rt) = running_time(pad, buffer) else { return gst::PadProbeReturn::Ok };
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let split_at = match s.next {
            None => Some(rt + every),
            Some(next) if keyframe && rt >= next => {
                s.lift_next = true;
                let mut n = next;
                while n <= rt {
                    n += every;
                }
                Some(n)
            }
            _ => None,
        };
        if let Some(at) = split_at {
            s.next = Some(at);
            if let Some(sm) = splitmux.upgrade() {
                sm.emit_by_name::<()>("split-at-running-time", &[&at.nseconds()]);
            }
        } else if s.lift_next && !keyframe {
            s.lift_next = false;
            if let Some(pts) = buffer.pts() {
                buffer.make_mut().unset_flags(gst::BufferFlags::DELTA_UNIT);
                let mut l = lifted.lock().unwrap_or_else(|e| e.into_inner());
                if l.len() == LIFTED_MAX {
                    l.pop_front();
                }
                l.push_back(pts);
            }
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

fn running_time(pad: &gst::Pad, buffer: &gst::Buffer) -> Option<gst::ClockTime> {
    let event = pad.sticky_event::<gst::event::Segment>(0)?;
    let segment = event.segment().downcast_ref::<gst::ClockTime>()?;
    segment.to_running_time(buffer.pts()?)
}
