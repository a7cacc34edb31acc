//! Starting a job: its registry Secret, its Pod, the wait until every container runs (what
//! keeps a Pod pending is said in the job's log), the job's folders made and the repository
//! copied in.

use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt;
use hearth_backend::{
    BackendError, CancellationToken, ContainerSpec, JobRuntime, JobSpec, SetupLevel, SetupLog,
};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{LogParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::Api;
use serde_json::json;

use crate::cleanup::{JobObjects, POD_LABEL};
use crate::files::PodFiles;
use crate::pod::{self, PodPlan, JOB_CONTAINER};
use crate::runtime::{PodRuntime, PID_DIR};
use crate::KubernetesBackend;

/// How long services may take to become ready once their containers run (as Docker's).
const READY_BOUND: Duration = Duration::from_secs(300);

/// Waiting reasons that will not resolve by waiting.
pub(crate) const FATAL_WAITING: [&str; 7] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

pub async fn start(
    backend: &KubernetesBackend,
    spec: JobSpec,
    log: &mut dyn SetupLog,
    cancel: &CancellationToken,
) -> Result<Box<dyn JobRuntime>, BackendError> {
    if spec.bind_repository {
        return Err(BackendError::Unsupported(
            "a Kubernetes job cannot bind the repository (its Pod mounts no folder of this \
             machine); run without --bind"
                .to_owned(),
        ));
    }
    let Some(job) = spec.container.clone() else {
        return Err(BackendError::Unsupported(
            "a Kubernetes job needs an image: use a label NAME:kubernetes://IMAGE or give the \
             job a `container:`"
                .to_owned(),
        ));
    };
    check_reach(&spec, log)?;
    let host_users_false = backend.prepare(log).await?;

    let name = format!(
        "hearth-{}-{}",
        pod::dns_label(&spec.name, 40),
        crate::random_suffix()
    );
    let mut labels = vec![(
        crate::BACKEND_LABEL.0.to_owned(),
        crate::BACKEND_LABEL.1.to_owned(),
    )];
    for (key, value) in &spec.owner {
        labels.push((key.clone(), pod::label_value(value)));
    }
    let pods: Api<Pod> = Api::namespaced(backend.client.clone(), &backend.namespace);
    let secrets: Api<Secret> = Api::namespaced(backend.client.clone(), &backend.namespace);

    // From here on, whatever ends the start deletes what was made.
    let mut objects = Some(JobObjects {
        pods: pods.clone(),
        secrets: secrets.clone(),
        pod: name.clone(),
        secret: None,
        live: backend.live.clone(),
    });
    if let Ok(mut live) = backend.live.lock() {
        live.insert(name.clone());
    }
    let outcome = async {
        let secret = registry_secret(&spec, &name, &labels);
        if let Some(secret) = &secret {
            secrets
                .create(&PostParams::default(), secret)
                .await
                .map_err(|e| {
                    api_error("create the job's registry Secret", &backend.namespace, e)
                })?;
            if let Some(objects) = objects.as_mut() {
                objects.secret = secret.metadata.name.clone();
            }
        }
        let plan = PodPlan {
            name: &name,
            labels: &labels,
            job: &job,
            services: &spec.services,
            credentials_secret: secret.as_ref().and_then(|s| s.metadata.name.as_deref()),
            host_users_false,
        };
        let manifest = pod::pod(&plan, &backend.settings).map_err(BackendError::Unsupported)?;
        let manifest: Pod = serde_json::from_value(manifest).map_err(|e| {
            BackendError::Unsupported(format!("kubernetes.pod_template is not a valid Pod: {e}"))
        })?;
        log.line(
            SetupLevel::Info,
            &format!(
                "Creating Pod {name} in namespace {} (image {})",
                backend.namespace, job.image
            ),
        );
        let created = pods
            .create(&PostParams::default(), &manifest)
            .await
            .map_err(|e| api_error("create the job's Pod", &backend.namespace, e))?;
        if let (Some(secret), Some(uid)) = (&secret, created.metadata.uid.as_deref()) {
            own(&secrets, secret, &name, uid).await;
        }
        wait_ready(&pods, created, &job, &spec.services, log, cancel).await
    }
    .await;
    let node = match outcome {
        Ok(node) => node,
        Err(e) => {
            if let Some(objects) = objects.take() {
                if let Err(cleanup) = objects.delete().await {
                    tracing::warn!("{cleanup}");
                }
            }
            return Err(e);
        }
    };
    log.line(
        SetupLevel::Info,
        &format!("Pod {name} is running on node {node}"),
    );
    let files = PodFiles {
        api: pods,
        pod: name.clone(),
        deferred: Default::default(),
        extra_hosts: pod::extra_hosts(&spec.services).into(),
    };
    let runtime = PodRuntime {
        files: files.clone(),
        paths: crate::job_paths(),
        base_env: Vec::new(),
        has_bash: false,
        containers: crate::runtime::containers(&name, &spec.services),
        objects,
        steps: Default::default(),
        empty: Default::default(),
        exposed: Default::default(),
        node: crate::node::JobNode::new(backend.lent_node.clone()),
    };
    // Dropping `runtime` on an error below deletes the Pod in the background.
    let extra_hosts = files.extra_hosts.clone();
    let repository = match &spec.repository {
        Some(folder) => Some(crate::files::tar_of_host_folder(folder).await?),
        None => None,
    };
    let prepared = prepare_folders(&files, &job.image, &extra_hosts, repository.as_deref()).await?;
    if !prepared.hosts_written {
        log.line(
            SetupLevel::Warning,
            &format!(
                "The services {} cannot be reached by name: a Pod's host aliases must be \
                 lowercase DNS names, and the job container's /etc/hosts is not writable; \
                 reach them at 127.0.0.1",
                extra_hosts.join(", ")
            ),
        );
    }
    let mut runtime = runtime;
    runtime.base_env = prepared.base_env;
    runtime.has_bash = prepared.has_bash;
    Ok(Box::new(runtime))
}

/// A Pod reaches the runner's side only at an address other than its loopback.
fn check_reach(spec: &JobSpec, log: &mut dyn SetupLog) -> Result<(), BackendError> {
    for reach in &spec.reach {
        if !is_loopback(&reach.url) {
            continue;
        }
        let message = format!(
            "{} at {} is on this machine's loopback, which a job Pod cannot reach; {}",
            reach.what, reach.url, reach.fix
        );
        if reach.optional {
            log.line(SetupLevel::Warning, &message);
        } else {
            return Err(BackendError::Unreachable(message));
        }
    }
    Ok(())
}

fn is_loopback(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, rest)| rest) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The job's registry credentials (`container.credentials`, services' too) as a Secret of type
/// `kubernetes.io/dockerconfigjson`, named after the Pod; `None` when the job gives none.
fn registry_secret(spec: &JobSpec, pod: &str, labels: &[(String, String)]) -> Option<Secret> {
    let containers = spec
        .container
        .iter()
        .chain(spec.services.iter().map(|(_, s)| s));
    let mut auths = serde_json::Map::new();
    for container in containers {
        let Some(credentials) = &container.credentials else {
            continue;
        };
        use hearth_backend::ExposeSecret;
        let password = credentials.password.expose_secret();
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", credentials.username));
        auths.insert(
            registry_host(&container.image),
            json!({"username": credentials.username, "password": password, "auth": auth}),
        );
    }
    if auths.is_empty() {
        return None;
    }
    let config = json!({ "auths": auths }).to_string();
    let mut all_labels: std::collections::BTreeMap<String, String> =
        labels.iter().cloned().collect();
    all_labels.insert(POD_LABEL.to_owned(), pod.to_owned());
    Some(Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{pod}-registry")),
            labels: Some(all_labels),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".to_owned()),
        string_data: Some([(".dockerconfigjson".to_owned(), config)].into()),
        ..Default::default()
    })
}

