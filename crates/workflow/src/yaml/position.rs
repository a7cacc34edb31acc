//! Source positions attached to every node and error.

use std::fmt;

/// A position in the source text.
///
/// Both numbers are 1-based, as editors and compilers print them. The column
/// counts Unicode scalar values (characters), not bytes, so a tab or a
/// multi-byte character each advance it by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number, starting at 1.
    pub col: usize,
}

impl Pos {
    /// The very first character of a file.
    pub const START: Pos = Pos { line: 1, col: 1 };

    /// Creates a position from 1-based line and column numbers.
    pub const fn new(line: usize, col: usize) -> Self {
        Pos { line, col }
    }

    /// Converts a parser marker (1-based line, 0-based column) into a `Pos`.
    pub(crate) fn from_marker(marker: &saphyr_parser::Marker) -> Self {
        Pos {
            line: marker.line().max(1),
            col: marker.col().saturating_add(1),
        }
    }
}

impl Default for Pos {
    fn default() -> Self {
        Pos::START
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// The region of source text a node was read from.
///
/// `start` is the first character of the node (for a node with an anchor or a
/// tag, that is the `&` or `!`; for a block scalar, the first content line).
/// `end` is just past its last character. Empty values, such as the missing
/// value in `key:`, have `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First character of the node.
    pub start: Pos,
    /// Position just after the node.
    pub end: Pos,
}

impl Span {
    /// Creates a span from its two ends.
    pub const fn new(start: Pos, end: Pos) -> Self {
        Span { start, end }
    }

    /// An empty span at one position.
    pub const fn at(pos: Pos) -> Self {
        Span {
            start: pos,
            end: pos,
        }
    }

    pub(crate) fn from_parser(span: &saphyr_parser::Span) -> Self {
        Span {
            start: Pos::from_marker(&span.start),
            end: Pos::from_marker(&span.end),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}
