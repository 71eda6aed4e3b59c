//! The camera API's reads: the grid (`GET /api/cameras`), one camera, its history, its
//! state changes, live updates, and StreamPulse's status map for existing
//! integrations. URLs are always masked; times are UTC (RFC 3339) with the list's
//! `timezone` named beside them, so a page shows them in the configured zone.
//!
//! History (uptime, bars, `/history`, the CSV export) is read back from
//! [`Store::data_now`]: the stored timeline never goes backwards, so after the wall clock
//! stepped back the history stored ahead of it is still the last 24 hours.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use ds_camera_db::{Bucket, STANDARD_WINDOWS, Store, Uptime};
use ds_camera_monitor::Live;
use ds_cameras::{CameraStatus, State as CamState};
use ds_config::{Camera, CamerasConfig};
use ds_http::places::Full;
use ds_wire::cameras::{
    BarBucket, CameraDetail, CameraEntry, CameraEvent, CameraList, CameraLive, Probed, StreamPulseEntry,
    StreamPulseState, StreamPulseStatus, UptimeSummary, Waiting,
};
use futures_util::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Cameras;
use crate::http::{AppError, JsonQuery};

/// How long the grid's uptime figures and heartbeat bars are reused before the database is
/// asked again (they change slowly; a thousand cameras cost a few hundred milliseconds).
pub const SUMMARY_TTL: Duration = Duration::from_secs(10);
/// The longest span `/history` and the CSV export read back, in hours: two years, a year's
/// history behind a wall clock that stepped a year (the stored timeline runs ahead of a clock
/// that stepped back, see `ds_camera_db`'s writer).
pub const MAX_HOURS: u32 = 2 * 366 * 24;
/// The grid's heartbeat bar: this many buckets …
pub const BAR_BUCKETS: i64 = 30;
/// … of this length each (the last hour).
pub const BAR_BUCKET: SignedDuration = SignedDuration::from_mins(2);

/// Uptime and heartbeat bars of every camera, computed together.
#[derive(Debug, Default)]
pub struct Summary {
    pub uptime: std::collections::BTreeMap<String, Vec<Uptime>>,
    pub bars: std::collections::BTreeMap<String, Vec<Bucket>>,
    /// Why there are no figures (the database cannot be read).
    pub problem: Option<String>,
}

/// The cached [`Summary`].
#[derive(Debug, Default)]
pub struct SummaryCache {
    slot: tokio::sync::Mutex<Option<(Instant, Arc<Summary>)>>,
}

impl SummaryCache {
    pub async fn get(&self, store: Option<&Store>) -> Arc<Summary> {
        let mut slot = self.slot.lock().await;
        if let Some((at, s)) = &*slot
            && at.elapsed() < SUMMARY_TTL
        {
            return Arc::clone(s);
        }
        let summary = Arc::new(match store {
            None => Summary {
                problem: Some("no camera history: the database could not be opened".into()),
                ..Summary::default()
            },
            Some(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || {
                    let read = || {
                        let now = store.data_now(Timestamp::now())?;
                        let from = now - BAR_BUCKET * i32::try_from(BAR_BUCKETS).unwrap_or(30);
                        Ok::<_, ds_camera_db::Error>((
                            store.uptime_all(now, &STANDARD_WINDOWS)?,
                            store.buckets_all(from, now, BAR_BUCKET, now)?,
                        ))
                    };
                    match read() {
                        Ok((uptime, bars)) => Summary { uptime, bars, problem: None },
                        Err(e) => {
                            tracing::error!(error = %e, "cannot read camera uptime");
                            Summary { problem: Some(format!("camera history unavailable: {e}")), ..Summary::default() }
                        }
                    }
                })
                .await
                .unwrap_or_default()
            }
        });
        *slot = Some((Instant::now(), Arc::clone(&summary)));
        summary
    }
}

fn ts(t: Timestamp) -> Value {
    Value::String(t.to_string())
}

/// Seconds rounded to the millisecond: a reader wants seconds, not float noise.
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The live part of a camera: state, reason, measurements, and how long ago its newest frame
/// arrived and its state began (monotonic ages, from `monitor`).
fn live_json(live: Option<&CameraStatus>, monitor: &Live) -> CameraLive {
    let Some((l, state)) = live.and_then(|l| Some((l, l.state?))) else {
        return CameraLive::Waiting(Waiting { state: (), message: Waiting::MESSAGE.to_owned() });
    };
    let hb = l.last_heartbeat.as_ref();
    CameraLive::Probed(Probed {
        state,
        reason: l.reason,
        message: l.message.clone(),
        since: l.since,
        state_age_seconds: monitor.state_age(l).map(seconds),
        consecutive_failures: l.consecutive_failures,
        last_heartbeat_at: hb.map(|h| h.at),
        latency_ms: hb.and_then(|h| h.latency_ms),
        codec: hb.and_then(|h| h.codec.clone()),
        width: hb.and_then(|h| h.width),
        height: hb.and_then(|h| h.height),
        last_frame_at: l.last_frame_at,
        last_frame_age_seconds: monitor.last_frame_age(&l.camera_id).map(seconds),
        packets_lost: l.packets_lost,
        pictures: l.pictures,
    })
}

