//! Evaluating the parts of a job that decide what runs: `strategy`, `runs-on`, `name`, `if`.
//!
//! Expressions were checked when the workflow was loaded, with the contexts each key allows,
//! so they are parsed permissively here.

use hearth_expr::{
    Condition, EvalContext, Node as ExprNode, Object, ParseOptions, Status, Template,
    Value as ExprValue,
};
use serde_json::{Map, Value};

use crate::model::Text;
use crate::validate::Diagnostic;
use crate::yaml::{Node, Pos, YamlValue};

/// Evaluates a template string in `contexts`; the result keeps its type when the string is a
/// single `${{ }}` (so `${{ fromJSON(...) }}` can produce a list).
pub(crate) fn template(
    file: &str,
    text: &str,
    pos: Pos,
    contexts: &Object,
) -> Result<ExprValue, Diagnostic> {
    let parsed = Template::parse(text, &ParseOptions::permissive())
        .map_err(|e| Diagnostic::new(file, pos, e.to_string()))?;
    parsed
        .evaluate(&EvalContext::new(contexts))
        .map_err(|e| Diagnostic::new(file, pos, e.to_string()))
}

/// Evaluates a [`Text`] to a string, as GitHub converts a template's result.
pub(crate) fn text(file: &str, text: &Text, contexts: &Object) -> Result<String, Diagnostic> {
    if !text.has_expression() {
        return Ok(text.value.clone());
    }
    Ok(template(file, &text.value, text.span.start, contexts)?.to_display_string())
}

/// Evaluates a job's `if:` given the combined status of its needs.
pub(crate) fn condition(
    file: &str,
    condition: &Text,
    contexts: &Object,
    status: Status,
) -> Result<bool, Diagnostic> {
    let parsed = Condition::parse(&condition.value, &ParseOptions::permissive())
        .map_err(|e| Diagnostic::new(file, condition.span.start, e.to_string()))?;
    parsed
        .evaluate(&EvalContext::new(contexts).with_status(status))
        .map_err(|e| Diagnostic::new(file, condition.span.start, e.to_string()))
}

/// Converts a YAML tree to JSON, evaluating every string that holds an expression, as GitHub's
/// template evaluator unravels one:
///
/// - a string that is a single expression is replaced by the expression's value, whatever its
///   type (`matrix: ${{ fromJSON(...) }}`, `os: ${{ fromJSON(...) }}`);
/// - a sequence item that is an expression producing a sequence is spliced into the sequence
///   holding it (`os: [a, "${{ fromJSON('["b","c"]') }}"]` is `[a, b, c]`);
/// - a `${{ insert }}` key merges its value, a mapping or an expression producing one, into the
///   mapping holding it; another key holding an expression is evaluated to a string;
/// - a key that comes twice (an inserted one written beside it) is an error.
pub(crate) fn node(file: &str, node: &Node, contexts: &Object) -> Result<Value, Diagnostic> {
    Ok(match &node.value {
        YamlValue::String(s) if s.contains("${{") => {
            template(file, s, node.span.start, contexts)?.to_json()
        }
        YamlValue::Sequence(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match (&item.value, self::node(file, item, contexts)?) {
                    (YamlValue::String(_), Value::Array(spliced)) => values.extend(spliced),
                    (_, value) => values.push(value),
                }
            }
            Value::Array(values)
        }
        YamlValue::Mapping(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let inserted = match &key.value {
                    YamlValue::String(k) if crate::model::is_insert_directive(k) => {
                        match self::node(file, value, contexts)? {
                            Value::Object(inserted) => inserted,
                            other => {
                                return Err(Diagnostic::new(
                                    file,
                                    value.span.start,
                                    format!(
                                        "Expected a mapping for `${{{{ insert }}}}`, found {}",
                                        crate::matrix::kind_name(&other)
                                    ),
                                ))
                            }
                        }
                    }
                    YamlValue::String(k) if k.contains("${{") => {
                        let name = template(file, k, key.span.start, contexts)?.to_display_string();
                        let mut one = Map::with_capacity(1);
                        one.insert(name, self::node(file, value, contexts)?);
                        one
                    }
                    _ => {
                        let name = match key.to_json() {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        let mut one = Map::with_capacity(1);
                        one.insert(name, self::node(file, value, contexts)?);
                        one
                    }
                };
                for (name, value) in inserted {
                    if map.contains_key(&name) {
                        return Err(Diagnostic::new(
                            file,
                            key.span.start,
                            format!("'{name}' is already defined"),
                        ));
                    }
                    map.insert(name, value);
                }
            }
            Value::Object(map)
        }
        _ => node.to_json(),
    })
}

/// Whether any expression in `text` reads the context `name` (ignoring case).
pub fn text_reads(text: &str, name: &str) -> bool {
    hearth_expr::embedded_expressions(text)
        .into_iter()
        .any(|(_, source)| expression_reads(source, name))
}

/// Whether an `if:` condition (written with or without `${{ }}`) reads the context `name`.
pub(crate) fn condition_reads(condition: &str, name: &str) -> bool {
    if condition.contains("${{") {
        text_reads(condition, name)
    } else {
        expression_reads(condition, name)
    }
}

/// Whether any string in the tree reads the context `name`.
pub(crate) fn node_reads(node: &Node, name: &str) -> bool {
    match &node.value {
        YamlValue::String(s) => text_reads(s, name),
        YamlValue::Sequence(items) => items.iter().any(|item| node_reads(item, name)),
        YamlValue::Mapping(entries) => entries.iter().any(|(_, value)| node_reads(value, name)),
        _ => false,
    }
}

fn expression_reads(source: &str, name: &str) -> bool {
    let Ok(expression) = hearth_expr::Expression::parse(source, &ParseOptions::permissive()) else {
        return false;
    };
    let mut found = false;
    expression.root().walk(&mut |n| {
        if let ExprNode::NamedValue(value) = n {
            found |= hearth_expr::eq_ignore_case(value, name);
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_finds_contexts_in_templates_and_conditions() {
        assert!(text_reads("x ${{ fromJSON(needs.a.outputs.m) }}", "needs"));
        assert!(text_reads("${{ NEEDS.a.outputs.m }}", "needs"));
        assert!(!text_reads("${{ github.needs }}", "needs"));
        assert!(!text_reads("needs", "needs"));
        assert!(condition_reads("needs.a.result == 'success'", "needs"));
        assert!(condition_reads("${{ needs.a.outputs.x }}", "needs"));
        assert!(!condition_reads("success()", "needs"));
    }
}
