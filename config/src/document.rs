//! A parsed configuration file: its value tree plus where every key and value stands in the
//! text, so that any problem found later (by serde or by validation) can point at a line and
//! column. JSON-with-comments and YAML both parse into this one shape.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diag::Location;

/// A document and the places of its nodes.
#[derive(Clone, Debug)]
pub struct Document {
    pub file: PathBuf,
    pub value: Value,
    /// Key path → where the value starts.
    value_at: HashMap<String, Location>,
    /// Key path → where the key of an object member starts.
    key_at: HashMap<String, Location>,
}

impl Document {
    pub fn new(file: &Path, value: Value) -> Self {
        Document { file: file.to_owned(), value, value_at: HashMap::new(), key_at: HashMap::new() }
    }

    pub(crate) fn record_value(&mut self, path: &str, loc: Location) {
        self.value_at.insert(path.to_owned(), loc);
    }

    pub(crate) fn record_key(&mut self, path: &str, loc: Location) {
        self.key_at.insert(path.to_owned(), loc);
    }

    /// Where the value at `path` starts, or failing that where its nearest ancestor starts.
    pub fn value_location(&self, path: &str) -> Option<Location> {
        let mut p = path;
        loop {
            if let Some(loc) = self.value_at.get(p) {
                return Some(*loc);
            }
            p = parent_path(p)?;
        }
    }

    /// Where the key of the member at `path` starts (falls back to the value's place).
    pub fn key_location(&self, path: &str) -> Option<Location> {
        self.key_at.get(path).copied().or_else(|| self.value_location(path))
    }

    /// The node at a key path, if the document has one there.
    pub fn get(&self, path: &str) -> Option<&Value> {
        get_path(&self.value, path)
    }
}

/// Appends an object key to a path: `a` + `b` → `a.b`.
pub fn push_key(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// Appends a list index to a path: `streams` + 1 → `streams[1]`.
pub fn push_index(path: &str, index: usize) -> String {
    let mut p = path.to_owned();
    let _ = write!(p, "[{index}]");
    p
}

/// The path one level up, `None` at the root.
pub fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// The last key of a path (`streams[1].url` → `url`), `None` if it ends in an index.
pub fn last_key(path: &str) -> Option<&str> {
    if path.ends_with(']') {
        return None;
    }
    Some(path.rsplit('.').next().unwrap_or(path))
}

/// The same path with list indices taken out: `streams[3].url` → `streams[].url`.
pub fn generic_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Step::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

pub(crate) fn get_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    steps(path).into_iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

pub(crate) fn get_path_mut<'v>(value: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    steps(path).into_iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(i),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compose_and_split() {
        let p = push_key(&push_index(&push_key("", "streams"), 2), "url");
        assert_eq!(p, "streams[2].url");
        assert_eq!(parent_path(&p), Some("streams[2]"));
        assert_eq!(parent_path("streams[2]"), Some("streams"));
        assert_eq!(parent_path("streams"), Some(""));
        assert_eq!(parent_path(""), None);
        assert_eq!(last_key(&p), Some("url"));
        assert_eq!(last_key("streams[2]"), None);
        assert_eq!(generic_path("a[10].b[2].c"), "a[].b[].c");
    }

    #[test]
    fn get_path_walks_objects_and_lists() {
        let v = serde_json::json!({"streams": [{"url": "a"}, {"url": "b"}]});
        assert_eq!(get_path(&v, "streams[1].url"), Some(&Value::from("b")));
        assert_eq!(get_path(&v, "streams[5].url"), None);
        assert_eq!(get_path(&v, ""), Some(&v));
    }
}
