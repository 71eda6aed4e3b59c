//! Loading a configuration file: parse, deserialize, report unknown keys, validate, and give
//! back either a usable value with its warnings or every problem of the file at once.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diag::{Diagnostic, Problems, Severity, sort_in_file_order};
use crate::document::{Document, generic_path, get_path, get_path_mut, last_key, parent_path, push_index, push_key};
use crate::redact::display_value;
use crate::validate::Validator;
use crate::{jsonc, yaml};

/// The text format of a configuration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON, with `//` and `/* */` comments and trailing commas allowed.
    Json,
    Yaml,
}

/// A configuration file model.
pub trait ConfigFile: DeserializeOwned + Serialize + Default {
    /// The file's usual name, for messages (`config.json`).
    const FILE_NAME: &'static str;
    const FORMAT: Format;
    /// Keys the systems we replace used and this one does not, with a note on why
    /// (`streams[].x` form for keys inside lists). They warn without a "did you mean".
    const LEGACY_KEYS: &'static [(&'static str, &'static str)] = &[];

    /// Checks values serde accepted by type; reports every problem through `v`.
    fn validate(&self, v: &mut Validator<'_>);

    /// A value holding every key the file may have, lists with one element: what unknown
    /// keys are compared with for "did you mean", and what sections must look like.
    fn key_tree() -> Value {
        serde_json::to_value(Self::default()).unwrap_or(Value::Null)
    }
}

/// A file that loaded: the value, and warnings worth showing.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub config: T,
    pub warnings: Vec<Diagnostic>,
}

/// Reads and loads a file.
pub fn load_file<T: ConfigFile>(path: &Path) -> Result<Loaded<T>, Problems> {
    let text = fs::read_to_string(path)
        .map_err(|e| Problems::single(Diagnostic::file_error(path, None, format!("cannot read the file: {e}"))))?;
    load_str(path, &text)
}

/// Loads text that came from `path`.
pub fn load_str<T: ConfigFile>(path: &Path, text: &str) -> Result<Loaded<T>, Problems> {
    let doc = match T::FORMAT {
        Format::Json => jsonc::parse(path, text)?,
        Format::Yaml => yaml::parse(path, text)?,
    };
    load_document(&doc)
}

/// Longest a file's error list may get before the loader stops retrying.
const MAX_TYPE_ERRORS: usize = 64;

/// Deserializes and validates a parsed document.
pub fn load_document<T: ConfigFile>(doc: &Document) -> Result<Loaded<T>, Problems> {
    let mut working = match &doc.value {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => doc.value.clone(),
        other => {
            let kind = value_kind(other);
            return Err(Problems::single(Diagnostic::file_error(
                &doc.file,
                doc.value_location(""),
                format!("the file holds {kind}; it must hold a mapping of keys to values ({{}} means all defaults)"),
            )));
        }
    };
    let tree = T::key_tree();
    let mut diagnostics = Vec::new();
    // Paths whose value was wrong by type: the default stands in, and checks below them are
    // not repeated.
    let mut bad_paths: Vec<String> = Vec::new();
    // serde would fill a section from a list by position; a section must be a mapping.
    for path in sections_given_as_lists(&working, &tree, "") {
        diagnostics.push(type_error(doc, &path, "expected a mapping of keys to values"));
        remove_bad_value(&mut working, &path, false);
        bad_paths.push(path);
    }
    let (config, ignored) = loop {
        let mut ignored = Vec::new();
        let mut record = |p: serde_ignored::Path<'_>| ignored.push(ignored_path(&p));
        let de = serde_ignored::Deserializer::new(&working, &mut record);
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(config) => break (config, ignored),
            Err(e) => {
                let path = error_path(e.path());
                let repeated = bad_paths.contains(&path);
                if !repeated {
                    diagnostics.push(type_error(doc, &path, &e.inner().to_string()));
                    bad_paths.push(path.clone());
                }
                if bad_paths.len() > MAX_TYPE_ERRORS || !remove_bad_value(&mut working, &path, repeated) {
                    sort_in_file_order(&mut diagnostics);
                    return Err(Problems { diagnostics });
                }
            }
        }
    };

    let mut reported = HashSet::new();
    for path in ignored {
        if reported.insert(path.clone()) {
            diagnostics.push(unknown_key::<T>(doc, &path, &tree));
        }
    }

    let mut v = Validator::new(doc);
    config.validate(&mut v);
    diagnostics.extend(
        v.into_diagnostics()
            .into_iter()
            .filter(|d| !bad_paths.iter().any(|bad| d.path == *bad || d.path.starts_with(&format!("{bad}.")))),
    );
    sort_in_file_order(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        Err(Problems { diagnostics })
    } else {
        Ok(Loaded { config, warnings: diagnostics })
    }
}

