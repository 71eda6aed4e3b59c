//! WHEP (the WebRTC-HTTP egress protocol draft) on the streamer's HTTP port:
//! `POST /whep/desktop` with an SDP offer answers `201 Created`, the SDP answer and the
//! session's `Location`; `DELETE` on that location ends it; `OPTIONS` says what is accepted,
//! to any origin (the dashboard and other players reach it across origins).
//!
//! The STUN and TURN servers of `webrtc_ice_servers` go to the player in `Link` headers
//! (`<turn:…>; rel="ice-server"; username="…"; credential="…"; credential-type="password"`),
//! on the `201` answer as the WHEP draft describes and on `OPTIONS` too (as MediaMTX does, so a
//! player may learn them before it makes its offer). This is the one place the TURN credential
//! leaves the streamer: a browser cannot use the TURN server without it.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};

use ds_config::streamer::IceServer;

use super::{MAX_OFFER_BYTES, OfferError};
use crate::http::{AppState, error};

/// The stream's WHEP endpoint.
pub const ENDPOINT: &str = "/whep/desktop";
const SDP: &str = "application/sdp";

/// The WHEP routes, merged into the streamer's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(ENDPOINT, post(offer).options(options))
        .route("/whep/desktop/{id}", delete(end).options(options))
}

/// A new viewer: the offer in, the answer out.
async fn offer(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    if !is_sdp(&headers) {
        let got = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("none");
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("a WHEP offer is sent with Content-Type: {SDP} (this one was {got})"),
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_OFFER_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the offer is larger than {} KiB; a browser's offer is a few KiB", MAX_OFFER_BYTES >> 10),
        );
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return error(StatusCode::BAD_REQUEST, "the offer is not text (SDP is UTF-8)");
    };
    let Some(viewers) = &s.viewers else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "WebRTC could not start on this streamer (see its log); use HLS",
        );
    };
    match viewers.open(text) {
        Ok(answer) => {
            let location = format!("{ENDPOINT}/{}", answer.id);
            let mut res = (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, SDP.to_owned()), (header::LOCATION, location)],
                answer.sdp,
            )
                .into_response();
            add_ice_server_links(&s, &mut res);
            res
        }
        Err(e @ (OfferError::Full { .. } | OfferError::Off)) => {
            let mut res = error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            res
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// The viewer leaves.
async fn end(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match &s.viewers {
        Some(v) if v.close(&id) => StatusCode::NO_CONTENT.into_response(),
        _ => error(StatusCode::NOT_FOUND, "no such WebRTC session (it ended or never existed)"),
    }
}

/// Preflight and discovery: what may be posted, from anywhere, and the ICE servers to use.
async fn options(State(s): State<AppState>) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    add_ice_server_links(&s, &mut res);
    let h = res.headers_mut();
    h.insert("accept-post", HeaderValue::from_static(SDP));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("OPTIONS, POST, DELETE"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, Authorization, If-Match"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    res
}

fn add_ice_server_links(s: &AppState, res: &mut Response) {
    let servers = s.config.borrow().webrtc_ice_servers.clone();
    for link in ice_server_links(&servers) {
        match HeaderValue::from_str(&link) {
            Ok(v) => {
                res.headers_mut().append(header::LINK, v);
            }
            // Validation refuses what a header cannot carry; say so rather than send half.
            Err(_) => {
                let url = link.split('>').next().unwrap_or_default().trim_start_matches('<');
                tracing::warn!(%url, "an ICE server cannot go in a Link header");
            }
        }
    }
}

/// One `Link` value per ICE server URL; TURN ones with their username and credential.
pub fn ice_server_links(servers: &[IceServer]) -> Vec<String> {
    let quoted = |t: &str| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""));
    let mut links = Vec::new();
    for server in servers {
        for url in &server.urls {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if server.is_turn()
                && let (Some(user), Some(credential)) = (&server.username, &server.credential)
            {
                link.push_str(&format!(
                    "; username={}; credential={}; credential-type=\"password\"",
                    quoted(user),
                    quoted(credential.expose())
                ));
            }
            links.push(link);
        }
    }
    links
}

