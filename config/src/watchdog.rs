//! `watchdog-config.json`: what the watchdog checks, how it heals and whom it tells. The seed
//! file's keys keep their meaning; the rest are extensions with defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::load::{ConfigFile, Format};
use crate::secret::Secret;
use crate::validate::Validator;

pub const DEFAULT_CHECK_INTERVAL_S: u32 = 30;
pub const DEFAULT_MAX_ALERTS: u32 = 10;
pub const DEFAULT_ALERT_COOLDOWN_S: u32 = 300;
pub const DEFAULT_UNITS: &[&str] = &["desktop-streamer.service", "desktop-streamer-web.service"];
pub const DEFAULT_STREAMER_URL: &str = "http://127.0.0.1:8888";
pub const DEFAULT_WEB_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/desktop-streamer/watchdog";
pub const DEFAULT_SMTP_PORT: u16 = 587;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchdogConfig {
    /// Seconds between checks. Unit failures are also seen at once through D-Bus signals.
    /// Default 30; 1..=3600.
    pub check_interval: u32,
    /// Alerts sent at most per `alert_cooldown` period; the rest are counted and sent as one
    /// summary when the period ends. Default 10; 1..=1000.
    pub max_alerts: u32,
    /// Seconds before an alert of the same type is sent again, and the length of the
    /// `max_alerts` period. Default 300; 0..=86400.
    pub alert_cooldown: u32,
    pub auto_recovery: AutoRecovery,
    pub email_alerts: EmailAlerts,
    pub webhook_alerts: WebhookAlerts,
    /// D-Bus bus that reaches systemd: `system` (default) or `session` (user units).
    pub bus: Bus,
    /// systemd units watched and, when allowed, restarted.
    /// Default desktop-streamer.service and desktop-streamer-web.service.
    pub units: Vec<String>,
    /// Base URL of the streamer's health API. Default http://127.0.0.1:8888.
    pub streamer_url: String,
    /// Base URL of the web monitor (camera states, dashboard link). Default
    /// http://127.0.0.1:8080.
    pub web_url: String,
    /// Directory for undelivered alerts and alert history. Default
    /// /var/lib/desktop-streamer/watchdog.
    pub state_dir: PathBuf,
    /// Hours an undelivered alert is retried before it is given up (and recorded as expired).
    /// Default 24; 1..=720.
    pub alert_max_age_hours: u32,
    /// A file holding an API token of the dashboard (`desktop-streamer-web new-token
    /// watchdog`), sent with the camera check: needed when the dashboard's `public_read` is
    /// off. Read at each check. Default none.
    pub web_token_file: Option<PathBuf>,
    /// A CA certificate (PEM, one or more) trusted for an `https://` `web_url` besides the
    /// system's: the private CA that signed the dashboard's `tls_cert_file`, or that file
    /// itself when it is self-signed. Default none.
    pub web_ca_file: Option<PathBuf>,
    /// Link put in alerts. Default none (then `web_url`).
    pub dashboard_url: Option<String>,
    pub stream: StreamChecks,
    pub resources: ResourceChecks,
    pub restart_limit: RestartLimit,
    /// Seconds a camera may stay down before an alert (its recovery is announced too).
    /// Default 120; 0..=86400.
    pub camera_grace_seconds: u32,
}

/// `stream`: when the stream counts as stale or troubled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamChecks {
    /// Age of the newest segment in seconds that raises a warning. Default 10.
    pub stale_warning_seconds: u32,
    /// Age in seconds that is critical and, with `auto_recovery.stream_restart`, restarts the
    /// streamer. Also how long its health API may stay unreachable. Default 30.
    pub stale_critical_seconds: u32,
    /// Streamer faults within its error window that raise a warning. Default 5.
    pub errors_warning: u32,
    /// Restarts of one unit by systemd (NRestarts) within `restart_limit.window_seconds` that
    /// raise a warning. Default 3.
    pub frequent_restarts: u32,
}

impl Default for StreamChecks {
    fn default() -> Self {
        StreamChecks { stale_warning_seconds: 10, stale_critical_seconds: 30, errors_warning: 5, frequent_restarts: 3 }
    }
}

