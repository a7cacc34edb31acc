//! `hearth exec` with actions from other repositories, fetched by the real `git` from
//! `--default-actions-url`.

#[path = "common/action_repos.rs"]
mod action_repos;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Actions in folders of one repository (`owner/repo/path@ref`): a composite action, and a
/// Docker action built from its folder's Dockerfile, used from a host job (its container
/// through the machine's Docker) and from a container job; the repository is fetched once.
#[test]
fn actions_in_folders_of_a_repository_run_in_host_and_container_jobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let actions = dir.path().join("actions");
    action_repos::make_repo(
        &actions,
        "acme/tools",
        &[
            (
                "lint/action.yml",
                "name: lint\nruns:\n  using: composite\n  steps:\n    - run: echo \"lint from a folder\"\n      shell: sh\n",
            ),
            (
                "shout/action.yml",
                "name: shout\ninputs:\n  word:\n    required: true\nruns:\n  using: docker\n  image: Dockerfile\n  args: ['${{ inputs.word }}']\n",
            ),
            (
                "shout/Dockerfile",
                "FROM hearth-test/busybox:1\nCOPY say.sh /say.sh\nENTRYPOINT [\"sh\", \"/say.sh\"]\n",
            ),
            ("shout/say.sh", "echo \"shout $1 from $(cat /etc/hostname | wc -c) in $PWD\"\n"),
        ],
        "v1",
    );
    let steps = "      - uses: acme/tools/lint@v1\n      - uses: acme/tools/shout@v1\n        with:\n          word: loud\n";
    action_repos::make_repo(
        dir.path(),
        "project",
        &[(
            ".forgejo/workflows/ci.yml",
            &format!(
                "on: push\njobs:\n  on-host:\n    runs-on: linux\n    steps:\n{steps}  in-container:\n    runs-on: boxed\n    steps:\n{steps}"
            ),
        )],
        "start",
    );
    let cache = dir.path().join("cache");
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["exec", "-C"])
        .arg(dir.path().join("project"))
        .args([
            "--label",
            "linux:host",
            "--label",
            "boxed:docker://hearth-test/busybox:1",
        ])
        .arg("--default-actions-url")
        .arg(format!("file://{}", actions.display()))
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .expect("hearth exec runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for job in ["on-host", "in-container"] {
        for line in [
            "lint from a folder",
            "shout loud from 13 in /github/workspace",
        ] {
            let wanted = format!("[{job}]   | {line}");
            assert!(stdout.contains(&wanted), "no {wanted:?} in {stdout}");
        }
    }
    let cached: Vec<String> = std::fs::read_dir(cache.join("hearth/actions/acme/tools"))
        .expect("cache")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".git")
        .collect();
    assert_eq!(
        cached.len(),
        1,
        "one checkout of the repository at v1: {cached:?}"
    );
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

/// Living processes (not zombies) whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(path.join("stat")).is_ok_and(|stat| {
            stat.rfind(')')
                .and_then(|end| stat[end + 1..].split_whitespace().next())
                .is_some_and(|state| matches!(state, "Z" | "X"))
        });
        if cmdline.contains(needle) && !zombie {
            found.push(cmdline);
        }
    }
    found
}

fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while !done() {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn ctrl_c_stops_a_fetch_from_a_server_that_never_answers() {
    // A server that accepts the connection and never answers: git would wait forever.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let held = Arc::new(Mutex::new(Vec::new()));
    let hold = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            hold.lock().expect("lock").push(stream);
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    workflow_repo(dir.path(), "      - uses: acme/hung@v1\n");
    let mut hearth = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["exec", "-C"])
        .arg(dir.path().join("project"))
        .arg("--default-actions-url")
        .arg(format!("http://{address}"))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hearth starts");
    let connected = wait_for(Duration::from_secs(20), || {
        !held.lock().expect("lock").is_empty()
    });
    if !connected {
        let _ = hearth.kill();
        panic!("hearth never connected to fetch the action");
    }
    let pid = i32::try_from(hearth.id()).expect("a pid");
    // SAFETY: kill(2) with plain integers, on the child this test started.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let signalled = Instant::now();
    let exited = wait_for(Duration::from_secs(2), || {
        matches!(hearth.try_wait(), Ok(Some(_)))
    });
    let elapsed = signalled.elapsed();
    if !exited {
        let _ = hearth.kill();
        let _ = hearth.wait();
    }
    assert!(
        exited,
        "hearth still waited for the fetch {elapsed:?} after Ctrl-C"
    );
    assert_ne!(hearth.wait().expect("status").code(), Some(0));
    let gone = wait_for(Duration::from_secs(1), || {
        processes_mentioning(&address).is_empty()
    });
    assert!(gone, "left behind: {:?}", processes_mentioning(&address));
}

