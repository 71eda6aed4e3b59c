//! The camera list as the service runs it: `cameras.yaml` loaded, watched for hand edits,
//! and rewritten by the editor.
//!
//! The list that runs is always the last valid one. A hand edit that does not load is
//! refused (logged, and shown on the page with its reasons) and the previous list keeps
//! running; the editor then refuses to write over the broken file, so the operator's edit is
//! never lost either.
//!
//! A camera's history is keyed by its stable id: its `id`, or, while it has none, its name as
//! a slug. Renaming such a camera by hand in the file would change its id and leave its
//! history behind, so a hand edit is matched against the running list ([`renamed_by_hand`]):
//! a camera without an `id` that appears under a new name, with the very URL of a camera that
//! disappeared, is that camera renamed. It keeps the old id, which is written into the file
//! (as the editor does for its own renames) so that a restart keeps it too. A rename made
//! while the service was not running is not recognised (the database keeps no URLs), and
//! neither is one that changes the URL at the same time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ds_config::{CamerasConfig, CamerasDocument, Diagnostic, Problems};
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

pub use ds_wire::cameras::FileProblem;

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
    /// Loads the file. A missing file is an empty list (the editor will create it). A file
    /// that does not load puts its problem on record and starts with the cameras that can
    /// run (all but those with errors, [`CamerasDocument::without_broken_cameras`]), or with
    /// none when the problem is the whole file's: one camera's typo must not stop the
    /// dashboard or the watch on the other cameras.
    pub fn open(path: &Path) -> Fleet {
        let seen = stamp(path);
        let (doc, problem) = match seen {
            None => {
                tracing::warn!(file = %path.display(), "no camera list yet; add cameras on the dashboard or in the file");
                (CamerasDocument::empty(path), None)
            }
            Some(_) => match load(path) {
                Ok(doc) => (doc, None),
                Err(problems) => {
                    let messages = messages(&problems);
                    for m in &messages {
                        tracing::error!(file = %path.display(), "camera list refused: {m}");
                    }
                    let doc = match CamerasDocument::without_broken_cameras(path, &problems) {
                        Some(doc) => {
                            tracing::warn!(file = %path.display(), cameras = doc.config().streams.len(), "watching the cameras without errors until the file is fixed");
                            doc
                        }
                        None => CamerasDocument::empty(path),
                    };
                    (doc, Some(FileProblem { messages, noticed_at: jiff::Timestamp::now() }))
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
            Ok(mut doc) => {
                tracing::info!(file = %self.path.display(), cameras = doc.config().streams.len(), "camera list reloaded");
                self.keep_renamed_ids(inner.doc.config(), &mut doc);
                inner.seen = stamp(&self.path);
                inner.doc = doc;
                inner.problem = None;
                self.publish(inner);
            }
            Err(problems) => {
                let messages = messages(&problems);
                for m in &messages {
                    tracing::error!(file = %self.path.display(), "camera list edit refused, the previous list keeps running: {m}");
                }
                inner.problem = Some(FileProblem { messages, noticed_at: jiff::Timestamp::now() });
            }
        }
    }

    /// Gives cameras renamed by hand their old ids ([`renamed_by_hand`]) and writes the ids
    /// into the file. If the file cannot be written, the ids still hold until a restart.
    fn keep_renamed_ids(&self, before: &CamerasConfig, doc: &mut CamerasDocument) {
        let renamed = renamed_by_hand(before, doc.config());
        if renamed.is_empty() {
            return;
        }
        let edited = doc.edit(|map| {
            if let Some(Value::Array(streams)) = map.get_mut("streams") {
                for (i, id) in &renamed {
                    if let Some(Value::Object(camera)) = streams.get_mut(*i) {
                        camera.insert("id".into(), Value::String(id.clone()));
                    }
                }
            }
        });
        if let Err(problems) = edited {
            // Cannot happen (the old ids left the list), but a list that runs beats a rename.
            tracing::warn!(file = %self.path.display(), problems = %problems, "cannot keep the ids of renamed cameras");
            return;
        }
        for (i, id) in &renamed {
            let name = &doc.config().streams[*i].name;
            tracing::info!(camera = %id, name = %name, "camera renamed by hand (same URL): it keeps its id and history");
        }
        if let Err(e) = doc.save() {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot write the kept ids into the camera list; they hold until a restart");
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

/// Cameras of `after` that are cameras of `before` renamed by hand, as (index in `after`,
/// the id to keep): a camera without an `id` whose derived id `before` did not have, with the
/// same URL (credentials included) as exactly one camera of `before` whose id `after` no
/// longer has, and no other such new camera with that URL. Anything less certain is left
/// alone: a new camera must never take over another camera's history.
pub fn renamed_by_hand(before: &CamerasConfig, after: &CamerasConfig) -> Vec<(usize, String)> {
    use std::collections::HashSet;
    let old_ids: HashSet<String> = before.streams.iter().map(|c| c.stable_id()).collect();
    let new_ids: HashSet<String> = after.streams.iter().map(|c| c.stable_id()).collect();
    let gone: Vec<_> = before.streams.iter().filter(|c| !new_ids.contains(&c.stable_id())).collect();
    let appeared: Vec<(usize, _)> =
        after.streams.iter().enumerate().filter(|(_, c)| c.id.is_none() && !old_ids.contains(&c.stable_id())).collect();
    appeared
        .iter()
        .filter_map(|(i, cam)| {
            let mut was = gone.iter().filter(|g| g.url == cam.url);
            let (Some(old), None) = (was.next(), was.next()) else { return None };
            let twins = appeared.iter().filter(|(_, c)| c.url == cam.url).count();
            (twins == 1).then(|| (*i, old.stable_id()))
        })
        .collect()
}

fn load(path: &Path) -> Result<CamerasDocument, Problems> {
    let (doc, warnings) = CamerasDocument::load(path)?;
    for w in warnings {
        tracing::warn!(file = %path.display(), "{w}");
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "heartbeat_seconds: 15\ntimezone: Asia/Kolkata\nlegacy_key: kept\nstreams:\n- name: Gate\n  url: rtsp://u:p@127.0.0.1:1/s\n- name: Lab\n  url: http://127.0.0.1:2/\n";

    /// A fleet on a file holding `text`, in a directory that lives as long as the result.
    fn fleet_on(text: &str) -> (tempfile::TempDir, PathBuf, Fleet) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cameras.yaml");
        std::fs::write(&path, text).unwrap();
        let fleet = Fleet::open(&path);
        (dir, path, fleet)
    }

    #[tokio::test]
    async fn hand_edits_run_and_bad_ones_are_refused() {
        let (_dir, path, fleet) = fleet_on(TWO);
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
    async fn a_camera_whose_url_does_not_parse_leaves_the_others_running() {
        let broken = TWO.replace("http://127.0.0.1:2/", "rtsp://admin:Zq#7@127.0.0.1:3/s");
        let (_dir, path, fleet) = fleet_on(&broken);
        let names: Vec<String> = fleet.current().streams.iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["Gate"], "the camera without errors runs");
        let problem = fleet.problem().await.expect("the broken camera is on record");
        assert!(
            problem.messages.iter().any(|m| m.contains("streams[1].url") && m.contains("`#` as %23")),
            "{:?}",
            problem.messages
        );
        assert!(problem.messages.iter().all(|m| !m.contains("Zq")), "{:?}", problem.messages);
        // The editor will not write the partial list over the file.
        assert!(matches!(fleet.edit(|_, _| Ok(())).await, Err(EditError::FileBroken { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
        // A problem of the whole list: nothing runs.
        let (_dir, _, fleet) = fleet_on(&broken.replace("heartbeat_seconds: 15", "heartbeat_seconds: 1"));
        assert!(fleet.current().streams.is_empty());
    }

    #[tokio::test]
    async fn a_camera_renamed_by_hand_keeps_its_id() {
        let (_dir, path, fleet) = fleet_on(TWO);
        let renamed = TWO.replace("- name: Gate\n", "- name: Front Gate   # moved to the front\n");
        std::fs::write(&path, &renamed).unwrap();
        fleet.reload_if_changed().await;
        let list = fleet.current();
        let ids: Vec<(String, &str)> = list.streams.iter().map(|c| (c.stable_id(), c.name.as_str())).collect();
        assert_eq!(ids, [("gate".to_owned(), "Front Gate"), ("lab".to_owned(), "Lab")]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("id: gate"), "the kept id is written down:\n{text}");
        assert!(text.contains("# moved to the front") && text.contains("legacy_key: kept"), "{text}");
        let (doc, _) = CamerasDocument::load(&path).unwrap();
        assert_eq!(doc.config().streams[0].stable_id(), "gate", "a restart reads the same id");
        // Writing the id is not a hand edit of its own.
        let seen = std::fs::metadata(&path).unwrap().modified().unwrap();
        fleet.reload_if_changed().await;
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), seen);
        assert!(fleet.problem().await.is_none());
    }

    #[test]
    fn only_a_certain_rename_keeps_an_id() {
        let cam =
            |name: &str, url: &str| ds_config::Camera { name: name.into(), url: url.into(), ..Default::default() };
        let list = |cams: Vec<ds_config::Camera>| CamerasConfig { streams: cams, ..CamerasConfig::default() };
        let before = list(vec![cam("Gate", "rtsp://u:p@h/1"), cam("Lab", "rtsp://h/2"), cam("Yard", "rtsp://h/2")]);
        // Renamed, same URL.
        let after =
            list(vec![cam("Front Gate", "rtsp://u:p@h/1"), cam("Lab", "rtsp://h/2"), cam("Yard", "rtsp://h/2")]);
        assert_eq!(renamed_by_hand(&before, &after), [(0, "gate".to_owned())]);
        // Renamed and moved to another URL: another camera as far as anyone can tell.
        let after =
            list(vec![cam("Front Gate", "rtsp://u:p@h/9"), cam("Lab", "rtsp://h/2"), cam("Yard", "rtsp://h/2")]);
        assert!(renamed_by_hand(&before, &after).is_empty());
        // The old camera is still there: the new one is a second camera on the same URL.
        let after = list(vec![cam("Gate", "rtsp://u:p@h/1"), cam("Gate 2", "rtsp://u:p@h/1")]);
        assert!(renamed_by_hand(&before, &after).is_empty());
        // Two cameras with one URL both renamed: which is which is unknown.
        let after = list(vec![cam("Gate", "rtsp://u:p@h/1"), cam("Lab 2", "rtsp://h/2"), cam("Yard 2", "rtsp://h/2")]);
        assert!(renamed_by_hand(&before, &after).is_empty());
        // Two new cameras for one that went.
        let after = list(vec![cam("A", "rtsp://u:p@h/1"), cam("B", "rtsp://u:p@h/1")]);
        assert!(renamed_by_hand(&before, &after).is_empty());
        // A camera with its own id keeps it anyway.
        let with_id = ds_config::Camera { id: Some("g7".into()), ..cam("Front Gate", "rtsp://u:p@h/1") };
        assert!(renamed_by_hand(&before, &list(vec![with_id])).is_empty());
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
