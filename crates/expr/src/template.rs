//! `${{ }}` in workflow strings, and `if:` conditions.

use crate::ast::Node;
use crate::error::{Error, ErrorKind};
use crate::eval::EvalContext;
use crate::functions::Function;
use crate::parser::ParseOptions;
use crate::value::Value;
use crate::Expression;

const OPEN: &str = "${{";
const CLOSE: &str = "}}";

/// A workflow string that may embed expressions.
#[derive(Clone, Debug)]
pub enum Template {
    /// No `${{` in it: the string as written.
    Literal(String),
    /// One or more expressions. A string that is exactly one `${{ expr }}` keeps the type of
    /// `expr`; text around or between expressions makes it GitHub's equivalent
    /// `format('text{0}text', expr)`, a string.
    Expression(Expression),
}

impl Template {
    /// Parses `raw`, with expressions limited by `options`.
    pub fn parse(raw: &str, options: &ParseOptions) -> Result<Template, Error> {
        let Some(first) = raw.find(OPEN) else {
            return Ok(Template::Literal(raw.to_string()));
        };
        let mut literal_text = String::new();
        let mut format_text = String::new();
        let mut args: Vec<(Node, &str)> = Vec::new();
        let mut rest_start = 0;
        let mut next = Some(first);
        while let Some(start) = next {
            let before = &raw[rest_start..start];
            literal_text.push_str(before);
            format_text.push_str(&before.replace('{', "{{").replace('}', "}}"));
            let inner_start = start + OPEN.len();
            let inner_end = find_close(raw, inner_start).ok_or_else(|| {
                Error::at(
                    ErrorKind::Parsing,
                    "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found".to_string(),
                    raw,
                    start,
                )
            })?;
            let inner = raw[inner_start..inner_end].trim();
            if inner.is_empty() {
                return Err(Error::at(
                    ErrorKind::Parsing,
                    "An expression was expected".to_string(),
                    raw,
                    start,
                ));
            }
            let node = crate::parser::parse(inner, options)?;
            format_text.push_str(&format!("{{{}}}", args.len()));
            args.push((node, inner));
            rest_start = inner_end + CLOSE.len();
            next = raw[rest_start..].find(OPEN).map(|i| i + rest_start);
        }
        let tail = &raw[rest_start..];
        format_text.push_str(&tail.replace('{', "{{").replace('}', "}}"));
        literal_text.push_str(tail);

        if args.len() == 1 && literal_text.is_empty() {
            let (root, source) = args.remove(0);
            return Ok(Template::Expression(Expression {
                source: source.into(),
                root,
            }));
        }
        let source = format!(
            "format('{}'{})",
            format_text.replace('\'', "''"),
            args.iter()
                .map(|(_, s)| format!(", {s}"))
                .collect::<String>()
        );
        let mut call_args = vec![Node::Literal(Value::string(format_text))];
        call_args.extend(args.into_iter().map(|(node, _)| node));
        Ok(Template::Expression(Expression {
            source: source.into(),
            root: Node::Call {
                function: Function::Format,
                args: call_args,
            },
        }))
    }

    /// Whether the string embeds any expression.
    pub fn is_literal(&self) -> bool {
        matches!(self, Template::Literal(_))
    }

    pub fn evaluate(&self, context: &EvalContext) -> Result<Value, Error> {
        match self {
            Template::Literal(s) => Ok(Value::string(s.as_str())),
            Template::Expression(e) => e.evaluate(context),
        }
    }

    /// Evaluates and converts the result to a string, as GitHub does for `run:`, `env:` values
    /// and the like.
    pub fn evaluate_to_string(&self, context: &EvalContext) -> Result<String, Error> {
        match self {
            Template::Literal(s) => Ok(s.clone()),
            Template::Expression(e) => Ok(e.evaluate(context)?.to_display_string()),
        }
    }
}

/// Every complete `${{ ... }}` in `raw`, as the byte offset of its inner text and that text, in
/// order; scanning stops at one that is not closed. For tools that point into the source, such
/// as a validator reporting an expression error at its column.
pub fn embedded_expressions(raw: &str) -> Vec<(usize, &str)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(start) = raw[from..].find(OPEN).map(|i| i + from) {
        let inner_start = start + OPEN.len();
        let Some(close) = find_close(raw, inner_start) else {
            break;
        };
        found.push((inner_start, &raw[inner_start..close]));
        from = close + CLOSE.len();
    }
    found
}

/// The index of the `}}` closing an expression that starts at `from`, skipping `}}` inside
/// string literals.
fn find_close(raw: &str, from: usize) -> Option<usize> {
    let bytes = raw.as_bytes();
    let mut in_string = false;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// An `if:` condition. It may be written with or without `${{ }}`; blank means `success()`;
/// without a status function it means `success() && (condition)`.
#[derive(Clone, Debug)]
pub struct Condition {
    expression: Expression,
}

impl Condition {
    pub fn parse(raw: &str, options: &ParseOptions) -> Result<Condition, Error> {
        let expression = match Template::parse(raw, options)? {
            Template::Expression(e) => e,
            Template::Literal(text) => Expression::parse(text.trim(), options)?,
        };
        let success = || Node::Call {
            function: Function::Success,
            args: Vec::new(),
        };
        let expression = if expression.source.trim().is_empty() {
            Expression {
                source: "success()".into(),
                root: success(),
            }
        } else if expression.root.uses_status_function() {
            expression
        } else {
            Expression {
                source: format!("success() && ({})", expression.source).into(),
                root: Node::And(vec![success(), expression.root]),
            }
        };
        Ok(Condition { expression })
    }

    /// The condition as it is evaluated, with the implicit `success() &&` made explicit.
    pub fn source(&self) -> &str {
        &self.expression.source
    }

    pub fn expression(&self) -> &Expression {
        &self.expression
    }

    pub fn evaluate(&self, context: &EvalContext) -> Result<bool, Error> {
        Ok(self.expression.evaluate(context)?.is_truthy())
    }
}
