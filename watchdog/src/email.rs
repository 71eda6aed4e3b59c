//! Alerts by email through lettre's tokio SMTP transport: STARTTLS, implicit TLS, or plain for a
//! relay on the same machine; authentication only when a user name is configured. The password
//! is read once, from the config, a file or an environment variable, and is never written to a
//! log or an error.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use ds_config::watchdog::{EmailAlerts, SmtpTls};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::alert::Alert;
use ds_runtime::error_chain;

use crate::delivery::{ChannelError, DeliveryError};

/// Limit for connecting and for each SMTP command.
pub const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
/// Limit for a whole delivery, however many commands it takes.
pub const SMTP_DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections are closed after this; alerts are rare, a burst reuses one connection.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The email channel: one message per alert to every `to_email` address.
pub struct EmailChannel {
    server: String,
    port: u16,
    tls: SmtpTls,
    from: Mailbox,
    to: Vec<Mailbox>,
    credentials: Option<Credentials>,
    /// An extra trusted CA (`tls_ca_file`), read at start-up.
    ca: Option<Certificate>,
    /// Built on first use: lettre's pool needs a running tokio runtime.
    transport: OnceLock<Result<AsyncSmtpTransport<Tokio1Executor>, String>>,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .field("to", &self.to.iter().map(ToString::to_string).collect::<Vec<_>>())
            .field("auth", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// The channel's id on disk and in the history.
    pub const ID: &'static str = "email";

    /// Checks the addresses and reads the password now, so that a missing password file is
    /// reported at start-up rather than when the first alert fails.
    pub fn from_config(config: &EmailAlerts) -> Result<EmailChannel, ChannelError> {
        let from = parse_address("from_email", &config.from_email)?;
        let to = config
            .to_email
            .iter()
            .enumerate()
            .map(|(i, a)| parse_address(&format!("to_email[{i}]"), a))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(ChannelError::Address {
                key: "to_email".to_owned(),
                value: String::new(),
                reason: "at least one recipient is needed".to_owned(),
            });
        }
        let credentials = if config.username.is_empty() {
            None
        } else {
            Some(Credentials::new(config.username.clone(), password(config)?))
        };
        let tls = config.tls_mode();
        let ca = match &config.tls_ca_file {
            None => None,
            Some(path) => {
                let ca_error = |reason: String| ChannelError::CaFile { path: path.clone(), reason };
                let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
                Some(Certificate::from_pem(&pem).map_err(|e| ca_error(error_chain(&e)))?)
            }
        };
        if tls != SmtpTls::None {
            // Fail early on a host name rustls cannot verify against.
            tls_parameters(&config.smtp_server, ca.clone())
                .map_err(|e| ChannelError::Tls { server: config.smtp_server.clone(), reason: error_chain(&e) })?;
        }
        Ok(EmailChannel {
            server: config.smtp_server.clone(),
            port: config.smtp_port,
            tls,
            from,
            to,
            credentials,
            ca,
            transport: OnceLock::new(),
        })
    }

    /// `smtp://host:port (starttls, auth)`, for messages.
    pub fn describe(&self) -> String {
        let tls = match self.tls {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "plain",
        };
        let auth = if self.credentials.is_some() { ", auth" } else { "" };
        format!("smtp://{}:{} ({tls}{auth})", self.server, self.port)
    }

    /// Sends `alert` as one plain-text message: subject `alert.subject()`, body `alert.text()`.
    pub async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let message = self.message(alert)?;
        let transport = self.transport()?;
        match tokio::time::timeout(SMTP_DELIVERY_TIMEOUT, transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(&e)),
            Err(_) => Err(DeliveryError::Temporary(format!(
                "SMTP server {}: no answer within {} s",
                self.describe(),
                SMTP_DELIVERY_TIMEOUT.as_secs()
            ))),
        }
    }

    fn message(&self, alert: &Alert) -> Result<Message, DeliveryError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(alert.subject())
            .header(ContentType::TEXT_PLAIN)
            // The same Message-ID on every retry lets mail systems drop the duplicate that the
            // outbox's one crash window (sent, not yet recorded) can cause.
            .message_id(Some(format!("<{}@desktop-streamer>", message_id_part(&alert.id))));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(alert.text())
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the email: {}", error_chain(&e))))
    }

    fn transport(&self) -> Result<&AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
        self.transport
            .get_or_init(|| self.build_transport())
            .as_ref()
            .map_err(|reason| DeliveryError::Permanent(reason.clone()))
    }

    fn build_transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = match self.tls {
            SmtpTls::None => Tls::None,
            mode => {
                let params = tls_parameters(&self.server, self.ca.clone())
                    .map_err(|e| format!("SMTP server {}: cannot set up TLS: {}", self.describe(), error_chain(&e)))?;
                if mode == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.server.clone())
            .port(self.port)
            .tls(tls)
            .timeout(Some(SMTP_COMMAND_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(2).idle_timeout(POOL_IDLE_TIMEOUT));
        if let Some(c) = &self.credentials {
            builder = builder.credentials(c.clone());
        }
        Ok(builder.build())
    }

    /// SMTP 5xx (including authentication refused) and client-side problems are permanent;
    /// 4xx, timeouts and connection or TLS trouble are temporary.
    fn classify(&self, e: &lettre::transport::smtp::Error) -> DeliveryError {
        let what = format!("SMTP server {}: {}", self.describe(), error_chain(e));
        if e.is_permanent() {
            let hint = match e.status().map(|c| c.to_string()) {
                Some(code) if code == "535" || code == "534" || code == "530" => {
                    "; check email_alerts.username and the password"
                }
                _ => "",
            };
            DeliveryError::Permanent(format!("{what}{hint}"))
        } else if e.is_client() {
            // lettre's client errors: e.g. credentials given but no AUTH mechanism offered.
            DeliveryError::Permanent(what)
        } else {
            DeliveryError::Temporary(what)
        }
    }
}

