//! What the binary's Kubernetes tests share: the test cluster's kubeconfig
//! (`scripts/k8s-test-env`), a client, and namespaces of a test's own.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::Api;

/// The kubeconfig `scripts/k8s-test-env` printed (in `KUBECONFIG`), else its default place.
pub fn kubeconfig() -> String {
    std::env::var("KUBECONFIG")
        .unwrap_or_else(|_| "/var/cache/hearth-k8s/run/admin.kubeconfig".to_owned())
}

/// A client of the test cluster, as its admin.
pub async fn client() -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig()).expect("the kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .expect("a usable kubeconfig");
    kube::Client::try_from(config).expect("a client")
}

/// Makes the namespace `name`, or fails the test saying the cluster does not answer.
pub async fn create_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .expect("the test cluster answers (scripts/k8s-test-env)");
}

/// Deletes the namespace `name` from a `Drop`: on a thread and runtime of its own, since the
/// test's runtime is ending.
pub fn delete_namespace(client: &kube::Client, name: &str) {
    let (client, name) = (client.clone(), name.to_owned());
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let namespaces: Api<Namespace> = Api::all(client);
            let _ = namespaces.delete(&name, &DeleteParams::default()).await;
        });
    })
    .join();
}
