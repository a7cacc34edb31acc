//! The engine against the backend contract: what a backend is given at start, what the job
//! sees of it, and what the engine reports of it. Run on the fake backend (whose job paths are
//! not host paths, and which accepts containers without Docker) and, where a behaviour is the
//! host's own, on the host backend. The whole exec corpus also runs on the fake backend
//! (`crates/hearth/tests/exec_cases.rs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_backend::{
    Backend, BackendError, BoxFuture, CancellationToken, JobRuntime, JobSpec, Reach, SecretString,
    SetupLog,
};
use hearth_engine::job::remote::{ActionSource, FetchError};
use hearth_engine::job::{run_job, EnvFolder, JobControl, JobOutcome, JobRequest, RunnerInfo};
use hearth_engine::mask::Masker;
use hearth_events::{Conclusion, Event, EventSink, LogLine};
use hearth_expr::Object;
use hearth_fake_backend::FakeBackend;
use hearth_host::HostBackend;
use hearth_workflow::model::Workflow;
use hearth_workflow::plan::{expand_job, JobContext, JobPlan};

/// Every log line's text, as sinks get it.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl EventSink for Lines {
    fn event(&self, event: &Event<'_>) {
        if let Event::Log { line, .. } = event {
            let text = match line {
                LogLine::Output(t)
                | LogLine::Echo(t)
                | LogLine::Group(t)
                | LogLine::Debug(t)
                | LogLine::Info(t)
                | LogLine::Warning(t)
                | LogLine::Error(t) => (*t).to_owned(),
                LogLine::Annotation(a) => a.message.to_owned(),
                LogLine::EndGroup => return,
            };
            self.0.lock().unwrap().push(text);
        }
    }
}

impl Lines {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn has(&self, text: &str) -> bool {
        self.all().iter().any(|l| l.contains(text))
    }
}

/// Runs the one job of `yaml` on `backend`.
async fn run(
    backend: &dyn Backend,
    yaml: &str,
    secrets: &[(&str, &str)],
    label_image: Option<&str>,
    control: &JobControl,
) -> (JobOutcome, Lines) {
    run_with_folders(backend, yaml, secrets, label_image, Vec::new(), control).await
}

/// [`run`], with `uses: owner/repo@ref` actions from `actions`.
async fn run_with_actions(
    backend: &dyn Backend,
    yaml: &str,
    label_image: Option<&str>,
    actions: Arc<dyn ActionSource>,
) -> (JobOutcome, Lines) {
    let control = JobControl::default();
    let actions = Some(actions);
    let extras = Extras {
        actions,
        ..Extras::default()
    };
    run_request(backend, yaml, &[], label_image, extras, &control).await
}

/// [`run`], the runner handing the job `env_folders`.
async fn run_with_folders(
    backend: &dyn Backend,
    yaml: &str,
    secrets: &[(&str, &str)],
    label_image: Option<&str>,
    env_folders: Vec<EnvFolder>,
    control: &JobControl,
) -> (JobOutcome, Lines) {
    let extras = Extras {
        env_folders,
        ..Extras::default()
    };
    run_request(backend, yaml, secrets, label_image, extras, control).await
}

/// What the runner hands a job besides the workflow.
#[derive(Default)]
struct Extras {
    env_folders: Vec<EnvFolder>,
    actions: Option<Arc<dyn ActionSource>>,
    reach: Vec<Reach>,
}

