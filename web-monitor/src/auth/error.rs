//! What can go wrong while reading or changing the credentials file. Messages name the file
//! and say what to do; none of them ever contains a password or a token.

use std::io;
use std::path::PathBuf;

use super::store::{MAX_LABEL_LEN, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "the password is too short: use at least {MIN_PASSWORD_LEN} characters (or let the installer generate one)"
    )]
    PasswordTooShort,
    #[error("the password is too long: use at most {MAX_PASSWORD_LEN} bytes")]
    PasswordTooLong,
    #[error(
        "invalid token label {label:?}: use 1 to {MAX_LABEL_LEN} characters without control characters, \
         e.g. \"nagios\" or \"ci\""
    )]
    InvalidLabel { label: String },
    #[error("a token labelled {label:?} already exists in {path}: revoke it first or choose another label")]
    TokenLabelExists { label: String, path: PathBuf },
    #[error("no token labelled {label:?} in {path} (labels there: {known})")]
    NoSuchToken { label: String, path: PathBuf, known: String },
    #[error("cannot read the credentials file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the credentials file {path} is not valid: {source}; fix it or remove it and set the password again")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error(
        "the credentials file {path} has format version {version}, this build reads version {supported}: \
         use a matching desktop-streamer-web or set the password again"
    )]
    UnsupportedVersion { path: PathBuf, version: u64, supported: u32 },
    #[error(
        "cannot write the credentials file {path}: {source} (does its directory exist, and may this user write it?)"
    )]
    Write { path: PathBuf, source: io::Error },
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

impl From<getrandom::Error> for AuthError {
    fn from(e: getrandom::Error) -> Self {
        AuthError::Random(e)
    }
}
