//! Parsing the expressions in a workflow string at load time, and pointing
//! errors at the right column.

use hearth_expr::{Condition, Error, ParseOptions, Template};

use super::schema::ContextSet;
use crate::yaml::{Node, Pos, ScalarStyle};

const OPEN: &str = "${{";

/// Other names of the `github` context on Gitea and Forgejo.
pub const GITHUB_ALIASES: [&str; 2] = ["gitea", "forge"];

/// `true` if `raw` holds an expression (`${{`).
pub(crate) fn has_expression(raw: &str) -> bool {
    raw.contains(OPEN)
}

/// A problem with an expression: its message and its offset in the string,
/// counted in characters.
pub(crate) struct ExpressionProblem {
    pub offset: usize,
    pub message: String,
}

/// Checks that the `${{ }}` expressions in `raw` parse and use only what
/// `contexts` allows. With `condition`, `raw` is an `if:` and may be a bare
/// expression.
pub(crate) fn check(
    raw: &str,
    contexts: &ContextSet,
    condition: bool,
) -> Result<(), ExpressionProblem> {
    // Gitea and Forgejo also name the `github` context `gitea` and `forge`.
    let mut names = contexts.named_values.to_vec();
    if names.contains(&"github") {
        names.extend(GITHUB_ALIASES);
    }
    let options = ParseOptions {
        named_values: Some(&names),
        extra_functions: Some(contexts.functions),
        status_function_args: contexts.status_function_args,
    };
    let result = if condition {
        Condition::parse(raw, &options).map(drop)
    } else {
        Template::parse(raw, &options).map(drop)
    };
    result.map_err(|error| ExpressionProblem {
        offset: error_offset(raw, &error),
        message: error.to_string(),
    })
}

/// Where in `raw` the error points, in characters.
///
/// The expression crate reports positions within the expression it was
/// parsing: either the whole string (for an unclosed `${{`) or the trimmed
/// text between one `${{` and its `}}`. Find which and add its offset.
fn error_offset(raw: &str, error: &Error) -> usize {
    let within = |byte_start: usize| {
        let prefix = char_count(&raw[..byte_start]);
        prefix
            + error
                .position
                .map_or(0, |p| utf16_to_chars(&raw[byte_start..], p - 1))
    };
    let Some(expression) = error.expression.as_deref() else {
        return 0;
    };
    if expression == raw {
        return within(0);
    }
    for (inner_start, inner) in hearth_expr::embedded_expressions(raw) {
        let leading = inner.len() - inner.trim_start().len();
        if inner.trim() == expression {
            return within(inner_start + leading);
        }
    }
    // A bare `if:` condition: the expression is the trimmed string.
    let leading = raw.len() - raw.trim_start().len();
    if raw.trim() == expression {
        return within(leading);
    }
    0
}

fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// Converts `units` UTF-16 code units at the start of `s` into characters.
fn utf16_to_chars(s: &str, units: usize) -> usize {
    let mut seen = 0;
    for (count, c) in s.chars().enumerate() {
        if seen >= units {
            return count;
        }
        seen += c.len_utf16();
    }
    s.chars().count()
}

/// The source position of the character at `offset` in the string value of
/// `node`, where it can be known; the start of the scalar otherwise.
///
/// Single-line plain and quoted scalars map one to one (escapes in double
/// quotes aside); literal blocks (`|`) keep lines and indentation. Folded
/// and multi-line flow scalars rewrap text, so they report their start.
pub(crate) fn position_in_scalar(node: &Node, offset: usize) -> Pos {
    let start = node.span.start;
    let Some(text) = node.as_str() else {
        return start;
    };
    match node.style {
        Some(ScalarStyle::Plain) if node.span.end.line == start.line => {
            Pos::new(start.line, start.col + offset)
        }
        Some(ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted)
            if node.span.end.line == start.line =>
        {
            Pos::new(start.line, start.col + 1 + offset)
        }
        Some(ScalarStyle::Literal) => {
            let before: String = text.chars().take(offset).collect();
            let line = before.matches('\n').count();
            let col = before.rsplit('\n').next().map_or(0, char_count);
            Pos::new(start.line + line, start.col + col)
        }
        _ => start,
    }
}

/// Character offset of the first `${{` in `raw`.
pub(crate) fn first_expression_offset(raw: &str) -> usize {
    raw.find(OPEN).map_or(0, |i| char_count(&raw[..i]))
}
