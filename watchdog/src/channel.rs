//! The ways an alert reaches a person: one email channel and one channel per webhook URL,
//! built from the configuration, each delivering an alert with the outcome the outbox acts on
//! (see [`crate::delivery`]).

use std::fmt;

use ds_config::WatchdogConfig;

use crate::alert::Alert;
use crate::delivery::{ChannelError, DeliveryError};
use crate::email::EmailChannel;
use crate::webhook::WebhookChannel;

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

#[cfg(test)]
mod tests {
    use super::*;

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
