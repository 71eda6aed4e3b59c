//! What every channel shares with the outbox: how a delivery ended ([`DeliveryError`]: a
//! temporary failure is retried later, a permanent one is not, since retrying cannot help), and
//! why a channel cannot be built from the configuration ([`ChannelError`], naming the key).

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
