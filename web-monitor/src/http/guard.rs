//! The middleware in front of every route: state-changing requests need a session or an API
//! token and must come from the dashboard's own origin; reads need them only when
//! `public_read` is off.
//!
//! Cross-origin requests are recognised by `Origin` not matching `Host`; browsers that send no
//! `Origin` still send `Sec-Fetch-Site`, and `cross-site` or `same-site` there is refused too.
//! A script or CLI sends neither, so a Bearer-token request from `curl` passes.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::AppError;
use crate::auth::{AuthError, AuthState, LOGIN_PATH, SESSION_COOKIE, Scope, Via};

/// Put into the request's extensions by [`require_auth`] when the request was authenticated,
/// so handlers can tell (e.g. for audit logs) how, and what it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authenticated(pub Via, pub Scope);

/// Controls of the running kiosk: a `control` token may call them.
const CONTROL_PREFIXES: [&str; 2] = ["/api/service/", "/api/stream/"];

/// The scope a request needs: reading (and watching the stream) `read`; the kiosk's controls
/// `control`; anything else that changes state (the camera list and its settings) `admin`.
fn needed_scope(reads: bool, path: &str) -> Scope {
    if reads {
        Scope::Read
    } else if CONTROL_PREFIXES.iter().any(|p| path.starts_with(p)) {
        Scope::Control
    } else {
        Scope::Admin
    }
}

/// Why a request that needed authentication did not have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Missing {
    Nothing,
    BadToken,
    ExpiredSession,
}

/// Requests under this prefix watch the stream: reads, whatever their method.
const WATCH_PREFIX: &str = "/whep/";

/// Reads under paths ending so answer more to an authenticated request (a camera's picture
/// grabbed now rather than its last heartbeat's): a request there that carries credentials
/// has them checked even where reading is public, and a wrong one is refused as anywhere.
const IDENTIFIED_READ_SUFFIX: &str = "/snapshot.jpg";

/// How to authenticate a request that needs `scope`.
fn login_how(scope: Scope) -> String {
    format!(
        "log in on the dashboard (POST /api/login with {{\"password\": \"...\"}}) or send `Authorization: Bearer \
         <token>` (create a token with `desktop-streamer-web new-token LABEL --scope {scope}`)"
    )
}

/// The guard: use with `axum::middleware::from_fn_with_state(auth_state, require_auth)`.
///
/// - POST, PUT, PATCH, DELETE (anything but GET, HEAD, OPTIONS): 403 when cross-origin,
///   401 without a valid session cookie or Bearer token, except `POST /api/login`.
/// - GET, HEAD, OPTIONS: pass when `public_read` is on or the path is public; otherwise 401
///   without authentication. A camera's `snapshot.jpg` asked with credentials has them
///   checked in any case (an authenticated request gets a picture grabbed now).
/// - Watching the stream over WebRTC (`POST`/`DELETE` under `/whep/`) is reading: it needs
///   the same origin as any POST, and authentication only where reading does.
pub async fn require_auth(State(auth): State<AuthState>, mut req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && let Err(why) = check_origin(req.headers(), req.uri(), &auth.settings().trusted_origins) {
        return AppError::new(StatusCode::FORBIDDEN, why).into_response();
    }
    let path = req.uri().path();
    let settings = auth.settings();
    let reads = safe || path.starts_with(WATCH_PREFIX);
    let needs_auth = if reads {
        (!settings.public_read && !settings.is_public(path))
            || (path.ends_with(IDENTIFIED_READ_SUFFIX) && carries_credentials(req.headers()))
    } else {
        path != LOGIN_PATH
    };
    if !needs_auth {
        return next.run(req).await;
    }
    match authenticate(&auth, req.headers(), Instant::now()) {
        Ok(Ok((via, scope))) => {
            let needed = needed_scope(reads, path);
            if scope < needed {
                let message = format!(
                    "this API token's scope is {scope}; {} {path} needs {needed}: create a token with \
                     `desktop-streamer-web new-token LABEL --scope {needed}`",
                    req.method()
                );
                return AppError::new(StatusCode::FORBIDDEN, message).into_response();
            }
            req.extensions_mut().insert(Authenticated(via, scope));
            next.run(req).await
        }
        Ok(Err(missing)) => {
            let needed = needed_scope(reads, path);
            let message = match missing {
                Missing::BadToken => format!(
                    "the API token is not valid (mistyped or revoked): create a new one with \
                     `desktop-streamer-web new-token LABEL --scope {needed}`"
                ),
                Missing::ExpiredSession => {
                    format!("your session has expired or the service restarted: {}", login_how(needed))
                }
                Missing::Nothing if reads => format!(
                    "reading this kiosk's dashboard needs authentication (public_read is off): {}",
                    login_how(needed)
                ),
                Missing::Nothing => {
                    format!("this request changes state and needs authentication: {}", login_how(needed))
                }
            };
            AppError::new(StatusCode::UNAUTHORIZED, message).www_authenticate().into_response()
        }
        Err(e) => AppError::internal(&e).into_response(),
    }
}

