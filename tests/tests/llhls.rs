//! Low-latency HLS end to end: a real two-monitor X server with moving content, the real
//! streamer cutting segments and parts from its one encoder, and real players: ffmpeg on both
//! playlists, hls.js in its low-latency mode in Debian's headless Chromium. The low-latency
//! playlist is checked by RFC 8216bis's rules ([`ds_tests::llhls::parse`]) and against the plain
//! playlist and the segment files, reload after reload.

use std::time::{Duration, Instant};

use ds_tests::browser::run_script;
use ds_tests::hls::{self, Viewer};
use ds_tests::llhls::{self, LowLatency};
use ds_tests::media::{random_access_points, segment_problem};
use ds_tests::streamer::{StreamerProcess, signal_pid};
use ds_tests::wait::wait_until;
use ds_tests::xorg::{DummyDisplay, SECOND_MONITOR};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const LL: &str = "/hls/desktop/ll.m3u8";

fn moving_stream() -> (DummyDisplay, ds_tests::xorg::Animation, StreamerProcess) {
    let x = DummyDisplay::start().expect("dummy Xorg with two monitors");
    let moving = x.animate(SECOND_MONITOR).unwrap();
    // hls.js fetches the playlist and parts from llhls.mjs's page, about:blank: another origin.
    let s = StreamerProcess::start(&x.display(), json!({"cors_origins": ["*"]}));
    s.wait_for("two segments", WAIT, |h| h["playlist"]["segment_count"].as_u64() >= Some(2));
    (x, moving, s)
}

/// The low-latency playlist for `query`, as served.
fn ll_text(s: &StreamerProcess, query: &str) -> String {
    let r = s.get(&format!("{LL}{query}")).expect("the streamer answers");
    assert_eq!(r.status, 200, "{LL}{query}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/vnd.apple.mpegurl"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    r.text()
}

/// The low-latency playlist for `query`, checked on its own.
fn ll(s: &StreamerProcess, query: &str) -> LowLatency {
    llhls::parse(&ll_text(s, query))
}

fn part_bytes(s: &StreamerProcess, uri: &str) -> Vec<u8> {
    let r = s.get(&format!("/hls/desktop/{uri}")).expect("the streamer answers");
    assert_eq!((r.status, r.header("content-type")), (200, Some("video/mp2t")), "{uri}: {}", r.text());
    r.body
}

/// Whether the first video packet of `ts` starts a keyframe (its random access indicator).
fn starts_with_keyframe(ts: &[u8]) -> bool {
    ts.chunks_exact(188)
        .find(|p| p[1] & 0x40 != 0 && u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]) == 0x100)
        .is_some_and(|p| random_access_points(p) == 1)
}

/// Follows the stream with blocking reloads for a few segments, checking every playlist: the
/// same window as the plain playlist, parts no longer than PART-TARGET, each complete
/// segment exactly its parts' bytes, INDEPENDENT exactly on the parts that start with a
/// keyframe, and those parts decodable on their own.
#[test]
fn the_low_latency_playlist_is_the_plain_window_with_parts_that_are_their_segments() {
    let (_x, _moving, s) = moving_stream();
    let mut plain = Viewer::new(s.hls_dir());
    let mut follower = llhls::Follower::new();
    let mut checked = std::collections::BTreeSet::new();
    let mut part_durations = Vec::new();
    let mut segment_durations = Vec::new();
    let mut p = follower.reload(&ll_text(&s, ""));
    let started = Instant::now();
    while checked.len() < 4 {
        assert!(started.elapsed() < Duration::from_secs(60), "four segments with parts in a minute");
        // The next part, blocking.
        p = follower.reload(&ll_text(&s, &format!("?_HLS_msn={}&_HLS_part={}", p.next_msn(), p.building.len())));
        let listed = plain.reload();
        // Same numbers, names and durations wherever both list a segment.
        for seg in &p.segments {
            if let Some(i) = seg.msn.checked_sub(listed.media_sequence).map(|i| i as usize)
                && let Some(l) = listed.segments.get(i)
            {
                assert_eq!((&l.name, &format!("{:.3}", seg.extinf)), (&seg.name, &l.extinf), "msn {}", seg.msn);
                assert_eq!(l.discontinuity, seg.discontinuity, "msn {}", seg.msn);
            }
        }
        for seg in p.segments.iter().filter(|x| !x.parts.is_empty()) {
            if !checked.insert(seg.name.clone()) {
                continue;
            }
            let file = std::fs::read(s.hls_dir().join(&seg.name)).unwrap();
            let mut joined = Vec::new();
            for part in &seg.parts {
                let bytes = part_bytes(&s, &part.uri);
                assert_eq!(part.independent, starts_with_keyframe(&bytes), "INDEPENDENT of {}", part.uri);
                joined.extend(bytes);
                part_durations.push(part.duration);
            }
            assert!(joined == file, "{} is exactly its parts ({} bytes vs {})", seg.name, joined.len(), file.len());
            segment_durations.push(seg.extinf);
            // The first part plays on its own.
            let first = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(first.path(), part_bytes(&s, &seg.parts[0].uri)).unwrap();
            assert_eq!(segment_problem(first.path()), None, "{} decodes on its own", seg.parts[0].uri);
        }
    }
    let (min, max) = part_durations.iter().fold((f64::MAX, 0f64), |(a, b), d| (a.min(*d), b.max(*d)));
    eprintln!(
        "PART-TARGET {} s; {} parts of {min:.3}..{max:.3} s; segments {segment_durations:?}",
        p.part_target,
        part_durations.len()
    );
    for d in &segment_durations {
        assert!((1.9..=2.1).contains(d), "segments stay at the 2 s target: {segment_durations:?}");
    }
}

