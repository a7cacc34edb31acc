//! The daemon with the Kubernetes backend, against the real test cluster (`scripts/k8s-test-env`:
//! Kubernetes 1.20 on this machine) and the fake forge: every job a Pod. The forge listens on
//! the Pod network's gateway (10.88.0.1), the one address of this machine Pods reach. Each test
//! works in a namespace of its own.

#[allow(dead_code)] // not every helper of the daemon's harness is used here
#[path = "daemon/harness.rs"]
mod harness;

#[path = "common/kubernetes.rs"]
mod kubernetes;

use kubernetes::kubeconfig;

use std::time::{Duration, Instant};

use harness::{Harness, FAST};
use hearth_fake_forge::{Options, Status, TaskSpec};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, PostParams};
use kube::Api;
use serde_json::json;

const LONG: Duration = Duration::from_secs(120);
const BUSYBOX: &str = "hearth-test/busybox:1";
const PRIVATE: &str = "127.0.0.1:5999/private/busybox:1";
/// The test registry's account (test data of scripts/docker-test-env, not a secret).
const REGISTRY_AUTH: (&str, &str) = ("hearth", "hearth-registry-test");
/// The Pod network's gateway: this machine as the test cluster's Pods reach it.
const POD_GATEWAY: &str = "10.88.0.1";

/// A namespace of the test's own, and a client to look into it.
struct Cluster {
    client: kube::Client,
    namespace: String,
}

impl Cluster {
    async fn new(test: &str) -> Cluster {
        let client = kubernetes::client().await;
        let namespace = format!("hearth-d-{test}-{}", std::process::id());
        kubernetes::create_namespace(&client, &namespace).await;
        Cluster { client, namespace }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Pods and Secrets the runner made that are still there.
    async fn leftovers(&self) -> Vec<String> {
        let params = ListParams::default().labels("hearth.backend=kubernetes");
        let mut left = Vec::new();
        for pod in self.pods().list_metadata(&params).await.unwrap() {
            left.push(format!("pod {}", pod.metadata.name.unwrap_or_default()));
        }
        for secret in self.secrets().list_metadata(&params).await.unwrap() {
            left.push(format!(
                "secret {}",
                secret.metadata.name.unwrap_or_default()
            ));
        }
        left
    }

    /// Waits until nothing of the runner's is left, for at most `bound`; what is left then.
    async fn clean_within(&self, bound: Duration) -> Vec<String> {
        let deadline = Instant::now() + bound;
        loop {
            let left = self.leftovers().await;
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A runner's config: the fast settings, this namespace, `extra` kubernetes keys.
    fn config(&self, extra: &str) -> String {
        format!(
            "{FAST}kubernetes:\n  kubeconfig: {}\n  namespace: {}\n{extra}",
            kubeconfig(),
            self.namespace
        )
    }

    async fn registry_secret(&self) {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", REGISTRY_AUTH.0, REGISTRY_AUTH.1));
        let config = json!({"auths": {"127.0.0.1:5999": {"auth": auth}}}).to_string();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": config},
        }))
        .unwrap();
        self.secrets()
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        kubernetes::delete_namespace(&self.client, &self.namespace);
    }
}