/// Whether the request presents a session cookie or a Bearer token (valid or not).
fn carries_credentials(headers: &HeaderMap) -> bool {
    cookie_value(headers, SESSION_COOKIE).is_some() || bearer_token(headers).is_some()
}

/// Who sent the request and what it may do: a live session cookie (the admin password's, so
/// [`Scope::Admin`]) or a known Bearer token (its own scope).
pub(super) fn authenticate(
    auth: &AuthState,
    headers: &HeaderMap,
    now: Instant,
) -> Result<Result<(Via, Scope), Missing>, AuthError> {
    let mut missing = Missing::Nothing;
    if let Some(id) = cookie_value(headers, SESSION_COOKIE) {
        if auth.session_valid(id, now) {
            return Ok(Ok((Via::Session, Scope::Admin)));
        }
        missing = Missing::ExpiredSession;
    }
    if let Some(token) = bearer_token(headers) {
        if let Some((_, scope)) = auth.credentials()?.verify_token(token) {
            return Ok(Ok((Via::Token, scope)));
        }
        missing = Missing::BadToken;
    }
    Ok(Err(missing))
}

/// `Ok` when the request may come from where it comes from: the dashboard's own address (its
/// `Host`) or one of the `trusted` origins; `Err` says why not. Requests without `Origin` and
/// `Sec-Fetch-Site` (scripts, the CLI) pass.
pub fn check_origin(headers: &HeaderMap, uri: &Uri, trusted: &[String]) -> Result<(), String> {
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = headers.get(HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()));
        let same = match (origin.split_once("://"), host) {
            (Some((scheme, authority)), Some(host)) => {
                normalize(scheme, authority).is_some_and(|o| normalize(scheme, host).is_some_and(|h| o == h))
            }
            _ => false,
        };
        if !same && !trusted.iter().any(|t| same_origin(t, origin)) {
            return Err(format!(
                "cross-origin request refused: Origin {origin:?} is not this dashboard ({}){}; state-changing calls \
                 must come from the dashboard's own page or from a script with an API token and no Origin \
                 (behind a reverse proxy, name the address the browser shows in `trusted_origins`)",
                host.unwrap_or("no Host header"),
                if trusted.is_empty() { String::new() } else { format!(" nor in trusted_origins {trusted:?}") },
            ));
        }
        return Ok(());
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site @ ("cross-site" | "same-site")) => Err(format!(
            "cross-origin request refused (Sec-Fetch-Site: {site}): state-changing calls must come from the \
             dashboard's own page"
        )),
        _ => Ok(()),
    }
}

/// Whether two `scheme://authority` origins are the same (case and default ports aside).
fn same_origin(a: &str, b: &str) -> bool {
    let parts = |o: &str| {
        let (scheme, authority) = o.strip_suffix('/').unwrap_or(o).split_once("://")?;
        Some((scheme.to_ascii_lowercase(), normalize(scheme, authority)?))
    };
    parts(a).is_some_and(|a| parts(b) == Some(a))
}

