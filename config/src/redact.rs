//! Keeps secrets out of messages: passwords are never shown, and URLs lose their password.

use serde_json::Value;

use crate::document::last_key;

/// What [`mask_webhook_url`] shows for text that is no URL at all.
pub const NOT_A_URL: &str = "(not a URL)";

/// Key names whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &["password", "token", "api_token", "secret", "credential"];

/// What a URL that does not parse is shown as: its text may hold a password anywhere.
pub const URL_NOT_SHOWN: &str = "(not shown: the URL does not parse)";

/// How to write a URL whose password holds characters that end the part they are in.
pub const PERCENT_ENCODE_HINT: &str = "a password or query value with `#`, `/`, `?` or `@` in it must be percent-encoded \
     (`#` as %23, `/` as %2F, `?` as %3F, `@` as %40)";

/// Query parameter names whose values are credentials, compared without case and without
/// `-`/`_` (`api_key`, `API-Key` and `apikey` are one name). Cheap cameras take their
/// password in the query (`snap.cgi?usr=admin&pwd=…`).
const CREDENTIAL_PARAMS: &[&str] = &[
    "pwd",
    "pw",
    "psw",
    "pass",
    "passwd",
    "password",
    "passphrase",
    "passcode",
    "token",
    "key",
    "apikey",
    "auth",
    "authorization",
    "secret",
    "sig",
    "signature",
    "credential",
    "credentials",
    "sid",
    "session",
    "sessionid",
    "hash",
];
/// Parts that make any parameter name a credential's (`adminpass`, `access_token`, `client_secret`).
const CREDENTIAL_PARTS: &[&str] = &["pass", "pwd", "token", "secret", "apikey", "signature", "credential"];

/// Whether a query parameter named `name` carries a credential (see [`CREDENTIAL_PARAMS`]).
pub fn is_credential_param(name: &str) -> bool {
    let name: String =
        percent_decode(name).chars().filter(|c| !matches!(c, '-' | '_')).flat_map(char::to_lowercase).collect();
    CREDENTIAL_PARAMS.contains(&name.as_str()) || CREDENTIAL_PARTS.iter().any(|part| name.contains(part))
}

/// `%23` → `#`, for comparing names; invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why `text` is no URL, worded for the person who typed it; `None` when it parses.
pub fn url_problem(text: &str) -> Option<String> {
    let e = url::Url::parse(text).err()?;
    Some(format!("the URL does not parse ({e}); {PERCENT_ENCODE_HINT}"))
}

/// Whether two URLs lead to the same account on the same camera: the same scheme, host, port
/// (a scheme's default port counted) and user. `false` when either does not parse. A secret
/// stored for one may be used for the other, and only then.
pub fn same_endpoint(a: &str, b: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(a), url::Url::parse(b)) else { return false };
    // The URL crate knows the default ports of web schemes only.
    let port = |u: &url::Url| u.port_or_known_default().or_else(|| (u.scheme() == "rtsp").then_some(554));
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && port(&a) == port(&b) && a.username() == b.username()
}

/// A URL as it may be shown: the password in its user info and the value of every query
/// parameter named like a credential become `***` (`rtsp://admin:***@h/s`,
/// `http://h/snap.cgi?usr=admin&pwd=***`). A URL that does not parse is not shown at all
/// ([`URL_NOT_SHOWN`]): where its password ends cannot be known.
///
/// The rest of the text is kept as written, so a masked URL sent back by the editor differs
/// from the stored one only where the `***` are.
pub fn mask_url(text: &str) -> String {
    // `admin:pw@host` parses, as a URL of scheme `admin`.
    if url::Url::parse(text).is_err() || (!text.contains("://") && text.contains('@')) {
        return URL_NOT_SHOWN.to_owned();
    }
    mask_one(text)
}

