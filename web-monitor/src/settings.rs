//! The web monitor's two files: `web-config.json` and the `cameras.yaml` it names. Shared by
//! the service and the CLI so both check them the same way.

use std::process::ExitCode;

use anyhow::Context as _;
use ds_config::{Diagnostic, Severity, WebConfig};
use ds_http::tls::Certificate;
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

/// The certificate the config names for HTTPS (`tls_cert_file`, `tls_key_file`), read and
/// checked; `None` when HTTPS is off.
pub fn certificate(web: &WebConfig) -> anyhow::Result<Option<Certificate>> {
    let Some((cert, key)) = web.tls_files() else { return Ok(None) };
    Certificate::load(cert, key)
        .map(Some)
        .context("cannot serve HTTPS with tls_cert_file and tls_key_file (fix them, or remove both for plain HTTP)")
}

/// `check-config`: the web config, the certificate and key it names, then the camera list.
pub fn check(args: &ConfigArgs) -> ExitCode {
    let path = args.path_for::<WebConfig>();
    check_config::<WebConfig>(&path, |web| {
        let mut problems = certificate_problem(web, &path).into_iter().collect::<Vec<_>>();
        problems.extend(web.camera_list_problems(&path));
        problems
    })
}

/// What is wrong with the certificate and key files `web` names (relative to `config_file`'s
/// directory), as a problem of the config's `tls_cert_file` or `tls_key_file` key.
fn certificate_problem(web: &WebConfig, config_file: &std::path::Path) -> Option<Diagnostic> {
    let mut web = web.clone();
    web.resolve_paths(config_file);
    let (cert, key) = web.tls_files()?;
    let e = Certificate::load(cert, key).err()?;
    Some(Diagnostic {
        severity: Severity::Error,
        file: config_file.to_owned(),
        location: None,
        path: if e.is_about_key() { "tls_key_file" } else { "tls_cert_file" }.to_owned(),
        value: None,
        message: e.to_string(),
    })
}
