//! Runs every workflow and action in `tests/data`: the valid ones must load
//! without a diagnostic, and each invalid one must produce exactly the
//! diagnostics in its sibling `.expected` file.
//!
//! To add a case, drop a `.yml` file into the right folder; for an invalid
//! one, also write `name.expected` with one `file:line:col: error: message`
//! line per diagnostic, where `file` is the path relative to `tests/data`.

use std::fs;
use std::path::{Path, PathBuf};

use hearth_workflow::model::{Action, Workflow};
use hearth_workflow::validate::Diagnostics;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn yaml_files(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(data_dir().join(folder))
        .unwrap_or_else(|e| panic!("reading tests/data/{folder}: {e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(folder: &str, path: &Path, as_action: bool) -> Result<(), Diagnostics> {
    let source = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let label = format!("{folder}/{name}");
    if as_action {
        Action::parse(&source, &label).map(drop)
    } else {
        Workflow::parse(&source, &label).map(drop)
    }
}

fn check_valid(folder: &str, as_action: bool, minimum: usize) {
    let files = yaml_files(folder);
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| load(folder, path, as_action).err().map(|d| d.to_string()))
        .collect();
    assert!(
        failures.is_empty(),
        "valid files rejected:\n{}",
        failures.join("\n")
    );
    assert!(
        files.len() >= minimum,
        "only {} files in {folder}",
        files.len()
    );
}

fn check_invalid(folder: &str, as_action: bool, minimum: usize) {
    let files = yaml_files(folder);
    let mut failures = Vec::new();
    for path in &files {
        let expected_path = path.with_extension("expected");
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let expected = expected.trim_end();
        match load(folder, path, as_action) {
            Ok(()) => failures.push(format!(
                "{}: accepted, expected:\n{expected}",
                path.display()
            )),
            Err(diagnostics) => {
                let actual = diagnostics.to_string();
                if actual != expected {
                    failures.push(format!(
                        "{}:\n  expected:\n{expected}\n  actual:\n{actual}",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        files.len() >= minimum,
        "only {} files in {folder}",
        files.len()
    );
}

#[test]
fn valid_workflows_load() {
    check_valid("workflows", false, 50);
}

#[test]
fn invalid_workflows_are_rejected_with_the_expected_diagnostics() {
    check_invalid("invalid", false, 30);
}

#[test]
fn valid_actions_load() {
    check_valid("actions", true, 1);
}

#[test]
fn invalid_actions_are_rejected_with_the_expected_diagnostics() {
    check_invalid("invalid-actions", true, 1);
}
