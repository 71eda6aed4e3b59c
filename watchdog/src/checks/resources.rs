//! CPU, memory, the disk holding the stream, and GPU memory, against the configured
//! thresholds. A value has to stay over a threshold for `sustain_seconds` before it is news:
//! a CPU spike while the kiosk application loads a scene is normal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ds_config::watchdog::ResourceChecks;
use sysinfo::{MemoryRefreshKind, RefreshKind, System};

use super::Finding;
use crate::alert::Severity;
use ds_runtime::gpu::{DRM_DIR, vram};

/// One reading of the machine, in percent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    /// Filesystem of the stream's output directory.
    pub disk: Option<(PathBuf, f64)>,
    /// Per card.
    pub gpu_memory: Vec<(String, f64)>,
}

#[derive(Debug)]
pub struct ResourceCheck {
    system: Option<System>,
    /// Resource → since when it has been over its warning threshold.
    over_since: HashMap<String, Instant>,
}

impl Default for ResourceCheck {
    fn default() -> Self {
        let system = System::new_with_specifics(RefreshKind::nothing())
            .map_err(|e| tracing::warn!(error = %e, "cannot read system statistics; CPU and memory checks are off"))
            .ok();
        ResourceCheck { system, over_since: HashMap::new() }
    }
}

impl ResourceCheck {
    /// Reads the machine now. CPU use is measured since the previous reading.
    pub fn read(&mut self, output_dir: Option<&Path>) -> Reading {
        let (cpu, memory) = match self.system.as_mut() {
            Some(sys) => {
                sys.refresh_cpu_usage();
                sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
                let total = sys.total_memory().max(1) as f64;
                (Some(f64::from(sys.global_cpu_usage())), Some((total - sys.available_memory() as f64) / total * 100.0))
            }
            None => (None, None),
        };
        let disk = output_dir.and_then(|d| ds_runtime::disk::usage_percent(d).map(|p| (d.to_owned(), p)));
        let gpu_memory = vram(Path::new(DRM_DIR)).into_iter().map(|v| (v.card.clone(), v.percent())).collect();
        Reading { cpu, memory, disk, gpu_memory }
    }

    /// Findings from a reading, with the sustain rule applied.
    pub fn judge(&mut self, r: &Reading, limits: &ResourceChecks, now: Instant) -> Vec<Finding> {
        let mut candidates: Vec<(String, String, f64, u32, u32)> = Vec::new();
        if let Some(cpu) = r.cpu {
            candidates.push(("cpu".into(), "CPU".into(), cpu, limits.cpu_warning_percent, limits.cpu_critical_percent));
        }
        if let Some(m) = r.memory {
            candidates.push((
                "memory".into(),
                "memory".into(),
                m,
                limits.memory_warning_percent,
                limits.memory_critical_percent,
            ));
        }
        if let Some((dir, d)) = &r.disk {
            let what = format!("disk holding {}", dir.display());
            candidates.push(("disk".into(), what, *d, limits.disk_warning_percent, limits.disk_critical_percent));
        }
        for (card, g) in &r.gpu_memory {
            let what = format!("GPU memory ({card})");
            candidates.push((
                format!("gpu:{card}"),
                what,
                *g,
                limits.gpu_memory_warning_percent,
                limits.gpu_memory_critical_percent,
            ));
        }
        let sustain = Duration::from_secs(limits.sustain_seconds.into());
        let mut findings = Vec::new();
        for (key, what, value, warning, critical) in candidates {
            if value < f64::from(warning) {
                self.over_since.remove(&key);
                continue;
            }
            let since = *self.over_since.entry(key.clone()).or_insert(now);
            if now.duration_since(since) < sustain {
                continue;
            }
            let severity = if value >= f64::from(critical) { Severity::Critical } else { Severity::Warning };
            findings.push(Finding {
                kind: format!("resource:{key}"),
                severity,
                title: format!("high {what} use"),
                details: format!(
                    "{what} at {value:.0}% for at least {} s (warning at {warning}%, critical at {critical}%).",
                    now.duration_since(since).as_secs()
                ),
            });
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_must_stay_over_its_threshold_for_the_sustain_time() {
        let mut c = ResourceCheck { system: None, over_since: HashMap::new() };
        let limits = ResourceChecks { sustain_seconds: 60, ..ResourceChecks::default() };
        let t0 = Instant::now();
        let hot = Reading { cpu: Some(95.0), memory: Some(40.0), ..Reading::default() };
        assert!(c.judge(&hot, &limits, t0).is_empty(), "a spike is not news");
        assert!(c.judge(&hot, &limits, t0 + Duration::from_secs(30)).is_empty());
        let f = c.judge(&hot, &limits, t0 + Duration::from_secs(61));
        assert_eq!((f[0].kind.as_str(), f[0].severity), ("resource:cpu", Severity::Warning));
        let cool = Reading { cpu: Some(20.0), ..hot.clone() };
        assert!(c.judge(&cool, &limits, t0 + Duration::from_secs(62)).is_empty());
        assert!(c.judge(&hot, &limits, t0 + Duration::from_secs(63)).is_empty(), "the sustain time starts over");
        let full = Reading { disk: Some(("/var/lib/desktop-streamer/hls".into(), 97.0)), ..Reading::default() };
        let limits = ResourceChecks { sustain_seconds: 0, ..limits };
        let f = c.judge(&full, &limits, t0);
        assert_eq!((f[0].kind.as_str(), f[0].severity), ("resource:disk", Severity::Critical));
        assert!(f[0].title.contains("/var/lib/desktop-streamer/hls"));
    }

    #[test]
    fn a_real_reading_has_cpu_memory_and_disk() {
        let mut c = ResourceCheck::default();
        let dir = tempfile::tempdir().unwrap();
        c.read(Some(dir.path()));
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let r = c.read(Some(dir.path()));
        assert!(r.cpu.is_some_and(|v| (0.0..=100.0).contains(&v)), "{r:?}");
        assert!(r.memory.is_some_and(|v| v > 0.0 && v <= 100.0), "{r:?}");
        assert!(r.disk.as_ref().is_some_and(|(_, v)| (0.0..=100.0).contains(v)), "{r:?}");
    }
}
