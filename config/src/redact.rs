//! Keeps secrets out of messages: passwords are never shown, and URLs lose their password.

use serde_json::Value;

use crate::document::last_key;

/// What [`mask_webhook_url`] shows for text that is no URL at all.
pub const NOT_A_URL: &str = "(not a URL)";

/// Key names whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &["password", "token", "api_token", "secret", "credential"];

/// `rtsp://user:pass@host/x` → `rtsp://user:***@host/x`; other text is returned unchanged.
///
/// Works on the text, not on a parsed URL, so that a URL too broken to parse (and so shown
/// in an error message) still loses its password.
pub fn mask_url_credentials(text: &str) -> String {
    let Some(scheme_end) = text.find("://").map(|i| i + 3) else { return text.to_owned() };
    let authority_end = text[scheme_end..].find(['/', '?', '#']).map_or(text.len(), |i| scheme_end + i);
    let Some(at) = text[scheme_end..authority_end].rfind('@').map(|i| scheme_end + i) else {
        return text.to_owned();
    };
    match text[scheme_end..at].find(':').map(|i| scheme_end + i) {
        Some(colon) => format!("{}***{}", &text[..=colon], &text[at..]),
        None => text.to_owned(),
    }
}

/// `https://user:pw@hooks.slack.com/services/T0/B0/XXXX?x=1` → `https://hooks.slack.com/services/…`.
///
/// Works on the text so that a URL too broken to parse is masked too.
pub fn mask_webhook_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return NOT_A_URL.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority.rfind('@').map_or(authority, |at| &authority[at + 1..]);
    let after = &rest[authority_end..];
    let mut shown = format!("{}{host}", &url[..scheme_end]);
    if let Some(path) = after.strip_prefix('/') {
        let segment_end = path.find(['/', '?', '#']).unwrap_or(path.len());
        shown.push('/');
        shown.push_str(&path[..segment_end]);
        if segment_end < path.len() && &path[segment_end..] != "/" {
            shown.push_str("/…");
        }
    } else if !after.is_empty() {
        shown.push_str("/…");
    }
    shown
}

/// Whether the value at this key path is a secret.
pub fn is_secret_path(path: &str) -> bool {
    last_key(path).is_some_and(|k| SECRET_KEYS.contains(&k))
}

/// Whether the value at this key path is a webhook URL (or the list of them): Slack and Discord
/// put the webhook's token in the URL's path, so the whole path is a secret.
fn is_webhook_url_path(path: &str) -> bool {
    path == "webhook_alerts.url" || path.starts_with("webhook_alerts.url[")
}

fn display_webhook_urls(value: &Value) -> String {
    match value {
        Value::String(url) => match mask_webhook_url(url) {
            masked if masked == NOT_A_URL => "(not shown: a webhook URL carries its token)".to_owned(),
            masked => Value::String(masked).to_string(),
        },
        Value::Array(urls) => format!("[{}]", urls.iter().map(display_webhook_urls).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// A value as it may be shown in a message: compact JSON, secrets masked.
pub fn display_value(path: &str, value: &Value) -> String {
    if is_secret_path(path) {
        return "***".to_owned();
    }
    if is_webhook_url_path(path) {
        return display_webhook_urls(value);
    }
    match value {
        Value::String(s) => Value::String(mask_url_credentials(s)).to_string(),
        other => {
            let text = other.to_string();
            if text.len() > 60 { format!("{}…", &text[..text.floor_char_boundary(57)]) } else { text }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(mask_url_credentials("rtsp://user:pass@10.0.0.1:554/s1"), "rtsp://user:***@10.0.0.1:554/s1");
        assert_eq!(mask_url_credentials("http://10.0.0.1:9081"), "http://10.0.0.1:9081");
        assert_eq!(mask_url_credentials("not a url"), "not a url");
        // Too broken for a URL parser, still masked.
        assert_eq!(mask_url_credentials("rtsp://admin:top@secret@/x"), "rtsp://admin:***@/x");
        assert_eq!(mask_url_credentials("rtsp://admin@h/x"), "rtsp://admin@h/x");
        assert_eq!(mask_url_credentials("http://h/a@b:c"), "http://h/a@b:c");
    }

    #[test]
    fn secret_keys_are_never_shown() {
        assert_eq!(display_value("email_alerts.password", &Value::from("hunter2")), "***");
        assert_eq!(display_value("fps", &Value::from(0)), "0");
        assert_eq!(display_value("streams[0].url", &Value::from("rtsp://a:b@h/")), "\"rtsp://a:***@h/\"");
    }

    #[test]
    fn webhook_tokens_are_never_shown() {
        let slack = "https://hooks.slack.com/services/T0/B0/XXXX";
        assert_eq!(display_value("webhook_alerts.url", &Value::from(slack)), "\"https://hooks.slack.com/services/…\"");
        assert_eq!(
            display_value("webhook_alerts.url[1]", &Value::from("hooks.slack.com/services/T0/B0/XXXX")),
            "(not shown: a webhook URL carries its token)"
        );
        let list = serde_json::json!([slack, "ftp://discord.com/api/webhooks/1/tok"]);
        let shown = display_value("webhook_alerts.url", &list);
        assert!(!shown.contains("XXXX") && !shown.contains("tok"), "{shown}");
    }

    #[test]
    fn urls_lose_everything_after_the_first_path_segment() {
        assert_eq!(
            mask_webhook_url("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(mask_webhook_url("https://discord.com/api/webhooks/1/tok"), "https://discord.com/api/…");
        assert_eq!(mask_webhook_url("http://u:pw@127.0.0.1:8080/hook?token=t"), "http://127.0.0.1:8080/hook/…");
        assert_eq!(mask_webhook_url("http://127.0.0.1:8080/hook"), "http://127.0.0.1:8080/hook");
        assert_eq!(mask_webhook_url("http://127.0.0.1:8080/hook/"), "http://127.0.0.1:8080/hook");
        assert_eq!(mask_webhook_url("http://h?token=t"), "http://h/…");
        assert_eq!(mask_webhook_url("http://h"), "http://h");
        assert_eq!(mask_webhook_url("hooks.slack.com/services/T0/B0/XXXX"), "(not a URL)");
    }
}
