//! The OpenAPI document and the router agree: every route written in the source (each
//! `.route("PATH", get(..).post(..))` under web-monitor/src) is in the document with the same
//! methods, and every operation of the document answers on the real router (served on
//! 127.0.0.1:0) from its handler, not from the fallback or with 405.
//!
//! Also the page's own serving: content types, ETag and 304, the security headers.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use desktop_streamer_web::auth::{self, AuthSettings, AuthState};
use desktop_streamer_web::clock_sync::ClockWatch;
use desktop_streamer_web::history::History;
use desktop_streamer_web::http::cameras::{Cameras, Fleet, Live};
use desktop_streamer_web::http::{self, AppState, ui};
use desktop_streamer_web::openapi;
use desktop_streamer_web::snapshot::{Sources, StatusCache};
use desktop_streamer_web::systemd_link::SystemdLink;
use desktop_streamer_web::upstream::Streamer;
use ds_camera_db::Store;
use ds_config::WebConfig;
use ds_runtime::Shutdown;
use ds_wire::system::ClockSync;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (path, method) of every `.route(...)` call in `source`; a path given as a constant is
/// resolved through `consts`.
fn routes_in(source: &str, consts: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (start, _) in source.match_indices(".route(") {
        let rest = &source[start + ".route(".len()..];
        // The call's text, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let call = &rest[..end];
        let (first, handlers) = call.split_once(',').unwrap_or_else(|| panic!("a route without handler: {call}"));
        let first = first.trim();
        let path = match first.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
            Some(p) => p.to_owned(),
            None => consts
                .iter()
                .find(|(name, _)| *name == first)
                .unwrap_or_else(|| panic!("route path {first}: add the constant to this test"))
                .1
                .to_owned(),
        };
        for method in METHODS {
            let called = handlers
                .match_indices(&format!("{method}("))
                .any(|(i, _)| i == 0 || !handlers[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
            if called {
                found.push((path.clone(), method.to_owned()));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn document() -> Value {
    serde_json::from_str(openapi::DOCUMENT).expect("openapi.json is JSON")
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut set = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                set.insert((path.clone(), method.to_owned()));
            }
        }
    }
    set
}

#[test]
fn every_route_in_the_source_is_documented_and_nothing_else() {
    let consts = [
        ("LOGIN_PATH", auth::LOGIN_PATH),
        ("LOGOUT_PATH", auth::LOGOUT_PATH),
        ("SESSION_PATH", auth::SESSION_PATH),
        ("stream::WHEP_PATH", http::stream::WHEP_PATH),
    ];
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut in_source = BTreeSet::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        // A module's unit tests may build routers of their own.
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        in_source.extend(routes_in(source, &consts));
    }
    assert!(
        in_source.contains(&("/api/status".to_owned(), "get".to_owned())),
        "the parser finds routes: {in_source:?}"
    );
    let doc = document();
    let in_doc = documented(&doc);
    let undocumented: Vec<_> = in_source.difference(&in_doc).collect();
    let gone: Vec<_> = in_doc.difference(&in_source).collect();
    assert!(undocumented.is_empty(), "routes missing from web-monitor/openapi.json: {undocumented:?}");
    assert!(gone.is_empty(), "documented in web-monitor/openapi.json but not routed: {gone:?}");
    assert_eq!(doc["openapi"], "3.1.0");
}

#[test]
fn the_route_parser_sees_methods_and_constants() {
    let source = r#"Router::new().route("/a/{x}", get(h::one).post(two)).route(LOGIN_PATH, post(login))
        .route("/b", budget(x))"#;
    let routes = routes_in(source, &[("LOGIN_PATH", "/api/login")]);
    let pairs: Vec<(&str, &str)> = routes.iter().map(|(p, m)| (p.as_str(), m.as_str())).collect();
    assert_eq!(pairs, [("/a/{x}", "get"), ("/a/{x}", "post"), ("/api/login", "post")]);
}

/// Every `$ref` points at something in the document.
#[test]
fn every_reference_resolves() {
    fn walk(v: &Value, doc: &Value, bad: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let pointer = r.trim_start_matches('#');
                    if doc.pointer(pointer).is_none() {
                        bad.push(r.clone());
                    }
                }
                map.values().for_each(|x| walk(x, doc, bad));
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, doc, bad)),
            _ => {}
        }
    }
    let doc = document();
    let mut bad = Vec::new();
    walk(&doc, &doc, &mut bad);
    assert!(bad.is_empty(), "unresolved: {bad:?}");
    // Every error answer is documented as the JSON error shape or a reference to one.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (code, response) in op["responses"].as_object().unwrap() {
                if code.starts_with('4') || code.starts_with('5') {
                    let text = response.to_string();
                    assert!(
                        text.contains("#/components/schemas/Error") || text.contains("#/components/responses/"),
                        "{method} {path} {code} does not say its body is {{\"error\": …}}"
                    );
                }
            }
        }
    }
}

