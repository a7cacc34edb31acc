//! Tests of `hearth_workflow::filters`, driven by the case files in
//! `tests/data/filters/`. Every test name starts with `filters_` so that
//! `cargo test -p hearth-workflow filters` selects them.

mod fuzz;

use hearth_workflow::filters::{
    triggered_by, validate_on, workflow_triggers, EventFilter, EventInfo, Pattern, PatternList,
    SkipReason, DEFAULT_PULL_REQUEST_TYPES,
};
use serde_json::{json, Value};

fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/filters/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cases(file: &Value) -> &Vec<Value> {
    file["cases"].as_array().expect("a `cases` array")
}

fn strs(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn filters_pattern_cases() {
    let file = data("patterns.json");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases(&file) {
        let patterns = strs(&case["patterns"]);
        let list = match PatternList::new(&patterns) {
            Ok(list) => list,
            Err(e) => {
                failures.push(format!("{patterns:?}: does not compile: {e}"));
                continue;
            }
        };
        for (key, expected) in [("match", true), ("no_match", false)] {
            for input in strs(&case[key]) {
                checked += 1;
                if list.selects(&input) != expected {
                    let regexes: Vec<&str> = list.patterns().iter().map(Pattern::regex).collect();
                    failures.push(format!(
                        "[{}] {patterns:?} on {input:?}: expected {expected} (regexes {regexes:?})",
                        case["source"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} inputs checked");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn filters_invalid_patterns() {
    let file = data("invalid_patterns.json");
    let mut failures = Vec::new();
    for case in cases(&file) {
        let pattern = case["pattern"].as_str().expect("pattern");
        match Pattern::new(pattern) {
            Ok(p) => failures.push(format!("{pattern:?} compiled to {}", p.regex())),
            Err(e) => {
                let position = case["position"].as_u64().expect("position") as usize;
                let message = case["message"].as_str().expect("message");
                if e.position != position || !e.to_string().contains(message) {
                    failures.push(format!(
                        "{pattern:?}: got `{e}` at {}, expected {message:?} at {position}",
                        e.position
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn filters_event_cases() {
    let file = data("events.json");
    let mut failures = Vec::new();
    for case in cases(&file) {
        let name = case["name"].as_str().expect("name");
        let triggers = match workflow_triggers(&case["on"]) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: on: does not parse: {e}"));
                continue;
            }
        };
        let null = Value::Null;
        let payload = case.get("payload").unwrap_or(&null);
        let mut paths = case.get("paths").map(strs);
        if let Some(n) = case.get("generated_paths").and_then(Value::as_u64) {
            let mut generated: Vec<String> = (0..n).map(|i| format!("gen/file{i}.txt")).collect();
            generated.extend(case.get("then_paths").map(strs).unwrap_or_default());
            paths = Some(generated);
        }
        let event = EventInfo {
            name: case["event"].as_str().expect("event"),
            payload,
            git_ref: case.get("ref").and_then(Value::as_str),
            changed_paths: paths.as_deref(),
        };
        let results: Vec<Result<(), SkipReason>> =
            triggers.iter().map(|t| t.check(&event)).collect();
        let runs = results.iter().any(Result::is_ok);
        let expected = case["runs"].as_bool().expect("runs");
        if runs != expected {
            failures.push(format!("{name}: expected runs={expected}, got {results:?}"));
            continue;
        }
        if runs != triggered_by(&case["on"], &event).expect("parses") {
            failures.push(format!("{name}: triggered_by disagrees"));
        }
        if let Some(reason) = case.get("reason").and_then(Value::as_str) {
            let texts: Vec<String> = results
                .iter()
                .filter_map(|r| r.as_ref().err().map(ToString::to_string))
                .collect();
            if !texts.iter().any(|t| t.contains(reason)) {
                failures.push(format!("{name}: no reason contains {reason:?}: {texts:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn filters_validation_errors() {
    let file = data("errors.json");
    let mut failures = Vec::new();
    for case in cases(&file) {
        let name = case["name"].as_str().expect("name");
        let expected = strs(&case["errors"]);
        let got: Vec<String> = validate_on(&case["on"])
            .iter()
            .map(ToString::to_string)
            .collect();
        let ok = got.len() == expected.len()
            && got
                .iter()
                .zip(&expected)
                .all(|(g, e)| g.contains(e.as_str()));
        if !ok {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
        match (workflow_triggers(&case["on"]), expected.first()) {
            (Ok(_), None) => {}
            (Err(e), Some(first)) if e.to_string().contains(first.as_str()) => {}
            (other, _) => failures.push(format!("{name}: workflow_triggers gave {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn filters_from_json_and_validate_agree() {
    let config = json!({"branches": ["!a"], "branches-ignore": "b", "tags": "["});
    let all = EventFilter::validate("push", &config);
    assert_eq!(all.len(), 3, "{all:?}");
    let first = EventFilter::from_json("push", &config).expect_err("invalid");
    assert_eq!(first, all[0]);
}

#[test]
fn filters_parsed_shape() {
    let triggers = workflow_triggers(&json!({
        "push": {"branches": "main", "tags": ["v*", "!v0*"], "paths-ignore": ["docs/**"]},
        "pull_request": {"types": "closed"},
        "workflow_run": {"workflows": ["Build"]},
        "workflow_dispatch": {"inputs": {}},
    }))
    .expect("valid");
    let events: Vec<&str> = triggers.iter().map(|t| t.event.as_str()).collect();
    assert_eq!(
        events,
        ["push", "pull_request", "workflow_run", "workflow_dispatch"]
    );
    let push = &triggers[0];
    let sources = |l: &Option<PatternList>| -> Vec<String> {
        l.as_ref()
            .map(|l| l.patterns().iter().map(|p| p.as_str().to_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(sources(&push.branches), ["main"]);
    assert_eq!(sources(&push.tags), ["v*", "!v0*"]);
    assert!(push
        .tags
        .as_ref()
        .is_some_and(|t| t.patterns()[1].is_negative()));
    assert_eq!(sources(&push.paths_ignore), ["docs/**"]);
    assert!(push.branches_ignore.is_none() && push.paths.is_none() && push.types.is_none());
    assert_eq!(
        triggers[1].types.as_deref(),
        Some(&["closed".to_owned()][..])
    );
    assert_eq!(sources(&triggers[2].workflows), ["Build"]);
    assert_eq!(
        DEFAULT_PULL_REQUEST_TYPES,
        ["opened", "synchronize", "reopened"]
    );
}

#[test]
fn filters_refs_heads_input_for_branch_patterns() {
    // A full ref and its short name are filtered alike; the `refs/heads/`
    // prefix is never seen by patterns.
    let filter = EventFilter::from_json("push", &json!({"branches": ["feature/*"]})).expect("ok");
    let payload = json!({});
    for (git_ref, expected) in [
        ("refs/heads/feature/a", true),
        ("feature/a", true),
        ("refs/heads/feature/a/b", false),
        ("refs/tags/feature/a", false),
    ] {
        let event = EventInfo {
            name: "push",
            payload: &payload,
            git_ref: Some(git_ref),
            changed_paths: None,
        };
        assert_eq!(filter.matches(&event), expected, "{git_ref}");
    }
}
