//! A fake forge, a runner folder and the real `hearth` binary, for the daemon's tests.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use hearth_fake_forge::{FakeForge, JobId, Options, TaskSpec, TaskView};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

pub const TOKEN: &str = "registration-token-0123456789";

/// Settings that make tests quick: short waits everywhere, jobs' folders inside the test's
/// folder.
pub const FAST: &str = "\
runner:
  fetch_interval: 100ms
  fetch_interval_max: 200ms
  report_interval: 200ms
  shutdown_timeout: 1s
";

pub struct Harness {
    pub forge: FakeForge,
    pub dir: tempfile::TempDir,
    /// Variables every `hearth` this harness starts gets (set with [`Harness::env`]).
    env: std::sync::Mutex<Vec<(String, String)>>,
}

impl Harness {
    pub async fn start(options: Options) -> Harness {
        let forge = FakeForge::start(options.with_registration_token(TOKEN))
            .await
            .expect("the fake forge starts");
        let dir = tempfile::tempdir().expect("a temp dir");
        Harness {
            forge,
            dir,
            env: Default::default(),
        }
    }

    /// A forge with this runner registered (label `linux:host`) under `config`.
    pub async fn ready(options: Options, config: &str) -> Harness {
        let harness = Harness::start(options).await;
        harness.config(config);
        harness.registered().await;
        harness
    }

    /// Queues `spec`, runs the daemon until the job is done, stops it; returns the job, its
    /// task as the forge has it, and what the daemon logged.
    pub async fn run(&self, spec: TaskSpec) -> (JobId, TaskView, String) {
        let id = self.forge.queue_task(spec);
        let daemon = self.daemon(&[]);
        let task = self.done(id, Duration::from_secs(60)).await;
        let log = daemon.stop().await;
        (id, task, log)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `config.yaml`: `yaml`, plus the jobs' folder under the test's folder.
    pub fn config(&self, yaml: &str) {
        let work = self.path("work");
        let mut text = format!("{yaml}host:\n  workdir_parent: {}\n", work.display());
        // Each test's daemon a cache folder of its own, gone with the test.
        if !yaml.starts_with("cache:") && !yaml.contains("\ncache:") {
            let cache = self.path("cache");
            text.push_str(&format!("cache:\n  dir: {}\n", cache.display()));
        }
        std::fs::write(self.path("config.yaml"), text).expect("config written");
    }

    /// Gives `name=value` to every `hearth` started from now on.
    pub fn env(&self, name: &str, value: &str) {
        let mut env = self.env.lock().expect("the harness's variables");
        env.push((name.to_owned(), value.to_owned()));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
        command
            .current_dir(self.dir.path())
            .arg("-c")
            .arg(self.path("config.yaml"))
            .args(args)
            .env_remove("GITEA_INSTANCE_URL")
            .env_remove("GITEA_RUNNER_REGISTRATION_TOKEN")
            .env_remove("GITEA_RUNNER_LABELS")
            // The fake forge is on loopback: a proxy of the caller's must not be in the way.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("HEARTH_LOG", "info")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in self.env.lock().expect("the harness's variables").iter() {
            command.env(name, value);
        }
        command
    }

    /// `hearth register --no-interactive ...` with `extra` flags (the right token unless they
    /// give one).
    pub async fn register(&self, extra: &[&str]) -> Output {
        let url = self.forge.url();
        let mut args = vec![
            "register",
            "--no-interactive",
            "--instance",
            &url,
            "--name",
            "test-runner",
        ];
        if !extra.contains(&"--token") {
            args.extend(["--token", TOKEN]);
        }
        args.extend_from_slice(extra);
        self.command(&args)
            .output()
            .await
            .expect("hearth register runs")
    }

