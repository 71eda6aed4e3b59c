//! Who may do what on the dashboard: the admin password and API tokens (kept as hashes in the
//! credentials file), browser sessions, the login rate limit, and the guard that refuses
//! unauthenticated and cross-origin state-changing requests.
//!
//! The seed dashboard changed services through GET requests with `CORS *` and no login; here
//! reading may stay public (`public_read`), but every state-changing call needs a session
//! cookie or `Authorization: Bearer <token>` and must come from the dashboard's own origin.
//!
//! The HTTP side (the login routes and the guard in front of every route) is
//! [`crate::http`]'s: `http::auth` and `http::guard`.
//!
//! Sessions live in memory: restarting the service logs everyone out.

mod error;
mod limiter;
mod prompt;
mod sessions;
mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ds_config::WebConfig;
use serde::Serialize;

pub use error::AuthError;
pub use limiter::{LOGIN_WINDOW, LoginLimiter, MAX_LOGIN_FAILURES};
pub use prompt::{PromptError, read_new_password};
pub use sessions::{MAX_SESSIONS, SESSION_IDLE, SessionStore};
pub use store::{
    Credentials, FORMAT_VERSION, MAX_LABEL_LEN, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, Scope, StoredToken, TOKEN_PREFIX,
    TokenInfo, generate_password, hash_password, list_tokens, new_token, revoke_token, set_password,
};

/// Largest JSON request body accepted: 64 KiB. Larger bodies get 413.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ds_session";
pub const LOGIN_PATH: &str = "/api/login";
pub const LOGOUT_PATH: &str = "/api/logout";
pub const SESSION_PATH: &str = "/api/session";

/// How a request proved who sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Session,
    Token,
}

/// What the auth part needs to know; built from [`WebConfig`] plus the lead's public paths.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub auth_file: PathBuf,
    /// Whether GET/HEAD/OPTIONS answer without authentication.
    pub public_read: bool,
    /// Paths readable without authentication even when `public_read` is false: an entry
    /// ending in `/` matches every path under it, any other entry (and `/` itself, the page)
    /// matches exactly. The login and session endpoints are always public.
    pub public_paths: Vec<String>,
    /// Sessions unused this long expire.
    pub session_idle: Duration,
    /// Origins besides the dashboard's own whose pages may change things (`trusted_origins`).
    pub trusted_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`trusted_proxies`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl AuthSettings {
    pub fn from_config(config: &WebConfig) -> Self {
        AuthSettings {
            auth_file: config.auth_file.clone(),
            public_read: config.public_read,
            public_paths: Vec::new(),
            session_idle: SESSION_IDLE,
            trusted_origins: config.trusted_origins.clone(),
            // Checked when the configuration was loaded.
            trusted_proxies: config.trusted_proxies.iter().filter_map(|p| p.parse().ok()).collect(),
        }
    }

    pub fn public_paths<I: IntoIterator<Item = S>, S: Into<String>>(mut self, paths: I) -> Self {
        self.public_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Whether `path` may be read without authentication.
    pub fn is_public(&self, path: &str) -> bool {
        // `/` is the page, not a prefix of everything.
        let under = |p: &str| p.len() > 1 && p.ends_with('/') && path.starts_with(p);
        path == LOGIN_PATH || path == SESSION_PATH || self.public_paths.iter().any(|p| path == p || under(p))
    }
}

/// Shared auth state: cheap to clone, one per service.
#[derive(Clone, Debug)]
pub struct AuthState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: AuthSettings,
    sessions: Mutex<SessionStore>,
    limiter: Mutex<LoginLimiter>,
    credentials: Mutex<CredentialCache>,
    hashing: Arc<tokio::sync::Semaphore>,
}

/// Login passwords hashed at once, over all clients: the per-address limit alone lets many
/// addresses (aliases, IPv6) make the service hash gigabytes at once.
pub const MAX_CONCURRENT_LOGIN_HASHES: usize = 2;

#[derive(Debug, Default)]
struct CredentialCache {
    key: Option<store::FileKey>,
    loaded: bool,
    credentials: Arc<Credentials>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, so a panic elsewhere does not spoil it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuthState {
    pub fn new(settings: AuthSettings) -> Self {
        let idle = settings.session_idle;
        AuthState {
            inner: Arc::new(Inner {
                settings,
                sessions: Mutex::new(SessionStore::new(idle)),
                limiter: Mutex::new(LoginLimiter::default()),
                credentials: Mutex::new(CredentialCache::default()),
                hashing: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_LOGIN_HASHES)),
            }),
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    /// The credentials file as it is now, reread only when it was replaced since last time.
    pub fn credentials(&self) -> Result<Arc<Credentials>, AuthError> {
        let path = &self.inner.settings.auth_file;
        let key = store::file_key(path)?;
        let mut cache = lock(&self.inner.credentials);
        if !cache.loaded || cache.key != key {
            let credentials = Arc::new(Credentials::load(path)?);
            if cache.loaded && credentials.password_hash() != cache.credentials.password_hash() {
                // A new password (set-password) ends every session made with the old one.
                let mut sessions = lock(&self.inner.sessions);
                tracing::info!(ended = sessions.len(), "admin password changed: every session ended");
                sessions.clear();
            }
            cache.credentials = credentials;
            cache.key = key;
            cache.loaded = true;
        }
        Ok(cache.credentials.clone())
    }

    /// Whether `session_id` is a live session (and keeps it alive). The credentials file is
    /// looked at first, so a password changed since ends the session.
    pub fn session_valid(&self, session_id: &str, now: Instant) -> bool {
        if let Err(e) = self.credentials() {
            tracing::debug!(error = %e, "credentials unreadable while checking a session");
        }
        lock(&self.inner.sessions).touch(session_id, now)
    }

    /// A place among the login attempts whose password is being hashed now
    /// ([`MAX_CONCURRENT_LOGIN_HASHES`] over all clients: each hash takes 19 MiB and a
    /// core's fraction of a second); `None` when all are taken.
    pub fn login_hash_place(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.inner.hashing).try_acquire_owned().ok()
    }

    /// The browser sessions.
    pub fn sessions(&self) -> MutexGuard<'_, SessionStore> {
        lock(&self.inner.sessions)
    }

    /// The login rate limit.
    pub fn limiter(&self) -> MutexGuard<'_, LoginLimiter> {
        lock(&self.inner.limiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths_are_exact_or_folders_and_the_root_is_only_the_page() {
        let settings = AuthSettings::from_config(&WebConfig { public_read: false, ..WebConfig::default() })
            .public_paths(["/", "/cameras", "/assets/"]);
        for open in ["/", "/cameras", "/assets/style.css", LOGIN_PATH, SESSION_PATH] {
            assert!(settings.is_public(open), "{open}");
        }
        for private in
            ["/api/status", "/api/cameras", "/cameras/x", "/assets", "/metrics", "/hls/desktop/playlist.m3u8"]
        {
            assert!(!settings.is_public(private), "{private}");
        }
    }
}
