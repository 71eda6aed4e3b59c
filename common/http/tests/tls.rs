//! `ds_http::tls::Certificate::load` with the files an operator gives it, made by openssl as an
//! operator makes them: every key form it takes loads, and each file it cannot use is named
//! with what is wrong, without its contents.

use std::path::{Path, PathBuf};
use std::process::Command;

use ds_http::tls::{Certificate, TlsError};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs (tests/deps.sh)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A self-signed certificate and its key (PKCS#8) of `kind` (`rsa:2048`, `ec`): (cert, key).
fn self_signed(dir: &Path, name: &str, kind: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    let mut args = vec!["req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=kiosk", "-newkey", kind];
    if kind == "ec" {
        args.extend(["-pkeyopt", "ec_paramgen_curve:prime256v1"]);
    }
    args.extend(["-keyout", &key, "-out", &cert]);
    openssl(dir, &args);
    (dir.join(cert), dir.join(key))
}

#[test]
fn pkcs8_rsa_and_sec1_keys_load_with_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (rsa_cert, rsa_key) = self_signed(dir.path(), "rsa", "rsa:2048");
    let (ec_cert, ec_key) = self_signed(dir.path(), "ec", "ec");
    openssl(dir.path(), &["rsa", "-in", "rsa.key", "-traditional", "-out", "rsa1.key"]);
    openssl(dir.path(), &["ec", "-in", "ec.key", "-out", "ec1.key"]);
    let first_line = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap().lines().next().unwrap().to_owned();
    assert_eq!(first_line("rsa1.key"), "-----BEGIN RSA PRIVATE KEY-----");
    assert_eq!(first_line("ec1.key"), "-----BEGIN EC PRIVATE KEY-----");
    for (cert, key) in [
        (&rsa_cert, rsa_key),
        (&rsa_cert, dir.path().join("rsa1.key")),
        (&ec_cert, ec_key),
        (&ec_cert, dir.path().join("ec1.key")),
    ] {
        Certificate::load(cert, &key).unwrap_or_else(|e| panic!("{}: {e}", key.display()));
    }
    // A chain: the server's certificate first, then an intermediate (here any other one).
    let chain = dir.path().join("chain.pem");
    let text = std::fs::read_to_string(&ec_cert).unwrap() + &std::fs::read_to_string(&rsa_cert).unwrap();
    std::fs::write(&chain, text).unwrap();
    Certificate::load(&chain, &dir.path().join("ec1.key")).unwrap();
}

#[test]
fn a_file_that_cannot_be_used_is_named_with_what_is_wrong_and_not_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "ec", "ec");
    let (_, other_key) = self_signed(dir.path(), "other", "ec");
    let truncated = dir.path().join("truncated.key");
    let key_text = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&truncated, &key_text[..key_text.len() / 2]).unwrap();
    let encrypted = dir.path().join("encrypted.key");
    openssl(dir.path(), &["pkcs8", "-topk8", "-in", "ec.key", "-out", "encrypted.key", "-passout", "pass:secret"]);
    let missing = dir.path().join("missing.pem");
    let cases: [(&Path, &Path, &Path, bool, &str); 6] = [
        (&cert, &other_key, &other_key, true, "does not belong to the certificate in"),
        (&cert, &truncated, &truncated, true, "is not valid PEM: a block has no `-----END …-----` line"),
        (&cert, &encrypted, &encrypted, true, "holds no private key"),
        (&cert, &cert, &cert, true, "holds no private key"),
        (&key, &key, &key, false, "holds no certificate"),
        (&missing, &key, &missing, false, "cannot read the certificate file"),
    ];
    for (cert, key, named, about_key, why) in cases {
        let e: TlsError = Certificate::load(cert, key).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&named.display().to_string()) && text.contains(why), "{text}");
        assert_eq!(e.is_about_key(), about_key, "{text}");
        for line in key_text.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!text.contains(line), "key material in {text}");
        }
    }
}
