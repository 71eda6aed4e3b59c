//! The camera list as the service runs it: `cameras.yaml` loaded, watched for hand edits,
//! and rewritten by the editor.
//!
//! The list that runs is always the last valid one. A hand edit that does not load is
//! refused (logged, and shown on the page with its reasons) and the previous list keeps
//! running; the editor then refuses to write over the broken file, so the operator's edit is
//! never lost either.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ds_config::{CamerasConfig, CamerasDocument, Diagnostic, Problems};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, watch};

/// How often the file is checked for hand edits.
pub const FILE_POLL: Duration = Duration::from_secs(2);

/// What identifies one version of the file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino() })
}

/// The file on disk could not be used; the previous list is still running.
#[derive(Clone, Debug, Serialize)]
pub struct FileProblem {
    /// Every problem, as `file:line:col: key = value: what is allowed` (secrets masked).
    pub messages: Vec<String>,
    pub noticed_at: jiff::Timestamp,
}

/// Why an edit was not made. The file and the running list are unchanged.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The edited list would not be valid.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<String>),
    /// The file on disk was edited by hand and does not load; writing now would lose that edit.
    #[error(
        "{} was edited by hand and has problems ({}); fix the file first, the editor will not overwrite it",
        .path.display(), .messages.join("; ")
    )]
    FileBroken { path: PathBuf, messages: Vec<String> },
    #[error("{what}")]
    Rejected { what: String },
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

#[derive(Debug)]
struct Inner {
    doc: CamerasDocument,
    seen: Option<Stamp>,
    problem: Option<FileProblem>,
}

/// The camera list: the last valid version of `cameras.yaml`, published to the prober.
#[derive(Debug)]
pub struct Fleet {
    path: PathBuf,
    inner: Mutex<Inner>,
    list: watch::Sender<Arc<CamerasConfig>>,
}

fn messages(problems: &Problems) -> Vec<String> {
    problems.errors().map(ToString::to_string).collect()
}

impl Fleet {
    /// Loads the file. A missing file is an empty list (the editor will create it); a file
    /// that does not load starts with an empty list and the problem on record.
    pub fn open(path: &Path) -> Fleet {
        let seen = stamp(path);
        let (doc, problem) = match seen {
            None => {
                tracing::warn!(file = %path.display(), "no camera list yet; add cameras on the dashboard or in the file");
                (CamerasDocument::empty(path), None)
            }
            Some(_) => match load(path) {
                Ok(doc) => (doc, None),
                Err(messages) => {
                    for m in &messages {
                        tracing::error!(file = %path.display(), "camera list refused: {m}");
                    }
                    (CamerasDocument::empty(path), Some(FileProblem { messages, noticed_at: jiff::Timestamp::now() }))
                }
            },
        };
        let (list, _) = watch::channel(Arc::new(doc.config().clone()));
        Fleet { path: path.to_owned(), inner: Mutex::new(Inner { doc, seen, problem }), list }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The running list; changes are announced to every receiver.
    pub fn subscribe(&self) -> watch::Receiver<Arc<CamerasConfig>> {
        self.list.subscribe()
    }

    pub fn current(&self) -> Arc<CamerasConfig> {
        self.list.borrow().clone()
    }

    /// Why the file on disk is not the running list, if it is not.
    pub async fn problem(&self) -> Option<FileProblem> {
        self.inner.lock().await.problem.clone()
    }

    /// Picks up a hand edit: reloads when the file changed since it was last read or written.
    pub async fn reload_if_changed(&self) {
        let mut inner = self.inner.lock().await;
        self.refresh(&mut inner);
    }

    fn refresh(&self, inner: &mut Inner) {
        let now = stamp(&self.path);
        if now == inner.seen {
            return;
        }
        inner.seen = now;
        if now.is_none() {
            // Deleted by hand: keep running the list we have; the editor will write it back.
            tracing::warn!(file = %self.path.display(), "camera list removed; keeping the running list");
            return;
        }
        match load(&self.path) {
            Ok(doc) => {
                tracing::info!(file = %self.path.display(), cameras = doc.config().streams.len(), "camera list reloaded");
                inner.doc = doc;
                inner.problem = None;
                self.publish(inner);
            }
            Err(messages) => {
                for m in &messages {
                    tracing::error!(file = %self.path.display(), "camera list edit refused, the previous list keeps running: {m}");
                }
                inner.problem = Some(FileProblem { messages, noticed_at: jiff::Timestamp::now() });
            }
        }
    }

    fn publish(&self, inner: &Inner) {
        let config = Arc::new(inner.doc.config().clone());
        self.list.send_if_modified(|current| {
            let changed = **current != *config;
            if changed {
                *current = config;
            }
            changed
        });
    }

    /// Changes the file: `edit` gets the raw tree (keys this version does not know included)
    /// and may refuse with a message. The result must be valid; then it is written atomically
    /// and runs. Returns the new list.
    pub async fn edit(
        &self,
        edit: impl FnOnce(&mut Map<String, Value>, &CamerasConfig) -> Result<(), String>,
    ) -> Result<Arc<CamerasConfig>, EditError> {
        let mut inner = self.inner.lock().await;
        self.refresh(&mut inner);
        if let Some(problem) = &inner.problem {
            return Err(EditError::FileBroken { path: self.path.clone(), messages: problem.messages.clone() });
        }
        let mut doc = inner.doc.clone();
        let before = doc.config().clone();
        let mut refused = None;
        // The client changed the list, not the file: no server path in the answer.
        doc.edit(|map| refused = edit(map, &before).err())
            .map_err(|p| EditError::Invalid(p.errors().map(Diagnostic::without_file).collect()))?;
        if let Some(what) = refused {
            return Err(EditError::Rejected { what });
        }
        let to_write = doc.clone();
        tokio::task::spawn_blocking(move || to_write.save())
            .await
            .map_err(|e| EditError::Write { path: self.path.clone(), source: std::io::Error::other(e) })?
            .map_err(|source| EditError::Write { path: self.path.clone(), source })?;
        inner.seen = stamp(&self.path);
        inner.doc = doc;
        self.publish(&inner);
        Ok(self.current())
    }

    /// Checks the file every [`FILE_POLL`] until `stop`.
    pub async fn watch(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(FILE_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.reload_if_changed().await,
            }
        }
    }
}