/// A blocking reload is held until the part it names exists and then answered; the hinted
/// next part is served as soon as it is complete; a request too far ahead or malformed is a
/// 400 that says why.
#[test]
fn blocking_reloads_wait_for_the_part_and_refuse_what_is_too_far_ahead() {
    let (_x, _moving, s) = moving_stream();
    let before = ll(&s, "");
    let (msn, part) = (before.next_msn(), before.building.len());
    let asked = Instant::now();
    let after = ll(&s, &format!("?_HLS_msn={msn}&_HLS_part={part}"));
    let waited = asked.elapsed();
    let has_it =
        if after.next_msn() == msn { after.building.len() > part } else { after.segments.iter().any(|x| x.msn == msn) };
    assert!(has_it, "the answer holds part {part} of {msn}: {after:?}");
    // Held until the part came (a part is a third of a second), not until the 6 s limit.
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
    eprintln!("blocking reload for part {part} of {msn} answered after {waited:?}");

    // The preload hint: requested before it exists, served when it is complete.
    let hint = after.preload_hint.clone().expect("a preload hint");
    let bytes = part_bytes(&s, &hint);
    assert!(!bytes.is_empty() && bytes.len().is_multiple_of(188), "{} bytes", bytes.len());
    let listed = ll(&s, "");
    let all: Vec<&str> =
        listed.segments.iter().flat_map(|x| &x.parts).chain(&listed.building).map(|x| x.uri.as_str()).collect();
    assert!(all.contains(&hint.as_str()), "{hint} is listed once served: {all:?}");

    let too_far = s.get(&format!("{LL}?_HLS_msn={}", listed.next_msn() + 2)).unwrap();
    assert_eq!(too_far.status, 400, "{}", too_far.text());
    assert!(too_far.text().contains("more than one segment beyond the newest"), "{}", too_far.text());
    let parts_ahead = format!("?_HLS_msn={}&_HLS_part={}", listed.next_msn(), listed.building.len() + 20);
    for (query, why) in [
        ("?_HLS_part=1", "_HLS_part needs _HLS_msn"),
        ("?_HLS_msn=abc", "not a segment number"),
        (parts_ahead.as_str(), "Advance Part Limit"),
    ] {
        let r = s.get(&format!("{LL}{query}")).unwrap();
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert!(r.text().contains(why), "{query}: {}", r.text());
    }
    // A part that never was.
    assert_eq!(s.get("/hls/desktop/run999999-seg00000.part0.ts").unwrap().status, 404);
    // The plain playlist has no parts (hls::read rejects any tag it does not know).
    let plain = s.get("/hls/desktop/playlist.m3u8").unwrap().text();
    assert!(!plain.contains("EXT-X-PART") && !plain.contains("PRELOAD-HINT"), "{plain}");
}

/// ffmpeg reads 6 s of each playlist.
#[test]
fn ffmpeg_reads_the_low_latency_playlist_and_the_plain_one() {
    let (_x, _moving, s) = moving_stream();
    for path in ["/hls/desktop/ll.m3u8", "/hls/desktop/playlist.m3u8"] {
        let url = format!("http://127.0.0.1:{}{path}", s.port);
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i", &url, "-t", "6", "-f", "null", "-"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.is_empty(), "ffmpeg read {path}: {err}");
    }
}

/// A killed worker: both playlists mark the same discontinuity, numbers go on, no part name
/// comes back with other bytes, and the parts of the new run begin after the discontinuity.
#[test]
fn a_killed_worker_is_one_discontinuity_in_both_playlists() {
    let (_x, _moving, s) = moving_stream();
    let mut follower = llhls::Follower::new();
    let before = follower.reload(&ll_text(&s, ""));
    let worker = s.detailed()["worker_pid"].as_u64().unwrap() as u32;
    signal_pid(worker, "KILL");
    let after = wait_until("a discontinuity after the restart, two segments on", WAIT, || {
        let p = follower.reload(&ll_text(&s, ""));
        let d = p.segments.iter().position(|x| x.msn > before.next_msn().saturating_sub(1) && x.discontinuity)?;
        (p.segments.len() >= d + 2).then_some(p)
    });
    let plain = hls::read(s.hls_dir());
    assert_eq!(after.discontinuity_sequence, plain.discontinuity_sequence);
    for seg in &after.segments {
        if let Some(l) = seg.msn.checked_sub(plain.media_sequence).and_then(|i| plain.segments.get(i as usize)) {
            assert_eq!((&l.name, l.discontinuity), (&seg.name, seg.discontinuity), "msn {}", seg.msn);
        }
    }
    assert!(after.media_sequence >= before.media_sequence);
    for seg in after.segments.iter().filter(|x| x.msn >= before.next_msn()) {
        for part in &seg.parts {
            assert!(part.uri.starts_with(seg.name.trim_end_matches(".ts")), "{} belongs to {}", part.uri, seg.name);
        }
    }
}

