//! Helpers shared by the tests that run the backend against a real engine (`docker.rs`,
//! `podman.rs`): the test image, steps as `sh -c`, collecting a step's output, the web service,
//! counting what carries a test's labels.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use hearth_backend::{
    CancellationToken, ContainerSpec, ExecEnd, ExecSpec, JobRuntime, JobSpec, Stream,
};

/// The image `scripts/docker-test-env` builds (and `scripts/podman-test-env` loads into podman).
pub const IMAGE: &str = "hearth-test/busybox:1";

/// A job in the test image owned by the runner `{runner}-{task}` (a runner per test: tests run
/// side by side, and one reaps its runner's leftovers), task `task`.
pub fn job_spec(runner: &str, task: &str) -> JobSpec {
    JobSpec {
        name: format!("{runner} test"),
        container: Some(ContainerSpec {
            image: IMAGE.into(),
            env: vec![("FROM_SPEC".into(), "spec-value".into())],
            ..Default::default()
        }),
        owner: vec![
            ("hearth.runner".into(), format!("{runner}-{task}")),
            ("hearth.task".into(), task.into()),
        ],
        ..Default::default()
    }
}

/// `script` as a step through `sh -c`, in the workspace, with `FROM_STEP` set.
pub fn sh(job: &dyn JobRuntime, script: &str) -> ExecSpec {
    let mut env = job.base_env().to_vec();
    env.push(("FROM_STEP".into(), "step-value".into()));
    ExecSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env,
        working_dir: job.paths().workspace.clone(),
        timeout: None,
    }
}

/// Runs `spec`; its end and what it printed on stdout and stderr.
pub async fn run(
    job: &dyn JobRuntime,
    spec: ExecSpec,
    cancel: &CancellationToken,
) -> (ExecEnd, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut sink = |stream: Stream, chunk: &[u8]| match stream {
        Stream::Stdout => out.extend_from_slice(chunk),
        Stream::Stderr => err.extend_from_slice(chunk),
    };
    let end = job.exec(spec, &mut sink, cancel).await.expect("exec");
    (
        end,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// A busybox web server as a service: serves `hello from web` on 8080 once its health check
/// (a request to itself) passes.
pub fn web_service() -> ContainerSpec {
    ContainerSpec {
        image: IMAGE.into(),
        entrypoint: Some("sh".into()),
        command: Some(
            "-c mkdir${IFS}-p${IFS}/www&&echo${IFS}hello${IFS}from${IFS}web>/www/index.html&&httpd${IFS}-f${IFS}-p${IFS}8080${IFS}-h${IFS}/www"
                .into(),
        ),
        ports: vec!["8080".into()],
        options: "--health-cmd 'wget -q -O /dev/null http://127.0.0.1:8080/' \
                  --health-interval 200ms --health-retries 50"
            .into(),
        ..Default::default()
    }
}

/// How many containers and networks of `docker` carry the labels of [`job_spec`]`(runner,
/// task)`.
pub async fn labelled_in(docker: &bollard::Docker, runner: &str, task: &str) -> (usize, usize) {
    let (containers, networks, _) = labelled_with_volumes(docker, runner, task).await;
    (containers, networks)
}

/// [`labelled_in`], and the volumes (copy mode's job folders).
pub async fn labelled_with_volumes(
    docker: &bollard::Docker,
    runner: &str,
    task: &str,
) -> (usize, usize, usize) {
    let filters: HashMap<String, Vec<String>> = HashMap::from([(
        "label".to_owned(),
        vec![
            format!("hearth.task={task}"),
            format!("hearth.runner={runner}-{task}"),
        ],
    )]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("containers");
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("networks");
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("volumes");
    (
        containers.len(),
        networks.len(),
        volumes.volumes.unwrap_or_default().len(),
    )
}

/// A stand-in for a forge on this machine's loopback: answers every request with "the forge
/// answers"; its URL.
pub async fn loopback_forge() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let forge = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let port = forge.local_addr().expect("its address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = forge.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let body = "the forge answers";
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// The forge at `url`, as the daemon gives it to a job: required.
pub fn forge(url: &str) -> hearth_backend::Reach {
    hearth_backend::Reach::required(
        url,
        "the forge",
        "set container.network to a network the forge is on, or register the runner with an \
         address of the forge that containers can reach",
    )
}

/// The cache at `url`, as the runner gives it to a job: optional.
pub fn cache(url: &str) -> hearth_backend::Reach {
    hearth_backend::Reach::optional(url, "the cache", "set cache.host to where the job reaches")
}

/// A loopback address where nothing listens (a port just taken and given back).
pub async fn dead_loopback() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The set-up log's lines with their levels.
#[derive(Default)]
pub struct LeveledLines(pub Vec<(hearth_backend::SetupLevel, String)>);

impl hearth_backend::SetupLog for LeveledLines {
    fn line(&mut self, level: hearth_backend::SetupLevel, text: &str) {
        self.0.push((level, text.to_owned()));
    }
}

impl LeveledLines {
    /// The warnings among them.
    pub fn warnings(&self) -> Vec<&String> {
        self.0
            .iter()
            .filter(|(level, _)| *level == hearth_backend::SetupLevel::Warning)
            .map(|(_, line)| line)
            .collect()
    }
}

/// A client of the second daemon over TCP with TLS, once it answers.
pub async fn connect_tls(dockerd: &hearth_test_dockerd::TlsDockerd) -> bollard::Docker {
    let settings = hearth_docker::connect::DockerSettings {
        host: Some(dockerd.address.clone()),
        tls_verify: true,
        cert_path: Some(dockerd.client_certs.clone()),
    };
    // The daemon is still starting: waited for, as a sidecar would be.
    settings
        .connect(Duration::from_secs(60), |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dockerd.log()))
}

/// A step that runs past its timeout and one that is cancelled both stop within 3 s, with
/// the processes they started in the background.
pub async fn timed_out_and_cancelled_steps_stop(job: &dyn JobRuntime) {
    let cancel = CancellationToken::new();
    let mut timed = sh(job, "sleep 300 & sleep 300");
    timed.timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    let (end, _, _) = run(job, timed, &cancel).await;
    assert_eq!(end, ExecEnd::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let step_cancel = CancellationToken::new();
    let trigger = step_cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let (end, _, _) = run(job, sh(job, "sleep 300"), &step_cancel).await;
    assert_eq!(end, ExecEnd::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // No sleeper is left running (a killed one may stay a zombie: the keep-alive at pid 1
    // does not reap).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, out, _) = run(job, sh(job, "ps -o stat,comm"), &cancel).await;
    let running: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("sleep") && !l.trim_start().starts_with('Z'))
        .collect();
    assert!(running.is_empty(), "{out}");
}
