//! The credentials file (`auth_file` in web-config.json): the admin password's argon2id hash
//! and the API tokens' hashes. The CLI changes it (`set-password`, `new-token`); the service
//! only reads it, so a change takes effect on the next request without a restart.
//!
//! Format (version 1), written atomically with mode 0600:
//!
//! ```json
//! {
//!   "version": 1,
//!   "password": "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>",
//!   "token_salt": "<base64, 16 bytes>",
//!   "tokens": [{ "label": "nagios", "hash": "<base64, 32 bytes>", "created": "2026-11-21T09:30:15Z", "scope": "read" }]
//! }
//! ```
//!
//! `password` is a PHC string (argon2id, OWASP parameters) or null when none is set. A token
//! is 256 random bits, so a fast hash is as good as a slow one: `hash` is argon2id with
//! m = 8 KiB, t = 1, p = 1 over the token and the file's `token_salt`. One hash per request
//! then finds a token among all of them.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use super::AuthError;

/// The credentials file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Shortest admin password `set_password` accepts, in characters.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest admin password accepted, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest token label, in characters.
pub const MAX_LABEL_LEN: usize = 64;
/// Every token starts with this, so it is recognisable in a config file or a secret scanner.
pub const TOKEN_PREFIX: &str = "dst_";
/// Longest string taken as a token; anything longer is refused without hashing it.
const MAX_TOKEN_LEN: usize = 256;
const TOKEN_BYTES: usize = 32;
const TOKEN_SALT_BYTES: usize = 16;
const TOKEN_HASH_BYTES: usize = 32;
const TOKEN_HASH_M_COST_KIB: u32 = 8;
const GENERATED_PASSWORD_BYTES: usize = 18;
/// Mode of the credentials file: only the service's user may read it.
const FILE_MODE: u32 = 0o600;

/// The contents of the credentials file.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    pub version: u32,
    /// The admin password as an argon2id PHC string; `None` until `set-password` ran.
    pub password: Option<String>,
    /// Salt of the token hashes (base64); created with the first token.
    #[serde(default)]
    pub token_salt: String,
    #[serde(default)]
    pub tokens: Vec<StoredToken>,
}

/// What an API token may do; each scope includes the ones before it. The admin password's
/// sessions may do everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read everything the dashboard shows (a monitoring script, the watchdog's camera check).
    Read,
    /// Also restart the stream, clean up segments, start, stop and restart the services.
    Control,
    /// Also change the camera list and its settings.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Control, Scope::Admin];

    /// Tokens written before scopes existed could do everything; they keep that.
    fn before_scopes() -> Scope {
        Scope::Admin
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Control => "control",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("scope {s:?}: use read, control or admin"))
    }
}

/// An API token as stored: only its hash.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredToken {
    pub label: String,
    /// argon2id(token, token_salt), base64.
    pub hash: String,
    pub created: jiff::Timestamp,
    /// Absent in files written before scopes: [`Scope::Admin`], what such tokens could do.
    #[serde(default = "Scope::before_scopes")]
    pub scope: Scope,
}

/// What `list_tokens` tells about a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub label: String,
    pub created: jiff::Timestamp,
    pub scope: Scope,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("version", &self.version)
            .field("password_set", &self.password.is_some())
            .field("tokens", &self.tokens.iter().map(|t| t.label.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

impl Credentials {
    /// Reads the file; a missing file means no password and no tokens.
    pub fn load(path: &Path) -> Result<Credentials, AuthError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Credentials { version: FORMAT_VERSION, ..Credentials::default() });
            }
            Err(source) => return Err(AuthError::Read { path: path.to_owned(), source }),
        };
        let probe: VersionProbe =
            serde_json::from_slice(&bytes).map_err(|source| AuthError::Parse { path: path.to_owned(), source })?;
        if probe.version != u64::from(FORMAT_VERSION) {
            return Err(AuthError::UnsupportedVersion {
                path: path.to_owned(),
                version: probe.version,
                supported: FORMAT_VERSION,
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| AuthError::Parse { path: path.to_owned(), source })
    }

    /// Writes the file atomically with mode 0600, whatever mode an older file had, owned by
    /// the older file's owner. A new file written by root (`set-password` run with sudo)
    /// belongs to the owner of its directory, the service's state directory: a file only root
    /// could read would make every login fail.
    pub fn save(&self, path: &Path) -> Result<(), AuthError> {
        use std::os::unix::fs::MetadataExt as _;
        let mut json = serde_json::to_vec_pretty(self).expect("credentials serialize to JSON");
        json.push(b'\n');
        let new = !path.exists();
        ds_config::write_atomic_with(path, |f| {
            f.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
            if new
                && f.metadata()?.uid() == 0
                && let Some(dir) = path
                    .parent()
                    .and_then(|d| fs::metadata(if d.as_os_str().is_empty() { Path::new(".") } else { d }).ok())
            {
                std::os::unix::fs::fchown(&*f, Some(dir.uid()), Some(dir.gid()))?;
            }
            f.write_all(&json)
        })
        .map_err(|source| AuthError::Write { path: path.to_owned(), source })
    }

    /// The admin password's hash (PHC string), if one is set.
    pub fn password_hash(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Checks `password` against the stored hash: slow on purpose (argon2id), so call it from
    /// a blocking thread. False when no password is set or the stored hash is unreadable.
    pub fn verify_password(&self, password: &str) -> bool {
        let Some(phc) = &self.password else { return false };
        let Ok(hash) = PasswordHash::new(phc) else {
            tracing::error!("the stored admin password hash is not a valid PHC string; set the password again");
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &hash).is_ok()
    }

    /// The label and scope of the token `token` matches, comparing every stored hash in
    /// constant time.
    pub fn verify_token(&self, token: &str) -> Option<(&str, Scope)> {
        if self.tokens.is_empty() || token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let salt = STANDARD.decode(&self.token_salt).ok()?;
        let presented = token_hash(token, &salt).ok()?;
        let mut found = None;
        for stored in &self.tokens {
            let Ok(hash) = STANDARD.decode(&stored.hash) else { continue };
            if bool::from(hash.ct_eq(&presented)) {
                found = Some((stored.label.as_str(), stored.scope));
            }
        }
        found
    }
}

/// A key that changes whenever the credentials file is replaced (atomic writes make a new
/// inode), so the service rereads it only then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileKey {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    len: u64,
}

