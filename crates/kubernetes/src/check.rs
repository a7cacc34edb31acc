//! What `hearth doctor` asks of the cluster: that its API server answers, and that the runner
//! may do what its jobs need in its namespace (the rights of `deploy/kubernetes-pods/role.yaml`),
//! each asked with a `SelfSubjectAccessReview` so that a missing right shows before a job
//! fails on it.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::Api;

use crate::{KubernetesBackend, KubernetesError};

/// The rights a runner needs in its namespace: the verbs, the resource, and (for the exec API,
/// which API servers before 1.30 authorize as `get` and later ones as `create`) alternatives.
const NEEDED: &[(&[&str], &str, &str)] = &[
    (&["create"], "pods", ""),
    (&["get"], "pods", ""),
    (&["list"], "pods", ""),
    (&["watch"], "pods", ""),
    (&["delete"], "pods", ""),
    (&["create", "get"], "pods", "exec"),
    (&["get"], "pods", "log"),
    (&["create"], "secrets", ""),
    (&["get"], "secrets", ""),
    (&["list"], "secrets", ""),
    (&["delete"], "secrets", ""),
    (&["patch"], "secrets", ""),
    (&["get"], "serviceaccounts", ""),
];

/// What the cluster said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterCheck {
    /// The API server's version (`v1.20.15`).
    pub version: String,
    /// Where it was reached.
    pub address: String,
    pub namespace: String,
    /// The rights the runner lacks there, as `verb resource[/subresource]`.
    pub missing: Vec<String>,
}

impl KubernetesBackend {
    /// Asks the API server its version and, one review each, whether the runner has every
    /// right it needs in its namespace.
    pub async fn check(&self, address: String) -> Result<ClusterCheck, KubernetesError> {
        let version =
            self.client
                .apiserver_version()
                .await
                .map_err(|source| KubernetesError::Api {
                    what: format!("cannot reach the cluster at {address}"),
                    source,
                })?;
        let reviews: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let mut missing = Vec::new();
        for (verbs, resource, subresource) in NEEDED {
            let mut allowed = false;
            for verb in *verbs {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            namespace: Some(self.namespace.clone()),
                            verb: Some((*verb).to_owned()),
                            resource: Some((*resource).to_owned()),
                            subresource: (!subresource.is_empty())
                                .then(|| (*subresource).to_owned()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let answer = reviews
                    .create(&PostParams::default(), &review)
                    .await
                    .map_err(|source| KubernetesError::Api {
                        what: "cannot ask the API server what the runner may do \
                               (a SelfSubjectAccessReview)"
                            .to_owned(),
                        source,
                    })?;
                if answer.status.is_some_and(|s| s.allowed) {
                    allowed = true;
                    break;
                }
            }
            if !allowed {
                let resource = match *subresource {
                    "" => (*resource).to_owned(),
                    sub => format!("{resource}/{sub}"),
                };
                missing.push(format!("{} {resource}", verbs.join(" or ")));
            }
        }
        Ok(ClusterCheck {
            version: version.git_version,
            address,
            namespace: self.namespace.clone(),
            missing,
        })
    }
}
