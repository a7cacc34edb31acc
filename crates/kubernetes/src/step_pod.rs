//! Steps in containers of their own (`JobRuntime::run_container`: `uses: docker://` steps and
//! Docker actions with a published image) for a job that is a Pod.
//!
//! A Pod cannot gain a container once it is made, and an `emptyDir` cannot be shared between
//! Pods, so a step runs in a Pod of its own on the job Pod's node, labelled as the job Pod is
//! (plus [`POD_LABEL`] naming it, and owned by it), with a volume of its own:
//!
//! 1. its init container (the job's image, which has `sh` and `tar`) waits until the job's
//!    folders the step mounts were copied in: packed with `tar` in the job Pod, read by the
//!    runner, fed to `tar` in the init container (through exec, whose stdin cannot be closed:
//!    see `exec`, hence `head -c N` and the copy held in memory, at most [`COPY_BOUND`]);
//! 2. the step's container then runs with each folder mounted at its target (`subPath`), its
//!    output (stdout and stderr as one: the log API does not tell them apart) followed
//!    through the log API, its exit code read from the Pod's status;
//! 3. a keeper container (the job's image, sleeping) outlives it, so that the folders, which
//!    the step may have changed (the workspace, `GITHUB_OUTPUT`), are copied back into the
//!    job Pod.
//!
//! The step Pod is deleted at once whatever ends the step (its end, an error, a timeout, a
//! cancel, the future dropped); the job's end deletes any left (`JobObjects::delete`), and
//! being owned by the job Pod, the cluster deletes it with that Pod should the runner die.
//! An image built from a Dockerfile is refused: a node has no image builder Hearth can use.

use std::collections::BTreeMap;

use futures_util::{AsyncReadExt, StreamExt};
use hearth_backend::{
    BackendError, CancellationToken, ContainerRun, ExecEnd, ImageSource, Mount, OutputSink, Stream,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{LogParams, PostParams, WatchEvent, WatchParams};
use kube::Api;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::cleanup::{gone, now, POD_LABEL};
use crate::exec::{self, ExecError};
use crate::files::PodFiles;
use crate::pod::JOB_CONTAINER;
use crate::start::{api_error, FATAL_WAITING};

/// The step Pod's containers.
const INIT: &str = "copy-in";
const STEP: &str = "step";
const KEEPER: &str = "keeper";
/// Where the init container and the keeper see the step Pod's volume.
const VOLUME_PATH: &str = "/__hearth";
const VOLUME: &str = "hearth-step";
/// Made in the volume once the folders are in: the init container waits for it.
const COPIED: &str = "/__hearth/.copied";
/// The most a copy of the job's folders may hold: it passes through the runner's memory.
pub const COPY_BOUND: usize = 1 << 30;

/// Why a Dockerfile action cannot run here.
const NO_BUILDER: &str = "a Kubernetes node has no image builder: publish the action's image \
                          and use `docker://IMAGE`, or run the job with a docker:// label";

/// A job folder the step mounts: its path in the volume (the job path without its leading
/// `/`, as it is in the job Pod from `/`) and where the step sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    pub relative: String,
    pub target: String,
}

/// The folders of `mounts`, checked: absolute job paths without `..`, targets absolute.
pub fn folders(mounts: &[Mount]) -> Result<Vec<Folder>, BackendError> {
    mounts
        .iter()
        .map(|mount| {
            let relative = mount
                .source
                .as_str()
                .strip_prefix('/')
                .map(|r| r.trim_end_matches('/'))
                .filter(|r| !r.is_empty() && !r.split('/').any(|p| p == ".." || p == "."))
                .ok_or_else(|| BackendError::NotInJob(mount.source.as_str().to_owned()))?;
            if !mount.target.starts_with('/') {
                return Err(BackendError::Container(format!(
                    "a step's container cannot mount {} at {}: not an absolute path",
                    mount.source, mount.target
                )));
            }
            Ok(Folder {
                relative: relative.to_owned(),
                target: mount.target.clone(),
            })
        })
        .collect()
}

