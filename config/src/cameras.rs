//! `cameras.yaml`: the camera fleet, in StreamPulse's format (`heartbeat_seconds`,
//! `timezone`, `streams: [{name, url}]`), plus an editable form of the file that the
//! dashboard rewrites without losing keys it does not know.
//!
//! The probe settings (`timeout_seconds`, `retries`, `frozen_seconds`, `black_seconds`,
//! `max_packets_lost`, `max_concurrent_probes`, `verify_tls`, `picture_cpu_percent`) are
//! optional keys StreamPulse did not have; a StreamPulse file loads unchanged and gets the
//! named defaults below. All but `max_concurrent_probes` and `picture_cpu_percent` may be
//! overridden per camera.
//!
//! `verify_tls: false` exists because cameras served over `https://` nearly always carry a
//! self-signed certificate that no trust store knows: without it such a camera could never
//! be UP. It is per camera so one such camera does not lower the guard for the others.
//!
//! `rtsps://` is refused here rather than accepted and failing on every heartbeat: the
//! prober's RTSP client (retina) speaks no TLS.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atomic::write_atomic;
use crate::diag::{Diagnostic, Problems};
use crate::document::Document;
use crate::load::{ConfigFile, Format, Loaded, load_document};
use crate::redact::{PERCENT_ENCODE_HINT, mask_url};
use crate::validate::Validator;
use crate::yaml;

pub const DEFAULT_HEARTBEAT_S: u32 = 30;
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// Each step of a probe (connect and DESCRIBE, SETUP, PLAY, first keyframe, next frame; or
/// the HTTP request and its frames) may take this long.
pub const DEFAULT_PROBE_TIMEOUT_S: u32 = 10;
/// Failed heartbeats in a row that leave a camera PENDING before it is DOWN.
pub const DEFAULT_RETRIES: u32 = 2;
/// A picture unchanged for this long is DEGRADED/frozen.
pub const DEFAULT_FROZEN_S: u32 = 60;
/// A picture almost uniformly dark for this long is DEGRADED/black (a covered lens, a failed
/// IR illuminator at night, a camera sending black). A minute, like `frozen_seconds`: longer
/// than a camera takes to switch to night mode, short enough to hear of it the same night.
pub const DEFAULT_BLACK_S: u32 = 60;
/// More RTP packets lost in one probe than this is DEGRADED/packet_loss. A probe sees about a
/// second of video over TCP, where nothing is lost on the way: a loss is the camera's sender
/// dropping packets. One or two in a probe are a glitch (a smear until the next keyframe)
/// that a fleet of cameras shows somewhere every few minutes, and a limit of 0 made cameras
/// flap on them; a sender that drops more within one second of video drops steadily, and
/// viewers see it.
pub const DEFAULT_MAX_PACKETS_LOST: u32 = 2;
/// The former percent limit's default (accepted, not applied: see `max_packet_loss_percent`).
pub const DEFAULT_MAX_PACKET_LOSS_PERCENT: f64 = 5.0;
/// Probes running at the same time, over all cameras.
pub const DEFAULT_MAX_CONCURRENT_PROBES: u32 = 256;
/// An `https://` camera's certificate must be trusted by the system's trust store.
pub const DEFAULT_VERIFY_TLS: bool = true;
/// Share of one core, in percent, that decoding the probes' pictures may spend. A 640×360
/// keyframe and the frames after it, with its thumbnail, take about 3 ms of CPU, so 4 % is
/// about 13 decodes a second: every heartbeat of 200 cameras at a 15 s heartbeat. A larger
/// fleet gets its thumbnails (and its frozen and black verdicts) less often, never its
/// heartbeats late: the fleet benchmark's 1000 cameras about every 75 s, the prober itself
/// staying within 15 % of a core.
pub const DEFAULT_PICTURE_CPU_PERCENT: f64 = 4.0;
/// Allowed ranges of the settings above.
pub const HEARTBEAT_RANGE_S: std::ops::RangeInclusive<u32> = 5..=86_400;
pub const PROBE_TIMEOUT_RANGE_S: std::ops::RangeInclusive<u32> = 1..=120;
pub const RETRIES_RANGE: std::ops::RangeInclusive<u32> = 0..=100;
pub const FROZEN_RANGE_S: std::ops::RangeInclusive<u32> = 0..=86_400;
pub const BLACK_RANGE_S: std::ops::RangeInclusive<u32> = 0..=86_400;
pub const PACKET_LOSS_RANGE_PERCENT: std::ops::RangeInclusive<f64> = 0.0..=100.0;
pub const PACKETS_LOST_RANGE: std::ops::RangeInclusive<u32> = 0..=100_000;
/// Why `max_packet_loss_percent` does nothing, for the warning a file that sets it gets.
const PACKET_LOSS_PERCENT_UNUSED: &str = "is not applied: the share of lost packets cannot be measured (the RTSP client \
     counts the packets lost, not the packets received); max_packets_lost limits the packets lost in one probe instead";
