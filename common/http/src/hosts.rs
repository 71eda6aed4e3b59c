//! Which `Host` a server answers to: the defence against DNS rebinding.
//!
//! A page on the internet can point its own name at the kiosk's LAN address once a visitor's
//! browser has loaded it; the browser then treats the kiosk's answers as that page's own and
//! lets it read them. Such a request names the attacker's host in `Host`, so a server that
//! answers only to its own names cannot be read that way. [`AllowedHosts`] accepts:
//!
//! - any IP address (`Host: 192.168.1.20:8080`, `[fe80::1]`): a rebinding page has a name;
//! - `localhost`, this machine's host name and that name under `.local` (mDNS);
//! - the names the configuration lists (`allowed_hosts`): a name, a `.suffix` for every name
//!   under a domain, or `*` for any host (behind a reverse proxy that checks it already).
//!
//! A request without `Host` (HTTP/1.0 scripts) passes: browsers always send one. Anything
//! else is answered 403 with the name refused and the key that would allow it.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

/// Where Linux keeps this machine's host name.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// The host names a server answers to (see the module's documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHosts {
    any: bool,
    names: Vec<String>,
    suffixes: Vec<String>,
}

impl AllowedHosts {
    /// `configured` (entries of `allowed_hosts`) and this machine's own names.
    pub fn new(configured: &[String]) -> AllowedHosts {
        let machine = std::fs::read_to_string(HOSTNAME_FILE).unwrap_or_default();
        AllowedHosts::with_machine_name(configured, machine.trim())
    }

    /// [`AllowedHosts::new`] for a machine named `machine` (empty: unknown).
    pub fn with_machine_name(configured: &[String], machine: &str) -> AllowedHosts {
        let mut hosts = AllowedHosts { any: false, names: vec!["localhost".to_owned()], suffixes: Vec::new() };
        if !machine.is_empty() {
            let machine = machine.to_ascii_lowercase();
            hosts.names.push(format!("{machine}.local"));
            hosts.names.push(machine);
        }
        for entry in configured {
            let entry = normalize(entry);
            if entry == "*" {
                hosts.any = true;
            } else if entry.starts_with('.') {
                hosts.suffixes.push(entry);
            } else {
                hosts.names.push(entry);
            }
        }
        hosts
    }

    /// Whether a request whose `Host` header (or authority) is `host` is answered.
    pub fn allows(&self, host: &str) -> bool {
        let name = strip_port(host);
        if self.any || name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normalize(name);
        self.names.contains(&name) || self.suffixes.iter().any(|s| name.ends_with(s.as_str()))
    }
}

/// A host without its port; an IPv6 literal without its brackets.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(':') => name,
        _ => host,
    }
}

/// Lower case, without the root's trailing dot.
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The middleware: `router.layer(axum::middleware::from_fn_with_state(hosts, ds_http::hosts::check_host))`.
pub async fn check_host(State(hosts): State<Arc<AllowedHosts>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("(not text)").to_owned())
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if !hosts.allows(&host) => {
            let shown: String = host.chars().filter(|c| !c.is_control()).take(100).collect();
            // Debug: a client sending many such requests must not flood the log.
            tracing::debug!(host = %shown, "request for a host this server does not answer to refused");
            let message = format!(
                "this server does not answer to the host `{shown}`: ask for it by its address or host name, or add \
                 the name to `allowed_hosts` in its configuration (a reverse proxy's name, say)"
            );
            (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({ "error": message }))).into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_own_names_and_listed_ones_pass_others_do_not() {
        let hosts =
            AllowedHosts::with_machine_name(&["Kiosk.Shop.LAN.".to_owned(), ".cams.example".to_owned()], "Kiosk1");
        for ok in [
            "192.168.1.20",
            "192.168.1.20:8080",
            "[fe80::1]:8080",
            "[::1]",
            "localhost:8888",
            "kiosk1",
            "KIOSK1.local:8080",
            "kiosk.shop.lan",
            "wall.cams.example",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for refused in ["rebind.attacker.example", "kiosk1.attacker.example", "cams.example", "localhost.evil", ""] {
            assert!(!hosts.allows(refused), "{refused}");
        }
        assert!(AllowedHosts::with_machine_name(&["*".to_owned()], "").allows("anything.example"));
    }
}
