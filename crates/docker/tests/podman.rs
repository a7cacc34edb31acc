//! The Docker backend against podman's Docker-compatible API: the socket
//! `scripts/podman-test-env` serves (`unix:///run/hearth-podman.sock`, or `HEARTH_PODMAN_HOST`),
//! with the busybox test image loaded. Jobs with steps, a step stopped on timeout and cancel,
//! a Dockerfile action built and run and a node lent to an image without one,
//! services reached by their alias once healthy, a forge on the loopback, and cleanup. Without
//! podman's socket these tests fail, saying so: they never skip silently.

use std::time::{Duration, Instant};

use hearth_backend::{Backend, CancellationToken, ExecEnd, JobPath, JobSpec, NoSetupLog, Stream};
use hearth_docker::connect::DockerSettings;
use hearth_docker::DockerBackend;

mod common;
use common::{job_spec, labelled_in, run, sh, web_service};

/// Where `scripts/podman-test-env` serves podman's API.
const DEFAULT_SOCKET: &str = "unix:///run/hearth-podman.sock";
/// The owner label's prefix: these tests' runner.
const RUNNER: &str = "podman-tests";

/// A client of podman's socket that has agreed on an API version; fails, naming the fix, when
/// the socket does not answer or is not podman's.
async fn podman() -> bollard::Docker {
    let host = std::env::var("HEARTH_PODMAN_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_SOCKET.to_owned());
    let settings = DockerSettings {
        host: Some(host.clone()),
        ..DockerSettings::default()
    };
    let docker = settings
        .connect(Duration::from_secs(5), |_| {})
        .await
        .unwrap_or_else(|e| {
            panic!("the podman tests need podman's socket at {host} (run scripts/podman-test-env): {e}")
        });
    // Pointed at Docker by mistake, these tests would pass and show nothing about podman.
    let version = docker.version().await.expect("podman's version");
    let engines: Vec<String> = version
        .components
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(
        engines.iter().any(|name| name.contains("Podman")),
        "{host} is not podman's socket (its engine: {engines:?})"
    );
    docker
}

async fn backend(root: &std::path::Path) -> DockerBackend {
    DockerBackend::with_client(podman().await, root.to_owned())
}

fn spec(task: &str) -> JobSpec {
    job_spec(RUNNER, task)
}

/// How many containers and networks carry this task's labels in podman.
async fn labelled(task: &str) -> (usize, usize) {
    labelled_in(&podman().await, RUNNER, task).await
}

/// Removes what an earlier, failed run of the test `task` left (its runner is gone).
async fn clean(backend: &DockerBackend, task: &str) {
    let owner = [("hearth.runner".to_owned(), format!("{RUNNER}-{task}"))];
    backend.reap(&owner).await.expect("reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_with_their_env_working_directory_exit_codes_and_files() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "steps").await;
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec("steps"), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    assert_eq!(labelled("steps").await, (1, 1));
    assert!(job
        .base_env()
        .iter()
        .any(|(k, v)| k == "FROM_SPEC" && v == "spec-value"));

    let script = r#"echo "pwd=$(pwd) step=$FROM_STEP spec=$FROM_SPEC"; echo oops >&2; exit 3"#;
    let (end, out, err) = run(job.as_ref(), sh(job.as_ref(), script), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(3));
    assert_eq!(
        out.trim(),
        "pwd=/__w/workspace step=step-value spec=spec-value"
    );
    assert_eq!(err.trim(), "oops");

    // Another working directory, made by a step.
    let (end, _, _) = run(job.as_ref(), sh(job.as_ref(), "mkdir sub"), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0));
    let mut in_sub = sh(job.as_ref(), "pwd");
    in_sub.working_dir = job.paths().workspace.join("sub");
    let (end, out, _) = run(job.as_ref(), in_sub, &cancel).await;
    assert_eq!(
        (end, out.trim()),
        (ExecEnd::Exited(0), "/__w/workspace/sub")
    );

    // Files the engine writes are the job's, and what a step writes the engine reads.
    let file = job.paths().temp.join("from-engine");
    job.write_file(&file, b"engine wrote this", None)
        .await
        .unwrap();
    let script = format!("cat {file}; echo step-wrote > {}/out", job.paths().temp);
    let (end, out, _) = run(job.as_ref(), sh(job.as_ref(), &script), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0));
    assert_eq!(out, "engine wrote this");
    let read = job
        .read_file(&job.paths().temp.join("out"), 1024)
        .await
        .unwrap();
    assert_eq!(read.as_deref(), Some(&b"step-wrote\n"[..]));

    let mut missing = sh(job.as_ref(), "true");
    missing.working_dir = JobPath::new("/__w/workspace/missing");
    let mut ignore = |_: Stream, _: &[u8]| {};
    assert!(matches!(
        job.exec(missing, &mut ignore, &cancel).await,
        Err(hearth_backend::BackendError::WorkingDirectory(_))
    ));

    job.finish().await.expect("finished");
    assert_eq!(labelled("steps").await, (0, 0));
    let left: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("tool-cache")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_or_cancelled_step_is_stopped_with_its_background_processes() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "stop").await;
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec("stop"), &mut NoSetupLog, &cancel)
        .await
        .expect("started");

    common::timed_out_and_cancelled_steps_stop(job.as_ref()).await;
    job.finish().await.expect("finished");
    assert_eq!(labelled("stop").await, (0, 0));
}

