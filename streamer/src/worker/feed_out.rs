//! The worker's end of the [feed](crate::feed): every access unit leaving h264parse is copied
//! to the pipe on [`FEED_FD`], and keyframe requests from the streamer reach the encoder.
//!
//! The copy is taken in a pad probe on the streaming thread and handed to a writer thread
//! through a bounded queue; the streaming thread never waits for the pipe. When the queue is
//! full, units are dropped up to the next keyframe, and counted.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{TrySendError, sync_channel};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use crate::feed::{FEED_FD, write_unit};
use crate::h264::is_idr;

/// Units queued for the pipe before the worker drops to the next keyframe.
const QUEUE: usize = 64;

/// Counts of what could not be sent, reported in the worker's log at its end.
#[derive(Debug, Default)]
pub struct FeedOut {
    dropped: AtomicU64,
    closed: AtomicBool,
    /// Dropping units until the next keyframe.
    skipping: AtomicBool,
}

impl FeedOut {
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Opens the inherited pipe and copies every unit leaving `parse` into it.
pub fn attach(parse: &gst::Element) -> io::Result<Arc<FeedOut>> {
    // The descriptor is inherited from the streamer; opening it through /proc takes it over
    // without unsafe code.
    let pipe = File::options().write(true).open(format!("/proc/self/fd/{FEED_FD}"))?;
    let (tx, rx) = sync_channel::<(Option<u64>, bool, gst::MappedBuffer<gst::buffer::Readable>)>(QUEUE);
    let out = Arc::new(FeedOut::default());
    let writer_out = Arc::clone(&out);
    std::thread::Builder::new().name("feed-writer".into()).spawn(move || {
        let mut pipe = BufWriter::new(pipe);
        while let Ok((pts, keyframe, map)) = rx.recv() {
            let sent = write_unit(&mut pipe, pts, keyframe, map.as_slice()).and_then(|()| pipe.flush());
            if let Err(e) = sent {
                eprintln!("the live feed to the streamer ended: {e}");
                writer_out.closed.store(true, Ordering::Relaxed);
                return;
            }
        }
    })?;
    let src = parse.static_pad("src").ok_or_else(|| io::Error::other("h264parse has no src pad"))?;
    let probe_out = Arc::clone(&out);
    src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if probe_out.closed.load(Ordering::Relaxed) {
            return gst::PadProbeReturn::Ok;
        }
        if let Some(buffer) = info.buffer()
            && let Ok(map) = buffer.copy().into_mapped_buffer_readable()
        {
            let keyframe = is_idr(map.as_slice());
            if keyframe {
                probe_out.skipping.store(false, Ordering::Relaxed);
            }
            if probe_out.skipping.load(Ordering::Relaxed) {
                probe_out.dropped.fetch_add(1, Ordering::Relaxed);
            } else if let Err(e) = tx.try_send((buffer.pts().map(gst::ClockTime::nseconds), keyframe, map)) {
                if matches!(e, TrySendError::Disconnected(_)) {
                    probe_out.closed.store(true, Ordering::Relaxed);
                }
                probe_out.dropped.fetch_add(1, Ordering::Relaxed);
                probe_out.skipping.store(true, Ordering::Relaxed);
            }
        }
        gst::PadProbeReturn::Ok
    });
    Ok(out)
}

/// Asks the encoder upstream of `parse` for a keyframe now, with its parameter sets.
pub fn force_keyframe(parse: &gst::Element) -> bool {
    let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
    parse.static_pad("src").is_some_and(|pad| pad.send_event(event))
}

/// Asks the encoder upstream of `parse` for a keyframe on its first frame presented at or
/// after `pts` (a time of `parse`'s output, as the feed carries it), with its parameter sets.
/// The encoder keeps the request until then; it counts in running time, which the encoder's
/// own output segment gives (x264enc, for one, shifts its timestamps by 1000 hours and its
/// segment with them).
pub fn force_keyframe_at(parse: &gst::Element, pts: gst::ClockTime) -> bool {
    let Some(pad) = parse.static_pad("src") else { return false };
    let running_time = pad
        .sticky_event::<gst::event::Segment>(0)
        .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().and_then(|s| s.to_running_time(pts)));
    let Some(running_time) = running_time else { return false };
    let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).running_time(running_time).build();
    pad.send_event(event)
}