/// Runs `run` in a step Pod named after the job Pod and `n`.
pub async fn run(
    job: &PodFiles,
    n: usize,
    run: ContainerRun,
    sink: &mut dyn OutputSink,
    cancel: &CancellationToken,
) -> Result<ExecEnd, BackendError> {
    let image = match &run.image {
        ImageSource::Pull(image) => image.clone(),
        ImageSource::Build { .. } => return Err(BackendError::Unsupported(NO_BUILDER.to_owned())),
    };
    let deadline = run.timeout.map(|t| Instant::now() + t);
    let folders = folders(&run.mounts)?;
    if !job.extra_hosts.is_empty() {
        // Such ids are in the job container's hosts file; a step Pod's is the kubelet's, and
        // a 1.20 kubelet writes it anew as each container starts, so nothing can add them.
        let warning = format!(
            "::warning::The services {} cannot be reached by name from a step in a container \
             of its own on Kubernetes (a Pod's host aliases must be lowercase DNS names); \
             rename them (web-db), or run the step in the job's container\n",
            job.extra_hosts.join(", ")
        );
        sink.output(Stream::Stdout, warning.as_bytes());
    }
    let name = format!("{}-step-{n}", job.pod);
    // From here on, whatever ends the step deletes its Pod.
    let step = StepPod {
        api: job.api.clone(),
        name: name.clone(),
        deleted: false,
    };
    let stop = async {
        tokio::select! {
            () = cancel.cancelled() => ExecEnd::Cancelled,
            () = sleep_until_or_never(deadline) => ExecEnd::TimedOut,
        }
    };
    let ended = tokio::select! {
        ended = drive(job, &name, &image, &run, &folders, sink) => ended,
        stopped = stop => Ok(stopped),
    };
    let deleted = step.delete().await;
    let ended = ended?;
    deleted?;
    Ok(ended)
}

/// The step Pod, deleted when dropped unless [`StepPod::delete`] did.
struct StepPod {
    api: Api<Pod>,
    name: String,
    deleted: bool,
}

impl StepPod {
    async fn delete(mut self) -> Result<(), BackendError> {
        self.deleted = true;
        gone(self.api.delete(&self.name, &now()).await)
            .map_err(|e| BackendError::Cleanup(format!("cannot delete Pod {}: {e}", self.name)))
    }
}

impl Drop for StepPod {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        let (api, name) = (self.api.clone(), self.name.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = gone(api.delete(&name, &now()).await) {
                        tracing::warn!(pod = %name, "cannot delete a step's Pod: {e}");
                    }
                });
            }
            Err(_) => tracing::warn!(pod = %name, "no runtime left to delete a step's Pod"),
        }
    }
}

