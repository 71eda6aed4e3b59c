//! Alerts by webhook through reqwest: Slack (an attachment coloured by severity), Discord (an
//! embed with an integer colour) or generic JSON (the alert itself). Slack and Discord webhook
//! URLs carry their secret in the path, so a URL is only ever shown as scheme, host and first
//! path segment.

use std::time::Duration;

use ds_config::redact::mask_webhook_url;
use ds_config::watchdog::WebhookFormat;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::alert::{Alert, Severity};
use ds_runtime::error_chain;

use crate::delivery::{ChannelError, DeliveryError};

/// Limit for a whole request, connect to last byte of the answer.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);
pub const WEBHOOK_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an error answer's body goes into the reason.
const MAX_REASON_BODY: usize = 200;
/// Discord's limits for an embed's title, description and field values.
const DISCORD_TITLE_MAX: usize = 256;
const DISCORD_DESCRIPTION_MAX: usize = 4096;
const DISCORD_FIELD_MAX: usize = 1024;

/// One webhook URL.
pub struct WebhookChannel {
    /// The full URL: a secret. Never shown; `shown` is.
    url: reqwest::Url,
    shown: String,
    format: WebhookFormat,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel").field("url", &self.shown).field("format", &self.format).finish_non_exhaustive()
    }
}

