//! The error type of the YAML layer.

use super::position::Pos;

/// Why loading a YAML document failed.
///
/// The `Display` text of each variant is the message part of the
/// compiler-style line printed by [`YamlError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum YamlErrorKind {
    /// The text is not well-formed YAML; the message comes from the parser.
    #[error("invalid YAML: {message}")]
    Syntax {
        /// The parser's description of the problem.
        message: String,
    },

    /// The same key appears twice in one mapping.
    #[error(
        "duplicate key `{key}` in mapping (first defined at line {first_line}, column {first_col})"
    )]
    DuplicateKey {
        /// The key, as written (non-string keys are rendered as text).
        key: String,
        /// Line of the first occurrence.
        first_line: usize,
        /// Column of the first occurrence.
        first_col: usize,
    },

    /// A tag outside the supported part of the YAML core schema, such as
    /// `!Ref` or `!!binary`.
    #[error("unsupported YAML tag `{tag}` (only !!str, !!int, !!float, !!bool, !!null, !!seq and !!map are allowed)")]
    UnsupportedTag {
        /// The tag as written, expanded (`!!int` becomes `tag:yaml.org,2002:int`).
        tag: String,
    },

    /// A standard tag was applied to a value it cannot describe, such as
    /// `!!int abc` or `!!map` on a sequence.
    #[error("`{tag}` cannot be applied to {found}")]
    TagMismatch {
        /// The tag in its short form, such as `!!int`.
        tag: String,
        /// What the tagged value is, such as `the string "abc"` or `a sequence`.
        found: String,
    },

    /// The value of a `<<` merge key is neither a mapping nor a sequence of
    /// mappings.
    #[error("the merge key `<<` needs a mapping or a list of mappings, found {found}")]
    InvalidMerge {
        /// Kind of the offending value, such as `a string`.
        found: String,
    },

    /// An alias refers to the node that contains it, which would describe an
    /// infinitely deep value.
    #[error("alias `*` refers to a node that contains it (recursive aliases are not supported)")]
    RecursiveAlias,

    /// Expanding aliases would produce more nodes than allowed; this is the
    /// defence against "billion laughs" documents.
    #[error("expanding aliases produces more than {limit} nodes; refusing to load (is this an alias bomb?)")]
    AliasExpansionLimit {
        /// The configured limit.
        limit: usize,
    },

    /// Collections are nested deeper than allowed.
    #[error("collections are nested more than {limit} levels deep")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },

    /// The stream holds a second document; a workflow file is one document.
    #[error(
        "a workflow file must contain a single YAML document, but a second document starts here"
    )]
    MultipleDocuments,
}

/// An error while loading YAML, located at `file:line:col`.
///
/// Displays as `<file>:<line>:<col>: <message>`, the format editors and CI
/// log viewers recognise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}:{}: {kind}", pos.line, pos.col)]
pub struct YamlError {
    /// The label the caller gave for the source, usually its path.
    pub file: String,
    /// Where the problem is.
    pub pos: Pos,
    /// What the problem is.
    pub kind: YamlErrorKind,
}

impl YamlError {
    /// Creates an error for `file` at `pos`.
    pub fn new(file: impl Into<String>, pos: Pos, kind: YamlErrorKind) -> Self {
        YamlError {
            file: file.into(),
            pos,
            kind,
        }
    }

    /// 1-based line of the problem.
    pub fn line(&self) -> usize {
        self.pos.line
    }

    /// 1-based column of the problem.
    pub fn col(&self) -> usize {
        self.pos.col
    }

    /// The message without the location prefix.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}
