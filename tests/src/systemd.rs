//! A real systemd user manager on its own D-Bus bus, for tests that watch and restart units.
//!
//! Each [`UserSystemd`] is `systemd --user` started in a private mount namespace (where
//! `/run/systemd/system` exists on a fresh tmpfs: systemd refuses to run a user manager without
//! it, and the namespace keeps the machine's own `/run/systemd` untouched), with
//! `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME` and the other XDG directories inside its own temporary
//! directory. Tests in parallel each get their own manager and bus.
//!
//! The bus is the manager's own: its `dbus.socket` listens on `$XDG_RUNTIME_DIR/bus` and starts
//! `dbus.service` on the first connection. A `dbus-daemon` started beforehand on that path does
//! not help: systemd only registers `org.freedesktop.systemd1` once its `dbus.socket` and
//! `dbus.service` units run, and `dbus.socket` unlinks and rebinds the path, leaving the earlier
//! daemon listening on nothing.
//!
//! Each manager also gets its own cgroup: a manager puts its units' cgroups below its own (below
//! the parent of an `init.scope`), so two managers started from the same test process would share
//! `session.slice/dbus.service` and the like, and one stopping would kill the other's bus.
//!
//! Needs root (for the mount namespace and the cgroups) and the Debian packages `systemd`
//! (systemd, systemctl, busctl), `dbus` (dbus-daemon, started by the manager) and `util-linux`
//! (unshare).

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use tempfile::TempDir;

/// How long the manager may take to answer on its bus (it usually needs 0.15 s).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one `systemctl` or `busctl` call may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the manager may take to stop its units and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process may take to die after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);
/// Lines of the manager's output quoted in errors.
const LOG_TAIL_LINES: usize = 25;

/// Moves itself into the cgroups given as arguments, sets up the mount namespace, then becomes
/// the manager (`exec`, so the child's pid is systemd's).
const MANAGER_SCRIPT: &str = r#"for procs; do echo $$ > "$procs" || exit 1; done
mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system && exec /lib/systemd/systemd --user"#;

/// A running `systemd --user` with its D-Bus bus. Dropping it stops the manager (SIGTERM, then
/// SIGKILL to it and every process it started) and removes its directory.
#[derive(Debug)]
pub struct UserSystemd {
    dir: TempDir,
    manager: Option<Child>,
    /// The manager's own cgroup in each hierarchy that tracks processes.
    cgroups: Vec<PathBuf>,
}

/// A manager's directory before the manager runs: its bus address is already known, and
/// nothing listens there yet (for a client that must start before the bus exists).
#[derive(Debug)]
pub struct Unstarted {
    dir: TempDir,
}

impl Unstarted {
    /// The address the manager's bus will have once [`Unstarted::start`] ran.
    pub fn bus_address(&self) -> String {
        bus_address_in(self.dir.path())
    }

    /// Starts the manager; see [`UserSystemd::start`].
    pub fn start(self) -> io::Result<UserSystemd> {
        UserSystemd::start_in(self.dir)
    }
}

fn bus_address_in(dir: &Path) -> String {
    format!("unix:path={}", dir.join("run/bus").display())
}

impl UserSystemd {
    /// Starts the manager and waits, at most 15 s, until `org.freedesktop.systemd1` answers on
    /// its bus.
    pub fn start() -> io::Result<UserSystemd> {
        UserSystemd::prepare()?.start()
    }

