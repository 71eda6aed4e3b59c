//! `web-config.json`: the dashboard and camera heartbeat monitor (`desktop-streamer-web`),
//! also read by the `desktop-streamer-monitor` CLI to find the dashboard.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::load::{ConfigFile, Format};
use crate::validate::Validator;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_CAMERAS_FILE: &str = "/etc/desktop-streamer/cameras.yaml";
pub const DEFAULT_STREAMER_CONFIG: &str = "/etc/desktop-streamer/config.json";
pub const DEFAULT_DATABASE: &str = "/var/lib/desktop-streamer/cameras.db";
pub const DEFAULT_STREAMER_URL: &str = "http://127.0.0.1:8888";
pub const DEFAULT_AUTH_FILE: &str = "/var/lib/desktop-streamer/web-auth.json";
pub const DEFAULT_LOG_DIR: &str = "/var/log/desktop-streamer";
pub const DEFAULT_WATCHDOG_STATE_DIR: &str = "/var/lib/desktop-streamer/watchdog";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebConfig {
    /// Address of the dashboard and its API. Default 0.0.0.0:8080.
    pub listen: SocketAddr,
    /// The camera list. A relative path is taken from this file's directory.
    /// Default /etc/desktop-streamer/cameras.yaml.
    pub cameras_file: PathBuf,
    /// The streamer's config (for its HLS directory). Relative paths as above.
    /// Default /etc/desktop-streamer/config.json.
    pub streamer_config: PathBuf,
    /// SQLite database of heartbeats and state changes. Default
    /// /var/lib/desktop-streamer/cameras.db.
    pub database: PathBuf,
    /// Base URL of the streamer's health API. Default http://127.0.0.1:8888.
    pub streamer_url: String,
    /// The file holding the token the streamer's `stream_token_file` holds (the same file, or
    /// a copy this service may read): sent with every stream request passed on. Default none.
    pub streamer_token_file: Option<PathBuf>,
    /// Whether pages and read-only APIs answer without logging in. State-changing calls
    /// always need a session or an API token. Default true.
    pub public_read: bool,
    /// The admin password's argon2 hash and the API tokens' hashes (written by
    /// `desktop-streamer-web set-password` and `new-token`). Default
    /// /var/lib/desktop-streamer/web-auth.json.
    pub auth_file: PathBuf,
    /// Where the services write their log files (`*.log`, JSON lines). Default
    /// /var/log/desktop-streamer.
    pub log_dir: PathBuf,
    /// The watchdog's state directory, for the alert history. Default
    /// /var/lib/desktop-streamer/watchdog.
    pub watchdog_state_dir: PathBuf,
    /// D-Bus bus that reaches systemd: `system` (default) or `session`.
    pub bus: crate::watchdog::Bus,
    /// The units shown and controlled. Default the three desktop-streamer services.
    pub units: Vec<String>,
    /// How long camera history is kept in `database`.
    pub camera_history: CameraHistory,
    /// Origins, besides the dashboard's own address, whose pages may make state-changing
    /// calls: the address a browser shows when the dashboard is behind a reverse proxy that
    /// does not pass the `Host` header on, e.g. `["https://kiosk.example.com"]`. Default none.
    pub trusted_origins: Vec<String>,
    /// Addresses of reverse proxies in front of the dashboard. A request from one of them is
    /// counted (login rate limit, logs) for the client its `X-Forwarded-For` names, not for
    /// the proxy, so one guesser behind the proxy cannot lock everyone out. Default none: the
    /// header is ignored, since anyone can send it.
    pub trusted_proxies: Vec<String>,
    /// Host names the dashboard answers to besides any IP address, `localhost` and this
    /// machine's name (and `NAME.local`): a name, `.example.com` for every name under a domain,
    /// or `*` for any. A request for another name is refused (403), so a web page cannot
    /// rebind its own name to the kiosk and read the dashboard through a visitor's browser.
    /// Default none.
    pub allowed_hosts: Vec<String>,
    /// HTTPS: the certificate chain the dashboard serves (PEM, the server's certificate first,
    /// then any intermediates). Set together with `tls_key_file`; with neither the dashboard
    /// speaks plain HTTP. Read at start and on SIGHUP. Relative paths as above. Default none.
    pub tls_cert_file: Option<PathBuf>,
    /// HTTPS: the private key of `tls_cert_file` (PEM: PKCS#8, RSA or EC, unencrypted).
    /// Default none.
    pub tls_key_file: Option<PathBuf>,
}

