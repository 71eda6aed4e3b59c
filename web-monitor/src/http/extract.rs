//! The dashboard's extractors: a JSON body and a query string whose rejections explain
//! themselves as [`AppError`]s, and the client's address: the peer's ([`ClientIp`]) and the
//! client's behind trusted reverse proxies ([`Client`], which the per-client bounds on
//! expensive reads count by).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::AppError;
use crate::auth::JSON_BODY_LIMIT;

/// Turns axum's JSON rejection into an [`AppError`] with a reason. `shape`, when given,
/// replaces serde's description of a wrongly shaped body (which could quote a secret).
pub fn json_rejection(rejection: &JsonRejection, shape: Option<&str>) -> AppError {
    match rejection {
        r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than the limit of {JSON_BODY_LIMIT} bytes; send a smaller JSON document"
            ),
        ),
        JsonRejection::MissingJsonContentType(_) => AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with the header `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => AppError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {}", serde_says(&e.body_text())),
        ),
        JsonRejection::JsonDataError(e) => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            match shape {
                Some(shape) => format!("the body has the wrong shape: expected {shape}"),
                None => format!("the body has the wrong shape: {}", serde_says(&e.body_text())),
            },
        ),
        other => AppError::new(other.status(), format!("cannot read the request body: {}", other.body_text())),
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
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
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
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let given = parts.uri.query().unwrap_or_default();
        let kept: Vec<&str> =
            given.split('&').filter(|pair| pair.split_once('=').is_some_and(|(_, value)| !value.is_empty())).collect();
        // Only the query matters to the deserializer; the path is a placeholder. A query that
        // made a valid URI stays valid with pairs taken out.
        let uri: Uri = format!("/?{}", kept.join("&"))
            .parse()
            .map_err(|_| AppError::new(StatusCode::BAD_REQUEST, "the query string is not valid"))?;
        match axum::extract::Query::<T>::try_from_uri(&uri) {
            Ok(axum::extract::Query(v)) => Ok(JsonQuery(v)),
            Err(rejection) => {
                let text = rejection.body_text();
                let why = text.strip_prefix(QUERY_ERROR_PREFIX).unwrap_or(&text);
                Err(AppError::new(
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

/// The client a request comes from, as the login limit counts it: the peer's address, or behind
/// one of the `trusted_proxies` the address the proxies forwarded for ([`ClientIp::behind`]).
/// [`identify_client`] puts it into each request; a router without that layer gives the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        if let Some(client) = parts.extensions.get::<Client>() {
            return Ok(*client);
        }
        let ClientIp(peer) = ClientIp::from_request_parts(parts, state).await?;
        Ok(Client(peer))
    }
}

/// The middleware that names each request's [`Client`], behind the trusted proxies `proxies`:
/// `axum::middleware::from_fn_with_state(proxies, identify_client)`.
pub async fn identify_client(
    State(proxies): State<Arc<[IpAddr]>>,
    peer: ClientIp,
    mut req: Request,
    next: Next,
) -> Response {
    let client = Client(peer.behind(req.headers(), &proxies));
    req.extensions_mut().insert(client);
    next.run(req).await
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
