//! A booted Debian 12 container (systemd as PID 1) for tests that install the project for real.
//!
//! The root comes from `debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus
//! bookworm` with the mirror read from this machine's apt sources, and is cached under
//! [`CACHE_DIR`] (built again when missing; the build goes to a temporary name first, so an
//! interrupted one is never used). Each [`Container`] boots that root with `--volatile=overlay`:
//! everything a test changes lands in a tmpfs above it and is gone at power-off, so the cached
//! root stays pristine. Downloaded Debian packages are kept in [`CACHE_DIR`]`/apt-archives`,
//! bound over the container's `/var/cache/apt/archives`.
//!
//! The host runs no systemd-machined, hence `--register=no --keep-unit`; commands run inside
//! through `nsenter -t PID -a`, PID being the container's init (the `systemd` child of
//! `systemd-nspawn`). The container shares the host's network namespace, so its services answer
//! on the host's 127.0.0.1 (and its abstract X11 sockets are the host's).
//!
//! Powered off always: [`Container::poweroff`] at the end of a test, its `Drop` when a test
//! panics, and when the test process itself is killed (nextest's `terminate-after`, a Ctrl-C),
//! by `systemd-nspawn` itself: it runs with a parent-death signal (`setpriv --pdeathsig TERM`), and
//! on SIGTERM it asks the container's systemd for an orderly shutdown (`--kill-signal`).
//!
//! Needs root and the Debian packages `debootstrap`, `systemd-container` and `util-linux`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where the debootstrapped root and downloaded packages are kept between runs.
pub const CACHE_DIR: &str = "/var/cache/desktop-streamer-tests";
/// The Debian release the container runs.
pub const SUITE: &str = "bookworm";
/// Longest a debootstrap may take (about a minute on a good connection).
const DEBOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest the container may take to boot until `systemctl is-system-running --wait` returns.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest the container may take to power off before it is killed.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(30);

/// A host path bound into the container.
#[derive(Debug, Clone)]
pub struct Bind {
    pub host: PathBuf,
    pub container: String,
    pub read_only: bool,
}

/// A booted container; dropping it powers it off (and kills it if it does not stop in time).
#[derive(Debug)]
pub struct Container {
    name: String,
    nspawn: Option<Child>,
    leader: u32,
    log: PathBuf,
}

impl Container {
    /// Boots `root` (see [`debian_root`]) as `name` and waits until systemd reports the system
    /// running (or degraded). `log` receives the container's console.
    pub fn boot(root: &Path, name: &str, binds: &[Bind], log: &Path) -> io::Result<Container> {
        let archives = Path::new(CACHE_DIR).join("apt-archives");
        fs::create_dir_all(archives.join("partial"))?;
        // SIGTERM to systemd-nspawn when the thread that started it ends (the test is over or
        // the process was killed); systemd-nspawn passes it on as SIGRTMIN+3, "power off".
        let mut command = Command::new("setpriv");
        command
            .args(["--pdeathsig", "TERM", "--", "systemd-nspawn"])
            .args(["--register=no", "--keep-unit", "--volatile=overlay", "--quiet", "--kill-signal=SIGRTMIN+3"])
            .arg("-D")
            .arg(root)
            .arg("-M")
            .arg(name)
            .arg(format!("--bind={}:/var/cache/apt/archives", archives.display()));
        for b in binds {
            let flag = if b.read_only { "--bind-ro" } else { "--bind" };
            command.arg(format!("{flag}={}:{}", b.host.display(), b.container));
        }
        let console = fs::File::create(log)?;
        command.arg("--boot").stdin(Stdio::null()).stdout(console.try_clone()?).stderr(console);
        let child = command.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run setpriv (util-linux) for systemd-nspawn: {e}"))
        })?;
        let mut container = Container { name: name.to_owned(), nspawn: Some(child), leader: 0, log: log.to_owned() };
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let nspawn_pid = container.nspawn.as_ref().map_or(0, Child::id);
        while container.leader == 0 {
            if let Some(status) = container.nspawn.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(container.error(&format!("systemd-nspawn exited with {status} while booting")));
            }
            if Instant::now() >= deadline {
                return Err(container.error("no systemd process appeared under systemd-nspawn"));
            }
            container.leader = init_under(nspawn_pid).unwrap_or(0);
            thread::sleep(Duration::from_millis(50));
        }
        // systemctl cannot connect until the container's systemd has set up its private socket;
        // until then it prints nothing on stdout.
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let out = container.exec(&["systemctl", "is-system-running", "--wait"], remaining)?;
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                break;
            }
            if Instant::now() >= deadline {
                return Err(container.error(&format!(
                    "the container's systemd says `{state}` {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            thread::sleep(Duration::from_millis(200));
        }
        Ok(container)
    }

    /// The container's init process on the host.
    pub fn leader(&self) -> u32 {
        self.leader
    }

    /// Runs `args` inside the container (`nsenter -t PID -a`), killed after `limit`.
    pub fn exec(&self, args: &[&str], limit: Duration) -> io::Result<Output> {
        Command::new("timeout")
            .args(["--kill-after=5", &format!("{}", limit.as_secs().max(1))])
            .args(["nsenter", "-t", &self.leader.to_string(), "-a", "--"])
            .args(args)
            .stdin(Stdio::null())
            .output()
    }

    /// Like [`Self::exec`], returning stdout and stderr together; fails with both on a
    /// non-zero exit.
    pub fn run(&self, args: &[&str], limit: Duration) -> io::Result<String> {
        let out = self.exec(args, limit)?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            Ok(text)
        } else {
            Err(io::Error::other(format!("`{}` in {} failed with {}:\n{text}", args.join(" "), self.name, out.status)))
        }
    }

    /// Powers the container off and waits for systemd-nspawn to exit; kills it after
    /// [`POWEROFF_TIMEOUT`]. Returns how long it took.
    pub fn poweroff(&mut self) -> Duration {
        let started = Instant::now();
        let Some(mut child) = self.nspawn.take() else { return Duration::ZERO };
        if self.leader != 0 {
            let _ = self.exec(&["systemctl", "poweroff", "--no-block"], Duration::from_secs(10));
        }
        while matches!(child.try_wait(), Ok(None)) && started.elapsed() < POWEROFF_TIMEOUT {
            thread::sleep(Duration::from_millis(100));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            if self.leader != 0 {
                let _ = Command::new("kill").args(["-KILL", &self.leader.to_string()]).status();
            }
        }
        let _ = child.wait();
        started.elapsed()
    }

    fn error(&self, what: &str) -> io::Error {
        let console = fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = console.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        io::Error::other(format!("container {}: {what}\n--- console (end) ---\n{}", self.name, tail.join("\n")))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.poweroff();
    }
}

