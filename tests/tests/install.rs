//! install.sh for real, in a booted Debian 12 container with systemd as PID 1
//! (`ds_tests::nspawn`): `./install.sh --demo` installs the packages, the binaries built on this
//! machine (`--bin-dir`), the units, and a virtual two-monitor display with moving content; the
//! three services run, the dashboard answers, the HLS playlist grows; a second run changes
//! nothing; `--uninstall` leaves no unit and no binary behind and keeps the configuration.
//!
//! The container shares the host's network, so the services are given free ports through
//! configuration files placed before the installer runs (which it must keep), and the virtual
//! display a number no X server here uses. Each phase is timed and printed.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use ds_tests::bins::{bin, workspace_root};
use ds_tests::http;
use ds_tests::nspawn::{self, Bind, Container};

/// Longest one install.sh run may take (package downloads included).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest a second run or an uninstall may take.
const RERUN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the playlist has to move on.
const PLAYLIST_TIMEOUT: Duration = Duration::from_secs(30);
const UNITS: [&str; 5] = [
    "desktop-streamer.service",
    "desktop-streamer-watchdog.service",
    "desktop-streamer-web.service",
    "desktop-streamer-demo-display.service",
    "desktop-streamer-demo-content.service",
];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A display number whose socket (abstract or in /tmp) no X server on this machine holds; the
/// container shares the host's abstract sockets.
fn free_display() -> u32 {
    let unix = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    (700..800)
        .find(|n| {
            !unix.contains(&format!("/tmp/.X11-unix/X{n}\n"))
                && !unix.contains(&format!("/tmp/.X11-unix/X{n} "))
                && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        })
        .expect("a free X display number in 700..800")
}

/// The shipped example configuration with the services moved to `streamer` and `web` ports.
fn seed_configs(dir: &Path, streamer: u16, web: u16) {
    let etc = workspace_root().join("config/etc");
    let streamer_url = format!("http://127.0.0.1:{streamer}");
    let config = std::fs::read_to_string(etc.join("config.json")).unwrap();
    let config = config.replace("\"0.0.0.0:8888\"", &format!("\"127.0.0.1:{streamer}\""));
    assert!(config.contains(&format!("127.0.0.1:{streamer}")), "config.json's listen key moved");
    std::fs::write(dir.join("config.json"), config).unwrap();
    let web_config = std::fs::read_to_string(etc.join("web-config.json")).unwrap();
    let web_config = web_config
        .replace("\"0.0.0.0:8080\"", &format!("\"127.0.0.1:{web}\""))
        .replace("\"http://127.0.0.1:8888\"", &format!("\"{streamer_url}\""));
    assert!(web_config.contains(&streamer_url), "web-config.json's streamer_url moved");
    std::fs::write(dir.join("web-config.json"), web_config).unwrap();
    let watchdog = std::fs::read_to_string(etc.join("watchdog-config.json")).unwrap();
    let watchdog = watchdog.replacen(
        '{',
        &format!("{{\n    \"streamer_url\": \"{streamer_url}\", \"web_url\": \"http://127.0.0.1:{web}\","),
        1,
    );
    std::fs::write(dir.join("watchdog-config.json"), watchdog).unwrap();
}

/// `(media sequence, segments)` of the playlist the streamer serves, if it answers.
fn playlist(port: u16) -> Option<(u64, usize)> {
    let r = http::get(port, "/hls/desktop/playlist.m3u8")?;
    if r.status != 200 {
        return None;
    }
    let text = r.text();
    let sequence = text.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?.trim().parse().ok()?;
    Some((sequence, text.lines().filter(|l| l.starts_with("#EXTINF")).count()))
}

fn timed<T>(timings: &mut Vec<String>, what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = f();
    timings.push(format!("{what}: {:.1} s", started.elapsed().as_secs_f64()));
    println!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    value
}

