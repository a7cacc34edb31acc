//! `hearth exec` runs a cache server for its jobs (act's `--cache-server-path`): one job saves
//! with GitHub's client (`@actions/cache`, from `scripts/npm-test-env`), the next restores by a
//! restore key, and a container job on its own network reaches the server too. A second run
//! finds what the first saved; with `cache.s3`, a run on another machine (another cache
//! folder) finds it in the bucket (moto's server, from `scripts/s3-test-env`). A cache a
//! container job cannot reach is one warning line in its log, and the job goes on.

#[path = "common/action_repos.rs"]
#[allow(dead_code)] // the action repositories are not used here, only `make_repo`
mod action_repos;

#[path = "../../cache/tests/common/mod.rs"]
mod s3;

#[path = "../../cache/tests/toolkit/node_modules.rs"]
mod node_modules;

use std::path::Path;
use std::process::Command;

#[test]
fn jobs_of_a_local_run_save_and_restore_through_the_runs_cache() {
    let modules = node_modules::node_modules();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cache/tests/toolkit/cache.js");
    let dir = tempfile::tempdir().unwrap();
    let workflow = format!(
        r#"on: push
env:
  NODE_PATH: {modules}
  GITHUB_SERVER_URL: http://forge.example
jobs:
  save:
    runs-on: linux
    steps:
      - run: mkdir -p deps .temp && echo "saved by the first job" > deps/file
      - run: RUNNER_TEMP=$PWD/.temp node {script} save deps-1 deps
  restore:
    needs: save
    runs-on: linux
    steps:
      - run: mkdir -p .temp && RUNNER_TEMP=$PWD/.temp node {script} restore deps-2 deps- deps
      - run: cat deps/file
  probe:
    runs-on: boxed
    steps:
      - run: wget -S -O /dev/null "${{ACTIONS_CACHE_URL}}_apis/artifactcache/cache?keys=x&version=v" 2>&1 | grep "HTTP/" | sed 's/^ *//'
      - run: echo "url $ACTIONS_CACHE_URL"
"#,
        modules = modules.display(),
        script = script.display()
    );
    action_repos::make_repo(
        dir.path(),
        "project",
        &[(".forgejo/workflows/ci.yml", &workflow)],
        "start",
    );
    let cache = dir.path().join("cache");
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["exec", "-C"])
            .arg(dir.path().join("project"))
            .args([
                "--label",
                "linux:host",
                "--label",
                "boxed:docker://hearth-test/busybox:1",
            ])
            .arg("--cache-server-path")
            .arg(&cache)
            .output()
            .expect("hearth exec runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stdout}{stderr}");
        (stdout, stderr)
    };
    let (first, said) = run();
    assert!(
        said.contains("hearth: Cache: hit deps-1 (for deps-2); missed x; saved deps-1"),
        "{said}"
    );
    for line in [
        "[restore]   | {\"restored\":\"deps-1\"}",
        "[restore]   | saved by the first job",
        "[probe]   | HTTP/1.1 204 No Content",
    ] {
        assert!(first.contains(line), "no {line:?} in {first}");
    }
    assert!(first.contains("[save]   | {\"saved\":"), "{first}");
    // The job's token is masked where the URL is printed.
    let url = first
        .lines()
        .find(|l| l.contains("| url "))
        .unwrap_or_else(|| panic!("{first}"));
    assert!(url.contains("/***/"), "{url}");
    // The container job reached its cache, and the check said nothing.
    assert!(!first.contains("warning: "), "{first}");
    // The next run: the first's entry is there, and the same key is not saved again.
    let (second, _) = run();
    assert!(second.contains("[save]   | {\"saved\":-1}"), "{second}");
    assert!(
        second.contains("[restore]   | {\"restored\":\"deps-1\"}"),
        "{second}"
    );
}

