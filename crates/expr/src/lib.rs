//! The GitHub Actions expression language, as GitHub's runner implements it: `${{ }}`
//! templates, `if:` conditions, loose comparisons, case-insensitive strings and contexts, and
//! the built-in functions.
//!
//! ```
//! use hearth_expr::{EvalContext, Expression, Object, ParseOptions, Value};
//!
//! let mut github = Object::new();
//! github.insert("ref", "refs/tags/v1.2");
//! let mut contexts = Object::new();
//! contexts.insert("github", github);
//!
//! let expr = Expression::parse("startsWith(github.REF, 'refs/tags/')", &ParseOptions::permissive())?;
//! let value = expr.evaluate(&EvalContext::new(&contexts))?;
//! assert!(value.is_truthy());
//! # Ok::<(), hearth_expr::Error>(())
//! ```
//!
//! The crate does no I/O: contexts come in as values, and `hashFiles` reads the workspace
//! through [`WorkspaceFiles`].

mod ast;
mod error;
mod eval;
mod fold;
mod functions;
mod hash_files;
mod json;
mod lexer;
mod number;
mod parser;
mod template;
mod value;

pub use ast::{CompareOp, IndexKey, Node};
pub use error::{Error, ErrorKind};
pub use eval::{Contexts, EvalContext, Status, MAX_MEMORY};
pub use functions::Function;
pub use hash_files::{hash_files, WorkspaceFiles};
pub use parser::{ParseOptions, MAX_DEPTH, MAX_LENGTH};
pub use template::{embedded_expressions, Condition, Template};
pub use value::{Kind, Object, Value};

/// Compares strings ignoring case as GitHub does (.NET `OrdinalIgnoreCase`), for callers that
/// match names the way expressions do, such as matrix keys.
pub use fold::eq_ignore_case;

/// Formats a number as GitHub converts numbers to strings.
pub fn format_number(n: f64) -> String {
    number::format(n)
}

/// Parses a string as GitHub converts strings to numbers (NaN when it is no number).
pub fn parse_number(s: &str) -> f64 {
    number::parse(s)
}

/// Checks that `source` lexes and parses, as GitHub does when it loads a workflow.
pub fn validate(source: &str, options: &ParseOptions) -> Result<(), Error> {
    parser::parse(source, options).map(drop)
}

/// A parsed expression, ready to evaluate any number of times.
#[derive(Clone, Debug)]
pub struct Expression {
    source: Box<str>,
    root: Node,
}

impl Expression {
    /// Lexes and parses `source`. Errors carry GitHub's message and position.
    pub fn parse(source: &str, options: &ParseOptions) -> Result<Expression, Error> {
        Ok(Expression {
            root: parser::parse(source, options)?,
            source: source.into(),
        })
    }

    pub fn evaluate(&self, context: &EvalContext) -> Result<Value, Error> {
        eval::evaluate(&self.root, context)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn root(&self) -> &Node {
        &self.root
    }
}