fn load(path: &Path) -> Result<CamerasDocument, Vec<String>> {
    match CamerasDocument::load(path) {
        Ok((doc, warnings)) => {
            for w in warnings {
                tracing::warn!(file = %path.display(), "{w}");
            }
            Ok(doc)
        }
        Err(problems) => Err(messages(&problems)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "heartbeat_seconds: 15\ntimezone: Asia/Kolkata\nlegacy_key: kept\nstreams:\n- name: Gate\n  url: rtsp://u:p@127.0.0.1:1/s\n- name: Lab\n  url: http://127.0.0.1:2/\n";

    #[tokio::test]
    async fn hand_edits_run_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cameras.yaml");
        std::fs::write(&path, TWO).unwrap();
        let fleet = Fleet::open(&path);
        let mut rx = fleet.subscribe();
        assert_eq!(fleet.current().streams.len(), 2);

        std::fs::write(&path, TWO.replace("- name: Lab\n  url: http://127.0.0.1:2/\n", "")).unwrap();
        fleet.reload_if_changed().await;
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().streams.len(), 1);

        std::fs::write(&path, "heartbeat_seconds: 1\nstreams:\n- name: X\n  url: ftp://a:secret@h/\n").unwrap();
        fleet.reload_if_changed().await;
        assert!(!rx.has_changed().unwrap(), "a bad edit must not replace the running list");
        assert_eq!(fleet.current().streams.len(), 1);
        let problem = fleet.problem().await.expect("the problem is on record");
        assert_eq!(problem.messages.len(), 2, "{:?}", problem.messages);
        assert!(problem.messages.iter().all(|m| !m.contains("secret")), "{:?}", problem.messages);

        // The editor does not write over the operator's broken edit.
        let e = fleet.edit(|_, _| Ok(())).await.unwrap_err();
        assert!(matches!(e, EditError::FileBroken { .. }), "{e}");
        assert!(std::fs::read_to_string(&path).unwrap().contains("ftp://a:secret@h/"));
    }

    #[tokio::test]
    async fn edits_keep_unknown_keys_and_missing_files_start_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cameras.yaml");
        let fleet = Fleet::open(&path);
        assert!(fleet.current().streams.is_empty());
        assert!(fleet.problem().await.is_none());
        std::fs::write(&path, TWO).unwrap();
        fleet.reload_if_changed().await;
        assert_eq!(fleet.current().streams.len(), 2);

        let list = fleet
            .edit(|map, _| {
                map.insert("heartbeat_seconds".into(), 20.into());
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(list.heartbeat_seconds, 20);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("legacy_key: kept"), "{text}");
        assert!(text.contains("heartbeat_seconds: 20"), "{text}");

        let e = fleet
            .edit(|map, _| {
                map.insert("heartbeat_seconds".into(), 2.into());
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("heartbeat_seconds = 2: must be 5..=86400"), "no file path: {e}");
        assert!(std::fs::read_to_string(&path).unwrap().contains("heartbeat_seconds: 20"));
    }
}
