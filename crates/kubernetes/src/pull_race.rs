//! A Pod's first image pull can fail only because the kubelet has not synced the Pod's pull
//! Secrets yet (the node authorizer learns of a new Pod's Secrets a moment after the Pod).
//! With pull Secrets, a pull is refused for good only when the kubelet's retry (after its
//! back-off) is refused too; without them there is nothing to wait for.

use k8s_openapi::api::core::v1::Pod;

pub struct FirstPullRace {
    has_pull_secrets: bool,
    backed_off: bool,
}

impl FirstPullRace {
    pub fn new(pod: &Pod) -> Self {
        let has_pull_secrets = pod
            .spec
            .as_ref()
            .is_some_and(|s| s.image_pull_secrets.as_ref().is_some_and(|p| !p.is_empty()));
        FirstPullRace {
            has_pull_secrets,
            backed_off: false,
        }
    }

    /// Whether the pull failure `why` (a container's waiting reason and message, as
    /// `…: REASON: message`) may still resolve, the kubelet trying again.
    pub fn waits_out(&mut self, why: &str) -> bool {
        if !self.has_pull_secrets {
            return false;
        }
        if why.contains(": ImagePullBackOff:") {
            self.backed_off = true;
            return true;
        }
        why.contains(": ErrImagePull:") && !self.backed_off
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{LocalObjectReference, PodSpec};

    fn pod(secrets: bool) -> Pod {
        Pod {
            spec: Some(PodSpec {
                image_pull_secrets: secrets.then(|| {
                    vec![LocalObjectReference {
                        name: "pull".into(),
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const FIRST: &str = "container job (image x): ErrImagePull: unauthorized";
    const BACK_OFF: &str = "container job (image x): ImagePullBackOff: Back-off pulling";

    #[test]
    fn with_secrets_the_retry_after_the_back_off_decides() {
        let mut race = FirstPullRace::new(&pod(true));
        assert!(race.waits_out(FIRST));
        assert!(race.waits_out(BACK_OFF));
        assert!(!race.waits_out(FIRST), "refused again after the back-off");
    }

    #[test]
    fn without_secrets_a_refused_pull_is_final() {
        let mut race = FirstPullRace::new(&pod(false));
        assert!(!race.waits_out(FIRST));
        assert!(!race.waits_out(BACK_OFF));
    }
}
