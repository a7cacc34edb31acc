//! The Docker backend against a real Docker Engine, with the test image `scripts/docker-test-env`
//! builds (`hearth-test/busybox:1`). Without a daemon these tests fail, saying so: they never
//! skip silently.

use std::time::{Duration, Instant};

use hearth_backend::{
    Backend, CancellationToken, ContainerSpec, ExecEnd, JobPath, JobSpec, NoSetupLog, Stream,
};
use hearth_docker::DockerBackend;

mod common;
use common::{run, sh, web_service, IMAGE};

async fn backend(root: &std::path::Path) -> DockerBackend {
    DockerBackend::connect(root.to_owned())
        .await
        .unwrap_or_else(|e| {
            panic!("the Docker tests need a Docker daemon (run scripts/docker-test-env): {e}")
        })
}

/// Removes what an earlier, failed run of the test `task` left (its runner is gone).
async fn clean(backend: &DockerBackend, task: &str) {
    let owner = [("hearth.runner".to_owned(), format!("docker-tests-{task}"))];
    backend.reap(&owner).await.expect("reaped");
}

fn spec(task: &str) -> JobSpec {
    JobSpec {
        name: "docker test".into(),
        container: Some(ContainerSpec {
            image: IMAGE.into(),
            env: vec![("FROM_SPEC".into(), "spec-value".into())],
            ..Default::default()
        }),
        owner: vec![
            // A runner per test: tests run side by side, and one reaps its runner's leftovers.
            ("hearth.runner".into(), format!("docker-tests-{task}")),
            ("hearth.task".into(), task.into()),
        ],
        ..Default::default()
    }
}