/// The admin password of [`serve`]'s dashboard.
const PASSWORD: &str = "openapi test password";

struct Served {
    base: String,
    token: String,
    dir: tempfile::TempDir,
    shutdown: Shutdown,
}

/// The real router on 127.0.0.1:0, with a streamer address where nothing listens and no
/// systemd: every handler answers (with what it cannot reach), none hangs.
async fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = WebConfig {
        streamer_url: nowhere.clone(),
        auth_file: dir.path().join("web-auth.json"),
        log_dir: dir.path().join("logs"),
        watchdog_state_dir: dir.path().join("watchdog"),
        cameras_file: dir.path().join("cameras.yaml"),
        database: dir.path().join("cameras.db"),
        ..WebConfig::default()
    };
    let token = auth::new_token(&config.auth_file, "openapi-test", auth::Scope::Admin).unwrap();
    auth::set_password(&config.auth_file, PASSWORD).unwrap();
    let streamer = Streamer::new(&nowhere, None);
    let shutdown = Shutdown::new();
    let history = History::new();
    let link = SystemdLink::down("no systemd in this test");
    let sources = Sources {
        streamer: streamer.clone(),
        systemd: link.clone(),
        units: config.units.clone(),
        machine: Default::default(),
        clock: ClockWatch::fixed(ClockSync::unknown("no systemd-timedated in this test")),
    };
    let status = StatusCache::start(sources, history.clone(), shutdown.clone()).await;
    let auth = AuthState::new(AuthSettings::from_config(&config).public_paths(http::PUBLIC_PATHS));
    let cameras = Cameras::new(
        std::sync::Arc::new(Fleet::open(&config.cameras_file)),
        std::sync::Arc::new(Live::new(Default::default(), Default::default())),
        Store::open(&config.database, Default::default()).ok(),
    );
    let state = AppState {
        streamer,
        config: std::sync::Arc::new(config),
        systemd: link,
        status,
        history,
        cameras,
        logs: Default::default(),
        served: std::sync::Arc::default(),
    };
    let app = http::app(state, auth).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { stop.wait().await }).await.unwrap();
    });
    Served { base: format!("http://{addr}"), token, dir, shutdown }
}

/// A concrete path for a documented one: each `{param}` replaced by its example or first
/// allowed value.
fn concrete(path: &str, op: &Value) -> String {
    let mut out = path.to_owned();
    for p in op["parameters"].as_array().into_iter().flatten() {
        if p["in"] == "path" {
            let name = p["name"].as_str().unwrap();
            let value = p["example"].as_str().or_else(|| p["schema"]["enum"][0].as_str()).unwrap_or_else(|| {
                panic!("path parameter {name} of {path} needs an example or an enum");
            });
            out = out.replace(&format!("{{{name}}}"), value);
        }
    }
    out
}

#[tokio::test]
async fn every_documented_operation_is_answered_by_its_handler() {
    let s = serve().await;
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap();
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let url = format!("{}{}", s.base, concrete(path, op));
            let request = match method {
                "get" => client.get(&url),
                "post" => client.post(&url).json(&serde_json::json!({})),
                "put" => client.put(&url).json(&serde_json::json!({})),
                "delete" => client.delete(&url),
                other => panic!("no request for {other}"),
            };
            let r = request.bearer_auth(&s.token).send().await.unwrap();
            let status = r.status().as_u16();
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert_ne!(status, 405, "{method} {path}: the router has no such method");
            assert!(
                documented.iter().any(|c| **c == status.to_string()),
                "{method} {path} answered {status}, which the document does not list ({documented:?})"
            );
            if !r.headers().get("content-type").is_some_and(|t| t.to_str().unwrap().starts_with("text/event-stream")) {
                let body = r.text().await.unwrap();
                assert!(!body.contains("no such endpoint"), "{method} {path} fell through to the fallback: {body}");
            }
        }
    }
    s.shutdown.trigger();
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_types_etags_and_a_strict_policy() {
    let s = serve().await;
    let client = reqwest::Client::new();
    let page = client.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    let header = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let csp = header("content-security-policy");
    for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    let etag = header("etag");
    assert!(etag.starts_with('"'), "{etag}");
    assert!(page.text().await.unwrap().contains("/assets/dashboard.js"));

    let again = client.get(format!("{}/", s.base)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304, "revalidation with the ETag");
    assert!(again.text().await.unwrap().is_empty());

    for (name, ctype) in [
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("common.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("hls.min.mjs", "text/javascript; charset=utf-8"),
    ] {
        let r = client.get(format!("{}/assets/{name}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.headers()["content-type"], ctype, "{name}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), ui::asset(name).unwrap().body, "{name}");
    }
    let missing = client.get(format!("{}/assets/nothing.js", s.base)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("nothing.js"));
    let traversal = client.get(format!("{}/assets/..%2FCargo.toml", s.base)).send().await.unwrap();
    assert_eq!(traversal.status(), 404);

    let doc = client.get(format!("{}/api/openapi.json", s.base)).send().await.unwrap();
    assert_eq!(doc.json::<Value>().await.unwrap(), document());
    let history = client.get(format!("{}/api/status/history", s.base)).send().await.unwrap();
    let history: Value = history.json().await.unwrap();
    assert_eq!(history["span_seconds"], 3600);
    assert_eq!(history["points"].as_array().unwrap().len(), 1, "the first sample is in: {history}");
    s.shutdown.trigger();
}

/// A query or a method that does not fit is answered in JSON with what was wrong, like every
/// other error (axum's own answers are plain text, or an empty 405).
#[tokio::test]
async fn a_bad_query_or_method_gets_a_json_reason() {
    let s = serve().await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{}{path}", s.base)).send();
    for (path, why) in [
        ("/api/logs?lines=abc", "the query string is not valid: lines: invalid digit found in string"),
        ("/api/logs/stream?lines=-1", "the query string is not valid: lines: invalid digit found in string"),
        ("/api/cameras/any/history?hours=abc", "the query string is not valid: hours: invalid digit found in string"),
        ("/api/cameras/export.csv?days=7", "the query string is not valid: days: unknown field `days`"),
        (
            "/api/logs?colour=red",
            "the query string is not valid: colour: unknown field `colour`, expected one of `lines`, `level`",
        ),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let error = r.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(why), "{path}: {error}");
    }
    // Empty parameters, as a form sends them, are absent: this reaches the log reader, which
    // says the (test's) log directory does not exist.
    let r = get("/api/logs?lines=&level=&q=").await.unwrap();
    assert_eq!(r.status(), 503);
    let error = r.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("does not exist"), "{error}");

    let r = get("/api/service/restart").await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "GET is not allowed on /api/service/restart: use POST");
    let r = client.delete(format!("{}/api/status", s.base)).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "DELETE is not allowed on /api/status: use GET");
    s.shutdown.trigger();
}

