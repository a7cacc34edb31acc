//! `hearth expr` as users run it.

use std::fs;

use assert_cmd::Command;

fn hearth() -> Command {
    Command::cargo_bin("hearth").expect("hearth binary is built")
}

fn contexts_file(dir: &tempfile::TempDir, json: &str) -> std::path::PathBuf {
    let path = dir.path().join("contexts.json");
    fs::write(&path, json).expect("write contexts");
    path
}

#[test]
fn prints_kind_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = contexts_file(
        &dir,
        r#"{"github": {"event_name": "push", "ref": "refs/tags/v1.2.0"}}"#,
    );
    hearth()
        .args(["expr", "--contexts"])
        .arg(&ctx)
        .arg("github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')")
        .assert()
        .success()
        .stdout("{\"kind\": \"Boolean\", \"value\": true}\n");
    hearth()
        .args(["expr", "fromJSON('{\"a\": [1, 2.5, null]}')"])
        .assert()
        .success()
        .stdout("{\"kind\": \"Object\", \"value\": {\"a\":[1,2.5,null]}}\n");
}

#[test]
fn errors_go_to_stderr_with_githubs_message() {
    hearth()
        .args(["expr", "1 <"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            "Unexpected end of expression: '<'. Located at position 3 within expression: 1 <\n",
        );
    hearth()
        .args(["expr", "format('{0}')"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "The following format string references more arguments than were supplied: {0}",
        ));
}

#[test]
fn only_names_from_the_contexts_file_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = contexts_file(&dir, r#"{"github": {}}"#);
    hearth()
        .args(["expr", "--contexts"])
        .arg(&ctx)
        .arg("secrets.TOKEN")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "Unrecognized named-value: 'secrets'. Located at position 1",
        ));
}

#[test]
fn if_mode_applies_the_implicit_success() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = contexts_file(&dir, r#"{"github": {"ref": "refs/heads/main"}}"#);
    for (status, condition, expected) in [
        ("success", "github.ref == 'refs/heads/main'", "true"),
        ("failure", "github.ref == 'refs/heads/main'", "false"),
        (
            "failure",
            "failure() && github.ref == 'refs/heads/main'",
            "true",
        ),
        ("cancelled", "${{ always() }}", "true"),
    ] {
        hearth()
            .args(["expr", "--mode", "if", "--status", status, "--contexts"])
            .arg(&ctx)
            .arg(condition)
            .assert()
            .success()
            .stdout(format!(
                "{{\"kind\": \"Boolean\", \"value\": {expected}}}\n"
            ));
    }
}

#[test]
fn hash_files_reads_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("src/nested")).unwrap();
    fs::write(dir.path().join("src/a.rs"), "a").unwrap();
    fs::write(dir.path().join("src/nested/b.rs"), "b").unwrap();
    fs::write(dir.path().join("README"), "r").unwrap();

    let run = |pattern: &str| {
        let output = hearth()
            .args(["expr", "--workspace"])
            .arg(dir.path())
            .arg(format!("hashFiles('{pattern}')"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    // GitHub's hash of hashes, files in walk order: src/a.rs, then src/nested/b.rs.
    let expected = {
        use sha2::{Digest, Sha256};
        let mut outer = Sha256::new();
        outer.update(Sha256::digest(b"a"));
        outer.update(Sha256::digest(b"b"));
        let hex: String = outer
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{{\"kind\": \"String\", \"value\": \"{hex}\"}}\n")
    };
    let both = run("src/**/*.rs");
    assert_eq!(both, expected);
    assert_ne!(
        both,
        run("src/*.rs"),
        "the nested file must change the hash"
    );
    assert_eq!(both, run("src"), "a directory matches everything below it");
    assert_eq!(run("**/*.go"), "{\"kind\": \"String\", \"value\": \"\"}\n");
}

#[test]
fn bad_contexts_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = contexts_file(&dir, "[1, 2]");
    hearth()
        .args(["expr", "--contexts"])
        .arg(&ctx)
        .arg("1")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "must hold a JSON object mapping context names to values, not Array",
        ));
    hearth()
        .args(["expr", "--contexts", "/nonexistent/ctx.json", "1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot read contexts file"));
}

#[test]
fn version_and_help() {
    hearth()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::starts_with("hearth "));
    hearth()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicates::str::contains("Forgejo Actions"));
}
