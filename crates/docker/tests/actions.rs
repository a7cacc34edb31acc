//! Steps in containers of their own (`JobRuntime::run_container`: Docker actions, `docker://`
//! steps) against the real Docker Engine, with the test image `scripts/docker-test-env` builds.
//! Without a daemon these tests fail, saying so.

use std::time::{Duration, Instant};

use hearth_backend::{
    Backend, CancellationToken, ContainerRun, ExecEnd, ImageSource, JobPath, JobRuntime, JobSpec,
    Mount, NoSetupLog, Stream,
};
use hearth_docker::DockerBackend;

mod common;

const TASK: &str = "actions";

async fn backend(root: &std::path::Path) -> DockerBackend {
    DockerBackend::connect(root.to_owned())
        .await
        .unwrap_or_else(|e| {
            panic!("the Docker tests need a Docker daemon (run scripts/docker-test-env): {e}")
        })
}

async fn docker() -> bollard::Docker {
    bollard::Docker::connect_with_local_defaults()
        .expect("docker")
        .negotiate_version()
        .await
        .expect("docker")
}

fn spec() -> JobSpec {
    common::job_spec("docker-actions-tests", TASK)
}

/// Containers and networks of the job: the job container and its network only, once a step's
/// container is done.
async fn labelled() -> (usize, usize) {
    common::labelled_in(&docker().await, "docker-actions-tests", TASK).await
}

/// A step in the image built from the job's folder `action`, the workspace mounted.
fn built(job: &dyn JobRuntime, args: &[&str], timeout: Option<Duration>) -> ContainerRun {
    ContainerRun {
        image: ImageSource::Build {
            context: job.paths().workspace.join("action"),
            dockerfile: "Dockerfile".into(),
        },
        entrypoint: None,
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![("FROM_RUN".into(), "run-value".into())],
        mounts: vec![Mount {
            source: job.paths().workspace.clone(),
            target: "/github/workspace".into(),
        }],
        working_dir: "/github/workspace".into(),
        timeout,
    }
}

/// Writes the action into the job's folder `action`: a Dockerfile whose image prints
/// `message`, the step's `FROM_RUN`, its folder and arguments, and lists the action's folder.
async fn write_action(job: &dyn JobRuntime, message: &[u8]) {
    let action = job.paths().workspace.join("action");
    job.write_file(
        &action.join("Dockerfile"),
        b"FROM hearth-test/busybox:1\nCOPY message /message\n\
          ENTRYPOINT [\"sh\", \"-c\", \"cat /message; echo \\\"$FROM_RUN in $(pwd) args $*\\\"; ls action\", \"sh\"]\n",
        None,
    )
    .await
    .unwrap();
    job.write_file(&action.join("message"), message, None)
        .await
        .unwrap();
}

/// Runs `run`; its end and its output (both streams).
async fn run(
    job: &dyn JobRuntime,
    run: ContainerRun,
    cancel: &CancellationToken,
) -> (ExecEnd, String) {
    let mut out = Vec::new();
    let mut sink = |_: Stream, chunk: &[u8]| out.extend_from_slice(chunk);
    let end = job
        .run_container(run, &mut sink, cancel)
        .await
        .expect("ran");
    (end, String::from_utf8_lossy(&out).into_owned())
}

