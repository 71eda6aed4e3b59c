//! HTTP to the dashboard and the streamer, with errors that name the URL and say what the
//! other side answered, so a failed command tells the operator where to look.

use std::time::Duration;

use ds_runtime::error_chain;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Every request gives up after this long: a kiosk that does not answer in 5 s is down as far
/// as an operator or a monitoring system is concerned.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// An endless answer (server-sent events) that sends nothing, not even the keep-alive the
/// dashboard sends every 15 s, for this long is taken as lost.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{url} is not a usable URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{} cannot be used as a CA certificate for the dashboard: {reason}", file.display())]
    BadCa { file: std::path::PathBuf, reason: String },
    #[error("{url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered {status}: {message}")]
    Refused { url: String, status: StatusCode, message: String },
    #[error("{url} answered with something that is not the JSON expected: {reason}")]
    NotJson { url: String, reason: String },
}

/// One HTTP peer (the dashboard or the streamer), by its base URL.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// For endless answers: no overall limit, but connecting and each wait for data are bounded.
    streaming: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// A client of `base`; for an `https://` base, the certificates in `ca_file` (PEM) are
    /// trusted besides the system's (a kiosk's private CA or self-signed certificate).
    pub fn new(base: &str, token: Option<String>, ca_file: Option<&std::path::Path>) -> Result<Client, ApiError> {
        let bad = |e: reqwest::Error| ApiError::BadUrl { url: base.to_owned(), reason: error_chain(&e) };
        let roots = match ca_file {
            None => Vec::new(),
            Some(file) => {
                let bad_ca = |reason: String| ApiError::BadCa { file: file.to_owned(), reason };
                let pem = std::fs::read(file).map_err(|e| bad_ca(e.to_string()))?;
                let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad_ca(error_chain(&e)))?;
                if roots.is_empty() {
                    return Err(bad_ca("it holds no PEM certificate".to_owned()));
                }
                roots
            }
        };
        let http =
            reqwest::Client::builder().timeout(REQUEST_TIMEOUT).tls_certs_merge(roots.clone()).build().map_err(bad)?;
        let streaming = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .connect_timeout(REQUEST_TIMEOUT)
            .read_timeout(STREAM_IDLE_TIMEOUT)
            .build()
            .map_err(bad)?;
        Ok(Client { base: base.trim_end_matches('/').to_owned(), http, streaming, token })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `GET path` with the query pairs whose value is `Some`, read as `T` (a `ds_wire` type).
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, Option<&str>)]) -> Result<T, ApiError> {
        let url = self.url_with(path, query)?;
        self.send(Method::GET, url, None).await
    }

    /// `GET path` whose answer does not end (server-sent events): the response, once its
    /// status says it succeeded, to read in chunks.
    pub async fn open_stream(&self, path: &str, query: &[(&str, Option<&str>)]) -> Result<reqwest::Response, ApiError> {
        let url = self.url_with(path, query)?;
        let shown = url.to_string();
        let request = self.streaming.get(url).header(reqwest::header::ACCEPT, "text/event-stream");
        let response = self.dispatch(request, &shown).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(refused(shown, status, &text))
    }

    /// Sends `request` with the token, if any: the response, whatever its status.
    async fn dispatch(&self, mut request: reqwest::RequestBuilder, shown: &str) -> Result<reqwest::Response, ApiError> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.map_err(|e| unreachable(shown, e))
    }

    fn url_with(&self, path: &str, query: &[(&str, Option<&str>)]) -> Result<Url, ApiError> {
        let mut url = self.url(path)?;
        if query.iter().any(|(_, v)| v.is_some()) {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                if let Some(v) = v {
                    pairs.append_pair(k, v);
                }
            }
        }
        Ok(url)
    }

    /// `POST path` with a JSON body and the bearer token.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T, ApiError> {
        let url = self.url(path)?;
        self.send(Method::POST, url, Some(body)).await
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        let text = format!("{}{path}", self.base);
        Url::parse(&text).map_err(|e| ApiError::BadUrl { url: text, reason: e.to_string() })
    }

    async fn send<T: DeserializeOwned>(&self, method: Method, url: Url, body: Option<&Value>) -> Result<T, ApiError> {
        let shown = url.to_string();
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.dispatch(request, &shown).await?;
        let status = response.status();
        let text = response.text().await.map_err(|e| unreachable(&shown, e))?;
        if !status.is_success() {
            return Err(refused(shown, status, &text));
        }
        serde_json::from_str::<T>(&text).map_err(|e| ApiError::NotJson { url: shown, reason: e.to_string() })
    }
}

fn unreachable(url: &str, e: reqwest::Error) -> ApiError {
    ApiError::Unreachable { url: url.to_owned(), reason: error_chain(&e.without_url()) }
}

/// The dashboard explains refusals as `{"error": "..."}`; anything else is shown as sent.
fn refused(url: String, status: StatusCode, text: &str) -> ApiError {
    let message = match serde_json::from_str::<Value>(text) {
        Ok(v) => v["error"].as_str().map_or_else(|| v.to_string(), str::to_owned),
        Err(_) => text.trim().chars().take(300).collect(),
    };
    ApiError::Refused { url, status, message }
}
