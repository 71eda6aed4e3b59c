//! The camera heartbeat monitor inside the dashboard: the camera list ([`fleet`]), its
//! editor ([`editor`]), and the API and page that show what the prober found.

pub mod editor;
pub mod fleet;

use std::sync::Arc;

use axum::Router;
use axum::routing::{post, put};
use ds_config::{Camera, CamerasConfig};
use serde_json::{Value, json};

pub use fleet::Fleet;

/// What the camera handlers share.
#[derive(Clone, Debug)]
pub struct Cameras {
    pub fleet: Arc<Fleet>,
}

impl std::ops::Deref for Cameras {
    type Target = Arc<Fleet>;
    fn deref(&self) -> &Arc<Fleet> {
        &self.fleet
    }
}

impl Cameras {
    pub fn new(fleet: Arc<Fleet>) -> Cameras {
        Cameras { fleet }
    }

    /// One camera as the API shows it: credentials masked.
    pub async fn camera_json(&self, camera: &Camera, list: &CamerasConfig) -> Value {
        json!({
            "id": camera.stable_id(),
            "name": camera.name,
            "url": camera.masked_url(),
            "heartbeat_seconds": camera.heartbeat_seconds.unwrap_or(list.heartbeat_seconds),
            "heartbeat_override": camera.heartbeat_seconds,
        })
    }
}

/// The camera routes, ready to merge into the dashboard's router.
pub fn routes(cameras: Cameras) -> Router {
    Router::new()
        .route("/api/cameras", post(editor::create))
        .route("/api/cameras/settings", put(editor::settings))
        .route("/api/cameras/{id}", put(editor::update).delete(editor::delete))
        .with_state(cameras)
}