    /// Registers with the `linux:host` label, or fails the test.
    pub async fn registered(&self) {
        let output = self.register(&["--labels", "linux:host"]).await;
        assert!(
            output.status.success(),
            "register failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The registered runner's uuid (`.runner`): the owner label of its jobs' resources.
    pub fn runner_uuid(&self) -> String {
        let text = std::fs::read_to_string(self.path(".runner")).expect("registered");
        let json: serde_json::Value = serde_json::from_str(&text).expect(".runner is JSON");
        json["uuid"].as_str().expect("a uuid").to_owned()
    }

    /// Starts `hearth daemon` with `args`.
    pub fn daemon(&self, args: &[&str]) -> Daemon {
        let mut all = vec!["daemon"];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hearth daemon starts");
        Daemon { child }
    }

    pub async fn done(&self, job: JobId, timeout: Duration) -> TaskView {
        match self.forge.wait_for_task_done(job, timeout).await {
            Ok(task) => task,
            Err(e) => panic!(
                "job {job:?} not done: {e:?}; log: {:#?}",
                self.forge.log_lines(job)
            ),
        }
    }

    /// Waits until the job's log has a row containing `text`.
    pub async fn row_appears(&self, job: JobId, text: &str, timeout: Duration) {
        let found = self
            .forge
            .wait_until(timeout, || {
                self.forge
                    .log_lines(job)
                    .iter()
                    .any(|line| line.contains(text))
                    .then_some(())
            })
            .await;
        if found.is_err() {
            panic!("no row with {text:?}: {:#?}", self.forge.log_lines(job));
        }
    }

    /// The job's rows that start with `prefix`, in order.
    pub fn rows_starting(&self, job: JobId, prefix: &str) -> Vec<String> {
        self.forge
            .log_lines(job)
            .into_iter()
            .filter(|line| line.starts_with(prefix))
            .collect()
    }

    /// The job's rows from step `index`.
    pub fn step_rows(&self, job: JobId, index: usize) -> Vec<String> {
        let task = self.forge.task(job).expect("a task");
        let step = &task.steps[index];
        let lines = self.forge.log_lines(job);
        let start = step.log_index as usize;
        let end = start + step.log_length as usize;
        assert!(end <= lines.len(), "step {index}'s range is past the log");
        lines[start..end].to_vec()
    }
}

pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("the daemon runs") as i32;
        // SAFETY: kill(2) on a child this test started.
        unsafe { libc::kill(pid, signal) };
    }

    /// Waits for the daemon to exit; returns its exit code and what it logged.
    pub async fn exit(mut self, timeout: Duration) -> (Option<i32>, String) {
        let status = tokio::time::timeout(timeout, self.child.wait()).await;
        let mut stderr = String::new();
        let status = match status {
            Ok(status) => status.expect("the daemon is waited for"),
            Err(_) => {
                let _ = self.child.kill().await;
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr).await;
                }
                panic!("the daemon did not exit within {timeout:?}; it logged:\n{stderr}");
            }
        };
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        (status.code(), stderr)
    }

    /// Stops the daemon (SIGTERM twice) and returns what it logged.
    pub async fn stop(self) -> String {
        self.signal(libc::SIGTERM);
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.signal(libc::SIGTERM);
        self.exit(Duration::from_secs(20)).await.1
    }
}

/// Rows that are not blank, as the forge holds them.
pub fn nonblank(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// What the runner `uuid` left in the Docker that `docker()` talks to: containers (running or
/// not), networks and volumes, as `kind id`.
pub fn docker_leftovers_in(docker: &dyn Fn() -> std::process::Command, uuid: &str) -> Vec<String> {
    let owner = format!("label=hearth.runner={uuid}");
    let mut left = Vec::new();
    for kind in ["container", "network", "volume"] {
        let mut command = docker();
        command.args([kind, "ls", "-q", "--filter", &owner]);
        if kind == "container" {
            command.arg("-a");
        }
        let output = command.output().expect("docker ls");
        assert!(
            output.status.success(),
            "docker {kind} ls failed: {output:?}"
        );
        left.extend(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(|id| format!("{kind} {id}")),
        );
    }
    left
}

/// [`docker_leftovers_in`] the machine's own Docker.
pub fn docker_leftovers(uuid: &str) -> Vec<String> {
    docker_leftovers_in(&|| std::process::Command::new("docker"), uuid)
}
