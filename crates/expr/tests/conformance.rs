//! Expression cases, judged as GitHub's own cross-language driver judges them: GitHub's published
//! cases (`../shared/conformance/expressions`, read from there and never copied into this
//! repository; without the folder that test says so and passes), and Hearth's own cases in
//! `tests/cases/`, in the same format plus optional fields: `mode` (`expression`, `template` or
//! `if`), `status` (`success`, `failure`, `cancelled`), `functions` (the context-specific
//! functions allowed, all when absent) and `job_if` (parse as a job's `if:`, where `success()`
//! and `failure()` may name jobs).

use std::path::PathBuf;

use std::path::Path;

use hearth_expr::{
    Condition, ErrorKind, EvalContext, Expression, Object, ParseOptions, Status, Template, Value,
};
use serde_json::Value as Json;

fn conformance_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HEARTH_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    let expressions = dir.join("expressions");
    expressions.is_dir().then_some(expressions)
}

/// Whether a result matches the expected JSON: numbers by value, objects by key set.
fn json_matches(actual: &Value, expected: &Json) -> bool {
    match (actual, expected) {
        (Value::Null, Json::Null) => true,
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::Number(a), Json::Number(b)) => b.as_f64() == Some(*a),
        (Value::String(a), Json::String(b)) => **a == **b,
        (Value::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_matches(x, y))
        }
        (Value::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && b.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|x| json_matches(x, v)))
        }
        _ => false,
    }
}

/// Runs one case; `Err` describes how it failed.
fn run_case(case: &Json) -> Result<(), String> {
    let expr = case["expr"].as_str().ok_or("case has no expr")?;
    let contexts = match case.get("contexts") {
        Some(c) => Value::from_json(c),
        None => Value::object(Object::new()),
    };
    let contexts = contexts.as_object().cloned().unwrap_or_default();
    let names: Vec<&str> = contexts.keys().collect();
    let functions: Option<Vec<&str>> = case
        .get("functions")
        .and_then(Json::as_array)
        .map(|f| f.iter().filter_map(Json::as_str).collect());
    let options = ParseOptions {
        named_values: Some(&names),
        extra_functions: functions.as_deref(),
        status_function_args: case.get("job_if").and_then(Json::as_bool).unwrap_or(false),
    };
    let status = match case.get("status").and_then(Json::as_str) {
        None | Some("success") => Status::Success,
        Some("failure") => Status::Failure,
        Some("cancelled") => Status::Cancelled,
        Some(other) => return Err(format!("unknown status {other:?}")),
    };
    let context = EvalContext::new(&contexts).with_status(status);
    let outcome = match case.get("mode").and_then(Json::as_str) {
        None | Some("expression") => {
            Expression::parse(expr, &options).and_then(|e| e.evaluate(&context))
        }
        Some("template") => Template::parse(expr, &options).and_then(|t| t.evaluate(&context)),
        Some("if") => Condition::parse(expr, &options)
            .and_then(|c| c.evaluate(&context))
            .map(Value::Bool),
        Some(other) => return Err(format!("unknown mode {other:?}")),
    };

    match (case.get("err"), outcome) {
        (Some(err), Err(actual)) => {
            let kind = err["kind"].as_str().unwrap_or_default();
            let message = err["value"].as_str().unwrap_or_default();
            let rendered = actual.to_string();
            if actual.kind.name() == kind && rendered.contains(message) {
                Ok(())
            } else {
                Err(format!(
                    "expected {kind} error containing {message:?}, got {} error {rendered:?}",
                    actual.kind.name()
                ))
            }
        }
        (Some(err), Ok(value)) => Err(format!("expected error {err}, got {value:?}")),
        (None, Err(actual)) => Err(format!("unexpected error: {actual}")),
        (None, Ok(value)) => {
            let expected = &case["result"];
            let kind = expected["kind"].as_str().unwrap_or_default();
            if value.kind().name() == kind && json_matches(&value, &expected["value"]) {
                Ok(())
            } else {
                Err(format!(
                    "expected {expected}, got {} {:?}",
                    value.kind(),
                    value.to_json()
                ))
            }
        }
    }
}

/// Runs every case of every `.json` file in `dir`; returns how many ran and the failures.
fn run_folder(dir: &Path) -> (usize, Vec<String>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read cases dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();

    let (mut ran, mut failures) = (0, Vec::new());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read case file");
        let groups: serde_json::Map<String, Json> =
            serde_json::from_str(&text).expect("case file is a JSON object");
        for (group, cases) in groups {
            for case in cases.as_array().into_iter().flatten() {
                ran += 1;
                if let Err(why) = run_case(case) {
                    failures.push(format!(
                        "{}/{group}: {}\n    {why}",
                        file.file_name().unwrap_or_default().to_string_lossy(),
                        case["expr"]
                    ));
                }
            }
        }
    }
    (ran, failures)
}

fn assert_all_pass(what: &str, ran: usize, failures: &[String]) {
    println!("{what}: {ran} cases ran, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {ran} {what} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn github_expression_cases() {
    let Some(dir) = conformance_dir() else {
        eprintln!(
            "conformance: no expressions folder (set HEARTH_CONFORMANCE_DIR); skipping GitHub's cases"
        );
        return;
    };
    let (ran, failures) = run_folder(&dir);
    assert_all_pass("GitHub expression", ran, &failures);
    assert!(ran >= 1000, "expected GitHub's 1,020 cases, found {ran}");
}

#[test]
fn hearth_expression_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let (ran, failures) = run_folder(&dir);
    assert_all_pass("Hearth expression", ran, &failures);
    assert!(ran > 0, "no cases found in {}", dir.display());
}

#[test]
fn error_kinds_are_named_like_the_cases() {
    assert_eq!(ErrorKind::Lexing.name(), "lexing");
    assert_eq!(ErrorKind::Parsing.name(), "parsing");
    assert_eq!(ErrorKind::Evaluation.name(), "evaluation");
}