const SHARED_BUILD: &str = r#"on:
  workflow_call:
    inputs:
      who:
        type: string
        required: true
    secrets:
      token:
        required: true
    outputs:
      greeting:
        value: ${{ jobs.inner.outputs.greeting }}
jobs:
  hello:
    runs-on: linux
    steps:
      - run: echo "remote hello ${{ inputs.who }} token=${{ secrets.token }} event=${{ github.event_name }}"
  inner:
    uses: ./.github/workflows/inner.yml
    with:
      who: ${{ inputs.who }}
"#;

/// Called by `SHARED_BUILD` with `./`: read from the shared repository, not the caller's.
const SHARED_INNER: &str = r#"on:
  workflow_call:
    inputs:
      who:
        type: string
    outputs:
      greeting:
        value: ${{ jobs.say.outputs.text }}
jobs:
  say:
    runs-on: linux
    outputs:
      text: ${{ steps.s.outputs.text }}
    steps:
      - id: s
        run: echo "text=hi-${{ inputs.who }}" >> "$GITHUB_OUTPUT"
"#;

const CALLER: &str = r#"on: push
jobs:
  call:
    uses: acme/shared/.github/workflows/build.yml@v1
    with:
      who: forge
    secrets:
      token: ${{ secrets.TOKEN }}
  after:
    needs: call
    runs-on: linux
    steps:
      - run: echo "after got ${{ needs.call.outputs.greeting }}"
"#;

#[test]
fn remote_reusable_workflows_run_with_inputs_secrets_and_outputs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let actions = dir.path().join("actions");
    action_repos::make_repo(
        &actions.join("acme"),
        "shared",
        &[
            (".github/workflows/build.yml", SHARED_BUILD),
            (".github/workflows/inner.yml", SHARED_INNER),
        ],
        "v1",
    );
    action_repos::make_repo(
        dir.path(),
        "project",
        &[(".forgejo/workflows/ci.yml", CALLER)],
        "start",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["exec", "-s", "TOKEN=remote-token-771", "-C"])
        .arg(dir.path().join("project"))
        .arg("--default-actions-url")
        .arg(format!("file://{}", actions.display()))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .output()
        .expect("hearth exec runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("remote hello forge token=*** event=push"),
        "{stdout}"
    );
    assert!(stdout.contains("after got hi-forge"), "{stdout}");
    assert!(stdout.contains("call / inner / say"), "{stdout}");
    assert!(!stdout.contains("remote-token-771"), "{stdout}");
}

#[test]
fn a_remote_reusable_workflow_that_cannot_be_fetched_fails_its_job_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let actions = dir.path().join("actions");
    std::fs::create_dir_all(&actions).expect("folder");
    action_repos::make_repo(
        dir.path(),
        "project",
        &[(
            ".forgejo/workflows/ci.yml",
            "on: push\njobs:\n  call:\n    uses: acme/missing/.github/workflows/x.yml@v1\n",
        )],
        "start",
    );
    let output = exec(
        &dir.path().join("project"),
        &actions,
        &dir.path().join("cache"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "cannot fetch the reusable workflow `acme/missing/.github/workflows/x.yml@v1`: git fetch"
        ),
        "{stdout}"
    );
}

/// `hearth <args>` with the cache under `cache`.
fn hearth(args: &[&str], cache: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .expect("hearth runs")
}

/// A composite action that uses another remote action, so that `actions pull` has to follow it.
fn make_nesting_action(actions: &Path) {
    action_repos::make_repo(
        actions,
        "acme/both",
        &[(
            "action.yml",
            "name: both\nruns:\n  using: composite\n  steps:\n    - uses: acme/node-hello@v2\n      with:\n        name: Nested\n",
        )],
        "v3",
    );
}

