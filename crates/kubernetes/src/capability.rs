//! What is checked once per backend before its first job: that job Pods' ServiceAccount is
//! there (made when the runner may), and whether the cluster keeps `hostUsers: false`.

use hearth_backend::BackendError;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::PostParams;
use kube::Api;
use serde_json::json;

use crate::start::api_error;
use crate::KubernetesSettings;

/// Checks the ServiceAccount and answers whether job Pods may have `hostUsers: false`.
pub async fn prepare(
    client: &kube::Client,
    namespace: &str,
    settings: &KubernetesSettings,
) -> Result<bool, BackendError> {
    let account = crate::pod::job_service_account(settings);
    ensure_service_account(client, namespace, account).await?;
    user_namespaces(client, namespace, account).await
}

/// The job ServiceAccount: made, with no token mounted, when it is not there and the runner
/// may make it (`hearth exec` against a cluster); the deployment's manifests ship it.
async fn ensure_service_account(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), BackendError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    match accounts.get_opt(name).await {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        // May not read accounts: the Pod's creation will say whether it is there.
        Err(kube::Error::Api(status)) if status.code == 403 => return Ok(()),
        Err(e) => return Err(api_error("read the job ServiceAccount", namespace, e)),
    }
    let account: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "hearth"}},
        "automountServiceAccountToken": false,
    }))
    .map_err(|e| BackendError::Unsupported(e.to_string()))?;
    match accounts.create(&PostParams::default(), &account).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            Err(BackendError::Unsupported(format!(
                "the ServiceAccount {name} for job Pods is not in namespace {namespace} and the \
                 runner may not make it: apply deploy/kubernetes-pods, or set \
                 kubernetes.service_account to an account without API rights"
            )))
        }
        Err(e) => Err(api_error("make the job ServiceAccount", namespace, e)),
    }
}

/// Asks the API server, without making anything (a dry run), whether it keeps
/// `hostUsers: false` on a Pod: a server that does not know the field drops it.
async fn user_namespaces(
    client: &kube::Client,
    namespace: &str,
    account: &str,
) -> Result<bool, BackendError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let probe: Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("hearth-probe-{}", crate::random_suffix())},
        "spec": {
            "hostUsers": false,
            "serviceAccountName": account,
            "automountServiceAccountToken": false,
            "containers": [{"name": "probe", "image": "probe"}],
        }
    }))
    .map_err(|e| BackendError::Unsupported(e.to_string()))?;
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let answer = pods
        .create(&params, &probe)
        .await
        .map_err(|e| api_error("ask whether Pods may have user namespaces", namespace, e))?;
    Ok(kept_host_users(&answer))
}

/// Whether the server kept `hostUsers: false` on the Pod it answered with.
pub fn kept_host_users(answer: &Pod) -> bool {
    answer.spec.as_ref().and_then(|s| s.host_users) == Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_drops_the_field_has_no_user_namespaces() {
        let kept: Pod =
            serde_json::from_value(json!({"spec": {"hostUsers": false, "containers": []}}))
                .unwrap();
        let dropped: Pod = serde_json::from_value(json!({"spec": {"containers": []}})).unwrap();
        assert!(kept_host_users(&kept));
        assert!(!kept_host_users(&dropped));
    }
}
