//! One line of a service's log as the dashboard shows it, its severity, and which lines a
//! reader asked for.

use std::fmt;
use std::str::FromStr;

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Severity of a line, least severe first, so `level >= Level::Warn` means "warn or worse".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that is none of error, warn, info, debug, trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level {0:?}: use error, warn, info, debug or trace")]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;

    /// Case-insensitive; `warning` is accepted for `warn`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "warning" => Ok(Level::Warn),
            _ => Level::ALL.into_iter().find(|l| l.as_str() == lower).ok_or_else(|| ParseLevelError(s.to_owned())),
        }
    }
}

/// One line of a service's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// The program that wrote it, e.g. `desktop-streamer-watchdog`.
    pub service: String,
    /// When it was logged; `None` for a line that is not JSON.
    pub timestamp: Option<jiff::Timestamp>,
    /// Its severity; `None` (serialized as `"unknown"`) for a line that is not JSON.
    #[serde(serialize_with = "level_or_unknown")]
    pub level: Option<Level>,
    pub message: String,
    /// The Rust module that logged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The event's fields other than the message (an object), plus `span` with the fields of
    /// the span it happened in, if any.
    pub fields: Value,
}

fn level_or_unknown<S: Serializer>(level: &Option<Level>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(level.map_or("unknown", Level::as_str))
}

impl LogLine {
    /// Parses one line of `service`'s log file (without its newline).
    pub fn parse(service: &str, line: &str) -> LogLine {
        let line = line.strip_suffix('\r').unwrap_or(line);
        // A line whose `fields` is no object is read as plain JSON, as it always was.
        let object = serde_json::from_str::<Object>(line).map(|o| o.0).or_else(|_| match serde_json::from_str(line) {
            Ok(Value::Object(object)) => Ok(object),
            _ => Err(()),
        });
        match object {
            Ok(object) if object.get("level").is_some_and(Value::is_string) => Self::from_json(service, object),
            _ => LogLine {
                service: service.to_owned(),
                timestamp: None,
                level: None,
                message: line.to_owned(),
                target: None,
                fields: Value::Object(Map::new()),
            },
        }
    }

    fn from_json(service: &str, mut object: Map<String, Value>) -> LogLine {
        let take_string = |object: &mut Map<String, Value>, key: &str| match object.remove(key) {
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        let timestamp = take_string(&mut object, "timestamp").and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let level = take_string(&mut object, "level").and_then(|l| l.parse().ok());
        let target = take_string(&mut object, "target");
        let mut fields = match object.remove("fields") {
            Some(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        // tracing's JSON puts the message among the fields; a flattened event has it at the top.
        let message = take_string(&mut fields, "message").or_else(|| take_string(&mut object, "message"));
        // Whatever else the line carries (span, a flattened event's fields) is kept as fields.
        fields.extend(object);
        LogLine {
            service: service.to_owned(),
            timestamp,
            level,
            message: message.unwrap_or_default(),
            target,
            fields: Value::Object(fields),
        }
    }

    fn fields_text(&self) -> String {
        match &self.fields {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// A line's JSON object, its `fields` read key by key: an event that has a field named
/// `message` besides its text writes `"message"` twice there (tracing's JSON writes every
/// field), and a plain parse would keep the last, the field, as the line's text. Here the first
/// (tracing writes the text first) stays `message` and a repeated key is kept as `message_2`.
struct Object(Map<String, Value>);

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys {
            /// Whether this is the line itself, whose `fields` is read the same way.
            top: bool,
        }
        impl<'de> Visitor<'de> for Keys {
            type Value = Object;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut out = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = if self.top && key == "fields" {
                        Value::Object(map.next_value_seed(Keys { top: false })?.0)
                    } else {
                        map.next_value::<Value>()?
                    };
                    let key = (1..)
                        .map(|n| if n == 1 { key.clone() } else { format!("{key}_{n}") })
                        .find(|k| !out.contains_key(k))
                        .unwrap_or(key);
                    out.insert(key, value);
                }
                Ok(Object(out))
            }
        }
        impl<'de> DeserializeSeed<'de> for Keys {
            type Value = Object;

            fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Object, D::Error> {
                deserializer.deserialize_map(self)
            }
        }
        deserializer.deserialize_map(Keys { top: true })
    }
}

/// Which lines to show: a level and worse, and a case-insensitive text found in the message or
/// the fields (as `key=value`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    level: Option<Level>,
    query: Option<String>,
}

impl Filter {
    /// An empty query matches every line.
    pub fn new(level: Option<Level>, query: Option<&str>) -> Filter {
        let query = query.filter(|q| !q.is_empty()).map(str::to_lowercase);
        Filter { level, query }
    }

