//! The dashboard's scoped API tokens against every endpoint of the real `desktop-streamer-web`
//! (in front of a real systemd user manager holding its units), with `public_read` off.
//!
//! The endpoints come from the service's own `/api/openapi.json`, which
//! `web-monitor/tests/openapi.rs` keeps equal to the router: an endpoint added later is
//! checked too, and this test fails until the scope it needs is written down in [`needs`].

use std::net::Ipv4Addr;

use ds_tests::http::{self, Response};
use ds_tests::kiosk::{Kiosk, UNITS};
use serde_json::json;

/// What a request needs, lowest first: the guard's rule (`needed_scope` in
/// web-monitor/src/http/guard.rs) is that reading (and watching the stream) needs `read`, the
/// kiosk's controls `control`, and any other change `admin`; the page, its assets and the
/// login endpoints need nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Needs {
    Nothing,
    Read,
    Control,
    Admin,
}

/// The tokens' scopes, lowest first, as `new-token --scope` names them.
const SCOPES: [(Needs, &str); 3] = [(Needs::Read, "read"), (Needs::Control, "control"), (Needs::Admin, "admin")];

/// What the endpoint `method template` (as the OpenAPI document writes it) needs; `None` for
/// one nobody has written down here yet.
fn needs(method: &str, template: &str) -> Option<Needs> {
    Some(match (method, template) {
        ("GET", "/" | "/cameras" | "/assets/{file}" | "/api/session") | ("POST", "/api/login") => Needs::Nothing,
        (
            "GET",
            "/api/openapi.json"
            | "/api/status"
            | "/api/status/history"
            | "/api/events"
            | "/api/health"
            | "/api/alerts"
            | "/api/logs"
            | "/api/logs/stream"
            | "/hls/desktop/{file}"
            | "/metrics"
            | "/api/cameras"
            | "/api/cameras/events"
            | "/api/cameras/export.csv"
            | "/api/cameras/{id}"
            | "/api/cameras/{id}/history"
            | "/api/cameras/{id}/changes"
            | "/api/cameras/{id}/snapshot.jpg"
            | "/api/cameras/{id}/thumbnail.jpg"
            | "/api/streampulse/status",
        )
        | ("POST", "/whep/desktop")
        | ("DELETE", "/whep/desktop/{session}") => Needs::Read,
        ("POST", "/api/service/{action}" | "/api/stream/restart" | "/api/stream/cleanup") => Needs::Control,
        // Logging out is a change like any other to the guard; a token has no session to end.
        ("POST", "/api/cameras" | "/api/logout")
        | ("PUT", "/api/cameras/{id}" | "/api/cameras/settings")
        | ("DELETE", "/api/cameras/{id}") => Needs::Admin,
        _ => return None,
    })
}

/// The admin password the test sets.
const PASSWORD: &str = "correct horse battery staple";

/// One endpoint as a request: its template's parameters filled in, and a body that the
/// handler accepts.
struct Call {
    method: String,
    template: String,
    path: String,
    body: Option<String>,
    needs: Needs,
}

impl Call {
    fn new(method: &str, template: &str, camera: &str) -> Call {
        let path = template
            .replace("/assets/{file}", "/assets/common.js")
            .replace("/hls/desktop/{file}", "/hls/desktop/playlist.m3u8")
            .replace("{id}", camera)
            .replace("{session}", "no-such-session")
            // Restarting the watchdog's unit: the web service itself runs outside systemd here,
            // and nothing else of the test needs that unit.
            .replace("{action}", "restart");
        let body = match (method, template) {
            ("POST", "/api/service/{action}") => Some(json!({"unit": UNITS[1]})),
            ("POST", "/api/login") => Some(json!({"password": PASSWORD})),
            ("POST", "/api/cameras") => Some(json!({"name": "Yard", "url": "rtsp://127.0.0.1:1/yard"})),
            ("PUT", "/api/cameras/{id}") => Some(json!({"heartbeat_seconds": 30})),
            ("PUT", "/api/cameras/settings") => Some(json!({"heartbeat_seconds": 20})),
            ("POST", "/whep/desktop") => Some(json!("v=0")),
            _ => None,
        }
        .map(|b| b.to_string());
        let needs = needs(method, template).unwrap_or_else(|| {
            panic!(
                "{method} {template} is in /api/openapi.json but not in this test's table: write down the scope it \
                 needs in `needs` (and check that the guard agrees)"
            )
        });
        Call { method: method.to_owned(), template: template.to_owned(), path, body, needs }
    }

    /// Sends it from `from` with `token` (none: anonymous); only the head of a stream is read.
    fn send(&self, port: u16, from: Ipv4Addr, token: Option<&str>) -> Response {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("Authorization", b.as_str())).collect();
        http::request_from(from, port, &self.method, &self.path, &headers, self.body.as_deref(), http::Read::Head)
            .unwrap_or_else(|| panic!("{} {}: no answer", self.method, self.path))
    }

    fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

/// What a request could change: each unit's state and main process, and the camera list on
/// disk.
fn effects(kiosk: &Kiosk, cameras_file: &std::path::Path) -> (Vec<(String, String)>, String) {
    let units = UNITS
        .iter()
        .map(|u| (kiosk.systemd.show(u, "ActiveState").unwrap(), kiosk.systemd.show(u, "MainPID").unwrap()))
        .collect();
    (units, std::fs::read_to_string(cameras_file).unwrap_or_default())
}

