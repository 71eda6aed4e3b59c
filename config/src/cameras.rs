//! `cameras.yaml`: the camera fleet, in StreamPulse's format (`heartbeat_seconds`,
//! `timezone`, `streams: [{name, url}]`), plus an editable form of the file that the
//! dashboard rewrites without losing keys it does not know.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atomic::write_atomic;
use crate::diag::{Diagnostic, Problems};
use crate::document::Document;
use crate::load::{ConfigFile, Format, Loaded, load_document};
use crate::redact::mask_url_credentials;
use crate::validate::Validator;
use crate::yaml;

pub const DEFAULT_HEARTBEAT_S: u32 = 30;
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// URL schemes a camera may use.
pub const CAMERA_SCHEMES: &[&str] = &["rtsp", "rtsps", "http", "https"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CamerasConfig {
    /// Seconds between heartbeats of each camera. Default 30; 5..=86400.
    pub heartbeat_seconds: u32,
    /// IANA time zone in which times are shown (`Asia/Kolkata`). Default UTC.
    pub timezone: String,
    /// The cameras. Default none.
    pub streams: Vec<Camera>,
}

impl Default for CamerasConfig {
    fn default() -> Self {
        CamerasConfig {
            heartbeat_seconds: DEFAULT_HEARTBEAT_S,
            timezone: DEFAULT_TIMEZONE.to_owned(),
            streams: Vec::new(),
        }
    }
}

/// One camera.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Camera {
    /// Stable identifier that keeps a camera's history across renames; the editor assigns
    /// one. Default none (derived from the name).
    pub id: Option<String>,
    /// Name shown to people; unique. Required.
    pub name: String,
    /// `rtsp://`, `rtsps://`, `http://` or `https://` URL, credentials allowed
    /// (`rtsp://user:pass@host/…`); they are never shown. Required.
    pub url: String,
    /// Overrides the file's `heartbeat_seconds` for this camera. Default none.
    pub heartbeat_seconds: Option<u32>,
}

impl Camera {
    /// The URL as it may be shown: password replaced by `***`.
    pub fn masked_url(&self) -> String {
        mask_url_credentials(&self.url)
    }

    /// The key of this camera's history: its `id`, or one derived from its name (lower
    /// case, runs of other characters as `-`) until the editor writes an `id` down.
    pub fn stable_id(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => slug(&self.name),
        }
    }
}

/// `Gate Camera #1` → `gate-camera-1`: a name as an id that is safe in URLs and files.
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { "camera".to_owned() } else { out }
}

impl ConfigFile for CamerasConfig {
    const FILE_NAME: &'static str = "cameras.yaml";
    const FORMAT: Format = Format::Yaml;

    fn key_tree() -> Value {
        let example = CamerasConfig { streams: vec![Camera::default()], ..CamerasConfig::default() };
        serde_json::to_value(example).unwrap_or(Value::Null)
    }

    fn validate(&self, v: &mut Validator<'_>) {
        v.range("heartbeat_seconds", self.heartbeat_seconds, 5..=86_400);
        if jiff::tz::TimeZone::get(&self.timezone).is_err() {
            v.error("timezone", "is not a known IANA time zone; use a name such as UTC, Europe/Berlin or Asia/Kolkata");
        }
        let mut names = std::collections::HashMap::new();
        let mut ids = std::collections::HashMap::new();
        for (i, cam) in self.streams.iter().enumerate() {
            let at = |key: &str| format!("streams[{i}].{key}");
            let mut name_reported = true;
            if cam.name.trim().is_empty() {
                v.error(&at("name"), "every camera needs a name");
            } else if let Some(first) = names.insert(cam.name.trim().to_lowercase(), i) {
                v.error(&at("name"), format!("is already the name of streams[{first}]; names must be unique"));
            } else {
                name_reported = false;
            }
            if let Some(id) = &cam.id
                && (id.is_empty() || id.chars().any(|c| !(c.is_alphanumeric() || c == '-' || c == '_')))
            {
                v.error(&at("id"), "must be letters, digits, `-` or `_` (it appears in URLs)");
            }
            if let Some(first) = ids.insert(cam.stable_id(), i)
                && !(cam.id.is_none() && name_reported)
            {
                let key = if cam.id.is_some() { "id" } else { "name" };
                v.error(
                    &at(key),
                    format!("gives the id `{}` that streams[{first}] already has; ids must be unique (set `id` to tell them apart)", cam.stable_id()),
                );
            }
            if let Err(why) = check_camera_url(&cam.url) {
                v.error(&at("url"), why);
            }
            if let Some(s) = cam.heartbeat_seconds {
                v.range(&at("heartbeat_seconds"), s, 5..=86_400);
            }
        }
    }
}

