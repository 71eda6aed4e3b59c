//! Changes to a YAML file made where they happen, so that what people wrote around them stays:
//! comments, blank lines, quoting, flow-style lines and the order of keys.
//!
//! Operators annotate `cameras.yaml` by hand (`# the gate, replaced 2025-03`); a dashboard
//! edit that re-emitted the whole file would throw those notes away. Instead the two value
//! trees (before and after the edit) are compared, and only what differs is rewritten in the
//! text: a changed scalar in place, a changed, added or removed member or list item as its own
//! block of lines at the indentation its neighbours use. What cannot be changed in place (a
//! flow-style collection, a multi-line scalar) is rewritten one level up, so only that part
//! loses its layout.
//!
//! The result is checked by parsing it again: it is used only if it means exactly the edited
//! tree. Otherwise the caller writes the whole tree afresh, so a layout this module does not
//! understand can cost comments but never a setting.

use std::path::Path;

use serde_json::{Map, Value};

use crate::document::{Document, push_index, push_key};
use crate::yaml;

/// The text of `text` (whose tree is `before`) edited to mean `after`, keeping everything
/// the edit did not touch; `None` when that cannot be done safely.
pub fn rewrite(text: &str, before: &Value, after: &Value) -> Option<String> {
    let mut text = text.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let doc = yaml::parse(Path::new("patch.yaml"), &text).ok()?;
    if &doc.value != before {
        return None;
    }
    let (Value::Object(b), Value::Object(a)) = (before, after) else { return None };
    let source = Source::new(&text, &doc);
    let mut edits = Vec::new();
    source.map(&mut edits, "", b, a)?;
    let out = apply(&text, edits)?;
    let check = yaml::parse(Path::new("patch.yaml"), &out).ok()?;
    (check.value == *after).then_some(out)
}

/// One replacement of a byte range; an insertion when the range is empty.
struct Edit {
    start: usize,
    end: usize,
    with: String,
}

