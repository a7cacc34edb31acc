//! Steps in containers of their own (`run_container`: `uses: docker://IMAGE`) for a job that is
//! a Pod, against the real cluster (`scripts/k8s-test-env`): each step a Pod of its own beside
//! the job's, the job's folders copied in and back, deleted whatever ends the step. Each test
//! works in a namespace of its own, deleted after. The helpers are those of `cluster.rs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_backend::{
    Backend, BackendError, CancellationToken, ContainerRun, Credentials, ExecEnd, ExecSpec,
    ImageSource, JobPath, JobRuntime, Mount, SecretString, Stream,
};
use hearth_kubernetes::KubernetesSettings;
use kube::api::ListParams;

mod common;

use common::*;

impl TestNamespace {
    /// The step Pods still there (labelled with the job Pod they belong to).
    async fn step_pods(&self) -> Vec<String> {
        let params = ListParams::default().labels("hearth.backend=kubernetes,hearth.pod");
        let pods = self.pods().list_metadata(&params).await.unwrap();
        pods.items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect()
    }
}

fn step(image: &str, script: &str, timeout: Option<Duration>) -> ContainerRun {
    ContainerRun {
        image: ImageSource::Pull(image.into()),
        entrypoint: Some("sh".into()),
        args: vec!["-c".into(), script.into()],
        env: vec![
            ("STEP_VAR".into(), "step value".into()),
            (
                "GITHUB_OUTPUT".into(),
                "/github/file_commands/output".into(),
            ),
            ("PATH".into(), "/bin:/usr/bin".into()),
        ],
        mounts: vec![
            Mount {
                source: JobPath::new("/__w/workspace"),
                target: "/github/workspace".into(),
            },
            Mount {
                source: JobPath::new("/__w/temp/_runner_file_commands"),
                target: "/github/file_commands".into(),
            },
        ],
        working_dir: "/github/workspace".into(),
        timeout,
    }
}

/// What a step printed so far, shared with a task that watches it.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    async fn wait_for(&self, text: &str) {
        for _ in 0..600 {
            if self.text().contains(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the step never printed {text:?}: {}", self.text());
    }
}

async fn run_step(
    runtime: &dyn JobRuntime,
    run: ContainerRun,
    output: &Output,
    cancel: &CancellationToken,
) -> Result<ExecEnd, BackendError> {
    let shared = output.0.clone();
    let mut sink = move |_: Stream, chunk: &[u8]| shared.lock().unwrap().extend_from_slice(chunk);
    runtime.run_container(run, &mut sink, cancel).await
}

