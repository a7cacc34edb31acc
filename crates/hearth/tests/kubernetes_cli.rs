//! The `kubernetes://` label and the `kubernetes:` section as users meet them through the
//! binary: `generate-config` showing the keys, a bad key stopping the runner at its
//! `file:line:col`, and `exec` and `daemon` saying clearly when the cluster named cannot be
//! used (the jobs themselves in a cluster are the backend's tests).

#[allow(dead_code)] // not every helper of the daemon's harness is used here
#[path = "daemon/harness.rs"]
mod harness;

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use harness::{Harness, FAST};
use hearth_fake_forge::{Options, Status, TaskSpec};

const IMAGE: &str = "hearth-test/busybox:1";

fn hearth(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("hearth").expect("hearth binary is built");
    command
        .current_dir(dir)
        .env_remove("CONFIG_FILE")
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A folder with `ci.yml`, one job on `runs-on: ubuntu-latest`.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        dir.path().join("ci.yml"),
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n",
    )
    .expect("workflow written");
    dir
}

/// `hearth [-c config] exec -W ci.yml -C dir -P ubuntu-latest=kubernetes://IMAGE args...`.
fn exec(dir: &Path, config: Option<&Path>, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = hearth(dir);
    if let Some(config) = config {
        command.arg("-c").arg(config);
    }
    command
        .args(["exec", "--no-cache-server", "-W", "ci.yml", "-C", "."])
        .args(["-P", &format!("ubuntu-latest=kubernetes://{IMAGE}")])
        .args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("hearth exec runs")
}

/// A kubeconfig that reads well and names a server nothing answers at: the backend is made
/// from it without asking the server anything.
fn kubeconfig(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: \
         https://127.0.0.1:1\ncontexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n    \
         namespace: from-context\ncurrent-context: ctx\nusers:\n- name: u\n  user:\n    token: \
         not-a-token\n",
    )
    .expect("kubeconfig written");
    path
}

#[test]
fn generate_config_shows_the_kubernetes_label_and_keys() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let output = hearth(dir.path())
        .arg("generate-config")
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let config = text(&output.stdout);
    for line in [
        "NAME:kubernetes://IMAGE",
        "\nkubernetes:\n",
        "\n  namespace: \"\"\n",
        "\n  kubeconfig: \"\"\n",
        "\n  context: \"\"\n",
        "\n  service_account: hearth-job\n",
        "\n  image_pull_secrets: []\n",
        "\n  pull_policy: IfNotPresent\n",
        "\n  resources:\n    requests: {}\n    limits: {}\n",
        "\n  node_selector: {}\n",
        "\n  tolerations: []\n",
        "\n  pod_template:\n",
        "\n  runner_secret: \"\"\n",
    ] {
        assert!(config.contains(line), "{line:?} missing from:\n{config}");
    }
    // What it prints loads as it is, the kubernetes section too.
    std::fs::write(dir.path().join("config.yaml"), &config).expect("written");
    let checked = hearth(dir.path())
        .args(["-c", "config.yaml", "exec", "-n", "-W", "none.yml"])
        .output()
        .expect("runs");
    let stderr = text(&checked.stderr);
    assert!(!stderr.contains("config.yaml:"), "{stderr}");
}

#[test]
fn a_bad_pull_policy_stops_daemon_and_exec_at_its_position() {
    let dir = repository();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "runner:\n  capacity: 1\nkubernetes:\n  namespace: ci\n  pull_policy: Sometimes\n",
    )
    .expect("config written");
    let expected = format!(
        "{}:5:16: kubernetes.pull_policy must be IfNotPresent, Always or Never, found \
         \"Sometimes\"",
        config.display()
    );
    let daemon = hearth(dir.path())
        .arg("-c")
        .arg(&config)
        .arg("daemon")
        .output()
        .expect("hearth daemon runs");
    assert!(!daemon.status.success(), "{daemon:?}");
    assert!(text(&daemon.stderr).contains(&expected), "{daemon:?}");
    let exec = exec(dir.path(), Some(&config), &[], &["-n"]);
    assert!(!exec.status.success(), "{exec:?}");
    assert!(text(&exec.stderr).contains(&expected), "{exec:?}");
}

/// A kubeconfig that is not there: said once at the start, naming the key to change, and the
/// job that needed the cluster fails saying so; nothing else is tried.
#[test]
fn exec_without_a_usable_kubeconfig_says_so_and_the_job_fails() {
    let dir = repository();
    let absent = dir.path().join("absent.kubeconfig");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "kubernetes:\n  kubeconfig: {}\n  namespace: ci\n",
            absent.display()
        ),
    )
    .expect("config written");
    let output = exec(dir.path(), Some(&config), &[], &[]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        stderr.contains(&format!(
            "hearth: jobs with a kubernetes label will not run: cannot use Kubernetes through \
             kubernetes.kubeconfig {}, its current context, namespace ci: cannot read the \
             kubeconfig {}",
            absent.display(),
            absent.display()
        )),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "label `ubuntu-latest` runs jobs in Kubernetes (image {IMAGE}), but this runner has \
             no Kubernetes backend"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("\nhi\n"), "the job ran: {stdout}");

    // Without a config file, the defaults: KUBECONFIG names the file.
    let absent = absent.display().to_string();
    let output = exec(dir.path(), None, &[("KUBECONFIG", &absent)], &[]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "hearth: jobs with a kubernetes label will not run: cannot use Kubernetes through \
             KUBECONFIG {absent} (kubernetes.kubeconfig is not set)"
        )),
        "{stderr}"
    );
}

