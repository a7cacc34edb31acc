//! `hearth validate` and `hearth plan` as users run them, on repositories made in temporary
//! folders (with the real `git` where the repository matters).

use std::fs;
use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{json, Value};

fn hearth(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("hearth").expect("hearth binary is built");
    cmd.current_dir(dir);
    cmd
}

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

const VALID: &str =
    "on: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: make\n";
const INVALID: &str =
    "on: push\njobs:\n  build:\n    runs-on: linux\n    stepz:\n      - run: make\n";

#[test]
fn validate_prefers_the_forgejo_folder_like_the_forges() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".forgejo/workflows/ci.yml", VALID);
    write(dir.path(), ".github/workflows/ci.yml", INVALID);
    hearth(dir.path())
        .arg("validate")
        .assert()
        .success()
        .stderr("1 file checked, no problems\n");

    fs::remove_dir_all(dir.path().join(".forgejo")).unwrap();
    write(dir.path(), ".gitea/workflows/ci.yaml", VALID);
    hearth(dir.path()).arg("validate").assert().success();

    fs::remove_dir_all(dir.path().join(".gitea")).unwrap();
    hearth(dir.path()).arg("validate").assert().code(1);
}

#[test]
fn validate_prints_every_problem_with_its_position_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "wf/a.yml", INVALID);
    write(dir.path(), "wf/b.yml", VALID);
    write(dir.path(), "wf/nested/c.yml", INVALID); // not read: folders are not recursed
    fs::write(
        dir.path().join("wf/d.yaml"),
        b"on: push\njobs:\n  x: \xff\n",
    )
    .unwrap();
    hearth(dir.path())
        .args(["validate", "wf"])
        .assert()
        .code(1)
        .stdout(
            "wf/a.yml:5:5: error: unknown key 'stepz' in job 'build'; did you mean 'steps'?\n\
             wf/d.yaml:3:6: error: the file is not UTF-8 text\n",
        )
        .stderr("2 errors in 2 of 3 files\n");
}

#[test]
fn validate_checks_action_files_as_actions() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "action.yml",
        "name: hello\nruns:\n  using: node20\n  main: index.js\n",
    );
    hearth(dir.path())
        .args(["validate", "action.yml"])
        .assert()
        .success();
    write(
        dir.path(),
        "action.yml",
        "name: hello\nruns:\n  using: node20\n",
    );
    hearth(dir.path())
        .args(["validate", "action.yml"])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with("action.yml:3:3: error: "));
}

#[test]
fn validate_without_workflows_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    hearth(dir.path())
        .arg("validate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no workflow folder in .: looked for .forgejo/workflows, .gitea/workflows, .github/workflows",
        ));
}

#[test]
fn plan_json_lists_githubs_matrix_example_in_githubs_order() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".github/workflows/matrix.yml",
        "on: push
jobs:
  example_matrix:
    strategy:
      matrix:
        os: [windows-latest, ubuntu-latest]
        node: [14, 16]
        include:
          - os: windows-latest
            node: 16
            npm: 6
        exclude:
          - os: windows-latest
            node: 14
    runs-on: ${{ matrix.os }}
    steps:
      - run: npm test
  after:
    needs: example_matrix
    runs-on: [self-hosted, linux]
    steps:
      - run: echo done
