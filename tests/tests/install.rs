//! install.sh for real, in a booted Debian 12 container with systemd as PID 1
//! (`ds_tests::nspawn`), one container for every phase:
//! - `--help` explains every option; an unsupported system (Fedora) and a too-old derivative
//!   (Linux Mint 20, Ubuntu 20.04 based) are refused at step 1 with what is supported, before
//!   anything is installed (a fake /etc/os-release bound over the real one in a private mount
//!   namespace).
//! - A first run that fails at the units (an operator's drop-in systemd rejects) says which step
//!   failed and why, and leaves the admin password and API token it generated in a root-only
//!   file; the next run keeps them, and they log in. They appear in no other file or log.
//! - `./install.sh --demo` installs the packages (and says it takes the software encoder: the
//!   container has no /dev/dri), the binaries built on this machine (`--bin-dir`), the units, and
//!   a virtual two-monitor display with moving content; every process of every unit runs
//!   unprivileged; the dashboard answers, the HLS playlist grows, the URLs it prints answer; the
//!   streamer runs x264enc; the drop-in's CPU, memory, nice and IO settings are on the unit and
//!   its process; each service runs as its own user, with the owners and modes the README gives,
//!   and reads its own secrets and no other service's; polkit lets the dashboard's and the
//!   watchdog's users start, stop and restart our services and nothing else, and the streamer's
//!   user nothing; the watchdog has a read token of its own; the hourly log rotation timer is active, its sandboxed service really rotates an
//!   oversized log, and Debian's own daily logrotate does not see our logs.
//! - A second run changes nothing: no installed file's content, mode, owner or time, no unit
//!   restarted (the same invocation), no systemd reload.
//! - As Linux Mint 21 with polkit 0.105 (the fake os-release and a `pkaction` saying 0.105), it is
//!   accepted, grants nothing (a .pkla file cannot be limited to our units) and says so; a .pkla
//!   grant an earlier version left is removed; with Debian's .pkla reader (polkitd-pkla, standing
//!   in for polkit 0.105) the dashboard's user's restart is then refused. `--allow-any-unit`, which
//!   gave that grant, stops with the reason it was removed.
//! - `--uninstall` leaves no unit, timer, binary or polkit file behind and keeps the
//!   configuration (the credentials file too), the data and the users; `--purge` then removes the
//!   configuration, data, logs and the three users (and no file of theirs is left anywhere), and a
//!   second `--purge` is harmless.
//!
//! The container shares the host's network, so the services are given free ports through
//! configuration files placed before the installer runs (which it must keep), and the virtual
//! display a number no X server here uses. Each phase is timed and printed.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
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
/// How long a restarted dashboard may take to answer again.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest one rotation run may take (it rotates one 51 MB file).
/// Longest a start, stop or restart job queued over D-Bus may take to run.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
const ROTATION_TIMEOUT: Duration = Duration::from_secs(60);
const LOGROTATE_TIMER: &str = "desktop-streamer-logrotate.timer";
const LOGROTATE_SERVICE: &str = "desktop-streamer-logrotate.service";
/// Where install.sh put the rotation rules before the timer, read by Debian's daily logrotate.
const OLD_LOGROTATE_RULES: &str = "/etc/logrotate.d/desktop-streamer";
/// Just over the rotation rules' `maxsize 50M` (50 MiB), so the next run must rotate it.
const OVERSIZED_LOG_BYTES: u64 = 51 * 1024 * 1024;
/// Where install.sh leaves the generated admin password and API token (root only).
const CREDENTIALS: &str = "/etc/desktop-streamer/installer-credentials";
const POLKIT_RULE: &str = "/etc/polkit-1/rules.d/50-desktop-streamer.rules";
const POLKIT_PKLA: &str = "/etc/polkit-1/localauthority/50-local.d/50-desktop-streamer.pkla";
/// An operator's drop-in that systemd rejects: the first run fails at the units because of it.
const BAD_DROPIN: &str = "/etc/systemd/system/desktop-streamer-web.service.d/90-operator.conf";
/// What the installation puts outside the kept directories; none of it may survive --uninstall.
const INSTALLED_PATHS: &str = "/etc/systemd/system/desktop-streamer* /etc/systemd/system/*.wants/desktop-streamer* \
    /usr/local/bin/desktop-streamer* /usr/local/share/desktop-streamer /usr/local/share/doc/desktop-streamer \
    /etc/logrotate.d/desktop-streamer /etc/polkit-1/rules.d/50-desktop-streamer.rules \
    /etc/polkit-1/localauthority/50-local.d/50-desktop-streamer.pkla \
    /etc/X11/desktop-streamer-demo.conf /var/lib/systemd/timers/stamp-desktop-streamer* \
    /usr/local/lib/desktop-streamer /run/desktop-streamer-control.sock";
/// What --purge removes besides the user: configuration, data, logs, caches (the demo content
/// unit's cache is a DynamicUser one, kept under /var/cache/private/).
const PURGED_PATHS: &str = "/etc/desktop-streamer /var/lib/desktop-streamer /var/log/desktop-streamer \
    /var/cache/desktop-streamer /var/log/desktop-streamer-demo /var/cache/desktop-streamer-demo \
    /var/cache/private/desktop-streamer-demo";
/// The users of the services: the streamer's (whose group the services share), the
/// dashboard's and the watchdog's.
const USERS: [&str; 3] = ["desktop-streamer", "desktop-streamer-web", "desktop-streamer-watchdog"];
/// The three services, which the dashboard's and the watchdog's users may start, stop and
/// restart.
const SERVICES: [&str; 3] =
    ["desktop-streamer.service", "desktop-streamer-watchdog.service", "desktop-streamer-web.service"];
