//! Files the watchdog keeps in its state directory across restarts (the outbox's alerts, the
//! alert history). One that cannot be read is not deleted and not read again: it is set aside
//! under a new name for a person to look at.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::warn;

/// Renames `path` to `<path>.unreadable`, logging `reason` and `what` the file held.
pub(crate) fn set_aside(path: &Path, reason: &str, what: &str) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".unreadable");
    let aside = PathBuf::from(aside);
    match fs::rename(path, &aside) {
        Ok(()) => warn!(file = %path.display(), kept_as = %aside.display(), reason, "unreadable {what} set aside"),
        Err(e) => warn!(file = %path.display(), reason, error = %e, "unreadable {what} ignored"),
    }
}
