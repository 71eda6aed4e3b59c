//! Keeps secrets out of messages: passwords are never shown, and URLs lose their password.

use serde_json::Value;

use crate::document::last_key;

/// Key names whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &["password", "token", "api_token", "secret"];

/// `rtsp://user:pass@host/x` → `rtsp://user:***@host/x`; text that is not such a URL is
/// returned unchanged.
pub fn mask_url_credentials(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => text.to_owned(),
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
    }

    #[test]
    fn secret_keys_are_never_shown() {
        assert_eq!(display_value("email_alerts.password", &Value::from("hunter2")), "***");
        assert_eq!(display_value("fps", &Value::from(0)), "0");
        assert_eq!(display_value("streams[0].url", &Value::from("rtsp://a:b@h/")), "\"rtsp://a:***@h/\"");
    }
}
