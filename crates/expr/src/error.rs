//! Errors of lexing, parsing and evaluating expressions, worded as GitHub words them.

use thiserror::Error;

/// Which stage rejected the expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Lexing,
    Parsing,
    Evaluation,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Lexing => "lexing",
            ErrorKind::Parsing => "parsing",
            ErrorKind::Evaluation => "evaluation",
        }
    }
}

/// An error with GitHub's message. Lexing and parsing errors carry the expression and, where
/// GitHub gives one, the 1-based position (counted in UTF-16 units, as GitHub counts) of the
/// offending token; `Display` appends them exactly as GitHub does.
#[derive(Clone, Debug, Error, PartialEq)]
#[error("{}", self.render())]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub position: Option<usize>,
    pub expression: Option<String>,
}

impl Error {
    pub(crate) fn at(kind: ErrorKind, message: String, source: &str, byte_offset: usize) -> Self {
        let prefix = source.get(..byte_offset).unwrap_or(source);
        Error {
            kind,
            message,
            position: Some(prefix.encode_utf16().count() + 1),
            expression: Some(source.to_string()),
        }
    }

    pub(crate) fn within(kind: ErrorKind, message: String, source: &str) -> Self {
        Error {
            kind,
            message,
            position: None,
            expression: Some(source.to_string()),
        }
    }

    pub(crate) fn evaluation(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Evaluation,
            message: message.into(),
            position: None,
            expression: None,
        }
    }

    fn render(&self) -> String {
        match (&self.expression, self.position) {
            (Some(expr), Some(pos)) => format!(
                "{}. Located at position {pos} within expression: {expr}",
                self.message
            ),
            (Some(expr), None) => format!("{}. Located within expression: {expr}", self.message),
            (None, _) => self.message.clone(),
        }
    }
}
