//! Prometheus' text exposition format (version 0.0.4), the one writer behind every service's
//! `/metrics`: the streamer's, the dashboard's and the camera monitor's series.
//!
//! A metric family is opened once with its `# HELP` and `# TYPE` lines, then its samples
//! follow; label values and help texts are escaped as the format asks. Values are written with
//! `Display`, so a caller keeps control of their precision (`format_args!("{:.3}", x)`).
//!
//! Not the `prometheus-client` crate: it appends `_total` to every counter's name and formats
//! values its own way, which would rename or reshape series that dashboards and alert rules
//! already query.

use std::fmt::{self, Write as _};

/// The `Content-Type` of a `/metrics` answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family's samples measure (`# TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// The text of one `/metrics` answer, built family by family.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
    families: Vec<String>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Opens the family `name`: writes its `# HELP` and `# TYPE` lines. Its samples must
    /// follow before the next family is opened; a family is opened once per answer.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> Family<'_> {
        debug_assert!(valid_name(name), "not a metric name: {name:?}");
        debug_assert!(!self.families.iter().any(|f| f == name), "the family {name} is written twice");
        self.families.push(name.to_owned());
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        Family { out: &mut self.out, name: name.to_owned() }
    }

    /// A family of one sample without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl fmt::Display) {
        self.family(name, kind, help).sample(&[], value);
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// An open family: add its samples.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: String,
}

impl Family<'_> {
    /// `name{label="value",…} value`; without labels, `name value`.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl fmt::Display) -> &mut Self {
        self.out.push_str(&self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }
}

/// A label value as the format writes it: backslash, double quote and newline escaped.
pub fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A help text as the format writes it: backslash and newline escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_has_its_help_and_type_once_then_its_samples() {
        let mut w = Writer::new();
        w.single("app_up", Kind::Gauge, "1 while the app answers", 1);
        w.family("app_state", Kind::Gauge, "1 for the current state")
            .sample(&[("state", "running")], 1)
            .sample(&[("state", "stopped")], 0);
        w.single("app_restarts_total", Kind::Counter, "Restarts", 3);
        w.family("app_empty", Kind::Gauge, "No sample yet");
        w.single("app_ratio", Kind::Gauge, "A float", 0.5);
        w.single("app_rounded", Kind::Gauge, "Precision is the caller's", format_args!("{:.3}", 1.23456));
        assert_eq!(
            w.finish(),
            "# HELP app_up 1 while the app answers\n# TYPE app_up gauge\napp_up 1\n\
             # HELP app_state 1 for the current state\n# TYPE app_state gauge\n\
             app_state{state=\"running\"} 1\napp_state{state=\"stopped\"} 0\n\
             # HELP app_restarts_total Restarts\n# TYPE app_restarts_total counter\napp_restarts_total 3\n\
             # HELP app_empty No sample yet\n# TYPE app_empty gauge\n\
             # HELP app_ratio A float\n# TYPE app_ratio gauge\napp_ratio 0.5\n\
             # HELP app_rounded Precision is the caller's\n# TYPE app_rounded gauge\napp_rounded 1.235\n"
        );
    }

    #[test]
    fn label_values_and_help_texts_are_escaped() {
        let mut w = Writer::new();
        w.family("cam_up", Kind::Gauge, "Up\\down\nsecond line")
            .sample(&[("camera", "a\"b"), ("name", "back\\slash\nnew line")], 1);
        assert_eq!(
            w.finish(),
            "# HELP cam_up Up\\\\down\\nsecond line\n# TYPE cam_up gauge\n\
             cam_up{camera=\"a\\\"b\",name=\"back\\\\slash\\nnew line\"} 1\n"
        );
    }

    #[test]
    #[should_panic(expected = "written twice")]
    #[cfg(debug_assertions)]
    fn a_family_is_written_once() {
        let mut w = Writer::new();
        w.single("x", Kind::Gauge, "x", 1);
        w.single("x", Kind::Gauge, "x", 2);
    }
}
