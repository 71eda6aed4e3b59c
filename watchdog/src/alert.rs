//! An alert: what happened, how bad it is, since when, and what the watchdog did about it.
//! Every channel (email, webhooks) renders this one record; the outbox stores it as JSON, and
//! the dashboard and the CLI read it back, so the type is the shared one in `ds_wire::alerts`.

pub use ds_wire::alerts::{Alert, Severity};

/// A critical `service_down` alert `id`, raised at 2025-03-01T10:00:00Z, for unit tests.
#[cfg(test)]
pub(crate) fn sample(id: &str) -> Alert {
    let t: jiff::Timestamp = "2025-03-01T10:00:00Z".parse().unwrap();
    Alert {
        id: id.to_owned(),
        kind: "service_down:a.service".to_owned(),
        severity: Severity::Critical,
        title: "service down: a.service".to_owned(),
        details: "a.service failed.".to_owned(),
        since: t,
        raised_at: t,
        action: None,
        host: "kiosk-7".to_owned(),
        dashboard_url: None,
    }
}