/// Every documented state-changing operation (each non-GET one) is refused without
/// credentials (401) and from another origin even with a session (403), and passes the guard
/// with a same-origin session or a token (whatever its handler then says).
#[tokio::test]
async fn every_state_changing_operation_needs_credentials_and_the_same_origin() {
    let s = serve().await;
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap();
    let login = client
        .post(format!("{}/api/login", s.base))
        .json(&serde_json::json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let own_origin = s.base.clone();
    let doc = document();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS.into_iter().filter(|m| *m != "get") {
            if let Some(op) = item.get(method) {
                operations.push((method, path.clone(), concrete(path, op)));
            }
        }
    }
    // Logging out ends the session the other checks use: last.
    operations.sort_by_key(|(_, path, _)| path == auth::LOGOUT_PATH);
    assert!(operations.len() >= 9, "{operations:?}");
    for (method, path, url) in &operations {
        let request = |extra: &[(&str, &str)]| {
            let mut r = client
                .request(method.to_uppercase().parse().unwrap(), format!("{}{url}", s.base))
                .json(&serde_json::json!({}));
            for (name, value) in extra {
                r = r.header(*name, *value);
            }
            r.send()
        };
        let what = format!("{method} {path}");
        let anonymous = request(&[]).await.unwrap();
        // Logging in is how credentials are had, and watching the stream (WHEP) is reading,
        // public while `public_read` is on as here; both still refuse other origins below.
        if path.starts_with("/whep/") {
            assert_ne!(anonymous.status(), 401, "{what} is a read");
        } else if path != auth::LOGIN_PATH {
            assert_eq!(anonymous.status(), 401, "{what} without credentials");
            let error = anonymous.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
            assert!(error.contains("needs authentication"), "{what}: {error}");
        }
        let foreign = request(&[("cookie", &cookie), ("origin", "http://evil.example")]).await.unwrap();
        assert_eq!(foreign.status(), 403, "{what} with a session from another origin");
        let error = foreign.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(error.starts_with("cross-origin request refused"), "{what}: {error}");
        let bearer = format!("Bearer {}", s.token);
        for (via, headers) in [
            ("a token", vec![("authorization", bearer.as_str())]),
            ("a same-origin session", vec![("cookie", cookie.as_str()), ("origin", own_origin.as_str())]),
        ] {
            let r = request(&headers).await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert!(status != 401 && status != 403, "{what} with {via}: {status} {body}");
        }
    }
    s.shutdown.trigger();
}

/// A broken alert history is a 500 whose body says where to look, not the server's paths.
#[tokio::test]
async fn a_broken_alert_history_is_a_generic_500() {
    let s = serve().await;
    let state = s.dir.path().join("watchdog");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("alert-history.json"), "{not json").unwrap();
    let r = reqwest::get(format!("{}/api/alerts", s.base)).await.unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert_eq!(body, r#"{"error":"cannot read the alert history; the cause is in the web service's log"}"#);
    s.shutdown.trigger();
}
