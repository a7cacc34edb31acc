//! The Kubernetes backend against a real cluster (`scripts/k8s-test-env`: Kubernetes 1.20 built
//! from Debian's source, the test images loaded into its node, the test registry on
//! 127.0.0.1:5999). Each test works in a namespace of its own, deleted after.

use std::time::{Duration, Instant};

use hearth_backend::{
    Backend, BackendError, CancellationToken, Credentials, ExecEnd, ExecSpec, JobPath, JobRuntime,
    SecretString, Stream,
};
use hearth_kubernetes::KubernetesSettings;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use serde_json::json;

mod common;

use common::*;

async fn run(
    runtime: &dyn JobRuntime,
    script: &str,
    timeout: Option<Duration>,
    cancel: &CancellationToken,
) -> (Result<ExecEnd, BackendError>, String) {
    let mut out = Vec::new();
    let mut sink = |_: Stream, chunk: &[u8]| out.extend_from_slice(chunk);
    let mut env = runtime.base_env().to_vec();
    env.push(("STEP_VAR".into(), "step value".into()));
    let spec = ExecSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env,
        working_dir: runtime.paths().workspace.clone(),
        timeout,
    };
    let end = runtime.exec(spec, &mut sink, cancel).await;
    (end, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_files_and_stops_run_in_the_jobs_pod() {
    let ns = TestNamespace::new("steps").await;
    let backend = ns.backend(KubernetesSettings::default());
    let cancel = CancellationToken::new();
    let repository = tempfile::tempdir().unwrap();
    std::fs::write(
        repository.path().join("README"),
        "hello from the repository\n",
    )
    .unwrap();
    let mut spec = job(BUSYBOX, "steps-runner");
    spec.repository = Some(hearth_backend::HostPath::new(repository.path()));
    let log = Lines::default();
    let runtime = backend
        .start(spec, &mut log.clone(), &cancel)
        .await
        .expect("the job's Pod starts");
    assert!(
        log.text().contains("Creating Pod hearth-build-"),
        "{}",
        log.text()
    );
    assert!(log.text().contains("is running on node"), "{}", log.text());
    assert!(
        runtime
            .base_env()
            .iter()
            .any(|(k, v)| k == "FROM_SPEC" && v == "yes"),
        "the container's environment is the steps' base: {:?}",
        runtime.base_env()
    );

    // Output of both streams, the exit code, the environment given and the working directory.
    let (end, out) = run(
        &*runtime,
        "cat README; echo \"$STEP_VAR\" >&2; pwd; exit 3",
        None,
        &cancel,
    )
    .await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(3));
    assert!(out.contains("hello from the repository"), "{out}");
    assert!(
        out.contains("step value") && out.contains("/__w/workspace"),
        "{out}"
    );

    // A file written (held back until the next exec) is there for the next step, whose exit
    // codes are its own even where the wrapper uses the same ones when it cannot run a step.
    let held = JobPath::new("/__w/temp/held/script.sh");
    runtime
        .write_file(&held, b"echo 'held $back'; exit 197\n", None)
        .await
        .unwrap();
    let (end, out) = run(&*runtime, "sh /__w/temp/held/script.sh", None, &cancel).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(197));
    assert!(out.contains("held $back"), "{out}");
    let (end, _) = run(&*runtime, "exit 198", None, &cancel).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(198));
    // A file too large to hold back is written at once, after what is held (in order).
    let small = JobPath::new("/__w/temp/held/small");
    runtime.write_file(&small, b"first", None).await.unwrap();
    let large = JobPath::new("/__w/temp/held/large");
    let text = "x".repeat(20 * 1024);
    runtime
        .write_file(&large, text.as_bytes(), None)
        .await
        .unwrap();
    let check = "cat /__w/temp/held/small; echo; wc -c < /__w/temp/held/large";
    let (end, out) = run(&*runtime, check, None, &cancel).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["first", "20480"]
    );
    // More than can be held back, of text an exec request's URL would carry at three times its
    // size (the client refuses a URL over 64 KiB): what does not fit is written at once.
    let text = " é".repeat(5000);
    for i in 0..4 {
        let path = JobPath::new(format!("/__w/temp/held/f{i}"));
        runtime
            .write_file(&path, text.as_bytes(), None)
            .await
            .unwrap();
    }
    let check =
        "cat /__w/temp/held/f0 /__w/temp/held/f1 /__w/temp/held/f2 /__w/temp/held/f3 | wc -c";
    let (end, out) = run(&*runtime, check, None, &cancel).await;
    assert_eq!((end.unwrap(), out.trim()), (ExecEnd::Exited(0), "60000"));

    // An environment far larger than an exec request's URL can carry (it comes on stdin).
    let big = "v".repeat(100_000);
    let mut env = runtime.base_env().to_vec();
    env.push(("BIG".into(), big));
    env.push(("QUOTED".into(), "it's \"quoted\" $x `y` \\n".into()));
    let spec = ExecSpec {
        argv: vec![
            "sh".into(),
            "-c".into(),
            r#"echo ${#BIG}; printf '%s\n' "$QUOTED"; read line; echo "read: $?""#.into(),
        ],
        env,
        working_dir: runtime.paths().workspace.clone(),
        timeout: None,
    };
    let mut out = Vec::new();
    let mut sink = |_: Stream, chunk: &[u8]| out.extend_from_slice(chunk);
    let end = runtime.exec(spec, &mut sink, &cancel).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    let out = String::from_utf8_lossy(&out);
    // The step's stdin is empty (`read` fails at once rather than waiting).
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["100000", "it's \"quoted\" $x `y` \\n", "read: 1"],
        "{out}"
    );

    // Files: written, read, emptied, hashed; the bound is kept.
    let file = JobPath::new("/__w/temp/cmd/out");
    runtime
        .write_file(&file, b"a=1\nb=2\n", None)
        .await
        .unwrap();
    let read = runtime.read_file(&file, 1024).await.unwrap();
    assert_eq!(read.as_deref(), Some(&b"a=1\nb=2\n"[..]));
    assert!(matches!(
        runtime.read_file(&file, 3).await,
        Err(BackendError::FileTooLarge { .. })
    ));
    let missing = JobPath::new("/__w/temp/none");
    assert_eq!(runtime.read_file(&missing, 10).await.unwrap(), None);
    runtime
        .empty_files(&[file.clone(), JobPath::new("/__w/temp/cmd/new")])
        .await
        .unwrap();
    assert_eq!(
        runtime.read_file(&file, 10).await.unwrap().as_deref(),
        Some(&b""[..])
    );
    // A file emptied, then written by a step, reads as the step left it (the backend keeps
    // track of empty files between steps); one the step removed reads as missing.
    let new = JobPath::new("/__w/temp/cmd/new");
    let (end, _) = run(
        &*runtime,
        "printf 'x=1' > /__w/temp/cmd/new; rm /__w/temp/cmd/out",
        None,
        &cancel,
    )
    .await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    assert_eq!(
        runtime.read_file(&new, 10).await.unwrap().as_deref(),
        Some(&b"x=1"[..])
    );
    assert_eq!(runtime.read_file(&file, 10).await.unwrap(), None);
    runtime
        .empty_files(&[file.clone(), new.clone()])
        .await
        .unwrap();
    assert_eq!(
        runtime.read_file(&new, 10).await.unwrap().as_deref(),
        Some(&b""[..])
    );
    let digests = runtime
        .file_digests(&runtime.paths().workspace)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(digests.len(), 1);
    assert_eq!(digests[0].path, "README");
    let big = vec![b'x'; 300_000];
    runtime.write_file(&file, &big, None).await.unwrap();
    assert_eq!(
        runtime
            .read_file(&file, 1 << 20)
            .await
            .unwrap()
            .unwrap()
            .len(),
        300_000
    );

    // A folder of the runner's machine (an action) is copied in, once.
    let action = tempfile::tempdir().unwrap();
    std::fs::write(action.path().join("action.yml"), "name: a\n").unwrap();
    let host = hearth_backend::HostPath::new(action.path());
    let exposed = runtime.expose(&host).await.unwrap();
    assert_eq!(runtime.expose(&host).await.unwrap(), exposed);
    let (end, out) = run(
        &*runtime,
        &format!("cat {exposed}/action.yml"),
        None,
        &cancel,
    )
    .await;
    assert_eq!((end.unwrap(), out.trim()), (ExecEnd::Exited(0), "name: a"));

    // A working directory that is not there.
    let spec = ExecSpec {
        argv: vec!["true".into()],
        env: vec![],
        working_dir: JobPath::new("/__w/workspace/nope"),
        timeout: None,
    };
    let mut sink = |_: Stream, _: &[u8]| {};
    assert!(matches!(
        runtime.exec(spec, &mut sink, &cancel).await,
        Err(BackendError::WorkingDirectory(_))
    ));

    // A timeout stops the step and what it started, within about two seconds.
    let started = Instant::now();
    let (end, _) = run(
        &*runtime,
        "sleep 300 & echo started; wait",
        Some(Duration::from_millis(500)),
        &cancel,
    )
    .await;
    assert_eq!(end.unwrap(), ExecEnd::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let (_, ps) = run(
        &*runtime,
        "ps -o args | grep 'sleep 300' | grep -v grep || true",
        None,
        &cancel,
    )
    .await;
    assert!(
        !ps.contains("sleep 300"),
        "the step's background process is left: {ps}"
    );

    // A cancel, likewise.
    let step_cancel = CancellationToken::new();
    let trigger = step_cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let (end, _) = run(&*runtime, "sleep 300", None, &step_cancel).await;
    assert_eq!(end.unwrap(), ExecEnd::Cancelled);

    // No API token in the Pod, and no privilege.
    let (end, out) = run(
        &*runtime,
        "ls /var/run/secrets/kubernetes.io/serviceaccount 2>&1; grep CapEff /proc/self/status",
        None,
        &cancel,
    )
    .await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    assert!(out.contains("No such file"), "a token is mounted: {out}");
    assert!(
        !out.contains("0000003fffffffff") && !out.contains("000001ffffffffff"),
        "{out}"
    );
    let pods = ns.pods().list(&ListParams::default()).await.unwrap();
    let pod = &pods.items[0];
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(spec.service_account_name.as_deref(), Some("hearth-job"));
    let security = spec.containers[0].security_context.as_ref().unwrap();
    assert_eq!(security.privileged, Some(false));
    assert!(spec.volumes.iter().flatten().all(|v| v.host_path.is_none()));
    // Kubernetes 1.20 does not know hostUsers: the backend saw so and left it out.
    assert!(!backend.user_namespaces().await.unwrap());
    assert_eq!(spec.host_users, None);

    let started = Instant::now();
    runtime.finish().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_reached_by_its_id_once_ready() {
    let ns = TestNamespace::new("services").await;
    let backend = ns.backend(KubernetesSettings::default());
    let cancel = CancellationToken::new();
    let mut spec = job(BUSYBOX, "services-runner");
    spec.services = vec![("web_db".into(), web_service("2"))];
    let runtime = backend
        .start(spec, &mut Lines::default(), &cancel)
        .await
        .expect("the job's Pod starts once its service is ready");
    let (end, out) = run(&*runtime, "wget -qO- http://web_db:8080/", None, &cancel).await;
    assert_eq!((end.unwrap(), out.trim()), (ExecEnd::Exited(0), "served"));
    let containers = runtime.containers();
    assert_eq!(containers.services[0].0, "web_db");
    assert_eq!(
        containers.services[0].1.ports,
        vec![("8080".into(), "8080".into())]
    );
    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_images_pull_with_the_clusters_secrets_or_the_jobs_credentials() {
    let ns = TestNamespace::new("registry").await;
    let cancel = CancellationToken::new();

    // Without credentials the registry refuses, and the start says which image and why.
    // Always pulled: the node may have the image from an earlier run.
    let backend = ns.backend(KubernetesSettings {
        pull_policy: Some("Always".into()),
        ..Default::default()
    });
    let refused = backend
        .start(
            job(PRIVATE, "registry-runner"),
            &mut Lines::default(),
            &cancel,
        )
        .await
        .err()
        .expect("the pull is refused");
    assert_eq!(
        refused.kind(),
        hearth_backend::ErrorKind::RegistryDenied,
        "{refused}"
    );
    assert!(refused.to_string().contains(PRIVATE), "{refused}");
    assert_eq!(ns.leftovers().await, Vec::<String>::new());

    // A Secret of the cluster's, named in kubernetes.image_pull_secrets.
    let auth = base64_auth();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": json!({"auths": {"127.0.0.1:5999": {"auth": auth}}}).to_string()},
    }))
    .unwrap();
    ns.secrets()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let backend = ns.backend(KubernetesSettings {
        image_pull_secrets: vec!["regcred".into()],
        pull_policy: Some("Always".into()),
        ..Default::default()
    });
    let runtime = backend
        .start(
            job(PRIVATE, "registry-runner"),
            &mut Lines::default(),
            &cancel,
        )
        .await
        .expect("the private image pulls with the cluster's Secret");
    let (end, _) = run(&*runtime, "true", None, &cancel).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    runtime.finish().await.unwrap();

    // The job's own `credentials:` become a Secret the Pod owns, gone after the job.
    let backend = ns.backend(KubernetesSettings {
        pull_policy: Some("Always".into()),
        ..Default::default()
    });
    let mut spec = job(PRIVATE, "registry-runner");
    spec.container.as_mut().unwrap().credentials = Some(Credentials {
        username: REGISTRY_USER.into(),
        password: SecretString::from(REGISTRY_PASSWORD),
    });
    let runtime = backend
        .start(spec, &mut Lines::default(), &cancel)
        .await
        .expect("the private image pulls with the job's credentials");
    let secrets = ns.leftovers().await;
    assert!(
        secrets
            .iter()
            .any(|s| s.starts_with("secret hearth-build-") && s.ends_with("-registry")),
        "{secrets:?}"
    );
    let params = ListParams::default().labels("hearth.backend=kubernetes");
    let made = ns.secrets().list(&params).await.unwrap();
    let owners = made.items[0]
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert_eq!(owners.len(), 1, "the Pod owns its Secret");
    assert_eq!(owners[0].kind, "Pod");
    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

