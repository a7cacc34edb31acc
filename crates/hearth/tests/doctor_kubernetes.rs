//! `hearth doctor` with a `kubernetes://` label, against the test cluster (scripts/k8s-test-env):
//! the runner's rights in its namespace asked of the API server, as a ServiceAccount bound to
//! the Role of `deploy/kubernetes-pods` (every right there) and as one that may only read Pods
//! (the missing ones named); a cluster that does not answer fails the check saying so.

#[path = "common/kubernetes.rs"]
mod kubernetes;

use std::path::Path;

use assert_cmd::Command;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::PostParams;
use kube::Api;
use serde_json::{json, Value};

/// The namespace, deleted when the test ends, passed or not.
struct TestNamespace {
    client: kube::Client,
    name: String,
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        kubernetes::delete_namespace(&self.client, &self.name);
    }
}

/// The ServiceAccount `account` in `ns`, bound to a Role of `rules`.
async fn account_with(client: &kube::Client, ns: &str, account: &str, rules: Value) {
    let params = PostParams::default();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let object = serde_json::from_value(json!({"metadata": {"name": account}})).unwrap();
    accounts
        .create(&params, &object)
        .await
        .expect("account made");
    let roles: Api<Role> = Api::namespaced(client.clone(), ns);
    let object = serde_json::from_value(json!({"metadata": {"name": account}, "rules": rules}))
        .expect("a Role");
    roles.create(&params, &object).await.expect("Role made");
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    let object = serde_json::from_value(json!({
        "metadata": {"name": account},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
    }))
    .unwrap();
    bindings
        .create(&params, &object)
        .await
        .expect("binding made");
}

/// The rules of the Role the deployment's manifests give the runner.
fn deployed_rules() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes-pods/role.yaml");
    let text = std::fs::read_to_string(&path).expect("role.yaml");
    let role = hearth_workflow::yaml::load(&text, "role.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .to_json();
    role["rules"].clone()
}

/// The admin's kubeconfig acting as `user` (the API server's impersonation), in `ns`.
fn kubeconfig_as(dir: &Path, ns: &str, user: Option<&str>) -> std::path::PathBuf {
    let admin = std::fs::read_to_string(kubernetes::kubeconfig()).expect("the kubeconfig");
    let mut config = hearth_workflow::yaml::load(&admin, "kubeconfig")
        .unwrap_or_else(|e| panic!("{e}"))
        .to_json();
    let contexts = config["contexts"].as_array_mut().expect("contexts");
    for context in contexts {
        context["context"]["namespace"] = json!(ns);
    }
    if let Some(user) = user {
        for entry in config["users"].as_array_mut().expect("users") {
            entry["user"]["as"] = json!(user);
        }
    }
    let path = dir.join(format!(
        "kubeconfig-{}",
        user.unwrap_or("admin").replace(':', "-")
    ));
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    path
}

/// `hearth doctor --json` with a Kubernetes label and `kubeconfig`: the `kubernetes` check.
fn doctor(dir: &Path, kubeconfig: &Path) -> Value {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "runner:\n  file: {}\n  labels: [\"pods:kubernetes://hearth-test/busybox:1\"]\n\
             host:\n  workdir_parent: {}\nkubernetes:\n  kubeconfig: {}\n",
            dir.join(".runner").display(),
            dir.join("work").display(),
            kubeconfig.display()
        ),
    )
    .unwrap();
    let output = Command::cargo_bin("hearth")
        .expect("hearth binary is built")
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .env_remove("CONFIG_FILE")
        .args(["-c", config.to_str().unwrap(), "doctor", "--json"])
        .output()
        .expect("hearth doctor runs");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    report
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == "kubernetes"))
        .cloned()
        .unwrap_or_else(|| panic!("no kubernetes check: {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_asks_the_cluster_for_every_right_the_runner_needs() {
    let client = kubernetes::client().await;
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    let name = format!("hearth-doctor-{}-{unique}", std::process::id());
    kubernetes::create_namespace(&client, &name).await;
    let ns = TestNamespace {
        client: client.clone(),
        name: name.clone(),
    };
    account_with(&client, &ns.name, "deployed", deployed_rules()).await;
    let read_only =
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]);
    account_with(&client, &ns.name, "reader", read_only).await;
    let dir = tempfile::tempdir().unwrap();

    let deployed = format!("system:serviceaccount:{name}:deployed");
    let check = doctor(
        dir.path(),
        &kubeconfig_as(dir.path(), &name, Some(&deployed)),
    );
    assert_eq!(check["status"], "pass", "{check:#}");
    let detail = check["detail"].as_str().unwrap();
    assert!(detail.starts_with("Kubernetes v1."), "{detail}");
    assert!(
        detail.contains(&format!(
            "namespace {name}: the runner has every right it needs"
        )),
        "{detail}"
    );

    let reader = format!("system:serviceaccount:{name}:reader");
    let check = doctor(dir.path(), &kubeconfig_as(dir.path(), &name, Some(&reader)));
    assert_eq!(check["status"], "fail", "{check:#}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.ends_with(
            "the runner may not create pods, delete pods, create or get pods/exec, get \
             pods/log, create secrets, get secrets, list secrets, delete secrets, patch secrets, \
             get serviceaccounts there"
        ),
        "{detail}"
    );
    assert!(
        check["advice"]
            .as_str()
            .unwrap()
            .contains("deploy/kubernetes-pods/role.yaml"),
        "{check:#}"
    );

    // A cluster that does not answer.
    let nowhere = dir.path().join("nowhere");
    std::fs::write(
        &nowhere,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: \
         https://127.0.0.1:1\ncontexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n\
         current-context: ctx\nusers:\n- name: u\n  user:\n    token: not-a-token\n",
    )
    .unwrap();
    let check = doctor(dir.path(), &nowhere);
    assert_eq!(check["status"], "fail", "{check:#}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains(
            "cannot reach the cluster at https://127.0.0.1:1/: the API server does not answer"
        ) && detail.contains("Connection refused"),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("kubernetes.kubeconfig {}", nowhere.display())),
        "{detail}"
    );
    drop(ns);
}