async fn job_step(runtime: &dyn JobRuntime, script: &str) -> (ExecEnd, String) {
    let mut out = Vec::new();
    let mut sink = |_: Stream, chunk: &[u8]| out.extend_from_slice(chunk);
    let spec = ExecSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: runtime.base_env().to_vec(),
        working_dir: runtime.paths().workspace.clone(),
        timeout: None,
    };
    let end = runtime
        .exec(spec, &mut sink, &CancellationToken::new())
        .await
        .unwrap();
    (end, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_step_runs_in_a_pod_beside_the_job_and_its_files_come_back() {
    let ns = TestNamespace::new("stepfiles").await;
    let backend = ns.backend(KubernetesSettings::default());
    let cancel = CancellationToken::new();
    let repository = tempfile::tempdir().unwrap();
    std::fs::write(
        repository.path().join("README"),
        "hello from the repository\n",
    )
    .unwrap();
    std::fs::write(repository.path().join("gone.txt"), "the step deletes me\n").unwrap();
    let mut spec = job(BUSYBOX, "stepfiles-runner");
    spec.repository = Some(hearth_backend::HostPath::new(repository.path()));
    let log = Lines::default();
    let runtime = backend
        .start(spec, &mut log.clone(), &cancel)
        .await
        .expect("the job's Pod starts");
    assert!(log.text().contains("is running on node"), "{}", log.text());

    // The step reads the workspace, gets its environment and working directory, writes a
    // file, deletes one, sets an output, and its exit code is the step's.
    let script = r#"cat README; echo "$STEP_VAR" >&2; pwd
echo made > made.txt; rm gone.txt; echo "result=42" >> "$GITHUB_OUTPUT"; exit 7"#;
    let output = Output::default();
    let started = Instant::now();
    let end = run_step(&*runtime, step(BUSYBOX, script, None), &output, &cancel).await;
    let took = started.elapsed();
    eprintln!("a docker:// step (busybox, exit 7) took {took:?}");
    let out = output.text();
    assert_eq!(end.unwrap(), ExecEnd::Exited(7), "{out}");
    assert!(out.contains("hello from the repository"), "{out}");
    assert!(
        out.contains("step value") && out.contains("/github/workspace"),
        "{out}"
    );

    // What it wrote and deleted is so in the job's Pod, for the job's next steps.
    let made = runtime
        .read_file(&JobPath::new("/__w/workspace/made.txt"), 100)
        .await
        .unwrap();
    assert_eq!(made.as_deref(), Some(&b"made\n"[..]));
    let gone = runtime
        .read_file(&JobPath::new("/__w/workspace/gone.txt"), 100)
        .await
        .unwrap();
    assert_eq!(gone, None);
    let outputs = runtime
        .read_file(&JobPath::new("/__w/temp/_runner_file_commands/output"), 100)
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(String::from_utf8_lossy(&outputs), "result=42\n");
    let (end, out) = job_step(&*runtime, "cat made.txt README").await;
    assert_eq!(end, ExecEnd::Exited(0));
    assert_eq!(out, "made\nhello from the repository\n");

    // The step's Pod is gone; only the job's is left, until the job's end.
    assert_eq!(ns.step_pods().await, Vec::<String>::new());
    assert_eq!(ns.leftovers().await.len(), 1);
    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_pod_is_deleted_at_once_on_timeout_and_cancel_and_spared_by_reap() {
    let ns = TestNamespace::new("stepstops").await;
    let backend = ns.backend(KubernetesSettings::default());
    let cancel = CancellationToken::new();
    let runtime = backend
        .start(
            job(BUSYBOX, "stepstops-runner"),
            &mut Lines::default(),
            &cancel,
        )
        .await
        .expect("the job's Pod starts");

    // A timeout stops the step while it runs.
    let output = Output::default();
    let timeout = Duration::from_secs(12);
    let started = Instant::now();
    let run = step(BUSYBOX, "echo started; sleep 300", Some(timeout));
    let end = run_step(&*runtime, run, &output, &cancel).await;
    assert_eq!(end.unwrap(), ExecEnd::TimedOut);
    assert!(
        output.text().contains("started"),
        "it ran: {}",
        output.text()
    );
    assert!(
        started.elapsed() < timeout + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ns.step_pods().await, Vec::<String>::new());

    // A cancel, likewise; while the step runs, a sweep of its runner's leftovers spares it.
    let output = Output::default();
    let step_cancel = CancellationToken::new();
    let watcher = {
        let (output, trigger, backend) = (output.clone(), step_cancel.clone(), backend.clone());
        tokio::spawn(async move {
            output.wait_for("started").await;
            let owner = vec![("hearth.runner".to_owned(), "stepstops-runner".to_owned())];
            let reaped = backend.reap(&owner).await.unwrap();
            trigger.cancel();
            (Instant::now(), reaped.removed)
        })
    };
    let run = step(BUSYBOX, "echo started; sleep 300", None);
    let end = run_step(&*runtime, run, &output, &step_cancel).await;
    let (cancelled_at, reaped) = watcher.await.unwrap();
    assert_eq!(end.unwrap(), ExecEnd::Cancelled);
    assert!(reaped.is_empty(), "a live step's Pod was swept: {reaped:?}");
    assert_eq!(ns.step_pods().await, Vec::<String>::new());
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "{:?}",
        cancelled_at.elapsed()
    );

    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_images_and_a_dropped_step_leave_nothing() {
    let ns = TestNamespace::new("steprefused").await;
    let backend = ns.backend(KubernetesSettings::default());
    let cancel = CancellationToken::new();
    let runtime = backend
        .start(
            job(BUSYBOX, "steprefused-runner"),
            &mut Lines::default(),
            &cancel,
        )
        .await
        .expect("the job's Pod starts");

    // A Dockerfile action: no builder on a node.
    let mut run = step(BUSYBOX, "true", None);
    run.image = ImageSource::Build {
        context: JobPath::new("/__w/_actions/0"),
        dockerfile: "Dockerfile".into(),
    };
    let refused = run_step(&*runtime, run, &Output::default(), &cancel).await;
    match refused {
        Err(BackendError::Unsupported(why)) => {
            assert!(
                why.contains("no image builder") && why.contains("docker://"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }

    // An image no registry has: said as a registry error, its Pod deleted.
    let missing = step("hearth-test/no-such-image:1", "true", None);
    let refused = run_step(&*runtime, missing, &Output::default(), &cancel)
        .await
        .expect_err("the image cannot be pulled");
    assert_eq!(
        refused.kind(),
        hearth_backend::ErrorKind::RegistryDenied,
        "{refused}"
    );
    assert!(refused.to_string().contains("no-such-image"), "{refused}");
    assert_eq!(ns.step_pods().await, Vec::<String>::new());

    // A step whose future is dropped while it runs (the runner stops the job): the job's end
    // deletes its Pod.
    let output = Output::default();
    let run = step(BUSYBOX, "echo started; sleep 300", None);
    tokio::select! {
        end = run_step(&*runtime, run, &output, &cancel) => panic!("the step ended: {end:?}"),
        () = output.wait_for("started") => {}
    }
    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_image_pulls_with_the_job_pods_credentials() {
    let ns = TestNamespace::new("stepprivate").await;
    let backend = ns.backend(KubernetesSettings {
        pull_policy: Some("Always".into()),
        ..Default::default()
    });
    let cancel = CancellationToken::new();
    let mut spec = job(PRIVATE, "stepprivate-runner");
    spec.container.as_mut().unwrap().credentials = Some(Credentials {
        username: REGISTRY_USER.into(),
        password: SecretString::from(REGISTRY_PASSWORD),
    });
    let runtime = backend
        .start(spec, &mut Lines::default(), &cancel)
        .await
        .expect("the job's Pod starts with its credentials");
    let output = Output::default();
    let end = run_step(
        &*runtime,
        step(PRIVATE, "echo private", None),
        &output,
        &cancel,
    )
    .await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    assert_eq!(output.text(), "private\n");
    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_reaches_the_jobs_services_by_name() {
    let ns = TestNamespace::new("stepservices").await;
    let backend = ns.backend(KubernetesSettings::default());
    let cancel = CancellationToken::new();
    let mut spec = job(BUSYBOX, "stepservices-runner");
    // One id the API takes as a host alias, one it refuses (in the job container's hosts
    // file, which a step's own Pod cannot have: the step is warned).
    let mut web_db = web_service("0");
    web_db.command = web_db.command.map(|c| c.replace("8080", "8081"));
    web_db.options = web_db.options.replace("8080", "8081");
    web_db.ports = vec!["8081".into()];
    spec.services = vec![("web".into(), web_service("0")), ("web_db".into(), web_db)];
    let runtime = backend
        .start(spec, &mut Lines::default(), &cancel)
        .await
        .expect("the job's Pod starts once its service is ready");
    // The service listens in the job's Pod: the step's Pod reaches it at that Pod's address.
    let output = Output::default();
    // No `wget -T`: Debian's static busybox dies of SIGSEGV with it (checked by hand in a plain
    // Pod), whatever the address.
    let run = step(
        BUSYBOX,
        "wget -qO- http://web:8080/ && ! wget -qO- http://web_db:8081/ 2>/dev/null",
        None,
    );
    let end = run_step(&*runtime, run, &output, &cancel).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0), "{}", output.text());
    assert_eq!(
        output.text(),
        "::warning::The services web_db cannot be reached by name from a step in a container \
         of its own on Kubernetes (a Pod's host aliases must be lowercase DNS names); rename \
         them (web-db), or run the step in the job's container\nserved\n"
    );
    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}