/// How many containers and networks carry this task's labels.
async fn labelled(task: &str) -> (usize, usize) {
    common::labelled_in(&docker().await, "docker-tests", task).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_in_the_container_with_their_env_folder_and_files() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "steps").await;
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec("steps"), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    assert_eq!(labelled("steps").await, (1, 1));
    let containers = job.containers();
    assert!(containers.container.is_some());
    assert!(job
        .base_env()
        .iter()
        .any(|(k, v)| k == "FROM_SPEC" && v == "spec-value"));
    assert!(job.base_env().iter().any(|(k, _)| k == "PATH"));
    // The busybox image has no bash: a step's default shell is `sh` there.
    assert_eq!(job.has_program("bash", "/bin"), Some(false));

    // Without `automount`, a job does not get the Docker socket: it would control the machine.
    let script = r#"echo "pwd=$(pwd) step=$FROM_STEP spec=$FROM_SPEC"; test -e /var/run/docker.sock && echo socket; echo oops >&2; exit 3"#;
    let (end, out, err) = run(job.as_ref(), sh(job.as_ref(), script), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(3));
    assert_eq!(
        out.trim(),
        "pwd=/__w/workspace step=step-value spec=spec-value"
    );
    assert_eq!(err.trim(), "oops");

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

    // A missing working directory is said plainly.
    let mut missing = sh(job.as_ref(), "true");
    missing.working_dir = JobPath::new("/__w/workspace/missing");
    let mut ignore = |_: Stream, _: &[u8]| {};
    assert!(matches!(
        job.exec(missing, &mut ignore, &cancel).await,
        Err(hearth_backend::BackendError::WorkingDirectory(_))
    ));

    job.finish().await.expect("finished");
    assert_eq!(labelled("steps").await, (0, 0));
    assert_eq!(
        std::fs::read_dir(root.path())
            .unwrap()
            .filter(|e| { e.as_ref().is_ok_and(|e| e.file_name() != "tool-cache") })
            .count(),
        0
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_dead_runner_left_is_reaped_and_a_dropped_job_cleans_up() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "reap").await;
    clean(&backend, "drop").await;
    let cancel = CancellationToken::new();
    // A runner killed mid-job: its job neither finished nor dropped.
    let left = backend
        .start(spec("reap"), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    // While the job runs, its own backend's reap leaves it be.
    let owner = [("hearth.runner".to_owned(), "docker-tests-reap".to_owned())];
    let reaped = backend.reap(&owner).await.expect("reaped");
    assert!(reaped.removed.is_empty(), "{reaped:?}");
    assert_eq!(labelled("reap").await, (1, 1));
    std::mem::forget(left);
    assert_eq!(labelled("reap").await, (1, 1));
    let again = self::backend(root.path()).await;
    let reaped = again.reap(&owner).await.expect("reaped");
    assert!(
        reaped.removed.iter().any(|r| r.starts_with("container")),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_had_is_an_error_that_names_it_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    let mut spec = spec("missing-image");
    if let Some(container) = &mut spec.container {
        // A registry on a port nothing listens on: the pull fails at once, offline.
        container.image = "127.0.0.1:9/hearth/none:1".into();
    }
    let error = match backend
        .start(spec, &mut NoSetupLog, &CancellationToken::new())
        .await
    {
        Ok(_) => panic!("an image that does not exist started"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("127.0.0.1:9/hearth/none:1"), "{error}");
    assert_eq!(labelled("missing-image").await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_reachable_by_their_id_once_healthy() {
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
    let published = &web.ports[0];
    assert_eq!(published.0, "8080");
    assert!(published.1.parse::<u16>().is_ok(), "{published:?}");
    let (end, out, err) = run(
        job.as_ref(),
        sh(job.as_ref(), "wget -q -O - http://web:8080/"),
        &cancel,
    )
    .await;
    assert_eq!(end, ExecEnd::Exited(0), "{err}");
    assert_eq!(out.trim(), "hello from web");
    job.finish().await.expect("finished");
    assert_eq!(labelled("services").await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_gets_healthy_fails_the_start_with_its_log() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "unhealthy").await;
    let mut spec = spec("unhealthy");
    let mut service = web_service();
    service.command = Some("-c echo${IFS}the-service-says-no;exit${IFS}3".into());
    spec.services = vec![("db".into(), service)];
    /// The set-up log's lines.
    struct Collect(Vec<String>);
    impl hearth_backend::SetupLog for Collect {
        fn line(&mut self, _: hearth_backend::SetupLevel, text: &str) {
            self.0.push(text.to_owned())
        }
    }
    let mut log = Collect(Vec::new());
    let error = match backend
        .start(spec, &mut log, &CancellationToken::new())
        .await
    {
        Ok(_) => panic!("a failing service started"),
        Err(e) => e.to_string(),
    };
    let lines = log.0;
    assert!(error.contains("service `db`"), "{error}");
    assert!(
        lines.iter().any(|l| l.contains("the-service-says-no")),
        "{lines:?}"
    );
    assert_eq!(labelled("unhealthy").await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_that_escape_the_sandbox_and_volumes_are_refused_before_anything_is_made() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    for (options, volumes, expected) in [
        (
            "--privileged",
            vec![],
            "`--privileged` reaches outside the job's sandbox",
        ),
        (
            "",
            vec!["/:/host".to_owned()],
            "the volume `/:/host` is not allowed",
        ),
    ] {
        let mut spec = spec("refused");
        if let Some(container) = &mut spec.container {
            container.options = options.into();
            container.volumes = volumes;
        }
        let error = match backend
            .start(spec, &mut NoSetupLog, &CancellationToken::new())
            .await
        {
            Ok(_) => panic!("{options} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(expected), "{error}");
    }
    assert_eq!(labelled("refused").await, (0, 0));
}

/// The private image `scripts/docker-test-env` pushes to its registry on 127.0.0.1:5999.
const PRIVATE: &str = "127.0.0.1:5999/private/busybox:1";
const REGISTRY_PASSWORD: &str = "hearth-registry-test";

async fn forget_private_image() {
    let docker = bollard::Docker::connect_with_local_defaults()
        .expect("docker")
        .negotiate_version()
        .await
        .expect("docker");
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
        .force(true)
        .build();
    let _ = docker.remove_image(PRIVATE, Some(options), None).await;
}

/// Starts a job in the private image with `registries` and `workflow` credentials; the start's
/// error, or `None` (the job is finished at once).
async fn start_private(
    backend: DockerBackend,
    registries: hearth_docker::registry::Registries,
    workflow: Option<hearth_backend::Credentials>,
) -> Option<hearth_backend::BackendError> {
    forget_private_image().await;
    let backend = backend.with_registries(registries);
    let mut spec = spec("registry");
    if let Some(container) = &mut spec.container {
        container.image = PRIVATE.into();
        container.credentials = workflow;
    }
    match backend
        .start(spec, &mut NoSetupLog, &CancellationToken::new())
        .await
    {
        Ok(job) => {
            let containers = job.containers();
            assert!(containers.container.is_some());
            job.finish().await.expect("finished");
            None
        }
        Err(e) => Some(e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_images_pull_with_credentials_from_each_source_and_rotated_files_apply() {
    use hearth_docker::registry::{PasswordSource, Registries, RegistryEntry};
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "registry").await;
    let none = Registries::default();

    // No credentials: the error names the image, the host and what was looked at.
    let error = start_private(backend.clone(), none.clone(), None)
        .await
        .expect("a private image pulled without credentials");
    assert_eq!(error.kind(), hearth_backend::ErrorKind::RegistryDenied);
    let message = error.to_string();
    assert!(
        message.contains(PRIVATE) && message.contains("from 127.0.0.1:5999"),
        "{message}"
    );
    assert!(message.contains("no credentials were found"), "{message}");

    // The workflow's credentials.
    let workflow = hearth_backend::Credentials {
        username: "hearth".into(),
        password: REGISTRY_PASSWORD.to_owned().into(),
    };
    assert!(start_private(backend.clone(), none.clone(), Some(workflow))
        .await
        .is_none());

    // A container.registries entry, its password in a file.
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("password");
    std::fs::write(&password_file, format!("{REGISTRY_PASSWORD}\n")).unwrap();
    let entry = Registries {
        entries: vec![RegistryEntry {
            host: "127.0.0.1:*".into(),
            username: "hearth".into(),
            password: PasswordSource::File(password_file),
        }],
        ..Registries::default()
    };
    assert!(start_private(backend.clone(), entry, None).await.is_none());

    // A Kubernetes Secret's .dockerconfigjson, mounted as a file: a wrong password is refused
    // and named; the file rotated, the next job pulls, with no restart.
    let dockerconfigjson = secrets.path().join(".dockerconfigjson");
    let write = |password: &str| {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("hearth:{password}"));
        let json = format!(r#"{{"auths":{{"127.0.0.1:5999":{{"auth":"{auth}"}}}}}}"#);
        std::fs::write(&dockerconfigjson, json).unwrap();
    };
    let mounted = Registries {
        config_files: vec![dockerconfigjson.clone()],
        ..Registries::default()
    };
    write("an-old-password");
    let error = start_private(backend.clone(), mounted.clone(), None)
        .await
        .expect("a wrong password pulled");
    let message = error.to_string();
    assert!(message.contains(".dockerconfigjson"), "{message}");
    assert!(!message.contains("an-old-password"), "{message}");
    write(REGISTRY_PASSWORD);
    assert!(start_private(backend.clone(), mounted, None)
        .await
        .is_none());

    forget_private_image().await;
    assert_eq!(labelled("registry").await, (0, 0));
}

/// For images on the forge's own host, the task's token is tried last; a registry that
/// refuses it is asked again without credentials, and the error says both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tasks_token_pulls_images_on_the_forges_host_after_every_other_source() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path())
        .await
        .with_registries(hearth_docker::registry::Registries::default());
    for (password, pulls) in [(REGISTRY_PASSWORD, true), ("not-the-token", false)] {
        clean(&backend, "forge-registry").await;
        forget_private_image().await;
        let mut spec = spec("forge-registry");
        if let Some(container) = &mut spec.container {
            container.image = PRIVATE.into();
        }
        spec.forge_registry = Some(hearth_backend::ForgeRegistry {
            host: "127.0.0.1:5999".into(),
            credentials: hearth_backend::Credentials {
                username: "hearth".into(),
                password: password.to_owned().into(),
            },
        });
        let mut log = SetupLines::default();
        match backend
            .start(spec, &mut log, &CancellationToken::new())
            .await
        {
            Ok(job) => {
                assert!(pulls, "pulled with a wrong token: {:#?}", log.0);
                assert!(
                    log.0
                        .iter()
                        .any(|l| l.ends_with("the task's token for the forge's registry")),
                    "{:#?}",
                    log.0
                );
                job.finish().await.expect("finished");
            }
            Err(e) => {
                assert!(!pulls, "{e}");
                let message = e.to_string();
                assert!(
                    message.contains("the task's token for the forge's registry")
                        && message.contains("; without credentials: cannot pull the image"),
                    "{message}"
                );
                assert!(!message.contains("not-the-token"), "{message}");
            }
        }
    }
    forget_private_image().await;
    assert_eq!(labelled("forge-registry").await, (0, 0));
}

/// The set-up log's lines.
#[derive(Default)]
struct SetupLines(Vec<String>);

impl hearth_backend::SetupLog for SetupLines {
    fn line(&mut self, _: hearth_backend::SetupLevel, text: &str) {
        self.0.push(text.to_owned());
    }
}

/// `container.registry_mirrors`: an image of a registry with a mirror comes from the mirror
/// (with the mirror's credentials) and carries its own name; a mirror that cannot serve it is
/// said, and the image comes from its registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_come_from_their_registrys_mirror_or_from_the_registry_when_it_fails() {
    use hearth_docker::registry::{PasswordSource, Registries, RegistryEntry};
    use hearth_docker::ContainerSettings;
    const MIRRORED: &str = "registry.hearth.invalid/private/busybox:1";
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let registries = Registries {
        entries: vec![RegistryEntry {
            host: "127.0.0.1:5999".into(),
            username: "hearth".into(),
            password: PasswordSource::Literal(REGISTRY_PASSWORD.to_owned().into()),
        }],
        ..Registries::default()
    };
    let with_mirror = |registry: &str, mirror: &str| {
        let settings = ContainerSettings {
            registry_mirrors: [(registry.to_owned(), mirror.to_owned())].into(),
            ..ContainerSettings::default()
        };
        let registries = registries.clone();
        async move {
            backend(root)
                .await
                .with_registries(registries)
                .with_settings(settings)
        }
    };
    let forget = |image: &'static str| async move {
        let docker = bollard::Docker::connect_with_local_defaults().expect("docker");
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        let _ = docker.remove_image(image, Some(options), None).await;
    };
    for (backend, image, expected) in [
        // A registry that does not exist, mirrored on the test registry.
        (
            with_mirror("registry.hearth.invalid", "127.0.0.1:5999").await,
            MIRRORED,
            "Pulling 127.0.0.1:5999/private/busybox:1 with credentials from container.registries",
        ),
        // The test registry, its mirror down: pulled from the registry itself.
        (
            with_mirror("127.0.0.1:5999", "127.0.0.1:1").await,
            PRIVATE,
            "The mirror 127.0.0.1:1 did not serve 127.0.0.1:5999/private/busybox:1",
        ),
    ] {
        clean(&backend, "mirror").await;
        forget(MIRRORED).await;
        forget(PRIVATE).await;
        let mut spec = spec("mirror");
        if let Some(container) = &mut spec.container {
            container.image = image.into();
        }
        let mut log = SetupLines::default();
        let job = backend
            .start(spec, &mut log, &CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("{image}: {e}\n{:#?}", log.0));
        assert!(
            log.0.iter().any(|l| l.starts_with(expected)),
            "{image}: {:#?}",
            log.0
        );
        job.finish().await.expect("finished");
    }
    forget(MIRRORED).await;
    forget(PRIVATE).await;
    assert_eq!(labelled("mirror").await, (0, 0));
}

/// A forge on this machine's loopback (as a runner registered with `http://127.0.0.1:3000`
/// has it): unreachable at that address from a container, reachable at the one the runtime
/// gives the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forge_on_the_loopback_is_reachable_from_the_job_container() {
    let address = common::loopback_forge().await;
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "reach").await;
    let mut spec = spec("reach");
    spec.reach = vec![common::forge(&address)];
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let seen = job.address(&address);
    assert_ne!(seen, address);
    let script = format!(
        "wget -q -O - {seen}/api/healthz; echo; wget -q -O - {address}/ || echo unreachable as the runner has it"
    );
    let (end, out, _) = run(job.as_ref(), sh(job.as_ref(), &script), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0));
    assert!(out.contains("the forge answers"), "{out}");
    assert!(out.contains("unreachable as the runner has it"), "{out}");
    job.finish().await.expect("finished");
}

/// A forge on another network of the same daemon (a runner in a container beside it, given the
/// daemon's socket, the forge a service on a user network): Docker keeps bridge networks
/// apart, so the job container joins the forge's network and reaches it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forge_on_another_docker_network_is_reached_by_joining_it() {
    use std::process::Command;
    const NETWORK: &str = "hearth-test-forge-network";
    const FORGE: &str = "hearth-test-forge";
    let docker_cli = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .output()
            .expect("docker runs")
    };
    let _ = docker_cli(&["rm", "-f", FORGE]);
    let _ = docker_cli(&["network", "rm", NETWORK]);
    assert!(docker_cli(&["network", "create", NETWORK]).status.success());
    let started = docker_cli(&[
        "run",
        "-d",
        "--name",
        FORGE,
        "--network",
        NETWORK,
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /www && echo the forge answers > /www/index.html && httpd -f -p 8080 -h /www",
    ]);
    assert!(started.status.success(), "{started:?}");
    let inspected = docker_cli(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        FORGE,
    ]);
    let ip = String::from_utf8_lossy(&inspected.stdout).trim().to_owned();
    let forge = format!("http://{ip}:8080");

    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "forge-network").await;
    let mut spec = spec("forge-network");
    spec.reach = vec![common::forge(&forge)];
    let mut log = SetupLines::default();
    let cancel = CancellationToken::new();
    let started = backend.start(spec, &mut log, &cancel).await;
    let _ = docker_cli(&["rm", "-f", FORGE]);
    let job = started.unwrap_or_else(|e| panic!("{e}\n{:#?}", log.0));
    assert!(
        log.0
            .iter()
            .any(|l| l.contains(&format!("Docker network {NETWORK}"))),
        "{:#?}",
        log.0
    );
    job.finish().await.expect("finished");
    assert!(docker_cli(&["network", "rm", NETWORK]).status.success());
    assert_eq!(labelled("forge-network").await, (0, 0));
}