/// The registry an image reference names, as a Docker config's `auths` keys it.
pub fn registry_host(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_owned()
        }
        _ => "https://index.docker.io/v1/".to_owned(),
    }
}

/// Makes the Pod the Secret's owner, so that the cluster deletes it with the Pod even when the
/// runner cannot (it was killed): a safety net, so a failure is only logged.
async fn own(secrets: &Api<Secret>, secret: &Secret, pod: &str, uid: &str) {
    let Some(name) = secret.metadata.name.as_deref() else {
        return;
    };
    let patch = json!({"metadata": {"ownerReferences": [{
        "apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid,
    }]}});
    if let Err(e) = secrets
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(
            secret = name,
            "cannot make the job's Pod own its Secret: {e}"
        );
    }
}

/// What a Pod's state says about its start.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every container runs and is ready; on this node.
    Ready(String),
    /// Not yet; the scheduler's reason when no node has room.
    Waiting { unschedulable: Option<String> },
    /// It will not start: why, and whether an image could not be pulled.
    Failed { why: String, pull: bool },
}

pub fn verdict(pod: &Pod) -> Verdict {
    let Some(status) = &pod.status else {
        return Verdict::Waiting {
            unschedulable: None,
        };
    };
    for container in status.container_statuses.iter().flatten() {
        let state = container.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or("");
            if FATAL_WAITING.contains(&reason) {
                let why = format!(
                    "container {} (image {}): {reason}: {}",
                    container.name,
                    container.image,
                    waiting.message.as_deref().unwrap_or("no message")
                );
                return Verdict::Failed {
                    why,
                    pull: reason.contains("Image"),
                };
            }
        }
        if let Some(ended) = state.and_then(|s| s.terminated.as_ref()) {
            let why = format!(
                "container {} (image {}) ended with exit code {}{}",
                container.name,
                container.image,
                ended.exit_code,
                ended
                    .message
                    .as_deref()
                    .or(ended.reason.as_deref())
                    .map(|m| format!(": {}", m.trim()))
                    .unwrap_or_default()
            );
            return Verdict::Failed { why, pull: false };
        }
    }
    match status.phase.as_deref() {
        Some("Failed") | Some("Succeeded") => {
            return Verdict::Failed {
                why: format!(
                    "the Pod ended: {}",
                    status
                        .message
                        .as_deref()
                        .or(status.reason.as_deref())
                        .unwrap_or("no reason given")
                ),
                pull: false,
            }
        }
        Some("Running") => {
            let statuses = status.container_statuses.as_deref().unwrap_or_default();
            let expected = pod.spec.as_ref().map_or(0, |s| s.containers.len());
            if statuses.len() == expected && statuses.iter().all(|c| c.ready) {
                return Verdict::Ready(
                    pod.spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default(),
                );
            }
        }
        _ => {}
    }
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .filter(|c| c.reason.as_deref() == Some("Unschedulable"))
        .map(|c| {
            c.message
                .clone()
                .unwrap_or_else(|| "no node fits".to_owned())
        });
    Verdict::Waiting { unschedulable }
}

