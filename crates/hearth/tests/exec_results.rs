//! `hearth exec` serves its jobs at `ACTIONS_RESULTS_URL` what GitHub serves there: artifacts
//! (act's `--artifact-server-path`) that one job uploads with GitHub's client
//! (`@actions/artifact`, from `scripts/npm-test-env`) and a job that needs it downloads, and
//! the cache over protocol v2 (`@actions/cache` with `ACTIONS_CACHE_SERVICE_V2`), one job
//! saving and the next restoring. The runtime token is masked wherever it is printed.

#[path = "common/action_repos.rs"]
#[allow(dead_code)] // the action repositories are not used here, only `make_repo`
mod action_repos;

#[path = "../../cache/tests/toolkit/node_modules.rs"]
mod node_modules;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The toolkit scripts' folder.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cache/tests/toolkit")
}

/// Runs `hearth exec` on a repository holding `workflow`, with `flags`; its stdout and stderr.
fn exec(dir: &Path, workflow: &str, flags: &[&str]) -> (String, String) {
    if !dir.join("project").exists() {
        action_repos::make_repo(
            dir,
            "project",
            &[(".forgejo/workflows/ci.yml", workflow)],
            "start",
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["exec", "-C"])
        .arg(dir.join("project"))
        .args(["--label", "linux:host"])
        .args(flags)
        .output()
        .expect("hearth exec runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}{stderr}");
    (stdout, stderr)
}

#[test]
fn a_job_downloads_the_artifacts_a_job_it_needs_uploaded() {
    let modules = node_modules::node_modules();
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("artifacts");
    let workflow = format!(
        r#"on: push
env:
  NODE_PATH: {modules}
jobs:
  make:
    runs-on: linux
    steps:
      - run: mkdir -p out/deep && echo "made by make" > out/report.txt && seq 1 100000 > out/deep/numbers.txt
      - run: node {scripts}/artifact.js upload "build output" out out/report.txt out/deep/numbers.txt
      - run: echo "token $ACTIONS_RUNTIME_TOKEN"
      - run: echo "v2=${{ACTIONS_CACHE_SERVICE_V2:-unset}}"
  use:
    needs: make
    runs-on: linux
    steps:
      - run: node {scripts}/artifact.js download "build output" fetched
      - run: cat fetched/report.txt && wc -l < fetched/deep/numbers.txt
      - run: node {scripts}/artifact.js list
"#,
        modules = modules.display(),
        scripts = scripts().display()
    );
    let (out, _) = exec(
        dir.path(),
        &workflow,
        &["--artifact-server-path", kept.to_str().unwrap()],
    );
    assert!(out.contains("[make]   | {\"id\":1,\"size\":"), "{out}");
    for line in [
        "[use]   | {\"id\":1,\"downloaded\":\"fetched\",\"digestMismatch\":false}",
        "[use]   | made by make",
        "[use]   | 100000",
        "[use]   | {\"names\":[\"build output\"],\"digests\":[\"sha256:",
        "[make]   | token ***",
        "[make]   | v2=true",
    ] {
        assert!(out.contains(line), "no {line:?} in {out}");
    }
    // Kept under the run's id, as the zip the toolkit made.
    let runs: Vec<PathBuf> = std::fs::read_dir(&kept)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.ends_with(".staging"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].join("build output.zip").is_file(), "{runs:?}");

    // Without the flag, a second run's artifacts are its own, in a folder removed after it:
    // the first run's are not there. Without a cache server, the artifacts get one of their
    // own, and the jobs no cache v2.
    let (out, _) = exec(dir.path(), &workflow, &["--no-cache-server"]);
    assert!(out.contains("[use]   | made by make"), "{out}");
    assert!(out.contains("[make]   | {\"id\":1,"), "{out}");
    assert!(out.contains("[make]   | v2=unset"), "{out}");
}

#[test]
fn jobs_save_and_restore_over_cache_v2() {
    let modules = node_modules::node_modules();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // GitHub's host (exec's default `github.server_url`) and ACTIONS_CACHE_SERVICE_V2: v2.
    let workflow = format!(
        r#"on: push
env:
  NODE_PATH: {modules}
jobs:
  save:
    runs-on: linux
    steps:
      - run: echo "$ACTIONS_CACHE_SERVICE_V2 $GITHUB_SERVER_URL"
      - run: mkdir -p deps .temp && echo "saved by the first job" > deps/file
      # No v1 URL: only v2 can save and restore.
      - run: RUNNER_TEMP=$PWD/.temp env -u ACTIONS_CACHE_URL node {scripts}/cache.js save deps-1 deps
  restore:
    needs: save
    runs-on: linux
    steps:
      - run: mkdir -p .temp && RUNNER_TEMP=$PWD/.temp env -u ACTIONS_CACHE_URL node {scripts}/cache.js restore deps-2 deps- deps
      - run: cat deps/file
"#,
        modules = modules.display(),
        scripts = scripts().display()
    );
    let (out, said) = exec(
        dir.path(),
        &workflow,
        &["--cache-server-path", cache.to_str().unwrap()],
    );
    assert!(out.contains("[save]   | true https://github.com"), "{out}");
    assert!(out.contains("[save]   | {\"saved\":"), "{out}");
    for line in [
        "[restore]   | {\"restored\":\"deps-1\"}",
        "[restore]   | saved by the first job",
    ] {
        assert!(out.contains(line), "no {line:?} in {out}");
    }
    assert!(
        said.contains("hearth: Cache: hit deps-1 (for deps-2); saved deps-1"),
        "{said}"
    );
}

/// A job in a container on a network of its own reaches the run's artifacts through its
/// network's gateway (`JobRequest::reach`), with the signed links the server hands out
/// pointing back there. The toolkit's packages come in as a volume. (Only downloads: the
/// image's node is 18, on which the Azure SDK the toolkit uploads with no longer runs.)
#[test]
fn a_container_job_downloads_the_artifacts_too() {
    let modules = node_modules::node_modules();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "container:\n  valid_volumes:\n    - {}\n    - {}\n",
            modules.display(),
            scripts().canonicalize().unwrap().display()
        ),
    )
    .unwrap();
    let workflow = format!(
        r#"on: push
jobs:
  make:
    runs-on: linux
    env:
      NODE_PATH: {modules}
    steps:
      - run: mkdir -p out && echo "made on the host" > out/report.txt
      - run: node {scripts}/artifact.js upload report out out/report.txt
  boxed:
    needs: make
    runs-on: boxed
    container:
      image: hearth-test/debian:1
      volumes:
        - {modules}:/toolkit/node_modules
        - {scripts}:/toolkit/scripts
    env:
      NODE_PATH: /toolkit/node_modules
    steps:
      - run: node /toolkit/scripts/artifact.js download report fetched
      - run: cat fetched/report.txt
"#,
        modules = modules.display(),
        scripts = scripts().canonicalize().unwrap().display()
    );
    let (out, _) = exec(
        dir.path(),
        &workflow,
        &[
            "-c",
            config.to_str().unwrap(),
            "--label",
            "boxed:docker://hearth-test/debian:1",
        ],
    );
    for line in [
        "[boxed]   | {\"id\":1,\"downloaded\":",
        "[boxed]   | made on the host",
    ] {
        assert!(out.contains(line), "no {line:?} in {out}");
    }
}
