//! The streamer as the dashboard sees it: its health API and its HLS files, over HTTP, so the
//! dashboard works wherever the streamer runs and serves the stream same-origin for players.

use std::time::Duration;

use ds_runtime::error_chain;
use serde::de::DeserializeOwned;

/// How long one request to the streamer may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct Streamer {
    client: reqwest::Client,
    base: String,
}

/// A file fetched from the streamer's HLS server.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// Kept whole: playlists and 2 s segments are small.
    pub body: Vec<u8>,
}

impl Streamer {
    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
        Streamer { client, base: base.trim_end_matches('/').to_owned() }
    }

    /// A JSON document from the streamer's API (a `ds_wire::health` type), or why it could not
    /// be had.
    pub async fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.base);
        let response =
            self.client.get(&url).send().await.map_err(|e| format!("{url}: {}", error_chain(&e.without_url())))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        response.json().await.map_err(|e| format!("{url}: {}", error_chain(&e.without_url())))
    }

    /// An HLS file by name (already checked to be a stream file name by the caller).
    pub async fn hls(&self, name: &str) -> Result<Fetched, String> {
        let url = format!("{}/hls/desktop/{name}", self.base);
        let r = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("the streamer does not answer: {}", error_chain(&e.without_url())))?;
        let header =
            |h: reqwest::header::HeaderName| r.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let cache_control = header(reqwest::header::CACHE_CONTROL);
        let status = r.status().as_u16();
        let body =
            r.bytes().await.map_err(|e| format!("the streamer broke off: {}", error_chain(&e.without_url())))?.to_vec();
        Ok(Fetched { status, content_type, cache_control, body })
    }
}
