//! `kubernetes.runner_secret` against the real test cluster (`scripts/k8s-test-env`): `hearth
//! register` keeps the registration in the Secret and writes no file, `hearth daemon` runs as
//! the runner the Secret holds and records new labels there, and a runner registered into a
//! file moves into the Secret at its first start.

#[allow(dead_code)] // not every helper of the daemon's harness is used here
#[path = "daemon/harness.rs"]
mod harness;

#[path = "common/kubernetes.rs"]
mod kubernetes;

use kubernetes::kubeconfig;

use std::time::Duration;

use harness::{Harness, FAST};
use hearth_fake_forge::{Options, Status, TaskSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

const SECRET: &str = "hearth-runner";

/// A namespace of the test's own, deleted with it.
struct Cluster {
    client: kube::Client,
    namespace: String,
}

impl Cluster {
    async fn new(test: &str) -> Cluster {
        let client = kubernetes::client().await;
        let namespace = format!("hearth-rs-{test}-{}", std::process::id());
        kubernetes::create_namespace(&client, &namespace).await;
        Cluster { client, namespace }
    }

    /// The config keeping the registration in the Secret of this namespace.
    fn config(&self, runner: &str) -> String {
        format!(
            "{FAST}{runner}kubernetes:\n  kubeconfig: {}\n  namespace: {}\n  runner_secret: \
             {SECRET}\n",
            kubeconfig(),
            self.namespace
        )
    }

    /// The registration the Secret holds, as JSON; `None` without the Secret.
    async fn kept(&self) -> Option<serde_json::Value> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let secret = secrets.get_opt(SECRET).await.expect("the Secret is read")?;
        let text = secret
            .data
            .and_then(|mut data| data.remove(".runner"))
            .expect("the Secret has the .runner key")
            .0;
        Some(serde_json::from_slice(&text).expect("the Secret holds JSON"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        kubernetes::delete_namespace(&self.client, &self.namespace);
    }
}

fn job() -> String {
    "name: ci\non: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: echo \
     from-the-secret\n"
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_daemon_keep_the_registration_in_the_secret() {
    let cluster = Cluster::new("keep").await;
    let h = Harness::start(Options::gitea()).await;
    h.config(&cluster.config(""));
    let output = h.register(&["--labels", "linux:host"]).await;
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!(
            "the registration is kept in secret/{SECRET} (kubernetes.runner_secret)"
        )),
        "{output:?}"
    );
    assert!(!h.path(".runner").exists(), "a .runner file was written");
    let runners = h.forge.runners();
    assert_eq!(runners.len(), 1);
    let kept = cluster.kept().await.expect("the Secret was written");
    assert_eq!(kept["uuid"], runners[0].uuid.as_str());
    assert_eq!(kept["token"], runners[0].token.as_str());
    assert_eq!(kept["labels"], serde_json::json!(["linux:host"]));
    assert!(kept["WARNING"].is_string(), "the file's text: {kept}");

    // The daemon runs as that runner, and new labels go to the Secret, not to a file.
    h.config(&cluster.config("  labels:\n    - linux:host\n    - extra:host\n"));
    let (id, task, log) = h.run(TaskSpec::new(job())).await;
    assert_eq!(task.status, Status::Success, "{log}");
    assert!(h.forge.log_lines(id).iter().any(|l| l == "from-the-secret"));
    assert_eq!(h.forge.runners().len(), 1, "no second runner");
    let kept = cluster.kept().await.expect("the Secret is still there");
    assert_eq!(kept["uuid"], runners[0].uuid.as_str());
    assert_eq!(
        kept["labels"],
        serde_json::json!(["linux:host", "extra:host"])
    );
    assert!(!h.path(".runner").exists(), "a .runner file was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_file_moves_into_the_secret_at_the_first_start() {
    let cluster = Cluster::new("move").await;
    let h = Harness::start(Options::gitea()).await;
    h.config(FAST);
    h.registered().await;
    let uuid = h.runner_uuid();
    assert!(cluster.kept().await.is_none());

    h.config(&cluster.config(""));
    let daemon = h.daemon(&[]);
    let id = h.forge.queue_task(TaskSpec::new(job()));
    let task = h.done(id, Duration::from_secs(60)).await;
    let log = daemon.stop().await;
    assert_eq!(task.status, Status::Success, "{log}");
    assert!(
        log.contains(&format!("is now kept in the Secret {SECRET}")),
        "{log}"
    );
    let kept = cluster.kept().await.expect("the registration moved");
    assert_eq!(kept["uuid"], uuid.as_str());
    assert_eq!(h.forge.runners().len(), 1);
}
