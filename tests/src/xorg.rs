//! A real X server with two RandR monitors, for tests that capture or watch a kiosk's second
//! monitor.
//!
//! Xvfb has a single fixed screen and no RandR outputs, so it cannot show a second monitor
//! appearing, disappearing or moving. Xorg with the `dummy` video driver has sixteen RandR
//! outputs (`DUMMY0`..`DUMMY15`) that `xrandr` can switch on and off like real connectors. Each
//! [`DummyDisplay`] is one such server on its own display number, configured and logged inside
//! its own temporary directory, so tests in parallel processes never share a server.
//!
//! Needs root: as root Xorg takes the absolute `-config` path into the temporary directory
//! (xorg.conf(5) allows other users only relative paths under its search directories). Needs the
//! Debian packages `xserver-xorg-core`, `xserver-xorg-video-dummy` and `x11-xserver-utils` (for
//! `xrandr`).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use tempfile::TempDir;
use x11rb::connection::Connection as _;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt as _, CreateWindowAux, ImageFormat, StackMode, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

/// The Xorg configuration: one dummy device whose first output shows 1920x1080 at start.
/// `Virtual` only has to be at least as large as both monitors side by side (3200x1080); the
/// dummy driver grows the root window itself when `xrandr` adds the second output.
const XORG_CONF: &str = r#"Section "ServerFlags"
    Option "DontVTSwitch" "true"
EndSection

Section "Device"
    Identifier "dummy"
    Driver "dummy"
    VideoRam 256000
EndSection

Section "Monitor"
    Identifier "monitor"
    HorizSync 5.0-1000.0
    VertRefresh 5.0-200.0
    Modeline "1920x1080" 148.50 1920 2008 2052 2200 1080 1084 1089 1125 +hsync +vsync
    Modeline "1280x720" 74.25 1280 1390 1430 1650 720 725 730 750 +hsync +vsync
EndSection

Section "Screen"
    Identifier "screen"
    Device "dummy"
    Monitor "monitor"
    DefaultDepth 24
    SubSection "Display"
        Depth 24
        Modes "1920x1080" "1280x720"
        Virtual 3200 1080
    EndSubSection
EndSection
"#;

/// Display numbers tried, away from the :0..:99 a developer's own sessions and other tools use.
const DISPLAY_NUMBERS: std::ops::Range<u32> = 200..600;
/// How many display numbers one start tries before giving up.
const MAX_START_ATTEMPTS: u32 = 40;
/// How long Xorg may take to accept connections (it usually needs half a second).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a started server may take to show both monitors after `xrandr` returned.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines of Xorg's own output and log quoted in start errors.
const LOG_TAIL_LINES: usize = 25;

/// The first monitor of a [`DummyDisplay`]: output `DUMMY0`, primary, 1920x1080+0+0.
pub const FIRST_MONITOR: Rect = Rect { x: 0, y: 0, width: 1920, height: 1080 };
/// The second monitor of a [`DummyDisplay`]: output `DUMMY1`, 1280x720+1920+0.
pub const SECOND_MONITOR: Rect = Rect { x: 1920, y: 0, width: 1280, height: 720 };

/// A rectangle in root window coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i16,
    pub y: i16,
    pub width: u16,
    pub height: u16,
}

impl Rect {
    /// A `width`x`height` rectangle centred in this one.
    pub fn centred(self, width: u16, height: u16) -> Rect {
        Rect {
            x: self.x + (self.width.saturating_sub(width) / 2) as i16,
            y: self.y + (self.height.saturating_sub(height) / 2) as i16,
            width,
            height,
        }
    }
}

impl fmt::Display for Rect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}+{}+{}", self.width, self.height, self.x, self.y)
    }
}

/// A running Xorg server with two monitors: [`FIRST_MONITOR`] on `DUMMY0` and [`SECOND_MONITOR`]
/// on `DUMMY1`. Dropping it stops the server (SIGTERM, then SIGKILL) and waits for it.
#[derive(Debug)]
pub struct DummyDisplay {
    number: u32,
    dir: TempDir,
    child: Option<Child>,
    /// Pid of the last server started, to recognise its lock file after it was killed.
    last_pid: Option<u32>,
}