/// `resources`: thresholds in percent of CPU (all cores), memory, the disk holding the
/// streamer's output, and GPU memory (where the kernel exposes it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceChecks {
    pub cpu_warning_percent: u32,
    pub cpu_critical_percent: u32,
    pub memory_warning_percent: u32,
    pub memory_critical_percent: u32,
    pub disk_warning_percent: u32,
    pub disk_critical_percent: u32,
    pub gpu_memory_warning_percent: u32,
    pub gpu_memory_critical_percent: u32,
    /// Seconds a value must stay over a threshold before it is reported (CPU spikes are
    /// normal). Default 60.
    pub sustain_seconds: u32,
}

impl Default for ResourceChecks {
    fn default() -> Self {
        ResourceChecks {
            cpu_warning_percent: 90,
            cpu_critical_percent: 98,
            memory_warning_percent: 85,
            memory_critical_percent: 95,
            disk_warning_percent: 85,
            disk_critical_percent: 95,
            gpu_memory_warning_percent: 90,
            gpu_memory_critical_percent: 98,
            sustain_seconds: 60,
        }
    }
}

/// `restart_limit`: restarts the watchdog itself asks systemd for, per unit. Kept well under
/// systemd's own start limit so a unit is never pushed into it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartLimit {
    /// Restarts of one unit within `window_seconds`. Default 3; 1..=20.
    pub max_restarts: u32,
    /// Default 300; 10..=86400.
    pub window_seconds: u32,
}

impl Default for RestartLimit {
    fn default() -> Self {
        RestartLimit { max_restarts: 3, window_seconds: 300 }
    }
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            check_interval: DEFAULT_CHECK_INTERVAL_S,
            max_alerts: DEFAULT_MAX_ALERTS,
            alert_cooldown: DEFAULT_ALERT_COOLDOWN_S,
            auto_recovery: AutoRecovery::default(),
            email_alerts: EmailAlerts::default(),
            webhook_alerts: WebhookAlerts::default(),
            bus: Bus::System,
            units: DEFAULT_UNITS.iter().map(|s| (*s).to_owned()).collect(),
            streamer_url: DEFAULT_STREAMER_URL.to_owned(),
            web_url: DEFAULT_WEB_URL.to_owned(),
            web_token_file: None,
            web_ca_file: None,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            alert_max_age_hours: 24,
            dashboard_url: None,
            stream: StreamChecks::default(),
            resources: ResourceChecks::default(),
            restart_limit: RestartLimit::default(),
            camera_grace_seconds: 120,
        }
    }
}

/// `auto_recovery`: which repairs the watchdog may make without a human.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoRecovery {
    /// Restart a watched unit that is down or failed. Default true.
    pub service_restart: bool,
    /// Restart the streamer when the stream is stale or its health API does not answer.
    /// Default true.
    pub stream_restart: bool,
    /// Check CPU, memory, disk and GPU memory. Default true.
    pub resource_monitoring: bool,
}

impl Default for AutoRecovery {
    fn default() -> Self {
        AutoRecovery { service_restart: true, stream_restart: true, resource_monitoring: true }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    System,
    Session,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption: only for a relay on the same machine.
    None,
}

/// `email_alerts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmailAlerts {
    /// Default false.
    pub enabled: bool,
    /// SMTP host name. Default empty (required when enabled).
    pub smtp_server: String,
    /// Default 587.
    pub smtp_port: u16,
    /// Seed key: true means STARTTLS (implicit TLS on port 465), false means none. `tls`
    /// overrides it. Default true.
    pub use_tls: bool,
    /// `starttls`, `tls` or `none`; overrides `use_tls`. Default none set.
    pub tls: Option<SmtpTls>,
    /// Sender address. Default empty (required when enabled).
    pub from_email: String,
    /// One recipient or a list. Default none (required when enabled).
    #[serde(deserialize_with = "one_or_many")]
    pub to_email: Vec<String>,
    /// SMTP user; empty means no authentication. Default empty.
    pub username: String,
    /// SMTP password. Prefer `password_file` or `password_env` so that the config file can
    /// stay readable. Default empty.
    pub password: Secret,
    /// File whose first line is the SMTP password. Default none.
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the SMTP password. Default none.
    pub password_env: Option<String>,
    /// A CA certificate (PEM) to trust for the SMTP server besides the system's, for a relay
    /// with a private or self-signed certificate. Default none.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for EmailAlerts {
    fn default() -> Self {
        EmailAlerts {
            enabled: false,
            smtp_server: String::new(),
            smtp_port: DEFAULT_SMTP_PORT,
            use_tls: true,
            tls: None,
            from_email: String::new(),
            to_email: Vec::new(),
            username: String::new(),
            password: Secret::default(),
            password_file: None,
            password_env: None,
            tls_ca_file: None,
        }
    }
}