",
    );
    let output = hearth(dir.path())
        .args(["plan", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let wf = ".github/workflows/matrix.yml";
    assert_eq!(
        plan,
        json!([
            {"workflow": wf, "job": "example_matrix", "name": "example_matrix (windows-latest, 16)",
             "matrix": {"os": "windows-latest", "node": 16, "npm": 6}, "runs_on": ["windows-latest"], "needs": []},
            {"workflow": wf, "job": "example_matrix", "name": "example_matrix (ubuntu-latest, 14)",
             "matrix": {"os": "ubuntu-latest", "node": 14}, "runs_on": ["ubuntu-latest"], "needs": []},
            {"workflow": wf, "job": "example_matrix", "name": "example_matrix (ubuntu-latest, 16)",
             "matrix": {"os": "ubuntu-latest", "node": 16}, "runs_on": ["ubuntu-latest"], "needs": []},
            {"workflow": wf, "job": "after", "name": "after", "matrix": null,
             "runs_on": ["self-hosted", "linux"], "needs": ["example_matrix"]},
        ])
    );
}

#[test]
fn plan_honours_filters_unless_told_to_ignore_them() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wf/release.yml",
        "name: Release\non:\n  push:\n    tags: ['v*']\njobs:\n  publish:\n    runs-on: linux\n    steps:\n      - run: make publish\n",
    );
    write(dir.path(), "branch.json", r#"{"ref": "refs/heads/main"}"#);
    write(dir.path(), "tag.json", r#"{"ref": "refs/tags/v1.0"}"#);

    hearth(dir.path())
        .args(["plan", "-W", "wf", "-e", "branch.json"])
        .assert()
        .success()
        .stdout(
            "wf/release.yml (Release): not run: a branch was pushed but only tags are filtered\n",
        );
    hearth(dir.path())
        .args(["plan", "-W", "wf", "-e", "branch.json", "--json"])
        .assert()
        .success()
        .stdout("[]\n");
    hearth(dir.path())
        .args(["plan", "-W", "wf/release.yml", "-e", "tag.json"])
        .assert()
        .success()
        .stdout("wf/release.yml (Release): runs on push\n  publish  runs-on: linux\n");
    hearth(dir.path())
        .args(["plan", "-W", "wf", "-e", "branch.json", "--ignore-filters"])
        .assert()
        .success()
        .stdout(predicate::str::contains("publish  runs-on: linux"));
    hearth(dir.path())
        .args(["plan", "-W", "wf", "pull_request", "--ignore-filters"])
        .assert()
        .success()
        .stdout("wf/release.yml (Release): not run: the workflow does not run on `pull_request`\n");
}

#[test]
fn plan_reads_the_repository_from_git_and_vars_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let status = Process::new("git")
            .args(args)
            .current_dir(dir.path())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "trunk"]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://codeberg.org/acme/app.git",
    ]);
    write(
        dir.path(),
        ".forgejo/workflows/ci.yml",
        "on:\n  push:\n    branches: [trunk]
jobs:
  ours:
    if: github.repository == 'acme/app' && github.ref_name == 'trunk'
    runs-on: ${{ vars.RUNNER }}
    steps:
      - run: make
  forks:
    if: github.repository_owner != 'acme'
    runs-on: linux
    steps:
      - run: make
",
    );
    hearth(dir.path())
        .args(["plan", "--var", "RUNNER=docker"])
        .assert()
        .success()
        .stdout(
            ".forgejo/workflows/ci.yml: runs on push\n  \
             ours   runs-on: docker\n  \
             forks  skipped: `if: github.repository_owner != 'acme'` is false\n",
        );
}

#[test]
fn plan_reports_invalid_workflows_and_bad_payloads() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "wf/bad.yml", INVALID);
    write(dir.path(), "wf/good.yml", VALID);
    hearth(dir.path())
        .args(["plan", "-W", "wf"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "wf/bad.yml:5:5: error: unknown key 'stepz'",
        ))
        .stdout("wf/good.yml: runs on push\n  build  runs-on: linux\n");
    write(dir.path(), "event.json", "[1]");
    hearth(dir.path())
        .args(["plan", "-W", "wf/good.yml", "-e", "event.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("must be a JSON object"));
    hearth(dir.path())
        .args(["plan", "-W", "wf/good.yml", "--var", "novalue"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected NAME=VALUE"));
}

/// A job that calls a reusable workflow says which, in the text and in the JSON.
#[test]
fn plan_names_the_workflow_a_job_calls() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  shared:\n    uses: ./.github/workflows/build.yml\n  remote:\n    uses: acme/ci/.github/workflows/lint.yml@v2\n  after:\n    needs: [shared, remote]\n    runs-on: linux\n    steps:\n      - run: echo done\n",
    );
    write(
        dir.path(),
        ".github/workflows/build.yml",
        "on: workflow_call\njobs:\n  b:\n    runs-on: linux\n    steps:\n      - run: make\n",
    );
    let output = hearth(dir.path()).args(["plan"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("  shared  calls ./.github/workflows/build.yml\n"),
        "{text}"
    );
    assert!(
        text.contains("  remote  calls acme/ci/.github/workflows/lint.yml@v2\n"),
        "{text}"
    );
    assert!(
        text.contains("  after   runs-on: linux  needs: shared, remote\n"),
        "{text}"
    );

    let output = hearth(dir.path())
        .args(["plan", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan[0]["uses"], json!("./.github/workflows/build.yml"));
    assert_eq!(
        plan[1]["uses"],
        json!("acme/ci/.github/workflows/lint.yml@v2")
    );
    assert_eq!(plan[2].get("uses"), None);
}