/// Everything from the job Pod's read to the folders copied back.
async fn drive(
    job: &PodFiles,
    name: &str,
    image: &str,
    run: &ContainerRun,
    folders: &[Folder],
    sink: &mut dyn OutputSink,
) -> Result<ExecEnd, BackendError> {
    let api = &job.api;
    let job_pod = api
        .get(&job.pod)
        .await
        .map_err(|e| api_error("read the job's Pod", "", e))?;
    let manifest = manifest(&job_pod, name, image, run, folders)
        .map_err(|e| BackendError::Container(format!("cannot make a step's Pod: {e}")))?;
    let manifest: Pod = serde_json::from_value(manifest)
        .map_err(|e| BackendError::Container(format!("cannot make a step's Pod: {e}")))?;
    let relative: Vec<String> = folders.iter().map(|f| f.relative.clone()).collect();
    // The Pod starts while the folders are packed.
    let create = async {
        api.create(&PostParams::default(), &manifest)
            .await
            .map_err(|e| api_error("create a step's Pod", "", e))
    };
    let (created, packed) = tokio::join!(create, pack(job, &relative));
    let mut pull_race = crate::pull_race::FirstPullRace::new(&created?);
    let packed = packed?;

    until(api, name, |pod| match state(pod, INIT) {
        State::Running => Some(Ok(())),
        State::Waiting => None,
        State::Failed { why, pull: true } if pull_race.waits_out(&why) => None,
        State::Ended(code) => Some(Err(BackendError::Container(format!(
            "the step's Pod {name}: its container {INIT} ended (exit code {code}) before the \
             job's folders were copied in"
        )))),
        State::Failed { why, pull } => Some(Err(failed(why, pull))),
    })
    .await?;
    let script = format!(
        r#"if [ "$1" -gt 0 ]; then head -c "$1" | tar -x -f - -C {VOLUME_PATH} || exit 1; fi; touch {COPIED}"#
    );
    let args = [packed.len().to_string()];
    let argv = sh(&script, &args);
    let input = (!packed.is_empty()).then_some(&packed[..]);
    let copied = exec::capture(api, name, INIT, &argv, input, 0).await;
    checked(copied, "copy the job's folders into the step's Pod")?;
    drop(packed);

    until(api, name, |pod| match state(pod, STEP) {
        State::Running | State::Ended(_) => Some(Ok(())),
        State::Waiting => None,
        State::Failed { why, pull: true } if pull_race.waits_out(&why) => None,
        State::Failed { why, pull } => Some(Err(failed(why, pull))),
    })
    .await?;
    follow(api, name, sink).await?;
    let code = until(api, name, |pod| match state(pod, STEP) {
        State::Ended(code) => Some(Ok(code)),
        State::Running | State::Waiting => None,
        State::Failed { why, pull } => Some(Err(failed(why, pull))),
    })
    .await?;

    if !relative.is_empty() {
        let script = format!(r#"cd {VOLUME_PATH} && tar -c -f - "$@""#);
        let packed =
            exec::capture(api, name, KEEPER, &sh(&script, &relative), None, COPY_BOUND).await;
        let packed = checked(packed, "copy the step's folders back")?;
        let script = r#"n=$1; shift; cd / && rm -rf -- "$@" && head -c "$n" | tar -x -f - -C /"#;
        let mut args = vec![packed.len().to_string()];
        args.extend(relative.iter().cloned());
        let unpacked = exec::capture(
            api,
            &job.pod,
            JOB_CONTAINER,
            &sh(script, &args),
            Some(&packed),
            0,
        )
        .await;
        checked(unpacked, "copy the step's folders back into the job's Pod")?;
    }
    Ok(ExecEnd::Exited(code))
}

/// A tar of the job's folders `relative` (made first when they are not there), from `/`.
async fn pack(job: &PodFiles, relative: &[String]) -> Result<Vec<u8>, BackendError> {
    if relative.is_empty() {
        return Ok(Vec::new());
    }
    let script = r#"cd / && mkdir -p -- "$@" && tar -c -f - "$@""#;
    // The writes the job holds back go first: the step sees its files as they should be.
    let packed = exec::capture(
        &job.api,
        &job.pod,
        JOB_CONTAINER,
        &job.sh_argv(script, "hearth", relative.iter().cloned()),
        None,
        COPY_BOUND,
    )
    .await;
    checked(packed, "copy the job's folders for a step's container")
}

fn sh(script: &str, args: &[String]) -> Vec<String> {
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "hearth".to_owned(),
    ];
    argv.extend(args.iter().cloned());
    argv
}

/// The stdout of a copy's command that ended well, or the error saying what failed.
fn checked(done: Result<exec::Captured, ExecError>, what: &str) -> Result<Vec<u8>, BackendError> {
    match done {
        Ok(c) if c.code == 0 => Ok(c.stdout),
        Ok(c) => Err(BackendError::Container(format!(
            "cannot {what}: exit code {}: {}",
            c.code,
            String::from_utf8_lossy(&c.stderr).trim()
        ))),
        Err(ExecError::Stream(m)) if m.contains("printed more than") => {
            Err(BackendError::Container(format!(
                "cannot {what}: the folders hold more than {} MiB, the most a step in a \
                 container of its own carries between Pods on Kubernetes (the copy goes through \
                 the runner); run the step in the job's container instead",
                COPY_BOUND >> 20
            )))
        }
        Err(e) => Err(BackendError::Container(format!("cannot {what}: {e}"))),
    }
}