pub(crate) fn file_key(path: &Path) -> Result<Option<FileKey>, AuthError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(FileKey {
            dev: m.dev(),
            ino: m.ino(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            len: m.len(),
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AuthError::Read { path: path.to_owned(), source }),
    }
}

fn token_hash(token: &str, salt: &[u8]) -> Result<[u8; TOKEN_HASH_BYTES], AuthError> {
    let params =
        Params::new(TOKEN_HASH_M_COST_KIB, 1, 1, Some(TOKEN_HASH_BYTES)).map_err(|e| AuthError::Hash(e.to_string()))?;
    let mut out = [0u8; TOKEN_HASH_BYTES];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(token.as_bytes(), salt, &mut out)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(out)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)?;
    Ok(b)
}

/// A random URL-safe string of `N` random bytes (session ids, tokens).
pub(crate) fn random_string<const N: usize>() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<N>()?))
}

/// Hashes `password` (argon2id, random salt) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AuthError::PasswordTooShort);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AuthError::PasswordTooLong);
    }
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| AuthError::Hash(e.to_string()))?;
    let hash =
        Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Sets the admin password (at least [`MIN_PASSWORD_LEN`] characters), keeping the tokens.
pub fn set_password(auth_file: &Path, password: &str) -> Result<(), AuthError> {
    let phc = hash_password(password)?;
    let mut creds = Credentials::load(auth_file)?;
    creds.version = FORMAT_VERSION;
    creds.password = Some(phc);
    creds.save(auth_file)?;
    tracing::info!(file = %auth_file.display(), "admin password set");
    Ok(())
}

/// A random password (24 URL-safe characters, 144 bits) for the installer to print once.
///
/// # Panics
/// If the operating system's random number generator fails, which Linux does not do once
/// booted.
pub fn generate_password() -> String {
    random_string::<GENERATED_PASSWORD_BYTES>().expect("the OS random number generator works")
}

fn check_label(label: &str) -> Result<(), AuthError> {
    let n = label.chars().count();
    if n == 0 || n > MAX_LABEL_LEN || label.chars().any(char::is_control) || label.trim() != label {
        return Err(AuthError::InvalidLabel { label: label.chars().take(MAX_LABEL_LEN).collect() });
    }
    Ok(())
}

/// Creates an API token labelled `label` that may do what `scope` allows, and returns it: show
/// it once, only its hash is kept.
pub fn new_token(auth_file: &Path, label: &str, scope: Scope) -> Result<String, AuthError> {
    check_label(label)?;
    let mut creds = Credentials::load(auth_file)?;
    if creds.tokens.iter().any(|t| t.label == label) {
        return Err(AuthError::TokenLabelExists { label: label.to_owned(), path: auth_file.to_owned() });
    }
    let salt = match STANDARD.decode(&creds.token_salt) {
        Ok(s) if s.len() >= TOKEN_SALT_BYTES => s,
        _ => {
            // Only the first token creates the salt; changing it would orphan existing hashes.
            let s = random_bytes::<TOKEN_SALT_BYTES>()?.to_vec();
            if !creds.tokens.is_empty() {
                tracing::warn!(file = %auth_file.display(), "token salt was unreadable; existing tokens stop working");
                creds.tokens.clear();
            }
            creds.token_salt = STANDARD.encode(&s);
            s
        }
    };
    let token = format!("{TOKEN_PREFIX}{}", random_string::<TOKEN_BYTES>()?);
    let hash = token_hash(&token, &salt)?;
    creds.version = FORMAT_VERSION;
    creds.tokens.push(StoredToken {
        label: label.to_owned(),
        hash: STANDARD.encode(hash),
        created: jiff::Timestamp::now(),
        scope,
    });
    creds.save(auth_file)?;
    tracing::info!(file = %auth_file.display(), label, %scope, "API token created");
    Ok(token)
}

/// Removes the token labelled `label`; requests carrying it are refused from then on.
pub fn revoke_token(auth_file: &Path, label: &str) -> Result<(), AuthError> {
    let mut creds = Credentials::load(auth_file)?;
    let before = creds.tokens.len();
    creds.tokens.retain(|t| t.label != label);
    if creds.tokens.len() == before {
        let known = creds.tokens.iter().map(|t| format!("{:?}", t.label)).collect::<Vec<_>>();
        return Err(AuthError::NoSuchToken {
            label: label.to_owned(),
            path: auth_file.to_owned(),
            known: if known.is_empty() { "none".to_owned() } else { known.join(", ") },
        });
    }
    creds.save(auth_file)?;
    tracing::info!(file = %auth_file.display(), label, "API token revoked");
    Ok(())
}

/// The tokens' labels and creation times (never the tokens: they are not stored).
pub fn list_tokens(auth_file: &Path) -> Result<Vec<TokenInfo>, AuthError> {
    Ok(Credentials::load(auth_file)?
        .tokens
        .into_iter()
        .map(|t| TokenInfo { label: t.label, created: t.created, scope: t.scope })
        .collect())
}
