//! `hearth register` and `hearth daemon` against the fake forge: registration, jobs and their
//! logs, step states and outputs, cancellation, an unreachable forge, shutdown, capacity,
//! ephemeral runners and act_runner's own files.

#[path = "../common/action_repos.rs"]
mod action_repos;
mod harness;

#[path = "../../../cache/tests/toolkit/node_modules.rs"]
mod node_modules;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::{docker_leftovers, docker_leftovers_in, nonblank, Harness, FAST};
use hearth_fake_forge::{FakeForge, Options, Status, TaskSpec};
use hearth_forge::proto::runner::Result as TaskResult;

const LONG: Duration = Duration::from_secs(60);

fn job(steps: &str) -> String {
    format!("name: ci\non: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n{steps}")
}

/// A job whose first step prints `started`, then sleeps a minute (and would print `finished`),
/// and whose `always()` step prints `cleaned`.
fn long_job_with_cleanup() -> String {
    job(r#"      - run: |
          echo started
          sleep 60
          echo finished
      - if: always()
        run: echo cleaned
"#)
}

#[tokio::test]
async fn register_writes_the_runner_file_and_sends_label_names_only() {
    let h = Harness::start(Options::gitea()).await;
    h.config("");
    let output = h
        .register(&["--labels", "linux:host,ubuntu-latest:docker://node:20"])
        .await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "Runner registered successfully."
    );
    let runners = h.forge.runners();
    assert_eq!(runners.len(), 1);
    assert_eq!(runners[0].labels, ["linux", "ubuntu-latest"]);
    assert_eq!(runners[0].name, "test-runner");

    let file = h.path(".runner");
    let text = std::fs::read_to_string(&file).expect(".runner written");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(json["uuid"], runners[0].uuid.as_str());
    assert_eq!(json["token"], runners[0].token.as_str());
    assert_eq!(json["address"], h.forge.url().as_str());
    assert_eq!(
        json["labels"],
        serde_json::json!(["linux:host", "ubuntu-latest:docker://node:20"])
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn a_wrong_registration_token_is_a_clear_error() {
    for options in [Options::gitea(), Options::forgejo()] {
        let h = Harness::start(options).await;
        h.config("");
        let output = h.register(&["--token", "nope", "--labels", "linux"]).await;
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("the forge refused the registration")
                && stderr.contains("registration token"),
            "{stderr}"
        );
        assert!(!harness::exists(&h.path(".runner")));
    }
}

#[tokio::test]
async fn a_job_succeeds_with_every_row_in_order_and_its_steps_states() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let payload = job(r#"      - name: greet
        run: |
          echo hello
          echo "the secret is ${{ secrets.MY_SECRET }}"
      - run: |
          echo "::group::counting"
          for i in 1 2 3; do echo "line $i"; done
          echo "::endgroup::"
      - id: out
        run: echo "value=42" >> "$GITHUB_OUTPUT"
    outputs:
      answer: ${{ steps.out.outputs.value }}
"#);
    let (id, task, log) = h
        .run(TaskSpec::new(payload).with_secret("MY_SECRET", "hunter2-very-secret"))
        .await;

    assert_eq!(task.status, Status::Success, "{log}");
    // Its own log goes to a pipe here (as to journald or a file): no colour codes.
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(task.log_archived);
    assert_eq!(
        task.output_map().get("answer").map(String::as_str),
        Some("42")
    );
    let results: Vec<Status> = task.steps.iter().map(|s| s.status).collect();
    assert_eq!(results, [Status::Success; 3]);

    let lines = h.forge.log_lines(id);
    assert!(lines.iter().all(|l| !l.contains("hunter2")), "{lines:#?}");
    let greet = h.step_rows(id, 0);
    assert!(greet.iter().any(|l| l == "hello"), "{greet:#?}");
    assert!(greet.iter().any(|l| l == "the secret is ***"), "{greet:#?}");
    let counting = h.step_rows(id, 1);
    let expected = [
        "::group::counting",
        "line 1",
        "line 2",
        "line 3",
        "::endgroup::",
    ];
    let found: Vec<&str> = counting
        .iter()
        .map(String::as_str)
        .filter(|l| expected.contains(l))
        .collect();
    assert_eq!(found, expected);
    // Steps' ranges follow each other without overlapping.
    for pair in task.steps.windows(2) {
        assert!(pair[0].log_index + pair[0].log_length <= pair[1].log_index);
    }
}

#[tokio::test]
async fn a_failing_job_skips_later_steps_but_runs_always() {
    let h = Harness::ready(Options::forgejo(), FAST).await;
    let payload = job(r#"      - run: |
          echo before
          exit 3
      - run: echo never
      - if: always()
        run: echo cleanup
"#);
    let (id, task, _) = h.run(TaskSpec::new(payload)).await;

    assert_eq!(task.status, Status::Failure);
    let results: Vec<Status> = task.steps.iter().map(|s| s.status).collect();
    assert_eq!(results, [Status::Failure, Status::Skipped, Status::Success]);
    assert_eq!(task.steps[1].log_length, 0);
    let lines = h.forge.log_lines(id);
    assert!(lines.iter().any(|l| l == "cleanup"));
    assert!(!lines.iter().any(|l| l == "never"));
    assert!(h.step_rows(id, 0).iter().any(|l| l == "before"));
}

#[tokio::test]
async fn outputs_arrive_as_needs_of_a_later_task() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let first = h.forge.queue_task(TaskSpec::new(
        "name: ci\non: push\njobs:\n  a:\n    runs-on: linux\n    outputs:\n      word: ${{ steps.s.outputs.word }}\n    steps:\n      - id: s\n        run: echo 'word=bird' >> \"$GITHUB_OUTPUT\"\n",
    ));
    let daemon = h.daemon(&[]);
    let a = h.done(first, LONG).await;
    assert_eq!(a.status, Status::Success);
    let outputs: BTreeMap<String, String> = a.output_map();
    assert_eq!(outputs.get("word").map(String::as_str), Some("bird"));

    let second = h.forge.queue_task(
        TaskSpec::new(
            "name: ci\non: push\njobs:\n  b:\n    runs-on: linux\n    needs: a\n    if: needs.a.result == 'success'\n    steps:\n      - run: echo \"got ${{ needs.a.outputs.word }}\"\n",
        )
        .with_need("a", TaskResult::Success, outputs),
    );
    let b = h.done(second, LONG).await;
    daemon.stop().await;
    assert_eq!(b.status, Status::Success);
    assert!(h.step_rows(second, 0).iter().any(|l| l == "got bird"));
}

#[tokio::test]
async fn the_forge_cancels_a_job_within_two_seconds() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let id = h.forge.queue_task(TaskSpec::new(long_job_with_cleanup()));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "started", LONG).await;
    let cancelled_at = Instant::now();
    assert!(h.forge.cancel_task(id));
    let task = h.done(id, LONG).await;
    let took = cancelled_at.elapsed();
    daemon.stop().await;

    assert!(
        took < Duration::from_secs(2),
        "the job took {took:?} to stop"
    );
    assert_eq!(
        task.final_result_reported,
        Some(TaskResult::Cancelled as i32)
    );
    let lines = h.forge.log_lines(id);
    assert!(!lines.iter().any(|l| l == "finished"));
    assert!(lines.iter().any(|l| l == "cleaned"), "{lines:#?}");
}

#[tokio::test]
async fn every_row_arrives_once_after_the_forge_was_down_for_30_seconds() {
    let h = Harness::start(Options::gitea()).await;
    // A tiny memory budget, so the rows of the outage go through the spill file.
    let spool = h.path("spool");
    h.config(&format!(
        "{FAST}  log_memory_limit: 2KiB\n  log_spill_dir: {}\n",
        spool.display()
    ));
    h.registered().await;
    let payload = job(r#"      - run: |
          for i in $(seq 1 400); do echo "row $i"; sleep 0.1; done
"#);
    let id = h.forge.queue_task(TaskSpec::new(payload));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "row 20", LONG).await;
    h.forge.go_down().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Spill files only: the journal has a folder of its own there.
    let spill_files = || {
        std::fs::read_dir(&spool).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".spill"))
                .count()
        })
    };
    assert_eq!(
        spill_files(),
        1,
        "rows past the budget wait in one spill file"
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    h.forge.come_up().await.expect("the forge comes back");
    let task = h.done(id, Duration::from_secs(120)).await;
    daemon.stop().await;
    assert_eq!(spill_files(), 0);

    assert_eq!(task.status, Status::Success);
    let rows = h.rows_starting(id, "row ");
    let expected: Vec<String> = (1..=400).map(|i| format!("row {i}")).collect();
    assert_eq!(rows, expected);
    assert!(task.log_archived);
}