/// A forge the job container cannot reach fails the job's start at once, saying which address
/// failed from where and what to change; nothing is left. In the busybox image (no bash, a
/// `nc` without `-z`) and in the Debian one (bash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forge_the_job_cannot_reach_fails_the_start_saying_what_to_change() {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    for image in [IMAGE, "hearth-test/debian:1"] {
        clean(&backend, "unreachable").await;
        let mut spec = spec("unreachable");
        if let Some(container) = &mut spec.container {
            container.image = image.into();
        }
        spec.reach = vec![common::forge("http://no-such-forge.invalid:3000")];
        let cancel = CancellationToken::new();
        let error = match backend.start(spec, &mut NoSetupLog, &cancel).await {
            Ok(_) => panic!("{image}: the job started"),
            Err(e) => e,
        };
        assert_eq!(error.kind(), hearth_backend::ErrorKind::Unreachable);
        let message = error.to_string();
        assert!(
            message.starts_with(
                "the forge at http://no-such-forge.invalid:3000 cannot be reached from the job \
                 container on the network hearth-"
            ) && message.contains("set container.network"),
            "{image}: {message}"
        );
        assert_eq!(labelled("unreachable").await, (0, 0), "{image}");
    }
}

/// The cache is optional: one the job container cannot reach (nothing behind the forwarder on
/// the gateway; a name the container cannot resolve, checked by the image's tools; an address
/// that refuses the container, checked from its network namespace) is one warning line in the
/// set-up log,
/// naming the address and the fix, and the job starts; one it reaches says nothing. In the
/// busybox image (`nc`), the Debian one (bash) and the musl one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_the_job_cannot_reach_is_one_warning_and_the_job_starts() {
    let forge = common::loopback_forge().await;
    let live = common::loopback_forge().await;
    let dead = common::dead_loopback().await;
    let dead_here = {
        // This machine's address on its default route (a datagram socket's connect sends
        // nothing), and a port free there.
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.connect("203.0.113.1:9").expect("a default route");
        let ip = socket.local_addr().unwrap().ip();
        let free = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        format!("http://{ip}:{}", free.local_addr().unwrap().port())
    };
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    // The cache's URL, and what the warning says after "cannot be reached from the job
    // container on the network hearth-…: " (`None`: no warning).
    let cases = [
        (live.clone(), None),
        (
            dead.clone(),
            Some(format!("nothing answers at {dead} on the runner's machine")),
        ),
        (
            "http://no-such-cache.invalid:9000".to_owned(),
            Some(String::new()),
        ),
        // An address of this machine that the container's own connection is refused at.
        (dead_here, Some("Connection refused".to_owned())),
    ];
    for image in [IMAGE, "hearth-test/debian:1", "hearth-test/musl:1"] {
        for (cache, warned) in &cases {
            clean(&backend, "cache-reach").await;
            let mut spec = spec("cache-reach");
            if let Some(container) = &mut spec.container {
                container.image = image.into();
            }
            spec.reach = vec![common::forge(&forge), common::cache(cache)];
            let mut log = common::LeveledLines::default();
            let cancel = CancellationToken::new();
            let job = backend
                .start(spec, &mut log, &cancel)
                .await
                .unwrap_or_else(|e| panic!("{image} {cache}: {e}\n{:#?}", log.0));
            let warnings = log.warnings();
            match warned {
                None => assert!(warnings.is_empty(), "{image} {cache}: {warnings:#?}"),
                Some(why) => {
                    assert_eq!(warnings.len(), 1, "{image} {cache}: {:#?}", log.0);
                    let line = warnings[0];
                    let seen = job.address(cache);
                    let via = if seen == *cache {
                        String::new()
                    } else {
                        format!(" (forwarded to {cache}, as the runner reaches it)")
                    };
                    assert!(
                        line.starts_with(&format!(
                            "The cache at {seen}{via} cannot be reached from the job container \
                             on the network hearth-"
                        )) && line.contains(why.as_str())
                            && line.ends_with(
                                "; set cache.host to where the job reaches. The job runs \
                                 without it."
                            )
                            && !line.contains('\n'),
                        "{image} {cache}: {line}"
                    );
                }
            }
            job.finish().await.expect("finished");
        }
    }
    assert_eq!(labelled("cache-reach").await, (0, 0));
}

