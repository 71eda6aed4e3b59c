//! The streamer as the dashboard sees it: its health API, its HLS files and its WebRTC (WHEP)
//! endpoint, over HTTP, so the dashboard works wherever the streamer runs and serves the stream
//! same-origin for players.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ds_runtime::error_chain;
use serde::de::DeserializeOwned;

/// How long one request to the streamer may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// How long a blocking reload of the low-latency playlist may take: the streamer holds one
/// for up to three target durations (at most 30 s each) before answering 503.
pub const BLOCKING_RELOAD_TIMEOUT: Duration = Duration::from_secs(95);

#[derive(Clone, Debug)]
pub struct Streamer {
    client: reqwest::Client,
    base: String,
    /// `streamer_token_file`: the token the stream's requests carry, read at each request.
    token_file: Option<PathBuf>,
}

/// The streamer's answer to a request passed on (an HLS file, a WHEP exchange).
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// A WHEP session's URL (`/whep/desktop/ID`, the same path on the dashboard).
    pub location: Option<String>,
    /// A WHEP answer's ICE servers (`Link` headers, joined with ", " as one header may hold them).
    pub link: Option<String>,
    /// Kept whole: playlists, 2 s segments and SDP are small.
    pub body: Vec<u8>,
}

impl Streamer {
    pub fn new(base: &str, token_file: Option<&Path>) -> Self {
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
        Streamer { client, base: base.trim_end_matches('/').to_owned(), token_file: token_file.map(Path::to_owned) }
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
        self.send(reqwest::Method::GET, &format!("/hls/desktop/{name}"), None).await
    }

    /// A blocking reload of the low-latency playlist (`query` holds its directives): the
    /// streamer answers when the segment or part named exists, so it may take a while.
    pub async fn blocking_reload(&self, query: &str) -> Result<Fetched, String> {
        let url = format!("{}/hls/desktop/ll.m3u8?{query}", self.base);
        self.fetch(self.client.get(url).timeout(BLOCKING_RELOAD_TIMEOUT)).await
    }

    /// Passes a request on to the streamer: `method` on `path`, with a body of a content type.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<Fetched, String> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some((content_type, body)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        }
        self.fetch(request).await
    }

    /// Sends `request` and keeps what the dashboard passes on of the answer.
    async fn fetch(&self, mut request: reqwest::RequestBuilder) -> Result<Fetched, String> {
        if let Some(file) = &self.token_file {
            let token = tokio::fs::read_to_string(file).await.map_err(|e| {
                format!("streamer_token_file {} cannot be read ({e}); it holds the stream's token", file.display())
            })?;
            request = request.bearer_auth(token.trim());
        }
        let r = request
            .send()
            .await
            .map_err(|e| format!("the streamer does not answer: {}", error_chain(&e.without_url())))?;
        let header =
            |h: reqwest::header::HeaderName| r.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let cache_control = header(reqwest::header::CACHE_CONTROL);
        let location = header(reqwest::header::LOCATION);
        let links: Vec<&str> =
            r.headers().get_all(reqwest::header::LINK).iter().filter_map(|v| v.to_str().ok()).collect();
        let link = (!links.is_empty()).then(|| links.join(", "));
        let status = r.status().as_u16();
        let body =
            r.bytes().await.map_err(|e| format!("the streamer broke off: {}", error_chain(&e.without_url())))?.to_vec();
        Ok(Fetched { status, content_type, cache_control, location, link, body })
    }
}
