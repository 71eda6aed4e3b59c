//! The ways an alert reaches a person: one email channel and one channel per webhook URL.
//! Each delivery ends in success, a temporary failure (retry later) or a permanent one (retrying
//! cannot help); the outbox acts on that difference.

use std::fmt;

use ds_config::WatchdogConfig;

use crate::alert::Alert;
use crate::email::EmailChannel;
use crate::webhook::WebhookChannel;

/// Why a delivery did not succeed. The text never contains a password or a webhook token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The peer may accept it later: connection refused, timeout, SMTP 4xx, HTTP 408/429/5xx.
    #[error("{0} (will retry)")]
    Temporary(String),
    /// Retrying cannot help: SMTP 5xx, authentication refused, HTTP 4xx, a malformed message.
    #[error("{0} (gave up)")]
    Permanent(String),
}

impl DeliveryError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, DeliveryError::Temporary(_))
    }

    /// The reason without the retry verdict.
    pub fn reason(&self) -> &str {
        match self {
            DeliveryError::Temporary(r) | DeliveryError::Permanent(r) => r,
        }
    }
}

/// A configuration that does not give a usable channel: what is wrong, and with which key.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("email_alerts.{key}: {value:?} is not a usable email address ({reason})")]
    Address { key: String, value: String, reason: String },
    #[error(
        "email_alerts.password_file {path}: cannot read the SMTP password ({source}); \
         check the path and that the watchdog's user may read it"
    )]
    PasswordFile { path: std::path::PathBuf, source: std::io::Error },
    #[error("email_alerts.password_file {path} is empty; its first line must be the SMTP password")]
    EmptyPasswordFile { path: std::path::PathBuf },
    #[error("email_alerts.password_env: environment variable {name} is not set (or not UTF-8); set it for the service")]
    PasswordEnv { name: String },
    #[error(
        "email_alerts.username is set but no password is given: set password_file, password_env or password, \
         or clear username for a relay without authentication"
    )]
    NoPassword,
    #[error(
        "email_alerts.tls_ca_file {path}: cannot use it as a CA certificate ({reason}); \
         give a PEM file the watchdog's user may read"
    )]
    CaFile { path: std::path::PathBuf, reason: String },
    #[error("email_alerts.smtp_server {server:?}: cannot set up TLS ({reason})")]
    Tls { server: String, reason: String },
    #[error("webhook_alerts.url {shown}: {reason}")]
    WebhookUrl { shown: String, reason: String },
    #[error("cannot set up the HTTP client for webhooks: {0}")]
    HttpClient(String),
}

/// Every problem found while building channels, with the channels that are usable anyway, so
/// the watchdog can report a broken channel through one that works.
#[derive(Debug)]
pub struct ChannelErrors {
    pub usable: Vec<Channel>,
    pub errors: Vec<ChannelError>,
}

impl fmt::Display for ChannelErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} alert channel(s) unusable", self.errors.len())?;
        for e in &self.errors {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ChannelErrors {}

/// One way to deliver alerts.
#[derive(Debug)]
pub enum Channel {
    Email(EmailChannel),
    Webhook(WebhookChannel),
}

impl Channel {
    /// Stable name of the channel, the key of its deliveries on disk and in the history:
    /// `email`, or `webhook:<scheme://host/first-segment…>#<hash of the whole URL>` (the hash
    /// tells apart two URLs on the same host without showing their secret part).
    pub fn id(&self) -> String {
        match self {
            Channel::Email(_) => EmailChannel::ID.to_owned(),
            Channel::Webhook(w) => w.id(),
        }
    }

    pub async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        match self {
            Channel::Email(e) => e.deliver(alert).await,
            Channel::Webhook(w) => w.deliver(alert).await,
        }
    }
}

/// The enabled channels of `config`: email when `email_alerts.enabled`, one webhook channel per
/// URL when `webhook_alerts.enabled`. On any problem the error still carries the usable ones.
pub fn channels_from_config(config: &WatchdogConfig) -> Result<Vec<Channel>, ChannelErrors> {
    let mut usable = Vec::new();
    let mut errors = Vec::new();
    if config.email_alerts.enabled {
        match EmailChannel::from_config(&config.email_alerts) {
            Ok(c) => usable.push(Channel::Email(c)),
            Err(e) => errors.push(e),
        }
    }
    let hooks = &config.webhook_alerts;
    if hooks.enabled {
        for url in &hooks.url {
            match WebhookChannel::new(url, hooks.format) {
                Ok(c) => usable.push(Channel::Webhook(c)),
                Err(e) => errors.push(e),
            }
        }
    }
    if errors.is_empty() { Ok(usable) } else { Err(ChannelErrors { usable, errors }) }
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust releases, for names kept on disk.
pub(crate) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable() {
        // Pinned: ids on disk from an older build must still match.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn broken_channels_are_reported_and_working_ones_kept() {
        let mut config = WatchdogConfig::default();
        config.webhook_alerts.enabled = true;
        config.webhook_alerts.url = vec!["http://127.0.0.1:9/hook".to_owned()];
        config.email_alerts.enabled = true;
        config.email_alerts.from_email = "watchdog@example.com".to_owned();
        config.email_alerts.to_email = vec!["ops@example.com".to_owned()];
        config.email_alerts.smtp_server = "127.0.0.1".to_owned();
        config.email_alerts.password_env = Some("DS_TEST_NO_SUCH_VARIABLE".to_owned());
        config.email_alerts.username = "ops".to_owned();
        let err = channels_from_config(&config).unwrap_err();
        assert_eq!(err.usable.len(), 1);
        assert!(err.usable[0].id().starts_with("webhook:http://127.0.0.1:9/hook#"), "{}", err.usable[0].id());
        assert!(err.to_string().contains("DS_TEST_NO_SUCH_VARIABLE is not set"), "{err}");
    }
}
