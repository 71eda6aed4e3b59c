//! `POST /api/login`, `POST /api/logout`, `GET /api/session`, and the pieces they share with
//! other handlers: JSON errors ([`ApiError`]), a JSON body extractor whose rejections explain
//! themselves ([`JsonBody`]), and the client address ([`ClientIp`]).

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::header::{CACHE_CONTROL, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::guard::{authenticate, check_origin, cookie_value, is_https};
use super::{AuthState, JSON_BODY_LIMIT, LOGIN_WINDOW, SESSION_COOKIE, Via};

/// A JSON error: `{"error": "..."}` with a message saying what was wrong and what to do.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    retry_after: Option<u64>,
    www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), retry_after: None, www_authenticate: false }
    }

    /// A 500 whose cause goes to the log, not to the client.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "auth request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; the cause is in the service log")
    }

    /// Adds `Retry-After: <seconds>` (rounded up).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        self
    }

    pub(super) fn www_authenticate(mut self) -> Self {
        self.www_authenticate = true;
        self
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: &self.message })).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.www_authenticate {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"desktop-streamer\""));
        }
        response
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

/// Turns axum's JSON rejection into an [`ApiError`] with a reason. `shape`, when given,
/// replaces serde's description of a wrongly shaped body (which could quote a secret).
pub fn json_rejection(rejection: &JsonRejection, shape: Option<&str>) -> ApiError {
    match rejection {
        r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than the limit of {JSON_BODY_LIMIT} bytes; send a smaller JSON document"
            ),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with the header `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {}", serde_says(&e.body_text())),
        ),
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            match shape {
                Some(shape) => format!("the body has the wrong shape: expected {shape}"),
                None => format!("the body has the wrong shape: {}", serde_says(&e.body_text())),
            },
        ),
        other => ApiError::new(other.status(), format!("cannot read the request body: {}", other.body_text())),
    }
}

/// serde's own words from axum's rejection text, without axum's preamble.
fn serde_says(text: &str) -> &str {
    const PREAMBLES: [&str; 2] =
        ["Failed to parse the request body as JSON: ", "Failed to deserialize the JSON body into the target type: "];
    PREAMBLES.iter().find_map(|p| text.strip_prefix(p)).unwrap_or(text)
}

/// Like [`Json`], but rejections are JSON errors with a reason (413 over the body limit,
/// 400 for malformed JSON, 415 without a JSON content type, 422 for a wrong shape).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(r) => Err(json_rejection(&r, None)),
        }
    }
}

/// Like [`axum::extract::Query`], but a query that does not fit is a JSON 400 naming the
/// parameter and what was wrong (`lines: invalid digit found in string`, `unknown field
/// \`x\`, expected one of ...`). A parameter given without a value (`?lines=&level=`, as
/// forms send them) counts as absent.
#[derive(Debug)]
pub struct JsonQuery<T>(pub T);

/// axum's prefix before the deserializer's own message.
const QUERY_ERROR_PREFIX: &str = "Failed to deserialize query string: ";

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for JsonQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let given = parts.uri.query().unwrap_or_default();
        let kept: Vec<&str> =
            given.split('&').filter(|pair| pair.split_once('=').is_some_and(|(_, value)| !value.is_empty())).collect();
        // Only the query matters to the deserializer; the path is a placeholder. A query that
        // made a valid URI stays valid with pairs taken out.
        let uri: Uri = format!("/?{}", kept.join("&"))
            .parse()
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the query string is not valid"))?;
        match axum::extract::Query::<T>::try_from_uri(&uri) {
            Ok(axum::extract::Query(v)) => Ok(JsonQuery(v)),
            Err(rejection) => {
                let text = rejection.body_text();
                let why = text.strip_prefix(QUERY_ERROR_PREFIX).unwrap_or(&text);
                Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the query string is not valid: {why}; /api/openapi.json lists each endpoint's parameters"),
                ))
            }
        }
    }
}

/// The client's address from `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`); `::` when the server was not set
/// up so, which makes all clients share one login rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip().to_canonical()),
        ))
    }
}

impl ClientIp {
    /// The client behind the reverse proxies in `trusted`: when the peer is one of them, the
    /// right-most `X-Forwarded-For` address that is not (each proxy appends the address it
    /// heard from, so the ones left of that could be anything the client sent); otherwise the
    /// peer itself.
    pub fn behind(self, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
        let ClientIp(peer) = self;
        if !trusted.contains(&peer) {
            return peer;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()))
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            match hop {
                Ok(ip) if trusted.contains(&ip) => continue,
                Ok(ip) => return ip,
                // Unreadable: the proxies' chain ends here, and the peer answers for it.
                Err(_) => return peer,
            }
        }
        peer
    }
}