/// hls.js in its low-latency mode plays the low-latency playlist in Chromium: it loads parts,
/// uses blocking reloads, and plays within a few part targets of the live edge.
#[test]
fn hlsjs_in_low_latency_mode_plays_parts_in_chromium() {
    let (_x, _moving, s) = moving_stream();
    s.wait_for("three segments", WAIT, |h| h["playlist"]["segment_count"].as_u64() >= Some(3));
    let url = format!("http://127.0.0.1:{}{LL}", s.port);
    let no_questions = |ask: &Value| -> Value { panic!("unexpected question: {ask}") };
    let run = run_script("llhls.mjs", &[url.as_str(), "8"], Duration::from_secs(120), no_questions);
    let result = &run.result["checks"]["plays"];
    eprintln!("hls.js: {result}");
    assert_eq!(result["ok"], true, "the video's time advanced: {result}");
    assert_eq!(result["canBlockReload"], true, "{result}");
    assert!(result["partsLoaded"].as_u64() >= Some(6), "hls.js loaded parts: {result}");
    assert_eq!(result["blockingRequests"].as_u64().map(|n| n > 0), Some(true), "{result}");
    let latency = result["latency"].as_f64().expect("a latency estimate");
    // The plain playlist plays three segments (6 s) behind; parts let hls.js stay near the edge.
    assert!(latency < 3.0, "hls.js plays {latency} s behind the live edge");
}

/// The dashboard serves the low-latency stream same-origin: the playlist, its blocking
/// reloads (held until the part exists, too far ahead refused with the streamer's reason)
/// and the parts, byte for byte the streamer's.
#[test]
fn the_dashboard_passes_the_low_latency_playlist_its_blocking_reloads_and_parts_through() {
    use ds_tests::kiosk::WebFiles;
    use ds_tests::service::ServiceProcess;

    let (_x, _moving, s) = moving_stream();
    let dir = ds_tests::stream_dir();
    let files = WebFiles::write(dir.path(), json!({"streamer_url": format!("http://127.0.0.1:{}", s.port)}));
    let args: Vec<std::ffi::OsString> =
        vec!["--config".into(), files.config.clone().into(), "--listen".into(), "127.0.0.1:0".into()];
    let bus = format!("unix:path={}", dir.path().join("no-bus").display());
    let web = ServiceProcess::start(
        "desktop-streamer-web",
        &args,
        &[("DBUS_SESSION_BUS_ADDRESS", &bus), ("DESKTOP_STREAMER_LOG_DIR", files.logs.to_str().unwrap())],
    );
    let get = |path: &str| web.get(path).expect("the dashboard answers");
    let first = get(LL);
    assert_eq!((first.status, first.header("content-type")), (200, Some("application/vnd.apple.mpegurl")));
    let before = llhls::parse(&first.text());
    let (msn, part) = (before.next_msn(), before.building.len());
    let asked = Instant::now();
    let held = get(&format!("{LL}?_HLS_msn={msn}&_HLS_part={part}"));
    let waited = asked.elapsed();
    assert_eq!(held.status, 200, "{}", held.text());
    let after = llhls::parse(&held.text());
    let uri = if after.next_msn() == msn {
        after.building.get(part).map(|p| p.uri.clone())
    } else {
        after.segments.iter().find(|x| x.msn == msn).and_then(|x| x.parts.get(part)).map(|p| p.uri.clone())
    };
    let uri = uri.unwrap_or_else(|| panic!("the held answer lists part {part} of {msn}: {after:?}"));
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
    let through = get(&format!("/hls/desktop/{uri}"));
    assert_eq!((through.status, through.header("content-type")), (200, Some("video/mp2t")));
    assert!(through.body == part_bytes(&s, &uri), "{uri} through the dashboard is the streamer's part");

    let too_far = get(&format!("{LL}?_HLS_msn={}", after.next_msn() + 2));
    assert_eq!(too_far.status, 400, "{}", too_far.text());
    assert!(too_far.text().contains("more than one segment beyond the newest"), "{}", too_far.text());
    assert_eq!(get("/hls/desktop/x.partA.ts").status, 404);
}