impl DummyDisplay {
    /// Starts Xorg on a free display number and switches on the second monitor.
    ///
    /// Display numbers are tried from a per-process starting point in [`DISPLAY_NUMBERS`]; Xorg's
    /// own lock file `/tmp/.X{n}-lock` decides who gets a number, so parallel test processes
    /// never share one. Errors quote the end of Xorg's output and log.
    pub fn start() -> io::Result<DummyDisplay> {
        let dir = tempfile::Builder::new().prefix("ds-xorg-").tempdir()?;
        fs::write(dir.path().join("xorg.conf"), XORG_CONF)?;
        let span = DISPLAY_NUMBERS.end - DISPLAY_NUMBERS.start;
        let first = first_candidate(span);
        let mut display = DummyDisplay { number: 0, dir, child: None, last_pid: None };
        let mut skipped = Vec::new();
        for attempt in 0..MAX_START_ATTEMPTS {
            let number = DISPLAY_NUMBERS.start + (first + attempt * 7) % span;
            if Path::new(&lock_path(number)).exists() || Path::new(&format!("/tmp/.X11-unix/X{number}")).exists() {
                continue;
            }
            display.number = number;
            match display.spawn()? {
                Spawned::Ready => {
                    display.enable_second_monitor()?;
                    return Ok(display);
                }
                Spawned::NumberTaken => skipped.push(number),
            }
        }
        Err(io::Error::other(format!(
            "cannot start Xorg: no free display number after {MAX_START_ATTEMPTS} tries in {DISPLAY_NUMBERS:?} \
             (taken: {skipped:?})"
        )))
    }

    /// The display name to connect to, such as `:231`.
    pub fn display(&self) -> String {
        format!(":{}", self.number)
    }