/// Every endpoint of the OpenAPI document, against no token and a token of each scope: a
/// request without a token is 401 unless it needs nothing; a token below what it needs gets
/// 403 naming the scope needed and the command that makes such a token, and changes nothing
/// (no unit restarted or stopped, the camera list on disk the same); a token at or above it is
/// not refused (whatever else the handler answers: 502 without a streamer, 404 for a WHEP
/// session that does not exist).
#[test]
fn every_endpoint_needs_its_scope_and_a_token_below_it_changes_nothing() {
    let kiosk = Kiosk::start(&UNITS, json!({"public_read": false, "streamer_url": "http://127.0.0.1:1"}));
    let port = kiosk.web.port;
    let cameras_file = kiosk.dir.path().join("cameras.yaml");
    let tokens: Vec<(Needs, &str, String)> = SCOPES
        .iter()
        .map(|(needs, scope)| (*needs, *scope, kiosk.new_token(&format!("{scope}-script"), scope)))
        .collect();
    let (admin, read) = (&tokens[2].2, &tokens[0].2);
    let bin = ds_tests::bins::bin("desktop-streamer-web");
    let mut set = std::process::Command::new(&bin)
        .arg("--config")
        .arg(&kiosk.config)
        .arg("set-password")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut set.stdin.take().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(set.wait().unwrap().success());
    // A camera, so that the per-camera endpoints have one.
    let local = Ipv4Addr::LOCALHOST;
    let ask = |method: &str, path: &str, token: &str, body: Option<String>| {
        let bearer = format!("Bearer {token}");
        http::request_from(local, port, method, path, &[("Authorization", &bearer)], body.as_deref(), http::Read::ToEnd)
            .unwrap_or_else(|| panic!("{method} {path}: no answer"))
    };
    let created =
        ask("POST", "/api/cameras", admin, Some(json!({"name": "Gate", "url": "rtsp://127.0.0.1:1/gate"}).to_string()));
    assert!(created.status < 300, "{}", created.text());
    let listed = ask("GET", "/api/cameras", read, None).json();
    let camera = listed["cameras"][0]["id"].as_str().unwrap_or_else(|| panic!("{listed:#}")).to_owned();
    let document = ask("GET", "/api/openapi.json", read, None).json();
    let mut calls: Vec<Call> = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch", "head", "options"].contains(&method.as_str()) {
                calls.push(Call::new(&method.to_ascii_uppercase(), template, &camera));
            }
        }
    }
    assert!(calls.len() >= 30, "{} endpoints in the document", calls.len());

    // Refusals first, while everything they could change is there to change.
    let before = effects(&kiosk, &cameras_file);
    for call in &calls {
        let anonymous = call.send(port, local, None);
        match call.needs {
            Needs::Nothing => assert!(
                ![401, 403].contains(&anonymous.status),
                "{} needs nothing but refused a request without a token: {} {}",
                call.name(),
                anonymous.status,
                anonymous.text()
            ),
            _ => {
                assert_eq!(anonymous.status, 401, "{} without a token: {}", call.name(), anonymous.text());
                assert!(anonymous.header("www-authenticate").is_some(), "{}: {:?}", call.name(), anonymous.headers);
            }
        }
        for (scope_needs, scope, token) in tokens.iter().filter(|(n, _, _)| *n < call.needs) {
            let refused = call.send(port, local, Some(token));
            let why = refused.json()["error"].as_str().unwrap_or_default().to_owned();
            let needed = SCOPES.iter().find(|(n, _)| *n == call.needs).unwrap().1;
            assert_eq!(refused.status, 403, "{} with a {scope} token ({scope_needs:?}): {why}", call.name());
            assert!(
                why.contains(&format!("scope is {scope}"))
                    && why.contains(&format!("needs {needed}"))
                    && why.contains(&format!("--scope {needed}")),
                "{} with a {scope} token: {why}",
                call.name()
            );
        }
        assert_eq!(effects(&kiosk, &cameras_file), before, "{} refused yet changed something", call.name());
    }

    // Then each token at or above what an endpoint needs, each from an address of its own (the
    // per-client bounds on log streams and searches are another test's business). Removing
    // the camera comes last, so the other per-camera endpoints still have it.
    calls.sort_by_key(|c| c.method == "DELETE" && c.template == "/api/cameras/{id}");
    let mut allowed = Vec::new();
    for call in &calls {
        for (n, (scope_needs, scope, token)) in tokens.iter().enumerate() {
            if *scope_needs < call.needs {
                continue;
            }
            let from = Ipv4Addr::new(127, 0, 0, 40 + n as u8);
            let answer = call.send(port, from, Some(token));
            assert!(
                ![401, 403].contains(&answer.status),
                "{} refused a {scope} token: {} {}",
                call.name(),
                answer.status,
                answer.text()
            );
            allowed.push(format!("{} ({scope}): {}", call.name(), answer.status));
        }
    }
    // The controls really acted: the watchdog's unit was restarted (a new main process).
    let after = effects(&kiosk, &cameras_file);
    assert_ne!(after.0[1].1, before.0[1].1, "the control token restarted the watchdog's unit");
    assert_ne!(after.1, before.1, "the admin token changed the camera list");
    eprintln!("{} endpoints; allowed answers:\n{}", calls.len(), allowed.join("\n"));
}
