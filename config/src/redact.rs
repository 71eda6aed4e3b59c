//! Keeps secrets out of messages: passwords are never shown, and URLs lose their password.

use serde_json::Value;

use crate::document::last_key;

/// Key names whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &["password", "token", "api_token", "secret"];

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

/// Whether the value at this key path is a secret.
pub fn is_secret_path(path: &str) -> bool {
    last_key(path).is_some_and(|k| SECRET_KEYS.contains(&k))
}

/// A value as it may be shown in a message: compact JSON, secrets masked.
pub fn display_value(path: &str, value: &Value) -> String {
    if is_secret_path(path) {
        return "***".to_owned();
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
}