/// A forge on the Pod network's gateway and a runner registered with `label` under `config`.
async fn runner(config: &str, label: &str) -> Harness {
    let mut options = Options::gitea();
    options.host = Some(POD_GATEWAY.parse().unwrap());
    let h = Harness::start(options).await;
    h.config(config);
    let output = h.register(&["--labels", label]).await;
    assert!(
        output.status.success(),
        "register failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    h
}

fn label(image: &str) -> String {
    format!("ubuntu-latest:kubernetes://{image}")
}

fn job(head: &str, steps: &str) -> String {
    format!(
        "name: ci\non: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n{head}    steps:\n{steps}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_as_a_pod_with_env_files_outputs_and_masking() {
    let cluster = Cluster::new("steps").await;
    let h = runner(&cluster.config(""), &label(BUSYBOX)).await;
    let payload = job(
        "    outputs:\n      greeting: ${{ steps.out.outputs.greeting }}\n",
        r#"      - name: greet
        run: |
          echo "the secret is ${{ secrets.MY_SECRET }}"
          echo "GREETING=hi there" >> "$GITHUB_ENV"
      - id: out
        run: |
          echo "greeting=$GREETING" >> "$GITHUB_OUTPUT"
          ls /var/run/secrets/kubernetes.io/serviceaccount 2>/dev/null || echo "no api token"
          grep CapEff /proc/self/status
          echo "workspace=$GITHUB_WORKSPACE"
"#,
    );
    let (id, task, log) = h
        .run(TaskSpec::new(payload).with_secret("MY_SECRET", "hunter2-very-secret"))
        .await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{log}\n{lines:#?}");
    assert_eq!(
        task.output_map().get("greeting").map(String::as_str),
        Some("hi there")
    );
    assert!(lines.iter().all(|l| !l.contains("hunter2")), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "the secret is ***"), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "no api token"), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l == "workspace=/__w/workspace"),
        "{lines:#?}"
    );
    let caps = lines
        .iter()
        .find(|l| l.starts_with("CapEff"))
        .expect("CapEff");
    assert!(
        !caps.ends_with("ffffffffff"),
        "the job runs privileged: {caps}"
    );
    assert!(
        lines.iter().any(|l| l.contains("Creating Pod hearth-")),
        "{lines:#?}"
    );
    assert_eq!(
        cluster.clean_within(Duration::from_secs(5)).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_reached_by_name_and_a_failing_step_fails_the_job() {
    let cluster = Cluster::new("service").await;
    let h = runner(&cluster.config(""), &label(BUSYBOX)).await;
    let payload = job(
        r#"    services:
      web:
        image: hearth-test/busybox:1
        entrypoint: httpd
        command: -f -p 8080 -h /
        ports:
          - 8080
        options: --health-cmd 'wget -qO- http://127.0.0.1:8080/etc/hostname' --health-interval 1s
"#,
        r#"      - run: |
          wget -qO- http://web:8080/etc/hostname >/dev/null && echo "reached web"
          echo "port ${{ job.services.web.ports['8080'] }}"
      - run: |
          echo failing now
          exit 4
      - run: echo never
"#,
    );
    let (id, task, log) = h.run(TaskSpec::new(payload)).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Failure, "{log}\n{lines:#?}");
    let results: Vec<Status> = task.steps.iter().map(|s| s.status).collect();
    assert_eq!(results, [Status::Success, Status::Failure, Status::Skipped]);
    assert!(lines.iter().any(|l| l == "reached web"), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "port 8080"), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "failing now"), "{lines:#?}");
    assert!(!lines.iter().any(|l| l == "never"));
    assert_eq!(
        cluster.clean_within(Duration::from_secs(5)).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_and_a_cancel_delete_the_pod_at_once() {
    let cluster = Cluster::new("stop").await;
    let h = runner(&cluster.config(""), &label(BUSYBOX)).await;
    let daemon = h.daemon(&[]);

    // timeout-minutes: 0.1 is 6 s.
    let timed = h.forge.queue_task(TaskSpec::new(job(
        "    timeout-minutes: 0.1\n",
        "      - run: echo started; sleep 300\n",
    )));
    let task = h.done(timed, LONG).await;
    assert_eq!(task.status, Status::Failure);
    assert_eq!(
        cluster.clean_within(Duration::from_secs(2)).await,
        Vec::<String>::new()
    );

    let cancelled = h.forge.queue_task(TaskSpec::new(job(
        "",
        "      - run: echo started; sleep 300\n",
    )));
    h.row_appears(cancelled, "started", LONG).await;
    assert_eq!(cluster.leftovers().await.len(), 1);
    let at = Instant::now();
    assert!(h.forge.cancel_task(cancelled));
    let left = cluster.clean_within(Duration::from_secs(2)).await;
    assert_eq!(
        left,
        Vec::<String>::new(),
        "Pod left {:?} after the cancel",
        at.elapsed()
    );
    let task = h.done(cancelled, LONG).await;
    assert_eq!(task.status, Status::Cancelled);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_images_pull_with_image_pull_secrets_and_job_credentials() {
    let cluster = Cluster::new("registry").await;
    cluster.registry_secret().await;
    // Always pull: an image the node already has would prove nothing.
    let config = cluster.config("  pull_policy: Always\n  image_pull_secrets: [regcred]\n");
    let h = runner(&config, &label(PRIVATE)).await;
    let (id, task, log) = h
        .run(TaskSpec::new(job(
            "",
            "      - run: echo pulled with the cluster secret\n",
        )))
        .await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{log}\n{lines:#?}");

    // The job's own credentials: a Secret made for the Pod, there while it runs, gone after.
    let config = cluster.config("  pull_policy: Always\n");
    let h = runner(&config, &label(BUSYBOX)).await;
    let payload = job(
        &format!(
            "    container:\n      image: {PRIVATE}\n      credentials:\n        username: {}\n        password: ${{{{ secrets.REGISTRY_PASSWORD }}}}\n",
            REGISTRY_AUTH.0
        ),
        "      - run: echo started; sleep 3; echo done\n",
    );
    let id = h
        .forge
        .queue_task(TaskSpec::new(payload).with_secret("REGISTRY_PASSWORD", REGISTRY_AUTH.1));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "started", LONG).await;
    let during = cluster.leftovers().await;
    assert!(
        during
            .iter()
            .any(|l| l.starts_with("secret ") && l.ends_with("-registry")),
        "{during:?}"
    );
    let task = h.done(id, LONG).await;
    daemon.stop().await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}");
    assert!(
        lines.iter().all(|l| !l.contains(REGISTRY_AUTH.1)),
        "{lines:#?}"
    );
    assert_eq!(
        cluster.clean_within(Duration::from_secs(5)).await,
        Vec::<String>::new()
    );

    // Without any credentials the pull is refused and the job says which image and why.
    let (id, task, _) = h
        .run(TaskSpec::new(job(
            &format!("    container:\n      image: {PRIVATE}\n"),
            "      - run: echo never\n",
        )))
        .await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Failure);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cannot pull") && l.contains(PRIVATE)),
        "{lines:#?}"
    );
    assert_eq!(
        cluster.clean_within(Duration::from_secs(5)).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runner_leaves_nothing_once_restarted() {
    let cluster = Cluster::new("kill").await;
    let h = runner(&cluster.config(""), &label(BUSYBOX)).await;
    let id = h.forge.queue_task(TaskSpec::new(job(
        r#"    container:
      image: hearth-test/busybox:1
      credentials:
        username: someone
        password: not-needed
"#,
        "      - run: echo started; sleep 300\n",
    )));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "started", LONG).await;
    assert_eq!(cluster.leftovers().await.len(), 2, "the Pod and its Secret");
    daemon.signal(libc::SIGKILL);
    let _ = daemon.exit(Duration::from_secs(10)).await;
    assert_eq!(
        cluster.leftovers().await.len(),
        2,
        "a killed runner deletes nothing"
    );

    let restarted = h.daemon(&[]);
    let left = cluster.clean_within(Duration::from_secs(30)).await;
    assert_eq!(left, Vec::<String>::new());
    let task = h.done(id, LONG).await;
    assert_eq!(task.status, Status::Failure);
    restarted.stop().await;
}