const UNITS: [&str; 5] = [
    "desktop-streamer.service",
    "desktop-streamer-watchdog.service",
    "desktop-streamer-web.service",
    "desktop-streamer-demo-display.service",
    "desktop-streamer-demo-content.service",
];
/// The streamer's limits in the seeded config.json (not the example's, so the drop-in is seen
/// to follow the configuration).
const UNITY_CPU_PERCENT: u64 = 35;
const UNITY_MEMORY_MB: u64 = 640;
/// What step 1 names as supported when it refuses a system.
const SUPPORTED: &str = "Supported: Debian 12 (bookworm) or newer, Ubuntu 22.04 (jammy) or newer";
/// /etc/os-release of systems step 1 must refuse, and the reason it must give.
const REFUSED_SYSTEMS: [(&str, &str, &str); 2] = [
    (
        "fedora",
        "NAME=\"Fedora Linux\"\nVERSION=\"40 (Workstation Edition)\"\nID=fedora\nVERSION_ID=40\nPRETTY_NAME=\"Fedora Linux 40 (Workstation Edition)\"\n",
        "Fedora Linux 40 (Workstation Edition) is not supported",
    ),
    (
        "mint-20",
        "NAME=\"Linux Mint\"\nVERSION=\"20.3 (Una)\"\nID=linuxmint\nID_LIKE=ubuntu\nPRETTY_NAME=\"Linux Mint 20.3\"\nVERSION_ID=\"20.3\"\nVERSION_CODENAME=una\nUBUNTU_CODENAME=focal\n",
        "Linux Mint 20.3 (based on Ubuntu 20.04) is too old: Ubuntu 22.04 or newer is needed",
    ),
];
/// Linux Mint 21.3's /etc/os-release (Ubuntu 22.04 based, polkit 0.105): accepted.
const MINT_21: &str = "NAME=\"Linux Mint\"\nVERSION=\"21.3 (Virginia)\"\nID=linuxmint\nID_LIKE=\"ubuntu debian\"\nPRETTY_NAME=\"Linux Mint 21.3\"\nVERSION_ID=\"21.3\"\nVERSION_CODENAME=virginia\nUBUNTU_CODENAME=jammy\n";

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

