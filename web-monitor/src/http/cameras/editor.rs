//! The camera editor's API: add, change, rename and delete cameras (with their own probe
//! settings: heartbeat, frozen and black limits, packets lost, TLS checking), and change the
//! heartbeat interval and time zone. Every change goes through [`Fleet::edit`], so it is
//! checked as a whole, written atomically, keeps the keys this version does not know, and
//! runs at once.
//!
//! A camera keeps its stable id when renamed (the id is written into the file if it was
//! still derived from the name), so its history follows it. URLs come back from the API
//! with the password masked; sending such a masked URL back keeps the stored password. A new
//! camera never gets the id of a deleted one whose history is still stored.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ds_config::cameras::{
    BLACK_RANGE_S, FROZEN_RANGE_S, HEARTBEAT_RANGE_S, PACKETS_LOST_RANGE, check_camera_url, slug,
};
use ds_config::redact::{is_credential_param, same_endpoint};
use ds_config::{Camera, CamerasConfig};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Cameras;
use crate::http::{AppError, JsonBody};
use ds_camera_monitor::EditError;

/// What a client sends to add or change a camera. Absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraBody {
    pub name: Option<String>,
    /// The stream URL; a URL with the password masked as `***` keeps the stored password.
    pub url: Option<String>,
    /// Seconds between heartbeats for this camera; `null` returns to the file's interval.
    #[serde(default, deserialize_with = "present")]
    pub heartbeat_seconds: Option<Option<u32>>,
    /// `false` accepts the camera's TLS certificate whatever it is (a self-signed https
    /// camera); `true` verifies it; `null` returns to the file's `verify_tls`.
    #[serde(default, deserialize_with = "present")]
    pub verify_tls: Option<Option<bool>>,
    /// Seconds an unchanged picture may last before the camera is DEGRADED/frozen (0: never);
    /// `null` returns to the file's `frozen_seconds`.
    #[serde(default, deserialize_with = "present")]
    pub frozen_seconds: Option<Option<u32>>,
    /// Seconds an almost uniformly dark picture may last before the camera is DEGRADED/black
    /// (0: never); `null` returns to the file's `black_seconds`.
    #[serde(default, deserialize_with = "present")]
    pub black_seconds: Option<Option<u32>>,
    /// RTP packets one probe may find lost before the camera is DEGRADED/packet_loss; `null`
    /// returns to the file's `max_packets_lost`.
    #[serde(default, deserialize_with = "present")]
    pub max_packets_lost: Option<Option<u32>>,
}

/// The interval, time zone and certificate checking of the whole list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    pub heartbeat_seconds: Option<u32>,
    pub timezone: Option<String>,
    /// Whether https cameras' certificates are verified; a camera's own `verify_tls` wins.
    /// `null` removes the key, so the default (verify) applies again.
    #[serde(default, deserialize_with = "present")]
    pub verify_tls: Option<Option<bool>>,
}

const CAMERA_SHAPE: &str = r#"{"name": "Gate", "url": "rtsp://user:pass@192.0.2.10:554/stream1", "heartbeat_seconds": 15, "frozen_seconds": 60, "black_seconds": 60, "max_packets_lost": 2, "verify_tls": false (all but name and url optional; null returns to the list's setting)}"#;

