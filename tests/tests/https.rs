//! The dashboard's own HTTPS (`tls_cert_file`, `tls_key_file`), end to end: the real
//! `desktop-streamer-web` serving a certificate that a private CA made with openssl signed,
//! asked by reqwest trusting that CA, by plain HTTP and by clients that never finish a
//! handshake; the `desktop-streamer-monitor` CLI reaching it; and files that cannot be used
//! refused at start and by `check-config`, named.
//!
//! The web service runs without systemd here (its bus address leads nowhere): what is tested
//! is its HTTP side, which does not wait for the bus.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ds_http::serve::DEFAULT_HEADER_READ_TIMEOUT;
use ds_tests::bins::bin;
use ds_tests::kiosk::WebFiles;
use ds_tests::service::ServiceProcess;
use ds_tests::smtp::TlsFiles;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
/// Time allowed beyond a limit for the service to act on it.
const SLACK: Duration = Duration::from_secs(3);

/// Starts the web service with `extra` config keys, on 127.0.0.1 and a free port, with no
/// systemd to talk to.
fn start_web(dir: &Path, extra: Value) -> (ServiceProcess, WebFiles) {
    let files = WebFiles::write(dir, extra);
    let args: Vec<OsString> =
        vec!["--config".into(), files.config.clone().into(), "--listen".into(), "127.0.0.1:0".into()];
    let nowhere = format!("unix:path={}", dir.join("no-bus").display());
    let web = ServiceProcess::start(
        "desktop-streamer-web",
        &args,
        &[("DBUS_SESSION_BUS_ADDRESS", &nowhere), ("DESKTOP_STREAMER_LOG_DIR", files.logs.to_str().unwrap())],
    );
    (web, files)
}

