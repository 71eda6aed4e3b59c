//! Which configuration the watchdog runs with. A file that cannot be used at start does not
//! stop the watchdog (systemd would only restart it into the same error until its start limit,
//! and nobody would hear of it): it runs with the last configuration that worked, kept in its
//! state directory, or else with the defaults, and alerts the trouble through whatever
//! channel that configuration has.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use ds_config::watchdog::DEFAULT_STATE_DIR;
use ds_config::{Problems, WatchdogConfig};
use ds_runtime::{ConfigArgs, load_or_default};

use crate::alert::Severity;
use crate::conditions::Finding;

/// In the state directory: a copy of the last configuration file that loaded (it may hold the
/// SMTP password, so only its owner reads it).
pub const LAST_GOOD_FILE: &str = "last-good-config.json";

/// The configuration to run with, and the trouble to alert when it is not the file's.
pub fn config_for_run(args: &ConfigArgs) -> (WatchdogConfig, Option<Finding>) {
    choose(args, Path::new(DEFAULT_STATE_DIR))
}

/// [`config_for_run`], with `default_state_dir` where the defaults keep their state.
fn choose(args: &ConfigArgs, default_state_dir: &Path) -> (WatchdogConfig, Option<Finding>) {
    let path = args.path_for::<WatchdogConfig>();
    match load_or_default::<WatchdogConfig>(args) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            keep_last_good(&path, &loaded.config);
            (loaded.config, None)
        }
        Err(problems) => {
            tracing::error!(file = %path.display(), "configuration cannot be used:\n{problems}");
            fallback(&path, &problems, default_state_dir)
        }
    }
}

/// Keeps a copy of the configuration file that just loaded as `config` (nothing when there is
/// no file: the defaults need no copy).
pub fn keep_last_good(path: &Path, config: &WatchdogConfig) {
    let Ok(text) = std::fs::read(path) else { return };
    let copy = config.state_dir.join(LAST_GOOD_FILE);
    let written = std::fs::create_dir_all(&config.state_dir).and_then(|()| {
        ds_config::write_atomic_with(&copy, |f| {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            std::io::Write::write_all(f, &text)
        })
    });
    if let Err(e) = written {
        tracing::warn!(file = %copy.display(), error = %e, "cannot keep a copy of the working configuration");
    }
}

fn fallback(path: &Path, problems: &Problems, default_state_dir: &Path) -> (WatchdogConfig, Option<Finding>) {
    let state_dir = state_dir_named_in(path).unwrap_or_else(|| default_state_dir.to_owned());
    let copy = state_dir.join(LAST_GOOD_FILE);
    let (config, instead) = match ds_config::load_file::<WatchdogConfig>(&copy) {
        Ok(loaded) => (loaded.config, format!("the last configuration that worked (kept in {})", copy.display())),
        Err(_) => (
            WatchdogConfig { state_dir, ..WatchdogConfig::default() },
            "its defaults, with no alert channel (no configuration that worked was kept)".to_owned(),
        ),
    };
    tracing::warn!(file = %path.display(), "the watchdog runs with {instead}");
    let finding = Finding {
        kind: "watchdog:config".into(),
        severity: Severity::Critical,
        title: "watchdog configuration cannot be used".into(),
        details: format!(
            "{} cannot be used, so the watchdog runs with {instead}. Fix the file (`desktop-streamer-watchdog \
             check-config` lists every problem), then reload the watchdog:\n{problems}",
            path.display()
        ),
    };
    (config, Some(finding))
}

/// The `state_dir` a configuration file names, if it is JSON(C) enough to read that one key.
fn state_dir_named_in(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc = ds_config::jsonc::parse(path, &text).ok()?;
    let dir = PathBuf::from(doc.value.get("state_dir")?.as_str()?);
    dir.is_absolute().then_some(dir)
}

/// The finding for a configuration a reload refused (the running one stays).
pub fn reload_refused(problems: &Problems) -> Finding {
    Finding {
        kind: "watchdog:config".into(),
        severity: Severity::Warning,
        title: "new watchdog configuration refused".into(),
        details: format!("The reloaded configuration has errors; the running one stays:\n{problems}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_runs_on_the_last_good_copy_kept_in_its_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let path = dir.path().join("watchdog-config.json");
        let good = format!(r#"{{"state_dir": {:?}, "check_interval": 7}}"#, state.display().to_string());
        std::fs::write(&path, &good).unwrap();
        let args = ConfigArgs { config: Some(path.clone()) };
        // Not the machine's: where the defaults would keep state in this test.
        let defaults = dir.path().join("default-state");
        let (config, trouble) = choose(&args, &defaults);
        assert_eq!((config.check_interval, trouble.is_none()), (7, true));
        let copy = state.join(LAST_GOOD_FILE);
        assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);

        std::fs::write(&path, good.replace("\"check_interval\": 7", "\"check_interval\": 0")).unwrap();
        let (config, trouble) = choose(&args, &defaults);
        assert_eq!(config.check_interval, 7, "the last good one");
        let trouble = trouble.expect("the trouble is alerted");
        assert_eq!(trouble.severity, Severity::Critical);
        assert!(trouble.details.contains("check_interval = 0: must be 1..=3600"), "{}", trouble.details);
        assert!(trouble.details.contains("the last configuration that worked"), "{}", trouble.details);

        // Not even JSON, and no copy where the defaults keep state: the defaults, said so.
        std::fs::remove_file(&copy).unwrap();
        std::fs::write(&path, "{ state_dir: ").unwrap();
        let (config, trouble) = choose(&args, &defaults);
        assert_eq!(config.check_interval, WatchdogConfig::default().check_interval);
        assert_eq!(config.state_dir, defaults);
        assert!(trouble.unwrap().details.contains("its defaults, with no alert channel"));
    }
}
