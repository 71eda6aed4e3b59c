//! Hostile LAN clients against the real services, loopback only, every loop bounded.
//!
//! A client that opens connections and holds them (half a request line each): one address
//! gets at most `DEFAULT_MAX_PER_CLIENT` places on each server, the rest are closed at once,
//! and the held ones are closed at the header-read timeout; meanwhile the stream keeps
//! producing segments and both services answer their health checks. The figures (health
//! latency before and during, the gap between segments) are printed, not asserted: timing
//! bounds belong to benchmarks.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ds_http::serve::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_PER_CLIENT};
use ds_tests::flood::Flood;
use ds_tests::hls;
use ds_tests::http;
use ds_tests::kiosk::{Kiosk, UNITS};
use ds_tests::streamer::StreamerProcess;
use ds_tests::wait::wait_until;
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
/// Connections the flood tries past its address's places.
const BEYOND: usize = 16;
/// What a loaded two-core machine may add to the header-read timeout before the server has
/// closed every held connection.
const SLACK: Duration = Duration::from_secs(5);

/// The slowest of `n` health answers from 127.0.0.1, in ms; panics if one does not come or
/// is not a success.
fn slowest_answer(port: u16, path: &str, n: usize) -> f64 {
    (0..n)
        .map(|_| {
            let started = Instant::now();
            let r = http::get(port, path).unwrap_or_else(|| panic!("GET {path} on :{port}: no answer"));
            assert_eq!(r.status, 200, "GET {path} on :{port}: {}", r.text());
            started.elapsed().as_secs_f64() * 1000.0
        })
        .fold(0.0, f64::max)
}

/// Segments the stream has produced so far (those gone from the playlist included).
fn produced(dir: &std::path::Path) -> u64 {
    let p = hls::read(dir);
    p.media_sequence + p.segments.len() as u64
}

#[test]
fn a_client_holding_connections_stops_neither_the_stream_nor_the_services() {
    let x = DummyDisplay::start().expect("dummy Xorg with two monitors");
    let _moving = x.animate(SECOND_MONITOR).unwrap();
    let streamer = StreamerProcess::start(&x.display(), json!({}));
    streamer.wait_for("two segments", WAIT, |h| h["playlist"]["segment_count"].as_u64() >= Some(2));
    let kiosk = Kiosk::start(&UNITS[..1], json!({"streamer_url": format!("http://127.0.0.1:{}", streamer.port)}));
    let web = &kiosk.web;
    let health_before = (slowest_answer(streamer.port, "/api/health", 5), slowest_answer(web.port, "/api/health", 5));

    // One address holds every place it may have on both servers, and tries for more.
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let per_client = DEFAULT_MAX_PER_CLIENT + BEYOND;
    let started = Instant::now();
    let floods = [Flood::hold(streamer.port, attacker, per_client), Flood::hold(web.port, attacker, per_client)];
    for (flood, name) in floods.iter().zip(["streamer", "dashboard"]) {
        wait_until(&format!("the {name} closes the connections past the address's places"), SLACK, || {
            match flood.closed() {
                n if n >= BEYOND => Ok(n),
                n => Err(format!("{n} of {} closed", flood.len())),
            }
        });
        assert_eq!(flood.closed(), BEYOND, "the {name} holds {DEFAULT_MAX_PER_CLIENT} connections of one address");
    }

    // While they are held, the stream goes on and both services answer.
    let health_during = (slowest_answer(streamer.port, "/api/health", 5), slowest_answer(web.port, "/api/health", 5));
    let status = web.get("/api/status").unwrap().json();
    assert_eq!(status["health"]["current_state"], "streaming", "{status:#}");
    let (from, at) = (produced(streamer.hls_dir()), Instant::now());
    wait_until("two more segments while the connections are held", WAIT, || {
        let now = produced(streamer.hls_dir());
        if now >= from + 2 { Ok(now) } else { Err(format!("{now} produced, {from} before")) }
    });
    let segment_gap = at.elapsed().as_secs_f64() / 2.0;
    let still_held = floods.iter().map(|f| f.len() - f.closed()).collect::<Vec<_>>();

    // At the header-read timeout both servers close what they held.
    for (flood, name) in floods.iter().zip(["streamer", "dashboard"]) {
        wait_until(&format!("the {name} closes the held connections"), DEFAULT_HEADER_READ_TIMEOUT + SLACK, || {
            match flood.closed() {
                n if n == flood.len() => Ok(()),
                n => Err(format!("{n} of {} closed after {:?}", flood.len(), started.elapsed())),
            }
        });
    }
    eprintln!(
        "held {DEFAULT_MAX_PER_CLIENT} per server (refused {BEYOND} more); still held after the segments: \
         {still_held:?}; slowest health answer before {:.1}/{:.1} ms, during {:.1}/{:.1} ms (streamer/dashboard); \
         {segment_gap:.2} s per segment during; all closed {:.1} s after they opened",
        health_before.0,
        health_before.1,
        health_during.0,
        health_during.1,
        started.elapsed().as_secs_f64()
    );
}
