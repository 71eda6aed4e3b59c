//! install.sh for real, in a booted Debian 12 container with systemd as PID 1
//! (`ds_tests::nspawn`): `./install.sh --demo` installs the packages, the binaries built on this
//! machine (`--bin-dir`), the units, and a virtual two-monitor display with moving content; the
//! three services run, the dashboard answers, the HLS playlist grows; the hourly log rotation
//! timer is active, its sandboxed service really rotates an oversized log, and Debian's own daily
//! logrotate does not see our logs; a second run changes nothing; `--uninstall` leaves no unit,
//! timer, binary or rule behind and keeps the configuration, the data and the user; `--purge`
//! then removes the configuration, data, logs and the user (and no file of that user is left
//! anywhere), and a second `--purge` is harmless.
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
/// Longest one rotation run may take (it rotates one 51 MB file).
const ROTATION_TIMEOUT: Duration = Duration::from_secs(60);
const LOGROTATE_TIMER: &str = "desktop-streamer-logrotate.timer";
const LOGROTATE_SERVICE: &str = "desktop-streamer-logrotate.service";
/// Where install.sh put the rotation rules before the timer, read by Debian's daily logrotate.
const OLD_LOGROTATE_RULES: &str = "/etc/logrotate.d/desktop-streamer";
/// Just over the rotation rules' `maxsize 50M` (50 MiB), so the next run must rotate it.
const OVERSIZED_LOG_BYTES: u64 = 51 * 1024 * 1024;
/// What the installation puts outside the kept directories; none of it may survive --uninstall.
const INSTALLED_PATHS: &str = "/etc/systemd/system/desktop-streamer* /etc/systemd/system/*.wants/desktop-streamer* \
    /usr/local/bin/desktop-streamer* /usr/local/share/desktop-streamer /usr/local/share/doc/desktop-streamer \
    /etc/logrotate.d/desktop-streamer /etc/polkit-1/rules.d/50-desktop-streamer.rules \
    /etc/X11/desktop-streamer-demo.conf /var/lib/systemd/timers/stamp-desktop-streamer*";
/// What --purge removes besides the user: configuration, data, logs, caches (the demo content
/// unit's cache is a DynamicUser one, kept under /var/cache/private/).
const PURGED_PATHS: &str = "/etc/desktop-streamer /var/lib/desktop-streamer /var/log/desktop-streamer \
    /var/cache/desktop-streamer /var/log/desktop-streamer-demo /var/cache/desktop-streamer-demo \
    /var/cache/private/desktop-streamer-demo";
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