impl WebhookChannel {
    /// `format` `auto` is resolved from the URL here.
    pub fn new(url: &str, format: WebhookFormat) -> Result<WebhookChannel, ChannelError> {
        let shown = mask_webhook_url(url);
        let parsed = reqwest::Url::parse(url).map_err(|e| ChannelError::WebhookUrl {
            shown: shown.clone(),
            reason: format!("not a URL ({e}); expected http(s)://HOST/PATH"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ChannelError::WebhookUrl {
                shown,
                reason: "must be an http:// or https:// URL with a host".to_owned(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .connect_timeout(WEBHOOK_CONNECT_TIMEOUT)
            // A redirect would carry the payload somewhere nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("desktop-streamer-watchdog/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ChannelError::HttpClient(error_chain(&e)))?;
        Ok(WebhookChannel { format: resolve_format(&parsed, format), url: parsed, shown, client })
    }

    /// `webhook:<masked URL>#<hash of the full URL>`; see [`crate::channel::Channel::id`].
    pub fn id(&self) -> String {
        format!("webhook:{}#{:08x}", self.shown, stable_hash(self.url.as_str()) as u32)
    }

    /// The payload shape in use (never `auto`).
    pub fn format(&self) -> WebhookFormat {
        self.format
    }

    /// The URL as it may be shown.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// POSTs the alert. 2xx is success; 408, 429, 5xx and network errors are temporary; any
    /// other answer is permanent.
    pub async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let body = payload(self.format, alert);
        let response = match self.client.post(self.url.clone()).json(&body).send().await {
            Ok(r) => r,
            Err(e) => {
                let builder = e.is_builder();
                let reason = format!("webhook {}: {}", self.shown, error_chain(&e.without_url()));
                return Err(if builder { DeliveryError::Permanent(reason) } else { DeliveryError::Temporary(reason) });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // The body says why (Slack: `invalid_payload`, Discord: a JSON message); it is the
        // peer's text, not ours, so it holds no secret of ours beyond what the peer echoes.
        let text = response.text().await.unwrap_or_default();
        let text = text.trim();
        let mut reason = format!("webhook {} answered {status}", self.shown);
        if !text.is_empty() {
            reason.push_str(": ");
            reason.push_str(truncate(text, MAX_REASON_BODY));
        }
        Err(if is_temporary(status) { DeliveryError::Temporary(reason) } else { DeliveryError::Permanent(reason) })
    }
}

fn is_temporary(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `auto`: hooks.slack.com is Slack; discord.com or discordapp.com under `/api/webhooks` is
/// Discord; anything else gets generic JSON.
pub fn resolve_format(url: &reqwest::Url, format: WebhookFormat) -> WebhookFormat {
    if format != WebhookFormat::Auto {
        return format;
    }
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let is_discord = ["discord.com", "discordapp.com"].iter().any(|d| host == *d || host.ends_with(&format!(".{d}")));
    if host == "hooks.slack.com" {
        WebhookFormat::Slack
    } else if is_discord && url.path().starts_with("/api/webhooks/") {
        WebhookFormat::Discord
    } else {
        WebhookFormat::Json
    }
}

/// The request body for `format`.
pub fn payload(format: WebhookFormat, alert: &Alert) -> Value {
    match format {
        WebhookFormat::Slack => slack(alert),
        WebhookFormat::Discord => discord(alert),
        WebhookFormat::Json | WebhookFormat::Auto => generic(alert),
    }
}

/// Slack's attachment colours: green, yellow, red.
pub fn slack_color(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "good",
        Severity::Warning => "warning",
        Severity::Critical => "danger",
    }
}

/// Discord embed colours (0xRRGGBB as an integer): green, amber, red.
pub fn discord_color(severity: Severity) -> u32 {
    match severity {
        Severity::Info => 0x2E_CC_71,
        Severity::Warning => 0xF1_C4_0F,
        Severity::Critical => 0xE7_4C_3C,
    }
}

/// Text as Slack shows it literally: `&`, `<` and `>` escaped, as Slack's message formatting
/// asks. Alert text carries what cameras control (a Content-Type, an RTSP reason phrase, a
/// camera's name), and unescaped `<!channel>` would notify everyone and `<http://x|click>`
/// would show a disguised link.
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Text as Discord shows it literally in an embed's description and fields: its Markdown
/// characters escaped with a backslash. A camera's text such as `[click](http://evil.example)`
/// would otherwise be a disguised link there, `**x**` bold, `||x||` hidden. (Mentions in an embed never notify; the message
/// also allows none.)
pub fn discord_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '(' | ')' | '<' | '>' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn slack(alert: &Alert) -> Value {
    let esc = slack_escape;
    let mut fields = vec![
        json!({"title": "Severity", "value": alert.severity.as_str(), "short": true}),
        json!({"title": "Host", "value": esc(&alert.host), "short": true}),
        json!({"title": "Since", "value": alert.since.to_string(), "short": true}),
    ];
    if let Some(action) = &alert.action {
        fields.push(json!({"title": "Action", "value": esc(action), "short": false}));
    }
    let mut attachment = json!({
        "fallback": esc(&alert.subject()),
        "color": slack_color(alert.severity),
        "title": esc(&alert.title),
        "text": esc(&alert.details),
        "fields": fields,
        "footer": "desktop-streamer watchdog",
        "ts": alert.raised_at.as_second(),
    });
    if let Some(url) = &alert.dashboard_url {
        attachment["title_link"] = json!(url);
    }
    json!({"text": esc(&alert.subject()), "attachments": [attachment]})
}

fn discord(alert: &Alert) -> Value {
    // Escaped first, then cut to Discord's limits (a cut may end in a lone backslash, which
    // Discord shows as it is).
    let esc = discord_escape;
    let mut fields = vec![
        json!({"name": "Severity", "value": alert.severity.as_str(), "inline": true}),
        json!({"name": "Host", "value": truncate(&esc(&alert.host), DISCORD_FIELD_MAX), "inline": true}),
        json!({"name": "Since", "value": alert.since.to_string(), "inline": true}),
    ];
    if let Some(action) = &alert.action {
        fields.push(json!({"name": "Action", "value": truncate(&esc(action), DISCORD_FIELD_MAX), "inline": false}));
    }
    let mut embed = json!({
        // A title shows no links; escaping it would show the backslashes of our own brackets.
        "title": truncate(&alert.subject(), DISCORD_TITLE_MAX),
        "description": truncate(&esc(&alert.details), DISCORD_DESCRIPTION_MAX),
        "color": discord_color(alert.severity),
        "timestamp": alert.raised_at.to_string(),
        "fields": fields,
        "footer": {"text": "desktop-streamer watchdog"},
    });
    // Discord refuses the whole message (400) if the embed's url is not http(s).
    if let Some(url) = alert.dashboard_url.as_ref().filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
        embed["url"] = json!(url);
    }
    json!({"username": "desktop-streamer", "embeds": [embed], "allowed_mentions": {"parse": []}})
}

/// The alert's own fields (as stored in the outbox) plus its `subject` and `text`.
fn generic(alert: &Alert) -> Value {
    let mut v = serde_json::to_value(alert).unwrap_or_else(|_| json!({}));
    v["subject"] = json!(alert.subject());
    v["text"] = json!(alert.text());
    v
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust releases, for names kept on disk.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(url: &str) -> WebhookFormat {
        resolve_format(&reqwest::Url::parse(url).unwrap(), WebhookFormat::Auto)
    }

    #[test]
    fn auto_recognises_slack_and_discord() {
        assert_eq!(format_of("https://hooks.slack.com/services/T0/B0/x"), WebhookFormat::Slack);
        assert_eq!(format_of("https://discord.com/api/webhooks/1/tok"), WebhookFormat::Discord);
        assert_eq!(format_of("https://discordapp.com/api/webhooks/1/tok"), WebhookFormat::Discord);
        assert_eq!(format_of("https://ptb.discord.com/api/webhooks/1/tok"), WebhookFormat::Discord);
        assert_eq!(format_of("https://discord.com/channels/1"), WebhookFormat::Json);
        assert_eq!(format_of("https://notdiscord.com/api/webhooks/1/tok"), WebhookFormat::Json);
        assert_eq!(format_of("http://127.0.0.1:9000/alerts"), WebhookFormat::Json);
        let explicit = reqwest::Url::parse("http://127.0.0.1/x").unwrap();
        assert_eq!(resolve_format(&explicit, WebhookFormat::Slack), WebhookFormat::Slack);
    }

    #[test]
    fn two_urls_on_one_host_have_different_ids() {
        let a = WebhookChannel::new("https://hooks.slack.com/services/T0/B0/aaaa", WebhookFormat::Auto).unwrap();
        let b = WebhookChannel::new("https://hooks.slack.com/services/T0/B0/bbbb", WebhookFormat::Auto).unwrap();
        assert_ne!(a.id(), b.id());
        assert!(a.id().starts_with("webhook:https://hooks.slack.com/services/…#"), "{}", a.id());
        assert!(!a.id().contains("aaaa") && !format!("{a:?}").contains("aaaa"), "{a:?}");
    }

    #[test]
    fn a_bad_url_is_refused_without_showing_it() {
        let err = WebhookChannel::new("ftp://x/hook/secret-token", WebhookFormat::Auto).unwrap_err().to_string();
        assert_eq!(err, "webhook_alerts.url ftp://x/hook/…: must be an http:// or https:// URL with a host");
        let err = WebhookChannel::new("https://hooks.slack.com:99999/services/T0/B0/XXXX", WebhookFormat::Auto)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("webhook_alerts.url https://hooks.slack.com:99999/services/…: not a URL"), "{err}");
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("ééé", 2), "éé");
        assert_eq!(truncate("ab", 5), "ab");
    }

    #[test]
    fn discord_shows_camera_text_as_text() {
        let mut alert = crate::alert::sample("cam");
        alert.details = "unexpected Content-Type [click here](http://evil.example) ||hidden|| @everyone".to_owned();
        alert.action = Some("restart `x`".to_owned());
        let v = payload(WebhookFormat::Discord, &alert);
        let embed = &v["embeds"][0];
        assert_eq!(
            embed["description"],
            "unexpected Content-Type \\[click here\\]\\(http://evil.example\\) \\|\\|hidden\\|\\| @everyone"
        );
        assert_eq!(embed["fields"][3]["value"], "restart \\`x\\`");
        assert_eq!(v["allowed_mentions"], json!({"parse": []}), "no mention may notify");
    }

    #[test]
    fn slack_shows_camera_text_as_text() {
        let mut alert = crate::alert::sample("cam");
        alert.title = "camera down: <!channel> & co".to_owned();
        alert.details =
            "unexpected Content-Type <http://evil.example|click here>; RTSP 401 <!here> <@U123> <#C1>".to_owned();
        alert.action = Some("restart <!everyone>".to_owned());
        alert.host = "kiosk<>".to_owned();
        let body = payload(WebhookFormat::Slack, &alert).to_string();
        for raw in [
            "<!channel>",
            "<http://evil.example|click here>",
            "<!here>",
            "<@U123>",
            "<#C1>",
            "<!everyone>",
            "kiosk<>",
            " & co",
        ] {
            assert!(!body.contains(raw), "{raw} reaches Slack unescaped: {body}");
        }
        let attachment = &payload(WebhookFormat::Slack, &alert)["attachments"][0];
        assert_eq!(attachment["title"], "camera down: &lt;!channel&gt; &amp; co");
        assert_eq!(
            attachment["text"],
            "unexpected Content-Type &lt;http://evil.example|click here&gt;; RTSP 401 &lt;!here&gt; &lt;@U123&gt; &lt;#C1&gt;"
        );
        assert_eq!(slack_escape("a &amp; b"), "a &amp;amp; b", "text that looks escaped is shown as typed");
    }

    #[test]
    fn the_hash_is_stable() {
        // Pinned: ids on disk from an older build must still match.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