/// Free text (a message, an error) with every URL in it masked as [`mask_url`] does, except
/// that a URL too broken to parse loses everything between `://` and its last `@` instead of
/// being left out. Text without `://` is returned unchanged.
pub fn mask_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        let start = rest[..sep]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(sep, |(i, _)| i);
        let end = rest[sep..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(rest.len(), |i| sep + i);
        out.push_str(&rest[..start]);
        out.push_str(&mask_one(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// One URL (or URL-like text) masked: user info and credential query values.
fn mask_one(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let parses = url::Url::parse(url).is_ok();
    let mut out = String::with_capacity(url.len());
    let authority_end = url[scheme_end..].find(['/', '?', '#']).map_or(url.len(), |i| scheme_end + i);
    // A URL that does not parse may have its password run past the authority (`a:b/c@h`).
    let userinfo_end = if parses {
        url[scheme_end..authority_end].rfind('@').map(|i| scheme_end + i)
    } else {
        url[scheme_end..].rfind('@').map(|i| scheme_end + i)
    };
    let after_userinfo = match userinfo_end {
        Some(at) => {
            let info = &url[scheme_end..at];
            out.push_str(&url[..scheme_end]);
            match info.find(':') {
                Some(colon) if parses => out.push_str(&format!("{}:***", &info[..colon])),
                Some(_) => out.push_str("***"),
                None => out.push_str(info),
            }
            at
        }
        None => {
            out.push_str(&url[..scheme_end]);
            scheme_end
        }
    };
    let rest = &url[after_userinfo..];
    let Some(q) = rest.find('?') else {
        out.push_str(rest);
        return out;
    };
    out.push_str(&rest[..=q]);
    // A `#` in a credential's value is taken as part of it: a camera URL has no use for a
    // fragment, and a password with `#` in it is the likelier reading.
    let params: Vec<String> = rest[q + 1..]
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if is_credential_param(name) && !value.is_empty() => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    out.push_str(&params.join("&"));
    out
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
        Value::String(s) if s.contains("://") || last_key(path) == Some("url") => match url::Url::parse(s) {
            Ok(_) if mask_url(s) != URL_NOT_SHOWN => Value::String(mask_url(s)).to_string(),
            _ => URL_NOT_SHOWN.to_owned(),
        },
        Value::String(_) => value.to_string(),
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
        assert_eq!(mask_url_credentials("rtsp://admin:top@secret@/x"), "rtsp://***@/x");
        assert_eq!(mask_url_credentials("rtsp://admin@h/x"), "rtsp://admin@h/x");
        assert_eq!(mask_url_credentials("http://h/a@b:c"), "http://h/a@b:c");
        // A password with `#` or `/`: the URL does not parse, all of the user info goes.
        assert_eq!(mask_url_credentials("rtsp://admin:pa#ss@h/x"), "rtsp://***@h/x");
        assert_eq!(mask_url_credentials("rtsp://admin:pa/ss@h/x"), "rtsp://***@h/x");
        assert_eq!(
            mask_url_credentials("error sending request for url (http://a:b@h/s?pwd=x1&u=y) and http://h/?token=t2"),
            "error sending request for url (http://a:***@h/s?pwd=***&u=y) and http://h/?token=***"
        );
    }

    #[test]
    fn query_credentials_are_masked_by_name() {
        assert_eq!(mask_url("http://h/snap.cgi?usr=admin&pwd=s3cret"), "http://h/snap.cgi?usr=admin&pwd=***");
        assert_eq!(
            mask_url("http://u:p@h:81/a?Password=1&API_Key=2&api-key=3&access_token=4&sig=5&user=6&PW=7&x=&Auth=8"),
            "http://u:***@h:81/a?Password=***&API_Key=***&api-key=***&access_token=***&sig=***&user=6&PW=***&x=&Auth=***"
        );
        // Everything after a credential's `#` is taken as the credential.
        assert_eq!(mask_url("http://h/a?pwd=ab#cd"), "http://h/a?pwd=***");
        assert_eq!(mask_url("http://h/a?resolution=640x480&channel=1"), "http://h/a?resolution=640x480&channel=1");
        for name in [
            "pwd",
            "pass",
            "password",
            "passwd",
            "pw",
            "token",
            "key",
            "apikey",
            "api_key",
            "auth",
            "secret",
            "sig",
            "signature",
            "p%61ss",
        ] {
            assert!(is_credential_param(name), "{name}");
            assert!(is_credential_param(&name.to_uppercase()), "{name}");
        }
        for name in ["user", "usr", "channel", "stream", "resolution", "fps"] {
            assert!(!is_credential_param(name), "{name}");
        }
    }

    #[test]
    fn urls_that_do_not_parse_are_not_shown() {
        for broken in ["rtsp://admin:Zq#7@10.0.0.1/s", "rtsp://admin:Zq/7@10.0.0.1/s", "rtsp://admin:Zq?7@h/s"] {
            assert_eq!(mask_url(broken), URL_NOT_SHOWN, "{broken}");
            assert_eq!(display_value("streams[0].url", &Value::from(broken)), URL_NOT_SHOWN, "{broken}");
            let problem = url_problem(broken).unwrap();
            assert!(!problem.contains("Zq") && problem.contains("`#` as %23"), "{problem}");
        }
        // A scheme-less `user:pass@host` parses (as scheme `user`), and is not shown either.
        assert_eq!(mask_url("admin:pass@h"), URL_NOT_SHOWN);
        assert_eq!(url_problem("rtsp://admin:pa%23ss@10.0.0.1/s"), None);
        assert_eq!(mask_url("rtsp://admin:pa%23ss@10.0.0.1/s"), "rtsp://admin:***@10.0.0.1/s");
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
