//! The planner, driven by data: every `tests/data/plans/NAME.yml` is planned and compared with
//! `NAME.expected.json`:
//!
//! ```json
//! {
//!   "jobs": [ ...elements as `hearth plan --json` prints them, deferred jobs with "deferred"... ],
//!   "skipped": { "job-id": "reason" },
//!   "error": "file:line:col: error: message"      // instead of the two above, when planning fails
//! }
//! ```
//!
//! An optional `NAME.run.json` gives the run: `{"event": "push", "ref": "refs/heads/x",
//! "payload": {...}, "changed_paths": [...], "github": {...}, "vars": {...}, "inputs": {...}}`.
//! With an `event`, the workflow must be triggered by it (or `"not_triggered"` in the
//! expected file gives the reason it is not).

use std::fs;
use std::path::{Path, PathBuf};

use hearth_expr::Value as ExprValue;
use hearth_workflow::filters::EventInfo;
use hearth_workflow::model::Workflow;
use hearth_workflow::plan::{self, JobPlan, RunContext};
use serde_json::{json, Map, Value};

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/plans");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path) -> Option<Value> {
    let text = fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn object(value: Option<&Value>) -> ExprValue {
    ExprValue::from_json(value.unwrap_or(&Value::Object(Map::new())))
}

fn actual(path: &Path) -> Value {
    let file = format!("plans/{}", path.file_name().unwrap().to_string_lossy());
    let source = fs::read_to_string(path).expect("read case");
    let workflow = match Workflow::parse(&source, &file) {
        Ok(w) => w,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let run = read_json(&path.with_extension("run.json")).unwrap_or(json!({}));
    if let Some(event) = run.get("event").and_then(Value::as_str) {
        let payload = run.get("payload").cloned().unwrap_or(json!({}));
        let changed: Option<Vec<String>> = run
            .get("changed_paths")
            .map(|v| serde_json::from_value(v.clone()).expect("changed_paths"));
        let info = EventInfo {
            name: event,
            payload: &payload,
            git_ref: run.get("ref").and_then(Value::as_str),
            changed_paths: changed.as_deref(),
        };
        if let Err(reason) = plan::triggered_by(&workflow, &info) {
            return json!({ "not_triggered": reason });
        }
    }
    let context = RunContext {
        github: object(run.get("github")),
        vars: object(run.get("vars")),
        inputs: object(run.get("inputs")),
    };
    let entries = match plan::plan(&workflow, &file, &context) {
        Ok(entries) => entries,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let mut jobs = Vec::new();
    let mut skipped = Map::new();
    for entry in entries {
        match entry.plan {
            JobPlan::Run(instances) => jobs.extend(instances.iter().map(|j| j.to_json(&file))),
            JobPlan::Deferred { job, reason } => {
                let mut element = job.to_json(&file);
                element["deferred"] = Value::from(reason);
                jobs.push(element);
            }
            JobPlan::Skipped { reason } => {
                skipped.insert(entry.job_id, Value::from(reason));
            }
        }
    }
    json!({ "jobs": jobs, "skipped": skipped })
}

#[test]
fn plans_match_their_expected_files() {
    let cases = cases();
    assert!(cases.len() >= 15, "only {} plan cases", cases.len());
    let mut failures = Vec::new();
    for path in cases {
        let actual = actual(&path);
        let expected_path = path.with_extension("expected.json");
        let Some(mut expected) = read_json(&expected_path) else {
            // `HEARTH_BLESS=1` writes the missing expected files, to be reviewed by hand.
            if std::env::var_os("HEARTH_BLESS").is_some() {
                let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
                fs::write(&expected_path, text).expect("write expected file");
                continue;
            }
            failures.push(format!(
                "{}: no expected file; actual:\n{}",
                path.display(),
                serde_json::to_string_pretty(&actual).unwrap()
            ));
            continue;
        };
        if expected.get("jobs").is_some() && expected.get("skipped").is_none() {
            expected["skipped"] = json!({});
        }
        if actual != expected {
            failures.push(format!(
                "{}:\n  expected: {}\n  actual:   {}",
                path.display(),
                serde_json::to_string_pretty(&expected).unwrap(),
                serde_json::to_string_pretty(&actual).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Once its needs have run, a deferred job expands with their real outputs, and each instance
/// gets its `strategy` context.
#[test]
fn deferred_matrix_expands_when_needs_outputs_are_known() {
    let source = r#"
on: push
jobs:
  setup:
    runs-on: linux
    steps: [{run: 'true'}]
  build:
    needs: setup
    strategy:
      max-parallel: ${{ fromJSON(needs.setup.outputs.parallel) }}
      fail-fast: false
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    runs-on: ${{ matrix.os }}
    steps: [{run: 'true'}]
"#;
    let workflow = Workflow::parse(source, "w.yml").expect("valid");
    let needs = ExprValue::from_json(&json!({
        "setup": {"result": "success", "outputs": {"matrix": "{\"os\": [\"a\", \"b\", \"c\"]}", "parallel": "2"}}
    }));
    let mut contexts = hearth_expr::Object::new();
    contexts.insert("github", hearth_expr::Object::new());
    contexts.insert("needs", needs);
    let ids = vec!["setup".to_owned()];
    let job = workflow.job("build").expect("job");
    let context = plan::JobContext {
        contexts: &contexts,
        needs: &ids,
        needs_outputs_known: true,
    };
    let JobPlan::Run(jobs) = plan::expand_job("w.yml", job, &context).expect("expands") else {
        panic!("not expanded");
    };
    let names: Vec<_> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["build (a)", "build (b)", "build (c)"]);
    assert_eq!(jobs[2].runs_on, ["c"]);
    let strategy = jobs[1].strategy;
    assert_eq!(
        (
            strategy.job_index,
            strategy.job_total,
            strategy.max_parallel,
            strategy.fail_fast
        ),
        (1, 3, 2, false)
    );

    // Before the needs ran, the same job waits.
    let early = plan::JobContext {
        needs_outputs_known: false,
        ..context
    };
    assert!(matches!(
        plan::expand_job("w.yml", job, &early),
        Ok(JobPlan::Deferred { .. })
    ));
}

/// A failing expression is an error at its position, not a panic or a silent skip.
#[test]
fn expression_errors_point_at_the_expression() {
    let source =
        "on: push\njobs:\n  a:\n    runs-on: ${{ fromJSON('{') }}\n    steps: [{run: 'true'}]\n";
    let workflow = Workflow::parse(source, "w.yml").expect("valid");
    let error = plan::plan(&workflow, "w.yml", &RunContext::default()).expect_err("fails");
    let text = error.to_string();
    assert!(text.starts_with("w.yml:4:14: error: "), "{text}");
}
