//! The web monitor's two files: `web-config.json` and the `cameras.yaml` it names. Shared by
//! the service and the CLI so both check them the same way.

use std::process::ExitCode;

use anyhow::Context as _;
use ds_config::{CamerasConfig, WebConfig, load_file};
use ds_runtime::{ConfigArgs, check_config, load_or_default};

/// Both files, loaded and checked.
#[derive(Debug)]
pub struct Settings {
    pub web: WebConfig,
    pub cameras: CamerasConfig,
}

/// Loads the web config, then the camera list it points to (a missing camera list means no
/// cameras yet, with a warning).
pub fn load(args: &ConfigArgs) -> anyhow::Result<Settings> {
    let path = args.path_for::<WebConfig>();
    let loaded = load_or_default::<WebConfig>(args).with_context(|| format!("cannot use {}", path.display()))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let mut web = loaded.config;
    web.resolve_paths(&path);
    let cameras = if web.cameras_file.exists() {
        let c = load_file::<CamerasConfig>(&web.cameras_file)
            .with_context(|| format!("cannot use {}", web.cameras_file.display()))?;
        for w in &c.warnings {
            tracing::warn!("{w}");
        }
        c.config
    } else {
        tracing::warn!(file = %web.cameras_file.display(), "no camera list; monitoring no cameras");
        CamerasConfig::default()
    };
    Ok(Settings { web, cameras })
}

/// `check-config`: the web config, then the camera list it names.
pub fn check(args: &ConfigArgs) -> ExitCode {
    let path = args.path_for::<WebConfig>();
    check_config::<WebConfig>(&path, |web| web.camera_list_problems(&path))
}
