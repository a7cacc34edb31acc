//! The registration Secret against a real cluster (../shared/k8s, started by
//! scripts/k8s-test-env): created, read back, replaced, refused when it is not Hearth's, and
//! the errors an account without the RBAC rights gets. Each test works in a namespace of its
//! own, deleted at its end (also when it fails).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

use hearth_kubernetes::runner_secret::{RunnerSecret, MANAGED_BY_LABEL, RUNNER_KEY};
use hearth_kubernetes::{KubernetesError, KubernetesSettings, BACKEND_LABEL};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, PostParams};

/// The test cluster's kubeconfig: `KUBECONFIG` (scripts/test sets it), else where
/// ../shared/k8s/cluster.sh writes it.
fn kubeconfig() -> PathBuf {
    std::env::var_os("KUBECONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hearth-k8s/run/admin.kubeconfig"))
}

fn settings(namespace: &str) -> KubernetesSettings {
    KubernetesSettings {
        namespace: Some(namespace.to_owned()),
        kubeconfig: Some(kubeconfig()),
        ..KubernetesSettings::default()
    }
}

async fn admin() -> kube::Client {
    let (client, _) = hearth_kubernetes::connect(&settings("default"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e} (is the test cluster running? scripts/k8s-test-env starts it; kubeconfig {})",
                kubeconfig().display()
            )
        });
    client
}

/// A client that acts as ServiceAccount `account` of `namespace` (impersonated by the admin).
async fn client_as(namespace: &str, account: &str) -> kube::Client {
    let (mut config, _) = hearth_kubernetes::client_config(&settings(namespace))
        .await
        .expect("the test cluster's config");
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{account}"));
    kube::Client::try_from(config).expect("a client")
}

/// Runs `test` in a fresh namespace, deleted afterwards whether the test passed or not.
async fn in_namespace<F, Fut>(prefix: &str, test: F)
where
    F: FnOnce(kube::Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = admin().await;
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos()
        % 1_000_000_000;
    let name = format!("{prefix}-{}-{unique}", std::process::id());
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("namespace {name}: {e}"));
    let outcome = tokio::spawn(test(client.clone(), name.clone())).await;
    let deleted = namespaces.delete(&name, &DeleteParams::default()).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
    deleted.unwrap_or_else(|e| panic!("deleting namespace {name}: {e}"));
}

fn secret(name: &str, kind: &str, data: &[(&str, &str)], labels: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some(kind.to_owned()),
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

fn data_of(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).expect("UTF-8 data")))
        .collect()
}

const REGISTRATION: &str = r#"{"id": 7, "uuid": "5f7c0e6e-0000-4000-8000-000000000001", "name": "runner-0", "token": "t0ken", "address": "https://git.example.com", "labels": ["ubuntu-latest:kubernetes://hearth-test/debian:1"]}"#;

#[tokio::test]
async fn a_registration_is_saved_read_back_and_replaced() {
    in_namespace("hearth-runner-secret", |client, ns| async move {
        let store = RunnerSecret::connect(&settings(&ns), "hearth-runner")
            .await
            .expect("connected");
        assert_eq!(store.namespace(), ns);
        assert_eq!(store.load().await.expect("load before any save"), None);

        store.save(REGISTRATION).await.expect("first save creates");
        assert_eq!(
            store.load().await.expect("load").as_deref(),
            Some(REGISTRATION)
        );
        let secrets: kube::Api<Secret> = kube::Api::namespaced(client, &ns);
        let made = secrets.get("hearth-runner").await.expect("the Secret");
        assert_eq!(made.type_.as_deref(), Some("Opaque"));
        let labels = made.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(BACKEND_LABEL.0).map(String::as_str),
            Some(BACKEND_LABEL.1)
        );
        assert_eq!(
            labels.get(MANAGED_BY_LABEL.0).map(String::as_str),
            Some(MANAGED_BY_LABEL.1)
        );
        assert_eq!(
            data_of(&made),
            BTreeMap::from([(RUNNER_KEY.to_owned(), REGISTRATION.to_owned())])
        );

        // A second registration (the Secret exists: the create conflicts) replaces the first.
        let again = REGISTRATION.replace("\"id\": 7", "\"id\": 8");
        store.save(&again).await.expect("second save replaces");
        assert_eq!(
            store.load().await.expect("load").as_deref(),
            Some(again.as_str())
        );
        let replaced = secrets.get("hearth-runner").await.expect("the Secret");
        assert_eq!(
            replaced.metadata.uid, made.metadata.uid,
            "replaced in place"
        );
    })
    .await;
}

