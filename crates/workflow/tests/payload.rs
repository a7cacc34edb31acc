//! Task payloads: the single-job workflows Gitea and Forgejo send to runners.
//!
//! Every `.yml` file in `tests/data/payloads/` is a payload as the servers'
//! go-yaml marshalling writes it, with its expectation beside it:
//!
//! - `name.expected.json` for a valid payload: a JSON object whose keys are
//!   compared with the summary [`summary`] builds (`job_id`, `name`, `needs`,
//!   `matrix`, `runs_on`, `timeout_minutes` and `steps` are required; the
//!   other keys of the summary are compared when present);
//! - `name.expected` for an invalid one: the exact diagnostics, one
//!   `file:line:col: error: message` line each, `file` being
//!   `payloads/name.yml`.
//!
//! A property test feeds random bytes and mutated payloads to the loader,
//! which must answer with diagnostics and never panic.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hearth_workflow::model::{OrExpr, StepKind};
use hearth_workflow::payload::SingleJob;
use hearth_workflow::Pos;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const REQUIRED_KEYS: &[&str] = &[
    "job_id",
    "name",
    "needs",
    "matrix",
    "runs_on",
    "timeout_minutes",
    "steps",
];

fn payload_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/payloads")
}

fn payload_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(payload_dir())
        .expect("reading tests/data/payloads")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

fn label(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    format!("payloads/{name}")
}

fn parse_file(path: &Path) -> Result<SingleJob, hearth_workflow::validate::Diagnostics> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    SingleJob::parse(&bytes, &label(path))
}

/// A number as JSON, whole numbers as integers so that `30` matches `30.0`.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        #[allow(clippy::cast_possible_truncation)]
        return json!(n as i64);
    }
    json!(n)
}

fn or_number(value: Option<&OrExpr<f64>>) -> Value {
    match value {
        None => Value::Null,
        Some(OrExpr::Value(n)) => number(*n),
        Some(OrExpr::Expr(text)) => json!(text.value),
    }
}

fn or_bool(value: Option<&OrExpr<bool>>) -> Value {
    match value {
        None => Value::Null,
        Some(OrExpr::Value(b)) => json!(b),
        Some(OrExpr::Expr(text)) => json!(text.value),
    }
}

fn kind(kind: &StepKind) -> &'static str {
    match kind {
        StepKind::Run { .. } => "run",
        StepKind::Uses { .. } => "uses",
        StepKind::Wait { .. } => "wait",
        StepKind::WaitAll => "wait-all",
        StepKind::Cancel { .. } => "cancel",
        StepKind::Parallel { .. } => "parallel",
    }
}

