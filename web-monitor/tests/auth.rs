//! The auth pieces against a real listener on 127.0.0.1:0: a small router made of the login
//! routes, the guard, and a dummy state-changing route, driven by a real HTTP client.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use desktop_streamer_web::auth::{self, AuthError, AuthSettings, AuthState, Credentials, Scope};
use desktop_streamer_web::http;
use reqwest::header::{HeaderMap, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

struct Server {
    base: String,
    auth_file: PathBuf,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(public_read: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("web-auth.json");
    let state = AuthState::new(AuthSettings {
        auth_file: auth_file.clone(),
        public_read,
        public_paths: vec!["/assets/".to_owned()],
        session_idle: auth::SESSION_IDLE,
        trusted_origins: Vec::new(),
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
    });
    let app = Router::new()
        .route("/api/thing", post(|| async { StatusCode::NO_CONTENT }).get(|| async { "thing" }))
        .route("/api/stream/restart", post(|| async { StatusCode::NO_CONTENT }))
        .route("/api/service/stop", post(|| async { StatusCode::NO_CONTENT }))
        .route("/whep/desktop", post(|| async { StatusCode::CREATED }))
        .route("/assets/app.js", get(|| async { "js" }))
        .merge(http::auth_routes(state.clone()))
        .layer(axum::middleware::from_fn_with_state(state, http::require_auth));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Server { base: format!("http://{addr}"), auth_file, client: reqwest::Client::new(), _dir: dir }
}

impl Server {
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    async fn login(&self, password: &str) -> reqwest::Response {
        self.post("/api/login").json(&json!({ "password": password })).send().await.unwrap()
    }

    /// Logs in with the right password and returns the `Cookie` header value to send back.
    async fn session_cookie(&self) -> String {
        let r = self.login(PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        cookie_pair(r.headers())
    }
}

fn set_cookie(headers: &HeaderMap) -> String {
    headers.get(SET_COOKIE).expect("a Set-Cookie header").to_str().unwrap().to_owned()
}

fn cookie_pair(headers: &HeaderMap) -> String {
    set_cookie(headers).split(';').next().unwrap().to_owned()
}

async fn error_of(r: reqwest::Response) -> String {
    let body: Value = r.json().await.unwrap();
    body["error"].as_str().expect("a JSON body {\"error\": \"...\"}").to_owned()
}

#[tokio::test]
async fn login_needs_a_password_then_sets_a_strict_cookie_and_is_rate_limited() {
    let s = start(true).await;

    let r = s.login("any password at all").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let e = error_of(r).await;
    assert!(e.contains("no admin password is set") && e.contains("desktop-streamer-web set-password"), "{e}");

    let e = auth::set_password(&s.auth_file, "short").unwrap_err();
    assert!(matches!(e, AuthError::PasswordTooShort));
    assert!(e.to_string().contains("at least 12 characters"), "{e}");
    auth::set_password(&s.auth_file, PASSWORD).unwrap();

    let r = s.login(PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = set_cookie(r.headers());
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.split("; ").any(|a| a == attr), "{attr} missing in {cookie}");
    }
    assert!(cookie.starts_with("ds_session=") && !cookie.contains("Secure"), "{cookie}");
    let pair = cookie_pair(r.headers());
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "logged_in": true, "via": "session" }));

    let r = s.get("/api/session").header("cookie", &pair).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "logged_in": true, "via": "session" }));
    let r = s.get("/api/session").send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "logged_in": false, "via": null }));

    // Behind a TLS-terminating proxy the cookie is Secure.
    let r = s.post("/api/login").header("x-forwarded-proto", "https").json(&json!({ "password": PASSWORD }));
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(r.headers()).split("; ").any(|a| a == "Secure"));

    for i in 0..5 {
        let r = s.login("wrong password, sorry").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        let e = error_of(r).await;
        assert!(e.starts_with("wrong password") && !e.contains("sorry"), "{e}");
    }
    let r = s.login("wrong password, sorry").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "Retry-After {wait}");
    assert!(error_of(r).await.contains("too many failed logins"));
    // While paused, even the right password is refused.
    assert_eq!(s.login(PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Behind a trusted reverse proxy (here the test client on 127.0.0.1, which `start` trusts) the
/// login limit counts each client its `X-Forwarded-For` names: one guesser is paused, the
/// others still log in, and an address the guesser put in front of the header does not help it.
#[tokio::test]
async fn behind_a_trusted_proxy_the_login_limit_pauses_the_guesser_not_everyone() {
    let s = start(true).await;
    auth::set_password(&s.auth_file, PASSWORD).unwrap();
    let login_as = |forwarded: &'static str, password: &'static str| {
        s.post("/api/login").header("x-forwarded-for", forwarded).json(&json!({ "password": password })).send()
    };
    for _ in 0..auth::MAX_LOGIN_FAILURES {
        assert_eq!(login_as("203.0.113.7", "wrong password, sorry").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_as("203.0.113.7", PASSWORD).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    // The guesser claims another address; the proxy appended the one it heard from.
    let spoofed = login_as("203.0.113.8, 203.0.113.7", PASSWORD).await.unwrap();
    assert_eq!(spoofed.status(), StatusCode::TOO_MANY_REQUESTS);
    // Everyone else behind the proxy still logs in.
    assert_eq!(login_as("203.0.113.8", PASSWORD).await.unwrap().status(), StatusCode::OK);
    assert_eq!(login_as("198.51.100.1, 127.0.0.1", PASSWORD).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn state_changing_requests_need_a_session_or_token_from_the_same_origin() {
    let s = start(true).await;
    auth::set_password(&s.auth_file, PASSWORD).unwrap();
    let token = auth::new_token(&s.auth_file, "ci", Scope::Admin).unwrap();
    assert!(token.starts_with(auth::TOKEN_PREFIX) && token.len() > 40);
    let cookie = s.session_cookie().await;

    let r = s.post("/api/thing").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(WWW_AUTHENTICATE));
    let e = error_of(r).await;
    assert!(e.contains("needs authentication") && e.contains("Authorization: Bearer"), "{e}");
    assert!(e.contains("new-token LABEL --scope admin"), "the message names the scope the request needs: {e}");

    assert_eq!(s.post("/api/thing").header("cookie", &cookie).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(s.post("/api/thing").bearer_auth(&token).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    // Reading is public here.
    assert_eq!(s.get("/api/thing").send().await.unwrap().status(), StatusCode::OK);
    let r = s.get("/api/session").bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "logged_in": true, "via": "token" }));

    let r = s.post("/api/thing").bearer_auth("dst_not-a-real-token").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let e = error_of(r).await;
    assert!(e.contains("token is not valid") && !e.contains("dst_not"), "{e}");

    // Cross-origin: refused even with a valid session; same origin passes.
    let r =
        s.post("/api/thing").header("cookie", &cookie).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(error_of(r).await.contains("cross-origin request refused"));
    let r = s.post("/api/thing").header("cookie", &cookie).header("origin", &s.base).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.post("/api/thing").header("cookie", &cookie).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s.post("/api/login").header("origin", "http://evil.example").json(&json!({ "password": PASSWORD }));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // A revoked token stops working at once, without a restart.
    let e = auth::revoke_token(&s.auth_file, "nope").unwrap_err();
    assert!(e.to_string().contains("\"ci\""), "{e}");
    auth::revoke_token(&s.auth_file, "ci").unwrap();
    assert_eq!(s.post("/api/thing").bearer_auth(&token).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let again = auth::new_token(&s.auth_file, "ci", Scope::Admin).unwrap();
    assert_ne!(again, token);
    assert!(matches!(auth::new_token(&s.auth_file, "ci", Scope::Admin), Err(AuthError::TokenLabelExists { .. })));
    assert_eq!(s.post("/api/thing").bearer_auth(&again).send().await.unwrap().status(), StatusCode::NO_CONTENT);

    // After logout the cookie is dead.
    let r = s.post("/api/logout").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(r.headers()).contains("Max-Age=0"));
    let r = s.post("/api/thing").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(error_of(r).await.contains("session has expired"));
}

#[tokio::test]
async fn reads_need_auth_when_public_read_is_off() {
    let s = start(false).await;
    let token = auth::new_token(&s.auth_file, "nagios", Scope::Read).unwrap();
    let r = s.get("/api/thing").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let e = error_of(r).await;
    assert!(e.contains("public_read is off") && e.contains("--scope read"), "{e}");
    assert_eq!(s.get("/api/thing").bearer_auth(&token).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(s.get("/assets/app.js").send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(s.get("/api/session").send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_a_reason() {
    let s = start(true).await;
    auth::set_password(&s.auth_file, PASSWORD).unwrap();

    let big = json!({ "password": "x".repeat(auth::JSON_BODY_LIMIT + 16 * 1024) });
    let r = s.post("/api/login").json(&big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_of(r).await.contains("larger than the limit of 65536 bytes"));

    let r = s.post("/api/login").header("content-type", "application/json").body("{\"password\": ").send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(error_of(r).await.contains("not valid JSON"));

    let r = s.post("/api/login").json(&json!({ "password": 123456789012_u64 })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e = error_of(r).await;
    assert!(e.contains("{\"password\": \"...\"}") && !e.contains("123456789012"), "{e}");

    let r = s.post("/api/login").body("{\"password\": \"x\"}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_of(r).await.contains("Content-Type: application/json"));
}

#[test]
fn credentials_file_is_private_holds_only_hashes_and_keeps_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web-auth.json");
    // An older file readable by everyone is tightened on the next write.
    std::fs::write(&file, "{\"version\": 1, \"password\": null}").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

    auth::set_password(&file, PASSWORD).unwrap();
    let token = auth::new_token(&file, "nagios", Scope::Read).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!text.contains(PASSWORD) && !text.contains(&token) && !text.contains(&token[4..]), "{text}");
    assert!(text.contains("$argon2id$") && text.contains("\"version\": 1"), "{text}");

    let generated = auth::generate_password();
    assert!(generated.len() >= auth::MIN_PASSWORD_LEN && generated != auth::generate_password());
    auth::set_password(&file, &generated).unwrap();
    let creds = Credentials::load(&file).unwrap();
    assert_eq!(creds.verify_token(&token), Some(("nagios", Scope::Read)), "set_password must keep the tokens");
    assert!(creds.verify_password(&generated) && !creds.verify_password(PASSWORD));
    let listed = auth::list_tokens(&file).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].label.as_str(), listed[0].scope), ("nagios", Scope::Read));
    let debug = format!("{creds:?}");
    assert!(!debug.contains("argon2") && debug.contains("nagios"), "{debug}");

    std::fs::write(&file, "{\"version\": 2}").unwrap();
    let e = Credentials::load(&file).unwrap_err().to_string();
    assert!(e.contains("format version 2") && e.contains("web-auth.json"), "{e}");
}

/// `set-password` ends every session made with the old password: a stolen cookie stops
/// working when the admin changes the password.
#[tokio::test]
async fn a_new_password_ends_every_session() {
    let s = start(true).await;
    auth::set_password(&s.auth_file, PASSWORD).unwrap();
    let r = s.login(PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let pair = cookie_pair(r.headers());
    let thing = || s.post("/api/thing").header("cookie", &pair).send();
    assert_eq!(thing().await.unwrap().status(), StatusCode::NO_CONTENT);
    auth::set_password(&s.auth_file, "another long password").unwrap();
    let r = thing().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the old session still works");
    assert!(error_of(r).await.contains("session has expired"));
    assert_eq!(s.login("another long password").await.status(), StatusCode::OK);
}

/// Logins from many addresses at once hash at most two passwords at a time (19 MiB each); the
/// ones turned away are told to retry and lose nothing of their address's allowance.
#[tokio::test]
async fn logins_hash_two_passwords_at_a_time_over_all_clients() {
    let s = start(true).await;
    auth::set_password(&s.auth_file, PASSWORD).unwrap();
    // Twelve clients (their X-Forwarded-For, trusted here) log in with a wrong password at once.
    let attempts = (0..12).map(|i| {
        s.post("/api/login")
            .header("x-forwarded-for", format!("192.0.2.{}", i + 1))
            .json(&json!({ "password": "wrong password, sorry" }))
            .send()
    });
    let answers = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = answers.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    let busy = statuses.iter().filter(|&&c| c == 503).count();
    assert!(statuses.iter().all(|&c| c == 401 || c == 503), "{statuses:?}");
    assert!(busy > 0 && busy <= 10, "two hashed at a time, the others turned away: {statuses:?}");
    // A client turned away still has its five attempts.
    let r = s.post("/api/login").header("x-forwarded-for", "192.0.2.1").json(&json!({ "password": PASSWORD }));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
}

/// Root running `set-password` or `new-token` leaves the credentials file to the service: an
/// existing file keeps its owner, a new one takes its directory's (the service's state
/// directory). Needs root, as the test command runs.
#[test]
fn root_writing_the_credentials_leaves_them_to_the_service() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    assert_eq!(std::fs::metadata(&state).unwrap().uid(), 0, "this test needs root, as the test command runs");
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let file = state.join("web-auth.json");
    auth::set_password(&file, PASSWORD).unwrap();
    let owner = |p: &std::path::Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o777)
    };
    assert_eq!(owner(&file), (65534, 65534, 0o600), "a new file is the directory owner's");
    std::os::unix::fs::chown(&file, Some(65533), Some(65533)).unwrap();
    auth::new_token(&file, "watchdog", Scope::Read).unwrap();
    assert_eq!(owner(&file), (65533, 65533, 0o600), "an existing file keeps its owner");
}

/// Each token may do what its scope allows and no more, on every kind of request: `read` reads
/// and watches the stream; `control` also restarts the stream and the services; `admin` also
/// changes everything else (the camera list). A token from before scopes keeps doing all it did.
#[tokio::test]
async fn a_token_does_what_its_scope_allows_and_is_told_which_scope_it_needs() {
    let s = start(false).await;
    let tokens: Vec<(Scope, String)> = Scope::ALL
        .into_iter()
        .map(|scope| (scope, auth::new_token(&s.auth_file, scope.as_str(), scope).unwrap()))
        .collect();
    let requests: [(&str, &str, Scope); 5] = [
        ("GET", "/api/thing", Scope::Read),
        ("POST", "/whep/desktop", Scope::Read),
        ("POST", "/api/stream/restart", Scope::Control),
        ("POST", "/api/service/stop", Scope::Control),
        ("POST", "/api/thing", Scope::Admin),
    ];
    for (scope, token) in &tokens {
        for (method, path, needed) in requests {
            let request = if method == "GET" { s.get(path) } else { s.post(path) };
            let r = request.bearer_auth(token).send().await.unwrap();
            if scope >= &needed {
                assert!(r.status().is_success(), "{scope} token, {method} {path}: {}", r.status());
            } else {
                assert_eq!(r.status(), StatusCode::FORBIDDEN, "{scope} token, {method} {path}");
                let e = error_of(r).await;
                assert!(
                    e.contains(&format!("scope is {scope}"))
                        && e.contains(&format!("--scope {needed}"))
                        && !e.contains(token),
                    "{e}"
                );
            }
        }
    }
    // A file written before scopes: its token may do everything, as it could.
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&s.auth_file).unwrap()).unwrap();
    for stored in file["tokens"].as_array_mut().unwrap() {
        stored.as_object_mut().unwrap().remove("scope");
    }
    std::fs::write(&s.auth_file, file.to_string()).unwrap();
    let (_, read_token) = &tokens[0];
    assert_eq!(s.post("/api/thing").bearer_auth(read_token).send().await.unwrap().status(), StatusCode::NO_CONTENT);
}
