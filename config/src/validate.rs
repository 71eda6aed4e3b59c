//! Checks on values that serde accepted by type, collected all at once.

use std::fmt::Display;
use std::ops::RangeInclusive;

use crate::diag::{Diagnostic, Severity};
use crate::document::Document;
use crate::redact::display_value;

/// Collects every problem of one document; handed to each model's `validate`.
#[derive(Debug)]
pub struct Validator<'d> {
    doc: &'d Document,
    diagnostics: Vec<Diagnostic>,
}

impl<'d> Validator<'d> {
    pub(crate) fn new(doc: &'d Document) -> Self {
        Validator { doc, diagnostics: Vec::new() }
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }

    /// The document being checked (for checks that depend on the file's own location).
    pub fn document(&self) -> &Document {
        self.doc
    }

    fn push(&mut self, severity: Severity, path: &str, message: String) {
        let value = self.doc.get(path).map(|v| display_value(path, v));
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.doc.file.clone(),
            location: self.doc.value_location(path),
            path: path.to_owned(),
            value,
            message,
        });
    }

    /// The value at `path` is wrong; `message` says what is allowed.
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, path, message.into());
    }

    /// The value at `path` works but is probably not what was meant.
    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, path, message.into());
    }

    /// Requires `value` to lie in `allowed`.
    pub fn range<N: PartialOrd + Display>(&mut self, path: &str, value: N, allowed: RangeInclusive<N>) {
        if !allowed.contains(&value) {
            self.error(path, format!("must be {}..={}", allowed.start(), allowed.end()));
        }
    }

    /// Requires a string to be non-empty when `required`.
    pub fn non_empty(&mut self, path: &str, value: &str, what: &str) {
        if value.trim().is_empty() {
            self.error(path, format!("must not be empty: {what}"));
        }
    }

    /// Requires each entry of the list at `path` to be a host name (`kiosk.example.com`), a
    /// domain suffix (`.example.com`) or `*`, as `allowed_hosts` takes them.
    pub fn host_names(&mut self, path: &str, names: &[String]) {
        for (i, name) in names.iter().enumerate() {
            let bare = name.strip_prefix('.').unwrap_or(name).trim_end_matches('.');
            let label_ok =
                |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if name != "*" && (bare.is_empty() || !bare.split('.').all(label_ok)) {
                self.error(
                    &format!("{path}[{i}]"),
                    "must be a host name such as kiosk.example.com, a domain such as .example.com (every name under \
                     it), or * (any); IP addresses are always allowed and need no entry",
                );
            }
        }
    }
}
