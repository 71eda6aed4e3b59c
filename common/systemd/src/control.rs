//! The fixed-list root helper for polkit older than 0.106 (Ubuntu 22.04, Linux Mint 21), which
//! cannot limit a grant to our units: there `install.sh` installs a socket,
//! [`SOCKET`], on which root starts, stops and restarts exactly the three desktop-streamer
//! units and signals the streamer, nothing else (`systemd/control/desktop-streamer-control`).
//! When systemd refuses the dashboard or the watchdog (polkit said no) and that socket exists,
//! the same request goes there. One line out (`VERB UNIT`), one line back: `job PATH` for a
//! queued job (waited for on the bus as any other), `ok` for a signal, `error: WHY`.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use zbus::zvariant::OwnedObjectPath;

/// Where the helper listens (installed only where polkit needs it).
pub const SOCKET: &str = "/run/desktop-streamer-control.sock";

/// How long one request to the helper may take (it answers once systemd queued the job).
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the helper did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A start, stop or restart was queued: systemd's job.
    Job(OwnedObjectPath),
    /// The signal was sent.
    Sent,
}

/// The helper's socket, when it is installed.
pub(crate) fn available() -> Option<&'static Path> {
    let path = Path::new(SOCKET);
    path.exists().then_some(path)
}

/// Asks the helper at `socket` to do `verb` (`start`, `stop`, `restart`, `usr1`, `usr2`) to
/// `unit`; why not, in the helper's words, when it did not.
pub(crate) async fn ask(socket: &Path, verb: &str, unit: &str) -> Result<Answer, String> {
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await?;
        stream.write_all(format!("{verb} {unit}\n").as_bytes()).await?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await?;
        std::io::Result::Ok(line)
    };
    let line = match tokio::time::timeout(TIMEOUT, exchange).await {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => return Err(format!("{}: {e}", socket.display())),
        Err(_) => return Err(format!("{} did not answer within {} s", socket.display(), TIMEOUT.as_secs())),
    };
    parse(line.trim_end())
}

fn parse(line: &str) -> Result<Answer, String> {
    if line == "ok" {
        return Ok(Answer::Sent);
    }
    if let Some(path) = line.strip_prefix("job ") {
        return OwnedObjectPath::try_from(path.to_owned())
            .map(Answer::Job)
            .map_err(|e| format!("the helper answered a job that is not an object path ({path}): {e}"));
    }
    Err(line.strip_prefix("error: ").map_or_else(|| format!("the helper answered: {line:?}"), str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_a_job_ok_or_the_helpers_reason() {
        let job = parse("job /org/freedesktop/systemd1/job/42").unwrap();
        assert_eq!(job, Answer::Job(OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/42").unwrap()));
        assert_eq!(parse("ok"), Ok(Answer::Sent));
        assert_eq!(parse("error: not a desktop-streamer unit"), Err("not a desktop-streamer unit".to_owned()));
        assert!(parse("").unwrap_err().contains("the helper answered"));
        assert!(parse("job not-a-path").is_err());
    }

    /// The shipped helper refuses every request outside its fixed lists before it calls
    /// anything (what it does for a listed one needs systemd as PID 1: the install test).
    #[test]
    fn the_shipped_helper_refuses_what_is_not_on_its_lists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd/control/desktop-streamer-control");
        for (request, why) in [
            ("restart ssh.service", "not a desktop-streamer unit"),
            ("restart desktop-streamer.service; reboot", "not a desktop-streamer unit"),
            ("enable desktop-streamer.service", "not a verb of ours"),
            ("kill desktop-streamer.service", "not a verb of ours"),
            ("usr1 desktop-streamer-web.service", "signals go to desktop-streamer.service only"),
            ("restart  desktop-streamer.service", "not a desktop-streamer unit"),
            ("", "a request is one line"),
        ] {
            let mut child = std::process::Command::new("sh")
                .arg(&script)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{request}\n").as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success() && text.starts_with("error: ") && text.contains(why), "{request:?}: {text}");
        }
    }
}