/// What a camera's number field may be, for a refusal that names it; `None` for other fields.
fn allowed(field: &str) -> Option<String> {
    let range = |r: std::ops::RangeInclusive<u32>| format!("{}..={}", r.start(), r.end());
    Some(match field {
        "heartbeat_seconds" => format!("{} seconds, or null for the list's", range(HEARTBEAT_RANGE_S)),
        "frozen_seconds" => format!("{} seconds (0: never frozen), or null for the list's", range(FROZEN_RANGE_S)),
        "black_seconds" => format!("{} seconds (0: never black), or null for the list's", range(BLACK_RANGE_S)),
        "max_packets_lost" => format!("{} packets in one probe, or null for the list's", range(PACKETS_LOST_RANGE)),
        _ => return None,
    })
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl From<EditError> for AppError {
    fn from(e: EditError) -> AppError {
        match e {
            EditError::Invalid(_) | EditError::Rejected { .. } => {
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            EditError::FileBroken { .. } => AppError::new(StatusCode::CONFLICT, e.to_string()),
            EditError::Write { .. } => {
                tracing::error!(error = %e, "camera list not saved");
                AppError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}; nothing was changed"))
            }
        }
    }
}

/// Reads a camera from the JSON body. A field of the wrong type is named, with what it may be;
/// no value is echoed (URLs carry passwords).
fn camera_body(body: Result<JsonBody<Value>, AppError>) -> Result<CameraBody, AppError> {
    let JsonBody(value) = body?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let what = shape_problem(&e.inner().to_string());
        let message = match allowed(&field) {
            Some(allowed) => format!("`{field}`: {what}; allowed: {allowed}"),
            None if field == "." => format!("{what}; expected a JSON object like {CAMERA_SHAPE}"),
            None => format!("`{field}`: {what}; expected a JSON object like {CAMERA_SHAPE}"),
        };
        AppError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    })
}

/// serde's complaint without the values it quotes: `unknown field `x`, expected …` stays,
/// `invalid type: string "rtsp://a:b@…", expected u32` loses the string.
fn shape_problem(message: &str) -> String {
    let what = message.split(" at line").next().unwrap_or(message);
    // Quoted values alternate with the text around them.
    what.split('"').enumerate().map(|(i, part)| if i % 2 == 0 { part } else { "…" }).collect::<Vec<_>>().join("\"")
}

fn streams(map: &mut Map<String, Value>) -> &mut Vec<Value> {
    let entry = map.entry("streams").or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    entry.as_array_mut().expect("just made an array")
}

/// The index of the camera with this stable id.
fn position(config: &CamerasConfig, id: &str) -> Option<usize> {
    config.streams.iter().position(|c| c.stable_id() == id)
}

fn not_found(id: &str) -> AppError {
    AppError::new(StatusCode::NOT_FOUND, format!("no camera has the id `{id}`; GET /api/cameras lists them"))
}

/// An id for a new camera: its name as a slug, made unique with `-2`, `-3`, … among the
/// listed cameras and the ids that still have history (`with_history`).
fn new_id(config: &CamerasConfig, name: &str, with_history: &HashSet<String>) -> String {
    let base = slug(name);
    let taken = |id: &str| with_history.contains(id) || config.streams.iter().any(|c| c.stable_id() == id);
    if !taken(&base) {
        return base;
    }
    (2..).map(|n| format!("{base}-{n}")).find(|id| !taken(id)).expect("an unused number exists")
}

/// Every camera id the database has history for. A deleted camera's history stays until
/// retention removes it; a new camera must not take over its id, or it would show the old
/// camera's uptime and state changes as its own.
async fn ids_with_history(c: &Cameras) -> HashSet<String> {
    let Some(store) = c.store.clone() else { return HashSet::new() };
    match tokio::task::spawn_blocking(move || store.cameras()).await {
        Ok(Ok(records)) => records.into_iter().map(|r| r.id).collect(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the cameras with history; a new camera's id may reuse an old one's");
            HashSet::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, "camera id lookup task failed");
            HashSet::new()
        }
    }
}

/// What a masked credential looks like in a URL the API showed.
const MASK: &str = "***";

/// Why a masked password cannot be restored into a URL that points elsewhere.
const MASKED_ELSEWHERE: &str = "url: the password is masked (`***`) and the URL no longer points to the same camera \
     (scheme, host, port and user must stay the same for the stored password to be kept); type the camera's password";