/// Whether the request says its body is SDP (parameters such as a charset allowed).
fn is_sdp(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    value.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(SDP))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::Request;
    use ds_config::StreamerConfig;
    use str0m::media::{Direction, MediaKind};
    use tower::ServiceExt as _;

    use super::*;
    use crate::feed::Feed;
    use crate::http::app;
    use crate::status::StatusHandle;
    use crate::webrtc::Viewers;

    /// The streamer's real router with WebRTC on loopback, port 0.
    /// The one origin whose pages the test routers let read across origins.
    const PLAYER: &str = "https://player.example";

    /// `OPTIONS` on the endpoint from a page of `origin`.
    fn options_from(origin: &str) -> Request<Body> {
        Request::options(ENDPOINT).header(header::ORIGIN, origin).body(Body::empty()).unwrap()
    }

    async fn router(max: u32) -> Router {
        router_with(max, Vec::new()).await
    }

    async fn router_with(max: u32, webrtc_ice_servers: Vec<IceServer>) -> Router {
        let config = StreamerConfig {
            max_webrtc_viewers: max,
            webrtc_udp_port: 0,
            webrtc_tcp_port: 0,
            webrtc_addresses: Some(vec!["127.0.0.1".parse().unwrap()]),
            webrtc_ice_servers,
            cors_origins: vec![PLAYER.to_owned()],
            ..StreamerConfig::default()
        };
        let (_tx, config) = tokio::sync::watch::channel(Arc::new(config));
        let viewers = Viewers::start(Feed::new(), config.clone(), ds_runtime::Shutdown::new()).await.unwrap();
        app(AppState {
            status: StatusHandle::new(10),
            config,
            system: Default::default(),
            viewers: Some(viewers),
            live: crate::live::LiveHls::new(std::env::temp_dir(), crate::live::PartTiming::for_fps(15)),
            served: Arc::default(),
        })
    }

    async fn post(app: &Router, content_type: Option<&str>, body: impl Into<Body>) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::post(ENDPOINT);
        if let Some(t) = content_type {
            req = req.header(header::CONTENT_TYPE, t);
        }
        let res = app.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
        let (parts, body) = res.into_parts();
        let text = String::from_utf8(axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec()).unwrap();
        (parts.status, parts.headers, text)
    }

    #[test]
    fn sdp_is_recognised_with_or_without_parameters() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_sdp(&h)
        };
        assert!(with("application/sdp"));
        assert!(with("Application/SDP; charset=utf-8"));
        assert!(!with("application/json"));
        assert!(!with("application/sdpx"));
        assert!(!is_sdp(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn an_offer_of_another_type_is_415_naming_the_type_wanted() {
        let app = router(2).await;
        let (status, _, body) = post(&app, Some("application/json"), "{}").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(body.contains("Content-Type: application/sdp") && body.contains("application/json"), "{body}");
        let (status, _, body) = post(&app, None, "v=0").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    }

    #[tokio::test]
    async fn a_huge_offer_is_413_and_garbage_is_400() {
        let app = router(2).await;
        let (status, _, body) = post(&app, Some(SDP), vec![b'a'; MAX_OFFER_BYTES + 1]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(body.contains("64 KiB"), "{body}");
        let (status, _, body) = post(&app, Some(SDP), "this is not sdp").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("not SDP"), "{body}");
        let (status, _, body) = post(&app, Some(SDP), vec![0xff, 0xfe]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    #[tokio::test]
    async fn webrtc_turned_off_is_503_with_the_key_named() {
        let app = router(0).await;
        let (status, headers, body) = post(&app, Some(SDP), "v=0").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("max_webrtc_viewers"), "{body}");
        assert!(headers.contains_key(header::RETRY_AFTER));
    }

    #[tokio::test]
    async fn options_says_sdp_is_accepted_and_only_listed_origins_may_read() {
        let app = router(2).await;
        let other = app.clone().oneshot(options_from("https://elsewhere.example")).await.unwrap();
        assert_eq!(other.status(), StatusCode::NO_CONTENT);
        assert!(!other.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN), "{:?}", other.headers());
        let res = app.oneshot(options_from(PLAYER)).await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let h = res.headers();
        assert_eq!(h["accept-post"], SDP);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], PLAYER);
        assert!(h.get_all(header::VARY).iter().any(|v| v == "Origin"));
        assert!(h[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().contains("POST"));
        assert!(h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("Content-Type"));
        assert!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("Location"));
    }

    /// An offer as a browser makes it, by str0m acting as the browser.
    fn offer_from(config: str0m::RtcConfig, kind: MediaKind, direction: Direction) -> String {
        let mut rtc = config.build(std::time::Instant::now());
        let mut api = rtc.sdp_api();
        api.add_media(kind, direction, None, None, None);
        let (offer, _pending) = api.apply().expect("an offer");
        offer.to_sdp_string()
    }

    fn video_offer() -> String {
        offer_from(str0m::Rtc::builder(), MediaKind::Video, Direction::RecvOnly)
    }

    #[tokio::test]
    async fn an_offer_is_answered_201_with_its_session_and_the_limit_holds_until_a_delete() {
        let app = router(2).await;
        let mut locations = Vec::new();
        for _ in 0..2 {
            let (status, headers, answer) = post(&app, Some(SDP), video_offer()).await;
            assert_eq!(status, StatusCode::CREATED, "{answer}");
            assert_eq!(headers[header::CONTENT_TYPE], SDP);
            assert!(answer.contains("a=ice-lite") && answer.contains("H264"), "{answer}");
            assert!(answer.contains("a=candidate:") && answer.contains("127.0.0.1"), "{answer}");
            assert!(answer.contains(" tcp ") && answer.contains("tcptype passive"), "an ICE-TCP candidate: {answer}");
            let location = headers[header::LOCATION].to_str().unwrap().to_owned();
            assert!(location.starts_with("/whep/desktop/"), "{location}");
            locations.push(location);
        }
        assert_ne!(locations[0], locations[1]);
        let (status, _, body) = post(&app, Some(SDP), video_offer()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the third of two: {body}");
        assert!(body.contains("2 WebRTC viewers") && body.contains("max_webrtc_viewers"), "{body}");

        let delete = |l: &str| Request::delete(l).body(Body::empty()).unwrap();
        assert_eq!(app.clone().oneshot(delete(&locations[0])).await.unwrap().status(), StatusCode::NO_CONTENT);
        assert_eq!(app.clone().oneshot(delete(&locations[0])).await.unwrap().status(), StatusCode::NOT_FOUND);
        let (status, _, body) = post(&app, Some(SDP), video_offer()).await;
        assert_eq!(status, StatusCode::CREATED, "the deleted viewer's slot is free: {body}");
    }

    #[tokio::test]
    async fn offers_without_a_video_we_can_send_are_400_saying_why() {
        let app = router(2).await;
        let cases = [
            (offer_from(str0m::Rtc::builder(), MediaKind::Audio, Direction::RecvOnly), "no video m-line"),
            (offer_from(str0m::Rtc::builder(), MediaKind::Video, Direction::SendOnly), "does not receive"),
            (
                offer_from(
                    str0m::Rtc::builder().clear_codecs().enable_vp8(true),
                    MediaKind::Video,
                    Direction::RecvOnly,
                ),
                "no H.264",
            ),
        ];
        for (offer, says) in cases {
            let (status, _, body) = post(&app, Some(SDP), offer).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{says}: {body}");
            assert!(body.contains(says), "{says}: {body}");
        }
        let (status, _, body) = post(&app, Some(SDP), video_offer()).await;
        assert_eq!(status, StatusCode::CREATED, "refused offers took no slot: {body}");
    }

    #[tokio::test]
    async fn the_ice_servers_go_to_the_player_in_link_headers_turn_with_its_credential() {
        let servers = vec![
            IceServer { urls: vec!["stun:stun.example.net:3478".into()], ..IceServer::default() },
            IceServer {
                urls: vec!["turn:turn.example.net:3478?transport=udp".into(), "turns:turn.example.net:5349".into()],
                username: Some("kiosk".into()),
                credential: Some(ds_config::Secret::new(r#"pa"ss\word"#)),
            },
        ];
        let app = router_with(2, servers).await;
        let links = |h: &HeaderMap| -> Vec<String> {
            h.get_all(header::LINK).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
        };
        let expected = [
            r#"<stun:stun.example.net:3478>; rel="ice-server""#,
            r#"<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="kiosk"; credential="pa\"ss\\word"; credential-type="password""#,
            r#"<turns:turn.example.net:5349>; rel="ice-server"; username="kiosk"; credential="pa\"ss\\word"; credential-type="password""#,
        ];
        let (status, headers, body) = post(&app, Some(SDP), video_offer()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(links(&headers), expected);
        let res = app.oneshot(options_from(PLAYER)).await.unwrap();
        assert_eq!(links(res.headers()), expected, "OPTIONS names them too");
        assert!(res.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("Link"));
        // None configured: no Link at all.
        let (_, headers, _) = post(&router(2).await, Some(SDP), video_offer()).await;
        assert!(links(&headers).is_empty());
    }

    #[tokio::test]
    async fn deleting_an_unknown_session_is_404() {
        let app = router(2).await;
        let res = app.oneshot(Request::delete("/whep/desktop/nonesuch").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