fn base64_auth() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_no_node_takes_is_reported_and_deleted_on_cancel() {
    let ns = TestNamespace::new("pending").await;
    let backend = ns.backend(KubernetesSettings {
        // More than any node has: the scheduler keeps the Pod pending and says why.
        requests: [("cpu".to_owned(), "1000".to_owned())].into(),
        ..Default::default()
    });
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let log = Lines::default();
    let watcher = log.clone();
    tokio::spawn(async move {
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if watcher.text().contains("waits for a node") {
                break;
            }
        }
        trigger.cancel();
    });
    let started = backend
        .start(job(BUSYBOX, "pending-runner"), &mut log.clone(), &cancel)
        .await;
    assert!(
        matches!(started, Err(BackendError::Cancelled(_))),
        "{:?}",
        started.err()
    );
    let text = log.text();
    assert!(
        text.contains("waits for a node") && text.contains("Insufficient cpu"),
        "{text}"
    );
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_runner_sweeps_what_its_killed_predecessor_left() {
    let ns = TestNamespace::new("reap").await;
    let cancel = CancellationToken::new();
    let first = ns.backend(KubernetesSettings::default());
    let mut spec = job(BUSYBOX, "reap-runner");
    spec.container.as_mut().unwrap().credentials = Some(Credentials {
        username: "u".into(),
        password: SecretString::from("p"),
    });
    let runtime = first
        .start(spec, &mut Lines::default(), &cancel)
        .await
        .unwrap();
    // The runner dies: its runtime is never finished nor dropped.
    std::mem::forget(runtime);
    // A job of another runner in the same namespace is not touched.
    let other = first
        .start(
            job(BUSYBOX, "another-runner"),
            &mut Lines::default(),
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(ns.leftovers().await.len(), 3);

    // While the first backend lives, its job is live and is spared.
    let owner = vec![("hearth.runner".to_owned(), "reap-runner".to_owned())];
    assert!(first.reap(&owner).await.unwrap().removed.is_empty());
    let restarted = ns.backend(KubernetesSettings::default());
    let reaped = restarted.reap(&owner).await.unwrap();
    assert_eq!(reaped.removed.len(), 2, "{:?}", reaped.removed);
    let left = ns.leftovers().await;
    assert_eq!(left.len(), 1, "{left:?}");
    other.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}
