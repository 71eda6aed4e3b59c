//! YAML (`cameras.yaml`) parsed into a [`Document`] with places, and written back.
//!
//! The event parser is used instead of a serde deserializer because it reports where each
//! node starts, which is what lets a bad camera URL be reported as `cameras.yaml:7:8`.

use std::path::Path;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::{Yaml, YamlEmitter};

use crate::diag::{Diagnostic, Location, Problems};
use crate::document::{Document, push_index, push_key};

/// Parses one YAML document. Syntax errors name the file, line and column.
pub fn parse(file: &Path, text: &str) -> Result<Document, Problems> {
    let mut builder = Builder { doc: Document::new(file, Value::Null), stack: Vec::new(), root: None, error: None };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| {
        let m = e.marker();
        let loc = Location { line: m.line(), column: m.col() + 1 };
        Problems::single(Diagnostic::file_error(file, Some(loc), format!("not valid YAML: {}", e.info())))
    })?;
    if let Some(message) = builder.error {
        return Err(Problems::single(Diagnostic::file_error(file, None, message)));
    }
    builder.doc.value = builder.root.unwrap_or(Value::Null);
    Ok(builder.doc)
}

/// Renders a value tree as YAML, keys in their original order. Every string reads back as
/// the same string (see [`reads_back`]).
pub fn to_string(value: &Value) -> String {
    let mut quoted = Vec::new();
    let yaml = to_yaml(value, &mut quoted);
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    // Emitting into a String cannot fail for a tree built from JSON values.
    let _ = emitter.dump(&yaml);
    for (i, text) in quoted.iter().enumerate() {
        out = out.replacen(&format!("\"{}\"", placeholder(i)), &format!("'{}'", text.replace('\'', "''")), 1);
    }
    // The emitter starts the document with `---`; keep files the way people write them.
    let body = out.strip_prefix("---\n").or_else(|| out.strip_prefix("---")).unwrap_or(&out);
    format!("{}\n", body.trim_end())
}

/// Whether `text` written plain reads back as that string. The emitter quotes most strings
/// that look like other types, not all of those the reader's core schema takes for them
/// (`0o17` is written plain and read back as the number 15): a camera named so would make
/// the list invalid at the next start.
fn reads_back(text: &str) -> bool {
    scalar(text.to_owned(), TScalarStyle::Plain) == Value::String(text.to_owned())
}

/// What stands in for the `i`th string the emitter would write plain but must be quoted: a
/// text it always writes double-quoted (it starts with `@`), replaced afterwards.
fn placeholder(i: usize) -> String {
    format!("@ds-quoted-{i}@")
}

fn to_yaml(value: &Value, quoted: &mut Vec<String>) -> Yaml {
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) if !reads_back(s) => {
            quoted.push(s.clone());
            Yaml::String(placeholder(quoted.len() - 1))
        }
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(|v| to_yaml(v, quoted)).collect()),
        Value::Object(o) => Yaml::Hash(o.iter().map(|(k, v)| (Yaml::String(k.clone()), to_yaml(v, quoted))).collect()),
    }
}

enum Open {
    Seq { path: String, items: Vec<Value> },
    Map { path: String, map: Map<String, Value>, pending_key: Option<String> },
}

struct Builder {
    doc: Document,
    stack: Vec<Open>,
    root: Option<Value>,
    error: Option<String>,
}