/// The pid of the `systemd` process whose parent is `parent` (the container's init).
fn init_under(parent: u32) -> Option<u32> {
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm == "systemd" && ppid == Some(parent) {
            return Some(pid);
        }
    }
    None
}

/// The first Debian mirror in this machine's apt sources (`/etc/apt/sources.list`, then the
/// `.list` and deb822 `.sources` files in `/etc/apt/sources.list.d/`), e.g.
/// `http://deb.debian.org/debian`. Security and update suites are skipped.
pub fn apt_mirror() -> io::Result<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else { continue };
        let name = file.to_string_lossy();
        let found = if name.ends_with(".sources") {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("URIs:"))
                .flat_map(str::split_whitespace)
                .map(str::to_owned)
                .find(|u| is_main_mirror(u))
        } else if name.ends_with(".list") {
            text.lines()
                .map(str::trim)
                .filter(|l| l.starts_with("deb ") || l.starts_with("deb\t"))
                .filter_map(|l| l.split_whitespace().skip(1).find(|w| !w.starts_with('[')).map(str::to_owned))
                .find(|u| is_main_mirror(u))
        } else {
            None
        };
        if let Some(uri) = found {
            return Ok(uri.trim_end_matches('/').to_owned());
        }
    }
    Err(io::Error::other("no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/"))
}

fn is_main_mirror(uri: &str) -> bool {
    (uri.starts_with("http://") || uri.starts_with("https://")) && !uri.contains("security")
}

/// The cached Debian root, debootstrapped from [`apt_mirror`] when it is missing. Returns its
/// path and how long building it took (zero when it was cached).
pub fn debian_root() -> io::Result<(PathBuf, Duration)> {
    let cache = Path::new(CACHE_DIR);
    let root = cache.join(SUITE);
    // The marker is written last: a root without it is incomplete.
    let marker = cache.join(format!("{SUITE}.complete"));
    if marker.exists() && root.join("usr/lib/systemd/systemd").exists() {
        return Ok((root, Duration::ZERO));
    }
    fs::create_dir_all(cache)?;
    let started = Instant::now();
    let building = cache.join(format!("{SUITE}.building-{}", std::process::id()));
    let _ = fs::remove_dir_all(&building);
    let mirror = apt_mirror()?;
    let out = Command::new("timeout")
        .arg(DEBOOTSTRAP_TIMEOUT.as_secs().to_string())
        .args(["debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus", SUITE])
        .arg(&building)
        .arg(&mirror)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run debootstrap (is it installed?): {e}")))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(&building);
        return Err(io::Error::other(format!(
            "debootstrap {SUITE} from {mirror} failed with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let _ = fs::remove_dir_all(&root);
    fs::rename(&building, &root)?;
    fs::write(&marker, format!("debootstrap {SUITE} {mirror}\n"))?;
    Ok((root, started.elapsed()))
}