    /// The temporary directory holding `xorg.conf`, `xorg.log` and `xorg.out` (stdout+stderr).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Xorg's log file, to quote when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("xorg.log")
    }

    /// Switches the second monitor off like unplugging it: `xrandr --output DUMMY1 --off`.
    pub fn second_monitor_off(&self) -> io::Result<()> {
        self.xrandr(&["--output", "DUMMY1", "--off"])
    }

    /// Switches the second monitor back on at 1280x720 right of the first.
    pub fn second_monitor_on(&self) -> io::Result<()> {
        self.xrandr(&["--output", "DUMMY1", "--mode", "1280x720", "--right-of", "DUMMY0"])
    }

    /// Kills the server with SIGKILL, as a crash would, and waits until it is gone. Clients see
    /// their connections close; new connections are refused until [`Self::restart_server`].
    pub fn kill_server(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again on the same display number with the same configuration, both
    /// monitors on. Kills the running one first if there is one. Fails if another process took
    /// the display number in between.
    pub fn restart_server(&mut self) -> io::Result<()> {
        self.kill_server()?;
        match self.spawn()? {
            Spawned::Ready => self.enable_second_monitor(),
            Spawned::NumberTaken => Err(io::Error::other(format!(
                "cannot restart Xorg on {}: another server took the display number",
                self.display()
            ))),
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Shows a solid `rgb` (0xRRGGBB) rectangle on top of everything until the returned
    /// [`Patch`] is dropped. Returns once the server has drawn it.
    pub fn paint(&self, rect: Rect, rgb: u32) -> io::Result<Patch> {
        Patch::create(&self.display(), rect, rgb)
    }

    /// Shows a rectangle whose colour changes ten times a second, so an encoder always sees new
    /// pixels, until the returned [`Animation`] is dropped.
    pub fn animate(&self, rect: Rect) -> io::Result<Animation> {
        Animation::start(Patch::create(&self.display(), rect, ANIMATION_COLOURS[0])?)
    }

    /// The colour (0xRRGGBB) of the root window's pixel at `x`,`y`, as a screen capture sees it.
    pub fn pixel(&self, x: i16, y: i16) -> io::Result<u32> {
        let display = self.display();
        let (conn, screen) = connect(&display)?;
        let root = conn.setup().roots[screen].root;
        let image = conn
            .get_image(ImageFormat::Z_PIXMAP, root, x, y, 1, 1, !0)
            .map_err(|e| x_error(&display, "GetImage", e))?
            .reply()
            .map_err(|e| x_error(&display, "GetImage", e))?;
        // Depth 24 in 32-bit little-endian pixels: B, G, R, padding.
        match image.data.as_slice() {
            [b, g, r, ..] => Ok(u32::from_be_bytes([0, *r, *g, *b])),
            other => Err(io::Error::other(format!("GetImage on {display} returned {} bytes", other.len()))),
        }
    }

    /// Starts Xorg on `self.number` and waits until it accepts connections.
    fn spawn(&mut self) -> io::Result<Spawned> {
        let out_path = self.dir.path().join("xorg.out");
        let out = fs::File::create(&out_path)?;
        let mut child = Command::new("Xorg")
            .arg(self.display())
            .args(["-noreset", "-nolisten", "tcp"])
            // Never switch or claim a virtual terminal: parallel servers would take the
            // console from each other, and the dummy driver draws into memory anyway.
            .args(["-sharevts", "-novtswitch"])
            .arg("-config")
            .arg(self.dir.path().join("xorg.conf"))
            .arg("-logfile")
            .arg(self.dir.path().join("xorg.log"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run Xorg (is xserver-xorg-core installed?): {e}")))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                let output = fs::read_to_string(&out_path).unwrap_or_default();
                if number_taken(&output) {
                    return Ok(Spawned::NumberTaken);
                }
                return Err(self.start_error(&format!("Xorg {} exited with {status}", self.display())));
            }
            // Xorg writes its pid into the lock before it listens; checking it makes sure the
            // server answering below is ours and not one that held the number already.
            if lock_owner(self.number) == Some(child.id()) && connect(&self.display()).is_ok() {
                self.last_pid = Some(child.id());
                self.child = Some(child);
                return Ok(Spawned::Ready);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(self.start_error(&format!(
                    "Xorg {} did not accept connections within {START_TIMEOUT:?}",
                    self.display()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Gives `DUMMY1` its mode and places it right of `DUMMY0`, then waits until RandR lists
    /// two monitors.
    fn enable_second_monitor(&self) -> io::Result<()> {
        // The Monitor section's modelines are known to every output, so no `--newmode` is needed.
        self.xrandr(&["--addmode", "DUMMY1", "1280x720"])?;
        self.second_monitor_on()?;
        let display = self.display();
        let deadline = Instant::now() + MONITOR_TIMEOUT;
        loop {
            let (conn, screen) = connect(&display)?;
            let root = conn.setup().roots[screen].root;
            let monitors = conn
                .randr_get_monitors(root, true)
                .map_err(|e| x_error(&display, "RRGetMonitors", e))?
                .reply()
                .map_err(|e| x_error(&display, "RRGetMonitors", e))?
                .monitors;
            let geometry: Vec<Rect> =
                monitors.iter().map(|m| Rect { x: m.x, y: m.y, width: m.width, height: m.height }).collect();
            if geometry == [FIRST_MONITOR, SECOND_MONITOR] {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "Xorg {display} shows monitors {geometry:?} instead of [{FIRST_MONITOR}, {SECOND_MONITOR}] \
                     after xrandr"
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `xrandr --display :N ARGS…` for changes the other methods do not offer. To resize
    /// the second monitor, add the mode first: `["--addmode", "DUMMY1", "1920x1080"]`, then
    /// `["--output", "DUMMY1", "--mode", "1920x1080"]`; until something probes the outputs
    /// (a plain `xrandr` query does), `DUMMY1` knows only the modes added to it.
    pub fn xrandr(&self, args: &[&str]) -> io::Result<()> {
        let output = Command::new("xrandr")
            .arg("--display")
            .arg(self.display())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot run xrandr (is x11-xserver-utils installed?): {e}"))
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "`xrandr --display {} {}` failed with {}: {}",
                self.display(),
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    fn start_error(&self, what: &str) -> io::Error {
        let dir = self.dir.path();
        io::Error::other(format!(
            "{what}\n--- {} (end) ---\n{}\n--- {} (end) ---\n{}",
            dir.join("xorg.out").display(),
            tail(&dir.join("xorg.out")),
            dir.join("xorg.log").display(),
            tail(&dir.join("xorg.log")),
        ))
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            self.remove_stale_lock();
            return;
        };
        if let Some(pid) = Pid::from_raw(child.id() as i32) {
            // SIGTERM lets Xorg remove its lock file and socket.
            let _ = kill_process(pid, Signal::TERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        self.remove_stale_lock();
    }

    /// Removes the lock file and socket a killed server of ours left behind. Xorg itself would
    /// take over a stale lock, but [`DummyDisplay::start`] skips numbers with a lock file.
    fn remove_stale_lock(&self) {
        if self.last_pid.is_some() && lock_owner(self.number) == self.last_pid {
            let _ = fs::remove_file(lock_path(self.number));
            let _ = fs::remove_file(format!("/tmp/.X11-unix/X{}", self.number));
        }
    }
}

impl Drop for DummyDisplay {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Spawned {
    Ready,
    /// Another server holds the display number's lock or socket.
    NumberTaken,
}

/// A per-process starting point, so parallel test processes try different numbers first.
fn first_candidate(span: u32) -> u32 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let seed = u64::from(std::process::id()) * 7919 + u64::from(nanos) + NEXT.fetch_add(13, Ordering::Relaxed);
    (seed % u64::from(span)) as u32
}

fn lock_path(number: u32) -> String {
    format!("/tmp/.X{number}-lock")
}

/// The pid written in `/tmp/.X{n}-lock`, if the file exists and holds one.
fn lock_owner(number: u32) -> Option<u32> {
    fs::read_to_string(lock_path(number)).ok()?.trim().parse().ok()
}

/// Whether Xorg's output says the display number belongs to someone else.
fn number_taken(output: &str) -> bool {
    ["Server is already active for display", "Cannot establish any listening sockets", "Could not create lock file"]
        .iter()
        .any(|m| output.contains(m))
}

fn tail(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read: {e})"),
    }
}

fn connect(display: &str) -> io::Result<(RustConnection, usize)> {
    x11rb::connect(Some(display)).map_err(|e| {
        io::Error::new(io::ErrorKind::ConnectionRefused, format!("cannot connect to X display {display}: {e}"))
    })
}

fn x_error(display: &str, request: &str, e: impl fmt::Display) -> io::Error {
    io::Error::other(format!("X display {display}: {request} failed: {e}"))
}

/// A solid-colour override-redirect window, on its own X connection. Dropping it closes the
/// connection, which destroys the window. Safe to keep after the server died.
#[derive(Debug)]
pub struct Patch {
    display: String,
    conn: RustConnection,
    window: Window,
    rect: Rect,
}

impl Patch {
    fn create(display: &str, rect: Rect, rgb: u32) -> io::Result<Patch> {
        let (conn, screen) = connect(display)?;
        let screen = &conn.setup().roots[screen];
        let (root, depth, visual) = (screen.root, screen.root_depth, screen.root_visual);
        let err = |e: &dyn fmt::Display| x_error(display, "CreateWindow", e);
        let window = conn.generate_id().map_err(|e| err(&e))?;
        // Override-redirect: placed exactly where asked, even if a window manager runs.
        let aux = CreateWindowAux::new().background_pixel(rgb).override_redirect(1);
        conn.create_window(
            depth,
            window,
            root,
            rect.x,
            rect.y,
            rect.width,
            rect.height,
            0,
            WindowClass::INPUT_OUTPUT,
            visual,
            &aux,
        )
        .map_err(|e| err(&e))?;
        conn.map_window(window).map_err(|e| err(&e))?;
        let patch = Patch { display: display.to_owned(), conn, window, rect };
        patch.sync()?;
        Ok(patch)
    }

    /// The rectangle the patch covers.
    pub fn rect(&self) -> Rect {
        self.rect
    }

    /// Repaints the patch in `rgb` (0xRRGGBB) and returns once the server has drawn it.
    pub fn set_colour(&self, rgb: u32) -> io::Result<()> {
        let err = |e: &dyn fmt::Display| x_error(&self.display, "ChangeWindowAttributes", e);
        let aux = x11rb::protocol::xproto::ChangeWindowAttributesAux::new().background_pixel(rgb);
        self.conn.change_window_attributes(self.window, &aux).map_err(|e| err(&e))?;
        self.conn.clear_area(false, self.window, 0, 0, 0, 0).map_err(|e| err(&e))?;
        self.sync()
    }

    /// Moves the patch to `rect` and raises it above other windows.
    pub fn move_to(&mut self, rect: Rect) -> io::Result<()> {
        let aux = ConfigureWindowAux::new()
            .x(i32::from(rect.x))
            .y(i32::from(rect.y))
            .width(u32::from(rect.width))
            .height(u32::from(rect.height))
            .stack_mode(StackMode::ABOVE);
        self.conn.configure_window(self.window, &aux).map_err(|e| x_error(&self.display, "ConfigureWindow", e))?;
        self.rect = rect;
        self.sync()
    }

    /// A round trip: every request sent before it has been executed, and any X error it caused
    /// is reported here rather than lost.
    fn sync(&self) -> io::Result<()> {
        let err = |e: &dyn fmt::Display| x_error(&self.display, "GetInputFocus", e);
        self.conn.get_input_focus().map_err(|e| err(&e))?.reply().map_err(|e| err(&e))?;
        while let Some(event) = self.conn.poll_for_event().map_err(|e| err(&e))? {
            if let x11rb::protocol::Event::Error(e) = event {
                return Err(x_error(&self.display, "drawing", format!("{e:?}")));
            }
        }
        Ok(())
    }
}

/// Colours an [`Animation`] cycles through.
const ANIMATION_COLOURS: [u32; 6] = [0xff0000, 0x00ff00, 0x0000ff, 0xffff00, 0x00ffff, 0xff00ff];
/// How often an [`Animation`] changes colour.
const ANIMATION_INTERVAL: Duration = Duration::from_millis(100);

/// A [`Patch`] repainted in the next colour every [`ANIMATION_INTERVAL`] by a thread. Dropping
/// it stops the thread. The thread ends by itself if the X server goes away.
#[derive(Debug)]
pub struct Animation {
    stop: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Animation {
    fn start(patch: Patch) -> io::Result<Animation> {
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(AtomicU64::new(0));
        let thread = thread::Builder::new().name("ds-tests-animation".into()).spawn({
            let (stop, frames) = (stop.clone(), frames.clone());
            move || {
                for colour in ANIMATION_COLOURS.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    patch.set_colour(*colour)?;
                    frames.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(ANIMATION_INTERVAL);
                }
                Ok(())
            }
        })?;
        Ok(Animation { stop, frames, thread: Some(thread) })
    }

    /// How many colours have been drawn so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Stops the animation and returns the error that ended it early, if one did (such as the
    /// X server going away).
    pub fn stop(mut self) -> io::Result<()> {
        self.join()
    }

    fn join(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the animation thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Animation {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_servers_in_parallel_show_what_is_painted_on_each_monitor() {
        let (a, b) = thread::scope(|s| {
            let a = s.spawn(DummyDisplay::start);
            let b = s.spawn(DummyDisplay::start);
            (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
        });
        assert_ne!(a.display(), b.display());

        let left = a.paint(FIRST_MONITOR, 0x112233).unwrap();
        let right = a.paint(SECOND_MONITOR, 0xaabbcc).unwrap();
        let other = b.paint(SECOND_MONITOR, 0x445566).unwrap();
        assert_eq!(a.pixel(10, 10).unwrap(), 0x112233);
        assert_eq!(a.pixel(1920 + 10, 10).unwrap(), 0xaabbcc);
        assert_eq!(b.pixel(1920 + 10, 10).unwrap(), 0x445566);

        right.set_colour(0x00ff00).unwrap();
        assert_eq!(a.pixel(1920 + 10, 10).unwrap(), 0x00ff00);
        drop((left, right, other));
    }

    #[test]
    fn animation_changes_pixels_and_stops_on_drop() {
        let display = DummyDisplay::start().unwrap();
        let rect = SECOND_MONITOR.centred(200, 100);
        let animation = display.animate(rect).unwrap();
        let (x, y) = (rect.x + 10, rect.y + 10);
        let mut seen = std::collections::HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.len() < 3 && Instant::now() < deadline {
            seen.insert(display.pixel(x, y).unwrap());
            thread::sleep(Duration::from_millis(30));
        }
        assert!(seen.len() >= 3, "saw only colours {seen:x?} in 5 s");
        animation.stop().unwrap();
        let frozen = display.pixel(x, y).unwrap();
        thread::sleep(ANIMATION_INTERVAL * 3);
        assert_eq!(display.pixel(x, y).unwrap(), frozen, "the colour changed after stop");
    }

    #[test]
    fn second_monitor_off_shrinks_the_screen_and_restart_brings_it_back() {
        let mut display = DummyDisplay::start().unwrap();
        display.second_monitor_off().unwrap();
        let (conn, screen) = connect(&display.display()).unwrap();
        let root = conn.setup().roots[screen].root;
        let count = || conn.randr_get_monitors(root, true).unwrap().reply().unwrap().monitors.len();
        assert_eq!(count(), 1);
        display.second_monitor_on().unwrap();
        assert_eq!(count(), 2);

        display.kill_server().unwrap();
        assert!(!display.is_running());
        assert!(connect(&display.display()).is_err(), "a killed server still answers");
        display.restart_server().unwrap();
        assert!(display.is_running());
        let (conn, screen) = connect(&display.display()).unwrap();
        let root = conn.setup().roots[screen].root;
        assert_eq!(conn.randr_get_monitors(root, true).unwrap().reply().unwrap().monitors.len(), 2);
    }

    #[test]
    fn drop_stops_the_server_and_frees_the_display_number() {
        let display = DummyDisplay::start().unwrap();
        let number = display.number;
        drop(display);
        assert!(!Path::new(&lock_path(number)).exists(), "the lock file outlived the server");
    }

    #[test]
    fn drop_after_kill_removes_the_stale_lock() {
        let mut display = DummyDisplay::start().unwrap();
        let number = display.number;
        display.kill_server().unwrap();
        assert!(Path::new(&lock_path(number)).exists(), "a killed Xorg leaves its lock, like a crash");
        drop(display);
        assert!(!Path::new(&lock_path(number)).exists(), "the stale lock outlived the display");
        assert!(!Path::new(&format!("/tmp/.X11-unix/X{number}")).exists(), "the stale socket outlived the display");
    }
}
