//! The web monitor's two files: `web-config.json` and the `cameras.yaml` it names. Shared by
//! the service and the CLI so both check them the same way.

use std::process::ExitCode;

use anyhow::Context as _;
use ds_config::WebConfig;
use ds_runtime::{ConfigArgs, check_config, load_or_default};

/// The web config, loaded and checked.
#[derive(Debug)]
pub struct Settings {
    pub web: WebConfig,
}

/// Loads the web config. The camera list it points to is not loaded here: the service's
/// camera monitor loads it, and runs the cameras it can when one of them has an error (one
/// camera's typo must not stop the dashboard, nor `set-password` or `new-token`).
pub fn load(args: &ConfigArgs) -> anyhow::Result<Settings> {
    let path = args.path_for::<WebConfig>();
    let loaded = load_or_default::<WebConfig>(args).with_context(|| format!("cannot use {}", path.display()))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let mut web = loaded.config;
    web.resolve_paths(&path);
    Ok(Settings { web })
}

/// `check-config`: the web config, then the camera list it names.
pub fn check(args: &ConfigArgs) -> ExitCode {
    let path = args.path_for::<WebConfig>();
    check_config::<WebConfig>(&path, |web| web.camera_list_problems(&path))
}