/// Watches the Pod until every container is ready, saying in the job's log what keeps it
/// pending; the node's name when it runs.
async fn wait_ready(
    pods: &Api<Pod>,
    created: Pod,
    job: &ContainerSpec,
    services: &[(String, ContainerSpec)],
    log: &mut dyn SetupLog,
    cancel: &CancellationToken,
) -> Result<String, BackendError> {
    let name = created.metadata.name.clone().unwrap_or_default();
    let mut version = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let mut current = created;
    let mut said = String::new();
    let mut running_since: Option<Instant> = None;
    let mut pull_race = crate::pull_race::FirstPullRace::new(&current);
    loop {
        match verdict(&current) {
            Verdict::Ready(node) => return Ok(node),
            Verdict::Failed { why, pull: true } if pull_race.waits_out(&why) => {
                tracing::debug!(pod = %name, "a pull failed, the kubelet tries again: {why}");
            }
            Verdict::Failed { why, pull } => {
                let detail = service_log(pods, &name, services, &why).await;
                return Err(if pull {
                    BackendError::Registry(format!(
                        "cannot pull an image of the job's Pod: {why} (the Pod's credentials: \
                         kubernetes.image_pull_secrets and the job's `credentials:`)"
                    ))
                } else {
                    let hint = if why.contains("no such file") || why.contains("not found") {
                        format!(
                            "; a Kubernetes job runs its steps with /bin/sh: does the image {} \
                             have one?",
                            job.image
                        )
                    } else {
                        String::new()
                    };
                    BackendError::Container(format!(
                        "the job's Pod did not start: {why}{hint}{detail}"
                    ))
                });
            }
            Verdict::Waiting { unschedulable } => {
                if let Some(message) = unschedulable.filter(|m| *m != said) {
                    log.line(
                        SetupLevel::Warning,
                        &format!("The job's Pod {name} waits for a node: {message}"),
                    );
                    said = message;
                }
                let running =
                    current.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if running {
                    let since = *running_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > READY_BOUND {
                        let why = "services not ready after 5 minutes".to_owned();
                        let detail = service_log(pods, &name, services, &why).await;
                        return Err(BackendError::Container(format!(
                            "the job's Pod did not start: {why}{detail}"
                        )));
                    }
                }
            }
        }
        // Wait for the next change (or re-read the Pod when the watch ends).
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(60);
        let mut stream = tokio::select! {
            () = cancel.cancelled() => return Err(BackendError::Cancelled("starting the job's Pod".into())),
            watch = pods.watch(&params, &version) => match watch {
                Ok(stream) => stream.boxed(),
                Err(e) => return Err(api_error("watch the job's Pod", "", e)),
            },
        };
        let mut changed = false;
        while !changed {
            let event = tokio::select! {
                () = cancel.cancelled() => return Err(BackendError::Cancelled("starting the job's Pod".into())),
                () = tokio::time::sleep(Duration::from_secs(5)), if running_since.is_some() => None,
                event = stream.next() => event,
            };
            match event {
                Some(Ok(WatchEvent::Added(pod))) | Some(Ok(WatchEvent::Modified(pod))) => {
                    version = pod.metadata.resource_version.clone().unwrap_or_default();
                    current = pod;
                    changed = true;
                }
                Some(Ok(WatchEvent::Deleted(_))) => {
                    return Err(BackendError::Container(format!(
                        "the job's Pod {name} was deleted while it started"
                    )))
                }
                Some(Ok(WatchEvent::Bookmark(bookmark))) => {
                    version = bookmark.metadata.resource_version;
                }
                // The watch ended, its version is too old, or the 5 s check: read it again.
                Some(Ok(WatchEvent::Error(_))) | Some(Err(_)) | None => {
                    current = pods
                        .get(&name)
                        .await
                        .map_err(|e| api_error("read the job's Pod", "", e))?;
                    version = current
                        .metadata
                        .resource_version
                        .clone()
                        .unwrap_or_default();
                    changed = true;
                }
            }
        }
    }
}

