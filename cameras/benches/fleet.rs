//! What the prober costs for a fleet: N cameras (RTSP mounts of GStreamer's RTSP server,
//! spread over several server processes on loopback) at a 15 s heartbeat, every probe
//! proving a frame. Prints the prober's CPU (percent of one core) and resident memory for
//! N = 10, 100, 1000. The figures are of this process, which runs only the scheduler and its
//! probes; the servers are child processes and not counted.
//!
//!     cargo bench -p ds-cameras --bench fleet            (BENCH_SECONDS=60 to measure longer)

use std::sync::Arc;
use std::time::{Duration, Instant};

use ds_cameras::{Event, NetworkProber, Scheduler, State};
use ds_config::cameras::{Camera, CamerasConfig};
use ds_tests::procfs;
use ds_tests::rtsp::RtspServer;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const HEARTBEAT_S: u32 = 15;
const MOUNTS_PER_SERVER: usize = 250;
const FLEETS: [usize; 3] = [10, 100, 1000];

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let measure = Duration::from_secs(std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("cameras  heartbeats  up  failed  cpu%(1 core)  rss MB  peak rss MB");
    for n in FLEETS {
        let servers: Vec<RtspServer> =
            (0..n.div_ceil(MOUNTS_PER_SERVER)).map(|_| RtspServer::start_on(0, 0, MOUNTS_PER_SERVER.min(n))).collect();
        let streams = (0..n)
            .map(|i| Camera {
                name: format!("cam{i}"),
                url: servers[i / MOUNTS_PER_SERVER].url(&format!("bench/{}", i % MOUNTS_PER_SERVER)),
                ..Camera::default()
            })
            .collect();
        let config =
            CamerasConfig { heartbeat_seconds: HEARTBEAT_S, frozen_seconds: 0, streams, ..CamerasConfig::default() };
        let (up, failed, beats, cpu, rss) = runtime.block_on(async {
            let (_list, rx) = watch::channel(Arc::new(config));
            let (tx, mut events) = mpsc::channel(100_000);
            let stop = CancellationToken::new();
            let scheduler = Scheduler::spawn(NetworkProber::new().unwrap(), rx, tx, stop.clone());
            // One interval to reach the steady state, then measure.
            tokio::time::sleep(Duration::from_secs(u64::from(HEARTBEAT_S))).await;
            while events.try_recv().is_ok() {}
            let cpu0 = procfs::cpu_seconds(std::process::id(), false).unwrap_or(0.0);
            let t0 = Instant::now();
            let (mut up, mut failed, mut beats) = (0, 0, 0);
            let deadline = tokio::time::Instant::now() + measure;
            while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
                if let Event::Heartbeat(h) = e {
                    beats += 1;
                    if h.state == State::Up {
                        up += 1;
                    } else {
                        failed += 1;
                        if failed <= 3 {
                            eprintln!("failed: {} {:?} {:?}", h.camera_id, h.reason, h.message);
                        }
                    }
                }
            }
            let cpu =
                (procfs::cpu_seconds(std::process::id(), false).unwrap_or(0.0) - cpu0) / t0.elapsed().as_secs_f64();
            let rss = rss_mb();
            stop.cancel();
            scheduler.join().await;
            (up, failed, beats, cpu * 100.0, rss)
        });
        let peak = procfs::peak_rss_mb(std::process::id()).unwrap_or(0.0);
        println!("{n:>7}  {beats:>10}  {up:>4}  {failed:>6}  {cpu:>12.1}  {rss:>6.1}  {peak:>11.1}");
        drop(servers);
    }
}
