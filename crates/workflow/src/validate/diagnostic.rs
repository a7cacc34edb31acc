//! Errors found while reading a workflow or an action, each at `file:line:col`.

use std::fmt;

use crate::yaml::Pos;

/// One problem in a workflow or `action.yml`.
///
/// Displays as `file:line:col: error: message`, the format editors and CI
/// log viewers recognise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}:{}: error: {message}", pos.line, pos.col)]
pub struct Diagnostic {
    /// The label the caller gave for the source, usually its path.
    pub file: String,
    /// Where the problem is.
    pub pos: Pos,
    /// What the problem is, without the location.
    pub message: String,
}

impl Diagnostic {
    /// Creates a diagnostic for `file` at `pos`.
    pub fn new(file: impl Into<String>, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            pos,
            message: message.into(),
        }
    }
}

/// Every problem found in one file, in source order.
///
/// Loading does not stop at the first problem: users fix a workflow faster
/// when they see all of its mistakes at once. `Display` prints one
/// [`Diagnostic`] per line.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// The problems, in source order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when there is no problem.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Diagnostics(vec![diagnostic])
    }
}

impl From<crate::yaml::YamlError> for Diagnostics {
    fn from(error: crate::yaml::YamlError) -> Self {
        let message = error.message();
        Diagnostic::new(error.file, error.pos, message).into()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}