    /// Whether the raw line (as written to the file) may match, checked before it is parsed:
    /// a query of printable ASCII without `"` or `\\` appears in the JSON as it is, so a line
    /// without it (in any case) cannot match, and parsing it is skipped. Any other query, and
    /// no query, says yes: [`Filter::matches`] decides.
    pub fn may_match_raw(&self, raw: &[u8]) -> bool {
        match &self.query {
            Some(q) if q.bytes().all(|b| (b.is_ascii_graphic() && b != b'"' && b != b'\\') || b == b' ') => {
                contains_ignoring_ascii_case(raw, q.as_bytes())
            }
            _ => true,
        }
    }

    /// With a level, lines of unknown level (not JSON) are left out: their severity is unknown.
    pub fn matches(&self, line: &LogLine) -> bool {
        if let Some(min) = self.level
            && line.level.is_none_or(|l| l < min)
        {
            return false;
        }
        match &self.query {
            None => true,
            Some(q) => line.message.to_lowercase().contains(q) || line.fields_text().to_lowercase().contains(q),
        }
    }
}

/// Whether `needle` (lower-case ASCII) is in `hay`, ignoring ASCII case.
fn contains_ignoring_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else { return true };
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    hay.iter().enumerate().any(|(at, &b)| {
        (b == lower || b == upper) && hay.get(at + 1..at + needle.len()).is_some_and(|w| w.eq_ignore_ascii_case(rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_without_the_query_is_skipped_before_parsing_and_one_with_it_is_not() {
        let raw = br#"{"level":"INFO","fields":{"message":"Camera Gate is UP","camera":"gate"}}"#;
        let kept = |q: &str| Filter::new(None, Some(q)).may_match_raw(raw);
        assert!(kept("camera gate") && kept("UP"));
        assert!(!kept("yard") && !kept("camera  gate"));
        // Queries that JSON may write otherwise (quotes, backslashes, non-ASCII) are left to
        // the parsed line.
        assert!(kept("\"quoted\"") && kept("gate\"") && kept("caf\u{e9}"));
        assert!(Filter::new(None, None).may_match_raw(raw));
    }

    #[test]
    fn levels_parse_case_insensitively_and_order_by_severity() {
        assert_eq!("WARNING".parse::<Level>(), Ok(Level::Warn));
        assert_eq!(" Error ".parse::<Level>(), Ok(Level::Error));
        let err = "loud".parse::<Level>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown log level "loud": use error, warn, info, debug or trace"#);
        assert!(Level::Error > Level::Warn && Level::Warn > Level::Info && Level::Debug > Level::Trace);
    }

    #[test]
    fn a_line_that_is_not_json_is_a_plain_message_of_unknown_level() {
        for text in ["plain text", "{\"not\": \"a log line\"}", "[1,2]", "{broken"] {
            let line = LogLine::parse("svc", &format!("{text}\r"));
            assert_eq!((line.level, line.timestamp, line.message.as_str()), (None, None, text));
            assert!(Filter::new(None, None).matches(&line));
            assert!(!Filter::new(Some(Level::Trace), None).matches(&line), "unknown level passed a level filter");
        }
    }

    #[test]
    fn a_field_named_message_does_not_replace_the_events_text() {
        let text = r#"{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","fields":{"message":"camera state changed","camera":"gate","message":"Some(\"refused\")"},"target":"t"}"#;
        let line = LogLine::parse("svc", text);
        assert_eq!(line.message, "camera state changed");
        assert_eq!(line.fields, serde_json::json!({"camera": "gate", "message_2": "Some(\"refused\")"}));
        // A line whose `fields` is no object is still read as JSON, as before.
        let odd = LogLine::parse("svc", r#"{"level":"WARN","fields":"x","message":"top"}"#);
        assert_eq!((odd.level, odd.message.as_str()), (Some(Level::Warn), "top"));
    }
}