/// Sends the step container's log to `sink` as it comes, until the container ends.
async fn follow(api: &Api<Pod>, name: &str, sink: &mut dyn OutputSink) -> Result<(), BackendError> {
    let params = LogParams {
        container: Some(STEP.to_owned()),
        follow: true,
        ..Default::default()
    };
    let lost = |e: String| BackendError::Wait {
        program: format!("the step's container in Pod {name}"),
        source: std::io::Error::other(e),
    };
    let reader = api
        .log_stream(name, &params)
        .await
        .map_err(|e| lost(e.to_string()))?;
    futures_util::pin_mut!(reader);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) => return Ok(()),
            Ok(n) => sink.output(Stream::Stdout, &buffer[..n]),
            Err(e) => return Err(lost(format!("reading its log: {e}"))),
        }
    }
}

/// Where a container of the step Pod is.
#[derive(Debug, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Ended(i32),
    /// It will not run: why, and whether its image could not be pulled.
    Failed {
        why: String,
        pull: bool,
    },
}

fn state(pod: &Pod, container: &str) -> State {
    let Some(status) = &pod.status else {
        return State::Waiting;
    };
    let found = status
        .init_container_statuses
        .iter()
        .chain(status.container_statuses.iter())
        .flatten()
        .find(|c| c.name == container);
    if let Some(found) = found {
        let current = found.state.as_ref();
        if let Some(ended) = current.and_then(|s| s.terminated.as_ref()) {
            return State::Ended(ended.exit_code);
        }
        if current.and_then(|s| s.running.as_ref()).is_some() {
            return State::Running;
        }
        if let Some(waiting) = current.and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or("");
            if FATAL_WAITING.contains(&reason) {
                return State::Failed {
                    why: format!(
                        "container {container} (image {}): {reason}: {}",
                        found.image,
                        waiting.message.as_deref().unwrap_or("no message")
                    ),
                    pull: reason.contains("Image"),
                };
            }
        }
    }
    // The node refused the Pod (no room, a missing volume) before running the container.
    if status.phase.as_deref() == Some("Failed") {
        return State::Failed {
            why: format!(
                "the node refused it: {}",
                status
                    .message
                    .as_deref()
                    .or(status.reason.as_deref())
                    .unwrap_or("no reason given")
            ),
            pull: false,
        };
    }
    State::Waiting
}

fn failed(why: String, pull: bool) -> BackendError {
    if pull {
        BackendError::Registry(format!(
            "cannot pull the image of a step's container: {why} (the step's Pod has the job \
             Pod's credentials: kubernetes.image_pull_secrets and the job's `credentials:`)"
        ))
    } else {
        BackendError::Container(format!("the step's Pod did not run: {why}"))
    }
}