#[tokio::test]
async fn sigterm_lets_the_job_finish_its_grace_then_cancels_and_reports() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let id = h.forge.queue_task(TaskSpec::new(long_job_with_cleanup()));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "started", LONG).await;
    daemon.signal(libc::SIGTERM);
    let (code, log) = daemon.exit(Duration::from_secs(15)).await;
    assert_eq!(code, Some(0), "{log}");
    let task = h.forge.task(id).expect("the task");
    assert_eq!(task.status, Status::Cancelled, "{log}");
    assert!(task.log_archived);
    assert!(h.forge.log_lines(id).iter().any(|l| l == "cleaned"));
    // No new job after the signal.
    let later = h
        .forge
        .queue_task(TaskSpec::new(job("      - run: true\n")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.forge.job(later).expect("job").status, Status::Waiting);
}

#[tokio::test]
async fn capacity_four_runs_twenty_queued_jobs_four_at_a_time() {
    let h = Harness::ready(Options::gitea(), &format!("{FAST}  capacity: 4\n")).await;
    let ids: Vec<_> = (0..20)
        .map(|_| {
            h.forge
                .queue_task(TaskSpec::new(job("      - run: sleep 0.5\n")))
        })
        .collect();
    let started = Instant::now();
    let daemon = h.daemon(&[]);
    let mut spans = Vec::new();
    for id in &ids {
        let task = h.done(*id, LONG).await;
        assert_eq!(task.status, Status::Success);
        spans.push((task.picked_at, task.stopped_at.expect("stopped")));
    }
    let took = started.elapsed();
    daemon.stop().await;
    // At no moment more than four tasks ran, and four did run together.
    let mut most = 0;
    for (start, _) in &spans {
        let at = |t: &prost_types::Timestamp| (t.seconds, t.nanos);
        let running = spans
            .iter()
            .filter(|(s, e)| at(s) <= at(start) && at(start) < at(e))
            .count();
        most = most.max(running);
    }
    assert_eq!(most, 4, "{spans:?}");
    // 5 rounds of 0.5 s, plus start-up and reporting.
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[tokio::test]
async fn an_ephemeral_runner_takes_one_job_and_is_gone() {
    let h = Harness::start(Options::gitea()).await;
    h.config(FAST);
    let output = h.register(&["--labels", "linux:host", "--ephemeral"]).await;
    assert!(output.status.success(), "{output:?}");
    let first = h
        .forge
        .queue_task(TaskSpec::new(job("      - run: echo one\n")));
    let second = h
        .forge
        .queue_task(TaskSpec::new(job("      - run: echo two\n")));
    let daemon = h.daemon(&[]);
    let (code, log) = daemon.exit(LONG).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(h.forge.task(first).expect("task").status, Status::Success);
    assert_eq!(h.forge.job(second).expect("job").status, Status::Waiting);
    assert!(
        h.forge.runners().is_empty(),
        "the forge removes an ephemeral runner"
    );
}

#[tokio::test]
async fn once_runs_one_job_then_exits() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let first = h
        .forge
        .queue_task(TaskSpec::new(job("      - run: echo one\n")));
    let daemon = h.daemon(&["--once"]);
    let (code, log) = daemon.exit(LONG).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(h.forge.task(first).expect("task").status, Status::Success);
    assert_eq!(h.forge.runners().len(), 1);
}

#[tokio::test]
async fn an_unregistered_runner_exits_saying_to_register_again() {
    for options in [Options::gitea(), Options::forgejo()] {
        let h = Harness::ready(options, FAST).await;
        let id = h.forge.runners()[0].id;
        assert!(h.forge.delete_runner(id));
        let (code, log) = h.daemon(&[]).exit(LONG).await;
        assert_ne!(code, Some(0));
        assert!(log.contains("register it again"), "{log}");
    }
}

#[tokio::test]
async fn act_runners_own_files_work_unchanged() {
    let h = Harness::start(Options::gitea()).await;
    // Registered by act_runner: the forge knows the runner, and act_runner wrote its files.
    let client = hearth_forge::Client::new(&hearth_forge::ClientOptions {
        address: h.forge.url(),
        insecure: false,
        ca_file: None,
        request_timeout: Duration::from_secs(5),
        version: "v0.2.11".into(),
    })
    .expect("client");
    let runner = client
        .register(&hearth_forge::proto::runner::RegisterRequest {
            name: "act".into(),
            token: harness::TOKEN.into(),
            labels: vec!["linux".into()],
            ..Default::default()
        })
        .await
        .expect("registered")
        .runner
        .expect("a runner");
    let dot_runner = format!(
        r#"{{
  "WARNING": "This file is automatically generated by act-runner. Do not edit it manually unless you know what you are doing. Removing this file will cause act runner to re-register as a new runner.",
  "id": {},
  "uuid": "{}",
  "name": "act",
  "token": "{}",
  "address": "{}",
  "labels": [
    "linux:host"
  ]
}}
"#,
        runner.id,
        runner.uuid,
        runner.token,
        h.forge.url()
    );
    std::fs::write(h.path(".runner"), dot_runner).expect(".runner written");
    // act_runner's generated file, with the labels and host folder an operator would set.
    let config = include_str!("../../../runner/tests/data/act_runner/config.yaml")
        .replace(
            "    - \"ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest\"\n    \
             - \"ubuntu-22.04:docker://docker.gitea.com/runner-images:ubuntu-22.04\"\n    \
             - \"ubuntu-20.04:docker://docker.gitea.com/runner-images:ubuntu-20.04\"\n",
            "    - \"linux:host\"\n",
        )
        .replace(
            "host:\n  workdir_parent:\n",
            &format!("host:\n  workdir_parent: {}\n", h.path("work").display()),
        );
    assert!(config.contains("linux:host") && config.contains("/work\n"));
    std::fs::write(h.path("config.yaml"), config).expect("config written");
    let id = h.forge.queue_task(TaskSpec::new(job(
        "      - run: echo \"env $A_TEST_ENV_NAME_1\"\n",
    )));
    let (code, log) = h.daemon(&["--once"]).exit(LONG).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !log.contains("WARN"),
        "no warnings for act_runner's files: {log}"
    );
    let task = h.forge.task(id).expect("task");
    assert_eq!(task.status, Status::Success);
    assert!(nonblank(&h.forge.log_lines(id)).contains(&"env a_test_env_value_1"));
}

#[tokio::test]
async fn jobs_get_the_forges_context_and_the_runner_environment() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let payload = job(r#"      - run: |
          echo "repo=$GITHUB_REPOSITORY sha=$GITHUB_SHA ref=$GITHUB_REF_NAME actor=$GITHUB_ACTOR"
          echo "server=$GITHUB_SERVER_URL api=$GITHUB_API_URL"
          echo "gitea=$GITEA_ACTIONS run=$GITEA_RUN_ID runtime=$ACTIONS_RUNTIME_URL results=$ACTIONS_RESULTS_URL"
          echo "runtime token=$ACTIONS_RUNTIME_TOKEN"
          echo "github token=${{ github.token }} secret=${{ secrets.GITHUB_TOKEN }}"
          echo "var=${{ vars.COLOUR }} message=${{ github.event.head_commit.message }}"
          echo "act=${ACT-unset} ctx=${{ env.ACT }}"
"#);
    let (id, task, _) = h
        .run(TaskSpec::new(payload).with_var("COLOUR", "teal"))
        .await;
    assert_eq!(task.status, Status::Success);
    let url = h.forge.url();
    let url = url.trim_end_matches('/');
    let rows = h.step_rows(id, 0);
    let has = |line: &str| assert!(rows.iter().any(|r| r == line), "no {line:?} in {rows:#?}");
    has(&format!(
        "repo=test-owner/test-repo sha={} ref=main actor=test-user",
        hearth_fake_forge::context::DEFAULT_SHA
    ));
    has(&format!("server={url} api={url}/api/v1"));
    has(&format!(
        "gitea=true run={} runtime={url}/api/actions_pipeline/ results={url}",
        h.forge.job(id).expect("job").run_id
    ));
    has("runtime token=***");
    has("github token=*** secret=***");
    has("var=teal message=test commit");
    // ACT=true is `hearth exec`'s, as act's: a forge's job is no local run.
    has("act=unset ctx=");
    let lines = h.forge.log_lines(id);
    assert!(!task.runtime_token.is_empty() && !task.token.is_empty());
    for secret in [&task.token, &task.runtime_token] {
        assert!(lines.iter().all(|l| !l.contains(secret.as_str())));
    }
}