impl EmailAlerts {
    /// The connection security in effect, from `tls` or else the seed's `use_tls`.
    pub fn tls_mode(&self) -> SmtpTls {
        match (self.tls, self.use_tls) {
            (Some(mode), _) => mode,
            (None, true) if self.smtp_port == 465 => SmtpTls::Tls,
            (None, true) => SmtpTls::Starttls,
            (None, false) => SmtpTls::None,
        }
    }
}

/// Webhook payload shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Recognised from the URL (hooks.slack.com, discord.com/api/webhooks), else `json`.
    Auto,
    Slack,
    Discord,
    Json,
}

/// `webhook_alerts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookAlerts {
    /// Default false.
    pub enabled: bool,
    /// One URL or a list. Default none (required when enabled).
    #[serde(deserialize_with = "one_or_many")]
    pub url: Vec<String>,
    /// Default `auto`.
    pub format: WebhookFormat,
}

impl Default for WebhookAlerts {
    fn default() -> Self {
        WebhookAlerts { enabled: false, url: Vec::new(), format: WebhookFormat::Auto }
    }
}

/// Accepts `"a"` as well as `["a", "b"]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a string or a list of strings")]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl WatchdogConfig {
    pub fn check_interval(&self) -> Duration {
        Duration::from_secs(self.check_interval.into())
    }

    pub fn alert_cooldown(&self) -> Duration {
        Duration::from_secs(self.alert_cooldown.into())
    }

    pub fn alert_max_age(&self) -> Duration {
        Duration::from_secs(u64::from(self.alert_max_age_hours) * 3600)
    }

    /// The link alerts carry.
    pub fn dashboard(&self) -> &str {
        self.dashboard_url.as_deref().unwrap_or(&self.web_url)
    }
}

impl ConfigFile for WatchdogConfig {
    const FILE_NAME: &'static str = "watchdog-config.json";
    const FORMAT: Format = Format::Json;

