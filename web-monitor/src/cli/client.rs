//! HTTP to the dashboard and the streamer, with errors that name the URL and say what the
//! other side answered, so a failed command tells the operator where to look.

use std::time::Duration;

use ds_runtime::error_chain;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Every request gives up after this long: a kiosk that does not answer in 5 s is down as far
/// as an operator or a monitoring system is concerned.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{url} is not a usable URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered {status}: {message}")]
    Refused { url: String, status: StatusCode, message: String },
    #[error("{url} answered with something that is not JSON: {reason}")]
    NotJson { url: String, reason: String },
}

/// One HTTP peer (the dashboard or the streamer), by its base URL.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Client, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ApiError::BadUrl { url: base.to_owned(), reason: error_chain(&e) })?;
        Ok(Client { base: base.trim_end_matches('/').to_owned(), http, token })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `GET path` with the query pairs whose value is `Some`.
    pub async fn get(&self, path: &str, query: &[(&str, Option<&str>)]) -> Result<Value, ApiError> {
        let mut url = self.url(path)?;
        if query.iter().any(|(_, v)| v.is_some()) {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                if let Some(v) = v {
                    pairs.append_pair(k, v);
                }
            }
        }
        self.send(Method::GET, url, None).await
    }

    /// `POST path` with a JSON body and the bearer token.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let url = self.url(path)?;
        self.send(Method::POST, url, Some(body)).await
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        let text = format!("{}{path}", self.base);
        Url::parse(&text).map_err(|e| ApiError::BadUrl { url: text, reason: e.to_string() })
    }

    async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Value, ApiError> {
        let shown = url.to_string();
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::Unreachable { url: shown.clone(), reason: error_chain(&e.without_url()) })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ApiError::Unreachable { url: shown.clone(), reason: error_chain(&e.without_url()) })?;
        let json = serde_json::from_str::<Value>(&text);
        if !status.is_success() {
            // The dashboard explains refusals as `{"error": "..."}`; anything else is shown as sent.
            let message = match &json {
                Ok(v) => v["error"].as_str().map_or_else(|| v.to_string(), str::to_owned),
                Err(_) => text.trim().chars().take(300).collect(),
            };
            return Err(ApiError::Refused { url: shown, status, message });
        }
        json.map_err(|e| ApiError::NotJson { url: shown, reason: e.to_string() })
    }
}