#[tokio::test]
async fn register_asks_what_it_is_not_told() {
    let h = Harness::start(Options::gitea()).await;
    h.config("");
    let mut child = h
        .command(&["register"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("register starts");
    let answers = format!(
        "{}\n{}\nasked-name\nlinux:host\n",
        h.forge.url(),
        harness::TOKEN
    );
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(answers.as_bytes()).await.expect("answers");
    drop(stdin);
    let output = child.wait_with_output().await.expect("register ends");
    assert!(output.status.success(), "{output:?}");
    let runners = h.forge.runners();
    assert_eq!(runners[0].name, "asked-name");
    assert_eq!(runners[0].labels, ["linux"]);
}

#[tokio::test]
async fn register_takes_forgejo_variables_and_a_token_file() {
    let h = Harness::start(Options::forgejo()).await;
    h.config("");
    std::fs::write(h.path("token"), format!("{}\n", harness::TOKEN)).expect("token file");
    let output = h
        .command(&["register", "--no-interactive", "--token-file", "token"])
        .env("FORGEJO_INSTANCE_URL", h.forge.url())
        .env("FORGEJO_RUNNER_NAME", "from-env")
        .env(
            "FORGEJO_RUNNER_LABELS",
            "linux:host,docker-ish:docker://alpine:3",
        )
        .output()
        .await
        .expect("register runs");
    assert!(output.status.success(), "{output:?}");
    let runners = h.forge.runners();
    assert_eq!(runners[0].name, "from-env");
    assert_eq!(runners[0].labels, ["linux", "docker-ish"]);
}

#[tokio::test]
async fn register_waits_for_a_forge_that_is_starting() {
    let h = Harness::start(Options::gitea()).await;
    h.config("");
    h.forge.go_down().await;
    let register = h.register(&["--labels", "linux:host"]);
    let forge = &h.forge;
    let comes_up = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        forge.come_up().await.expect("the forge comes up");
    };
    let (output, ()) = tokio::join!(register, comes_up);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(h.forge.runners().len(), 1);
}

#[tokio::test]
async fn the_daemon_declares_its_labels_and_copes_with_an_old_forge() {
    // A forge too old for Declare: the job still runs.
    let mut options = Options::gitea();
    options.declare_unimplemented = true;
    let h = Harness::ready(options, FAST).await;
    let (_, task, log) = h.run(TaskSpec::new(job("      - run: true\n"))).await;
    assert_eq!(task.status, Status::Success);
    assert!(log.contains("too old"), "{log}");

    // New labels from the config reach the forge and the .runner file.
    let h = Harness::ready(
        Options::gitea(),
        &format!("{FAST}  labels:\n    - linux:host\n    - extra:host\n"),
    )
    .await;
    let daemon = h.daemon(&[]);
    h.forge
        .wait_until(LONG, || {
            (h.forge.runners()[0].labels == ["linux", "extra"]).then_some(())
        })
        .await
        .expect("the labels are declared");
    daemon.stop().await;
    let file = std::fs::read_to_string(h.path(".runner")).expect(".runner");
    assert!(file.contains("extra:host"), "{file}");
}

#[tokio::test]
async fn failed_and_partial_acks_still_deliver_every_row_once() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    h.forge.set_log_ack_limit(Some(7));
    h.forge.fail_next(
        hearth_fake_forge::Fault::http(500)
            .times(3)
            .only(hearth_fake_forge::Method::UpdateLog),
    );
    h.forge.fail_next(
        hearth_fake_forge::Fault::http(503)
            .times(2)
            .only(hearth_fake_forge::Method::UpdateLog)
            .after_handling(),
    );
    let payload = job(
        r#"      - run: for i in $(seq 1 300); do echo "row $i"; done
"#,
    );
    let (id, task, _) = h.run(TaskSpec::new(payload)).await;
    assert_eq!(task.status, Status::Success);
    assert!(task.log_archived);
    let rows = h.rows_starting(id, "row ");
    let expected: Vec<String> = (1..=300).map(|i| format!("row {i}")).collect();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn a_second_signal_cancels_running_jobs_at_once() {
    let h = Harness::ready(
        Options::gitea(),
        &FAST.replace("shutdown_timeout: 1s", "shutdown_timeout: 1h"),
    )
    .await;
    let id = h.forge.queue_task(TaskSpec::new(long_job_with_cleanup()));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "started", LONG).await;
    daemon.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Still running: the grace is an hour.
    assert_eq!(h.forge.task(id).expect("task").status, Status::Running);
    let second = Instant::now();
    daemon.signal(libc::SIGINT);
    let (code, log) = daemon.exit(Duration::from_secs(15)).await;
    assert!(second.elapsed() < Duration::from_secs(5), "{log}");
    assert_eq!(code, Some(0), "{log}");
    let task = h.forge.task(id).expect("task");
    assert_eq!(task.status, Status::Cancelled);
    assert!(h.forge.log_lines(id).iter().any(|l| l == "cleaned"));
}

#[tokio::test]
async fn a_plain_http_forge_needs_no_certificate_store() {
    let h = Harness::start(Options::gitea()).await;
    h.config("");
    // rustls-native-certs reads these instead of the system's store: here, nothing.
    let output = h
        .command(&[
            "register",
            "--no-interactive",
            "--instance",
            &h.forge.url(),
            "--token",
            harness::TOKEN,
            "--labels",
            "linux:host",
        ])
        .env("SSL_CERT_FILE", h.path("no-such-bundle.pem"))
        .env("SSL_CERT_DIR", h.path("no-such-folder"))
        .output()
        .await
        .expect("register runs");
    assert!(output.status.success(), "{output:?}");
}

#[tokio::test]
async fn slow_log_acks_hold_nothing_up() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    h.forge.set_response_delay(
        Some(hearth_fake_forge::Method::UpdateLog),
        Duration::from_millis(700),
    );
    let payload = job(
        r#"      - run: for i in $(seq 1 2000); do echo "row $i"; done
      - run: echo second step
"#,
    );
    let (id, task, _) = h.run(TaskSpec::new(payload)).await;
    assert_eq!(task.status, Status::Success);
    let rows = h.rows_starting(id, "row ");
    assert_eq!(rows.len(), 2000);
    assert_eq!(rows.last().map(String::as_str), Some("row 2000"));
    assert!(h.step_rows(id, 1).iter().any(|l| l == "second step"));
}

#[tokio::test]
async fn dispatch_inputs_are_typed_as_the_workflow_declares_them() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let payload = "name: ci\non:\n  workflow_dispatch:\n    inputs:\n      flag:\n        type: boolean\n      count:\n        type: number\n      word:\n        type: string\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: echo 'flag=${{ toJSON(inputs.flag) }} count=${{ toJSON(inputs.count) }} word=${{ inputs.word }} raw=${{ toJSON(github.event.inputs.flag) }}'\n";
    let spec = TaskSpec::new(payload).with_context(serde_json::json!({
        "event_name": "workflow_dispatch",
        "event": {"inputs": {"flag": "true", "count": "3", "word": "hi"}},
    }));
    let (id, task, log) = h.run(spec).await;
    assert_eq!(task.status, Status::Success, "{log}");
    let rows = h.step_rows(id, 0);
    assert!(
        rows.iter()
            .any(|r| r == "flag=true count=3 word=hi raw=\"true\""),
        "{rows:#?}"
    );
}