    /// The manager's directory, without starting it.
    pub fn prepare() -> io::Result<Unstarted> {
        let dir = tempfile::Builder::new().prefix("ds-systemd-").tempdir()?;
        for sub in ["run", "config/systemd/user", "data", "state", "cache"] {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir.path().join(sub))?;
        }
        Ok(Unstarted { dir })
    }

    fn start_in(dir: TempDir) -> io::Result<UserSystemd> {
        let log = fs::File::create(dir.path().join("manager.log"))?;
        // A manager makes its units' cgroups below its own (or below the parent of an
        // `init.scope`, where test processes often run): managers sharing a cgroup would share
        // `session.slice/dbus.service` and friends, and stopping one would kill the others' buses.
        let name = dir.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut systemd = UserSystemd { dir, manager: None, cgroups: Vec::new() };
        for hierarchy in process_hierarchies()? {
            let cgroup = hierarchy.join(&name).join("init.scope");
            fs::create_dir_all(&cgroup)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot create cgroup {}: {e}", cgroup.display())))?;
            systemd.cgroups.push(hierarchy.join(&name));
        }
        let mut command = Command::new("unshare");
        command.args(["-m", "sh", "-c", MANAGER_SCRIPT, "sh"]);
        command.args(systemd.cgroups.iter().map(|c| c.join("init.scope/cgroup.procs")));
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        systemd.environment(&mut command);
        let child = command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run unshare (is util-linux installed?): {e}")))?;
        systemd.manager = Some(child);
        systemd.wait_until_answering()?;
        Ok(systemd)
    }

    /// The D-Bus address of the manager's bus, for `zbus::connection::Builder::address`.
    pub fn bus_address(&self) -> String {
        bus_address_in(self.dir.path())
    }

    /// The manager's pid.
    pub fn pid(&self) -> Option<u32> {
        self.manager.as_ref().map(Child::id)
    }

    /// Where unit files go: `$XDG_CONFIG_HOME/systemd/user`.
    pub fn unit_dir(&self) -> PathBuf {
        self.dir.path().join("config/systemd/user")
    }

    /// Writes a unit file; [`Self::daemon_reload`] makes systemd see changes to a loaded unit.
    pub fn write_unit(&self, name: &str, text: &str) -> io::Result<()> {
        fs::write(self.unit_dir().join(name), text)
    }

    /// Writes `name`: a service running `sleep infinity` that systemd never restarts itself
    /// (`Restart=no`), so whoever kills it must restart it. `extra_unit` goes into `[Unit]`,
    /// such as `StartLimitBurst=2`.
    pub fn write_sleep_unit(&self, name: &str, extra_unit: &str) -> io::Result<()> {
        self.write_unit(
            name,
            &format!(
                "[Unit]\nDescription=test unit {name}\n{extra_unit}\n\n[Service]\nExecStart=/bin/sleep infinity\nRestart=no\n"
            ),
        )
    }

    /// `systemctl --user daemon-reload`.
    pub fn daemon_reload(&self) -> io::Result<()> {
        self.systemctl(&["daemon-reload"]).map(drop)
    }

    /// `systemctl --user start UNIT`; fails when the start job fails.
    pub fn start_unit(&self, unit: &str) -> io::Result<()> {
        self.systemctl(&["start", unit]).map(drop)
    }

    /// One property as `systemctl --user show -p PROPERTY --value UNIT` prints it.
    pub fn show(&self, unit: &str, property: &str) -> io::Result<String> {
        Ok(self.systemctl(&["show", "-p", property, "--value", unit])?.trim().to_owned())
    }

    /// The unit's main pid; 0 when it runs none.
    pub fn main_pid(&self, unit: &str) -> io::Result<u32> {
        let value = self.show(unit, "MainPID")?;
        value.parse().map_err(|_| io::Error::other(format!("MainPID of {unit} is {value:?}, not a number")))
    }

    /// Kills the unit's main process with SIGKILL, as a crash would. Fails if it runs none.
    pub fn kill_main_process(&self, unit: &str) -> io::Result<u32> {
        let pid = self.main_pid(unit)?;
        // A pid of 0 would signal this whole process group.
        let target = Pid::from_raw(pid as i32)
            .filter(|_| pid > 0)
            .ok_or_else(|| io::Error::other(format!("{unit} runs no main process")))?;
        kill_process(target, Signal::KILL)?;
        Ok(pid)
    }

    /// Runs `systemctl --user ARGS…` against this manager, bounded in time; its stdout.
    pub fn systemctl(&self, args: &[&str]) -> io::Result<String> {
        let mut command = Command::new("systemctl");
        command.arg("--user").args(args);
        let output = self.run(command)?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "systemctl --user {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The last lines of the manager's own output.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("manager.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The environment that makes systemd, systemctl and busctl use this manager and bus.
    fn environment(&self, command: &mut Command) {
        let dir = self.dir.path();
        command
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("DBUS_SESSION_BUS_ADDRESS", self.bus_address())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID");
    }

    /// Runs a command with this manager's environment, killing it after [`COMMAND_TIMEOUT`].
    fn run(&self, mut command: Command) -> io::Result<Output> {
        self.environment(&mut command);
        run_short(command)
    }

    fn wait_until_answering(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.manager.as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(io::Error::other(format!(
                    "systemd --user exited with {status} before answering on its bus:\n{}",
                    self.log_tail()
                )));
            }
            let mut ping = Command::new("busctl");
            ping.args(["--user", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1"])
                .args(["org.freedesktop.DBus.Peer", "Ping"]);
            let answered = self.run(ping)?.status.success();
            if answered {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "systemd --user did not answer on {} within {START_TIMEOUT:?}:\n{}",
                        self.bus_address(),
                        self.log_tail()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the manager: SIGTERM lets it stop its units (and its bus) itself; if it does not
    /// exit in time it and every process it started get SIGKILL, by pid.
    pub fn stop(&mut self) {
        let Some(mut child) = self.manager.take() else { return };
        let descendants = descendants(child.id());
        if let Some(pid) = Pid::from_raw(child.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        if !wait_child(&mut child, STOP_TIMEOUT) {
            let _ = child.kill();
            wait_child(&mut child, KILL_TIMEOUT);
        }
        // Whatever outlived the manager (it was killed, or a unit ignored SIGTERM).
        kill_survivors(&descendants);
        for cgroup in std::mem::take(&mut self.cgroups) {
            remove_cgroup(&cgroup);
        }
    }
}

impl Drop for UserSystemd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The mount points of the cgroup hierarchies that track processes: the unified (v2) one and
/// the legacy `name=systemd` one, whichever the machine has.
fn process_hierarchies() -> io::Result<Vec<PathBuf>> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS"
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        let mut fields = right.split(' ');
        let fstype = fields.next().unwrap_or_default();
        let super_options = fields.nth(1).unwrap_or_default();
        if fstype == "cgroup2" || (fstype == "cgroup" && super_options.split(',').any(|o| o == "name=systemd")) {
            found.push(PathBuf::from(mount_point));
        }
    }
    if found.is_empty() {
        return Err(io::Error::other("no cgroup hierarchy mounted (neither cgroup2 nor name=systemd)"));
    }
    Ok(found)
}

/// Removes a cgroup and the ones systemd left below it, deepest first; only empty ones go.
fn remove_cgroup(cgroup: &Path) {
    if let Ok(entries) = fs::read_dir(cgroup) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(cgroup);
}

/// Waits for the child to exit, at most `timeout`; whether it did.
pub(crate) fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => thread::sleep(POLL),
        }
    }
}