/// The video uptime of the windows of [`STANDARD_WINDOWS`] (24 h, 7 d, 30 d).
fn uptime_json(list: Option<&Vec<Uptime>>) -> UptimeSummary {
    let window = |i: usize| list.and_then(|l| l.get(i)).and_then(|u| u.video_percent);
    UptimeSummary { day: window(0), week: window(1), month: window(2) }
}

fn bar_json(bar: Option<&Vec<Bucket>>) -> Vec<BarBucket> {
    bar.map_or_else(Vec::new, |b| b.iter().map(|b| BarBucket { start: b.start, worst: b.worst }).collect())
}

impl Cameras {
    /// A camera with its live state and, when given, its uptime and heartbeat bar.
    fn full_json(&self, camera: &Camera, list: &CamerasConfig, summary: &Summary) -> CameraEntry {
        let id = camera.stable_id();
        CameraEntry {
            config: self.config_json(camera, list),
            live: live_json(self.live.get(&id).as_ref(), &self.live),
            thumbnail: self.thumbnail_info(&id),
            uptime: uptime_json(summary.uptime.get(&id)),
            bar: bar_json(summary.bars.get(&id)),
        }
    }

    pub(super) fn find(&self, id: &str) -> Result<(Camera, Arc<CamerasConfig>), AppError> {
        let list = self.fleet.current();
        let cam = list.streams.iter().find(|c| c.stable_id() == id).cloned().ok_or_else(|| not_found(id))?;
        Ok((cam, list))
    }

    pub(super) fn store(&self) -> Result<Store, AppError> {
        self.store.clone().ok_or_else(|| {
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "camera history is unavailable: the database could not be opened (see the service log)",
            )
        })
    }
}

fn not_found(id: &str) -> AppError {
    AppError::new(StatusCode::NOT_FOUND, format!("no camera has the id `{id}`; GET /api/cameras lists them"))
}

pub(super) fn db_error(e: ds_camera_db::Error) -> AppError {
    match e {
        ds_camera_db::Error::UnknownCamera(_) | ds_camera_db::Error::Argument { .. } => {
            AppError::new(StatusCode::BAD_REQUEST, e.to_string())
        }
        e => {
            tracing::error!(error = %e, "camera database query failed");
            AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the camera database could not answer; see the service log",
            )
        }
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ds_camera_db::Error> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "the camera database task failed"))?
        .map_err(db_error)
}

/// `GET /api/cameras`: every camera with state, reason, measurements, uptime and the bar.
pub async fn list(State(c): State<Cameras>) -> Json<CameraList> {
    let list = c.fleet.current();
    let summary = c.summary.get(c.store.as_ref()).await;
    let cameras: Vec<CameraEntry> = list.streams.iter().map(|cam| c.full_json(cam, &list, &summary)).collect();
    let thumbnails_behind = ds_cameras::picture::budget::thumbnails_behind(
        cameras.iter().filter_map(|e| {
            let pictures = e.live.probed()?.pictures?;
            Some((e.config.heartbeat_seconds, pictures))
        }),
        list.picture_cpu_percent,
    );
    Json(CameraList {
        heartbeat_seconds: list.heartbeat_seconds,
        timezone: list.timezone.clone(),
        verify_tls: list.verify_tls,
        file_problem: c.fleet.problem().await,
        history_problem: summary.problem.clone(),
        thumbnails_behind,
        cameras,
    })
}