#[tokio::test]
async fn checkout_is_not_skipped_when_the_workspace_is_empty() {
    // `hearth exec` skips actions/checkout of the repository itself, its workspace being a copy
    // already; a forge's job starts empty, so the step must not pretend to have checked out.
    let h = Harness::ready(Options::gitea(), FAST).await;
    let (id, task, _) = h
        .run(TaskSpec::new(job("      - uses: actions/checkout@v4\n")))
        .await;
    assert_eq!(task.status, Status::Failure);
    let rows = h.step_rows(id, 0);
    assert!(
        rows.iter().any(|r| r.contains("actions/checkout@v4")),
        "{rows:#?}"
    );
}

#[tokio::test]
async fn actions_come_from_the_forges_default_actions_url() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let actions = h.path("actions");
    action_repos::make_actions(&actions);
    let spec = TaskSpec::new(job(action_repos::STEPS)).with_context(serde_json::json!({
        "gitea_default_actions_url": format!("file://{}", actions.display()),
    }));
    let (id, task, log) = h.run(spec).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{log}\n{lines:#?}");
    assert!(h.step_rows(id, 0).iter().any(|l| l == "hello forge"));
    assert!(h
        .step_rows(id, 1)
        .iter()
        .any(|l| l == "hello from node Ann, state from-pre"));
    // Pre and post steps are not the forge's steps: their rows come before the first step
    // and after the last (the forge shows them as the job's set-up and end).
    let first = task.steps[0].log_index as usize;
    assert!(
        lines[..first].iter().any(|l| l == "node pre Ann"),
        "{lines:#?}"
    );
    let last = &task.steps[1];
    let end = (last.log_index + last.log_length) as usize;
    assert!(lines[end..].iter().any(|l| l == "node post"), "{lines:#?}");
    // Checked out once per commit, in the runner's folder.
    let cached = std::fs::read_dir(h.path("work/_actions/acme/greet"))
        .expect("the action's cache")
        .count();
    assert_eq!(cached, 2, "its git folder and one checked-out commit");
}

#[tokio::test]
async fn github_mirror_stands_in_for_github() {
    let h = Harness::start(Options::gitea()).await;
    let actions = h.path("mirror");
    action_repos::make_actions(&actions);
    h.config(&format!(
        "{FAST}  github_mirror: file://{}\n",
        actions.display()
    ));
    h.registered().await;
    let spec = TaskSpec::new(job(action_repos::STEPS)).with_context(serde_json::json!({
        "gitea_default_actions_url": "https://github.com",
    }));
    let (id, task, log) = h.run(spec).await;
    assert_eq!(task.status, Status::Success, "{log}");
    assert!(h.step_rows(id, 0).iter().any(|l| l == "hello forge"));
}

#[tokio::test]
async fn the_oidc_request_token_is_masked() {
    // The forge's OIDC request token reaches jobs as `ACTIONS_ID_TOKEN_REQUEST_TOKEN` (the
    // Forgejo key first) and stays readable in the `github` context under both keys.
    let h = Harness::ready(Options::gitea(), FAST).await;
    let payload = job(r#"      - run: |
          echo "url=$ACTIONS_ID_TOKEN_REQUEST_URL"
          echo "oidc=$ACTIONS_ID_TOKEN_REQUEST_TOKEN"
          echo "gitea=${{ github.actions_id_token_request_token }}"
"#);
    let spec = TaskSpec::new(payload).with_context(serde_json::json!({
        "forgejo_actions_id_token_request_url": "https://forge.example/oidc",
        "forgejo_actions_id_token_request_token": "oidc-forgejo-request-token-7f3a",
        "actions_id_token_request_url": "https://forge.example/gitea-oidc",
        "actions_id_token_request_token": "oidc-gitea-request-token-91cc",
    }));
    let (id, task, log) = h.run(spec).await;
    assert_eq!(task.status, Status::Success, "{log}");
    let rows = h.step_rows(id, 0);
    for line in ["url=https://forge.example/oidc", "oidc=***", "gitea=***"] {
        assert!(rows.iter().any(|r| r == line), "no {line:?} in {rows:#?}");
    }
    let lines = h.forge.log_lines(id);
    for token in ["oidc-forgejo-request-token", "oidc-gitea-request-token"] {
        assert!(lines.iter().all(|l| !l.contains(token)), "{lines:#?}");
    }
}

#[tokio::test]
async fn errors_that_echo_the_token_are_masked() {
    // `github.token` is the task's token; an error that quotes an evaluated value must not
    // show it, whether the engine (the job's timeout) or the daemon (its labels) reports it.
    let h = Harness::ready(Options::gitea(), FAST).await;
    let timeout = "name: ci\non: push\njobs:\n  build:\n    runs-on: linux\n    timeout-minutes: ${{ github.token }}\n    steps:\n      - run: echo never runs\n";
    let labels = "name: ci\non: push\njobs:\n  build:\n    runs-on: ${{ github.token }}\n    steps:\n      - run: echo never runs\n";
    for (payload, says) in [
        (timeout, "timeout-minutes must be a number, not '***'"),
        (labels, "***"),
    ] {
        let spec = TaskSpec::new(payload).with_runs_on(["linux"]);
        let (id, task, log) = h.run(spec).await;
        assert_eq!(task.status, Status::Failure, "{log}");
        let lines = h.forge.log_lines(id);
        assert!(!task.token.is_empty());
        assert!(
            lines.iter().all(|l| !l.contains(task.token.as_str())),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.contains(says)), "{lines:#?}");
    }
}

/// The job folders under the runner's `workdir_parent` (not its tool cache or actions).
fn job_folders(h: &Harness) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(h.path("work"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().unwrap_or_default();
                    name != "tool-cache" && name != "_actions"
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Alive: `/proc` has it and it is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].trim().chars().next());
        !matches!(state, Some('Z' | 'X'))
    })
}

#[tokio::test]
async fn a_runner_killed_mid_job_removes_its_leftovers_when_it_starts_again() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let pid_file = h.path("sleeper");
    let steps = format!(
        "      - run: |\n          sleep 300 &\n          echo $! > {}\n          echo started\n          sleep 60\n",
        pid_file.display()
    );
    let id = h.forge.queue_task(TaskSpec::new(job(&steps)));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "started", LONG).await;
    let sleeper: i32 = std::fs::read_to_string(&pid_file)
        .expect("the step wrote its sleeper's pid")
        .trim()
        .parse()
        .expect("a pid");
    // What a crash, the OOM killer or `kill -9` does: no cleanup at all.
    daemon.signal(libc::SIGKILL);
    daemon.exit(Duration::from_secs(15)).await;
    let left = job_folders(&h);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(alive(sleeper));

    let daemon = h.daemon(&[]);
    let deadline = Instant::now() + LONG;
    while (alive(sleeper) || !job_folders(&h).is_empty()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = daemon.stop().await;
    assert!(!alive(sleeper), "{log}");
    assert_eq!(job_folders(&h), Vec::<std::path::PathBuf>::new(), "{log}");
    assert!(
        log.contains(&format!(
            "removed what an earlier run left: folder {}",
            left[0].display()
        )),
        "{log}"
    );
}

/// A job container clones the task's repository from the forge, which is on this machine's
/// loopback: the job is given an address of the forge it can reach (pain point #1), and the
/// real `git` in the image clones over HTTP from it.
#[tokio::test]
async fn a_container_job_clones_the_repository_from_a_forge_on_the_loopback() {
    let repos = tempfile::tempdir().unwrap();
    let source = repos.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("README"), "hello from the forge\n").unwrap();
    let bare = repos.path().join("test-owner/test-repo.git");
    let git = |dir: &std::path::Path, args: &[&str]| {
        let status = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
            .args(args)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    };
    git(&source, &["init", "-q", "-b", "main"]);
    git(&source, &["add", "README"]);
    git(&source, &["commit", "-q", "-m", "first"]);
    git(
        repos.path(),
        &[
            "clone",
            "-q",
            "--bare",
            "source",
            "test-owner/test-repo.git",
        ],
    );
    git(&bare, &["update-server-info"]);

    let h = Harness::start(Options::gitea().with_git_root(repos.path())).await;
    h.config(&format!(
        "{FAST}  labels: [\"linux:docker://hearth-test/debian:1\"]\n"
    ));
    h.registered().await;
    let payload = job(
        "      - run: |\n          echo \"server $GITHUB_SERVER_URL\"\n          \
         git clone -q \"$GITHUB_SERVER_URL/$GITHUB_REPOSITORY.git\" repo\n          cat repo/README\n",
    );
    let (id, task, log) = h.run(TaskSpec::new(payload)).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    assert!(
        lines.iter().any(|l| l == "hello from the forge"),
        "{lines:#?}"
    );
    // Not the runner's loopback address, which inside the container is the container itself.
    let server = lines
        .iter()
        .find_map(|l| l.strip_prefix("server "))
        .expect("the server line");
    assert!(!server.contains("127.0.0.1"), "{server}");
}

