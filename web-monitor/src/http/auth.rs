//! `POST /api/login`, `POST /api/logout` and `GET /api/session`: the browser's way in. The
//! credentials, sessions and the login limit they use are [`crate::auth`]'s.

use std::fmt;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use ds_http::tls::OverTls;
use serde::{Deserialize, Serialize};

use super::AppError;
use super::extract::{ClientIp, json_rejection};
use super::guard::{authenticate, check_origin, cookie_value, is_https};
use crate::auth::{
    AuthState, JSON_BODY_LIMIT, LOGIN_PATH, LOGIN_WINDOW, LOGOUT_PATH, SESSION_COOKIE, SESSION_PATH, Via,
};

/// `POST /api/login`, `POST /api/logout` and `GET /api/session`, with the JSON body limit.
/// Mount them inside [`super::require_auth`] (logout needs a session; login is let through).
pub fn routes<S: Clone + Send + Sync + 'static>(auth: AuthState) -> Router<S> {
    Router::new()
        .route(LOGIN_PATH, post(login))
        .route(LOGOUT_PATH, post(logout))
        .route(SESSION_PATH, get(session))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .with_state(auth)
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
    over_tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let ip = client.behind(&headers, &auth.settings().trusted_proxies);
    // The guard checks this too; repeated so login is safe even if mounted outside it.
    check_origin(&headers, &uri, &auth.settings().trusted_origins)
        .map_err(|why| AppError::new(StatusCode::FORBIDDEN, why))?;
    let Json(LoginRequest { password }) = body.map_err(|r| json_rejection(&r, Some(LOGIN_SHAPE)))?;
    let credentials = auth.credentials().map_err(|e| AppError::internal(&e))?;
    if !credentials.has_password() {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "no admin password is set, so nobody can log in: run `desktop-streamer-web set-password` on the kiosk \
             (as the service's user or root), then log in with that password",
        ));
    }
    // Taken before the attempt counts, so a login turned away here costs its address nothing.
    let Some(place) = auth.login_hash_place() else {
        tracing::warn!(client = %ip, "login refused for now: other logins are being checked");
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "other logins are being checked right now; try again in a second",
        )
        .retry_after(Duration::from_secs(1)));
    };
    auth.limiter().begin(ip, Instant::now()).map_err(|wait| {
        tracing::warn!(client = %ip, "login refused: too many failed attempts");
        AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed logins from your address: try again in {} seconds",
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            ),
        )
        .retry_after(wait)
    })?;
    let ok = tokio::task::spawn_blocking(move || {
        let ok = credentials.verify_password(&password);
        drop(place);
        ok
    })
    .await
    .map_err(|e| AppError::internal(&e))?;
    if !ok {
        let now = Instant::now();
        let (failures, max) = {
            let limiter = auth.limiter();
            (limiter.failures(ip, now), limiter.max_failures())
        };
        tracing::warn!(client = %ip, failures, "login failed: wrong password");
        return Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "wrong password ({} more attempts before logins from your address pause for {} minutes)",
                max.saturating_sub(failures),
                LOGIN_WINDOW.as_secs() / 60
            ),
        ));
    }
    auth.limiter().succeeded(ip);
    let id = auth.sessions().create(Instant::now()).map_err(|e| AppError::internal(&e))?;
    tracing::info!(client = %ip, "admin logged in");
    let secure = if is_https(over_tls.is_some(), &headers, &uri) { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}");
    Ok(([(SET_COOKIE, cookie)], [NO_STORE], Json(SessionInfo { logged_in: true, via: Some(Via::Session) }))
        .into_response())
}

pub(super) async fn logout(
    State(auth): State<AuthState>,
    over_tls: Option<Extension<OverTls>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(id) = cookie_value(&headers, SESSION_COOKIE) {
        auth.sessions().remove(id);
    }
    let secure = if is_https(over_tls.is_some(), &headers, &uri) { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}");
    ([(SET_COOKIE, cookie)], [NO_STORE], Json(SessionInfo { logged_in: false, via: None })).into_response()
}

pub(super) async fn session(State(auth): State<AuthState>, headers: HeaderMap) -> Result<Response, AppError> {
    let via =
        authenticate(&auth, &headers, Instant::now()).map_err(|e| AppError::internal(&e))?.ok().map(|(via, _)| via);
    Ok(([NO_STORE], Json(SessionInfo { logged_in: via.is_some(), via })).into_response())
}
