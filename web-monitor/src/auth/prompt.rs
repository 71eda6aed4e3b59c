//! Reading a new admin password for `desktop-streamer-web set-password`.
//!
//! On a terminal the operator is asked twice, with echo off, so the password neither shows on
//! the screen nor lands in the terminal's scrollback, and a typo cannot lock them out. From a
//! pipe (`echo … | set-password`, the installer) one line is read and nothing is asked.

use std::io::{self, BufRead, IsTerminal as _, Write as _};
use std::os::fd::AsFd;

use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};

/// Why no password was read.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cannot read the password (stdin, or the prompt on stderr): {0}")]
    Io(#[from] io::Error),
    #[error("cannot turn off the terminal's echo for the password: {0}")]
    Echo(rustix::io::Errno),
    #[error("stdin ended before a password was given")]
    Ended,
    #[error("the two passwords differ; nothing was changed")]
    Mismatch,
}

/// The new password: asked twice without echo on a terminal, else the first line of stdin
/// (without its line ending).
pub fn read_new_password() -> Result<String, PromptError> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return read_line(&mut stdin.lock());
    }
    // Echo goes off before the first prompt shows, so nothing typed after it is ever echoed.
    let _echo = EchoOff::new(stdin.as_fd())?;
    let first = ask("New admin password: ")?;
    let second = ask("Repeat it: ")?;
    if first != second {
        return Err(PromptError::Mismatch);
    }
    Ok(first)
}

/// One line, without its `\n` or `\r\n`; an empty input (not an empty line) is an error.
fn read_line(input: &mut impl BufRead) -> Result<String, PromptError> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Err(PromptError::Ended);
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Prints `prompt` on stderr and reads a line from stdin.
fn ask(prompt: &str) -> Result<String, PromptError> {
    let mut stderr = io::stderr();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    let line = read_line(&mut io::stdin().lock());
    // The Enter key was not echoed either.
    writeln!(stderr)?;
    line
}

/// Turns the terminal's echo off while it lives, and back to what it was when dropped.
struct EchoOff<Fd: AsFd> {
    fd: Fd,
    saved: Termios,
}

impl<Fd: AsFd> EchoOff<Fd> {
    fn new(fd: Fd) -> Result<Self, PromptError> {
        let saved = tcgetattr(&fd).map_err(PromptError::Echo)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        // `Now`, not `Flush`: what was typed ahead is kept, not thrown away.
        tcsetattr(&fd, OptionalActions::Now, &quiet).map_err(PromptError::Echo)?;
        Ok(Self { fd, saved })
    }
}

impl<Fd: AsFd> Drop for EchoOff<Fd> {
    fn drop(&mut self) {
        let _ = tcsetattr(&self.fd, OptionalActions::Now, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piped_line_is_taken_without_its_line_ending() {
        assert_eq!(read_line(&mut &b"correct horse battery\r\nnext\n"[..]).unwrap(), "correct horse battery");
        assert_eq!(read_line(&mut &b"no newline at the end"[..]).unwrap(), "no newline at the end");
    }

    #[test]
    fn an_empty_input_is_refused_and_says_so() {
        let error = read_line(&mut &b""[..]).unwrap_err();
        assert_eq!(error.to_string(), "stdin ended before a password was given");
    }
}
