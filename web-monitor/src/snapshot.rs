//! The kiosk's status as the dashboard shows it, sampled in the background.
//!
//! Asking the streamer and systemd on every request would make `/api/status` as slow as its
//! slowest part and pass every client's load on to them (a page, a CLI and a monitoring system
//! polling at once). Instead one task samples every [`SAMPLE_INTERVAL`] (and at once when
//! asked, after a control action), serializes the document once, and every reader (the API,
//! the live page's server-sent events, `/api/status/history`) shares that snapshot. The
//! document carries `sampled_at`, so a reader can tell its age.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use ds_runtime::Shutdown;
use ds_wire::health::{ServiceDetails, ServiceReport, StreamerStatus};
use ds_wire::status::{DashboardStatus, UnitStatus, Unreachable};
use tokio::sync::{Notify, watch};

use crate::history::{Figures, History};
use crate::upstream::Streamer;

/// How often the status is sampled; the live page hears each sample.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// One sample: the `/api/status` document and its serialized form.
#[derive(Debug)]
pub struct Snapshot {
    pub document: DashboardStatus,
    /// `document` as JSON, serialized once for every reader.
    pub body: Bytes,
}

/// What the sampler asks.
#[derive(Clone, Debug)]
pub struct Sources {
    pub streamer: Streamer,
    pub systemd: crate::systemd_link::SystemdLink,
    pub units: Vec<String>,
    /// The machine as this service measures it (so it stays visible while the streamer is
    /// down).
    pub machine: ds_runtime::system::SystemMonitor,
    /// Whether the wall clock is synchronised.
    pub clock: crate::clock_sync::ClockWatch,
}

/// The latest snapshot, shared; cheap to clone.
#[derive(Clone, Debug)]
pub struct StatusCache {
    rx: watch::Receiver<Arc<Snapshot>>,
    wake: Arc<Notify>,
}

impl StatusCache {
    /// Takes the first sample, then samples in the background until `shutdown`, recording each
    /// sample's machine figures in `history`.
    pub async fn start(sources: Sources, history: History, shutdown: Shutdown) -> StatusCache {
        let first = snapshot(&sources, &history).await;
        let (tx, rx) = watch::channel(Arc::new(first));
        let wake = Arc::new(Notify::new());
        let cache = StatusCache { rx, wake: wake.clone() };
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    () = shutdown.wait() => break,
                    _ = ticks.tick() => {}
                    () = wake.notified() => ticks.reset(),
                }
                let next = tokio::select! {
                    () = shutdown.wait() => break,
                    s = snapshot(&sources, &history) => s,
                };
                tx.send_replace(Arc::new(next));
            }
            // Dropping the sender ends every subscriber's event stream, so open pages let the
            // server shut down.
        });
        cache
    }

    pub fn latest(&self) -> Arc<Snapshot> {
        self.rx.borrow().clone()
    }

    /// The current snapshot at once, then each new one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }

    /// Samples again now instead of at the next tick (after something changed a unit).
    pub fn refresh(&self) {
        self.wake.notify_one();
    }
}

async fn snapshot(sources: &Sources, history: &History) -> Snapshot {
    let (now, sampled) = (jiff::Timestamp::now(), std::time::Instant::now());
    let document = sample(sources, now).await;
    history.record(sampled, Figures::from_status(&document));
    let body = Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
    Snapshot { document, body }
}