/// What the expectation files describe, computed from a loaded payload.
fn summary(task: &SingleJob) -> Map<String, Value> {
    let workflow = task.workflow();
    let job = task.job();
    let strategy = job.strategy.as_ref().and_then(OrExpr::value);
    let services: Vec<String> = match &job.services {
        Some(OrExpr::Value(services)) => services.iter().map(|(n, _)| n.value.clone()).collect(),
        _ => Vec::new(),
    };
    let service_cmd: Map<String, Value> = services
        .iter()
        .map(|name| (name.clone(), json!(task.service_cmd(name))))
        .collect();
    let steps: Vec<Value> = job
        .steps
        .iter()
        .map(|step| {
            json!({
                "name": step.name.as_ref().map(|t| &t.value),
                "id": step.id.as_ref().map(|t| &t.value),
                "kind": kind(&step.kind),
                "timeout_minutes": or_number(step.timeout_minutes.as_ref()),
                "continue_on_error": or_bool(step.continue_on_error.as_ref()),
            })
        })
        .collect();
    let summary = json!({
        "workflow_name": workflow.name.as_ref().map(|t| &t.value),
        "run_name": workflow.run_name.as_ref().map(|t| &t.value),
        "on_events": workflow.on.events.iter().map(|e| &e.name.value).collect::<Vec<_>>(),
        "job_id": task.job_id(),
        "name": job.name.as_ref().map(|t| &t.value),
        "needs": task.needs(),
        "matrix": task.matrix(),
        "runs_on": job.runs_on.as_ref().map(|r| r.labels.iter().map(|l| &l.value).collect::<Vec<_>>()),
        "timeout_minutes": or_number(job.timeout_minutes.as_ref()),
        "fail_fast": or_bool(strategy.and_then(|s| s.fail_fast.as_ref())),
        "max_parallel": or_number(strategy.and_then(|s| s.max_parallel.as_ref())),
        "cancel_in_progress": or_bool(job.concurrency.as_ref().and_then(|c| c.cancel_in_progress.as_ref())),
        "services": services,
        "service_cmd": service_cmd,
        "steps": steps,
        "warnings": task.warnings().iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    match summary {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object"),
    }
}

fn check_valid(path: &Path, expected_path: &Path) -> Result<(), String> {
    let text = fs::read_to_string(expected_path).map_err(|e| e.to_string())?;
    let expected: Value = serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
    let expected = expected.as_object().ok_or("expected an object")?;
    for key in REQUIRED_KEYS {
        if !expected.contains_key(*key) {
            return Err(format!("{} lacks '{key}'", expected_path.display()));
        }
    }
    let task = parse_file(path).map_err(|d| format!("rejected:\n{d}"))?;
    let actual = summary(&task);
    let mut problems = Vec::new();
    for (key, want) in expected {
        let Some(got) = actual.get(key) else {
            problems.push(format!("unknown key '{key}' in the expectation"));
            continue;
        };
        // Compare through the text to compare key order too.
        if format!("{got}") != format!("{want}") {
            problems.push(format!("{key}: expected {want}, got {got}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn check_invalid(path: &Path, expected_path: &Path) -> Result<(), String> {
    let expected = fs::read_to_string(expected_path).map_err(|e| e.to_string())?;
    let expected = expected.trim_end();
    match parse_file(path) {
        Ok(task) => Err(format!(
            "accepted as job '{}', expected:\n{expected}",
            task.job_id()
        )),
        Err(diagnostics) => {
            let actual = diagnostics.to_string();
            if actual == expected {
                Ok(())
            } else {
                Err(format!("expected:\n{expected}\nactual:\n{actual}"))
            }
        }
    }
}

#[test]
fn payload_files_match_their_expectations() {
    let mut valid = 0;
    let mut invalid = 0;
    let mut failures = Vec::new();
    for path in payload_files() {
        let json_path = path.with_extension("expected.json");
        let text_path = path.with_extension("expected");
        let result = match (json_path.exists(), text_path.exists()) {
            (true, false) => {
                valid += 1;
                check_valid(&path, &json_path)
            }
            (false, true) => {
                invalid += 1;
                check_invalid(&path, &text_path)
            }
            _ => Err("needs exactly one of .expected.json and .expected".to_owned()),
        };
        if let Err(problem) = result {
            failures.push(format!("{}: {problem}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(valid >= 10, "only {valid} valid payloads");
    assert!(invalid >= 8, "only {invalid} invalid payloads");
}

#[test]
fn step_indices_are_the_forges_after_null_steps_are_dropped() {
    let task = parse_file(&payload_dir().join("null-steps.yml")).expect("valid");
    let name = |i: usize| {
        task.step(i)
            .and_then(|s| s.name.as_ref())
            .map(|t| t.value.clone())
    };
    assert_eq!(name(0).as_deref(), Some("Checkout"));
    assert_eq!(name(1).as_deref(), Some("Lint"));
    assert!(task.step(2).is_none());
    // Positions still point into the payload: `- id: lint` is on line 12.
    let lint = task.step(1).expect("step 1");
    assert_eq!(lint.span.start, Pos::new(12, 15));
}

#[test]
fn normalised_values_keep_their_position_in_the_payload() {
    let source = "\"on\": push\njobs:\n    build:\n        runs-on: linux\n        steps:\n            - run: make\n        timeout-minutes: \"30\"\n        strategy:\n            fail-fast: maybe\n";
    let errors = SingleJob::parse(source.as_bytes(), "task").expect_err("fail-fast");
    assert_eq!(
        errors.to_string(),
        "task:9:24: error: 'jobs.build.strategy.fail-fast': expected a boolean, found a string"
    );
    let fixed = source.replace("maybe", "\"false\"");
    let task = SingleJob::parse(fixed.as_bytes(), "task").expect("valid");
    let job = task.job();
    assert!(matches!(job.timeout_minutes, Some(OrExpr::Value(n)) if n == 30.0));
    let strategy = job
        .strategy
        .as_ref()
        .and_then(OrExpr::value)
        .expect("strategy");
    assert!(matches!(strategy.fail_fast, Some(OrExpr::Value(false))));
}

#[test]
fn the_workflow_has_one_job_and_no_needs() {
    let task = parse_file(&payload_dir().join("needs-list.yml")).expect("valid");
    assert_eq!(task.workflow().jobs.len(), 1);
    assert!(task.job().needs.is_empty());
    assert_eq!(task.needs(), ["build", "test", "lint"]);
    assert_eq!(task.clone().into_workflow().jobs[0].id.value, "deploy");
}

#[test]
fn a_missing_on_means_no_trigger() {
    let task = SingleJob::parse(
        b"jobs:\n    a:\n        runs-on: x\n        steps:\n            - run: y\n",
        "t",
    )
    .expect("valid");
    assert!(task.workflow().on.events.is_empty());
    assert!(task.matrix().is_empty());
    assert!(task.service_cmd("none").is_none());
}

#[test]
fn invalid_utf8_is_reported_at_the_start() {
    let errors = SingleJob::parse(b"\xff\xfe", "t").expect_err("not UTF-8");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors.0[0].pos, Pos::START);
}

/// One random edit of a payload.
#[derive(Clone, Debug)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
    Token(usize, usize),
}

/// Fragments that move a payload towards the loader's edge cases.
const TOKENS: &[&str] = &[
    "null",
    "\"30\"",
    "\"true\"",
    "${{ ",
    " }}",
    "- ",
    ": ",
    "\n",
    "    ",
    "&a ",
    "*a",
    "<<: ",
    "[",
    "{",
    "'",
    "\"",
    "\t",
    "~",
    "jobs:",
    "needs:",
    "cmd:",
    "steps:",
    "strategy:",
    "matrix:",
    "- null\n",
    "\u{feff}",
    "on:",
    "__metadata: ",
    "{a: [1, 2]}",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Insert(at, b)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 1usize..80).prop_map(|(at, n)| Edit::Duplicate(at, n)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Token(at, t)),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let len = bytes.len();
    let at = |i: usize| i % (len + 1);
    match *edit {
        Edit::Replace(i, b) if len > 0 => bytes[i % len] = b,
        Edit::Replace(..) => {}
        Edit::Insert(i, b) => bytes.insert(at(i), b),
        Edit::Delete(i, n) => {
            let start = at(i);
            bytes.drain(start..(start + n).min(len));
        }
        Edit::Duplicate(i, n) => {
            let start = at(i);
            let copy = bytes[start..(start + n).min(len)].to_vec();
            bytes.splice(start..start, copy);
        }
        Edit::Truncate(i) => bytes.truncate(at(i)),
        Edit::Token(i, t) => {
            let start = at(i);
            bytes.splice(start..start, TOKENS[t].bytes());
        }
    }
}

fn valid_payloads() -> &'static [Vec<u8>] {
    static PAYLOADS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    PAYLOADS.get_or_init(|| {
        payload_files()
            .into_iter()
            .filter(|p| p.with_extension("expected.json").exists())
            .map(|p| fs::read(&p).expect("readable"))
            .collect()
    })
}

fn assert_well_formed(result: &Result<SingleJob, hearth_workflow::validate::Diagnostics>) {
    if let Err(diagnostics) = result {
        assert!(!diagnostics.is_empty());
        for d in diagnostics {
            assert_eq!(d.file, "fuzz");
            assert!(d.pos.line >= 1 && d.pos.col >= 1, "{d}");
            assert!(!d.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        assert_well_formed(&SingleJob::parse(&bytes, "fuzz"));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        assert_well_formed(&SingleJob::parse(text.as_bytes(), "fuzz"));
    }

    /// Text from YAML's punctuation and the payload's keys, which gets past
    /// the parser far more often than arbitrary characters do.
    #[test]
    fn yaml_like_text_never_panics(
        text in "(jobs|needs|steps|strategy|matrix|cmd|services|on|null|\"30\"|\\$\\{\\{|[a-z0-9:\\-\\[\\]{},\"' \n#&*!|>~]){0,120}",
    ) {
        assert_well_formed(&SingleJob::parse(text.as_bytes(), "fuzz"));
    }

    #[test]
    fn mutated_payloads_never_panic(
        file in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..8),
    ) {
        let payloads = valid_payloads();
        let mut bytes = file.get(payloads).clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        assert_well_formed(&SingleJob::parse(&bytes, "fuzz"));
    }
}