/// Runs a short command (a few lines of output) to its end, killing it after
/// [`COMMAND_TIMEOUT`].
pub(crate) fn run_short(mut command: Command) -> io::Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    // The outputs here are a few lines, far below a pipe's buffer: waiting before reading
    // cannot block the child.
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{program} did not finish within {COMMAND_TIMEOUT:?}"),
            ));
        }
        thread::sleep(POLL);
    }
    child.wait_with_output()
}

/// Kills exactly the processes seen before (by [`descendants`]) that still run, recognised by
/// pid and start time, so that a reused pid is never hit.
pub(crate) fn kill_survivors(seen: &[(u32, u64)]) {
    for &(pid, started) in seen {
        if start_time(pid) == Some(started)
            && let Some(p) = Pid::from_raw(pid as i32)
        {
            let _ = kill_process(p, Signal::KILL);
        }
    }
}

/// Every process below `root` in the process tree, with its start time (clock ticks since boot).
pub(crate) fn descendants(root: u32) -> Vec<(u32, u64)> {
    let mut parents = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Some((ppid, started)) = stat_fields(&entry.path()) {
                parents.push((pid, ppid, started));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid, started) in &parents {
            if ppid == parent && !found.iter().any(|&(p, _)| p == pid) {
                found.push((pid, started));
                frontier.push(pid);
            }
        }
    }
    found
}

fn start_time(pid: u32) -> Option<u64> {
    stat_fields(Path::new(&format!("/proc/{pid}"))).map(|(_, started)| started)
}

/// The parent pid and start time from `/proc/PID/stat`; `None` for zombies and vanished pids.
fn stat_fields(proc_dir: &Path) -> Option<(u32, u64)> {
    let stat = fs::read_to_string(proc_dir.join("stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // state is field 3 of stat (0 here), ppid 4 (1), starttime 22 (19).
    if f.first() == Some(&"Z") {
        return None;
    }
    Some((f.get(1)?.parse().ok()?, f.get(19)?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_managers_run_side_by_side_and_stop_with_their_units() {
        let (a, b) = thread::scope(|s| {
            let a = s.spawn(UserSystemd::start);
            let b = s.spawn(UserSystemd::start);
            (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
        });
        assert_ne!(a.bus_address(), b.bus_address());
        a.write_sleep_unit("harness-sleep.service", "").unwrap();
        a.daemon_reload().unwrap();
        a.start_unit("harness-sleep.service").unwrap();
        assert_eq!(a.show("harness-sleep.service", "ActiveState").unwrap(), "active");
        // b has its own configuration directory: it does not know a's unit.
        assert_eq!(b.show("harness-sleep.service", "LoadState").unwrap(), "not-found");

        let unit_pid = a.main_pid("harness-sleep.service").unwrap();
        assert!(unit_pid > 0);
        let manager_pid = a.pid().unwrap();
        let bus_pids: Vec<u32> = descendants(manager_pid).into_iter().map(|(p, _)| p).collect();
        assert!(bus_pids.contains(&unit_pid), "unit {unit_pid} not below manager {manager_pid}: {bus_pids:?}");
        drop(a);
        for pid in [manager_pid, unit_pid] {
            assert!(start_time(pid).is_none(), "process {pid} still runs after drop");
        }
        assert_eq!(b.show("default.target", "ActiveState").unwrap(), "active");
    }
}