#[test]
fn install_demo_runs_everything_then_reruns_idempotently_and_uninstalls_cleanly() {
    assert!(rustix::process::geteuid().is_root(), "this test boots a container: run it as root");
    let test_started = Instant::now();
    let mut timings = Vec::new();
    let (root, built) = nspawn::debian_root().expect("the Debian root");
    timings.push(format!("debootstrap: {:.1} s (0 = cached)", built.as_secs_f64()));

    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    let (streamer_port, web_port) = (free_port(), free_port());
    seed_configs(&seed, streamer_port, web_port);
    let display = format!(":{}", free_display());
    let bin_dir = bin("desktop-streamer").parent().unwrap().to_owned();
    let binds = [
        Bind { host: workspace_root(), container: "/project".into(), read_only: true },
        Bind { host: bin_dir, container: "/ds-bin".into(), read_only: true },
        Bind { host: seed, container: "/seed".into(), read_only: true },
    ];
    let name = format!("ds-install-{}", std::process::id());
    let mut container = timed(&mut timings, "boot", || {
        Container::boot(&root, &name, &binds, &dir.path().join("console.log")).expect("the container boots")
    });
    let c = &container;
    // The operator's configuration, there before the installer runs.
    c.run(&["sh", "-c", "mkdir -p /etc/desktop-streamer && cp /seed/*.json /etc/desktop-streamer/"], RERUN_TIMEOUT)
        .unwrap();

    let install = ["/project/install.sh", "--demo", "--display", &display, "--bin-dir", "/ds-bin"];
    let first = timed(&mut timings, "install.sh --demo (first run)", || c.run(&install, INSTALL_TIMEOUT))
        .unwrap_or_else(|e| panic!("install.sh failed: {e}"));
    println!("{first}");
    for step in ["[1] Checking the system", "the stream is live", "Dashboard:", "Dashboard admin password:"] {
        assert!(first.contains(step), "the first run's output lacks `{step}`:\n{first}");
    }
    for kept in ["config.json", "web-config.json", "watchdog-config.json"] {
        assert!(first.contains(&format!("kept    /etc/desktop-streamer/{kept}")), "{kept} was not kept:\n{first}");
    }
    assert!(first.contains("created /etc/desktop-streamer/cameras.yaml"), "{first}");

    for unit in UNITS {
        let state = c.exec(&["systemctl", "is-active", unit], RERUN_TIMEOUT).unwrap();
        assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "active", "{unit} is not active");
    }
    let users = c.run(&["ps", "-o", "user=,comm=", "-C", "desktop-streame"], RERUN_TIMEOUT).unwrap_or_default();
    assert!(!users.lines().any(|l| l.starts_with("root")), "a service runs as root:\n{users}");
    let status = http::get(web_port, "/api/status").expect("the dashboard answers");
    assert_eq!(status.status, 200, "{}", status.text());
    let status = status.json();
    assert!(status.to_string().contains("desktop-streamer.service"), "{status}");

    let grew = timed(&mut timings, "playlist grows", || {
        let deadline = Instant::now() + PLAYLIST_TIMEOUT;
        let first = loop {
            if let Some(p) = playlist(streamer_port) {
                break p;
            }
            assert!(Instant::now() < deadline, "no playlist on :{streamer_port}");
            std::thread::sleep(Duration::from_millis(500));
        };
        loop {
            let now = playlist(streamer_port);
            if now.is_some_and(|(seq, n)| seq + n as u64 > first.0 + first.1 as u64) {
                break (first, now.unwrap());
            }
            assert!(Instant::now() < deadline, "the playlist stayed at {first:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    println!("playlist (media sequence, segments): {:?} -> {:?}", grew.0, grew.1);
    let health = http::get(streamer_port, "/api/health").expect("the health API answers").json();
    assert_eq!(health["current_state"], "streaming", "{health}");
    assert_eq!(health["monitor"]["name"], "DUMMY1", "not the second monitor: {health}");

    let second = timed(&mut timings, "install.sh --demo (second run)", || c.run(&install, RERUN_TIMEOUT))
        .unwrap_or_else(|e| panic!("the second run failed: {e}"));
    assert!(second.contains("Nothing changed"), "the second run changed something:\n{second}");
    assert!(!second.contains("    installed ") && !second.contains("restarted "), "{second}");

    let removed =
        timed(&mut timings, "install.sh --uninstall", || c.run(&["/project/install.sh", "--uninstall"], RERUN_TIMEOUT))
            .unwrap_or_else(|e| panic!("--uninstall failed: {e}"));
    println!("{removed}");
    let left = c
        .run(
            &[
                "sh",
                "-c",
                "ls -d /etc/systemd/system/desktop-streamer* /usr/local/bin/desktop-streamer* 2>/dev/null; true",
            ],
            RERUN_TIMEOUT,
        )
        .unwrap();
    assert!(left.trim().is_empty(), "--uninstall left behind:\n{left}");
    let loaded = c
        .run(&["systemctl", "list-units", "--all", "--plain", "--no-legend", "desktop-streamer*"], RERUN_TIMEOUT)
        .unwrap();
    assert!(loaded.trim().is_empty(), "units still loaded after --uninstall:\n{loaded}");
    c.run(&["test", "-f", "/etc/desktop-streamer/config.json"], RERUN_TIMEOUT)
        .expect("--uninstall kept the configuration");
    assert!(http::get(web_port, "/api/status").is_none(), "the dashboard still answers after --uninstall");

    let off = container.poweroff();
    timings.push(format!("poweroff: {:.1} s", off.as_secs_f64()));
    timings.push(format!("total: {:.1} s", test_started.elapsed().as_secs_f64()));
    println!("timings:\n  {}", timings.join("\n  "));
}