fn apply(text: &str, mut edits: Vec<Edit>) -> Option<String> {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in edits {
        if e.start < at {
            return None; // overlapping edits: refuse rather than guess
        }
        out.push_str(&text[at..e.start]);
        out.push_str(&e.with);
        at = e.end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// The parsed text: where each line starts and where each node stands.
struct Source<'a> {
    text: &'a str,
    /// Byte offset of each line's start; one more entry for the end of the text.
    line_starts: Vec<usize>,
    doc: &'a Document,
}

impl<'a> Source<'a> {
    fn new(text: &'a str, doc: &'a Document) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        if line_starts.last() == Some(&text.len()) {
            line_starts.pop();
        }
        line_starts.push(text.len());
        Source { text, line_starts, doc }
    }

    fn lines(&self) -> usize {
        self.line_starts.len() - 1
    }

    /// Line `l` (0-based) without its newline.
    fn line(&self, l: usize) -> &'a str {
        self.text[self.line_starts[l]..self.line_starts[l + 1]].trim_end_matches(['\n', '\r'])
    }

    /// Indentation of a line with content; `None` for blank and comment-only lines.
    fn indent(&self, l: usize) -> Option<usize> {
        let line = self.line(l);
        let body = line.trim_start_matches(' ');
        (!body.is_empty() && !body.starts_with('#')).then(|| line.len() - body.len())
    }

    /// Byte offset of a 1-based (line, char column) place.
    fn offset(&self, line: usize, column: usize) -> Option<usize> {
        let l = line.checked_sub(1)?;
        if l >= self.lines() {
            return None;
        }
        let text = self.line(l);
        let within = text.char_indices().nth(column.checked_sub(1)?).map_or(text.len(), |(i, _)| i);
        Some(self.line_starts[l] + within)
    }

    /// (0-based line, byte column) of a node's value, or of the member's key.
    fn value_at(&self, path: &str) -> Option<(usize, usize)> {
        let loc = self.doc.value_location(path)?;
        let at = self.offset(loc.line, loc.column)?;
        Some((loc.line - 1, at - self.line_starts[loc.line - 1]))
    }

    fn key_at(&self, path: &str) -> Option<(usize, usize)> {
        let loc = self.doc.key_location(path)?;
        let at = self.offset(loc.line, loc.column)?;
        Some((loc.line - 1, at - self.line_starts[loc.line - 1]))
    }

    /// The last content line of a block that starts on `line` and whose own lines are indented
    /// more than `indent` (list items of a member may also stand at `indent`).
    fn block_end(&self, line: usize, indent: usize, items_at_indent: bool) -> usize {
        let mut last = line;
        for l in line + 1..self.lines() {
            match self.indent(l) {
                None => {}
                Some(i) if i > indent => last = l,
                Some(i) if i == indent && items_at_indent && is_item(self.line(l)) => last = l,
                Some(_) => break,
            }
        }
        last
    }

    /// The byte offset just after a line (its newline included).
    fn after_line(&self, l: usize) -> usize {
        self.line_starts[l + 1]
    }

    /// Comment lines right above `line` at the same indentation: the note on that item.
    fn leading_comments(&self, line: usize, indent: usize) -> usize {
        let mut first = line;
        while first > 0 {
            let above = self.line(first - 1);
            let body = above.trim_start_matches(' ');
            if body.starts_with('#') && above.len() - body.len() == indent {
                first -= 1;
            } else {
                break;
            }
        }
        first
    }

    /// Where the node at `path` begins in the text. The parser places the start of a block
    /// mapping after its first key, so a block mapping begins where that key does.
    fn start(&self, path: &str) -> Option<(usize, usize)> {
        match self.doc.get(path)? {
            Value::Object(m) if !self.is_flow(path) => self.key_at(&push_key(path, m.keys().next()?)),
            _ => self.value_at(path),
        }
    }

    /// Is the node at `path` written in flow style (`{…}` / `[…]`)?
    fn is_flow(&self, path: &str) -> bool {
        self.value_at(path).is_none_or(|(l, c)| self.line(l)[c..].starts_with(['{', '[']))
    }

    /// Edits turning the block mapping at `path` from `b` into `a`.
    fn map(&self, edits: &mut Vec<Edit>, path: &str, b: &Map<String, Value>, a: &Map<String, Value>) -> Option<()> {
        if b.is_empty() || self.is_flow(path) {
            return None;
        }
        let column = b.keys().find_map(|k| self.key_at(&push_key(path, k))).map(|(_, c)| c)?;
        let mut previous: Option<&str> = None;
        for (key, new) in a {
            let member = push_key(path, key);
            match b.get(key) {
                Some(old) if old == new => {}
                Some(old) => self.member(edits, &member, key, old, new)?,
                None => {
                    let text = emit_member(key, new);
                    let edit = match previous {
                        Some(p) => {
                            let at = self.after_line(self.member_end(&push_key(path, p))?);
                            Edit { start: at, end: at, with: indent_all(&text, column) }
                        }
                        None => {
                            // Before the first key, which may share its line with a dash: the
                            // new member takes the key's place and the key moves down.
                            let (l, c) = self.key_at(&push_key(path, b.keys().next()?))?;
                            let at = self.line_starts[l] + c;
                            Edit {
                                start: at,
                                end: at,
                                with: format!("{}{}", indent_rest(&text, column), " ".repeat(column)),
                            }
                        }
                    };
                    edits.push(edit);
                }
            }
            if b.contains_key(key) {
                previous = Some(key);
            }
        }
        for key in b.keys().filter(|k| !a.contains_key(*k)) {
            let member = push_key(path, key);
            let (l, c) = self.key_at(&member)?;
            let last = self.member_end(&member)?;
            let edit = if self.line(l)[..c].trim().is_empty() {
                Edit { start: self.line_starts[l], end: self.after_line(last), with: String::new() }
            } else {
                // The first member of a list item (`- key: …`): the next member moves up
                // onto the dash's line.
                let next = (last + 1..self.lines()).find(|&n| self.indent(n).is_some())?;
                (self.indent(next) == Some(c)).then_some(())?;
                Edit { start: self.line_starts[l] + c, end: self.line_starts[next] + c, with: String::new() }
            };
            edits.push(edit);
        }
        Some(())
    }

    /// The last line of a member's block.
    fn member_end(&self, member: &str) -> Option<usize> {
        let (l, c) = self.key_at(member)?;
        Some(self.block_end(l, c, true))
    }

    /// A member whose value changed: in place when both are scalars on the key's line or both
    /// are collections that can be edited; otherwise the member is written again.
    fn member(&self, edits: &mut Vec<Edit>, member: &str, key: &str, old: &Value, new: &Value) -> Option<()> {
        let (key_line, key_col) = self.key_at(member)?;
        let nested = match (old, new) {
            (Value::Object(o), Value::Object(n)) => self.try_nested(|e| self.map(e, member, o, n)),
            (Value::Array(o), Value::Array(n)) => self.try_nested(|e| self.seq(e, member, o, n)),
            _ if is_scalar(old) && is_scalar(new) => self.try_nested(|e| self.scalar(e, member, key_line, new)),
            _ => None,
        };
        if let Some(mut done) = nested {
            edits.append(&mut done);
            return Some(());
        }
        let last = self.block_end(key_line, key_col, true);
        let with = indent_rest(&emit_member(key, new), key_col);
        edits.push(Edit { start: self.line_starts[key_line] + key_col, end: self.after_line(last), with });
        Some(())
    }

    fn try_nested(&self, f: impl FnOnce(&mut Vec<Edit>) -> Option<()>) -> Option<Vec<Edit>> {
        let mut edits = Vec::new();
        f(&mut edits).map(|()| edits)
    }

    /// A scalar written on one line (`line`) replaced by `new`.
    fn scalar(&self, edits: &mut Vec<Edit>, path: &str, line: usize, new: &Value) -> Option<()> {
        let (l, c) = self.value_at(path)?;
        if l != line {
            return None;
        }
        let len = scalar_len(&self.line(l)[c..])?;
        let with = emit_scalar(new)?;
        let start = self.line_starts[l] + c;
        edits.push(Edit { start, end: start + len, with });
        Some(())
    }

    /// Edits turning the block sequence at `path` from `b` into `a`: items kept at both ends
    /// stay untouched, the ones between are edited pairwise, and the rest are removed or added.
    fn seq(&self, edits: &mut Vec<Edit>, path: &str, b: &[Value], a: &[Value]) -> Option<()> {
        if b.is_empty() || self.is_flow(path) {
            return None;
        }
        let dash = |i: usize| self.dash(&push_index(path, i));
        let (_, column) = dash(0)?;
        let prefix = b.iter().zip(a).take_while(|(x, y)| x == y).count();
        let max_suffix = b.len().min(a.len()) - prefix;
        let suffix = b.iter().rev().zip(a.iter().rev()).take(max_suffix).take_while(|(x, y)| x == y).count();
        let (old, new) = (&b[prefix..b.len() - suffix], &a[prefix..a.len() - suffix]);
        let paired = old.len().min(new.len());
        for i in 0..paired {
            self.item(edits, path, prefix + i, &old[i], &new[i])?;
        }
        for i in paired..old.len() {
            let (line, column) = dash(prefix + i)?;
            let first = self.leading_comments(line, column);
            let last = self.block_end(line, column, false);
            edits.push(Edit { start: self.line_starts[first], end: self.after_line(last), with: String::new() });
        }
        if new.len() > paired {
            let at = match (prefix + paired).checked_sub(1) {
                Some(i) => {
                    let (line, column) = dash(i)?;
                    self.after_line(self.block_end(line, column, false))
                }
                None => self.line_starts[dash(0)?.0],
            };
            let with: String = new[paired..].iter().map(|v| indent_all(&emit_item(v), column)).collect();
            edits.push(Edit { start: at, end: at, with });
        }
        Some(())
    }

    /// One list item changed: a mapping is edited member by member, anything else is written
    /// again.
    fn item(&self, edits: &mut Vec<Edit>, path: &str, i: usize, old: &Value, new: &Value) -> Option<()> {
        let item = push_index(path, i);
        let (line, column) = self.dash(&item)?;
        let nested = match (old, new) {
            (Value::Object(o), Value::Object(n)) => self.try_nested(|e| self.map(e, &item, o, n)),
            _ if is_scalar(old) && is_scalar(new) => self.try_nested(|e| self.scalar(e, &item, line, new)),
            _ => None,
        };
        if let Some(mut done) = nested {
            edits.append(&mut done);
            return Some(());
        }
        let last = self.block_end(line, column, false);
        let mut with = indent_all(&emit_item(new), column);
        if let Some(note) = (last == line).then(|| flow_line_comment(self.line(line))).flatten() {
            // `- {…}  # note` written again in block style keeps its note on the dash's line.
            let end_of_first = with.find('\n').unwrap_or(with.len());
            with.insert_str(end_of_first, &format!("  {note}"));
        }
        edits.push(Edit { start: self.line_starts[line], end: self.after_line(last), with });
        Some(())
    }

    /// The line and column of the `-` that opens a list item, when the item starts on that
    /// line (`- name: …`).
    fn dash(&self, item: &str) -> Option<(usize, usize)> {
        let (l, c) = self.start(item)?;
        let before = &self.line(l)[..c];
        let column = before.len() - before.trim_start_matches(' ').len();
        (before.trim_end() == format!("{}-", " ".repeat(column))).then_some((l, column))
    }
}