    fn validate(&self, v: &mut Validator<'_>) {
        v.range("check_interval", self.check_interval, 1..=3600);
        v.range("max_alerts", self.max_alerts, 1..=1000);
        v.range("alert_cooldown", self.alert_cooldown, 0..=86_400);
        for (i, unit) in self.units.iter().enumerate() {
            if !is_unit_name(unit) {
                v.error(&format!("units[{i}]"), "must be a systemd unit name such as desktop-streamer.service");
            }
        }
        for (key, url) in [("streamer_url", &self.streamer_url), ("web_url", &self.web_url)] {
            check_http_url(v, key, url);
        }
        if !self.state_dir.is_absolute() {
            v.error("state_dir", "must be an absolute directory path");
        }
        v.range("alert_max_age_hours", self.alert_max_age_hours, 1..=720);
        if let Some(url) = &self.dashboard_url {
            check_http_url(v, "dashboard_url", url);
        }
        v.range("camera_grace_seconds", self.camera_grace_seconds, 0..=86_400);
        let st = &self.stream;
        v.range("stream.stale_warning_seconds", st.stale_warning_seconds, 2..=3600);
        v.range("stream.stale_critical_seconds", st.stale_critical_seconds, st.stale_warning_seconds..=86_400);
        v.range("stream.errors_warning", st.errors_warning, 1..=10_000);
        v.range("stream.frequent_restarts", st.frequent_restarts, 1..=1000);
        let r = &self.resources;
        for (name, warning, critical) in [
            ("cpu", r.cpu_warning_percent, r.cpu_critical_percent),
            ("memory", r.memory_warning_percent, r.memory_critical_percent),
            ("disk", r.disk_warning_percent, r.disk_critical_percent),
            ("gpu_memory", r.gpu_memory_warning_percent, r.gpu_memory_critical_percent),
        ] {
            v.range(&format!("resources.{name}_warning_percent"), warning, 1..=100);
            v.range(&format!("resources.{name}_critical_percent"), critical, warning..=100);
        }
        v.range("resources.sustain_seconds", r.sustain_seconds, 0..=3600);
        v.range("restart_limit.max_restarts", self.restart_limit.max_restarts, 1..=20);
        v.range("restart_limit.window_seconds", self.restart_limit.window_seconds, 10..=86_400);

        let e = &self.email_alerts;
        if e.enabled {
            v.non_empty("email_alerts.smtp_server", &e.smtp_server, "the SMTP host name");
            if e.smtp_port == 0 {
                v.error("email_alerts.smtp_port", "must be 1..=65535");
            }
            check_address(v, "email_alerts.from_email", &e.from_email);
            if e.to_email.is_empty() {
                v.error("email_alerts.to_email", "needs at least one address when email_alerts.enabled is true");
            }
            for (i, to) in e.to_email.iter().enumerate() {
                check_address(v, &format!("email_alerts.to_email[{i}]"), to);
            }
            if !e.password.is_empty() && readable_by_others(&v.document().file) {
                v.warn(
                    "email_alerts.password",
                    "this file can be read by every user of the machine; `chmod 600` it, or move the \
                     password to a file only the watchdog reads and name it in password_file",
                );
            }
            let sources = [!e.password.is_empty(), e.password_file.is_some(), e.password_env.is_some()];
            if sources.iter().filter(|s| **s).count() > 1 {
                v.error(
                    "email_alerts.password",
                    "give the password one way only: password, password_file or password_env",
                );
            }
        }
        if self.web_token_file.as_ref().is_some_and(|p| !p.is_absolute()) {
            v.error("web_token_file", "must be an absolute file path");
        }
        if self.web_ca_file.as_ref().is_some_and(|p| !p.is_absolute()) {
            v.error("web_ca_file", "must be an absolute file path");
        }
        if let Some(p) = &e.password_file
            && !p.is_absolute()
        {
            v.error("email_alerts.password_file", "must be an absolute file path");
        }

        let w = &self.webhook_alerts;
        if w.enabled && w.url.is_empty() {
            v.error("webhook_alerts.url", "needs at least one URL when webhook_alerts.enabled is true");
        }
        if w.enabled {
            for (i, url) in w.url.iter().enumerate() {
                let path = if w.url.len() == 1 && v.document().get("webhook_alerts.url").is_some_and(|u| u.is_string())
                {
                    "webhook_alerts.url".to_owned()
                } else {
                    format!("webhook_alerts.url[{i}]")
                };
                check_http_url(v, &path, url);
            }
        }
    }
}

/// Whether users other than the owner and group may read the file.
fn readable_by_others(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

pub(crate) fn is_unit_name(name: &str) -> bool {
    const SUFFIXES: &[&str] = &[".service", ".socket", ".timer", ".target", ".path", ".mount"];
    SUFFIXES.iter().any(|s| name.len() > s.len() && name.ends_with(s))
        && name.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

fn check_http_url(v: &mut Validator<'_>, path: &str, text: &str) {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(_) => v.error(path, "must be an http:// or https:// URL with a host"),
        Err(e) => v.error(path, format!("is not a URL ({e}); expected http://HOST[:PORT]/…")),
    }
}

fn check_address(v: &mut Validator<'_>, path: &str, address: &str) {
    let ok = address
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && (host.contains('.') || host == "localhost"));
    if !ok {
        v.error(path, "must be an email address such as ops@example.com");
    }
}
