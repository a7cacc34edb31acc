//! What the Kubernetes backend's cluster tests share: the test cluster's kubeconfig, a
//! namespace of each test's own (deleted when dropped), a set-up log to read, a job spec.

#![allow(dead_code)] // each test binary uses its own part

use std::sync::{Arc, Mutex};

use hearth_backend::{ContainerSpec, JobSpec, SetupLevel, SetupLog};
use hearth_kubernetes::{KubernetesBackend, KubernetesSettings};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;
use serde_json::json;

pub const DEBIAN: &str = "hearth-test/debian:1";
pub const BUSYBOX: &str = "hearth-test/busybox:1";
pub const PRIVATE: &str = "127.0.0.1:5999/private/busybox:1";
pub const REGISTRY_USER: &str = "hearth";
/// The test registry's password (test data made by scripts/docker-test-env, not a secret).
pub const REGISTRY_PASSWORD: &str = "hearth-registry-test";

pub fn kubeconfig() -> std::path::PathBuf {
    std::env::var_os("KUBECONFIG")
        .map(Into::into)
        .unwrap_or_else(|| "/var/cache/hearth-k8s/run/admin.kubeconfig".into())
}

/// A namespace of the test's own, deleted when dropped.
pub struct TestNamespace {
    pub client: kube::Client,
    pub name: String,
}

impl TestNamespace {
    pub async fn new(test: &str) -> TestNamespace {
        let settings = KubernetesSettings {
            kubeconfig: Some(kubeconfig()),
            ..Default::default()
        };
        let (client, _) = hearth_kubernetes::connect(&settings)
            .await
            .expect("the test cluster answers (scripts/k8s-test-env)");
        let name = format!("hearth-t-{test}-{}", std::process::id());
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create the test namespace");
        TestNamespace { client, name }
    }

    pub fn backend(&self, settings: KubernetesSettings) -> KubernetesBackend {
        KubernetesBackend::with_client(self.client.clone(), self.name.clone(), settings)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// The names of the Pods and Secrets Hearth made that are still there.
    pub async fn leftovers(&self) -> Vec<String> {
        let params = ListParams::default().labels("hearth.backend=kubernetes");
        let mut names = Vec::new();
        for pod in self.pods().list_metadata(&params).await.unwrap() {
            names.push(format!("pod {}", pod.metadata.name.unwrap_or_default()));
        }
        for secret in self.secrets().list_metadata(&params).await.unwrap() {
            names.push(format!(
                "secret {}",
                secret.metadata.name.unwrap_or_default()
            ));
        }
        names
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        // The test's runtime is ending: delete on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let namespaces: Api<Namespace> = Api::all(client);
                let _ = namespaces.delete(&name, &DeleteParams::default()).await;
            });
        })
        .join();
    }
}

#[derive(Clone, Default)]
pub struct Lines(pub Arc<Mutex<Vec<(SetupLevel, String)>>>);

impl SetupLog for Lines {
    fn line(&mut self, level: SetupLevel, text: &str) {
        self.0.lock().unwrap().push((level, text.to_owned()));
    }
}

impl Lines {
    pub fn text(&self) -> String {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn job(image: &str, owner: &str) -> JobSpec {
    JobSpec {
        name: "build".into(),
        container: Some(ContainerSpec {
            image: image.into(),
            env: vec![("FROM_SPEC".into(), "yes".into())],
            ..Default::default()
        }),
        owner: vec![
            ("hearth.runner".into(), owner.into()),
            ("hearth.task".into(), "1".into()),
        ],
        ..Default::default()
    }
}

/// A service of busybox's `httpd` serving `served` on port 8080, ready once it answers; `delay`
/// (a shell `sleep` argument) before it starts listening.
pub fn web_service(delay: &str) -> ContainerSpec {
    ContainerSpec {
        image: BUSYBOX.into(),
        entrypoint: Some("sh".into()),
        command: Some(format!(
            "-c 'sleep {delay}; mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www'"
        )),
        ports: vec!["8080".into()],
        options: "--health-cmd 'wget -qO- http://127.0.0.1:8080/' --health-interval 1s".into(),
        ..Default::default()
    }
}