/// The seed's `/api/status` shape (service, stream, health, system), plus every watched unit,
/// the GPUs' memory, what could not be reached, and when it was sampled.
async fn sample(s: &Sources, now: jiff::Timestamp) -> DashboardStatus {
    let (streamer, units, gpu) = tokio::join!(
        s.streamer.json::<StreamerStatus>("/api/status"),
        unit_states(s),
        tokio::task::spawn_blocking(|| ds_runtime::gpu::vram(std::path::Path::new(ds_runtime::gpu::DRM_DIR)))
    );
    let mut unreachable = Vec::new();
    let streamer = match streamer {
        Ok(v) => Some(v),
        Err(error) => {
            unreachable.push(Unreachable { part: "streamer".into(), error });
            None
        }
    };
    let units = match units {
        Ok(u) => u,
        Err(error) => {
            unreachable.push(Unreachable { part: "systemd".into(), error });
            Vec::new()
        }
    };
    let streamer_unit = units.iter().find(|u| u.name == crate::systemd_link::STREAMER_UNIT);
    let (service, stream, health) = match streamer {
        Some(st) => (Some(st.service), Some(st.stream), Some(st.health)),
        None => (None, None, None),
    };
    let service = match streamer_unit {
        Some(u) => Some(ServiceReport {
            active: u.active_state == "active",
            details: ServiceDetails { active_state: u.active_state.clone(), sub_state: u.sub_state.clone() },
            managed_by_systemd: None,
        }),
        None => service,
    };
    DashboardStatus {
        service,
        stream,
        health,
        system: s.machine.latest(),
        gpu: gpu.unwrap_or_default(),
        clock: Some(s.clock.latest()),
        services: units,
        unreachable,
        sampled_at: now,
    }
}

async fn unit_states(s: &Sources) -> Result<Vec<UnitStatus>, String> {
    let systemd = s.systemd.get()?;
    let mut out = Vec::new();
    for unit in &s.units {
        let state = systemd.unit(unit).await.map_err(|e| {
            s.systemd.suspect(&e);
            e.to_string()
        })?;
        out.push(UnitStatus::from(&state));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamer's port is closed and there is no systemd: both are named as unreachable,
    /// with no numbers standing in for theirs; the machine, measured here, is still shown and
    /// recorded in the history.
    #[tokio::test]
    async fn names_the_parts_it_cannot_reach_and_serves_the_same_snapshot_to_everyone() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let shutdown = Shutdown::new();
        let machine = ds_runtime::system::SystemMonitor::default();
        tokio::spawn(machine.clone().run(std::env::temp_dir(), shutdown.clone()));
        let started = std::time::Instant::now();
        while machine.latest().is_none() {
            assert!(started.elapsed() < Duration::from_secs(5), "the machine is measured");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let systemd = crate::systemd_link::SystemdLink::down("not in this test");
        let clock = crate::clock_sync::ClockWatch::fixed(ds_wire::system::ClockSync::unknown("not in this test"));
        let sources = Sources { streamer: Streamer::new(&url, None), systemd, units: vec![], machine, clock };
        let history = History::new();
        let cache = StatusCache::start(sources, history.clone(), shutdown.clone()).await;
        // One snapshot for every assertion: under load the sampler may take the next one
        // meanwhile.
        let snapshot = cache.latest();
        let doc = &snapshot.document;
        let parts: Vec<_> = doc.unreachable.iter().map(|u| u.part.as_str()).collect();
        assert_eq!(parts, ["streamer", "systemd"], "{doc:#?}");
        assert!(doc.health.is_none() && doc.stream.is_none() && doc.service.is_none(), "{doc:#?}");
        let system = doc.system.expect("the machine without the streamer");
        let memory = system.memory_percent;
        assert!(memory > 0.0 && memory <= 100.0, "{doc:#?}");
        assert!(system.disk_usage_percent.is_some(), "{doc:#?}");
        let written: serde_json::Value = serde_json::from_slice(&snapshot.body).unwrap();
        assert!(written["health"].is_null() && written["stream"].is_null(), "null, as before: {written:#}");
        assert!(written["sampled_at"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{written:#}");
        // Compared as bytes: parsing the body back may round a float by one unit in the last
        // place.
        assert_eq!(snapshot.body, serde_json::to_vec(doc).unwrap(), "the body is the document");
        assert!(
            history.points().iter().any(|p| p.figures.memory_percent == Some(memory)),
            "the sample is in the history"
        );

        let mut rx = cache.subscribe();
        rx.borrow_and_update();
        cache.refresh();
        tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
        shutdown.trigger();
        let ended = tokio::time::timeout(Duration::from_secs(5), async { while rx.changed().await.is_ok() {} }).await;
        assert!(ended.is_ok(), "subscribers see the end when the sampler stops");
    }
}