pub const CONCURRENT_PROBES_RANGE: std::ops::RangeInclusive<u32> = 1..=4096;
pub const PICTURE_CPU_RANGE_PERCENT: std::ops::RangeInclusive<f64> = 0.1..=100.0;
/// URL schemes a camera may use. `rtsps` is not among them: see the module doc.
pub const CAMERA_SCHEMES: &[&str] = &["rtsp", "http", "https"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CamerasConfig {
    /// Seconds between heartbeats of each camera. Default 30; 5..=86400.
    pub heartbeat_seconds: u32,
    /// IANA time zone in which times are shown (`Asia/Kolkata`). Default UTC.
    pub timezone: String,
    /// The cameras. Default none.
    pub streams: Vec<Camera>,
    /// Seconds each probe step may take (see `DEFAULT_PROBE_TIMEOUT_S`). Default 10; 1..=120.
    pub timeout_seconds: u32,
    /// Failed heartbeats in a row reported PENDING before the camera is DOWN. Default 2;
    /// 0..=100 (0: the first failure is DOWN).
    pub retries: u32,
    /// Seconds a picture may stay unchanged before the camera is DEGRADED/frozen. Default
    /// 60; 0 turns the check off; up to 86400.
    pub frozen_seconds: u32,
    /// Seconds a picture may stay almost uniformly dark before the camera is DEGRADED/black.
    /// Default 60; 0 turns the check off; up to 86400.
    pub black_seconds: u32,
    /// RTP packets an RTSP probe may find lost (gaps in their sequence numbers) before the
    /// camera is DEGRADED/packet_loss (see `DEFAULT_MAX_PACKETS_LOST`). Default 2; 0..=100000
    /// (0: any loss). Probes run over TCP, so a loss means the camera itself dropped packets
    /// (an overloaded sender or uplink). Packets before the first one received never count.
    pub max_packets_lost: u32,
    /// The earlier limit in percent of a probe's packets. Accepted (0..=100) so that files
    /// that set it still load, with a warning, but not applied: the RTSP client (retina)
    /// reports the packets lost, not the packets received, so no share can be measured.
    pub max_packet_loss_percent: f64,
    /// Probes running at the same time over all cameras. Default 256; 1..=4096. A probe holds
    /// its slot while it waits for the camera's keyframe, so a fleet needs about
    /// cameras ÷ heartbeat_seconds × (seconds to the first keyframe + 0.1) slots to stay on time.
    pub max_concurrent_probes: u32,
    /// Whether the certificate of an `https://` camera must be trusted (valid, for its host,
    /// signed by a CA the system trusts). Default true; `false` accepts any certificate, as
    /// self-signed cameras need. Only `https://` cameras are concerned: RTSP is probed
    /// without TLS and `http://` has none.
    pub verify_tls: bool,
    /// Share of one core, in percent, that decoding the heartbeats' pictures (thumbnails,
    /// frozen and black verdicts) may spend. Default 4; 0.1..=100. When a fleet's pictures
    /// need more, some heartbeats go without a picture and the page says how often thumbnails
    /// refresh; liveness verdicts are never delayed.
    pub picture_cpu_percent: f64,
}

impl Default for CamerasConfig {
    fn default() -> Self {
        CamerasConfig {
            heartbeat_seconds: DEFAULT_HEARTBEAT_S,
            timezone: DEFAULT_TIMEZONE.to_owned(),
            streams: Vec::new(),
            timeout_seconds: DEFAULT_PROBE_TIMEOUT_S,
            retries: DEFAULT_RETRIES,
            frozen_seconds: DEFAULT_FROZEN_S,
            black_seconds: DEFAULT_BLACK_S,
            max_packets_lost: DEFAULT_MAX_PACKETS_LOST,
            max_packet_loss_percent: DEFAULT_MAX_PACKET_LOSS_PERCENT,
            max_concurrent_probes: DEFAULT_MAX_CONCURRENT_PROBES,
            verify_tls: DEFAULT_VERIFY_TLS,
            picture_cpu_percent: DEFAULT_PICTURE_CPU_PERCENT,
        }
    }
}

/// The probe settings of one camera: its overrides, else the file's values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeSettings {
    pub heartbeat_seconds: u32,
    pub timeout_seconds: u32,
    pub retries: u32,
    pub frozen_seconds: u32,
    pub black_seconds: u32,
    pub max_packets_lost: u32,
    /// `false`: the camera's TLS certificate is accepted whatever it is (`https://` only).
    pub verify_tls: bool,
}