/// The image tag a run's output names (`... image hearth-action:<digest>...`).
fn tag(output: &str) -> String {
    let start = output.find("hearth-action:").expect("a tag in the output");
    output[start..]
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actions_image_is_built_again_only_when_its_files_change_and_no_container_stays() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    backend
        .reap(&spec().owner[..1])
        .await
        .expect("leftovers reaped");
    let cancel = CancellationToken::new();
    let runtime = backend
        .start(spec(), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let job = runtime.as_ref();
    // A content no earlier run had, so that the first build is a real one.
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let action = job.paths().workspace.join("action");
    write_action(job, nonce.as_bytes()).await;

    let (end, first) = run(job, built(job, &["a", "b"], None), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0), "{first}");
    assert!(first.contains("Building the action's image"), "{first}");
    assert!(
        first.contains(&format!("{nonce}run-value in /github/workspace args a b")),
        "{first}"
    );
    assert!(
        first.contains("Dockerfile\nmessage\n"),
        "the workspace is mounted: {first}"
    );
    let first_tag = tag(&first);
    let docker = docker().await;
    let first_id = docker.inspect_image(&first_tag).await.unwrap().id;
    assert_eq!(labelled().await, (1, 1), "the step's container is gone");

    // The same files (written again, with new times): the image is reused.
    job.write_file(&action.join("message"), nonce.as_bytes(), None)
        .await
        .unwrap();
    let (end, second) = run(job, built(job, &[], None), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0), "{second}");
    assert!(second.contains("Using the action's image"), "{second}");
    assert!(!second.contains("Building"), "{second}");
    assert_eq!(tag(&second), first_tag);
    assert_eq!(docker.inspect_image(&first_tag).await.unwrap().id, first_id);

    // A changed file: built again, under another tag.
    let changed = format!("{nonce} changed");
    job.write_file(&action.join("message"), changed.as_bytes(), None)
        .await
        .unwrap();
    let (end, third) = run(job, built(job, &[], None), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0), "{third}");
    assert!(third.contains("Building the action's image"), "{third}");
    assert!(third.contains(&format!("{changed}run-value")), "{third}");
    let third_tag = tag(&third);
    assert_ne!(third_tag, first_tag);

    // With `container.force_rebuild`, built again all the same.
    let rebuilding = backend
        .clone()
        .with_settings(hearth_docker::ContainerSettings {
            force_rebuild: true,
            ..Default::default()
        });
    let forced = rebuilding
        .start(spec(), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    write_action(forced.as_ref(), changed.as_bytes()).await;
    let (end, rebuilt) = run(forced.as_ref(), built(forced.as_ref(), &[], None), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0), "{rebuilt}");
    assert!(rebuilt.contains("Building the action's image"), "{rebuilt}");
    assert_eq!(tag(&rebuilt), third_tag);
    forced.finish().await.expect("finished");

    // A failing step's exit code is the step's.
    let mut failing = built(job, &[], None);
    failing.entrypoint = Some("sh".into());
    failing.args = vec!["-c".into(), "exit 7".into()];
    assert_eq!(run(job, failing, &cancel).await.0, ExecEnd::Exited(7));

    // A step that runs past its timeout, or is cancelled, is stopped, and its container goes.
    let mut sleeping = built(job, &[], Some(Duration::from_millis(500)));
    sleeping.entrypoint = Some("sleep".into());
    sleeping.args = vec!["30".into()];
    let started = Instant::now();
    assert_eq!(
        run(job, sleeping.clone(), &cancel).await.0,
        ExecEnd::TimedOut
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(labelled().await, (1, 1));
    sleeping.timeout = None;
    let cancelled = CancellationToken::new();
    let canceller = cancelled.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        canceller.cancel();
    });
    let started = Instant::now();
    assert_eq!(run(job, sleeping, &cancelled).await.0, ExecEnd::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(labelled().await, (1, 1));

    // A folder the job's machine does not have cannot be mounted: said, not guessed.
    let mut elsewhere = built(job, &[], None);
    elsewhere.mounts[0].source = JobPath::new("/nowhere/at/all");
    let mut ignore = |_: Stream, _: &[u8]| {};
    assert!(job
        .run_container(elsewhere, &mut ignore, &cancel)
        .await
        .is_err());

    runtime.finish().await.expect("finished");
    assert_eq!(labelled().await, (0, 0));
    for tag in [first_tag, third_tag] {
        let _ = docker
            .remove_image(
                &tag,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
}

/// A `docker://` step's container gets the runner's limits of its job containers and, where
/// the runner gives its jobs the Docker socket, the socket, as GitHub mounts it; the step's env
/// reaches it over the image's own, and it runs where it is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_container_gets_the_runners_limits_the_socket_and_its_env() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path())
        .await
        .with_settings(hearth_docker::ContainerSettings {
            memory: Some(64 * 1024 * 1024),
            docker_socket: Some("/var/run/docker.sock".into()),
            ..Default::default()
        });
    let spec = common::job_spec("docker-actions-tests", "limits");
    backend.reap(&spec.owner[..1]).await.expect("reaped");
    let cancel = CancellationToken::new();
    let runtime = backend
        .start(spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let job = runtime.as_ref();
    let step = ContainerRun {
        image: ImageSource::Pull(common::IMAGE.into()),
        entrypoint: Some("sh".into()),
        args: vec![
            "-c".into(),
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || \
             cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
             test -S /var/run/docker.sock && echo socket; echo \"$PATH|$FROM_RUN|$PWD\""
                .into(),
        ],
        env: vec![("FROM_RUN".into(), "run-value".into())],
        mounts: Vec::new(),
        working_dir: "/tmp".into(),
        timeout: None,
    };
    let (end, out) = run(job, step, &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "67108864",
            "socket",
            // The image's own PATH.
            "/bin|run-value|/tmp"
        ],
        "{out}"
    );
    runtime.finish().await.expect("finished");
    assert_eq!(
        common::labelled_in(&docker().await, "docker-actions-tests", "limits").await,
        (0, 0)
    );
}

/// In copy mode (`container.bind_workdir: false`) the job's folders are in the daemon, not on
/// this machine: a step's container still sees the workspace at its GitHub path (the job's
/// volume mounted above it) and a folder of the job's temp folder at another (linked in the
/// volume), what it writes there is the job's, and a Dockerfile action's image is built from
/// the action's folder copied out of the daemon, once for the same files. Nothing stays but
/// the job's own container and network, nothing once the job is over, and nothing on this
/// machine but the job's folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mode_step_containers_see_the_jobs_folders_and_build_from_the_daemon() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path())
        .await
        .with_settings(hearth_docker::ContainerSettings {
            workdir: hearth_docker::Workdir::Copy,
            ..Default::default()
        });
    let spec = common::job_spec("docker-actions-tests", "copy");
    backend.reap(&spec.owner[..1]).await.expect("reaped");
    let cancel = CancellationToken::new();
    let runtime = backend
        .start(spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let job = runtime.as_ref();
    write_action(job, b"copied message").await;
    let commands = job.paths().temp.join("_commands");
    let step = |args: &[&str]| {
        let mut step = built(job, args, None);
        step.mounts.push(Mount {
            source: commands.clone(),
            target: "/github/file_commands".into(),
        });
        step.entrypoint = Some("sh".into());
        step
    };
    let script = "cat /message; echo \"$FROM_RUN in $(pwd)\"; ls action; \
                  echo written > /github/file_commands/out; echo made > made.txt";
    let (end, output) = run(job, step(&["-c", script]), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0), "{output}");
    assert!(output.contains("copied message"), "{output}");
    assert!(
        output.contains("run-value in /github/workspace"),
        "{output}"
    );
    assert!(
        output.contains("Dockerfile") && output.contains("message"),
        "{output}"
    );
    // Built now or by an earlier run: the image is kept, tagged by its files' digest.
    let first = tag(&output);

    let out = job
        .read_file(&commands.join("out"), 1024)
        .await
        .expect("read")
        .expect("the step's file is the job's");
    assert_eq!(out, b"written\n");
    let made = job
        .read_file(&job.paths().workspace.join("made.txt"), 1024)
        .await
        .expect("read")
        .expect("the step's file is in the workspace");
    assert_eq!(made, b"made\n");

    // The same files: the image is not built again.
    let (end, output) = run(job, step(&["-c", "cat /message"]), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0), "{output}");
    assert!(output.contains("Using the action's image"), "{output}");
    assert_eq!(tag(&output), first);
    assert_eq!(
        common::labelled_in(&docker().await, "docker-actions-tests", "copy").await,
        (1, 1)
    );
    // Nothing of the copies is left on this machine.
    let leftovers: Vec<_> = walk(root.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".action-context"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    runtime.finish().await.expect("finished");
    assert_eq!(
        common::labelled_in(&docker().await, "docker-actions-tests", "copy").await,
        (0, 0)
    );
}