/// `container.options` apply to every job container (act_runner's example suggests
/// `--add-host` for reaching the forge); options that reach outside the sandbox stop the
/// daemon at start, saying which, rather than failing every job.
#[tokio::test]
async fn the_runners_container_options_apply_and_refused_ones_stop_it_at_start() {
    let labels = "  labels: [\"linux:docker://hearth-test/busybox:1\"]\n";
    let h = Harness::ready(
        Options::gitea(),
        &format!(
            "{FAST}{labels}container:\n  options: --add-host gitea.test:10.1.2.3 -e FROM_OPTIONS=yes\n"
        ),
    )
    .await;
    let payload = job(
        "      - run: |\n          grep gitea.test /etc/hosts | tr -s '[:space:]' ' '; echo\n          echo \"env $FROM_OPTIONS\"\n",
    );
    let (id, task, log) = h.run(TaskSpec::new(payload)).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    assert!(
        lines.iter().any(|l| l.trim() == "10.1.2.3 gitea.test"),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l == "env yes"), "{lines:#?}");

    h.config(&format!(
        "{FAST}{labels}container:\n  options: --cap-add SYS_ADMIN\n"
    ));
    let (code, log) = h.daemon(&[]).exit(LONG).await;
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("container.options: the container option `--cap-add` reaches outside"),
        "{log}"
    );
}

#[tokio::test]
async fn a_runner_killed_mid_container_job_removes_its_containers_and_network_when_it_starts_again()
{
    let h = Harness::ready(
        Options::gitea(),
        &format!("{FAST}  labels: [\"linux:docker://hearth-test/busybox:1\"]\n"),
    )
    .await;
    let payload = "name: ci\non: push\njobs:\n  build:\n    runs-on: linux\n    services:\n      \
                   idle:\n        image: hearth-test/busybox:1\n        entrypoint: sleep\n        \
                   command: '300'\n    steps:\n      - run: |\n          echo started\n          \
                   sleep 60\n";
    let id = h.forge.queue_task(TaskSpec::new(payload.to_owned()));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "started", LONG).await;
    // What a crash, the OOM killer or `kill -9` does: no cleanup at all.
    daemon.signal(libc::SIGKILL);
    daemon.exit(Duration::from_secs(15)).await;
    let uuid = h.runner_uuid();
    let left = docker_leftovers(&uuid);
    assert_eq!(
        left.len(),
        3,
        "the job's and the service's containers, the network: {left:?}"
    );

    // The daemon reaps before its first fetch: once it fetches, the reap is over.
    let fetches = h.forge.request_count(hearth_fake_forge::Method::FetchTask);
    let daemon = h.daemon(&[]);
    let deadline = Instant::now() + LONG;
    while h.forge.request_count(hearth_fake_forge::Method::FetchTask) == fetches
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = daemon.stop().await;
    assert_eq!(docker_leftovers(&uuid), Vec::<String>::new(), "{log}");
    assert!(log.contains("removed what an earlier run left"), "{log}");
    let folders: Vec<_> = std::fs::read_dir(h.path("work/docker"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name())
                .filter(|name| name != "tool-cache")
                .collect()
        })
        .unwrap_or_default();
    assert!(folders.is_empty(), "job folders left: {folders:?}\n{log}");
}

/// The seeds' scenario, end to end: the runner's Docker is a second daemon reached over TCP
/// with TLS; its job image and a service's image are private, on the authenticated registry,
/// and the only credentials for pulling them are a Kubernetes-style `.dockerconfigjson`
/// mounted as a file — no `docker login` anywhere. The file is rotated while the daemon runs
/// and the next job uses it. A `host` job pushes an image with no login step through
/// `expose_to_jobs`, and its `DOCKER_CONFIG` is gone afterwards, nothing in any home folder.
#[tokio::test]
async fn the_seeds_scenario_private_images_over_tls_from_a_mounted_secret_and_a_push_without_login()
{
    use base64::Engine as _;
    const PRIVATE: &str = "127.0.0.1:5999/private/busybox:1";
    const SERVICE: &str = "127.0.0.1:5999/private/service:1";
    const PASSWORD: &str = "hearth-registry-test";
    let dockerd = hearth_test_dockerd::TlsDockerd::start();
    let h = Harness::start(Options::gitea()).await;
    h.env("DOCKER_TLS_VERIFY", "1");
    h.env(
        "DOCKER_CERT_PATH",
        &dockerd.client_certs.display().to_string(),
    );
    // The runner's home: nothing may be written there.
    let home = h.path("home");
    std::fs::create_dir_all(&home).unwrap();
    h.env("HOME", &home.display().to_string());
    let secret = h.path("dockerconfigjson");
    let write_secret = |password: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("hearth:{password}"));
        let json = format!(r#"{{"auths":{{"127.0.0.1:5999":{{"auth":"{auth}"}}}}}}"#);
        std::fs::write(&secret, json).expect("secret written");
    };
    let push_password = h.path("push-password");
    std::fs::write(&push_password, format!("{PASSWORD}\n")).unwrap();
    // Pulls go to 127.0.0.1:5999 with the mounted Secret; the push goes to the same registry
    // as `localhost:5999`, the one registry exposed to jobs.
    h.config(&format!(
        "{FAST}  labels: [\"linux:docker://{PRIVATE}\", \"build:host\"]\n\
         container:\n  docker_host: {}\n  docker_config: {}\n  registries:\n    \
         - {{host: 'localhost:5999', username: hearth, password_file: {}, expose_to_jobs: true}}\n",
        dockerd.address,
        secret.display(),
        push_password.display(),
    ));
    h.registered().await;
    let forget_images = || {
        let _ = dockerd.cli().args(["rmi", "-f", PRIVATE, SERVICE]).output();
    };
    // The private service starts and gets healthy. (Reaching it by its alias is shown on the
    // machine's own daemon: this one runs without iptables, so as not to disturb that one,
    // and Docker's embedded DNS needs them.) The forge, on this machine's loopback, answers
    // from inside the job container: an HTTP answer, even a 404, shows it is reachable.
    let container_job = format!(
        r#"name: ci
on: push
jobs:
  build:
    runs-on: linux
    services:
      web:
        image: {SERVICE}
        entrypoint: sh
        command: -c mkdir${{IFS}}-p${{IFS}}/www&&echo${{IFS}}hello${{IFS}}from${{IFS}}web>/www/index.html&&httpd${{IFS}}-f${{IFS}}-p${{IFS}}8080${{IFS}}-h${{IFS}}/www
        options: --health-cmd 'wget -q -O /dev/null http://127.0.0.1:8080/' --health-interval 200ms --health-retries 50
    steps:
      - id: first
        run: |
          echo "in $(pwd) as $(head -1 /etc/passwd | cut -d: -f1)"
          timeout 20 wget -O /dev/null "$GITHUB_SERVER_URL/no-such-page" 2>&1 | grep -o 'HTTP/1.1 [0-9]*' || echo no answer from $GITHUB_SERVER_URL
          echo made-in-the-job > made.txt
          echo "word=bird" >> "$GITHUB_OUTPUT"
      - id: second
        run: echo "hash ${{{{ hashFiles('made.txt') }}}} word ${{{{ steps.first.outputs.word }}}}"
"#
    );
    let tag = format!("pushed-{}", std::process::id());
    let host_job = format!(
        r#"name: push
on: push
jobs:
  push:
    runs-on: build
    steps:
      - run: |
          unset DOCKER_TLS_VERIFY DOCKER_CERT_PATH
          echo "config at $DOCKER_CONFIG"
          cat "$DOCKER_CONFIG/config.json"; echo
          docker tag hearth-test/busybox:1 localhost:5999/private/busybox:{tag}
          docker push localhost:5999/private/busybox:{tag} >/dev/null && echo pushed
          docker rmi localhost:5999/private/busybox:{tag} >/dev/null
"#
    );

    write_secret(PASSWORD);
    let daemon = h.daemon(&[]);
    let first = h.forge.queue_task(TaskSpec::new(container_job.clone()));
    let task = h.done(first, Duration::from_secs(120)).await;
    let lines = h.forge.log_lines(first);
    assert_eq!(
        task.status,
        Status::Success,
        "{lines:#?}\n{}",
        dockerd.log()
    );
    // The daemon's Docker is on the network: the job's folder is a volume of that daemon's,
    // reached through the archive API (copy mode), file commands and `hashFiles` included.
    let hash = {
        use sha2::Digest as _;
        let file = sha2::Sha256::digest(b"made-in-the-job\n");
        format!("{:x}", sha2::Sha256::digest(file))
    };
    let hashed = format!("hash {hash} word bird");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("a volume of the daemon's, copied through the API")),
        "{lines:#?}"
    );
    for expected in [
        "Service `web` is ready",
        "in /__w/workspace as root",
        "HTTP/1.1 404",
        hashed.as_str(),
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}: {lines:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(SERVICE) && l.contains("with credentials from the Docker config")),
        "{lines:#?}"
    );

    // Rotated to a password the registry refuses: the next job fails saying where it looked.
    write_secret("a-rotated-wrong-password");
    forget_images();
    let second = h.forge.queue_task(TaskSpec::new(container_job.clone()));
    let task = h.done(second, Duration::from_secs(120)).await;
    assert_eq!(task.status, Status::Failure);
    let lines = h.forge.log_lines(second);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cannot pull the image") && l.contains("dockerconfigjson")),
        "{lines:#?}"
    );
    assert!(lines
        .iter()
        .all(|l| !l.contains("a-rotated-wrong-password")));

    // Rotated back: the next job pulls; the daemon has run all along.
    write_secret(PASSWORD);
    forget_images();
    let third = h.forge.queue_task(TaskSpec::new(container_job));
    let task = h.done(third, Duration::from_secs(120)).await;
    assert_eq!(
        task.status,
        Status::Success,
        "{:#?}",
        h.forge.log_lines(third)
    );

    // The host job pushes with the credentials exposed to it, and they are masked.
    let push = h.forge.queue_task(TaskSpec::new(host_job));
    let task = h.done(push, Duration::from_secs(120)).await;
    let lines = h.forge.log_lines(push);
    assert_eq!(task.status, Status::Success, "{lines:#?}");
    assert!(lines.iter().any(|l| l == "pushed"), "{lines:#?}");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("hearth:{PASSWORD}"));
    assert!(
        lines
            .iter()
            .all(|l| !l.contains(&auth) && !l.contains(PASSWORD)),
        "{lines:#?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("localhost:5999") && l.contains("***")));
    let config = lines
        .iter()
        .find_map(|l| l.strip_prefix("config at "))
        .expect("the job's DOCKER_CONFIG");
    assert!(!config.is_empty());
    let manifest = std::process::Command::new("curl")
        .args([
            "-s",
            "-f",
            "-o",
            "/dev/null",
            "-u",
            &format!("hearth:{PASSWORD}"),
        ])
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ])
        .arg(format!(
            "http://127.0.0.1:5999/v2/private/busybox/manifests/{tag}"
        ))
        .status()
        .expect("curl");
    assert!(
        manifest.success(),
        "the pushed image is not in the registry"
    );

    daemon.stop().await;
    assert!(!std::path::Path::new(config).exists(), "{config} is left");
    assert!(
        !home.join(".docker").exists(),
        "a Docker config in the runner's home"
    );
    forget_images();
    // Nothing of the runner's is left in its Docker.
    assert_eq!(
        docker_leftovers_in(&|| dockerd.cli(), &h.runner_uuid()),
        Vec::<String>::new()
    );
}