impl CamerasConfig {
    /// `camera`'s settings: its own keys where it has them, the file's otherwise.
    pub fn probe_settings(&self, camera: &Camera) -> ProbeSettings {
        ProbeSettings {
            heartbeat_seconds: camera.heartbeat_seconds.unwrap_or(self.heartbeat_seconds),
            timeout_seconds: camera.timeout_seconds.unwrap_or(self.timeout_seconds),
            retries: camera.retries.unwrap_or(self.retries),
            frozen_seconds: camera.frozen_seconds.unwrap_or(self.frozen_seconds),
            black_seconds: camera.black_seconds.unwrap_or(self.black_seconds),
            max_packets_lost: camera.max_packets_lost.unwrap_or(self.max_packets_lost),
            verify_tls: camera.verify_tls.unwrap_or(self.verify_tls),
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
    /// `rtsp://`, `http://` or `https://` URL, credentials allowed
    /// (`rtsp://user:pass@host/…`); they are never shown. Required.
    pub url: String,
    /// Overrides the file's `heartbeat_seconds` for this camera. Default none.
    pub heartbeat_seconds: Option<u32>,
    /// Overrides the file's `timeout_seconds` for this camera. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Overrides the file's `retries` for this camera. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Overrides the file's `frozen_seconds` for this camera (0: never frozen, e.g. a camera
    /// that watches a still scene). Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen_seconds: Option<u32>,
    /// Overrides the file's `black_seconds` for this camera (0: never black, e.g. a camera
    /// that watches a dark place without infrared). Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub black_seconds: Option<u32>,
    /// Overrides the file's `max_packets_lost` for this camera. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_packets_lost: Option<u32>,
    /// Accepted for files that set it, with a warning; not applied (see the file's key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_packet_loss_percent: Option<f64>,
    /// Overrides the file's `verify_tls` for this camera: `false` accepts its self-signed
    /// certificate. Applies to `https://` URLs only; harmless elsewhere. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_tls: Option<bool>,
}

impl Camera {
    /// The URL as it may be shown: password and credential query values replaced by `***`,
    /// nothing of a URL that does not parse ([`mask_url`]).
    pub fn masked_url(&self) -> String {
        mask_url(&self.url)
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
        // The per-camera overrides are not written when unset, so the example sets them.
        let camera = Camera {
            timeout_seconds: Some(DEFAULT_PROBE_TIMEOUT_S),
            retries: Some(DEFAULT_RETRIES),
            frozen_seconds: Some(DEFAULT_FROZEN_S),
            black_seconds: Some(DEFAULT_BLACK_S),
            max_packets_lost: Some(DEFAULT_MAX_PACKETS_LOST),
            verify_tls: Some(DEFAULT_VERIFY_TLS),
            ..Camera::default()
        };
        let example = CamerasConfig { streams: vec![camera], ..CamerasConfig::default() };
        serde_json::to_value(example).unwrap_or(Value::Null)
    }

    fn validate(&self, v: &mut Validator<'_>) {
        v.range("heartbeat_seconds", self.heartbeat_seconds, HEARTBEAT_RANGE_S);
        v.range("timeout_seconds", self.timeout_seconds, PROBE_TIMEOUT_RANGE_S);
        v.range("retries", self.retries, RETRIES_RANGE);
        v.range("frozen_seconds", self.frozen_seconds, FROZEN_RANGE_S);
        v.range("black_seconds", self.black_seconds, BLACK_RANGE_S);
        v.range("max_packets_lost", self.max_packets_lost, PACKETS_LOST_RANGE);
        v.range("max_packet_loss_percent", self.max_packet_loss_percent, PACKET_LOSS_RANGE_PERCENT);
        if v.document().get("max_packet_loss_percent").is_some() {
            v.warn("max_packet_loss_percent", PACKET_LOSS_PERCENT_UNUSED);
        }
        v.range("max_concurrent_probes", self.max_concurrent_probes, CONCURRENT_PROBES_RANGE);
        v.range("picture_cpu_percent", self.picture_cpu_percent, PICTURE_CPU_RANGE_PERCENT);
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
                v.range(&at("heartbeat_seconds"), s, HEARTBEAT_RANGE_S);
            }
            if let Some(s) = cam.timeout_seconds {
                v.range(&at("timeout_seconds"), s, PROBE_TIMEOUT_RANGE_S);
            }
            if let Some(n) = cam.retries {
                v.range(&at("retries"), n, RETRIES_RANGE);
            }
            if let Some(s) = cam.frozen_seconds {
                v.range(&at("frozen_seconds"), s, FROZEN_RANGE_S);
            }
            if let Some(s) = cam.black_seconds {
                v.range(&at("black_seconds"), s, BLACK_RANGE_S);
            }
            if let Some(n) = cam.max_packets_lost {
                v.range(&at("max_packets_lost"), n, PACKETS_LOST_RANGE);
            }
            if let Some(p) = cam.max_packet_loss_percent {
                v.range(&at("max_packet_loss_percent"), p, PACKET_LOSS_RANGE_PERCENT);
                v.warn(&at("max_packet_loss_percent"), PACKET_LOSS_PERCENT_UNUSED);
            }
        }
    }
}