/// `hearth actions pull` fetches what the workflows use, and what their composite actions use;
/// `hearth exec --offline` then runs with the actions' repositories gone. A cold cache fails
/// the step, naming the action and the way to fill it.
#[test]
fn actions_pull_fills_the_cache_and_offline_runs_need_nothing_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    let actions = dir.path().join("actions");
    action_repos::make_actions(&actions);
    make_nesting_action(&actions);
    workflow_repo(
        dir.path(),
        &format!("{}      - uses: acme/both@v3\n", action_repos::STEPS),
    );
    let project = dir.path().join("project");
    let project = project.to_str().expect("UTF-8");
    let url = format!("file://{}", actions.display());
    let cache = dir.path().join("cache");

    let cold = hearth(&["exec", "-C", project, "--offline"], &cache);
    let stdout = String::from_utf8_lossy(&cold.stdout);
    assert_eq!(cold.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("the action acme/greet@v1 is not in the action cache")
            && stdout.contains("hearth actions pull"),
        "{stdout}"
    );

    let pulled = hearth(
        &[
            "actions",
            "pull",
            "-C",
            project,
            "--default-actions-url",
            &url,
        ],
        &cache,
    );
    let said = String::from_utf8_lossy(&pulled.stdout);
    assert!(
        pulled.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    for action in ["acme/greet@v1", "acme/node-hello@v2", "acme/both@v3"] {
        assert!(said.contains(action), "{action} not pulled: {said}");
    }
    assert!(said.contains("3 action(s)"), "{said}");

    std::fs::remove_dir_all(&actions).expect("the repositories go");
    let offline = hearth(&["exec", "-C", project, "--offline"], &cache);
    let stdout = String::from_utf8_lossy(&offline.stdout);
    assert!(offline.status.success(), "{stdout}");
    assert!(stdout.contains("hello from node Nested"), "{stdout}");
    assert!(stdout.contains("hello forge"), "{stdout}");
}

/// `--action-override owner/repo@ref=DIR` runs a local checkout as it is, with no fetch (the
/// actions' URL has nothing); a malformed one is refused before anything runs.
#[test]
fn an_action_override_runs_a_local_checkout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let checkout = dir.path().join("greet-work");
    std::fs::create_dir_all(&checkout).expect("folder");
    std::fs::write(
        checkout.join("action.yml"),
        "name: greet\ninputs:\n  who:\n    default: world\nruns:\n  using: composite\n  steps:\n    - run: echo \"edited locally, hi ${{ inputs.who }}\"\n      shell: bash\n",
    )
    .expect("action");
    workflow_repo(
        dir.path(),
        "      - uses: acme/greet@v1\n        with:\n          who: there\n",
    );
    let project = dir.path().join("project");
    let project = project.to_str().expect("UTF-8");
    let cache = dir.path().join("cache");
    let nowhere = format!("file://{}", dir.path().join("nowhere").display());
    let spec = format!("acme/greet@v1={}", checkout.display());
    let output = hearth(
        &[
            "exec",
            "-C",
            project,
            "--default-actions-url",
            &nowhere,
            "--action-override",
            &spec,
        ],
        &cache,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("edited locally, hi there"), "{stdout}");
    assert!(!cache.join("hearth/actions/acme").exists());

    let bad = hearth(
        &["exec", "-C", project, "--action-override", "acme/greet"],
        &cache,
    );
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("expected owner/repo@ref=DIR"), "{stderr}");
}

/// Full URLs (`https://host/owner/repo...@ref`, the forges' extension) for a reusable workflow
/// and for a step's action, served over smart HTTP by a forge (the fake one, at its address)
/// that is not the default actions URL: fetched from that host, cached apart.
#[test]
fn full_url_reusable_workflows_and_actions_come_from_their_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repos = dir.path().join("repos");
    action_repos::make_repo(
        &repos.join("acme"),
        "shared",
        &[
            (".github/workflows/build.yml", SHARED_BUILD),
            (".github/workflows/inner.yml", SHARED_INNER),
        ],
        "v1",
    );
    action_repos::make_actions(&repos);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let forge = runtime
        .block_on(hearth_fake_forge::FakeForge::start(
            hearth_fake_forge::Options::gitea().with_git_root(&repos),
        ))
        .expect("the forge starts");
    let url = forge.url();
    let caller = CALLER.replace(
        "uses: acme/shared/.github/workflows/build.yml@v1",
        &format!("uses: {url}/acme/shared/.github/workflows/build.yml@v1"),
    ) + &format!(
        "  step:\n    runs-on: linux\n    steps:\n      - uses: {url}/acme/greet@v1\n        with:\n          who: by URL\n"
    );
    action_repos::make_repo(
        dir.path(),
        "project",
        &[(".forgejo/workflows/ci.yml", &caller)],
        "start",
    );
    let nowhere = dir.path().join("nowhere");
    let output = exec(
        &dir.path().join("project"),
        &nowhere,
        &dir.path().join("cache"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("after got hi-forge"), "{stdout}");
    assert!(stdout.contains("hello by URL"), "{stdout}");
    let requests = forge.git_requests();
    assert!(
        requests.iter().any(|r| r.path.starts_with("/acme/shared/"))
            && requests.iter().any(|r| r.path.starts_with("/acme/greet/")),
        "{requests:#?}"
    );
    // No token in a local run: nothing to send.
    assert!(requests.iter().all(|r| r.authorization.is_none()));
    drop(forge);
}