/// `rtsp://u:***@h/x` sent back for a camera whose URL is `rtsp://u:secret@h/y` becomes
/// `rtsp://u:secret@h/x`: the page never has the password, and saving must not lose it. The
/// same for a credential in the query (`snap.cgi?pwd=***`), taken from the stored URL's
/// parameter of the same name.
///
/// Only for the same camera: a URL with another scheme, host, port or user gets no stored
/// secret (anyone who may edit would otherwise point the camera at their own host and
/// receive the password); that is an error, so the user types the password again.
pub fn unmask_url(new: &str, current: &str) -> Result<String, &'static str> {
    let new_pass = userinfo(new).and_then(|(_, pass, _)| pass);
    let masked_query: Vec<&str> = query_pairs(new)
        .filter(|(name, value)| *value == MASK && is_credential_param(name))
        .map(|(name, _)| name)
        .collect();
    if new_pass != Some(MASK) && masked_query.is_empty() {
        return Ok(new.to_owned());
    }
    if !same_endpoint(new, current) {
        return Err(MASKED_ELSEWHERE);
    }
    let mut out = new.to_owned();
    if new_pass == Some(MASK)
        && let Some((user, Some(pass), _)) = userinfo(current)
    {
        let (start, end) = userinfo_span(new).expect("has userinfo");
        out = format!("{}{user}:{pass}{}", &new[..start], &new[end..]);
    }
    if !masked_query.is_empty() {
        let Some(q) = out.find('?') else { return Ok(out) };
        let stored: Vec<(&str, &str)> = query_pairs(current).collect();
        let query = out[q + 1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, MASK)) if is_credential_param(name) => match stored.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => format!("{name}={value}"),
                    None => pair.to_owned(),
                },
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{}{query}", &out[..=q]);
    }
    Ok(out)
}

/// The `name=value` pairs of a URL's query as written (a `#` is a value's, see
/// [`ds_config::redact::mask_url`]).
fn query_pairs(url: &str) -> impl Iterator<Item = (&str, &str)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query.split('&').filter_map(|pair| pair.split_once('='))
}

/// Whether `url` still holds a masked credential (a `***` the user did not replace).
fn still_masked(url: &str) -> bool {
    userinfo(url).and_then(|(_, pass, _)| pass) == Some(MASK)
        || query_pairs(url).any(|(name, value)| value == MASK && is_credential_param(name))
}

/// Byte range of `user:pass` between `://` and `@`.
fn userinfo_span(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')? + start;
    Some((start, at))
}

fn userinfo(url: &str) -> Option<(&str, Option<&str>, usize)> {
    let (start, at) = userinfo_span(url)?;
    let info = &url[start..at];
    Some(match info.split_once(':') {
        Some((user, pass)) => (user, Some(pass), at),
        None => (info, None, at),
    })
}

fn apply(entry: &mut Map<String, Value>, body: &CameraBody, current_url: Option<&str>) -> Result<(), String> {
    if let Some(name) = &body.name {
        entry.insert("name".into(), Value::String(name.trim().to_owned()));
    }
    if let Some(url) = &body.url {
        let url = match current_url {
            Some(current) => unmask_url(url.trim(), current)?,
            None => url.trim().to_owned(),
        };
        if still_masked(&url) {
            return Err("url: the password is masked (`***`); type the camera's password".to_owned());
        }
        check_camera_url(&url).map_err(|why| format!("url: {why}"))?;
        entry.insert("url".into(), Value::String(url));
    }
    set_override(entry, "heartbeat_seconds", body.heartbeat_seconds);
    set_override(entry, "verify_tls", body.verify_tls);
    set_override(entry, "frozen_seconds", body.frozen_seconds);
    set_override(entry, "black_seconds", body.black_seconds);
    set_override(entry, "max_packets_lost", body.max_packets_lost);
    Ok(())
}

/// A key from the body: a value sets it, `null` clears it (a camera's override: the list's
/// setting applies again; the list's own setting: its default), absent leaves it as it is.
fn set_override<T: Into<Value>>(entry: &mut Map<String, Value>, key: &str, wanted: Option<Option<T>>) {
    match wanted {
        Some(Some(v)) => {
            entry.insert(key.into(), v.into());
        }
        Some(None) => {
            entry.remove(key);
        }
        None => {}
    }
}