/// Watches the Pod `name` until `check` says something.
async fn until<T>(
    api: &Api<Pod>,
    name: &str,
    mut check: impl FnMut(&Pod) -> Option<Result<T, BackendError>>,
) -> Result<T, BackendError> {
    let read = |e| api_error("read a step's Pod", "", e);
    let mut current = api.get(name).await.map_err(read)?;
    loop {
        if let Some(answer) = check(&current) {
            return answer;
        }
        let version = current
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(60);
        let mut events = api
            .watch(&params, &version)
            .await
            .map_err(|e| api_error("watch a step's Pod", "", e))?
            .boxed();
        loop {
            match events.next().await {
                Some(Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod))) => {
                    if let Some(answer) = check(&pod) {
                        return answer;
                    }
                }
                Some(Ok(WatchEvent::Deleted(_))) => {
                    return Err(BackendError::Container(format!(
                        "the step's Pod {name} was deleted while it ran"
                    )))
                }
                Some(Ok(WatchEvent::Bookmark(_))) => {}
                // The watch ended or its version is too old: read the Pod again.
                Some(Ok(WatchEvent::Error(_)) | Err(_)) | None => break,
            }
        }
        current = api.get(name).await.map_err(read)?;
    }
}

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The step Pod for `run`, from the job Pod `job` (running): on its node, with its labels,
/// credentials, security and host aliases (its services, reached at its address).
pub fn manifest(
    job: &Pod,
    name: &str,
    image: &str,
    run: &ContainerRun,
    folders: &[Folder],
) -> Result<Value, String> {
    let job_name = job
        .metadata
        .name
        .as_deref()
        .ok_or("the job's Pod has no name")?;
    let spec = job.spec.as_ref().ok_or("the job's Pod has no spec")?;
    let node = spec
        .node_name
        .as_deref()
        .ok_or("the job's Pod is on no node yet")?;
    let job_container = spec
        .containers
        .iter()
        .find(|c| c.name == JOB_CONTAINER)
        .ok_or("the job's Pod has no job container")?;
    let helper_image = job_container
        .image
        .as_deref()
        .ok_or("the job container has no image")?;
    let pull = job_container
        .image_pull_policy
        .as_deref()
        .unwrap_or("IfNotPresent");

    let mut labels: BTreeMap<String, String> = job.metadata.labels.clone().unwrap_or_default();
    labels.insert(POD_LABEL.to_owned(), job_name.to_owned());
    let mut metadata = json!({"name": name, "labels": labels});
    if let Some(uid) = &job.metadata.uid {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Pod", "name": job_name, "uid": uid,
        }]);
    }

    let least = json!({"privileged": false, "allowPrivilegeEscalation": false});
    // The helpers run as the job container does, so the copies keep its files' owners.
    let helper_security = match &job_container.security_context {
        Some(security) => to_json(security)?,
        None => least.clone(),
    };
    let volume_mount = json!([{"name": VOLUME, "mountPath": VOLUME_PATH}]);
    let wait = format!("while [ ! -e {COPIED} ]; do sleep 0.2 2>/dev/null || sleep 1; done");
    let init = json!({
        "name": INIT,
        "image": helper_image,
        "imagePullPolicy": pull,
        "command": ["/bin/sh", "-c", wait],
        "volumeMounts": volume_mount,
        "securityContext": helper_security,
    });
    let keeper = json!({
        "name": KEEPER,
        "image": helper_image,
        "imagePullPolicy": pull,
        "command": ["/bin/sh", "-c", crate::pod::SLEEPER],
        "volumeMounts": volume_mount,
        "securityContext": helper_security,
    });

    let mut step = json!({
        "name": STEP,
        "image": image,
        "imagePullPolicy": pull,
        "env": run.env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "volumeMounts": folders.iter().map(|f| json!({
            "name": VOLUME, "mountPath": f.target, "subPath": f.relative,
        })).collect::<Vec<_>>(),
        "securityContext": least,
    });
    if let Some(entrypoint) = run.entrypoint.as_deref().filter(|e| !e.is_empty()) {
        step["command"] = json!([entrypoint]);
    }
    if !run.args.is_empty() {
        step["args"] = json!(run.args);
    }
    if !run.working_dir.is_empty() {
        step["workingDir"] = json!(run.working_dir);
    }
    // The job container's limits bound the step too; nothing more is requested: the job Pod
    // holds the room on the node, and its job container waits while the step runs.
    if let Some(limits) = job_container
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .filter(|l| !l.is_empty())
    {
        let requests: BTreeMap<&String, &str> = limits.keys().map(|k| (k, "0")).collect();
        step["resources"] = json!({"limits": to_json(limits)?, "requests": requests});
    }

    let mut pod_spec = json!({
        "nodeName": node,
        "restartPolicy": "Never",
        "initContainers": [init],
        "containers": [step, keeper],
        "volumes": [{"name": VOLUME, "emptyDir": {}}],
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "terminationGracePeriodSeconds": 1,
    });
    if let Some(account) = &spec.service_account_name {
        pod_spec["serviceAccountName"] = json!(account);
    }
    if let Some(secrets) = spec.image_pull_secrets.as_ref().filter(|s| !s.is_empty()) {
        pod_spec["imagePullSecrets"] = to_json(secrets)?;
    }
    if let Some(security) = &spec.security_context {
        pod_spec["securityContext"] = to_json(security)?;
    }
    if let Some(host_users) = spec.host_users {
        pod_spec["hostUsers"] = json!(host_users);
    }
    if let Some(tolerations) = spec.tolerations.as_ref().filter(|t| !t.is_empty()) {
        pod_spec["tolerations"] = to_json(tolerations)?;
    }
    if let Some(class) = &spec.runtime_class_name {
        pod_spec["runtimeClassName"] = json!(class);
    }
    // The job's services listen in the job Pod: reached at its address, by the same names.
    let address = job.status.as_ref().and_then(|s| s.pod_ip.as_deref());
    if let (Some(aliases), Some(address)) = (spec.host_aliases.as_ref(), address) {
        let aliases: Vec<Value> = aliases
            .iter()
            .map(|a| json!({"ip": address, "hostnames": a.hostnames}))
            .collect();
        if !aliases.is_empty() {
            pod_spec["hostAliases"] = json!(aliases);
        }
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": pod_spec,
    }))
}