/// The service's health check passes (run by podman, or by Hearth where podman runs none:
/// without systemd), it is reached by its id as a DNS alias on the job's network and at its
/// published port from this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_reachable_by_their_alias_once_healthy() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "services").await;
    let mut spec = spec("services");
    spec.services = vec![("web".into(), web_service())];
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    assert_eq!(labelled("services").await, (2, 1));
    let containers = job.containers();
    let (id, web) = &containers.services[0];
    assert_eq!(id, "web");
    let (port, published) = &web.ports[0];
    assert_eq!(port, "8080");
    let published: u16 = published.parse().expect("a published port");
    let (end, out, err) = run(
        job.as_ref(),
        sh(job.as_ref(), "wget -q -O - http://web:8080/"),
        &cancel,
    )
    .await;
    assert_eq!(end, ExecEnd::Exited(0), "{err}");
    assert_eq!(out.trim(), "hello from web");
    let from_here = http_get(&format!("127.0.0.1:{published}")).await;
    assert!(from_here.ends_with("hello from web\n"), "{from_here}");
    job.finish().await.expect("finished");
    assert_eq!(labelled("services").await, (0, 0));
}

/// A plain HTTP/1.0 GET of `/` at `address`; the whole answer.
async fn http_get(address: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connected");
    stream
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .await
        .expect("sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

/// A service whose health check keeps failing fails the start, its log and the check's
/// output in the set-up log, and nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_gets_healthy_fails_the_start_with_its_log() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "unhealthy").await;
    let mut spec = spec("unhealthy");
    let mut service = web_service();
    service.options = "--health-cmd 'echo the-check-says-no; exit 1' \
                       --health-interval 200ms --health-retries 2"
        .into();
    spec.services = vec![("db".into(), service)];
    /// The set-up log's lines.
    struct Collect(Vec<String>);
    impl hearth_backend::SetupLog for Collect {
        fn line(&mut self, _: hearth_backend::SetupLevel, text: &str) {
            self.0.push(text.to_owned())
        }
    }
    let mut log = Collect(Vec::new());
    let started = Instant::now();
    let error = match backend
        .start(spec, &mut log, &CancellationToken::new())
        .await
    {
        Ok(_) => panic!("an unhealthy service started"),
        Err(e) => e.to_string(),
    };
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.contains("service `db` did not become healthy"),
        "{error}"
    );
    let lines = log.0;
    assert!(
        lines.iter().any(|l| l.contains("the-check-says-no")),
        "{lines:?}"
    );
    assert_eq!(labelled("unhealthy").await, (0, 0));
}

/// A forge on this machine's loopback is reached from the job container through the
/// forwarder on the job network's gateway (which podman brings up with the first container);
/// a cache on the loopback where nothing listens is one warning, and the job starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forge_on_the_loopback_is_reachable_from_the_job_container() {
    let address = common::loopback_forge().await;
    let dead = common::dead_loopback().await;
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "reach").await;
    let mut spec = spec("reach");
    spec.reach = vec![common::forge(&address), common::cache(&dead)];
    let cancel = CancellationToken::new();
    let mut log = common::LeveledLines::default();
    let job = backend
        .start(spec, &mut log, &cancel)
        .await
        .expect("started");
    let warnings = log.warnings();
    assert_eq!(warnings.len(), 1, "{:#?}", log.0);
    assert!(
        warnings[0].starts_with("The cache at ")
            && warnings[0].contains(&format!(
                "nothing answers at {dead} on the runner's machine"
            )),
        "{}",
        warnings[0]
    );
    let seen = job.address(&address);
    assert_ne!(seen, address);
    let script = format!("wget -q -O - {seen}/api/healthz");
    let (end, out, err) = run(job.as_ref(), sh(job.as_ref(), &script), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0), "{err}");
    assert_eq!(out, "the forge answers");
    job.finish().await.expect("finished");
    assert_eq!(labelled("reach").await, (0, 0));
}