/// Tasks whose steps run in containers of their own (`uses: docker://`), in a container job
/// and in a host job: each step's container runs (the container job's on its network), its
/// output and outputs reach the forge, and nothing of the runner's stays in Docker.
#[tokio::test]
async fn docker_steps_run_in_container_and_host_jobs_and_leave_nothing() {
    let h = Harness::ready(
        Options::gitea(),
        &format!("{FAST}  labels: [\"linux:docker://hearth-test/busybox:1\", \"build:host\"]\n"),
    )
    .await;
    for label in ["linux", "build"] {
        let payload = format!(
            r#"name: ci
on: push
jobs:
  build:
    runs-on: {label}
    steps:
      - id: image
        uses: docker://hearth-test/busybox:1
        with:
          entrypoint: sh
          args: '-c "echo step container in $PWD says $INPUT_WORD; echo said=yes >> $GITHUB_OUTPUT"'
          word: {label}
      - run: 'echo "output ${{{{ steps.image.outputs.said }}}}"'
"#
        );
        let (id, task, log) = h.run(TaskSpec::new(payload)).await;
        let lines = h.forge.log_lines(id);
        assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
        let said = format!("step container in /github/workspace says {label}");
        assert!(lines.contains(&said), "{lines:#?}");
        assert!(lines.iter().any(|l| l == "output yes"), "{lines:#?}");
    }
    assert_eq!(docker_leftovers(&h.runner_uuid()), Vec::<String>::new());
}