/// A part of the job Pod, as the step Pod's manifest holds it.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::{self, PodPlan};
    use hearth_backend::{ContainerSpec, JobPath};

    fn job_pod() -> Pod {
        let labels = [
            ("hearth.backend".to_owned(), "kubernetes".to_owned()),
            ("hearth.runner".to_owned(), "r1".to_owned()),
        ];
        let job = ContainerSpec {
            image: "hearth-test/busybox:1".into(),
            options: "--cpus 2 --user 1000".into(),
            ..Default::default()
        };
        let services = vec![(
            "db".to_owned(),
            ContainerSpec {
                image: "postgres".into(),
                ..Default::default()
            },
        )];
        let plan = PodPlan {
            name: "hearth-build-1a2b",
            labels: &labels,
            job: &job,
            services: &services,
            credentials_secret: Some("hearth-build-1a2b-registry"),
            host_users_false: false,
        };
        let mut pod: Pod =
            serde_json::from_value(pod::pod(&plan, &Default::default()).unwrap()).unwrap();
        pod.metadata.uid = Some("u-1".into());
        pod.spec.as_mut().unwrap().node_name = Some("node1".into());
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            pod_ip: Some("10.0.0.7".into()),
            ..Default::default()
        });
        pod
    }

    fn container_run() -> ContainerRun {
        ContainerRun {
            image: ImageSource::Pull("alpine:3".into()),
            entrypoint: Some("sh".into()),
            args: vec!["-c".into(), "echo hi".into()],
            env: vec![("A".into(), "1".into())],
            mounts: vec![Mount {
                source: JobPath::new("/__w/workspace"),
                target: "/github/workspace".into(),
            }],
            working_dir: "/github/workspace".into(),
            timeout: None,
        }
    }

    #[test]
    fn a_step_pod_is_beside_its_job_pod_and_labelled_as_it() {
        let run = container_run();
        let folders = folders(&run.mounts).unwrap();
        let manifest = manifest(
            &job_pod(),
            "hearth-build-1a2b-step-0",
            "alpine:3",
            &run,
            &folders,
        )
        .unwrap();
        let spec = &manifest["spec"];
        assert_eq!(spec["nodeName"], "node1");
        let labels = &manifest["metadata"]["labels"];
        assert_eq!(labels["hearth.backend"], "kubernetes");
        assert_eq!(labels["hearth.runner"], "r1");
        assert_eq!(labels[POD_LABEL], "hearth-build-1a2b");
        assert_eq!(manifest["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(
            spec["imagePullSecrets"],
            json!([{"name": "hearth-build-1a2b-registry"}])
        );
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(spec["serviceAccountName"], "hearth-job");
        assert_eq!(
            spec["hostAliases"],
            json!([{"ip": "10.0.0.7", "hostnames": ["db"]}])
        );
        let step = &spec["containers"][0];
        assert_eq!(step["image"], "alpine:3");
        assert_eq!(step["command"], json!(["sh"]));
        assert_eq!(step["args"], json!(["-c", "echo hi"]));
        assert_eq!(step["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(step["workingDir"], "/github/workspace");
        assert_eq!(
            step["volumeMounts"],
            json!([{"name": VOLUME, "mountPath": "/github/workspace", "subPath": "__w/workspace"}])
        );
        assert_eq!(step["securityContext"]["privileged"], false);
        assert!(step["securityContext"].get("runAsUser").is_none());
        assert_eq!(step["resources"]["limits"]["cpu"], "2000m");
        assert_eq!(step["resources"]["requests"]["cpu"], "0");
        let (init, keeper) = (&spec["initContainers"][0], &spec["containers"][1]);
        assert_eq!(init["image"], "hearth-test/busybox:1");
        assert_eq!(keeper["image"], "hearth-test/busybox:1");
        assert_eq!(init["securityContext"]["runAsUser"], 1000);
        serde_json::from_value::<Pod>(manifest).unwrap();
    }

    #[test]
    fn an_entrypoint_and_args_left_out_keep_the_images() {
        let mut run = container_run();
        run.entrypoint = None;
        run.args = Vec::new();
        let manifest = manifest(&job_pod(), "s", "alpine:3", &run, &[]).unwrap();
        let step = &manifest["spec"]["containers"][0];
        assert!(step.get("command").is_none() && step.get("args").is_none());
    }

    #[test]
    fn mounts_must_be_job_folders() {
        let mount = |source: &str, target: &str| Mount {
            source: JobPath::new(source),
            target: target.into(),
        };
        assert_eq!(
            folders(&[mount("/__w/temp/x/", "/github/x")]).unwrap(),
            vec![Folder {
                relative: "__w/temp/x".into(),
                target: "/github/x".into()
            }]
        );
        assert!(folders(&[mount("/__w/../etc", "/x")]).is_err());
        assert!(folders(&[mount("/", "/x")]).is_err());
        assert!(folders(&[mount("/__w/a", "relative")]).is_err());
    }

    #[test]
    fn container_states_say_when_to_go_on() {
        use k8s_openapi::api::core::v1::{
            ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
            ContainerStatus, PodStatus,
        };
        let status = |name: &str, state: ContainerState| ContainerStatus {
            name: name.into(),
            image: "img".into(),
            state: Some(state),
            ..Default::default()
        };
        let pod = Pod {
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                init_container_statuses: Some(vec![status(
                    INIT,
                    ContainerState {
                        running: Some(ContainerStateRunning::default()),
                        ..Default::default()
                    },
                )]),
                container_statuses: Some(vec![
                    status(
                        STEP,
                        ContainerState {
                            waiting: Some(ContainerStateWaiting {
                                reason: Some("ErrImagePull".into()),
                                message: Some("not found".into()),
                            }),
                            ..Default::default()
                        },
                    ),
                    status(
                        KEEPER,
                        ContainerState {
                            terminated: Some(ContainerStateTerminated {
                                exit_code: 3,
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    ),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(state(&pod, INIT), State::Running);
        assert!(matches!(
            state(&pod, STEP),
            State::Failed { pull: true, .. }
        ));
        assert_eq!(state(&pod, KEEPER), State::Ended(3));
        assert_eq!(state(&Pod::default(), STEP), State::Waiting);
    }
}