/// Runs a shell script in the container; its output, or a panic with it.
fn sh(c: &Container, script: &str) -> String {
    c.run(&["sh", "-c", script], RERUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// `systemctl show -p PROPERTY --value UNIT`.
fn property(c: &Container, unit: &str, property: &str) -> String {
    sh(c, &format!("systemctl show -p {property} --value {unit}")).trim().to_owned()
}

/// The timer is enabled and waiting; its service, started now, rotates a log over the size limit
/// (as the service user, inside its sandbox) and nothing else; Debian's daily logrotate does not
/// even see these logs, so the two never rotate the same files.
fn log_rotation_runs_hourly_and_alone(c: &Container) {
    let state = |args: &str| sh(c, &format!("systemctl {args} {LOGROTATE_TIMER} || true")).trim().to_owned();
    assert_eq!(state("is-enabled"), "enabled", "{LOGROTATE_TIMER} is not enabled");
    assert_eq!(state("is-active"), "active", "{LOGROTATE_TIMER} is not active");
    let next = property(c, LOGROTATE_TIMER, "NextElapseUSecRealtime");
    assert!(!next.is_empty(), "{LOGROTATE_TIMER} has no next run");
    println!("{}", sh(c, &format!("systemctl list-timers --all --no-pager {LOGROTATE_TIMER}")));

    let debian = sh(c, "logrotate -d /etc/logrotate.conf 2>&1");
    assert!(debian.contains("including /etc/logrotate.d"), "not Debian's configuration:\n{debian}");
    assert!(!debian.contains("desktop-streamer"), "Debian's daily logrotate also handles our logs:\n{debian}");

    let dir = "/var/log/desktop-streamer";
    let list = || sh(c, &format!("ls -1 {dir}")).lines().map(str::to_owned).collect::<Vec<_>>();
    sh(
        c,
        &format!(
            "runuser -u desktop-streamer -- sh -c 'yes size-test-line | head -c {OVERSIZED_LOG_BYTES} > {dir}/size-test.log'"
        ),
    );
    let before = list();
    assert!(before.iter().any(|f| f.starts_with("desktop-streamer")), "the services write no log file: {before:?}");
    c.run(&["systemctl", "start", LOGROTATE_SERVICE], ROTATION_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", sh(c, &format!("journalctl -u {LOGROTATE_SERVICE} --no-pager"))));
    assert_eq!(property(c, LOGROTATE_SERVICE, "Result"), "success");
    let after = list();
    let expected: Vec<String> =
        before.iter().map(|f| if f == "size-test.log" { "size-test.log.1".to_owned() } else { f.clone() }).collect();
    assert_eq!(after, expected, "the run rotated something else than the oversized log (before: {before:?})");
    let owner = sh(c, &format!("stat -c '%U %s' {dir}/size-test.log.1"));
    assert_eq!(owner.trim(), format!("desktop-streamer {OVERSIZED_LOG_BYTES}"));
    let status = sh(c, "cat /var/lib/desktop-streamer/logrotate/status");
    assert!(status.contains("/var/log/desktop-streamer/size-test.log"), "its state file:\n{status}");
    println!("rotation by {LOGROTATE_SERVICE}: {before:?} -> {after:?}");
    sh(c, &format!("rm {dir}/size-test.log.1"));
}

/// After --uninstall: nothing installed is left, the configuration, data, logs and user are.
fn uninstall_left_nothing_but_the_operators_data(c: &Container, web_port: u16) {
    let left = sh(c, &format!("ls -d {INSTALLED_PATHS} 2>/dev/null; true"));
    assert!(left.trim().is_empty(), "--uninstall left behind:\n{left}");
    let loaded = c
        .run(&["systemctl", "list-units", "--all", "--plain", "--no-legend", "desktop-streamer*"], RERUN_TIMEOUT)
        .unwrap();
    assert!(loaded.trim().is_empty(), "units or timers still loaded after --uninstall:\n{loaded}");
    for kept in [
        "/etc/desktop-streamer/config.json",
        "/etc/desktop-streamer/cameras.yaml",
        "/var/lib/desktop-streamer/web-auth.json",
        "/var/lib/desktop-streamer/logrotate/status",
        "/var/log/desktop-streamer/desktop-streamer.log",
    ] {
        c.run(&["test", "-s", kept], RERUN_TIMEOUT).unwrap_or_else(|_| panic!("--uninstall did not keep {kept}"));
    }
    c.run(&["id", "desktop-streamer"], RERUN_TIMEOUT).expect("--uninstall kept the user");
    assert!(http::get(web_port, "/api/status").is_none(), "the dashboard still answers after --uninstall");
}

/// After --purge: no configuration, data, log, cache or user, and no file anywhere that belongs
/// to the removed user's numbers (a later user given the same id would own it).
fn purge_removed_everything(c: &Container, purged: &str, ids: &str) {
    for said in
        ["removed /etc/desktop-streamer", "removed /var/lib/desktop-streamer", "removed the user desktop-streamer"]
    {
        assert!(purged.contains(said), "--purge did not say `{said}`:\n{purged}");
    }
    let left = sh(c, &format!("ls -d {PURGED_PATHS} 2>/dev/null; true"));
    assert!(left.trim().is_empty(), "--purge left behind:\n{left}");
    for database in ["passwd", "group", "shadow", "gshadow"] {
        let entry = c.exec(&["getent", database, "desktop-streamer"], RERUN_TIMEOUT).unwrap();
        assert_eq!(entry.status.code(), Some(2), "--purge left the {database} entry {:?}", entry.stdout);
    }
    let (uid, gid) = ids.trim().split_once(' ').expect("uid and gid");
    let owned = sh(
        c,
        &format!("find / /tmp /run /dev/shm /var/tmp -xdev \\( -uid {uid} -o -gid {gid} \\) -print 2>/dev/null; true"),
    );
    assert!(owned.trim().is_empty(), "files of the removed user (uid {uid}, gid {gid}) are left:\n{owned}");
}

fn timed<T>(timings: &mut Vec<String>, what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = f();
    timings.push(format!("{what}: {:.1} s", started.elapsed().as_secs_f64()));
    println!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    value
}

#[test]
fn install_demo_runs_everything_rotates_logs_reruns_idempotently_uninstalls_and_purges_cleanly() {
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
    // The operator's configuration, there before the installer runs; and the rotation rules where
    // install.sh put them before the hourly timer (an upgrade must take them away from Debian's
    // daily logrotate).
    sh(
        c,
        &format!(
            "mkdir -p /etc/desktop-streamer /etc/logrotate.d && cp /seed/*.json /etc/desktop-streamer/ && cp /project/logrotate/desktop-streamer {OLD_LOGROTATE_RULES}"
        ),
    );

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
    assert!(first.contains(&format!("removed {OLD_LOGROTATE_RULES}")), "the old rotation rules stayed:\n{first}");

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
    timed(&mut timings, "log rotation (timer, one run, Debian's logrotate)", || log_rotation_runs_hourly_and_alone(c));

    let second = timed(&mut timings, "install.sh --demo (second run)", || c.run(&install, RERUN_TIMEOUT))
        .unwrap_or_else(|e| panic!("the second run failed: {e}"));
    assert!(second.contains("Nothing changed"), "the second run changed something:\n{second}");
    assert!(!second.contains("    installed ") && !second.contains("restarted "), "{second}");

    let removed =
        timed(&mut timings, "install.sh --uninstall", || c.run(&["/project/install.sh", "--uninstall"], RERUN_TIMEOUT))
            .unwrap_or_else(|e| panic!("--uninstall failed: {e}"));
    println!("{removed}");
    assert!(removed.contains("stopped and disabled") && removed.contains(LOGROTATE_TIMER), "{removed}");
    uninstall_left_nothing_but_the_operators_data(c, web_port);

    let ids = sh(c, "echo $(id -u desktop-streamer) $(id -g desktop-streamer)");
    let purge = ["/project/install.sh", "--purge"];
    let purged = timed(&mut timings, "install.sh --purge", || c.run(&purge, RERUN_TIMEOUT))
        .unwrap_or_else(|e| panic!("--purge failed: {e}"));
    println!("{purged}");
    purge_removed_everything(c, &purged, &ids);
    let again = timed(&mut timings, "install.sh --purge (again)", || c.run(&purge, RERUN_TIMEOUT))
        .unwrap_or_else(|e| panic!("a second --purge failed: {e}"));
    assert!(again.contains("Nothing to remove"), "a second --purge changed something:\n{again}");

    let off = container.poweroff();
    timings.push(format!("poweroff: {:.1} s", off.as_secs_f64()));
    timings.push(format!("total: {:.1} s", test_started.elapsed().as_secs_f64()));
    println!("timings:\n  {}", timings.join("\n  "));
}
