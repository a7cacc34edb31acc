//! deploy/kubernetes-pods (the runner on Kubernetes with the Kubernetes backend) holds together
//! and is what it says: its files are all listed and name what exists, nothing in it is
//! privileged or mounts the node, and on a real cluster (../shared/k8s, started by
//! scripts/k8s-test-env) it renders, passes the API server's validation, and grants the runner
//! its Role's rights and no more, the job Pods' account none. Also the image's entrypoint in the
//! mode these manifests use (the registration in a Secret).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes-pods")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_text(source: &str, name: &str) -> Value {
    hearth_workflow::yaml::load(source, name)
        .unwrap_or_else(|e| panic!("{e}"))
        .to_json()
}

fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    value
        .pointer(&format!("/{path}"))
        .unwrap_or_else(|| panic!("no {path} in {value:#}"))
}

fn text<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string: {}", at(value, path)))
}

fn items<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    value
        .pointer(&format!("/{path}"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn strings(value: &Value, path: &str) -> BTreeSet<String> {
    items(value, path)
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// A Go duration as Hearth's config writes them (`3h`, `90m`, `1h30m`, `45s`).
fn go_span(span: &str) -> Duration {
    let (mut total, mut number) = (0u64, String::new());
    for c in span.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().unwrap_or_else(|_| panic!("duration {span}"));
        number.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            other => panic!("unit {other} in {span}"),
        };
    }
    assert!(number.is_empty(), "duration {span} without a unit");
    Duration::from_secs(total)
}

/// The folder's manifests by kind and name, after checking that the kustomization lists them
/// all.
fn manifests() -> BTreeMap<(String, String), Value> {
    let dir = folder();
    let kustomization = yaml_text(&read(&dir.join("kustomization.yaml")), "kustomization");
    assert_eq!(text(&kustomization, "kind"), "Kustomization");
    assert!(
        kustomization.get("namespace").is_none(),
        "the namespace is the operator's choice (apply -n)"
    );
    let listed = strings(&kustomization, "resources");
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes-pods")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml's resources");
    let mut found = BTreeMap::new();
    for file in &present {
        let manifest = yaml_text(&read(&dir.join(file)), file);
        assert!(
            at(&manifest, "metadata").get("namespace").is_none(),
            "{file} names a namespace; the files must apply to any"
        );
        let key = (
            text(&manifest, "kind").to_owned(),
            text(&manifest, "metadata/name").to_owned(),
        );
        assert!(
            found.insert(key.clone(), manifest).is_none(),
            "{key:?} twice"
        );
    }
    found
}

fn get<'a>(all: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    all.get(&(kind.to_owned(), name.to_owned()))
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", all.keys()))
}

/// What the runner's Role grants, as (resource, verbs) for the core API group.
fn expected_rules() -> BTreeMap<String, BTreeSet<String>> {
    let verbs = |list: &[&str]| list.iter().map(|v| (*v).to_owned()).collect();
    BTreeMap::from([
        (
            "pods".to_owned(),
            verbs(&["create", "get", "list", "watch", "delete"]),
        ),
        ("pods/exec".to_owned(), verbs(&["create", "get"])),
        ("pods/log".to_owned(), verbs(&["get"])),
        (
            "secrets".to_owned(),
            verbs(&[
                "create", "get", "list", "watch", "delete", "patch", "update",
            ]),
        ),
        ("serviceaccounts".to_owned(), verbs(&["get"])),
    ])
}