/// Checks a camera URL; the error says what is allowed (and never repeats a password).
pub fn check_camera_url(text: &str) -> Result<(), String> {
    let allowed = "expected rtsp://, rtsps://, http:// or https:// followed by a host, e.g. rtsp://user:pass@192.0.2.10:554/stream1";
    if text.trim().is_empty() {
        return Err(format!("every camera needs a url; {allowed}"));
    }
    match url::Url::parse(text) {
        Ok(u) if !CAMERA_SCHEMES.contains(&u.scheme()) => {
            Err(format!("scheme `{}` is not supported; {allowed}", u.scheme()))
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Err(format!("has no host; {allowed}")),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("is not a valid URL ({e}); {allowed}")),
    }
}

/// `cameras.yaml` as a file that can be edited and written back: the typed view for the
/// program, the raw tree so keys this version does not know survive a rewrite.
#[derive(Clone, Debug)]
pub struct CamerasDocument {
    path: PathBuf,
    raw: Value,
    config: CamerasConfig,
}

impl CamerasDocument {
    /// Loads the file; warnings come back beside the document.
    pub fn load(path: &Path) -> Result<(Self, Vec<Diagnostic>), Problems> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Problems::single(Diagnostic::file_error(path, None, format!("cannot read the file: {e}"))))?;
        let doc = yaml::parse(path, &text)?;
        let Loaded { config, warnings } = load_document::<CamerasConfig>(&doc)?;
        let raw = if doc.value.is_null() { Value::Object(Default::default()) } else { doc.value };
        Ok((CamerasDocument { path: path.to_owned(), raw, config }, warnings))
    }

    /// A document for a file that does not exist yet: no cameras, every default. Saving it
    /// creates the file.
    pub fn empty(path: &Path) -> Self {
        CamerasDocument {
            path: path.to_owned(),
            raw: Value::Object(Default::default()),
            config: CamerasConfig::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> &CamerasConfig {
        &self.config
    }

    /// Changes the raw tree with `edit`, then checks the result as a whole. The document
    /// changes only if the edited tree is valid; otherwise every problem is returned.
    pub fn edit(&mut self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Result<(), Problems> {
        let mut raw = self.raw.clone();
        if let Value::Object(map) = &mut raw {
            edit(map);
        }
        let Loaded { config, .. } = load_document::<CamerasConfig>(&Document::new(&self.path, raw.clone()))?;
        self.raw = raw;
        self.config = config;
        Ok(())
    }

    /// The file's text as it would be written.
    pub fn to_yaml(&self) -> String {
        yaml::to_string(&self.raw)
    }

    /// Writes the file atomically (temporary file + rename).
    pub fn save(&self) -> std::io::Result<()> {
        write_atomic(&self.path, self.to_yaml().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_urls() {
        assert!(check_camera_url("rtsp://user:pass@192.0.2.10:554/stream1").is_ok());
        assert!(check_camera_url("https://cam.example/snap.jpg").is_ok());
        let e = check_camera_url("ftp://user:secret@h/x").unwrap_err();
        assert!(e.contains("scheme `ftp` is not supported"), "{e}");
        assert!(!e.contains("secret"));
        assert!(check_camera_url("rtsp://").unwrap_err().contains("host"));
        assert!(check_camera_url("").unwrap_err().contains("needs a url"));
    }

    #[test]
    fn stable_ids() {
        assert_eq!(slug("Gate Camera #1"), "gate-camera-1");
        assert_eq!(slug("  --  "), "camera");
        assert_eq!(slug("Café Ünter"), "café-ünter");
        let cam = Camera { name: "Lab Cam".into(), ..Camera::default() };
        assert_eq!(cam.stable_id(), "lab-cam");
        let cam = Camera { id: Some("c7".into()), ..cam };
        assert_eq!(cam.stable_id(), "c7");
    }
}