/// An image with a shell and nothing to connect with (this machine's `dash` and its C library
/// alone: no bash, nc, curl, wget, perl, python or node) is checked by the node the runner
/// lends it: a cache at a name the container cannot resolve (which only a check from inside
/// finds) is still one warning, in node's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_with_nothing_to_connect_with_is_checked_by_the_lent_node() {
    let image = bare_shell_image();
    let forge = common::loopback_forge().await;
    let unknown = "http://no-such-cache.invalid:9000";
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path())
        .await
        .with_node_lending(root.path().join("externals"));
    clean(&backend, "bare-reach").await;
    let mut spec = spec("bare-reach");
    if let Some(container) = &mut spec.container {
        container.image = image.into();
    }
    spec.reach = vec![common::forge(&forge), common::cache(unknown)];
    let mut log = common::LeveledLines::default();
    let job = backend
        .start(spec, &mut log, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", log.0));
    let warnings = log.warnings();
    assert_eq!(warnings.len(), 1, "{:#?}", log.0);
    assert!(
        warnings[0].starts_with("The cache at ")
            && warnings[0].contains("getaddrinfo ENOTFOUND no-such-cache.invalid"),
        "{}",
        warnings[0]
    );
    job.finish().await.expect("finished");
    assert_eq!(labelled("bare-reach").await, (0, 0));
}

