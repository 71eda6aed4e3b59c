//! Real log rotation: Debian's logrotate run by hand.

use std::path::Path;
use std::process::Command;

/// Runs `logrotate -f` (rotate now, whatever the rules say about time and size) on `conf`
/// with its own state file; panics with logrotate's stderr when it fails.
pub fn force(conf: &Path, state: &Path) {
    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(state)
        .arg(conf)
        .output()
        .expect("logrotate is not installed: apt-get install logrotate (tests/deps.sh installs it)");
    assert!(
        out.status.success(),
        "logrotate failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
