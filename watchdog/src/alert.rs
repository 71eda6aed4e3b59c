//! An alert: what happened, how bad it is, since when, and what the watchdog did about it.
//! Every channel (email, webhooks) renders this one record; the outbox stores it as JSON, and
//! the dashboard and the CLI read it back, so the type is the shared one in `ds_wire::alerts`.

pub use ds_wire::alerts::{Alert, Severity};