/// TLS towards `server`, trusting the system's CAs plus `ca`.
fn tls_parameters(server: &str, ca: Option<Certificate>) -> Result<TlsParameters, lettre::transport::smtp::Error> {
    let mut builder = TlsParameters::builder(server.to_owned());
    if let Some(ca) = ca {
        builder = builder.add_root_certificate(ca);
    }
    builder.build()
}

fn parse_address(key: &str, value: &str) -> Result<Mailbox, ChannelError> {
    value.parse::<Mailbox>().map_err(|e| ChannelError::Address {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// The SMTP password: `password`, else the first line of `password_file`, else `password_env`.
fn password(config: &EmailAlerts) -> Result<String, ChannelError> {
    if !config.password.is_empty() {
        return Ok(config.password.expose().to_owned());
    }
    if let Some(path) = &config.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ChannelError::PasswordFile { path: path.clone(), source })?;
        let first = text.lines().next().unwrap_or("");
        if first.is_empty() {
            return Err(ChannelError::EmptyPasswordFile { path: path.clone() });
        }
        return Ok(first.to_owned());
    }
    if let Some(name) = &config.password_env {
        return std::env::var(name).map_err(|_| ChannelError::PasswordEnv { name: name.clone() });
    }
    Err(ChannelError::NoPassword)
}

/// The characters of an alert id that may stand in a Message-ID.
fn message_id_part(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmailAlerts {
        EmailAlerts {
            enabled: true,
            smtp_server: "127.0.0.1".to_owned(),
            smtp_port: 2525,
            tls: Some(SmtpTls::None),
            from_email: "watchdog@example.com".to_owned(),
            to_email: vec!["ops@example.com".to_owned()],
            ..EmailAlerts::default()
        }
    }

    #[test]
    fn the_password_comes_from_the_first_line_of_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smtp-password");
        std::fs::write(&path, "s3cret\nsecond line\n").unwrap();
        let c = EmailAlerts { username: "ops".to_owned(), password_file: Some(path), ..config() };
        assert_eq!(password(&c).unwrap(), "s3cret");
        let channel = EmailChannel::from_config(&c).unwrap();
        assert!(!format!("{channel:?}").contains("s3cret"));
    }

    #[test]
    fn a_missing_password_file_is_named() {
        let c = EmailAlerts {
            username: "ops".to_owned(),
            password_file: Some("/nonexistent/smtp-password".into()),
            ..config()
        };
        let err = EmailChannel::from_config(&c).unwrap_err().to_string();
        assert!(err.starts_with("email_alerts.password_file /nonexistent/smtp-password: cannot read"), "{err}");
    }

    #[test]
    fn a_bad_address_is_named_with_its_key() {
        let c = EmailAlerts { to_email: vec!["ops@example.com".to_owned(), "not an address".to_owned()], ..config() };
        let err = EmailChannel::from_config(&c).unwrap_err().to_string();
        assert!(err.starts_with("email_alerts.to_email[1]: \"not an address\" is not a usable email address"), "{err}");
    }

    #[tokio::test]
    async fn tls_modes_build_a_transport() {
        for tls in [SmtpTls::Starttls, SmtpTls::Tls, SmtpTls::None] {
            let c = EmailAlerts { smtp_server: "smtp.example.com".to_owned(), tls: Some(tls), ..config() };
            let channel = EmailChannel::from_config(&c).unwrap();
            channel.transport().unwrap();
        }
    }

    #[test]
    fn message_ids_keep_only_safe_characters() {
        assert_eq!(message_id_part("service_down:x.service@2024 <a>"), "service_down_x.service_2024__a_");
    }
}