/// The shipped example configuration with the services moved to `streamer` and `web` ports and
/// the streamer's limits set to [`UNITY_CPU_PERCENT`] and [`UNITY_MEMORY_MB`].
fn seed_configs(dir: &Path, streamer: u16, web: u16) {
    let etc = workspace_root().join("config/etc");
    let streamer_url = format!("http://127.0.0.1:{streamer}");
    let config = std::fs::read_to_string(etc.join("config.json")).unwrap();
    let config = config
        .replace("\"0.0.0.0:8888\"", &format!("\"127.0.0.1:{streamer}\""))
        .replace("\"cpu_quota_percent\": 30,", &format!("\"cpu_quota_percent\": {UNITY_CPU_PERCENT},"))
        .replace("\"memory_limit_mb\": 800,", &format!("\"memory_limit_mb\": {UNITY_MEMORY_MB},"));
    assert!(config.contains(&format!("127.0.0.1:{streamer}")), "config.json's listen key moved");
    for key in
        [format!("\"cpu_quota_percent\": {UNITY_CPU_PERCENT},"), format!("\"memory_limit_mb\": {UNITY_MEMORY_MB},")]
    {
        assert!(config.contains(&key), "config.json's unity_optimization changed: no {key}");
    }
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

/// The fake systems for step 1 (`os-release-NAME`) and a `pkaction` that says polkit 0.105
/// (`old-polkit/pkaction`), bound into the container with the seed.
fn seed_fakes(dir: &Path) {
    for (name, text, _) in REFUSED_SYSTEMS {
        std::fs::write(dir.join(format!("os-release-{name}")), text).unwrap();
    }
    std::fs::write(dir.join("os-release-mint-21"), MINT_21).unwrap();
    std::fs::create_dir(dir.join("old-polkit")).unwrap();
    let pkaction = dir.join("old-polkit/pkaction");
    std::fs::write(&pkaction, "#!/bin/sh\necho 'pkaction version 0.105'\n").unwrap();
    std::fs::set_permissions(&pkaction, std::fs::Permissions::from_mode(0o755)).unwrap();
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

/// How a command in the container ended, and what it wrote where.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `args` in the container whatever its exit status.
fn exec(c: &Container, args: &[&str], limit: Duration) -> Ran {
    let out = c.exec(args, limit).unwrap_or_else(|e| panic!("cannot run {args:?} in the container: {e}"));
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `install ARGS` with `/etc/os-release` replaced by `/seed/os-release-SYSTEM` (bound over it
/// in a mount namespace of its own, so nothing else sees it), with `PATH` led by `path` if given.
fn install_as(c: &Container, system: &str, path: Option<&str>, install: &[&str], limit: Duration) -> Ran {
    let path = path.map(|p| format!("PATH={p}:$PATH ")).unwrap_or_default();
    let script = format!("mount --bind /seed/os-release-{system} /etc/os-release && {path}exec \"$@\"");
    let mut args = vec!["unshare", "--mount", "--propagation", "private", "sh", "-c", &script, "sh"];
    args.extend_from_slice(install);
    exec(c, &args, limit)
}

/// `systemctl show -p PROPERTY --value UNIT`.
fn property(c: &Container, unit: &str, property: &str) -> String {
    sh(c, &format!("systemctl show -p {property} --value {unit}")).trim().to_owned()
}

/// `unit`'s `name` property once `done` says it has the value looked for, or its value after
/// [`JOB_TIMEOUT`]: StartUnit, StopUnit and RestartUnit answer as soon as systemd has queued
/// the job, not when the job has run (on a busy machine a stopping unit still reads
/// "deactivating" right after StopUnit returned).
fn property_after_job(c: &Container, unit: &str, name: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let value = property(c, unit, name);
        if done(&value) || Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--help` exits 0 and explains every option the script takes.
fn help_explains_every_option(c: &Container) {
    let help = exec(c, &["/project/install.sh", "--help"], RERUN_TIMEOUT);
    assert_eq!(help.code, Some(0), "--help failed: {}{}", help.stdout, help.stderr);
    assert!(help.stdout.starts_with("Usage: sudo ./install.sh [OPTION]..."), "{}", help.stdout);
    for option in ["--demo", "--display :N", "--bin-dir DIR", "--wait SECONDS", "--uninstall", "--purge", "-h, --help"]
    {
        assert!(help.stdout.contains(&format!("\n  {option} ")), "--help does not explain {option}:\n{}", help.stdout);
    }
    // The root-equivalent grant is gone, and asking for it says why (before anything is done).
    let removed = exec(c, &["/project/install.sh", "--allow-any-unit"], RERUN_TIMEOUT);
    assert_eq!(removed.code, Some(2), "{}{}", removed.stdout, removed.stderr);
    assert!(
        removed.stderr.contains("--allow-any-unit was removed") && removed.stderr.contains("systemd-run"),
        "{}",
        removed.stderr
    );
}

/// Step 1 refuses Fedora and Linux Mint 20 (Ubuntu 20.04 based), saying why and what is
/// supported, and exits non-zero before installing anything.
fn unsupported_systems_are_refused(c: &Container, install: &[&str]) {
    for (system, _, reason) in REFUSED_SYSTEMS {
        let refused = install_as(c, system, None, install, RERUN_TIMEOUT);
        assert_eq!(refused.code, Some(1), "{system} was not refused:\n{}{}", refused.stdout, refused.stderr);
        let said = format!("install.sh: step 1 (Checking the system) failed: {reason}");
        assert!(refused.stderr.contains(&said), "{system}: no `{said}` in:\n{}", refused.stderr);
        assert!(refused.stderr.contains(SUPPORTED), "{system}: not what is supported:\n{}", refused.stderr);
        assert!(!refused.stdout.contains("[2]"), "{system}: it went on after step 1:\n{}", refused.stdout);
    }
    // (The old rotation rules of INSTALLED_PATHS are there: the test put them.)
    let left = sh(
        c,
        &format!(
            "ls -d {INSTALLED_PATHS} /etc/desktop-streamer/cameras.yaml 2>/dev/null | grep -vx {OLD_LOGROTATE_RULES}; true"
        ),
    );
    assert!(left.trim().is_empty(), "a refused run installed:\n{left}");
}

/// The admin password and API token in the credentials file, which only root may read.
fn credentials(c: &Container) -> (String, String) {
    let mode = sh(c, &format!("stat -c '%a %U:%G' {CREDENTIALS}"));
    assert_eq!(mode.trim(), "600 root:root", "{CREDENTIALS} is readable by others");
    let text = sh(c, &format!("cat {CREDENTIALS}"));
    let value = |label: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(label))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no `{label}` in {CREDENTIALS}:\n{text}"))
    };
    let password = value("Dashboard admin password:");
    let token = value("API token 'installer':");
    assert!(password.len() >= 12 && token.len() >= 20, "{text}");
    (password, token)
}

/// A first run that an operator's bad drop-in stops at the units: it names the step, the unit
/// and the cause, says what to do, exits 1; the password and token it generated are in the
/// root-only file already. The services were not started. Returns them and the run's output.
fn a_failing_step_says_what_failed_and_keeps_the_secrets(c: &Container, install: &[&str]) -> (String, String, String) {
    sh(
        c,
        &format!(
            "mkdir -p $(dirname {BAD_DROPIN}) && printf '[Service]\\nExecStart=\\nExecStart=/usr/local/bin/no-such-dashboard\\n' > {BAD_DROPIN}"
        ),
    );
    let failed = exec(c, install, INSTALL_TIMEOUT);
    let output = format!("{}{}", failed.stdout, failed.stderr);
    println!("{output}");
    assert_eq!(failed.code, Some(1), "the run with a bad drop-in did not fail:\n{output}");
    for said in [
        "install.sh: step 7 (Installing the systemd units, drop-ins, polkit rule and log rotation) failed: systemd rejects desktop-streamer-web.service",
        "Command /usr/local/bin/no-such-dashboard is not executable",
        "What to do: fix the unit or the drop-in named above",
        &format!("The dashboard admin password and API token generated by this run are safe in {CREDENTIALS}"),
    ] {
        assert!(failed.stderr.contains(said), "the failure does not say `{said}`:\n{}", failed.stderr);
    }
    let (password, token) = credentials(c);
    for unit in SERVICES {
        let state = exec(c, &["systemctl", "is-active", unit], RERUN_TIMEOUT);
        assert_ne!(state.stdout.trim(), "active", "{unit} was started by a run that failed before starting");
    }
    sh(c, &format!("rm {BAD_DROPIN} && rmdir $(dirname {BAD_DROPIN})"));
    (password, token, output)
}

/// The password logs in, the token authenticates, and neither is in any file but the
/// credentials file or in the journal.
fn the_secrets_work_and_are_nowhere_else(c: &Container, web_port: u16, password: &str, token: &str) {
    let login = http::post_json(web_port, "/api/login", &[], &serde_json::json!({ "password": password }).to_string())
        .expect("the dashboard answers");
    assert_eq!(login.status, 200, "the generated password does not log in: {}", login.text());
    let bearer = format!("Bearer {token}");
    let session = http::request(web_port, "GET", "/api/session", &[("Authorization", &bearer)], None).unwrap().json();
    assert_eq!(session["via"], "token", "the generated token is not accepted: {session}");
    let script = format!(
        "grep -rlF -e '{password}' -e '{token}' /etc /var /run /tmp /root /home /usr/local 2>/dev/null; \
         echo journal: $(journalctl --no-pager -o cat | grep -cF -e '{password}' -e '{token}')"
    );
    let found = sh(c, &script);
    assert_eq!(found.trim(), format!("{CREDENTIALS}\njournal: 0"), "the secrets are elsewhere too:\n{found}");
}

/// install.sh gave the watchdog a read token of its own in the file its config names, readable
/// by root and the service's group only: the dashboard takes it for reading and refuses it
/// for the controls.
fn the_watchdog_has_a_read_token_of_its_own(c: &Container, web_port: u16) {
    let file = "/etc/desktop-streamer/watchdog-web-token";
    assert_eq!(sh(c, &format!("stat -c '%a %U:%G' {file}")).trim(), "640 root:desktop-streamer-watchdog");
    let config = sh(c, "cat /etc/desktop-streamer/watchdog-config.json");
    assert!(config.contains(&format!("\"web_token_file\": \"{file}\"")), "{config}");
    let bearer = format!("Bearer {}", sh(c, &format!("cat {file}")).trim());
    let auth = [("Authorization", bearer.as_str())];
    let cameras = http::request(web_port, "GET", "/api/cameras", &auth, None).expect("the dashboard answers");
    assert_eq!(cameras.status, 200, "{}", cameras.text());
    let session = http::request(web_port, "GET", "/api/session", &auth, None).unwrap().json();
    assert_eq!(session["via"], "token", "the watchdog's token is not accepted: {session}");
    let restart = http::request(web_port, "POST", "/api/stream/restart", &auth, Some("")).unwrap();
    assert_eq!(restart.status, 403, "a read token restarted the stream: {}", restart.text());
    assert!(restart.text().contains("control"), "the refusal names the scope needed: {}", restart.text());
}

/// Every process in the cgroup of every unit runs as a user other than root (loud when a unit
/// has no process or its processes cannot be read).
fn no_process_of_ours_runs_as_root(c: &Container) {
    let uid_of = |user: &str| sh(c, &format!("id -u {user}")).trim().to_owned();
    let mut seen = Vec::new();
    for unit in UNITS {
        let service_uid = uid_of(match unit {
            "desktop-streamer-web.service" => "desktop-streamer-web",
            "desktop-streamer-watchdog.service" => "desktop-streamer-watchdog",
            _ => "desktop-streamer",
        });
        let main_pid = property(c, unit, "MainPID");
        assert!(main_pid.parse::<u32>().is_ok_and(|p| p > 0), "{unit} has no main process ({main_pid})");
        let group = property(c, unit, "ControlGroup");
        assert!(group.ends_with(unit), "{unit}'s control group: {group:?}");
        // cgroup v2, or the hybrid layout's unified (or name=systemd) hierarchy.
        let procs = sh(
            c,
            &format!(
                "for d in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do \
                 [ -r $d{group}/cgroup.procs ] && exec cat $d{group}/cgroup.procs; done; echo no cgroup.procs >&2; exit 1"
            ),
        );
        let pids: Vec<&str> = procs.split_whitespace().collect();
        assert!(pids.contains(&main_pid.as_str()), "{unit}: main process {main_pid} not in {pids:?}");
        for pid in pids {
            let status = sh(c, &format!("cat /proc/{pid}/status"));
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or_else(|| panic!("no Uid in /proc/{pid}/status"))
                .to_owned();
            let name = status.lines().find_map(|l| l.strip_prefix("Name:")).unwrap_or("?").trim().to_owned();
            assert_ne!(uid, "0", "{unit}: {name} ({pid}) runs as root");
            // The demo content is DynamicUser=yes; everything else its service's user.
            if unit != "desktop-streamer-demo-content.service" {
                assert_eq!(uid, service_uid, "{unit}: {name} ({pid}) runs as uid {uid}");
            }
            seen.push(format!("{unit}: {name} ({pid}) uid {uid}"));
        }
    }
    println!("processes:\n  {}", seen.join("\n  "));
}

/// The streamer runs with what the unity drop-in sets from the seeded config: systemd holds the
/// CPU quota and memory limit (the container's cgroup controllers belong to the host, so the
/// kernel's own limit files are not there to read), and its process has nice 5 and IO
/// best-effort priority 6. The other services have no such limits.
fn the_unity_dropin_applies_to_the_streamer(c: &Container) {
    let show = |unit: &str| {
        sh(
            c,
            &format!(
                "systemctl show -p CPUQuotaPerSecUSec,MemoryMax,Nice,IOSchedulingClass,IOSchedulingPriority {unit}"
            ),
        )
    };
    let streamer = show("desktop-streamer.service");
    println!("desktop-streamer.service:\n{streamer}");
    for line in [
        format!("CPUQuotaPerSecUSec={}ms", UNITY_CPU_PERCENT * 10),
        format!("MemoryMax={}", UNITY_MEMORY_MB * 1024 * 1024),
        "Nice=5".to_owned(),
        // 2 = best-effort
        "IOSchedulingClass=2".to_owned(),
        "IOSchedulingPriority=6".to_owned(),
    ] {
        assert!(streamer.lines().any(|l| l == line), "desktop-streamer.service lacks {line}:\n{streamer}");
    }
    let pid = property(c, "desktop-streamer.service", "MainPID");
    let stat = sh(c, &format!("cat /proc/{pid}/stat"));
    // Fields after the command (which may hold spaces): state is the 3rd field, nice the 19th.
    let nice = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().nth(16)).unwrap_or_default();
    assert_eq!(nice, Some("5"), "the streamer's nice value, in {stat}");
    let io = sh(c, &format!("ionice -p {pid}"));
    assert_eq!(io.trim(), "best-effort: prio 6", "the streamer's IO priority");
    for unit in ["desktop-streamer-watchdog.service", "desktop-streamer-web.service"] {
        let other = show(unit);
        for line in ["CPUQuotaPerSecUSec=infinity", "MemoryMax=infinity", "Nice=0"] {
            assert!(other.lines().any(|l| l == line), "{unit} lacks {line}:\n{other}");
        }
    }
}

/// Without /dev/dri the installer says it takes the software encoder, installs no VA-API
/// package, and the streamer encodes with x264enc.
fn without_vaapi_the_software_encoder_runs(c: &Container, output: &str, streamer_port: u16) {
    assert_eq!(exec(c, &["test", "-e", "/dev/dri"], RERUN_TIMEOUT).code, Some(1), "the container has /dev/dri");
    assert!(
        output.contains("no GPU in /dev/dri: software encoding (x264enc), no VA-API packages"),
        "the installer did not report VA-API absent:\n{output}"
    );
    let vaapi = exec(c, &["dpkg-query", "-W", "-f=${Status}", "gstreamer1.0-vaapi"], RERUN_TIMEOUT);
    assert!(!vaapi.stdout.contains("install ok installed"), "gstreamer1.0-vaapi was installed without a GPU");
    let detailed = http::get(streamer_port, "/api/health/detailed").expect("the health API answers").json();
    assert_eq!(detailed["encoder"], "x264enc", "{detailed}");
    assert_eq!(detailed["encoder_choice"]["hardware"], false, "{detailed}");
}

/// The dashboard, HLS and health URLs the installer printed answer (they are on loopback: the
/// seeded configuration binds the services to 127.0.0.1).
fn the_printed_urls_answer(output: &str, streamer_port: u16, web_port: u16) {
    let url = |label: &str| {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(str::trim)
            .unwrap_or_else(|| panic!("the final message has no {label}:\n{output}"))
            .to_owned()
    };
    let get = |url: &str, port: u16| {
        let rest = url.strip_prefix("http://127.0.0.1:").unwrap_or_else(|| panic!("not a loopback URL: {url}"));
        let (printed_port, path) = rest.split_once('/').unwrap_or_else(|| panic!("no path in {url}"));
        assert_eq!(printed_port, port.to_string(), "{url}");
        let r = http::get(port, &format!("/{path}")).unwrap_or_else(|| panic!("nothing answers {url}"));
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        r
    };
    let dashboard = get(&url("Dashboard:"), web_port);
    assert!(dashboard.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{:?}", dashboard.headers);
    let hls = get(&url("HLS:"), streamer_port).text();
    assert!(hls.starts_with("#EXTM3U") && hls.contains("#EXTINF"), "{hls}");
    let health = get(&url("Health:"), streamer_port).json();
    assert_eq!(health["current_state"], "streaming", "{health}");
}

/// `busctl call` of systemd's manager as the dashboard's user.
fn as_service_user(c: &Container, method: &str, args: &[&str]) -> Ran {
    as_user(c, "desktop-streamer-web", method, args)
}

/// `busctl call` of systemd's manager as `user`.
fn as_user(c: &Container, user: &str, method: &str, args: &[&str]) -> Ran {
    let mut command = vec![
        "runuser",
        "-u",
        user,
        "--",
        "busctl",
        "call",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        method,
    ];
    command.extend_from_slice(args);
    exec(c, &command, RERUN_TIMEOUT)
}

fn assert_allowed(ran: &Ran, what: &str) {
    assert_eq!(ran.code, Some(0), "the service user may not {what}: {}{}", ran.stdout, ran.stderr);
}

fn assert_denied(ran: &Ran, what: &str) {
    assert_ne!(ran.code, Some(0), "the service user may {what}");
    assert!(ran.stderr.contains("Interactive authentication required"), "{what}: not polkit's no: {}", ran.stderr);
}

/// Waits until the dashboard answers again.
fn wait_for_dashboard(web_port: u16) {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    while http::get(web_port, "/api/status").is_none_or(|r| r.status != 200) {
        assert!(Instant::now() < deadline, "the dashboard does not answer after its restart");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Over systemd's D-Bus API, as the service user: our services may be stopped, started and
/// restarted (and really are); another unit, our own log rotation (not in the rule), a signal
/// to the dashboard and enabling units are refused by polkit, and nothing happens to them.
fn polkit_lets_the_service_user_manage_our_services_only(c: &Container, web_port: u16) {
    let watchdog = "desktop-streamer-watchdog.service";
    let state_after_job = |unit, wanted: &str| property_after_job(c, unit, "ActiveState", |s| s == wanted);
    assert_allowed(&as_service_user(c, "StopUnit", &["ss", watchdog, "replace"]), "stop the watchdog");
    assert_eq!(state_after_job(watchdog, "inactive"), "inactive", "the watchdog did not stop");
    assert_allowed(&as_service_user(c, "StartUnit", &["ss", watchdog, "replace"]), "start the watchdog");
    assert_eq!(state_after_job(watchdog, "active"), "active", "the watchdog did not start");
    let web = "desktop-streamer-web.service";
    let before = property(c, web, "InvocationID");
    assert_allowed(&as_service_user(c, "RestartUnit", &["ss", web, "replace"]), "restart the dashboard");
    let after = property_after_job(c, web, "InvocationID", |id| id != before);
    assert_ne!(after, before, "the dashboard was not restarted");
    wait_for_dashboard(web_port);

    let others = ["systemd-tmpfiles-clean.service", LOGROTATE_SERVICE];
    let invocations: Vec<String> = others.iter().map(|u| property(c, u, "InvocationID")).collect();
    for unit in others {
        assert_denied(&as_service_user(c, "StartUnit", &["ss", unit, "replace"]), &format!("start {unit}"));
    }
    let web_now = property(c, web, "InvocationID");
    assert_denied(&as_service_user(c, "KillUnit", &["ssi", web, "main", "10"]), "signal the dashboard");
    assert_denied(
        &as_service_user(c, "EnableUnitFiles", &["asbb", "1", "systemd-tmpfiles-clean.timer", "false", "false"]),
        "enable units",
    );
    let after: Vec<String> = others.iter().map(|u| property(c, u, "InvocationID")).collect();
    assert_eq!(after, invocations, "a refused start still ran {others:?}");
    assert_eq!(property(c, web, "InvocationID"), web_now, "the refused signal restarted the dashboard");
    assert_eq!(state_after_job(web, "active"), "active", "the dashboard is not running");

    // The watchdog's user restarts the streamer; the streamer's user manages nothing.
    let streamer = "desktop-streamer.service";
    let before = property(c, streamer, "InvocationID");
    let watchdog_user = "desktop-streamer-watchdog";
    assert_allowed(&as_user(c, watchdog_user, "RestartUnit", &["ss", streamer, "replace"]), "restart the streamer");
    assert_ne!(property_after_job(c, streamer, "InvocationID", |id| id != before), before, "not restarted");
    let now = property(c, streamer, "InvocationID");
    assert_denied(&as_user(c, "desktop-streamer", "RestartUnit", &["ss", web, "replace"]), "restart (streamer's user)");
    assert_denied(
        &as_user(c, "desktop-streamer", "KillUnit", &["ssi", streamer, "main", "10"]),
        "signal (streamer's user)",
    );
    assert_eq!(property(c, streamer, "InvocationID"), now, "a refused call acted on the streamer");
}

/// One user per service: each configuration file, state and log directory has the owner and
/// mode the README's table gives; each service's user reads its own secrets and no other
/// service's, and writes nothing of another's (tried as the users, with the groups their units
/// give them).
fn each_service_reads_its_own_secrets_only(c: &Container) {
    let expected = [
        ("/etc/desktop-streamer", "1775 root:desktop-streamer-web"),
        ("/etc/desktop-streamer/config.json", "640 root:desktop-streamer"),
        ("/etc/desktop-streamer/web-config.json", "640 root:desktop-streamer-web"),
        ("/etc/desktop-streamer/cameras.yaml", "640 desktop-streamer-web:desktop-streamer-web"),
        ("/etc/desktop-streamer/watchdog-config.json", "640 root:desktop-streamer-watchdog"),
        ("/etc/desktop-streamer/watchdog-web-token", "640 root:desktop-streamer-watchdog"),
        ("/var/lib/desktop-streamer", "755 desktop-streamer-web:desktop-streamer-web"),
        ("/var/lib/desktop-streamer/web-auth.json", "600 desktop-streamer-web:desktop-streamer-web"),
        ("/var/lib/desktop-streamer/hls", "755 desktop-streamer:desktop-streamer"),
        ("/var/lib/desktop-streamer/watchdog", "750 desktop-streamer-watchdog:desktop-streamer"),
        ("/var/log/desktop-streamer", "2770 desktop-streamer:desktop-streamer"),
        ("/var/log/desktop-streamer/desktop-streamer-web.log", "640 desktop-streamer-web:desktop-streamer"),
        ("/var/log/desktop-streamer/desktop-streamer-watchdog.log", "640 desktop-streamer-watchdog:desktop-streamer"),
        ("/var/log/desktop-streamer/desktop-streamer.log", "640 desktop-streamer:desktop-streamer"),
    ];
    let mut wrong = Vec::new();
    for (path, want) in expected {
        let got = sh(c, &format!("stat -c '%a %U:%G' {path} 2>&1 || true")).trim().to_owned();
        if got != want {
            wrong.push(format!("{path}: {got} (want {want})"));
        }
    }
    assert!(wrong.is_empty(), "owners and modes:\n  {}", wrong.join("\n  "));
    println!("the watchdog's state: {}", sh(c, "ls -l /var/lib/desktop-streamer/watchdog"));
    let can = |user: &str, script: &str| exec(c, &["runuser", "-u", user, "--", "sh", "-c", script], RERUN_TIMEOUT);
    let (web, watchdog, streamer) = ("desktop-streamer-web", "desktop-streamer-watchdog", "desktop-streamer");
    let etc = "/etc/desktop-streamer";
    for (user, script, allowed) in [
        (web, format!("cat {etc}/cameras.yaml {etc}/web-config.json {etc}/config.json"), true),
        (
            web,
            "cd /var/lib/desktop-streamer/watchdog && ls >/dev/null && \
             { [ ! -e alert-history.json ] || cat alert-history.json >/dev/null; } && \
             cat /var/log/desktop-streamer/*.log >/dev/null"
                .to_owned(),
            true,
        ),
        (web, format!("cat {etc}/watchdog-config.json"), false),
        (web, format!("cat {etc}/watchdog-web-token"), false),
        // The watchdog's copy of its last good configuration holds its secrets too.
        (web, "cat /var/lib/desktop-streamer/watchdog/last-good-config.json".to_owned(), false),
        (web, "touch /var/lib/desktop-streamer/watchdog/outbox-by-web".to_owned(), false),
        (web, "touch /var/lib/desktop-streamer/hls/by-web.ts".to_owned(), false),
        (watchdog, format!("cat {etc}/watchdog-config.json {etc}/watchdog-web-token {etc}/config.json"), true),
        (watchdog, format!("cat {etc}/cameras.yaml"), false),
        (watchdog, "cat /var/lib/desktop-streamer/web-auth.json".to_owned(), false),
        (watchdog, format!("touch {etc}/by-watchdog"), false),
        (streamer, format!("cat {etc}/config.json"), true),
        (streamer, format!("cat {etc}/cameras.yaml"), false),
        (streamer, format!("cat {etc}/watchdog-config.json"), false),
        (streamer, format!("touch {etc}/by-streamer"), false),
    ] {
        let ran = can(user, &script);
        let should = if allowed { "" } else { "not " };
        assert_eq!(ran.code == Some(0), allowed, "as {user}: `{script}` should {should}succeed: {}", ran.stderr);
    }
}

/// What a run of install.sh that changes nothing must leave as it is: every installed file's
/// path, mode, owner, modification time, link target and content hash; the directories' modes
/// and owners; the service user; each unit's invocation, start time, restart count and state;
/// and how many times systemd reloaded.
fn installation_state(c: &Container) -> String {
    let files = "find /etc/systemd/system /etc/polkit-1 /etc/X11 /etc/desktop-streamer /etc/logrotate.d /usr/local \
        /var/lib/desktop-streamer/web-auth.json -path '*desktop-streamer*' \\( -type f -o -type l \\)";
    let mut units: Vec<&str> = UNITS.to_vec();
    units.push(LOGROTATE_TIMER);
    let script = format!(
        "{files} -printf '%p %m %u:%g %T@ %l\\n' | sort; {files} -type f -print0 | sort -z | xargs -0 sha256sum; \
         stat -c '%n %a %U:%G' /etc/desktop-streamer /var/lib/desktop-streamer /var/log/desktop-streamer; \
         getent passwd desktop-streamer; id desktop-streamer; {}; \
         echo systemd reloads: $(journalctl --no-pager -o cat _PID=1 | grep -c '^Reloading')",
        units_state_script(&units)
    );
    sh(c, &script)
}

/// A script printing each unit's invocation, start time, restart count and state.
fn units_state_script(units: &[&str]) -> String {
    units
        .iter()
        .map(|u| {
            format!(
                "systemctl show -p InvocationID,ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic,NRestarts,ActiveState,UnitFileState {u} | sed 's/^/{u} /'"
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Linux Mint 21 with polkit 0.105 (os-release and `pkaction --version` faked, polkit's .pkla
/// backend really installed): a .pkla file cannot be limited to our units, so polkit grants
/// nothing (the JavaScript rule goes, it says why) and the dashboard user's own D-Bus call is
/// refused; instead root's fixed-list helper is installed, and the dashboard's service control
/// and "restart pipeline" work through it (the streamer is really restarted and signalled). A
/// .pkla grant an earlier version installed (--allow-any-unit, now removed) is taken away. Only the
/// first run restarts units: the dashboard and the watchdog, to join the helper's group.
fn mint_21_with_polkit_0_105_uses_roots_fixed_list_helper(c: &Container, install: &[&str], web_port: u16, token: &str) {
    sh(c, "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends polkitd-pkla >/dev/null 2>&1");
    let units = units_state_script(&UNITS);
    let web = "desktop-streamer-web.service";
    // The first run adds the dashboard's and the watchdog's users to the helper's group: they
    // are restarted to have it. Any other run restarts nothing.
    let run = |extra: &[&str], first: bool| {
        let mut args = install.to_vec();
        args.extend(["--wait", "0"]);
        args.extend(extra);
        let before = sh(c, &units);
        let mint = install_as(c, "mint-21", Some("/seed/old-polkit"), &args, RERUN_TIMEOUT);
        let output = format!("{}{}", mint.stdout, mint.stderr);
        println!("{output}");
        assert_eq!(mint.code, Some(0), "install.sh refused Linux Mint 21.3:\n{output}");
        assert!(output.contains("Linux Mint 21.3 (based on Ubuntu 22.04), systemd"), "{output}");
        if first {
            for unit in ["desktop-streamer-web.service", "desktop-streamer-watchdog.service"] {
                let said = format!("restarted {unit} (it may now use the control helper)");
                assert!(output.contains(&said), "{output}");
            }
            assert_eq!(output.matches("restarted ").count(), 2, "{output}");
            wait_for_dashboard(web_port);
        } else {
            assert!(!output.contains("restarted "), "{output}");
            assert_eq!(sh(c, &units), before, "the polkit change restarted a unit");
        }
        let rule = exec(c, &["test", "-e", POLKIT_RULE], RERUN_TIMEOUT);
        assert_eq!(rule.code, Some(1), "{POLKIT_RULE} is still there on polkit 0.105");
        output
    };

    let refused = run(&[], true);
    for said in [
        &format!("removed {POLKIT_RULE}"),
        "a .pkla file cannot be limited to our units: no polkit grant",
        "installed /usr/local/lib/desktop-streamer/control",
        "started desktop-streamer-control.socket",
    ] {
        assert!(refused.contains(said), "the Mint run did not say `{said}`:\n{refused}");
    }
    assert_eq!(exec(c, &["test", "-e", POLKIT_PKLA], RERUN_TIMEOUT).code, Some(1), "{POLKIT_PKLA} installed unasked");
    let invocation = property(c, web, "InvocationID");
    assert_denied(&as_service_user(c, "RestartUnit", &["ss", web, "replace"]), "restart the dashboard (no grant)");
    assert_eq!(property(c, web, "InvocationID"), invocation, "the refused restart happened");
    let socket = sh(c, "stat -c '%a %U:%G' /run/desktop-streamer-control.sock");
    assert_eq!(socket.trim(), "660 root:desktop-streamer-control", "the helper's socket");

    // Through the helper: the dashboard restarts the streamer and signals it.
    let streamer = "desktop-streamer.service";
    let before = property(c, streamer, "InvocationID");
    let bearer = format!("Bearer {token}");
    let body = serde_json::json!({ "unit": streamer }).to_string();
    let restart = http::post_json(web_port, "/api/service/restart", &[("Authorization", &bearer)], &body).unwrap();
    assert_eq!(restart.status, 200, "the dashboard's restart through the helper: {}", restart.text());
    assert_ne!(property_after_job(c, streamer, "InvocationID", |id| id != before), before, "not restarted");
    let pipeline = http::post_json(web_port, "/api/stream/restart", &[("Authorization", &bearer)], "{}").unwrap();
    assert_eq!(pipeline.status, 202, "the pipeline restart (SIGUSR1) through the helper: {}", pipeline.text());
    let journal = sh(c, "journalctl --no-pager -o cat -u 'desktop-streamer-control@*' | tail -n 20");
    println!("the helper's journal:\n{journal}");

    // The broad grant an earlier version's --allow-any-unit installed is taken away.
    sh(
        c,
        &format!(
            "mkdir -p $(dirname {POLKIT_PKLA}) && printf '[old]\\nIdentity=unix-user:desktop-streamer\\nAction=org.freedesktop.systemd1.manage-units\\nResultAny=yes\\n' > {POLKIT_PKLA}"
        ),
    );
    let cleaned = run(&[], false);
    assert!(cleaned.contains(&format!("removed {POLKIT_PKLA}")), "{cleaned}");
    assert_eq!(exec(c, &["test", "-e", POLKIT_PKLA], RERUN_TIMEOUT).code, Some(1), "{POLKIT_PKLA} is still there");
    assert_denied(&as_service_user(c, "RestartUnit", &["ss", web, "replace"]), "restart the dashboard (.pkla gone)");
    assert_eq!(property(c, web, "InvocationID"), invocation, "the refused restart happened");
    wait_for_dashboard(web_port);
}

/// An installation of an earlier version (every service as `desktop-streamer`, every file of
/// its group, the watchdog's configuration readable by all) is moved to one user per service by
/// the next run: owners and modes as the README gives them, each service reading its own
/// secrets only, and every service running again with its data (the same admin password).
fn an_installation_with_one_user_for_all_is_moved_to_one_user_per_service(
    c: &Container,
    install: &[&str],
    web_port: u16,
    password: &str,
) {
    sh(
        c,
        "systemctl stop desktop-streamer-watchdog.service desktop-streamer-web.service desktop-streamer.service && \
         chown -R desktop-streamer:desktop-streamer /var/lib/desktop-streamer /var/log/desktop-streamer && \
         chmod 750 /var/log/desktop-streamer && cd /etc/desktop-streamer && \
         chgrp desktop-streamer . config.json web-config.json watchdog-config.json watchdog-web-token && \
         chown desktop-streamer:desktop-streamer cameras.yaml && chmod 644 watchdog-config.json",
    );
    let moved = c.run(install, RERUN_TIMEOUT).unwrap_or_else(|e| panic!("the run over the old layout failed: {e}"));
    println!("{moved}");
    for said in [
        "directory /etc/desktop-streamer (1775 root:desktop-streamer-web)",
        "owner of /var/lib/desktop-streamer/web-auth.json: desktop-streamer-web:desktop-streamer-web",
        "owner of /var/lib/desktop-streamer/watchdog and all in it: desktop-streamer-watchdog:desktop-streamer",
        "owner of /etc/desktop-streamer/watchdog-config.json: root:desktop-streamer-watchdog",
        "mode of /etc/desktop-streamer/watchdog-config.json: 640",
        // polkit 0.106 again (after the Mint runs): the exact rule, and root's helper goes.
        "removed /usr/local/lib/desktop-streamer/control",
        "removed /etc/systemd/system/desktop-streamer-control.socket",
    ] {
        assert!(moved.contains(said), "the run over the old layout did not say `{said}`:\n{moved}");
    }
    each_service_reads_its_own_secrets_only(c);
    for unit in SERVICES {
        assert_eq!(property(c, unit, "ActiveState"), "active", "{unit} is not running after the move");
    }
    wait_for_dashboard(web_port);
    let login = http::post_json(web_port, "/api/login", &[], &serde_json::json!({ "password": password }).to_string())
        .expect("the dashboard answers");
    assert_eq!(login.status, 200, "the admin password no longer logs in after the move: {}", login.text());
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
        CREDENTIALS,
        "/var/lib/desktop-streamer/web-auth.json",
        "/var/lib/desktop-streamer/logrotate/status",
        "/var/log/desktop-streamer/desktop-streamer.log",
    ] {
        c.run(&["test", "-s", kept], RERUN_TIMEOUT).unwrap_or_else(|_| panic!("--uninstall did not keep {kept}"));
    }
    for user in USERS {
        c.run(&["id", user], RERUN_TIMEOUT).unwrap_or_else(|_| panic!("--uninstall did not keep the user {user}"));
    }
    assert!(http::get(web_port, "/api/status").is_none(), "the dashboard still answers after --uninstall");
}

/// After --purge: no configuration, data, log, cache or user, and no file anywhere that belongs
/// to the removed user's numbers (a later user given the same id would own it).
fn purge_removed_everything(c: &Container, purged: &str, ids: &str) {
    for said in ["removed /etc/desktop-streamer", "removed /var/lib/desktop-streamer"] {
        assert!(purged.contains(said), "--purge did not say `{said}`:\n{purged}");
    }
    let left = sh(c, &format!("ls -d {PURGED_PATHS} 2>/dev/null; true"));
    assert!(left.trim().is_empty(), "--purge left behind:\n{left}");
    for user in USERS {
        assert!(purged.contains(&format!("removed the user {user}\n")), "--purge did not remove {user}:\n{purged}");
        for database in ["passwd", "group", "shadow", "gshadow"] {
            let entry = c.exec(&["getent", database, user], RERUN_TIMEOUT).unwrap();
            assert_eq!(entry.status.code(), Some(2), "--purge left the {database} entry {:?}", entry.stdout);
        }
    }
    // Each user's uid and gid, "uid gid" per line.
    for line in ids.lines().filter(|l| !l.trim().is_empty()) {
        let (uid, gid) = line.trim().split_once(' ').expect("uid and gid");
        let owned = sh(
            c,
            &format!(
                "find / /tmp /run /dev/shm /var/tmp -xdev \\( -uid {uid} -o -gid {gid} \\) -print 2>/dev/null; true"
            ),
        );
        assert!(owned.trim().is_empty(), "files of a removed user (uid {uid}, gid {gid}) are left:\n{owned}");
    }
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
    seed_fakes(&seed);
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
    timed(&mut timings, "--help, refused systems", || {
        help_explains_every_option(c);
        unsupported_systems_are_refused(c, &install);
    });
    let (password, token, failed) = timed(&mut timings, "install.sh --demo (fails at the units)", || {
        a_failing_step_says_what_failed_and_keeps_the_secrets(c, &install)
    });
    for kept in ["config.json", "web-config.json", "watchdog-config.json"] {
        assert!(failed.contains(&format!("kept    /etc/desktop-streamer/{kept}")), "{kept} was not kept:\n{failed}");
    }
    assert!(failed.contains("created /etc/desktop-streamer/cameras.yaml"), "{failed}");
    assert!(failed.contains(&format!("removed {OLD_LOGROTATE_RULES}")), "the old rotation rules stayed:\n{failed}");

    let first = timed(&mut timings, "install.sh --demo (first complete run)", || c.run(&install, INSTALL_TIMEOUT))
        .unwrap_or_else(|e| panic!("install.sh failed: {e}"));
    println!("{first}");
    for said in [
        "[1] Checking the system",
        "kept /var/lib/desktop-streamer/web-auth.json",
        "the stream is live",
        "Dashboard:",
        &format!("The dashboard admin password and API token generated by an earlier run are in\n  {CREDENTIALS}"),
    ] {
        assert!(first.contains(said), "the first complete run's output lacks `{said}`:\n{first}");
    }
    assert_eq!(credentials(c), (password.clone(), token.clone()), "the credentials file changed");

    for unit in UNITS {
        let state = c.exec(&["systemctl", "is-active", unit], RERUN_TIMEOUT).unwrap();
        assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "active", "{unit} is not active");
    }
    no_process_of_ours_runs_as_root(c);
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
    the_printed_urls_answer(&first, streamer_port, web_port);
    without_vaapi_the_software_encoder_runs(c, &failed, streamer_port);
    the_unity_dropin_applies_to_the_streamer(c);
    timed(&mut timings, "secrets: login, token, nowhere else", || {
        the_secrets_work_and_are_nowhere_else(c, web_port, &password, &token);
        the_watchdog_has_a_read_token_of_its_own(c, web_port);
        each_service_reads_its_own_secrets_only(c);
    });
    timed(&mut timings, "polkit (allowed and refused calls)", || {
        polkit_lets_the_service_user_manage_our_services_only(c, web_port);
    });
    timed(&mut timings, "log rotation (timer, one run, Debian's logrotate)", || log_rotation_runs_hourly_and_alone(c));

    // The reload count must be seen to move when systemd reloads, or its staying put below
    // would prove nothing.
    let reloads = || sh(c, "journalctl --no-pager -o cat _PID=1 | grep -c '^Reloading'").trim().parse::<u32>().unwrap();
    let counted = reloads();
    sh(c, "systemctl daemon-reload");
    assert_eq!(reloads(), counted + 1, "a daemon-reload is not seen in the journal");
    let state = installation_state(c);
    let second = timed(&mut timings, "install.sh --demo (second run)", || c.run(&install, RERUN_TIMEOUT))
        .unwrap_or_else(|e| panic!("the second run failed: {e}"));
    assert!(second.contains("Nothing changed"), "the second run changed something:\n{second}");
    assert!(!second.contains("    installed ") && !second.contains("restarted "), "{second}");
    let state_after = installation_state(c);
    if state_after != state {
        let before: Vec<&str> = state.lines().collect();
        let changed: Vec<&str> = state_after.lines().filter(|l| !before.contains(l)).collect();
        panic!("the second run changed the installation: {changed:#?}\nbefore:\n{state}\n{second}");
    }
    println!("unchanged by the second run:\n{state}");

    timed(&mut timings, "install.sh as Linux Mint 21 with polkit 0.105", || {
        mint_21_with_polkit_0_105_uses_roots_fixed_list_helper(c, &install, web_port, &token);
    });

    timed(&mut timings, "install.sh over an earlier version's one-user layout", || {
        an_installation_with_one_user_for_all_is_moved_to_one_user_per_service(c, &install, web_port, &password);
    });

    let removed =
        timed(&mut timings, "install.sh --uninstall", || c.run(&["/project/install.sh", "--uninstall"], RERUN_TIMEOUT))
            .unwrap_or_else(|e| panic!("--uninstall failed: {e}"));
    println!("{removed}");
    assert!(removed.contains("stopped and disabled") && removed.contains(LOGROTATE_TIMER), "{removed}");
    uninstall_left_nothing_but_the_operators_data(c, web_port);

    let ids = sh(c, &USERS.map(|u| format!("echo $(id -u {u}) $(id -g {u});")).join(" "));
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