/// What a runner killed mid-job left (containers, network, folder) is reaped by its labels; a
/// job dropped without `finish` removes its container and network in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_dead_runner_left_is_reaped_and_a_dropped_job_cleans_up() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "reap").await;
    clean(&backend, "drop").await;
    let cancel = CancellationToken::new();
    let mut left_spec = spec("reap");
    left_spec.services = vec![("web".into(), web_service())];
    let left = backend
        .start(left_spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let owner = [("hearth.runner".to_owned(), format!("{RUNNER}-reap"))];
    // While the job runs, its own backend's reap leaves it be.
    let reaped = backend.reap(&owner).await.expect("reaped");
    assert!(reaped.removed.is_empty(), "{reaped:?}");
    std::mem::forget(left);
    assert_eq!(labelled("reap").await, (2, 1));
    let again = self::backend(root.path()).await;
    let reaped = again.reap(&owner).await.expect("reaped");
    assert!(
        reaped.removed.iter().any(|r| r.starts_with("network")),
        "{reaped:?}"
    );
    assert_eq!(labelled("reap").await, (0, 0));

    let dropped = backend
        .start(spec("drop"), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    drop(dropped);
    let until = Instant::now() + Duration::from_secs(15);
    while labelled("drop").await != (0, 0) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(labelled("drop").await, (0, 0));
}

/// The actions issue's Docker parts on podman: a Dockerfile action's image built through the
/// compatible API and run as a step container with the workspace at its GitHub path, and the
/// runner's node lent to an image without one (busybox), running a script of the workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_action_runs_and_a_node_is_lent() {
    use hearth_backend::{ContainerRun, ImageSource, Mount};
    let root = tempfile::tempdir().unwrap();
    let externals = root.path().join("externals");
    let backend = backend(root.path()).await.with_node_lending(externals);
    clean(&backend, "actions").await;
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec("actions"), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let workspace = job.paths().workspace.clone();
    job.write_file(
        &workspace.join("action/Dockerfile"),
        b"FROM hearth-test/busybox:1\nCOPY say.sh /say.sh\nENTRYPOINT [\"sh\", \"/say.sh\"]\n",
        None,
    )
    .await
    .unwrap();
    job.write_file(
        &workspace.join("action/say.sh"),
        b"echo \"built on podman says $1 in $PWD\"; echo out > from-action.txt\n",
        None,
    )
    .await
    .unwrap();
    let run_step = ContainerRun {
        image: ImageSource::Build {
            context: workspace.join("action"),
            dockerfile: "Dockerfile".into(),
        },
        entrypoint: None,
        args: vec!["hello".into()],
        env: Vec::new(),
        mounts: vec![Mount {
            source: workspace.clone(),
            target: "/github/workspace".into(),
        }],
        working_dir: "/github/workspace".into(),
        timeout: Some(Duration::from_secs(60)),
    };
    let mut out = Vec::new();
    let mut sink = |_: Stream, chunk: &[u8]| out.extend_from_slice(chunk);
    let end = job
        .run_container(run_step, &mut sink, &cancel)
        .await
        .expect("ran");
    let out = String::from_utf8_lossy(&out);
    assert_eq!(end, ExecEnd::Exited(0), "{out}");
    assert!(
        out.contains("built on podman says hello in /github/workspace"),
        "{out}"
    );
    let written = job
        .read_file(&workspace.join("from-action.txt"), 64)
        .await
        .unwrap();
    assert_eq!(written.as_deref(), Some(&b"out\n"[..]));

    let node = job.node(20).await.expect("a node to lend");
    job.write_file(
        &workspace.join("main.js"),
        b"console.log(`node ${process.versions.node.split('.')[0]} runs in busybox`)\n",
        None,
    )
    .await
    .unwrap();
    let mut spec = sh(job.as_ref(), "");
    spec.argv = node.argv.clone();
    spec.argv.push(workspace.join("main.js").to_string());
    let (end, out, err) = run(job.as_ref(), spec, &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0), "{out}{err}");
    assert!(out.ends_with("runs in busybox\n"), "{out}{err}");

    job.finish().await.expect("finished");
    assert_eq!(labelled("actions").await, (0, 0));
}