async fn run_request(
    backend: &dyn Backend,
    yaml: &str,
    secrets: &[(&str, &str)],
    label_image: Option<&str>,
    extras: Extras,
    control: &JobControl,
) -> (JobOutcome, Lines) {
    let Extras {
        env_folders,
        actions,
        reach,
    } = extras;
    let workflow = Workflow::parse(yaml, "ci.yml").expect("a valid workflow");
    let job = &workflow.jobs[0];
    let contexts = Object::new();
    let context = JobContext {
        contexts: &contexts,
        needs: &[],
        needs_outputs_known: true,
    };
    let planned = match expand_job("ci.yml", job, &context).expect("expands") {
        JobPlan::Run(mut instances) => instances.remove(0),
        other => panic!("not runnable: {other:?}"),
    };
    let request = JobRequest {
        file: "ci.yml",
        workflow: &workflow,
        job,
        planned: &planned,
        github: Object::new(),
        vars: Object::new(),
        secrets: secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretString::from((*v).to_owned())))
            .collect(),
        masker: Masker::new(),
        inputs: Object::new(),
        needs: Object::new(),
        runner: RunnerInfo::this_machine("contract"),
        runner_env: vec![("FROM_RUNNER".into(), "runner-value".into())],
        extra_env: Vec::new(),
        repository: None,
        bind_repository: false,
        label_image: label_image.map(str::to_owned),
        owner: vec![("hearth.task".into(), "7".into())],
        reach,
        actions,
        env_folders,
        forge_registry: None,
    };
    let lines = Lines::default();
    let outcome = run_job(backend, &request, &lines, control).await;
    (outcome, lines)
}

/// What the job must reach reaches the backend as the runner gives it (the forge required,
/// the cache optional). A container backend whose job network cannot reach the cache says so
/// in one warning line of the job's log, masked, before the first step, and the job runs; one
/// that cannot reach the forge fails the job before any step, saying what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_container_job_cannot_reach_warns_when_optional_and_fails_the_job_when_not() {
    let (_root, backend) = fake();
    let backend = backend.with_unreachable(&[
        "http://cache.invalid:1/s3cr3t-path",
        "http://forge.invalid:1",
    ]);
    let yaml = r#"
on: push
jobs:
  build:
    runs-on: linux
    container: registry.example/app:1
    steps:
      - run: echo step ran
"#;
    let forge = |url: &str| Reach::required(url, "the forge", "register the forge elsewhere");
    let cache = Reach::optional(
        "http://cache.invalid:1/s3cr3t-path",
        "the cache",
        "set cache.host",
    );
    let control = JobControl::default();
    let reach = vec![forge("http://forge.example:1"), cache.clone()];
    let extras = Extras {
        reach: reach.clone(),
        ..Extras::default()
    };
    let request = run_request(
        &backend,
        yaml,
        &[("PATH_SECRET", "s3cr3t-path")],
        None,
        extras,
        &control,
    );
    let (outcome, lines) = request.await;
    assert_eq!(outcome.result, Conclusion::Success, "{:#?}", lines.all());
    assert_eq!(backend.seen().specs[0].reach, reach);
    let all = lines.all();
    let warned = all
        .iter()
        .position(|l| {
            l == "fake: the cache at http://cache.invalid:1/*** cannot be reached from the job \
                  container on the network fake-network: fake: unreachable; set cache.host. The \
                  job runs without it."
        })
        .unwrap_or_else(|| panic!("{all:#?}"));
    let stepped = all
        .iter()
        .position(|l| l == "step ran")
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert!(warned < stepped, "{all:#?}");

    let extras = Extras {
        reach: vec![forge("http://forge.invalid:1"), cache],
        ..Extras::default()
    };
    let (outcome, lines) = run_request(&backend, yaml, &[], None, extras, &control).await;
    assert_eq!(outcome.result, Conclusion::Failure, "{:#?}", lines.all());
    assert!(!lines.has("step ran"), "{:#?}", lines.all());
    assert!(
        lines.has(
            "the forge at http://forge.invalid:1 cannot be reached from the job container on the \
             network fake-network: fake: unreachable; register the forge elsewhere"
        ),
        "{:#?}",
        lines.all()
    );
}