/// `hearth-test/bare-shell:2`: `/bin/sh` (this machine's `dash`), `tail` (what the job
/// container's main process runs) and the libraries `ldd` lists, from scratch; built once.
fn bare_shell_image() -> &'static str {
    use std::process::Command;
    const BARE: &str = "hearth-test/bare-shell:2";
    let there = Command::new("docker")
        .args(["image", "inspect", BARE])
        .output()
        .expect("docker runs");
    if there.status.success() {
        return BARE;
    }
    let context = tempfile::tempdir().unwrap();
    let put = |from: &std::path::Path, to: &str| {
        let at = context.path().join(to.trim_start_matches('/'));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::copy(from, &at).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    };
    for (program, at) in [("/bin/dash", "/bin/sh"), ("/usr/bin/tail", "/bin/tail")] {
        let program = std::path::Path::new(program);
        put(program, at);
        let ldd = Command::new("ldd").arg(program).output().expect("ldd runs");
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            let path = match line.split_once("=>") {
                Some((_, after)) => after.trim().split(' ').next().unwrap_or(""),
                None => line.trim().split(' ').next().unwrap_or(""),
            };
            if path.starts_with('/') {
                put(std::path::Path::new(path), path);
            }
        }
    }
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY . /\n",
    )
    .unwrap();
    let built = Command::new("docker")
        .args(["build", "-q", "-t", BARE])
        .arg(context.path())
        .output()
        .expect("docker build runs");
    assert!(built.status.success(), "{built:?}");
    BARE
}

