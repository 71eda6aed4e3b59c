//! What can go wrong with the store, said so that an operator can act on it: which file,
//! which schema version, which camera.

use std::path::PathBuf;

/// Errors of the heartbeat store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the directory {dir} for the camera database: {source}; create it or set a writable path")]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the camera database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the camera database {path} did not switch to WAL mode (it reports `{mode}`); is it on a network file system?"
    )]
    NotWal { path: PathBuf, mode: String },
    #[error(
        "the camera database {path} has schema version {found}, newer than this program knows ({supported}); \
         run a newer desktop-streamer-web or restore a backup of the database"
    )]
    SchemaTooNew { path: PathBuf, found: u32, supported: u32 },
    #[error("cannot upgrade the camera database {path} from schema version {from} to {to}: {source}")]
    Migration {
        path: PathBuf,
        from: u32,
        to: u32,
        #[source]
        source: rusqlite::Error,
    },
    #[error("camera database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the camera database holds a word it does not know: {0}")]
    Corrupt(#[from] ds_cameras::state::UnknownWord),
    #[error("no camera with the id `{0}` has ever been recorded")]
    UnknownCamera(String),
    #[error("`{0}` is not a known IANA time zone; use a name such as UTC, Europe/Berlin or Asia/Kolkata")]
    TimeZone(String),
    #[error("{what} must be {allowed}, not {got}")]
    Argument { what: &'static str, allowed: &'static str, got: String },
    #[error("cannot write the CSV export: {0}")]
    Write(#[from] std::io::Error),
    #[error("the heartbeat writer is far behind (is the disk slow or full?); the heartbeat was dropped")]
    Backlog,
    #[error("the heartbeat batch was not committed (it stays queued and is retried): {0}")]
    Commit(String),
    #[error("the heartbeat writer has stopped")]
    WriterStopped,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