#[test]
fn the_manifests_are_listed_name_what_exists_and_give_no_more_than_needed() {
    let all = manifests();
    let kinds: BTreeSet<(&str, &str)> = all
        .keys()
        .map(|(kind, name)| (kind.as_str(), name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            ("ConfigMap", "hearth-config"),
            ("Deployment", "hearth"),
            ("Role", "hearth"),
            ("RoleBinding", "hearth"),
            ("ServiceAccount", "hearth"),
            ("ServiceAccount", "hearth-job"),
        ])
    );

    // The Role: only the core group's resources the backend uses, in its namespace.
    let role = get(&all, "Role", "hearth");
    let mut rules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in items(role, "rules") {
        assert_eq!(strings(rule, "apiGroups"), BTreeSet::from([String::new()]));
        assert!(rule.get("resourceNames").is_none());
        for resource in strings(rule, "resources") {
            rules
                .entry(resource)
                .or_default()
                .extend(strings(rule, "verbs"));
        }
    }
    assert_eq!(rules, expected_rules());
    assert!(
        rules.values().flatten().all(|verb| verb != "*"),
        "no wildcard verb"
    );

    // Bound to the runner's account only; the job Pods' account has no binding and no token.
    let binding = get(&all, "RoleBinding", "hearth");
    assert_eq!(text(binding, "roleRef/kind"), "Role");
    assert_eq!(text(binding, "roleRef/name"), "hearth");
    let subjects = items(binding, "subjects");
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(text(&subjects[0], "kind"), "ServiceAccount");
    assert_eq!(text(&subjects[0], "name"), "hearth");
    get(&all, "ServiceAccount", "hearth");
    let job_account = get(&all, "ServiceAccount", "hearth-job");
    assert_eq!(
        at(job_account, "automountServiceAccountToken"),
        &Value::Bool(false)
    );

    // The Deployment: one runner, never two at once, as the runner's account.
    let deployment = get(&all, "Deployment", "hearth");
    assert_eq!(at(deployment, "spec/replicas"), &Value::from(1));
    assert_eq!(text(deployment, "spec/strategy/type"), "Recreate");
    let pod_labels = at(deployment, "spec/template/metadata/labels");
    for (key, value) in at(deployment, "spec/selector/matchLabels")
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(pod_labels.get(key), Some(value), "selector {key}");
    }
    let pod = at(deployment, "spec/template/spec");
    assert_eq!(text(pod, "serviceAccountName"), "hearth");
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod.get(host).is_none(), "{host}");
    }
    assert_eq!(at(pod, "securityContext/runAsNonRoot"), &Value::Bool(true));
    let user = at(pod, "securityContext/runAsUser")
        .as_u64()
        .expect("a numeric runAsUser (runAsNonRoot needs one: the image names no user)");
    assert_ne!(user, 0);
    let volumes = items(pod, "volumes");
    for volume in volumes {
        assert!(
            volume.get("hostPath").is_none(),
            "volume {} mounts the node",
            text(volume, "name")
        );
    }
    assert!(items(pod, "initContainers").is_empty());
    let containers = items(pod, "containers");
    assert_eq!(containers.len(), 1, "the runner alone");
    let runner = &containers[0];
    assert_eq!(
        at(runner, "securityContext/allowPrivilegeEscalation"),
        &Value::Bool(false)
    );
    assert_ne!(
        runner.pointer("/securityContext/privileged"),
        Some(&Value::Bool(true))
    );
    assert!(
        runner.get("command").is_none() && runner.get("args").is_none(),
        "the image's entrypoint runs (it starts the daemon)"
    );
    let env = |name: &str| -> &Value {
        items(runner, "env")
            .iter()
            .find(|e| text(e, "name") == name)
            .unwrap_or_else(|| panic!("no {name} in the runner's env"))
    };

    // Every volume mounted and defined; the config file is the ConfigMap's.
    let defined: BTreeSet<&str> = volumes.iter().map(|v| text(v, "name")).collect();
    let mounted: BTreeSet<&str> = items(runner, "volumeMounts")
        .iter()
        .map(|m| text(m, "name"))
        .collect();
    assert_eq!(mounted, defined, "every volume is mounted, and defined");
    let config_mount = items(runner, "volumeMounts")
        .iter()
        .find(|m| text(m, "name") == "config")
        .expect("the config mounted");
    assert_eq!(
        text(env("CONFIG_FILE"), "value"),
        text(config_mount, "mountPath")
    );
    let config_volume = volumes
        .iter()
        .find(|v| text(v, "name") == "config")
        .expect("the config volume");
    assert_eq!(text(config_volume, "configMap/name"), "hearth-config");
    let config_map = get(&all, "ConfigMap", "hearth-config");
    let subpath = text(config_mount, "subPath");
    let config = yaml_text(text(config_map, &format!("data/{subpath}")), subpath);

    // The config and the Deployment agree: the registration's Secret, the job account, the
    // labels' backend, the metrics port, and a grace that covers the drain.
    let runner_secret = text(&config, "kubernetes/runner_secret");
    // The entrypoint registers when RUNNER_STATE_FILE is missing: there, that Secret's key.
    let registration = volumes
        .iter()
        .find(|v| v.pointer("/secret/secretName") == Some(&Value::from(runner_secret)))
        .expect("the registration Secret mounted, for the entrypoint to look into");
    assert_eq!(
        at(registration, "secret/optional"),
        &Value::Bool(true),
        "the Secret is missing until the first registration"
    );
    let key = items(registration, "secret/items")
        .iter()
        .find(|item| text(item, "key") == ".runner")
        .expect("the .runner key");
    let registration_mount = items(runner, "volumeMounts")
        .iter()
        .find(|m| text(m, "name") == text(registration, "name"))
        .expect("the registration mounted");
    assert!(
        registration_mount.get("subPath").is_none(),
        "a subPath is never updated"
    );
    assert_eq!(
        text(env("RUNNER_STATE_FILE"), "value"),
        format!(
            "{}/{}",
            text(registration_mount, "mountPath"),
            text(key, "path")
        )
    );
    assert!(
        !all.contains_key(&("Secret".to_owned(), runner_secret.to_owned())),
        "the registration's Secret is the runner's to write, not a manifest"
    );
    assert_eq!(
        text(&config, "kubernetes/service_account"),
        text(job_account, "metadata/name")
    );
    let labels = items(&config, "runner/labels");
    assert!(!labels.is_empty(), "runner.labels");
    for label in labels {
        let label = label.as_str().expect("a label");
        assert!(
            label.contains(":kubernetes://"),
            "{label}: not a kubernetes:// label"
        );
    }
    let token = at(
        env("GITEA_RUNNER_REGISTRATION_TOKEN"),
        "valueFrom/secretKeyRef",
    );
    assert_eq!(text(token, "name"), "hearth-registration");
    assert_eq!(text(token, "key"), "token");
    assert!(
        !text(env("GITEA_INSTANCE_URL"), "value").is_empty(),
        "GITEA_INSTANCE_URL"
    );
    let metrics_addr = text(&config, "metrics/addr");
    let metrics_port: u64 = metrics_addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("metrics.addr {metrics_addr}"));
    let port = items(runner, "ports")
        .iter()
        .find(|p| text(p, "name") == "metrics")
        .expect("the metrics port");
    assert_eq!(at(port, "containerPort"), &Value::from(metrics_port));
    let shutdown = go_span(text(&config, "runner/shutdown_timeout"));
    let grace = Duration::from_secs(
        at(pod, "terminationGracePeriodSeconds")
            .as_u64()
            .expect("terminationGracePeriodSeconds"),
    );
    assert!(shutdown > Duration::ZERO, "runner.shutdown_timeout");
    assert!(
        grace >= shutdown + Duration::from_secs(60),
        "a grace of {grace:?} does not cover runner.shutdown_timeout {shutdown:?} and a minute"
    );
}