/// `camera_history`: retention of the heartbeat database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CameraHistory {
    /// Days every heartbeat is kept; older ones survive as hourly roll-ups. Default 7; 1..=365.
    pub raw_days: u32,
    /// Days the hourly roll-ups and state changes are kept. Default 365; 1..=3650.
    pub hourly_days: u32,
}

pub const DEFAULT_RAW_DAYS: u32 = 7;
pub const DEFAULT_HOURLY_DAYS: u32 = 365;

impl Default for CameraHistory {
    fn default() -> Self {
        CameraHistory { raw_days: DEFAULT_RAW_DAYS, hourly_days: DEFAULT_HOURLY_DAYS }
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            cameras_file: PathBuf::from(DEFAULT_CAMERAS_FILE),
            streamer_config: PathBuf::from(DEFAULT_STREAMER_CONFIG),
            database: PathBuf::from(DEFAULT_DATABASE),
            streamer_url: DEFAULT_STREAMER_URL.to_owned(),
            streamer_token_file: None,
            public_read: true,
            auth_file: PathBuf::from(DEFAULT_AUTH_FILE),
            log_dir: PathBuf::from(DEFAULT_LOG_DIR),
            watchdog_state_dir: PathBuf::from(DEFAULT_WATCHDOG_STATE_DIR),
            bus: crate::watchdog::Bus::System,
            units: ["desktop-streamer.service", "desktop-streamer-watchdog.service", "desktop-streamer-web.service"]
                .map(str::to_owned)
                .to_vec(),
            camera_history: CameraHistory::default(),
            trusted_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl WebConfig {
    /// Makes relative paths relative to the directory of the file they came from.
    pub fn resolve_paths(&mut self, config_file: &Path) {
        let base = config_file.parent().unwrap_or(Path::new("."));
        for p in [
            &mut self.cameras_file,
            &mut self.streamer_config,
            &mut self.database,
            &mut self.auth_file,
            &mut self.log_dir,
            &mut self.watchdog_state_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        for p in [&mut self.tls_cert_file, &mut self.tls_key_file].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The certificate and key files when HTTPS is configured (both keys set).
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        Some((self.tls_cert_file.as_deref()?, self.tls_key_file.as_deref()?))
    }

    /// The problems of the camera list this file names (its `cameras_file`, relative to
    /// `config_file`'s directory): what `check-config` prints after the file's own.
    pub fn camera_list_problems(&self, config_file: &Path) -> Vec<crate::Diagnostic> {
        let mut web = self.clone();
        web.resolve_paths(config_file);
        match crate::load_file::<crate::CamerasConfig>(&web.cameras_file) {
            Ok(loaded) => loaded.warnings,
            Err(problems) => problems.diagnostics,
        }
    }
}

impl ConfigFile for WebConfig {
    const FILE_NAME: &'static str = "web-config.json";
    const FORMAT: Format = Format::Json;

    fn validate(&self, v: &mut Validator<'_>) {
        for (key, p) in [
            ("cameras_file", &self.cameras_file),
            ("streamer_config", &self.streamer_config),
            ("database", &self.database),
        ] {
            if p.as_os_str().is_empty() {
                v.error(key, "must be a file path");
            }
        }
        for (i, unit) in self.units.iter().enumerate() {
            if !crate::watchdog::is_unit_name(unit) {
                v.error(&format!("units[{i}]"), "must be a systemd unit name such as desktop-streamer.service");
            }
        }
        v.range("camera_history.raw_days", self.camera_history.raw_days, 1..=365);
        v.range("camera_history.hourly_days", self.camera_history.hourly_days, 1..=3650);
        if self.camera_history.hourly_days < self.camera_history.raw_days {
            v.error("camera_history.hourly_days", "must be at least camera_history.raw_days");
        }
        for (i, origin) in self.trusted_origins.iter().enumerate() {
            if !is_origin(origin) {
                v.error(
                    &format!("trusted_origins[{i}]"),
                    "must be an origin such as https://kiosk.example.com: http or https, a host, an optional port, \
                     no path",
                );
            }
        }
        v.host_names("allowed_hosts", &self.allowed_hosts);
        for (i, proxy) in self.trusted_proxies.iter().enumerate() {
            if proxy.parse::<std::net::IpAddr>().is_err() {
                v.error(
                    &format!("trusted_proxies[{i}]"),
                    "must be an IP address such as 127.0.0.1 or ::1 (no host name)",
                );
            }
        }
        if self.streamer_token_file.as_ref().is_some_and(|p| !p.is_absolute()) {
            v.error("streamer_token_file", "must be an absolute file path");
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) | (None, Some(_)) => {
                let (set, unset) = if self.tls_cert_file.is_some() {
                    ("tls_cert_file", "tls_key_file")
                } else {
                    ("tls_key_file", "tls_cert_file")
                };
                v.error(
                    set,
                    format!(
                        "tls_cert_file and tls_key_file go together: set {unset} too (HTTPS), or remove {set} \
                         (plain HTTP)"
                    ),
                );
            }
            (Some(cert), Some(key)) => {
                for (path, p) in [("tls_cert_file", cert), ("tls_key_file", key)] {
                    if p.as_os_str().is_empty() {
                        v.error(path, "must be a file path");
                    }
                }
            }
            (None, None) => {}
        }
        match url::Url::parse(&self.streamer_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => v.error("streamer_url", "must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8888"),
        }
    }
}

/// Whether `text` is a web origin as a browser sends it in `Origin`: `http(s)://host[:port]`,
/// with nothing after the authority but an optional `/`.
pub fn is_origin(text: &str) -> bool {
    let Ok(u) = url::Url::parse(text) else { return false };
    let bare = text.strip_suffix('/').unwrap_or(text);
    matches!(u.scheme(), "http" | "https")
        && u.host().is_some()
        && u.username().is_empty()
        && u.password().is_none()
        && u.path() == "/"
        && u.query().is_none()
        && u.fragment().is_none()
        && !bare.ends_with(['/', '?', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<WebConfig, Vec<String>> {
        crate::load::load_str::<WebConfig>(Path::new("web-config.json"), text)
            .map(|l| l.config)
            .map_err(|p| p.errors().map(ToString::to_string).collect())
    }

    #[test]
    fn tls_files_go_together_and_a_lone_one_names_both() {
        let ok = load(r#"{"tls_cert_file": "kiosk.pem", "tls_key_file": "kiosk.key"}"#).unwrap();
        assert_eq!(ok.tls_files(), Some((Path::new("kiosk.pem"), Path::new("kiosk.key"))));
        assert_eq!(load("{}").unwrap().tls_files(), None);
        for (text, set) in [
            (r#"{"tls_cert_file": "kiosk.pem"}"#, "tls_cert_file"),
            (r#"{"tls_key_file": "kiosk.key"}"#, "tls_key_file"),
        ] {
            let errors = load(text).unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:#?}");
            assert!(errors[0].contains(set), "{errors:#?}");
            assert!(errors[0].contains("tls_cert_file and tls_key_file go together"), "{errors:#?}");
        }
    }

    #[test]
    fn trusted_proxies_are_ip_addresses() {
        let ok = load(r#"{"trusted_proxies": ["127.0.0.1", "::1"]}"#).unwrap();
        assert_eq!(ok.trusted_proxies, ["127.0.0.1", "::1"]);
        let errors = load(r#"{"trusted_proxies": ["localhost"]}"#).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains("trusted_proxies[0]") && errors[0].contains("must be an IP address"), "{errors:#?}");
    }

    #[test]
    fn trusted_origins_are_origins_and_a_wrong_one_is_named() {
        let ok = load(r#"{"trusted_origins": ["https://kiosk.example.com", "http://10.0.0.5:8080/"]}"#).unwrap();
        assert_eq!(ok.trusted_origins, ["https://kiosk.example.com", "http://10.0.0.5:8080/"]);
        assert!(load("{}").unwrap().trusted_origins.is_empty());
        for bad in ["kiosk.example.com", "https://kiosk.example.com/dashboard", "ftp://kiosk", "https://u:p@kiosk"] {
            let errors = load(&format!(r#"{{"trusted_origins": ["https://ok.example", "{bad}"]}}"#)).unwrap_err();
            assert_eq!(errors.len(), 1, "{bad}: {errors:#?}");
            assert!(
                errors[0].contains("trusted_origins[1]") && errors[0].contains("must be an origin such as"),
                "{bad}: {errors:#?}"
            );
        }
    }
}