/// `container.privileged` is not shown here: this machine's sandbox refuses privileged
/// containers (`unable to apply caps: operation not permitted`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runners_network_valid_volumes_and_socket_mount_apply() {
    use hearth_docker::ContainerSettings;
    let root = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("note"), "from the host").unwrap();
    let docker = bollard::Docker::connect_with_local_defaults()
        .expect("docker")
        .negotiate_version()
        .await
        .expect("docker");
    let network = "hearth-test-configured-network";
    let _ = docker.remove_network(network).await;
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: network.into(),
            ..Default::default()
        })
        .await
        .expect("network");
    let backend = backend(root.path()).await.with_settings(ContainerSettings {
        network: network.into(),
        privileged: false,
        valid_volumes: vec![format!("{}/**", shared.path().parent().unwrap().display())],
        docker_socket: Some("/var/run/docker.sock".into()),
        ..ContainerSettings::default()
    });
    clean(&backend, "settings").await;
    let mut spec = spec("settings");
    if let Some(container) = &mut spec.container {
        container.volumes = vec![format!("{}:/shared:ro", shared.path().display())];
    }
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let info = job.containers().container.expect("a container");
    assert_eq!(info.network, network);
    let script = "cat /shared/note; test -S /var/run/docker.sock && echo ' and a socket'";
    let (end, out, _) = run(job.as_ref(), sh(job.as_ref(), script), &cancel).await;
    assert_eq!(end, ExecEnd::Exited(0));
    assert_eq!(out, "from the host and a socket\n");
    job.finish().await.expect("finished");
    // The runner's network is not the job's to remove.
    assert!(docker.inspect_network(network, None).await.is_ok());
    docker.remove_network(network).await.expect("removed");
    assert_eq!(labelled("settings").await, (0, 0));
}