/// The last lines of the services' logs, for a Pod that did not start because of one.
async fn service_log(
    pods: &Api<Pod>,
    pod: &str,
    services: &[(String, ContainerSpec)],
    why: &str,
) -> String {
    let mut detail = String::new();
    for (id, _) in services {
        let container = pod::service_container_name(id);
        if !why.contains(&format!("container {container} ")) && !why.contains("not ready") {
            continue;
        }
        let params = LogParams {
            container: Some(container),
            tail_lines: Some(20),
            ..Default::default()
        };
        if let Ok(text) = pods.logs(pod, &params).await {
            detail.push_str(&format!("\nservice {id}'s log:\n{}", text.trim_end()));
        }
    }
    detail
}

/// Said first by the set-up exec when the image has bash (the default shell then).
const HAS_BASH: &str = "HEARTH_IMAGE_HAS_BASH";
/// Said first by the set-up exec when the hosts file could not take the services' names.
const NO_HOSTS: &str = "HEARTH_HOSTS_NOT_WRITTEN";

/// What the set-up exec learnt of the job container.
struct Prepared {
    base_env: Vec<(String, String)>,
    has_bash: bool,
    /// Whether the names `extra_hosts` asked for are in the hosts file.
    hosts_written: bool,
}

/// Makes the job's folders (open to any user, as in a Docker job), reads the container's
/// environment (the steps' base) and whether its image has bash.
async fn prepare_folders(
    files: &PodFiles,
    image: &str,
    extra_hosts: &[String],
    repository: Option<&[u8]>,
) -> Result<Prepared, BackendError> {
    // Names the API refuses as host aliases go into the hosts file (the kubelet's, writable
    // by root); a failure there is reported, not fatal.
    let hosts = if extra_hosts.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = extra_hosts
            .iter()
            .map(|h| shell_words::quote(h).into_owned())
            .collect();
        format!(
            "{{ printf '127.0.0.1 %s\\n' {} >> /etc/hosts 2>/dev/null || printf '{NO_HOSTS}=1\\0'; }}; ",
            names.join(" ")
        )
    };
    // The repository (`hearth exec`'s checkout) comes on stdin, in the same exec.
    let (unpack, length) = match repository {
        Some(tar) => (
            "head -c \"$1\" | tar -x -f - -C /__w/workspace && ",
            tar.len().to_string(),
        ),
        None => ("", "0".to_owned()),
    };
    let script = format!(
        "mkdir -p /__w/workspace /__w/temp /__w/_actions {PID_DIR} /__t && \
         chmod 0777 /__w /__w/workspace /__w/temp /__w/_actions {PID_DIR} /__t && {unpack}\
         {hosts}{{ command -v bash >/dev/null 2>&1 && printf '{HAS_BASH}=1\\0'; cat /proc/self/environ; }}"
    );
    let argv = [
        "sh".to_owned(),
        "-c".to_owned(),
        script,
        "hearth".to_owned(),
        length,
    ];
    let done = crate::exec::capture(
        &files.api,
        &files.pod,
        JOB_CONTAINER,
        &argv,
        repository,
        1 << 20,
    )
    .await;
    match done {
        Ok(c) if c.code == 0 => {
            let mut base_env = parse_environ(&c.stdout);
            let mut flag = |flag: &str| match base_env.first() {
                Some((name, _)) if name == flag => {
                    base_env.remove(0);
                    true
                }
                _ => false,
            };
            let hosts_written = !flag(NO_HOSTS);
            let has_bash = flag(HAS_BASH);
            Ok(Prepared {
                base_env,
                has_bash,
                hosts_written,
            })
        }
        Ok(c) => Err(BackendError::Prepare {
            what: "folders",
            path: "/__w".into(),
            source: std::io::Error::other(format!(
                "exit code {} in the image {image}: {}",
                c.code,
                String::from_utf8_lossy(&c.stderr).trim()
            )),
        }),
        Err(e) => Err(BackendError::Prepare {
            what: "folders",
            path: "/__w".into(),
            source: std::io::Error::other(format!(
                "{e} (a Kubernetes job runs its steps with sh, mkdir and cat of the image {image})"
            )),
        }),
    }
}

