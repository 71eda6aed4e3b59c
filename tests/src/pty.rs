//! A pseudo-terminal, for tests that run a program the way an operator at a terminal does: its
//! stdin, stdout and stderr are a real tty (so `isatty` is true and echo can be turned off),
//! and the test reads everything the terminal would have shown.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::OFlags;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

/// A program running on its own terminal.
#[derive(Debug)]
pub struct Terminal {
    master: File,
    child: Child,
    /// Everything the program wrote (and the terminal echoed), in order.
    shown: Vec<u8>,
    /// How much of `shown` [`Self::expect`] has passed over.
    seen: usize,
}

impl Terminal {
    /// Starts `command` with a new terminal as its stdin, stdout and stderr.
    pub fn spawn(command: &mut Command) -> io::Result<Terminal> {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let path = std::ffi::OsStr::from_bytes(ptsname(&master, Vec::new())?.as_bytes()).to_owned();
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags((OFlags::NOCTTY | OFlags::CLOEXEC).bits() as i32)
            .open(&path)?;
        let child = command
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave))
            .spawn();
        // `command` keeps what it was given until it is told otherwise; then the child holds
        // the only open slave, and reads end once it (and what it started) exits.
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = child?;
        Ok(Terminal { master: File::from(master), child, shown: Vec::new(), seen: 0 })
    }

    /// Waits until the program has shown `text` (after what earlier calls waited for).
    pub fn expect(&mut self, text: &str, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = find(&self.shown[self.seen..], text.as_bytes()) {
                self.seen += at + text.len();
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_some(left)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the terminal never showed {text:?}; it shows:\n{}", self.screen()),
                ));
            }
        }
    }

    /// Types `text` (a `\n` is the Enter key).
    pub fn type_in(&mut self, text: &str) -> io::Result<()> {
        self.master.write_all(text.as_bytes())
    }

    /// Waits for the program to exit; its status and everything the terminal showed.
    pub fn finish(mut self, limit: Duration) -> io::Result<(ExitStatus, String)> {
        let deadline = Instant::now() + limit;
        while self.read_some(deadline.saturating_duration_since(Instant::now()))? {}
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status, self.screen()));
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("still running:\n{}", self.screen())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the terminal showed so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.shown).into_owned()
    }

    /// Reads what is there within `limit`; false once the program closed the terminal or
    /// nothing came in time.
    fn read_some(&mut self, limit: Duration) -> io::Result<bool> {
        let mut fds = [PollFd::new(&self.master, PollFlags::IN)];
        let timeout = rustix::event::Timespec::try_from(limit).map_err(io::Error::other)?;
        if poll(&mut fds, Some(&timeout))? == 0 {
            return Ok(false);
        }
        let mut buf = [0; 4096];
        match self.master.read(&mut buf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.shown.extend_from_slice(&buf[..n]);
                Ok(true)
            }
            // Linux answers EIO on the master once the last slave is closed.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
