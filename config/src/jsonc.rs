//! JSON with `//` and `/* */` comments (and trailing commas), as the seed configuration files
//! are written, parsed into a [`Document`] that remembers where each key and value stands.

use std::path::Path;

use jsonc_parser::ast::{self, ObjectPropName};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, CommentCollectionStrategy, ParseOptions};
use serde_json::{Map, Number, Value};

use crate::diag::{Diagnostic, Location, Problems};
use crate::document::{Document, push_index, push_key};
use crate::text::LineIndex;

/// Parses JSON-with-comments. Syntax errors name the file, line and column.
pub fn parse(file: &Path, text: &str) -> Result<Document, Problems> {
    let options = ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        // Everything else a JSON5 parser would accept is more likely a mistake than intent.
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let collect = CollectOptions { comments: CommentCollectionStrategy::Off, tokens: false };
    let parsed = jsonc_parser::parse_to_ast(text, &collect, &options).map_err(|e| {
        let loc = Location { line: e.line_display(), column: e.column_display() };
        Problems::single(Diagnostic::file_error(file, Some(loc), format!("not valid JSON: {}", e.kind())))
    })?;
    let mut doc = Document::new(file, Value::Null);
    let Some(root) = parsed.value else {
        // Only whitespace and comments: the same as `{}`, every key at its default.
        return Ok(doc);
    };
    let lines = LineIndex::new(text);
    doc.value = convert(&root, "", &lines, &mut doc);
    Ok(doc)
}

fn convert(node: &ast::Value<'_>, path: &str, lines: &LineIndex<'_>, doc: &mut Document) -> Value {
    doc.record_value(path, lines.location(node.range().start));
    match node {
        ast::Value::StringLit(s) => Value::String(s.value.to_string()),
        ast::Value::NumberLit(n) => number(n.value),
        ast::Value::BooleanLit(b) => Value::Bool(b.value),
        ast::Value::NullKeyword(_) => Value::Null,
        ast::Value::Array(a) => Value::Array(
            a.elements.iter().enumerate().map(|(i, e)| convert(e, &push_index(path, i), lines, doc)).collect(),
        ),
        ast::Value::Object(o) => {
            let mut map = Map::new();
            for prop in &o.properties {
                let key = match &prop.name {
                    ObjectPropName::String(s) => s.value.to_string(),
                    ObjectPropName::Word(w) => w.value.to_owned(),
                };
                let child = push_key(path, &key);
                doc.record_key(&child, lines.location(prop.name.range().start));
                let v = convert(&prop.value, &child, lines, doc);
                map.insert(key, v);
            }
            Value::Object(map)
        }
    }
}

/// JSON number text to a serde number, keeping integers integral.
fn number(text: &str) -> Value {
    serde_json::from_str::<Number>(text).map(Value::Number).unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_trailing_commas_are_accepted_and_places_recorded() {
        let text = "{\n  // the rate\n  \"fps\": 15, // fps\n  \"live\": {\"max\": [1, 2.5,],},\n}\n";
        let doc = parse(Path::new("c.json"), text).unwrap();
        assert_eq!(doc.value, serde_json::json!({"fps": 15, "live": {"max": [1, 2.5]}}));
        assert_eq!(doc.value_location("fps"), Some(Location { line: 3, column: 10 }));
        assert_eq!(doc.key_location("fps"), Some(Location { line: 3, column: 3 }));
        assert_eq!(doc.value_location("live.max[1]"), Some(Location { line: 4, column: 23 }));
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let err = parse(Path::new("c.json"), "{\n  \"fps\": 15\n  \"width\": 3\n}").unwrap_err();
        let text = err.to_string();
        assert_eq!(text, "c.json:2:12: not valid JSON: Expected comma");
    }

    #[test]
    fn empty_text_is_an_empty_document() {
        let doc = parse(Path::new("c.json"), "  // nothing here\n").unwrap();
        assert_eq!(doc.value, Value::Null);
    }
}
