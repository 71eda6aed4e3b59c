//! `GET /api/cameras/export.csv`: raw heartbeats as CSV, streamed.
//!
//! A year of a large fleet is hundreds of megabytes, and the client reading it may be slow,
//! stalled or gone. So the answer is a chunked body produced in batches
//! ([`ds_camera_db::CsvExport`]): each batch takes the database's read connection for its
//! rows only and is produced only once the body has room for it (a channel of
//! [`EXPORT_CHANNEL_CHUNKS`]); the grid and the watchdog's camera check read between batches,
//! and a stalled reader holds a few chunks, never the connection. When the client goes away
//! (the body is dropped) the producer stops before its next batch. A client that takes no
//! chunk for [`EXPORT_STALL_TIMEOUT`] loses its export, and at most
//! [`MAX_CONCURRENT_EXPORTS`] run at once (more get 503 with `Retry-After`), at most
//! [`MAX_EXPORTS_PER_CLIENT`] for one client (more get 429 with `Retry-After`), so one client
//! cannot hold every place.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ds_camera_db::{CsvExport, EXPORT_BATCH_ROWS, Store};
use ds_http::places::{Full, Place, Places};
use futures_util::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::Cameras;
use super::api::{MAX_HOURS, blocking, db_error};
use crate::http::{AppError, Client, JsonQuery};

/// Exports that may run at once, over all clients.
pub const MAX_CONCURRENT_EXPORTS: usize = 2;
/// Exports one client may run at once.
pub const MAX_EXPORTS_PER_CLIENT: usize = 1;
/// Chunks (of [`EXPORT_BATCH_ROWS`] rows each) produced ahead of the client.
pub const EXPORT_CHANNEL_CHUNKS: usize = 2;
/// A client that takes no chunk for this long loses its export (its place is given back).
pub const EXPORT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The `Retry-After` of a refused export.
pub const EXPORT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The places for exports ([`MAX_CONCURRENT_EXPORTS`], [`MAX_EXPORTS_PER_CLIENT`]).
#[derive(Debug)]
pub struct ExportPlaces(Places);

impl Default for ExportPlaces {
    fn default() -> Self {
        ExportPlaces(Places::new(MAX_CONCURRENT_EXPORTS, MAX_EXPORTS_PER_CLIENT))
    }
}

impl ExportPlaces {
    fn claim(&self, Client(ip): Client) -> Result<Place, AppError> {
        self.0.claim(ip).map_err(|full| {
            let message = match full {
                Full::All => format!(
                    "{MAX_CONCURRENT_EXPORTS} CSV exports are running, the most that may run at once; try again \
                     when one has finished"
                ),
                Full::Client => format!(
                    "your address ({ip}) runs {MAX_EXPORTS_PER_CLIENT} CSV export already, the most one client may \
                     run at once; try again when it has finished"
                ),
            };
            AppError::no_place(full, message, EXPORT_RETRY_AFTER)
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// One camera's id; all cameras when absent.
    pub camera: Option<String>,
    /// How far back, in hours. Default 24; 1..=17568 (raw heartbeats exist for the retention's
    /// `raw_days` only).
    pub hours: Option<u32>,
}

/// `GET /api/cameras/export.csv`: raw heartbeats as CSV, times in UTC and in the list's zone.
pub async fn csv(
    State(c): State<Cameras>,
    client: Client,
    JsonQuery(q): JsonQuery<ExportQuery>,
) -> Result<Response, AppError> {
    if let Some(id) = &q.camera {
        c.find(id)?;
    }
    let hours = q.hours.unwrap_or(24);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(AppError::new(StatusCode::BAD_REQUEST, format!("hours must be 1..={MAX_HOURS}, not {hours}")));
    }
    let store = c.store()?;
    let tz = ds_camera_db::time::time_zone(&c.fleet.current().timezone).map_err(db_error)?;
    let place = c.exports.claim(client)?;
    let span = SignedDuration::from_hours(i64::from(hours));
    let name = format!("cameras-{}.csv", q.camera.as_deref().unwrap_or("all"));
    let export = {
        let store = store.clone();
        blocking(move || {
            // To just after the newest heartbeat (it is inside the range).
            let now = store.data_now(Timestamp::now())? + SignedDuration::from_millis(1);
            store.csv_export(q.camera.as_deref(), now - span, now, &tz)
        })
        .await?
    };
    let (chunks, rx) = mpsc::channel(EXPORT_CHANNEL_CHUNKS);
    let (complete, completed) = oneshot::channel();
    tokio::spawn(produce(store, export, chunks, complete, place));
    // The chunks, then an error if the producer stopped before the end: the client sees a
    // broken transfer, not a CSV that looks complete.
    let end = futures_util::stream::once(completed).filter_map(|done| async move {
        done.is_err().then(|| Err(std::io::Error::other("the CSV export stopped before its end")))
    });
    let body = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok).chain(end);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Why an export ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Complete,
    /// The body was dropped: the client went away.
    ClientGone,
    /// The client took no chunk for [`EXPORT_STALL_TIMEOUT`].
    Stalled,
    /// The database could not be read (logged).
    Failed,
}

/// Produces the export's batches as the body takes them, on the blocking pool one batch at a
/// time; holds `place` until it ends. Sends on `complete` only when every row was sent.
async fn produce(
    store: Store,
    mut export: CsvExport,
    chunks: mpsc::Sender<Bytes>,
    complete: oneshot::Sender<()>,
    place: Place,
) {
    let mut rows = 0;
    let ended = loop {
        // Room for one chunk first: nothing is read while the client does not read.
        let slot = match tokio::time::timeout(EXPORT_STALL_TIMEOUT, chunks.reserve()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => break Ended::ClientGone,
            Err(_) => break Ended::Stalled,
        };
        let batch_store = store.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(EXPORT_BATCH_ROWS * 256);
            let more = export.next_batch(&batch_store, &mut buf, EXPORT_BATCH_ROWS);
            (export, more.map(|more| (buf, more)))
        })
        .await;
        let (more, buf) = match read {
            Ok((back, Ok((buf, more)))) => {
                export = back;
                rows = export.rows();
                (more, buf)
            }
            Ok((_, Err(e))) => {
                tracing::error!(error = %e, "the CSV export could not read the camera database");
                break Ended::Failed;
            }
            Err(e) => {
                tracing::error!(error = %e, "the CSV export's database task failed");
                break Ended::Failed;
            }
        };
        slot.send(Bytes::from(buf));
        if !more {
            let _ = complete.send(());
            break Ended::Complete;
        }
    };
    drop(place);
    // Rows sent into the body (the last chunks may not have reached the client).
    match ended {
        Ended::Complete => tracing::debug!(rows, "CSV export complete"),
        Ended::ClientGone => tracing::debug!(rows, "CSV export stopped: the client went away"),
        Ended::Stalled => tracing::info!(
            rows,
            timeout_s = EXPORT_STALL_TIMEOUT.as_secs(),
            "CSV export stopped: the client took nothing for the timeout"
        ),
        Ended::Failed => {}
    }
}