#[tokio::test]
async fn a_secret_made_by_hand_is_taken_over_and_one_without_the_key_is_no_registration() {
    in_namespace("hearth-runner-secret", |client, ns| async move {
        let secrets: kube::Api<Secret> = kube::Api::namespaced(client, &ns);
        // What an operator may create before the runner's first start: other keys, own labels.
        secrets
            .create(
                &PostParams::default(),
                &secret(
                    "hearth-runner",
                    "Opaque",
                    &[("note", "made by hand")],
                    &[("team", "ci")],
                ),
            )
            .await
            .expect("Secret made by hand");
        let store = RunnerSecret::connect(&settings(&ns), "hearth-runner")
            .await
            .expect("connected");
        assert_eq!(store.load().await.expect("load"), None, "no .runner key");

        // An empty key is no registration either, as an empty .runner file is none.
        let mut empty = secrets.get("hearth-runner").await.expect("the Secret");
        empty
            .data
            .get_or_insert_with(BTreeMap::new)
            .insert(RUNNER_KEY.to_owned(), ByteString(Vec::new()));
        secrets
            .replace("hearth-runner", &PostParams::default(), &empty)
            .await
            .expect("emptied");
        assert_eq!(store.load().await.expect("load"), None, "an empty .runner");

        store.save(REGISTRATION).await.expect("save over it");
        let taken = secrets.get("hearth-runner").await.expect("the Secret");
        assert_eq!(
            data_of(&taken),
            BTreeMap::from([(RUNNER_KEY.to_owned(), REGISTRATION.to_owned())]),
            "only the registration is left"
        );
        let labels = taken.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("team").map(String::as_str),
            Some("ci"),
            "own labels kept"
        );
        assert_eq!(
            labels.get(MANAGED_BY_LABEL.0).map(String::as_str),
            Some(MANAGED_BY_LABEL.1)
        );
    })
    .await;
}

#[tokio::test]
async fn a_secret_of_another_type_is_never_overwritten() {
    in_namespace("hearth-runner-secret", |client, ns| async move {
        let secrets: kube::Api<Secret> = kube::Api::namespaced(client, &ns);
        let config = r#"{"auths": {"registry.example.com": {"auth": "Y2k6c2VjcmV0"}}}"#;
        secrets
            .create(
                &PostParams::default(),
                &secret(
                    "hearth-runner",
                    "kubernetes.io/dockerconfigjson",
                    &[(".dockerconfigjson", config)],
                    &[],
                ),
            )
            .await
            .expect("a pull Secret of the same name");
        let store = RunnerSecret::connect(&settings(&ns), "hearth-runner")
            .await
            .expect("connected");
        let error = store
            .save(REGISTRATION)
            .await
            .expect_err("a pull Secret is not replaced");
        let message = error.to_string();
        assert!(matches!(error, KubernetesError::Invalid(_)), "{error:?}");
        assert!(
            message.contains("hearth-runner")
                && message.contains(&ns)
                && message.contains("kubernetes.io/dockerconfigjson"),
            "{message}"
        );
        let kept = secrets.get("hearth-runner").await.expect("the Secret");
        assert_eq!(
            data_of(&kept),
            BTreeMap::from([(".dockerconfigjson".to_owned(), config.to_owned())]),
            "left as it was"
        );
    })
    .await;
}

/// Makes ServiceAccount `account` in `ns` allowed `verbs` on secrets there (no Role when none).
async fn account_with(client: &kube::Client, ns: &str, account: &str, verbs: &[&str]) {
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    };
    kube::Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta(account),
                ..ServiceAccount::default()
            },
        )
        .await
        .expect("ServiceAccount");
    if verbs.is_empty() {
        return;
    }
    kube::Api::<Role>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta(account),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["secrets".to_owned()]),
                    verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
                    ..PolicyRule::default()
                }]),
            },
        )
        .await
        .expect("Role");
    kube::Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta(account),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".to_owned(),
                    kind: "Role".to_owned(),
                    name: account.to_owned(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".to_owned(),
                    name: account.to_owned(),
                    namespace: Some(ns.to_owned()),
                    ..Subject::default()
                }]),
            },
        )
        .await
        .expect("RoleBinding");
}

/// `error` is the API's 403 and its message names the Secret, the namespace and `verb`.
fn assert_forbidden(error: &KubernetesError, ns: &str, verb: &str) {
    let KubernetesError::Api { what, source } = error else {
        panic!("not an API error: {error:?}");
    };
    assert!(
        matches!(source, kube::Error::Api(status) if status.code == 403),
        "{source:?}"
    );
    for part in ["hearth-runner", ns, &format!("`{verb}`"), "secrets"] {
        assert!(what.contains(part), "{part:?} not in {what:?}");
    }
}

#[tokio::test]
async fn an_account_without_the_rights_gets_errors_naming_the_secret_and_the_verb() {
    in_namespace("hearth-runner-secret", |client, ns| async move {
        account_with(&client, &ns, "nothing", &[]).await;
        account_with(&client, &ns, "read-only", &["get"]).await;
        account_with(&client, &ns, "no-update", &["get", "create"]).await;

        let nothing =
            RunnerSecret::with_client(client_as(&ns, "nothing").await, &ns, "hearth-runner");
        let error = nothing.load().await.expect_err("no get on secrets");
        assert_forbidden(&error, &ns, "get");

        let read_only =
            RunnerSecret::with_client(client_as(&ns, "read-only").await, &ns, "hearth-runner");
        assert_eq!(
            read_only.load().await.expect("get is allowed"),
            None,
            "a missing Secret is no error"
        );
        let error = read_only.save(REGISTRATION).await.expect_err("no create");
        assert_forbidden(&error, &ns, "create");

        // Created by the first save; the second has to replace it, which needs update.
        let no_update =
            RunnerSecret::with_client(client_as(&ns, "no-update").await, &ns, "hearth-runner");
        no_update
            .save(REGISTRATION)
            .await
            .expect("create is allowed");
        assert_eq!(
            no_update.load().await.expect("load").as_deref(),
            Some(REGISTRATION)
        );
        let error = no_update
            .save(REGISTRATION)
            .await
            .expect_err("no update on secrets");
        assert_forbidden(&error, &ns, "update");
    })
    .await;
}