/// A client of the test daemon, for looking at what the backend made.
async fn docker() -> bollard::Docker {
    bollard::Docker::connect_with_local_defaults()
        .expect("docker")
        .negotiate_version()
        .await
        .expect("docker")
}

/// `container.cpus` and `container.memory` limit the job container and each service, except
/// where a container's own `options:` sets `--cpus` or `--memory`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runners_cpu_and_memory_limits_apply_unless_options_set_their_own() {
    use hearth_docker::ContainerSettings;
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await.with_settings(ContainerSettings {
        nano_cpus: Some(1_500_000_000),
        memory: Some(96 << 20),
        ..ContainerSettings::default()
    });
    clean(&backend, "limits").await;
    let mut spec = spec("limits");
    let mut web = web_service();
    web.options.push_str(" --memory 64m");
    spec.services = vec![("web".into(), web)];
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let containers = job.containers();
    let docker = docker().await;
    let limits = |id: String| {
        let docker = docker.clone();
        async move {
            let host = docker
                .inspect_container(&id, None)
                .await
                .expect("inspected")
                .host_config
                .expect("a host config");
            (host.nano_cpus, host.memory)
        }
    };
    let job_container = containers.container.expect("a container").id;
    assert_eq!(
        limits(job_container).await,
        (Some(1_500_000_000), Some(96 << 20))
    );
    let service = containers.services[0].1.id.clone();
    assert_eq!(limits(service).await, (Some(1_500_000_000), Some(64 << 20)));
    job.finish().await.expect("finished");
    assert_eq!(labelled("limits").await, (0, 0));
}