#[derive(Deserialize)]
pub(super) struct LoginRequest {
    password: String,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginRequest { password: <redacted> }")
    }
}

/// The answer of login, logout and `GET /api/session`.
#[derive(Debug, Serialize)]
pub(super) struct SessionInfo {
    logged_in: bool,
    via: Option<Via>,
}

const LOGIN_SHAPE: &str = "a JSON object {\"password\": \"...\"}";
const NO_STORE: (axum::http::HeaderName, &str) = (CACHE_CONTROL, "no-store");

pub(super) async fn login(
    State(auth): State<AuthState>,
    client: ClientIp,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ip = client.behind(&headers, &auth.settings().trusted_proxies);
    // The guard checks this too; repeated so login is safe even if mounted outside it.
    check_origin(&headers, &uri, &auth.settings().trusted_origins)
        .map_err(|why| ApiError::new(StatusCode::FORBIDDEN, why))?;
    let Json(LoginRequest { password }) = body.map_err(|r| json_rejection(&r, Some(LOGIN_SHAPE)))?;
    let credentials = auth.credentials().map_err(|e| ApiError::internal(&e))?;
    if !credentials.has_password() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no admin password is set, so nobody can log in: run `desktop-streamer-web set-password` on the kiosk \
             (as the service's user or root), then log in with that password",
        ));
    }
    auth.limiter().begin(ip, Instant::now()).map_err(|wait| {
        tracing::warn!(client = %ip, "login refused: too many failed attempts");
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed logins from your address: try again in {} seconds",
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            ),
        )
        .retry_after(wait)
    })?;
    let ok = tokio::task::spawn_blocking(move || credentials.verify_password(&password))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !ok {
        let now = Instant::now();
        let (failures, max) = {
            let limiter = auth.limiter();
            (limiter.failures(ip, now), limiter.max_failures())
        };
        tracing::warn!(client = %ip, failures, "login failed: wrong password");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "wrong password ({} more attempts before logins from your address pause for {} minutes)",
                max.saturating_sub(failures),
                LOGIN_WINDOW.as_secs() / 60
            ),
        ));
    }
    auth.limiter().succeeded(ip);
    let id = auth.sessions().create(Instant::now()).map_err(|e| ApiError::internal(&e))?;
    tracing::info!(client = %ip, "admin logged in");
    let secure = if is_https(&headers, &uri) { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}");
    Ok(([(SET_COOKIE, cookie)], [NO_STORE], Json(SessionInfo { logged_in: true, via: Some(Via::Session) }))
        .into_response())
}

pub(super) async fn logout(State(auth): State<AuthState>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(id) = cookie_value(&headers, SESSION_COOKIE) {
        auth.sessions().remove(id);
    }
    let secure = if is_https(&headers, &uri) { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}");
    ([(SET_COOKIE, cookie)], [NO_STORE], Json(SessionInfo { logged_in: false, via: None })).into_response()
}

pub(super) async fn session(State(auth): State<AuthState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let via = authenticate(&auth, &headers, Instant::now()).map_err(|e| ApiError::internal(&e))?.ok();
    Ok(([NO_STORE], Json(SessionInfo { logged_in: via.is_some(), via })).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn forwarded(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_client_behind_trusted_proxies_is_the_right_most_untrusted_hop() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxies = [ip("127.0.0.1"), ip("10.0.0.2")];
        let from_proxy = ClientIp(ip("127.0.0.1"));
        let h = forwarded(&["1.1.1.1, 203.0.113.7", "10.0.0.2"]);
        assert_eq!(from_proxy.behind(&h, &proxies), ip("203.0.113.7"));
        assert_eq!(from_proxy.behind(&forwarded(&["::ffff:203.0.113.9"]), &proxies), ip("203.0.113.9"));
        // Nothing or nonsense forwarded: the proxy itself.
        assert_eq!(from_proxy.behind(&HeaderMap::new(), &proxies), ip("127.0.0.1"));
        assert_eq!(from_proxy.behind(&forwarded(&["1.1.1.1, unknown"]), &proxies), ip("127.0.0.1"));
        // Not from a trusted proxy: the header is anyone's to send, and ignored.
        assert_eq!(ClientIp(ip("192.0.2.1")).behind(&h, &proxies), ip("192.0.2.1"));
        assert_eq!(from_proxy.behind(&h, &[]), ip("127.0.0.1"));
    }
}