fn type_error(doc: &Document, path: &str, serde_message: &str) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: doc.file.clone(),
        location: doc.value_location(path),
        path: path.to_owned(),
        value: doc.get(path).map(|v| display_value(path, v)),
        message: humanize(serde_message),
    }
}

/// Takes a value of the wrong type out of the working tree so the default can stand in.
/// A list element that keeps failing takes its whole list with it. Returns false when
/// nothing more can be removed.
fn remove_bad_value(root: &mut Value, path: &str, repeated: bool) -> bool {
    let Some(parent) = parent_path(path) else { return false };
    let target = if repeated { parent } else { path };
    if target.is_empty() {
        return false;
    }
    let Some(container) = get_path_mut(root, parent_path(target).unwrap_or("")) else { return false };
    match (container, last_key(target)) {
        (Value::Object(map), Some(key)) => map.remove(key).is_some(),
        (Value::Array(items), None) => {
            let index = target.rsplit('[').next().and_then(|s| s.trim_end_matches(']').parse::<usize>().ok());
            match index.and_then(|i| items.get_mut(i)) {
                // Keep the element's place so later indices still match the file.
                Some(item) if !item.is_object() || !repeated => {
                    *item = Value::Object(Default::default());
                    true
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Paths where the file has a list and the model a section (a mapping).
fn sections_given_as_lists(value: &Value, tree: &Value, path: &str) -> Vec<String> {
    match (value, tree) {
        (Value::Array(_), Value::Object(_)) => vec![path.to_owned()],
        (Value::Object(v), Value::Object(t)) => v
            .iter()
            .filter_map(|(k, child)| t.get(k).map(|sub| sections_given_as_lists(child, sub, &push_key(path, k))))
            .flatten()
            .collect(),
        (Value::Array(items), Value::Array(t)) => match t.first() {
            Some(element) => items
                .iter()
                .enumerate()
                .flat_map(|(i, item)| sections_given_as_lists(item, element, &push_index(path, i)))
                .collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn unknown_key<T: ConfigFile>(doc: &Document, path: &str, tree: &Value) -> Diagnostic {
    let generic = generic_path(path);
    let message = match T::LEGACY_KEYS.iter().find(|(k, _)| *k == generic) {
        Some((_, note)) => format!("not used by desktop-streamer, ignored: {note}"),
        None => {
            let mut m = "unknown key, ignored".to_owned();
            if let Some(s) = suggestion(path, tree) {
                m.push_str(&format!(" (did you mean `{s}`?)"));
            }
            m
        }
    };
    Diagnostic {
        severity: Severity::Warning,
        file: doc.file.clone(),
        location: doc.key_location(path),
        path: path.to_owned(),
        value: None,
        message,
    }
}

/// The known key at the same level that is closest in spelling, if any is close.
fn suggestion(path: &str, tree: &Value) -> Option<String> {
    let key = last_key(path)?;
    let siblings = get_path(tree, &generic_path(parent_path(path)?).replace("[]", "[0]"))?.as_object()?;
    siblings
        .keys()
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k.clone())
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => push_index(&ignored_path(parent), *index),
        P::Map { parent, key } => push_key(&ignored_path(parent), key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => ignored_path(parent),
    }
}

fn error_path(p: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    p.iter().fold(String::new(), |acc, seg| match seg {
        Segment::Seq { index } => push_index(&acc, *index),
        Segment::Map { key } => push_key(&acc, key),
        Segment::Enum { .. } | Segment::Unknown => acc,
    })
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// serde's "invalid type: string \"x\", expected u32" → "expected a whole number".
fn humanize(message: &str) -> String {
    let Some((_, expected)) = message.split_once(", expected ") else { return message.to_owned() };
    let plain = match expected.trim() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" => "a string in quotes",
        "a sequence" => "a list",
        e if e.starts_with("struct ") || e.starts_with("a map") => "a mapping of keys to values",
        e => return format!("expected {e}"),
    };
    format!("expected {plain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_become_plain_words() {
        assert_eq!(humanize("invalid type: string \"fast\", expected u32"), "expected a whole number (0 or more)");
        assert_eq!(humanize("invalid type: integer `1`, expected a boolean"), "expected true or false");
        assert_eq!(
            humanize("unknown variant `sesion`, expected `system` or `session`"),
            "expected `system` or `session`"
        );
    }
}