/// Actions from the forge itself, served over smart HTTP as Gitea serves them, in a container
/// job whose image has no node (the runner lends its own): a remote composite action, a
/// JavaScript one with pre, main, post and state, and a Docker action built from its
/// Dockerfile with pre and post entrypoints, through the forge's default actions URL, and
/// one named by its full URL. The task's token goes with every fetch from the forge, and to no
/// other host: an action named by a URL elsewhere is fetched without it.
#[tokio::test]
async fn a_container_job_runs_the_forges_own_actions_with_a_lent_node_and_the_token_only_there() {
    let repos = tempfile::tempdir().unwrap();
    action_repos::make_actions(repos.path());
    // busybox has `sh`, not bash: the composite action as a busybox image can run it.
    std::fs::remove_dir_all(repos.path().join("acme/greet")).unwrap();
    action_repos::make_repo(
        repos.path(),
        "acme/greet",
        &[(
            "action.yml",
            "name: greet\ninputs:\n  who:\n    default: world\nruns:\n  using: composite\n  steps:\n    - run: echo \"hello ${{ inputs.who }}\"\n      shell: sh\n",
        )],
        "v1",
    );
    // A Docker action from the forge, built from its Dockerfile on the busybox test image.
    action_repos::make_repo(
        repos.path(),
        "acme/shout",
        &[
            (
                "action.yml",
                "name: shout\ninputs:\n  who:\n    required: true\noutputs:\n  loud:\n    description: loud\nruns:\n  using: docker\n  image: Dockerfile\n  pre-entrypoint: /pre.sh\n  args: ['${{ inputs.who }}']\n  post-entrypoint: /post.sh\n",
            ),
            (
                "Dockerfile",
                "FROM hearth-test/busybox:1\nCOPY *.sh /\nRUN chmod +x /pre.sh /post.sh\nENTRYPOINT [\"sh\", \"/main.sh\"]\n",
            ),
            ("pre.sh", "#!/bin/sh\necho \"docker pre for $INPUT_WHO\"\n"),
            (
                "main.sh",
                "echo \"docker action shouts $1 in $PWD\"\necho \"loud=HELLO $1\" >> \"$GITHUB_OUTPUT\"\n",
            ),
            ("post.sh", "#!/bin/sh\necho docker post\n"),
        ],
        "v1",
    );
    let elsewhere = tempfile::tempdir().unwrap();
    action_repos::make_repo(
        elsewhere.path(),
        "other/hello",
        &[(
            "action.yml",
            "name: other\nruns:\n  using: composite\n  steps:\n    - run: echo \"hello from elsewhere\"\n      shell: sh\n",
        )],
        "v1",
    );
    let other = FakeForge::start(Options::gitea().with_git_root(elsewhere.path()))
        .await
        .expect("the other host");

    let h = Harness::start(Options::gitea().with_git_root(repos.path())).await;
    h.config(&format!(
        "{FAST}  labels: [\"linux:docker://hearth-test/busybox:1\"]\n"
    ));
    h.registered().await;
    let forge = h.forge.url();
    let steps = format!(
        "{}      - uses: {forge}/acme/greet@v1\n        with:\n          who: by URL\n      - uses: {}/other/hello@v1\n      - id: shout\n        uses: acme/shout@v1\n        with:\n          who: daemon\n      - run: echo \"shouted ${{{{ steps.shout.outputs.loud }}}}\"\n",
        action_repos::STEPS,
        other.url()
    );
    let spec = TaskSpec::new(job(&steps)).with_context(serde_json::json!({
        "gitea_default_actions_url": forge,
    }));
    let (id, task, log) = h.run(spec).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    for line in [
        "node pre Ann",
        "hello forge",
        "hello from node Ann, state from-pre",
        "hello by URL",
        "hello from elsewhere",
        "docker pre for daemon",
        "docker action shouts daemon in /github/workspace",
        "shouted HELLO daemon",
        "docker post",
        "node post",
    ] {
        assert!(lines.iter().any(|l| l == line), "no {line:?} in {lines:#?}");
    }
    // Pre steps run first, in the order of their steps; post steps last, in reverse.
    let at = |line: &str| lines.iter().position(|l| l == line).unwrap();
    assert!(at("node pre Ann") < at("docker pre for daemon"));
    assert!(at("docker pre for daemon") < at("hello forge"));
    assert!(at("shouted HELLO daemon") < at("docker post"));
    assert!(at("docker post") < at("node post"));
    assert_eq!(docker_leftovers(&h.runner_uuid()), Vec::<String>::new());

    // The forge gives each task a token of its own: every fetch from the forge carries it.
    use base64::Engine as _;
    let at_forge = h.forge.git_requests();
    assert!(!at_forge.is_empty());
    let tokens: std::collections::BTreeSet<String> = at_forge
        .iter()
        .map(|r| {
            let basic = r
                .authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Basic "));
            let decoded = basic
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|d| String::from_utf8_lossy(&d).into_owned());
            decoded.unwrap_or_else(|| panic!("a fetch from the forge without the token: {r:?}"))
        })
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let token = tokens
        .first()
        .and_then(|t| t.strip_prefix("x-access-token:"))
        .unwrap();
    assert!(!token.is_empty());
    assert!(
        !lines.iter().any(|l| l.contains(token)),
        "the token in the log"
    );
    let at_other = other.git_requests();
    assert!(!at_other.is_empty());
    assert!(
        at_other.iter().all(|r| r.authorization.is_none()),
        "{at_other:#?}"
    );
}

/// What an older forge sends for a job that calls a reusable workflow: the caller itself,
/// `uses:` and all. The runner runs the called workflow's jobs within the task, as act_runner
/// did: the local file read from the repository at the task's commit (fetched from the forge
/// with the task's token), `with:` typed, the forge's `needs` in reach of the caller's
/// expressions, the called jobs in `needs` order with their rows in the task's log, and the
/// called workflow's outputs as the task's.
#[tokio::test]
async fn a_caller_job_from_an_older_forge_runs_the_called_workflow() {
    let repos = tempfile::tempdir().unwrap();
    let called = r#"on:
  workflow_call:
    inputs:
      who:
        type: string
        required: true
      times:
        type: number
        default: 2
    outputs:
      greeting:
        value: ${{ jobs.second.outputs.text }}
jobs:
  first:
    runs-on: linux
    outputs:
      word: ${{ steps.w.outputs.word }}
    steps:
      - id: w
        run: echo "word=hello-${{ inputs.who }}-${{ inputs.times }}" >> "$GITHUB_OUTPUT"
  second:
    needs: first
    runs-on: linux
    outputs:
      text: ${{ steps.t.outputs.text }}
    steps:
      - id: t
        run: |
          echo "second got ${{ needs.first.outputs.word }}"
          echo "text=${{ needs.first.outputs.word }}!" >> "$GITHUB_OUTPUT"
"#;
    action_repos::make_repo(
        repos.path(),
        "test-owner/test-repo",
        &[(".gitea/workflows/called.yml", called)],
        "v1",
    );
    let sha = String::from_utf8(
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(repos.path().join("test-owner/test-repo"))
            .output()
            .expect("git")
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();

    let h = Harness::ready(Options::gitea().with_git_root(repos.path()), FAST).await;
    let payload = "name: ci\non: push\njobs:\n  call:\n    needs: setup\n    uses: ./.gitea/workflows/called.yml\n    with:\n      who: ${{ needs.setup.outputs.name }}\n";
    let spec = TaskSpec::new(payload.to_owned())
        .with_context(serde_json::json!({ "sha": sha }))
        .with_need(
            "setup",
            TaskResult::Success,
            BTreeMap::from([("name".to_owned(), "forge".to_owned())]),
        );
    let (id, task, log) = h.run(spec).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    let at = |text: &str| {
        lines
            .iter()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no {text:?} in {lines:#?}"))
    };
    assert!(at("Job call / first") < at("second got hello-forge-2"));
    let outputs: BTreeMap<String, String> = task.output_map();
    assert_eq!(
        outputs.get("greeting").map(String::as_str),
        Some("hello-forge-2!")
    );
    // The repository came from the forge, with the task's token.
    let fetched = h.forge.git_requests();
    assert!(fetched
        .iter()
        .any(|r| r.path.starts_with("/test-owner/test-repo/")));
    assert!(
        fetched.iter().all(|r| r.authorization.is_some()),
        "{fetched:#?}"
    );
}

/// The daemon runs a cache server and gives each job its own URL to it: a host job saves with
/// GitHub's client and a later task restores by a restore key; a container job on its own
/// network reaches the server (forwarded from the network's gateway), with a token that a
/// changed one does not pass; the token is masked in the log.
#[tokio::test]
async fn jobs_reach_the_runners_cache_from_the_host_and_from_containers() {
    let modules = node_modules::node_modules();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cache/tests/toolkit/cache.js");
    let h = Harness::ready(
        Options::gitea(),
        &format!("{FAST}  labels: [\"build:host\", \"linux:docker://hearth-test/busybox:1\"]\n"),
    )
    .await;
    let host_job = |steps: &str| {
        format!(
            "name: ci\non: push\njobs:\n  build:\n    runs-on: build\n    env:\n      NODE_PATH: {}\n      GITHUB_SERVER_URL: http://forge.example\n    steps:\n{steps}",
            modules.display()
        )
    };
    // The job leaves its URL where the test reads it, to look for the token in every log.
    let url_file = h.path("cache-url");
    let save = host_job(&format!(
        "      - run: mkdir -p deps && echo cached-bytes > deps/file && mkdir -p .temp\n      - run: RUNNER_TEMP=$PWD/.temp node {} save deps-1 deps\n      - run: echo \"url $ACTIONS_CACHE_URL\"\n      - run: echo \"$ACTIONS_CACHE_URL\" > {}\n",
        script.display(),
        url_file.display()
    ));
    let (id, task, log) = h.run(TaskSpec::new(save)).await;
    let written = std::fs::read_to_string(&url_file).expect("the job wrote its cache URL");
    let token = written
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(token.len() > 40, "{written}");
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    let saved = lines
        .iter()
        .find(|l| l.starts_with("{\"saved\""))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(!saved.contains("-1"), "{saved}");
    // The token is masked where the URL is printed.
    let url = lines
        .iter()
        .find(|l| l.starts_with("url "))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(url.contains("/***/"), "{url}");
    // The job's log says what it did with the cache.
    assert!(
        lines.iter().any(|l| l == "Cache: saved deps-1"),
        "{lines:#?}"
    );
    // The token is in no log: the job's, the daemon's own.
    assert!(!lines.iter().any(|l| l.contains(&token)), "{lines:#?}");
    assert!(!log.contains(&token), "{log}");

    let restore = host_job(&format!(
        "      - run: mkdir -p .temp && RUNNER_TEMP=$PWD/.temp node {} restore deps-2 deps- deps\n      - run: cat deps/file\n",
        script.display()
    ));
    let (id, task, log) = h.run(TaskSpec::new(restore)).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    assert!(
        lines.iter().any(|l| l == "{\"restored\":\"deps-1\"}"),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l == "cached-bytes"), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l == "Cache: hit deps-1 (for deps-2)"),
        "{lines:#?}"
    );
    assert!(!log.contains(&token), "{log}");

    // From a container: nothing matches this key (204); a changed token is refused (403).
    let probe = r#"name: ci
on: push
jobs:
  build:
    runs-on: linux
    steps:
      - run: |
          wget -S -O /dev/null "${ACTIONS_CACHE_URL}_apis/artifactcache/cache?keys=none&version=v" 2>&1 | grep "HTTP/" | sed 's/^ *//'
          bad=$(echo "$ACTIONS_CACHE_URL" | sed 's|/[^/]*/$|/forged/|')
          wget -O /dev/null "${bad}_apis/artifactcache/cache?keys=none&version=v" 2>&1 | grep -o "403 Forbidden"
"#;
    let (id, task, log) = h.run(TaskSpec::new(probe)).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    assert!(
        lines.iter().any(|l| l == "HTTP/1.1 204 No Content"),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l == "403 Forbidden"), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l == "Cache: missed none"),
        "{lines:#?}"
    );
    // The check that the container reaches its cache (and its forge) says nothing when it does.
    assert!(
        !lines.iter().any(|l| l.starts_with("##[warning]")),
        "{lines:#?}"
    );
}