/// The comment after a one-line flow collection (`- {a: 1}  # note` → `# note`).
fn flow_line_comment(line: &str) -> Option<&str> {
    let close = line.rfind(['}', ']'])?;
    let rest = &line[close + 1..];
    let hash = rest.find('#')?;
    rest[..hash].trim().is_empty().then(|| rest[hash..].trim_end())
}

fn is_item(line: &str) -> bool {
    let body = line.trim_start_matches(' ');
    body == "-" || body.starts_with("- ")
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

/// The length in bytes of the one-line scalar that `rest` starts with; `None` for block
/// scalars and quoted scalars that go on past the line.
fn scalar_len(rest: &str) -> Option<usize> {
    match rest.chars().next() {
        Some('|' | '>' | '{' | '[' | '&' | '*' | '!') => None,
        Some('\'') => {
            let mut chars = rest.char_indices().skip(1).peekable();
            while let Some((i, ch)) = chars.next() {
                if ch == '\'' {
                    if chars.peek().is_some_and(|(_, c)| *c == '\'') {
                        chars.next();
                    } else {
                        return Some(i + 1);
                    }
                }
            }
            None
        }
        Some('"') => {
            let mut escaped = false;
            for (i, ch) in rest.char_indices().skip(1) {
                match ch {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => return Some(i + 1),
                    _ => {}
                }
            }
            None
        }
        _ => {
            let end = rest.find(" #").unwrap_or(rest.len());
            Some(rest[..end].trim_end().len())
        }
    }
}

/// `key: value` lines, as the whole-file writer would write them, ending in a newline.
fn emit_member(key: &str, value: &Value) -> String {
    let mut one = Map::new();
    one.insert(key.to_owned(), value.clone());
    yaml::to_string(&Value::Object(one))
}

/// `- …` lines for one list item, ending in a newline.
fn emit_item(value: &Value) -> String {
    yaml::to_string(&Value::Array(vec![value.clone()]))
}

/// A scalar as it is written after `key: `, when it fits on one line.
fn emit_scalar(value: &Value) -> Option<String> {
    let member = emit_member("k", value);
    let text = member.strip_prefix("k:")?.trim_start_matches(' ').trim_end_matches('\n');
    (!text.contains('\n')).then(|| text.to_owned())
}

/// Every line but the first indented by `n` spaces (the first goes where the old text began).
fn indent_rest(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        if i > 0 && !line.is_empty() {
            out.push_str(&pad);
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every line indented by `n` spaces.
fn indent_all(text: &str, n: usize) -> String {
    format!("{}{}", " ".repeat(n), indent_rest(text, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOTED: &str = "\
# Cameras of the north site. Ask Priya before adding one.
heartbeat_seconds: 15   # seconds
timezone: 'Asia/Kolkata'

streams:
# the gate, replaced 2025-03
- name: GateCamera
  url: rtsp://user:pass@192.0.2.10:554/stream1  # main stream
  retries: 2
- {name: LabCam1, url: 'http://192.0.2.11:9081'}   # flow style
# the dock
- name: Dock
  url: rtsp://192.0.2.12/live
# end of list
";

    fn tree(text: &str) -> Value {
        yaml::parse(Path::new("t.yaml"), text).unwrap().value
    }

    fn edited(text: &str, edit: impl FnOnce(&mut Value)) -> String {
        let before = tree(text);
        let mut after = before.clone();
        edit(&mut after);
        let out = rewrite(text, &before, &after).expect("edited in place");
        assert_eq!(tree(&out), after, "{out}");
        out
    }

    #[test]
    fn a_changed_scalar_keeps_its_comment_and_every_other_line() {
        let out = edited(NOTED, |v| v["heartbeat_seconds"] = json!(30));
        assert_eq!(out, NOTED.replace("heartbeat_seconds: 15 ", "heartbeat_seconds: 30 "));
        let out = edited(NOTED, |v| v["streams"][0]["url"] = json!("rtsp://192.0.2.10/sub # not a comment"));
        assert!(out.contains("  url: \"rtsp://192.0.2.10/sub # not a comment\"  # main stream\n"), "{out}");
        assert_eq!(out.lines().count(), NOTED.lines().count());
        let out = edited(NOTED, |v| v["timezone"] = json!("UTC"));
        assert!(out.contains("timezone: UTC\n\nstreams:"), "{out}");
    }

    #[test]
    fn items_are_added_after_the_last_and_removed_with_their_note() {
        let out = edited(NOTED, |v| {
            v["streams"].as_array_mut().unwrap().push(json!({"name": "Yard", "url": "http://192.0.2.13/"}));
        });
        assert!(out.starts_with(&NOTED[..NOTED.find("# end of list").unwrap()]), "{out}");
        assert!(
            out.contains("  url: rtsp://192.0.2.12/live\n- name: Yard\n  url: \"http://192.0.2.13/\"\n# end of list\n"),
            "{out}"
        );

        let out = edited(NOTED, |v| {
            v["streams"].as_array_mut().unwrap().remove(0);
        });
        assert!(!out.contains("GateCamera") && !out.contains("the gate"), "{out}");
        assert!(out.contains("streams:\n- {name: LabCam1"), "{out}");
        assert!(out.contains("# Cameras of the north site") && out.contains("# the dock"), "{out}");
    }

    #[test]
    fn members_are_added_changed_and_removed_inside_an_item() {
        let out = edited(NOTED, |v| {
            let gate = v["streams"][0].as_object_mut().unwrap();
            gate.remove("retries");
            gate.insert("heartbeat_seconds".into(), json!(60));
            gate.insert("name".into(), json!("Front gate"));
        });
        assert!(
            out.contains("# the gate, replaced 2025-03\n- name: Front gate\n  url: rtsp://user:pass@192.0.2.10:554/stream1  # main stream\n  heartbeat_seconds: 60\n- {name"),
            "{out}"
        );
    }

    #[test]
    fn a_flow_item_is_written_again_in_block_style_and_the_rest_stays() {
        let out = edited(NOTED, |v| v["streams"][1]["url"] = json!("http://192.0.2.11:9082"));
        assert!(
            out.contains(
                "  retries: 2\n- name: LabCam1  # flow style\n  url: \"http://192.0.2.11:9082\"\n# the dock\n"
            ),
            "{out}"
        );
        assert!(out.contains("# main stream") && out.contains("# seconds"), "{out}");
    }

    #[test]
    fn new_top_level_members_go_after_their_predecessor() {
        let out = edited(NOTED, |v| {
            let mut m = Map::new();
            for (k, val) in v.as_object().unwrap() {
                m.insert(k.clone(), val.clone());
                if k == "heartbeat_seconds" {
                    m.insert("retries".into(), json!(3));
                }
            }
            *v = Value::Object(m);
        });
        assert!(out.contains("heartbeat_seconds: 15   # seconds\nretries: 3\ntimezone:"), "{out}");
    }

    #[test]
    fn what_cannot_be_edited_in_place_is_left_to_the_caller() {
        let flow = "{heartbeat_seconds: 15, streams: []}\n";
        let before = tree(flow);
        let mut after = before.clone();
        after["heartbeat_seconds"] = json!(20);
        assert_eq!(rewrite(flow, &before, &after), None);
        // The text must be the one the tree came from.
        assert_eq!(rewrite(NOTED, &json!({"streams": []}), &json!({})), None);
        assert_eq!(rewrite("", &Value::Null, &json!({"streams": []})), None);
    }

    #[test]
    fn an_empty_list_is_written_again_as_a_whole_member() {
        let text = "# no cameras yet\nheartbeat_seconds: 15\nstreams: []   # add some\ntimezone: UTC\n";
        let out = edited(text, |v| v["streams"] = json!([{"name": "A", "url": "rtsp://192.0.2.1/"}]));
        assert!(out.starts_with("# no cameras yet\nheartbeat_seconds: 15\nstreams:\n"), "{out}");
        assert!(out.ends_with("timezone: UTC\n"), "{out}");
    }

    #[test]
    fn a_text_without_a_final_newline_is_edited() {
        let out = edited("streams:\n  - name: A\n    url: rtsp://192.0.2.1/", |v| {
            v["streams"].as_array_mut().unwrap().push(json!({"name": "B", "url": "rtsp://192.0.2.2/"}));
        });
        assert!(out.contains("    url: rtsp://192.0.2.1/\n  - name: B\n    url:"), "{out}");
    }

    #[test]
    fn the_first_member_of_an_item_shares_the_dash_line() {
        let out = edited(NOTED, |v| {
            let dock = v["streams"][2].as_object_mut().unwrap();
            dock.shift_remove("name");
        });
        assert!(out.contains("# the dock\n- url: rtsp://192.0.2.12/live\n"), "{out}");
        let out = edited(NOTED, |v| {
            let dock = v["streams"][2].as_object_mut().unwrap();
            let mut m = Map::new();
            m.insert("id".into(), json!("dock-1"));
            m.extend(std::mem::take(dock));
            *dock = m;
        });
        assert!(out.contains("# the dock\n- id: dock-1\n  name: Dock\n  url: rtsp://192.0.2.12/live\n"), "{out}");
    }

    /// What the dashboard's editor does, on two common layouts: each edit is made in place and
    /// every comment not on a removed camera stays.
    #[test]
    fn every_editor_operation_keeps_the_comments() {
        let indented = "heartbeat_seconds: 15 # s\nstreams:\n  # first\n  - name: A\n    url: rtsp://192.0.2.1/  # a\n  # second\n  - name: B\n    url: rtsp://192.0.2.2/\n    retries: 1\ntimezone: UTC  # tz\n";
        for text in [NOTED, indented] {
            let comments = |t: &str| t.lines().filter(|l| l.contains('#')).count();
            let n = tree(text)["streams"].as_array().unwrap().len();
            for i in 0..n {
                let out = edited(text, |v| v["streams"][i]["name"] = json!(format!("Renamed {i}")));
                assert_eq!(comments(&out), comments(text), "{out}");
                let out = edited(text, |v| v["streams"][i]["heartbeat_seconds"] = json!(60));
                assert_eq!(comments(&out), comments(text), "{out}");
                let out = edited(text, |v| {
                    v["streams"].as_array_mut().unwrap().remove(i);
                });
                assert!(comments(text) - comments(&out) <= 2, "only the camera's own notes go: {out}");
            }
            let out = edited(text, |v| {
                v["streams"].as_array_mut().unwrap().push(json!({"name": "C", "url": "rtsp://192.0.2.3/"}));
            });
            assert_eq!(comments(&out), comments(text), "{out}");
            let out = edited(text, |v| v["heartbeat_seconds"] = json!(5));
            assert_eq!(comments(&out), comments(text), "{out}");
        }
    }

    #[test]
    fn places_count_characters_not_bytes() {
        let text = "streams:\n- name: Café Ünter  # près du quai\n  url: rtsp://192.0.2.1/\n";
        let out = edited(text, |v| v["streams"][0]["name"] = json!("Quai Süd"));
        assert_eq!(out, "streams:\n- name: Quai Süd  # près du quai\n  url: rtsp://192.0.2.1/\n");
    }

    /// The file the installer ships, as an operator meets it: the first camera replaces
    /// `streams: []`, the second goes after it, and every comment of the example stays.
    #[test]
    fn the_shipped_example_keeps_its_comments_as_cameras_are_added() {
        let shipped = include_str!("../etc/cameras.yaml");
        let comments = |t: &str| t.lines().filter(|l| l.contains('#')).count();
        let first = edited(shipped, |v| v["streams"] = json!([{"name": "Gate", "url": "rtsp://192.0.2.10/live"}]));
        assert_eq!(comments(&first), comments(shipped), "{first}");
        let second = edited(&first, |v| {
            v["streams"].as_array_mut().unwrap().push(json!({"name": "Yard", "url": "rtsp://192.0.2.11/live"}));
        });
        assert_eq!(comments(&second), comments(shipped), "{second}");
        let gate = second.find("name: Gate").unwrap();
        assert!(second[gate..].contains("name: Yard"), "{second}");
    }
}
