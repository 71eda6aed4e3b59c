//! A real SMTP server for tests: Debian's aiosmtpd (package python3-aiosmtpd) on 127.0.0.1,
//! storing what it receives in a Maildir; optionally requiring AUTH (tests/smtp_auth_server.py).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bins::workspace_root;
use crate::wait::wait_until;

/// Debian's interpreter: the one python3-aiosmtpd installs into (a pyenv python may come first
/// on PATH).
const PYTHON: &str = "/usr/bin/python3";
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running aiosmtpd; stopped (by its pid) when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

impl SmtpServer {
    /// Accepts any mail, no authentication, on `port`, into `maildir` (created if missing).
    pub fn start(port: u16, maildir: &Path) -> SmtpServer {
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir);
        SmtpServer::spawn(cmd, port, maildir)
    }

    /// Accepts any mail over TLS, with the certificate of [`TlsFiles`]: STARTTLS required
    /// (`implicit` false) or TLS from the first byte (SMTPS, `implicit` true).
    pub fn start_tls(port: u16, maildir: &Path, tls: &TlsFiles, implicit: bool) -> SmtpServer {
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"]);
        if implicit {
            cmd.arg("--smtpscert").arg(&tls.cert).arg("--smtpskey").arg(&tls.key);
        } else {
            cmd.arg("--tlscert").arg(&tls.cert).arg("--tlskey").arg(&tls.key);
        }
        cmd.arg(maildir);
        SmtpServer::spawn(cmd, port, maildir)
    }

    /// Requires AUTH (PLAIN or LOGIN, over plain text) with exactly `user` and `password`.
    pub fn start_with_auth(port: u16, maildir: &Path, user: &str, password: &str) -> SmtpServer {
        let script = workspace_root().join("tests/smtp_auth_server.py");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script)
            .arg(format!("127.0.0.1:{port}"))
            .arg(maildir)
            .env("SMTP_USER", user)
            .env("SMTP_PASSWORD", password);
        SmtpServer::spawn(cmd, port, maildir)
    }

    fn spawn(mut cmd: Command, port: u16, maildir: &Path) -> SmtpServer {
        assert!(
            Path::new(PYTHON).exists()
                && Command::new(PYTHON).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success()),
            "aiosmtpd is missing: install Debian's python3-aiosmtpd (tests/deps.sh)"
        );
        // Python's Maildir creates tmp/new/cur only when the directory itself is missing.
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(maildir.join(sub)).expect("create the maildir");
        }
        let log_path = maildir.with_extension("log");
        let log = fs::File::create(&log_path).expect("create the SMTP server log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start aiosmtpd");
        let mut server = SmtpServer { child, port, maildir: maildir.to_owned() };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("aiosmtpd exited ({status}): {}", fs::read_to_string(&log_path).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on port {port} within {START_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<String> {
        maildir_messages(&self.maildir)
    }

    /// Waits (at most `timeout`) until at least `count` messages arrived; returns them all.
    /// Panics with those that did arrive otherwise.
    #[track_caller]
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        wait_until(&format!("{count} mails at the SMTP server"), timeout, || {
            let messages = self.messages();
            if messages.len() >= count {
                Ok(messages)
            } else {
                Err(format!("{} arrived: {messages:#?}", messages.len()))
            }
        })
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        crate::service::end(&mut self.child);
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The messages in a Maildir (`new/` and `cur/`), oldest file first.
pub fn maildir_messages(maildir: &Path) -> Vec<String> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["new", "cur"]
        .iter()
        .filter_map(|sub| fs::read_dir(maildir.join(sub)).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    files.into_iter().filter_map(|(_, p)| fs::read_to_string(p).ok()).collect()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// A private CA and a server certificate it signed for 127.0.0.1, made with openssl.
#[derive(Debug)]
pub struct TlsFiles {
    /// The CA certificate (PEM) a client must trust.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Writes the files into `dir`.
    pub fn create(dir: &Path) -> TlsFiles {
        let openssl = |args: &[&str]| {
            let out =
                Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl (tests/deps.sh)");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &[
                    "req",
                    "-x509",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=desktop-streamer test CA",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                ][..],
                &ec,
                &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
            ]
            .concat(),
        );
        openssl(&[&["req", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"][..], &ec].concat());
        fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions file");
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") }
    }
}
