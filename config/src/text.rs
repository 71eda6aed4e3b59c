//! Byte offsets to line and column.

use crate::diag::Location;

/// Start offsets of every line of a text.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { text, starts }
    }

    /// Line and column (in characters, from 1) of a byte offset.
    pub(crate) fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1;
        Location { line: line + 1, column }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_character_columns() {
        let idx = LineIndex::new("ab\nčd\n\nx");
        assert_eq!(idx.location(0), Location { line: 1, column: 1 });
        assert_eq!(idx.location(1), Location { line: 1, column: 2 });
        assert_eq!(idx.location(3), Location { line: 2, column: 1 });
        // 'č' is two bytes: 'd' is the second character.
        assert_eq!(idx.location(5), Location { line: 2, column: 2 });
        assert_eq!(idx.location(8), Location { line: 4, column: 1 });
    }
}