// ---- on the real cluster ----

fn kubectl_program() -> String {
    std::env::var("HEARTH_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned())
}

fn kubeconfig() -> PathBuf {
    std::env::var_os("KUBECONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hearth-k8s/run/admin.kubeconfig"))
}

/// Runs kubectl with `args` (and `input` on stdin), as the test cluster's admin.
fn kubectl(args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new(kubectl_program())
        .env("KUBECONFIG", kubeconfig())
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} (set HEARTH_KUBECTL): {e}", kubectl_program()));
    if let Some(input) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("kubectl's stdin");
    }
    child.wait_with_output().expect("kubectl ran")
}

/// kubectl's output, failing the test when it fails.
fn kubectl_ok(args: &[&str], input: Option<&str>) -> String {
    let out = kubectl(args, input);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}{} (kubeconfig {}; is the test cluster running? scripts/k8s-test-env)",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        kubeconfig().display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace of the test's own, deleted when the test ends, passed or not.
struct TestNamespace(String);

impl TestNamespace {
    fn new() -> TestNamespace {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos()
            % 1_000_000_000;
        let name = format!("hearth-deploy-pods-{}-{unique}", std::process::id());
        kubectl_ok(&["create", "namespace", &name], None);
        TestNamespace(name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

/// Whether `account` of `ns` may do `verb` on `resource` (`-n` `in_ns`), as the API server's
/// authorizer answers (SelfSubjectAccessReview through impersonation).
fn can(ns: &str, account: &str, verb: &str, resource: &str, in_ns: &str) -> bool {
    let user = format!("--as=system:serviceaccount:{ns}:{account}");
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (resource, None),
    };
    let mut args = vec!["auth", "can-i", verb, resource, "-n", in_ns, &user];
    let flag;
    if let Some(subresource) = subresource {
        flag = format!("--subresource={subresource}");
        args.push(&flag);
    }
    let out = kubectl(&args, None);
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => true,
        "no" => false,
        other => panic!(
            "kubectl {args:?}: {other} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The rules `account` of `ns` has there, as `kubectl auth can-i --list` prints them.
fn rules_of(ns: &str, account: &str) -> BTreeSet<String> {
    let user = format!("--as=system:serviceaccount:{ns}:{account}");
    kubectl_ok(&["auth", "can-i", "--list", "-n", ns, &user], None)
        .lines()
        .skip(1) // the header
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn on_a_real_cluster_the_manifests_apply_and_the_runner_gets_least_privilege() {
    let dir = folder();
    let rendered = kubectl_ok(&["kustomize", &dir.to_string_lossy()], None);
    let ns = TestNamespace::new();
    let ns = ns.0.as_str();

    // Everything passes the API server's validation and admission, as it would be created.
    let dry = kubectl_ok(
        &["apply", "--dry-run=server", "-n", ns, "-f", "-"],
        Some(&rendered),
    );
    for object in [
        "serviceaccount/hearth ",
        "serviceaccount/hearth-job ",
        "role.rbac.authorization.k8s.io/hearth ",
        "rolebinding.rbac.authorization.k8s.io/hearth ",
        "configmap/hearth-config ",
        "deployment.apps/hearth ",
    ] {
        assert!(dry.contains(object), "{object} not in {dry}");
    }

    // The accounts and their rights for real (not the Deployment: its image is not on the
    // node), to ask the authorizer what they may do.
    let rbac: Vec<&str> = rendered
        .split("\n---\n")
        .filter(|doc| !doc.lines().any(|line| line == "kind: Deployment"))
        .collect();
    assert_eq!(rbac.len(), 5, "{rendered}");
    kubectl_ok(&["apply", "-n", ns, "-f", "-"], Some(&rbac.join("\n---\n")));
    // An account that nothing was granted to, to compare hearth-job with.
    kubectl_ok(&["create", "serviceaccount", "-n", ns, "nobody"], None);

    for (verb, resource) in [
        ("create", "pods"),
        ("get", "pods"),
        ("list", "pods"),
        ("watch", "pods"),
        ("delete", "pods"),
        ("create", "pods/exec"),
        ("get", "pods/exec"),
        ("get", "pods/log"),
        ("create", "secrets"),
        ("get", "secrets"),
        ("update", "secrets"),
        ("delete", "secrets"),
        ("get", "serviceaccounts"),
    ] {
        assert!(
            can(ns, "hearth", verb, resource, ns),
            "the runner may not {verb} {resource}: the backend needs it"
        );
    }
    for (verb, resource, in_ns) in [
        ("create", "deployments", ns),
        ("get", "nodes", ns),
        ("create", "pods", "default"),
        ("get", "secrets", "default"),
        ("create", "clusterroles", ns),
        ("create", "roles", ns),
        ("create", "rolebindings", ns),
        ("create", "serviceaccounts", ns),
        ("create", "serviceaccounts/token", ns),
        ("update", "pods", ns),
        ("create", "pods/attach", ns),
        ("create", "pods/portforward", ns),
        ("get", "configmaps", ns),
        ("create", "namespaces", ns),
        ("delete", "namespaces", ns),
    ] {
        assert!(
            !can(ns, "hearth", verb, resource, in_ns),
            "the runner may {verb} {resource} in {in_ns}: more than it needs"
        );
    }

    // The job Pods' account: what every account may (discovery, reviews of itself), nothing
    // more.
    let job_rules = rules_of(ns, "hearth-job");
    assert_eq!(job_rules, rules_of(ns, "nobody"));
    assert!(!job_rules.is_empty(), "can-i --list printed nothing");
    assert!(
        rules_of(ns, "hearth").len() > job_rules.len(),
        "the runner's rules show in can-i --list"
    );
    for (verb, resource) in [
        ("get", "pods"),
        ("create", "pods"),
        ("get", "secrets"),
        ("list", "secrets"),
        ("get", "configmaps"),
        ("create", "pods/exec"),
    ] {
        assert!(
            !can(ns, "hearth-job", verb, resource, ns),
            "a job may {verb} {resource}"
        );
    }
}

// ---- the image's entrypoint, as these manifests use it ----

/// Runs deploy/image/entrypoint with `env` only, a `hearth` on PATH that prints what it was
/// asked and the token it saw (and succeeds), and RUNNER_STATE_FILE in a folder standing for
/// the mounted registration Secret, holding `.runner` when `registered`; returns its output.
fn entrypoint_with(registered: bool, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let fake = bin.join("hearth");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"hearth $* token=${GITEA_RUNNER_REGISTRATION_TOKEN:-unset}\"\n",
    )
    .expect("the stand-in");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("executable");
    let mounted = dir.path().join("registration");
    std::fs::create_dir(&mounted).expect("the mount");
    if registered {
        std::fs::write(mounted.join(".runner"), r#"{"id": 1}"#).expect(".runner");
    }
    let entrypoint = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/image/entrypoint");
    let out = Command::new("sh")
        .arg(&entrypoint)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env(
            "RUNNER_STATE_FILE",
            mounted.join(".runner").display().to_string(),
        )
        .env("CONFIG_FILE", "/etc/hearth/config.yaml")
        .envs(env.iter().copied())
        .output()
        .expect("sh ran the entrypoint");
    let mut printed = String::from_utf8_lossy(&out.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), printed)
}

#[test]
fn the_entrypoint_registers_only_when_the_mounted_secret_holds_no_registration() {
    let env = [
        ("GITEA_INSTANCE_URL", "https://git.example.com"),
        ("GITEA_RUNNER_REGISTRATION_TOKEN", "t0ken"),
    ];
    // The first Pod: the Secret is not there, so its optional mount is empty.
    let (ok, printed) = entrypoint_with(false, &env);
    assert!(ok, "{printed}");
    assert_eq!(
        printed, "hearth register --no-interactive token=t0ken\nhearth daemon token=unset\n",
        "registers (into the Secret, as the config says), then the daemon without the token"
    );
    // A later Pod: the registration is there.
    let (ok, printed) = entrypoint_with(true, &env);
    assert!(ok, "{printed}");
    assert_eq!(printed, "hearth daemon token=unset\n");
}