/// Checks a camera URL; the error says what is allowed (and never repeats a password).
pub fn check_camera_url(text: &str) -> Result<(), String> {
    let allowed =
        "expected rtsp://, http:// or https:// followed by a host, e.g. rtsp://user:pass@192.0.2.10:554/stream1";
    if text.trim().is_empty() {
        return Err(format!("every camera needs a url; {allowed}"));
    }
    match url::Url::parse(text) {
        Ok(u) if u.scheme() == "rtsps" => {
            Err("rtsps:// (RTSP over TLS) is not supported: the prober's RTSP client speaks no TLS; \
             use the camera's rtsp:// URL (usually port 554) on a trusted network, or its https:// \
             MJPEG or snapshot URL"
                .to_owned())
        }
        Ok(u) if !CAMERA_SCHEMES.contains(&u.scheme()) => {
            Err(format!("scheme `{}` is not supported; {allowed}", u.scheme()))
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Err(format!("has no host; {allowed}")),
        // A camera has no use for a fragment: a `#` is a password's, cut off from it.
        Ok(u) if u.fragment().is_some() => Err(format!(
            "has a `#`, which would end the URL there (it is never sent to the camera); {PERCENT_ENCODE_HINT}"
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("the URL does not parse ({e}); {PERCENT_ENCODE_HINT}; {allowed}")),
    }
}

/// `cameras.yaml` as a file that can be edited and written back: the typed view for the
/// program, the raw tree so keys this version does not know survive a rewrite, and the text,
/// edited where the tree changed so the operator's comments and layout survive too.
#[derive(Clone, Debug)]
pub struct CamerasDocument {
    path: PathBuf,
    raw: Value,
    config: CamerasConfig,
    text: String,
}

impl CamerasDocument {
    /// Loads the file; warnings come back beside the document.
    pub fn load(path: &Path) -> Result<(Self, Vec<Diagnostic>), Problems> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Problems::single(Diagnostic::file_error(path, None, format!("cannot read the file: {e}"))))?;
        let doc = yaml::parse(path, &text)?;
        let Loaded { config, warnings } = load_document::<CamerasConfig>(&doc)?;
        let raw = if doc.value.is_null() { Value::Object(Default::default()) } else { doc.value };
        Ok((CamerasDocument { path: path.to_owned(), raw, config, text }, warnings))
    }

    /// What of a file that does not load can run: the list without the cameras that have
    /// errors, when every error is one camera's (`streams[2].url`). `None` when an error
    /// concerns the file or the list as a whole. The cameras left out are not in the result,
    /// so it must never be saved: it is for running while the file waits to be fixed.
    pub fn without_broken_cameras(path: &Path, problems: &Problems) -> Option<Self> {
        let mut broken = Vec::new();
        for e in problems.errors() {
            let index = e.path.strip_prefix("streams[")?.split_once(']')?.0.parse::<usize>().ok()?;
            broken.push(index);
        }
        let text = std::fs::read_to_string(path).ok()?;
        let mut raw = yaml::parse(path, &text).ok()?.value;
        let streams = raw.get_mut("streams")?.as_array_mut()?;
        broken.sort_unstable();
        broken.dedup();
        for i in broken.into_iter().rev() {
            (i < streams.len()).then(|| streams.remove(i))?;
        }
        let Loaded { config, .. } = load_document::<CamerasConfig>(&Document::new(path, raw.clone())).ok()?;
        Some(CamerasDocument { path: path.to_owned(), raw, config, text })
    }

    /// A document for a file that does not exist yet: no cameras, every default. Saving it
    /// creates the file.
    pub fn empty(path: &Path) -> Self {
        CamerasDocument {
            path: path.to_owned(),
            raw: Value::Object(Default::default()),
            config: CamerasConfig::default(),
            text: String::new(),
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
        self.text = crate::yaml_patch::rewrite(&self.text, &self.raw, &raw).unwrap_or_else(|| {
            tracing::info!(file = %self.path.display(), "the edit could not be made in place; the file is written afresh, without its comments");
            yaml::to_string(&raw)
        });
        self.raw = raw;
        self.config = config;
        Ok(())
    }

    /// The file's text as it would be written.
    pub fn to_yaml(&self) -> String {
        self.text.clone()
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
        let e = check_camera_url("rtsps://user:secret@h/x").unwrap_err();
        assert!(e.contains("rtsps://") && e.contains("use the camera's rtsp:// URL"), "{e}");
        assert!(!e.contains("secret"));
        assert!(check_camera_url("").unwrap_err().contains("needs a url"));
        for broken in ["rtsp://admin:Zq#7@h/s", "rtsp://admin:Zq/7@h/s", "http://h/snap.cgi?pwd=Zq#7"] {
            let e = check_camera_url(broken).unwrap_err();
            assert!(e.contains("`#` as %23") && !e.contains("Zq"), "{broken}: {e}");
        }
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

    fn load(text: &str) -> Result<Loaded<CamerasConfig>, Problems> {
        crate::load::load_str::<CamerasConfig>(Path::new("cameras.yaml"), text)
    }

    #[test]
    fn probe_settings_default_and_override() {
        let Loaded { config, warnings } = load(
            "heartbeat_seconds: 15\ntimeout_seconds: 4\nretries: 1\nstreams:\n\
             - {name: a, url: 'rtsp://h/a'}\n\
             - {name: b, url: 'rtsp://h/b', heartbeat_seconds: 60, retries: 0, frozen_seconds: 0, black_seconds: 0, max_packets_lost: 20}\n",
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:#?}");
        let a = config.probe_settings(&config.streams[0]);
        assert_eq!(
            a,
            ProbeSettings {
                heartbeat_seconds: 15,
                timeout_seconds: 4,
                retries: 1,
                frozen_seconds: DEFAULT_FROZEN_S,
                black_seconds: DEFAULT_BLACK_S,
                max_packets_lost: DEFAULT_MAX_PACKETS_LOST,
                verify_tls: DEFAULT_VERIFY_TLS,
            }
        );
        let b = config.probe_settings(&config.streams[1]);
        assert_eq!((b.heartbeat_seconds, b.timeout_seconds, b.retries, b.frozen_seconds), (60, 4, 0, 0));
        assert_eq!((b.max_packets_lost, b.black_seconds), (20, 0));
        assert_eq!(config.max_concurrent_probes, DEFAULT_MAX_CONCURRENT_PROBES);
    }

    #[test]
    fn the_percent_loss_limit_still_loads_and_is_said_to_do_nothing() {
        let Loaded { warnings, .. } =
            load("max_packet_loss_percent: 5\nstreams:\n- {name: a, url: 'rtsp://h/a', max_packet_loss_percent: 10}\n")
                .unwrap();
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:#?}");
        assert!(text[0].contains("max_packet_loss_percent") && text[0].contains("max_packets_lost"), "{text:#?}");
        assert!(text[1].contains("streams[0].max_packet_loss_percent"), "{text:#?}");
    }

    #[test]
    fn probe_settings_out_of_range_are_refused() {
        let e = load(
            "timeout_seconds: 0\nmax_concurrent_probes: 0\npicture_cpu_percent: 0\nstreams:\n\
             - {name: a, url: 'rtsps://u:secret@h/a', max_packet_loss_percent: 101, max_packets_lost: 100001}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("timeout_seconds") && e.contains("1..=120"), "{e}");
        assert!(e.contains("max_concurrent_probes"), "{e}");
        assert!(e.contains("picture_cpu_percent"), "{e}");
        assert!(e.contains("streams[0].max_packet_loss_percent"), "{e}");
        assert!(e.contains("streams[0].max_packets_lost") && e.contains("0..=100000"), "{e}");
        assert!(e.contains("rtsps:// (RTSP over TLS) is not supported"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn verify_tls_defaults_to_on_and_is_overridden_per_camera() {
        let Loaded { config, warnings } = load(
            "streams:\n\
             - {name: a, url: 'https://h/a.mjpg'}\n\
             - {name: b, url: 'https://h/b.mjpg', verify_tls: false}\n\
             - {name: c, url: 'rtsp://h/c', verify_tls: false}\n",
        )
        .unwrap();
        assert!(warnings.is_empty(), "a per-camera verify_tls is a known key: {warnings:#?}");
        assert!(DEFAULT_VERIFY_TLS && config.verify_tls);
        let resolved: Vec<bool> = config.streams.iter().map(|c| config.probe_settings(c).verify_tls).collect();
        assert_eq!(resolved, [true, false, false]);

        // Off for the whole file, back on for one camera.
        let Loaded { config, warnings } =
            load("verify_tls: false\nstreams:\n- {name: a, url: 'https://h/a'}\n- {name: b, url: 'https://h/b', verify_tls: true}\n")
                .unwrap();
        assert!(warnings.is_empty(), "{warnings:#?}");
        let resolved: Vec<bool> = config.streams.iter().map(|c| config.probe_settings(c).verify_tls).collect();
        assert_eq!(resolved, [false, true]);

        let e = load("streams:\n- {name: a, url: 'https://h/a', verify_tls: 'no'}\n").unwrap_err().to_string();
        assert!(e.contains("streams[0].verify_tls"), "the error names the key: {e}");
    }

    #[test]
    fn verify_tls_is_written_only_when_set() {
        let cam = Camera { name: "a".into(), url: "https://h/a".into(), ..Camera::default() };
        assert!(serde_json::to_value(&cam).unwrap().get("verify_tls").is_none());
        let cam = Camera { verify_tls: Some(false), ..cam };
        assert_eq!(serde_json::to_value(&cam).unwrap()["verify_tls"], false);
    }

    #[test]
    fn a_streampulse_file_verifies_tls() {
        // The seed file StreamPulse users bring, as it is.
        let seed = "heartbeat_seconds: 15\ntimezone: Asia/Kolkata\nstreams:\n\
                    - name: GateCamera\n  url: rtsp://user:pass@192.168.1.10:554/stream1\n\
                    - name: LabCam1\n  url: http://192.168.1.1:9081\n";
        let Loaded { config, warnings } = load(seed).unwrap();
        assert!(warnings.is_empty(), "{warnings:#?}");
        assert!(config.streams.iter().all(|c| config.probe_settings(c).verify_tls));
    }
}