/// `GET /api/cameras/{id}`: one camera, with the time spent in each state per window.
pub async fn one(State(c): State<Cameras>, Path(id): Path<String>) -> Result<Json<CameraDetail>, AppError> {
    let (cam, list) = c.find(&id)?;
    let summary = c.summary.get(c.store.as_ref()).await;
    Ok(Json(CameraDetail {
        camera: c.full_json(&cam, &list, &summary),
        timezone: list.timezone.clone(),
        uptime_detail: summary.uptime.get(&id).map(|u| json!(u)),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// How far back, in hours. Default 24; 1..=17568 ([`MAX_HOURS`]).
    pub hours: Option<u32>,
    /// How many buckets. Default 96; 1..=1000.
    pub buckets: Option<u32>,
}

/// `GET /api/cameras/{id}/history?hours=24&buckets=96`: the chart on the camera's page.
pub async fn history(
    State(c): State<Cameras>,
    Path(id): Path<String>,
    JsonQuery(q): JsonQuery<HistoryQuery>,
) -> Result<Json<Value>, AppError> {
    c.find(&id)?;
    let hours = q.hours.unwrap_or(24);
    let buckets = q.buckets.unwrap_or(96);
    if !(1..=MAX_HOURS).contains(&hours) || !(1..=1000).contains(&buckets) {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            format!("hours must be 1..={MAX_HOURS} and buckets 1..=1000 (got hours={hours}, buckets={buckets})"),
        ));
    }
    let store = c.store()?;
    let span = SignedDuration::from_hours(i64::from(hours));
    let bucket = SignedDuration::from_millis(span.as_millis() as i64 / i64::from(buckets));
    let id2 = id.clone();
    let (from, now, list) = blocking(move || {
        let now = store.data_now(Timestamp::now())?;
        let from = now - span;
        match store.buckets(&id2, from, now, bucket, now) {
            Err(ds_camera_db::Error::UnknownCamera(_)) => Ok((from, now, Vec::new())),
            other => other.map(|list| (from, now, list)),
        }
    })
    .await?;
    Ok(Json(json!({"id": id, "from": ts(from), "to": ts(now), "bucket_seconds": bucket.as_secs(), "buckets": list})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// The previous page's `next_before`.
    pub before: Option<i64>,
    /// Changes per page. Default 50; 1..=1000.
    pub limit: Option<usize>,
}

/// `GET /api/cameras/{id}/changes`: its state changes, newest first, paged.
pub async fn changes(
    State(c): State<Cameras>,
    Path(id): Path<String>,
    JsonQuery(q): JsonQuery<ChangesQuery>,
) -> Result<Json<Value>, AppError> {
    c.find(&id)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::new(StatusCode::BAD_REQUEST, format!("limit must be 1..=1000, not {limit}")));
    }
    let store = c.store()?;
    let page = blocking(move || match store.state_changes(&id, q.before, limit) {
        Err(ds_camera_db::Error::UnknownCamera(_)) => {
            Ok(ds_camera_db::ChangePage { changes: Vec::new(), next_before: None })
        }
        other => other,
    })
    .await?;
    Ok(Json(json!(page)))
}

/// `GET /api/streampulse/status`: StreamPulse's `{name: {ts, status, latency, message}}`
/// for integrations written against it. `status` is `ok` only when the camera is UP; `ts`
/// is in the list's time zone as StreamPulse wrote it. `state` and `reason` are added.
pub async fn streampulse(State(c): State<Cameras>) -> Json<StreamPulseStatus> {
    let list = c.fleet.current();
    let tz = jiff::tz::TimeZone::get(&list.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let mut out = Vec::with_capacity(list.streams.len());
    for cam in &list.streams {
        let entry = match c.live.get(&cam.stable_id()).and_then(|l| Some((l.last_heartbeat.clone()?, l))) {
            None => StreamPulseEntry {
                ts: String::new(),
                status: String::new(),
                latency: None,
                message: "no data yet".to_owned(),
                state: None,
            },
            Some((hb, l)) => StreamPulseEntry {
                ts: hb.at.to_zoned(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string(),
                status: if hb.state == CamState::Up { "ok" } else { "fail" }.to_owned(),
                latency: hb.latency_ms,
                message: l.message.clone().unwrap_or_else(|| match hb.reason {
                    Some(r) => r.to_string(),
                    None => "video arrived".to_owned(),
                }),
                state: Some(StreamPulseState { state: l.state.unwrap_or(hb.state), reason: hb.reason }),
            },
        };
        out.push((cam.name.clone(), entry));
    }
    Json(StreamPulseStatus(out))
}

/// `GET /api/cameras/events`: each heartbeat as it happens (event `camera`, the camera's
/// live part with its `id`), so the page updates without polling.
pub async fn events(State(c): State<Cameras>) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let rx = tokio_stream::wrappers::BroadcastStream::new(c.live.subscribe());
    let stream = rx.filter_map(move |item| {
        let c = c.clone();
        async move {
            let live = item.ok()?;
            // The heartbeat's thumbnail is kept before the heartbeat is announced.
            let event = CameraEvent {
                live: live_json(Some(&live), &c.live),
                id: live.camera_id.clone(),
                thumbnail: c.thumbnail_info(&live.camera_id),
            };
            Some(Ok(Event::default().event("camera").json_data(event).unwrap_or_default()))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `GET /cameras`: the cameras page.
pub async fn page(headers: axum::http::HeaderMap) -> Response {
    crate::http::ui::file(Path(PAGE.to_owned()), headers).await
}

/// The cameras page's file in the embedded assets.
pub const PAGE: &str = "cameras.html";

/// `GET /api/cameras/{id}/thumbnail.jpg`: the camera's picture from its last heartbeat whose
/// frames were decoded (at most 320 wide): no session to the camera. 404 until there is one.
pub async fn thumbnail(State(c): State<Cameras>, Path(id): Path<String>) -> Result<Response, AppError> {
    c.find(&id)?;
    let Some(t) = c.thumbnails.get(&id) else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            format!("camera `{id}` has no picture yet: none of its heartbeats brought one"),
        ));
    };
    Ok(thumbnail_response(&t))
}

/// A heartbeat's picture as a JPEG response.
fn thumbnail_response(t: &ds_cameras::CameraThumbnail) -> Response {
    picture_response(t.thumbnail.jpeg.clone(), t.taken_at, PictureSource::Heartbeat)
}

/// Where a `snapshot.jpg` answer's picture comes from (its `X-Picture-Source` header).
#[derive(Clone, Copy, Debug)]
enum PictureSource {
    /// The camera's last decoded heartbeat: no session to the camera.
    Heartbeat,
    /// A grab from the camera now (or within the preview cache's few seconds).
    Grab,
}

fn picture_response(jpeg: Vec<u8>, taken_at: Timestamp, source: PictureSource) -> Response {
    let source = match source {
        PictureSource::Heartbeat => "heartbeat",
        PictureSource::Grab => "grab",
    };
    (
        [
            (header::CONTENT_TYPE, "image/jpeg".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::HeaderName::from_static("x-taken-at"), taken_at.to_string()),
            (header::HeaderName::from_static("x-picture-source"), source.to_owned()),
        ],
        jpeg,
    )
        .into_response()
}

/// Pictures one client may be grabbing from the cameras at once (over all clients, the
/// preview cache's `max_grabs`).
pub const MAX_GRABS_PER_CLIENT: usize = 1;
/// The `Retry-After` of a refused grab.
pub const GRAB_RETRY_AFTER: Duration = Duration::from_secs(2);

/// `GET /api/cameras/{id}/snapshot.jpg`: the camera's picture. Anonymous readers (with
/// `public_read`) get its last heartbeat's thumbnail, which costs the camera nothing; an
/// authenticated request gets a full-size picture grabbed from the camera now (or a few
/// seconds ago: grabs are cached, shared by concurrent requests, limited to one per camera,
/// [`MAX_GRABS_PER_CLIENT`] per client and a few overall, and run to their end even when the
/// request goes away, holding their places till then).
/// `X-Picture-Source` says which (`heartbeat` or `grab`).
pub async fn snapshot(
    State(c): State<Cameras>,
    Path(id): Path<String>,
    crate::http::Client(ip): crate::http::Client,
    who: Option<axum::Extension<crate::http::Authenticated>>,
) -> Result<Response, AppError> {
    let (cam, list) = c.find(&id)?;
    if who.is_none() {
        return match c.thumbnails.get(&id) {
            Some(t) => Ok(thumbnail_response(&t)),
            None => Err(AppError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "camera `{id}` has no picture yet: none of its heartbeats brought one (a picture grabbed from the \
                     camera now needs authentication: log in on the dashboard or send an API token)"
                ),
            )),
        };
    }
    let verify_tls = list.probe_settings(&cam).verify_tls;
    let share = || {
        c.grabbers
            .claim(ip, MAX_GRABS_PER_CLIENT)
            .ok_or(ds_cameras::preview::PreviewError::ClientBusy { limit: MAX_GRABS_PER_CLIENT })
    };
    match c.previews.get_claiming(&id, &cam.url, verify_tls, share).await {
        Ok(p) => Ok(picture_response(p.jpeg.clone(), p.taken_at, PictureSource::Grab)),
        Err(e) => {
            use ds_cameras::preview::PreviewError as P;
            let status = match &e {
                P::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                P::Auth { .. } | P::NotFound { .. } | P::Tls { .. } | P::Other { .. } => StatusCode::BAD_GATEWAY,
                P::BadUrl { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                P::Busy { .. } | P::ClientBusy { .. } => {
                    let full = if matches!(e, P::Busy { .. }) { Full::All } else { Full::Client };
                    let message = format!("{e} (the last heartbeat's picture is at /api/cameras/{id}/thumbnail.jpg)");
                    return Err(AppError::no_place(full, message, GRAB_RETRY_AFTER));
                }
            };
            // The message names the URL with its password masked.
            Err(AppError::new(status, e.to_string()))
        }
    }
}