/// `POST /api/cameras`: adds a camera; 201 with the camera.
pub async fn create(State(c): State<Cameras>, b: Result<JsonBody<Value>, AppError>) -> Result<Response, AppError> {
    let b = camera_body(b)?;
    let (Some(name), Some(_)) = (&b.name, &b.url) else {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a new camera needs `name` and `url`, e.g. {CAMERA_SHAPE}"),
        ));
    };
    let name = name.trim().to_owned();
    let with_history = ids_with_history(&c).await;
    let mut id = String::new();
    let list = c
        .fleet
        .edit(|map, before| {
            id = new_id(before, &name, &with_history);
            let mut entry = Map::new();
            entry.insert("id".into(), Value::String(id.clone()));
            apply(&mut entry, &b, None)?;
            streams(map).push(Value::Object(entry));
            Ok(())
        })
        .await?;
    tracing::info!(camera = %id, name = %name, "camera added");
    let camera = list.streams.iter().find(|cam| cam.stable_id() == id).expect("just added");
    Ok((StatusCode::CREATED, axum::Json(c.config_json(camera, &list))).into_response())
}

/// `PUT /api/cameras/{id}`: changes or renames a camera; its id, and so its history, stay.
pub async fn update(
    State(c): State<Cameras>,
    Path(id): Path<String>,
    b: Result<JsonBody<Value>, AppError>,
) -> Result<Response, AppError> {
    let b = camera_body(b)?;
    let mut missing = false;
    let list = c
        .fleet
        .edit(|map, before| {
            let Some(i) = position(before, &id) else {
                missing = true;
                return Err(String::new());
            };
            let current: &Camera = &before.streams[i];
            let Some(Value::Object(entry)) = streams(map).get_mut(i) else {
                return Err(format!("streams[{i}] is not a mapping in the file"));
            };
            // Written down before a rename, so the derived id does not change with the name.
            entry.entry("id").or_insert_with(|| Value::String(current.stable_id()));
            apply(entry, &b, Some(&current.url))
        })
        .await
        .map_err(|e| if missing { not_found(&id) } else { e.into() })?;
    tracing::info!(camera = %id, "camera changed");
    let camera = list.streams.iter().find(|cam| cam.stable_id() == id).expect("ids are kept");
    Ok(axum::Json(c.config_json(camera, &list)).into_response())
}

