//! The SQLite store of camera heartbeats: raw heartbeats, state changes, hourly roll-ups,
//! and uptime computed from the time spent in each state.
//!
//! How the web service uses it:
//!
//! ```no_run
//! # async fn example() -> Result<(), ds_camera_db::Error> {
//! use ds_camera_db::{Batching, CameraInfo, Options, Store, STANDARD_WINDOWS};
//! let store = Store::open("/var/lib/desktop-streamer/cameras.db".as_ref(), Options::default())?;
//! let now = jiff::Timestamp::now();
//! store.sync_cameras(&[CameraInfo { id: "gate".into(), name: "Gate".into(), heartbeat: std::time::Duration::from_secs(15) }], now)?;
//! let writer = store.writer(Batching::default())?;
//! // In each probe task, never blocking:
//! # let heartbeat = ds_cameras::Heartbeat {
//! #     camera_id: "gate".into(), at: now, state: ds_cameras::State::Up, reason: None, message: None,
//! #     latency_ms: Some(180), codec: Some("h264".into()), width: Some(1280), height: Some(720),
//! #     last_frame_at: Some(now), clock_synchronized: Some(true),
//! # };
//! writer.record(heartbeat)?;
//! // Every few minutes, in spawn_blocking:
//! store.prune(jiff::Timestamp::now())?;
//! // For the grid, in spawn_blocking (windows end at `store.data_now(clock)`, which is later
//! // than the clock after it stepped back):
//! let uptime = store.uptime_all(jiff::Timestamp::now(), &STANDARD_WINDOWS)?;
//! // At shutdown:
//! writer.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Every `Store` method blocks on SQLite: call it from `tokio::task::spawn_blocking`.

mod csv;
mod error;
mod history;
mod options;
mod retention;
pub mod schema;
mod store;
pub mod time;
pub mod timeline;
mod uptime;
mod writer;

pub use csv::{CSV_HEADER, CsvExport, EXPORT_BATCH_ROWS, csv_field, csv_text};
pub use error::{Error, Result};
pub use history::{Bucket, MAX_BUCKETS};
pub use options::{DEFAULT_HEARTBEAT, Options, Retention};
pub use retention::{PLAUSIBLE_CLOCK_SKEW_MS, PruneReport, ROLLUP_DELAY_MS};
pub use store::{CameraInfo, CameraRecord, ChangePage, MAX_HEARTBEATS_PER_QUERY, StateChange, Store};
pub use timeline::StateTime;
pub use uptime::{STANDARD_WINDOWS, Uptime};
pub use writer::{Batching, Writer, WriterStats};
