//! `hearth exec` with actions from other repositories, fetched by the real `git` from
//! `--default-actions-url`.

#[path = "common/action_repos.rs"]
mod action_repos;

use std::path::Path;
use std::process::Command;

fn exec(repo: &Path, actions: &Path, cache: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["exec", "-C"])
        .arg(repo)
        .arg("--default-actions-url")
        .arg(format!("file://{}", actions.display()))
        .env("XDG_CACHE_HOME", cache)
        .output()
        .expect("hearth exec runs")
}

fn workflow_repo(dir: &Path, steps: &str) {
    action_repos::make_repo(
        dir,
        "project",
        &[(
            ".forgejo/workflows/ci.yml",
            &format!("on: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n{steps}"),
        )],
        "start",
    );
}

#[test]
fn remote_composite_and_javascript_actions_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let actions = dir.path().join("actions");
    action_repos::make_actions(&actions);
    workflow_repo(dir.path(), action_repos::STEPS);
    let cache = dir.path().join("cache");
    for run in 0..2 {
        let output = exec(&dir.path().join("project"), &actions, &cache);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "run {run}: {stdout}");
        let at = |line: &str| {
            stdout
                .find(line)
                .unwrap_or_else(|| panic!("run {run}: no {line:?} in {stdout}"))
        };
        // The pre runs when the job starts, before the first step; its state reaches main.
        assert!(at("node pre Ann") < at("hello forge"));
        assert!(at("hello forge") < at("hello from node Ann, state from-pre"));
        assert!(at("hello from node Ann, state from-pre") < at("node post"));
    }
    // The second run fetched again but checked out nothing new.
    let commits = std::fs::read_dir(cache.join("hearth/actions/acme/node-hello"))
        .expect("cache")
        .count();
    assert_eq!(commits, 2);
}

#[test]
fn an_action_that_cannot_be_fetched_fails_its_step_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let actions = dir.path().join("actions");
    std::fs::create_dir_all(&actions).expect("folder");
    workflow_repo(dir.path(), "      - uses: acme/missing@v1\n");
    let output = exec(
        &dir.path().join("project"),
        &actions,
        &dir.path().join("cache"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("cannot fetch the action `acme/missing@v1`: git fetch"),
        "{stdout}"
    );
}

#[test]
fn checkout_of_the_repository_itself_is_not_even_fetched() {
    // `hearth exec` skips it (the workspace is a copy of the repository), so it must not reach
    // for the network when the job starts either.
    let dir = tempfile::tempdir().expect("temp dir");
    let actions = dir.path().join("actions");
    std::fs::create_dir_all(&actions).expect("folder");
    workflow_repo(dir.path(), "      - uses: actions/checkout@v4\n");
    let cache = dir.path().join("cache");
    let output = exec(&dir.path().join("project"), &actions, &cache);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(!cache.join("hearth/actions/actions/checkout").exists());
}
