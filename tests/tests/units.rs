//! The shipped systemd units, judged by systemd's own tools: `systemd-analyze verify` accepts each
//! one, and `systemd-analyze security --offline=true` rates its exposure at or below the target
//! (streamer 4.0; watchdog and dashboard 3.0; the demo units 4.0). The scores are printed.
//!
//! `verify` checks that ExecStart= names an executable, so the units are verified as copies whose
//! `/usr/local/bin/` points at the binaries this test run built.

use std::path::{Path, PathBuf};
use std::process::Command;

use ds_tests::bins::{bin, workspace_root};

/// Each unit and the highest exposure score `systemd-analyze security` may give it.
const TARGETS: &[(&str, f64)] = &[
    ("desktop-streamer.service", 4.0),
    ("desktop-streamer-watchdog.service", 3.0),
    ("desktop-streamer-web.service", 3.0),
    ("demo/desktop-streamer-demo-display.service", 4.0),
    ("demo/desktop-streamer-demo-content.service", 4.0),
];

fn unit_path(relative: &str) -> PathBuf {
    workspace_root().join("systemd").join(relative)
}

fn run(command: &mut Command) -> (bool, String) {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?} (is systemd installed?): {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The overall score from `systemd-analyze security`'s last line:
/// `→ Overall exposure level for NAME: 1.4 OK 🙂`.
fn overall_score(text: &str) -> Option<f64> {
    let line = text.lines().rev().find(|l| l.contains("Overall exposure level"))?;
    line.rsplit(": ").next()?.split_whitespace().next()?.parse().ok()
}

#[test]
fn every_unit_scores_at_or_below_its_exposure_target() {
    let mut report = Vec::new();
    let mut over = Vec::new();
    for (unit, target) in TARGETS {
        let path = unit_path(unit);
        let (ok, text) =
            run(Command::new("systemd-analyze").args(["security", "--offline=true", "--no-pager"]).arg(&path));
        assert!(ok, "systemd-analyze security failed for {unit}:\n{text}");
        let score = overall_score(&text).unwrap_or_else(|| panic!("no overall score for {unit} in:\n{text}"));
        report.push(format!("{unit}: {score:.1} (target <= {target:.1})"));
        if score > *target {
            over.push(format!("{unit} scores {score:.1}, above {target:.1}:\n{text}"));
        }
    }
    println!("systemd-analyze security --offline=true:\n  {}", report.join("\n  "));
    assert!(over.is_empty(), "{}", over.join("\n"));
}

#[test]
fn the_score_parser_reads_systemd_analyze_output_and_a_weak_unit_fails_the_target() {
    // A unit with no hardening at all must score far above every target; this keeps the test
    // above from passing on a parser that reads nothing.
    let dir = tempfile::tempdir().unwrap();
    let weak = dir.path().join("weak.service");
    std::fs::write(&weak, "[Service]\nExecStart=/bin/true\n").unwrap();
    let (ok, text) = run(Command::new("systemd-analyze").args(["security", "--offline=true", "--no-pager"]).arg(&weak));
    assert!(ok, "{text}");
    let score = overall_score(&text).expect("a score");
    assert!(score > 8.0, "an unhardened unit scored {score}");
}

#[test]
fn systemd_analyze_verify_accepts_every_unit() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = bin("desktop-streamer").parent().expect("binary directory").to_owned();
    let mut problems = Vec::new();
    for (unit, _) in TARGETS {
        let text = std::fs::read_to_string(unit_path(unit)).unwrap();
        // Installed paths point at this build's binaries; the demo units run Debian's Xorg and
        // gst-launch-1.0, which tests/deps.sh installs.
        let text = text.replace("/usr/local/bin/", &format!("{}/", bin_dir.display()));
        let name = Path::new(unit).file_name().unwrap();
        let copy = dir.path().join(name);
        std::fs::write(&copy, text).unwrap();
        let (ok, output) = run(Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&copy));
        println!(
            "systemd-analyze verify {unit}: {}",
            if ok && output.trim().is_empty() { "clean" } else { "problems" }
        );
        if !ok || !output.trim().is_empty() {
            problems.push(format!("{unit}:\n{output}"));
        }
    }
    assert!(problems.is_empty(), "systemd-analyze verify:\n{}", problems.join("\n"));
}

#[test]
fn the_streamer_unit_is_notify_with_a_watchdog_and_never_reboots() {
    let text = std::fs::read_to_string(unit_path("desktop-streamer.service")).unwrap();
    for line in ["Type=notify", "NotifyAccess=main", "Restart=always", "StartLimitAction=none"] {
        assert!(text.lines().any(|l| l.trim() == line), "desktop-streamer.service lacks {line}");
    }
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).map(str::trim);
    let watchdog: u32 = value("WatchdogSec").expect("WatchdogSec=").trim_end_matches('s').parse().unwrap();
    assert!((10..=300).contains(&watchdog), "WatchdogSec={watchdog}");
    let restart_sec: u32 = value("RestartSec").expect("RestartSec=").trim_end_matches('s').parse().unwrap();
    assert!(restart_sec <= 5, "RestartSec={restart_sec} is not short");
    for path in std::fs::read_dir(workspace_root().join("systemd")).unwrap().map(|e| e.unwrap().path()) {
        if path.extension().is_some_and(|e| e == "service") {
            let unit = std::fs::read_to_string(&path).unwrap();
            let settings = unit.lines().filter(|l| !l.trim_start().starts_with('#'));
            let actions: Vec<&str> = settings.filter(|l| l.contains("reboot") || l.contains("poweroff")).collect();
            assert!(actions.is_empty(), "{} may reboot the machine: {actions:?}", path.display());
            assert!(unit.lines().any(|l| l.starts_with("User=")), "{} runs as root", path.display());
        }
    }
}