/// Every path below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

/// The base image of the private-`FROM` test: the test image pushed to the registry
/// `scripts/docker-test-env` serves, under a name only this test uses.
const PRIVATE_BASE: &str = "127.0.0.1:5999/private/action-base";

/// An action whose Dockerfile starts `FROM` an image of a private registry is built with the
/// credentials the backend has for that registry (sent with the build), and its build fails,
/// saying so, without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_from_image_is_pulled_with_the_registrys_credentials() {
    use bollard::query_parameters::{
        PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
    };
    use futures_util::StreamExt as _;
    use hearth_docker::registry::{PasswordSource, Registries, RegistryEntry};

    let docker = docker().await;
    let credentials = bollard::auth::DockerCredentials {
        username: Some("hearth".into()),
        password: Some("hearth-registry-test".into()),
        serveraddress: Some("127.0.0.1:5999".into()),
        ..Default::default()
    };
    let as_base = TagImageOptionsBuilder::default()
        .repo(PRIVATE_BASE)
        .tag("1")
        .build();
    docker
        .tag_image(common::IMAGE, Some(as_base))
        .await
        .expect("tagged");
    let push = PushImageOptionsBuilder::default().tag("1").build();
    let mut pushed = docker.push_image(PRIVATE_BASE, Some(push), Some(credentials));
    while let Some(progress) = pushed.next().await {
        progress.expect("pushed to the test registry (scripts/docker-test-env)");
    }
    let base = format!("{PRIVATE_BASE}:1");
    let forget_base = || async {
        let options = RemoveImageOptionsBuilder::default().force(true).build();
        let _ = docker.remove_image(&base, Some(options), None).await;
    };

    let root = tempfile::tempdir().unwrap();
    let registries = Registries {
        entries: vec![RegistryEntry {
            host: "127.0.0.1:5999".into(),
            username: "hearth".into(),
            password: PasswordSource::Literal("hearth-registry-test".to_owned().into()),
        }],
        ..Registries::default()
    };
    let with = backend(root.path()).await.with_registries(registries);
    let without = backend(root.path())
        .await
        .with_registries(Registries::default());
    let spec = common::job_spec("docker-actions-tests", "private");
    with.reap(&spec.owner[..1]).await.expect("reaped");
    let cancel = CancellationToken::new();
    let mut built_tags = Vec::new();
    for (backend, allowed) in [(&without, false), (&with, true)] {
        forget_base().await;
        let runtime = backend
            .start(spec.clone(), &mut NoSetupLog, &cancel)
            .await
            .expect("started");
        let job = runtime.as_ref();
        let action = job.paths().workspace.join("action");
        let dockerfile = format!("FROM {base}\nCOPY nonce /nonce\n");
        job.write_file(&action.join("Dockerfile"), dockerfile.as_bytes(), None)
            .await
            .unwrap();
        // Never built before: the base must be pulled.
        let nonce = format!("{:?}", std::time::SystemTime::now());
        job.write_file(&action.join("nonce"), nonce.as_bytes(), None)
            .await
            .unwrap();
        let mut step = built(job, &[], None);
        step.entrypoint = Some("cat".into());
        step.args = vec!["/nonce".into()];
        let mut out = Vec::new();
        let mut sink = |_: Stream, chunk: &[u8]| out.extend_from_slice(chunk);
        let ran = job.run_container(step, &mut sink, &cancel).await;
        let out = String::from_utf8_lossy(&out).into_owned();
        if allowed {
            assert_eq!(ran.expect("built and ran"), ExecEnd::Exited(0), "{out}");
            assert!(out.ends_with(&nonce), "{out}");
            built_tags.push(tag(&out));
        } else {
            let refused = ran.expect_err("the build cannot pull the base");
            assert!(
                refused
                    .to_string()
                    .contains("cannot build the Docker action's image"),
                "{refused}"
            );
            // The registry's own answer.
            assert!(
                refused.to_string().contains("no basic auth credentials"),
                "{refused}"
            );
        }
        runtime.finish().await.expect("finished");
    }
    for tag in built_tags {
        let _ = docker
            .remove_image(
                &tag,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
    forget_base().await;
}