/// With a kubeconfig that reads well, the label's jobs go to the Kubernetes backend: a dry
/// run routes them there and runs nothing, with no word about the cluster.
#[test]
fn exec_with_a_kubeconfig_routes_the_label_to_kubernetes() {
    let dir = repository();
    let kubeconfig = kubeconfig(dir.path());
    let kubeconfig = kubeconfig.display().to_string();
    for (config, env) in [
        (None, vec![("KUBECONFIG", kubeconfig.as_str())]),
        (Some(dir.path().join("config.yaml")), vec![]),
    ] {
        if let Some(config) = &config {
            std::fs::write(config, format!("kubernetes:\n  kubeconfig: {kubeconfig}\n"))
                .expect("config written");
        }
        let output = exec(dir.path(), config.as_deref(), &env, &["-n"]);
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(!stderr.contains("kubernetes"), "{stderr}");
        assert!(!stdout.contains("no Kubernetes backend"), "{stdout}");
        assert!(stdout.contains("dry run"), "{stdout}");
    }
}

/// The daemon with a kubernetes label and a kubeconfig that is not there: it starts (its
/// other labels could run), says why at start, and fails the job with what to change.
#[tokio::test]
async fn daemon_without_a_usable_kubeconfig_fails_the_job_saying_why() {
    let h = Harness::start(Options::gitea()).await;
    let absent = h.path("absent.kubeconfig");
    h.config(&format!(
        "{FAST}kubernetes:\n  kubeconfig: {}\n  namespace: ci\n",
        absent.display()
    ));
    let label = format!("k8s:kubernetes://{IMAGE}");
    let output = h
        .register(&["--labels", &format!("linux:host,{label}")])
        .await;
    assert!(output.status.success(), "{output:?}");
    let runners = h.forge.runners();
    assert_eq!(runners[0].labels, ["linux", "k8s"]);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.path(".runner")).expect(".runner"))
            .expect("JSON");
    assert_eq!(file["labels"], serde_json::json!(["linux:host", label]));

    let payload =
        "name: ci\non: push\njobs:\n  build:\n    runs-on: k8s\n    steps:\n      - run: \
                   echo hi\n";
    let (id, task, log) = h.run(TaskSpec::new(payload.to_owned())).await;
    assert_eq!(task.status, Status::Failure);
    let lines = h.forge.log_lines(id);
    assert!(
        lines.iter().any(|line| line.contains(&format!(
            "label `k8s` runs jobs in Kubernetes (image {IMAGE}), but this runner has no \
             Kubernetes backend"
        )) && line.contains("kubernetes.kubeconfig")),
        "{lines:#?}"
    );
    assert!(
        log.contains(&format!(
            "jobs with a kubernetes label will fail: cannot use Kubernetes through \
             kubernetes.kubeconfig {}, its current context, namespace ci: cannot read the \
             kubeconfig",
            absent.display()
        )),
        "{log}"
    );
}

/// `kubernetes.runner_secret` with a cluster that cannot be used: `register` stops before it
/// registers (a runner the forge lists that nothing can run as would be worse), and `daemon`
/// stops naming the Secret, rather than running as some other registration.
#[tokio::test]
async fn runner_secret_without_a_usable_cluster_stops_register_and_daemon() {
    let h = Harness::start(Options::gitea()).await;
    let absent = h.path("absent.kubeconfig");
    h.config(&format!(
        "{FAST}kubernetes:\n  kubeconfig: {}\n  runner_secret: hearth-runner\n",
        absent.display()
    ));
    let output = h.register(&["--labels", "linux:host"]).await;
    assert!(!output.status.success(), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach the Secret hearth-runner (kubernetes.runner_secret) that keeps the \
             registration, through kubernetes.kubeconfig {}",
            absent.display()
        )),
        "{stderr}"
    );
    assert!(h.forge.runners().is_empty(), "registered all the same");
    assert!(!h.path(".runner").exists());

    // A .runner file is not used instead of the Secret that cannot be read.
    h.config(FAST);
    h.registered().await;
    h.config(&format!(
        "{FAST}kubernetes:\n  kubeconfig: {}\n  runner_secret: hearth-runner\n",
        absent.display()
    ));
    let (code, log) = h.daemon(&[]).exit(std::time::Duration::from_secs(30)).await;
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("cannot reach the Secret hearth-runner (kubernetes.runner_secret)"),
        "{log}"
    );
}

/// A kubeconfig that reads well but names an API server that does not answer: the daemon
/// says so at its start (its sweep of what earlier runs left is the first request), and the
/// jobs of its other labels run.
#[tokio::test]
async fn daemon_says_at_start_that_the_cluster_does_not_answer() {
    let h = Harness::start(Options::gitea()).await;
    let nowhere = kubeconfig(&h.path(""));
    h.config(&format!(
        "{FAST}kubernetes:\n  kubeconfig: {}\n",
        nowhere.display()
    ));
    let label = format!("k8s:kubernetes://{IMAGE}");
    let output = h
        .register(&["--labels", &format!("linux:host,{label}")])
        .await;
    assert!(output.status.success(), "{output:?}");
    let payload =
        "name: ci\non: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: \
                   echo hi\n";
    let (_, task, log) = h.run(TaskSpec::new(payload.to_owned())).await;
    assert_eq!(task.status, Status::Success, "{log}");
    assert!(
        log.contains(
            "cannot remove what earlier runs left behind: cannot sweep the Pods of jobs that \
             ended in namespace from-context: the API server does not answer"
        ) && log.contains("Connection refused"),
        "{log}"
    );
}