/// A cache the job container cannot reach (here an external server on this machine's loopback
/// where nothing listens: the job network's gateway forwards to nothing) is one warning line in
/// the container job's log, before its steps, naming the address and the fix; the job goes on
/// and succeeds. A host job is not checked and says nothing.
#[tokio::test]
async fn a_cache_a_container_job_cannot_reach_is_one_warning_line_and_the_job_goes_on() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.local_addr().expect("its address").port()
    };
    let cache = format!("http://127.0.0.1:{dead}");
    let h = Harness::ready(
        Options::gitea(),
        &format!(
            "{FAST}  labels: [\"build:host\", \"linux:docker://hearth-test/busybox:1\"]\n\
             cache:\n  external_server: {cache}\n"
        ),
    )
    .await;
    let job = |label: &str| {
        format!(
            "name: ci\non: push\njobs:\n  build:\n    runs-on: {label}\n    steps:\n      - run: echo first step\n      - run: echo still running\n"
        )
    };
    let (id, task, log) = h.run(TaskSpec::new(job("linux"))).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("##[warning]"))
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:#?}");
    let warning = warnings[0];
    assert!(
        warning.starts_with("##[warning]The cache at http://")
            && warning.contains(&format!(
                " (forwarded to {cache}, as the runner reaches it) cannot be reached from the job \
                 container on the network "
            ))
            && warning.contains(&format!(
                "nothing answers at {cache} on the runner's machine"
            ))
            && warning.ends_with(
                "; set cache.external_server to an address the job network reaches. The job \
                 runs without it."
            ),
        "{warning}"
    );
    // Before the first step.
    let first_step = lines
        .iter()
        .position(|l| l == "first step")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let warned = lines.iter().position(|l| l == warning).unwrap_or_default();
    assert!(warned < first_step, "{lines:#?}");
    assert!(lines.iter().any(|l| l == "still running"), "{lines:#?}");

    let (id, task, log) = h.run(TaskSpec::new(job("build"))).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    assert!(
        !lines.iter().any(|l| l.starts_with("##[warning]")),
        "{lines:#?}"
    );
}

/// On a network of the operator's (`container.network`, where act_runner's cache is often out
/// of reach), a container job saves with GitHub's own client and a later one restores by a
/// restore key: the toolkit, mounted read-only, runs in the job's image with its node.
#[tokio::test]
async fn container_jobs_on_an_operators_network_save_and_restore_with_the_toolkit() {
    let network = "hearth-test-cache-net";
    let created = std::process::Command::new("docker")
        .args(["network", "create", network])
        .output()
        .expect("docker runs");
    let stderr = String::from_utf8_lossy(&created.stderr);
    assert!(
        created.status.success() || stderr.contains("already exists"),
        "{stderr}"
    );
    let modules = node_modules::node_modules();
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cache/tests/toolkit");
    let scripts = scripts.canonicalize().expect("the toolkit scripts' folder");
    let h = Harness::ready(
        Options::gitea(),
        &format!(
            "{FAST}  labels: [\"deb:docker://hearth-test/debian:1\"]\ncontainer:\n  network: {network}\n  valid_volumes: [\"{}\", \"{}\"]\n",
            modules.display(),
            scripts.display()
        ),
    )
    .await;
    let job = |steps: &str| {
        format!(
            "name: ci\non: push\njobs:\n  build:\n    runs-on: deb\n    container:\n      image: hearth-test/debian:1\n      volumes:\n        - {}:/toolkit:ro\n        - {}:/scripts:ro\n    env:\n      NODE_PATH: /toolkit\n      GITHUB_SERVER_URL: http://forge.example\n    steps:\n{steps}",
            modules.display(),
            scripts.display()
        )
    };
    let save = job(
        "      - run: mkdir -p deps .temp && echo saved-in-a-container > deps/file\n      - run: RUNNER_TEMP=$PWD/.temp node /scripts/cache.js save deps-1 deps\n",
    );
    let (id, task, log) = h.run(TaskSpec::new(save)).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    let saved = lines
        .iter()
        .find(|l| l.starts_with("{\"saved\""))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(!saved.contains("-1"), "{saved}");
    assert!(
        lines.iter().any(|l| l == "Cache: saved deps-1"),
        "{lines:#?}"
    );

    let restore = job(
        "      - run: mkdir -p .temp && RUNNER_TEMP=$PWD/.temp node /scripts/cache.js restore deps-2 deps- deps\n      - run: cat deps/file\n",
    );
    let (id, task, log) = h.run(TaskSpec::new(restore)).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    assert!(
        lines.iter().any(|l| l == "{\"restored\":\"deps-1\"}"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l == "saved-in-a-container"),
        "{lines:#?}"
    );
    let _ = std::process::Command::new("docker")
        .args(["network", "rm", network])
        .output();
}

/// `log.format: json`: the daemon's own log is one JSON object per line, for collectors.
#[tokio::test]
async fn the_daemons_log_can_be_json_lines() {
    let h = Harness::ready(Options::gitea(), &format!("log:\n  format: json\n{FAST}")).await;
    let (_, task, log) = h.run(TaskSpec::new(job("      - run: echo hi\n"))).await;
    assert_eq!(task.status, Status::Success, "{log}");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{log}");
    for line in lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(object["level"].is_string(), "{line}");
        assert!(object["fields"].is_object(), "{line}");
    }
}

/// A task's job `env` and `defaults.run` are evaluated once the job has started, as GitHub's
/// runner evaluates them: `github.workspace` is the job's workspace there, not empty.
#[tokio::test]
async fn a_tasks_job_env_and_defaults_see_the_workspace() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let payload = r#"name: ci
on: push
jobs:
  build:
    runs-on: linux
    env:
      BUILD_DIR: ${{ github.workspace }}/build
      ${{ insert }}: ${{ fromJSON('{"INSERTED":"yes"}') }}
    defaults:
      run:
        working-directory: ${{ github.workspace }}
    steps:
      - run: |
          if [ "$BUILD_DIR" = "$GITHUB_WORKSPACE/build" ]; then echo "build dir in the workspace"; else echo "BUILD_DIR=$BUILD_DIR"; fi
          if [ "$PWD" = "$GITHUB_WORKSPACE" ]; then echo "in the workspace"; fi
          echo "inserted=$INSERTED"
"#;
    let (id, task, _) = h.run(TaskSpec::new(payload.to_owned())).await;
    assert_eq!(task.status, Status::Success);
    let rows = h.step_rows(id, 0);
    for line in [
        "build dir in the workspace",
        "in the workspace",
        "inserted=yes",
    ] {
        assert!(rows.iter().any(|r| r == line), "no {line:?} in {rows:#?}");
    }
}