/// The runner's container options (`--container-options`, `container.options`) apply to the
/// job container under its own `options:`; one that reaches outside the sandbox is refused
/// before anything is made, naming where it came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runners_container_options_apply_under_the_workflows() {
    use hearth_docker::ContainerSettings;
    let root = tempfile::tempdir().unwrap();
    let settings = ContainerSettings {
        options: "-e FROM_RUNNER=runner -e BOTH=runner --memory 80m".into(),
        memory: Some(96 << 20),
        ..ContainerSettings::default()
    };
    let backend = backend(root.path()).await.with_settings(settings.clone());
    clean(&backend, "runner-options").await;
    let mut job_spec = spec("runner-options");
    if let Some(container) = &mut job_spec.container {
        container.options = "-e BOTH=workflow".into();
    }
    let cancel = CancellationToken::new();
    let job = backend
        .start(job_spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let (end, out, err) = run(
        job.as_ref(),
        sh(job.as_ref(), "echo \"$FROM_RUNNER $BOTH\""),
        &cancel,
    )
    .await;
    assert_eq!(end, ExecEnd::Exited(0), "{err}");
    assert_eq!(out.trim(), "runner workflow");
    // The runner's `--memory` option is over its `container.memory`.
    let id = job.containers().container.expect("a container").id;
    let inspected = docker().await.inspect_container(&id, None).await.unwrap();
    assert_eq!(inspected.host_config.unwrap().memory, Some(80 << 20));
    job.finish().await.expect("finished");

    let refusing = backend.with_settings(ContainerSettings {
        options: "--cap-add SYS_ADMIN".into(),
        ..settings
    });
    let error = match refusing
        .start(spec("runner-options"), &mut NoSetupLog, &cancel)
        .await
    {
        Ok(_) => panic!("--cap-add was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("container.options"), "{error}");
    assert!(error.contains("`--cap-add`"), "{error}");
    assert_eq!(labelled("runner-options").await, (0, 0));
}

/// A job that binds the repository works in it at /__w/workspace: its files are there, what
/// it writes (in steps or through the runtime) lands there, `host_view` shows it, and after
/// `finish` the repository is still there, the job's own folder gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_repository_is_the_workspace_and_outlives_the_job() {
    let root = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("data.txt"), "from the repository\n").unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "bind").await;
    let mut spec = spec("bind");
    spec.repository = Some(hearth_backend::HostPath::new(repo.path()));
    spec.bind_repository = true;
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let workspace = job.paths().workspace.clone();
    assert_eq!(workspace.as_str(), "/__w/workspace");
    let (end, out, err) = run(
        job.as_ref(),
        sh(job.as_ref(), "cat data.txt && echo made > made.txt"),
        &cancel,
    )
    .await;
    assert_eq!(end, ExecEnd::Exited(0), "{err}");
    assert_eq!(out, "from the repository\n");
    let through_runtime = workspace.join("runtime.txt");
    job.write_file(&through_runtime, b"written", None)
        .await
        .expect("written");
    assert_eq!(
        job.read_file(&workspace.join("made.txt"), 100)
            .await
            .expect("read"),
        Some(b"made\n".to_vec())
    );
    assert_eq!(
        job.host_view(&workspace).map(|p| p.as_path().to_path_buf()),
        Some(repo.path().join(""))
    );
    job.finish().await.expect("finished");
    let read = |name: &str| std::fs::read_to_string(repo.path().join(name)).unwrap();
    assert_eq!(read("data.txt"), "from the repository\n");
    assert_eq!(read("made.txt"), "made\n");
    assert_eq!(read("runtime.txt"), "written");
    // Nothing of the job is left: no folder under the root but the tool cache.
    let left: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("tool-cache")]);
    assert_eq!(labelled("bind").await, (0, 0));
}

/// `container.force_pull` (`hearth exec --pull`) pulls an image that is there: an image only
/// tagged here, in the test registry's name, is pulled (and refused without credentials)
/// with it, and used as it is without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_pull_pulls_an_image_that_is_there() {
    use hearth_docker::ContainerSettings;
    const TAGGED: &str = "127.0.0.1:5999/hearth-force-pull/busybox";
    let docker = docker().await;
    docker
        .tag_image(
            IMAGE,
            Some(
                bollard::query_parameters::TagImageOptionsBuilder::default()
                    .repo(TAGGED)
                    .tag("1")
                    .build(),
            ),
        )
        .await
        .expect("tagged");
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path()).await;
    clean(&backend, "force-pull").await;
    let start = |backend: DockerBackend| async move {
        let mut spec = spec("force-pull");
        if let Some(container) = &mut spec.container {
            container.image = format!("{TAGGED}:1");
        }
        backend
            .start(spec, &mut NoSetupLog, &CancellationToken::new())
            .await
    };
    let job = start(backend.clone())
        .await
        .expect("started without a pull");
    job.finish().await.expect("finished");
    let forced = backend.with_settings(ContainerSettings {
        force_pull: true,
        ..ContainerSettings::default()
    });
    let error = match start(forced).await {
        Ok(_) => panic!("the image was not pulled"),
        Err(e) => e,
    };
    assert_eq!(error.kind(), hearth_backend::ErrorKind::RegistryDenied);
    assert!(error.to_string().contains(TAGGED), "{error}");
    let _ = docker
        .remove_image(
            &format!("{TAGGED}:1"),
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
    assert_eq!(labelled("force-pull").await, (0, 0));
}
