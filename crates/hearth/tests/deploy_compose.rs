//! The Compose deployment (`deploy/compose/docker-compose.yml`) started with Debian's
//! `docker-compose` against the fake forge: Hearth's image (`deploy/image/build`), a
//! Docker-in-Docker daemon reached over TCP with TLS (certificates made by the daemon at its
//! start and shared through a volume), and a job whose container image is private, on a
//! registry in the project that refuses anonymous pulls, pulled by the DinD daemon with the
//! credentials of a `.dockerconfigjson` mounted into the runner. Everything is removed after
//! (`docker-compose down -v`); the images are built offline and cached by tag
//! (`deploy/test/images`; Hearth's by the binary's SHA-256). Prints how long each phase took.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hearth_fake_forge::{FakeForge, Options, Status, TaskSpec};
use sha2::Digest as _;

const TOKEN: &str = "compose-registration-token";
const USER: &str = "hearth";
/// The test registry's password (test data, baked into hearth-test/registry:1).
const PASSWORD: &str = "hearth-registry-test";
/// The private image as the DinD daemon sees it: the registry service of the project.
const PRIVATE: &str = "registry:5000/private/busybox:1";
const HEARTH_IMAGE: &str = "hearth-test/hearth:compose";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `command`, panicking with its output when it fails; gives its stdout.
fn run(command: &mut Command) -> String {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{shown}: cannot start: {e}"));
    assert!(
        output.status.success(),
        "{shown}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|o| o.status.success())
}

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

/// Prints a phase's time since the previous one, and the total.
struct Clock {
    start: Instant,
    last: Instant,
}

impl Clock {
    fn lap(&mut self, phase: &str) {
        let now = Instant::now();
        eprintln!(
            "deploy_compose: {phase}: {:.1} s (total {:.1} s)",
            (now - self.last).as_secs_f64(),
            (now - self.start).as_secs_f64()
        );
        self.last = now;
    }
}

/// The Compose project; `docker-compose down -v` when dropped, whatever happened.
struct Project {
    name: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl Project {
    fn compose(&self) -> Command {
        let mut command = Command::new("docker-compose");
        command
            .arg("--project-name")
            .arg(&self.name)
            .arg("--project-directory")
            .arg(repo().join("deploy/compose"));
        for file in &self.files {
            command.arg("--file").arg(file);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn logs(&self) -> String {
        self.compose()
            .args(["logs", "--no-color", "--tail", "60"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let started = Instant::now();
        let down = self
            .compose()
            .args(["down", "--volumes", "--remove-orphans", "--timeout", "30"])
            .output();
        match down {
            Ok(o) if o.status.success() => eprintln!(
                "deploy_compose: down -v: {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            other => eprintln!("deploy_compose: docker-compose down failed: {other:?}"),
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The status code the registry answers an anonymous GET of `path` with (`None` while it does
/// not answer).
fn registry_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// Hearth's image with this test's binary, built again only when the binary changed (once
/// for the tests of this file, which run side by side).
fn hearth_image() {
    static BUILT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        build_hearth_image();
        *built = true;
    }
}

fn build_hearth_image() {
    // HEARTH_DEPLOY_TEST_BINARY: another build to package, such as deploy/image/build's
    // static release binary.
    let binary = std::env::var("HEARTH_DEPLOY_TEST_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_hearth").to_owned());
    let binary = binary.as_str();
    let sha = format!(
        "{:x}",
        sha2::Sha256::digest(std::fs::read(binary).expect("the hearth binary"))
    );
    let label = Command::new("docker")
        .args([
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"hearth.binary.sha256\"}}",
            HEARTH_IMAGE,
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if label != sha {
        let built = run(Command::new(repo().join("deploy/image/build"))
            .arg(HEARTH_IMAGE)
            .env("HEARTH_BINARY", binary));
        eprint!("{built}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_a_private_image_runs_on_the_compose_deployments_dind_daemon() {
    let start = Instant::now();
    let mut clock = Clock { start, last: start };

    // What the deployment needs: docker-compose, the test images, Hearth's image.
    if !succeeds(Command::new("docker-compose").arg("version")) {
        run(&mut sh(
            "apt-get install -y -qq docker-compose >/dev/null 2>&1 \
             || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }",
        ));
    }
    if !succeeds(Command::new("docker").args(["image", "inspect", "hearth-test/busybox:1"])) {
        run(&mut Command::new(repo().join("scripts/docker-test-env")));
    }
    run(&mut Command::new(repo().join("deploy/test/images")));
    clock.lap("docker-compose and the DinD and registry images");
    tokio::task::spawn_blocking(hearth_image)
        .await
        .expect("the image build");
    clock.lap("Hearth's image");

    let dir = tempfile::tempdir().expect("a temp dir");
    let token_file = dir.path().join("registration-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token written");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let docker_config = dir.path().join("dockerconfigjson");
    std::fs::write(
        &docker_config,
        format!(r#"{{"auths":{{"registry:5000":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("docker config written");
    let registry_port = free_port();

    let mut files = vec![
        repo().join("deploy/compose/docker-compose.yml"),
        repo().join("deploy/test/compose.test.yml"),
    ];
    // A sandbox whose Docker refuses --privileged gets the DinD daemon with capabilities.
    if !succeeds(Command::new("docker").args([
        "run",
        "--rm",
        "--privileged",
        "hearth-test/busybox:1",
        "true",
    ])) {
        eprintln!("deploy_compose: this Docker refuses --privileged; DinD runs with capabilities");
        files.push(repo().join("deploy/test/compose.unprivileged.yml"));
    }
    let mut project = Project {
        name: format!("hearthdeploy{}", std::process::id()),
        files,
        env: vec![
            ("HEARTH_IMAGE".into(), HEARTH_IMAGE.into()),
            ("DIND_IMAGE".into(), "hearth-test/dind:1".into()),
            (
                "REGISTRATION_TOKEN_FILE".into(),
                token_file.display().to_string(),
            ),
            (
                "DOCKER_CONFIG_JSON".into(),
                docker_config.display().to_string(),
            ),
            (
                "GITEA_RUNNER_LABELS".into(),
                format!("dind:docker://{PRIVATE}"),
            ),
            ("REGISTRY_PORT".into(), registry_port.to_string()),
        ],
    };

    // The daemon and the registry first: their network's gateway is where the forge listens.
    run(project.compose().args(["up", "-d", "docker", "registry"]));
    let network = format!("{}_default", project.name);
    let gateway: IpAddr = run(Command::new("docker").args([
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        &network,
    ]))
    .trim()
    .parse()
    .expect("the network's gateway");
    let forge = FakeForge::start(Options {
        host: Some(gateway),
        ..Options::gitea().with_registration_token(TOKEN)
    })
    .await
    .expect("the fake forge");
    project.env.push(("GITEA_INSTANCE_URL".into(), forge.url()));
    clock.lap("DinD and registry started");

    // The private image, pushed from this machine's daemon through the published port; the
    // registry refuses it to anyone without credentials.
    let deadline = Instant::now() + Duration::from_secs(30);
    while registry_status(registry_port, "/v2/") != Some(401) {
        assert!(
            Instant::now() < deadline,
            "the registry does not answer\n{}",
            project.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pushed = format!("127.0.0.1:{registry_port}/private/busybox:1");
    let login = tempfile::tempdir().expect("a temp dir");
    run(Command::new("docker").args(["tag", "hearth-test/busybox:1", &pushed]));
    run(sh(&format!(
        "echo {PASSWORD} | docker login -u {USER} --password-stdin 127.0.0.1:{registry_port} \
         >/dev/null && docker push {pushed} >/dev/null; status=$?; docker rmi {pushed} >/dev/null; \
         exit $status"
    ))
    .env("DOCKER_CONFIG", login.path()));
    assert_eq!(
        registry_status(registry_port, "/v2/private/busybox/manifests/1"),
        Some(401),
        "the registry must refuse an anonymous pull"
    );
    clock.lap("private image pushed");

    run(project.compose().args(["up", "-d", "runner"]));
    clock.lap("runner started");

    let payload = format!(
        r#"name: deploy
on: push
jobs:
  in-dind:
    runs-on: dind
    container:
      image: {PRIVATE}
    steps:
      - run: echo "job on $(cat /etc/hostname) says hello-from-dind"
"#
    );
    let job = forge.queue_task(TaskSpec::new(payload));
    let done = forge
        .wait_for_task_done(job, Duration::from_secs(240))
        .await;
    let lines = forge.log_lines(job);
    let task = done.unwrap_or_else(|e| panic!("{e}\n{lines:#?}\n{}", project.logs()));
    clock.lap("job ran");
    assert_eq!(
        task.status,
        Status::Success,
        "{lines:#?}\n{}",
        project.logs()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("job on ") && l.ends_with(" says hello-from-dind")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(PRIVATE) && l.contains("with credentials from the Docker config")),
        "{lines:#?}"
    );
    // Pulled by the DinD daemon, not by this machine's.
    let inside = run(project.compose().args([
        "exec",
        "-T",
        "docker",
        "docker",
        "-H",
        "unix:///var/run/docker.sock",
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]));
    assert!(inside.lines().any(|l| l == PRIVATE), "{inside}");
    assert!(!succeeds(
        Command::new("docker").args(["image", "inspect", PRIVATE])
    ));
    let runners = forge.runners();
    assert_eq!(runners.len(), 1, "{runners:?}");

    drop(project);
    clock.lap("everything removed");
    // Nothing of the project is left on this machine's daemon.
    let left = run(Command::new("docker").args([
        "ps",
        "-a",
        "--filter",
        &format!(
            "label=com.docker.compose.project=hearthdeploy{}",
            std::process::id()
        ),
        "-q",
    ]));
    assert!(left.trim().is_empty(), "containers left: {left}");
    let volumes = run(Command::new("docker").args([
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!(
            "label=com.docker.compose.project=hearthdeploy{}",
            std::process::id()
        ),
    ]));
    assert!(volumes.trim().is_empty(), "volumes left: {volumes}");
    let networks = run(Command::new("docker").args([
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("name={network}"),
    ]));
    assert!(networks.trim().is_empty(), "network left: {networks}");
}

/// The image's entrypoint on its own (the forge on this machine's loopback, reached through the
/// host's network): forgejo-runner's variable spellings, a token file, registration and one
/// job with `--once` on the host label, inside the runner's container, which does not see the
/// registration token; and with a token the forge refuses, `GITEA_MAX_REG_ATTEMPTS` attempts
/// and a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entrypoint_registers_from_forgejo_variables_then_runs_one_job_without_the_token() {
    if !succeeds(Command::new("docker").args(["image", "inspect", "hearth-test/busybox:1"])) {
        run(&mut Command::new(repo().join("scripts/docker-test-env")));
    }
    tokio::task::spawn_blocking(hearth_image)
        .await
        .expect("the image build");
    let forge = FakeForge::start(Options::forgejo().with_registration_token(TOKEN))
        .await
        .expect("the fake forge");
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("token written");
    let job = forge.queue_task(TaskSpec::new(
        r#"name: entry
on: push
jobs:
  env:
    runs-on: here
    steps:
      - run: |
          echo "state: $(ls -a /data | grep -c '^.runner$') runner file"
          env | grep -ci registration || echo "no registration variable"
"#
        .to_owned(),
    ));
    let container = |token_file: &str, extra: &[&str]| {
        let mut command = Command::new("docker");
        command
            .args(["run", "--rm", "--network", "host", "-v"])
            .arg(format!("{}:/secrets:ro", dir.path().display()))
            .args(["-e", &format!("FORGEJO_INSTANCE_URL={}", forge.url())])
            .args([
                "-e",
                &format!("FORGEJO_RUNNER_REGISTRATION_TOKEN_FILE=/secrets/{token_file}"),
            ])
            .args(["-e", "FORGEJO_RUNNER_NAME=entrypoint-test"])
            .args(["-e", "FORGEJO_RUNNER_LABELS=here:host"])
            .args(extra)
            .arg(HEARTH_IMAGE);
        command
    };
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let mut command = container("token", &["-e", "FORGEJO_RUNNER_ONCE=1"]);
        move || command.output()
    })
    .await
    .expect("docker run")
    .expect("docker run");
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("Runner registered successfully."), "{shown}");
    let task = forge
        .wait_for_task_done(job, Duration::from_secs(10))
        .await
        .expect("the job is done");
    let lines = forge.log_lines(job);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{shown}");
    for expected in ["state: 1 runner file", "no registration variable"] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}: {lines:#?}"
        );
    }
    let runners = forge.runners();
    assert_eq!(runners.len(), 1, "{runners:?}");
    assert_eq!(runners[0].name, "entrypoint-test");
    eprintln!(
        "deploy_compose: register and one job with --once: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    std::fs::write(dir.path().join("wrong"), "not-a-token\n").expect("token written");
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let mut command = container("wrong", &["-e", "GITEA_MAX_REG_ATTEMPTS=2"]);
        move || command.output()
    })
    .await
    .expect("docker run")
    .expect("docker run");
    let shown = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains("registration failed (attempt 1 of 2)")
            && shown.contains("registration failed 2 times; giving up"),
        "{shown}"
    );
    assert_eq!(forge.runners().len(), 1);
    eprintln!(
        "deploy_compose: two refused registrations: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