/// `NAME=value` pairs, NUL-separated, as `/proc/<pid>/environ` holds them.
fn parse_environ(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (name, value) = entry.split_once('=')?;
            (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// An API error as the contract's: what was asked, in which namespace, and what to change
/// when the runner lacks the right.
pub fn api_error(what: &str, namespace: &str, error: kube::Error) -> BackendError {
    let namespace = if namespace.is_empty() {
        String::new()
    } else {
        format!(" in namespace {namespace}")
    };
    match &error {
        kube::Error::Api(status) if status.code == 403 => BackendError::Unsupported(format!(
            "cannot {what}{namespace}: the runner's account may not ({}); give it the Role of \
             deploy/kubernetes-pods",
            status.message
        )),
        _ => BackendError::Container(format!(
            "cannot {what}{namespace}: {}",
            crate::error_chain(&error)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
        PodCondition, PodSpec, PodStatus,
    };

    fn pod(phase: &str, statuses: Vec<ContainerStatus>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                node_name: Some("node1".into()),
                containers: vec![Default::default(); statuses.len().max(1)],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: Some(statuses),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn status(name: &str, ready: bool, state: ContainerState) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            image: "img".into(),
            ready,
            state: Some(state),
            ..Default::default()
        }
    }

    #[test]
    fn a_pod_is_ready_when_every_container_is() {
        let running = ContainerState::default;
        let ready = pod(
            "Running",
            vec![
                status("job", true, running()),
                status("svc", true, running()),
            ],
        );
        assert_eq!(verdict(&ready), Verdict::Ready("node1".into()));
        let not_yet = pod(
            "Running",
            vec![
                status("job", true, running()),
                status("svc", false, running()),
            ],
        );
        assert_eq!(
            verdict(&not_yet),
            Verdict::Waiting {
                unschedulable: None
            }
        );
    }

    #[test]
    fn pull_failures_and_ended_containers_fail_the_start() {
        let waiting = ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ErrImagePull".into()),
                message: Some("401 Unauthorized".into()),
            }),
            ..Default::default()
        };
        match verdict(&pod("Pending", vec![status("job", false, waiting)])) {
            Verdict::Failed { why, pull: true } => assert!(why.contains("401"), "{why}"),
            other => panic!("{other:?}"),
        }
        let ended = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 127,
                reason: Some("Error".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        match verdict(&pod("Running", vec![status("svc-db", false, ended)])) {
            Verdict::Failed { why, pull: false } => {
                assert!(why.contains("svc-db") && why.contains("127"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unschedulable_pod_says_why() {
        let mut pending = pod("Pending", vec![]);
        pending.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some("0/1 nodes are available: 1 Insufficient cpu.".into()),
            ..Default::default()
        }]);
        assert_eq!(
            verdict(&pending),
            Verdict::Waiting {
                unschedulable: Some("0/1 nodes are available: 1 Insufficient cpu.".into())
            }
        );
    }

    #[test]
    fn registry_hosts_and_loopback_urls() {
        assert_eq!(
            registry_host("127.0.0.1:5999/private/busybox:1"),
            "127.0.0.1:5999"
        );
        assert_eq!(registry_host("ghcr.io/o/i"), "ghcr.io");
        assert_eq!(registry_host("node:20"), "https://index.docker.io/v1/");
        assert_eq!(registry_host("library/node"), "https://index.docker.io/v1/");
        assert!(is_loopback("http://127.0.0.1:3000/"));
        assert!(is_loopback("http://localhost:3000"));
        assert!(is_loopback("http://[::1]:3000"));
        assert!(!is_loopback("http://10.88.0.1:3000"));
        assert!(!is_loopback("https://git.example.com"));
    }

    #[test]
    fn the_environment_is_read_from_environ() {
        assert_eq!(
            parse_environ(b"PATH=/bin\0HOME=/root\0A=b=c\0\0"),
            vec![
                ("PATH".into(), "/bin".into()),
                ("HOME".into(), "/root".into()),
                ("A".into(), "b=c".into())
            ]
        );
    }
}