/// `desktop-streamer-web check-config` with `config`: its exit code, stdout and stderr.
fn check_config(config: &Path) -> (Option<i32>, String) {
    let out =
        Command::new(bin("desktop-streamer-web")).arg("--config").arg(config).arg("check-config").output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A client that trusts only the CA in `ca` (no system roots), each request on a new
/// connection (so a new handshake).
fn client_trusting(ca: &Path) -> reqwest::Client {
    let roots = reqwest::Certificate::from_pem_bundle(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only(roots)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Whether the server closed `stream` (end of file or reset) within `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn the_dashboard_serves_https_with_hsts_and_secure_cookies_and_bounds_unfinished_handshakes() {
    let dir = ds_tests::stream_dir();
    let tls = TlsFiles::create(dir.path());
    let (web, files) = start_web(dir.path(), json!({"tls_cert_file": tls.cert, "tls_key_file": tls.key}));
    ds_tests::browser::set_admin_password(&files.config, PASSWORD);
    let base = format!("https://127.0.0.1:{}", web.port);
    let client = client_trusting(&tls.ca);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // reqwest starts its timers when a request is built.
    let _in_runtime = runtime.enter();

    // The API answers over HTTPS (502: there is no streamer here), with HSTS.
    let health = runtime.block_on(client.get(format!("{base}/api/health")).send()).expect("an HTTPS answer");
    assert_eq!(health.status(), 502);
    assert_eq!(health.version(), reqwest::Version::HTTP_11);
    assert_eq!(health.headers()["strict-transport-security"], "max-age=31536000");
    // Logging in over it sets a Secure cookie; the session works.
    let login = runtime
        .block_on(
            client
                .post(format!("{base}/api/login"))
                .header("Origin", &base)
                .json(&json!({"password": PASSWORD}))
                .send(),
        )
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.ends_with("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    let session = runtime
        .block_on(client.get(format!("{base}/api/session")).header("Cookie", cookie.split(';').next().unwrap()).send())
        .unwrap();
    assert_eq!(runtime.block_on(session.json::<Value>()).unwrap()["logged_in"], true);

    // Plain HTTP to the port gets no API: a 400 saying what to use instead.
    let plain = ds_tests::http::get(web.port, "/api/health").expect("a plain answer");
    assert_eq!(plain.status, 400, "{}", plain.text());
    assert!(plain.text().contains("speaks HTTPS") && plain.header("strict-transport-security").is_none());
    // A client that does not trust the CA gets no answer.
    let untrusting = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let refused = runtime.block_on(untrusting.get(format!("{base}/api/health")).send()).unwrap_err();
    assert!(format!("{refused:?}").contains("Certificate"), "{refused:?}");

    // Clients that open TCP and never finish a handshake (nothing sent, or half a
    // ClientHello): others are served meanwhile, and they are closed at the header-read timeout.
    let opened = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", web.port)).unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", web.port)).unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    let held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(("127.0.0.1", web.port)).unwrap()).collect();
    let asked = Instant::now();
    let meanwhile = runtime.block_on(client.get(format!("{base}/api/health")).send()).unwrap();
    assert_eq!(meanwhile.status(), 502);
    let answered_in = asked.elapsed();
    assert!(answered_in < Duration::from_secs(2), "answered after {answered_in:?} beside unfinished handshakes");
    for (stream, what) in [(&mut silent, "a silent client"), (&mut half, "half a ClientHello")] {
        assert!(
            closed_within(stream, DEFAULT_HEADER_READ_TIMEOUT + SLACK),
            "{what} still open {:?} after it connected",
            opened.elapsed()
        );
        let at = opened.elapsed();
        assert!(at >= DEFAULT_HEADER_READ_TIMEOUT - Duration::from_secs(1), "{what} closed after only {at:?}");
    }
    eprintln!(
        "HTTPS answer beside 22 unfinished handshakes in {:.1} ms; those closed {:.1} s after they opened",
        answered_in.as_secs_f64() * 1000.0,
        opened.elapsed().as_secs_f64()
    );
    drop(held);

    // /metrics counts them: the plain-HTTP request, the client that did not trust the
    // certificate (its handshake failed), the unfinished handshakes.
    let metrics = runtime.block_on(async { client.get(format!("{base}/metrics")).send().await?.text().await }).unwrap();
    let refused = |reason: &str| -> u64 {
        let series = format!("desktop_streamer_web_https_connections_refused_total{{reason=\"{reason}\"}} ");
        let line = metrics.lines().find(|l| l.starts_with(&series)).unwrap_or_else(|| panic!("{series} in {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(refused("plain_http"), 1, "{metrics}");
    assert!(refused("handshake_failed") >= 1, "{metrics}");
    assert!(refused("handshake_timeout") >= 2, "{metrics}");

    // The CLI reaches the dashboard over HTTPS when told which CA to trust, and says why not
    // when it is not.
    let monitor = |extra: &[&str]| {
        Command::new(bin("desktop-streamer-monitor"))
            .args(["--url", &base, "--streamer-url", "http://127.0.0.1:9", "cameras", "--json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let trusted = monitor(&["--ca-file", tls.ca.to_str().unwrap()]);
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    let cameras: Value = serde_json::from_slice(&trusted.stdout).unwrap();
    assert!(cameras["cameras"].is_array(), "{cameras:#}");
    let untrusted = monitor(&[]);
    assert!(!untrusted.status.success());
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("certificate"), "{untrusted:?}");
}

/// Makes a self-signed certificate and key with the README's openssl command (section
/// "HTTPS"), with this test's file names.
fn self_signed(cert: &Path, key: &Path) {
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "825"])
        .args(["-subj", "/CN=kiosk", "-addext", "subjectAltName=DNS:kiosk,DNS:kiosk.local,DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("openssl runs (tests/deps.sh)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A kiosk's self-signed certificate made with the README's openssl command: the dashboard
/// serves it, and the CLI on the kiosk finds the dashboard from the web config alone (https,
/// trusting that certificate file). A renewed certificate is served after SIGHUP; files that
/// cannot be used then leave the one in use.
#[test]
fn a_self_signed_certificate_from_the_readme_serves_the_cli_trusts_it_and_sighup_renews_it() {
    let dir = ds_tests::stream_dir();
    let (cert, key) = (dir.path().join("kiosk.pem"), dir.path().join("kiosk.key"));
    self_signed(&cert, &key);
    // Relative paths, from the config file's directory.
    let (web, files) = start_web(dir.path(), json!({"tls_cert_file": "kiosk.pem", "tls_key_file": "kiosk.key"}));
    // The CLI reads the address from the config's `listen`: the port the service took.
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&files.config).unwrap()).unwrap();
    config["listen"] = json!(format!("127.0.0.1:{}", web.port));
    std::fs::write(&files.config, config.to_string()).unwrap();
    let out = Command::new(bin("desktop-streamer-monitor"))
        .arg("--config")
        .arg(&files.config)
        .args(["--streamer-url", "http://127.0.0.1:9", "cameras", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cameras: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(cameras["cameras"].is_array(), "{cameras:#}");

    // Renewal: new files, SIGHUP, and a client that trusts only the new certificate is served.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _in_runtime = runtime.enter();
    let url = format!("https://127.0.0.1:{}/api/health", web.port);
    let served_to = |client: &reqwest::Client| runtime.block_on(client.get(&url).send()).is_ok();
    let old_cert = dir.path().join("old.pem");
    std::fs::copy(&cert, &old_cert).unwrap();
    let old = client_trusting(&old_cert);
    let (new_cert, new_key) = (dir.path().join("new.pem"), dir.path().join("new.key"));
    self_signed(&new_cert, &new_key);
    let new = client_trusting(&new_cert);
    assert!(served_to(&old) && !served_to(&new), "the first certificate is served before SIGHUP");
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    web.signal("HUP");
    ds_tests::wait::wait_until("the renewed certificate served after SIGHUP", Duration::from_secs(5), || {
        if served_to(&new) { Ok(()) } else { Err(web.logs()) }
    });
    // A new client (one that has no TLS session to resume from before).
    assert!(!served_to(&client_trusting(&old_cert)), "the old certificate is no longer served");
    // A key file broken by a careless edit: SIGHUP logs why and the certificate in use stays.
    std::fs::write(&key, "not a key\n").unwrap();
    web.signal("HUP");
    ds_tests::wait::wait_until("the refused reload logged", Duration::from_secs(5), || {
        let logs = web.logs();
        if logs.contains("the certificate in use stays") { Ok(logs) } else { Err(logs) }
    });
    assert!(served_to(&new), "still served after a refused reload");
}

#[test]
fn certificate_files_that_cannot_be_used_are_refused_at_start_and_by_check_config_naming_the_file() {
    let dir = ds_tests::stream_dir();
    let tls = TlsFiles::create(dir.path());
    let other_key = dir.path().join("other.key");
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out"])
        .arg(&other_key)
        .output()
        .expect("openssl runs (tests/deps.sh)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key_text = std::fs::read_to_string(&other_key).unwrap();
    let missing = dir.path().join("missing.pem");
    let cases = [
        (
            json!({"tls_cert_file": tls.cert, "tls_key_file": other_key}),
            other_key.clone(),
            "does not belong to the certificate",
        ),
        (json!({"tls_cert_file": tls.cert, "tls_key_file": tls.cert}), tls.cert.clone(), "holds no private key"),
        (json!({"tls_cert_file": tls.key, "tls_key_file": tls.key}), tls.key.clone(), "holds no certificate"),
        (
            json!({"tls_cert_file": missing, "tls_key_file": tls.key}),
            missing.clone(),
            "cannot read the certificate file",
        ),
    ];
    for (keys, file, why) in cases {
        let files = WebFiles::write(dir.path(), keys.clone());
        let file = file.display().to_string();
        let started = Instant::now();
        let run = Command::new(bin("desktop-streamer-web"))
            .arg("--config")
            .arg(&files.config)
            .args(["--listen", "127.0.0.1:0"])
            .env("DESKTOP_STREAMER_LOG_DIR", &files.logs)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && started.elapsed() < Duration::from_secs(10), "{keys}: {stderr}");
        assert!(stderr.contains(&file) && stderr.contains(why), "{keys}: {stderr}");
        assert!(stderr.contains("tls_cert_file and tls_key_file"), "{keys}: names the keys: {stderr}");
        let (code, text) = check_config(&files.config);
        assert_eq!(code, Some(1), "{keys}: {text}");
        assert!(text.contains(&file) && text.contains(why), "{keys}: {text}");
        for line in key_text.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!stderr.contains(line) && !text.contains(line), "key material shown: {stderr}{text}");
        }
    }
    // One of the two keys alone: an error naming both, at start and by check-config.
    let files = WebFiles::write(dir.path(), json!({"tls_cert_file": tls.cert}));
    let (code, text) = check_config(&files.config);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("tls_cert_file and tls_key_file go together: set tls_key_file too"), "{text}");
    let run = Command::new(bin("desktop-streamer-web")).arg("--config").arg(&files.config).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("set tls_key_file too"), "{run:?}");
}