/// Runs on two machines (two cache folders) with `cache.s3` naming one bucket: what the first
/// saved, the second restores, and does not save again; the secret key, taken from
/// `AWS_SECRET_ACCESS_KEY`, is printed nowhere.
#[test]
fn runs_on_two_machines_share_the_entries_of_one_bucket() {
    let modules = node_modules::node_modules();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cache/tests/toolkit/cache.js");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let moto = runtime.block_on(s3::Moto::start());
    let options = runtime.block_on(moto.bucket("fleet"));
    let dir = tempfile::tempdir().unwrap();
    let workflow = format!(
        r#"on: push
env:
  NODE_PATH: {modules}
  GITHUB_SERVER_URL: http://forge.example
jobs:
  save:
    runs-on: linux
    steps:
      - run: mkdir -p deps .temp && echo "saved on the first machine" > deps/file
      - run: RUNNER_TEMP=$PWD/.temp node {script} save deps-1 deps
  restore:
    needs: save
    runs-on: linux
    steps:
      - run: rm -rf deps && mkdir -p .temp && RUNNER_TEMP=$PWD/.temp node {script} restore deps-2 deps- deps
      - run: cat deps/file
"#,
        modules = modules.display(),
        script = script.display()
    );
    action_repos::make_repo(
        dir.path(),
        "project",
        &[(".forgejo/workflows/ci.yml", &workflow)],
        "start",
    );
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "cache:\n  s3:\n    endpoint: {}\n    bucket: {}\n    prefix: runners\n    \
             path_style: true\n    access_key_id: {}\n",
            options.endpoint, options.bucket, options.access_key_id
        ),
    )
    .unwrap();
    let run = |machine: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("-c")
            .arg(&config)
            .args(["exec", "-C"])
            .arg(dir.path().join("project"))
            .args(["--label", "linux:host"])
            .arg("--cache-server-path")
            .arg(dir.path().join(machine))
            .env("AWS_SECRET_ACCESS_KEY", &options.secret_access_key)
            .output()
            .expect("hearth exec runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stdout}{stderr}");
        assert!(
            !stdout.contains(&options.secret_access_key)
                && !stderr.contains(&options.secret_access_key),
            "the secret key is printed: {stdout}{stderr}"
        );
        stdout
    };
    let first = run("first-machine");
    assert!(first.contains("[save]   | {\"saved\":"), "{first}");
    let second = run("second-machine");
    for line in [
        "[save]   | {\"saved\":-1}",
        "[restore]   | {\"restored\":\"deps-1\"}",
        "[restore]   | saved on the first machine",
    ] {
        assert!(second.contains(line), "no {line:?} in {second}");
    }
    drop(moto);
}

/// `cache.external_server` on this machine's loopback where nothing listens: the container job
/// is told so in one warning line before its steps, naming the address and the fix, and goes
/// on; the host job, which is not checked, says nothing.
#[test]
fn a_cache_a_container_job_cannot_reach_is_one_warning_line() {
    let dir = tempfile::tempdir().unwrap();
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let cache = format!("http://127.0.0.1:{dead}");
    let workflow = "on: push
jobs:
  boxed:
    runs-on: boxed
    steps:
      - run: echo boxed step
  plain:
    runs-on: linux
    steps:
      - run: echo plain step
";
    action_repos::make_repo(
        dir.path(),
        "project",
        &[(".forgejo/workflows/ci.yml", workflow)],
        "start",
    );
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, format!("cache:\n  external_server: {cache}\n")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("-c")
        .arg(&config)
        .args(["exec", "-C"])
        .arg(dir.path().join("project"))
        .args([
            "--label",
            "linux:host",
            "--label",
            "boxed:docker://hearth-test/busybox:1",
        ])
        .output()
        .expect("hearth exec runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.contains("warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{stdout}");
    let warning = warnings[0];
    assert!(
        warning.starts_with("[boxed]   | warning: The cache at http://")
            && warning.contains(&format!("(forwarded to {cache}, as the runner reaches it)"))
            && warning.contains(&format!(
                "nothing answers at {cache} on the runner's machine"
            ))
            && warning.ends_with(
                "; set cache.external_server to an address the job network reaches. The job \
                 runs without it."
            ),
        "{warning}"
    );
    let warned = stdout.find(warning).unwrap_or_default();
    let stepped = stdout
        .find("[boxed]   | boxed step")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(warned < stepped, "{stdout}");
    assert!(stdout.contains("[plain]   | plain step"), "{stdout}");
}
