//! What one decode of a probe's pictures costs ([`ds_cameras::picture`]): a simulated camera
//! (ds_tests::rtsp_sim, in this process) at 640×360, 15 fps, a keyframe every second, is
//! probed once over loopback; the frames that probe kept (the keyframe and the frames after
//! it) are then decoded again and again by a decoder of one thread, and the process's CPU time
//! per decode is printed, with the wall time per decode. The server is idle while decodes
//! are measured (its one session ended with the probe), so the CPU time is the decoder's.
//!
//!     cargo bench -p ds-cameras --bench decode
//!
//! BENCH_DECODES=500 sets the number of decodes (default 200); BENCH_VIDEO=1280x720@2000
//! serves another picture size and bit rate.

use std::time::{Duration, Instant};

use ds_cameras::Decoder;
use ds_cameras::picture::Coded;
use ds_cameras::probe::{NetworkProber, Prober};
use ds_tests::procfs;
use ds_tests::rtsp_sim::{Clip, ClipSpec, SimServer, StartAt};

const DEFAULT_DECODES: u64 = 200;
const STEP: Duration = Duration::from_secs(5);

fn main() {
    let decodes = std::env::var("BENCH_DECODES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_DECODES);
    let spec = match std::env::var("BENCH_VIDEO") {
        Ok(v) => ClipSpec::parse(&v).unwrap_or_else(|e| panic!("BENCH_VIDEO: {e}")),
        Err(_) => ClipSpec::FLEET,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = SimServer::start(Clip::encode(&spec).expect("encode the clip"), 1, StartAt::Live);
    let coded = runtime.block_on(async {
        let proof =
            NetworkProber::new().unwrap().probe(&server.url(0), STEP, true).await.expect("the camera sends video");
        proof.coded.expect("frames to decode")
    });
    let frames = match &coded {
        Coded::H26x { frames, .. } => frames.len(),
        Coded::Jpeg(jpegs) => jpegs.len(),
    };
    let decoder = Decoder::new(1, 1);
    let me = std::process::id();
    let (cpu, wall) = runtime.block_on(async {
        // The first decode sets things up; it is not counted.
        decoder.decode(coded.clone()).await.expect("the frames decode");
        let (cpu0, t0) = (procfs::cpu_seconds(me, false).unwrap_or(0.0), Instant::now());
        for _ in 0..decodes {
            decoder.decode(coded.clone()).await.expect("the frames decode");
        }
        (procfs::cpu_seconds(me, false).unwrap_or(0.0) - cpu0, t0.elapsed().as_secs_f64())
    });
    println!(
        "{}x{} H.264 at {} kbit/s, {frames} frames a probe ({coded:?}): {decodes} decodes, CPU {:.2} ms a decode, \
         wall {:.2} ms a decode",
        spec.width,
        spec.height,
        spec.bitrate_kbps,
        1000.0 * cpu / decodes as f64,
        1000.0 * wall / decodes as f64
    );
}
