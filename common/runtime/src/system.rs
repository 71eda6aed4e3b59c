//! The machine as the services report it: CPU, memory, the process's own memory, and how
//! full the stream's output directory's filesystem is. The streamer's health API and the
//! dashboard both show it; the dashboard measures it itself, so the machine stays visible
//! while the streamer is down. Sampled in the background because CPU use is
//! a difference between two readings.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, RefreshKind, System};

use crate::Shutdown;

pub use ds_wire::system::SystemSample;

/// The latest reading, shared.
#[derive(Clone, Debug, Default)]
pub struct SystemMonitor {
    latest: Arc<Mutex<Option<SystemSample>>>,
}

/// How often the machine is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

impl SystemMonitor {
    pub fn latest(&self) -> Option<SystemSample> {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples until shutdown.
    pub async fn run(self, output_dir: PathBuf, shutdown: Shutdown) {
        let mut sys = match System::new_with_specifics(RefreshKind::nothing()) {
            Ok(sys) => sys,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read system statistics; they are left out");
                return;
            }
        };
        let pid = Pid::from_u32(std::process::id());
        loop {
            sys.refresh_cpu_usage();
            sys.refresh_memory();
            sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_memory(),
            );
            let total = sys.total_memory().max(1) as f64;
            let sample = SystemSample {
                cpu_percent: f64::from(sys.global_cpu_usage()),
                memory_percent: (total - sys.available_memory() as f64) / total * 100.0,
                process_memory_mb: sys.process(pid).map_or(0.0, |p| p.memory() as f64 / 1_048_576.0),
                disk_usage_percent: crate::disk::usage_percent(&output_dir),
            };
            *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(sample);
            if !shutdown.sleep(SAMPLE_INTERVAL).await {
                return;
            }
        }
    }
}
