//! Building blocks shared by the workflow and action models.

use crate::yaml::Span;

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Pairs `value` with `span`.
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// A string from the file, possibly with `${{ }}` expressions in it.
///
/// Strings are kept as written; their expressions were parsed (and so
/// checked) at load time with the contexts their key allows, and the engine
/// parses them again when it evaluates them.
pub type Text = Spanned<String>;

impl Text {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// `true` if the string holds a `${{ }}` expression.
    pub fn has_expression(&self) -> bool {
        self.value.contains("${{")
    }
}

/// Whether a mapping key is GitHub's `${{ insert }}` directive: its value, a mapping or an
/// expression producing one, is merged into the mapping that holds the key. It is allowed as a
/// key wherever the mapping allows expressions.
pub fn is_insert_directive(key: &str) -> bool {
    key.trim()
        .strip_prefix("${{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .is_some_and(|inner| inner.trim() == "insert")
}

/// A value that may instead be written as one expression, computed when the
/// job runs: `timeout-minutes: ${{ matrix.timeout }}`,
/// `strategy: ${{ fromJSON(needs.plan.outputs.strategy) }}`.
#[derive(Debug, Clone, PartialEq)]
pub enum OrExpr<T> {
    /// Written out.
    Value(T),
    /// An expression whose result takes the value's place.
    Expr(Text),
}

impl<T> OrExpr<T> {
    /// The written-out value, if it is not an expression.
    pub fn value(&self) -> Option<&T> {
        match self {
            OrExpr::Value(v) => Some(v),
            OrExpr::Expr(_) => None,
        }
    }
}

/// A scalar as YAML wrote it, for values that keep their type (`with:` of a
/// reusable workflow, input defaults).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string, which may hold expressions.
    String(String),
}

/// A mapping of names to strings, in source order: `env:`, `with:` of a
/// step, `outputs:` of a job. Values of other scalar types are kept as their
/// text (`1` becomes `"1"`), as GitHub does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StringMap {
    /// Name and value pairs, in source order.
    pub entries: Vec<(Text, Text)>,
    /// Where the mapping was written.
    pub span: Span,
}

impl StringMap {
    /// The value of `name`, compared exactly.
    pub fn get(&self, name: &str) -> Option<&Text> {
        self.entries
            .iter()
            .find(|(k, _)| k.value == name)
            .map(|(_, v)| v)
    }
}

/// `env:` at any level: a mapping, or one expression producing a mapping.
pub type Env = OrExpr<StringMap>;