impl Builder {
    /// The path the next node will have, recording the key's place when it is a map value.
    fn next_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Open::Seq { path, items }) => push_index(path, items.len()),
            Some(Open::Map { path, pending_key: Some(k), .. }) => push_key(path, k),
            Some(Open::Map { path, .. }) => path.clone(),
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Open::Map { pending_key: None, .. }))
    }

    fn finish(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Open::Seq { items, .. }) => items.push(value),
            Some(Open::Map { map, pending_key, .. }) => {
                if let Some(k) = pending_key.take() {
                    map.insert(k, value);
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let loc = Location { line: mark.line(), column: mark.col() + 1 };
        match ev {
            Event::Scalar(text, _, _, _) if self.expecting_key() => {
                let Some(Open::Map { path, pending_key, .. }) = self.stack.last_mut() else { return };
                let child = push_key(path, &text);
                *pending_key = Some(text);
                self.doc.record_key(&child, loc);
            }
            Event::Scalar(text, style, _, _) => {
                let path = self.next_path();
                self.doc.record_value(&path, loc);
                self.finish(scalar(text, style));
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.expecting_key() => {
                self.error.get_or_insert_with(|| format!("line {}: only plain keys are supported", loc.line));
            }
            Event::SequenceStart(..) => {
                let path = self.next_path();
                self.doc.record_value(&path, loc);
                self.stack.push(Open::Seq { path, items: Vec::new() });
            }
            Event::MappingStart(..) => {
                let path = self.next_path();
                self.doc.record_value(&path, loc);
                self.stack.push(Open::Map { path, map: Map::new(), pending_key: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let value = match self.stack.pop() {
                    Some(Open::Seq { items, .. }) => Value::Array(items),
                    Some(Open::Map { map, .. }) => Value::Object(map),
                    None => return,
                };
                self.finish(value);
            }
            Event::Alias(_) => {
                self.error.get_or_insert_with(|| format!("line {}: YAML aliases are not supported", loc.line));
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

/// A scalar's value: quoted scalars are strings, plain ones follow YAML's core schema.
fn scalar(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match Yaml::from_str(&text) {
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(r) => r.parse::<f64>().ok().and_then(Number::from_f64).map_or(Value::String(text), Value::Number),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Null => Value::Null,
        _ => Value::String(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "heartbeat_seconds: 15\ntimezone: Asia/Kolkata\nstreams:\n- name: Gate\n  url: rtsp://h/1\n  port: '554'\n";

    #[test]
    fn values_and_places() {
        let doc = parse(Path::new("c.yaml"), SAMPLE).unwrap();
        assert_eq!(
            doc.value,
            serde_json::json!({"heartbeat_seconds": 15, "timezone": "Asia/Kolkata",
                "streams": [{"name": "Gate", "url": "rtsp://h/1", "port": "554"}]})
        );
        assert_eq!(doc.value_location("heartbeat_seconds"), Some(Location { line: 1, column: 20 }));
        assert_eq!(doc.key_location("streams[0].url"), Some(Location { line: 5, column: 3 }));
        assert_eq!(doc.value_location("streams[0].url"), Some(Location { line: 5, column: 8 }));
    }

    #[test]
    fn round_trip_keeps_order_and_types() {
        let doc = parse(Path::new("c.yaml"), SAMPLE).unwrap();
        let again = parse(Path::new("c.yaml"), &to_string(&doc.value)).unwrap();
        assert_eq!(again.value, doc.value);
        let keys: Vec<_> = again.value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["heartbeat_seconds", "timezone", "streams"]);
    }

    #[test]
    fn strings_that_look_like_other_types_read_back_as_strings() {
        for name in [
            "0o17",
            "0O17",
            "1e3",
            "true",
            "null",
            "~",
            "0x1F",
            ".inf",
            "-.inf",
            "+.inf",
            ".nan",
            "+1",
            "0b1",
            "1_000",
            "it's 0o17",
            "Null",
        ] {
            let tree = serde_json::json!({"streams": [{"name": name, "url": "rtsp://h/1"}], "timezone": name});
            let text = to_string(&tree);
            let again = parse(Path::new("c.yaml"), &text).unwrap();
            assert_eq!(again.value, tree, "{name:?} written as\n{text}");
        }
        // Plain where plain reads back.
        assert_eq!(to_string(&serde_json::json!({"name": "Gate 1"})), "name: Gate 1\n");
    }

    #[test]
    fn syntax_error_has_a_place() {
        let err = parse(Path::new("c.yaml"), "streams:\n  - name: [a\n").unwrap_err();
        assert!(err.to_string().starts_with("c.yaml:"), "{err}");
        assert!(err.to_string().contains("not valid YAML"), "{err}");
    }
}
