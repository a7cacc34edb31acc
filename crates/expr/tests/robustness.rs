//! The parser and evaluator must never panic or overflow the stack, whatever the input.

use hearth_expr::{Condition, EvalContext, Expression, Object, ParseOptions, Template, Value};
use proptest::prelude::*;

fn contexts() -> Object {
    let json = serde_json::json!({
        "github": {"ref": "refs/heads/main", "event": {"commits": [{"id": "a"}, {"id": "b"}]}},
        "matrix": {"os": "linux", "node": 20},
        "env": {"CI": "true"},
    });
    Value::from_json(&json)
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// Parses and evaluates; the outcome does not matter, only that there is one.
fn exercise(source: &str) {
    let contexts = contexts();
    let context = EvalContext::new(&contexts);
    if let Ok(expr) = Expression::parse(source, &ParseOptions::permissive()) {
        let _ = expr.evaluate(&context);
    }
    if let Ok(template) = Template::parse(source, &ParseOptions::permissive()) {
        let _ = template.evaluate(&context);
    }
    if let Ok(condition) = Condition::parse(source, &ParseOptions::permissive()) {
        let _ = condition.evaluate(&context);
    }
}

/// Tokens that make up expressions, so random input reaches deep into the parser.
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "(",
        ")",
        "[",
        "]",
        ",",
        ".",
        "*",
        "!",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "'a'",
        "'''",
        "'",
        "1",
        "-2.5",
        "0xff",
        "NaN",
        "Infinity",
        "null",
        "true",
        "github",
        "matrix",
        "env",
        "ref",
        "event",
        "commits",
        "format(",
        "fromJSON(",
        "toJSON(",
        "contains(",
        "join(",
        "case(",
        "startsWith(",
        "success(",
        "hashFiles(",
        "'{0}'",
        "'{'",
        "'}}'",
        "'[1,2]'",
        "${{",
        "}}",
        " ",
        "😊",
        "=",
        "&",
        "|",
        "@",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, .. ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(token(), 0..40)) {
        exercise(&tokens.concat());
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,80}") {
        exercise(&text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let max = hearth_expr::MAX_LENGTH;
    let half = max / 2 - 1;
    let cases = [
        format!("{}1{}", "(".repeat(half), ")".repeat(half)),
        format!("{}1", "(".repeat(max - 1)),
        "!".repeat(max - 5) + "true",
        "a[".repeat(max / 2 - 1),
        "format(".repeat(max / 7),
        format!("{}1{}", "fromJSON(toJSON(".repeat(1000), "))".repeat(1000)),
        "a.".repeat(max / 2 - 1) + "b",
        "!(".repeat(max / 2 - 1),
    ];
    for source in &cases {
        exercise(source);
    }
    // Deep parentheses alone add no depth, as in GitHub.
    let grouped = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let value = Expression::parse(&grouped, &ParseOptions::permissive())
        .and_then(|e| e.evaluate(&EvalContext::new(&Object::new())));
    assert!(matches!(value, Ok(Value::Number(n)) if n == 1.0));
}

#[test]
fn overlong_expressions_are_refused() {
    let source = "1 || ".repeat(5000) + "1";
    let error = Expression::parse(&source, &ParseOptions::permissive()).unwrap_err();
    assert!(error
        .message
        .contains("Exceeded max expression length 21000"));
}
