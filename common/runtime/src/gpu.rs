//! GPU memory where the kernel exposes it: AMD's amdgpu driver publishes
//! `/sys/class/drm/card*/device/mem_info_vram_used` and `mem_info_vram_total` (bytes).
//! Other drivers publish nothing comparable, and then there is nothing to report.
//! The watchdog checks these figures; the dashboard shows them.

use std::fs;
use std::path::Path;

/// Where the kernel lists GPUs.
pub const DRM_DIR: &str = "/sys/class/drm";

pub use ds_wire::system::VramUse;

/// Every card under `drm` (normally `/sys/class/drm`) that reports video memory.
pub fn vram(drm: &Path) -> Vec<VramUse> {
    let read = |p: &Path| fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<u64>().ok());
    let mut cards: Vec<VramUse> = fs::read_dir(drm)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let card = entry.file_name().to_string_lossy().into_owned();
            // card0, card1 …; connectors such as card0-HDMI-A-1 share the device.
            if !card.starts_with("card") || card.contains('-') {
                return None;
            }
            let dev = entry.path().join("device");
            Some(VramUse {
                used_bytes: read(&dev.join("mem_info_vram_used"))?,
                total_bytes: read(&dev.join("mem_info_vram_total"))?,
                card,
            })
        })
        .collect();
    cards.sort_by(|a, b| a.card.cmp(&b.card));
    cards
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No AMD GPU exists on the test machines; this lays out the two sysfs files the way the
    /// amdgpu driver does, as a stand-in (the only part of the kernel this reads).
    #[test]
    fn reads_amdgpu_vram_files_and_skips_cards_without_them() {
        let drm = tempfile::tempdir().unwrap();
        let dev = drm.path().join("card1/device");
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("mem_info_vram_used"), "1073741824\n").unwrap();
        fs::write(dev.join("mem_info_vram_total"), "4294967296\n").unwrap();
        fs::create_dir_all(drm.path().join("card0/device")).unwrap();
        fs::create_dir_all(drm.path().join("card1-HDMI-A-1")).unwrap();
        let v = vram(drm.path());
        assert_eq!(v, [VramUse { card: "card1".into(), used_bytes: 1 << 30, total_bytes: 4 << 30 }]);
        assert!((v[0].percent() - 25.0).abs() < 1e-9);
        assert!(vram(Path::new("/nonexistent")).is_empty());
    }
}