fn fake() -> (tempfile::TempDir, FakeBackend) {
    let root = tempfile::tempdir().unwrap();
    let backend = FakeBackend::new(root.path().to_owned());
    (root, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_gets_the_containers_and_the_job_sees_them() {
    let (_root, backend) = fake();
    let yaml = r#"
on: push
jobs:
  build:
    runs-on: linux
    container:
      image: registry.example/app:${{ format('{0}', 2) }}
      credentials:
        username: bot
        password: ${{ secrets.REGISTRY_PASSWORD }}
      env:
        IN_CONTAINER: yes
      options: --cpus 1
    services:
      db:
        image: postgres:16
        ports: ["5432"]
    steps:
      - run: |
          echo "container=${{ job.container.id }} on ${{ job.container.network }}"
          echo "db=${{ job.services.db.id }} port ${{ job.services.db.ports['5432'] }}"
          echo "runner env=$FROM_RUNNER"
"#;
    let (outcome, lines) = run(
        &backend,
        yaml,
        &[("REGISTRY_PASSWORD", "hunter2-registry")],
        None,
        &JobControl::default(),
    )
    .await;
    assert_eq!(outcome.result, Conclusion::Success, "{:#?}", lines.all());
    let spec = &backend.seen().specs[0];
    let container = spec.container.as_ref().expect("a job container");
    assert_eq!(container.image, "registry.example/app:2");
    assert_eq!(container.options, "--cpus 1");
    assert_eq!(container.env, [("IN_CONTAINER".into(), "yes".into())]);
    assert_eq!(spec.services[0].0, "db");
    assert_eq!(spec.services[0].1.ports, ["5432"]);
    assert_eq!(spec.owner, [("hearth.task".into(), "7".into())]);
    assert!(lines.has("container=fake-build on fake-network"));
    assert!(lines.has("db=fake-db port 5432"));
    assert!(lines.has("runner env=runner-value"));
    // The backend's set-up log reaches the job's log, masked: it quoted the password.
    assert!(lines.has("fake: logging in as bot with ***"));
    assert!(lines.all().iter().all(|l| !l.contains("hunter2-registry")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_image_is_the_job_container_unless_the_job_names_one() {
    let (_root, backend) = fake();
    let plain =
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: true\n";
    let (outcome, _) = run(
        &backend,
        plain,
        &[],
        Some("node:20"),
        &JobControl::default(),
    )
    .await;
    assert_eq!(outcome.result, Conclusion::Success);
    let own = "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    container: alpine:3\n    steps:\n      - run: true\n";
    let (outcome, _) = run(&backend, own, &[], Some("node:20"), &JobControl::default()).await;
    assert_eq!(outcome.result, Conclusion::Success);
    let images: Vec<String> = backend
        .seen()
        .specs
        .iter()
        .map(|s| {
            s.container
                .as_ref()
                .map(|c| c.image.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(images, ["node:20", "alpine:3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_backend_refuses_a_container_and_says_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let backend = HostBackend::new(root.path().to_owned());
    let yaml = "on: push\njobs:\n  j:\n    runs-on: linux\n    container: node:20\n    steps:\n      - run: echo ran\n";
    let (outcome, lines) = run(&backend, yaml, &[], None, &JobControl::default()).await;
    assert_eq!(outcome.result, Conclusion::Failure);
    assert!(
        lines.has("give it a label that runs jobs in Docker"),
        "{:#?}",
        lines.all()
    );
    assert!(!lines.has("ran"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_cleanup_is_reported_not_dropped() {
    let (_root, backend) = fake();
    let backend = backend.failing_finish();
    let yaml = "on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n      - run: true\n";
    let (outcome, lines) = run(&backend, yaml, &[], None, &JobControl::default()).await;
    assert_eq!(outcome.result, Conclusion::Success);
    assert!(
        lines.has("cleaning up the job failed"),
        "{:#?}",
        lines.all()
    );
}

/// A backend whose start takes until it is cancelled (an image pull that hangs).
struct HangingStart {
    cancelled_at: Arc<Mutex<Option<Instant>>>,
}

impl Backend for HangingStart {
    fn start<'a>(
        &'a self,
        _: JobSpec,
        log: &'a mut dyn SetupLog,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Box<dyn JobRuntime>, BackendError>> {
        Box::pin(async move {
            log.line(
                hearth_backend::SetupLevel::Info,
                "pulling an image that never comes",
            );
            cancel.cancelled().await;
            *self.cancelled_at.lock().unwrap() = Some(Instant::now());
            Err(BackendError::Cancelled("pulling the image".into()))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preparing_counts_inside_the_job_timeout() {
    let cancelled_at = Arc::new(Mutex::new(None));
    let backend = HangingStart {
        cancelled_at: cancelled_at.clone(),
    };
    // 0.01 minutes: 0.6 s.
    let yaml = "on: push\njobs:\n  j:\n    runs-on: linux\n    timeout-minutes: 0.01\n    steps:\n      - run: true\n";
    let started = Instant::now();
    let (outcome, lines) = run(&backend, yaml, &[], None, &JobControl::default()).await;
    assert_eq!(outcome.result, Conclusion::Failure);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        cancelled_at.lock().unwrap().is_some(),
        "the backend was told to stop"
    );
    assert!(lines.has("pulling an image that never comes"));
    assert!(
        lines.has("exceeded the maximum execution time of 0.01m"),
        "{:#?}",
        lines.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_while_preparing_ends_the_job_cancelled() {
    let backend = HangingStart {
        cancelled_at: Arc::default(),
    };
    let yaml = "on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n      - run: true\n";
    let control = JobControl::default();
    let cancel = control.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let (outcome, _) = run(&backend, yaml, &[], None, &control).await;
    assert_eq!(outcome.result, Conclusion::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A step that writes 17 MiB into `GITHUB_OUTPUT` fails with a message; the runner does not
/// read it into memory. `image`: the job's container, on a container backend.
async fn file_commands_are_bounded(backend: &dyn Backend, image: Option<&str>) {
    let yaml = r#"
on: push
jobs:
  j:
    runs-on: linux
    steps:
      - id: big
        run: head -c 17825792 /dev/zero | tr '\0' a | sed 's/^/big=/' >> "$GITHUB_OUTPUT"
      - if: always()
        run: echo "after ${{ steps.big.outcome }}"
"#;
    let (outcome, lines) = run(backend, yaml, &[], image, &JobControl::default()).await;
    assert_eq!(outcome.result, Conclusion::Failure);
    assert!(
        lines.has("is larger than 16777216 bytes"),
        "{:#?}",
        lines.all()
    );
    assert!(lines.has("after failure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_commands_are_bounded_on_the_fake_backend() {
    let (_root, backend) = fake();
    file_commands_are_bounded(&backend, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_commands_are_bounded_on_the_host() {
    let root = tempfile::tempdir().unwrap();
    file_commands_are_bounded(&HostBackend::new(root.path().to_owned()), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_commands_are_bounded_in_a_container() {
    let root = tempfile::tempdir().unwrap();
    let backend = hearth_docker::DockerBackend::connect(root.path().to_owned())
        .await
        .unwrap_or_else(|e| panic!("this test needs Docker (scripts/docker-test-env): {e}"));
    file_commands_are_bounded(&backend, Some("hearth-test/busybox:1")).await;
}

/// The runner's folders for the job (its own `DOCKER_CONFIG`) are in the job's temp folder,
/// named to every step by their variable, and gone with the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runners_folders_are_in_the_jobs_temp_folder_and_named_to_every_step() {
    for host in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let backend: Box<dyn Backend> = if host {
            Box::new(HostBackend::new(root.path().to_owned()))
        } else {
            Box::new(FakeBackend::new(root.path().to_owned()))
        };
        let yaml = r#"
on: push
jobs:
  build:
    runs-on: linux
    steps:
      - run: echo "at=$DOCKER_CONFIG temp=$RUNNER_TEMP"
      - run: cat "$DOCKER_CONFIG/config.json"
"#;
        let folder = EnvFolder {
            env: "DOCKER_CONFIG".into(),
            name: "_docker_config".into(),
            files: vec![(
                "config.json".into(),
                SecretString::from(r#"{"auths":{}}"#.to_owned()),
            )],
        };
        let (outcome, lines) = run_with_folders(
            backend.as_ref(),
            yaml,
            &[],
            None,
            vec![folder],
            &JobControl::default(),
        )
        .await;
        assert_eq!(outcome.result, Conclusion::Success, "{:?}", lines.all());
        let at = lines
            .all()
            .into_iter()
            .find_map(|l| l.strip_prefix("at=").map(str::to_owned))
            .expect("the first step's line");
        let (folder, temp) = at.split_once(" temp=").unwrap();
        assert_eq!(folder, format!("{temp}/_docker_config"));
        assert!(lines.has(r#"{"auths":{}}"#), "{:?}", lines.all());
        // Nothing of the job is left in the backend's folder.
        let left: Vec<_> = walk(root.path())
            .into_iter()
            .filter(|p| p.ends_with("config.json"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// A backend that cannot run containers fails a `docker://` step with what to change, and the
/// job goes on as after any failed step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_step_on_a_backend_without_containers_fails_saying_what_to_change() {
    let (_root, backend) = fake();
    let yaml = r#"
on: push
jobs:
  j:
    runs-on: x
    steps:
      - uses: docker://alpine:3
      - if: always()
        run: echo after
"#;
    let (outcome, lines) = run(&backend, yaml, &[], None, &JobControl::default()).await;
    assert_eq!(outcome.result, Conclusion::Failure);
    assert!(
        lines.has(
            "this step runs in a container of its own (a Docker action or a `docker://` \
             image): this job's backend cannot run containers; run the job in a container (a \
             `docker://` label) or on a host whose runner reaches Docker"
        ),
        "{:?}",
        lines.all()
    );
    assert!(lines.has("after"), "{:?}", lines.all());
}

/// Serves every `owner/repo@ref` as one folder.
struct OneFolder(std::path::PathBuf);

impl ActionSource for OneFolder {
    fn fetch<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a CancellationToken,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<std::path::PathBuf, FetchError>> + Send + 'a>,
    > {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// A remote Docker action in a container job: its `pre-entrypoint` runs when the job starts
/// (before the first step), the main entrypoint as its step, the `post-entrypoint` after the
/// last step, each in the action's image built once, with the state each saved reaching the
/// next; `args` are evaluated with the action's inputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_docker_actions_pre_main_and_post_run_in_order_with_their_state() {
    let root = tempfile::tempdir().unwrap();
    let backend = hearth_docker::DockerBackend::connect(root.path().join("jobs"))
        .await
        .unwrap_or_else(|e| panic!("this test needs Docker (scripts/docker-test-env): {e}"));
    let action = root.path().join("action");
    std::fs::create_dir_all(&action).unwrap();
    let write = |name: &str, text: &str| std::fs::write(action.join(name), text).unwrap();
    write(
        "action.yml",
        r#"name: stages
inputs:
  word:
    description: a word
    default: dflt
runs:
  using: docker
  image: Dockerfile
  pre-entrypoint: /stage.sh
  entrypoint: /stage.sh
  post-entrypoint: /stage.sh
  args:
    - ${{ inputs.word }}
"#,
    );
    write(
        "Dockerfile",
        "FROM hearth-test/busybox:1\nCOPY stage.sh /stage.sh\nRUN chmod +x /stage.sh\n",
    );
    write(
        "stage.sh",
        r#"#!/bin/sh
echo "stage [$1] saw [$STATE_seen] in $PWD"
echo "seen=${STATE_seen}+$1" >> "$GITHUB_STATE"
"#,
    );
    let yaml = r#"
on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: echo first step
      - uses: owner/stages@v1
        with:
          word: given
      - run: echo last step
"#;
    let source = Arc::new(OneFolder(action));
    let (outcome, lines) =
        run_with_actions(&backend, yaml, Some("hearth-test/busybox:1"), source).await;
    assert_eq!(outcome.result, Conclusion::Success, "{:#?}", lines.all());
    let stages: Vec<String> = lines
        .all()
        .into_iter()
        .filter(|l| l.starts_with("stage ") || l.ends_with(" step"))
        .collect();
    assert_eq!(
        stages,
        [
            "stage [given] saw [] in /github/workspace",
            "first step",
            "stage [given] saw [+given] in /github/workspace",
            "last step",
            "stage [given] saw [+given+given] in /github/workspace",
        ],
        "{:#?}",
        lines.all()
    );
}