/// `host[:port]` in lower case without the scheme's default port; `None` if it has a path.
fn normalize(scheme: &str, authority: &str) -> Option<String> {
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    let a = authority.to_ascii_lowercase();
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    Some(match a.strip_suffix(default) {
        Some(bare) if !default.is_empty() => bare.to_owned(),
        _ => a,
    })
}

/// The value of cookie `name` in any `Cookie` header.
pub(super) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// The token of `Authorization: Bearer <token>`.
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the client reached us over HTTPS: over the dashboard's own TLS (`over_tls`, from
/// [`ds_http::tls::OverTls`]) or through a proxy that says so.
pub(super) fn is_https(over_tls: bool, headers: &HeaderMap, uri: &Uri) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    over_tls
        || uri.scheme_str() == Some("https")
        || header("x-forwarded-proto")
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        || header("forwarded")
            .is_some_and(|v| v.split([';', ',']).any(|kv| kv.trim().eq_ignore_ascii_case("proto=https")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_must_match_host() {
        let uri = Uri::from_static("/api/thing");
        assert!(check_origin(&headers(&[("host", "kiosk:8080"), ("origin", "http://kiosk:8080")]), &uri, &[]).is_ok());
        assert!(check_origin(&headers(&[("host", "Kiosk"), ("origin", "http://kiosk:80")]), &uri, &[]).is_ok());
        assert!(
            check_origin(&headers(&[("host", "kiosk:8080"), ("origin", "http://evil.example")]), &uri, &[]).is_err()
        );
        assert!(check_origin(&headers(&[("host", "kiosk:8080"), ("origin", "null")]), &uri, &[]).is_err());
        assert!(
            check_origin(&headers(&[("host", "kiosk:8080"), ("sec-fetch-site", "cross-site")]), &uri, &[]).is_err()
        );
        assert!(
            check_origin(&headers(&[("host", "kiosk:8080"), ("sec-fetch-site", "same-origin")]), &uri, &[]).is_ok()
        );
        assert!(check_origin(&headers(&[("host", "kiosk:8080")]), &uri, &[]).is_ok());
    }

    #[test]
    fn a_trusted_origin_passes_whatever_the_host() {
        let uri = Uri::from_static("/api/thing");
        let trusted = ["https://Kiosk.Example.com/".to_owned()];
        let proxied = |origin: &'static str| headers(&[("host", "127.0.0.1:8080"), ("origin", origin)]);
        assert!(check_origin(&proxied("https://kiosk.example.com"), &uri, &trusted).is_ok());
        assert!(check_origin(&proxied("https://kiosk.example.com:443"), &uri, &trusted).is_ok());
        for other in ["http://kiosk.example.com", "https://kiosk.example.com:8443", "https://evil.example"] {
            let refused = check_origin(&proxied(other), &uri, &trusted).unwrap_err();
            assert!(refused.contains("nor in trusted_origins"), "{other}: {refused}");
        }
        let refused = check_origin(&proxied("https://kiosk.example.com"), &uri, &[]).unwrap_err();
        assert!(refused.contains("name the address the browser shows in `trusted_origins`"), "{refused}");
    }

    #[test]
    fn parses_cookies_bearer_and_https() {
        let h = headers(&[("cookie", "a=1; ds_session=abc"), ("authorization", "bearer  dst_x ")]);
        assert_eq!(cookie_value(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(bearer_token(&h), Some("dst_x"));
        assert!(!is_https(false, &h, &Uri::from_static("/")));
        assert!(is_https(true, &h, &Uri::from_static("/")));
        assert!(is_https(false, &headers(&[("x-forwarded-proto", "https")]), &Uri::from_static("/")));
        assert!(is_https(false, &headers(&[("forwarded", "for=1.2.3.4;proto=https")]), &Uri::from_static("/")));
    }
}
