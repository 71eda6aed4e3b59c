//! Problems found in a configuration file, worded for the person who has to fix them.
//!
//! Every diagnostic names the file, the line and column when the problem has a place in the
//! text, the key path (`live_streaming.max_segments`, `streams[1].url`), and says what is
//! allowed. Errors print like a compiler's (`config.json:4:14: fps = 0: must be 1..=120`),
//! warnings carry a `warning:` tag after the place.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a problem is: errors make the file unusable, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// Line and column in a file, both counted from 1 (columns in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// Where in the text; `None` when the problem is about the whole file or about a
    /// document that was edited in memory and has no text yet.
    pub location: Option<Location>,
    /// Key path such as `live_streaming.max_segments`; empty for the whole document.
    pub path: String,
    /// The offending value as it appears in the file (secrets masked), if there is one.
    pub value: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Diagnostic {
    /// A problem with the file as a whole (unreadable, not parseable, wrong top-level type).
    pub fn file_error(file: &Path, location: Option<Location>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_owned(),
            location,
            path: String::new(),
            value: None,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl Diagnostic {
    /// The problem without the file and place (`streams[2].url = "ftp://…": …`), for an answer
    /// to a request that changed the document rather than the file.
    pub fn without_file(&self) -> String {
        let mut text = self.to_string();
        let prefix = format!("{}: ", self.file.display());
        if self.location.is_none() && text.starts_with(&prefix) {
            text.drain(..prefix.len());
        }
        text
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        f.write_str(": ")?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if !self.path.is_empty() {
            f.write_str(&self.path)?;
            if let Some(value) = &self.value {
                write!(f, " = {value}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem of a file that could not be used: all errors and warnings, in file order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Problems {
    pub diagnostics: Vec<Diagnostic>,
}

impl Problems {
    pub fn single(diagnostic: Diagnostic) -> Self {
        Problems { diagnostics: vec![diagnostic] }
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Orders diagnostics as a reader meets them: by place in the file, then errors first.
pub(crate) fn sort_in_file_order(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        let place = |d: &Diagnostic| d.location.map_or((usize::MAX, usize::MAX), |l| (l.line, l.column));
        place(a).cmp(&place(b)).then(b.severity.cmp(&a.severity))
    });
}
