//! Replacing a file so that readers and crashes only ever see the old or the new content,
//! never half of it: write a temporary file beside it, flush it to disk, rename it over the
//! old one, then flush the directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Atomically replaces `path` with `contents`, keeping the old file's permissions.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(contents))
}

/// Atomically replaces `path` with what `write` writes. If `write` fails the old file stays
/// as it was and the temporary file is removed. The new file has the old one's permissions
/// and owner; a file that did not exist gets what creating it plainly would (0666 less the
/// umask: a service's `UMask=` decides who else may read it, e.g. the watchdog's alert
/// history, which the dashboard reads through their shared group), never the temporary
/// file's own 0600. `write` may set other permissions (a secret's 0600).
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let old = fs::metadata(path);
    let prefix = format!(".{}.", name.to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    if old.is_err() {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    if let Ok(meta) = old {
        tmp.as_file().set_permissions(meta.permissions())?;
        keep_owner(tmp.as_file(), &meta);
    }
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// Gives `file` the owner and group of `old` (the file it replaces), so that root editing a
/// service's file (`set-password`, `new-token`, a camera list) leaves it readable by the
/// service. Only root may give a file away; anyone else keeps their own (and can only have
/// replaced a file in a directory they may write).
fn keep_owner(file: &File, old: &fs::Metadata) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(new) = file.metadata() else { return };
    if (new.uid(), new.gid()) != (old.uid(), old.gid())
        && let Err(e) = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()))
        && e.kind() != io::ErrorKind::PermissionDenied
    {
        tracing::debug!(error = %e, "the replaced file's owner could not be kept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Root replacing a file that belongs to a service leaves it to the service. Needs root
    /// (as the test command runs).
    #[test]
    fn root_replacing_a_file_keeps_its_owner() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web-auth.json");
        fs::write(&p, "old").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().uid(), 0, "this test needs root, as the test command runs");
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        write_atomic(&p, b"new").unwrap();
        let meta = fs::metadata(&p).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
    }

    #[test]
    fn replaces_content_and_keeps_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cameras.yaml");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
    }

    /// A new file is as open as a plainly created one (the umask decides), not 0600.
    #[test]
    fn a_new_file_gets_the_umasks_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, "x").unwrap();
        let p = dir.path().join("alert-history.json");
        write_atomic(&p, b"new").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), mode(&plain));
        assert_ne!(mode(&p), 0o600, "the test's umask leaves a plain file more open than 0600");
    }

    #[test]
    fn a_write_that_fails_half_way_leaves_the_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cameras.yaml");
        fs::write(&p, "heartbeat_seconds: 15\n").unwrap();
        let err = write_atomic_with(&p, |f| {
            f.write_all(b"heartbeat_sec")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read_to_string(&p).unwrap(), "heartbeat_seconds: 15\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
    }
}
