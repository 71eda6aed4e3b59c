//! The camera monitor's HTTP side: the API that shows what it found ([`api`]) and the
//! editor of its list ([`editor`]). The monitor itself is `ds-camera-monitor`.

pub mod api;
pub mod editor;
pub mod export;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, put};
use ds_camera_db::Store;
use ds_config::{Camera, CamerasConfig};
use ds_wire::cameras::{CameraConfig, ThumbnailInfo};

pub use ds_camera_monitor::{Fleet, Live};

/// What the camera handlers share.
#[derive(Debug)]
pub struct Shared {
    pub fleet: Arc<Fleet>,
    pub live: Arc<Live>,
    /// `None` when the database could not be opened: the prober still runs and the grid
    /// shows live states, without history.
    pub store: Option<Store>,
    pub summary: api::SummaryCache,
    /// The places for CSV exports ([`export::MAX_CONCURRENT_EXPORTS`]).
    pub exports: export::ExportPlaces,
    /// Pictures grabbed on demand, reused for a few seconds.
    pub previews: ds_cameras::preview::PreviewCache,
    /// The grabs each client has running ([`api::MAX_GRABS_PER_CLIENT`]).
    pub grabbers: Arc<ds_http::places::ClientPlaces>,
    /// Each camera's thumbnail from its last decoded heartbeat (none until set).
    pub thumbnails: ds_cameras::Thumbnails,
}

/// Cheap to clone: the handlers' state.
#[derive(Clone, Debug)]
pub struct Cameras(Arc<Shared>);

impl std::ops::Deref for Cameras {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Cameras {
    pub fn new(fleet: Arc<Fleet>, live: Arc<Live>, store: Option<Store>) -> Cameras {
        Cameras(Arc::new(Shared {
            fleet,
            live,
            store,
            summary: api::SummaryCache::default(),
            exports: export::ExportPlaces::default(),
            previews: ds_cameras::preview::PreviewCache::new(Default::default()),
            grabbers: Arc::default(),
            thumbnails: ds_cameras::Thumbnails::default(),
        }))
    }

    /// The same, serving the prober's `thumbnails` (call before cloning).
    pub fn with_thumbnails(mut self, thumbnails: ds_cameras::Thumbnails) -> Cameras {
        match Arc::get_mut(&mut self.0) {
            Some(shared) => shared.thumbnails = thumbnails,
            None => tracing::error!("camera thumbnails set after the handlers' state was shared; none will show"),
        }
        self
    }

    /// One camera's configuration as the API shows it: credentials masked.
    pub fn config_json(&self, camera: &Camera, list: &CamerasConfig) -> CameraConfig {
        let settings = list.probe_settings(camera);
        CameraConfig {
            id: camera.stable_id(),
            name: camera.name.clone(),
            url: camera.masked_url(),
            heartbeat_seconds: settings.heartbeat_seconds,
            heartbeat_override: camera.heartbeat_seconds,
            verify_tls: settings.verify_tls,
            verify_tls_override: camera.verify_tls,
            frozen_seconds: settings.frozen_seconds,
            frozen_override: camera.frozen_seconds,
            black_seconds: settings.black_seconds,
            black_override: camera.black_seconds,
            max_packets_lost: settings.max_packets_lost,
            max_packets_lost_override: camera.max_packets_lost,
        }
    }

    /// The camera's newest thumbnail, as the API describes it.
    pub fn thumbnail_info(&self, camera_id: &str) -> Option<ThumbnailInfo> {
        self.thumbnails.get(camera_id).map(|t| ThumbnailInfo {
            taken_at: t.taken_at,
            width: t.thumbnail.width,
            height: t.thumbnail.height,
        })
    }
}

/// The camera routes, ready to merge into the dashboard's router.
pub fn routes(cameras: Cameras) -> Router {
    Router::new()
        .route("/api/cameras", get(api::list).post(editor::create))
        .route("/api/cameras/settings", put(editor::settings))
        .route("/api/cameras/events", get(api::events))
        .route("/api/cameras/export.csv", get(export::csv))
        .route("/api/cameras/{id}", get(api::one).put(editor::update).delete(editor::delete))
        .route("/api/cameras/{id}/history", get(api::history))
        .route("/api/cameras/{id}/changes", get(api::changes))
        .route("/api/cameras/{id}/snapshot.jpg", get(api::snapshot))
        .route("/api/cameras/{id}/thumbnail.jpg", get(api::thumbnail))
        .route("/cameras", get(api::page))
        .route("/api/streampulse/status", get(api::streampulse))
        .with_state(cameras)
}
