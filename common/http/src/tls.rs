//! HTTPS of a service from two PEM files an operator manages: a certificate chain (the
//! server's certificate first, then any intermediates) and its private key (PKCS#8, PKCS#1
//! RSA or SEC1 EC). [`Certificate::load`] reads and checks them; [`server_config`] makes
//! the TLS side [`crate::serve::serve_over`] uses; [`Certificate::reload`] swaps in renewed
//! files while the service runs (the handshakes after it use them; connections already open
//! keep theirs).
//!
//! TLS 1.3 and 1.2 through rustls with the aws-lc-rs provider (the one reqwest already
//! builds, so no second C library). ALPN offers only `http/1.1`: a browser then speaks to
//! the service as it does over plain HTTP, within the same limits ([`crate::serve::Limits`]
//! bound HTTP/1's request heads; HTTP/2 would need limits of its own).
//!
//! Errors ([`TlsError`]) name the file and what is wrong with it; they never carry the
//! files' contents.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::STRICT_TRANSPORT_SECURITY;
use axum::middleware::Next;
use axum::response::Response;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// What `Strict-Transport-Security` says on answers over TLS ([`strict_transport_security`]):
/// a year, and no `includeSubDomains` (a kiosk's name is often an address or a `.local`
/// name whose neighbours are other people's devices).
pub const HSTS: &str = "max-age=31536000";

/// The ALPN protocol offered: HTTP/1.1 only (see the module's documentation).
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Why a certificate or key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} file {}: {reason}", file.display())]
    Unreadable { what: &'static str, file: PathBuf, reason: String },
    #[error(
        "{} holds no certificate: a PEM file with `-----BEGIN CERTIFICATE-----` blocks is expected (the server's \
         certificate first, then its intermediates)",
        file.display()
    )]
    NoCertificate { file: PathBuf },
    #[error(
        "{} holds no private key: a PEM `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` or `EC PRIVATE KEY` block is \
         expected, unencrypted",
        file.display()
    )]
    NoKey { file: PathBuf },
    #[error("the {what} file {} is not valid PEM: {reason}", file.display())]
    NotPem { what: &'static str, file: PathBuf, reason: &'static str },
    #[error("the key in {} cannot be used: {reason}", file.display())]
    UnusableKey { file: PathBuf, reason: String },
    #[error(
        "the key in {} does not belong to the certificate in {}: give the key the certificate was made for",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
}

impl TlsError {
    /// Whether the key file is the one to fix (else the certificate file).
    pub fn is_about_key(&self) -> bool {
        match self {
            TlsError::Unreadable { what, .. } | TlsError::NotPem { what, .. } => *what == "key",
            TlsError::NoCertificate { .. } => false,
            TlsError::NoKey { .. } | TlsError::UnusableKey { .. } | TlsError::Mismatch { .. } => true,
        }
    }
}

/// What a PEM error is, without the text it quotes from the file.
fn pem_reason(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a block has no `-----END …-----` line",
        pem::Error::IllegalSectionStart { .. } => "a `-----BEGIN …-----` line is malformed",
        pem::Error::Base64Decode(_) => "a block's base64 does not decode",
        _ => "it cannot be parsed",
    }
}

/// The provider every TLS side of the services uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate chain and its key, read from their files; cheap to clone, shared by the
/// TLS side that serves it and whoever reloads it.
#[derive(Clone)]
pub struct Certificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: Arc<RwLock<Arc<CertifiedKey>>>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate").field("cert_file", &self.cert_file).field("key_file", &self.key_file).finish()
    }
}

impl Certificate {
    /// Reads `cert_file` (PEM chain) and `key_file` (PEM key) and checks that the key is the
    /// certificate's.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Certificate, TlsError> {
        let key = read(cert_file, key_file)?;
        Ok(Certificate {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: Arc::new(RwLock::new(Arc::new(key))),
        })
    }

    /// Reads the files again; on success the next handshakes use them, on error the
    /// certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = read(&self.cert_file, &self.key_file)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    pub fn cert_file(&self) -> &Path {
        &self.cert_file
    }

    pub fn key_file(&self) -> &Path {
        &self.key_file
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }
}

fn read_file(what: &'static str, file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|e| TlsError::Unreadable { what, file: file.to_owned(), reason: e.to_string() })
}

fn read(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let text = read_file("certificate", cert_file)?;
    let chain = CertificateDer::pem_slice_iter(&text).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::NotPem {
        what: "certificate",
        file: cert_file.to_owned(),
        reason: pem_reason(&e),
    })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { file: cert_file.to_owned() });
    }
    let text = read_file("key", key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey { file: key_file.to_owned() },
        e => TlsError::NotPem { what: "key", file: key_file.to_owned(), reason: pem_reason(&e) },
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::UnusableKey { file: key_file.to_owned(), reason: e.to_string() })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(_) => Err(TlsError::Mismatch { cert: cert_file.to_owned(), key: key_file.to_owned() }),
    }
}

/// The server side of TLS for `certificate`: TLS 1.3 and 1.2, ALPN `http/1.1`, no client
/// certificates.
pub fn server_config(certificate: &Certificate) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("the aws-lc-rs provider supports TLS 1.3 and 1.2")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(certificate.clone()));
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Arc::new(config)
}

/// Put into each request's extensions by [`crate::serve::serve_over`] when the request came
/// over the service's own TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverTls;

/// Middleware adding `Strict-Transport-Security: `[`HSTS`] to answers of requests that came
/// over the service's own TLS ([`OverTls`]); answers over plain HTTP get none (a browser
/// ignores it there anyway, and a kiosk without a certificate must stay reachable).
pub async fn strict_transport_security(request: Request, next: Next) -> Response {
    let over_tls = request.extensions().get::<OverTls>().is_some();
    let mut response = next.run(request).await;
    if over_tls {
        response.headers_mut().insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}