/// `DELETE /api/cameras/{id}`: removes a camera from the list; its history stays in the
/// database until retention removes it.
pub async fn delete(State(c): State<Cameras>, Path(id): Path<String>) -> Result<StatusCode, AppError> {
    let mut missing = false;
    c.fleet
        .edit(|map, before| {
            let Some(i) = position(before, &id) else {
                missing = true;
                return Err(String::new());
            };
            streams(map).remove(i);
            Ok(())
        })
        .await
        .map_err(|e| if missing { not_found(&id) } else { e.into() })?;
    tracing::info!(camera = %id, "camera deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/cameras/settings`: the heartbeat interval and time zone of the whole list.
pub async fn settings(
    State(c): State<Cameras>,
    b: Result<JsonBody<SettingsBody>, AppError>,
) -> Result<Response, AppError> {
    let b = b.map(|JsonBody(v)| v)?;
    let list = c
        .fleet
        .edit(|map, _| {
            if let Some(s) = b.heartbeat_seconds {
                map.insert("heartbeat_seconds".into(), s.into());
            }
            if let Some(tz) = &b.timezone {
                map.insert("timezone".into(), Value::String(tz.trim().to_owned()));
            }
            set_override(map, "verify_tls", b.verify_tls);
            Ok(())
        })
        .await?;
    Ok(axum::Json(serde_json::json!({
        "heartbeat_seconds": list.heartbeat_seconds,
        "timezone": list.timezone,
        "verify_tls": list.verify_tls,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_passwords_are_kept() {
        let current = "rtsp://admin:s3cret@10.0.0.5:554/stream1";
        assert_eq!(
            unmask_url("rtsp://admin:***@10.0.0.5:554/stream2", current).unwrap(),
            "rtsp://admin:s3cret@10.0.0.5:554/stream2"
        );
        assert_eq!(
            unmask_url("rtsp://admin:***@10.0.0.5/stream2", current).unwrap(),
            "rtsp://admin:s3cret@10.0.0.5/stream2",
            "554 is rtsp's port"
        );
        assert_eq!(unmask_url("rtsp://admin:new@10.0.0.5/s", current).unwrap(), "rtsp://admin:new@10.0.0.5/s");
        assert_eq!(unmask_url("http://10.0.0.5/", current).unwrap(), "http://10.0.0.5/");
        // Another user, host, port or scheme: the stored password is not sent there.
        for elsewhere in [
            "rtsp://bob:***@10.0.0.5/s",
            "rtsp://admin:***@10.0.0.6:554/s",
            "rtsp://admin:***@10.0.0.5:8554/s",
            "http://admin:***@10.0.0.5:554/s",
        ] {
            let e = unmask_url(elsewhere, current).unwrap_err();
            assert!(e.contains("type the camera's password") && e.contains("scheme, host, port"), "{elsewhere}: {e}");
        }
    }

    #[test]
    fn masked_query_credentials_are_kept_for_the_same_camera_only() {
        let current = "http://10.0.0.5/snap.cgi?usr=admin&pwd=s3cret&ch=1";
        assert_eq!(
            unmask_url("http://10.0.0.5:80/snap.cgi?usr=admin&pwd=***&ch=2", current).unwrap(),
            "http://10.0.0.5:80/snap.cgi?usr=admin&pwd=s3cret&ch=2"
        );
        assert!(unmask_url("http://10.0.0.9/snap.cgi?usr=admin&pwd=***", current).is_err());
        // No stored value of that name: still masked, refused by `apply`.
        let kept = unmask_url("http://10.0.0.5/snap.cgi?token=***", current).unwrap();
        assert!(still_masked(&kept), "{kept}");
        let mut entry = Map::new();
        let body =
            CameraBody { url: Some("http://10.0.0.9/snap.cgi?usr=admin&pwd=***".into()), ..CameraBody::default() };
        let e = apply(&mut entry, &body, Some(current)).unwrap_err();
        assert!(e.starts_with("url: the password is masked"), "{e}");
        assert!(entry.is_empty());
    }

    #[test]
    fn new_ids_are_unique_slugs() {
        let mut config = CamerasConfig::default();
        let none = HashSet::new();
        assert_eq!(new_id(&config, "Gate Cam", &none), "gate-cam");
        config.streams.push(Camera { name: "Gate Cam".into(), ..Camera::default() });
        config.streams.push(Camera { id: Some("gate-cam-2".into()), name: "x".into(), ..Camera::default() });
        assert_eq!(new_id(&config, "gate  cam", &none), "gate-cam-3");
        // A deleted camera's id still has history: not reused.
        let with_history = HashSet::from(["gate-cam-3".to_owned(), "yard".to_owned()]);
        assert_eq!(new_id(&config, "gate cam", &with_history), "gate-cam-4");
        assert_eq!(new_id(&config, "Yard", &with_history), "yard-2");
    }

    #[test]
    fn verify_tls_is_set_cleared_or_left() {
        let parse = |json: &str| serde_json::from_str::<CameraBody>(json).unwrap();
        let mut entry = Map::new();
        apply(&mut entry, &parse(r#"{"verify_tls": false}"#), None).unwrap();
        assert_eq!(entry.get("verify_tls"), Some(&Value::Bool(false)));
        apply(&mut entry, &parse(r#"{"name": "Gate"}"#), None).unwrap();
        assert_eq!(entry.get("verify_tls"), Some(&Value::Bool(false)), "absent: unchanged");
        apply(&mut entry, &parse(r#"{"verify_tls": true}"#), None).unwrap();
        assert_eq!(entry.get("verify_tls"), Some(&Value::Bool(true)));
        apply(&mut entry, &parse(r#"{"verify_tls": null}"#), None).unwrap();
        assert!(!entry.contains_key("verify_tls"), "null: back to the file's setting");
        assert!(serde_json::from_str::<CameraBody>(r#"{"verify_tls": "no"}"#).is_err());
    }

    #[test]
    fn probe_limits_are_set_cleared_or_left() {
        let parse = |json: &str| camera_body(Ok(JsonBody(serde_json::from_str(json).unwrap()))).unwrap();
        let mut entry = Map::new();
        apply(&mut entry, &parse(r#"{"frozen_seconds": 0, "black_seconds": 120, "max_packets_lost": 7}"#), None)
            .unwrap();
        assert_eq!(
            (entry.get("frozen_seconds"), entry.get("black_seconds"), entry.get("max_packets_lost")),
            (Some(&Value::from(0)), Some(&Value::from(120)), Some(&Value::from(7)))
        );
        apply(&mut entry, &parse(r#"{"name": "Gate", "black_seconds": null}"#), None).unwrap();
        assert_eq!(entry.get("frozen_seconds"), Some(&Value::from(0)), "absent: unchanged");
        assert!(!entry.contains_key("black_seconds"), "null: back to the file's setting");
        assert_eq!(entry.get("max_packets_lost"), Some(&Value::from(7)));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_with_what_it_may_be() {
        let refused = |json: &str| {
            let e = camera_body(Ok(JsonBody(serde_json::from_str(json).unwrap()))).unwrap_err();
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
            e.message
        };
        let m = refused(r#"{"frozen_seconds": -1}"#);
        assert!(m.starts_with("`frozen_seconds`: ") && m.contains("allowed: 0..=86400 seconds"), "{m}");
        let m = refused(r#"{"max_packets_lost": "lots"}"#);
        assert!(m.starts_with("`max_packets_lost`: ") && m.contains("0..=100000 packets"), "{m}");
        assert!(!m.contains("lots"), "no value is echoed: {m}");
        let m = refused(r#"{"black_seconds": 1.5}"#);
        assert!(m.contains("`black_seconds`") && m.contains("(0: never black)"), "{m}");
        let m = refused(r#"{"url": "rtsp://a:secret@h/", "heartbeat_seconds": "x"}"#);
        assert!(m.starts_with("`heartbeat_seconds`") && m.contains("5..=86400") && !m.contains("secret"), "{m}");
        let m = refused(r#"{"nmae": "x"}"#);
        assert!(m.contains("unknown field `nmae`"), "{m}");
    }

    #[test]
    fn the_lists_verify_tls_is_set_cleared_or_left() {
        let parse = |json: &str| serde_json::from_str::<SettingsBody>(json).unwrap();
        assert_eq!(parse(r#"{"verify_tls": false}"#).verify_tls, Some(Some(false)));
        assert_eq!(parse(r#"{"verify_tls": null}"#).verify_tls, Some(None), "null is not the same as absent");
        assert_eq!(parse(r#"{"timezone": "UTC"}"#).verify_tls, None);
        let mut map = Map::new();
        set_override(&mut map, "verify_tls", parse(r#"{"verify_tls": false}"#).verify_tls);
        assert_eq!(map.get("verify_tls"), Some(&Value::Bool(false)));
        set_override(&mut map, "verify_tls", parse(r#"{"timezone": "UTC"}"#).verify_tls);
        assert_eq!(map.get("verify_tls"), Some(&Value::Bool(false)), "absent: unchanged");
        set_override(&mut map, "verify_tls", parse(r#"{"verify_tls": null}"#).verify_tls);
        assert!(!map.contains_key("verify_tls"), "null: the key goes, the default applies");
    }

    #[test]
    fn shape_problems_never_quote_values() {
        let m = shape_problem("invalid type: string \"rtsp://a:pw@h/\", expected u32 at line 1 column 40");
        assert!(!m.contains("pw"), "{m}");
        let m = shape_problem(
            "unknown field `nmae`, expected one of `name`, `url`, `heartbeat_seconds` at line 1 column 7",
        );
        assert!(m.starts_with("unknown field `nmae`"), "{m}");
    }
}
